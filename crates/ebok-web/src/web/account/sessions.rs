//! The account's sessions: end one other session, or all of them.

use crate::web::error::PanelError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use crate::web::pages::{error_page, Ctx};
use crate::web::request::{set_cookie, SESSION_COOKIE};
use crate::web::{session_store, AppState};

/// End every session of the account, this one included.
pub(crate) async fn logout_everywhere(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(crate::web::pages::to_login());
    };
    state.panel.sessions.delete_all(a.account.id, None).await?;
    state
        .audit(&ctx.actor(), "logout_everywhere", Some(ctx.info.ip), "")
        .await;
    let mut resp = Redirect::to("/?n=logged_out_all").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", ctx.info.secure, Some(0)),
    );
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub(crate) struct EndSessionForm {
    #[serde(default)]
    id: String,
}

/// End one other session of the account (another browser, a forgotten computer). An id
/// that is not one of this account's sessions is a 404, like any other's object; this
/// session is ended by "Wyloguj".
pub(crate) async fn end_session(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<EndSessionForm>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(Redirect::to("/logowanie").into_response());
    };
    if session_store::session_id(&a.token).as_deref() == Some(f.id.as_str()) {
        return Ok(Redirect::to("/ustawienia").into_response());
    }
    match state.panel.sessions.end(a.account.id, &f.id).await {
        Ok(true) => {}
        Ok(false) => return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => return Err(e.into()),
    }
    state
        .audit(&ctx.actor(), "session_ended", Some(ctx.info.ip), "")
        .await;
    Ok(Redirect::to("/ustawienia?n=session_ended").into_response())
}
