//! Session history and daily traffic: every closed session and the octets each PPPoE login
//! moved per day (Europe/Warsaw), written when the live map reports them.

use ipnet::Ipv6Net;
use sqlx::Row;
use time::OffsetDateTime;

use super::repo::{Page, Paged};
use super::Db;
use crate::on_pool;
use ebok_live::history_writer::{HistoryError, HistoryStore};
use ebok_live::sessions::{Applied, TrafficReading};

/// One closed session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub nas: String,
    pub session_id: String,
    pub user_name: Option<String>,
    pub framed_ip: Option<std::net::Ipv4Addr>,
    pub ipv6_prefixes: Vec<Ipv6Net>,
    pub calling_station_id: Option<String>,
    pub started_at: OffsetDateTime,
    pub stopped_at: OffsetDateTime,
    pub input_octets: u64,
    pub output_octets: u64,
    pub terminate_cause: Option<u32>,
    pub close_reason: String,
}

/// The network of an IPv6 prefix as its upper and lower 64 bits, as stored.
pub(super) fn split_v6(net: &Ipv6Net) -> (i64, i64) {
    let bits = u128::from(net.network());
    ((bits >> 64) as u64 as i64, bits as u64 as i64)
}

/// The stored `ipv6_prefixes` text (comma-separated) as prefixes.
pub(super) fn parse_prefixes(text: &str) -> Vec<Ipv6Net> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_ts(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(v).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Closed sessions per multi-row `session_history` upsert (16 parameters each).
const HISTORY_ROWS_PER_STATEMENT: usize = 128;
/// Rows per multi-row `session_history_ipv6` insert (6 parameters each).
const IPV6_ROWS_PER_STATEMENT: usize = 256;

/// `(…), (…)` for `rows` rows of `width` parameters: `$n` for PostgreSQL, anonymous `?` for
/// SQLite (sqlx-sqlite looks `$n` up by name, quadratic in the number of parameters).
pub(crate) fn placeholders(pg: bool, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * (width * 5 + 3));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push(',');
            }
            n += 1;
            if pg {
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// Consecutive runs of at most `max` closed sessions in which no session key (nas, session
/// id, start) repeats: one upsert statement may not touch a row twice (PostgreSQL refuses;
/// and a repeat must see the row its predecessor wrote). Order is kept.
fn distinct_chunks(
    closed: &[ebok_live::sessions::ClosedSession],
    max: usize,
) -> Vec<&[ebok_live::sessions::ClosedSession]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, c) in closed.iter().enumerate() {
        let key = (
            c.session.nas.as_str(),
            c.session.session_id.as_str(),
            ts(c.session.started_at),
        );
        if i - start == max || !seen.insert(key) {
            out.push(&closed[start..i]);
            start = i;
            seen.clear();
            seen.insert(key);
        }
    }
    if start < closed.len() {
        out.push(&closed[start..]);
    }
    out
}

/// Session readings per daily-traffic upsert statement (16 parameters each).
const TRAFFIC_ROWS_PER_STATEMENT: usize = 128;

/// Write what one applied event (or expiry sweep, or replay round) produced, in one
/// transaction. Idempotent: a session is unique by (nas, session_id, started_at) and a
/// written again rewrites the same row; a traffic reading already written (or older than
/// one written) changes nothing (see `session_traffic` in the migrations).
pub async fn record(db: &Db, applied: &Applied) -> Result<(), sqlx::Error> {
    write_merged(db, &applied.closed, &applied.traffic).await
}

