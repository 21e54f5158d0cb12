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

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::OsRng;
use rand::RngCore;
use redis::aio::ConnectionManager;
use redis::Script;
use time::OffsetDateTime;

// The SHA-256 hex a token is stored under (as every other token of the panel).
use crate::store::auth::token_hash as stored_hash;
use crate::store::panel::{self, AccountView};
use crate::store::repo::{from_ts, Cols, RowGet};
use crate::store::Db;
use crate::{on_pool, on_tx};

/// `last_seen_at` is written at most this often per session.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

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
    Redis(#[from] redis::RedisError),
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

/// RFC 4648 §5 base64url without padding.
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
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

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// Sessions in the `web_sessions` table (SQLite or PostgreSQL), for deployments without
/// Redis. Call [`WebSessionStore::purge_expired`] periodically.
#[derive(Clone)]
pub struct SqlWebSessions {
    db: Db,
    policy: SessionPolicy,
    now: Clock,
}

impl std::fmt::Debug for SqlWebSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlWebSessions")
            .field("backend", &self.db.backend())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

const SESSION_COLS: &str = "account_id, created_at, last_seen_at, second_factor_pending, ip";

fn read_stored<R: RowGet>(c: &Cols<'_, R>) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        account_id: c.i64("account_id")?,
        created: c.i64("created_at")?,
        last_seen: c.i64("last_seen_at")?,
        pending: c.boolean("second_factor_pending")?,
        ip: c.opt_parse("ip")?,
    })
}

impl SqlWebSessions {
    pub fn new(db: Db, policy: SessionPolicy) -> Self {
        SqlWebSessions {
            db,
            policy,
            now: system_clock(),
        }
    }

    /// Take "now" from `now` instead of the system clock (tests).
    pub fn with_clock(mut self, now: Clock) -> Self {
        self.now = now;
        self
    }

    fn now(&self) -> i64 {
        (self.now)().unix_timestamp()
    }

    /// A stored session as read at this moment: `None` (and deleted) when expired;
    /// `last_seen_at` written when due.
    async fn settle(&self, hash: &str, mut s: Stored) -> Result<Option<Stored>, WebSessionError> {
        let now = self.now();
        if self.policy.expired(&s, now) {
            self.delete_hash(hash).await?;
            return Ok(None);
        }
        if s.needs_touch(now) {
            let sql = "UPDATE web_sessions SET last_seen_at = $1 \
                       WHERE id_hash = $2 AND last_seen_at < $1";
            on_pool!(&self.db, pool => {
                sqlx::query(sql).bind(now).bind(hash).execute(pool).await?;
            });
            s.last_seen = now;
        }
        Ok(Some(s))
    }

    /// [`WebSessionStore::get`] and the session's [`AccountView`] for a caller on the line
    /// with PPPoE login `line_login` (with `overview`, the subscriber's too) in one query;
    /// `None` beside the session when the account is gone. The same expiry, deletion and
    /// touching as `get`.
    pub async fn get_with_account(
        &self,
        token: &str,
        line_login: Option<&str>,
        overview: bool,
    ) -> Result<Option<(WebSession, Option<AccountView>)>, WebSessionError> {
        static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
            let session = SESSION_COLS
                .split(", ")
                .map(|c| format!("ws.{c} AS {c},"))
                .collect::<Vec<_>>()
                .join(" ");
            [false, true].map(|o| {
                panel::account_view_sql(
                    &session,
                    "web_sessions ws LEFT JOIN panel_accounts a ON a.id = ws.account_id",
                    "ws.id_hash = $1",
                    o,
                )
            })
        });
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        let found = on_pool!(&self.db, pool => {
            let rows = sqlx::query(SQL[usize::from(overview)].as_str())
                .bind(&hash)
                .bind(line_login)
                .fetch_all(pool)
                .await?;
            match rows.first() {
                None => None,
                Some(first) => Some((
                    read_stored(&Cols::new(first))?,
                    panel::read_account_view(&rows, overview)?,
                )),
            }
        });
        let Some((stored, view)) = found else {
            return Ok(None);
        };
        Ok(self
            .settle(&hash, stored)
            .await?
            .map(|s| (s.public(), view)))
    }

    async fn delete_hash(&self, hash: &str) -> Result<u64, WebSessionError> {
        let sql = "DELETE FROM web_sessions WHERE id_hash = $1";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(hash)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}

#[async_trait]
impl WebSessionStore for SqlWebSessions {
    async fn create(
        &self,
        account_id: i64,
        second_factor_pending: bool,
        ip: Option<IpAddr>,
    ) -> Result<String, WebSessionError> {
        let (token, hash) = new_token();
        let now = self.now();
        let sql = format!(
            "INSERT INTO web_sessions (id_hash, {SESSION_COLS}) VALUES ($1, $2, $3, $3, $4, $5)"
        );
        let ip = ip.map(|ip| ip.to_string());
        on_pool!(&self.db, pool => {
            sqlx::query(&sql)
                .bind(&hash)
                .bind(account_id)
                .bind(now)
                .bind(second_factor_pending)
                .bind(&ip)
                .execute(pool)
                .await?;
        });
        Ok(token)
    }

