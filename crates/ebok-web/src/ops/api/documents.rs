//! Documents the ISP publishes in the panel: `POST /api/v1/documents?kind=…&title=…[&contract=…]`
//! with the PDF as the body, `GET /api/v1/documents` (all, withdrawn ones too) and
//! `DELETE /api/v1/documents/{id}` to withdraw one. Writes are audited.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::auth::OpsCaller;
use super::office::audited;
use super::{json_response, ApiError};
use crate::state::AppState;
use ebok_store::documents::{self, check_pdf, Document, NewDocument, PdfError};
use ebok_store::repo::StoreError;

/// The routes under `/api/v1`; the upload's body may be a little over the PDF limit so
/// that an oversize file gets our own clear answer.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/documents", get(list).post(publish))
        .route("/documents/{id}", delete(withdraw))
        .layer(DefaultBodyLimit::max(documents::MAX_DOCUMENT_BYTES + 1))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishParams {
    kind: String,
    title: String,
    /// The contract by the billing system's id; absent: a general document.
    contract: Option<String>,
}

/// A document as the API shows it.
#[derive(Debug, Serialize)]
struct DocumentView {
    id: i64,
    kind: String,
    title: String,
    contract: Option<String>,
    size: i64,
    sha256: String,
    published_at: String,
    withdrawn_at: Option<String>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> DocumentView {
        DocumentView {
            id: d.id,
            kind: d.kind.to_string(),
            title: d.title,
            contract: d.contract_number,
            size: d.size,
            sha256: d.sha256,
            published_at: rfc3339(d.published_at),
            withdrawn_at: d.withdrawn_at.map(rfc3339),
        }
    }
}

fn pdf_error(e: PdfError) -> ApiError {
    let status = match e {
        PdfError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        PdfError::Empty | PdfError::NotPdf => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

/// `POST /api/v1/documents`: publish a PDF.
async fn publish(
    caller: OpsCaller,
    State(state): State<AppState>,
    params: Result<Query<PublishParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "bad query parameters ({}): kind and title are required, contract is optional",
            e.body_text()
        ))
    })?;
    let kind = p.kind.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "unknown kind {:?}: one of terms, price_list, contract, annex, general_terms",
            p.kind
        ))
    })?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => pdf_error(PdfError::TooLarge {
            size: documents::MAX_DOCUMENT_BYTES + 1,
            max: documents::MAX_DOCUMENT_BYTES,
        }),
        status => ApiError::new(status, "the request body could not be read"),
    })?;
    check_pdf(&body).map_err(pdf_error)?;
    let detail = format!(
        "document {} {:?} ({} bytes){}",
        p.kind,
        p.title.trim(),
        body.len(),
        p.contract
            .as_deref()
            .map(|c| format!(" for contract {c}"))
            .unwrap_or_default()
    );
    let doc = audited(
        &state,
        &caller,
        "ops_document_publish",
        &detail,
        move |tx| {
            Box::pin(async move {
                let new = NewDocument {
                    kind,
                    title: &p.title,
                    contract_ext_id: p.contract.as_deref(),
                    pdf: &body,
                };
                documents::publish(tx, &new).await.map_err(|e| match e {
                    StoreError::UnknownReference { .. } => {
                        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
                    }
                    StoreError::Invalid { .. } => ApiError::bad_request(e.to_string()),
                    e => ApiError::internal("publishing a document failed", &e),
                })
            })
        },
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, &DocumentView::from(doc)))
}

/// `GET /api/v1/documents`: every document, withdrawn ones too, newest first.
async fn list(_caller: OpsCaller, State(state): State<AppState>) -> Result<Response, ApiError> {
    let docs = documents::all_documents(&state.db)
        .await
        .map_err(|e| ApiError::internal("listing documents failed", &e))?;
    let views: Vec<DocumentView> = docs.into_iter().map(DocumentView::from).collect();
    Ok(json_response(StatusCode::OK, &views))
}

#[derive(Debug, Serialize)]
struct WithdrawnBody {
    withdrawn: bool,
}

/// `DELETE /api/v1/documents/{id}`: withdraw a document (kept for the record, shown no more).
async fn withdraw(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request("the document id must be a number"))?;
    audited(
        &state,
        &caller,
        "ops_document_withdraw",
        &format!("document {id}"),
        move |tx| {
            Box::pin(async move {
                match documents::withdraw(tx, id).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no document {id} in force"),
                    )),
                    Err(e) => Err(ApiError::internal("withdrawing a document failed", &e)),
                }
            })
        },
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &WithdrawnBody { withdrawn: true },
    ))
}
