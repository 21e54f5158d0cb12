//! Płatności (balance, charges and payments with the running balance, the subscriber's own
//! bank account and a transfer QR code for what is due) and e-Faktury (the consent to
//! electronic invoices, the invoice list, each invoice as a print page and as a PDF made
//! here with an embedded font), plus the mail to consenting subscribers about a new invoice
//! and the payment reminders.
//!
//! Rooms: [`payments`], [`invoices`] (consent, list, print page), [`invoice_pdf`] (the PDF
//! layout engine), [`invoice_mail`] (the mail about a new invoice), [`ksef`] (the FA(3)
//! XML download and the KSeF verification QR code), [`reminders`] (before and after the due
//! date).

mod invoice_mail;
mod invoice_pdf;
mod invoices;
pub mod ksef;
mod payments;
mod reminders;
#[cfg(test)]
mod tests;

pub use invoice_mail::*;
pub use invoice_pdf::*;
pub use invoices::*;
pub use payments::*;
pub use reminders::{run_payment_reminders, RemindersConfig};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use time::{Date, OffsetDateTime};

use super::error::PanelError;
use super::pages::{error_page, Ctx};
use super::AppState;
use ebok_store::subscribers::{self, Subscriber};

/// Rows per page of the ledger and of the invoice list.
pub(crate) const PAGE_SIZE: u32 = 20;

/// The routes of this page group.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/platnosci", get(payments))
        .route("/e-faktury", get(invoices))
        .route("/e-faktury/zgoda", post(consent))
        // `{id}`, `{id}.pdf` and `{id}.xml` (the KSeF file): one segment, told apart by
        // [`invoice`].
        .route("/e-faktury/{id}", get(invoice))
}

fn today() -> Date {
    ebok_store::tz::warsaw_date(OffsetDateTime::now_utc())
}

/// The logged-in subscriber, or the answer to give instead (login page, 404, 500).
async fn subscriber_of(state: &AppState, ctx: &Ctx) -> Result<Subscriber, Response> {
    let Some(auth) = &ctx.auth else {
        return Err(super::pages::to_login());
    };
    match subscribers::subscriber(&state.db, auth.account.subscriber_id).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(error_page(state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => Err(PanelError::from(e).into_response()),
    }
}
