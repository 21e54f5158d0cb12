//! The customer office's work: tickets (read, answer, close), service orders and their
//! status, news.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::OpsCaller;
use super::reads::SubscriberView;
use super::{json_response, ApiError};
use crate::state::AppState;
use crate::web::i18n::{Lang, Tr};
use ebok_store::content::{self, OrderStatus, ServiceOrder};
use ebok_store::panel::{self, Author, Ticket, TicketMessage, TicketStatus};
use ebok_store::repo::{Page, Paged, StoreError};
use ebok_store::{audit, DbTx};

/// Default and largest page of the office's lists.
const OFFICE_PAGE: u32 = 50;
const OFFICE_PAGE_MAX: u32 = 200;
/// Longest answer the office may send (the panel's own limit for messages).
const MAX_ANSWER: usize = 20_000;

#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    pub(super) status: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

impl ListParams {
    pub(super) fn page(&self) -> Page {
        Page::new(
            self.page.unwrap_or(1),
            self.per_page.unwrap_or(OFFICE_PAGE).min(OFFICE_PAGE_MAX),
        )
    }

    /// The `status` parameter as one of `T`'s texts, `default` when absent.
    fn status<T>(&self, default: T, all: &[T]) -> Result<T, ApiError>
    where
        T: std::str::FromStr + std::fmt::Display + Copy,
    {
        match &self.status {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| {
                let known: Vec<String> = all.iter().map(|v| v.to_string()).collect();
                ApiError::bad_request(format!("unknown status {s:?}: one of {}", known.join(", ")))
            }),
        }
    }
}

pub(super) fn list_params(
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<ListParams, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("bad query parameters: {}", e.body_text())))
}

/// A numeric id from the path.
pub(super) fn path_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("the {what} id must be a number")))
}

/// A small JSON body of the office's endpoints (unknown fields refused).
pub(super) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "the request body could not be read"))?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// Run `change` and the audit entry in one transaction.
pub(super) async fn audited<T, F>(
    state: &AppState,
    caller: &OpsCaller,
    action: &str,
    detail: &str,
    change: F,
) -> Result<T, ApiError>
where
    F: for<'t> FnOnce(&'t mut DbTx) -> BoxFuture<'t, Result<T, ApiError>>,
{
    let mut tx = state
        .db
        .begin()
        .await
        .map_err(|e| ApiError::internal("cannot begin a transaction", &e))?;
    let out = match change(&mut tx).await {
        Ok(out) => out,
        Err(e) => {
            if let Err(rb) = tx.rollback().await {
                tracing::warn!(error = %rb, "ops API: rollback failed");
            }
            return Err(e);
        }
    };
    if let Err(e) = audit::append(&mut tx, &caller.actor(), action, caller.ip, detail).await {
        let _ = tx.rollback().await;
        return Err(ApiError::internal("cannot write the audit log", &e));
    }
    tx.commit()
        .await
        .map_err(|e| ApiError::internal("cannot commit", &e))?;
    Ok(out)
}

/// Reads of personal data are audited too (as lookups are).
pub(super) async fn audit_read(
    state: &AppState,
    caller: &OpsCaller,
    action: &str,
    detail: &str,
) -> Result<(), ApiError> {
    audited(state, caller, action, detail, |_| {
        Box::pin(async { Ok(()) })
    })
    .await
}

pub(super) fn office_store_error(context: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { kind, id } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no {} {id}", kind.as_str()))
        }
        e @ StoreError::Invalid { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        other => ApiError::internal(context, &other),
    }
}

#[derive(Debug, Serialize)]
pub(super) struct PageBody<T> {
    items: Vec<T>,
    total: u64,
    page: u32,
    pages: u32,
}

impl<T> PageBody<T> {
    pub(super) fn of<S>(p: Paged<S>, f: impl FnMut(S) -> T) -> PageBody<T> {
        let (page, pages, total) = (p.page.number, p.pages(), p.total);
        PageBody {
            items: p.items.into_iter().map(f).collect(),
            total,
            page,
            pages,
        }
    }
}

