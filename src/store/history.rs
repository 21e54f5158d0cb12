//! Session history and daily traffic: every closed session and the octets each PPPoE login
//! moved per day (Europe/Warsaw), written when the live map reports them.

use ipnet::Ipv6Net;
use sqlx::Row;
use time::OffsetDateTime;

use super::repo::{Page, Paged};
use super::Db;
use crate::on_pool;
use crate::sessions::Applied;

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
    closed: &[crate::sessions::ClosedSession],
    max: usize,
) -> Vec<&[crate::sessions::ClosedSession]> {
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

/// Rows per daily-traffic upsert statement.
const TRAFFIC_ROWS_PER_STATEMENT: usize = 256;

/// Write what one applied event (or expiry sweep) produced, in one transaction.
/// Idempotent: a session is unique by (nas, session_id, started_at) and a replayed record
/// rewrites the same row.
pub async fn record(db: &Db, applied: &Applied) -> Result<(), sqlx::Error> {
    // One row per (login, day) in each upsert: PostgreSQL refuses to update a row twice in
    // one statement.
    if applied.traffic.len() > 1 {
        let traffic = merge_traffic(&applied.traffic);
        write_merged(db, &applied.closed, &traffic).await
    } else {
        write_merged(db, &applied.closed, &applied.traffic).await
    }
}

/// [`record`] for traffic already summed per (login, day), as [`merge`] leaves it.
async fn write_merged(
    db: &Db,
    closed: &[crate::sessions::ClosedSession],
    traffic: &[crate::sessions::TrafficDelta],
) -> Result<(), sqlx::Error> {
    if closed.is_empty() && traffic.is_empty() {
        return Ok(());
    }
    let pg = matches!(db, Db::Postgres(_));
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
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
        // Daily traffic in multi-row upserts (one key per row: `merge` summed them).
        for chunk in traffic.chunks(TRAFFIC_ROWS_PER_STATEMENT) {
            let values = placeholders(pg, chunk.len(), 4);
            let sql = format!(
                "INSERT INTO traffic_daily (user_name, day, input_octets, output_octets) \
                 VALUES {values} ON CONFLICT (user_name, day) DO UPDATE SET \
                 input_octets = traffic_daily.input_octets + excluded.input_octets, \
                 output_octets = traffic_daily.output_octets + excluded.output_octets"
            );
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = q
                    .bind(&t.user_name)
                    .bind(crate::tz::warsaw_date(t.at))
                    .bind(t.input_octets as i64)
                    .bind(t.output_octets as i64);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    })
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

/// Where a history write ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Committed to the database.
    Committed,
    /// The database failed or was too slow: appended to the spool for replay.
    Spooled,
}

type Pending = (
    Applied,
    tokio::sync::oneshot::Sender<std::io::Result<Written>>,
);

/// Group commit for history: one task drains every pending write into one transaction
/// (daily traffic summed per login and day first), so the database sees one commit per
/// batch instead of one per RADIUS packet. When the database fails or does not commit within
/// `timeout`, the batch goes to the spool, so a caller's write is durable either way and is
/// never applied twice (the spool copy is written only when the commit did not happen).
#[derive(Clone, Debug)]
pub struct HistoryWriter {
    tx: tokio::sync::mpsc::Sender<Pending>,
}

/// Writes merged into one transaction at most.
const HISTORY_BATCH: usize = 4096;

