//! IP attribution for abuse and legal requests, as the ops API and `ebok attribution` answer
//! it: `GET /api/v1/attribution?ip=…&at=…` (who held an address at an instant, JSON) and
//! `GET /api/v1/attribution/export.csv?from=…&to=…[&ip=…]` (every session of an address, or
//! of all addresses, in a period; CSV, streamed). Every query is audited — who, from where,
//! what was asked and how many sessions were answered — before the answer leaves.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::stream::{BoxStream, StreamExt};
use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{json_response, ApiError, ContractView, OpsCaller, SubscriberView};
use crate::state::AppState;
use crate::web::download::attachment;
use ebok_live::sessions::LiveSessions;
use ebok_store::attribution::{self as store, HeldBy, Source};
use ebok_store::identify::IdentifyError;
use ebok_store::{audit, Db};

#[cfg(test)]
mod tests;

/// The longest period one export may cover.
pub(crate) const MAX_EXPORT_DAYS: i64 = 366;

/// Rows serialised per chunk of the streamed CSV.
const CSV_ROWS_PER_CHUNK: usize = 512;

/// Why an attribution query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    /// The question itself is wrong: the message names the value and the reason.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] IdentifyError),
    #[error("writing the answer: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for AttributionError {
    fn from(e: sqlx::Error) -> Self {
        AttributionError::Store(IdentifyError::Db(e.into()))
    }
}

impl From<AttributionError> for ApiError {
    fn from(e: AttributionError) -> ApiError {
        match e {
            AttributionError::BadInput(m) => ApiError::bad_request(m),
            AttributionError::Store(IdentifyError::Live(e)) => {
                tracing::error!(error = %e, "attribution: live session lookup failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the live session store is unavailable",
                )
            }
            other => ApiError::internal("attribution query failed", &other),
        }
    }
}

fn bad(message: String) -> AttributionError {
    AttributionError::BadInput(message)
}

/// An IPv4 or IPv6 address (an IPv4-mapped IPv6 address is its IPv4 address).
pub fn parse_ip(text: &str) -> Result<IpAddr, AttributionError> {
    text.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| bad(format!("ip {text:?} is not an IPv4 or IPv6 address")))
}

/// An instant given as RFC 3339 (`2026-01-31T12:00:00Z`, any offset) or as Unix seconds.
pub(crate) fn parse_instant(what: &str, text: &str) -> Result<OffsetDateTime, AttributionError> {
    let t = text.trim();
    let parsed = if !t.is_empty()
        && t.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        t.parse::<i64>()
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
    } else {
        OffsetDateTime::parse(t, &Rfc3339).ok().or_else(|| {
            // Europe/Warsaw wall-clock time, as an operator types it.
            let minutes = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
            let seconds =
                time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
            time::PrimitiveDateTime::parse(t, minutes)
                .or_else(|_| time::PrimitiveDateTime::parse(t, seconds))
                .ok()
                .map(ebok_store::tz::from_warsaw)
        })
    };
    parsed
        .map(|at| at.to_offset(time::UtcOffset::UTC))
        .ok_or_else(|| {
            bad(format!(
                "{what} {text:?} is neither an RFC 3339 time (2026-01-31T12:00:00Z), a Warsaw \
                 time (2026-01-31 13:00) nor Unix seconds"
            ))
        })
}

