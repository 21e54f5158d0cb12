//! The live IP map: which PPPoE session holds an IPv4 address or IPv6 prefix right now.
//! One trait, [`LiveSessions`], with an embedded implementation (memory + SQLite file, one
//! machine) and a shared one ([`stream`]: every instance holds the embedded map and they
//! replicate it through an event log in Redis). The ordering rules (stale events, late Stop
//! after IP reuse, Accounting-On/Off) live in [`rules`], applied in one place
//! ([`embedded`]).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use ebok_radius::event::AccountingEvent;

pub mod embedded;
pub mod filter;
pub(crate) mod hash;
pub(crate) mod record;
pub mod rules;
pub mod stream;
#[cfg(test)]
mod tests;

/// One PPPoE session that is up now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSession {
    /// NAS key (see [`AccountingEvent::nas`]).
    pub nas: String,
    /// Configured NAS client entry name.
    pub nas_client: String,
    pub session_id: String,
    /// PPPoE login (RADIUS User-Name): the join point to PPPoE account → contract → subscriber.
    pub user_name: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    /// Framed and delegated IPv6 prefixes and Framed-IPv6-Addresses (as /128), sorted.
    pub ipv6_prefixes: Vec<Ipv6Net>,
    /// Calling-Station-Id, for PPPoE the subscriber router's MAC.
    pub calling_station_id: Option<String>,
    pub nas_port: Option<u32>,
    pub nas_port_id: Option<String>,
    /// Start event time, or (for an Interim without a Start) event time − Acct-Session-Time.
    #[serde(with = "time::serde::timestamp")]
    pub started_at: OffsetDateTime,
    /// Event time of the newest event applied; older events are ignored.
    #[serde(with = "time::serde::timestamp")]
    pub updated_at: OffsetDateTime,
    /// When the session is considered gone without further updates (2 × interim + grace).
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
    pub input_octets: u64,
    pub output_octets: u64,
    pub input_packets: u64,
    pub output_packets: u64,
    pub session_time: Option<u32>,
}

impl LiveSession {
    /// A session of `nas` (matched to the NAS entry `nas_client`) started at `started`, with
    /// no addresses, login or counters yet; it expires when it starts until an update says more.
    pub fn new(nas: &str, nas_client: &str, session_id: &str, started: OffsetDateTime) -> Self {
        LiveSession {
            nas: nas.into(),
            nas_client: nas_client.into(),
            session_id: session_id.into(),
            user_name: None,
            framed_ip: None,
            ipv6_prefixes: Vec::new(),
            calling_station_id: None,
            nas_port: None,
            nas_port_id: None,
            started_at: started,
            updated_at: started,
            expires_at: started,
            input_octets: 0,
            output_octets: 0,
            input_packets: 0,
            output_packets: 0,
            session_time: None,
        }
    }

    /// What a Disconnect- or CoA-Request for this session names.
    pub fn control_target(&self) -> ebok_radius::coa::Target {
        ebok_radius::coa::Target {
            nas: self.nas.clone(),
            nas_client: self.nas_client.clone(),
            session_id: self.session_id.clone(),
            user_name: self.user_name.clone(),
        }
    }

    /// True when `ip` is this session's IPv4 address or falls inside one of its IPv6 prefixes.
    pub fn holds(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.framed_ip == Some(v4),
            IpAddr::V6(v6) => self.ipv6_prefixes.iter().any(|p| p.contains(&v6)),
        }
    }
}

/// Why a session left the live map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// Accounting-Request Stop.
    Stop,
    /// Accounting-On or Accounting-Off from its NAS.
    NasRestart,
    /// No update for 2 × interim + grace.
    Expired,
}

impl CloseReason {
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Stop => "stop",
            CloseReason::NasRestart => "nas_restart",
            CloseReason::Expired => "expired",
        }
    }
}

/// A session that was closed, for the history table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedSession {
    pub session: LiveSession,
    #[serde(with = "time::serde::timestamp")]
    pub stopped_at: OffsetDateTime,
    pub reason: CloseReason,
    /// Acct-Terminate-Cause from the Stop, when there was one.
    pub terminate_cause: Option<u32>,
}

