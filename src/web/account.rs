//! Access recovery (a single-use link by mail, valid 30 minutes, the same answer whether or
//! not the address is known), e-mail confirmation, and the account settings: password,
//! e-mail, log out everywhere, the optional TOTP second factor.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::auth::{check_second_factor, limited_message};
use super::pages::{hash_failed, internal, render, Authed, Chrome, Ctx, FormErrors};
use super::ratelimit::{self, Reservation};
use super::register::valid_email;
use super::request::{set_cookie, SESSION_COOKIE};
use super::{limits, passwords, totp, AppState};
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
                },
            )
        }
    };
    if !valid_email(&email) {
        let mut errors = FormErrors::default();
        errors.add("email", ctx.t.t("field.email_format"));
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
                    let errors = FormErrors {
                        form: Some(msg),
                        ..Default::default()
                    };
                    return again(errors, false, StatusCode::TOO_MANY_REQUESTS).await;
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
                        &[("login", &a.login), ("link", &link)],
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
    if f.password != f.password2 {
        errors.add("password2", t.t("field.password_mismatch"));
    }
    if let Err(w) = passwords::check_new(&f.password, &account.login, &ids) {
        errors.add("password", t.t(w.key()));
    }
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
    email: Option<String>,
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
            let c = Chrome::new(&state, &ctx, "/").await;
            let status = if g.is_some() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            render(
                status,
                &ConfirmPage {
                    c,
                    email: g.and_then(|g| g.email),
                },
            )
        }
        Err(e) => internal(&state, &ctx, e).await,
    }
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
            let c = Chrome::new(&state, &ctx, "/").await;
            render(StatusCode::NOT_FOUND, &ConfirmPage { c, email: None })
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
    totp_on: bool,
    codes_left: i64,
    password_errors: FormErrors,
    email_errors: FormErrors,
    new_email: String,
}

/// What a settings answer carries besides the account: a notice, and the two forms'
/// messages and kept input.
#[derive(Default)]
struct SettingsForms {
    notice: Option<String>,
    password_errors: FormErrors,
    email_errors: FormErrors,
    new_email: String,
}

async fn settings_page(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    forms: SettingsForms,
    status: StatusCode,
) -> Response {
    let SettingsForms {
        notice,
        password_errors,
        email_errors,
        new_email,
    } = forms;
    let codes_left = if a.account.totp_enabled() {
        tokens::recovery_codes_left(&state.db, a.account.id)
            .await
            .unwrap_or(0)
    } else {
        0
    };
    let mut c = Chrome::new(state, ctx, "/ustawienia").await;
    c.notice = notice;
    render(
        status,
        &SettingsPage {
            c,
            login: a.account.login.clone(),
            email: a.account.email.clone(),
            email_confirmed: a.account.email_confirmed_at.is_some(),
            totp_on: a.account.totp_enabled(),
            codes_left,
            password_errors,
            email_errors,
            new_email,
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

/// Check the current password in the settings (throttled per account).
async fn current_password_ok(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    given: &str,
) -> Result<Result<(), String>, Response> {
    let key = format!("settings:account:{}", a.account.id);
    // Counted before argon2, given back when the password was right.
    let keys = [(key.as_str(), limits::SETTINGS_ACCOUNT)];
    let reserved = match ratelimit::reserve(&*state.panel.limiter, &keys).await {
        Ok(Reservation::Granted(r)) => r,
        Ok(Reservation::Limited(d)) => {
            return Ok(Err(limited_message(ctx, &d).unwrap_or_default()))
        }
        Err(e) => return Err(internal(state, ctx, e).await),
    };
    match passwords::verify(given, Some(&a.account.password_hash)).await {
        Ok(true) => {
            reserved.give_back().await;
            Ok(Ok(()))
        }
        Ok(false) => {
            drop(reserved);
            state
                .audit(&ctx.actor(), "password_check_failed", Some(ctx.info.ip), "")
                .await;
            Ok(Err(ctx.t.t("field.password_wrong").to_owned()))
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
    let mut errors = FormErrors::default();
    match current_password_ok(&state, &ctx, a, &f.current).await {
        Ok(Ok(())) => {}
        Ok(Err(msg)) => errors.add("current", msg),
        Err(resp) => return resp,
    }
    let ids = identifiers_of(&state, a.account.subscriber_id).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    if f.password != f.password2 {
        errors.add("password2", t.t("field.password_mismatch"));
    }
    if let Err(w) = passwords::check_new(&f.password, &a.account.login, &ids) {
        errors.add("password", t.t(w.key()));
    }
    if !errors.is_empty() {
        return settings_page(
            &state,
            &ctx,
            a,
            SettingsForms {
                password_errors: errors,
                ..Default::default()
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
    let mut errors = FormErrors::default();
    match current_password_ok(&state, &ctx, a, &f.current).await {
        Ok(Ok(())) => {}
        Ok(Err(msg)) => errors.add("current", msg),
        Err(resp) => return resp,
    }
    if !valid_email(&email) {
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
                ..Default::default()
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
    let link = state.link(&format!("/email/{token}"));
    state.mail(
        t,
        &email,
        "mail.confirm_subject",
        "mail.confirm_body",
        &[("login", &a.account.login), ("link", &link)],
    );
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

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpSetupPage {
    c: Chrome,
    secret: String,
    qr: String,
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
            errors,
        },
    )
}

#[derive(serde::Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    code: String,
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
    let Some(step) = totp::verify(secret.as_bytes(), &f.code, now, None) else {
        let errors = FormErrors {
            form: Some(ctx.t.t("login.code_failed").to_owned()),
            ..Default::default()
        };
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
    let codes = totp::recovery_codes(10);
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
    let c = Chrome::new(&state, &ctx, "/ustawienia")
        .await
        .notice(ctx.t.t("settings.totp_enabled"));
    render(StatusCode::OK, &TotpCodesPage { c, codes })
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
    let mut errors = FormErrors::default();
    match current_password_ok(&state, &ctx, a, &f.current).await {
        Ok(Ok(())) => {}
        Ok(Err(msg)) => errors.add("current", msg),
        Err(resp) => return resp,
    }
    if errors.is_empty() {
        match check_second_factor(&state, &a.account, &f.code).await {
            Ok(true) => {}
            Ok(false) => errors.add("code", ctx.t.t("login.code_failed")),
            Err(e) => return internal(&state, &ctx, e).await,
        }
    }
    if !errors.is_empty() {
        let notice = errors
            .fields
            .iter()
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>()
            .join(" ");
        return settings_page(
            &state,
            &ctx,
            a,
            SettingsForms {
                notice: Some(notice),
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
