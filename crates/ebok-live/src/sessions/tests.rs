//! One test suite for both live-session stores: every scenario is written once against
//! [`LiveSessions`] and run for the embedded store (temp SQLite file) and for the map shared
//! through a log in real Redis (`EBOK_TEST_REDIS`, default `redis://127.0.0.1:6379/`, a
//! random key prefix per test, its keys deleted afterwards; a peer is a second instance with
//! its own snapshot). Redis unreachable skips the Redis half (recorded by
//! [`ebok_testkit::skip`]), or fails it under `EBOK_REQUIRE_SERVICES=1` (CI).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::Ipv6Net;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::embedded::EmbeddedSessions;
use super::stream::{StreamOptions, StreamSessions};
use super::{Applied, CloseReason, ClosedSession, LiveSession, LiveSessions};
use crate::redis_link::RedisTarget;
use ebok_radius::event::{AccountingEvent, StatusType};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

enum Handle {
    Embedded(Arc<EmbeddedSessions>),
    Redis(Arc<StreamSessions>),
}

enum Backend {
    Embedded {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Redis {
        url: String,
        prefix: String,
        dir: tempfile::TempDir,
    },
}

struct Env {
    backend: Backend,
    handle: Handle,
}

fn redis_url() -> String {
    ebok_testkit::redis_url()
}

impl Env {
    async fn embedded() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("live.sqlite");
        let store = EmbeddedSessions::open(&path)
            .await
            .expect("open embedded store");
        Env {
            backend: Backend::Embedded { _dir: dir, path },
            handle: Handle::Embedded(Arc::new(store)),
        }
    }

    /// `None` when Redis is unreachable and services are not required.
    async fn redis() -> Option<Env> {
        let url = redis_url();
        let prefix = format!("ebok-test:{:016x}:", rand::random::<u64>());
        let dir = tempfile::tempdir().expect("temp dir");
        match stream_instance(&url, &prefix, &dir.path().join("a.sqlite")).await {
            Ok(store) => Some(Env {
                backend: Backend::Redis { url, prefix, dir },
                handle: Handle::Redis(Arc::new(store)),
            }),
            Err(e) => {
                ebok_testkit::skip("sessions store suite", "redis", &format!("{url}: {e}"));
                None
            }
        }
    }

    fn store(&self) -> &dyn LiveSessions {
        match &self.handle {
            Handle::Embedded(s) => s.as_ref(),
            Handle::Redis(s) => s.as_ref(),
        }
    }

    /// Another handle on the same map: the same embedded store (one per file), or a second
    /// instance on the same log with its own snapshot.
    async fn peer(&self) -> Arc<dyn LiveSessions> {
        match (&self.handle, &self.backend) {
            (Handle::Embedded(s), _) => s.clone(),
            (_, Backend::Redis { url, prefix, dir }) => Arc::new(
                stream_instance(url, prefix, &dir.path().join("b.sqlite"))
                    .await
                    .expect("second instance"),
            ),
            _ => unreachable!(),
        }
    }

    fn shared(&self) -> Arc<dyn LiveSessions> {
        match &self.handle {
            Handle::Embedded(s) => s.clone(),
            Handle::Redis(s) => s.clone(),
        }
    }

    /// Close the store and open it again from what it persisted.
    async fn reopen(&mut self) {
        match &self.backend {
            Backend::Embedded { path, .. } => {
                let fresh = EmbeddedSessions::open(path).await.expect("reopen");
                let old = std::mem::replace(&mut self.handle, Handle::Embedded(Arc::new(fresh)));
                if let Handle::Embedded(old) = old {
                    let old = Arc::try_unwrap(old).expect("no other handle on the old store");
                    old.close().await;
                }
            }
            Backend::Redis { url, prefix, dir } => {
                if let Handle::Redis(old) = &self.handle {
                    old.settle().await.expect("settle before closing");
                }
                let placeholder = Handle::Embedded(Arc::new(
                    EmbeddedSessions::open(&dir.path().join("placeholder.sqlite"))
                        .await
                        .expect("placeholder"),
                ));
                if let Handle::Redis(old) = std::mem::replace(&mut self.handle, placeholder) {
                    let old = Arc::try_unwrap(old).expect("no other handle on the old instance");
                    old.close().await;
                }
                let fresh = stream_instance(url, prefix, &dir.path().join("a.sqlite"))
                    .await
                    .expect("reopen");
                self.handle = Handle::Redis(Arc::new(fresh));
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Backend::Redis { url, prefix, .. } = &self.backend {
            let (url, pattern) = (url.clone(), format!("{prefix}*"));
            // Blocking client on its own thread: Drop cannot await.
            let done = std::thread::spawn(move || -> redis::RedisResult<()> {
                let mut conn = redis::Client::open(url)?.get_connection()?;
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(&mut conn)?;
                    if !keys.is_empty() {
                        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut conn)?;
                    }
                    if next == 0 {
                        return Ok(());
                    }
                    cursor = next;
                }
            })
            .join();
            if !matches!(done, Ok(Ok(()))) {
                eprintln!("could not delete test keys {prefix}*");
            }
        }
    }
}

/// An instance of the shared map on the log under `prefix`, its snapshot at `snapshot`.
async fn stream_instance(
    url: &str,
    prefix: &str,
    snapshot: &std::path::Path,
) -> Result<StreamSessions, super::StoreError> {
    let target = RedisTarget::Single {
        url: url.to_owned(),
    };
    let options = StreamOptions {
        prefix: prefix.to_owned(),
        streams: 4,
        retention: std::time::Duration::from_secs(3600),
    };
    StreamSessions::open(&target, snapshot, options).await
}

/// Generate one `#[tokio::test]` per backend for each scenario.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let mut env = super::Env::embedded().await;
                    super::$name(&mut env).await;
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(mut env) = super::Env::redis().await else { return };
                    super::$name(&mut env).await;
                }
            )*
        }
    };
}

