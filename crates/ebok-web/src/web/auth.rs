//! Logowanie do panelu: identifier + password (argon2id), throttled per IP and per
//! account; a fresh session id at every login (no fixation); the TOTP step when the
//! subscriber turned it on; logout.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::pages::{hash_failed, render, Chrome, Ctx, FormErrors};
use super::ratelimit::{self, Decision, Reservation};
use super::request::{set_cookie, urlencode, SESSION_COOKIE};
use super::{limits, passwords, totp, AppState};
use ebok_store::{auth as tokens, panel};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    login: String,
    errors: FormErrors,
    /// The page to come back to after logging in; empty for the panel.
    back: String,
}

/// `?wroc=`: the page a visitor asked for before being sent to log in.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Back {
    #[serde(default)]
    wroc: String,
}

/// Where to go after logging in: the page asked for when it is one of the panel's (see
/// [`super::redirect`]), else empty (the panel).
fn back_to(wroc: &str) -> String {
    match super::redirect::local_target(wroc) {
        "/" => String::new(),
        path => path.to_owned(),
    }
}

pub(crate) async fn login_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(back): Query<Back>,
) -> Response {
    let back = back_to(&back.wroc);
    if ctx.auth.is_some() {
        return Redirect::to(if back.is_empty() { "/panel" } else { &back }).into_response();
    }
    let c = Chrome::new(&state, &ctx, "/logowanie").await;
    render(
        StatusCode::OK,
        &LoginPage {
            c,
            login: String::new(),
            errors: FormErrors::default(),
            back,
        },
    )
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    wroc: String,
}

/// "Try again in N min" for a limited decision.
pub(crate) fn limited_message(ctx: &Ctx, d: &Decision) -> Option<String> {
    match d {
        Decision::Limited { retry_after } => {
            let minutes = retry_after.as_secs().div_ceil(60).max(1).to_string();
            Some(ctx.t.f("limit.try_again", &[("minutes", &minutes)]))
        }
        Decision::Allowed { .. } => None,
    }
}

