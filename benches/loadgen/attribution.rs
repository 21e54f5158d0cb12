//! `ebok-bench attribution`: IP attribution on a large session history. Fills
//! `session_history` and `session_history_ipv6` fast (SQLite: one transaction of prepared
//! multi-row inserts with `synchronous=OFF`; PostgreSQL: `COPY … FROM STDIN`; secondary
//! indexes dropped for the fill and rebuilt after, as the migrations define them), then runs
//! random "who held this address at T" lookups through `ebok::store::attribution::held_at`
//! with a fixed concurrency and prints lookups/s, p50 and p99.
//!
//! The history: 65,536 IPv4 addresses (10.0.0.0/16) handed out daily, so address `n % 65536`
//! holds session `n` on day `n / 65536`; 100,000 logins; 30 % of sessions also carry a framed
//! /64 (2001:db9::/32) and a delegated /56 (2001:db8::/32). All of it is a pure function of
//! the session number, so the lookups know which answers must exist.

use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use ebok::store::Db;
use sqlx::{Connection, Executor};

use super::{percentile, XorShift};

#[derive(Args)]
pub struct AttributionArgs {
    /// Closed sessions in the history.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// sqlite://PATH or postgres://…/DATABASE (a PostgreSQL database is created if missing).
    /// It must be empty, or hold exactly --rows sessions from an earlier run (then reused).
    #[arg(long)]
    database_url: String,
    /// Timed lookups: 40 % IPv4 hits, 10 % IPv4 misses, 40 % IPv6 hits, 10 % IPv6 misses.
    #[arg(long, default_value_t = 100_000)]
    lookups: u64,
    /// Lookups in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

const IPV4_POOL: u64 = 65_536;
const DAY: i64 = 86_400;
/// 2025-01-01T00:00:00Z: day 0 of the generated history.
const BASE: i64 = 1_735_689_600;
/// Sessions per multi-row INSERT on SQLite (16 parameters each).
const SQLITE_ROWS_PER_STATEMENT: usize = 256;

/// SplitMix64: a well-mixed 64-bit value per session number.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Session `n` of the generated history.
struct Session {
    n: u64,
    h: u64,
}

impl Session {
    fn new(n: u64) -> Session {
        Session { n, h: mix(n) }
    }
    fn ipv4(&self) -> u32 {
        0x0a00_0000 + (self.n % IPV4_POOL) as u32
    }
    /// Within its address's day, after the previous holder's stop.
    fn started_at(&self) -> i64 {
        BASE + (self.n / IPV4_POOL) as i64 * DAY + (self.h % 3600) as i64
    }
    /// One to two hours before the day ends: the next holder starts after it.
    fn stopped_at(&self) -> i64 {
        self.started_at() + DAY - 3600 - 3600 - ((self.h >> 12) % 3600) as i64
    }
    fn login(&self) -> String {
        format!("u{:06}", (self.h >> 24) % 100_000)
    }
    fn has_ipv6(&self) -> bool {
        (self.h >> 44) % 10 < 3
    }
    /// (net_hi of the delegated /56, net_hi of the framed /64); both net_lo are 0.
    fn ipv6_nets(&self) -> (u64, u64) {
        let pd = 0x2001_0db8_0000_0000 | (((self.h >> 8) & 0xf_ffff) << 8);
        let wan = 0x2001_0db9_0000_0000 | (self.h >> 32);
        (pd, wan)
    }
    fn ipv6_text(&self) -> String {
        if !self.has_ipv6() {
            return String::new();
        }
        let (pd, wan) = self.ipv6_nets();
        let net = |hi: u64, len| ipnet::Ipv6Net::new((u128::from(hi) << 64).into(), len).unwrap();
        format!("{},{}", net(wan, 64), net(pd, 56))
    }
    fn mac(&self) -> String {
        let b = self.h.to_be_bytes();
        format!(
            "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4]
        )
    }
    fn nas(&self) -> String {
        format!("10.255.0.{}", self.n % 8)
    }
}

pub async fn attribution(args: AttributionArgs) -> anyhow::Result<()> {
    let pg = !args.database_url.starts_with("sqlite:");
    if pg {
        create_pg_database(&args.database_url).await?;
    }
    let db = Db::connect(&args.database_url)
        .await
        .context("opening the database")?;
    let existing: i64 = count(&db).await?;
    close(db).await;
    let backend = if pg { "postgres" } else { "sqlite" };
    if existing == 0 {
        let t = Instant::now();
        let (sessions_s, prefixes, indexes_s) = if pg {
            fill_pg(&args.database_url, args.rows).await?
        } else {
            fill_sqlite(&args.database_url, args.rows).await?
        };
        println!(
            "attribution fill ({backend}): {} sessions + {prefixes} IPv6 prefix rows in {:.1} s \
             (rows {sessions_s:.1} s, indexes and statistics {indexes_s:.1} s)",
            args.rows,
            t.elapsed().as_secs_f64()
        );
    } else if existing as u64 == args.rows {
        println!("attribution fill ({backend}): reusing {existing} sessions");
    } else {
        bail!(
            "the database holds {existing} sessions, not 0 or --rows {}",
            args.rows
        );
    }
    let db = Db::connect(&args.database_url).await?;
    println!(
        "attribution disk ({backend}): {:.2} GiB",
        disk_bytes(&db, &args.database_url).await? as f64 / f64::from(1u32 << 30)
    );
    lookups(&db, backend, &args).await?;
    exports(&db, backend, args.rows).await?;
    close(db).await;
    Ok(())
}

async fn count(db: &Db) -> anyhow::Result<i64> {
    let sql = "SELECT COUNT(*) FROM session_history";
    Ok(match db {
        Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
    })
}

async fn close(db: Db) {
    match db {
        Db::Sqlite(p) => p.close().await,
        Db::Postgres(p) => p.close().await,
    }
}

/// `CREATE DATABASE` the URL's database unless it exists (connecting to `postgres` first).
async fn create_pg_database(url: &str) -> anyhow::Result<()> {
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)?;
    let name = opts.get_database().unwrap_or("postgres").to_owned();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("database name {name:?}: letters, digits and _ only");
    }
    let mut admin = sqlx::PgConnection::connect_with(&opts.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // An identifier cannot be a bind parameter; the name was checked above.
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
    }
    Ok(())
}