both_stores!(
    sessions_of_users_finds_only_those_logins,
    start_then_lookup_v4_and_v6,
    longest_prefix_wins,
    interim_updates_counters_and_traffic,
    stop_removes_and_reports,
    stale_events_are_ignored,
    interim_without_start,
    stop_without_start,
    late_stop_after_ip_reuse_keeps_new_holder,
    late_interim_does_not_retake_ip,
    accounting_on_closes_only_its_nas,
    expiry_closes_due_sessions,
    restart_keeps_everything,
    concurrent_applies_end_consistent,
    batches_see_what_a_peer_changed,
    randomized_streams_match_model,
    randomized_streams_in_batches_match_model,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const T0: OffsetDateTime = datetime!(2024-05-01 10:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

/// A deadline well after any event time used here.
fn later() -> OffsetDateTime {
    at(100_000)
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn event(status: StatusType, nas: &str, sid: &str, t: OffsetDateTime) -> AccountingEvent {
    let mut e = AccountingEvent::new(status, nas, sid, t);
    e.user_name = Some(format!("user-{sid}"));
    e
}

fn start(nas: &str, sid: &str, t: OffsetDateTime) -> AccountingEvent {
    event(StatusType::Start, nas, sid, t)
}

fn interim(nas: &str, sid: &str, t: OffsetDateTime, input: u64, output: u64) -> AccountingEvent {
    let mut e = event(StatusType::InterimUpdate, nas, sid, t);
    e.input_octets = input;
    e.output_octets = output;
    e
}

fn stop(nas: &str, sid: &str, t: OffsetDateTime, input: u64, output: u64) -> AccountingEvent {
    let mut e = event(StatusType::Stop, nas, sid, t);
    e.input_octets = input;
    e.output_octets = output;
    e
}

fn nas_event(status: StatusType, nas: &str, t: OffsetDateTime) -> AccountingEvent {
    AccountingEvent::new(status, nas, "", t)
}

/// Framed-IP-Address plus IPv6 attributes: /128 → Framed-IPv6-Address, /64 →
/// Framed-IPv6-Prefix, anything else → Delegated-IPv6-Prefix.
fn with_ips(mut e: AccountingEvent, addr: Option<&str>, v6: &[&str]) -> AccountingEvent {
    e.framed_ip = addr.map(v4);
    for p in v6 {
        let n = net(p);
        match n.prefix_len() {
            128 => e.framed_ipv6_addresses.push(n.addr()),
            64 => e.framed_ipv6_prefixes.push(n),
            _ => e.delegated_ipv6_prefixes.push(n),
        }
    }
    e
}

async fn apply(s: &dyn LiveSessions, e: &AccountingEvent) -> Applied {
    s.apply(e, later()).await.expect("apply")
}

async fn holder(s: &dyn LiveSessions, addr: &str) -> Option<String> {
    s.lookup(ip(addr))
        .await
        .expect("lookup")
        .map(|x| x.session_id)
}

/// The counters each reading of `a` reports.
fn traffic(a: &Applied) -> Vec<(u64, u64)> {
    a.traffic
        .iter()
        .map(|d| (d.input_octets, d.output_octets))
        .collect()
}

type SessionKey = (String, String, OffsetDateTime);
/// Login, newest reading's time, its counters, and what was counted before a reset.
type Newest = (String, OffsetDateTime, (u64, u64), (u64, u64));

/// What history makes of the outcomes it is given, the way `store::history` counts them
/// (here for events within one day): per session the newest reading, plus what was
/// counted before its counters went backwards; each closed session once, however often it
/// is reported (a repeated Stop reports it again, identical).
#[derive(Default)]
struct Counted {
    readings: HashMap<SessionKey, Newest>,
    closed: HashMap<SessionKey, ClosedSession>,
}

impl Counted {
    fn add(&mut self, a: &Applied) {
        for r in &a.traffic {
            let key = (r.nas.clone(), r.session_id.clone(), r.started_at);
            let now = (r.input_octets, r.output_octets);
            match self.readings.get_mut(&key) {
                None => {
                    self.readings
                        .insert(key, (r.user_name.clone(), r.at, now, (0, 0)));
                }
                Some((_, at, last, carry)) => {
                    if r.at > *at || (r.at == *at && now != *last) {
                        if now.0 < last.0 || now.1 < last.1 {
                            carry.0 += last.0;
                            carry.1 += last.1;
                        }
                        *at = r.at;
                        *last = now;
                    }
                }
            }
        }
        for c in &a.closed {
            let key = (
                c.session.nas.clone(),
                c.session.session_id.clone(),
                c.session.started_at,
            );
            match self.closed.get(&key) {
                Some(first) => assert_eq!(first, c, "a closed session reported again differs"),
                None => {
                    self.closed.insert(key, c.clone());
                }
            }
        }
    }

    /// Octets counted for a login.
    fn of_user(&self, user: &str) -> (u64, u64) {
        self.readings
            .values()
            .filter(|(u, ..)| u == user)
            .fold((0, 0), |acc, (_, _, last, carry)| {
                (acc.0 + last.0 + carry.0, acc.1 + last.1 + carry.1)
            })
    }

    /// Closed sessions counted with this session id, by reason.
    fn stops(&self, sid: &str) -> usize {
        self.closed
            .values()
            .filter(|c| c.session.session_id == sid)
            .inspect(|c| assert_eq!(c.reason, CloseReason::Stop))
            .count()
    }
}

fn sorted(mut v: Vec<LiveSession>) -> Vec<LiveSession> {
    v.sort_by(|a, b| (&a.nas, &a.session_id).cmp(&(&b.nas, &b.session_id)));
    v
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn sessions_of_users_finds_only_those_logins(env: &mut Env) {
    let s = env.store();
    // `start` names the user `user-<sid>`.
    for (nas, sid) in [("nas1", "a"), ("nas2", "b"), ("nas1", "c")] {
        apply(s, &start(nas, sid, at(0))).await;
    }
    let mut found: Vec<String> = s
        .sessions_of_users(&["user-a", "user-b", "nobody"])
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.session_id)
        .collect();
    found.sort();
    assert_eq!(found, ["a", "b"]);
    assert!(s.sessions_of_users(&[]).await.unwrap().is_empty());
}

async fn start_then_lookup_v4_and_v6(env: &mut Env) {
    let s = env.store();
    let mut e = with_ips(
        start("nas1", "a", at(0)),
        Some("100.64.0.10"),
        &["2001:db8:1:1::/64", "2001:db8:100:ab00::/56"],
    );
    e.nas_client = "bras-1".into();
    e.calling_station_id = Some("AA:BB:CC:DD:EE:FF".into());
    e.nas_port = Some(15);
    e.nas_port_id = Some("ether1-vlan100".into());
    let applied = s.apply(&e, at(660)).await.unwrap();
    assert!(!applied.stale);
    assert!(applied.closed.is_empty());
    assert!(
        applied.traffic.is_empty(),
        "a Start with zero counters moves no traffic"
    );

    let got = s
        .lookup(ip("100.64.0.10"))
        .await
        .unwrap()
        .expect("v4 lookup");
    let expected = LiveSession {
        nas: "nas1".into(),
        nas_client: "bras-1".into(),
        session_id: "a".into(),
        user_name: Some("user-a".into()),
        framed_ip: Some(v4("100.64.0.10")),
        ipv6_prefixes: vec![net("2001:db8:1:1::/64"), net("2001:db8:100:ab00::/56")],
        calling_station_id: Some("AA:BB:CC:DD:EE:FF".into()),
        nas_port: Some(15),
        nas_port_id: Some("ether1-vlan100".into()),
        started_at: at(0),
        updated_at: at(0),
        expires_at: at(660),
        input_octets: 0,
        output_octets: 0,
        input_packets: 0,
        output_packets: 0,
        session_time: None,
    };
    assert_eq!(got, expected);
    // An address inside the delegated /56, and inside the framed /64.
    assert_eq!(
        holder(s, "2001:db8:100:ab42::1").await.as_deref(),
        Some("a")
    );
    assert_eq!(
        holder(s, "2001:db8:100:abff:1:2:3:4").await.as_deref(),
        Some("a")
    );
    assert_eq!(holder(s, "2001:db8:1:1::77").await.as_deref(), Some("a"));
    assert_eq!(holder(s, "100.64.0.11").await, None);
    assert_eq!(holder(s, "2001:db8:100:ac00::1").await, None);
    assert_eq!(holder(s, "2001:db8:1:2::1").await, None);

    assert_eq!(s.get("nas1", "a").await.unwrap(), Some(expected.clone()));
    assert_eq!(s.get("nas2", "a").await.unwrap(), None);
    assert_eq!(s.count().await.unwrap(), 1);
    assert_eq!(s.list(None).await.unwrap(), vec![expected.clone()]);
    assert_eq!(s.list(Some("nas1")).await.unwrap(), vec![expected]);
    assert!(s.list(Some("nas2")).await.unwrap().is_empty());
    s.ping().await.unwrap();
}

async fn longest_prefix_wins(env: &mut Env) {
    let s = env.store();
    apply(
        s,
        &with_ips(start("nas1", "wide", at(0)), None, &["2001:db8:aa::/48"]),
    )
    .await;
    apply(
        s,
        &with_ips(
            start("nas1", "narrow", at(10)),
            None,
            &["2001:db8:aa:5::/64"],
        ),
    )
    .await;
    apply(
        s,
        &with_ips(
            start("nas2", "host", at(20)),
            None,
            &["2001:db8:aa:5::100/128"],
        ),
    )
    .await;

    assert_eq!(
        holder(s, "2001:db8:aa:5::9").await.as_deref(),
        Some("narrow")
    );
    assert_eq!(
        holder(s, "2001:db8:aa:5::100").await.as_deref(),
        Some("host")
    );
    assert_eq!(holder(s, "2001:db8:aa:6::1").await.as_deref(), Some("wide"));
    assert_eq!(holder(s, "2001:db8:ab::1").await, None);

    // The narrower session leaves: its addresses fall back to the wider prefix.
    let a = apply(s, &stop("nas1", "narrow", at(30), 0, 0)).await;
    assert_eq!(a.closed.len(), 1);
    assert_eq!(holder(s, "2001:db8:aa:5::9").await.as_deref(), Some("wide"));
    assert_eq!(
        holder(s, "2001:db8:aa:5::100").await.as_deref(),
        Some("host")
    );
}

async fn interim_updates_counters_and_traffic(env: &mut Env) {
    let s = env.store();
    apply(
        s,
        &with_ips(
            start("nas1", "a", at(0)),
            Some("100.64.0.1"),
            &["2001:db8:5::/56"],
        ),
    )
    .await;

    // An Interim without IP attributes nor User-Name keeps the stored ones.
    let mut e = interim("nas1", "a", at(300), 1000, 2000);
    e.user_name = None;
    e.input_packets = 10;
    e.output_packets = 20;
    e.session_time = Some(300);
    let a = s.apply(&e, at(960)).await.unwrap();
    assert!(!a.stale);
    assert_eq!(traffic(&a), vec![(1000, 2000)]);
    assert_eq!(a.traffic[0].user_name, "user-a");
    assert_eq!(a.traffic[0].at, at(300));
    let got = s.get("nas1", "a").await.unwrap().unwrap();
    assert_eq!(
        (
            got.input_octets,
            got.output_octets,
            got.input_packets,
            got.output_packets
        ),
        (1000, 2000, 10, 20)
    );
    assert_eq!(
        (got.updated_at, got.expires_at, got.started_at),
        (at(300), at(960), at(0))
    );
    assert_eq!(got.session_time, Some(300));
    assert_eq!(got.user_name.as_deref(), Some("user-a"));
    assert_eq!(holder(s, "100.64.0.1").await.as_deref(), Some("a"));
    assert_eq!(holder(s, "2001:db8:5:7::1").await.as_deref(), Some("a"));

    let a = apply(s, &interim("nas1", "a", at(600), 1500, 2600)).await;
    assert_eq!(traffic(&a), vec![(1500, 2600)]);

    // Counters went backwards (NAS counter reset): reported as sent (history keeps what
    // was counted before).
    let a = apply(s, &interim("nas1", "a", at(900), 100, 50)).await;
    assert_eq!(traffic(&a), vec![(100, 50)]);
    // Unchanged counters: nothing new for history.
    let a = apply(s, &interim("nas1", "a", at(950), 100, 50)).await;
    assert!(!a.stale && a.traffic.is_empty());

    // An Interim that moves the IPv4 address moves the index entry; IPv6 stays.
    apply(
        s,
        &with_ips(
            interim("nas1", "a", at(1200), 200, 60),
            Some("100.64.0.2"),
            &[],
        ),
    )
    .await;
    assert_eq!(holder(s, "100.64.0.1").await, None);
    assert_eq!(holder(s, "100.64.0.2").await.as_deref(), Some("a"));
    assert_eq!(holder(s, "2001:db8:5:7::1").await.as_deref(), Some("a"));

    // No User-Name anywhere: no traffic record.
    let mut anon = start("nas1", "anon", at(0));
    anon.user_name = None;
    apply(s, &anon).await;
    let mut e = interim("nas1", "anon", at(300), 10, 10);
    e.user_name = None;
    assert!(apply(s, &e).await.traffic.is_empty());
}

async fn stop_removes_and_reports(env: &mut Env) {
    let s = env.store();
    apply(
        s,
        &with_ips(
            start("nas1", "a", at(0)),
            Some("100.64.0.1"),
            &["2001:db8:5::/56"],
        ),
    )
    .await;
    apply(s, &interim("nas1", "a", at(300), 1000, 2000)).await;
    let mut e = stop("nas1", "a", at(600), 1200, 2500);
    e.terminate_cause = Some(1);
    e.session_time = Some(600);
    let a = apply(s, &e).await;
    assert!(!a.stale);
    assert_eq!(a.closed.len(), 1);
    let c = &a.closed[0];
    assert_eq!(c.reason, CloseReason::Stop);
    assert_eq!(c.stopped_at, at(600));
    assert_eq!(c.terminate_cause, Some(1));
    assert_eq!(
        (c.session.input_octets, c.session.output_octets),
        (1200, 2500)
    );
    assert_eq!(c.session.started_at, at(0));
    assert_eq!(c.session.framed_ip, Some(v4("100.64.0.1")));
    assert_eq!(traffic(&a), vec![(1200, 2500)]);

    assert_eq!(s.get("nas1", "a").await.unwrap(), None);
    assert_eq!(holder(s, "100.64.0.1").await, None);
    assert_eq!(holder(s, "2001:db8:5::1").await, None);
    assert_eq!(s.count().await.unwrap(), 0);
    assert!(s.list(None).await.unwrap().is_empty());

    // A retransmitted Stop (e.g. to a second instance, or the same Stop replayed after its
    // answer was lost) changes nothing, and reports the same closed session and reading
    // again: history, which writes each once, gets them even if the first report was lost.
    let again = apply(s, &e).await;
    assert!(again.stale);
    assert_eq!(again.closed, a.closed);
    assert_eq!(again.traffic, a.traffic);
    // A Stop of the same session at another time is no repeat: nothing.
    let mut other = e.clone();
    other.event_time = at(590);
    let a = apply(s, &other).await;
    assert!(a.stale && a.closed.is_empty() && a.traffic.is_empty());
    // So is a late Interim of the stopped session.
    assert!(
        apply(s, &interim("nas1", "a", at(450), 1100, 2200))
            .await
            .stale
    );
    assert_eq!(s.count().await.unwrap(), 0);
}

async fn stale_events_are_ignored(env: &mut Env) {
    let s = env.store();
    apply(
        s,
        &with_ips(start("nas1", "a", at(0)), Some("100.64.0.1"), &[]),
    )
    .await;
    apply(s, &interim("nas1", "a", at(20), 500, 600)).await;

    let a = apply(s, &interim("nas1", "a", at(10), 300, 300)).await;
    assert!(a.stale);
    assert!(a.traffic.is_empty() && a.closed.is_empty());
    let got = s.get("nas1", "a").await.unwrap().unwrap();
    assert_eq!(
        (got.input_octets, got.output_octets, got.updated_at),
        (500, 600, at(20))
    );

    // A repeat (same time, same counters) is stale, and reports its reading again; same
    // time with other counters is not stale.
    let a = apply(s, &interim("nas1", "a", at(20), 500, 600)).await;
    assert!(a.stale);
    assert_eq!(traffic(&a), vec![(500, 600)]);
    let a = apply(s, &interim("nas1", "a", at(20), 510, 610)).await;
    assert!(!a.stale);
    assert_eq!(traffic(&a), vec![(510, 610)]);

    // An old Start does not reset the session.
    assert!(apply(s, &start("nas1", "a", at(0))).await.stale);
    let got = s.get("nas1", "a").await.unwrap().unwrap();
    assert_eq!((got.input_octets, got.started_at), (510, at(0)));

    // A newer Start for the same key resets it.
    let a = apply(
        s,
        &with_ips(start("nas1", "a", at(40)), Some("100.64.0.1"), &[]),
    )
    .await;
    assert!(!a.stale);
    let got = s.get("nas1", "a").await.unwrap().unwrap();
    assert_eq!((got.input_octets, got.started_at), (0, at(40)));
    assert_eq!(holder(s, "100.64.0.1").await.as_deref(), Some("a"));
}

async fn interim_without_start(env: &mut Env) {
    let s = env.store();
    let mut e = with_ips(
        interim("nas1", "a", at(1000), 100, 200),
        Some("100.64.0.9"),
        &["2001:db8:9::/56"],
    );
    e.session_time = Some(600);
    let a = apply(s, &e).await;
    assert!(!a.stale);
    assert_eq!(
        traffic(&a),
        vec![(100, 200)],
        "first event of an unknown session: whole counters"
    );
    let got = s.get("nas1", "a").await.unwrap().expect("live");
    assert_eq!(got.started_at, at(400));
    assert_eq!(got.updated_at, at(1000));
    assert_eq!(holder(s, "100.64.0.9").await.as_deref(), Some("a"));
    assert_eq!(holder(s, "2001:db8:9:1::1").await.as_deref(), Some("a"));

    // Without Acct-Session-Time the session starts at the event.
    apply(s, &interim("nas1", "b", at(1000), 1, 1)).await;
    assert_eq!(
        s.get("nas1", "b").await.unwrap().unwrap().started_at,
        at(1000)
    );
    // The late Start of "a" is older than what is stored: ignored.
    assert!(apply(s, &start("nas1", "a", at(400))).await.stale);
    assert_eq!(s.count().await.unwrap(), 2);
}

async fn stop_without_start(env: &mut Env) {
    let s = env.store();
    let mut e = with_ips(stop("nas1", "a", at(1000), 70, 80), Some("100.64.0.9"), &[]);
    e.session_time = Some(60);
    e.terminate_cause = Some(2);
    let a = apply(s, &e).await;
    assert!(!a.stale);
    assert_eq!(a.closed.len(), 1);
    assert_eq!(a.closed[0].reason, CloseReason::Stop);
    assert_eq!(a.closed[0].session.started_at, at(940));
    assert_eq!(a.closed[0].stopped_at, at(1000));
    assert_eq!(traffic(&a), vec![(70, 80)]);
    assert_eq!(s.count().await.unwrap(), 0);
    assert_eq!(s.get("nas1", "a").await.unwrap(), None);
    assert_eq!(holder(s, "100.64.0.9").await, None);
    // Its Start and Interims arriving afterwards do not bring it back.
    assert!(apply(s, &start("nas1", "a", at(940))).await.stale);
    assert!(apply(s, &interim("nas1", "a", at(990), 60, 70)).await.stale);
    assert!(apply(s, &e).await.stale);
    assert_eq!(s.count().await.unwrap(), 0);
}

async fn late_stop_after_ip_reuse_keeps_new_holder(env: &mut Env) {
    let s = env.store();
    let ips = (Some("100.64.1.1"), ["2001:db8:1:100::/56"]);
    apply(s, &with_ips(start("nas1", "old", at(0)), ips.0, &ips.1)).await;
    apply(s, &with_ips(start("nas2", "new", at(100)), ips.0, &ips.1)).await;
    assert_eq!(holder(s, "100.64.1.1").await.as_deref(), Some("new"));
    assert_eq!(holder(s, "2001:db8:1:142::1").await.as_deref(), Some("new"));
    // The old session stays live, without the index entry.
    assert!(s.get("nas1", "old").await.unwrap().is_some());

    // Its Stop arrives late (older than the new Start): the new holder keeps the IP.
    let a = apply(
        s,
        &with_ips(stop("nas1", "old", at(50), 5, 5), ips.0, &ips.1),
    )
    .await;
    assert_eq!(a.closed.len(), 1);
    assert_eq!(holder(s, "100.64.1.1").await.as_deref(), Some("new"));
    assert_eq!(holder(s, "2001:db8:1:142::1").await.as_deref(), Some("new"));

    // Same with a Stop that is newer than the new Start.
    apply(
        s,
        &with_ips(start("nas1", "old2", at(200)), Some("100.64.1.2"), &[]),
    )
    .await;
    apply(
        s,
        &with_ips(start("nas1", "new2", at(300)), Some("100.64.1.2"), &[]),
    )
    .await;
    apply(
        s,
        &with_ips(stop("nas1", "old2", at(400), 1, 1), Some("100.64.1.2"), &[]),
    )
    .await;
    assert_eq!(holder(s, "100.64.1.2").await.as_deref(), Some("new2"));
    assert_eq!(s.count().await.unwrap(), 2);
}

async fn late_interim_does_not_retake_ip(env: &mut Env) {
    let s = env.store();
    let ips = (Some("100.64.2.1"), ["2001:db8:2::/48"]);
    apply(s, &with_ips(start("nas1", "old", at(0)), ips.0, &ips.1)).await;
    apply(s, &with_ips(start("nas1", "new", at(100)), ips.0, &ips.1)).await;
    // The old session keeps sending Interims (its Stop was lost): it must not take the IP back.
    let a = apply(
        s,
        &with_ips(interim("nas1", "old", at(120), 9, 9), ips.0, &ips.1),
    )
    .await;
    assert!(!a.stale);
    assert_eq!(holder(s, "100.64.2.1").await.as_deref(), Some("new"));
    assert_eq!(holder(s, "2001:db8:2:1::1").await.as_deref(), Some("new"));
    let old = s.get("nas1", "old").await.unwrap().unwrap();
    assert_eq!(old.updated_at, at(120));

    // Arrival order reversed: the newer session's Start first, the older one's Start later.
    apply(
        s,
        &with_ips(start("nas2", "c", at(300)), Some("100.64.2.2"), &[]),
    )
    .await;
    apply(
        s,
        &with_ips(start("nas2", "d", at(200)), Some("100.64.2.2"), &[]),
    )
    .await;
    assert_eq!(holder(s, "100.64.2.2").await.as_deref(), Some("c"));
    // An Interim-only session whose start (by Acct-Session-Time) is older does not take it
    // either, one whose start is newer does.
    let mut e = with_ips(interim("nas2", "e", at(500), 1, 1), Some("100.64.2.2"), &[]);
    e.session_time = Some(400);
    apply(s, &e).await;
    assert_eq!(holder(s, "100.64.2.2").await.as_deref(), Some("c"));
    let mut e = with_ips(interim("nas2", "f", at(500), 1, 1), Some("100.64.2.2"), &[]);
    e.session_time = Some(100);
    apply(s, &e).await;
    assert_eq!(holder(s, "100.64.2.2").await.as_deref(), Some("f"));
}

async fn accounting_on_closes_only_its_nas(env: &mut Env) {
    let s = env.store();
    apply(
        s,
        &with_ips(
            start("nas1", "a", at(0)),
            Some("100.64.3.1"),
            &["2001:db8:3::/56"],
        ),
    )
    .await;
    apply(
        s,
        &with_ips(start("nas1", "b", at(10)), Some("100.64.3.2"), &[]),
    )
    .await;
    apply(
        s,
        &with_ips(start("nas2", "c", at(0)), Some("100.64.3.3"), &[]),
    )
    .await;

    let a = apply(s, &nas_event(StatusType::AccountingOn, "nas1", at(5))).await;
    assert!(!a.stale);
    assert_eq!(a.closed.len(), 1);
    let c = &a.closed[0];
    assert_eq!(c.session.session_id, "a");
    assert_eq!((c.reason, c.stopped_at), (CloseReason::NasRestart, at(5)));
    assert_eq!(holder(s, "100.64.3.1").await, None);
    assert_eq!(holder(s, "2001:db8:3::1").await, None);
    assert_eq!(holder(s, "100.64.3.2").await.as_deref(), Some("b"));
    assert_eq!(holder(s, "100.64.3.3").await.as_deref(), Some("c"));
    assert_eq!(s.count().await.unwrap(), 2);

    // Events of that NAS from before its restart are stale, for known and new sessions.
    assert!(apply(s, &interim("nas1", "a", at(3), 1, 1)).await.stale);
    assert!(apply(s, &start("nas1", "d", at(4))).await.stale);
    assert!(apply(s, &start("nas1", "d", at(6))).await.closed.is_empty());
    assert!(s.get("nas1", "d").await.unwrap().is_some());
    // A repeated Accounting-On closes nothing more; an older one is stale.
    assert!(
        apply(s, &nas_event(StatusType::AccountingOn, "nas1", at(5)))
            .await
            .closed
            .is_empty()
    );
    assert!(
        apply(s, &nas_event(StatusType::AccountingOn, "nas1", at(2)))
            .await
            .stale
    );

    let a = apply(s, &nas_event(StatusType::AccountingOff, "nas2", at(20))).await;
    assert_eq!(a.closed.len(), 1);
    assert_eq!(a.closed[0].session.session_id, "c");
    let mut left: Vec<String> = s
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.session_id)
        .collect();
    left.sort();
    assert_eq!(left, vec!["b", "d"]);
}

async fn expiry_closes_due_sessions(env: &mut Env) {
    let s = env.store();
    let a = with_ips(
        start("nas1", "a", at(0)),
        Some("100.64.4.1"),
        &["2001:db8:4::/56"],
    );
    s.apply(&a, at(100)).await.unwrap();
    s.apply(&start("nas1", "b", at(0)), at(200)).await.unwrap();
    s.apply(&start("nas2", "c", at(0)), at(100)).await.unwrap();
    // An Interim pushes c's deadline out.
    s.apply(&interim("nas2", "c", at(50), 1, 1), at(300))
        .await
        .unwrap();

    assert!(s.expire(at(99)).await.unwrap().is_empty());
    let closed = s.expire(at(100)).await.unwrap();
    assert_eq!(closed.len(), 1, "expires_at is inclusive");
    assert_eq!(closed[0].session.session_id, "a");
    assert_eq!(closed[0].reason, CloseReason::Expired);
    assert_eq!(closed[0].stopped_at, at(0));
    assert_eq!(holder(s, "100.64.4.1").await, None);
    assert_eq!(holder(s, "2001:db8:4::1").await, None);
    assert_eq!(s.count().await.unwrap(), 2);
    assert!(s.expire(at(100)).await.unwrap().is_empty());

    let closed = s.expire(at(250)).await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].session.session_id, "b");
    let closed = s.expire(at(10_000)).await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].session.session_id, "c");
    assert_eq!(closed[0].stopped_at, at(50));
    assert_eq!(s.count().await.unwrap(), 0);
    assert!(s.list(None).await.unwrap().is_empty());
    // Tombstones are gone by now too; nothing left to close.
    assert!(s.expire(at(1_000_000)).await.unwrap().is_empty());
}

