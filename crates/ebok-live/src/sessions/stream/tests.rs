//! The shared map on a real Redis (`EBOK_TEST_REDIS`, default the local server), each test
//! under a key prefix of its own, deleted afterwards.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use ebok_radius::event::StatusType;

struct Log {
    url: String,
    prefix: String,
    dir: tempfile::TempDir,
}

impl Log {
    async fn new(test: &str) -> Option<Log> {
        let url = ebok_testkit::redis(test).await?;
        Some(Log {
            url,
            prefix: ebok_testkit::redis_prefix(),
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn target(&self) -> RedisTarget {
        RedisTarget::Single {
            url: self.url.clone(),
        }
    }

    fn snapshot(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}.sqlite"))
    }

    async fn instance_at(&self, snapshot: &Path, retention: Duration) -> StreamSessions {
        let options = StreamOptions {
            prefix: self.prefix.clone(),
            streams: 4,
            retention,
        };
        StreamSessions::open(&self.target(), snapshot, options)
            .await
            .expect("join the log")
    }

    async fn instance(&self, name: &str) -> StreamSessions {
        self.instance_at(&self.snapshot(name), Duration::from_secs(3600))
            .await
    }

    async fn entries(&self) -> u64 {
        let mut conn = redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut n = 0;
        for key in stream_keys(&self.prefix, 4) {
            n += redis::cmd("XLEN")
                .arg(&key)
                .query_async::<u64>(&mut conn)
                .await
                .unwrap();
        }
        n
    }

    async fn finish(self) {
        ebok_testkit::redis_cleanup(&self.url, &self.prefix).await;
    }
}

fn event(status: StatusType, sid: &str, at: OffsetDateTime, ip: &str) -> AccountingEvent {
    let mut e = AccountingEvent::new(status, "10.0.0.1", sid, at);
    e.user_name = Some(format!("user-{sid}"));
    e.framed_ip = Some(ip.parse().unwrap());
    e
}

fn deadline(at: OffsetDateTime) -> OffsetDateTime {
    at + time::Duration::minutes(11)
}

/// Line `i` of the test network `100.{net}.0.0/16`.
fn line(net: u8, i: u32) -> String {
    format!("100.{net}.{}.{}", i / 250, i % 250 + 1)
}

/// Start 1,200 sessions `{name}0…` through `store` (enough to fill whole stream nodes:
/// trimming drops whole nodes), then wait until they are older than a 1-second retention.
async fn fill_past_retention(store: &StreamSessions, name: &str, net: u8, t: OffsetDateTime) {
    let starts: Vec<_> = (0..1200u32)
        .map(|i| {
            let e = event(StatusType::Start, &format!("{name}{i}"), t, &line(net, i));
            (Arc::new(e), deadline(t))
        })
        .collect();
    assert!(store.apply_batch(&starts).await.iter().all(Result::is_ok));
    let filled = OffsetDateTime::now_utc();
    ebok_testkit::eventually("the log ages past the retention", || async {
        OffsetDateTime::now_utc() - filled > time::Duration::milliseconds(1500)
    })
    .await;
}

/// A Start through A shows in B within a second; a Stop through B leaves A's map; the closed
/// session is reported to the instance that took the Stop, not to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_see_each_others_events_and_only_the_ingesting_one_reports() {
    let Some(log) = Log::new("stream: instances see each other").await else {
        return;
    };
    let a = Arc::new(log.instance("a").await);
    let b = Arc::new(log.instance("b").await);
    let t = OffsetDateTime::now_utc();
    let ip: IpAddr = "100.64.1.1".parse().unwrap();
    a.apply(
        &event(StatusType::Start, "s1", t, "100.64.1.1"),
        deadline(t),
    )
    .await
    .unwrap();
    assert!(
        ebok_testkit::eventually_within(Duration::from_secs(1), || async {
            b.lookup(ip).await.unwrap().is_some()
        })
        .await,
        "B sees A's Start within a second"
    );
    let stop = b
        .apply(
            &event(
                StatusType::Stop,
                "s1",
                t + time::Duration::seconds(30),
                "100.64.1.1",
            ),
            deadline(t),
        )
        .await
        .unwrap();
    assert_eq!(stop.closed.len(), 1, "B took the Stop and reports it");
    ebok_testkit::eventually("A drops the session B stopped", || async {
        a.lookup(ip).await.unwrap().is_none()
    })
    .await;
    // A read B's Stop, but nothing was waiting for it there: no second report, and a
    // repeat of the Stop through A is stale (it reports the same closed session again,
    // which history writes once).
    let again = a
        .apply(
            &event(
                StatusType::Stop,
                "s1",
                t + time::Duration::seconds(30),
                "100.64.1.1",
            ),
            deadline(t),
        )
        .await
        .unwrap();
    assert!(again.stale);
    drop((a, b));
    log.finish().await;
}

/// An instance with no snapshot learns every live session from the retained log, including
/// one whose Start was trimmed away (its Interim-Update carries it); the log keeps only the
/// retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_instance_learns_every_live_session_from_the_retained_log() {
    let Some(log) = Log::new("stream: retained log").await else {
        return;
    };
    let retention = Duration::from_secs(1);
    let a = log.instance_at(&log.snapshot("a"), retention).await;
    let t = OffsetDateTime::now_utc();
    fill_past_retention(&a, "s", 65, t).await;
    assert_eq!(log.entries().await, 1200);
    // Past the retention, ten sessions send an Interim-Update (each append trims).
    let later = OffsetDateTime::now_utc();
    for i in 0..10u32 {
        let ip = line(65, i);
        let mut e = event(StatusType::InterimUpdate, &format!("s{i}"), later, &ip);
        e.session_time = Some(2);
        a.apply(&e, deadline(later)).await.unwrap();
    }
    let kept = log.entries().await;
    assert!(
        kept < 1200,
        "the log is trimmed to the retention: {kept} entries left"
    );

