//! Adres IP and PPPoE: the caller's address and the subscriber's live sessions, the PPPoE
//! login and the password reveal (panel password re-entered), restart of the connection
//! (an RFC 5176 Disconnect through [`crate::radius::coa::SessionControl`]). Also the
//! formatting shared with the statistics: byte counts, durations, Warsaw times, history rows.

use std::net::IpAddr;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use time::OffsetDateTime;

use super::auth::limited_message;
use super::i18n::{Lang, Tr};
use super::pages::{error_page, internal, render, Authed, Chrome, Ctx, FormErrors};
use super::ratelimit::Rule;
use super::{passwords, AppState};
use crate::radius::coa::DisconnectOutcome;
use crate::sessions::LiveSession;
use crate::store::history::{self, HistoryRow};
use crate::store::repo::{Page, Paged};
use crate::store::subscribers::{self, PppoeAccount};

/// Wrong panel passwords at the PPPoE password reveal, per account.
pub const REVEAL_ACCOUNT: Rule = Rule {
    limit: 5,
    window: Duration::from_secs(15 * 60),
};
/// Connection restarts, per account.
pub const RESTART_ACCOUNT: Rule = Rule {
    limit: 3,
    window: Duration::from_secs(60 * 60),
};
/// Closed sessions per page on the PPPoE page.
const PPPOE_HISTORY_PAGE: u32 = 10;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/adres-ip", get(ip_page))
        .route("/pppoe", get(pppoe_page))
        .route("/pppoe/haslo", post(reveal))
        .route("/pppoe/restart", get(restart_confirm).post(restart))
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// `1,5 GB` (Polish decimal comma) or `1.5 GB`: decimal units, one decimal from kB up.
pub(crate) fn human_bytes(t: Tr, n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    decimal(t, &format!("{v:.1}"), UNITS[unit])
}

/// A number written with `.` put in the language's decimal separator, with its unit.
pub(crate) fn decimal(t: Tr, number: &str, unit: &str) -> String {
    let n = match t.lang {
        Lang::Pl => number.replace('.', ","),
        Lang::En => number.to_owned(),
    };
    format!("{n}\u{a0}{unit}")
}

/// `2026-07-01 14:05:09`, Europe/Warsaw.
pub(crate) fn warsaw_time(at: OffsetDateTime) -> String {
    let w = crate::tz::to_warsaw(at);
    format!(
        "{} {:02}:{:02}:{:02}",
        w.date(),
        w.hour(),
        w.minute(),
        w.second()
    )
}

/// `3 d 4 h 05 min` / `4 h 05 min` / `5 min 07 s`.
pub(crate) fn human_duration(t: Tr, secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let (d, h, m, s) = (d.to_string(), h.to_string(), format!("{m:02}"), format!("{s:02}"));
    if secs >= 86_400 {
        t.f("line.duration_days", &[("d", &d), ("h", &h), ("m", &m)])
    } else if secs >= 3600 {
        t.f("line.duration_hours", &[("h", &h), ("m", &m)])
    } else {
        let m = (secs / 60).to_string();
        t.f("line.duration_minutes", &[("m", &m), ("s", &s)])
    }
}

/// What kind of address an IP is, for the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpClass {
    Public,
    /// RFC 1918, or an IPv6 unique local address (fc00::/7).
    Private,
    /// Shared address space for carrier-grade NAT, 100.64.0.0/10 (RFC 6598).
    Cgnat,
    /// Loopback, link-local, documentation and other addresses not routed on the internet.
    Special,
}

