//! Access recovery (a single-use link by mail, valid [`RESET_TTL`], the same answer whether or
//! not the address is known), e-mail confirmation (and a new link when one no longer
//! works), and the account settings: password, e-mail, the account's sessions (each other
//! one can be ended, or all), the optional TOTP second factor and its recovery codes.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::auth::{check_second_factor, limited_message, CodeForm};
use super::i18n::Tr;
use super::pages::{error_page, hash_failed, internal, render, Authed, Chrome, Ctx, FormErrors};
use super::ratelimit::{self, Reservation};
use super::register::{new_password_rules, valid_email};
use super::request::{set_cookie, SESSION_COOKIE};
use super::{limits, passwords, session_store, totp, AppState};
use crate::store::auth::{self as tokens, TokenPurpose};
use crate::store::panel;

/// How long a recovery link works.
pub const RESET_TTL: time::Duration = time::Duration::minutes(30);
/// How long an e-mail confirmation link works.
pub const CONFIRM_TTL: time::Duration = time::Duration::hours(24);

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage {
    c: Chrome,
    email: String,
    errors: FormErrors,
    sent: bool,
    /// How long a recovery link works ([`RESET_TTL`]).
    minutes: String,
}

pub async fn recover_form(State(state): State<AppState>, ctx: Ctx) -> Response {
    let c = Chrome::new(&state, &ctx, "/przywracanie").await;
    render(
        StatusCode::OK,
        &RecoverPage {
            c,
            email: String::new(),
            errors: FormErrors::default(),
            sent: false,
            minutes: minutes(RESET_TTL),
        },
    )
}

#[derive(serde::Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

/// Mail a reset link to every confirmed account with this address. The page says the same
/// whatever happened, and the mail goes out in the background so timing tells nothing.
pub async fn recover(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<EmailForm>,
) -> Response {
    let email = f.email.trim().to_owned();
    let again = |errors: FormErrors, sent: bool, status: StatusCode| {
        let state = state.clone();
        let email = email.clone();
        let ctx = &ctx;
        async move {
            let c = Chrome::new(&state, ctx, "/przywracanie").await;
            render(
                status,
                &RecoverPage {
                    c,
                    email,
                    errors,
                    sent,
                    minutes: minutes(RESET_TTL),
                },
            )
        }
    };
    let mut errors = FormErrors::default();
    if errors.require(ctx.t, "email", &email, "required.email") && !valid_email(&email) {
        errors.add("email", ctx.t.t("field.email_format"));
    }
    if !errors.is_empty() {
        return again(errors, false, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let limiter = &state.panel.limiter;
    for (key, rule) in [
        (
            format!("recover:ip:{}", super::request::limit_key(ctx.info.ip)),
            limits::RECOVER_IP,
        ),
        (
            format!("recover:email:{}", email.to_lowercase()),
            limits::RECOVER_EMAIL,
        ),
    ] {
        match limiter.hit(&key, rule).await {
            Ok(d) => {
                if let Some(msg) = limited_message(&ctx, &d) {
                    return again(FormErrors::whole(msg), false, StatusCode::TOO_MANY_REQUESTS)
                        .await;
                }
            }
            Err(e) => return internal(&state, &ctx, e).await,
        }
    }
    state
        .audit("visitor", "recovery_requested", Some(ctx.info.ip), "")
        .await;
    let bg = state.clone();
    let t = ctx.t;
    let email_bg = email.clone();
    tokio::spawn(async move {
        let email = email_bg;
        let accounts = match panel::panel_accounts_by_email(&bg.db, &email).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "recovery lookup");
                return;
            }
        };
        for a in accounts
            .into_iter()
            .filter(|a| a.email_confirmed_at.is_some() && !a.disabled)
        {
            let token = async {
                let mut tx = bg.db.begin().await?;
                let token = tokens::issue_token(
                    &mut tx,
                    a.id,
                    TokenPurpose::ResetPassword,
                    None,
                    RESET_TTL,
                )
                .await?;
                tx.commit().await?;
                Ok::<_, anyhow::Error>(token)
            }
            .await;
            match token {
                Ok(token) => {
                    let link = bg.link(&format!("/przywracanie/{token}"));
                    bg.mail(
                        t,
                        &a.email,
                        "mail.reset_subject",
                        "mail.reset_body",
                        &[
                            ("login", &a.login),
                            ("link", &link),
                            ("minutes", &minutes(RESET_TTL)),
                        ],
                    );
                }
                Err(e) => tracing::error!(error = %e, "recovery token"),
            }
        }
    });
    again(FormErrors::default(), true, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    c: Chrome,
    login: String,
    valid: bool,
    errors: FormErrors,
    /// How long a recovery link works ([`RESET_TTL`]).
    minutes: String,
}

