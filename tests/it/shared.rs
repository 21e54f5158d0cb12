//! Instances sharing the live map through the log in Redis, on the deployments ISPs run:
//! a Redis Cluster and a Sentinel-watched primary with a replica, started by the tests
//! themselves on their own ports (`ebok_testkit::redis_servers`), two or three ebok
//! instances each with a state directory of its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ebok::config::{Config, StoreKind};
use ebok_testkit::{RedisCluster, RedisSentinel};

use crate::harness::*;

/// Where the instances of one test meet.
#[derive(Clone)]
enum Deployment {
    Cluster(Vec<String>),
    Sentinel { service: String, nodes: Vec<String> },
}

fn shared_config(dir: &std::path::Path, at: &Deployment, prefix: &str) -> Config {
    let mut c = config(dir, &Backend::Embedded, None);
    c.sessions.store = StoreKind::Redis;
    c.sessions.redis_prefix = prefix.to_owned();
    match at {
        Deployment::Cluster(nodes) => c.sessions.redis_cluster = Some(nodes.clone()),
        Deployment::Sentinel { service, nodes } => {
            c.sessions.redis_sentinel = Some(ebok::config::SentinelConfig {
                service: service.clone(),
                nodes: nodes.clone(),
            })
        }
    }
    c
}

/// GET `path` of the panel at `web` from the address `from` (a loopback line).
async fn panel_from(from: IpAddr, web: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut s = socket.connect(web).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {web}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

const OUR_LINE: &str = "to łącze naszej sieci";

fn start(session: &str, ip: &str, ts: i64) -> String {
    attrs(
        "Start",
        session,
        &format!("user-{session}"),
        Some(ip),
        ts,
        "",
    )
}

fn stop(session: &str, ip: &str, ts: i64) -> String {
    attrs(
        "Stop",
        session,
        &format!("user-{session}"),
        Some(ip),
        ts,
        "",
    )
}

/// On a 3-node Cluster: a Start sent to A shows on B's panel within a second, a Stop sent to
/// B leaves A's map, Starts for many sessions land on every shard, and an instance started
/// later knows every live session from the retained log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_share_the_map_on_a_redis_cluster() {
    let test = "shared::instances_share_the_map_on_a_redis_cluster";
    let Some(cluster) = RedisCluster::start(test, 7201, 3).await else {
        return;
    };
    let at = Deployment::Cluster(cluster.nodes());
    let prefix = ebok_testkit::redis_prefix();
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = Ebok::start(shared_config(da.path(), &at, &prefix)).await;
    let b = Ebok::start(shared_config(db.path(), &at, &prefix)).await;
    let web_b = b.running.web_addr;
    let line: IpAddr = "127.0.0.9".parse().unwrap();

    assert!(!panel_from(line, web_b, "/").await.contains(OUR_LINE));
    let sent = std::time::Instant::now();
    acct_unsettled(&a, &start("c-1", "127.0.0.9", 1_764_000_000)).await;
    eventually("B's panel knows the line A was told of", || async {
        panel_from(line, web_b, "/").await.contains(OUR_LINE)
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "seen by B within a second of the answer: {:?}",
        sent.elapsed()
    );
    acct_unsettled(&b, &stop("c-1", "127.0.0.9", 1_764_000_060)).await;
    eventually("A drops the session B was told had stopped", || async {
        a.running.ingest.live.lookup(line).await.unwrap().is_none()
    })
    .await;

    // Many sessions: every shard holds part of the log, and every instance all of them.
    for i in 0..64u32 {
        acct_unsettled(
            &a,
            &start(
                &format!("m-{i}"),
                &format!("127.0.1.{}", i + 1),
                1_764_000_100,
            ),
        )
        .await;
    }
    eventually("B knows all 64", || async {
        b.running.ingest.live.count().await.unwrap() == 64
    })
    .await;
    for node in cluster.nodes() {
        let mut conn = redis::Client::open(node.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}log:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!keys.is_empty(), "{node} holds streams of the log");
    }
    let c = Ebok::start(shared_config(dc.path(), &at, &prefix)).await;
    assert_eq!(
        c.running.ingest.live.count().await.unwrap(),
        64,
        "a new instance knows every live session"
    );
    for e in [a, b, c] {
        e.stop().await;
    }
    drop(cluster);
}

