//! An answered packet never stops the live map: impossible times are bounded at the door,
//! a journal record that can never be applied is set aside and the replay goes on, an event
//! applied once but replayed again still gets its history exactly once, and addresses that
//! cannot identify a line never do.

use std::sync::Arc;
use std::time::Duration;

use ebok::dead_letter::DeadLetters;
use ebok::journal::{JournalLog, JournalRecord};
use ebok::radius::event::{AccountingEvent, StatusType};
use ebok::store::{attribution, history};
use time::OffsetDateTime;

use crate::harness::*;

const T0: i64 = 1_764_000_000; // 2025-11-24 16:00 UTC

fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap()
}

/// A Start carrying only the basics, as radclient reads it.
fn start(session: &str, ip: &str, extra: &str) -> String {
    format!(
        "Acct-Status-Type = Start\nAcct-Session-Id = \"{session}\"\nUser-Name = \"u-{session}\"\n\
         NAS-IP-Address = 192.0.2.1\nFramed-IP-Address = {ip}\n{extra}"
    )
}

#[tokio::test]
async fn impossible_times_are_bounded_and_never_stop_the_replay() {
    for backend in Backend::all("impossible_times_are_bounded_and_never_stop_the_replay").await {
        let dir = tempfile::tempdir().unwrap();
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;
        let corrected = |attribute: &'static str| {
            let ebok = &ebok;
            async move {
                ebok.metric(&format!(
                    "ebok_radius_times_corrected_total{{attribute=\"{attribute}\"}}"
                ))
                .await
            }
        };
        let before = (
            corrected("Acct-Delay-Time").await,
            corrected("Acct-Session-Time").await,
            corrected("Event-Timestamp").await,
        );

        // 68 years of delay; 136 years of session; a clock in 2106. Each is answered.
        acct_unsettled(
            &ebok,
            &start("p1", "10.9.0.1", "Acct-Delay-Time = 2147483647\n"),
        )
        .await;
        acct_unsettled(
            &ebok,
            &attrs(
                "Interim-Update",
                "p2",
                "u-p2",
                Some("10.9.0.2"),
                T0,
                "Acct-Session-Time = 4294967295\nAcct-Input-Octets = 100\n",
            ),
        )
        .await;
        acct_unsettled(
            &ebok,
            &start("p3", "10.9.0.3", "Event-Timestamp = 4294967295\n"),
        )
        .await;
        // And the events behind them all reach the live map.
        for i in 0..20 {
            acct_unsettled(&ebok, &start(&format!("n{i}"), &format!("10.9.1.{i}"), "")).await;
        }
        assert!(
            ebok.running.ingest.settled(Duration::from_secs(20)).await,
            "{backend:?}: the journal did not drain"
        );
        for i in 0..20 {
            assert!(ebok.lookup(&format!("10.9.1.{i}")).await.is_some(), "n{i}");
        }
        let now = OffsetDateTime::now_utc();
        let p1 = ebok.lookup("10.9.0.1").await.expect("p1 live");
        assert!(
            p1.started_at >= now - time::Duration::days(2),
            "{:?}",
            p1.started_at
        );
        let p2 = ebok.lookup("10.9.0.2").await.expect("p2 live");
        assert!(p2.started_at >= at(946_684_800), "{:?}", p2.started_at);
        // A clock in 2106 would make every later event of p3 look old: the arrival is used.
        let p3 = ebok.lookup("10.9.0.3").await.expect("p3 live");
        assert!(p3.updated_at <= now + time::Duration::minutes(1));
        acct(
            &ebok,
            &attrs(
                "Stop",
                "p3",
                "u-p3",
                Some("10.9.0.3"),
                now.unix_timestamp() + 5,
                "",
            ),
        )
        .await;
        assert!(ebok.lookup("10.9.0.3").await.is_none(), "p3's Stop applies");

        // p2's history never starts before 2000.
        acct(
            &ebok,
            &attrs(
                "Stop",
                "p2",
                "u-p2",
                Some("10.9.0.2"),
                T0 + 60,
                "Acct-Session-Time = 4294967295\nAcct-Input-Octets = 200\n",
            ),
        )
        .await;
        let rows = attribution::held_at(&ebok.running.db, "10.9.0.2".parse().unwrap(), at(T0))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(
            rows[0].started_at >= at(946_684_800),
            "{:?}",
            rows[0].started_at
        );

        assert_eq!(corrected("Acct-Delay-Time").await - before.0, 1.0);
        assert!(corrected("Acct-Session-Time").await - before.1 >= 2.0);
        assert!(corrected("Event-Timestamp").await - before.2 >= 1.0);
        ebok.stop().await;
        backend.cleanup().await;
    }
}

