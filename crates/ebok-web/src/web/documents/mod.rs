//! Dokumenty: the documents the ISP publishes (terms, price lists, contracts, annexes,
//! general terms). Everyone sees the general ones; a document bound to a contract is listed
//! and served only to that contract's holder (404 to anyone else, as for a missing one).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::web::error::PanelError;
use crate::web::pages::{error_page, render, Chrome, Ctx};
use crate::web::AppState;
use ebok_store::documents::{self, Document, DocumentKind};
use ebok_store::tz::{format_date, warsaw_date};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Document downloads whose bytes may be held at once (each up to the store's size limit):
/// more wait up to [`DOWNLOAD_WAIT`] and then get 503, so that many slow readers of a public
/// document cannot pile up copies of it in memory.
const DOWNLOADS_AT_ONCE: usize = 16;
const DOWNLOAD_WAIT: Duration = Duration::from_secs(5);
static DOWNLOADS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(DOWNLOADS_AT_ONCE)));

#[cfg(test)]
mod tests;

/// The routes of this page group.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dokumenty", get(list))
        .route("/dokumenty/{file}", get(pdf))
}

/// The catalogue key naming a kind of document.
pub(crate) fn kind_key(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Terms => "documents.kind_terms",
        DocumentKind::PriceList => "documents.kind_price_list",
        DocumentKind::Contract => "documents.kind_contract",
        DocumentKind::Annex => "documents.kind_annex",
        DocumentKind::GeneralTerms => "documents.kind_general_terms",
    }
}

pub(crate) struct DocumentRow {
    pub href: String,
    pub kind: &'static str,
    pub title: String,
    /// The contract's number, for a per-contract document.
    pub contract: Option<String>,
    /// `15.01.2026`, in Europe/Warsaw.
    pub date: String,
    /// `2026-01-15`, for `<time datetime>`.
    pub iso_date: String,
    /// `12 KiB`-style size.
    pub size: String,
}

#[derive(Template)]
#[template(path = "documents.html")]
struct DocumentsPage {
    c: Chrome,
    rows: Vec<DocumentRow>,
}

/// A size in kB (rounded up; 1 kB at least) or MB with one decimal.
fn size_text(bytes: i64) -> String {
    if bytes < 1_000_000 {
        format!("{} kB", ((bytes + 999) / 1000).max(1))
    } else {
        let tenths = (bytes + 50_000) / 100_000;
        format!("{},{} MB", tenths / 10, tenths % 10)
    }
}

fn row(ctx: &Ctx, d: Document) -> DocumentRow {
    let day = warsaw_date(d.published_at);
    DocumentRow {
        href: format!("/dokumenty/{}.pdf", d.id),
        kind: ctx.t.t(kind_key(d.kind)),
        title: d.title,
        contract: d.contract_number,
        date: format_date(day),
        iso_date: day.to_string(),
        size: size_text(d.size),
    }
}

/// The subscriber behind the request, when logged in.
fn reader(ctx: &Ctx) -> Option<i64> {
    ctx.auth.as_ref().map(|a| a.account.subscriber_id)
}

/// Dokumenty: the general documents, then the caller's contract documents.
pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PanelError> {
    let docs = documents::visible_documents(&state.db, reader(&ctx)).await?;
    let rows = docs.into_iter().map(|d| row(&ctx, d)).collect();
    let c = Chrome::new(&state, &ctx, "/dokumenty").await;
    Ok(render(StatusCode::OK, &DocumentsPage { c, rows }))
}

/// One document's PDF (`/dokumenty/{id}.pdf`), as a download.
pub async fn pdf(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(file): Path<String>,
) -> Result<Response, PanelError> {
    let id = file
        .strip_suffix(".pdf")
        .and_then(|id| id.parse::<i64>().ok());
    let Some(id) = id else {
        return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    let permit = match tokio::time::timeout(DOWNLOAD_WAIT, DOWNLOADS.clone().acquire_owned()).await
    {
        Ok(Ok(permit)) => permit,
        _ => return Ok(error_page(&state, &ctx.info, StatusCode::SERVICE_UNAVAILABLE).await),
    };
    let Some((doc, bytes)) = documents::visible_pdf(&state.db, id, reader(&ctx)).await? else {
        return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    Ok(crate::web::download::attachment(
        "application/pdf",
        &format!("{}.pdf", without_diacritics(&doc.title)),
        held_body(bytes, permit),
    ))
}

/// `bytes` as a response body that keeps `permit` until the body has been sent (or the
/// connection dropped), not only until the handler returns.
fn held_body(bytes: Vec<u8>, permit: OwnedSemaphorePermit) -> Body {
    let chunks =
        futures_util::stream::unfold((Some(bytes), Some(permit)), |(bytes, permit)| async move {
            bytes.map(|b| {
                (
                    Ok::<_, std::convert::Infallible>(Bytes::from(b)),
                    (None, permit),
                )
            })
        });
    Body::from_stream(chunks)
}

/// Polish letters as their base letters (`Regulamin świadczenia` → `Regulamin swiadczenia`),
/// so that a title-based file name keeps its words once made ASCII.
fn without_diacritics(s: &str) -> String {
    const FROM: &str = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ";
    const TO: &str = "acelnoszzACELNOSZZ";
    s.chars()
        .map(|c| match FROM.chars().position(|p| p == c) {
            Some(i) => TO.chars().nth(i).unwrap_or(c),
            None => c,
        })
        .collect()
}
