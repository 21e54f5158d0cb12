//! IP attribution for abuse and legal requests: who held an IPv4 address, or an IPv6 address
//! through any prefix containing it, at an instant or during a period — closed sessions from
//! history and the live session from the live map, each joined through its PPPoE login to the
//! subscriber and contract.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use futures_util::stream::{BoxStream, StreamExt};
use ipnet::Ipv6Net;
use serde::Serialize;
use time::OffsetDateTime;

use super::history::{parse_prefixes, split_v6};
use super::repo::{select_list, Cols, RowGet};
use super::subscribers::{
    self, read_contract, read_subscriber, Contract, Subscriber, CONTRACT_COLS, SUBSCRIBER_COLS,
};
use super::Db;
use crate::identify::{identify, IdentifyError};
use crate::on_pool;
use ebok_live::sessions::{LiveSession, LiveSessions};

#[cfg(test)]
#[path = "attribution_tests.rs"]
pub(crate) mod tests;

/// Where an answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The live map: the session is up now.
    Live,
    /// Session history: the session is closed.
    History,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Live => "live",
            Source::History => "history",
        }
    }
}

/// One session that held the address asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBy {
    pub source: Source,
    pub nas: String,
    /// The configured NAS client entry the accounting came through.
    pub nas_client: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// PPPoE login (User-Name).
    pub user_name: Option<String>,
    /// Calling-Station-Id: for PPPoE the subscriber router's MAC.
    pub calling_station_id: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    pub ipv6_prefixes: Vec<Ipv6Net>,
    pub started_at: OffsetDateTime,
    /// `None` while the session is live.
    pub stopped_at: Option<OffsetDateTime>,
    pub input_octets: u64,
    pub output_octets: u64,
    /// Acct-Terminate-Cause of the Stop, when there was one.
    pub terminate_cause: Option<u32>,
    /// `stop`, `nas_restart` or `expired`; `None` while live.
    pub close_reason: Option<String>,
    /// The subscriber and contract the PPPoE login belongs to (in today's subscriber data).
    pub holder: Option<(Subscriber, Contract)>,
}

impl HeldBy {
    fn live(s: LiveSession, holder: Option<(Subscriber, Contract)>) -> HeldBy {
        HeldBy {
            source: Source::Live,
            nas: s.nas,
            nas_client: s.nas_client,
            session_id: s.session_id,
            user_name: s.user_name,
            calling_station_id: s.calling_station_id,
            framed_ip: s.framed_ip,
            ipv6_prefixes: s.ipv6_prefixes,
            started_at: s.started_at,
            stopped_at: None,
            input_octets: s.input_octets,
            output_octets: s.output_octets,
            terminate_cause: None,
            close_reason: None,
            holder,
        }
    }
}

const HISTORY_COLS: &[&str] = &[
    "id",
    "nas",
    "nas_client",
    "session_id",
    "user_name",
    "calling_station_id",
    "framed_ip",
    "ipv6_prefixes",
    "started_at",
    "stopped_at",
    "input_octets",
    "output_octets",
    "terminate_cause",
    "close_reason",
];

fn read_held<R: RowGet>(row: &R) -> Result<HeldBy, sqlx::Error> {
    let h = Cols::new(row);
    let holder = match Cols::prefixed(row, "s_").opt_i64("id")? {
        Some(_) => Some((
            read_subscriber(&Cols::prefixed(row, "s_"))?,
            read_contract(&Cols::prefixed(row, "c_"))?,
        )),
        None => None,
    };
    Ok(HeldBy {
        source: Source::History,
        nas: h.text("nas")?,
        nas_client: h.text("nas_client")?,
        session_id: h.text("session_id")?,
        user_name: h.opt_text("user_name")?,
        calling_station_id: h.opt_text("calling_station_id")?,
        framed_ip: h.opt_i64("framed_ip")?.map(|v| Ipv4Addr::from(v as u32)),
        ipv6_prefixes: parse_prefixes(&h.text("ipv6_prefixes")?),
        started_at: h.ts("started_at")?,
        stopped_at: Some(h.ts("stopped_at")?),
        input_octets: h.i64("input_octets")? as u64,
        output_octets: h.i64("output_octets")? as u64,
        terminate_cause: h.opt_i64("terminate_cause")?.map(|c| c as u32),
        close_reason: h.opt_text("close_reason")?,
        holder,
    })
}

/// Which sessions a query reads: one IPv4 address, one IPv6 address, or all.
#[derive(Clone, Copy)]
enum Target {
    All,
    V4,
    V6,
}