/// A journal left by an older ebok holds an event no store can encode (its start in 1890):
/// it is set aside in dead-letter.jsonl, and every record after it is applied.
#[tokio::test]
async fn a_record_that_can_never_be_applied_is_set_aside() {
    for backend in Backend::all("a_record_that_can_never_be_applied_is_set_aside").await {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = JournalLog::open(dir.path()).unwrap();
            let mut poison =
                AccountingEvent::new(StatusType::InterimUpdate, "192.0.2.1", "old", at(T0));
            poison.session_time = Some(u32::MAX);
            poison.user_name = Some("u-old".into());
            poison.framed_ip = Some("10.8.0.1".parse().unwrap());
            let mut good = AccountingEvent::new(StatusType::Start, "192.0.2.1", "good", at(T0));
            good.framed_ip = Some("10.8.0.2".parse().unwrap());
            for e in [poison, good] {
                spool
                    .append(&JournalRecord::Event {
                        event: Arc::new(e),
                        expires_at: at(T0) + time::Duration::days(3650),
                    })
                    .await
                    .unwrap();
            }
            assert_eq!(spool.depth(), 2);
        }
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;
        assert!(
            ebok.running.ingest.settled(Duration::from_secs(20)).await,
            "{backend:?}: the journal did not drain"
        );
        assert!(ebok.lookup("10.8.0.2").await.is_some());
        assert!(ebok.lookup("10.8.0.1").await.is_none());
        let set_aside = DeadLetters::read(&dir.path().join(ebok::dead_letter::FILE_NAME)).unwrap();
        assert_eq!(set_aside.len(), 1, "{set_aside:?}");
        assert_eq!(
            set_aside[0]["record"]["Event"]["event"]["session_id"],
            "old"
        );
        assert!(
            set_aside[0]["reason"]
                .as_str()
                .unwrap()
                .contains("out of range"),
            "{}",
            set_aside[0]
        );
        ebok.stop().await;
        backend.cleanup().await;
    }
}

