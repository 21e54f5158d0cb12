//! The accounting listener end to end: radclient Start/Interim/Stop/On/Off, wrong secret,
//! unknown NAS, duplicates, reordering, IP reuse, expiry, restart durability, spooling.

use std::time::Duration;

use ebok::radius::packet;
use ebok::store::{attribution, history};
use time::OffsetDateTime;

use crate::harness::*;

const T0: i64 = 1_764_000_000; // 2025-11-24 16:00 UTC

fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap()
}

#[tokio::test]
async fn start_interim_stop_through_radclient() {
    for backend in Backend::all("start_interim_stop_through_radclient").await {
        let dir = tempfile::tempdir().unwrap();
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;

        acct(
            &ebok,
            &attrs(
                "Start",
                "sess-1",
                "jan.kowalski",
                Some("10.0.0.7"),
                T0,
                "Framed-IPv6-Prefix = 2001:db8:1::/64\nDelegated-IPv6-Prefix = 2001:db8:100::/56\n",
            ),
        )
        .await;
        let s = ebok.lookup("10.0.0.7").await.expect("mapped after Start");
        assert_eq!(s.session_id, "sess-1");
        assert_eq!(s.user_name.as_deref(), Some("jan.kowalski"));
        assert_eq!(s.nas, "192.0.2.1");
        assert_eq!(s.calling_station_id.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(s.started_at, at(T0));
        // Any address inside the delegated /56 or the framed /64.
        let v6 = ebok
            .lookup("2001:db8:100:ff::1234")
            .await
            .expect("inside /56");
        assert_eq!(v6.session_id, "sess-1");
        assert!(ebok.lookup("2001:db8:1::99").await.is_some());
        assert!(ebok.lookup("2001:db8:101::1").await.is_none());

        acct(
            &ebok,
            &attrs(
                "Interim-Update",
                "sess-1",
                "jan.kowalski",
                Some("10.0.0.7"),
                T0 + 300,
                "Acct-Input-Octets = 5\nAcct-Input-Gigawords = 1\nAcct-Output-Octets = 1000\nAcct-Session-Time = 300\n",
            ),
        )
        .await;
        let s = ebok.lookup("10.0.0.7").await.unwrap();
        assert_eq!(s.input_octets, (1u64 << 32) + 5);
        assert_eq!(s.output_octets, 1000);
        assert_eq!(s.updated_at, at(T0 + 300));

        acct(
            &ebok,
            &attrs(
                "Stop",
                "sess-1",
                "jan.kowalski",
                Some("10.0.0.7"),
                T0 + 600,
                "Acct-Input-Octets = 10\nAcct-Input-Gigawords = 1\nAcct-Output-Octets = 3000\n\
                 Acct-Session-Time = 600\nAcct-Terminate-Cause = User-Request\n",
            ),
        )
        .await;
        assert!(
            ebok.lookup("10.0.0.7").await.is_none(),
            "unmapped after Stop"
        );
        assert!(ebok.lookup("2001:db8:100::1").await.is_none());

        // History: the closed session, findable by IPv4 and IPv6 at a time inside it.
        let db = &ebok.running.db;
        let rows = attribution::held_at(db, "10.0.0.7".parse().unwrap(), at(T0 + 100))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].session_id, "sess-1");
        assert_eq!(rows[0].stopped_at, Some(at(T0 + 600)));
        assert_eq!(rows[0].terminate_cause, Some(1));
        assert_eq!(rows[0].input_octets, (1u64 << 32) + 10);
        let rows6 = attribution::held_at(db, "2001:db8:100:ab::1".parse().unwrap(), at(T0 + 600))
            .await
            .unwrap();
        assert_eq!(rows6.len(), 1);
        assert!(
            attribution::held_at(db, "10.0.0.7".parse().unwrap(), at(T0 + 601))
                .await
                .unwrap()
                .is_empty()
        );
        // Daily traffic: the whole session's octets on its Warsaw day.
        let day = ebok::tz::warsaw_date(at(T0));
        assert_eq!(
            history::traffic_on(db, "jan.kowalski", day).await.unwrap(),
            Some(((1u64 << 32) + 10, 3000))
        );

        // Metrics are process-wide and tests run in parallel: at least ours are counted.
        let m = ebok.metrics().await;
        assert!(metric_value(&m, "ebok_radius_packets_total{type=\"start\"}") >= 1.0);
        assert!(metric_value(&m, "ebok_radius_packets_total{type=\"stop\"}") >= 1.0);
        ebok.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn history_on_postgresql() {
    let Some(pg) = ebok_testkit::FreshPg::create("history_on_postgresql").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, Some(&pg.url))).await;
    assert_eq!(ebok.running.db.backend(), "postgres");
    acct(
        &ebok,
        &attrs(
            "Start",
            "pg-1",
            "anna",
            Some("10.1.0.1"),
            T0,
            "Delegated-IPv6-Prefix = 2001:db8:200::/48\n",
        ),
    )
    .await;
    acct(
        &ebok,
        &attrs(
            "Stop",
            "pg-1",
            "anna",
            Some("10.1.0.1"),
            T0 + 60,
            "Acct-Output-Octets = 77\n",
        ),
    )
    .await;
    let db = &ebok.running.db;
    let rows = attribution::held_at(db, "10.1.0.1".parse().unwrap(), at(T0))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_name.as_deref(), Some("anna"));
    let rows6 = attribution::held_at(db, "2001:db8:200:1::5".parse().unwrap(), at(T0 + 60))
        .await
        .unwrap();
    assert_eq!(rows6.len(), 1);
    assert_eq!(
        history::traffic_on(db, "anna", ebok::tz::warsaw_date(at(T0)))
            .await
            .unwrap(),
        Some((0, 77))
    );
    ebok.stop().await;
    pg.drop_db().await;
}