pub async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<LoginForm>,
) -> Result<Response, PanelError> {
    let login = f.login.trim().to_owned();
    let back = back_to(&f.wroc);
    let again = |errors: FormErrors, status: StatusCode| {
        let state = state.clone();
        let login = login.clone();
        let back = back.clone();
        let ctx = &ctx;
        async move {
            let c = Chrome::new(&state, ctx, "/logowanie").await;
            render(
                status,
                &LoginPage {
                    c,
                    login,
                    errors,
                    back,
                },
            )
        }
    };
    let ip_key = format!("login:ip:{}", super::request::limit_key(ctx.info.ip));
    let account_key = format!("login:account:{}", panel::login_key(&login));
    let limiter = &state.panel.limiter;
    // Counted before argon2 runs, given back on success: simultaneous guesses cannot all
    // pass a limit that is only recorded after the check.
    let keys = [
        (ip_key.as_str(), limits::LOGIN_IP),
        (account_key.as_str(), limits::LOGIN_ACCOUNT),
    ];
    let reserved = match ratelimit::reserve(&**limiter, &keys).await {
        Ok(Reservation::Granted(r)) => r,
        Ok(Reservation::Limited(d)) => {
            metrics::counter!("ebok_panel_logins_total", "result" => "throttled").increment(1);
            state
                .audit(
                    &format!("panel:{login}"),
                    "login_throttled",
                    Some(ctx.info.ip),
                    "",
                )
                .await;
            let errors = FormErrors::whole(limited_message(&ctx, &d).unwrap_or_default());
            return Ok(again(errors, StatusCode::TOO_MANY_REQUESTS).await);
        }
        Err(e) => return Err(e.into()),
    };
    if login.is_empty() || f.password.is_empty() {
        // Not a guess.
        reserved.give_back().await;
        let mut errors = FormErrors::default();
        errors.require(ctx.t, "login", &login, "required.login");
        errors.require(ctx.t, "password", &f.password, "required.password");
        return Ok(again(errors, StatusCode::UNPROCESSABLE_ENTITY).await);
    }
    let account = panel::panel_account_by_login(&state.db, &login).await?;
    let ok = match passwords::verify(
        &f.password,
        account.as_ref().map(|a| a.password_hash.as_str()),
    )
    .await
    {
        Ok(ok) => ok,
        Err(e) => {
            // Not a guess that was checked.
            reserved.give_back().await;
            return Ok(hash_failed(&state, &ctx, e).await);
        }
    };
    let Some(account) = account.filter(|_| ok) else {
        // The failure stays counted.
        drop(reserved);
        metrics::counter!("ebok_panel_logins_total", "result" => "failed").increment(1);
        state
            .audit(
                &format!("panel:{login}"),
                "login_failed",
                Some(ctx.info.ip),
                "",
            )
            .await;
        let errors = FormErrors::whole(ctx.t.t("login.failed"));
        return Ok(again(errors, StatusCode::UNAUTHORIZED).await);
    };
    if account.disabled {
        state
            .audit(
                &format!("panel:{}", account.login),
                "login_disabled",
                Some(ctx.info.ip),
                "",
            )
            .await;
        let errors = FormErrors::whole(ctx.t.t("login.disabled"));
        return Ok(again(errors, StatusCode::FORBIDDEN).await);
    }
    reserved.give_back().await;
    let _ = limiter.clear(&account_key).await;
    if let Err(e) = ebok_store::notices::set_account_lang(&state.db, account.id, ctx.t.code()).await
    {
        tracing::warn!(error = %e, "recording the account's language");
    }
    // A new session id every time: whatever session cookie the browser came with (perhaps
    // planted by someone else) is dropped.
    if let Some(old) = &ctx.info.session_cookie {
        let _ = state.panel.sessions.delete(old).await;
    }
    let pending = account.totp_enabled();
    let token = state
        .panel
        .sessions
        .create(account.id, pending, Some(ctx.info.ip))
        .await?;
    let (action, target) = if pending {
        let target = match back.as_str() {
            "" => "/logowanie/kod".to_owned(),
            b => format!("/logowanie/kod?wroc={}", urlencode(b)),
        };
        ("login_password_ok", target)
    } else {
        metrics::counter!("ebok_panel_logins_total", "result" => "ok").increment(1);
        let target = if back.is_empty() {
            "/panel".to_owned()
        } else {
            back.clone()
        };
        ("login", target)
    };
    state
        .audit(
            &format!("panel:{}", account.login),
            action,
            Some(ctx.info.ip),
            "",
        )
        .await;
    Ok(with_session_cookie(
        Redirect::to(&target).into_response(),
        &ctx,
        &token,
    ))
}

/// Put the session cookie on an answer.
pub(crate) fn with_session_cookie(mut resp: Response, ctx: &Ctx, token: &str) -> Response {
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, token, ctx.info.secure, None),
    );
    resp
}

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage {
    c: Chrome,
    errors: FormErrors,
    /// See [`LoginPage::back`].
    back: String,
}

pub(crate) async fn code_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(back): Query<Back>,
) -> Response {
    if ctx.pending.is_none() {
        return super::pages::to_login();
    }
    let c = Chrome::new(&state, &ctx, "/logowanie/kod").await;
    render(
        StatusCode::OK,
        &CodePage {
            c,
            errors: FormErrors::default(),
            back: back_to(&back.wroc),
        },
    )
}

/// A second factor as the forms ask for it: the app's code (digits, a numeric keyboard on
/// phones) or, in a field of its own, a recovery code (letters too).
#[derive(serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub recovery: String,
    #[serde(default)]
    wroc: String,
}

impl CodeForm {
    /// The code to check: the app's when given, else the recovery code.
    pub fn given(&self) -> &str {
        match self.code.trim() {
            "" => self.recovery.trim(),
            code => code,
        }
    }
}

