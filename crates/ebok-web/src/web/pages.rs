//! The page frame every panel page shares (menu, language switch, the connection note,
//! contact block), the subscriber extractor, and the simple pages: home, "Twój panel",
//! errors, language choice, the stylesheet.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::i18n::{Lang, Tr};
use super::request::{set_cookie, CsrfKey, RequestInfo, Seed, LANG_COOKIE};
use super::session_store::WebSession;
use super::AppState;
use crate::web::settings::PanelConfig;
use ebok_store::panel::{self, PanelAccount};
use ebok_store::subscribers::Overview;

/// A logged-in subscriber: the session (token and record), the account, whether the
/// caller's line is his, and on "Twój panel" his overview (all read with the session, in
/// one query on the SQL store).
#[derive(Debug, Clone)]
pub struct Authed {
    pub token: String,
    pub session: WebSession,
    pub account: PanelAccount,
    /// See [`panel::AccountView::line_contract`].
    pub line_contract: Option<String>,
    /// Read by [`WithOverview`] only.
    pub overview: Option<Overview>,
}

/// Every panel handler's view of the request.
pub struct Ctx {
    pub info: RequestInfo,
    pub t: Tr,
    /// Fully logged in (second factor passed when enabled).
    pub auth: Option<Authed>,
    /// Password passed, second factor still to give.
    pub pending: Option<Authed>,
    /// A notice named by `?n=` after a redirect (catalogue key; only known ones).
    pub flash: Option<&'static str>,
    /// Whether a live session holds the caller's IP, when the extractor looked it up (it
    /// does when a session cookie came, for the line's login in the session query).
    line_live: Option<bool>,
}

/// `?n=` values and the catalogue keys they show.
const FLASHES: &[(&str, &str)] = &[
    ("logged_out", "login.logged_out"),
    ("logged_out_all", "login.logged_out_all"),
    ("expired", "login.session_expired"),
    ("registered", "register.done"),
    ("password_changed", "settings.password_changed"),
    ("totp_disabled", "settings.totp_disabled"),
    ("session_ended", "settings.session_ended"),
];

fn flash_of(query: Option<&str>) -> Option<&'static str> {
    let q = query?;
    let n = q.split('&').find_map(|kv| kv.strip_prefix("n="))?;
    FLASHES.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

impl Ctx {
    /// Append to the audit log inside `tx`, as this caller from this IP.
    pub async fn audit(
        &self,
        tx: &mut ebok_store::DbTx,
        action: &str,
        detail: &str,
    ) -> Result<i64, ebok_store::repo::StoreError> {
        ebok_store::audit::append(tx, &self.actor(), action, Some(self.info.ip), detail).await
    }

    pub fn actor(&self) -> String {
        match &self.auth {
            Some(a) => format!("panel:{}", a.account.login),
            None => "visitor".into(),
        }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ctx, Response> {
        Ctx::extract(parts, state, false).await
    }
}

/// [`Ctx`] whose logged-in subscriber comes with his [`Overview`], in the same query.
pub struct WithOverview(pub Ctx);

impl FromRequestParts<AppState> for WithOverview {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        Ctx::extract(parts, state, true).await.map(WithOverview)
    }
}

impl Ctx {
    async fn extract(parts: &Parts, state: &AppState, overview: bool) -> Result<Ctx, Response> {
        let info = parts
            .extensions
            .get::<RequestInfo>()
            .cloned()
            .expect("panel_layer runs before every panel handler");
        let t = Tr::new(info.lang);
        let mut ctx = Ctx {
            info,
            t,
            auth: None,
            pending: None,
            flash: flash_of(parts.uri.query()),
            line_live: None,
        };
        let Some(token) = ctx.info.session_cookie.clone() else {
            return Ok(ctx);
        };
        // The live line first (no I/O with the embedded store): its PPPoE login goes into
        // the account's query, which answers the connection note's "is this his line" too.
        // A lookup error reads as no live line, as in the note.
        let live = state.live.lookup(ctx.info.ip).await.ok().flatten();
        ctx.line_live = Some(live.is_some());
        let login = live.as_ref().and_then(|s| s.user_name.as_deref());
        // The SQL store reads session and account in one query; Redis holds the session
        // only, the account is one query to the database.
        let found = match state.panel.sessions.as_sql() {
            Some(sql) => sql.get_with_account(&token, login, overview).await,
            None => match state.panel.sessions.get(&token).await {
                Ok(Some(s)) => {
                    match panel::account_view(&state.db, s.account_id, login, overview).await {
                        Ok(a) => Ok(Some((s, a))),
                        Err(e) => {
                            tracing::error!(error = %e, "panel account lookup");
                            return Err(error_page(
                                state,
                                &ctx.info,
                                StatusCode::SERVICE_UNAVAILABLE,
                            )
                            .await);
                        }
                    }
                }
                other => other.map(|_| None),
            },
        };
        let (session, view) = match found {
            Ok(Some((s, Some(view)))) if !view.account.disabled => (s, view),
            Ok(_) => return Ok(ctx),
            Err(e) => {
                tracing::error!(error = %e, "panel session store");
                return Err(error_page(state, &ctx.info, StatusCode::SERVICE_UNAVAILABLE).await);
            }
        };
        let authed = Authed {
            token,
            session,
            account: view.account,
            line_contract: view.line_contract,
            overview: view.overview,
        };
        if authed.session.second_factor_pending {
            ctx.pending = Some(authed);
        } else {
            ctx.auth = Some(authed);
        }
        Ok(ctx)
    }
}