    async fn get(&self, token: &str) -> Result<Option<WebSession>, WebSessionError> {
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        let sql = format!("SELECT {SESSION_COLS} FROM web_sessions WHERE id_hash = $1");
        let stored = on_pool!(&self.db, pool => sqlx::query(&sql)
            .bind(&hash)
            .fetch_optional(pool)
            .await?
            .map(|r| read_stored(&Cols::new(&r)))
            .transpose()?);
        let Some(s) = stored else {
            return Ok(None);
        };
        Ok(self.settle(&hash, s).await?.map(|s| s.public()))
    }

    async fn promote(&self, token: &str) -> Result<Option<String>, WebSessionError> {
        let Some(old_hash) = token_hash(token) else {
            return Ok(None);
        };
        let now = self.now();
        let (new, new_hash) = new_token();
        let delete =
            format!("DELETE FROM web_sessions WHERE id_hash = $1 RETURNING {SESSION_COLS}");
        let insert = format!(
            "INSERT INTO web_sessions (id_hash, {SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        );
        let mut tx = self.db.begin().await?;
        // Deleting first makes the old token single-use: a concurrent promote finds no row.
        let promoted = on_tx!(&mut tx, conn => {
            let old = sqlx::query(&delete)
                .bind(&old_hash)
                .fetch_optional(&mut **conn)
                .await?
                .map(|r| read_stored(&Cols::new(&r)))
                .transpose()?;
            match old {
                Some(s) if !self.policy.expired(&s, now) => {
                    sqlx::query(&insert)
                        .bind(&new_hash)
                        .bind(s.account_id)
                        .bind(s.created)
                        .bind(now)
                        .bind(false)
                        .bind(s.ip.map(|ip| ip.to_string()))
                        .execute(&mut **conn)
                        .await?;
                    true
                }
                _ => false,
            }
        });
        tx.commit().await?;
        Ok(promoted.then_some(new))
    }

    async fn delete(&self, token: &str) -> Result<(), WebSessionError> {
        if let Some(hash) = token_hash(token) {
            self.delete_hash(&hash).await?;
        }
        Ok(())
    }

    async fn delete_all(
        &self,
        account_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, WebSessionError> {
        let keep = keep.and_then(token_hash).unwrap_or_default();
        let sql = "DELETE FROM web_sessions WHERE account_id = $1 AND id_hash <> $2";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(account_id)
            .bind(&keep)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    async fn list(&self, account_id: i64) -> Result<Vec<ListedSession>, WebSessionError> {
        let sql = format!("SELECT id_hash, {SESSION_COLS} FROM web_sessions WHERE account_id = $1");
        let found = on_pool!(&self.db, pool => {
            let mut found = Vec::new();
            for r in sqlx::query(&sql).bind(account_id).fetch_all(pool).await? {
                let c = Cols::new(&r);
                found.push((c.text("id_hash")?, read_stored(&c)?));
            }
            found
        });
        Ok(listed(&self.policy, self.now(), found))
    }

    async fn end(&self, account_id: i64, id: &str) -> Result<bool, WebSessionError> {
        let sql = "DELETE FROM web_sessions WHERE account_id = $1 AND id_hash = $2";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(account_id)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected())
            > 0)
    }

    async fn purge_expired(&self) -> Result<u64, WebSessionError> {
        let now = self.now();
        let sql = "DELETE FROM web_sessions WHERE last_seen_at <= $1 OR created_at <= $2";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now.saturating_sub(self.policy.idle_secs()))
            .bind(now.saturating_sub(self.policy.absolute_secs()))
            .execute(pool)
            .await?
            .rows_affected()))
    }

    fn as_sql(&self) -> Option<&SqlWebSessions> {
        Some(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// Sessions in Redis, shared by every instance.
///
/// Keys (`P` = the prefix): `P ws:HASH` is a hash (`a` account id, `c` created, `l` last seen,
/// `p` 0/1 second factor pending, `i` IP or empty) whose TTL is the time left until the idle
/// or absolute limit, whichever comes first (renewed when `last_seen` is written); `P wsa:ID`
/// is the set of an account's session hashes, for "log out everywhere", living as long as its
/// longest possible session. Promotion, touching and "log out everywhere" are Lua scripts.
/// The stored times are checked on every read too, so the store's clock rules even when the
/// TTL has not run out yet. Redis Cluster: the scripts touch a session key and its account
/// set together, so the prefix needs a hash tag (`{ebok}:`).
#[derive(Clone)]
pub struct RedisWebSessions {
    conn: ConnectionManager,
    prefix: String,
    policy: SessionPolicy,
    now: Clock,
}

impl std::fmt::Debug for RedisWebSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWebSessions")
            .field("prefix", &self.prefix)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Write a session and register it with its account.
/// KEYS: session, account set. ARGV: a c l p i ttl member set_ttl.
const LUA_PUT: &str = r#"
local function put(key, set, a, c, l, p, i, ttl, member, set_ttl)
  redis.call('HSET', key, 'a', a, 'c', c, 'l', l, 'p', p, 'i', i)
  redis.call('EXPIRE', key, ttl)
  redis.call('SADD', set, member)
  if redis.call('TTL', set) < tonumber(set_ttl) then
    redis.call('EXPIRE', set, set_ttl)
  end
end
"#;

static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_PUT}{}",
        r#"
put(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
return 1
"#
    ))
});