/// [`record`] for the parts of an [`Applied`].
async fn write_merged(
    db: &Db,
    closed: &[ebok_live::sessions::ClosedSession],
    traffic: &[TrafficReading],
) -> Result<(), sqlx::Error> {
    if closed.is_empty() && traffic.is_empty() {
        return Ok(());
    }
    let pg = matches!(db, Db::Postgres(_));
    // SQLite: BEGIN IMMEDIATE (db.begin), so that another writer waits under the busy
    // timeout instead of failing with "database is locked" once this one has read.
    let tx = db.begin().await?;
    crate::on_tx!(tx, tx => {
        let mut tx = tx;
        // Closed sessions in multi-row upserts; each statement returns the ids of its rows.
        // The IPv6 index rows of a row that existed already (a replayed record) are replaced;
        // a new row has none to delete. New rows are told apart by PostgreSQL's `xmax = 0`,
        // and in SQLite (one writer; a transaction that read before another's commit fails)
        // by an id above the largest one before this transaction.
        let sqlite_max_id: i64 = if pg || closed.is_empty() {
            0
        } else {
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM session_history")
                .fetch_one(&mut *tx)
                .await?
        };
        for chunk in distinct_chunks(closed, HISTORY_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO session_history (nas, nas_client, session_id, user_name, framed_ip, \
                 ipv6_prefixes, calling_station_id, nas_port_id, started_at, stopped_at, \
                 input_octets, output_octets, input_packets, output_packets, terminate_cause, \
                 close_reason) \
                 VALUES {} \
                 ON CONFLICT (nas, session_id, started_at) DO UPDATE SET \
                 stopped_at = excluded.stopped_at, input_octets = excluded.input_octets, \
                 output_octets = excluded.output_octets, input_packets = excluded.input_packets, \
                 output_packets = excluded.output_packets, \
                 terminate_cause = excluded.terminate_cause, close_reason = excluded.close_reason \
                 RETURNING id, nas, session_id, started_at{}",
                placeholders(pg, chunk.len(), 16),
                if pg { ", (xmax = 0)" } else { "" }
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                let s = &c.session;
                let prefixes = s
                    .ipv6_prefixes
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                q = q
                    .bind(&s.nas)
                    .bind(&s.nas_client)
                    .bind(&s.session_id)
                    .bind(&s.user_name)
                    .bind(s.framed_ip.map(|ip| i64::from(u32::from(ip))))
                    .bind(prefixes)
                    .bind(&s.calling_station_id)
                    .bind(&s.nas_port_id)
                    .bind(ts(s.started_at))
                    .bind(ts(c.stopped_at))
                    .bind(s.input_octets as i64)
                    .bind(s.output_octets as i64)
                    .bind(s.input_packets as i64)
                    .bind(s.output_packets as i64)
                    .bind(c.terminate_cause.map(i64::from))
                    .bind(c.reason.label());
            }
            let mut ids = std::collections::HashMap::with_capacity(chunk.len());
            let mut existed = Vec::new();
            for row in q.fetch_all(&mut *tx).await? {
                let id: i64 = row.try_get(0)?;
                let key: (String, String, i64) = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
                let new = if pg { row.try_get::<bool, _>(4)? } else { id > sqlite_max_id };
                if !new {
                    existed.push(id);
                }
                ids.insert(key, id);
            }
            let chunk_ids = chunk
                .iter()
                .map(|c| {
                    let s = &c.session;
                    ids.remove(&(s.nas.clone(), s.session_id.clone(), ts(s.started_at)))
                        .ok_or_else(|| {
                            sqlx::Error::Protocol("session_history upsert returned no id".into())
                        })
                })
                .collect::<Result<Vec<i64>, _>>()?;
            if !existed.is_empty() {
                let sql = format!(
                    "DELETE FROM session_history_ipv6 WHERE history_id IN ({})",
                    (1..=existed.len())
                        .map(|i| if pg { format!("${i}") } else { "?".to_owned() })
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let mut q = sqlx::query(&sql);
                for id in &existed {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx).await?;
            }
            let mut rows = Vec::new();
            for (c, &id) in chunk.iter().zip(&chunk_ids) {
                for p in &c.session.ipv6_prefixes {
                    rows.push((id, p, ts(c.session.started_at), ts(c.stopped_at)));
                }
            }
            for part in rows.chunks(IPV6_ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO session_history_ipv6 \
                     (history_id, net_hi, net_lo, prefix_len, started_at, stopped_at) VALUES {} \
                     ON CONFLICT DO NOTHING",
                    placeholders(pg, part.len(), 6)
                );
                let mut q = sqlx::query(&sql);
                for (id, p, started, stopped) in part {
                    let (hi, lo) = split_v6(p);
                    q = q
                        .bind(*id)
                        .bind(hi)
                        .bind(lo)
                        .bind(i16::from(p.prefix_len()))
                        .bind(*started)
                        .bind(*stopped);
                }
                q.execute(&mut *tx).await?;
            }
        }
        for chunk in reading_chunks(traffic, TRAFFIC_ROWS_PER_STATEMENT) {
            let sql = readings_sql(pg, chunk.len());
            let mut q = sqlx::query(&sql);
            for b in chunk.iter().map(|r| reading_binds(r)) {
                q = q.bind(b.nas).bind(b.session_id).bind(b.started_at).bind(b.day);
                q = q.bind(b.user_name);
                for _ in 0..2 {
                    q = q.bind(b.nas).bind(b.session_id).bind(b.started_at).bind(b.day);
                }
                q = q.bind(b.input).bind(b.output).bind(b.at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    })
}

/// Largest counter value history takes (2^53 octets, 9 PB): a session's octets and their
/// sums per day stay far from the 64-bit limit whatever a NAS sends.
const MAX_COUNTED_OCTETS: u64 = 1 << 53;

/// One upsert of `session_traffic` for `rows` readings of distinct sessions (see the
/// migration), 16 parameters each (see [`reading_binds`]): a new (session, day) row takes
/// as base the session's newest counters of an earlier day; an existing row takes the
/// reading only when it is newer than the row's, carrying what was counted when the
/// counters went backwards.
fn readings_sql(pg: bool, rows: usize) -> String {
    let mut values = String::new();
    let mut n = 0;
    let mut p = || {
        n += 1;
        if pg {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    };
    for i in 0..rows {
        if i > 0 {
            values.push(',');
        }
        let head: Vec<String> = (0..5).map(|_| p()).collect();
        let mut base = |col: &str| {
            format!(
                "COALESCE((SELECT b.{col} FROM session_traffic b WHERE b.nas = {} AND \
                 b.session_id = {} AND b.started_at = {} AND b.day < {} \
                 ORDER BY b.day DESC LIMIT 1), 0)",
                p(),
                p(),
                p(),
                p()
            )
        };
        let base_in = base("last_in");
        let base_out = base("last_out");
        let tail: Vec<String> = (0..3).map(|_| p()).collect();
        values.push_str(&format!(
            "({}, {base_in}, {base_out}, {})",
            head.join(", "),
            tail.join(", ")
        ));
    }
    let back = "(excluded.last_in < session_traffic.last_in OR \
                excluded.last_out < session_traffic.last_out)";
    format!(
        "INSERT INTO session_traffic (nas, session_id, started_at, day, user_name, base_in, \
         base_out, last_in, last_out, last_at) VALUES {values} \
         ON CONFLICT (nas, session_id, started_at, day) DO UPDATE SET \
         carry_in = CASE WHEN {back} THEN session_traffic.carry_in + session_traffic.last_in \
         - session_traffic.base_in ELSE session_traffic.carry_in END, \
         carry_out = CASE WHEN {back} THEN session_traffic.carry_out + session_traffic.last_out \
         - session_traffic.base_out ELSE session_traffic.carry_out END, \
         base_in = CASE WHEN {back} THEN 0 ELSE session_traffic.base_in END, \
         base_out = CASE WHEN {back} THEN 0 ELSE session_traffic.base_out END, \
         last_in = excluded.last_in, last_out = excluded.last_out, last_at = excluded.last_at \
         WHERE excluded.last_at > session_traffic.last_at OR \
         (excluded.last_at = session_traffic.last_at AND \
         (excluded.last_in <> session_traffic.last_in OR \
         excluded.last_out <> session_traffic.last_out))"
    )
}

/// The values [`readings_sql`] binds for one reading, in order: the row's key and login,
/// the key again for each of the two base lookups, then the counters and their time.
struct ReadingBinds<'a> {
    nas: &'a str,
    session_id: &'a str,
    started_at: i64,
    day: time::Date,
    user_name: &'a str,
    input: i64,
    output: i64,
    at: i64,
}

fn reading_binds(r: &TrafficReading) -> ReadingBinds<'_> {
    ReadingBinds {
        nas: &r.nas,
        session_id: &r.session_id,
        started_at: ts(r.started_at),
        day: crate::tz::warsaw_date(r.at),
        user_name: &r.user_name,
        input: r.input_octets.min(MAX_COUNTED_OCTETS) as i64,
        output: r.output_octets.min(MAX_COUNTED_OCTETS) as i64,
        at: ts_nanos(r.at),
    }
}

fn ts_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// Readings in the order given, in statements of at most `max` in which no session repeats
/// (a new day's base must see the row of the day before, written by an earlier statement).
/// Consecutive readings of a session on one day whose counters only grew need only the
/// newest: it is kept in place of the earlier one.
fn reading_chunks(readings: &[TrafficReading], max: usize) -> Vec<Vec<&TrafficReading>> {
    type SessionKey<'a> = (&'a str, &'a str, OffsetDateTime);
    fn key(r: &TrafficReading) -> SessionKey<'_> {
        (r.nas.as_str(), r.session_id.as_str(), r.started_at)
    }
    let mut kept: Vec<&TrafficReading> = Vec::with_capacity(readings.len());
    let mut newest: std::collections::HashMap<SessionKey<'_>, usize, foldhash::fast::RandomState> =
        Default::default();
    for r in readings {
        if let Some(&i) = newest.get(&key(r)) {
            let k = kept[i];
            if crate::tz::warsaw_date(k.at) == crate::tz::warsaw_date(r.at)
                && r.at >= k.at
                && r.input_octets >= k.input_octets
                && r.output_octets >= k.output_octets
            {
                kept[i] = r;
                continue;
            }
        }
        newest.insert(key(r), kept.len());
        kept.push(r);
    }
    let mut out: Vec<Vec<&TrafficReading>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in kept {
        if out.is_empty() || out.last().is_some_and(|c| c.len() == max) || !seen.insert(key(r)) {
            out.push(Vec::new());
            seen.clear();
            seen.insert(key(r));
        }
        out.last_mut().expect("pushed above").push(r);
    }
    out
}

