//! Nothing answered is lost: journaled while Redis is down with replay when it returns, and
//! `kill -9` of the ebok binary in the middle of a stream.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use ebok::sessions::LiveSessions;

use crate::harness::*;

/// A private redis-server on its own port that the test can stop and start (also used by
/// the systemd watchdog test).
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub async fn start(port: u16) -> std::io::Result<OwnRedis> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Killed on drop, also when it never answers.
        let redis = OwnRedis {
            port,
            child: Some(child),
        };
        eventually("the test's redis-server accepts connections", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Ok(redis)
    }

    /// On a free port; `None` (the test recorded as skipped) without the redis-server binary
    /// (the machine's Redis package — the running server is not used).
    pub async fn start_on_free_port(test: &str) -> Option<OwnRedis> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            ebok_testkit::skip(test, "redis-server binary", "not installed");
            return None;
        }
        Some(OwnRedis::start(free_tcp_port()).await.unwrap())
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn redis_down_events_are_spooled_answered_and_replayed() {
    let Some(mut redis) = OwnRedis::start_on_free_port("redis_down_events_are_spooled").await
    else {
        return;
    };
    let port = redis.port;
    let backend = Backend::Redis {
        url: redis.url(),
        prefix: "spooltest:".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &backend, None);
    c.radius.store_timeout_ms = 200;
    let ebok = Ebok::start(c).await;
    acct(
        &ebok,
        &attrs("Start", "before", "u0", Some("10.6.0.1"), 1_764_000_000, ""),
    )
    .await;
    assert!(ebok.lookup("10.6.0.1").await.is_some());

    redis.stop();
    // Store down: every event is still answered quickly, from the journal.
    for i in 2..12 {
        let started = std::time::Instant::now();
        acct_unsettled(
            &ebok,
            &attrs(
                "Start",
                &format!("during-{i}"),
                "u",
                Some(&format!("10.6.0.{i}")),
                1_764_000_100 + i,
                "",
            ),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered within a NAS's patience"
        );
    }
    acct_unsettled(
        &ebok,
        &attrs("Stop", "before", "u0", Some("10.6.0.1"), 1_764_000_200, ""),
    )
    .await;
    // Several events of one session while journaled: replayed in their order.
    for k in 1..=5u32 {
        let extra = format!("Acct-Output-Octets = {}\n", k * 100);
        let a = attrs(
            "Interim-Update",
            "during-2",
            "u",
            Some("10.6.0.2"),
            1_764_000_300 + i64::from(k),
            &extra,
        );
        acct_unsettled(&ebok, &a).await;
    }
    acct_unsettled(
        &ebok,
        &attrs("Stop", "during-3", "u", Some("10.6.0.3"), 1_764_000_400, ""),
    )
    .await;
    assert!(ebok.running.ingest.spool.depth() >= 17);
    assert!(ebok.metric("ebok_radius_journaled_total").await >= 11.0);

    let _redis = OwnRedis::start(port).await.unwrap();
    eventually("spool replayed", || async {
        ebok.running.ingest.spool.depth() == 0
    })
    .await;
    for i in 4..12 {
        let s = ebok
            .lookup(&format!("10.6.0.{i}"))
            .await
            .expect("replayed Start is live");
        assert_eq!(s.session_id, format!("during-{i}"));
    }
    assert_eq!(ebok.lookup("10.6.0.2").await.unwrap().output_octets, 500);
    assert!(
        ebok.lookup("10.6.0.3").await.is_none(),
        "Start then Stop replayed in order"
    );
    assert!(
        ebok.lookup("10.6.0.1").await.is_none(),
        "replayed Stop applied in order"
    );
    ebok.stop().await;
}

