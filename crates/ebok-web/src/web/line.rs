//! Adres IP and PPPoE: the caller's address and the subscriber's live sessions, the PPPoE
//! login and the password reveal (panel password re-entered), restart of the connection
//! (an RFC 5176 Disconnect through [`ebok_radius::coa::SessionControl`]). Also the
//! formatting shared with the statistics: byte counts, durations, addresses, history rows.

use crate::web::error::PanelError;
use std::net::IpAddr;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use time::OffsetDateTime;

use super::auth::limited_message;
use super::i18n::{Lang, Tr};
use super::pages::{error_page, hash_failed, render, Authed, Chrome, Ctx, FormErrors};
use super::paging::{clamped, PageQuery, Pager};
use super::ratelimit::{self, Reservation, Rule};
use super::{passwords, AppState};
use ebok_live::sessions::LiveSession;
use ebok_radius::coa::ControlOutcome;
use ebok_store::history::{self, HistoryRow};
use ebok_store::repo::Page;
use ebok_store::subscribers::{self, PppoeAccount};
use ebok_store::tz::format_datetime;

/// Wrong panel passwords at the PPPoE password reveal, per account.
pub(crate) const REVEAL_ACCOUNT: Rule = Rule {
    limit: 5,
    window: Duration::from_secs(15 * 60),
};
/// Connection restarts, per account.
pub(crate) const RESTART_ACCOUNT: Rule = Rule {
    limit: 3,
    window: Duration::from_secs(60 * 60),
};
/// Closed sessions per page on the PPPoE page.
const PPPOE_HISTORY_PAGE: u32 = 10;