async fn disk_bytes(db: &Db, url: &str) -> anyhow::Result<u64> {
    Ok(match db {
        Db::Postgres(p) => {
            let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(p)
                .await?;
            n as u64
        }
        Db::Sqlite(_) => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            let path = opts.get_filename().to_owned();
            let mut total = 0;
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            }
            total
        }
    })
}

const HISTORY_COLUMNS: &str = "id, nas, nas_client, session_id, user_name, framed_ip, \
    ipv6_prefixes, calling_station_id, nas_port_id, started_at, stopped_at, input_octets, \
    output_octets, input_packets, output_packets, terminate_cause, close_reason";
const IPV6_COLUMNS: &str = "history_id, net_hi, net_lo, prefix_len, started_at, stopped_at";

/// The secondary indexes of the history tables as the migrations made them: (name, DDL).
const INDEX_QUERY_SQLITE: &str = "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
    AND tbl_name IN ('session_history', 'session_history_ipv6') AND sql IS NOT NULL";
const INDEX_QUERY_PG: &str = "SELECT indexname::text, indexdef FROM pg_indexes \
    WHERE tablename IN ('session_history', 'session_history_ipv6') \
    AND indexdef NOT LIKE 'CREATE UNIQUE%'";

async fn fill_sqlite(url: &str, rows: u64) -> anyhow::Result<(f64, u64, f64)> {
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Off)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-1048576");
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(INDEX_QUERY_SQLITE)
        .fetch_all(&mut conn)
        .await?;
    for (name, _) in &indexes {
        conn.execute(format!("DROP INDEX {name}").as_str()).await?;
    }
    let t = Instant::now();
    let mut tx = conn.begin().await?;
    let statement = |table: &str, columns: &str, width: usize, n: usize| {
        let row = format!("({})", vec!["?"; width].join(","));
        format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            vec![row; n].join(",")
        )
    };
    let full = statement(
        "session_history",
        HISTORY_COLUMNS,
        17,
        SQLITE_ROWS_PER_STATEMENT,
    );
    let full6 = statement(
        "session_history_ipv6",
        IPV6_COLUMNS,
        6,
        SQLITE_ROWS_PER_STATEMENT,
    );
    let mut prefixes = 0u64;
    let mut pending6: Vec<[i64; 6]> = Vec::new();
    let mut n = 0u64;
    while n < rows {
        let k = (rows - n).min(SQLITE_ROWS_PER_STATEMENT as u64) as usize;
        let sql = if k == SQLITE_ROWS_PER_STATEMENT {
            full.clone()
        } else {
            statement("session_history", HISTORY_COLUMNS, 17, k)
        };
        let mut q = sqlx::query(&sql);
        for i in n..n + k as u64 {
            let s = Session::new(i);
            q = q
                .bind(i as i64 + 1)
                .bind(s.nas())
                .bind("bras")
                .bind(format!("{i:016x}"))
                .bind(s.login())
                .bind(i64::from(s.ipv4()))
                .bind(s.ipv6_text())
                .bind(s.mac())
                .bind(None::<String>)
                .bind(s.started_at())
                .bind(s.stopped_at())
                .bind((s.h % 1_000_000_000) as i64)
                .bind((s.h % 10_000_000_000) as i64)
                .bind(0i64)
                .bind(0i64)
                .bind(1i64)
                .bind("stop");
            if s.has_ipv6() {
                let (pd, wan) = s.ipv6_nets();
                for (hi, len) in [(wan, 64), (pd, 56)] {
                    pending6.push([
                        i as i64 + 1,
                        hi as i64,
                        0,
                        len,
                        s.started_at(),
                        s.stopped_at(),
                    ]);
                }
            }
        }
        q.execute(&mut *tx).await?;
        while pending6.len() >= SQLITE_ROWS_PER_STATEMENT
            || (n + k as u64 == rows && !pending6.is_empty())
        {
            let take = pending6.len().min(SQLITE_ROWS_PER_STATEMENT);
            let sql = if take == SQLITE_ROWS_PER_STATEMENT {
                full6.clone()
            } else {
                statement("session_history_ipv6", IPV6_COLUMNS, 6, take)
            };
            let mut q = sqlx::query(&sql);
            for r in pending6.drain(..take) {
                for v in r {
                    q = q.bind(v);
                }
            }
            q.execute(&mut *tx).await?;
            prefixes += take as u64;
        }
        n += k as u64;
    }
    tx.commit().await?;
    let rows_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (_, ddl) in &indexes {
        conn.execute(ddl.as_str()).await?;
    }
    conn.execute("ANALYZE").await?;
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.close().await?;
    Ok((rows_s, prefixes, t.elapsed().as_secs_f64()))
}

