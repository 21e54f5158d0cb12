//! Rejestracja: an account can be made only from the subscriber's own line. The caller's IP
//! must map to a live session whose PPPoE login belongs to a contract of the subscriber
//! whose PESEL (or NIP) and contract number are typed in. A refusal never says which of
//! the two was wrong.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::auth::{limited_message, with_session_cookie};
use super::i18n::Tr;
use super::pages::{hash_failed, render, Chrome, Ctx, FormErrors};
use super::{limits, passwords, AppState};
use ebok_store::auth::{self as tokens, TokenPurpose};
use ebok_store::identify::{identify, Identified};
use ebok_store::panel;
use ebok_store::repo::{StoreError, UniqueField};
use ebok_store::subscribers::{self, Subscriber};
use ebok_store::validate::{Nip, NipError, Pesel, PeselError};

/// Whether the caller's line allows registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// No live session holds the caller's IP.
    Unknown,
    /// A live session, but its PPPoE login is not tied to a contract.
    NoHolder,
    /// A live session of a known subscriber.
    Known,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    c: Chrome,
    line: Line,
    v: RegisterForm,
    errors: FormErrors,
    /// After an error the PESEL/NIP field is empty (see [`page`]): its help says why.
    id_help: &'static str,
}

#[derive(serde::Deserialize, Default, Clone)]
pub struct RegisterForm {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password2: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub contract: String,
}

async fn line_of(state: &AppState, ctx: &Ctx) -> anyhow::Result<(Line, Option<Subscriber>)> {
    Ok(
        match identify(state.live.as_ref(), &state.db, ctx.info.ip).await? {
            None => (Line::Unknown, None),
            Some(Identified { holder: None, .. }) => (Line::NoHolder, None),
            Some(Identified {
                holder: Some((s, _)),
                ..
            }) => (Line::Known, Some(s)),
        },
    )
}

async fn page(
    state: &AppState,
    ctx: &Ctx,
    line: Line,
    v: RegisterForm,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let c = Chrome::new(state, ctx, "/rejestracja").await;
    // Passwords are secrets, and a PESEL is never shown back in full: neither is sent back.
    let v = RegisterForm {
        password: String::new(),
        password2: String::new(),
        id: String::new(),
        ..v
    };
    let id_help = if errors.is_empty() {
        ctx.t.t("register.id_help")
    } else {
        ctx.t.t("register.id_again")
    };
    render(
        status,
        &RegisterPage {
            c,
            line,
            v,
            errors,
            id_help,
        },
    )
}

pub async fn form(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PanelError> {
    if ctx.auth.is_some() {
        return Ok(Redirect::to("/panel").into_response());
    }
    let line = match line_of(&state, &ctx).await {
        Ok((l, _)) => l,
        Err(e) => return Err(e.into()),
    };
    Ok(page(
        &state,
        &ctx,
        line,
        RegisterForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await)
}

/// A PESEL (11 digits) or a NIP (10 digits, dashes and spaces allowed).
pub(crate) enum TaxId {
    Pesel(Pesel),
    Nip(Nip),
}

/// Parse the "PESEL lub NIP" field; the error is a catalogue key.
pub(crate) fn parse_id(raw: &str) -> Result<TaxId, &'static str> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("field.id_format");
    }
    match digits.len() {
        11 => raw
            .trim()
            .parse::<Pesel>()
            .map(TaxId::Pesel)
            .map_err(|e| match e {
                PeselError::Checksum => "field.pesel_checksum",
                PeselError::Date => "field.pesel_date",
                _ => "field.id_format",
            }),
        10 => raw
            .trim()
            .parse::<Nip>()
            .map(TaxId::Nip)
            .map_err(|e| match e {
                NipError::Checksum => "field.nip_checksum",
                _ => "field.id_format",
            }),
        _ => Err("field.id_format"),
    }
}