fn row_to_history<R>(row: &R) -> Result<HistoryRow, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let framed: Option<i64> = row.try_get("framed_ip")?;
    let prefixes: String = row.try_get("ipv6_prefixes")?;
    let cause: Option<i64> = row.try_get("terminate_cause")?;
    Ok(HistoryRow {
        nas: row.try_get("nas")?,
        session_id: row.try_get("session_id")?,
        user_name: row.try_get("user_name")?,
        framed_ip: framed.map(|v| std::net::Ipv4Addr::from(v as u32)),
        ipv6_prefixes: parse_prefixes(&prefixes),
        calling_station_id: row.try_get("calling_station_id")?,
        started_at: from_ts(row.try_get("started_at")?),
        stopped_at: from_ts(row.try_get("stopped_at")?),
        input_octets: row.try_get::<i64, _>("input_octets")? as u64,
        output_octets: row.try_get::<i64, _>("output_octets")? as u64,
        terminate_cause: cause.map(|c| c as u32),
        close_reason: row.try_get("close_reason")?,
    })
}

/// Octets a PPPoE login moved on one Europe/Warsaw day: (input, output).
pub async fn traffic_on(
    db: &Db,
    user_name: &str,
    day: time::Date,
) -> Result<Option<(u64, u64)>, sqlx::Error> {
    let sql = "SELECT input_octets, output_octets FROM traffic_daily \
               WHERE user_name = $1 AND day = $2";
    let row: Option<(i64, i64)> = on_pool!(db, pool => sqlx::query_as(sql)
        .bind(user_name)
        .bind(day)
        .fetch_optional(pool)
        .await?);
    Ok(row.map(|(i, o)| (i as u64, o as u64)))
}

