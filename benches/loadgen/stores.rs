//! Store benchmarks: Redis memory per live session, embedded-store lookup latency, a free
//! loopback port for the scripts.

use super::*;

/// A Start event of subscriber `i`, as the listener would decode it.
pub(super) fn start_event(tag: u32, i: u64, at: OffsetDateTime) -> AccountingEvent {
    let sub = Subscriber::new(tag, i);
    // Eight NASes, as a mid-size ISP would have.
    let nas_ip = Ipv4Addr::new(192, 0, 2, 1 + (i % 8) as u8);
    let nas = nas_ip.to_string();
    let mut e = AccountingEvent::new(StatusType::Start, &nas, &sub.session_id, at);
    e.nas_client = format!("bras-{}", 1 + i % 8);
    e.source = IpAddr::V4(nas_ip);
    e.nas_ip_address = Some(nas_ip);
    e.user_name = Some(sub.user_name);
    e.nas_port = Some(15_728_640 + (i as u32 & 0xffff));
    e.nas_port_id = Some("pppoe-vlan100".to_owned());
    e.framed_ip = Some(sub.ipv4);
    e.delegated_ipv6_prefixes = vec![sub.pd56];
    e.calling_station_id = Some(sub.mac);
    e.called_station_id = Some("pppoe-service1".to_owned());
    e.delay_time = Some(0);
    e
}

/// Apply `start_event(tag, i)` for i in 0..n with `concurrency` tasks, printing progress.
pub(super) async fn fill<S: LiveSessions + Clone>(
    store: S,
    tag: u32,
    n: u64,
    concurrency: usize,
    with_wan64: bool,
) -> anyhow::Result<Duration> {
    let at = OffsetDateTime::now_utc();
    fill_with(store, n, concurrency, at, move |i| {
        let mut e = start_event(tag, i, at);
        if with_wan64 {
            e.framed_ipv6_prefixes = vec![Subscriber::new(tag, i).wan64];
        }
        Some(e)
    })
    .await
}

/// Apply `make(i)` (where it gives an event) for i in 0..n with `concurrency` tasks
/// (sessions expiring as with interims from `at`), printing progress.
async fn fill_with<S: LiveSessions + Clone>(
    store: S,
    n: u64,
    concurrency: usize,
    at: OffsetDateTime,
    make: impl Fn(u64) -> Option<AccountingEvent> + Send + Sync + 'static,
) -> anyhow::Result<Duration> {
    let expires = at + time::Duration::seconds(i64::from(2 * INTERIM + 60));
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let store = store.clone();
        let next = next.clone();
        let done = done.clone();
        let make = make.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let Some(e) = make(i) else {
                    continue;
                };
                store
                    .apply(&e, expires)
                    .await
                    .with_context(|| format!("applying {:?} of session {i}", e.status))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let report = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let d = done.load(Ordering::Relaxed);
                let s = started.elapsed().as_secs_f64();
                eprintln!("  … {d}/{n} events in {s:.0} s ({:.0}/s)", d as f64 / s);
            }
        })
    };
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r? {
            next.store(n, Ordering::Relaxed);
            result = Err(e);
        }
    }
    report.abort();
    result.map(|()| started.elapsed())
}

pub(super) async fn used_memory(
    conn: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .context("INFO memory has no used_memory")?
        .trim()
        .parse()
        .context("used_memory is not a number")
}

