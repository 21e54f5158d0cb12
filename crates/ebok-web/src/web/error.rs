//! The panel's one error type for a failure inside a handler (a database or store error, a
//! task that did not finish): a handler returns `Result<Response, PanelError>` and uses `?`.
//!
//! The error is logged where it turns into an answer (by [`super::pages::log_failure`]); the
//! answer is a bare 500 carrying [`Failed`], which [`super::request::panel_layer`] (it has the
//! state and the caller's language) replaces with the calm error page
//! [`super::pages::error_page`] renders.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failure inside a panel handler; only its text is kept, for the log.
///
/// Any error that displays converts into it, so `?` works on `sqlx`, store, `anyhow` and
/// join errors alike. (It does not implement `Display` itself: that keeps the blanket
/// `From` coherent with `From<T> for T`.)
#[derive(Debug)]
pub struct PanelError {
    message: String,
}

impl PanelError {
    /// The text that goes to the log.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::fmt::Display> From<E> for PanelError {
    fn from(e: E) -> PanelError {
        PanelError {
            message: e.to_string(),
        }
    }
}

/// Marks an answer that [`super::request::panel_layer`] replaces with the panel's error page
/// (status 500, "something went wrong" in the caller's language).
#[derive(Clone, Copy, Debug)]
pub struct Failed;

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        super::pages::log_failure(&self.message);
        let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        resp.extensions_mut().insert(Failed);
        resp
    }
}