/// A period for the export: `from` ≤ `to`, at most [`MAX_EXPORT_DAYS`] long.
pub(crate) fn parse_period(
    from: &str,
    to: &str,
) -> Result<(OffsetDateTime, OffsetDateTime), AttributionError> {
    let (from, to) = (parse_instant("from", from)?, parse_instant("to", to)?);
    if to < from {
        return Err(bad(format!(
            "to ({}) is before from ({})",
            rfc3339(to),
            rfc3339(from)
        )));
    }
    if to - from > Duration::days(MAX_EXPORT_DAYS) {
        return Err(bad(format!(
            "the period is longer than {MAX_EXPORT_DAYS} days: export it in parts"
        )));
    }
    Ok((from, to))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Who held `ip` at `at`, live holder first: audited for `actor` before it is returned.
pub(crate) async fn lookup_audited(
    live: &dyn LiveSessions,
    db: &Db,
    (actor, caller_ip): (&str, Option<IpAddr>),
    ip: IpAddr,
    at: OffsetDateTime,
) -> Result<Vec<HeldBy>, AttributionError> {
    let rows = store::attribute(live, db, ip, at).await?;
    let what = format!("ip {ip} at {}", rfc3339(at));
    record(
        db,
        (actor, caller_ip),
        "attribution_lookup",
        &what,
        rows.len(),
    )
    .await?;
    Ok(rows)
}

/// Count and audit for `actor` a query for the sessions of `ip` (or of all addresses)
/// overlapping a period; gives the live ones among them, for [`period_rows`].
pub(crate) async fn audit_period(
    live: &dyn LiveSessions,
    db: &Db,
    (actor, caller_ip): (&str, Option<IpAddr>),
    ip: Option<IpAddr>,
    (from, to): (OffsetDateTime, OffsetDateTime),
) -> Result<Vec<HeldBy>, AttributionError> {
    let live_rows = store::live_between(live, db, ip, to).await?;
    let closed = store::count_closed_between(db, ip, from, to).await?;
    let what = format!(
        "{} from {} to {}",
        ip.map_or_else(|| "all addresses".to_owned(), |ip| format!("ip {ip}")),
        rfc3339(from),
        rfc3339(to)
    );
    let n = closed as usize + live_rows.len();
    record(db, (actor, caller_ip), "attribution_export", &what, n).await?;
    Ok(live_rows)
}

/// The sessions [`audit_period`] counted, in start order, streamed from the database.
pub(crate) fn period_rows(
    db: &Db,
    ip: Option<IpAddr>,
    (from, to): (OffsetDateTime, OffsetDateTime),
    live_rows: Vec<HeldBy>,
) -> BoxStream<'_, Result<HeldBy, sqlx::Error>> {
    store::merge_by_start(store::closed_between(db, ip, from, to), live_rows)
}

async fn record(
    db: &Db,
    (actor, caller_ip): (&str, Option<IpAddr>),
    action: &str,
    what: &str,
    rows: usize,
) -> Result<(), AttributionError> {
    let detail = format!("{what}: {rows} sessions");
    let mut tx = db.begin().await?;
    audit::append(&mut tx, actor, action, caller_ip, &detail)
        .await
        .map_err(IdentifyError::from)?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CSV and the console table
// ---------------------------------------------------------------------------------------------

/// The export's columns.
pub(crate) const CSV_HEADER: [&str; 15] = [
    "source",
    "nas",
    "nas_client",
    "session_id",
    "login",
    "mac",
    "ipv4",
    "ipv6_prefixes",
    "started_at",
    "stopped_at",
    "terminate_cause",
    "close_reason",
    "subscriber_ext_id",
    "subscriber_name",
    "contract_number",
];

fn fields(r: &HeldBy) -> [String; 15] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let (subscriber_ext_id, subscriber_name, contract) = match &r.holder {
        Some((s, c)) => (s.ext_id.clone(), s.display_name(), c.number.clone()),
        None => Default::default(),
    };
    [
        r.source.label().to_owned(),
        r.nas.clone(),
        r.nas_client.clone(),
        r.session_id.clone(),
        opt(&r.user_name),
        opt(&r.calling_station_id),
        r.framed_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        r.ipv6_prefixes
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        rfc3339(r.started_at),
        r.stopped_at.map(rfc3339).unwrap_or_default(),
        r.terminate_cause.map(|c| c.to_string()).unwrap_or_default(),
        opt(&r.close_reason),
        subscriber_ext_id,
        subscriber_name,
        contract,
    ]
}

/// A cell a spreadsheet could run as a formula gets a leading `'`, so the abuse desk that
/// opens the export sees text (OWASP "CSV injection"): one that starts with `=`, `+`, `-`,
/// `@`, a tab, CR or LF (after spaces), or has such a start after a `;`, `,`, tab or `|`
/// (a Polish spreadsheet splits on `;`: a PPPoE login `;=1+1` would become a formula
/// cell). Every cell is also quoted (see [`csv_chunk`]), so no separator inside one splits
/// it in a spreadsheet that honours quotes.
fn spreadsheet_safe(cell: String) -> String {
    let formula = |piece: &str| {
        matches!(
            piece.trim_start_matches(' ').chars().next(),
            Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n')
        )
    };
    let dangerous = formula(&cell) || cell.split([';', ',', '\t', '|']).skip(1).any(formula);
    if dangerous {
        format!("'{cell}")
    } else {
        cell
    }
}

