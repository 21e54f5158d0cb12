//! Contact with the customer office (tickets), the service catalogue and orders, news and FAQ.

use axum::Router;

use super::AppState;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