/// The routes of this page group.
pub(crate) fn routes() -> Router<AppState> {
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

/// `3 d 4 h 05 min` / `4 h 05 min` / `5 min 07 s`.
pub(crate) fn human_duration(t: Tr, secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let (d, h, m, s) = (
        d.to_string(),
        h.to_string(),
        format!("{m:02}"),
        format!("{s:02}"),
    );
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
pub(crate) enum IpClass {
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

/// An IP address or prefix as the pages write it.
pub struct Addr(pub String);

impl Addr {
    /// An IPv6 address or prefix: long enough to need wrapping on a phone.
    pub(crate) fn is_v6(&self) -> bool {
        self.0.contains(':')
    }

    /// The text cut after each colon that a group follows (not inside `::` or before `/`):
    /// the pages put `<wbr>` between the pieces, so a long IPv6 prefix wraps only there.
    pub fn pieces(&self) -> Vec<&str> {
        let s = self.0.as_str();
        let mut out = Vec::new();
        let mut start = 0;
        for (i, pair) in s.as_bytes().windows(2).enumerate() {
            if pair[0] == b':' && pair[1].is_ascii_hexdigit() {
                out.push(&s[start..=i]);
                start = i + 1;
            }
        }
        out.push(&s[start..]);
        out
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address or prefix with its kind.
pub(crate) struct AddrView {
    pub addr: Addr,
    pub class: &'static str,
    pub label: String,
}

fn addr_view(t: Tr, text: String, ip: IpAddr) -> AddrView {
    let class = IpClass::of(ip);
    AddrView {
        addr: Addr(text),
        class: class.key(),
        label: class.label(t),
    }
}

/// A live session as the pages show it.
pub(crate) struct SessionView {
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
        started: format_datetime(s.started_at),
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
pub(crate) struct HistoryView {
    pub started: String,
    pub stopped: String,
    pub duration: String,
    /// IPv4 address first, then the IPv6 prefixes.
    pub ips: Vec<Addr>,
    pub down: String,
    pub up: String,
    pub cause: String,
}

/// Acct-Terminate-Cause (RFC 2866 §5.10) in words, else why the session was closed here.
fn cause_text(t: Tr, row: &HistoryRow) -> String {
    match row.terminate_cause {
        Some(c @ 1..=18) => t.t(&format!("line.terminate.{c}")).to_owned(),
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
    let mut ips: Vec<Addr> = row
        .framed_ip
        .iter()
        .map(|ip| Addr(ip.to_string()))
        .collect();
    ips.extend(row.ipv6_prefixes.iter().map(|p| Addr(p.to_string())));
    HistoryView {
        started: format_datetime(row.started_at),
        stopped: format_datetime(row.stopped_at),
        duration: human_duration(t, secs),
        ips,
        down: human_bytes(t, row.output_octets),
        up: human_bytes(t, row.input_octets),
        cause: cause_text(t, row),
    }
}

// ---------------------------------------------------------------------------------------------
// The subscriber's lines
// ---------------------------------------------------------------------------------------------

/// The PPPoE logins of the logged-in subscriber.
pub(crate) async fn logins_of(
    state: &AppState,
    a: &Authed,
) -> Result<Vec<PppoeAccount>, ebok_store::repo::StoreError> {
    subscribers::pppoe_accounts_of_subscriber(&state.db, a.account.subscriber_id).await
}

/// The live sessions of these logins, oldest first.
async fn live_of(
    state: &AppState,
    accounts: &[PppoeAccount],
) -> Result<Vec<LiveSession>, ebok_live::sessions::StoreError> {
    let logins: Vec<&str> = accounts.iter().map(|a| a.login.as_str()).collect();
    let mut own = state.live.sessions_of_users(&logins).await?;
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
    /// The address the browser comes from.
    visitor: AddrView,
    own_line: bool,
    line_note: String,
    sessions: Vec<SessionView>,
}

/// Adres IP: where the browser comes from, whether that is this subscriber's line, and the
/// addresses of each of the subscriber's live sessions.
pub(crate) async fn ip_page(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(super::pages::to_login());
    };
    let t = ctx.t;
    let ip = ctx.info.ip;
    let (own_line, line_note) =
        match ebok_store::identify::identify(state.live.as_ref(), &state.db, ip).await {
            Ok(Some(found)) => match found.holder {
                Some((s, k)) if s.id == a.account.subscriber_id => {
                    (true, t.f("ip.own_line", &[("contract", &k.number)]))
                }
                _ => (false, t.t("ip.other_line").to_owned()),
            },
            Ok(None) => (false, t.t("ip.not_our_line").to_owned()),
            Err(e) => return Err(e.into()),
        };
    let accounts = logins_of(&state, a).await?;
    let live = live_of(&state, &accounts).await?;
    let now = OffsetDateTime::now_utc();
    let page = IpPage {
        visitor: addr_view(t, ip.to_string(), ip),
        own_line,
        line_note,
        sessions: live.iter().map(|s| session_view(t, s, now)).collect(),
        c: Chrome::new(&state, &ctx, "/adres-ip").await,
    };
    Ok(render(StatusCode::OK, &page))
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

async fn pppoe_render(
    state: &AppState,
    ctx: &Ctx,
    a: &Authed,
    o: PppoeOptions,
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let accounts = logins_of(state, a).await?;
    let live = live_of(state, &accounts).await?;
    let logins: Vec<String> = accounts.iter().map(|a| a.login.clone()).collect();
    let history = clamped(Page::new(o.page, PPPOE_HISTORY_PAGE), |p| {
        history::sessions_of(&state.db, &logins, p)
    })
    .await?;
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
        pager: Pager::of(&history, "/pppoe"),
        confirm: None,
        c,
    };
    Ok(render(o.status, &page))
}

/// PPPoE: live sessions, recent history, the login, the reveal form and restart buttons.
pub(crate) async fn pppoe_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(super::pages::to_login());
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
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(super::pages::to_login());
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
    // Counted before argon2, given back when the password was right.
    let keys = [(key.as_str(), REVEAL_ACCOUNT)];
    let reserved = match ratelimit::reserve(&**limiter, &keys).await {
        Ok(Reservation::Granted(r)) => r,
        Ok(Reservation::Limited(d)) => {
            let msg = limited_message(&ctx, &d).unwrap_or_default();
            let o = refuse(msg, StatusCode::TOO_MANY_REQUESTS);
            return pppoe_render(&state, &ctx, a, o).await;
        }
        Err(e) => return Err(e.into()),
    };
    match passwords::verify(&f.current, Some(&a.account.password_hash)).await {
        Ok(true) => reserved.give_back().await,
        Ok(false) => {
            drop(reserved);
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
        Err(e) => {
            // Not a guess that was checked.
            reserved.give_back().await;
            return Ok(hash_failed(&state, &ctx, e).await);
        }
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
pub(crate) async fn restart_confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(r): Query<SessionRef>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(super::pages::to_login());
    };
    let s = match own_session(&state, a, &r).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => return Err(e.into()),
    };
    let page = PppoePage {
        accounts: Vec::new(),
        any_password: false,
        revealed: false,
        reveal_errors: FormErrors::default(),
        sessions: Vec::new(),
        history: Vec::new(),
        pager: Pager::single(),
        confirm: Some(session_view(ctx.t, &s, OffsetDateTime::now_utc())),
        c: Chrome::new(&state, &ctx, "/pppoe").await,
    };
    Ok(render(StatusCode::OK, &page))
}

/// Ask the NAS to end the session (the router dials again): rate-limited, audited, and
/// the NAS's answer told plainly.
pub async fn restart(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(r): Form<SessionRef>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(super::pages::to_login());
    };
    let t = ctx.t;
    let s = match own_session(&state, a, &r).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => return Err(e.into()),
    };
    let notice = |text: String, status: StatusCode| PppoeOptions {
        notice: Some(text),
        status,
        ..Default::default()
    };
    let Some(control) = state.session_control.clone() else {
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
        Err(e) => return Err(e.into()),
    }
    let result = control.disconnect(&s.control_target()).await;
    let (said, text) = match &result {
        Ok(ControlOutcome::Ack) => ("ack".to_owned(), t.t("line.restart_ack").to_owned()),
        Ok(ControlOutcome::Nak { error_cause }) => {
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
        Err(ebok_radius::coa::CoaError::Timeout(_)) => {
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
    let status = if matches!(result, Ok(ControlOutcome::Ack)) {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    pppoe_render(&state, &ctx, a, notice(text, status)).await
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use time::macros::datetime;

    use super::*;
    use crate::web::tests::*;
    use ebok_live::sessions::{Applied, ClosedSession, TrafficReading};
    use ebok_radius::coa::{CoaError, SessionControl, Target};
    use ebok_radius::event::{AccountingEvent, StatusType};
    use ebok_store::subscribers::{upsert_pppoe_account, PppoeAccountRecord};

    pub(crate) use crate::testkit::closed_session as closed;

    pub(crate) async fn record(
        h: &Harness,
        closed: Vec<ClosedSession>,
        traffic: Vec<TrafficReading>,
    ) {
        history::record(
            &h.state.db,
            &Applied {
                stale: false,
                closed,
                traffic,
            },
        )
        .await
        .unwrap();
    }

    /// Jan's live session gets an IPv6 prefix, a MAC and counters.
    async fn jan_interim(h: &Harness) {
        let now = OffsetDateTime::now_utc();
        let mut e = AccountingEvent::new(StatusType::InterimUpdate, "nas1", "s-jan", now);
        e.user_name = Some("jan@isp".into());
        e.framed_ip = Some(JAN_IP.parse().unwrap());
        e.delegated_ipv6_prefixes = vec!["2a01:110:8012::/56".parse().unwrap()];
        e.calling_station_id = Some("AA-BB-CC-00-11-22".into());
        e.output_octets = 2_500_000_000;
        e.input_octets = 1_234_567;
        h.state
            .live
            .apply(&e, now + time::Duration::hours(1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn ip_and_pppoe_pages_show_only_jans_lines() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        jan_interim(&h).await;
        record(
            &h,
            vec![
                closed(
                    "jan@isp",
                    "old-jan",
                    "83.1.9.9",
                    datetime!(2026-01-10 10:00 UTC),
                    3 * 3600 + 5 * 60,
                    Some(2),
                ),
                closed(
                    "anna@isp",
                    "old-anna",
                    "83.1.7.7",
                    datetime!(2026-01-11 10:00 UTC),
                    60,
                    Some(1),
                ),
            ],
            Vec::new(),
        )
        .await;

        let r = b.get("/adres-ip").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(JAN_IP));
        assert!(
            r.body.contains("To Twoje łącze (umowa UM/2013/001)."),
            "{}",
            r.body
        );
        assert!(r.body.contains("2a01:<wbr>110:<wbr>8012::/56"));
        assert!(r.body.contains("ipclass-public\">adres publiczny"));
        assert!(!r.body.contains(ANNA_IP) && !r.body.contains("anna@isp"));

        // From somewhere else the page says so.
        let mut away = h.browser(STRANGER_IP);
        away.cookies = b.cookies.clone();
        let r = away.get("/adres-ip").await;
        assert!(
            r.body.contains("nie jest aktywnym łączem naszej sieci"),
            "{}",
            r.body
        );
        assert!(
            r.body.contains("adres specjalny"),
            "198.51.100.0/24 is documentation space"
        );

        let r = b.get("/pppoe").await;
        assert_eq!(r.status, StatusCode::OK);
        for want in [
            "jan@isp",
            "s-jan",
            "AA-BB-CC-00-11-22",
            "2,5\u{a0}GB",
            "1,2\u{a0}MB",
            "2a01:<wbr>110:<wbr>8012::/56",
            // History in Warsaw time (CET in January), duration, cause in words.
            "10.01.2026 11:00",
            "10.01.2026 14:05",
            "3 godz. 05 min",
            "utrata nośnej (zanik łącza)",
            "83.1.9.9",
            "niedostępne w panelu",
        ] {
            assert!(r.body.contains(want), "{want} missing:\n{}", r.body);
        }
        for never in ["anna@isp", "s-anna", "83.1.7.7", ANNA_IP] {
            assert!(!r.body.contains(never), "{never} shown to Jan");
        }
        assert!(!r.body.contains("name=\"current\""), "nothing to reveal");

        // English.
        b.get("/jezyk/en?wroc=/pppoe").await;
        let r = b.get("/pppoe").await;
        assert!(r.body.contains("2.5\u{a0}GB") && r.body.contains("lost carrier"));

        // Not logged in: to the login page.
        let r = h.browser(JAN_IP).get("/pppoe").await;
        assert_eq!(r.location(), "/logowanie?wroc=/pppoe");
        h.finish().await;
    }

    #[tokio::test]
    async fn pppoe_password_reveal_needs_the_panel_password_and_is_throttled() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        let mut tx = h.state.db.begin().await.unwrap();
        upsert_pppoe_account(
            &mut tx,
            &PppoeAccountRecord {
                ext_id: "p-jan@isp".into(),
                contract_ext_id: "c1".into(),
                login: "jan@isp".into(),
                password: Some("Tajne-PPP-881".into()),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let r = b.get("/pppoe").await;
        assert!(r.body.contains("name=\"current\"") && r.body.contains("ukryte"));
        assert!(!r.body.contains("Tajne-PPP-881"));
        let r = b.post("/pppoe/haslo", &[("current", "zle haslo")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!r.body.contains("Tajne-PPP-881"));
        let r = b.post("/pppoe/haslo", &[("current", GOOD_PASSWORD)]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r
            .body
            .contains("<code class=\"secret\">Tajne-PPP-881</code>"));
        let log = ebok_store::audit::recent(&h.state.db, 20).await.unwrap();
        assert!(log.iter().any(|e| e.action == "pppoe_password_revealed"));
        assert!(log
            .iter()
            .any(|e| e.action == "pppoe_password_check_failed"));
        // A plain reload hides it again.
        let r = b.get("/pppoe").await;
        assert!(!r.body.contains("Tajne-PPP-881"));

        for _ in 0..4 {
            let r = b.post("/pppoe/haslo", &[("current", "zle haslo")]).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let r = b.post("/pppoe/haslo", &[("current", GOOD_PASSWORD)]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.body.contains("Zbyt wiele prób"));
        assert!(!r.body.contains("Tajne-PPP-881"));
        h.finish().await;
    }

    /// Records the sessions it is asked to end and answers from a script.
    struct Recorder {
        calls: Mutex<Vec<String>>,
        answers: Mutex<Vec<Result<ControlOutcome, CoaError>>>,
    }

    #[async_trait]
    impl SessionControl for Recorder {
        async fn disconnect(&self, s: &Target) -> Result<ControlOutcome, CoaError> {
            self.calls.lock().unwrap().push(s.session_id.clone());
            self.answers.lock().unwrap().remove(0)
        }

        async fn change(&self, _: &Target, _: &[Vec<u8>]) -> Result<ControlOutcome, CoaError> {
            unreachable!("the panel only disconnects")
        }
    }

    #[tokio::test]
    async fn restart_confirms_asks_the_nas_is_owned_and_rate_limited() {
        let mut h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        let r = b.get("/pppoe").await;
        assert!(r.body.contains("action=\"/pppoe/restart\""));

        // Not wired: said plainly, nothing counted.
        let r = b
            .post("/pppoe/restart", &[("nas", "nas1"), ("sesja", "s-jan")])
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.body.contains("chwilowo niedostępny"));

        let rec = Arc::new(Recorder {
            calls: Mutex::new(Vec::new()),
            answers: Mutex::new(vec![
                Ok(ControlOutcome::Nak {
                    error_cause: Some(503),
                }),
                Err(CoaError::Timeout(3)),
                Ok(ControlOutcome::Ack),
            ]),
        });
        h.with_session_control(rec.clone(), &mut b);

        // The confirmation page, for Jan's session only.
        let r = b.get("/pppoe/restart?nas=nas1&sesja=s-jan").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("Tak, zrestartuj połączenie"));
        assert!(r.body.contains("name=\"sesja\" value=\"s-jan\""));
        let r = b.get("/pppoe/restart?nas=nas1&sesja=s-anna").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = b
            .post("/pppoe/restart", &[("nas", "nas1"), ("sesja", "s-anna")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(
            rec.calls.lock().unwrap().is_empty(),
            "Anna's session untouched"
        );

        b.get("/pppoe/restart?nas=nas1&sesja=s-jan").await;
        let r = b
            .post("/pppoe/restart", &[("nas", "nas1"), ("sesja", "s-jan")])
            .await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert!(
            r.body.contains("To połączenie już się zakończyło"),
            "{}",
            r.body
        );
        let r = b
            .post("/pppoe/restart", &[("nas", "nas1"), ("sesja", "s-jan")])
            .await;
        assert!(r.body.contains("nie potwierdziła przerwania"));
        let r = b
            .post("/pppoe/restart", &[("nas", "nas1"), ("sesja", "s-jan")])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("Połączenie zostało przerwane"));
        // Plain words for subscribers: no "koncentrator", no "NAS".
        assert!(
            !r.body.to_lowercase().contains("koncentrator"),
            "{}",
            r.body
        );
        let r = b
            .post("/pppoe/restart", &[("nas", "nas1"), ("sesja", "s-jan")])
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.body.contains("Zbyt wiele prób"));
        assert_eq!(*rec.calls.lock().unwrap(), vec!["s-jan"; 3]);

        let log = ebok_store::audit::recent(&h.state.db, 20).await.unwrap();
        let results: Vec<&str> = log
            .iter()
            .filter(|e| e.action == "pppoe_restart")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(results.len(), 3);
        assert!(results.contains(&"nas=nas1 session=s-jan result=nak:503"));
        assert!(results.contains(&"nas=nas1 session=s-jan result=ack"));
        h.finish().await;
    }

    #[test]
    fn formats_and_address_kinds() {
        let pl = Tr::new(Lang::Pl);
        let en = Tr::new(Lang::En);
        assert_eq!(human_bytes(pl, 999), "999 B");
        assert_eq!(human_bytes(pl, 1_500), "1,5\u{a0}kB");
        assert_eq!(human_bytes(en, 2_500_000_000), "2.5\u{a0}GB");
        assert_eq!(human_bytes(pl, 999_960), "1,0\u{a0}MB");
        assert_eq!(human_duration(pl, 59), "0 min 59 s");
        assert_eq!(human_duration(pl, 3600 + 120), "1 godz. 02 min");
        assert_eq!(
            human_duration(en, 2 * 86_400 + 3 * 3600 + 60),
            "2 d 3 h 01 min"
        );
        let pieces = |s: &str| Addr(s.into()).pieces().join("|");
        assert_eq!(pieces("83.1.9.9"), "83.1.9.9");
        assert_eq!(
            pieces("2001:db8:1000:100::/56"),
            "2001:|db8:|1000:|100::/56"
        );
        assert_eq!(pieces("::1"), "::|1");
        assert_eq!(pieces("fe80::1:2"), "fe80::|1:|2");
        assert!(Addr("::1".into()).is_v6() && !Addr("10.0.0.1".into()).is_v6());
        let kind = |s: &str| IpClass::of(s.parse().unwrap());
        assert_eq!(kind("83.1.2.3"), IpClass::Public);
        assert_eq!(kind("10.1.2.3"), IpClass::Private);
        assert_eq!(kind("172.31.0.1"), IpClass::Private);
        assert_eq!(kind("192.168.1.1"), IpClass::Private);
        assert_eq!(kind("100.64.0.1"), IpClass::Cgnat);
        assert_eq!(kind("100.127.255.254"), IpClass::Cgnat);
        assert_eq!(kind("100.128.0.1"), IpClass::Public);
        assert_eq!(kind("127.0.0.1"), IpClass::Special);
        assert_eq!(kind("2a01:110::1"), IpClass::Public);
        assert_eq!(kind("fd12:3456::1"), IpClass::Private);
        assert_eq!(kind("fe80::1"), IpClass::Special);
        assert_eq!(kind("2001:db8::1"), IpClass::Special);
        assert_eq!(kind("::ffff:100.64.1.1"), IpClass::Cgnat);
    }
}
