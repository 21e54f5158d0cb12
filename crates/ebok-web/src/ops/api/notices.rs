//! Outage and maintenance notices: post, change, resolve and list them. Every write is
//! audited; this instance shows the change at once, others within
//! [`crate::web::notices::BOARD_TTL`].

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::OpsCaller;
use super::office::{audited, json_body, list_params, path_id, PageBody};
use super::{json_response, ApiError};
use crate::state::AppState;
use ebok_store::notices::{self, Listing, Notice, NoticeDraft, Severity};
use ebok_store::repo::{Page, StoreError};

/// A notice as the API writes it.
#[derive(Debug, Serialize)]
pub(crate) struct NoticeBody {
    id: i64,
    title: String,
    body: String,
    severity: Severity,
    #[serde(with = "time::serde::rfc3339")]
    starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expected_end: Option<OffsetDateTime>,
    everyone: bool,
    nas: Vec<String>,
    postcodes: Vec<String>,
    cities: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    resolved_at: Option<OffsetDateTime>,
    /// When the mail about it was taken by an instance (`[mail] notices`).
    #[serde(with = "time::serde::rfc3339::option")]
    mail_sent_at: Option<OffsetDateTime>,
}

impl From<Notice> for NoticeBody {
    fn from(n: Notice) -> NoticeBody {
        let d = n.draft;
        NoticeBody {
            id: n.id,
            title: d.title,
            body: d.body,
            severity: d.severity,
            starts_at: d.starts_at,
            expected_end: d.expected_end,
            everyone: d.everyone,
            nas: d.nas,
            postcodes: d.postcodes,
            cities: d.cities,
            created_at: n.created_at,
            updated_at: n.updated_at,
            resolved_at: n.resolved_at,
            mail_sent_at: n.mail_claimed_at,
        }
    }
}

/// The fields of a POST, PUT or PATCH. Times: RFC 3339, a Warsaw wall-clock time
/// (`2026-01-31 13:00`) or Unix seconds. On a change, the fields given replace the stored
/// ones (`expected_end: ""` clears it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeRequest {
    pub title: Option<String>,
    pub body: Option<String>,
    pub severity: Option<String>,
    pub starts_at: Option<String>,
    pub expected_end: Option<String>,
    pub everyone: Option<bool>,
    pub nas: Option<Vec<String>>,
    pub postcodes: Option<Vec<String>>,
    pub cities: Option<Vec<String>>,
}

fn bad_time(what: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    super::attribution::parse_instant(what, text).map_err(|e| ApiError::bad_request(e.to_string()))
}

impl NoticeRequest {
    /// A new notice from these fields (`severity` required, `starts_at` now by default).
    pub fn new_draft(self) -> Result<NoticeDraft, ApiError> {
        if self.severity.is_none() {
            return Err(ApiError::bad_request(
                "severity: required (info, maintenance or outage)",
            ));
        }
        let base = NoticeDraft {
            title: String::new(),
            body: String::new(),
            severity: Severity::Info,
            starts_at: OffsetDateTime::now_utc(),
            expected_end: None,
            everyone: false,
            nas: Vec::new(),
            postcodes: Vec::new(),
            cities: Vec::new(),
        };
        self.onto(base)
    }

    /// `base` with this request's fields put in, checked.
    pub fn onto(self, mut d: NoticeDraft) -> Result<NoticeDraft, ApiError> {
        if let Some(t) = self.title {
            d.title = t;
        }
        if let Some(b) = self.body {
            d.body = b;
        }
        if let Some(s) = self.severity {
            d.severity = s.parse().map_err(|_| {
                let known: Vec<&str> = Severity::ALL.iter().map(|v| v.as_str()).collect();
                ApiError::bad_request(format!(
                    "unknown severity {s:?}: one of {}",
                    known.join(", ")
                ))
            })?;
        }
        if let Some(s) = self.starts_at {
            d.starts_at = bad_time("starts_at", &s)?;
        }
        if let Some(e) = self.expected_end {
            d.expected_end = match e.trim() {
                "" => None,
                t => Some(bad_time("expected_end", t)?),
            };
        }
        if let Some(e) = self.everyone {
            d.everyone = e;
        }
        if let Some(v) = self.nas {
            d.nas = v;
        }
        if let Some(v) = self.postcodes {
            d.postcodes = v;
        }
        if let Some(v) = self.cities {
            d.cities = v;
        }
        d.starts_at = notices::stored_time(d.starts_at);
        d.expected_end = d.expected_end.map(notices::stored_time);
        d.normalized().map_err(notice_error)
    }
}