pub(super) async fn delete_prefix(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<u64> {
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    // SCAN ends when the cursor returns to 0; bounded anyway.
    for _ in 0..10_000_000u64 {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(conn).await?;
            deleted += n;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(deleted)
}

pub(super) async fn redis_memory(args: RedisMemoryArgs) -> anyhow::Result<()> {
    use ebok::redis_link::RedisTarget;
    use ebok::sessions::stream::{StreamOptions, StreamSessions};

    let tag = run_tag();
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("ebok-bench-{tag:08x}:"));
    if prefix.contains(['*', '?', '[', ']', '\\']) {
        bail!("--prefix must not contain glob characters");
    }
    let client = redis::Client::open(args.url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    println!(
        "== redis-memory: {} sessions with {INTERIM}-second Interim-Updates, {} s of log kept ({} streams), prefix {prefix} ==",
        args.sessions, args.retention, args.streams
    );
    let dir = std::env::temp_dir().join(format!("ebok-bench-{tag:08x}"));
    std::fs::create_dir_all(&dir)?;
    let outcome = async {
        let store = Arc::new(
            StreamSessions::open(
                &RedisTarget::Single {
                    url: args.url.clone(),
                },
                &dir.join("live.sqlite"),
                StreamOptions {
                    prefix: prefix.clone(),
                    streams: args.streams,
                    // Nothing is trimmed while filling: the fill appends only what the
                    // retention keeps at steady state.
                    retention: Duration::from_secs(86_400),
                },
            )
            .await?,
        );
        // The steady state of sessions whose interims are spread evenly over the interval:
        // session i's fall i/n of the way into it, and the log holds those sent within the
        // retention (its Start, long gone, among none of them).
        let n = args.sessions;
        let retention = args.retention;
        let phase = move |i: u64| i as f64 * f64::from(INTERIM) / n as f64;
        let rounds = retained_entries(0.0, retention);
        let before = used_memory(&mut conn).await?;
        let mut took = Duration::ZERO;
        for round in 1..=rounds {
            took += fill_interims(
                ArcStore(store.clone()),
                tag,
                n,
                args.concurrency,
                round,
                move |i| retained_entries(phase(i), retention) >= round,
            )
            .await?;
        }
        let entries: u64 = (0..n).map(|i| retained_entries(phase(i), retention)).sum();
        let after = used_memory(&mut conn).await?;
        let live = store.count().await?;
        let probe = Subscriber::new(tag, args.sessions / 2);
        let found = store.lookup(IpAddr::V4(probe.ipv4)).await?;
        anyhow::ensure!(
            found.as_ref().map(|s| s.session_id.as_str()) == Some(probe.session_id.as_str()),
            "lookup of a filled session failed"
        );
        Ok::<_, anyhow::Error>((before, after, took, live, entries))
    }
    .await;
    let deleted = delete_prefix(&mut conn, &prefix).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (before, after, took, live, events) = outcome?;
    let deleted = deleted?;
    let used = after.saturating_sub(before) as f64;
    let per = used / args.sessions as f64;
    let per_entry = used / events as f64;
    println!(
        "  {events} entries ({:.2} per session) appended and read back in {:.1} s ({:.0} events/s, {} tasks); live count {live}",
        events as f64 / args.sessions as f64,
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        args.concurrency
    );
    println!(
        "  used_memory {before} → {after} bytes: {per:.1} bytes per live session, {per_entry:.1} per entry; {deleted} keys deleted"
    );
    println!(
        "RESULT name=redis-memory sessions={} retention_s={} entries={events} streams={} bytes_per_session={per:.1} bytes_per_entry={per_entry:.1} used_before={before} used_after={after} fill_s={:.1}",
        args.sessions,
        args.retention,
        args.streams,
        took.as_secs_f64()
    );
    Ok(())
}

/// One round of Interim-Updates (the `round`-th, [`INTERIM`] seconds apart) for the
/// sessions of 0..n that `keep` picks, through `concurrency` tasks.
async fn fill_interims<S: LiveSessions + Clone>(
    store: S,
    tag: u32,
    n: u64,
    concurrency: usize,
    round: u64,
    keep: impl Fn(u64) -> bool + Send + Sync + 'static,
) -> anyhow::Result<Duration> {
    let at = OffsetDateTime::now_utc();
    fill_with(store, n, concurrency, at, move |i| {
        if !keep(i) {
            return None;
        }
        let mut e = start_event(tag, i, at);
        e.status = StatusType::InterimUpdate;
        let secs = round * u64::from(INTERIM);
        e.event_time = at + time::Duration::seconds(secs as i64);
        e.session_time = Some(secs as u32);
        e.input_octets = 1_000_000 * round;
        e.output_octets = 9_000_000 * round;
        Some(e)
    })
    .await
}

/// How many of a session's Interim-Updates the log holds at steady state when its
/// interims fall `phase` seconds into every [`INTERIM`]-second period and Redis keeps
/// `retention` seconds: those sent in the last `retention` seconds.
fn retained_entries(phase: f64, retention: u64) -> u64 {
    ((retention as f64 - phase) / f64::from(INTERIM))
        .floor()
        .max(0.0) as u64
        + 1
}

pub(super) async fn embedded_lookup(args: EmbeddedLookupArgs) -> anyhow::Result<()> {
    use ebok::sessions::embedded::EmbeddedSessions;

    let tag = run_tag();
    let (dir, remove) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("ebok-bench-embedded-{tag:08x}")),
            true,
        ),
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("live.sqlite");
    println!(
        "== embedded-lookup: {} sessions, {} lookups, store {} ==",
        args.sessions,
        args.lookups,
        path.display()
    );
    let outcome = async {
        let store = Arc::new(EmbeddedSessions::open(&path).await?);
        let took = fill(
            ArcStore(store.clone()),
            tag,
            args.sessions,
            args.concurrency,
            true,
        )
        .await?;
        println!(
            "  filled in {:.1} s ({:.0} Start/s, {} tasks); live count {}",
            took.as_secs_f64(),
            args.sessions as f64 / took.as_secs_f64(),
            args.concurrency,
            store.count().await?
        );
        // Single-threaded: one task, one lookup at a time, on this thread.
        let store2 = store.clone();
        let n = args.lookups;
        let sessions = args.sessions;
        let measured = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(lookups(&*store2, tag, sessions, n))
        })
        .await??;
        Ok::<_, anyhow::Error>(measured)
    }
    .await;
    if remove {
        let _ = fs::remove_dir_all(&dir);
    }
    let (v4, v6, misses) = outcome?;
    let mut all: Vec<u32> = v4.iter().chain(v6.iter()).copied().collect();
    all.sort_unstable();
    let line = |l: &[u32]| {
        format!(
            "p50 {} p99 {} max {}",
            percentile(l, 0.5),
            percentile(l, 0.99),
            l.last().copied().unwrap_or(0)
        )
    };
    println!("  IPv4 lookups µs: {}", line(&v4));
    println!(
        "  IPv6 lookups µs (inside /56 or /64 prefixes): {}",
        line(&v6)
    );
    println!(
        "  all {} lookups µs: {}; wrong or missing answers: {misses}",
        all.len(),
        line(&all)
    );
    println!(
        "RESULT name=embedded-lookup sessions={} lookups={} p50_us={} p99_us={} max_us={} v4_p99_us={} v6_p99_us={} wrong={misses}",
        args.sessions,
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
        percentile(&v4, 0.99),
        percentile(&v6, 0.99)
    );
    Ok(())
}