#[derive(Debug, Serialize)]
struct TicketView {
    id: i64,
    subscriber_id: Option<i64>,
    contact: Option<String>,
    subject: String,
    status: TicketStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Ticket> for TicketView {
    fn from(t: Ticket) -> TicketView {
        TicketView {
            id: t.id,
            subscriber_id: t.subscriber_id,
            contact: t.contact,
            subject: t.subject,
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct MessageView {
    id: i64,
    author: Author,
    body: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<TicketMessage> for MessageView {
    fn from(m: TicketMessage) -> MessageView {
        MessageView {
            id: m.id,
            author: m.author,
            body: m.body,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct TicketBody {
    ticket: TicketView,
    /// Who wrote it, when a subscriber did.
    subscriber: Option<SubscriberView>,
    messages: Vec<MessageView>,
}

async fn load_ticket(state: &AppState, id: i64) -> Result<Ticket, ApiError> {
    panel::ticket(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("ticket lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no ticket {id}")))
}

async fn ticket_body(state: &AppState, t: Ticket) -> Result<TicketBody, ApiError> {
    let messages = panel::ticket_messages(&state.db, t.id)
        .await
        .map_err(|e| ApiError::internal("ticket messages failed", &e))?;
    let subscriber = match t.subscriber_id {
        Some(id) => ebok_store::subscribers::subscriber(&state.db, id)
            .await
            .map_err(|e| ApiError::internal("subscriber lookup failed", &e))?
            .map(SubscriberView::from),
        None => None,
    };
    Ok(TicketBody {
        ticket: t.into(),
        subscriber,
        messages: messages.into_iter().map(MessageView::from).collect(),
    })
}

/// `GET /api/v1/tickets?status=open&page=1&per_page=50`: the tickets in one status (`open`
/// by default: waiting for the office), longest waiting first.
pub(super) async fn tickets(
    caller: OpsCaller,
    State(state): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = list_params(q)?;
    let status = q.status(TicketStatus::Open, TicketStatus::ALL)?;
    let page = q.page();
    audit_read(
        &state,
        &caller,
        "ops_tickets_list",
        &format!("status {status}, page {}", page.number),
    )
    .await?;
    let found = panel::tickets_by_status(&state.db, status, page)
        .await
        .map_err(|e| ApiError::internal("ticket list failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &PageBody::of(found, TicketView::from),
    ))
}

/// `GET /api/v1/tickets/{id}`: one ticket, its author and its messages, oldest first.
pub(super) async fn ticket(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "ticket")?;
    audit_read(&state, &caller, "ops_ticket_read", &format!("ticket {id}")).await?;
    let t = load_ticket(&state, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &ticket_body(&state, t).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRequest {
    body: String,
}

#[derive(Debug, Serialize)]
struct AnswerBody {
    #[serde(flatten)]
    ticket: TicketBody,
    /// The subscriber's confirmed panel e-mail the answer was mailed to, if any.
    mailed_to: Option<String>,
}

/// The language a subscriber last wrote to the office in (recorded with each ticket and
/// reply in the audit log); Polish when unknown.
async fn ticket_language(state: &AppState, login: &str, ticket_id: i64) -> Lang {
    let entries = audit::recent_by_actor(&state.db, &format!("panel:{login}"), 200)
        .await
        .unwrap_or_default();
    let prefix = format!("ticket {ticket_id}; lang ");
    let of = |e: &audit::AuditEntry| {
        matches!(e.action.as_str(), "ticket_created" | "ticket_reply")
            .then(|| e.detail.strip_prefix(&prefix).and_then(Lang::from_code))
            .flatten()
    };
    entries.iter().find_map(of).unwrap_or(Lang::Pl)
}

/// `POST /api/v1/tickets/{id}/answer` with `{"body": "…"}`: the office's message (status
/// `answered`), mailed to the subscriber's confirmed panel e-mail in their language.
pub(super) async fn answer_ticket(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "ticket")?;
    let req: AnswerRequest = json_body(body)?;
    let text = req.body.trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: must not be empty",
        ));
    }
    if text.chars().count() > MAX_ANSWER {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("body: at most {MAX_ANSWER} characters"),
        ));
    }
    let message = text.clone();
    let message_id = audited(
        &state,
        &caller,
        "ops_ticket_answer",
        &format!("ticket {id}"),
        move |tx| {
            Box::pin(async move {
                panel::add_ticket_message(tx, id, Author::Office, &message)
                    .await
                    .map_err(|e| office_store_error("answering a ticket failed", e))
            })
        },
    )
    .await?;
    let t = load_ticket(&state, id).await?;
    let mut mailed_to = None;
    if let Some(sub) = t.subscriber_id {
        let account = panel::panel_account_of_subscriber(&state.db, sub)
            .await
            .map_err(|e| ApiError::internal("panel account lookup failed", &e))?;
        if let Some(a) = account.filter(|a| a.email_confirmed_at.is_some() && !a.disabled) {
            let lang = ticket_language(&state, &a.login, id).await;
            let link = state.link(&format!("/kontakt/{id}"));
            state.mail(
                Tr::new(lang),
                &a.email,
                "office.mail_answer_subject",
                "office.mail_answer_body",
                &[
                    ("id", &id.to_string()),
                    ("subject", &t.subject),
                    ("message", &text),
                    ("link", &link),
                ],
            );
            mailed_to = Some(a.email);
        }
    }
    tracing::info!(token = %caller.name, ticket = id, message = message_id, "ops API: ticket answered");
    Ok(json_response(
        StatusCode::OK,
        &AnswerBody {
            ticket: ticket_body(&state, t).await?,
            mailed_to,
        },
    ))
}

/// `POST /api/v1/tickets/{id}/close`: the matter is settled (a reply from the subscriber
/// opens it again).
pub(super) async fn close_ticket(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "ticket")?;
    audited(
        &state,
        &caller,
        "ops_ticket_close",
        &format!("ticket {id}"),
        move |tx| {
            Box::pin(async move {
                panel::set_ticket_status(tx, id, TicketStatus::Closed)
                    .await
                    .map_err(|e| office_store_error("closing a ticket failed", e))
            })
        },
    )
    .await?;
    let t = load_ticket(&state, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &ticket_body(&state, t).await?,
    ))
}