async fn restart_keeps_everything(env: &mut Env) {
    {
        let s = env.store();
        let shared = (Some("100.64.5.1"), ["2001:db8:5:100::/56"]);
        apply(
            s,
            &with_ips(start("nas1", "old", at(0)), shared.0, &shared.1),
        )
        .await;
        apply(
            s,
            &with_ips(start("nas1", "new", at(10)), shared.0, &shared.1),
        )
        .await;
        apply(
            s,
            &with_ips(
                start("nas2", "c", at(0)),
                Some("100.64.5.3"),
                &["2001:db8:5::/64"],
            ),
        )
        .await;
        apply(s, &interim("nas2", "c", at(30), 1234, 5678)).await;
        apply(
            s,
            &with_ips(start("nas2", "stopped", at(0)), Some("100.64.5.4"), &[]),
        )
        .await;
        apply(s, &stop("nas2", "stopped", at(20), 5, 5)).await;
        apply(s, &nas_event(StatusType::AccountingOn, "nas3", at(40))).await;
    }
    let before = sorted(env.store().list(None).await.unwrap());
    assert_eq!(before.len(), 3);

    env.reopen().await;
    let s = env.store();
    assert_eq!(sorted(s.list(None).await.unwrap()), before);
    assert_eq!(s.count().await.unwrap(), 3);
    assert_eq!(holder(s, "100.64.5.1").await.as_deref(), Some("new"));
    assert_eq!(holder(s, "2001:db8:5:1ff::1").await.as_deref(), Some("new"));
    assert_eq!(holder(s, "100.64.5.3").await.as_deref(), Some("c"));
    assert_eq!(holder(s, "2001:db8:5::abcd").await.as_deref(), Some("c"));
    assert_eq!(holder(s, "100.64.5.4").await, None);
    let c = s.get("nas2", "c").await.unwrap().unwrap();
    assert_eq!((c.input_octets, c.output_octets), (1234, 5678));

    // Tombstones and NAS restart times survived too.
    assert!(apply(s, &stop("nas2", "stopped", at(20), 5, 5)).await.stale);
    assert!(apply(s, &start("nas3", "x", at(39))).await.stale);
    // The old session's late Interim still cannot take the IP back.
    apply(
        s,
        &with_ips(
            interim("nas1", "old", at(50), 1, 1),
            Some("100.64.5.1"),
            &[],
        ),
    )
    .await;
    assert_eq!(holder(s, "100.64.5.1").await.as_deref(), Some("new"));
    // And the store keeps working after the restart.
    let a = apply(s, &interim("nas2", "c", at(60), 2000, 6000)).await;
    assert_eq!(traffic(&a), vec![(2000, 6000)]);
}

