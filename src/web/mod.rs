//! The HTTP side: one axum router on `[web] listen` serving the operators' JSON API under
//! `/api/v1` (and, with the next issues, the subscriber panel).

pub mod ratelimit;
pub mod session_store;
pub mod totp;

use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::sessions::LiveSessions;
use crate::store::Db;

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub live: Arc<dyn LiveSessions>,
    pub config: Arc<Config>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", crate::ops::api::router())
        .with_state(state)
}
