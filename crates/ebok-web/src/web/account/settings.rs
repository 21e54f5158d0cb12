//! The settings page and its forms for a new password and a new e-mail address.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::email::mail_confirmation;
use super::recovery::identifiers_of;
use super::CONFIRM_TTL;
use crate::web::auth::limited_message;
use crate::web::pages::{hash_failed, render, Authed, Chrome, Ctx, FormErrors};
use crate::web::ratelimit::{self, Reservation};
use crate::web::register::{new_password_rules, valid_email};
use crate::web::{limits, passwords, session_store, AppState};
use ebok_store::auth::{self as tokens, TokenPurpose};
use ebok_store::panel;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    c: Chrome,
    login: String,
    email: String,
    email_confirmed: bool,
    /// A new address asked for and not yet confirmed.
    pending_email: Option<String>,
    /// Where "send the link again" sends it: the pending address, else the account's own
    /// while it is unconfirmed.
    resend_to: Option<String>,
    totp_on: bool,
    codes_left: i64,
    sessions: Vec<SessionRow>,
    forms: SettingsForms,
}

/// One panel session of the account as the settings list it.
pub(crate) struct SessionRow {
    /// What the "end" button sends (see [`session_store::ListedSession::id`]).
    pub id: String,
    pub started: String,
    pub last_seen: String,
    pub ip: String,
    /// The session this page was opened in.
    pub current: bool,
    /// Password given, second factor not (yet).
    pub pending: bool,
}

/// What a settings answer carries besides the account: a notice, and each form's messages
/// and kept input.
pub(super) struct SettingsForms {
    pub(super) notice: Option<String>,
    pub(super) password_errors: FormErrors,
    pub(super) email_errors: FormErrors,
    pub(super) new_email: String,
    pub(super) totp_errors: FormErrors,
    pub(super) codes_errors: FormErrors,
}

impl Default for SettingsForms {
    fn default() -> Self {
        SettingsForms {
            notice: None,
            password_errors: FormErrors::scoped(PASSWORD_FORM),
            email_errors: FormErrors::scoped(EMAIL_FORM),
            new_email: String::new(),
            totp_errors: FormErrors::scoped(TOTP_FORM),
            codes_errors: FormErrors::scoped(CODES_FORM),
        }
    }
}

pub(super) async fn settings_page(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    forms: SettingsForms,
    status: StatusCode,
) -> Result<Response, PanelError> {
    let codes_left = if a.account.totp_enabled() {
        tokens::recovery_codes_left(&state.db, a.account.id)
            .await
            .unwrap_or(0)
    } else {
        0
    };
    let confirmed = a.account.email_confirmed_at.is_some();
    let pending_email = match tokens::pending_email(&state.db, a.account.id).await {
        Ok(p) => p.filter(|p| !p.eq_ignore_ascii_case(&a.account.email)),
        Err(e) => return Err(e.into()),
    };
    let resend_to = pending_email
        .clone()
        .or_else(|| (!confirmed).then(|| a.account.email.clone()));
    let listed = state.panel.sessions.list(a.account.id).await?;
    let this = session_store::session_id(&a.token);
    let sessions = listed
        .into_iter()
        .map(|l| SessionRow {
            current: this.as_deref() == Some(l.id.as_str()),
            started: ebok_store::tz::format_datetime(l.session.created_at),
            last_seen: ebok_store::tz::format_datetime(l.session.last_seen_at),
            ip: l
                .session
                .ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "—".into()),
            pending: l.session.second_factor_pending,
            id: l.id,
        })
        .collect();
    let mut c = Chrome::new(state, ctx, "/ustawienia").await;
    c.notice = forms.notice.clone();
    Ok(render(
        status,
        &SettingsPage {
            c,
            login: a.account.login.clone(),
            email: a.account.email.clone(),
            email_confirmed: confirmed,
            pending_email,
            resend_to,
            totp_on: a.account.totp_enabled(),
            codes_left,
            sessions,
            forms,
        },
    ))
}

pub async fn settings(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    let notice = ctx.flash.map(|k| ctx.t.t(k).to_owned());
    settings_page(
        &state,
        &ctx,
        a,
        SettingsForms {
            notice,
            ..Default::default()
        },
        StatusCode::OK,
    )
    .await
}

/// The settings' forms, each with its own element ids (see [`FormErrors::scope`]).
const PASSWORD_FORM: &str = "pw-";
const EMAIL_FORM: &str = "em-";
pub(super) const TOTP_FORM: &str = "totp-";
pub(super) const CODES_FORM: &str = "codes-";

