//! The optional TOTP second factor: setting it up, switching it off, and its recovery codes.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::settings::{check_current, settings_page, SettingsForms, CODES_FORM, TOTP_FORM};
use crate::web::auth::{check_second_factor, CodeForm};
use crate::web::pages::{render, Authed, Chrome, Ctx, FormErrors};
use crate::web::{totp, AppState};
use ebok_store::auth::{self as tokens};

#[derive(serde::Deserialize)]
pub(crate) struct CurrentPasswordForm {
    #[serde(default)]
    current: String,
}

/// New recovery codes for the second factor (the old ones stop working), after the
/// password; shown once.
pub(crate) async fn new_recovery_codes(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<CurrentPasswordForm>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(Redirect::to("/logowanie").into_response());
    };
    if !a.account.totp_enabled() {
        return Ok(Redirect::to("/ustawienia").into_response());
    }
    let mut errors = FormErrors::scoped(CODES_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return Ok(resp);
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
    done?;
    Ok(codes_page(&state, &ctx, "settings.codes_replaced", codes).await)
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
pub(crate) async fn totp_setup(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    if a.account.totp_enabled() {
        return Ok(Redirect::to("/ustawienia").into_response());
    }
    let secret = totp::TotpSecret::generate();
    let saved = in_tx!(state.db, |tx| {
        tokens::set_totp_pending(&mut tx, a.account.id, Some(&secret.to_base32())).await?;
    });
    saved?;
    Ok(totp_setup_page(
        &state,
        &ctx,
        a,
        &secret,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await)
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
            qr: crate::web::qr::qr_svg(&uri, ctx.t.t("settings.totp_qr_label")),
            uri,
            errors,
        },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct TotpForm {
    #[serde(flatten)]
    code: CodeForm,
    #[serde(default)]
    current: String,
}

pub(crate) async fn totp_enable(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<TotpForm>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    let Some(secret) = a
        .account
        .totp_pending_secret
        .as_deref()
        .and_then(totp::TotpSecret::from_base32)
    else {
        return Ok(Redirect::to("/ustawienia").into_response());
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let Some(step) = totp::verify(secret.as_bytes(), f.code.given(), now, None) else {
        let mut errors = FormErrors::default();
        if errors.require(ctx.t, "code", f.code.given(), "required.app_code") {
            errors.add("code", ctx.t.t("login.code_failed"));
        }
        return Ok(totp_setup_page(
            &state,
            &ctx,
            a,
            &secret,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await);
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
    done?;
    Ok(codes_page(&state, &ctx, "settings.totp_enabled", codes).await)
}

/// Turning the second factor off needs the password and a current code.
pub(crate) async fn totp_disable(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<TotpForm>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    let mut errors = FormErrors::scoped(TOTP_FORM);
    if let Err(resp) = check_current(&state, &ctx, a, &f.current, &mut errors).await {
        return Ok(resp);
    }
    if errors.require(ctx.t, "code", f.code.given(), "required.code") && errors.is_empty() {
        match check_second_factor(&state, &a.account, f.code.given()).await {
            Ok(true) => {}
            Ok(false) => errors.add("code", ctx.t.t("login.code_failed")),
            Err(e) => return Err(e.into()),
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
    done?;
    Ok(Redirect::to("/ustawienia?n=totp_disabled").into_response())
}