/// Send Starts `range` one after another to `to`, until five in a row go unanswered (the
/// instance is gone); the ones answered.
async fn send_starts(to: SocketAddr, range: std::ops::Range<u32>) -> Vec<u32> {
    let client = RawClient::new(to).await;
    let mut answered = Vec::new();
    let mut unanswered = 0;
    for i in range {
        if client
            .exchange(
                &start_event(i, 1_764_000_000 + i),
                Duration::from_millis(300),
            )
            .await
            .is_some()
        {
            answered.push(i);
            unanswered = 0;
        } else {
            unanswered += 1;
            if unanswered == 5 {
                break;
            }
        }
    }
    answered
}

/// Every session in `answered` is in `ebok`'s map (eventually).
async fn holds_all(ebok: &Ebok, answered: &[u32], who: &str) {
    let live = ebok.running.ingest.live.clone();
    let missing = |live: std::sync::Arc<dyn ebok::sessions::LiveSessions>| {
        let answered = answered.to_vec();
        async move {
            let mut missing = Vec::new();
            for i in answered {
                if live
                    .get("192.0.2.1", &format!("k-{i}"))
                    .await
                    .unwrap()
                    .is_none()
                {
                    missing.push(i);
                }
            }
            missing
        }
    };
    if !ebok_testkit::eventually_within(Duration::from_secs(20), || {
        let m = missing(live.clone());
        async move { m.await.is_empty() }
    })
    .await
    {
        panic!(
            "{who} misses answered sessions: {:?}",
            missing(live.clone()).await
        );
    }
}