async fn reset_page(
    state: &AppState,
    ctx: &Ctx,
    login: String,
    valid: bool,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    // The token stays out of the page path shown to the language switch.
    let c = Chrome::new(state, ctx, "/przywracanie").await;
    render(
        status,
        &ResetPage {
            c,
            login,
            valid,
            errors,
            minutes: minutes(RESET_TTL),
        },
    )
}

pub async fn reset_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Response {
    match tokens::peek_token(&state.db, &token, TokenPurpose::ResetPassword).await {
        Ok(Some(g)) => match panel::panel_account(&state.db, g.account_id).await {
            Ok(Some(a)) => {
                reset_page(
                    &state,
                    &ctx,
                    a.login,
                    true,
                    FormErrors::default(),
                    StatusCode::OK,
                )
                .await
            }
            Ok(None) => {
                reset_page(
                    &state,
                    &ctx,
                    String::new(),
                    false,
                    FormErrors::default(),
                    StatusCode::NOT_FOUND,
                )
                .await
            }
            Err(e) => internal(&state, &ctx, e).await,
        },
        Ok(None) => {
            reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => internal(&state, &ctx, e).await,
    }
}

#[derive(serde::Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

/// Set the new password from a recovery link: the link is used up, every session of the
/// account ends, and the subscriber is told their identifier.
pub async fn reset(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
    Form(f): Form<NewPasswordForm>,
) -> Response {
    let t = ctx.t;
    let grant = match tokens::peek_token(&state.db, &token, TokenPurpose::ResetPassword).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let account = match panel::panel_account(&state.db, grant.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let ids = identifiers_of(&state, account.subscriber_id).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut errors = FormErrors::default();
    new_password_rules(
        t,
        &mut errors,
        &f.password,
        &f.password2,
        &account.login,
        &ids,
    );
    if !errors.is_empty() {
        return reset_page(
            &state,
            &ctx,
            account.login,
            true,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let hash = match passwords::hash(&f.password).await {
        Ok(h) => h,
        Err(e) => return hash_failed(&state, &ctx, e).await,
    };
    let done = async {
        let mut tx = state.db.begin().await?;
        // Used up here, inside the same transaction: two parallel posts cannot both win.
        if tokens::take_token(&mut tx, &token, TokenPurpose::ResetPassword)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return Ok::<_, anyhow::Error>(false);
        }
        panel::set_password_hash(&mut tx, account.id, &hash).await?;
        crate::store::audit::append(
            &mut tx,
            &format!("panel:{}", account.login),
            "password_reset",
            Some(ctx.info.ip),
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
    .await;
    match done {
        Ok(true) => {}
        Ok(false) => {
            return reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => return internal(&state, &ctx, e).await,
    }
    if let Err(e) = state.panel.sessions.delete_all(account.id, None).await {
        tracing::error!(error = %e, "ending sessions after a password reset");
    }
    state.mail(
        t,
        &account.email,
        "mail.password_changed_subject",
        "mail.password_changed_body",
        &[("login", &account.login)],
    );
    let c = Chrome::new(&state, &ctx, "/logowanie")
        .await
        .notice(t.f("recover.reset_done", &[("login", &account.login)]));
    render(
        StatusCode::OK,
        &NoticePage {
            c,
            title: t.t("recover.reset_title").to_owned(),
        },
    )
}

/// PESEL and NIP of a subscriber, which a password must not be.
async fn identifiers_of(state: &AppState, subscriber_id: i64) -> Vec<String> {
    match crate::store::subscribers::subscriber(&state.db, subscriber_id).await {
        Ok(Some(s)) => s
            .pesel
            .map(|p| p.as_str().to_owned())
            .into_iter()
            .chain(s.nip.map(|n| n.as_str().to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    c: Chrome,
    title: String,
}

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
pub fn mail_confirmation(state: &AppState, t: Tr, to: &str, login: &str, token: &str) {
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
pub async fn confirm_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Response {
    match tokens::peek_token(&state.db, &token, TokenPurpose::ConfirmEmail).await {
        Ok(g) => {
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
            confirm_page(&state, &ctx, v, status).await
        }
        Err(e) => internal(&state, &ctx, e).await,
    }
}

/// `/email/ponownie`: the form asking for a new confirmation link.
pub async fn resend_form(State(state): State<AppState>, ctx: Ctx) -> Response {
    confirm_page(&state, &ctx, ConfirmView::default(), StatusCode::OK).await
}

/// A new confirmation link for every account still waiting for this address to be
/// confirmed, mailed to that address. The answer is the same whether or not any account
/// waits for it, and the mail goes out in the background, as in [`recover`].
pub async fn resend(State(state): State<AppState>, ctx: Ctx, Form(f): Form<EmailForm>) -> Response {
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
        return confirm_page(&state, &ctx, v, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let ip_key = format!("confirm:ip:{}", super::request::limit_key(ctx.info.ip));
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
            return confirm_page(&state, &ctx, v, StatusCode::TOO_MANY_REQUESTS).await;
        }
        Err(e) => return internal(&state, &ctx, e).await,
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
    tokio::spawn(async move {
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
    confirm_page(&state, &ctx, v, StatusCode::OK).await
}

pub async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Response {
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
            crate::store::audit::append(
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
    match done {
        Ok(Some(email)) => {
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
        Ok(None) => {
            let v = ConfirmView {
                link_failed: true,
                ..ConfirmView::default()
            };
            confirm_page(&state, &ctx, v, StatusCode::NOT_FOUND).await
        }
        Err(e) => internal(&state, &ctx, e).await,
    }
}

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
pub struct SessionRow {
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
struct SettingsForms {
    notice: Option<String>,
    password_errors: FormErrors,
    email_errors: FormErrors,
    new_email: String,
    totp_errors: FormErrors,
    codes_errors: FormErrors,
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

async fn settings_page(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    forms: SettingsForms,
    status: StatusCode,
) -> Response {
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
        Err(e) => return internal(state, ctx, e).await,
    };
    let resend_to = pending_email
        .clone()
        .or_else(|| (!confirmed).then(|| a.account.email.clone()));
    let listed = match state.panel.sessions.list(a.account.id).await {
        Ok(l) => l,
        Err(e) => return internal(state, ctx, e).await,
    };
    let this = session_store::session_id(&a.token);
    let sessions = listed
        .into_iter()
        .map(|l| SessionRow {
            current: this.as_deref() == Some(l.id.as_str()),
            started: crate::tz::format_datetime(l.session.created_at),
            last_seen: crate::tz::format_datetime(l.session.last_seen_at),
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
    render(
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
    )
}

pub async fn settings(State(state): State<AppState>, ctx: Ctx) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
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
const TOTP_FORM: &str = "totp-";
const CODES_FORM: &str = "codes-";

/// Check the current password in the settings (throttled per account): a message on the
/// form's `current` field when it is missing or wrong (or the limit is reached); `Err` is
/// the answer to give instead of the page.
async fn check_current(
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
        Err(e) => return Err(internal(state, ctx, e).await),
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
pub struct ChangePasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

/// New password: the current one is required; every other session of the account ends.
pub async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<ChangePasswordForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
    };
    let t = ctx.t;
    let mut errors = FormErrors::scoped(PASSWORD_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return resp;
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
        Err(e) => return hash_failed(&state, &ctx, e).await,
    };
    let done = in_tx!(state.db, |tx| {
        panel::set_password_hash(&mut tx, a.account.id, &hash).await?;
        ctx.audit(&mut tx, "password_changed", "").await?;
    });
    if let Err(e) = done {
        return internal(&state, &ctx, e).await;
    }
    if let Err(e) = state
        .panel
        .sessions
        .delete_all(a.account.id, Some(&a.token))
        .await
    {
        return internal(&state, &ctx, e).await;
    }
    state.mail(
        t,
        &a.account.email,
        "mail.password_changed_subject",
        "mail.password_changed_body",
        &[("login", &a.account.login)],
    );
    Redirect::to("/ustawienia?n=password_changed").into_response()
}

#[derive(serde::Deserialize)]
pub struct ChangeEmailForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    email: String,
}

/// New e-mail: confirmed by a link sent to the new address; the old address is told.
pub async fn change_email(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<ChangeEmailForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
    };
    let t = ctx.t;
    let email = f.email.trim().to_owned();
    let mut errors = FormErrors::scoped(EMAIL_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return resp;
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
    let token = match token {
        Ok(t) => t,
        Err(e) => return internal(&state, &ctx, e).await,
    };
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

/// End every session of the account, this one included.
pub async fn logout_everywhere(State(state): State<AppState>, ctx: Ctx) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
    };
    if let Err(e) = state.panel.sessions.delete_all(a.account.id, None).await {
        return internal(&state, &ctx, e).await;
    }
    state
        .audit(&ctx.actor(), "logout_everywhere", Some(ctx.info.ip), "")
        .await;
    let mut resp = Redirect::to("/?n=logged_out_all").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", ctx.info.secure, Some(0)),
    );
    resp
}

#[derive(serde::Deserialize)]
pub struct EndSessionForm {
    #[serde(default)]
    id: String,
}

/// End one other session of the account (another browser, a forgotten computer). An id
/// that is not one of this account's sessions is a 404, like any other's object; this
/// session is ended by "Wyloguj".
pub async fn end_session(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<EndSessionForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    if session_store::session_id(&a.token).as_deref() == Some(f.id.as_str()) {
        return Redirect::to("/ustawienia").into_response();
    }
    match state.panel.sessions.end(a.account.id, &f.id).await {
        Ok(true) => {}
        Ok(false) => return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await,
        Err(e) => return internal(&state, &ctx, e).await,
    }
    state
        .audit(&ctx.actor(), "session_ended", Some(ctx.info.ip), "")
        .await;
    Redirect::to("/ustawienia?n=session_ended").into_response()
}

#[derive(serde::Deserialize)]
pub struct CurrentPasswordForm {
    #[serde(default)]
    current: String,
}

/// New recovery codes for the second factor (the old ones stop working), after the
/// password; shown once.
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<CurrentPasswordForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    if !a.account.totp_enabled() {
        return Redirect::to("/ustawienia").into_response();
    }
    let mut errors = FormErrors::scoped(CODES_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return resp;
    }
    if !errors.is_empty() {
        let forms = SettingsForms {
            codes_errors: errors,
            ..SettingsForms::default()
        };
        return settings_page(&state, &ctx, a, forms, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let codes = totp::recovery_codes(RECOVERY_CODES);
    let hashes: Vec<String> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
    let done = in_tx!(state.db, |tx| {
        tokens::replace_recovery_codes(&mut tx, a.account.id, &hashes).await?;
        ctx.audit(&mut tx, "totp_recovery_codes_replaced", "")
            .await?;
    });
    if let Err(e) = done {
        return internal(&state, &ctx, e).await;
    }
    codes_page(&state, &ctx, "settings.codes_replaced", codes).await
}

/// Recovery codes shown once, with a notice saying what happened.
async fn codes_page(state: &AppState, ctx: &Ctx, notice_key: &str, codes: Vec<String>) -> Response {
    let c = Chrome::new(state, ctx, "/ustawienia")
        .await
        .notice(ctx.t.t(notice_key));
    let mut resp = render(StatusCode::OK, &TotpCodesPage { c, codes });
    // Shown once: not kept by the browser's cache either.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// How many recovery codes an account gets.
const RECOVERY_CODES: usize = 10;

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpSetupPage {
    c: Chrome,
    secret: String,
    qr: String,
    /// The same key as a link: on a phone, the authenticator app opens it.
    uri: String,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "totp_codes.html")]
struct TotpCodesPage {
    c: Chrome,
    codes: Vec<String>,
}

/// Enrolment: a new secret kept as pending until a code from the app confirms it.
pub async fn totp_setup(State(state): State<AppState>, ctx: Ctx) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
    };
    if a.account.totp_enabled() {
        return Redirect::to("/ustawienia").into_response();
    }
    let secret = totp::TotpSecret::generate();
    let saved = in_tx!(state.db, |tx| {
        tokens::set_totp_pending(&mut tx, a.account.id, Some(&secret.to_base32())).await?;
    });
    if let Err(e) = saved {
        return internal(&state, &ctx, e).await;
    }
    totp_setup_page(
        &state,
        &ctx,
        a,
        &secret,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

async fn totp_setup_page(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    secret: &totp::TotpSecret,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let issuer = match state.config.isp.name.as_str() {
        "" => "e-BOK",
        name => name,
    };
    let uri = totp::otpauth_uri(issuer, &a.account.login, secret);
    let c = Chrome::new(state, ctx, "/ustawienia/2fa").await;
    let b32 = secret.to_base32();
    let grouped = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    render(
        status,
        &TotpSetupPage {
            c,
            secret: grouped,
            qr: totp::qr_svg(&uri, ctx.t.t("settings.totp_qr_label")),
            uri,
            errors,
        },
    )
}

#[derive(serde::Deserialize)]
pub struct TotpForm {
    #[serde(flatten)]
    code: CodeForm,
    #[serde(default)]
    current: String,
}

pub async fn totp_enable(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<TotpForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
    };
    let Some(secret) = a
        .account
        .totp_pending_secret
        .as_deref()
        .and_then(totp::TotpSecret::from_base32)
    else {
        return Redirect::to("/ustawienia").into_response();
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let Some(step) = totp::verify(secret.as_bytes(), f.code.given(), now, None) else {
        let mut errors = FormErrors::default();
        if errors.require(ctx.t, "code", f.code.given(), "required.app_code") {
            errors.add("code", ctx.t.t("login.code_failed"));
        }
        return totp_setup_page(
            &state,
            &ctx,
            a,
            &secret,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let codes = totp::recovery_codes(RECOVERY_CODES);
    let hashes: Vec<String> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
    let done = in_tx!(state.db, |tx| {
        tokens::enable_totp(
            &mut tx,
            a.account.id,
            &secret.to_base32(),
            step as i64,
            &hashes,
        )
        .await?;
        ctx.audit(&mut tx, "totp_enabled", "").await?;
    });
    if let Err(e) = done {
        return internal(&state, &ctx, e).await;
    }
    codes_page(&state, &ctx, "settings.totp_enabled", codes).await
}

/// Turning the second factor off needs the password and a current code.
pub async fn totp_disable(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<TotpForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return super::pages::to_login();
    };
    let mut errors = FormErrors::scoped(TOTP_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return resp;
    }
    if errors.require(ctx.t, "code", f.code.given(), "required.code") && errors.is_empty() {
        match check_second_factor(&state, &a.account, f.code.given()).await {
            Ok(true) => {}
            Ok(false) => errors.add("code", ctx.t.t("login.code_failed")),
            Err(e) => return internal(&state, &ctx, e).await,
        }
    }
    if !errors.is_empty() {
        return settings_page(
            &state,
            &ctx,
            a,
            SettingsForms {
                totp_errors: errors,
                ..Default::default()
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let done = in_tx!(state.db, |tx| {
        tokens::disable_totp(&mut tx, a.account.id).await?;
        ctx.audit(&mut tx, "totp_disabled", "").await?;
    });
    if let Err(e) = done {
        return internal(&state, &ctx, e).await;
    }
    Redirect::to("/ustawienia?n=totp_disabled").into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use time::OffsetDateTime;

    use super::*;
    use crate::web::tests::*;

    /// Every `id="…"` of a page, for "no two elements share an id".
    fn ids(body: &str) -> Vec<&str> {
        body.split(" id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect()
    }

    fn assert_unique_ids(body: &str) {
        let all = ids(body);
        let mut seen = std::collections::HashSet::new();
        for id in &all {
            assert!(seen.insert(*id), "id {id} twice in:\n{body}");
        }
    }

    /// The form summary: a `role="alert"` list linking to each field in error, each field's
    /// own message beside it (so each message twice, no more), a message naming every empty
    /// required field, typed text kept but no secret.
    #[tokio::test]
    async fn form_errors_are_summarised_and_name_each_empty_field() {
        let h = Harness::sqlite().await;
        let mut b = h.browser(JAN_IP);
        let r = b
            .submit(
                "/rejestracja",
                "/rejestracja",
                &[
                    ("login", "jan.kowalski"),
                    ("password", GOOD_PASSWORD),
                    ("password2", ""),
                    ("email", ""),
                    ("id", JAN_PESEL),
                    ("contract", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let body = &r.body;
        let summary = body
            .split("<div class=\"error-summary\" role=\"alert\"")
            .nth(1)
            .expect("a summary")
            .split("</div>")
            .next()
            .unwrap();
        for (field, msg) in [
            (
                "password2",
                "Wpisz hasło jeszcze raz, aby wykluczyć literówkę.",
            ),
            ("email", "Wpisz adres e-mail."),
            ("contract", "Wpisz numer umowy."),
        ] {
            assert!(
                summary.contains(&format!("<a href=\"#{field}\">{msg}</a>")),
                "{field}: {summary}"
            );
            assert_eq!(body.matches(msg).count(), 2, "{msg}: summary and field");
            assert!(body.contains(&format!("id=\"{field}\"")));
        }
        assert!(!summary.contains("href=\"#login\""), "the login was fine");
        assert!(body.contains("value=\"jan.kowalski\""), "typed text kept");
        assert!(!body.contains(GOOD_PASSWORD), "no password echoed");
        assert!(!body.contains(JAN_PESEL), "the PESEL is not shown back");
        assert!(
            body.contains("wpisz go jeszcze raz"),
            "and the page says why"
        );
        assert_unique_ids(body);

        // The login form: each empty field by name; a refusal is the summary alone.
        let r = b
            .submit(
                "/logowanie",
                "/logowanie",
                &[("login", ""), ("password", "")],
            )
            .await;
        assert!(r
            .body
            .contains("<a href=\"#login\">Wpisz identyfikator.</a>"));
        assert!(r.body.contains("<a href=\"#password\">Wpisz hasło.</a>"));
        let r = b
            .submit(
                "/logowanie",
                "/logowanie",
                &[("login", "nikt"), ("password", "złe hasło 123")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.body
                .matches("Nieprawidłowy identyfikator lub hasło.")
                .count(),
            1
        );
        assert!(r.body.contains("value=\"nikt\"") && !r.body.contains("złe hasło"));
        h.finish().await;
    }

    /// The page a confirmation link opens states the validity the token was given, and
    /// offers a new link: sent to an address that waits, the same answer for any other,
    /// rate-limited.
    #[tokio::test]
    async fn confirmation_page_tells_the_validity_and_sends_a_new_link() {
        let h = Harness::sqlite().await;
        let mut b = h.browser(JAN_IP);
        let r = b
            .register("jan.kowalski", "jan@example.pl", JAN_PESEL, "UM/2013/001")
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let first = h.mails_to("jan@example.pl", 1).await;
        assert!(first[0].contains("Link działa 24 godz."), "{}", first[0]);
        let old = link_in(&first[0], "https://ebok.example.pl/email/");
        let old = old.trim_start_matches("https://ebok.example.pl").to_owned();
        let page = b.get(&old).await;
        assert_eq!(page.status, StatusCode::OK);

        let mut v = h.browser(STRANGER_IP);
        let r = v.get("/email/nie-ma-takiego").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body.contains("minęło 24 godz."), "{}", r.body);
        assert!(!r.body.contains("30 min"));
        assert!(r.body.contains("action=\"/email/ponownie\""));

        // An address nobody waits for and one that waits: the same page.
        let r = v
            .post("/email/ponownie", &[("email", "obcy@example.pl")])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let unknown = r.body.clone();
        // Asked for directly (no link followed), the page blames no link.
        let ask = v.get("/email/ponownie").await;
        assert!(!ask.body.contains("Ten link jest nieważny"));
        let r = v
            .post("/email/ponownie", &[("email", "JAN@example.pl")])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let strip = |s: &str| s.split("<main").nth(1).unwrap().to_owned();
        assert_eq!(strip(&unknown), strip(&r.body));
        assert!(r.body.contains("Działa 24 godz."));
        let mails = h.mails_to("jan@example.pl", 2).await;
        assert_eq!(mails.len(), 2);
        let new = link_in(&mails[1], "https://ebok.example.pl/email/");
        let new = new.trim_start_matches("https://ebok.example.pl").to_owned();
        assert_ne!(new, old);
        assert!(h.mails_to("obcy@example.pl", 1).await.is_empty());
        // The new link replaced the old one, and confirms.
        assert_eq!(b.get(&old).await.status, StatusCode::NOT_FOUND);
        let r = b.submit(&new, &new, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("został potwierdzony"));
        // A confirmed address waits no more: nothing is sent.
        v.get("/email/ponownie").await;
        v.post("/email/ponownie", &[("email", "jan@example.pl")])
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(h.mails_to("jan@example.pl", 2).await.len(), 2);
        // Limited per address like the other mail-sending forms (two asked for so far).
        for _ in 2..limits::CONFIRM_EMAIL.limit {
            v.get("/email/ponownie").await;
            let r = v
                .post("/email/ponownie", &[("email", "jan@example.pl")])
                .await;
            assert_eq!(r.status, StatusCode::OK);
        }
        v.get("/email/ponownie").await;
        let r = v
            .post("/email/ponownie", &[("email", "jan@example.pl")])
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        h.finish().await;
    }

    /// Settings: unique ids across its forms, the address waiting for confirmation, the
    /// account's sessions with this one marked and the others ended one by one (another
    /// account's session: 404).
    #[tokio::test]
    async fn settings_show_pending_email_and_end_other_sessions() {
        let h = Harness::sqlite().await;
        let mut jan = jan_registered(&h).await;
        let page = jan.get("/ustawienia").await;
        assert_unique_ids(&page.body);
        assert!(!page.body.contains("czeka na potwierdzenie"));
        assert!(
            !page.body.contains("action=\"/email/ponownie\""),
            "confirmed: nothing to resend"
        );
        assert!(page.body.contains("id=\"pw-current\"") && page.body.contains("id=\"em-current\""));

        let r = jan
            .post(
                "/ustawienia/email",
                &[("current", GOOD_PASSWORD), ("email", "jan.nowy@example.pl")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = jan.get("/ustawienia").await;
        assert!(page.body.contains("czeka na potwierdzenie"));
        assert!(page.body.contains("jan.nowy@example.pl"));
        assert!(page
            .body
            .contains("name=\"email\" value=\"jan.nowy@example.pl\""));

        // A second browser of Jan's, and one of Anna's.
        let mut other = h.browser(JAN_IP);
        assert_eq!(
            other.login("jan.kowalski", GOOD_PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        let page = jan.get("/ustawienia").await;
        assert_eq!(page.body.matches("<strong>ta sesja</strong>").count(), 1);
        let ends: Vec<&str> = page
            .body
            .split("name=\"id\" value=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(ends.len(), 1, "one other session");
        assert!(page.body.contains(JAN_IP));
        let mut anna = anna_registered(&h).await;
        let mut anna2 = h.browser(ANNA_IP);
        anna2.login("anna.nowak", GOOD_PASSWORD).await;
        let annas = anna.get("/ustawienia").await;
        let anna_id = annas
            .body
            .split("name=\"id\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        jan.get("/ustawienia").await;
        let r = jan
            .post("/ustawienia/sesje/zakoncz", &[("id", &anna_id)])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(anna2.get("/panel").await.status, StatusCode::OK);

        jan.get("/ustawienia").await;
        let r = jan
            .post("/ustawienia/sesje/zakoncz", &[("id", ends[0])])
            .await;
        assert_eq!(r.location(), "/ustawienia?n=session_ended");
        assert_eq!(other.get("/panel").await.location(), "/logowanie");
        assert_eq!(jan.get("/panel").await.status, StatusCode::OK);
        let page = jan.get("/ustawienia?n=session_ended").await;
        assert!(page.body.contains("Sesja zakończona."));
        assert!(!page.body.contains("name=\"id\" value=\""));
        let log = crate::store::audit::recent_by_actor(&h.state.db, "panel:jan.kowalski", 20)
            .await
            .unwrap();
        assert!(log.iter().any(|e| e.action == "session_ended"));
        h.finish().await;
    }

    fn code_now(secret: &totp::TotpSecret) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
        format!("{:06}", totp::code_at(secret.as_bytes(), now))
    }

    fn codes_in(body: &str) -> Vec<String> {
        body.split("<li><code>")
            .skip(1)
            .map(|s| s.split("</code>").next().unwrap().to_owned())
            .collect()
    }

    /// Enrolment shows an `otpauth://` link beside the QR code and numeric code inputs;
    /// new recovery codes need the password, are shown once and replace the old ones.
    #[tokio::test]
    async fn totp_link_numeric_inputs_and_new_recovery_codes() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        let page = b.get("/ustawienia/2fa").await;
        assert!(page
            .body
            .contains("href=\"otpauth://totp/Testnet:jan.kowalski?secret="));
        assert!(page.body.contains("inputmode=\"numeric\""));
        assert!(page.body.contains("autocomplete=\"one-time-code\""));
        let secret: String = page
            .body
            .split("<code>")
            .nth(1)
            .unwrap()
            .split("</code>")
            .next()
            .unwrap()
            .replace(' ', "");
        let secret = totp::TotpSecret::from_base32(&secret).unwrap();
        let r = b.post("/ustawienia/2fa", &[("code", "")]).await;
        assert!(r.body.contains("Wpisz kod, który pokazuje aplikacja."));
        let r = b
            .post("/ustawienia/2fa", &[("code", &code_now(&secret))])
            .await;
        let old = codes_in(&r.body);
        assert_eq!(old.len(), 10);

        let page = b.get("/ustawienia").await;
        assert_unique_ids(&page.body);
        assert!(
            page.body.contains("id=\"totp-code\"") && page.body.contains("inputmode=\"numeric\"")
        );
        let r = b
            .post("/ustawienia/2fa/kody", &[("current", "nie to hasło")])
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r
            .body
            .contains("<a href=\"#codes-current\">Obecne hasło jest nieprawidłowe.</a>"));
        b.get("/ustawienia").await;
        let r = b
            .post("/ustawienia/2fa/kody", &[("current", GOOD_PASSWORD)])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
        let new = codes_in(&r.body);
        assert_eq!(new.len(), 10);
        assert!(new.iter().all(|c| !old.contains(c)));
        assert!(
            !b.get("/ustawienia").await.body.contains(&new[0]),
            "shown once"
        );

        // The old codes stopped working, the new ones work (in their own field).
        let mut c = h.browser(JAN_IP);
        c.login("jan.kowalski", GOOD_PASSWORD).await;
        let r = c
            .submit("/logowanie/kod", "/logowanie/kod", &[("recovery", &old[0])])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = c
            .submit(
                "/logowanie/kod",
                "/logowanie/kod",
                &[("code", ""), ("recovery", &new[0])],
            )
            .await;
        assert_eq!(r.location(), "/panel");
        h.finish().await;
    }
}