async fn fill_pg(url: &str, rows: u64) -> anyhow::Result<(f64, u64, f64)> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    // The fill only: no foreign-key triggers per row (the ids are consistent by
    // construction), no wait for the WAL flush, room to sort when indexing.
    conn.execute("SET session_replication_role = replica")
        .await?;
    conn.execute("SET synchronous_commit = off").await?;
    conn.execute("SET maintenance_work_mem = '1GB'").await?;
    let indexes: Vec<(String, String)> =
        sqlx::query_as(INDEX_QUERY_PG).fetch_all(&mut conn).await?;
    for (name, _) in &indexes {
        conn.execute(format!("DROP INDEX {name}").as_str()).await?;
    }
    let t = Instant::now();
    const CHUNK: usize = 4 << 20;
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY session_history ({HISTORY_COLUMNS}) FROM STDIN"
        ))
        .await?;
    let mut buf = String::with_capacity(CHUNK + 4096);
    for i in 0..rows {
        let s = Session::new(i);
        use std::fmt::Write;
        writeln!(
            buf,
            "{}\t{}\tbras\t{i:016x}\t{}\t{}\t{}\t{}\t\\N\t{}\t{}\t{}\t{}\t0\t0\t1\tstop",
            i + 1,
            s.nas(),
            s.login(),
            s.ipv4(),
            s.ipv6_text(),
            s.mac(),
            s.started_at(),
            s.stopped_at(),
            s.h % 1_000_000_000,
            s.h % 10_000_000_000,
        )?;
        if buf.len() >= CHUNK {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            buf.reserve(CHUNK + 4096);
        }
    }
    copy.send(std::mem::take(&mut buf).into_bytes()).await?;
    copy.finish().await?;
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY session_history_ipv6 ({IPV6_COLUMNS}) FROM STDIN"
        ))
        .await?;
    let mut prefixes = 0u64;
    for i in 0..rows {
        let s = Session::new(i);
        if !s.has_ipv6() {
            continue;
        }
        let (pd, wan) = s.ipv6_nets();
        use std::fmt::Write;
        for (hi, len) in [(wan, 64), (pd, 56)] {
            writeln!(
                buf,
                "{}\t{}\t0\t{len}\t{}\t{}",
                i + 1,
                hi as i64,
                s.started_at(),
                s.stopped_at()
            )?;
            prefixes += 1;
        }
        if buf.len() >= CHUNK {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            buf.reserve(CHUNK + 4096);
        }
    }
    copy.send(buf.into_bytes()).await?;
    copy.finish().await?;
    let rows_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (_, ddl) in &indexes {
        conn.execute(ddl.as_str()).await?;
    }
    conn.execute("SELECT setval(pg_get_serial_sequence('session_history', 'id'), (SELECT MAX(id) FROM session_history))")
        .await?;
    // Statistics for the planner and the visibility map for index-only scans.
    conn.execute("VACUUM ANALYZE session_history").await?;
    conn.execute("VACUUM ANALYZE session_history_ipv6").await?;
    conn.close().await?;
    Ok((rows_s, prefixes, t.elapsed().as_secs_f64()))
}