/// KEYS: old session, new session, account set. ARGV: old member, then as [`CREATE`].
/// 0 when the old session is already gone (so only one caller wins).
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_PUT}{}",
        r#"
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('SREM', KEYS[3], ARGV[1])
put(KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
return 1
"#
    ))
});

/// KEYS: session. ARGV: last seen, ttl. Never recreates a deleted session.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local l = redis.call('HGET', KEYS[1], 'l')
if not l then
  return 0
end
if tonumber(l) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'l', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"#,
    )
});

/// KEYS: account set. ARGV: member to keep ('' none), session key prefix. Gives the number
/// of sessions deleted.
static DELETE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if m ~= ARGV[1] then
    n = n + redis.call('DEL', ARGV[2] .. m)
    redis.call('SREM', KEYS[1], m)
  end
end
return n
"#,
    )
});

impl RedisWebSessions {
    /// Connect to `url` (`redis://…`); every key starts with `prefix` (e.g. `ebok:`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        policy: SessionPolicy,
    ) -> Result<Self, WebSessionError> {
        Ok(RedisWebSessions {
            conn: super::ratelimit::redis_connection(url).await?,
            prefix: prefix.to_owned(),
            policy,
            now: system_clock(),
        })
    }

    /// Take "now" from `now` instead of the system clock (tests). Key TTLs stay real
    /// seconds computed from it.
    pub fn with_clock(mut self, now: Clock) -> Self {
        self.now = now;
        self
    }

    fn now(&self) -> i64 {
        (self.now)().unix_timestamp()
    }

    fn session_key(&self, hash: &str) -> String {
        format!("{}ws:{hash}", self.prefix)
    }

    fn account_key(&self, account_id: i64) -> String {
        format!("{}wsa:{account_id}", self.prefix)
    }

    /// Seconds a key written at `now` should live (at least one: EXPIRE 0 deletes).
    fn ttl(&self, s: &Stored, now: i64) -> i64 {
        (self.policy.deadline(s.created, s.last_seen) - now).max(1)
    }

    fn set_ttl(&self, s: &Stored, now: i64) -> i64 {
        (s.created.saturating_add(self.policy.absolute_secs()) - now).max(1)
    }

    /// Arguments of [`CREATE`] after the keys.
    fn put_args(&self, inv: &mut redis::ScriptInvocation<'_>, hash: &str, s: &Stored, now: i64) {
        inv.arg(s.account_id)
            .arg(s.created)
            .arg(s.last_seen)
            .arg(u8::from(s.pending))
            .arg(s.ip.map(|ip| ip.to_string()).unwrap_or_default())
            .arg(self.ttl(s, now))
            .arg(hash)
            .arg(self.set_ttl(s, now));
    }

    async fn load(&self, hash: &str) -> Result<Option<Stored>, WebSessionError> {
        let mut conn = self.conn.clone();
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.session_key(hash))
            .arg(&["a", "c", "l", "p", "i"])
            .query_async(&mut conn)
            .await?;
        let [a, c, l, p, i] = &fields[..] else {
            return Err(WebSessionError::Corrupt(format!("{fields:?}")));
        };
        let Some(a) = a else {
            return Ok(None);
        };
        let bad = || WebSessionError::Corrupt(format!("{fields:?}"));
        let int = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
        let ip = match i.as_deref() {
            None | Some("") => None,
            Some(text) => Some(text.parse().map_err(|_| bad())?),
        };
        Ok(Some(Stored {
            account_id: a.parse().map_err(|_| bad())?,
            created: int(c).ok_or_else(bad)?,
            last_seen: int(l).ok_or_else(bad)?,
            pending: p.as_deref() == Some("1"),
            ip,
        }))
    }

    /// Delete one session and its entry in the account set.
    async fn remove(&self, hash: &str, account_id: i64) -> Result<u64, WebSessionError> {
        let mut conn = self.conn.clone();
        let (deleted, _): (u64, u64) = redis::pipe()
            .atomic()
            .del(self.session_key(hash))
            .srem(self.account_key(account_id), hash)
            .query_async(&mut conn)
            .await?;
        Ok(deleted)
    }
}

#[async_trait]
impl WebSessionStore for RedisWebSessions {
    async fn create(
        &self,
        account_id: i64,
        second_factor_pending: bool,
        ip: Option<IpAddr>,
    ) -> Result<String, WebSessionError> {
        let (token, hash) = new_token();
        let now = self.now();
        let s = Stored {
            account_id,
            created: now,
            last_seen: now,
            pending: second_factor_pending,
            ip,
        };
        let mut inv = CREATE.prepare_invoke();
        inv.key(self.session_key(&hash))
            .key(self.account_key(account_id));
        self.put_args(&mut inv, &hash, &s, now);
        let mut conn = self.conn.clone();
        let _: i64 = inv.invoke_async(&mut conn).await?;
        Ok(token)
    }

