//! Ordering rules shared by both live-session stores: pure functions, no I/O.
//!
//! A store keeps, per session key (NAS, Acct-Session-Id), a [`Record`]: the live session or a
//! short-lived [`Tombstone`] of a closed one, and per NAS the time of its last
//! Accounting-On/Off. [`step_event`] turns "what is stored + one event" into "what to store +
//! which IP index entries to claim or release + what history must record"; the stores only
//! execute that plan (atomically: one transaction, or one Redis script).
//!
//! Why tombstones and restart marks: without them a duplicate Stop (a NAS retransmitting to a
//! second ebok instance) would be a "Stop without Start" and be recorded twice, and a late
//! Interim of a stopped session (or one from before a NAS reboot) would bring it back to life.
//!
//! IP ownership: an IPv4 address or IPv6 prefix is held by the live session that most recently
//! started with it ([`rank`]: started_at, then updated_at, then the key). A store indexes every
//! live session under each of its IPs and picks the first-ranked one when asked, so the holder
//! is a function of the live sessions alone: any order of the same events gives the same
//! answer, which is what lets instances sharing a log agree (see [`super::stream`]). A newer
//! session takes an IP from an older one whose Stop was lost; when the newer one ends, the
//! older one shows again until it expires, on an address the NAS no longer routes to anyone.

use std::net::Ipv4Addr;

use ipnet::Ipv6Net;
use time::{Duration, OffsetDateTime};

use super::{Applied, CloseReason, ClosedSession, LiveSession, TrafficReading};
use ebok_radius::event::{AccountingEvent, StatusType};

/// What one Start/Interim/Stop does to the session it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Older than the stored state: change nothing.
    Stale,
    /// The very event the stored state last took (same time and counters): change nothing,
    /// but report its reading again (see [`Applied`]).
    Repeat { traffic: Option<TrafficReading> },
    /// Store this session (new, updated, or reset by a newer Start).
    Upsert {
        session: LiveSession,
        traffic: Option<TrafficReading>,
    },
    /// The session ends (Stop).
    Close {
        closed: ClosedSession,
        traffic: Option<TrafficReading>,
    },
}

/// Merge one Start, Interim-Update or Stop into the stored session of its key.
///
/// * Stale when `event_time` is older than `existing.updated_at`; a repeat when equal with
///   identical counters. A Stop is never a repeat of a live state: its own repeats are
///   caught by the [`Tombstone`] it leaves (see [`step_event`]).
/// * A Start resets the session; an Interim or Stop without a known session is accepted, with
///   `started_at` = event time − Acct-Session-Time (or the event time).
/// * Attributes an event does not carry are kept from the stored session (per family for IPs:
///   an Interim without Framed-IP-Address keeps the stored IPv4 address, one without IPv6
///   attributes keeps the stored prefixes).
/// * Traffic: the session's counters as a [`TrafficReading`], when they changed (or, for a
///   session not known before, are not zero); none without a User-Name.
///
/// Accounting-On/Off are not session events: they return [`Merge::Stale`] here (see
/// [`restart_closes`]).
pub fn merge(
    existing: Option<&LiveSession>,
    event: &AccountingEvent,
    expires_at: OffsetDateTime,
) -> Merge {
    if matches!(
        event.status,
        StatusType::AccountingOn | StatusType::AccountingOff
    ) {
        return Merge::Stale;
    }
    if let Some(s) = existing {
        if event.event_time < s.updated_at {
            return Merge::Stale;
        }
        if event.event_time == s.updated_at
            && event.status != StatusType::Stop
            && same_counters(s, event)
        {
            return Merge::Repeat {
                traffic: reading(None, s),
            };
        }
    }
    let base = match event.status {
        StatusType::Start => None,
        _ => existing,
    };
    let session = build(base, event, expires_at);
    let traffic = reading(existing, &session);
    if event.status == StatusType::Stop {
        Merge::Close {
            closed: ClosedSession {
                session,
                stopped_at: event.event_time,
                reason: CloseReason::Stop,
                terminate_cause: event.terminate_cause,
            },
            traffic,
        }
    } else {
        Merge::Upsert { session, traffic }
    }
}