/// Sessions sharing IPs, each applied from many tasks at once in random orders (and, for
/// Redis, through two separately connected instances). The result must be exactly what one
/// ordered pass gives, every Stop must be reported once, and the traffic reported over all
/// applies must add up to each session's final counters (no lost or doubled update).
/// Batches of one instance interleaved with changes made through another (on Redis a
/// separate connection, which plans without this one's knowledge): every batch plans on what
/// the map holds, not on what its instance last wrote or read.
async fn batches_see_what_a_peer_changed(env: &mut Env) {
    let peer = env.peer().await;
    let batch = |events: Vec<AccountingEvent>| {
        events
            .into_iter()
            .map(|e| (Arc::new(e), later()))
            .collect::<Vec<_>>()
    };
    let store = env.shared();
    let rs = store
        .apply_batch(&batch(vec![
            with_ips(start("nas1", "p1", at(10)), Some("100.67.0.1"), &[]),
            interim("nas1", "p1", at(20), 100, 10),
        ]))
        .await;
    assert!(rs.iter().all(Result::is_ok), "{rs:?}");

    // The peer moves p1 on and starts p2 (which this instance never saw).
    assert_eq!(
        traffic(&apply(&*peer, &interim("nas1", "p1", at(30), 300, 30)).await),
        [(300, 30)]
    );
    apply(
        &*peer,
        &with_ips(start("nas1", "p2", at(31)), Some("100.67.0.2"), &[]),
    )
    .await;

    // p1's next Interim follows the peer's, not this instance's; a repeated Start of p2 is
    // stale, its Interim is new.
    store.settle().await.expect("settle");
    let rs = store
        .apply_batch(&batch(vec![
            interim("nas1", "p1", at(40), 450, 45),
            start("nas1", "p2", at(31)),
            interim("nas1", "p2", at(41), 5, 1),
        ]))
        .await;
    let rs: Vec<Applied> = rs.into_iter().map(|r| r.expect("apply")).collect();
    assert_eq!(traffic(&rs[0]), [(450, 45)]);
    assert!(!rs[0].stale && rs[1].stale, "{:?}", rs[1]);
    assert_eq!(traffic(&rs[2]), [(5, 1)]);
    let p1 = store.get("nas1", "p1").await.unwrap().expect("p1 live");
    assert_eq!((p1.input_octets, p1.output_octets), (450, 45));

    // The peer restarts the NAS: this instance's next batch for both sessions is stale and
    // brings neither back, nor their IPs.
    let on = apply(&*peer, &nas_event(StatusType::AccountingOn, "nas1", at(50))).await;
    assert_eq!(on.closed.len(), 2);
    store.settle().await.expect("settle");
    let rs = store
        .apply_batch(&batch(vec![
            interim("nas1", "p1", at(45), 500, 50),
            interim("nas1", "p2", at(46), 6, 2),
        ]))
        .await;
    for r in rs {
        assert!(r.expect("apply").stale);
    }
    assert!(store.get("nas1", "p1").await.unwrap().is_none());
    assert!(store.get("nas1", "p2").await.unwrap().is_none());
    assert_eq!(holder(store.as_ref(), "100.67.0.1").await, None);
    assert_eq!(holder(store.as_ref(), "100.67.0.2").await, None);
}