/// Answer order: newest first (longest IPv6 prefix before that) for "who held it at T",
/// start order for the export.
#[derive(Clone, Copy)]
enum Order {
    Newest,
    Start,
}

/// Every query overlaps `[from, to]` with `[started_at, stopped_at]`, both ends inclusive:
/// `$1` is `from`, `$2` is `to` (equal for an instant). An IPv4 target is `$3`; an IPv6
/// target binds (net_hi, net_lo) of the address cut to each length 0..=128 as `$3, $4, …`.
/// The probes of all 129 lengths go in one statement (UNION ALL), so any stored prefix that
/// contains the address is found in one round trip, each probe an index range scan on
/// (net_hi, prefix_len, net_lo, started_at, stopped_at, history_id). The lengths are
/// constants of the statement, not input.
fn source_and_filter(target: Target) -> (String, &'static str) {
    let history = "session_history h";
    match target {
        Target::All => (
            history.to_owned(),
            "h.started_at <= $2 AND h.stopped_at >= $1",
        ),
        Target::V4 => (
            history.to_owned(),
            "h.framed_ip = $3 AND h.started_at <= $2 AND h.stopped_at >= $1",
        ),
        Target::V6 => {
            let probes = (0..=128u32)
                .map(|len| {
                    let hi = 3 + 2 * len;
                    format!(
                        "SELECT x.history_id, x.prefix_len FROM session_history_ipv6 x \
                         WHERE x.net_hi = ${hi} AND x.prefix_len = {len} AND x.net_lo = ${} \
                         AND x.started_at <= $2 AND x.stopped_at >= $1",
                        hi + 1
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            // A session whose prefixes nest (a /64 inside its /56) matches twice: once.
            (
                format!(
                    "(SELECT p.history_id, MAX(p.prefix_len) AS prefix_len FROM ({probes}) p \
                     GROUP BY p.history_id) m JOIN session_history h ON h.id = m.history_id"
                ),
                "1 = 1",
            )
        }
    }
}

/// The statement text of each (target, order), and of each target's count, built once:
/// the same text every time lets both backends keep it prepared.
fn statement(target: Target, order: Option<Order>) -> &'static str {
    static CACHE: [OnceLock<String>; 9] = [const { OnceLock::new() }; 9];
    let slot = target as usize * 3 + order.map_or(2, |o| o as usize);
    CACHE[slot].get_or_init(|| {
        let (source, filter) = source_and_filter(target);
        let order = match (order, target) {
            (None, _) => return format!("SELECT COUNT(*) FROM {source} WHERE {filter}"),
            (Some(Order::Start), _) => "h.started_at, h.id",
            (Some(Order::Newest), Target::V6) => "m.prefix_len DESC, h.started_at DESC, h.id DESC",
            (Some(Order::Newest), _) => "h.started_at DESC, h.id DESC",
        };
        format!(
            "SELECT {}, {}, {} FROM {source} \
             LEFT JOIN pppoe_accounts a ON a.login = h.user_name \
             LEFT JOIN contracts c ON c.id = a.contract_id \
             LEFT JOIN subscribers s ON s.id = c.subscriber_id \
             WHERE {filter} ORDER BY {order}",
            select_list("h", "", HISTORY_COLS),
            select_list("s", "s_", SUBSCRIBER_COLS),
            select_list("c", "c_", CONTRACT_COLS),
        )
    })
}

/// The target and the parameters of a query over `[from, to]`.
fn parameters(ip: Option<IpAddr>, from: OffsetDateTime, to: OffsetDateTime) -> (Target, Vec<i64>) {
    let mut params = vec![from.unix_timestamp(), to.unix_timestamp()];
    let target = match ip.map(|ip| ip.to_canonical()) {
        None => Target::All,
        Some(IpAddr::V4(v4)) => {
            params.push(i64::from(u32::from(v4)));
            Target::V4
        }
        Some(IpAddr::V6(v6)) => {
            for len in 0..=128u8 {
                let net = Ipv6Net::new(v6, len)
                    .expect("length within 0..=128")
                    .trunc();
                let (hi, lo) = split_v6(&net);
                params.extend([hi, lo]);
            }
            Target::V6
        }
    };
    (target, params)
}

fn closed<'a>(
    db: &'a Db,
    ip: Option<IpAddr>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    order: Order,
) -> BoxStream<'a, Result<HeldBy, sqlx::Error>> {
    let (target, params) = parameters(ip, from, to);
    let sql = statement(target, Some(order));
    on_pool!(db, pool => {
        let mut q = sqlx::query(sql);
        for p in params {
            q = q.bind(p);
        }
        q.fetch(pool).map(|row| row.and_then(|r| read_held(&r))).boxed()
    })
}