/// Lets `fill` clone a shared store.
pub(super) struct ArcStore<S>(Arc<S>);

impl<S> Clone for ArcStore<S> {
    fn clone(&self) -> Self {
        ArcStore(self.0.clone())
    }
}

#[async_trait::async_trait]
impl<S: LiveSessions> LiveSessions for ArcStore<S> {
    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<ebok::sessions::Applied, ebok::sessions::StoreError> {
        self.0.apply(event, expires_at).await
    }
    async fn lookup(
        &self,
        ip: IpAddr,
    ) -> Result<Option<ebok::sessions::LiveSession>, ebok::sessions::StoreError> {
        self.0.lookup(ip).await
    }
    async fn get(
        &self,
        nas: &str,
        session_id: &str,
    ) -> Result<Option<ebok::sessions::LiveSession>, ebok::sessions::StoreError> {
        self.0.get(nas, session_id).await
    }
    async fn list(
        &self,
        nas: Option<&str>,
    ) -> Result<Vec<ebok::sessions::LiveSession>, ebok::sessions::StoreError> {
        self.0.list(nas).await
    }
    async fn expire(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<ebok::sessions::ClosedSession>, ebok::sessions::StoreError> {
        self.0.expire(now).await
    }
    async fn count(&self) -> Result<u64, ebok::sessions::StoreError> {
        self.0.count().await
    }
    async fn ping(&self) -> Result<(), ebok::sessions::StoreError> {
        self.0.ping().await
    }
}

/// Random hits: half IPv4 addresses, half IPv6 addresses anywhere inside a session's /56
/// delegated prefix or /64 link prefix. Returns (v4 µs, v6 µs, wrong answers).
pub(super) async fn lookups<S: LiveSessions + ?Sized>(
    store: &S,
    tag: u32,
    sessions: u64,
    n: u64,
) -> anyhow::Result<(Vec<u32>, Vec<u32>, u64)> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d ^ u64::from(tag));
    let mut v4 = Vec::with_capacity(n as usize / 2 + 1);
    let mut v6 = Vec::with_capacity(n as usize / 2 + 1);
    let mut wrong = 0;
    let run_until = Instant::now() + Duration::from_secs(600);
    for k in 0..n {
        let i = rng.next() % sessions;
        let sub = Subscriber::new(tag, i);
        let ip = match k % 4 {
            0 | 2 => IpAddr::V4(sub.ipv4),
            1 => IpAddr::V6(Ipv6Addr::from(
                u128::from(sub.pd56.network())
                    | (((u128::from(rng.next()) << 8) | u128::from(rng.next() & 0xff))
                        & ((1u128 << 72) - 1)),
            )),
            _ => IpAddr::V6(Ipv6Addr::from(
                u128::from(sub.wan64.network()) | u128::from(rng.next()),
            )),
        };
        let t = Instant::now();
        let found = store.lookup(ip).await?;
        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if found.map(|s| s.session_id) != Some(sub.session_id) {
            wrong += 1;
        }
        if ip.is_ipv4() {
            v4.push(us);
        } else {
            v6.push(us);
        }
        if k % 1024 == 0 && Instant::now() > run_until {
            eprintln!("  lookups stopped after 600 s at {k}");
            break;
        }
    }
    v4.sort_unstable();
    v6.sort_unstable();
    Ok((v4, v6, wrong))
}

pub(super) struct XorShift(pub(super) u64);

impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

pub(super) fn free_port() -> anyhow::Result<()> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            println!("{port}");
            return Ok(());
        }
    }
    bail!("no free loopback port found")
}