/// `$from, $from+1, …` for `n` bound values (an `IN (…)` list).
fn in_list(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Closed sessions of these PPPoE logins, newest first, one page of them (the index
/// `(user_name, started_at)` serves both the count and the page).
pub async fn sessions_of(
    db: &Db,
    logins: &[String],
    page: Page,
) -> Result<Paged<HistoryRow>, sqlx::Error> {
    if logins.is_empty() {
        return Ok(Paged {
            items: Vec::new(),
            total: 0,
            page,
        });
    }
    let n = logins.len();
    let list = in_list(1, n);
    let count_sql = format!("SELECT COUNT(*) FROM session_history WHERE user_name IN ({list})");
    let page_sql = format!(
        "SELECT h.nas, h.session_id, h.user_name, h.framed_ip, h.ipv6_prefixes, \
         h.calling_station_id, h.started_at, h.stopped_at, h.input_octets, h.output_octets, \
         h.terminate_cause, h.close_reason FROM session_history h \
         WHERE h.user_name IN ({list}) ORDER BY h.started_at DESC, h.id DESC \
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    on_pool!(db, pool => {
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        for l in logins {
            count = count.bind(l);
        }
        let total = count.fetch_one(pool).await?;
        let mut q = sqlx::query(&page_sql);
        for l in logins {
            q = q.bind(l);
        }
        let items = q
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(pool)
            .await?
            .iter()
            .map(row_to_history)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Paged {
            items,
            total: total.max(0) as u64,
            page,
        })
    })
}