/// CSV (RFC 4180: comma, every cell quoted, quotes doubled) of `rows`, after the header row
/// when `header`.
pub(crate) fn csv_chunk(header: bool, rows: &[HeldBy]) -> std::io::Result<Bytes> {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::with_capacity(rows.len() * 180 + 200));
    if header {
        w.write_record(CSV_HEADER)?;
    }
    for r in rows {
        w.write_record(fields(r).map(spreadsheet_safe))?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The rows as an aligned table for the console: times in Europe/Warsaw (UTC with
/// `utc`), terminate causes by name, and what NAS devices or billing files sent with its
/// control characters escaped (see [`crate::terminal`]).
pub(crate) fn write_table(out: &mut dyn Write, rows: &[HeldBy], utc: bool) -> std::io::Result<()> {
    use crate::terminal::{safe, terminate_cause, time};
    let header = [
        "source",
        "started",
        "stopped",
        "login",
        "mac",
        "ipv4",
        "ipv6",
        "nas",
        "session",
        "subscriber",
        "contract",
        "closed by",
    ];
    let dash = |v: String| if v.is_empty() { "-".to_owned() } else { v };
    let text = |v: &str| dash(safe(v).into_owned());
    let cells: Vec<Vec<String>> = std::iter::once(header.map(str::to_owned).to_vec())
        .chain(rows.iter().map(|r| {
            let (subscriber, contract) = match &r.holder {
                Some((s, c)) => (
                    format!("{} {}", s.ext_id, s.display_name()),
                    c.number.clone(),
                ),
                None => Default::default(),
            };
            let closed = match (&r.close_reason, r.terminate_cause) {
                (Some(reason), Some(cause)) => format!("{reason}: {}", terminate_cause(cause)),
                (Some(reason), None) => reason.clone(),
                (None, _) => String::new(),
            };
            vec![
                r.source.label().to_owned(),
                time(r.started_at, utc),
                dash(r.stopped_at.map(|t| time(t, utc)).unwrap_or_default()),
                text(r.user_name.as_deref().unwrap_or("")),
                text(r.calling_station_id.as_deref().unwrap_or("")),
                dash(r.framed_ip.map(|ip| ip.to_string()).unwrap_or_default()),
                dash(
                    r.ipv6_prefixes
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                text(&r.nas),
                text(&r.session_id),
                text(&subscriber),
                text(&contract),
                text(&closed),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The console: `ebok attribution`
// ---------------------------------------------------------------------------------------------

/// What `ebok attribution` asks.
pub enum CliQuery {
    /// Who held `ip` at `at` (RFC 3339 or Unix seconds; now when absent).
    At { ip: IpAddr, at: Option<String> },
    /// The sessions of `ip` (or of all addresses) in a period, as CSV or a table.
    Period {
        ip: Option<IpAddr>,
        from: String,
        to: String,
        csv: bool,
    },
}

/// Answer `query` on `out`, audited for `actor` (`cli:<user>`); table times in
/// Europe/Warsaw, or UTC with `utc`.
pub async fn cli(
    live: &dyn LiveSessions,
    db: &Db,
    actor: &str,
    query: CliQuery,
    utc: bool,
    out: &mut dyn Write,
) -> Result<(), AttributionError> {
    match query {
        CliQuery::At { ip, at } => {
            let at = match at {
                Some(text) => parse_instant("time", &text)?,
                None => ebok_store::repo::now(),
            };
            let rows = lookup_audited(live, db, (actor, None), ip.to_canonical(), at).await?;
            if rows.is_empty() {
                writeln!(
                    out,
                    "no session held {ip} at {}",
                    crate::terminal::time(at, utc)
                )?;
            } else {
                write_table(out, &rows, utc)?;
            }
        }
        CliQuery::Period { ip, from, to, csv } => {
            let period = parse_period(&from, &to)?;
            let ip = ip.map(|ip| ip.to_canonical());
            let live_rows = audit_period(live, db, (actor, None), ip, period).await?;
            let mut chunks =
                period_rows(db, ip, period, live_rows).ready_chunks(CSV_ROWS_PER_CHUNK);
            let mut table = Vec::new();
            if csv {
                out.write_all(&csv_chunk(true, &[])?)?;
            }
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
                if csv {
                    out.write_all(&csv_chunk(false, &chunk)?)?;
                } else {
                    table.extend(chunk);
                }
            }
            if !csv {
                write_table(out, &table, utc)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(super) struct LookupParams {
    ip: Option<String>,
    at: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ExportParams {
    ip: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Serialize)]
struct LookupBody {
    ip: IpAddr,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// The live holder first, then closed sessions (longest IPv6 prefix first, newest first).
    sessions: Vec<HeldView>,
}

#[derive(Debug, Serialize)]
struct HeldView {
    source: Source,
    nas: String,
    nas_client: String,
    session_id: String,
    login: Option<String>,
    /// Calling-Station-Id: the subscriber router's MAC.
    mac: Option<String>,
    framed_ip: Option<Ipv4Addr>,
    ipv6_prefixes: Vec<Ipv6Net>,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    /// `null` while the session is live.
    #[serde(with = "time::serde::rfc3339::option")]
    stopped_at: Option<OffsetDateTime>,
    terminate_cause: Option<u32>,
    close_reason: Option<String>,
    subscriber: Option<SubscriberView>,
    contract: Option<ContractView>,
}

impl From<HeldBy> for HeldView {
    fn from(h: HeldBy) -> HeldView {
        let (subscriber, contract) = match h.holder {
            Some((s, c)) => (Some(s.into()), Some(c.into())),
            None => (None, None),
        };
        HeldView {
            source: h.source,
            nas: h.nas,
            nas_client: h.nas_client,
            session_id: h.session_id,
            login: h.user_name,
            mac: h.calling_station_id,
            framed_ip: h.framed_ip,
            ipv6_prefixes: h.ipv6_prefixes,
            started_at: h.started_at,
            stopped_at: h.stopped_at,
            terminate_cause: h.terminate_cause,
            close_reason: h.close_reason,
            subscriber,
            contract,
        }
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("bad query parameters: {}", e.body_text())))
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .ok_or_else(|| ApiError::bad_request(format!("the query parameter {name} is required")))
}

/// `GET /api/v1/attribution?ip=IP[&at=TIME]`.
pub(super) async fn lookup(
    caller: OpsCaller,
    State(state): State<AppState>,
    params: Result<Query<LookupParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(params)?;
    let ip = parse_ip(required(&p.ip, "ip")?)?;
    let at = match &p.at {
        Some(text) => parse_instant("at", text)?,
        None => ebok_store::repo::now(),
    };
    let who = (caller.actor(), caller.ip);
    let rows = lookup_audited(state.live.as_ref(), &state.db, (&who.0, who.1), ip, at).await?;
    Ok(json_response(
        StatusCode::OK,
        &LookupBody {
            ip,
            at,
            sessions: rows.into_iter().map(HeldView::from).collect(),
        },
    ))
}

/// `GET /api/v1/attribution/export.csv?from=TIME&to=TIME[&ip=IP]`.
pub(super) async fn export(
    caller: OpsCaller,
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(params)?;
    let ip = match p.ip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(parse_ip(text)?),
    };
    let (from, to) = parse_period(required(&p.from, "from")?, required(&p.to, "to")?)?;
    let filename = format!(
        "attribution-{}-{}.csv",
        from.unix_timestamp(),
        to.unix_timestamp()
    );
    let actor = caller.actor();
    // Counted and audited here, before the first byte; the rows are then streamed by a task
    // that owns its database handle, through a small channel (at the client's pace).
    let live_rows = audit_period(
        state.live.as_ref(),
        &state.db,
        (&actor, caller.ip),
        ip,
        (from, to),
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let db = state.db.clone();
    tokio::spawn(async move {
        let mut chunks =
            period_rows(&db, ip, (from, to), live_rows).ready_chunks(CSV_ROWS_PER_CHUNK);
        if tx.send(csv_chunk(true, &[])).await.is_err() {
            return;
        }
        while let Some(chunk) = chunks.next().await {
            let bytes = match chunk.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(rows) => csv_chunk(false, &rows),
                Err(e) => {
                    tracing::error!(error = %e, "attribution export: database read failed");
                    Err(std::io::Error::other("export failed"))
                }
            };
            let failed = bytes.is_err();
            if tx.send(bytes).await.is_err() || failed {
                return;
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    Ok(attachment("text/csv; charset=utf-8", &filename, body))
}

#[cfg(test)]
mod csv_tests {
    #[test]
    fn formula_like_cells_are_defused() {
        assert_eq!(
            super::spreadsheet_safe("=HYPERLINK(1)".into()),
            "'=HYPERLINK(1)"
        );
        assert_eq!(super::spreadsheet_safe("@SUM(A1)".into()), "'@SUM(A1)");
        assert_eq!(super::spreadsheet_safe("-1+2".into()), "'-1+2");
        assert_eq!(
            super::spreadsheet_safe("jan.kowalski".into()),
            "jan.kowalski"
        );
        assert_eq!(super::spreadsheet_safe(String::new()), "");
        // Polish spreadsheets split on ';': a formula after one is defused too.
        for cell in [
            ";=1+1",
            "a;=1+1",
            "a, @SUM(A1)",
            "x|-2",
            "a\t=1",
            "  =1",
            "\n=1",
        ] {
            assert_eq!(
                super::spreadsheet_safe(cell.into()),
                format!("'{cell}"),
                "{cell:?}"
            );
        }
        assert_eq!(super::spreadsheet_safe("a;b,c".into()), "a;b,c");
    }
}
