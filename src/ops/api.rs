//! The operators' JSON API (`/api/v1/…`), authenticated by bearer tokens whose SHA-256
//! digests are in the configuration.

use axum::Router;

use crate::web::AppState;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
}