/// The second factor: a TOTP code (each time step once) or an unused recovery code.
pub async fn code(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<CodeForm>,
) -> Result<Response, PanelError> {
    let Some(pending) = &ctx.pending else {
        return Ok(super::pages::to_login());
    };
    let account = &pending.account;
    let key = format!("code:account:{}", account.id);
    let back = back_to(&f.wroc);
    let again = |errors: FormErrors, status: StatusCode| {
        let state = state.clone();
        let back = back.clone();
        let ctx = &ctx;
        async move {
            let c = Chrome::new(&state, ctx, "/logowanie/kod").await;
            render(status, &CodePage { c, errors, back })
        }
    };
    let mut errors = FormErrors::default();
    if !errors.require(ctx.t, "code", f.given(), "required.code") {
        return Ok(again(errors, StatusCode::UNPROCESSABLE_ENTITY).await);
    }
    // Counted before the check (see the login), given back on success.
    let keys = [(key.as_str(), limits::CODE_ACCOUNT)];
    let reserved = match ratelimit::reserve(&*state.panel.limiter, &keys).await {
        Ok(Reservation::Granted(r)) => r,
        Ok(Reservation::Limited(d)) => {
            let msg = limited_message(&ctx, &d).unwrap_or_default();
            return Ok(again(FormErrors::whole(msg), StatusCode::TOO_MANY_REQUESTS).await);
        }
        Err(e) => return Err(e.into()),
    };
    let accepted = check_second_factor(&state, account, f.given()).await?;
    if !accepted {
        drop(reserved);
        state
            .audit(
                &format!("panel:{}", account.login),
                "second_factor_failed",
                Some(ctx.info.ip),
                "",
            )
            .await;
        errors.add("code", ctx.t.t("login.code_failed"));
        return Ok(again(errors, StatusCode::UNAUTHORIZED).await);
    }
    reserved.give_back().await;
    let _ = state.panel.limiter.clear(&key).await;
    let token = match state.panel.sessions.promote(&pending.token).await {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(super::pages::to_login()),
        Err(e) => return Err(e.into()),
    };
    metrics::counter!("ebok_panel_logins_total", "result" => "ok").increment(1);
    state
        .audit(
            &format!("panel:{}", account.login),
            "login",
            Some(ctx.info.ip),
            "second factor",
        )
        .await;
    let target = if back.is_empty() { "/panel" } else { &back };
    Ok(with_session_cookie(
        Redirect::to(target).into_response(),
        &ctx,
        &token,
    ))
}

/// Whether `code` is the account's current TOTP code (claimed so it cannot be replayed) or
/// one of its unused recovery codes (used up).
pub(crate) async fn check_second_factor(
    state: &AppState,
    account: &panel::PanelAccount,
    code: &str,
) -> anyhow::Result<bool> {
    let Some(secret) = account
        .totp_secret
        .as_deref()
        .and_then(totp::TotpSecret::from_base32)
    else {
        return Ok(false);
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let last = account.totp_last_step.map(|s| s as u64);
    let mut tx = state.db.begin().await?;
    let ok = if let Some(step) = totp::verify(secret.as_bytes(), code, now, last) {
        tokens::claim_totp_step(&mut tx, account.id, step as i64).await?
    } else {
        let hash = totp::hash_recovery_code(code);
        tokens::use_recovery_code(&mut tx, account.id, &hash).await?
    };
    tx.commit().await?;
    Ok(ok)
}

/// Wyloguj: end this session.
pub async fn logout(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PanelError> {
    let session = ctx.auth.as_ref().or(ctx.pending.as_ref());
    if let Some(a) = session {
        state.panel.sessions.delete(&a.token).await?;
        state
            .audit(
                &format!("panel:{}", a.account.login),
                "logout",
                Some(ctx.info.ip),
                "",
            )
            .await;
    }
    let mut resp = Redirect::to("/?n=logged_out").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", ctx.info.secure, Some(0)),
    );
    Ok(resp)
}