    let c = log.instance_at(&log.snapshot("c"), retention).await;
    for i in 0..10u32 {
        let s = c
            .get("10.0.0.1", &format!("s{i}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("s{i} known from its Interim-Update"));
        assert_eq!(s.started_at, later - time::Duration::seconds(2));
    }
    assert_eq!(c.count().await.unwrap() as usize, 10 + (kept as usize - 10));
    c.close().await;
    a.close().await;
    log.finish().await;
}

/// A restarted instance reads on from its snapshot's positions; one whose snapshot is older
/// than the retained log starts afresh from the log instead of keeping sessions it can no
/// longer hear the end of.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_reads_on_from_the_snapshot_and_a_stale_snapshot_starts_afresh() {
    let Some(log) = Log::new("stream: restart").await else {
        return;
    };
    let retention = Duration::from_secs(1);
    let a = log.instance_at(&log.snapshot("a"), retention).await;
    let b = log.instance_at(&log.snapshot("b"), retention).await;
    let t = OffsetDateTime::now_utc();
    a.apply(
        &event(StatusType::Start, "kept", t, "100.66.0.1"),
        deadline(t),
    )
    .await
    .unwrap();
    a.settle().await.unwrap();
    a.close().await;
    // While A is away, B stops that session and starts another.
    b.apply(
        &event(
            StatusType::Stop,
            "kept",
            t + time::Duration::seconds(5),
            "100.66.0.1",
        ),
        deadline(t),
    )
    .await
    .unwrap();
    b.apply(
        &event(StatusType::Start, "new", t, "100.66.0.2"),
        deadline(t),
    )
    .await
    .unwrap();
    let a = log.instance_at(&log.snapshot("a"), retention).await;
    assert!(a.get("10.0.0.1", "kept").await.unwrap().is_none());
    assert!(a.get("10.0.0.1", "new").await.unwrap().is_some());
    a.close().await;

    // A stays away past the retention while B fills and trims the log: A's snapshot is
    // stale, so A starts from what the log still holds.
    fill_past_retention(&b, "f", 67, t).await;
    let now = OffsetDateTime::now_utc();
    b.apply(
        &event(StatusType::Start, "last", now, "100.66.0.3"),
        deadline(now),
    )
    .await
    .unwrap();
    let kept = log.entries().await;
    assert!(kept < 1202, "trimmed: {kept}");
    let a = log.instance_at(&log.snapshot("a"), retention).await;
    assert!(a.get("10.0.0.1", "last").await.unwrap().is_some());
    assert_eq!(
        a.count().await.unwrap(),
        kept,
        "A knows exactly what the retained log holds (every entry there a Start)"
    );
    a.close().await;
    b.close().await;
    log.finish().await;
}

/// Expiry closes a session on every instance (history collapses the copies), once each
/// has read the log to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_closes_on_every_instance_up_to_what_it_has_read() {
    let Some(log) = Log::new("stream: expiry").await else {
        return;
    };
    let a = log.instance("a").await;
    let b = log.instance("b").await;
    let t = OffsetDateTime::now_utc() - time::Duration::minutes(20);
    a.apply(
        &event(StatusType::Start, "old", t, "100.68.0.1"),
        deadline(t),
    )
    .await
    .unwrap();
    b.settle().await.unwrap();
    let far = OffsetDateTime::now_utc() + time::Duration::days(1);
    let (ca, cb) = (a.expire(far).await.unwrap(), b.expire(far).await.unwrap());
    assert_eq!(ca.len(), 1);
    assert_eq!(ca, cb, "the same closed session on both");
    a.close().await;
    b.close().await;
    log.finish().await;
}

/// An entry that is not one (another version's) is passed over and counted; the readers go
/// on with what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_that_is_not_one_is_passed_over() {
    let Some(log) = Log::new("stream: bad entry").await else {
        return;
    };
    let a = log.instance("a").await;
    let mut conn = redis::Client::open(log.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for key in stream_keys(&log.prefix, 4) {
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg(FIELD)
            .arg(b"\x09not an entry".as_slice())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let t = OffsetDateTime::now_utc();
    a.apply(
        &event(StatusType::Start, "after", t, "100.69.0.1"),
        deadline(t),
    )
    .await
    .unwrap();
    assert!(a.get("10.0.0.1", "after").await.unwrap().is_some());
    a.close().await;
    log.finish().await;
}
