//! The whole HTTP application: the panel's routes and the ops API (`/api/v1`) side by side
//! over one [`AppState`], counted by route, and answering only to the panel's host names.

use axum::Router;

use crate::ops;
use crate::state::AppState;
use crate::web::{self, host};

/// The panel and the ops API as one router.
pub fn app(state: AppState) -> Router {
    let hosts = state.panel.hosts.clone();
    Router::new()
        .nest("/api/v1", ops::api::router())
        .merge(web::panel_router(state.clone()))
        .route_layer(axum::middleware::from_fn(ops::metrics::track_route))
        .layer(axum::middleware::from_fn(ops::metrics::track_unmatched))
        // Outermost: a request for another host name reaches nothing (see `web::host`).
        .layer(axum::middleware::from_fn_with_state(hosts, host::check))
        .with_state(state)
}
