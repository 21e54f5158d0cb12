//! Adres IP and PPPoE: the caller's address and the subscriber's live sessions, PPPoE login and password reveal, restart of the connection.

use axum::Router;

use super::AppState;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