#[tokio::test]
async fn wrong_secret_unknown_nas_and_garbage_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, None)).await;
    let a = attrs("Start", "x-1", "u", Some("10.0.0.9"), T0, "");
    assert!(!radclient(ebok.radius, "acct", "wrong-secret", &a).await);
    assert!(ebok.lookup("10.0.0.9").await.is_none());
    assert!(
        ebok.metric("ebok_radius_dropped_total{reason=\"bad_authenticator\"}")
            .await
            >= 1.0
    );

    let raw = RawClient::new(ebok.radius).await;
    for bad in [
        &[1u8, 2, 3][..],
        &[
            4u8, 1, 0, 19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ][..],
    ] {
        assert!(raw
            .exchange(bad, Duration::from_millis(200))
            .await
            .is_none());
    }
    let m = ebok.metrics().await;
    assert!(
        metric_value(&m, "ebok_radius_dropped_total{reason=\"short_datagram\"}") >= 1.0,
        "{m}"
    );
    assert!(
        metric_value(&m, "ebok_radius_dropped_total{reason=\"bad_length\"}") >= 1.0,
        "{m}"
    );
    ebok.stop().await;

    // A NAS table without loopback: radclient's packets come from an unknown NAS.
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &Backend::Embedded, None);
    c.nas = toml::from_str::<ebok::config::Config>(
        "[[nas]]\nname = \"far\"\nprefixes = [\"192.0.2.0/24\"]\nsecret = \"testing123\"\n",
    )
    .unwrap()
    .nas;
    let ebok = Ebok::start(c).await;
    assert!(!radclient(ebok.radius, "acct", SECRET, &a).await);
    assert!(
        ebok.metric("ebok_radius_dropped_total{reason=\"unknown_nas\"}")
            .await
            >= 1.0
    );
    ebok.stop().await;
}

#[tokio::test]
async fn status_server_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, None)).await;
    assert!(
        radclient(
            ebok.radius,
            "status",
            SECRET,
            "Message-Authenticator = 0x00\n"
        )
        .await
    );
    assert!(
        ebok.metric("ebok_radius_packets_total{type=\"status_server\"}")
            .await
            >= 1.0
    );
    // Without a valid Message-Authenticator it is dropped.
    let raw = RawClient::new(ebok.radius).await;
    let mut bogus = packet::build_status_server(9, SECRET.as_bytes(), [7u8; 16]);
    let n = bogus.len();
    bogus[n - 1] ^= 0xff;
    assert!(raw
        .exchange(&bogus, Duration::from_millis(300))
        .await
        .is_none());
    ebok.stop().await;
}

/// Attribute list for raw packets.
fn raw_event(status: u32, session: &str, ip: [u8; 4], ts: u32, input: u32) -> Vec<(u8, Vec<u8>)> {
    vec![
        (40, status.to_be_bytes().to_vec()),
        (44, session.as_bytes().to_vec()),
        (1, b"raw-user".to_vec()),
        (4, vec![192, 0, 2, 1]),
        (8, ip.to_vec()),
        (55, ts.to_be_bytes().to_vec()),
        (42, input.to_be_bytes().to_vec()),
    ]
}