/// Bad input is 400 naming the field; a missing notice 404.
fn notice_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { id, .. } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no notice {id}"))
        }
        e @ StoreError::Invalid { .. } => ApiError::bad_request(e.to_string()),
        other => ApiError::internal("notice write failed", &other),
    }
}

async fn load(state: &AppState, id: i64) -> Result<Notice, ApiError> {
    notices::get(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("notice lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no notice {id}")))
}

/// `POST /api/v1/notices`: a new notice (`title`, `severity` and a target required;
/// `starts_at` now when not given). 201 with the notice.
pub(super) async fn create(
    caller: OpsCaller,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: NoticeRequest = json_body(body)?;
    let draft = req.new_draft()?;
    let detail = format!("{} {:?}", draft.severity, draft.title);
    let d = draft.clone();
    let id = audited(&state, &caller, "ops_notice_create", &detail, move |tx| {
        Box::pin(async move { notices::create(tx, &d).await.map_err(notice_error) })
    })
    .await?;
    crate::web::notices::changed(&state);
    let n = load(&state, id).await?;
    Ok(json_response(StatusCode::CREATED, &NoticeBody::from(n)))
}

/// `PUT` or `PATCH /api/v1/notices/{id}`: change what a notice says or whom it touches.
pub(super) async fn update(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "notice")?;
    let req: NoticeRequest = json_body(body)?;
    let stored = load(&state, id).await?;
    let draft = req.onto(stored.draft)?;
    audited(
        &state,
        &caller,
        "ops_notice_update",
        &format!("notice {id}"),
        move |tx| {
            Box::pin(async move { notices::update(tx, id, &draft).await.map_err(notice_error) })
        },
    )
    .await?;
    crate::web::notices::changed(&state);
    Ok(json_response(
        StatusCode::OK,
        &NoticeBody::from(load(&state, id).await?),
    ))
}

/// `POST /api/v1/notices/{id}/resolve`: the notice leaves the panel (again: no change).
pub(super) async fn resolve(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "notice")?;
    audited(
        &state,
        &caller,
        "ops_notice_resolve",
        &format!("notice {id}"),
        move |tx| Box::pin(async move { notices::resolve(tx, id).await.map_err(notice_error) }),
    )
    .await?;
    crate::web::notices::changed(&state);
    Ok(json_response(
        StatusCode::OK,
        &NoticeBody::from(load(&state, id).await?),
    ))
}

/// `GET /api/v1/notices?status=open|all&page=&per_page=`: newest first (open: not
/// resolved, the default).
pub(super) async fn list(
    _caller: OpsCaller,
    State(state): State<AppState>,
    q: Result<Query<super::office::ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = list_params(q)?;
    let which = match q.status.as_deref().map(str::trim) {
        None | Some("open") => Listing::Open,
        Some("all") => Listing::All,
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "unknown status {s:?}: one of open, all"
            )))
        }
    };
    let page: Page = q.page();
    let found = notices::list(&state.db, which, page)
        .await
        .map_err(|e| ApiError::internal("notice list failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &PageBody::of(found, NoticeBody::from),
    ))
}

/// `GET /api/v1/notices/{id}`.
pub(super) async fn one(
    _caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "notice")?;
    Ok(json_response(
        StatusCode::OK,
        &NoticeBody::from(load(&state, id).await?),
    ))
}