#[derive(Debug, Serialize)]
struct OrderView {
    id: i64,
    subscriber_id: Option<i64>,
    service_id: i64,
    contact_name: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    note: String,
    status: OrderStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<ServiceOrder> for OrderView {
    fn from(o: ServiceOrder) -> OrderView {
        OrderView {
            id: o.id,
            subscriber_id: o.subscriber_id,
            service_id: o.service_id,
            contact_name: o.contact_name,
            contact_email: o.contact_email,
            contact_phone: o.contact_phone,
            note: o.note,
            status: o.status,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// `GET /api/v1/orders?status=new&page=1&per_page=50`: service orders and enquiries in one
/// status (`new` by default), oldest first.
pub(super) async fn orders(
    caller: OpsCaller,
    State(state): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = list_params(q)?;
    let status = q.status(OrderStatus::New, OrderStatus::ALL)?;
    let page = q.page();
    audit_read(
        &state,
        &caller,
        "ops_orders_list",
        &format!("status {status}, page {}", page.number),
    )
    .await?;
    let found = content::service_orders_by_status_page(&state.db, status, page)
        .await
        .map_err(|e| ApiError::internal("order list failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &PageBody::of(found, OrderView::from),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    status: String,
}

/// `PUT /api/v1/orders/{id}/status` with `{"status": "in_progress"}` (`new`, `in_progress`,
/// `done`, `rejected`); the subscriber sees it in the panel.
pub(super) async fn order_status(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "order")?;
    let req: StatusRequest = json_body(body)?;
    let status: OrderStatus = req.status.parse().map_err(|_| {
        let known: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("status: one of {}", known.join(", ")),
        )
    })?;
    let before = content::service_order(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("order lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no service order {id}")))?;
    audited(
        &state,
        &caller,
        "ops_order_status",
        &format!("order {id}: {} -> {status}", before.status),
        move |tx| {
            Box::pin(async move {
                content::set_service_order_status(tx, id, status)
                    .await
                    .map_err(|e| office_store_error("changing an order failed", e))
            })
        },
    )
    .await?;
    let order = content::service_order(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("order lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no service order {id}")))?;
    Ok(json_response(StatusCode::OK, &OrderView::from(order)))
}

#[derive(Debug, Serialize)]
struct DeletedBody {
    deleted: bool,
}

/// `DELETE /api/v1/news/{ext_id}`: withdraw a news item (publishing and editing is
/// `PUT /api/v1/news`).
pub(super) async fn delete_news(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(ext_id): Path<String>,
) -> Result<Response, ApiError> {
    let key = ext_id.clone();
    audited(
        &state,
        &caller,
        "ops_news_delete",
        &format!("news {ext_id}"),
        move |tx| {
            Box::pin(async move {
                match content::delete_news(tx, &key).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no news item {key:?}"),
                    )),
                    Err(e) => Err(ApiError::internal("deleting news failed", &e)),
                }
            })
        },
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &DeletedBody { deleted: true },
    ))
}