fn same_counters(s: &LiveSession, e: &AccountingEvent) -> bool {
    s.input_octets == e.input_octets
        && s.output_octets == e.output_octets
        && s.input_packets == e.input_packets
        && s.output_packets == e.output_packets
}

/// When a session without a known Start began.
pub fn started_at(event: &AccountingEvent) -> OffsetDateTime {
    match (event.status, event.session_time) {
        (StatusType::Start, _) | (_, None) => event.event_time,
        (_, Some(secs)) => event.event_time - Duration::seconds(i64::from(secs)),
    }
}

fn build(
    base: Option<&LiveSession>,
    event: &AccountingEvent,
    expires_at: OffsetDateTime,
) -> LiveSession {
    let v6 = event.ipv6_prefixes();
    LiveSession {
        nas: event.nas.clone(),
        nas_client: event.nas_client.clone(),
        session_id: event.session_id.clone(),
        user_name: event
            .user_name
            .clone()
            .or_else(|| base.and_then(|b| b.user_name.clone())),
        framed_ip: event.framed_ip.or(base.and_then(|b| b.framed_ip)),
        ipv6_prefixes: if v6.is_empty() {
            base.map(|b| b.ipv6_prefixes.clone()).unwrap_or_default()
        } else {
            v6
        },
        calling_station_id: event
            .calling_station_id
            .clone()
            .or_else(|| base.and_then(|b| b.calling_station_id.clone())),
        nas_port: event.nas_port.or(base.and_then(|b| b.nas_port)),
        nas_port_id: event
            .nas_port_id
            .clone()
            .or_else(|| base.and_then(|b| b.nas_port_id.clone())),
        started_at: base.map_or_else(|| started_at(event), |b| b.started_at),
        updated_at: event.event_time,
        expires_at,
        input_octets: event.input_octets,
        output_octets: event.output_octets,
        input_packets: event.input_packets,
        output_packets: event.output_packets,
        session_time: event.session_time.or(base.and_then(|b| b.session_time)),
    }
}

/// The counters of `now` for history: none without a User-Name, none when they are what
/// `previous` (the same session before this event) already reported, none when zero.
fn reading(previous: Option<&LiveSession>, now: &LiveSession) -> Option<TrafficReading> {
    let user_name = now.user_name.clone()?;
    let unchanged = previous.map_or((0, 0), |p| (p.input_octets, p.output_octets))
        == (now.input_octets, now.output_octets);
    if unchanged {
        return None;
    }
    Some(TrafficReading {
        nas: now.nas.clone(),
        session_id: now.session_id.clone(),
        started_at: now.started_at,
        user_name,
        at: now.updated_at,
        input_octets: now.input_octets,
        output_octets: now.output_octets,
    })
}

/// A closed session remembered for a while, so that its late or repeated events are stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub nas: String,
    pub session_id: String,
    /// Events at or before this time are stale.
    pub closed_at: OffsetDateTime,
    /// Forgotten (by `expire`) at this time.
    pub until: OffsetDateTime,
    /// The session as its Stop closed it, so that a repeat of that Stop reports it again
    /// (see [`Applied`]); `None` for sessions closed by expiry.
    pub closed: Option<Box<ClosedSession>>,
}

/// What a store keeps under one session key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Live(LiveSession),
    Closed(Tombstone),
}

impl Record {
    pub fn key(&self) -> (&str, &str) {
        match self {
            Record::Live(s) => (&s.nas, &s.session_id),
            Record::Closed(t) => (&t.nas, &t.session_id),
        }
    }

    pub fn live(&self) -> Option<&LiveSession> {
        match self {
            Record::Live(s) => Some(s),
            Record::Closed(_) => None,
        }
    }

    /// When the store may drop or close this record (`expire`).
    pub fn deadline(&self) -> OffsetDateTime {
        match self {
            Record::Live(s) => s.expires_at,
            Record::Closed(t) => t.until,
        }
    }
}

