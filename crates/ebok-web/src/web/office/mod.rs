//! Contact with the customer office (BOK): the ISP's contact block, tickets written from the
//! panel with their threads and replies; the service catalogue with orders from subscribers
//! and enquiries from visitors; news and FAQ, whose Markdown is rendered here with raw HTML
//! and unsafe links neutralised.
//!
//! Rooms: [`tickets`] (Kontakt), `orders` (Zamawianie usług), `news` (Aktualności, FAQ),
//! [`markdown`] (the sanitiser they render with).

mod markdown;
mod news;
mod orders;
#[cfg(test)]
mod tests;
mod tickets;

use news::{faq, news, news_item};
use orders::{order, orders};
use tickets::{close_ticket, contact, reply, ticket, write};

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::auth::limited_message;
use super::error::PanelError;
use super::i18n::{Lang, Tr};
use super::pages::{Authed, Ctx};
use super::paging::PageQuery;
use super::ratelimit::Rule;
use super::AppState;
use ebok_store::repo::Page;

/// Enquiries (orders without an account) from one IP.
pub(crate) const ENQUIRY_IP: Rule = Rule {
    limit: 5,
    window: Duration::from_secs(3600),
};
/// Messages to the office (new tickets and replies) and orders of one panel account.
pub(crate) const MESSAGE_ACCOUNT: Rule = Rule {
    limit: 20,
    window: Duration::from_secs(3600),
};

const TICKETS_PER_PAGE: u32 = 10;
const ORDERS_PER_PAGE: u32 = 10;
const NEWS_PER_PAGE: u32 = 10;
const FAQ_PER_PAGE: u32 = 50;

const MAX_SUBJECT: usize = 200;
const MAX_MESSAGE: usize = 5000;
const MAX_NOTE: usize = 2000;
const MAX_CONTACT: usize = 200;

/// The routes of this page group.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/kontakt", get(contact).post(write))
        .route("/kontakt/{id}", get(ticket).post(reply))
        .route("/kontakt/{id}/zamknij", post(close_ticket))
        .route("/zamawianie", get(orders).post(order))
        .route("/aktualnosci", get(news))
        .route("/aktualnosci/{id}", get(news_item))
        .route("/faq", get(faq))
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// `?strona=N` (page number) and `?wyslano=1` (the notice after a form was sent).
#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    wyslano: String,
    /// `?zamkniete=1`: the notice after a ticket was closed.
    #[serde(default)]
    zamkniete: String,
}

impl ListQuery {
    fn page(&self, size: u32) -> Page {
        self.page.page(size)
    }

    fn sent(&self) -> bool {
        !self.wyslano.is_empty()
    }
}

/// A text of at most `max` characters, or the message for the field; `required` names the
/// message for an empty one (none: the field may stay empty).
fn check_text(t: Tr, value: &str, max: usize, required: Option<&str>) -> Option<String> {
    let n = value.trim().chars().count();
    if let (Some(key), 0) = (required, n) {
        Some(t.t(key).to_owned())
    } else if n > max {
        Some(t.f("office.too_long", &[("max", &max.to_string())]))
    } else {
        None
    }
}

/// A phone number as people type it: digits with spaces, dashes, dots, brackets, a leading
/// plus; 9 to 15 digits.
fn valid_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (9..=15).contains(&digits)
        && phone.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
        })
}

/// Count an attempt against `rule`; the page's message when over the limit.
async fn over_limit(
    state: &AppState,
    ctx: &Ctx,
    key: &str,
    rule: Rule,
) -> Result<Option<String>, Response> {
    match state.panel.limiter.hit(key, rule).await {
        Ok(d) => Ok(limited_message(ctx, &d)),
        Err(e) => Err(PanelError::from(e).into_response()),
    }
}

/// Mail the customer office (in Polish) when its address is configured.
fn mail_office(state: &AppState, subject_key: &str, body_key: &str, args: &[(&str, &str)]) {
    let to = state.config.isp.email.trim();
    if !to.is_empty() {
        state.mail(Tr::new(Lang::Pl), to, subject_key, body_key, args);
    }
}

/// Mail the subscriber (in the language of the page they used) at their account's address,
/// when that address is confirmed: an unconfirmed one may be a typo, someone else's.
fn mail_subscriber(
    state: &AppState,
    t: Tr,
    a: &Authed,
    subject_key: &str,
    body_key: &str,
    args: &[(&str, &str)],
) {
    if a.account.email_confirmed_at.is_some() {
        state.mail(t, &a.account.email, subject_key, body_key, args);
    }
}

/// Who is writing, for the office's mail: "Jan Kowalski (login jan.kowalski)".
async fn who(state: &AppState, a: &Authed) -> String {
    let name = match ebok_store::subscribers::subscriber(&state.db, a.account.subscriber_id).await {
        Ok(Some(s)) => s.display_name(),
        _ => String::new(),
    };
    format!("{name} ({})", a.account.login).trim().to_owned()
}