/// One random question and whether the history must answer it.
fn question(
    rng: &mut XorShift,
    rows: u64,
    k: u64,
) -> (std::net::IpAddr, time::OffsetDateTime, bool) {
    let at = |s: &Session, r: u64| {
        s.started_at() + (r % (s.stopped_at() - s.started_at() + 1) as u64) as i64
    };
    let time = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    match k % 10 {
        // IPv4 hit: an address at an instant of one of its sessions.
        0..=3 => {
            let s = Session::new(rng.next() % rows);
            let t = at(&s, rng.next());
            (std::net::Ipv4Addr::from(s.ipv4()).into(), time(t), true)
        }
        // IPv4 miss: an address outside the pool.
        4 => {
            let s = Session::new(rng.next() % rows);
            let ip = 0xc0a8_0000 | (rng.next() as u32 & 0xffff);
            (
                std::net::Ipv4Addr::from(ip).into(),
                time(at(&s, rng.next())),
                false,
            )
        }
        // IPv6 hit: any address inside a session's /56 or /64.
        5..=8 => loop {
            let s = Session::new(rng.next() % rows);
            if !s.has_ipv6() {
                continue;
            }
            let (pd, wan) = s.ipv6_nets();
            let addr = if rng.next() % 2 == 0 {
                (u128::from(pd | (rng.next() & 0xff)) << 64) | u128::from(rng.next())
            } else {
                (u128::from(wan) << 64) | u128::from(rng.next())
            };
            break (
                std::net::Ipv6Addr::from(addr).into(),
                time(at(&s, rng.next())),
                true,
            );
        },
        // IPv6 miss: an address in neither range.
        _ => {
            let s = Session::new(rng.next() % rows);
            let addr = (0x2001_0dea_u128 << 96) | u128::from(rng.next());
            (
                std::net::Ipv6Addr::from(addr).into(),
                time(at(&s, rng.next())),
                false,
            )
        }
    }
}