/// The frame around every page.
pub(crate) struct Chrome {
    pub t: Tr,
    /// The token of the page's forms, `{{ c.csrf }}`.
    pub csrf: CsrfField,
    config: Arc<PanelConfig>,
    pub conn_note: String,
    pub logged_in: bool,
    pub user: String,
    /// This page's path, for the language switch to come back to.
    pub path: String,
    pub notice: Option<String>,
    /// The active outage and maintenance notices that touch the caller (the banner).
    pub notices: Vec<super::notices::NoticeView>,
}

/// A page's CSRF token, made when a template first shows it: an anonymous page without a
/// form then never makes a seed (see [`super::request::Seed`]).
pub(crate) struct CsrfField {
    key: CsrfKey,
    bound_to: CsrfBinding,
    token: OnceLock<String>,
}

enum CsrfBinding {
    Session(String),
    Anonymous(Arc<Seed>),
}

impl CsrfField {
    pub fn token(&self) -> &str {
        self.token.get_or_init(|| match &self.bound_to {
            CsrfBinding::Session(token) => self.key.for_session(token),
            CsrfBinding::Anonymous(seed) => self.key.for_seed(seed),
        })
    }
}

impl std::fmt::Display for CsrfField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.token())
    }
}

/// What the connection note says about the caller's address.
enum Line {
    /// No live session holds it.
    Unknown,
    /// A live line, and the caller is not logged in.
    Known,
    /// The logged-in subscriber's own line, under this contract.
    Own(String),
    /// A live line that is not (known to be) the logged-in subscriber's.
    Other,
}

impl Line {
    fn note(&self, t: Tr, ip: IpAddr) -> String {
        let ip = ip.to_string();
        match self {
            Line::Unknown => t.f("conn.unknown", &[("ip", &ip)]),
            Line::Known => t.f("conn.known", &[("ip", &ip)]),
            Line::Own(number) => t.f("conn.known_own", &[("ip", &ip), ("contract", number)]),
            Line::Other => t.f("conn.known_other", &[("ip", &ip)]),
        }
    }
}

impl Chrome {
    /// The frame for `ctx` on `path`; the connection note says whose line only to the
    /// logged-in subscriber it belongs to (answered with his session, see [`Overview`]).
    pub async fn new(state: &AppState, ctx: &Ctx, path: &str) -> Chrome {
        let live = match ctx.line_live {
            Some(live) => live,
            // A read of this instance's memory; an error reads as "no", as everywhere in
            // the note.
            None => matches!(state.live.lookup(ctx.info.ip).await, Ok(Some(_))),
        };
        let line = match (live, &ctx.auth) {
            (false, _) => Line::Unknown,
            (true, None) => Line::Known,
            (true, Some(a)) => match &a.line_contract {
                Some(number) => Line::Own(number.clone()),
                None => Line::Other,
            },
        };
        let mut c = Chrome::with_line(state, ctx, path, &line);
        c.notices = super::notices::for_caller(state, ctx).await;
        c
    }

    fn with_line(state: &AppState, ctx: &Ctx, path: &str, line: &Line) -> Chrome {
        let bound_to = match ctx.auth.as_ref().or(ctx.pending.as_ref()) {
            Some(a) => CsrfBinding::Session(a.token.clone()),
            None => CsrfBinding::Anonymous(ctx.info.seed.clone()),
        };
        Chrome {
            t: ctx.t,
            csrf: CsrfField {
                key: state.panel.csrf_key.clone(),
                bound_to,
                token: OnceLock::new(),
            },
            config: state.config.clone(),
            conn_note: line.note(ctx.t, ctx.info.ip),
            logged_in: ctx.auth.is_some(),
            user: ctx
                .auth
                .as_ref()
                .map(|a| a.account.login.clone())
                .unwrap_or_default(),
            path: path.to_owned(),
            notice: None,
            notices: Vec::new(),
        }
    }

