//! Access recovery: a single-use link by mail, valid [`RESET_TTL`], with the same answer
//! whether or not the address is known, and the page that sets a new password.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;

use super::email::minutes;
use super::{NoticePage, RESET_TTL};
use crate::web::auth::limited_message;
use crate::web::pages::{hash_failed, render, Chrome, Ctx, FormErrors};
use crate::web::register::{new_password_rules, valid_email};
use crate::web::{limits, passwords, AppState};
use ebok_store::auth::{self as tokens, TokenPurpose};
use ebok_store::panel;

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

pub(crate) async fn recover_form(State(state): State<AppState>, ctx: Ctx) -> Response {
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
    pub(super) email: String,
}

/// Mail a reset link to every confirmed account with this address. The page says the same
/// whatever happened, and the mail goes out in the background so timing tells nothing.
pub async fn recover(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<EmailForm>,
) -> Result<Response, PanelError> {
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
        return Ok(again(errors, false, StatusCode::UNPROCESSABLE_ENTITY).await);
    }
    let limiter = &state.panel.limiter;
    for (key, rule) in [
        (
            format!("recover:ip:{}", crate::web::request::limit_key(ctx.info.ip)),
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
                    return Ok(
                        again(FormErrors::whole(msg), false, StatusCode::TOO_MANY_REQUESTS).await,
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    state
        .audit("visitor", "recovery_requested", Some(ctx.info.ip), "")
        .await;
    let bg = state.clone();
    let t = ctx.t;
    let email_bg = email.clone();
    let work = bg.panel.mail_work.clone();
    work.spawn(async move {
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
    Ok(again(FormErrors::default(), true, StatusCode::OK).await)
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

pub(crate) async fn reset_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Result<Response, PanelError> {
    let account = match tokens::peek_token(&state.db, &token, TokenPurpose::ResetPassword).await? {
        Some(g) => panel::panel_account(&state.db, g.account_id).await?,
        None => None,
    };
    Ok(match account {
        Some(a) => {
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
        None => {
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
    })
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
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let grant = match tokens::peek_token(&state.db, &token, TokenPurpose::ResetPassword).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Ok(reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await)
        }
        Err(e) => return Err(e.into()),
    };
    let account = match panel::panel_account(&state.db, grant.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Ok(reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await)
        }
        Err(e) => return Err(e.into()),
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
        return Ok(reset_page(
            &state,
            &ctx,
            account.login,
            true,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await);
    }
    let hash = match passwords::hash(&f.password).await {
        Ok(h) => h,
        Err(e) => return Ok(hash_failed(&state, &ctx, e).await),
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
        ebok_store::audit::append(
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
            return Ok(reset_page(
                &state,
                &ctx,
                String::new(),
                false,
                FormErrors::default(),
                StatusCode::NOT_FOUND,
            )
            .await)
        }
        Err(e) => return Err(e.into()),
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
    Ok(render(
        StatusCode::OK,
        &NoticePage {
            c,
            title: t.t("recover.reset_title").to_owned(),
        },
    ))
}

/// PESEL and NIP of a subscriber, which a password must not be.
pub(super) async fn identifiers_of(state: &AppState, subscriber_id: i64) -> Vec<String> {
    match ebok_store::subscribers::subscriber(&state.db, subscriber_id).await {
        Ok(Some(s)) => s
            .pesel
            .map(|p| p.as_str().to_owned())
            .into_iter()
            .chain(s.nip.map(|n| n.as_str().to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}