async fn lookups(db: &Db, backend: &str, args: &AttributionArgs) -> anyhow::Result<()> {
    let concurrency = args.concurrency.max(1);
    // Per task: latencies (µs) of IPv4 and of IPv6 questions, expected hits found, wrong answers.
    let run = |n: u64, seed: u64| {
        let db = db.clone();
        let rows = args.rows;
        async move {
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ seed);
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            let (mut hits, mut expected, mut wrong) = (0u64, 0u64, 0u64);
            for k in 0..n {
                let (ip, at, hit) = question(&mut rng, rows, k);
                let t = Instant::now();
                let found = ebok::store::attribution::held_at(&db, ip, at).await?;
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if ip.is_ipv4() {
                    v4.push(us)
                } else {
                    v6.push(us)
                }
                expected += u64::from(hit);
                hits += u64::from(hit && !found.is_empty());
                wrong += u64::from(hit == found.is_empty());
            }
            anyhow::Ok((v4, v6, hits, expected, wrong))
        }
    };
    // Warm-up (not timed): the statements are prepared on every connection.
    for r in
        futures_util::future::join_all((0..concurrency as u64).map(|c| run(50, 1000 + c))).await
    {
        r?;
    }
    let per_task = args.lookups / concurrency as u64;
    let t = Instant::now();
    let results = futures_util::future::join_all(
        (0..concurrency as u64).map(|c| tokio::spawn(run(per_task, c))),
    )
    .await;
    let wall = t.elapsed();
    let (mut v4, mut v6, mut hits, mut expected, mut wrong) = (Vec::new(), Vec::new(), 0, 0, 0);
    for r in results {
        let (a, b, h, e, w) = r??;
        v4.extend(a);
        v6.extend(b);
        hits += h;
        expected += e;
        wrong += w;
    }
    let mut all = [v4.as_slice(), v6.as_slice()].concat();
    for v in [&mut v4, &mut v6, &mut all] {
        v.sort_unstable();
    }
    let ms = |v: &[u32], q: f64| f64::from(percentile(v, q)) / 1000.0;
    println!(
        "attribution lookups ({backend}, {} sessions): {} lookups (40 % IPv4 hit, 10 % IPv4 miss, \
         40 % IPv6 hit, 10 % IPv6 miss), concurrency {concurrency}: {:.0} lookups/s, \
         p50 {:.2} ms, p99 {:.2} ms (IPv4 {:.2} / {:.2} ms, IPv6 {:.2} / {:.2} ms); \
         {hits} of {expected} expected hits found, {wrong} wrong",
        args.rows,
        all.len(),
        all.len() as f64 / wall.as_secs_f64().max(1e-9),
        ms(&all, 0.50),
        ms(&all, 0.99),
        ms(&v4, 0.50),
        ms(&v4, 0.99),
        ms(&v6, 0.50),
        ms(&v6, 0.99),
    );
    Ok(())
}

/// Time the export's database side: every session of one IPv4 address over the whole
/// history, and every session of all addresses on one day in the middle of it.
async fn exports(db: &Db, backend: &str, rows: u64) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let time = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    let days = (rows / IPV4_POOL) as i64 + 1;
    let mid = BASE + days / 2 * DAY;
    let cases = [
        (
            "one IPv4 address, whole history",
            Some(std::net::Ipv4Addr::new(10, 0, 1, 2).into()),
            BASE,
            BASE + days * DAY,
        ),
        ("all addresses, one day", None, mid, mid + DAY),
    ];
    for (what, ip, from, to) in cases {
        let t = Instant::now();
        let counted =
            ebok::store::attribution::count_closed_between(db, ip, time(from), time(to)).await?;
        let counting = t.elapsed();
        let mut stream = ebok::store::attribution::closed_between(db, ip, time(from), time(to));
        let mut n = 0u64;
        while let Some(row) = stream.next().await {
            row?;
            n += 1;
        }
        let total = t.elapsed();
        if n != counted {
            bail!("{what}: counted {counted}, streamed {n}");
        }
        println!(
            "attribution export ({backend}, {rows} sessions): {what}: {n} rows, counted in {:.2} s, \
             counted and streamed in {:.2} s ({:.0} rows/s streamed)",
            counting.as_secs_f64(),
            total.as_secs_f64(),
            n as f64 / (total - counting).as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
