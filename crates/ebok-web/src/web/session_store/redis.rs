//! Panel sessions in Redis, shared by every instance.

use std::net::IpAddr;
use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;
use ebok_live::redis_link::{LinkOptions, RedisLink, RedisTarget};

// The SHA-256 hex a token is stored under (as every other token of the panel).
use super::{
    listed, new_token, system_clock, token_hash, Clock, ListedSession, SessionPolicy, Stored,
    WebSession, WebSessionError, WebSessionStore,
};

/// Sessions in Redis, shared by every instance.
///
/// Keys (`T` = `{PREFIXws}`, one hash tag): `T:s:HASH` is a hash (`a` account id, `c`
/// created, `l` last seen, `p` 0/1 second factor pending, `i` IP or empty) whose TTL is the
/// time left until the idle or absolute limit, whichever comes first (renewed when
/// `last_seen` is written); `T:a:ID` is the set of an account's session hashes, for "log out
/// everywhere", living as long as its longest possible session; `T:accounts` is the set of
/// the account ids that may have such a set, which purging walks. Creation, promotion,
/// touching and "log out everywhere" are Lua scripts. The stored times are checked on every
/// read too, so the store's clock rules even when the TTL has not run out yet.
///
/// Redis Cluster: the scripts touch a session, its account set and the account list
/// together, so every key of the store carries the one hash tag and lives in one slot (one
/// node serves the panel's sessions, a small load).
#[derive(Clone)]
pub(crate) struct RedisWebSessions {
    conn: RedisLink,
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

/// Write a session and register it with its account (and the account in the list).
/// KEYS: session, account set, account list. ARGV: a c l p i ttl member set_ttl.
const LUA_PUT: &str = r#"
local function put(key, set, list, a, c, l, p, i, ttl, member, set_ttl)
  redis.call('HSET', key, 'a', a, 'c', c, 'l', l, 'p', p, 'i', i)
  redis.call('EXPIRE', key, ttl)
  redis.call('SADD', set, member)
  if redis.call('TTL', set) < tonumber(set_ttl) then
    redis.call('EXPIRE', set, set_ttl)
  end
  redis.call('SADD', list, a)
end
"#;

static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_PUT}{}",
        r#"
put(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
    ARGV[8])
return 1
"#
    ))
});

/// KEYS: old session, new session, account set, account list. ARGV: old member, then as
/// [`CREATE`]. 0 when the old session is already gone (so only one caller wins).
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_PUT}{}",
        r#"
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('SREM', KEYS[3], ARGV[1])
put(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
    ARGV[9])
return 1
"#
    ))
});

/// KEYS: account set, account list. ARGV: account id. Takes the account off the list when
/// its set is gone (in one step, so a session created meanwhile keeps it listed).
static UNLIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return 1
"#,
    )
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

/// KEYS: account set. ARGV: member to keep ('' none), session key prefix (the sessions are
/// in the set's slot). Gives the number of sessions deleted.
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
    /// Connect to `target`; every key starts with `{` and `prefix` (e.g. `ebok:`).
    pub async fn connect(
        target: &RedisTarget,
        prefix: &str,
        policy: SessionPolicy,
    ) -> Result<Self, WebSessionError> {
        Ok(RedisWebSessions {
            conn: target.connect(LinkOptions::default()).await?,
            prefix: format!("{{{prefix}ws}}:"),
            policy,
            now: system_clock(),
        })
    }

    /// Take "now" from `now` instead of the system clock (tests). Key TTLs stay real
    /// seconds computed from it.
    #[cfg(test)]
    pub fn with_clock(mut self, now: Clock) -> Self {
        self.now = now;
        self
    }

    fn now(&self) -> i64 {
        (self.now)().unix_timestamp()
    }

    fn session_key(&self, hash: &str) -> String {
        format!("{}s:{hash}", self.prefix)
    }

    fn account_key(&self, account_id: i64) -> String {
        format!("{}a:{account_id}", self.prefix)
    }

    fn account_list(&self) -> String {
        format!("{}accounts", self.prefix)
    }

    /// Seconds a key written at `now` should live (at least one: EXPIRE 0 deletes).
    fn ttl(&self, s: &Stored, now: i64) -> i64 {
        (self.policy.deadline(s.created, s.last_seen) - now).max(1)
    }

    fn set_ttl(&self, s: &Stored, now: i64) -> i64 {
        (s.created.saturating_add(self.policy.absolute_secs()) - now).max(1)
    }

    /// Arguments of [`CREATE`] after the keys.
    fn put_args(&self, inv: &mut ::redis::ScriptInvocation<'_>, hash: &str, s: &Stored, now: i64) {
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
        let fields: Vec<Option<String>> = ::redis::cmd("HMGET")
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
        let (deleted, _): (u64, u64) = ::redis::pipe()
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
            .key(self.account_key(account_id))
            .key(self.account_list());
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
            .key(self.account_list())
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
        let account: Option<i64> = ::redis::cmd("HGET")
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
            .arg(format!("{}s:", self.prefix))
            .invoke_async(&mut conn)
            .await?;
        Ok(n)
    }

    async fn list(&self, account_id: i64) -> Result<Vec<ListedSession>, WebSessionError> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = ::redis::cmd("SMEMBERS")
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
        let accounts: Vec<i64> = ::redis::cmd("SMEMBERS")
            .arg(self.account_list())
            .query_async(&mut conn)
            .await?;
        let mut purged = 0;
        for account_id in accounts {
            let set = self.account_key(account_id);
            let members: Vec<String> = ::redis::cmd("SMEMBERS")
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
                        ::redis::cmd("SREM")
                            .arg(&set)
                            .arg(&hash)
                            .query_async::<u64>(&mut conn)
                            .await?;
                    }
                }
            }
            let _: i64 = UNLIST
                .key(&set)
                .key(self.account_list())
                .arg(account_id)
                .invoke_async(&mut conn)
                .await?;
        }
        Ok(purged)
    }
}
