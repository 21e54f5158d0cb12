//! Statystyki: traffic per day and month as server-rendered SVG charts with tables, and the session history.

use axum::Router;

use super::AppState;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