/// One entry of the IP index: an IPv4 address or an IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum IpKey {
    V4(Ipv4Addr),
    V6(Ipv6Net),
}

/// Every IP index entry a session wants to hold.
pub(crate) fn ip_keys(s: &LiveSession) -> Vec<IpKey> {
    s.framed_ip
        .map(IpKey::V4)
        .into_iter()
        .chain(s.ipv6_prefixes.iter().map(|p| IpKey::V6(p.trunc())))
        .collect()
}

/// How sessions holding the same IP rank: the one that started most recently holds it (then
/// the one updated most recently, then by key, so that the order is total). A pure function
/// of the sessions: whatever order events arrive in, the same sessions give the same holder.
pub(crate) fn rank(s: &LiveSession) -> (OffsetDateTime, OffsetDateTime, &str, &str) {
    (s.started_at, s.updated_at, &s.nas, &s.session_id)
}

/// The plan for one key: what to store, which index entries to touch, what to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Step {
    pub applied: Applied,
    /// False: nothing changes (stale event).
    pub write: bool,
    /// What to store under the key afterwards; `None` removes it.
    pub record: Option<Record>,
    /// Entries to release, only where they still point at this key. Done before the claims.
    pub releases: Vec<IpKey>,
    /// Entries the new live session holds (indexed under it; see [`rank`]).
    pub claims: Vec<IpKey>,
}

impl Step {
    fn stale() -> Self {
        Step::repeat(Vec::new(), None)
    }

    /// Nothing changes, but history is told again what the repeated event produced.
    fn repeat(closed: Vec<ClosedSession>, traffic: Option<TrafficReading>) -> Self {
        Step {
            applied: Applied {
                stale: true,
                closed,
                traffic: traffic.into_iter().collect(),
            },
            ..Step::default()
        }
    }
}

/// Move a new session's start up to its NAS's last restart when it reaches back before it
/// (an Interim or Stop without Start whose Acct-Session-Time spans the restart).
fn floor_start(
    session: &mut LiveSession,
    traffic: Option<&mut TrafficReading>,
    nas_reset: Option<OffsetDateTime>,
) {
    if let Some(r) = nas_reset.filter(|r| session.started_at < *r) {
        session.started_at = r;
        if let Some(t) = traffic {
            t.started_at = r;
        }
    }
}