async fn concurrent_applies_end_consistent(env: &mut Env) {
    const GROUPS: usize = 12;
    const TASKS: u64 = 12;
    let mut events = Vec::new();
    // Per session: (nas, sid, final counters, stopped).
    let mut sessions = Vec::new();
    for g in 0..GROUPS {
        let addr = format!("100.66.0.{}", g + 1);
        let pfx = format!("2001:db8:66:{:x}00::/56", g + 1);
        for k in 0..3 {
            let nas = if (g + k) % 2 == 0 { "nas1" } else { "nas2" };
            let sid = format!("g{g}-s{k}");
            let t0 = (g * 1000 + k * 100) as i64;
            events.push(with_ips(start(nas, &sid, at(t0)), Some(&addr), &[&pfx]));
            let mut counters = (0, 0);
            for i in 1..=6i64 {
                counters = (counters.0 + 100 * i as u64, counters.1 + 7 * i as u64);
                let mut e = interim(nas, &sid, at(t0 + i * 10), counters.0, counters.1);
                e.session_time = Some((i * 10) as u32);
                if i % 2 == 0 {
                    e = with_ips(e, Some(&addr), &[&pfx]);
                }
                events.push(e);
            }
            // The last session of a group is the newest on its IP and stays up; the first one
            // stops; the middle one stops in every other group.
            let stopped = k == 0 || (k == 1 && g % 2 == 0);
            if stopped {
                counters = (counters.0 + 1, counters.1 + 1);
                events.push(with_ips(
                    stop(nas, &sid, at(t0 + 90), counters.0, counters.1),
                    Some(&addr),
                    &[],
                ));
            }
            sessions.push((nas, sid, counters, stopped));
        }
    }

    let peer = env.peer().await;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = if t % 2 == 0 {
            env.shared()
        } else {
            peer.clone()
        };
        let mut mine = events.clone();
        mine.shuffle(&mut StdRng::seed_from_u64(t));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for e in &mine {
                out.push(store.apply(e, later()).await.expect("apply"));
            }
            out
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.expect("task"));
    }

    let mut counted = Counted::default();
    for a in &results {
        counted.add(a);
    }
    let s = env.store();
    s.settle().await.expect("settle");
    peer.settle().await.expect("settle");
    let mut live = 0;
    for (nas, sid, counters, stopped) in &sessions {
        assert_eq!(
            counted.of_user(&format!("user-{sid}")),
            *counters,
            "traffic of {sid}"
        );
        assert_eq!(counted.stops(sid), usize::from(*stopped), "stops of {sid}");
        let got = s.get(nas, sid).await.unwrap();
        if *stopped {
            assert_eq!(got, None, "{sid} must be closed");
        } else {
            live += 1;
            let got = got.unwrap_or_else(|| panic!("{sid} must be live"));
            assert_eq!((got.input_octets, got.output_octets), *counters);
        }
    }
    assert_eq!(s.count().await.unwrap(), live);
    assert_eq!(peer.count().await.unwrap(), live);
    assert_eq!(s.list(None).await.unwrap().len() as u64, live);
    for g in 0..GROUPS {
        let want = format!("g{g}-s2");
        assert_eq!(
            holder(s, &format!("100.66.0.{}", g + 1)).await,
            Some(want.clone())
        );
        assert_eq!(
            holder(&*peer, &format!("2001:db8:66:{:x}42::1", g + 1)).await,
            Some(want)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Randomized streams against a reference model
// ---------------------------------------------------------------------------------------------

const R_SESSIONS: usize = 50;
const R_IPS: usize = 20;

/// IP `i` of the pool of run `run` (runs share one store, so each has its own pool).
fn r_v4(run: u64, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(100, 72, run as u8, i as u8 + 1)
}

fn r_v6(run: u64, i: usize) -> Ipv6Net {
    let (hi, lo) = (0x7200 | run as u16, (i as u16) << 8);
    Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, hi, lo, 0, 0, 0, 0), 56).unwrap()
}