/// `kill -9` of instance A (the binary) under load: B never stops answering, and after A's
/// restart and replay B holds every event either answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_instance_loses_nothing_answered() {
    let test = "shared::kill_9_of_one_instance_loses_nothing_answered";
    let Some(cluster) = RedisCluster::start(test, 7211, 3).await else {
        return;
    };
    let nodes = cluster.nodes();
    let prefix = ebok_testkit::redis_prefix();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = Ebok::start(shared_config(
        db.path(),
        &Deployment::Cluster(nodes.clone()),
        &prefix,
    ))
    .await;

    let radius_port = free_port();
    let metrics_port = free_tcp_port();
    let cfg = da.path().join("ebok.toml");
    std::fs::write(
        &cfg,
        format!(
            "[radius]\nlisten = [\"127.0.0.1:{radius_port}\"]\nrecv_buffer = 1048576\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
             [state]\ndir = \"{state}\"\n[database]\nurl = \"sqlite://{state}/ebok.sqlite\"\n\
             [sessions]\nstore = \"redis\"\nredis_prefix = \"{prefix}\"\nredis_cluster = [{nodes}]\n",
            state = da.path().display(),
            nodes = nodes
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ebok"))
            .args(["--config", cfg.to_str().unwrap(), "run"])
            .env("EBOK_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let to_a: SocketAddr = format!("127.0.0.1:{radius_port}").parse().unwrap();
    let mut child = spawn();
    let probe = RawClient::new(to_a).await;
    let probe = &probe;
    eventually("instance A answers", || async move {
        probe
            .exchange(&start_event(0, 1_764_000_000), Duration::from_millis(200))
            .await
            .is_some()
    })
    .await;

    // Load on both; A is killed while its stream is in flight.
    let on_b = tokio::spawn(send_starts(b.radius, 10_000..10_600));
    let on_a = tokio::spawn(send_starts(to_a, 1..400));
    eventually("A has answered some", || async {
        b.running.ingest.live.count().await.unwrap() > 100
    })
    .await;
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let answered_a = on_a.await.unwrap();
    assert!(!answered_a.is_empty());

    // A comes back and replays its journal into the log.
    let mut child = spawn();
    let answered_b = on_b.await.unwrap();
    assert_eq!(answered_b.len(), 600, "B never stopped answering");
    holds_all(&b, &answered_a, "B (A's events)").await;
    holds_all(&b, &answered_b, "B (its own)").await;
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    b.stop().await;
    drop(cluster);
}

/// Sentinel: the primary is killed under load and the replica promoted; afterwards every
/// event either instance answered is in both maps (what the lost primary had not passed
/// on is appended again).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_loses_nothing_answered() {
    let test = "shared::a_sentinel_failover_loses_nothing_answered";
    let Some(mut sentinel) = RedisSentinel::start(test, 7221).await else {
        return;
    };
    let at = Deployment::Sentinel {
        service: sentinel.service().to_owned(),
        nodes: sentinel.sentinel_urls(),
    };
    let prefix = ebok_testkit::redis_prefix();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Ebok::start(shared_config(da.path(), &at, &prefix)).await;
    let b = Ebok::start(shared_config(db.path(), &at, &prefix)).await;
    let on_a = tokio::spawn(send_starts(a.radius, 1..1500));
    eventually("the load is under way", || async {
        b.running.ingest.live.count().await.unwrap() > 200
    })
    .await;
    sentinel.kill_primary().await;
    sentinel.wait_for_promotion(Duration::from_secs(30)).await;
    let answered = on_a.await.unwrap();
    assert_eq!(
        answered.len(),
        1499,
        "answers come from the journal throughout"
    );
    holds_all(&a, &answered, "A").await;
    holds_all(&b, &answered, "B").await;
    a.stop().await;
    b.stop().await;
    drop(sentinel);
}

/// Two instances writing one PostgreSQL history: sessions stopped through either and
/// sessions that expire (every instance closes those) give exactly one row each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_history_row_per_closed_session_with_two_instances_and_expiry() {
    let test = "shared::one_history_row_per_closed_session";
    let Some(cluster) = RedisCluster::start(test, 7231, 3).await else {
        return;
    };
    let Some(pg) = ebok_testkit::FreshPg::create(test).await else {
        return;
    };
    let at = Deployment::Cluster(cluster.nodes());
    let prefix = ebok_testkit::redis_prefix();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shared = |dir: &std::path::Path| {
        let mut c = shared_config(dir, &at, &prefix);
        c.database.url = pg.url.clone();
        // Sessions without updates expire after 2 × 1 + 1 s; swept every second.
        c.sessions.interim_interval = 1;
        c.sessions.grace = 1;
        c.sessions.expiry_sweep_interval = 1;
        c
    };
    let a = Ebok::start(shared(da.path())).await;
    let b = Ebok::start(shared(db.path())).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for i in 0..30 {
        let ip = format!("127.0.2.{}", i + 1);
        acct_unsettled(
            if i % 2 == 0 { &a } else { &b },
            &start(&format!("h-{i}"), &ip, now),
        )
        .await;
    }
    // Ten stop through A, ten through B, ten expire.
    for i in 0..20 {
        let ip = format!("127.0.2.{}", i + 1);
        let via = if i < 10 { &a } else { &b };
        acct_unsettled(via, &stop(&format!("h-{i}"), &ip, now + 1)).await;
    }
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let rows = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT session_id, close_reason FROM session_history ORDER BY session_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    eventually("every closed session has its row", || async {
        rows().await.len() >= 30
    })
    .await;
    // Both instances have swept the expired ten by now.
    eventually("both instances closed the expired sessions", || async {
        a.metric("ebok_sessions_expired_total").await >= 10.0
            && b.metric("ebok_sessions_expired_total").await >= 10.0
    })
    .await;
    let rows = rows().await;
    assert_eq!(rows.len(), 30, "one row per closed session: {rows:?}");
    for (sid, reason) in &rows {
        let i: u32 = sid.trim_start_matches("h-").parse().unwrap();
        let want = if i < 20 { "stop" } else { "expired" };
        assert_eq!(reason, want, "{sid}");
    }
    pool.close().await;
    a.stop().await;
    b.stop().await;
    pg.drop_db().await;
    drop(cluster);
}