/// A Stop that reached the live map, but whose answer was lost (Redis died as it replied),
/// is journaled and replayed: the store finds the session closed already, and history
/// still gets the closed session and its traffic, exactly once (a NAS retransmitting the
/// Stop later changes nothing either).
#[tokio::test]
async fn replaying_an_applied_stop_writes_its_history_once() {
    for backend in Backend::all("replaying_an_applied_stop_writes_its_history_once").await {
        let dir = tempfile::tempdir().unwrap();
        let ebok = Ebok::start(config(dir.path(), &backend, None)).await;
        let stop_attrs = "Acct-Input-Octets = 7000\nAcct-Output-Octets = 9000\n\
                          Acct-Session-Time = 600\nAcct-Terminate-Cause = User-Request\n";
        acct(
            &ebok,
            &attrs("Start", "s1", "jan", Some("10.7.0.1"), T0, ""),
        )
        .await;
        acct(
            &ebok,
            &attrs(
                "Interim-Update",
                "s1",
                "jan",
                Some("10.7.0.1"),
                T0 + 300,
                "Acct-Input-Octets = 1000\nAcct-Output-Octets = 2000\nAcct-Session-Time = 300\n",
            ),
        )
        .await;
        let ingest = &ebok.running.ingest;
        let day = ebok::tz::warsaw_date(at(T0));
        assert_eq!(
            history::traffic_on(&ebok.running.db, "jan", day)
                .await
                .unwrap(),
            Some((1000, 2000))
        );

        // The Stop as decoded from the NAS; the live map takes it, its history is lost.
        let mut stop = AccountingEvent::new(StatusType::Stop, "192.0.2.1", "s1", at(T0 + 600));
        stop.nas_ip_address = Some("192.0.2.1".parse().unwrap());
        stop.user_name = Some("jan".into());
        stop.framed_ip = Some("10.7.0.1".parse().unwrap());
        stop.input_octets = 7000;
        stop.output_octets = 9000;
        stop.session_time = Some(600);
        stop.terminate_cause = Some(1);
        let expires = at(T0 + 600) + time::Duration::hours(1);
        let applied = ingest.live.apply(&stop, expires).await.unwrap();
        assert!(!applied.stale && applied.closed.len() == 1);
        assert!(ebok.lookup("10.7.0.1").await.is_none());
        // ... and the event is journaled and replayed.
        ingest.spool.append_event(&stop, expires).await.unwrap();
        assert!(ingest.settled(Duration::from_secs(20)).await);

        let rows = || async {
            attribution::held_at(&ebok.running.db, "10.7.0.1".parse().unwrap(), at(T0 + 100))
                .await
                .unwrap()
        };
        let got = rows().await;
        assert_eq!(got.len(), 1, "{backend:?}: {got:?}");
        assert_eq!(got[0].stopped_at, Some(at(T0 + 600)));
        assert_eq!((got[0].input_octets, got[0].output_octets), (7000, 9000));
        assert_eq!(got[0].terminate_cause, Some(1));
        assert_eq!(
            history::traffic_on(&ebok.running.db, "jan", day)
                .await
                .unwrap(),
            Some((7000, 9000))
        );

        // The NAS retransmits the Stop (past the duplicate window): nothing changes.
        acct(
            &ebok,
            &attrs("Stop", "s1", "jan", Some("10.7.0.1"), T0 + 600, stop_attrs),
        )
        .await;
        assert_eq!(rows().await.len(), 1);
        assert_eq!(
            history::traffic_on(&ebok.running.db, "jan", day)
                .await
                .unwrap(),
            Some((7000, 9000))
        );
        ebok.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn addresses_that_cannot_identify_a_line_are_refused() {
    for backend in Backend::all("addresses_that_cannot_identify_a_line_are_refused").await {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), &backend, None);
        c.sessions.loopback_lines = false;
        let ebok = Ebok::start(c).await;
        let refused = |reason: &'static str| {
            let ebok = &ebok;
            async move {
                ebok.metric(&format!(
                    "ebok_radius_addresses_refused_total{{reason=\"{reason}\"}}"
                ))
                .await
            }
        };
        let before = (
            refused("short_prefix").await,
            refused("multicast").await,
            refused("loopback").await,
        );
        acct(
            &ebok,
            &start(
                "wide",
                "224.0.0.1",
                "Framed-IPv6-Prefix = ::/0\nDelegated-IPv6-Prefix = 2000::/3\n\
                 Delegated-IPv6-Prefix = 2001:db8:77::/56\n",
            ),
        )
        .await;
        acct(&ebok, &start("local", "127.0.0.1", "")).await;
        // The sessions are recorded, without the addresses that cannot be a line.
        let live = ebok
            .running
            .ingest
            .live
            .get("192.0.2.1", "wide")
            .await
            .unwrap();
        let live = live.expect("the session itself is recorded");
        assert_eq!(live.framed_ip, None);
        assert_eq!(live.ipv6_prefixes, ["2001:db8:77::/56".parse().unwrap()]);
        assert!(ebok.lookup("2001:db8:77::1").await.is_some());
        for visitor in ["2a00:1450::1", "2001:db9::1", "224.0.0.1", "127.0.0.1"] {
            assert!(
                ebok.lookup(visitor).await.is_none(),
                "{visitor} is nobody's line"
            );
        }
        assert!(refused("short_prefix").await - before.0 >= 2.0);
        assert!(refused("multicast").await - before.1 >= 1.0);
        assert!(refused("loopback").await - before.2 >= 1.0);
        ebok.stop().await;
        backend.cleanup().await;
    }
}
