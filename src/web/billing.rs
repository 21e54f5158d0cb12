//! Płatności (balance, charges and payments, transfer QR code) and e-Faktury (consent, invoice list, print page, PDF).

use axum::Router;

use super::AppState;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