/// Octets of some PPPoE logins on one Europe/Warsaw day, summed over the logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayTraffic {
    pub day: time::Date,
    /// Acct-Input-Octets: what the subscriber sent (upload).
    pub input_octets: u64,
    /// Acct-Output-Octets: what the subscriber received (download).
    pub output_octets: u64,
}

/// Daily traffic of these PPPoE logins from `from` to `to` (inclusive), days without
/// traffic left out, oldest first.
pub async fn traffic_between(
    db: &Db,
    logins: &[String],
    from: time::Date,
    to: time::Date,
) -> Result<Vec<DayTraffic>, sqlx::Error> {
    if logins.is_empty() {
        return Ok(Vec::new());
    }
    let n = logins.len();
    // SUM of BIGINT is NUMERIC on PostgreSQL: cast back.
    let sql = format!(
        "SELECT day, CAST(SUM(input_octets) AS BIGINT), CAST(SUM(output_octets) AS BIGINT) \
         FROM traffic_daily WHERE user_name IN ({}) AND day >= ${} AND day <= ${} \
         GROUP BY day ORDER BY day",
        in_list(1, n),
        n + 1,
        n + 2
    );
    let rows: Vec<(time::Date, i64, i64)> = on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql);
        for l in logins {
            q = q.bind(l);
        }
        q.bind(from).bind(to).fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(day, i, o)| DayTraffic {
            day,
            input_octets: i.max(0) as u64,
            output_octets: o.max(0) as u64,
        })
        .collect())
}

/// The SQL history as the history writer's store: one commit, bounded by its time limit,
/// with its metrics.
#[async_trait::async_trait]
impl HistoryStore for Db {
    async fn commit(
        &self,
        applied: &Applied,
        limit: std::time::Duration,
    ) -> Result<(), HistoryError> {
        commit(self, applied, limit)
            .await
            .map_err(|e| HistoryError {
                refused_for_good: refused_for_good(&e),
                message: e.to_string(),
            })
    }

    async fn ping(&self) -> Result<(), HistoryError> {
        Db::ping(self).await.map_err(|e| HistoryError {
            refused_for_good: false,
            message: e.to_string(),
        })
    }
}

/// One history commit, bounded by `timeout`, with its metrics.
async fn commit(
    db: &Db,
    applied: &Applied,
    timeout: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(timeout, record(db, applied))
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
    metrics::histogram!("ebok_store_latency_seconds", "store" => "sql", "op" => "history")
        .record(started.elapsed().as_secs_f64());
    match &result {
        Ok(()) => {
            metrics::counter!("ebok_sessions_closed_total").increment(applied.closed.len() as u64)
        }
        Err(_) => metrics::counter!("ebok_store_errors_total", "store" => "sql").increment(1),
    }
    result
}

