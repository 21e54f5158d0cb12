//! Mutation fuzzing of the accounting path, on stable Rust (no `cargo fuzz`).
//!
//! Inputs are well-formed Accounting-Requests with values chosen to hit edges (times of
//! 0, 2^31 − 1 and 2^32 − 1, counters at their limits, IPv6 prefixes of any length,
//! multicast, loopback and broadcast addresses, colliding session ids, Accounting-On/Off),
//! then mutated (bytes flipped, cut, repeated, lengths changed) and, most of the time,
//! signed again with the NAS secret, so that garbage also gets past the authenticator
//! check. Two phases, each for `EBOK_FUZZ_SECONDS` (default 10):
//!
//! 1. **decoder**: bytes → framing and authenticator checks → decode → line-address filter,
//!    and every 2,048 decoded events a journal written, reopened from disk and read back
//!    (equal to what was written);
//! 2. **whole path**: the decoded events in batches through journal-mode ingest (journal
//!    append, replay into the live store, history into SQLite) on the embedded store and on
//!    Redis side by side, with expiry sweeps between; after every batch the journal must
//!    be empty (a replay that cannot drain is a failure), and at the end both stores must
//!    hold the same live map and history.
//!
//! A panic anywhere fails the test. `EBOK_FUZZ_SEED` repeats a run; the seed is printed.
//! The long run recorded in docs/performance.md:
//! `EBOK_FUZZ_SECONDS=300 cargo test --release --test it fuzz -- --nocapture`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebok::config::AckAfter;
use ebok::dead_letter::DeadLetters;
use ebok::ingest::Ingest;
use ebok::journal::{JournalLog, JournalRecord};
use ebok::radius::decode::decode_checked;
use ebok::radius::dict::Dictionary;
use ebok::radius::event::AccountingEvent;
use ebok::radius::line_address::LineAddresses;
use ebok::radius::packet;
use ebok::sessions::embedded::EmbeddedSessions;
use ebok::sessions::stream::{StreamOptions, StreamSessions};
use ebok::sessions::{LiveSession, LiveSessions};
use ebok::store::Db;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;

const SECRET: &[u8] = b"fuzz-secret";
const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));