impl IpClass {
    pub fn of(ip: IpAddr) -> IpClass {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                if v4.is_private() {
                    IpClass::Private
                } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                    IpClass::Cgnat
                } else if v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    || v4.is_documentation()
                    || v4.is_multicast()
                    || o[0] >= 240
                    || o[0] == 0
                {
                    IpClass::Special
                } else {
                    IpClass::Public
                }
            }
            IpAddr::V6(v6) => {
                let seg = v6.segments();
                if let Some(v4) = v6.to_ipv4_mapped() {
                    IpClass::of(IpAddr::V4(v4))
                } else if seg[0] & 0xfe00 == 0xfc00 {
                    IpClass::Private
                } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                    // Documentation prefix (RFC 3849).
                    IpClass::Special
                } else if seg[0] & 0xe000 == 0x2000 {
                    // Global unicast, 2000::/3.
                    IpClass::Public
                } else {
                    IpClass::Special
                }
            }
        }
    }

    /// The catalogue key of its name; also a CSS class suffix.
    pub fn key(self) -> &'static str {
        match self {
            IpClass::Public => "public",
            IpClass::Private => "private",
            IpClass::Cgnat => "cgnat",
            IpClass::Special => "special",
        }
    }

    fn label(self, t: Tr) -> String {
        t.t(match self {
            IpClass::Public => "line.class_public",
            IpClass::Private => "line.class_private",
            IpClass::Cgnat => "line.class_cgnat",
            IpClass::Special => "line.class_special",
        })
        .to_owned()
    }
}

/// An address or prefix with its kind.
pub struct AddrView {
    pub addr: String,
    pub class: &'static str,
    pub label: String,
}

fn addr_view(t: Tr, text: String, ip: IpAddr) -> AddrView {
    let class = IpClass::of(ip);
    AddrView {
        addr: text,
        class: class.key(),
        label: class.label(t),
    }
}

/// A live session as the pages show it.
pub struct SessionView {
    pub nas: String,
    pub session_id: String,
    pub login: String,
    pub mac: String,
    pub started: String,
    pub uptime: String,
    pub down: String,
    pub up: String,
    pub ipv4: Option<AddrView>,
    pub ipv6: Vec<AddrView>,
}

fn session_view(t: Tr, s: &LiveSession, now: OffsetDateTime) -> SessionView {
    let up_secs = (now - s.started_at).whole_seconds().max(0) as u64;
    SessionView {
        nas: s.nas.clone(),
        session_id: s.session_id.clone(),
        login: s.user_name.clone().unwrap_or_default(),
        mac: s.calling_station_id.clone().unwrap_or_else(|| "—".into()),
        started: warsaw_time(s.started_at),
        uptime: human_duration(t, up_secs),
        // Acct-Output-Octets went to the subscriber, Acct-Input-Octets came from them.
        down: human_bytes(t, s.output_octets),
        up: human_bytes(t, s.input_octets),
        ipv4: s
            .framed_ip
            .map(|ip| addr_view(t, ip.to_string(), IpAddr::V4(ip))),
        ipv6: s
            .ipv6_prefixes
            .iter()
            .map(|p| addr_view(t, p.to_string(), IpAddr::V6(p.addr())))
            .collect(),
    }
}

/// A closed session as the pages show it.
pub struct HistoryView {
    pub started: String,
    pub stopped: String,
    pub duration: String,
    pub ip: String,
    pub down: String,
    pub up: String,
    pub cause: String,
}

/// Acct-Terminate-Cause (RFC 2866 §5.10) in words, else why the session was closed here.
fn cause_text(t: Tr, row: &HistoryRow) -> String {
    match row.terminate_cause {
        Some(c @ 1..=18) => t.t(&format!("line.cause.{c}")).to_owned(),
        Some(c) => t.f("line.cause_other", &[("code", &c.to_string())]),
        None => match row.close_reason.as_str() {
            "expired" => t.t("line.reason_expired").to_owned(),
            "nas_restart" => t.t("line.reason_nas_restart").to_owned(),
            _ => "—".to_owned(),
        },
    }
}

pub(crate) fn history_view(t: Tr, row: &HistoryRow) -> HistoryView {
    let secs = (row.stopped_at - row.started_at).whole_seconds().max(0) as u64;
    let mut ips: Vec<String> = row.framed_ip.iter().map(|ip| ip.to_string()).collect();
    ips.extend(row.ipv6_prefixes.iter().map(|p| p.to_string()));
    HistoryView {
        started: warsaw_time(row.started_at),
        stopped: warsaw_time(row.stopped_at),
        duration: human_duration(t, secs),
        ip: if ips.is_empty() {
            "—".into()
        } else {
            ips.join(", ")
        },
        down: human_bytes(t, row.output_octets),
        up: human_bytes(t, row.input_octets),
        cause: cause_text(t, row),
    }
}