/// Closed sessions that held `ip` at `at` (start ≤ at ≤ stop): an IPv4 address exactly, an
/// IPv6 address through every stored prefix containing it, longest prefix first, then newest
/// first. One round trip, subscriber and contract included.
pub async fn held_at(db: &Db, ip: IpAddr, at: OffsetDateTime) -> Result<Vec<HeldBy>, sqlx::Error> {
    closed(db, Some(ip), at, at, Order::Newest)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Who held `ip` at `at`: the live session holding it now if it had started by `at`, first,
/// then [`held_at`].
pub async fn attribute(
    live: &dyn LiveSessions,
    db: &Db,
    ip: IpAddr,
    at: OffsetDateTime,
) -> Result<Vec<HeldBy>, IdentifyError> {
    let ip = ip.to_canonical();
    let mut out = Vec::new();
    if let Some(found) = identify(live, db, ip).await? {
        if found.session.started_at <= at {
            out.push(HeldBy::live(found.session, found.holder));
        }
    }
    out.extend(
        held_at(db, ip, at)
            .await
            .map_err(super::repo::StoreError::from)?,
    );
    Ok(out)
}

/// Closed sessions overlapping `[from, to]` (both ends inclusive) of `ip`, or of every
/// address when `ip` is `None`, in start order, streamed from the database.
pub fn closed_between<'a>(
    db: &'a Db,
    ip: Option<IpAddr>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> BoxStream<'a, Result<HeldBy, sqlx::Error>> {
    closed(db, ip, from, to, Order::Start)
}

/// How many sessions [`closed_between`] gives.
pub async fn count_closed_between(
    db: &Db,
    ip: Option<IpAddr>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    let (target, params) = parameters(ip, from, to);
    let sql = statement(target, None);
    let n: i64 = on_pool!(db, pool => {
        let mut q = sqlx::query_scalar(sql);
        for p in params {
            q = q.bind(p);
        }
        q.fetch_one(pool).await?
    });
    Ok(n.max(0) as u64)
}

/// Live sessions that overlap a period ending at `to` (they are up now, so they overlap it
/// when they started by `to`): the one holding `ip`, or all; in start order, joined to
/// their subscribers.
pub async fn live_between(
    live: &dyn LiveSessions,
    db: &Db,
    ip: Option<IpAddr>,
    to: OffsetDateTime,
) -> Result<Vec<HeldBy>, IdentifyError> {
    let mut out = Vec::new();
    match ip {
        Some(ip) => {
            if let Some(found) = identify(live, db, ip.to_canonical()).await? {
                out.push(HeldBy::live(found.session, found.holder));
            }
        }
        None => {
            let mut holders: HashMap<String, Option<(Subscriber, Contract)>> = HashMap::new();
            for s in live.list(None).await? {
                let holder = match &s.user_name {
                    Some(login) => match holders.get(login) {
                        Some(h) => h.clone(),
                        None => {
                            let h = subscribers::subscriber_by_login(db, login).await?;
                            holders.insert(login.clone(), h.clone());
                            h
                        }
                    },
                    None => None,
                };
                out.push(HeldBy::live(s, holder));
            }
        }
    }
    out.retain(|h| h.started_at <= to);
    out.sort_by(|a, b| {
        (a.started_at, &a.nas, &a.session_id).cmp(&(b.started_at, &b.nas, &b.session_id))
    });
    Ok(out)
}

/// Closed sessions (in start order) and live ones (sorted by start) as one stream in start
/// order; at equal starts the closed session comes first.
pub fn merge_by_start<'a>(
    closed: BoxStream<'a, Result<HeldBy, sqlx::Error>>,
    live: Vec<HeldBy>,
) -> BoxStream<'a, Result<HeldBy, sqlx::Error>> {
    let state = (closed.peekable(), VecDeque::from(live));
    futures_util::stream::unfold(state, |(mut closed, mut live)| async move {
        let next = match std::pin::Pin::new(&mut closed).peek().await {
            Some(Ok(c)) if live.front().is_some_and(|l| l.started_at < c.started_at) => {
                live.pop_front().map(Ok)
            }
            Some(_) => closed.next().await,
            None => live.pop_front().map(Ok),
        };
        next.map(|n| (n, (closed, live)))
    })
    .boxed()
}