impl HistoryWriter {
    pub fn spawn(db: Db, spool: crate::spool::Spool, timeout: std::time::Duration) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(HISTORY_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(HISTORY_BATCH);
            while rx.recv_many(&mut batch, HISTORY_BATCH).await > 0 {
                let (mut applied, replies): (Vec<Applied>, Vec<_>) = batch.drain(..).unzip();
                // One write (a replay round, already merged) needs no second merge.
                let merged = if applied.len() == 1 {
                    applied.remove(0)
                } else {
                    merge(applied)
                };
                let result = match tokio::time::timeout(
                    timeout,
                    write_merged(&db, &merged.closed, &merged.traffic),
                )
                .await
                {
                    Ok(Ok(())) => Ok(Written::Committed),
                    failed => {
                        match failed {
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "history write failed; spooling it")
                            }
                            _ => tracing::warn!("history write timed out; spooling it"),
                        }
                        metrics::counter!("ebok_store_errors_total", "store" => "sql").increment(1);
                        spool
                            .append(&crate::spool::SpoolRecord::History(merged))
                            .await
                            .map(|()| Written::Spooled)
                    }
                };
                for reply in replies {
                    let _ = reply.send(match &result {
                        Ok(w) => Ok(*w),
                        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                    });
                }
            }
        });
        HistoryWriter { tx }
    }

    /// Make `applied` durable in history (or the spool). Its traffic must hold at most one
    /// row per (login, Europe/Warsaw day), as [`merge`] leaves it and as one event or one
    /// expiry sweep produces it (PostgreSQL refuses to upsert a row twice in one statement).
    pub async fn write(&self, applied: Applied) -> std::io::Result<Written> {
        debug_assert_eq!(
            merge_traffic(&applied.traffic).len(),
            applied.traffic.len(),
            "history traffic not merged per login and day"
        );
        if applied.closed.is_empty() && applied.traffic.is_empty() {
            return Ok(Written::Committed);
        }
        let stopped = || std::io::Error::other("history writer stopped");
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send((applied, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Several outcomes as one: closed sessions side by side, traffic summed per login and
/// Europe/Warsaw day.
pub fn merge(all: impl IntoIterator<Item = Applied>) -> Applied {
    let mut closed = Vec::new();
    let mut traffic = Vec::new();
    for a in all {
        closed.extend(a.closed);
        traffic.extend(a.traffic);
    }
    Applied {
        stale: false,
        closed,
        traffic: merge_traffic(&traffic),
    }
}

/// Daily traffic summed per login and Europe/Warsaw day, in first-seen order.
fn merge_traffic(all: &[crate::sessions::TrafficDelta]) -> Vec<crate::sessions::TrafficDelta> {
    let mut out: Vec<crate::sessions::TrafficDelta> = Vec::new();
    let mut index: std::collections::HashMap<
        (&str, time::Date),
        usize,
        foldhash::fast::RandomState,
    > = Default::default();
    for t in all {
        let key = (t.user_name.as_str(), crate::tz::warsaw_date(t.at));
        match index.get(&key) {
            Some(&i) => {
                out[i].input_octets += t.input_octets;
                out[i].output_octets += t.output_octets;
            }
            None => {
                index.insert(key, out.len());
                out.push(t.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::TrafficDelta;
    use time::macros::datetime;

    fn delta(user: &str, at: OffsetDateTime, i: u64, o: u64) -> TrafficDelta {
        TrafficDelta {
            user_name: user.into(),
            at,
            input_octets: i,
            output_octets: o,
        }
    }

    #[test]
    fn merge_sums_traffic_per_login_and_warsaw_day() {
        let a = Applied {
            traffic: vec![
                delta("jan", datetime!(2026-07-01 10:00 UTC), 1, 2),
                // 22:30 UTC on 1 July is 2 July in Warsaw: another day.
                delta("jan", datetime!(2026-07-01 22:30 UTC), 100, 200),
            ],
            ..Applied::default()
        };
        let b = Applied {
            traffic: vec![
                delta("jan", datetime!(2026-07-01 12:00 UTC), 10, 20),
                delta("ola", datetime!(2026-07-01 12:00 UTC), 5, 5),
            ],
            ..Applied::default()
        };
        let m = merge([a, b]);
        let sums: Vec<(String, u64, u64)> = m
            .traffic
            .iter()
            .map(|t| (t.user_name.clone(), t.input_octets, t.output_octets))
            .collect();
        assert_eq!(
            sums,
            vec![
                ("jan".into(), 11, 22),
                ("jan".into(), 100, 200),
                ("ola".into(), 5, 5)
            ]
        );
    }

    #[tokio::test]
    async fn writer_commits_many_writes_and_spools_when_the_database_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testkit::sqlite_in(dir.path(), "h.sqlite").await;
        let spool = crate::spool::Spool::open(&dir.path().join("spool")).unwrap();
        let w = HistoryWriter::spawn(db.clone(), spool.clone(), std::time::Duration::from_secs(5));
        let at = datetime!(2026-07-01 10:00 UTC);
        let writes = (0..200).map(|_| {
            let w = w.clone();
            async move {
                w.write(Applied {
                    traffic: vec![delta("jan", at, 1, 1)],
                    ..Applied::default()
                })
                .await
            }
        });
        for r in futures_util::future::join_all(writes).await {
            assert_eq!(r.unwrap(), Written::Committed);
        }
        assert_eq!(
            traffic_on(&db, "jan", crate::tz::warsaw_date(at))
                .await
                .unwrap(),
            Some((200, 200))
        );
        // Database gone: the write is durable in the spool instead.
        if let Db::Sqlite(p) = &db {
            sqlx::query("DROP TABLE traffic_daily")
                .execute(p)
                .await
                .unwrap();
        }
        let r = w
            .write(Applied {
                traffic: vec![delta("jan", at, 1, 1)],
                ..Applied::default()
            })
            .await
            .unwrap();
        assert_eq!(r, Written::Spooled);
        assert_eq!(spool.depth(), 1);
    }
}
