//! Server-side panel sessions: SQL (SQLite/PostgreSQL) or Redis, matching the deployment.
//!
//! The cookie carries a token of 32 random bytes (base64url, 43 characters); the stores keep
//! only its SHA-256, so a copy of the table or of Redis opens no session. A session ends when
//! it was idle for [`SessionPolicy::idle`] or is older than [`SessionPolicy::absolute`],
//! whatever its activity. `last_seen_at` is written at most once per
//! [`TOUCH_INTERVAL`], so idle expiry can come up to that much early.
//!
//! Both stores take "now" from an injectable [`Clock`] (whole seconds, like every time in the
//! database), so tests move time without sleeping.
//!
//! Rooms: [`sql`] and [`redis`], the two stores.

mod redis;
mod sql;
#[cfg(test)]
mod tests;

pub(crate) use self::redis::RedisWebSessions;
pub(crate) use sql::SqlWebSessions;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::OsRng;
use rand::RngCore;
use time::OffsetDateTime;

// The SHA-256 hex a token is stored under (as every other token of the panel).
use ebok_store::auth::{base64url, token_hash as stored_hash};
use ebok_store::repo::from_ts;

/// `last_seen_at` is written at most this often per session.
pub(crate) const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;
/// Length of a token as text (base64url without padding).
const TOKEN_LEN: usize = 43;

/// How long sessions live.
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    /// Ends a session not used for this long (default 30 minutes).
    pub idle: Duration,
    /// Ends a session this long after login, however active (default 12 hours).
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

impl SessionPolicy {
    fn idle_secs(&self) -> i64 {
        i64::try_from(self.idle.as_secs()).unwrap_or(i64::MAX / 4)
    }

    fn absolute_secs(&self) -> i64 {
        i64::try_from(self.absolute.as_secs()).unwrap_or(i64::MAX / 4)
    }

    /// When a session created at `created` and last seen at `last_seen` ends (unix seconds).
    fn deadline(&self, created: i64, last_seen: i64) -> i64 {
        last_seen
            .saturating_add(self.idle_secs())
            .min(created.saturating_add(self.absolute_secs()))
    }

    fn expired(&self, s: &Stored, now: i64) -> bool {
        now >= self.deadline(s.created, s.last_seen)
    }
}

/// One logged-in (or half logged-in) browser.
#[derive(Clone, Debug, PartialEq)]
pub struct WebSession {
    pub account_id: i64,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// Password accepted, TOTP still to be given: only the second-factor page may be shown.
    pub second_factor_pending: bool,
    /// Where the session was created from.
    pub ip: Option<IpAddr>,
}

/// One session of an account, for the list in "Ustawienia konta".
#[derive(Clone, Debug, PartialEq)]
pub struct ListedSession {
    /// The name the session is stored under (the SHA-256 of its token, never the token):
    /// what the "end this session" button sends back.
    pub id: String,
    pub session: WebSession,
}

/// The stored name of the session whose cookie carries `token` (see [`ListedSession::id`]).
pub fn session_id(token: &str) -> Option<String> {
    token_hash(token)
}

/// A session store failed.
#[derive(Debug, thiserror::Error)]
pub enum WebSessionError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored session is unreadable: {0}")]
    Corrupt(String),
}

/// Server-side sessions of the panel.
#[async_trait]
pub trait WebSessionStore: Send + Sync {
    /// Start a session; gives the token for the cookie (32 random bytes as base64url, 43
    /// characters). Only the SHA-256 of the token is stored.
    async fn create(
        &self,
        account_id: i64,
        second_factor_pending: bool,
        ip: Option<IpAddr>,
    ) -> Result<String, WebSessionError>;
    /// The session of a token: `None` when unknown or past its idle or absolute limit (an
    /// expired one is deleted). Writes `last_seen_at` at most once per [`TOUCH_INTERVAL`].
    async fn get(&self, token: &str) -> Result<Option<WebSession>, WebSessionError>;
    /// Second factor passed: replaces the session by one under a new token with
    /// `second_factor_pending = false`; the old token stops working. `None` when the old
    /// session is gone or expired.
    ///
    /// The new session keeps `created_at` (the absolute limit counts from login) and `ip`.
    /// Of two concurrent calls with one token, only one gets a new token.
    async fn promote(&self, token: &str) -> Result<Option<String>, WebSessionError>;
    /// End one session (log out). Unknown tokens are fine.
    async fn delete(&self, token: &str) -> Result<(), WebSessionError>;
    /// "Log out everywhere" / after a password change: ends every session of the account
    /// except the one of token `keep` (a token of another account protects nothing).
    ///
    /// Gives how many sessions were ended.
    async fn delete_all(&self, account_id: i64, keep: Option<&str>)
        -> Result<u64, WebSessionError>;
    /// The account's sessions that have not ended, the most recently active first.
    async fn list(&self, account_id: i64) -> Result<Vec<ListedSession>, WebSessionError>;
    /// End the session stored as `id` ([`ListedSession::id`]) if it is one of the account's;
    /// gives whether it was. Another account's session is never touched.
    async fn end(&self, account_id: i64, id: &str) -> Result<bool, WebSessionError>;
    /// Delete sessions past their idle or absolute limit; gives how many. Call periodically
    /// (SQL). In Redis keys expire by themselves; this removes what the stored times say has
    /// ended before the TTL did, and cleans the per-account sets.
    async fn purge_expired(&self) -> Result<u64, WebSessionError>;
    /// This store when it is the SQL one, whose [`SqlWebSessions::get_with_account`] reads the
    /// session and its account (and with it the subscriber's overview) in one query.
    fn as_sql(&self) -> Option<&SqlWebSessions> {
        None
    }
}

/// Where "now" comes from.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// A new random token and the hash to store.
fn new_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let token = base64url(&bytes);
    let hash = stored_hash(&token);
    (token, hash)
}

/// The stored name of a token; `None` for text that cannot be one of ours (no lookup needed).
fn token_hash(token: &str) -> Option<String> {
    let ok = token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| stored_hash(token))
}

/// The listed sessions that have not ended, most recently active first.
fn listed(
    policy: &SessionPolicy,
    now: i64,
    found: impl IntoIterator<Item = (String, Stored)>,
) -> Vec<ListedSession> {
    let mut out: Vec<(i64, ListedSession)> = found
        .into_iter()
        .filter(|(_, s)| !policy.expired(s, now))
        .map(|(id, s)| {
            let session = s.public();
            (s.last_seen, ListedSession { id, session })
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    out.into_iter().map(|(_, l)| l).collect()
}

/// A session as stored (times in unix seconds).
#[derive(Clone, Debug)]
struct Stored {
    account_id: i64,
    created: i64,
    last_seen: i64,
    pending: bool,
    ip: Option<IpAddr>,
}

impl Stored {
    fn public(&self) -> WebSession {
        WebSession {
            account_id: self.account_id,
            created_at: from_ts(self.created),
            last_seen_at: from_ts(self.last_seen),
            second_factor_pending: self.pending,
            ip: self.ip,
        }
    }

    /// Whether a read at `now` should write `last_seen`.
    fn needs_touch(&self, now: i64) -> bool {
        now - self.last_seen >= TOUCH_INTERVAL.as_secs() as i64
    }
}
