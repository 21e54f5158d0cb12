//! E-mail confirmation: the mail with the link, the page that confirms, and a new link when
//! one no longer works.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;

use super::recovery::EmailForm;
use super::{NoticePage, CONFIRM_TTL};
use crate::web::auth::limited_message;
use crate::web::i18n::Tr;
use crate::web::pages::{render, Chrome, Ctx, FormErrors};
use crate::web::ratelimit::{self, Reservation};
use crate::web::register::valid_email;
use crate::web::{limits, AppState};
use ebok_store::auth::{self as tokens, TokenPurpose};
use ebok_store::panel;

#[derive(Template)]
#[template(path = "confirm_email.html")]
struct ConfirmPage {
    c: Chrome,
    /// How long a confirmation link works, in hours ([`CONFIRM_TTL`]).
    hours: String,
    v: ConfirmView,
}

/// What the confirmation page shows.
#[derive(Default)]
struct ConfirmView {
    /// The address a working link confirms (the page shows its button); `None`: the form
    /// asking for a new link.
    email: Option<String>,
    /// A link was followed and does not work (used, replaced by a newer one, or expired).
    link_failed: bool,
    /// The form asking for a new link was sent: the page says so and nothing else.
    sent: bool,
    resend_email: String,
    errors: FormErrors,
}

/// Whole hours of a link's validity, for the pages and mails that state it.
fn hours(ttl: time::Duration) -> String {
    ttl.whole_hours().to_string()
}

/// Whole minutes of a link's validity.
pub fn minutes(ttl: time::Duration) -> String {
    ttl.whole_minutes().to_string()
}

async fn confirm_page(state: &AppState, ctx: &Ctx, v: ConfirmView, status: StatusCode) -> Response {
    // The token stays out of the path the language switch comes back to.
    let c = Chrome::new(state, ctx, "/email/ponownie").await;
    let hours = hours(CONFIRM_TTL);
    render(status, &ConfirmPage { c, hours, v })
}

/// Mail the confirmation link of `token` to `to`.
pub(crate) fn mail_confirmation(state: &AppState, t: Tr, to: &str, login: &str, token: &str) {
    let link = state.link(&format!("/email/{token}"));
    state.mail(
        t,
        to,
        "mail.confirm_subject",
        "mail.confirm_body",
        &[
            ("login", login),
            ("link", &link),
            ("hours", &hours(CONFIRM_TTL)),
        ],
    );
}

/// The link from a confirmation mail shows a button; only the POST confirms, so mail
/// scanners that open links confirm nothing.
pub(crate) async fn confirm_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Result<Response, PanelError> {
    let g = tokens::peek_token(&state.db, &token, TokenPurpose::ConfirmEmail).await?;
    let status = if g.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let v = ConfirmView {
        link_failed: g.is_none(),
        email: g.and_then(|g| g.email),
        ..ConfirmView::default()
    };
    Ok(confirm_page(&state, &ctx, v, status).await)
}

/// `/email/ponownie`: the form asking for a new confirmation link.
pub(crate) async fn resend_form(State(state): State<AppState>, ctx: Ctx) -> Response {
    confirm_page(&state, &ctx, ConfirmView::default(), StatusCode::OK).await
}

/// A new confirmation link for every account still waiting for this address to be
/// confirmed, mailed to that address. The answer is the same whether or not any account
/// waits for it, and the mail goes out in the background, as in [`super::recovery::recover`].
pub async fn resend(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<EmailForm>,
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let email = f.email.trim().to_owned();
    let mut errors = FormErrors::default();
    if errors.require(t, "email", &email, "required.email") && !valid_email(&email) {
        errors.add("email", t.t("field.email_format"));
    }
    if !errors.is_empty() {
        let v = ConfirmView {
            resend_email: email,
            errors,
            ..ConfirmView::default()
        };
        return Ok(confirm_page(&state, &ctx, v, StatusCode::UNPROCESSABLE_ENTITY).await);
    }
    let ip_key = format!("confirm:ip:{}", crate::web::request::limit_key(ctx.info.ip));
    let email_key = format!("confirm:email:{}", email.to_lowercase());
    let keys = [
        (ip_key.as_str(), limits::CONFIRM_IP),
        (email_key.as_str(), limits::CONFIRM_EMAIL),
    ];
    match ratelimit::reserve(&*state.panel.limiter, &keys).await {
        // Every request counts, sent or not: the reservation is kept.
        Ok(Reservation::Granted(_)) => {}
        Ok(Reservation::Limited(d)) => {
            let msg = limited_message(&ctx, &d).unwrap_or_default();
            let v = ConfirmView {
                resend_email: email,
                errors: FormErrors::whole(msg),
                ..ConfirmView::default()
            };
            return Ok(confirm_page(&state, &ctx, v, StatusCode::TOO_MANY_REQUESTS).await);
        }
        Err(e) => return Err(e.into()),
    }
    state
        .audit(
            &ctx.actor(),
            "confirmation_resend_requested",
            Some(ctx.info.ip),
            "",
        )
        .await;
    let bg = state.clone();
    let to = email.clone();
    let work = bg.panel.mail_work.clone();
    work.spawn(async move {
        let waiting = match tokens::awaiting_confirmation(&bg.db, &to).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "confirmation resend lookup");
                return;
            }
        };
        for account_id in waiting {
            let sent = async {
                let Some(a) = panel::panel_account(&bg.db, account_id).await? else {
                    return Ok::<_, anyhow::Error>(());
                };
                let mut tx = bg.db.begin().await?;
                let token = tokens::issue_token(
                    &mut tx,
                    a.id,
                    TokenPurpose::ConfirmEmail,
                    Some(&to),
                    CONFIRM_TTL,
                )
                .await?;
                tx.commit().await?;
                mail_confirmation(&bg, t, &to, &a.login, &token);
                Ok(())
            }
            .await;
            if let Err(e) = sent {
                tracing::error!(error = %e, "confirmation resend");
            }
        }
    });
    let v = ConfirmView {
        sent: true,
        ..ConfirmView::default()
    };
    Ok(confirm_page(&state, &ctx, v, StatusCode::OK).await)
}

pub(crate) async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let done = async {
        let mut tx = state.db.begin().await?;
        let Some(g) = tokens::take_token(&mut tx, &token, TokenPurpose::ConfirmEmail).await? else {
            tx.rollback().await?;
            return Ok::<_, anyhow::Error>(None);
        };
        let email = g.email.clone().unwrap_or_default();
        let account = panel::panel_account(&state.db, g.account_id).await?;
        if let Some(a) = &account {
            if !a.email.eq_ignore_ascii_case(&email) {
                panel::set_email(&mut tx, a.id, &email).await?;
            }
            panel::confirm_email(&mut tx, a.id).await?;
            ebok_store::audit::append(
                &mut tx,
                &format!("panel:{}", a.login),
                "email_confirmed",
                Some(ctx.info.ip),
                "",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(email))
    }
    .await;
    Ok(match done? {
        Some(email) => {
            let c = Chrome::new(&state, &ctx, "/")
                .await
                .notice(t.f("email.confirmed", &[("email", &email)]));
            render(
                StatusCode::OK,
                &NoticePage {
                    c,
                    title: t.t("email.confirm_title").to_owned(),
                },
            )
        }
        None => {
            let v = ConfirmView {
                link_failed: true,
                ..ConfirmView::default()
            };
            confirm_page(&state, &ctx, v, StatusCode::NOT_FOUND).await
        }
    })
}