/// Plan one Start, Interim-Update or Stop.
///
/// `prior` is what is stored under the event's key, `nas_reset` the time of the last
/// Accounting-On/Off of the event's NAS. Events at or before `nas_reset` are stale; a stored
/// session last updated at or before it counts as closed by that restart (it is reported
/// closed here, when the restart sweep has not closed it yet). A Stop leaves a tombstone until
/// `expires_at`.
pub(crate) fn step_event(
    prior: Option<&Record>,
    nas_reset: Option<OffsetDateTime>,
    event: &AccountingEvent,
    expires_at: OffsetDateTime,
) -> Step {
    if matches!(
        event.status,
        StatusType::AccountingOn | StatusType::AccountingOff
    ) {
        return Step::stale();
    }
    if nas_reset.is_some_and(|r| event.event_time <= r) {
        return Step::stale();
    }
    let mut closed = Vec::new();
    let mut releases = Vec::new();
    let existing = match prior {
        Some(Record::Closed(t)) if event.event_time <= t.closed_at => {
            return match &t.closed {
                Some(c) if event.status == StatusType::Stop && event.event_time == t.closed_at => {
                    Step::repeat(vec![(**c).clone()], reading(None, &c.session))
                }
                _ => Step::stale(),
            };
        }
        Some(Record::Closed(_)) | None => None,
        Some(Record::Live(s)) => match nas_reset {
            Some(r) if s.updated_at <= r => {
                closed.push(ClosedSession {
                    session: s.clone(),
                    stopped_at: r,
                    reason: CloseReason::NasRestart,
                    terminate_cause: None,
                });
                releases.extend(ip_keys(s));
                None
            }
            _ => Some(s),
        },
    };
    let merged = match merge(existing, event, expires_at) {
        // A session this event starts (or one it is the first news of) cannot have started
        // before its NAS last restarted.
        Merge::Upsert {
            mut session,
            mut traffic,
        } if existing.is_none() => {
            floor_start(&mut session, traffic.as_mut(), nas_reset);
            Merge::Upsert { session, traffic }
        }
        Merge::Close {
            mut closed,
            mut traffic,
        } if existing.is_none() => {
            floor_start(&mut closed.session, traffic.as_mut(), nas_reset);
            Merge::Close { closed, traffic }
        }
        m => m,
    };
    match merged {
        Merge::Stale => Step::stale(),
        Merge::Repeat { traffic } => Step::repeat(Vec::new(), traffic),
        Merge::Upsert { session, traffic } => {
            let claims = ip_keys(&session);
            if let Some(old) = existing {
                releases.extend(ip_keys(old));
            }
            releases.retain(|ip| !claims.contains(ip));
            releases.sort();
            releases.dedup();
            Step {
                applied: Applied {
                    stale: false,
                    closed,
                    traffic: traffic.into_iter().collect(),
                },
                write: true,
                record: Some(Record::Live(session)),
                releases,
                claims,
            }
        }
        Merge::Close { closed: c, traffic } => {
            if let Some(old) = existing {
                releases.extend(ip_keys(old));
            }
            releases.extend(ip_keys(&c.session));
            releases.sort();
            releases.dedup();
            let tomb = Tombstone {
                nas: c.session.nas.clone(),
                session_id: c.session.session_id.clone(),
                closed_at: c.stopped_at,
                until: expires_at.max(c.stopped_at),
                closed: Some(Box::new(c.clone())),
            };
            closed.push(c);
            Step {
                applied: Applied {
                    stale: false,
                    closed,
                    traffic: traffic.into_iter().collect(),
                },
                write: true,
                record: Some(Record::Closed(tomb)),
                releases,
                claims: Vec::new(),
            }
        }
    }
}

/// True when an Accounting-On/Off of `nas` at `at` closes `session`.
pub(crate) fn restart_closes(session: &LiveSession, nas: &str, at: OffsetDateTime) -> bool {
    session.nas == nas && session.updated_at <= at
}

/// True when the new restart time `at` of a NAS is older than the one stored: stale.
pub(crate) fn restart_is_stale(stored: Option<OffsetDateTime>, at: OffsetDateTime) -> bool {
    stored.is_some_and(|s| at < s)
}

/// Plan closing a live session by Accounting-On/Off at `at`. No tombstone is needed: the
/// NAS restart time makes its late events stale.
pub(crate) fn step_restart(session: &LiveSession, at: OffsetDateTime) -> Step {
    close_step(
        session,
        ClosedSession {
            session: session.clone(),
            stopped_at: at,
            reason: CloseReason::NasRestart,
            terminate_cause: None,
        },
        None,
    )
}

/// When a session that expired was last known to be up: its last update, or its start plus
/// the Acct-Session-Time it last reported when that reaches further.
pub fn last_seen(session: &LiveSession) -> OffsetDateTime {
    let by_time = session
        .session_time
        .map(|secs| session.started_at + Duration::seconds(i64::from(secs)));
    by_time.map_or(session.updated_at, |t| t.max(session.updated_at))
}

/// Plan closing a session whose `expires_at` has passed (`stopped_at`: [`last_seen`]).
/// Its tombstone lasts one more expiry window from `now`.
pub(crate) fn step_expire(session: &LiveSession, now: OffsetDateTime) -> Step {
    let window = (session.expires_at - session.updated_at).max(Duration::ZERO);
    close_step(
        session,
        ClosedSession {
            session: session.clone(),
            stopped_at: last_seen(session),
            reason: CloseReason::Expired,
            terminate_cause: None,
        },
        Some(Tombstone {
            nas: session.nas.clone(),
            session_id: session.session_id.clone(),
            closed_at: session.updated_at,
            until: now + window,
            closed: None,
        }),
    )
}

