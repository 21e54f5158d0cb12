//! Attribution against a generated history on SQLite and PostgreSQL: one IPv4 address held by
//! three logins back to back, IPv6 /64, /56 and /128 prefixes, nested prefixes, boundary
//! instants, a live session, the subscriber join and the period export.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::StreamExt;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::testkit::{stored_closed_session as closed_session, subscriber_with_login};
use ebok_live::sessions::embedded::EmbeddedSessions;
use ebok_radius::event::{AccountingEvent, StatusType};

/// Logins (newest first, or in the given order) of what a lookup answered.
fn logins(rows: &[HeldBy]) -> Vec<&str> {
    rows.iter()
        .map(|r| r.user_name.as_deref().unwrap_or("-"))
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A whole second some days ago: live sessions must not look expired to the live map.
fn base() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - Duration::days(10);
    OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap()
}

async fn scenario(db: &Db, live: &dyn LiveSessions) {
    let t0 = base();
    let t = |s: i64| t0 + Duration::seconds(s);
    subscriber_with_login(db, 1, "Alański", "ala").await;
    subscriber_with_login(db, 2, "Bartecki", "bartek").await;
    // celina's login is not in the subscriber data.
    let v4 = Some("10.9.0.1");
    closed_session(
        db,
        "s-ala",
        "ala",
        v4,
        &["2001:db8:1:1::/64", "2001:db8:2:100::/56"],
        (t(0), t(100)),
    )
    .await;
    closed_session(
        db,
        "s-bartek",
        "bartek",
        v4,
        &["2001:db8:3::5/128"],
        (t(100), t(200)),
    )
    .await;
    closed_session(db, "s-celina", "celina", v4, &[], (t(200), t(300))).await;
    // Nested prefixes held at the same time: the /64 is the better answer.
    closed_session(
        db,
        "s-wide",
        "ala",
        None,
        &["2001:db8:5::/56"],
        (t(0), t(50)),
    )
    .await;
    closed_session(
        db,
        "s-narrow",
        "bartek",
        None,
        &["2001:db8:5:7::/64"],
        (t(0), t(50)),
    )
    .await;

    // IPv4 reuse, boundaries inclusive at both ends.
    let at = |ip_text: &str, s: i64| held_at(db, ip(ip_text), t(s));
    assert!(at("10.9.0.1", -1).await.unwrap().is_empty());
    assert_eq!(logins(&at("10.9.0.1", 0).await.unwrap()), ["ala"]);
    assert_eq!(logins(&at("10.9.0.1", 50).await.unwrap()), ["ala"]);
    assert_eq!(
        logins(&at("10.9.0.1", 100).await.unwrap()),
        ["bartek", "ala"],
        "at a handover both held it; newest first"
    );
    assert_eq!(
        logins(&at("10.9.0.1", 200).await.unwrap()),
        ["celina", "bartek"]
    );
    assert_eq!(logins(&at("10.9.0.1", 300).await.unwrap()), ["celina"]);
    assert!(at("10.9.0.1", 301).await.unwrap().is_empty());
    assert!(at("10.9.0.2", 50).await.unwrap().is_empty());
    assert_eq!(
        logins(&at("::ffff:10.9.0.1", 150).await.unwrap()),
        ["bartek"],
        "an IPv4-mapped address is the IPv4 address"
    );

    // The answer row: session, MAC, addresses, times, cause, subscriber and contract.
    let rows = at("10.9.0.1", 30).await.unwrap();
    let r = &rows[0];
    assert_eq!(r.source, Source::History);
    assert_eq!(
        (r.nas.as_str(), r.nas_client.as_str()),
        ("192.0.2.1", "bras-1")
    );
    assert_eq!(r.session_id, "s-ala");
    assert_eq!(r.calling_station_id.as_deref(), Some("02:00:00:00:00:05"));
    assert_eq!(r.framed_ip, Some(Ipv4Addr::new(10, 9, 0, 1)));
    assert_eq!(r.ipv6_prefixes.len(), 2);
    assert_eq!((r.started_at, r.stopped_at), (t(0), Some(t(100))));
    assert_eq!(r.terminate_cause, Some(1));
    assert_eq!(r.close_reason.as_deref(), Some("stop"));
    let (s, c) = r.holder.as_ref().expect("ala is a subscriber");
    assert_eq!((s.ext_id.as_str(), c.number.as_str()), ("S1", "UM/1"));
    assert_eq!(s.display_name(), "Jan Alański");
    let celina = at("10.9.0.1", 250).await.unwrap();
    assert!(celina[0].holder.is_none(), "unknown login: no subscriber");

    // IPv6: in the /64; in the /56 but not the /64; in neither; the /128 exactly.
    assert_eq!(
        logins(&at("2001:db8:1:1::abcd", 100).await.unwrap()),
        ["ala"]
    );
    assert_eq!(logins(&at("2001:db8:2:1ff::1", 0).await.unwrap()), ["ala"]);
    assert!(at("2001:db8:1:2::1", 50).await.unwrap().is_empty());
    assert!(at("2001:db8:2:1ff::1", 101).await.unwrap().is_empty());
    assert_eq!(logins(&at("2001:db8:3::5", 200).await.unwrap()), ["bartek"]);
    assert!(at("2001:db8:3::6", 150).await.unwrap().is_empty());
    assert_eq!(
        logins(&at("2001:db8:5:7::1", 25).await.unwrap()),
        ["bartek", "ala"],
        "longest prefix first"
    );
    assert_eq!(logins(&at("2001:db8:5:8::1", 25).await.unwrap()), ["ala"]);

    // Live: the holder now, answered for any instant since its start.
    let mut start = AccountingEvent::new(StatusType::Start, "192.0.2.9", "s-dawid", t(400));
    start.user_name = Some("bartek".into());
    start.framed_ip = Some(Ipv4Addr::new(10, 9, 0, 1));
    live.apply(&start, OffsetDateTime::now_utc() + Duration::hours(1))
        .await
        .unwrap();
    let now = attribute(live, db, ip("10.9.0.1"), t(400)).await.unwrap();
    assert_eq!(logins(&now), ["bartek"]);
    assert_eq!(now[0].source, Source::Live);
    assert_eq!(
        (now[0].session_id.as_str(), now[0].stopped_at),
        ("s-dawid", None)
    );
    assert_eq!(now[0].holder.as_ref().unwrap().1.number, "UM/2");
    assert!(attribute(live, db, ip("10.9.0.1"), t(399))
        .await
        .unwrap()
        .is_empty());
    let both = attribute(live, db, ip("10.9.0.1"), t(300)).await.unwrap();
    assert_eq!(logins(&both), ["celina"], "the live session started later");

    // The period: overlapping sessions in start order, counted alike, merged with live.
    let between = |ip: Option<&str>, from: i64, to: i64| {
        closed_between(db, ip.map(|i| i.parse().unwrap()), t(from), t(to))
    };
    let period: Vec<HeldBy> = between(Some("10.9.0.1"), 100, 250)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(logins(&period), ["ala", "bartek", "celina"]);
    let count = |ip: Option<&str>, from: i64, to: i64| {
        count_closed_between(db, ip.map(|i| i.parse().unwrap()), t(from), t(to))
    };
    assert_eq!(count(Some("10.9.0.1"), 100, 250).await.unwrap(), 3);
    assert_eq!(count(Some("10.9.0.1"), 301, 399).await.unwrap(), 0);
    assert_eq!(count(None, 0, 300).await.unwrap(), 5);
    assert_eq!(count(None, 51, 100).await.unwrap(), 2);
    assert_eq!(count(Some("2001:db8:5:7::1"), 0, 0).await.unwrap(), 2);
    let v6: Vec<HeldBy> = between(Some("2001:db8:5:7::1"), 0, 1000)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(v6.len(), 2);

    let live_rows = live_between(live, db, None, t(1000)).await.unwrap();
    assert_eq!(logins(&live_rows), ["bartek"]);
    assert!(live_between(live, db, Some(ip("10.9.0.1")), t(399))
        .await
        .unwrap()
        .is_empty());
    let merged: Vec<HeldBy> = merge_by_start(between(None, 0, 1000), live_rows)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let order: Vec<&str> = merged.iter().map(|r| r.session_id.as_str()).collect();
    assert_eq!(
        order,
        ["s-ala", "s-wide", "s-narrow", "s-bartek", "s-celina", "s-dawid"]
    );
}