/// What the generator knows about each session: for the traffic and Stop checks.
struct Generated {
    events: Vec<AccountingEvent>,
    /// sid → (counters of its newest event, whether a Stop was sent).
    truth: HashMap<String, ((u64, u64), bool)>,
}

/// Start/Interim/Stop for ~50 sessions over 2 NASes sharing ~20 IPs, with strictly increasing
/// event times. Some sessions lose their Stop (the NAS never sends it) and their IP is handed
/// to a later session; some Interims omit the IP attributes.
fn generate(rng: &mut StdRng, run: u64, drop_user_names: bool) -> Generated {
    struct Active {
        nas: &'static str,
        sid: String,
        ip: usize,
        start: i64,
        counters: (u64, u64),
        interims: u32,
    }
    let mut events = Vec::new();
    let mut truth = HashMap::new();
    let mut active: Vec<Active> = Vec::new();
    let mut next = 0;
    let mut t = 0i64;
    while next < R_SESSIONS || !active.is_empty() {
        t += rng.gen_range(1..4);
        if next < R_SESSIONS && (active.is_empty() || rng.gen_bool(0.3)) {
            let used: Vec<usize> = active.iter().map(|a| a.ip).collect();
            let free: Vec<usize> = (0..R_IPS).filter(|i| !used.contains(i)).collect();
            let ip = if !free.is_empty() && rng.gen_bool(0.85) {
                free[rng.gen_range(0..free.len())]
            } else {
                rng.gen_range(0..R_IPS)
            };
            let a = Active {
                nas: if next % 2 == 0 { "nas1" } else { "nas2" },
                sid: format!("{:08x}", 0x81a0_0000u32 + next as u32 * 7919),
                ip,
                start: t,
                counters: (0, 0),
                interims: 0,
            };
            let mut e = start(a.nas, &a.sid, at(t));
            e.framed_ip = Some(r_v4(run, ip));
            e.delegated_ipv6_prefixes = vec![r_v6(run, ip)];
            e.calling_station_id = Some(format!("02:00:00:00:00:{:02x}", next));
            events.push(e);
            truth.insert(a.sid.clone(), ((0, 0), false));
            active.push(a);
            next += 1;
        } else {
            let i = rng.gen_range(0..active.len());
            let a = &mut active[i];
            a.counters.0 += rng.gen_range(1..10_000);
            a.counters.1 += rng.gen_range(1..100_000);
            let ending = a.interims >= 5 || rng.gen_bool(0.2);
            if ending && rng.gen_bool(0.15) {
                // Stop lost: the session stays live in the store, its IP is free to reuse.
                active.swap_remove(i);
                continue;
            }
            let status = if ending {
                StatusType::Stop
            } else {
                StatusType::InterimUpdate
            };
            let mut e = event(status, a.nas, &a.sid, at(t));
            e.input_octets = a.counters.0;
            e.output_octets = a.counters.1;
            e.input_packets = a.counters.0 / 100;
            e.output_packets = a.counters.1 / 100;
            e.session_time = Some((t - a.start) as u32);
            if ending || rng.gen_bool(0.8) {
                e.framed_ip = Some(r_v4(run, a.ip));
                e.delegated_ipv6_prefixes = vec![r_v6(run, a.ip)];
            }
            if drop_user_names && rng.gen_bool(0.1) {
                e.user_name = None;
            }
            events.push(e);
            truth.insert(a.sid.clone(), (a.counters, ending));
            a.interims += 1;
            if ending {
                active.swap_remove(i);
            }
        }
    }
    Generated { events, truth }
}

/// The reference model: the live-map rules written out plainly, applied in arrival order;
/// IP holders are computed from the live sessions when asked.
#[derive(Default)]
struct Model {
    live: HashMap<(String, String), MSession>,
    closed_at: HashMap<(String, String), OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq)]
struct MSession {
    user: Option<String>,
    v4: Option<Ipv4Addr>,
    v6: Vec<Ipv6Net>,
    started: OffsetDateTime,
    updated: OffsetDateTime,
    counters: [u64; 4],
}

impl MSession {
    fn ips(&self) -> Vec<String> {
        let mut out: Vec<String> = self.v4.iter().map(|a| a.to_string()).collect();
        out.extend(self.v6.iter().map(|n| n.to_string()));
        out
    }
}