    pub(crate) fn notice(mut self, text: impl Into<String>) -> Chrome {
        self.notice = Some(text.into());
        self
    }

    /// The ISP's name (`[isp] name`; may be empty).
    pub(crate) fn isp_name(&self) -> &str {
        &self.config.isp.name
    }

    /// The footer's contact lines that are configured, as (label, value).
    pub fn contact(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let isp = &self.config.isp;
        let t = self.t;
        [
            (Some("footer.phone"), &isp.office_phone),
            (Some("footer.technical"), &isp.technical_phone),
            (Some("footer.hours"), &isp.hours),
            (Some("footer.bok"), &isp.address),
            (None, &isp.email),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(move |(key, value)| (key.map_or("E-mail", |k| t.t(k)), value.as_str()))
    }

    pub(crate) fn has_contact(&self) -> bool {
        self.contact().next().is_some()
    }

    /// The menu: (path, label, whether it is this page or one under it). Logged in, the
    /// pages everyone sees (orders, news, FAQ) stay in it: a maintenance notice or a new
    /// service must be reachable from the panel too.
    pub fn menu(&self) -> Vec<(&'static str, &'static str, bool)> {
        const PANEL: &[(&str, &str)] = &[
            ("/panel", "menu.your_data"),
            ("/adres-ip", "menu.ip"),
            ("/pppoe", "menu.pppoe"),
            ("/platnosci", "menu.payments"),
            ("/e-faktury", "menu.invoices"),
            ("/dokumenty", "menu.documents"),
            ("/statystyki", "menu.stats"),
            ("/kontakt", "menu.contact"),
            ("/zamawianie", "menu.orders"),
            ("/aktualnosci", "menu.news"),
            ("/faq", "menu.faq"),
            ("/ustawienia", "menu.settings"),
        ];
        const VISITOR: &[(&str, &str)] = &[
            ("/", "menu.ebok"),
            ("/logowanie", "menu.login"),
            ("/aktualnosci", "menu.news"),
            ("/zamawianie", "menu.orders"),
            ("/kontakt", "menu.contact"),
            ("/faq", "menu.faq"),
            ("/dokumenty", "menu.documents"),
            ("/przywracanie", "menu.recover"),
            ("/rejestracja", "menu.register"),
        ];
        let items = if self.logged_in { PANEL } else { VISITOR };
        items
            .iter()
            .map(|(href, key)| (*href, self.t.t(key), self.is_current(href)))
            .collect()
    }

    /// Whether `href` is this page or a page under it (`/e-faktury/12` is under
    /// `/e-faktury`).
    fn is_current(&self, href: &str) -> bool {
        self.path == href
            || (href != "/"
                && self
                    .path
                    .strip_prefix(href)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// Render a template into an HTML answer; a template error is logged and becomes a 500.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// Form-level and per-field messages, already translated. `templates/macros.html` shows
/// them twice on purpose: a summary at the top of the form (`role="alert"`, one link per
/// field in error, so a screen reader hears them at once and a keyboard reaches each field)
/// and each field's own message beside it.
#[derive(Debug, Default, Clone)]
pub(crate) struct FormErrors {
    pub form: Option<String>,
    pub fields: Vec<(&'static str, String)>,
    /// Put before every element id of the form: a page with several forms whose fields
    /// share names (settings: `current` in three of them) still has unique ids.
    pub scope: &'static str,
}

impl FormErrors {
    /// Messages of a form whose ids start with `scope` (see [`FormErrors::scope`]).
    pub(crate) fn scoped(scope: &'static str) -> FormErrors {
        FormErrors {
            scope,
            ..Default::default()
        }
    }

    /// Only a message for the whole form (a refusal, a rate limit).
    pub fn whole(msg: impl Into<String>) -> FormErrors {
        FormErrors {
            form: Some(msg.into()),
            ..Default::default()
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// The first message of a field wins: an empty field is told it is empty, not also that
    /// its (empty) value has the wrong format.
    pub fn add(&mut self, field: &'static str, msg: impl Into<String>) {
        if self.get(field).is_none() {
            self.fields.push((field, msg.into()));
        }
    }

    /// Whether `value` was given; if not, the field gets the catalogue message `key`, which
    /// names what is missing ("Wpisz numer umowy.", not "This field is required.").
    pub(crate) fn require(&mut self, t: Tr, field: &'static str, value: &str, key: &str) -> bool {
        let given = !value.trim().is_empty();
        if !given {
            self.add(field, t.t(key));
        }
        given
    }

    pub fn is_empty(&self) -> bool {
        self.form.is_none() && self.fields.is_empty()
    }

    /// The element id of `field` in this form.
    pub fn id(&self, field: &str) -> String {
        format!("{}{field}", self.scope)
    }

    /// Whether a field's help is shown: not when empty, nor when it says what the field's
    /// message already says.
    pub(crate) fn shows_help(&self, field: &str, help: &str) -> bool {
        !help.is_empty() && self.get(field) != Some(help)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    message: String,
}

/// A calm error page in the caller's language (no detail: that went to the log).
pub(crate) async fn error_page(
    state: &AppState,
    info: &RequestInfo,
    status: StatusCode,
) -> Response {
    let ctx = Ctx {
        info: info.clone(),
        t: Tr::new(info.lang),
        auth: None,
        pending: None,
        flash: None,
        line_live: None,
    };
    let key = match status {
        StatusCode::NOT_FOUND => "error.not_found",
        StatusCode::FORBIDDEN => "error.forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "error.unavailable",
        _ => "error.internal",
    };
    let c = Chrome::new(state, &ctx, "/").await;
    render(
        status,
        &ErrorPage {
            message: ctx.t.t(key).to_owned(),
            c,
        },
    )
}

/// A database or store failure inside a handler: logged, shown as a calm page.
/// Handlers returning [`super::error::PanelError`] get the same through `?`.
/// How a failure inside a handler is logged (by [`super::error::PanelError`]).
pub(crate) fn log_failure(e: impl std::fmt::Display) {
    tracing::error!(error = %e, "panel request failed");
}

/// A password check (argon2) that could not run: 503 with `Retry-After` when the machine is
/// busy hashing (see [`super::passwords`]), else a [`super::error::PanelError`].
pub(crate) async fn hash_failed(
    state: &AppState,
    ctx: &Ctx,
    e: super::passwords::HashError,
) -> Response {
    if !matches!(e, super::passwords::HashError::Busy) {
        return super::error::PanelError::from(e).into_response();
    }
    metrics::counter!("ebok_panel_password_checks_refused_total").increment(1);
    let mut resp = error_page(state, &ctx.info, StatusCode::SERVICE_UNAVAILABLE).await;
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("5"),
    );
    resp
}

/// Marks an answer that sends a visitor to the login because the page asked for needs one
/// (see [`super::request::panel_layer`], which adds where to come back to).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeedsLogin;

/// The answer of a page that needs a logged-in subscriber, to a visitor who is not one.
pub(crate) fn to_login() -> Response {
    let mut resp = Redirect::to("/logowanie").into_response();
    resp.extensions_mut().insert(NeedsLogin);
    resp
}

pub(crate) async fn not_found(State(state): State<AppState>, ctx: Ctx) -> Response {
    error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    c: Chrome,
}

/// E-BOK: the start page.
pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Response {
    if ctx.auth.is_some() {
        return Redirect::to("/panel").into_response();
    }
    let c = Chrome::new(&state, &ctx, "/").await;
    let c = match ctx.flash {
        Some(key) => c.notice(ctx.t.t(key)),
        None => c,
    };
    render(StatusCode::OK, &HomePage { c })
}

#[derive(serde::Deserialize)]
pub(crate) struct Back {
    #[serde(default)]
    wroc: String,
}

/// Switch language (a cookie for a year) and go back to a local page.
pub(crate) async fn language(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(code): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let lang = Lang::from_code(&code).unwrap_or(Lang::Pl);
    if let Some(a) = &ctx.auth {
        // Mails nobody asked for (notices) go out in it.
        if let Err(e) =
            ebok_store::notices::set_account_lang(&state.db, a.account.id, lang.code()).await
        {
            tracing::warn!(error = %e, "recording the account's language");
        }
    }
    let target = super::redirect::local_target(&back.wroc);
    let mut resp = Redirect::to(target).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LANG_COOKIE, lang.code(), ctx.info.secure, Some(31_536_000)),
    );
    resp
}

/// The one stylesheet (no scripts anywhere).
pub(crate) async fn stylesheet() -> Response {
    let mut resp = include_str!("../../../../static/ebok.css").into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}