/// Check the current password in the settings (throttled per account): a message on the
/// form's `current` field when it is missing or wrong (or the limit is reached); `Err` is
/// the answer to give instead of the page.
pub(super) async fn check_current(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    given: &str,
    errors: &mut FormErrors,
) -> Result<(), Response> {
    if !errors.require(ctx.t, "current", given, "required.current") {
        return Ok(());
    }
    let key = format!("settings:account:{}", a.account.id);
    // Counted before argon2, given back when the password was right.
    let keys = [(key.as_str(), limits::SETTINGS_ACCOUNT)];
    let reserved = match ratelimit::reserve(&*state.panel.limiter, &keys).await {
        Ok(Reservation::Granted(r)) => r,
        Ok(Reservation::Limited(d)) => {
            errors.add("current", limited_message(ctx, &d).unwrap_or_default());
            return Ok(());
        }
        Err(e) => return Err(PanelError::from(e).into_response()),
    };
    match passwords::verify(given, Some(&a.account.password_hash)).await {
        Ok(true) => {
            reserved.give_back().await;
            Ok(())
        }
        Ok(false) => {
            drop(reserved);
            state
                .audit(&ctx.actor(), "password_check_failed", Some(ctx.info.ip), "")
                .await;
            errors.add("current", ctx.t.t("field.password_wrong"));
            Ok(())
        }
        Err(e) => {
            // Not a guess that was checked.
            reserved.give_back().await;
            Err(hash_failed(state, ctx, e).await)
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ChangePasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

/// New password: the current one is required; every other session of the account ends.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<ChangePasswordForm>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    let t = ctx.t;
    let mut errors = FormErrors::scoped(PASSWORD_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return Ok(resp);
    }
    let ids = identifiers_of(&state, a.account.subscriber_id).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    new_password_rules(
        t,
        &mut errors,
        &f.password,
        &f.password2,
        &a.account.login,
        &ids,
    );
    if !errors.is_empty() {
        return settings_page(
            &state,
            &ctx,
            a,
            SettingsForms {
                password_errors: errors,
                ..SettingsForms::default()
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let hash = match passwords::hash(&f.password).await {
        Ok(h) => h,
        Err(e) => return Ok(hash_failed(&state, &ctx, e).await),
    };
    let done = in_tx!(state.db, |tx| {
        panel::set_password_hash(&mut tx, a.account.id, &hash).await?;
        ctx.audit(&mut tx, "password_changed", "").await?;
    });
    done?;
    state
        .panel
        .sessions
        .delete_all(a.account.id, Some(&a.token))
        .await?;
    state.mail(
        t,
        &a.account.email,
        "mail.password_changed_subject",
        "mail.password_changed_body",
        &[("login", &a.account.login)],
    );
    Ok(Redirect::to("/ustawienia?n=password_changed").into_response())
}

#[derive(serde::Deserialize)]
pub(crate) struct ChangeEmailForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    email: String,
}

/// New e-mail: confirmed by a link sent to the new address; the old address is told.
pub(crate) async fn change_email(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<ChangeEmailForm>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    let t = ctx.t;
    let email = f.email.trim().to_owned();
    let mut errors = FormErrors::scoped(EMAIL_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return Ok(resp);
    }
    if errors.require(t, "email", &email, "required.new_email") && !valid_email(&email) {
        errors.add("email", t.t("field.email_format"));
    }
    if !errors.is_empty() {
        return settings_page(
            &state,
            &ctx,
            a,
            SettingsForms {
                email_errors: errors,
                new_email: email,
                ..SettingsForms::default()
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let token = in_tx!(state.db, |tx| {
        let token = tokens::issue_token(
            &mut tx,
            a.account.id,
            TokenPurpose::ConfirmEmail,
            Some(&email),
            CONFIRM_TTL,
        )
        .await?;
        ctx.audit(&mut tx, "email_change_requested", "").await?;
        token
    });
    let token = token?;
    mail_confirmation(&state, t, &email, &a.account.login, &token);
    state.mail(
        t,
        &a.account.email,
        "mail.email_changed_subject",
        "mail.email_changed_body",
        &[("login", &a.account.login), ("email", &email)],
    );
    let notice = t.f("settings.email_sent", &[("email", &email)]);
    settings_page(
        &state,
        &ctx,
        a,
        SettingsForms {
            notice: Some(notice),
            ..Default::default()
        },
        StatusCode::OK,
    )
    .await
}