/// Links to the neighbouring pages of a list.
pub struct Pager {
    pub number: u32,
    pub pages: u32,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub(crate) fn pager<T>(path: &str, p: &Paged<T>) -> Pager {
    Pager {
        number: p.page.number,
        pages: p.pages(),
        prev: p
            .has_prev()
            .then(|| format!("{path}?strona={}", p.page.number - 1)),
        next: p
            .has_next()
            .then(|| format!("{path}?strona={}", p.page.number + 1)),
    }
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    strona: Option<String>,
}

impl PageQuery {
    pub fn number(&self) -> u32 {
        self.strona
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
    }
}

// ---------------------------------------------------------------------------------------------
// The subscriber's lines
// ---------------------------------------------------------------------------------------------

/// The PPPoE logins of the logged-in subscriber.
pub(crate) async fn logins_of(
    state: &AppState,
    a: &Authed,
) -> Result<Vec<PppoeAccount>, crate::store::repo::StoreError> {
    subscribers::pppoe_accounts_of_subscriber(&state.db, a.account.subscriber_id).await
}

/// The live sessions of these logins, oldest first. The live map has no index by login,
/// so this lists every live session and filters: O(live sessions) per page view (an
/// embedded map reads memory; Redis sends every session over the wire). A per-login index
/// in [`crate::sessions::LiveSessions`] would make it O(own sessions).
async fn live_of(
    state: &AppState,
    accounts: &[PppoeAccount],
) -> Result<Vec<LiveSession>, crate::sessions::StoreError> {
    let mut own: Vec<LiveSession> = state
        .live
        .list(None)
        .await?
        .into_iter()
        .filter(|s| {
            s.user_name
                .as_deref()
                .is_some_and(|u| accounts.iter().any(|a| a.login == u))
        })
        .collect();
    own.sort_by_key(|s| s.started_at);
    Ok(own)
}

// ---------------------------------------------------------------------------------------------
// Adres IP
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "ip.html")]
struct IpPage {
    c: Chrome,
    caller: AddrView,
    own_line: bool,
    line_note: String,
    sessions: Vec<SessionView>,
}

