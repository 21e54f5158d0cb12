//! The operators' JSON API (`/api/v1/…`), authenticated by bearer tokens whose SHA-256
//! digests are in the configuration: upserts pushed by the billing system (the same ones
//! `ebok import` does), the IP → session → subscriber lookup, the customer office's work
//! (tickets, service orders, news), and an unauthenticated health check.
//!
//! Every response body is JSON. Errors are `{"error": "…"}`; a record that cannot be stored
//! adds its position in the request and the offending field:
//! `{"error": "…", "index": 3, "field": "pesel"}`. Database details stay in the log.
//!
//! Rooms: [`auth`] (tokens, the bearer check), [`upserts`], [`reads`] (lookup, health),
//! [`office`] (tickets, orders, news), [`live`] (live sessions), [`attribution`],
//! [`notices`] (outage and maintenance notices).

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::Serialize;

use crate::state::AppState;
use ebok_store::billing::{InvoiceRecord, PaymentRecord};
use ebok_store::content::{FaqRecord, NewsRecord, ServiceRecord};
use ebok_store::subscribers::{
    ContractRecord, IpAssignmentRecord, PppoeAccountRecord, SubscriberRecord,
};

pub use auth::new_token;
use auth::OpsCaller;
use office::{
    answer_ticket, audit_read, close_ticket, delete_news, json_body, order_status, orders, ticket,
    tickets, PageBody,
};
use reads::{health, lookup, ContractView, SessionView, SubscriberView};
use upserts::upsert_route;

pub mod attribution;
mod auth;
mod documents;
mod live;
pub mod notices;
mod office;
mod reads;
#[cfg(test)]
mod tests;
mod upserts;

/// Largest request body accepted by the upsert endpoints; bigger pushes are split by the
/// sender (or go through `ebok import`, which streams).
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long `/health` waits for each store.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    let writes = Router::new();
    let writes = upsert_route::<SubscriberRecord>(writes);
    let writes = upsert_route::<ContractRecord>(writes);
    let writes = upsert_route::<PppoeAccountRecord>(writes);
    let writes = upsert_route::<IpAssignmentRecord>(writes);
    let writes = upsert_route::<InvoiceRecord>(writes);
    let writes = upsert_route::<PaymentRecord>(writes);
    let writes = upsert_route::<ServiceRecord>(writes);
    let writes = upsert_route::<NewsRecord>(writes);
    let writes = upsert_route::<FaqRecord>(writes);
    Router::new()
        .merge(writes.layer(DefaultBodyLimit::max(MAX_BODY)))
        .merge(live::router())
        .merge(documents::router())
        .route("/sessions/lookup", get(lookup))
        .route("/attribution", get(attribution::lookup))
        .route("/attribution/export.csv", get(attribution::export))
        .route("/tickets", get(tickets))
        .route("/tickets/{id}", get(ticket))
        .route("/tickets/{id}/answer", post(answer_ticket))
        .route("/tickets/{id}/close", post(close_ticket))
        .route("/orders", get(orders))
        .route("/orders/{id}/status", put(order_status))
        .route("/news/{ext_id}", delete(delete_news))
        .route("/notices", get(notices::list).post(notices::create))
        .route(
            "/notices/{id}",
            get(notices::one)
                .put(notices::update)
                .patch(notices::update),
        )
        .route("/notices/{id}/resolve", post(notices::resolve))
        .route("/health", get(health))
        .fallback(not_found)
}

// ---------------------------------------------------------------------------------------------
// Errors and JSON responses
// ---------------------------------------------------------------------------------------------

/// An error answer of the ops API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    record: Option<RecordPosition>,
}

/// Which record of a request failed: its index (from 0) and field, when known.
#[derive(Debug, Serialize)]
struct RecordPosition {
    index: usize,
    field: Option<String>,
}

impl ApiError {
    /// What the answer's `error` says.
    pub fn message(&self) -> &str {
        &self.body.error
    }

    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: message.into(),
                record: None,
            },
        }
    }

    /// The same answer for a missing, malformed or unknown token, and for a disabled API.
    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn record(index: usize, field: Option<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error: message.into(),
                record: Some(RecordPosition { index, field }),
            },
        }
    }

    /// A failure of ours: logged in full, answered with a generic 500.
    fn internal(context: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "ops API: {context}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &self.body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON body; never cached (lookups carry personal data).
fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ops API: response not serializable");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}