/// Identifier rules: 3–64 characters of letters, digits and `._-@`.
pub(crate) fn valid_login(login: &str) -> bool {
    let n = login.chars().count();
    (3..=64).contains(&n)
        && login
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

pub use ebok_store::validate::valid_email;

/// A new password typed twice (registration, reset, settings): each empty field is named,
/// then the two must match and the password must pass [`passwords::check_new`] (not the
/// identifier, not one of `ids`, not a common one).
pub(crate) fn new_password_rules(
    t: Tr,
    errors: &mut FormErrors,
    password: &str,
    password2: &str,
    login: &str,
    ids: &[&str],
) {
    // In the order of the fields: the summary lists them so.
    let given = errors.require(t, "password", password, "required.new_password");
    if given {
        if let Err(weak) = passwords::check_new(password, login, ids) {
            errors.add("password", t.t(weak.key()));
        }
    }
    let repeated = errors.require(t, "password2", password2, "required.password2");
    if given && repeated && password != password2 {
        errors.add("password2", t.t("field.password_mismatch"));
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(mut f): Form<RegisterForm>,
) -> Result<Response, PanelError> {
    if ctx.auth.is_some() {
        return Ok(Redirect::to("/panel").into_response());
    }
    f.login = f.login.trim().to_owned();
    f.email = f.email.trim().to_owned();
    f.contract = f.contract.trim().to_owned();
    let t = ctx.t;
    let ip_key = format!("register:ip:{}", super::request::limit_key(ctx.info.ip));
    match state.panel.limiter.hit(&ip_key, limits::REGISTER_IP).await {
        Ok(d) => {
            if let Some(msg) = limited_message(&ctx, &d) {
                let errors = FormErrors::whole(msg);
                return Ok(page(
                    &state,
                    &ctx,
                    Line::Known,
                    f,
                    errors,
                    StatusCode::TOO_MANY_REQUESTS,
                )
                .await);
            }
        }
        Err(e) => return Err(e.into()),
    }
    let (line, holder) = line_of(&state, &ctx).await?;
    if line != Line::Known {
        state
            .audit(
                "visitor",
                "register_refused",
                Some(ctx.info.ip),
                "line not recognised",
            )
            .await;
        return Ok(page(
            &state,
            &ctx,
            line,
            f,
            FormErrors::default(),
            StatusCode::FORBIDDEN,
        )
        .await);
    }

    // The form's own rules first: they can be told field by field.
    let mut errors = FormErrors::default();
    if errors.require(t, "login", &f.login, "required.login") && !valid_login(&f.login) {
        errors.add("login", t.t("field.login_format"));
    }
    new_password_rules(
        t,
        &mut errors,
        &f.password,
        &f.password2,
        &f.login,
        &[f.id.as_str()],
    );
    if errors.require(t, "email", &f.email, "required.email") && !valid_email(&f.email) {
        errors.add("email", t.t("field.email_format"));
    }
    let id = if errors.require(t, "id", &f.id, "required.id") {
        match parse_id(&f.id) {
            Ok(id) => Some(id),
            Err(key) => {
                errors.add("id", t.t(key));
                None
            }
        }
    } else {
        None
    };
    if errors.require(t, "contract", &f.contract, "required.contract")
        && f.contract.chars().count() > 64
    {
        errors.add("contract", t.t("field.contract_format"));
    }
    if !errors.is_empty() {
        return Ok(page(
            &state,
            &ctx,
            line,
            f,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await);
    }

    // Then the identity: the PESEL/NIP and contract must name the holder of this line.
    let named = match id.expect("checked above") {
        TaxId::Pesel(p) => {
            subscribers::subscriber_by_pesel_and_contract(&state.db, &p, &f.contract).await
        }
        TaxId::Nip(n) => {
            subscribers::subscriber_by_nip_and_contract(&state.db, &n, &f.contract).await
        }
    };
    let named = named?;
    let holder = holder.expect("known line has a holder");
    let Some((subscriber, _)) = named.filter(|(s, _)| s.id == holder.id) else {
        metrics::counter!("ebok_panel_registrations_total", "result" => "mismatch").increment(1);
        state
            .audit(
                "visitor",
                "register_refused",
                Some(ctx.info.ip),
                &format!(
                    "identity does not match the line of subscriber {}",
                    holder.id
                ),
            )
            .await;
        let errors = FormErrors::whole(t.t("register.mismatch"));
        return Ok(page(&state, &ctx, line, f, errors, StatusCode::FORBIDDEN).await);
    };

    let hash = match passwords::hash(&f.password).await {
        Ok(h) => h,
        Err(e) => return Ok(hash_failed(&state, &ctx, e).await),
    };
    let created = async {
        let mut tx = state.db.begin().await?;
        let id = match panel::create_panel_account_limited(
            &mut tx,
            subscriber.id,
            &f.login,
            &hash,
            &f.email,
            state.config.web.accounts_per_subscriber,
        )
        .await
        {
            Ok(id) => id,
            Err(e) => {
                tx.rollback().await?;
                return Ok::<_, anyhow::Error>(Err(e));
            }
        };
        let token = tokens::issue_token(
            &mut tx,
            id,
            TokenPurpose::ConfirmEmail,
            Some(&f.email),
            super::account::CONFIRM_TTL,
        )
        .await?;
        ebok_store::audit::append(
            &mut tx,
            &format!("panel:{}", f.login),
            "register",
            Some(ctx.info.ip),
            &format!("subscriber {}", subscriber.id),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok((id, token)))
    }
    .await;
    let (account_id, token) = match created {
        Ok(Ok(x)) => x,
        Ok(Err(StoreError::Duplicate {
            field: UniqueField::PanelLogin,
            ..
        })) => {
            let mut errors = FormErrors::default();
            errors.add("login", t.t("field.login_taken"));
            return Ok(page(&state, &ctx, line, f, errors, StatusCode::CONFLICT).await);
        }
        Ok(Err(StoreError::Duplicate {
            field: UniqueField::PanelAccountOfSubscriber,
            ..
        })) => {
            let errors = FormErrors::whole(t.t("register.limit_reached"));
            return Ok(page(&state, &ctx, line, f, errors, StatusCode::CONFLICT).await);
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    metrics::counter!("ebok_panel_registrations_total", "result" => "ok").increment(1);
    super::account::mail_confirmation(&state, t, &f.email, &f.login, &token);

    // Logged in straight away, on a brand-new session id.
    if let Some(old) = &ctx.info.session_cookie {
        let _ = state.panel.sessions.delete(old).await;
    }
    let session = state
        .panel
        .sessions
        .create(account_id, false, Some(ctx.info.ip))
        .await?;
    Ok(with_session_cookie(
        Redirect::to("/panel?n=registered").into_response(),
        &ctx,
        &session,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        assert!(valid_login("jan.kowalski"));
        assert!(valid_login("Łucja_77"));
        assert!(!valid_login("jk"));
        assert!(!valid_login("jan kowalski"));
        assert!(!valid_login("<script>"));
        assert!(valid_email("agata@poczta.pl"));
        assert!(!valid_email("agata@poczta"));
        assert!(!valid_email("a b@poczta.pl"));
        assert!(!valid_email("a@b.pl>"));
        assert!(matches!(parse_id("44051401359"), Ok(TaxId::Pesel(_))));
        assert!(matches!(parse_id("526-025-02-74"), Ok(TaxId::Nip(_))));
        assert_eq!(parse_id("12345678901").err(), Some("field.pesel_checksum"));
        assert_eq!(parse_id("5260250275").err(), Some("field.nip_checksum"));
        assert_eq!(parse_id("abc").err(), Some("field.id_format"));
        assert_eq!(parse_id("123").err(), Some("field.id_format"));
    }
}
