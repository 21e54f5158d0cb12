//! The subscribers' panel (Polish by default, English on request), served with the
//! operators' JSON API by [`crate::app`] on `[web] listen`, over [`crate::state::AppState`].
//!
//! Panel rooms: [`pages`] (layout, home, errors, language), [`auth`] (login, second
//! factor, logout), [`register`] (registration from one's own line), [`account`]
//! (recovery, e-mail confirmation, settings, TOTP); [`paging`] (lists a page at a time);
//! [`notices`] (outage and maintenance notices: banner, dashboard, mail).
//! Every panel request passes
//! [`request::panel_layer`]: caller IP, language, CSRF check on POST, security headers.

/// Run `$body` inside a write transaction on `$db`, committed when the body finishes; a
/// `?` in the body gives up and the transaction rolls back. Gives `anyhow::Result<body>`.
macro_rules! in_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        async {
            let mut $tx = $db.begin().await?;
            let out = $body;
            $tx.commit().await?;
            Ok::<_, anyhow::Error>(out)
        }
        .await
    };
}

pub mod account;
pub mod auth;
pub mod billing;
pub mod dashboard;
pub mod documents;
pub mod download;
pub mod error;
pub mod host;
pub mod i18n;
pub mod line;
pub mod notices;
pub mod office;
pub mod pages;
pub mod paging;
pub mod passwords;
pub mod qr;
pub mod ratelimit;
pub mod redirect;
pub mod register;
pub mod request;
pub mod serve;
pub mod session_store;
pub mod settings;
pub mod stats;
pub mod totp;

#[cfg(test)]
pub(crate) mod tests;

use axum::routing::{get, post};
use axum::Router;

pub use crate::state::{AppState, Panel};
use ratelimit::Rule;

/// Attempts allowed before "try again in …".
pub mod limits {
    use super::Rule;
    use std::time::Duration;

    const fn rule(limit: u32, minutes: u64) -> Rule {
        Rule {
            limit,
            window: Duration::from_secs(minutes * 60),
        }
    }
    /// Failed logins from one IP.
    pub(crate) const LOGIN_IP: Rule = rule(20, 15);
    /// Failed logins of one account (whatever the IP).
    pub(crate) const LOGIN_ACCOUNT: Rule = rule(5, 15);
    /// Wrong second-factor codes of one account.
    pub(crate) const CODE_ACCOUNT: Rule = rule(5, 15);
    /// Registration attempts from one IP.
    pub(crate) const REGISTER_IP: Rule = rule(10, 60);
    /// Recovery requests from one IP / for one e-mail address.
    pub(crate) const RECOVER_IP: Rule = rule(5, 60);
    pub(crate) const RECOVER_EMAIL: Rule = rule(3, 60);
    /// Requests for a new e-mail confirmation link from one IP / for one address.
    pub(crate) const CONFIRM_IP: Rule = rule(5, 60);
    pub(crate) const CONFIRM_EMAIL: Rule = rule(3, 60);
    /// Wrong current passwords in the settings.
    pub(crate) const SETTINGS_ACCOUNT: Rule = rule(5, 15);
}

/// The panel's routes (the pages and their stylesheet), behind the panel's request layer;
/// [`crate::app`] puts it beside the ops API.
pub(crate) fn panel_router(state: AppState) -> Router<AppState> {
    let panel = Router::new()
        .route("/", get(pages::home))
        .route("/panel", get(dashboard::panel))
        .route("/jezyk/{code}", get(pages::language))
        .route("/logowanie", get(auth::login_form).post(auth::login))
        .route("/logowanie/kod", get(auth::code_form).post(auth::code))
        .route("/wyloguj", post(auth::logout))
        .route("/rejestracja", get(register::form).post(register::submit))
        .route(
            "/przywracanie",
            get(account::recover_form).post(account::recover),
        )
        .route(
            "/przywracanie/{token}",
            get(account::reset_form).post(account::reset),
        )
        .route(
            "/email/ponownie",
            get(account::resend_form).post(account::resend),
        )
        .route(
            "/email/{token}",
            get(account::confirm_form).post(account::confirm),
        )
        .route("/ustawienia", get(account::settings))
        .route("/ustawienia/haslo", post(account::change_password))
        .route("/ustawienia/email", post(account::change_email))
        .route(
            "/ustawienia/wyloguj-wszedzie",
            post(account::logout_everywhere),
        )
        .route(
            "/ustawienia/2fa",
            get(account::totp_setup).post(account::totp_enable),
        )
        .route("/ustawienia/2fa/wylacz", post(account::totp_disable))
        .route("/ustawienia/2fa/kody", post(account::new_recovery_codes))
        .route("/ustawienia/sesje/zakoncz", post(account::end_session))
        .merge(billing::routes())
        .merge(line::routes())
        .merge(stats::routes())
        .merge(office::routes())
        .merge(documents::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request::panel_layer,
        ));
    Router::new()
        .route("/static/ebok.css", get(pages::stylesheet))
        .merge(panel)
}