#[tokio::test]
async fn kill_9_loses_nothing_that_was_answered() {
    let dir = tempfile::tempdir().unwrap();
    let radius_port = free_port();
    let metrics_port = free_tcp_port();
    let cfg = dir.path().join("ebok.toml");
    std::fs::write(
        &cfg,
        format!(
            "[radius]\nlisten = [\"127.0.0.1:{radius_port}\"]\nrecv_buffer = 1048576\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
             [state]\ndir = \"{state}\"\n[database]\nurl = \"sqlite://{state}/ebok.sqlite\"\n",
            state = dir.path().display()
        ),
    )
    .unwrap();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ebok"))
            .args(["--config", cfg.to_str().unwrap(), "run"])
            .env("EBOK_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let to: SocketAddr = format!("127.0.0.1:{radius_port}").parse().unwrap();
    let mut child = spawn();
    let raw = RawClient::new(to).await;
    // Wait for the listener.
    let raw = &raw;
    eventually("ebok binary answered", || async move {
        raw.exchange(&start_event(0, 1_764_000_000), Duration::from_millis(100))
            .await
            .is_some()
    })
    .await;

    // A window of outstanding requests; kill -9 while some are in flight.
    let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let answered = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let reader = {
        let sock = sock.clone();
        let answered = answered.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await
            {
                if n >= 20 && buf[0] == 5 {
                    answered.lock().unwrap().insert(buf[1]);
                }
            }
        })
    };
    // Identifiers 1..=200 map to sessions k-1..k-200 (one request per identifier).
    for i in 1..=200u32 {
        sock.send_to(&start_event(i, 1_764_000_000 + i), to)
            .await
            .unwrap();
        if i == 150 {
            let _ = child.kill(); // SIGKILL
        }
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    let _ = child.wait();
    reader.await.unwrap();
    let answered: Vec<u8> = answered.lock().unwrap().iter().copied().collect();
    assert!(
        answered.len() >= 50,
        "most requests before the kill were answered: {}",
        answered.len()
    );

    // Answered means in the journal: a restart replays it into the store. Start the binary
    // again, let it replay, stop it gracefully, then read the store on disk.
    let mut child = spawn();
    let metrics = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    eventually("the restarted binary replayed its journal", || async move {
        // In a task: the GET panics while the binary is not listening yet.
        let scrape = tokio::spawn(async move { http_get(metrics, "/metrics").await });
        matches!(
            tokio::time::timeout(Duration::from_secs(1), scrape).await,
            Ok(Ok(text)) if text.contains("ebok_journal_depth 0")
        )
    })
    .await;
    // SIGTERM: graceful stop.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let live = ebok::sessions::embedded::EmbeddedSessions::open(&dir.path().join("live.sqlite"))
        .await
        .unwrap();
    for id in &answered {
        let i = *id as u32;
        if i == 0 {
            continue;
        }
        let s = live.get("192.0.2.1", &format!("k-{i}")).await.unwrap();
        assert!(s.is_some(), "answered session k-{i} survived kill -9");
    }
}

#[tokio::test]
async fn history_database_down_is_spooled_and_replayed() {
    // Embedded live map, PostgreSQL history; the history table goes away for a while.
    let Some(pg) = ebok_testkit::FreshPg::create("history_database_down").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, Some(&pg.url))).await;
    acct(
        &ebok,
        &attrs("Start", "h-1", "hanna", Some("10.7.0.1"), 1_764_000_000, ""),
    )
    .await;
    let admin = match &ebok.running.db {
        ebok::store::Db::Postgres(p) => p.clone(),
        _ => unreachable!(),
    };
    sqlx::query("ALTER TABLE session_history RENAME TO session_history_away")
        .execute(&admin)
        .await
        .unwrap();
    // The Stop is answered: the live map took it, its history record went to the journal.
    acct(
        &ebok,
        &attrs(
            "Stop",
            "h-1",
            "hanna",
            Some("10.7.0.1"),
            1_764_000_300,
            "Acct-Output-Octets = 42\n",
        ),
    )
    .await;
    assert!(ebok.lookup("10.7.0.1").await.is_none());
    assert!(ebok.running.ingest.spool.depth() >= 1);
    sqlx::query("ALTER TABLE session_history_away RENAME TO session_history")
        .execute(&admin)
        .await
        .unwrap();
    eventually("history replayed", || async {
        ebok.running.ingest.spool.depth() == 0
    })
    .await;
    let rows = ebok::store::attribution::held_at(
        &ebok.running.db,
        "10.7.0.1".parse().unwrap(),
        time::OffsetDateTime::from_unix_timestamp(1_764_000_100).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].output_octets, 42);
    ebok.stop().await;
    pg.drop_db().await;
}

/// Past `radius.journal_max_bytes` an event is not answered (the NAS keeps it and retries)
/// and the drop is counted as `journal_full`; without the cap the retry is answered. (The
/// metrics are the process's, shared with the tests running alongside: only counts this
/// test alone makes are checked.)
#[tokio::test]
async fn a_full_journal_is_not_answered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, None)).await;
    // A cap below one event: every event is refused.
    ebok.running.ingest.spool.set_max_bytes(1);
    let a = attrs(
        "Start",
        "full-1",
        "jan",
        Some("10.9.0.1"),
        1_700_000_000,
        "",
    );
    assert!(!radclient(ebok.radius, "acct", SECRET, &a).await);
    let m = ebok.metrics().await;
    assert!(
        metric_value(&m, "ebok_radius_dropped_total{reason=\"journal_full\"}") >= 1.0,
        "{m}"
    );
    ebok.running.ingest.spool.set_max_bytes(0);
    acct(&ebok, &a).await;
    assert!(ebok.lookup("10.9.0.1").await.is_some());
    ebok.stop().await;
}