/// True when the database refused the data itself (a value out of range, a constraint):
/// writing it again cannot succeed.
pub fn refused_for_good(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            // PostgreSQL classes 22 (data exception) and 23 (integrity constraint); SQLite
            // reports constraints and type mismatches with these kinds.
            d.code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
                || matches!(
                    d.kind(),
                    sqlx::error::ErrorKind::UniqueViolation
                        | sqlx::error::ErrorKind::ForeignKeyViolation
                        | sqlx::error::ErrorKind::NotNullViolation
                        | sqlx::error::ErrorKind::CheckViolation
                )
        }
        sqlx::Error::Encode(_) | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebok_live::history_writer::{HistoryWriter, Written};
    use time::macros::datetime;

    /// A reading of session `sid` of login `user`, started at 08:00 UTC on 1 July 2026.
    pub(crate) fn reading(
        user: &str,
        sid: &str,
        at: OffsetDateTime,
        i: u64,
        o: u64,
    ) -> TrafficReading {
        TrafficReading {
            nas: "10.0.0.1".into(),
            session_id: sid.into(),
            started_at: datetime!(2026-07-01 08:00 UTC),
            user_name: user.into(),
            at,
            input_octets: i,
            output_octets: o,
        }
    }

    #[test]
    fn readings_go_in_statements_of_distinct_sessions_the_grown_ones_collapsed() {
        let t = |h: u8| datetime!(2026-07-01 10:00 UTC) + time::Duration::hours(h.into());
        let all = [
            reading("jan", "a", t(0), 10, 10),
            reading("ola", "b", t(0), 1, 1),
            reading("jan", "a", t(1), 20, 20), // grew: replaces the first
            reading("jan", "a", t(2), 5, 5),   // went backwards: kept, next statement
            reading("jan", "a", t(13), 50, 50), // 2 July in Warsaw: kept, next statement
        ];
        let chunks = reading_chunks(&all, 128);
        let shape: Vec<Vec<(&str, u64)>> = chunks
            .iter()
            .map(|c| {
                c.iter()
                    .map(|r| (r.session_id.as_str(), r.input_octets))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![vec![("a", 20), ("b", 1)], vec![("a", 5)], vec![("a", 50)]]
        );
        assert_eq!(reading_chunks(&all[..2], 1).len(), 2);
    }

    #[tokio::test]
    async fn writer_commits_many_writes_and_spools_when_the_database_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testkit::sqlite_in(dir.path(), "h.sqlite").await;
        let spool = ebok_live::journal::JournalLog::open(&dir.path().join("spool")).unwrap();
        let w = HistoryWriter::spawn(
            std::sync::Arc::new(db.clone()),
            spool.clone(),
            std::time::Duration::from_secs(5),
        );
        let at = datetime!(2026-07-01 10:00 UTC);
        let writes = (0..200).map(|i| {
            let w = w.clone();
            async move {
                w.write(Applied {
                    traffic: vec![reading("jan", &format!("s{i}"), at, 1, 1)],
                    ..Applied::default()
                })
                .await
            }
        });
        for r in futures_util::future::join_all(writes).await {
            assert_eq!(r.unwrap(), Written::Committed);
        }
        let day = crate::tz::warsaw_date(at);
        assert_eq!(traffic_on(&db, "jan", day).await.unwrap(), Some((200, 200)));
        // The same readings again (a replay): nothing more is counted.
        let again = (0..200)
            .map(|i| reading("jan", &format!("s{i}"), at, 1, 1))
            .collect();
        w.write_now(
            Applied {
                traffic: again,
                ..Applied::default()
            },
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(traffic_on(&db, "jan", day).await.unwrap(), Some((200, 200)));
        // Database gone: the write is durable in the journal instead; a direct write says why.
        if let Db::Sqlite(p) = &db {
            sqlx::query("DROP TABLE traffic_daily")
                .execute(p)
                .await
                .unwrap();
        }
        let one = || Applied {
            traffic: vec![reading("jan", "late", at, 1, 1)],
            ..Applied::default()
        };
        assert_eq!(w.write(one()).await.unwrap(), Written::Journaled);
        assert_eq!(spool.depth(), 1);
        assert!(w
            .write_now(one(), std::time::Duration::from_secs(5))
            .await
            .is_err());
    }

    /// The replay writes history records through the writer with its own patience, not the
    /// live store's timeout.
    #[tokio::test]
    async fn a_spooled_history_record_replays_even_when_its_commit_outlasts_the_store_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testkit::sqlite_in(dir.path(), "h.sqlite").await;
        let live = ebok_live::sessions::embedded::EmbeddedSessions::open(&dir.path().join("live"))
            .await
            .unwrap();
        let spool = ebok_live::journal::JournalLog::open(&dir.path().join("spool")).unwrap();
        let at = time::macros::datetime!(2026-07-01 10:00 UTC);
        let traffic = (0..5000)
            .map(|i| TrafficReading {
                nas: "10.0.0.1".into(),
                session_id: format!("s{i}"),
                started_at: at,
                user_name: format!("user{i}"),
                at,
                input_octets: 1,
                output_octets: 2,
            })
            .collect();
        spool
            .append(&ebok_live::journal::JournalRecord::History(Applied {
                traffic,
                ..Applied::default()
            }))
            .await
            .unwrap();
        // A store timeout no commit of 5,000 rows can meet: the replay must not use it
        // (it did, and retried the record forever).
        let ingest = ebok_live::ingest::Ingest::new(
            std::sync::Arc::new(live),
            std::sync::Arc::new(db.clone()),
            spool.clone(),
            ebok_live::ingest::AckAfter::Store,
            std::time::Duration::from_micros(1),
            None,
            ebok_live::dead_letter::DeadLetters::new(dir.path()),
        );
        assert_eq!(ingest.replay().await.unwrap(), 1);
        assert_eq!(spool.depth(), 0);
        let day = crate::tz::warsaw_date(at);
        for user in ["user0", "user4999"] {
            assert_eq!(traffic_on(&db, user, day).await.unwrap(), Some((1, 2)));
        }
    }
}