fn phase_seconds() -> u64 {
    std::env::var("EBOK_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// Values at the edges of a 32-bit attribute, and some ordinary ones around `near`.
fn edgy_u32(rng: &mut StdRng, near: u32) -> u32 {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => u32::MAX,
        2 => i32::MAX as u32,
        3 => 1,
        4 => rng.gen(),
        _ => near.wrapping_add(rng.gen_range(0..600)),
    }
}

fn v4_line(rng: &mut StdRng) -> [u8; 4] {
    match rng.gen_range(0..12) {
        0 => [224, 0, 0, 1],
        1 => [127, 0, 0, 1],
        2 => [255, 255, 255, 255],
        3 => [0, 0, 0, 0],
        4 => [169, 254, 1, 1],
        _ => [10, 77, 0, rng.gen_range(0..64)],
    }
}

/// An RFC 3162 prefix value: mostly a delegated /48../64 from a small pool, sometimes any
/// length, `::/0` or `2000::/3`.
fn v6_prefix(rng: &mut StdRng) -> Vec<u8> {
    let (len, net): (u8, [u8; 16]) = match rng.gen_range(0..10) {
        0 => (0, [0; 16]),
        1 => (3, [0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        2 => (rng.gen_range(0..=128), rng.gen()),
        _ => {
            let mut n = [0u8; 16];
            n[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            n[4] = rng.gen_range(0..32);
            (rng.gen_range(48..=64), n)
        }
    };
    let mut v = vec![0, len];
    v.extend_from_slice(&net[..usize::from(len).div_ceil(8)]);
    v
}

/// A signed Accounting-Request with edge values.
fn valid_packet(rng: &mut StdRng, now: u32) -> Vec<u8> {
    let status: u32 = match rng.gen_range(0..40) {
        0 => 7,
        1 => 8,
        2..=11 => 1,
        12..=19 => 2,
        _ => 3,
    };
    let session = rng.gen_range(0..300u32);
    let mut a: Vec<(u8, Vec<u8>)> = vec![
        (40, status.to_be_bytes().to_vec()),
        (44, format!("f{session}").into_bytes()),
    ];
    if rng.gen_bool(0.9) {
        a.push((1, format!("user{}", session % 200).into_bytes()));
    }
    match rng.gen_range(0..6) {
        0 => a.push((32, b"bras-id".to_vec())),
        1 => a.push((4, vec![192, 0, 2, 2])),
        _ => a.push((4, vec![192, 0, 2, 1])),
    }
    if rng.gen_bool(0.8) {
        a.push((8, v4_line(rng).to_vec()));
    }
    for _ in 0..rng.gen_range(0..3) {
        let typ = [97, 123][rng.gen_range(0..2)];
        a.push((typ, v6_prefix(rng)));
    }
    if rng.gen_bool(0.1) {
        let mut addr = [0u8; 16];
        rng.fill(&mut addr);
        a.push((168, addr.to_vec()));
    }
    if rng.gen_bool(0.7) {
        a.push((
            55,
            edgy_u32(rng, now.saturating_sub(300))
                .to_be_bytes()
                .to_vec(),
        ));
    }
    if rng.gen_bool(0.4) {
        a.push((41, edgy_u32(rng, 0).to_be_bytes().to_vec()));
    }
    if status != 1 && rng.gen_bool(0.7) {
        a.push((46, edgy_u32(rng, 300).to_be_bytes().to_vec()));
    }
    for typ in [42u8, 43, 47, 48] {
        a.push((typ, edgy_u32(rng, 1 << 20).to_be_bytes().to_vec()));
    }
    if rng.gen_bool(0.3) {
        a.push((52, edgy_u32(rng, 0).to_be_bytes().to_vec()));
        a.push((53, edgy_u32(rng, 0).to_be_bytes().to_vec()));
    }
    if status == 2 {
        a.push((49, rng.gen_range(0..30u32).to_be_bytes().to_vec()));
    }
    if rng.gen_bool(0.2) {
        // Vendor-Specific: MikroTik (14988) Rate-Limit, or random octets.
        let mut v = 14988u32.to_be_bytes().to_vec();
        if rng.gen_bool(0.5) {
            v.extend_from_slice(&[8, 9, b'1', b'0', b'M', b'/', b'2', b'0', b'M']);
        } else {
            let n = rng.gen_range(0..20);
            v.extend((0..n).map(|_| rng.gen::<u8>()));
        }
        a.push((26, v));
    }
    if rng.gen_bool(0.2) {
        a.push((25, (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect()));
    }
    if rng.gen_bool(0.1) {
        a.push((31, vec![0x1b, b'[', b'2', b'J', b'\r', b'\n', 0xff, 0]));
    }
    packet::build_accounting_request(rng.gen(), SECRET, &a, rng.gen_bool(0.3))
}

/// Damage a packet a few ways; usually sign it again so that it passes the authenticator.
fn mutate(rng: &mut StdRng, mut p: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(0..4) {
        if p.is_empty() {
            break;
        }
        let i = rng.gen_range(0..p.len());
        match rng.gen_range(0..8) {
            0 => p[i] ^= 1 << rng.gen_range(0..8),
            1 => p[i] = [0, 1, 0x7f, 0x80, 0xff][rng.gen_range(0..5)],
            2 => p.truncate(i),
            3 => {
                let n = rng.gen_range(1..64);
                p.extend((0..n).map(|_| rng.gen::<u8>()));
            }
            4 if p.len() >= 4 => {
                let len = rng.gen_range(0..=4200u16);
                p[2..4].copy_from_slice(&len.to_be_bytes());
            }
            5 if i >= 20 => {
                // Repeat a stretch of attributes.
                let end = (i + rng.gen_range(1..40)).min(p.len());
                let stretch = p[i..end].to_vec();
                p.extend_from_slice(&stretch);
            }
            6 if i >= 20 && i + 1 < p.len() => p[i + 1] = rng.gen_range(0..4),
            _ => {}
        }
        if p.len() >= 4 && rng.gen_bool(0.5) {
            // Keep Length in step with the datagram, so the damage reaches the attributes.
            let len = p.len().min(4095) as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
        }
    }
    if rng.gen_bool(0.8) {
        packet::sign_accounting_request(&mut p, SECRET);
    }
    p
}

/// What one input became: the event the listener would journal, if any.
fn through_the_door(
    datagram: &[u8],
    arrival: OffsetDateTime,
    drops: &mut HashMap<&'static str, u64>,
) -> Option<AccountingEvent> {
    let lines = LineAddresses::default();
    let checked = packet::frame(datagram)
        .and_then(|p| packet::verify_accounting_request(p, SECRET).map(|()| p))
        .and_then(|p| decode_checked(p, SOURCE, "fuzz", arrival, Dictionary::builtin()));
    match checked {
        Ok((mut event, _)) => {
            lines.filter(&mut event, |_| {});
            Some(event)
        }
        Err(reason) => {
            *drops.entry(reason.label()).or_default() += 1;
            None
        }
    }
}

fn seed() -> u64 {
    std::env::var("EBOK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_accounting_path() {
    let seed = seed();
    println!("fuzz: EBOK_FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let secs = phase_seconds();

    // Phase 1: the decoder.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut execs = 0u64;
    let mut decoded = 0u64;
    let mut journal_checks = 0u64;
    let mut drops: HashMap<&'static str, u64> = HashMap::new();
    let mut pending: Vec<AccountingEvent> = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        let now = OffsetDateTime::now_utc();
        let valid = valid_packet(&mut rng, now.unix_timestamp() as u32);
        let input = mutate(&mut rng, valid);
        execs += 1;
        if let Some(event) = through_the_door(&input, now, &mut drops) {
            decoded += 1;
            pending.push(event);
        }
        if pending.len() == 2048 {
            let journal = dir.path().join("journal-check");
            journal_round_trip(&journal, &pending).await;
            std::fs::remove_dir_all(&journal).unwrap();
            journal_checks += 1;
            pending.clear();
        }
    }
    let decoder_rate = execs as f64 / started.elapsed().as_secs_f64();

    // Phase 2: the whole path, on both stores.
    let mut paths = vec![Path::embedded(dir.path()).await];
    if let Some(url) = ebok_testkit::redis("it::fuzz::fuzz_accounting_path").await {
        paths.push(Path::redis(dir.path(), &url).await);
    }
    let started = Instant::now();
    let mut events = 0u64;
    let mut batches = 0u64;
    let mut sweeps = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let now = OffsetDateTime::now_utc();
        let expires = now + time::Duration::minutes(11);
        let mut batch = Vec::new();
        for _ in 0..rng.gen_range(1..=64) {
            let valid = valid_packet(&mut rng, now.unix_timestamp() as u32);
            let input = mutate(&mut rng, valid);
            if let Some(event) = through_the_door(&input, now, &mut drops) {
                batch.push((event, expires));
            }
        }
        events += batch.len() as u64;
        batches += 1;
        let sweep =
            (batches % 50 == 0).then(|| now + time::Duration::minutes(rng.gen_range(0..30)));
        for path in &paths {
            path.feed(batch.clone(), sweep, seed).await;
        }
        sweeps += u64::from(sweep.is_some());
    }
    // Both stores took the same events: the same map and the same history.
    let maps: Vec<Vec<LiveSession>> =
        futures_util::future::join_all(paths.iter().map(|p| p.map())).await;
    let histories: Vec<(i64, i64, i64)> =
        futures_util::future::join_all(paths.iter().map(|p| p.history())).await;
    for (p, (map, history)) in paths.iter().zip(maps.iter().zip(&histories)).skip(1) {
        assert_eq!(
            map, &maps[0],
            "seed {seed}: {} and embedded maps differ",
            p.name
        );
        assert_eq!(
            history, &histories[0],
            "seed {seed}: {} history differs",
            p.name
        );
    }
    let set_aside: usize = paths
        .iter()
        .map(|p| {
            DeadLetters::read(&p.dir.join(ebok::dead_letter::FILE_NAME))
                .unwrap()
                .len()
        })
        .sum();
    let mut drops: Vec<_> = drops.into_iter().collect();
    drops.sort();
    println!(
        "FUZZ RESULT seed={seed} decoder: {execs} executions ({decoder_rate:.0}/s), \
         {decoded} decoded, {journal_checks} journal round trips; whole path ({stores}): \
         {events} events in {batches} batches, {sweeps} expiry sweeps, {live} live sessions \
         at the end, history {histories:?} (sessions, octets in, out); crashes: 0, stuck \
         replays: 0, set aside: {set_aside}; drops by reason: {drops:?}",
        stores = paths.iter().map(|p| p.name).collect::<Vec<_>>().join(" + "),
        live = maps[0].len(),
        histories = histories[0],
    );
    for p in paths {
        p.finish().await;
    }
}

/// Events written to a journal, reopened from disk and read back are what was written.
async fn journal_round_trip(dir: &std::path::Path, events: &[AccountingEvent]) {
    let at = OffsetDateTime::now_utc();
    {
        let spool = JournalLog::open(dir).unwrap();
        for e in events {
            spool.append_event(e, at).await.unwrap();
        }
    }
    let spool = JournalLog::open(dir).unwrap();
    let read = spool.peek(events.len() + 1).await.unwrap();
    assert_eq!(read.len(), events.len());
    for ((record, _), e) in read.iter().zip(events) {
        match &**record {
            JournalRecord::Event { event, .. } => assert_eq!(&**event, e),
            other => panic!("read back {other:?}"),
        }
    }
}

/// One store's whole accounting path.
struct Path {
    name: &'static str,
    dir: std::path::PathBuf,
    ingest: Arc<Ingest>,
    db: Db,
    redis: Option<(String, String)>,
}

impl Path {
    async fn embedded(base: &std::path::Path) -> Path {
        let dir = base.join("embedded");
        std::fs::create_dir_all(&dir).unwrap();
        let live = EmbeddedSessions::open(&dir.join("live.sqlite")).await;
        Path::with(
            "embedded",
            dir,
            Arc::new(live.expect("embedded store")),
            None,
        )
        .await
    }

    async fn redis(base: &std::path::Path, url: &str) -> Path {
        let prefix = ebok_testkit::redis_prefix();
        let dir = base.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let live = StreamSessions::open(
            &ebok::redis_link::RedisTarget::Single {
                url: url.to_owned(),
            },
            &dir.join("live.sqlite"),
            StreamOptions {
                prefix: prefix.clone(),
                streams: 4,
                retention: Duration::from_secs(3600),
            },
        )
        .await
        .expect("redis");
        Path::with("redis", dir, Arc::new(live), Some((url.to_owned(), prefix))).await
    }

    async fn with(
        name: &'static str,
        dir: std::path::PathBuf,
        live: Arc<dyn LiveSessions>,
        redis: Option<(String, String)>,
    ) -> Path {
        std::fs::create_dir_all(&dir).unwrap();
        let db = crate::harness::sqlite_in(&dir, "history.sqlite").await;
        let spool = JournalLog::open(&dir.join("journal")).unwrap();
        let ingest = Ingest::new(
            live,
            Arc::new(db.clone()),
            spool,
            AckAfter::Journal,
            Duration::from_secs(5),
            None,
            DeadLetters::new(&dir),
        );
        Path {
            name,
            dir,
            ingest: Arc::new(ingest),
            db,
            redis,
        }
    }

    /// Journal one batch as the listener does, replay it, sweep when asked; the journal
    /// must be empty afterwards.
    async fn feed(
        &self,
        batch: Vec<(AccountingEvent, OffsetDateTime)>,
        sweep: Option<OffsetDateTime>,
        seed: u64,
    ) {
        let n = batch.len();
        for r in self.ingest.record_batch(batch).await {
            r.expect("journal append");
        }
        let replayed = self.ingest.replay().await.expect("replay");
        assert!(
            replayed >= n,
            "seed {seed}: {}: replayed {replayed} of {n}",
            self.name
        );
        assert_eq!(
            self.ingest.spool.depth(),
            0,
            "seed {seed}: {}: the replay is stuck",
            self.name
        );
        if let Some(now) = sweep {
            self.ingest.sweep(now).await.expect("expiry sweep");
        }
    }

    async fn map(&self) -> Vec<LiveSession> {
        let mut all = self.ingest.live.list(None).await.unwrap();
        all.sort_by(|a, b| (&a.nas, &a.session_id).cmp(&(&b.nas, &b.session_id)));
        all
    }

    /// Closed sessions, and octets in and out over all days.
    async fn history(&self) -> (i64, i64, i64) {
        // The history writer commits before the replay returns.
        let Db::Sqlite(pool) = &self.db else {
            unreachable!("fuzz history is SQLite")
        };
        let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM session_history")
            .fetch_one(pool)
            .await
            .unwrap();
        let (i, o): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT SUM(input_octets), SUM(output_octets) FROM traffic_daily")
                .fetch_one(pool)
                .await
                .unwrap();
        (sessions, i.unwrap_or(0), o.unwrap_or(0))
    }

    async fn finish(self) {
        if let Some((url, prefix)) = &self.redis {
            ebok_testkit::redis_cleanup(url, prefix).await;
        }
    }
}