/// What `expire(now)` does to a stored record: close a live session, drop a tombstone, or
/// nothing (`None`).
pub(crate) fn step_deadline(record: &Record, now: OffsetDateTime) -> Option<Step> {
    if record.deadline() > now {
        return None;
    }
    Some(match record {
        Record::Live(s) => step_expire(s, now),
        Record::Closed(_) => Step {
            write: true,
            ..Step::default()
        },
    })
}

fn close_step(session: &LiveSession, closed: ClosedSession, tomb: Option<Tombstone>) -> Step {
    Step {
        applied: Applied {
            stale: false,
            closed: vec![closed],
            traffic: Vec::new(),
        },
        write: true,
        record: tomb.map(Record::Closed),
        releases: ip_keys(session),
        claims: Vec::new(),
    }
}

#[cfg(test)]
mod unit {
    use time::macros::datetime;

    use super::*;

    fn ev(status: StatusType, at: OffsetDateTime) -> AccountingEvent {
        let mut e = AccountingEvent::new(status, "nas1", "s1", at);
        e.user_name = Some("u".into());
        e
    }

    #[test]
    fn stop_is_never_a_repeat_of_a_live_state() {
        let t = datetime!(2024-05-01 10:00 UTC);
        let Merge::Upsert { session, .. } = merge(None, &ev(StatusType::Start, t), t) else {
            panic!("start must upsert")
        };
        assert_eq!(
            merge(Some(&session), &ev(StatusType::InterimUpdate, t), t),
            Merge::Repeat { traffic: None }
        );
        assert!(matches!(
            merge(Some(&session), &ev(StatusType::Stop, t), t),
            Merge::Close { .. }
        ));
    }

    /// History gets the counters as reported (what they mean per day, counters that went
    /// backwards included, is history's business).
    #[test]
    fn readings_are_the_counters_as_reported() {
        let t = datetime!(2024-05-01 10:00 UTC);
        let mut e = ev(StatusType::InterimUpdate, t);
        e.input_octets = 100;
        e.output_octets = 1000;
        let Merge::Upsert { session, traffic } = merge(None, &e, t) else {
            panic!()
        };
        assert_eq!(
            traffic.map(|d| (d.input_octets, d.output_octets)),
            Some((100, 1000))
        );
        let mut e2 = ev(StatusType::InterimUpdate, t + Duration::minutes(5));
        e2.input_octets = 150;
        e2.output_octets = 10;
        let Merge::Upsert { traffic, .. } = merge(Some(&session), &e2, t) else {
            panic!()
        };
        assert_eq!(
            traffic.map(|d| (d.input_octets, d.output_octets)),
            Some((150, 10))
        );
    }

    /// An expired session stopped when it was last known up: its last update, or its start
    /// plus the Acct-Session-Time it last reported when that reaches further.
    #[test]
    fn expired_sessions_stop_at_their_last_sign_of_life() {
        let t = datetime!(2024-05-01 10:00 UTC);
        let Merge::Upsert { mut session, .. } = merge(None, &ev(StatusType::Start, t), t) else {
            panic!()
        };
        session.expires_at = t + Duration::minutes(11);
        let closed =
            |s: &LiveSession| step_expire(s, t + Duration::hours(1)).applied.closed[0].stopped_at;
        assert_eq!(closed(&session), t, "only a Start: its time");
        session.updated_at = t + Duration::minutes(5);
        assert_eq!(closed(&session), t + Duration::minutes(5));
        session.session_time = Some(420);
        assert_eq!(closed(&session), t + Duration::minutes(7));
    }

    #[test]
    fn interim_without_start_backdates_start() {
        let t = datetime!(2024-05-01 10:00 UTC);
        let mut e = ev(StatusType::InterimUpdate, t);
        e.session_time = Some(600);
        let Merge::Upsert { session, .. } = merge(None, &e, t) else {
            panic!()
        };
        assert_eq!(session.started_at, datetime!(2024-05-01 09:50 UTC));
    }
}