impl Model {
    fn apply(&mut self, e: &AccountingEvent) {
        let key = (e.nas.clone(), e.session_id.clone());
        let t = e.event_time;
        let counters = [
            e.input_octets,
            e.output_octets,
            e.input_packets,
            e.output_packets,
        ];
        if self.closed_at.get(&key).is_some_and(|c| t <= *c) {
            return;
        }
        let prev = self.live.get(&key).cloned();
        if let Some(p) = &prev {
            if t < p.updated
                || (t == p.updated && e.status != StatusType::Stop && p.counters == counters)
            {
                return;
            }
        }
        let base = if e.status == StatusType::Start {
            None
        } else {
            prev.clone()
        };
        let mut v6: Vec<Ipv6Net> = e.delegated_ipv6_prefixes.clone();
        v6.sort();
        let new = MSession {
            user: e
                .user_name
                .clone()
                .or(base.as_ref().and_then(|b| b.user.clone())),
            v4: e.framed_ip.or(base.as_ref().and_then(|b| b.v4)),
            v6: if v6.is_empty() {
                base.as_ref().map(|b| b.v6.clone()).unwrap_or_default()
            } else {
                v6
            },
            started: match (&base, e.status, e.session_time) {
                (Some(b), _, _) => b.started,
                (None, StatusType::Start, _) | (None, _, None) => t,
                (None, _, Some(secs)) => t - Duration::seconds(i64::from(secs)),
            },
            updated: t,
            counters,
        };
        if e.status == StatusType::Stop {
            self.live.remove(&key);
            self.closed_at.insert(key, t);
            return;
        }
        self.live.insert(key, new);
    }

    /// Who holds `ip`: of the live sessions with it, the one that started last (then was
    /// updated last, then by key).
    fn owner(&self, ip: &str) -> Option<&(String, String)> {
        self.live
            .iter()
            .filter(|(_, s)| s.ips().iter().any(|i| i == ip))
            .max_by_key(|(k, s)| (s.started, s.updated, (*k).clone()))
            .map(|(k, _)| k)
    }
}

/// The live map `s` shows for run `seed` (NAS names ending in `tag`) is the model's, and
/// every IP of the run resolves as in the model.
async fn check_against_model(s: &dyn LiveSessions, model: &Model, seed: u64, tag: &str) {
    // Final live map.
    let got: BTreeMap<(String, String), MSession> = s
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.nas.ends_with(&tag))
        .map(|x| {
            (
                (x.nas.clone(), x.session_id.clone()),
                MSession {
                    user: x.user_name,
                    v4: x.framed_ip,
                    v6: x.ipv6_prefixes,
                    started: x.started_at,
                    updated: x.updated_at,
                    counters: [
                        x.input_octets,
                        x.output_octets,
                        x.input_packets,
                        x.output_packets,
                    ],
                },
            )
        })
        .collect();
    let want: BTreeMap<(String, String), MSession> = model.live.clone().into_iter().collect();
    assert_eq!(got, want, "seed {seed}: live map differs from the model");

    // Every IP resolves as in the model.
    for i in 0..R_IPS {
        let owner = |ip: String| model.owner(&ip).map(|k| k.1.clone());
        let (a, p) = (r_v4(seed, i), r_v6(seed, i));
        assert_eq!(
            holder(s, &a.to_string()).await,
            owner(a.to_string()),
            "seed {seed}: holder of {a}"
        );
        let inside = IpAddr::V6(Ipv6Addr::from(
            u128::from(p.network()) + (0x42u128 << 64) + 1,
        ));
        assert_eq!(
            s.lookup(inside).await.unwrap().map(|x| x.session_id),
            owner(p.to_string()),
            "seed {seed}: holder of {inside}"
        );
    }
}

async fn randomized_streams_match_model(env: &mut Env) {
    randomized_streams(env, false).await;
}

/// The same streams through `apply_batch`, in runs of random length (many events of one
/// session in one batch).
async fn randomized_streams_in_batches_match_model(env: &mut Env) {
    randomized_streams(env, true).await;
}