    async fn get(&self, token: &str) -> Result<Option<WebSession>, WebSessionError> {
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        let Some(mut s) = self.load(&hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        if self.policy.expired(&s, now) {
            self.remove(&hash, s.account_id).await?;
            return Ok(None);
        }
        if s.needs_touch(now) {
            s.last_seen = now;
            let mut conn = self.conn.clone();
            let alive: i64 = TOUCH
                .key(self.session_key(&hash))
                .arg(now)
                .arg(self.ttl(&s, now))
                .invoke_async(&mut conn)
                .await?;
            if alive == 0 {
                return Ok(None);
            }
        }
        Ok(Some(s.public()))
    }

    async fn promote(&self, token: &str) -> Result<Option<String>, WebSessionError> {
        let Some(old_hash) = token_hash(token) else {
            return Ok(None);
        };
        let Some(old) = self.load(&old_hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        if self.policy.expired(&old, now) {
            self.remove(&old_hash, old.account_id).await?;
            return Ok(None);
        }
        let (token, hash) = new_token();
        let s = Stored {
            last_seen: now,
            pending: false,
            ..old
        };
        let mut inv = PROMOTE.prepare_invoke();
        inv.key(self.session_key(&old_hash))
            .key(self.session_key(&hash))
            .key(self.account_key(s.account_id))
            .arg(&old_hash);
        self.put_args(&mut inv, &hash, &s, now);
        let mut conn = self.conn.clone();
        let done: i64 = inv.invoke_async(&mut conn).await?;
        Ok((done == 1).then_some(token))
    }

    async fn delete(&self, token: &str) -> Result<(), WebSessionError> {
        let Some(hash) = token_hash(token) else {
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let account: Option<i64> = redis::cmd("HGET")
            .arg(self.session_key(&hash))
            .arg("a")
            .query_async(&mut conn)
            .await?;
        match account {
            Some(a) => self.remove(&hash, a).await.map(|_| ()),
            None => Ok(()),
        }
    }

    async fn delete_all(
        &self,
        account_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, WebSessionError> {
        let keep = keep.and_then(token_hash).unwrap_or_default();
        let mut conn = self.conn.clone();
        let n: u64 = DELETE_ALL
            .key(self.account_key(account_id))
            .arg(keep)
            .arg(format!("{}ws:", self.prefix))
            .invoke_async(&mut conn)
            .await?;
        Ok(n)
    }

    async fn list(&self, account_id: i64) -> Result<Vec<ListedSession>, WebSessionError> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.account_key(account_id))
            .query_async(&mut conn)
            .await?;
        let mut found = Vec::with_capacity(members.len());
        for hash in members {
            // A member whose key expired is left for `purge_expired` to drop.
            if let Some(s) = self.load(&hash).await? {
                if s.account_id == account_id {
                    found.push((hash, s));
                }
            }
        }
        Ok(listed(&self.policy, self.now(), found))
    }

    async fn end(&self, account_id: i64, id: &str) -> Result<bool, WebSessionError> {
        // Only a well-formed hash names a key (no other key can be reached through `id`).
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        match self.load(id).await? {
            Some(s) if s.account_id == account_id => Ok(self.remove(id, account_id).await? > 0),
            _ => Ok(false),
        }
    }

    async fn purge_expired(&self) -> Result<u64, WebSessionError> {
        let now = self.now();
        let mut conn = self.conn.clone();
        let pattern = format!("{}wsa:*", self.prefix);
        let mut sets = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            sets.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut purged = 0;
        for set in sets {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(&set)
                .query_async(&mut conn)
                .await?;
            for hash in members {
                match self.load(&hash).await? {
                    Some(s) if self.policy.expired(&s, now) => {
                        purged += self.remove(&hash, s.account_id).await?;
                    }
                    Some(_) => {}
                    // Expired by TTL: drop the dangling set entry.
                    None => {
                        redis::cmd("SREM")
                            .arg(&set)
                            .arg(&hash)
                            .query_async::<u64>(&mut conn)
                            .await?;
                    }
                }
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::store::panel::create_panel_account;
    use crate::store::subscribers::{
        subscriber_by_ext_id, upsert_subscriber, Address, SubscriberKind, SubscriberRecord,
    };
    use crate::testkit::FreshPg;

    const MIN: i64 = 60;
    const HOUR: i64 = 3600;

    /// A clock the test moves by hand; starts at the real time so Redis TTLs are sensible.
    #[derive(Clone)]
    struct TestClock(Arc<AtomicI64>);

    impl TestClock {
        fn new() -> Self {
            TestClock(Arc::new(AtomicI64::new(
                OffsetDateTime::now_utc().unix_timestamp(),
            )))
        }

        fn source(&self) -> Clock {
            let t = self.0.clone();
            Arc::new(move || from_ts(t.load(Ordering::SeqCst)))
        }

        fn advance(&self, secs: i64) {
            self.0.fetch_add(secs, Ordering::SeqCst);
        }

        fn now(&self) -> OffsetDateTime {
            from_ts(self.0.load(Ordering::SeqCst))
        }
    }

    enum Backend {
        Sql {
            db: Db,
            _dir: Option<tempfile::TempDir>,
            pg: Option<FreshPg>,
        },
        Redis {
            url: String,
            prefix: String,
        },
    }

    /// One store under test, its clock, two panel accounts and a way to look inside.
    struct Harness {
        store: Box<dyn WebSessionStore>,
        clock: TestClock,
        accounts: [i64; 2],
        backend: Backend,
    }

    async fn make_account(db: &Db, n: i64) -> i64 {
        let rec = SubscriberRecord {
            ext_id: format!("S{n}"),
            kind: SubscriberKind::Person,
            first_name: Some("Jan".into()),
            last_name: Some(format!("Kowalski {n}")),
            company_name: None,
            pesel: None,
            nip: None,
            home: Address {
                street: "ul. Internetowa 1".into(),
                postcode: "30-001".into(),
                city: "Kraków".into(),
            },
            correspondence: None,
            phone: None,
            email: None,
            bank_account: None,
        };
        let mut tx = db.begin().await.unwrap();
        upsert_subscriber(&mut tx, &rec).await.unwrap();
        tx.commit().await.unwrap();
        let subscriber = subscriber_by_ext_id(db, &rec.ext_id)
            .await
            .unwrap()
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        let id = create_panel_account(
            &mut tx,
            subscriber.id,
            &format!("jan{n}"),
            "$argon2id$not-a-real-hash",
            "jan@example.pl",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    impl Harness {
        async fn sql(db: Db, dir: Option<tempfile::TempDir>, pg: Option<FreshPg>) -> Harness {
            let clock = TestClock::new();
            let accounts = [make_account(&db, 1).await, make_account(&db, 2).await];
            let store = SqlWebSessions::new(db.clone(), SessionPolicy::default())
                .with_clock(clock.source());
            Harness {
                store: Box::new(store),
                clock,
                accounts,
                backend: Backend::Sql { db, _dir: dir, pg },
            }
        }

        async fn sqlite() -> Harness {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
            let db = Db::connect(&url).await.expect("open sqlite");
            Self::sql(db, Some(dir), None).await
        }

        async fn postgres(test: &str) -> Option<Harness> {
            let pg = FreshPg::create(test).await?;
            let db = Db::connect(&pg.url).await.expect("connect postgres");
            Some(Self::sql(db, None, Some(pg)).await)
        }

        async fn redis(test: &str) -> Option<Harness> {
            let url = crate::testkit::redis(test).await?;
            let prefix = crate::testkit::redis_prefix();
            let clock = TestClock::new();
            let store = RedisWebSessions::connect(&url, &prefix, SessionPolicy::default())
                .await
                .expect("connect redis")
                .with_clock(clock.source());
            Some(Harness {
                store: Box::new(store),
                clock,
                accounts: [41, 42],
                backend: Backend::Redis { url, prefix },
            })
        }

        async fn redis_conn(url: &str) -> ::redis::aio::MultiplexedConnection {
            ::redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap()
        }

        async fn redis_keys(url: &str, pattern: &str) -> Vec<String> {
            let mut conn = Self::redis_conn(url).await;
            let mut keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.sort();
            keys
        }

        /// Sessions held, expired or not.
        async fn stored(&self) -> usize {
            match &self.backend {
                Backend::Sql { db, .. } => on_pool!(db, pool => {
                    let row = sqlx::query("SELECT COUNT(*) AS n FROM web_sessions")
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    Cols::new(&row).i64("n").unwrap() as usize
                }),
                Backend::Redis { url, prefix } => {
                    Self::redis_keys(url, &format!("{prefix}ws:*")).await.len()
                }
            }
        }

        /// Everything the backend holds about sessions, as text.
        async fn dump(&self) -> String {
            let mut out = String::new();
            match &self.backend {
                Backend::Sql { db, .. } => on_pool!(db, pool => {
                    let sql = "SELECT id_hash || ' ' || CAST(account_id AS TEXT) || ' ' || \
                               CAST(created_at AS TEXT) || ' ' || \
                               CAST(last_seen_at AS TEXT) || ' ' || COALESCE(ip, '') AS line \
                               FROM web_sessions";
                    for row in sqlx::query(sql).fetch_all(pool).await.unwrap() {
                        out.push_str(&Cols::new(&row).text("line").unwrap());
                        out.push('\n');
                    }
                }),
                Backend::Redis { url, prefix } => {
                    let mut conn = Self::redis_conn(url).await;
                    for key in Self::redis_keys(url, &format!("{prefix}*")).await {
                        let kind: String = ::redis::cmd("TYPE")
                            .arg(&key)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        let values: Vec<String> = match kind.as_str() {
                            "hash" => ::redis::cmd("HGETALL"),
                            "set" => ::redis::cmd("SMEMBERS"),
                            other => panic!("unexpected {other} at {key}"),
                        }
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                        let _ = writeln!(out, "{key} {}", values.join(" "));
                    }
                }
            }
            out
        }

        async fn finish(self) {
            match self.backend {
                Backend::Sql { db, pg, .. } => {
                    if let Db::Postgres(p) = &db {
                        p.close().await;
                    }
                    if let Some(pg) = pg {
                        pg.drop_db().await;
                    }
                }
                Backend::Redis { url, prefix } => {
                    crate::testkit::redis_cleanup(&url, &prefix).await;
                }
            }
        }
    }

    /// Generate `sqlite::NAME`, `postgres::NAME` and `::redis::NAME` from `async fn NAME(&Harness)`.
    macro_rules! all_backends {
        ($($name:ident),+ $(,)?) => {
            mod sqlite {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let h = super::Harness::sqlite().await;
                        super::$name(&h).await;
                        h.finish().await;
                    }
                )+
            }
            mod postgres {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let test = concat!(
                            "web::session_store::tests::postgres::", stringify!($name)
                        );
                        let Some(h) = super::Harness::postgres(test).await else {
                            return;
                        };
                        super::$name(&h).await;
                        h.finish().await;
                    }
                )+
            }
            mod redis {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let test = concat!(
                            "web::session_store::tests::redis::", stringify!($name)
                        );
                        let Some(h) = super::Harness::redis(test).await else {
                            return;
                        };
                        super::$name(&h).await;
                        h.finish().await;
                    }
                )+
            }
        };
    }

    all_backends!(
        create_and_get,
        unknown_token,
        idle_expiry,
        absolute_expiry_even_when_active,
        touch_is_throttled,
        promote_rotates_token,
        delete_ends_one,
        delete_all_keeps_one,
        purge_expired_removes_ended,
        token_stored_only_hashed,
        joined_get_matches_get,
        list_and_end_one_of_the_account,
    );

    /// An account lists its own live sessions, newest activity first, and ends one by its
    /// listed id; another account's id ends nothing.
    async fn list_and_end_one_of_the_account(h: &Harness) {
        let [a, b] = h.accounts;
        let old = h.store.create(a, false, ip()).await.unwrap();
        h.clock.advance(2 * MIN);
        let new = h.store.create(a, false, None).await.unwrap();
        let other = h.store.create(b, false, None).await.unwrap();
        let stale = h.store.create(a, false, None).await.unwrap();
        let listed = h.store.list(a).await.unwrap();
        assert_eq!(listed.len(), 3, "{listed:?}");
        let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
        let id = |t: &str| session_id(t).unwrap();
        assert_eq!(ids[2], id(&old), "least recently active last");
        assert_eq!(listed[2].session.ip, ip());
        assert!(!ids.contains(&id(&other).as_str()));
        assert!(
            !ids.iter().any(|i| i.contains(old.as_str())),
            "no token listed"
        );
        // Ending another account's session through this account does nothing.
        assert!(!h.store.end(a, &id(&other)).await.unwrap());
        assert!(h.store.get(&other).await.unwrap().is_some());
        assert!(!h.store.end(a, "../../etc").await.unwrap());
        assert!(h.store.end(a, &id(&new)).await.unwrap());
        assert_eq!(h.store.get(&new).await.unwrap(), None);
        assert!(!h.store.end(a, &id(&new)).await.unwrap(), "already ended");
        assert_eq!(h.store.list(a).await.unwrap().len(), 2);
        // An expired session is not listed.
        h.clock.advance(31 * MIN);
        assert!(h.store.get(&stale).await.unwrap().is_none());
        assert!(h.store.list(a).await.unwrap().is_empty());
        h.store.delete_all(b, None).await.unwrap();
    }

    /// The SQL store's session + account query answers as `get` then the account would.
    async fn joined_get_matches_get(h: &Harness) {
        let Some(sql) = h.store.as_sql() else {
            return; // Redis: the extractor reads the account separately
        };
        let [a, b] = h.accounts;
        let ta = h.store.create(a, false, ip()).await.unwrap();
        let tb = h.store.create(b, true, None).await.unwrap();
        for (token, id) in [(&ta, a), (&tb, b)] {
            for overview in [false, true] {
                let (s, view) = sql
                    .get_with_account(token, None, overview)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(Some(s), h.store.get(token).await.unwrap());
                let view = view.unwrap();
                assert_eq!((view.account.id, view.account.disabled), (id, false));
                assert_eq!(view.line_contract, None);
                assert_eq!(
                    view.overview.map(|o| o.subscriber.id),
                    overview.then_some(view.account.subscriber_id)
                );
            }
        }
        assert!(sql
            .get_with_account("x", None, false)
            .await
            .unwrap()
            .is_none());
        h.store.delete(&ta).await.unwrap();
        assert!(sql
            .get_with_account(&ta, None, true)
            .await
            .unwrap()
            .is_none());
        h.clock.advance(31 * MIN);
        assert!(sql
            .get_with_account(&tb, None, false)
            .await
            .unwrap()
            .is_none());
        assert_eq!(h.stored().await, 0, "the expired session was deleted");
    }

    fn ip() -> Option<IpAddr> {
        Some("2001:db8::7".parse().unwrap())
    }

    async fn create_and_get(h: &Harness) {
        let [a, b] = h.accounts;
        let t0 = h.clock.now();
        let token = h.store.create(a, false, ip()).await.unwrap();
        assert_eq!(token.len(), 43);
        assert!(token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let expected = WebSession {
            account_id: a,
            created_at: t0,
            last_seen_at: t0,
            second_factor_pending: false,
            ip: ip(),
        };
        assert_eq!(h.store.get(&token).await.unwrap(), Some(expected.clone()));

        let other = h.store.create(b, true, None).await.unwrap();
        assert_ne!(other, token);
        let s = h.store.get(&other).await.unwrap().unwrap();
        assert_eq!(
            (s.account_id, s.second_factor_pending, s.ip),
            (b, true, None)
        );
        assert_eq!(h.store.get(&token).await.unwrap(), Some(expected));
        assert_eq!(h.stored().await, 2);
    }

    async fn unknown_token(h: &Harness) {
        let [a, _] = h.accounts;
        let token = h.store.create(a, false, None).await.unwrap();
        let (unknown, _) = new_token();
        let mut bad_char = token.clone();
        bad_char.replace_range(0..1, "+");
        for t in ["", "x", unknown.as_str(), bad_char.as_str(), &token[..42]] {
            assert_eq!(h.store.get(t).await.unwrap(), None, "{t:?}");
            assert_eq!(h.store.promote(t).await.unwrap(), None, "{t:?}");
            h.store.delete(t).await.unwrap();
        }
        assert!(h.store.get(&token).await.unwrap().is_some());
        assert_eq!(h.store.delete_all(h.accounts[1], None).await.unwrap(), 0);
    }

    async fn idle_expiry(h: &Harness) {
        let [a, _] = h.accounts;
        let token = h.store.create(a, false, None).await.unwrap();
        h.clock.advance(30 * MIN - 1);
        assert!(h.store.get(&token).await.unwrap().is_some(), "idle 29:59");
        h.clock.advance(30 * MIN - 1);
        assert!(
            h.store.get(&token).await.unwrap().is_some(),
            "the last use counts"
        );
        h.clock.advance(30 * MIN);
        assert_eq!(h.store.get(&token).await.unwrap(), None, "idle 30:00");
        assert_eq!(
            h.stored().await,
            0,
            "an expired session is deleted on sight"
        );
        assert_eq!(h.store.get(&token).await.unwrap(), None);
    }

    async fn absolute_expiry_even_when_active(h: &Harness) {
        let [a, _] = h.accounts;
        let token = h.store.create(a, false, None).await.unwrap();
        let mut elapsed = 0;
        while elapsed + 20 * MIN < 12 * HOUR {
            h.clock.advance(20 * MIN);
            elapsed += 20 * MIN;
            assert!(h.store.get(&token).await.unwrap().is_some(), "at {elapsed}");
        }
        h.clock.advance(12 * HOUR - elapsed - 1);
        assert!(h.store.get(&token).await.unwrap().is_some(), "11:59:59");
        h.clock.advance(1);
        assert_eq!(h.store.get(&token).await.unwrap(), None, "12:00:00");
        assert_eq!(h.stored().await, 0);
    }

    async fn touch_is_throttled(h: &Harness) {
        let [a, _] = h.accounts;
        let t0 = h.clock.now();
        let token = h.store.create(a, false, None).await.unwrap();
        let seen = |s: Option<WebSession>| s.unwrap().last_seen_at;
        h.clock.advance(30);
        assert_eq!(seen(h.store.get(&token).await.unwrap()), t0);
        h.clock.advance(29);
        assert_eq!(
            seen(h.store.get(&token).await.unwrap()),
            t0,
            "59 s: not written"
        );
        h.clock.advance(1);
        let t60 = h.clock.now();
        assert_eq!(
            seen(h.store.get(&token).await.unwrap()),
            t60,
            "60 s: written"
        );
        h.clock.advance(59);
        assert_eq!(seen(h.store.get(&token).await.unwrap()), t60);

        // A read that did not write does not extend the idle limit.
        let quiet = h.store.create(a, false, None).await.unwrap();
        h.clock.advance(59);
        assert!(h.store.get(&quiet).await.unwrap().is_some());
        h.clock.advance(30 * MIN - 59);
        assert_eq!(h.store.get(&quiet).await.unwrap(), None);
    }

    async fn promote_rotates_token(h: &Harness) {
        let [a, _] = h.accounts;
        let t0 = h.clock.now();
        let old = h.store.create(a, true, ip()).await.unwrap();
        assert!(
            h.store
                .get(&old)
                .await
                .unwrap()
                .unwrap()
                .second_factor_pending
        );
        h.clock.advance(10);
        let new = h.store.promote(&old).await.unwrap().expect("promoted");
        assert_ne!(new, old);
        assert_eq!(h.store.get(&old).await.unwrap(), None, "old token dead");
        assert_eq!(
            h.store.promote(&old).await.unwrap(),
            None,
            "old token single-use"
        );
        assert_eq!(
            h.store.get(&new).await.unwrap(),
            Some(WebSession {
                account_id: a,
                created_at: t0,
                last_seen_at: t0 + time::Duration::seconds(10),
                second_factor_pending: false,
                ip: ip(),
            })
        );
        assert_eq!(h.stored().await, 1);
        // delete_all finds the promoted session under its account.
        assert_eq!(h.store.delete_all(a, None).await.unwrap(), 1);

        // Expired sessions are not promoted.
        let stale = h.store.create(a, true, None).await.unwrap();
        h.clock.advance(30 * MIN);
        assert_eq!(h.store.promote(&stale).await.unwrap(), None);
        assert_eq!(h.stored().await, 0);

        // Two concurrent promotions of one token: one wins.
        let once = h.store.create(a, true, None).await.unwrap();
        let (p1, p2) = tokio::join!(h.store.promote(&once), h.store.promote(&once));
        let winners = [p1.unwrap(), p2.unwrap()];
        assert_eq!(winners.iter().flatten().count(), 1, "{winners:?}");
        assert_eq!(h.stored().await, 1);
    }

    async fn delete_ends_one(h: &Harness) {
        let [a, _] = h.accounts;
        let one = h.store.create(a, false, None).await.unwrap();
        let two = h.store.create(a, false, None).await.unwrap();
        h.store.delete(&one).await.unwrap();
        assert_eq!(h.store.get(&one).await.unwrap(), None);
        assert!(h.store.get(&two).await.unwrap().is_some());
        h.store.delete(&one).await.unwrap();
        assert_eq!(h.stored().await, 1);
    }

    async fn delete_all_keeps_one(h: &Harness) {
        let [a, b] = h.accounts;
        let s1 = h.store.create(a, false, None).await.unwrap();
        let s2 = h.store.create(a, false, None).await.unwrap();
        let s3 = h.store.create(a, true, None).await.unwrap();
        let other = h.store.create(b, false, None).await.unwrap();
        assert_eq!(h.store.delete_all(a, Some(&s1)).await.unwrap(), 2);
        assert!(h.store.get(&s1).await.unwrap().is_some(), "kept");
        assert_eq!(h.store.get(&s2).await.unwrap(), None);
        assert_eq!(h.store.get(&s3).await.unwrap(), None);
        assert!(
            h.store.get(&other).await.unwrap().is_some(),
            "other account"
        );
        // Keeping another account's token protects nothing of this one.
        assert_eq!(h.store.delete_all(a, Some(&other)).await.unwrap(), 1);
        assert_eq!(h.store.get(&s1).await.unwrap(), None);
        assert_eq!(h.store.delete_all(b, None).await.unwrap(), 1);
        assert_eq!(h.store.delete_all(b, None).await.unwrap(), 0);
        assert_eq!(h.stored().await, 0);
    }

    async fn purge_expired_removes_ended(h: &Harness) {
        let [a, b] = h.accounts;
        let idle = h.store.create(a, false, None).await.unwrap();
        let busy = h.store.create(b, false, None).await.unwrap();
        h.clock.advance(20 * MIN);
        let fresh = h.store.create(a, false, None).await.unwrap();
        assert!(h.store.get(&busy).await.unwrap().is_some());
        h.clock.advance(10 * MIN);
        assert_eq!(h.store.purge_expired().await.unwrap(), 1, "idle for 30 min");
        assert_eq!(h.stored().await, 2);
        assert_eq!(h.store.purge_expired().await.unwrap(), 0);
        assert!(h.store.get(&fresh).await.unwrap().is_some());
        assert_eq!(h.store.get(&idle).await.unwrap(), None);

        // Active until the absolute limit passes: purged then, too.
        let mut elapsed = 30 * MIN;
        while elapsed < 12 * HOUR {
            h.clock.advance(10 * MIN);
            elapsed += 10 * MIN;
            if elapsed < 12 * HOUR {
                assert!(h.store.get(&busy).await.unwrap().is_some());
            }
        }
        // `fresh` went idle long ago, `busy` reached 12 h.
        assert_eq!(h.store.purge_expired().await.unwrap(), 2);
        assert_eq!(h.stored().await, 0);
    }

    async fn token_stored_only_hashed(h: &Harness) {
        let [a, _] = h.accounts;
        let first = h.store.create(a, true, ip()).await.unwrap();
        let promoted = h.store.promote(&first).await.unwrap().unwrap();
        let plain = h.store.create(a, false, None).await.unwrap();
        let dump = h.dump().await;
        for token in [&promoted, &plain] {
            assert!(!dump.contains(token.as_str()), "raw token stored:\n{dump}");
            assert!(dump.contains(&stored_hash(token)), "hash missing:\n{dump}");
        }
        assert!(
            !dump.contains(&stored_hash(&first)),
            "old session left:\n{dump}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_keys_expire_by_themselves() {
        let Some(h) = Harness::redis("web::session_store::tests::redis_keys_expire").await else {
            return;
        };
        let Backend::Redis { url, prefix } = &h.backend else {
            unreachable!()
        };
        let token = h.store.create(7, false, None).await.unwrap();
        let mut conn = Harness::redis_conn(url).await;
        let ttl = |key: String| {
            let mut conn = conn.clone();
            async move {
                ::redis::cmd("TTL")
                    .arg(key)
                    .query_async::<i64>(&mut conn)
                    .await
                    .unwrap()
            }
        };
        let session = format!("{prefix}ws:{}", stored_hash(&token));
        let set = format!("{prefix}wsa:7");
        assert!((1795..=1800).contains(&ttl(session.clone()).await));
        assert!((12 * HOUR - 5..=12 * HOUR).contains(&ttl(set.clone()).await));
        // Touched 11 h 50 min later: the TTL is what is left of the absolute limit.
        for _ in 0..71 {
            h.clock.advance(10 * MIN);
            assert!(h.store.get(&token).await.unwrap().is_some());
        }
        assert!((595..=600).contains(&ttl(session.clone()).await));
        // An expired member's key vanished by TTL: purge drops it from the account set.
        let _: i64 = ::redis::cmd("DEL")
            .arg(&session)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(h.store.purge_expired().await.unwrap(), 0);
        let members: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(&set)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(members.is_empty());
        h.finish().await;
    }

    #[test]
    fn base64url_vectors() {
        // RFC 4648 §10, without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(plain.as_bytes()), encoded);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        let (token, hash) = new_token();
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(token_hash(&token), Some(hash));
    }
}