#[tokio::test]
async fn duplicates_are_answered_from_cache_without_reprocessing() {
    for backend in Backend::all("duplicates_are_answered_from_cache").await {
        let dir = tempfile::tempdir().unwrap();
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;
        let raw = RawClient::new(ebok.radius).await;
        let start = packet::build_accounting_request(
            1,
            SECRET.as_bytes(),
            &raw_event(1, "dup-1", [10, 0, 0, 20], T0 as u32, 0),
            false,
        );
        let r1 = raw
            .exchange(&start, Duration::from_secs(2))
            .await
            .expect("reply");
        let interim = packet::build_accounting_request(
            2,
            SECRET.as_bytes(),
            &raw_event(3, "dup-1", [10, 0, 0, 20], T0 as u32 + 60, 500),
            false,
        );
        let r2 = raw
            .exchange(&interim, Duration::from_secs(2))
            .await
            .expect("reply");
        // Retransmit both: identical replies, no second processing.
        assert_eq!(
            raw.exchange(&start, Duration::from_secs(2)).await,
            Some(r1.clone())
        );
        assert_eq!(
            raw.exchange(&interim, Duration::from_secs(2)).await,
            Some(r2)
        );
        assert_eq!(r1[0], 5, "Accounting-Response");
        assert_eq!(r1[1], 1, "same identifier");
        assert!(
            ebok.metric("ebok_radius_duplicates_total{action=\"resent\"}")
                .await
                >= 2.0
        );
        let s = ebok.lookup("10.0.0.20").await.unwrap();
        assert_eq!(s.input_octets, 500);
        // Processed once: the interim's 500 octets were counted once in daily traffic.
        let day = ebok::tz::warsaw_date(at(T0 + 60));
        let db = &ebok.running.db;
        assert_eq!(
            history::traffic_on(db, "raw-user", day).await.unwrap(),
            Some((500, 0))
        );
        // A datagram padded beyond Length is the same request.
        let mut padded = start.clone();
        padded.extend_from_slice(&[0u8; 13]);
        assert_eq!(
            raw.exchange(&padded, Duration::from_secs(2)).await,
            Some(r1)
        );
        ebok.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn reordering_and_late_stop_after_ip_reuse() {
    for backend in Backend::all("reordering_and_late_stop_after_ip_reuse").await {
        let dir = tempfile::tempdir().unwrap();
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;
        // Interim arrives before its Start: the Start (older) must not roll it back.
        acct(
            &ebok,
            &attrs(
                "Interim-Update",
                "a",
                "alice",
                Some("10.0.0.30"),
                T0 + 60,
                "Acct-Output-Octets = 900\nAcct-Session-Time = 60\n",
            ),
        )
        .await;
        acct(
            &ebok,
            &attrs("Start", "a", "alice", Some("10.0.0.30"), T0, ""),
        )
        .await;
        let s = ebok.lookup("10.0.0.30").await.unwrap();
        assert_eq!(s.output_octets, 900);
        assert_eq!(s.updated_at, at(T0 + 60));
        assert_eq!(s.started_at, at(T0));

        // The IP goes to bob's new session; alice's Stop arrives late.
        acct(
            &ebok,
            &attrs("Start", "b", "bob", Some("10.0.0.30"), T0 + 120, ""),
        )
        .await;
        assert_eq!(ebok.lookup("10.0.0.30").await.unwrap().session_id, "b");
        acct(
            &ebok,
            &attrs(
                "Interim-Update",
                "a",
                "alice",
                Some("10.0.0.30"),
                T0 + 130,
                "",
            ),
        )
        .await;
        assert_eq!(
            ebok.lookup("10.0.0.30").await.unwrap().session_id,
            "b",
            "late interim must not re-take"
        );
        acct(
            &ebok,
            &attrs(
                "Stop",
                "a",
                "alice",
                Some("10.0.0.30"),
                T0 + 140,
                "Acct-Session-Time = 140\n",
            ),
        )
        .await;
        let s = ebok.lookup("10.0.0.30").await.expect("bob keeps the IP");
        assert_eq!(s.session_id, "b");
        assert_eq!(s.user_name.as_deref(), Some("bob"));

        // Stop without Start is accepted and recorded.
        acct(
            &ebok,
            &attrs(
                "Stop",
                "c",
                "carol",
                Some("10.0.0.31"),
                T0 + 500,
                "Acct-Session-Time = 100\n",
            ),
        )
        .await;
        assert!(ebok.lookup("10.0.0.31").await.is_none());
        let rows =
            attribution::held_at(&ebok.running.db, "10.0.0.31".parse().unwrap(), at(T0 + 450))
                .await
                .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].started_at, at(T0 + 400));
        ebok.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn accounting_on_and_off_close_that_nas_only() {
    for backend in Backend::all("accounting_on_and_off_close_that_nas_only").await {
        let dir = tempfile::tempdir().unwrap();
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;
        acct(
            &ebok,
            &attrs("Start", "n1-a", "u1", Some("10.0.1.1"), T0, ""),
        )
        .await;
        acct(
            &ebok,
            &attrs("Start", "n1-b", "u2", Some("10.0.1.2"), T0, ""),
        )
        .await;
        let other = attrs("Start", "n2-a", "u3", Some("10.0.2.1"), T0, "")
            .replace("NAS-IP-Address = 192.0.2.1", "NAS-IP-Address = 192.0.2.2");
        acct(&ebok, &other).await;
        acct(&ebok, &format!("Acct-Status-Type = Accounting-On\nNAS-IP-Address = 192.0.2.1\nEvent-Timestamp = {}\n", T0 + 10)).await;
        assert!(ebok.lookup("10.0.1.1").await.is_none());
        assert!(ebok.lookup("10.0.1.2").await.is_none());
        assert!(
            ebok.lookup("10.0.2.1").await.is_some(),
            "other NAS untouched"
        );
        acct(&ebok, &format!("Acct-Status-Type = Accounting-Off\nNAS-IP-Address = 192.0.2.2\nEvent-Timestamp = {}\n", T0 + 20)).await;
        assert!(ebok.lookup("10.0.2.1").await.is_none());
        let rows = attribution::held_at(&ebok.running.db, "10.0.1.1".parse().unwrap(), at(T0 + 5))
            .await
            .unwrap();
        assert_eq!(rows[0].close_reason.as_deref(), Some("nas_restart"));
        ebok.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn sessions_without_updates_expire_in_paused_time() {
    for backend in Backend::all("sessions_without_updates_expire").await {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), &backend, None);
        c.sessions.interim_interval = 60;
        c.sessions.grace = 30;
        c.sessions.expiry_sweep_interval = 5;
        let ebok = Ebok::start(c).await;
        // Event time "now", so the session's own times are current.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        acct(
            &ebok,
            &attrs("Start", "e-1", "eve", Some("10.0.3.1"), now, ""),
        )
        .await;
        assert!(ebok.lookup("10.0.3.1").await.is_some());
        match backend {
            Backend::Embedded => {
                // The sweeper runs on tokio's clock: jump it forward.
                tokio::time::pause();
                tokio::time::advance(Duration::from_secs(100)).await;
                settle().await;
                assert!(
                    ebok.lookup("10.0.3.1").await.is_some(),
                    "not yet: 150 s allowed"
                );
                tokio::time::advance(Duration::from_secs(60)).await;
                settle().await;
                tokio::time::resume();
            }
            Backend::Redis { .. } => {
                // The Redis client's own timeouts run on tokio's clock too, so pausing it
                // would time them out; sweep at the instants the sweeper would use instead.
                let ingest = &ebok.running.ingest;
                let clock = ingest.clock.now();
                assert_eq!(
                    ingest
                        .sweep(clock + Duration::from_secs(100))
                        .await
                        .unwrap(),
                    0
                );
                assert!(
                    ebok.lookup("10.0.3.1").await.is_some(),
                    "not yet: 150 s allowed"
                );
                assert_eq!(
                    ingest
                        .sweep(clock + Duration::from_secs(160))
                        .await
                        .unwrap(),
                    1
                );
            }
        }
        eventually("expired session unmapped", || async {
            ebok.lookup("10.0.3.1").await.is_none()
        })
        .await;
        // The live map is committed first; the closed session reaches history right after.
        eventually("expired session in history", || async {
            !attribution::held_at(&ebok.running.db, "10.0.3.1".parse().unwrap(), at(now))
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        let rows = attribution::held_at(&ebok.running.db, "10.0.3.1".parse().unwrap(), at(now))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].close_reason.as_deref(), Some("expired"));
        ebok.stop().await;
        backend.cleanup().await;
    }
}

/// Let spawned tasks run after a clock jump.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn embedded_store_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, None)).await;
    acct(
        &ebok,
        &attrs(
            "Start",
            "r-1",
            "rita",
            Some("10.0.4.1"),
            T0,
            "Delegated-IPv6-Prefix = 2001:db8:400::/56\n",
        ),
    )
    .await;
    ebok.stop().await;
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, None)).await;
    assert_eq!(ebok.lookup("10.0.4.1").await.unwrap().session_id, "r-1");
    assert_eq!(
        ebok.lookup("2001:db8:400:1::1").await.unwrap().session_id,
        "r-1"
    );
    ebok.stop().await;
}