async fn embedded_live(dir: &tempfile::TempDir) -> EmbeddedSessions {
    EmbeddedSessions::open(&dir.path().join("live.sqlite"))
        .await
        .unwrap()
}

async fn sqlite_db(dir: &tempfile::TempDir) -> Db {
    let path = dir.path().join("history.sqlite");
    Db::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn attribution_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(&sqlite_db(&dir).await, &embedded_live(&dir).await).await;
}

#[tokio::test]
async fn attribution_on_postgres() {
    let Some(pg) =
        crate::testkit::FreshPg::create("store::attribution::tests::attribution_on_postgres").await
    else {
        return;
    };
    let db = Db::connect(&pg.url).await.expect("connect and migrate");
    let dir = tempfile::tempdir().unwrap();
    scenario(&db, &embedded_live(&dir).await).await;
    if let Db::Postgres(p) = &db {
        p.close().await;
    }
    pg.drop_db().await;
}

/// The lookups are served by the attribution indexes (no scan of the history tables).
#[tokio::test]
async fn sqlite_plans_use_the_attribution_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    for (target, index) in [
        (Target::V4, "session_history_ipv4_span"),
        // The IPv6 rows are a WITHOUT ROWID table ordered like the index was (0007).
        (
            Target::V6,
            "USING PRIMARY KEY (net_hi=? AND prefix_len=? AND net_lo",
        ),
        (Target::All, "session_history_span"),
    ] {
        let (_, params) = parameters(
            match target {
                Target::V4 => Some(ip("10.0.0.1")),
                Target::V6 => Some(ip("2001:db8::1")),
                Target::All => None,
            },
            base(),
            base(),
        );
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            statement(target, Some(Order::Start))
        );
        let mut q = sqlx::query(&sql);
        for p in params {
            q = q.bind(p);
        }
        let plan: Vec<String> = q
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
            .collect();
        assert!(
            plan.iter().any(|d| d.contains(index)),
            "{index} not used: {plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.starts_with("SCAN h") || d.starts_with("SCAN x")),
            "a history table is scanned: {plan:#?}"
        );
    }
}