/// Adres IP: where the browser comes from, whether that is this subscriber's line, and the
/// addresses of each of the subscriber's live sessions.
pub async fn ip_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    let t = ctx.t;
    let ip = ctx.info.ip;
    let (own_line, line_note) =
        match crate::identify::identify(state.live.as_ref(), &state.db, ip).await {
            Ok(Some(found)) => match found.holder {
                Some((s, k)) if s.id == a.account.subscriber_id => {
                    (true, t.f("ip.own_line", &[("contract", &k.number)]))
                }
                _ => (false, t.t("ip.other_line").to_owned()),
            },
            Ok(None) => (false, t.t("ip.not_our_line").to_owned()),
            Err(e) => return internal(&state, &ctx, e).await,
        };
    let accounts = match logins_of(&state, a).await {
        Ok(x) => x,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let live = match live_of(&state, &accounts).await {
        Ok(x) => x,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let now = OffsetDateTime::now_utc();
    let page = IpPage {
        caller: addr_view(t, ip.to_string(), ip),
        own_line,
        line_note,
        sessions: live.iter().map(|s| session_view(t, s, now)).collect(),
        c: Chrome::new(&state, &ctx, "/adres-ip").await,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------------------------
// PPPoE
// ---------------------------------------------------------------------------------------------

/// A PPPoE account on the page; `password` only after a successful reveal.
pub struct AccountView {
    pub login: String,
    pub has_password: bool,
    pub password: Option<String>,
}

#[derive(Template)]
#[template(path = "pppoe.html")]
struct PppoePage {
    c: Chrome,
    accounts: Vec<AccountView>,
    any_password: bool,
    revealed: bool,
    reveal_errors: FormErrors,
    sessions: Vec<SessionView>,
    history: Vec<HistoryView>,
    pager: Pager,
    /// "Restart this session?" instead of the whole page.
    confirm: Option<SessionView>,
}

struct PppoeOptions {
    revealed: bool,
    reveal_errors: FormErrors,
    notice: Option<String>,
    status: StatusCode,
    page: u32,
}

impl Default for PppoeOptions {
    fn default() -> Self {
        PppoeOptions {
            revealed: false,
            reveal_errors: FormErrors::default(),
            notice: None,
            status: StatusCode::OK,
            page: 1,
        }
    }
}

async fn pppoe_render(state: &AppState, ctx: &Ctx, a: &Authed, o: PppoeOptions) -> Response {
    let t = ctx.t;
    let accounts = match logins_of(state, a).await {
        Ok(x) => x,
        Err(e) => return internal(state, ctx, e).await,
    };
    let live = match live_of(state, &accounts).await {
        Ok(x) => x,
        Err(e) => return internal(state, ctx, e).await,
    };
    let logins: Vec<String> = accounts.iter().map(|a| a.login.clone()).collect();
    let history = match history::sessions_of(
        &state.db,
        &logins,
        Page::new(o.page, PPPOE_HISTORY_PAGE),
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return internal(state, ctx, e).await,
    };
    let now = OffsetDateTime::now_utc();
    let mut c = Chrome::new(state, ctx, "/pppoe").await;
    c.notice = o.notice;
    let page = PppoePage {
        any_password: accounts.iter().any(|a| a.password.is_some()),
        accounts: accounts
            .iter()
            .map(|acc| AccountView {
                login: acc.login.clone(),
                has_password: acc.password.is_some(),
                password: if o.revealed {
                    acc.password.clone()
                } else {
                    None
                },
            })
            .collect(),
        revealed: o.revealed,
        reveal_errors: o.reveal_errors,
        sessions: live.iter().map(|s| session_view(t, s, now)).collect(),
        history: history.items.iter().map(|r| history_view(t, r)).collect(),
        pager: pager("/pppoe", &history),
        confirm: None,
        c,
    };
    render(o.status, &page)
}

/// PPPoE: live sessions, recent history, the login, the reveal form and restart buttons.
pub async fn pppoe_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    let o = PppoeOptions {
        page: q.number(),
        ..Default::default()
    };
    pppoe_render(&state, &ctx, a, o).await
}

#[derive(serde::Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    current: String,
}

/// Show the PPPoE passwords after the panel password is given again (throttled per account,
/// audited either way).
pub async fn reveal(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<RevealForm>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    let key = format!("pppoe_reveal:account:{}", a.account.id);
    let limiter = &state.panel.limiter;
    let refuse = |msg: String, status: StatusCode| PppoeOptions {
        reveal_errors: FormErrors {
            form: Some(msg),
            ..Default::default()
        },
        status,
        ..Default::default()
    };
    match limiter.check(&key, REVEAL_ACCOUNT).await {
        Ok(d) => {
            if let Some(msg) = limited_message(&ctx, &d) {
                let o = refuse(msg, StatusCode::TOO_MANY_REQUESTS);
                return pppoe_render(&state, &ctx, a, o).await;
            }
        }
        Err(e) => return internal(&state, &ctx, e).await,
    }
    match passwords::verify(&f.current, Some(&a.account.password_hash)).await {
        Ok(true) => {}
        Ok(false) => {
            if let Err(e) = limiter.hit(&key, REVEAL_ACCOUNT).await {
                return internal(&state, &ctx, e).await;
            }
            state
                .audit(
                    &ctx.actor(),
                    "pppoe_password_check_failed",
                    Some(ctx.info.ip),
                    "",
                )
                .await;
            let o = refuse(
                ctx.t.t("field.password_wrong").to_owned(),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
            return pppoe_render(&state, &ctx, a, o).await;
        }
        Err(e) => return internal(&state, &ctx, e).await,
    }
    state
        .audit(
            &ctx.actor(),
            "pppoe_password_revealed",
            Some(ctx.info.ip),
            "",
        )
        .await;
    let o = PppoeOptions {
        revealed: true,
        ..Default::default()
    };
    pppoe_render(&state, &ctx, a, o).await
}

#[derive(serde::Deserialize)]
pub struct SessionRef {
    #[serde(default)]
    nas: String,
    #[serde(default)]
    sesja: String,
}

/// The live session named by the form, when it is one of this subscriber's; anything else
/// (gone, another subscriber's) is `None`, shown as "not found".
async fn own_session(
    state: &AppState,
    a: &Authed,
    r: &SessionRef,
) -> anyhow::Result<Option<LiveSession>> {
    let Some(s) = state.live.get(&r.nas, &r.sesja).await? else {
        return Ok(None);
    };
    let Some(login) = s.user_name.as_deref() else {
        return Ok(None);
    };
    let accounts = logins_of(state, a).await?;
    Ok(accounts.iter().any(|acc| acc.login == login).then_some(s))
}

/// "Restart this connection?": the confirmation with a POST button.
pub async fn restart_confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(r): Query<SessionRef>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    let s = match own_session(&state, a, &r).await {
        Ok(Some(s)) => s,
        Ok(None) => return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let page = PppoePage {
        accounts: Vec::new(),
        any_password: false,
        revealed: false,
        reveal_errors: FormErrors::default(),
        sessions: Vec::new(),
        history: Vec::new(),
        pager: Pager {
            number: 1,
            pages: 1,
            prev: None,
            next: None,
        },
        confirm: Some(session_view(ctx.t, &s, OffsetDateTime::now_utc())),
        c: Chrome::new(&state, &ctx, "/pppoe").await,
    };
    render(StatusCode::OK, &page)
}

/// Ask the NAS to end the session (the router dials again): rate-limited, audited, and
/// the NAS's answer told plainly.
pub async fn restart(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(r): Form<SessionRef>,
) -> Response {
    let Some(a) = &ctx.auth else {
        return Redirect::to("/logowanie").into_response();
    };
    let t = ctx.t;
    let s = match own_session(&state, a, &r).await {
        Ok(Some(s)) => s,
        Ok(None) => return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let notice = |text: String, status: StatusCode| PppoeOptions {
        notice: Some(text),
        status,
        ..Default::default()
    };
    let Some(control) = state.panel.session_control.get().cloned() else {
        let o = notice(
            t.t("line.restart_unavailable").to_owned(),
            StatusCode::SERVICE_UNAVAILABLE,
        );
        return pppoe_render(&state, &ctx, a, o).await;
    };
    let key = format!("pppoe_restart:account:{}", a.account.id);
    match state.panel.limiter.hit(&key, RESTART_ACCOUNT).await {
        Ok(d) => {
            if let Some(msg) = limited_message(&ctx, &d) {
                let o = notice(msg, StatusCode::TOO_MANY_REQUESTS);
                return pppoe_render(&state, &ctx, a, o).await;
            }
        }
        Err(e) => return internal(&state, &ctx, e).await,
    }
    let result = control.disconnect(&s).await;
    let (said, text) = match &result {
        Ok(DisconnectOutcome::Ack) => ("ack".to_owned(), t.t("line.restart_ack").to_owned()),
        Ok(DisconnectOutcome::Nak { error_cause }) => {
            let text = match error_cause {
                Some(503) => t.t("line.restart_gone").to_owned(),
                Some(c) => t.f("line.restart_nak", &[("cause", &c.to_string())]),
                None => t.f("line.restart_nak", &[("cause", "—")]),
            };
            (
                format!("nak:{}", error_cause.map_or("-".into(), |c| c.to_string())),
                text,
            )
        }
        Err(crate::radius::coa::CoaError::Timeout(_)) => {
            ("timeout".to_owned(), t.t("line.restart_timeout").to_owned())
        }
        Err(e) => {
            tracing::warn!(error = %e, "restart of a PPPoE session");
            ("error".to_owned(), t.t("line.restart_error").to_owned())
        }
    };
    state
        .audit(
            &ctx.actor(),
            "pppoe_restart",
            Some(ctx.info.ip),
            &format!("nas={} session={} result={said}", s.nas, s.session_id),
        )
        .await;
    let status = if matches!(result, Ok(DisconnectOutcome::Ack)) {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    pppoe_render(&state, &ctx, a, notice(text, status)).await
}