/// A session's counters as one event reported them, for daily traffic.
///
/// Absolute, not a difference from the previous event: history keeps, per session and
/// Europe/Warsaw day, the newest reading it was given and derives the day's octets from
/// it (see `store::history`). Writing a reading twice, or an older one after a newer one,
/// changes nothing, so an event applied again after a crash or a lost answer can hand its
/// reading to history again without counting it twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficReading {
    pub nas: String,
    pub session_id: String,
    /// The session's start: with `nas` and `session_id` it names the session.
    #[serde(with = "time::serde::timestamp")]
    pub started_at: OffsetDateTime,
    /// The PPPoE login the octets are counted for.
    pub user_name: String,
    /// When the counters were read (the event time).
    #[serde(with = "time::serde::timestamp::nanoseconds")]
    pub at: OffsetDateTime,
    /// Octets since the session started (Gigawords folded in).
    pub input_octets: u64,
    pub output_octets: u64,
}

/// What applying one event did, beyond the live map itself: what history must record.
///
/// An event that repeats the one the live map last took from its session (the same time
/// and counters; a Stop's repeat finds the tombstone it left) is `stale` but still reports
/// that event's closed session and reading: when the first apply's answer was lost, this
/// is the only time its history is written, and history writes are idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The event was older than the stored state (or a repeat) and changed nothing.
    pub stale: bool,
    pub closed: Vec<ClosedSession>,
    pub traffic: Vec<TrafficReading>,
}

/// Errors of a live-session store. Every error means "not recorded": the caller spools.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("sqlite: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored session could not be decoded: {0}")]
    Corrupt(String),
    /// The event itself can never be applied (a time the store cannot encode, …): trying
    /// again cannot help.
    #[error("event cannot be applied: {0}")]
    Invalid(String),
    /// The store answered something that does not fit the request: a connection problem.
    #[error("store protocol: {0}")]
    Protocol(String),
    #[error("store timed out")]
    Timeout,
}

impl StoreError {
    /// True when this event can never be applied (set it aside); false when the store is
    /// unavailable (wait and try again). A session whose stored record cannot be decoded
    /// refuses every event of its own for good, so that counts as permanent too.
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::Invalid(_) | StoreError::Corrupt(_))
    }
}

/// The live IP → session map.
#[async_trait]
pub trait LiveSessions: Send + Sync + 'static {
    /// Apply one event durably (or return an error and change nothing visible).
    /// `expires_at` is the deadline for the session if this event refreshes it.
    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError>;

    /// Apply many events in their order, as if by [`LiveSessions::apply`] one after the
    /// other; one result per event. Stores that can commit a batch at once override it.
    async fn apply_batch(
        &self,
        events: &[(Arc<AccountingEvent>, OffsetDateTime)],
    ) -> Vec<Result<Applied, StoreError>> {
        let mut out = Vec::with_capacity(events.len());
        for (event, expires_at) in events {
            out.push(self.apply(event, *expires_at).await);
        }
        out
    }

    /// Does [`LiveSessions::apply_batch`] commit a whole batch at once (rather than event by
    /// event)? Replay then hands it whole runs instead of spreading them over lanes.
    fn batches(&self) -> bool {
        false
    }

    /// The live session holding `ip`: IPv4 exact, IPv6 longest matching prefix.
    async fn lookup(&self, ip: IpAddr) -> Result<Option<LiveSession>, StoreError>;

    /// One session by its key.
    async fn get(&self, nas: &str, session_id: &str) -> Result<Option<LiveSession>, StoreError>;

    /// All live sessions, or those of one NAS.
    async fn list(&self, nas: Option<&str>) -> Result<Vec<LiveSession>, StoreError>;

    /// The live sessions whose User-Name is one of `users` (a subscriber's PPPoE logins).
    /// Without an index by login this filters [`LiveSessions::list`]; a store that can do
    /// better overrides it.
    async fn sessions_of_users(&self, users: &[&str]) -> Result<Vec<LiveSession>, StoreError> {
        Ok(self
            .list(None)
            .await?
            .into_iter()
            .filter(|s| s.user_name.as_deref().is_some_and(|u| users.contains(&u)))
            .collect())
    }

    /// Close and remove every session whose `expires_at` is at or before `now`.
    async fn expire(&self, now: OffsetDateTime) -> Result<Vec<ClosedSession>, StoreError>;

    /// Number of live sessions.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Cheap reachability check.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Wait until this handle shows everything that any handle on the same map had applied
    /// when the call began. A map held in one place shows it at once; a map replicated
    /// through a log waits for its readers.
    async fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