async fn randomized_streams(env: &mut Env, batched: bool) {
    for seed in 1..=6u64 {
        // The seeds share the store: their own NAS names and IP pools keep them apart.
        let mut rng = StdRng::seed_from_u64(seed);
        let drop_user_names = seed > 3;
        let mut generated = generate(&mut rng, seed, drop_user_names);
        let tag = format!("-r{seed}");
        for e in &mut generated.events {
            e.nas.push_str(&tag);
            e.nas_client = e.nas.clone();
        }
        let mut stream = generated.events.clone();
        for e in &generated.events {
            if rng.gen_bool(0.3) {
                stream.push(e.clone());
            }
        }
        if seed % 2 == 0 {
            stream.shuffle(&mut rng);
        } else {
            // Local disorder only, like real retransmits and multi-path delivery.
            let mut keyed: Vec<(OffsetDateTime, AccountingEvent)> = stream
                .into_iter()
                .map(|e| (e.event_time + Duration::seconds(rng.gen_range(0..40)), e))
                .collect();
            keyed.sort_by_key(|(k, _)| *k);
            stream = keyed.into_iter().map(|(_, e)| e).collect();
        }

        let s = env.store();
        let mut model = Model::default();
        let mut counted = Counted::default();
        let mut outcomes = Vec::with_capacity(stream.len());
        if batched {
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len().min(96));
                let (run, tail) = rest.split_at(n);
                let batch: Vec<_> = run.iter().map(|e| (Arc::new(e.clone()), later())).collect();
                let rs = s.apply_batch(&batch).await;
                assert_eq!(rs.len(), run.len());
                outcomes.extend(rs.into_iter().map(|r| r.expect("apply_batch")));
                rest = tail;
            }
        } else {
            for e in &stream {
                outcomes.push(s.apply(e, later()).await.expect("apply"));
            }
        }
        for (e, a) in stream.iter().zip(&outcomes) {
            model.apply(e);
            counted.add(a);
        }

        check_against_model(s, &model, seed, &tag).await;

        // History invariants: each stopped session counted once; traffic adds up to the
        // last counters (in the seeds that drop the User-Name from a few events, it can
        // only be less).
        for (sid, (counters, stopped)) in &generated.truth {
            assert_eq!(
                counted.stops(sid),
                usize::from(*stopped),
                "seed {seed}: Stops reported for {sid}"
            );
            let sum = counted.of_user(&format!("user-{sid}"));
            assert!(
                sum.0 <= counters.0 && sum.1 <= counters.1,
                "seed {seed}: traffic of {sid} exceeds its counters"
            );
            if !drop_user_names {
                assert_eq!(sum, *counters, "seed {seed}: traffic of {sid}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory measurement (manual)
// ---------------------------------------------------------------------------------------------

/// Fill Redis with `EBOK_MEM_SESSIONS` (default 100,000) sessions, each with an IPv4 address,
/// a /64 and a /56, and print `used_memory` per session. Run against a dedicated Redis with
/// the settings from the `redis` module docs:
/// `EBOK_TEST_REDIS=redis://127.0.0.1:6390/ cargo test --lib redis_memory -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "manual measurement"]
async fn redis_memory_per_session() {
    let Some(env) = Env::redis().await else {
        return;
    };
    let n: u32 = std::env::var("EBOK_MEM_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let used = || async {
        let mut conn = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap()
    };
    let before = used().await;
    let store = env.shared();
    let mut tasks = Vec::new();
    for w in 0..32u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(32) {
                let nas = format!("10.0.{}.1", i % 40);
                let mut e = start(&nas, &format!("{:08x}", 0x8100_0000u32 + i), at(0));
                e.user_name = Some(format!("u{i:07}@isp.example"));
                e.nas_client = format!("bras-{}", i % 40);
                e.calling_station_id = Some(format!(
                    "AA:BB:CC:{:02X}:{:02X}:{:02X}",
                    i >> 16 & 255,
                    i >> 8 & 255,
                    i & 255
                ));
                e.nas_port = Some(i);
                e.nas_port_id = Some(format!("ae0.{}:{}", i % 4000, i % 4000));
                e.framed_ip = Some(Ipv4Addr::from(0x6440_0000u32 + i));
                e.framed_ipv6_prefixes = vec![Ipv6Net::new(
                    Ipv6Addr::from((0x2001_0db8_0100_0000u128 + u128::from(i)) << 64),
                    64,
                )
                .unwrap()];
                e.delegated_ipv6_prefixes = vec![Ipv6Net::new(
                    Ipv6Addr::from((0x2001_0db8_8000_0000u128 + (u128::from(i) << 8)) << 64),
                    56,
                )
                .unwrap()];
                e.input_octets = 12_345_678_901;
                e.output_octets = 98_765_432_109;
                e.input_packets = 12_345_678;
                e.output_packets = 98_765_432;
                e.session_time = Some(3600);
                store.apply(&e, later()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = used().await;
    assert_eq!(store.count().await.unwrap(), u64::from(n));
    let sweep = std::time::Instant::now();
    assert!(store.expire(at(1)).await.unwrap().is_empty());
    println!("a sweep with nothing due took {:?}", sweep.elapsed());
    println!(
        "{n} sessions: {} bytes used, {:.1} bytes per session",
        after - before,
        (after - before) as f64 / f64::from(n)
    );
}

// ---------------------------------------------------------------------------------------------
// Instances sharing the log
// ---------------------------------------------------------------------------------------------

/// Two instances on one log take the randomized events (duplicated, shuffled, IPs reused),
/// split between them at random and applied concurrently in batches of random length, so
/// that each reads the other's entries interleaved with its own in any order. Afterwards
/// both show the model's map, and what their appends reported adds up to one history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_on_one_log_converge_on_randomized_streams() {
    let Some(env) = Env::redis().await else {
        return;
    };
    let a = env.shared();
    let b = env.peer().await;
    for seed in 11..=16u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut generated = generate(&mut rng, seed, false);
        let tag = format!("-c{seed}");
        for e in &mut generated.events {
            e.nas.push_str(&tag);
            e.nas_client = e.nas.clone();
        }
        let mut stream = generated.events.clone();
        for e in &generated.events {
            if rng.gen_bool(0.3) {
                stream.push(e.clone());
            }
        }
        stream.shuffle(&mut rng);
        let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
        for e in &stream {
            if rng.gen_bool(0.5) {
                to_a.push(e.clone());
            } else {
                to_b.push(e.clone());
            }
        }
        let run = |store: Arc<dyn LiveSessions>, events: Vec<AccountingEvent>, seed: u64| {
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut out = Vec::new();
                let mut rest = &events[..];
                while !rest.is_empty() {
                    let n = rng.gen_range(1..=rest.len().min(64));
                    let (head, tail) = rest.split_at(n);
                    let batch: Vec<_> = head
                        .iter()
                        .map(|e| (Arc::new(e.clone()), later()))
                        .collect();
                    for r in store.apply_batch(&batch).await {
                        out.push(r.expect("apply_batch"));
                    }
                    rest = tail;
                }
                out
            })
        };
        let (ra, rb) = (run(a.clone(), to_a, seed), run(b.clone(), to_b, seed + 100));
        let mut counted = Counted::default();
        for r in ra.await.unwrap().iter().chain(rb.await.unwrap().iter()) {
            counted.add(r);
        }
        a.settle().await.expect("settle a");
        b.settle().await.expect("settle b");

        let mut model = Model::default();
        for e in &stream {
            model.apply(e);
        }
        check_against_model(&*a, &model, seed, &tag).await;
        check_against_model(&*b, &model, seed, &tag).await;
        for (sid, (counters, stopped)) in &generated.truth {
            assert_eq!(
                counted.stops(sid),
                usize::from(*stopped),
                "seed {seed}: Stops reported for {sid}"
            );
            assert_eq!(
                counted.of_user(&format!("user-{sid}")),
                *counters,
                "seed {seed}: traffic of {sid}"
            );
        }
    }
}

/// The live sessions (sorted) and the holders of nas1's twelve addresses.
async fn map_and_holders(store: &dyn LiveSessions) -> (Vec<LiveSession>, Vec<Option<String>>) {
    let mut holders = Vec::new();
    for i in 0..12 {
        holders.push(holder(store, &format!("100.70.0.{}", i + 1)).await);
    }
    (sorted(store.list(None).await.unwrap()), holders)
}

/// An Accounting-On commutes with the other events as a real NAS sends them (the sessions
/// before its restart stop reporting; the ones after it are new): however the log's streams
/// interleave (each session's events in their order, as one stream keeps them; repeats
/// included), the map is the same: in the embedded store, and on the real streams with two
/// instances appending at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nas_restart_gives_the_same_map_in_any_order() {
    let mut events = Vec::new();
    for i in 0..12 {
        let (sid, ip) = (format!("old{i}"), format!("100.70.0.{}", i + 1));
        events.push(with_ips(start("nas1", &sid, at(i)), Some(&ip), &[]));
        events.push(interim("nas1", &sid, at(50 + i), 10 * i as u64, 1));
        if i % 3 == 0 {
            events.push(stop("nas1", &sid, at(80 + i), 20 * i as u64, 2));
        }
        // The same addresses again after the restart, in new sessions.
        let sid = format!("new{i}");
        events.push(with_ips(start("nas1", &sid, at(200 + i)), Some(&ip), &[]));
        if i % 4 == 0 {
            events.push(interim("nas1", &sid, at(260 + i), 5, 5));
        }
        // Another NAS the restart does not touch.
        events.push(with_ips(
            start("nas2", &format!("other{i}"), at(i)),
            Some(&format!("100.71.0.{}", i + 1)),
            &[],
        ));
    }
    events.push(nas_event(StatusType::AccountingOn, "nas1", at(150)));
    let mut maps = Vec::new();
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        // One queue per session key (the restart is its own), repeats next to the original.
        let mut queues: BTreeMap<(String, String), Vec<AccountingEvent>> = BTreeMap::new();
        for e in &events {
            let q = queues
                .entry((e.nas.clone(), e.session_id.clone()))
                .or_default();
            q.push(e.clone());
            if rng.gen_bool(0.2) {
                q.push(e.clone());
            }
        }
        let mut queues: Vec<std::collections::VecDeque<AccountingEvent>> =
            queues.into_values().map(Into::into).collect();
        let mut order = Vec::new();
        while !queues.is_empty() {
            let i = rng.gen_range(0..queues.len());
            order.push(queues[i].pop_front().unwrap());
            if queues[i].is_empty() {
                queues.swap_remove(i);
            }
        }
        let env = Env::embedded().await;
        for e in &order {
            env.store().apply(e, later()).await.unwrap();
        }
        maps.push(map_and_holders(env.store()).await);
        // The same order on the real streams: each session's events through instance A or
        // B (a NAS with two RADIUS servers), both appending at once, so that the streams
        // interleave as the two instances' appends happen to land.
        let Some(env) = Env::redis().await else {
            continue;
        };
        let (a, b) = (env.shared(), env.peer().await);
        let mut via_a: BTreeMap<(String, String), bool> = BTreeMap::new();
        let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
        for e in order {
            let key = (e.nas.clone(), e.session_id.clone());
            if *via_a.entry(key).or_insert_with(|| rng.gen_bool(0.5)) {
                to_a.push(e);
            } else {
                to_b.push(e);
            }
        }
        let send = |store: Arc<dyn LiveSessions>, events: Vec<AccountingEvent>| {
            tokio::spawn(async move {
                for e in &events {
                    store.apply(e, later()).await.unwrap();
                }
            })
        };
        let (ra, rb) = (send(a.clone(), to_a), send(b.clone(), to_b));
        ra.await.unwrap();
        rb.await.unwrap();
        for (name, store) in [("A", &a), ("B", &b)] {
            store.settle().await.unwrap();
            let seen = map_and_holders(store.as_ref()).await;
            assert_eq!(
                seen, maps[0],
                "order {seed} on the streams, instance {name}"
            );
        }
    }
    for (seed, m) in maps.iter().enumerate().skip(1) {
        assert_eq!(m, &maps[0], "order {seed} differs from order 0");
    }
    let (live, holders) = &maps[0];
    assert_eq!(live.len(), 24, "12 new sessions on nas1, 12 on nas2");
    assert!(holders
        .iter()
        .enumerate()
        .all(|(i, h)| h.as_deref() == Some(&format!("new{i}"))));
}
