//! Rate limits for login, registration and recovery: in memory (one instance) or in Redis (shared).
//!
//! # Algorithm: sliding log
//! Both implementations keep, per key, the times of the attempts allowed within the last
//! `window`. An attempt is allowed while fewer than `limit` of them are inside the window; a
//! refused attempt is **not** recorded, so a client that keeps hammering gets in again
//! exactly when its oldest counted attempt leaves the window (`retry_after` says when), and
//! the log of a key never holds more than `limit` times. Unlike a fixed window there is no
//! boundary at which twice the limit gets through.
//!
//! Keys are the caller's business (`login:ip:203.0.113.7`, `login:user:jan`, …). Key
//! IPv6 callers by their /64, or one client can make itself any number of keys.
//!
//! # Reserve before the slow check
//! A limit that is checked, then guards slow work (argon2, a TOTP check), and only then
//! records a failure can be raced: simultaneous requests all pass the check. So there is no
//! "check" here: [`reserve`] counts the attempt atomically before the slow work (one locked
//! step in memory, one script in Redis), and the caller gives it back
//! ([`Reserved::give_back`]) when the attempt turned out fine.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ebok_live::redis_link::{LinkOptions, RedisLink, RedisTarget};
use redis::Script;
use tokio::time::Instant;

/// At most `limit` attempts per `window`.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub limit: u32,
    pub window: Duration,
}

/// The answer for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go ahead; `remaining` more attempts fit in the window after this one.
    Allowed { remaining: u32 },
    /// Refused; an attempt will be allowed again after `retry_after` (at most the window).
    Limited { retry_after: Duration },
}

impl Decision {
    pub(crate) fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// A rate limiter backend failed (memory never does).
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from the rate-limit script: {0}")]
    Reply(String),
}

/// Counts attempts per key. See the module documentation for the algorithm.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Count one attempt under `key` and say whether it is allowed. Sliding log (see the
    /// module documentation): a refused attempt is not counted.
    async fn hit(&self, key: &str, rule: Rule) -> Result<Decision, RateLimitError>;
    /// Uncount the newest attempt under `key` (one [`RateLimiter::hit`] allowed that turned
    /// out not to be a failure).
    async fn give_back(&self, key: &str) -> Result<(), RateLimitError>;
    /// Forget every attempt under `key` (e.g. after a successful login).
    async fn clear(&self, key: &str) -> Result<(), RateLimitError>;
}

/// The decision for a log of `count` attempts inside the window (oldest first);
/// `leaves_in(i)` is how long until attempt `i` leaves the window.
fn decide(count: usize, rule: Rule, leaves_in: impl Fn(usize) -> Duration) -> Decision {
    let limit = rule.limit as usize;
    if count < limit {
        Decision::Allowed {
            remaining: (limit - count - 1) as u32,
        }
    } else if limit == 0 {
        Decision::Limited {
            retry_after: rule.window,
        }
    } else {
        // Allowed again once the log has dropped to limit - 1 entries.
        Decision::Limited {
            retry_after: leaves_in(count - limit).max(Duration::from_millis(1)),
        }
    }
}

/// Attempts counted under some keys before the slow work they guard.
#[must_use = "give the attempts back when the attempt was fine; dropping keeps them counted"]
pub struct Reserved<'a> {
    limiter: &'a dyn RateLimiter,
    keys: Vec<String>,
}

impl Reserved<'_> {
    /// The attempt turned out fine: uncount it under every key.
    pub(crate) async fn give_back(self) {
        for key in &self.keys {
            if let Err(e) = self.limiter.give_back(key).await {
                tracing::warn!(error = %e, "rate limiter: giving an attempt back failed");
            }
        }
    }
}

/// The outcome of [`reserve`].
pub enum Reservation<'a> {
    /// Counted under every key: go ahead with the slow check.
    Granted(Reserved<'a>),
    /// One key is at its limit: nothing stays counted.
    Limited(Decision),
}

/// Count one attempt under every key, in order, before the slow work it guards (see the
/// module documentation). When a key is at its limit, the attempts already counted under
/// the keys before it are given back and the refusal returned.
pub async fn reserve<'a>(
    limiter: &'a dyn RateLimiter,
    keys: &[(&str, Rule)],
) -> Result<Reservation<'a>, RateLimitError> {
    let mut reserved = Reserved {
        limiter,
        keys: Vec::with_capacity(keys.len()),
    };
    for (key, rule) in keys {
        let decision = match limiter.hit(key, *rule).await {
            Ok(d) => d,
            Err(e) => {
                reserved.give_back().await;
                return Err(e);
            }
        };
        if !decision.is_allowed() {
            reserved.give_back().await;
            return Ok(Reservation::Limited(decision));
        }
        reserved.keys.push((*key).to_owned());
    }
    Ok(Reservation::Granted(reserved))
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// Fewest keys at which the memory limiter sweeps.
const MIN_SWEEP_KEYS: usize = 1024;

/// The limiter of a single instance. Time follows tokio's clock, so tests can pause it.
/// Memory stays bounded by the live keys: when the map has doubled since the last sweep,
/// every key whose whole log has left its window is dropped (amortised O(1) per hit).
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug)]
struct MemoryInner {
    keys: HashMap<String, Log>,
    sweep_at: usize,
}

#[derive(Debug)]
struct Log {
    /// The window of the latest rule used with this key, for sweeping.
    window: Duration,
    hits: VecDeque<Instant>,
}

impl Log {
    fn prune(&mut self, now: Instant, window: Duration) {
        while self.hits.front().is_some_and(|&t| t + window <= now) {
            self.hits.pop_front();
        }
    }

    fn decide(&self, now: Instant, rule: Rule) -> Decision {
        decide(self.hits.len(), rule, |i| {
            (self.hits[i] + rule.window).saturating_duration_since(now)
        })
    }
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLimiter {
    pub fn new() -> Self {
        MemoryLimiter {
            inner: Mutex::new(MemoryInner {
                keys: HashMap::new(),
                sweep_at: MIN_SWEEP_KEYS,
            }),
        }
    }

    /// Drop every key with no attempt inside its window. Runs by itself as the map grows;
    /// callable from a periodic task too.
    #[cfg(test)]
    pub fn sweep(&self) {
        let mut inner = self.lock();
        Self::sweep_locked(&mut inner, Instant::now());
    }

    /// Keys currently held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sweep_locked(inner: &mut MemoryInner, now: Instant) {
        inner
            .keys
            .retain(|_, log| log.hits.back().is_some_and(|&t| t + log.window > now));
        inner.sweep_at = (inner.keys.len() * 2).max(MIN_SWEEP_KEYS);
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, key: &str, rule: Rule) -> Result<Decision, RateLimitError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.keys.len() >= inner.sweep_at {
            Self::sweep_locked(&mut inner, now);
        }
        let log = inner.keys.entry(key.to_owned()).or_insert_with(|| Log {
            window: rule.window,
            hits: VecDeque::new(),
        });
        log.window = rule.window;
        log.prune(now, rule.window);
        let decision = log.decide(now, rule);
        if decision.is_allowed() {
            log.hits.push_back(now);
        } else if log.hits.is_empty() {
            inner.keys.remove(key);
        }
        Ok(decision)
    }

    async fn give_back(&self, key: &str) -> Result<(), RateLimitError> {
        let mut inner = self.lock();
        if let Some(log) = inner.keys.get_mut(key) {
            log.hits.pop_back();
            if log.hits.is_empty() {
                inner.keys.remove(key);
            }
        }
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), RateLimitError> {
        self.lock().keys.remove(key);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// The limiter shared by every instance. Key `P rl:KEY` is a sorted set of the counted
/// attempts (score: Redis server time in ms, member: random), changed only by one Lua
/// script, so concurrent instances never let more than the limit through and no instance's
/// clock matters. Each key expires one window after its latest counted attempt. Every
/// command and the script touch one key, so a Redis Cluster spreads the keys over its nodes.
#[derive(Clone)]
pub(crate) struct RedisLimiter {
    conn: RedisLink,
    prefix: String,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// KEYS[1] the log; ARGV: window ms, limit, member for the counted attempt.
/// Returns {1, count before this attempt} or {0, ms until allowed again}.
static SLIDING_LOG: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, n}
end
if limit == 0 then
  return {0, window}
end
local entry = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return {0, tonumber(entry[2]) + window - now}
"#,
    )
});

impl RedisLimiter {
    /// Connect to `target`; every key starts with `prefix` (e.g. `ebok:`).
    pub async fn connect(target: &RedisTarget, prefix: &str) -> Result<Self, RateLimitError> {
        Ok(RedisLimiter {
            conn: target.connect(LinkOptions::default()).await?,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}rl:{key}", self.prefix)
    }

    async fn run(&self, key: &str, rule: Rule) -> Result<Decision, RateLimitError> {
        // Whole milliseconds, at least one (PEXPIRE refuses 0).
        let window_ms = u64::try_from(rule.window.as_millis())
            .unwrap_or(u64::MAX / 2)
            .max(1);
        let member = format!("{:032x}", rand::random::<u128>());
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = SLIDING_LOG
            .key(self.key(key))
            .arg(window_ms)
            .arg(rule.limit)
            .arg(member)
            .invoke_async(&mut conn)
            .await?;
        match reply[..] {
            [1, n] => {
                let n = usize::try_from(n).map_err(|_| RateLimitError::Reply(format!("{n}")))?;
                Ok(decide(n, rule, |_| Duration::ZERO))
            }
            [0, ms] => Ok(Decision::Limited {
                retry_after: Duration::from_millis(ms.max(1) as u64).min(rule.window),
            }),
            _ => Err(RateLimitError::Reply(format!("{reply:?}"))),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn hit(&self, key: &str, rule: Rule) -> Result<Decision, RateLimitError> {
        self.run(key, rule).await
    }

    async fn give_back(&self, key: &str) -> Result<(), RateLimitError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZPOPMAX")
            .arg(self.key(key))
            .query_async::<Vec<String>>(&mut conn)
            .await?;
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), RateLimitError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;

    use super::*;

    fn allowed(remaining: u32) -> Decision {
        Decision::Allowed { remaining }
    }

    fn limited_within(d: &Decision, window: Duration) -> Duration {
        match d {
            Decision::Limited { retry_after } => {
                assert!(
                    *retry_after > Duration::ZERO && *retry_after <= window,
                    "{d:?}"
                );
                *retry_after
            }
            other => panic!("expected Limited, got {other:?}"),
        }
    }

    /// Wait until `counted(key)` is `n`: the attempts of `key` that were to leave the window
    /// have left it. Each look that still finds more fails once `by` has passed since
    /// `since` (taken after the answer that said when they would leave): a later look always
    /// finds them gone, however slowly the looks come.
    async fn left_by<C, CF>(counted: &C, key: &str, n: usize, since: Instant, by: Duration)
    where
        C: Fn(String) -> CF,
        CF: Future<Output = usize>,
    {
        let gone = crate::testkit::eventually_within(by * 2, || async move {
            let waited = since.elapsed();
            let now = counted(key.to_owned()).await;
            assert!(
                now == n || waited <= by,
                "{now} attempts of {key} still counted {waited:?} later; {n} expected by {by:?}"
            );
            now == n
        })
        .await;
        assert!(gone, "{key} never got down to {n} counted attempts");
    }

    /// The scenarios every implementation must pass. `pass` lets time pass between attempts
    /// (tokio's paused clock for memory; Redis counts by its own clock, so a real sleep),
    /// `window` suits that clock; `counted(key)` is how many of the key's attempts are inside
    /// the window now, looked at without counting one.
    async fn scenarios<P, PF, C, CF>(l: Arc<dyn RateLimiter>, window: Duration, pass: P, counted: C)
    where
        P: Fn(Duration) -> PF,
        PF: Future<Output = ()>,
        C: Fn(String) -> CF,
        CF: Future<Output = usize>,
    {
        let rule = Rule { limit: 3, window };

        // Limit reached → Limited, with a retry_after within the window.
        assert_eq!(l.hit("a", rule).await.unwrap(), allowed(2));
        assert_eq!(l.hit("a", rule).await.unwrap(), allowed(1));
        // An attempt given back counts no more.
        assert_eq!(l.hit("a", rule).await.unwrap(), allowed(0));
        l.give_back("a").await.unwrap();
        assert_eq!(l.hit("a", rule).await.unwrap(), allowed(0));
        let retry = limited_within(&l.hit("a", rule).await.unwrap(), window);
        let limited_at = Instant::now();
        limited_within(&l.hit("a", rule).await.unwrap(), window);

        // Keys are independent.
        assert_eq!(l.hit("b", rule).await.unwrap(), allowed(2));
        l.give_back("never-used").await.unwrap();

        // By retry_after (and a tenth of the window) every attempt has left (refused
        // attempts were not counted): it is allowed again.
        left_by(&counted, "a", 0, limited_at, retry + window / 10).await;
        assert_eq!(l.hit("a", rule).await.unwrap(), allowed(2));

        // Clear resets.
        assert_eq!(l.hit("c", rule).await.unwrap(), allowed(2));
        assert_eq!(l.hit("c", rule).await.unwrap(), allowed(1));
        assert_eq!(l.hit("c", rule).await.unwrap(), allowed(0));
        limited_within(&l.hit("c", rule).await.unwrap(), window);
        l.clear("c").await.unwrap();
        assert_eq!(l.hit("c", rule).await.unwrap(), allowed(2));
        l.clear("never-used").await.unwrap();

        // Limit zero refuses everything.
        let closed = Rule { limit: 0, window };
        assert!(!l.hit("z", closed).await.unwrap().is_allowed());

        // Sliding, not fixed: attempts spread over the window leave it one by one.
        let rule = Rule { limit: 2, window };
        assert!(l.hit("s", rule).await.unwrap().is_allowed());
        pass(window / 2).await;
        assert!(l.hit("s", rule).await.unwrap().is_allowed());
        let first_leaves = limited_within(&l.hit("s", rule).await.unwrap(), window);
        let limited_at = Instant::now();
        assert!(first_leaves <= window / 2 + window / 10, "{first_leaves:?}");
        left_by(&counted, "s", 1, limited_at, first_leaves + window / 10).await;
        assert_eq!(
            l.hit("s", rule).await.unwrap(),
            allowed(0),
            "only the first left"
        );
        limited_within(&l.hit("s", rule).await.unwrap(), window);
    }

    /// Many parallel attempts never let more than the limit through.
    async fn concurrency(limiters: Vec<Arc<dyn RateLimiter>>) {
        let rule = Rule {
            limit: 10,
            window: Duration::from_secs(600),
        };
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let l = limiters[i % limiters.len()].clone();
                tokio::spawn(async move { l.hit("burst", rule).await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            if t.await.unwrap().is_allowed() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 10);
        assert!(!limiters[0].hit("burst", rule).await.unwrap().is_allowed());
        reservations_bound_the_slow_checks(limiters).await;
    }

    /// A burst of 40 simultaneous attempts, each a slow check (argon2's place) guarded by
    /// two keys: at most the limit of them run, and the ones that succeed give their
    /// attempts back.
    async fn reservations_bound_the_slow_checks(limiters: Vec<Arc<dyn RateLimiter>>) {
        let ip = Rule {
            limit: 20,
            window: Duration::from_secs(600),
        };
        let account = Rule {
            limit: 5,
            window: Duration::from_secs(600),
        };
        let checked = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let l = limiters[i % limiters.len()].clone();
                let checked = checked.clone();
                tokio::spawn(async move {
                    let keys = [("ip", ip), ("account", account)];
                    match reserve(&*l, &keys).await.unwrap() {
                        Reservation::Granted(_kept) => {
                            checked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Reservation::Limited(d) => assert!(!d.is_allowed()),
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(checked.load(std::sync::atomic::Ordering::SeqCst), 5);
        // The refused ones gave back what they took under "ip": 5 counted there.
        let l = &*limiters[0];
        let more = Rule { limit: 6, ..ip };
        assert_eq!(l.hit("ip", more).await.unwrap(), allowed(0));
        // A success gives its attempts back.
        let fresh = [("ip2", ip), ("account2", account)];
        let Reservation::Granted(r) = reserve(l, &fresh).await.unwrap() else {
            panic!("limited")
        };
        r.give_back().await;
        for key in ["ip2", "account2"] {
            assert_eq!(
                l.hit(key, Rule { limit: 1, ..ip }).await.unwrap(),
                allowed(0),
                "{key} empty again"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_scenarios() {
        let l = Arc::new(MemoryLimiter::new());
        let counted = |key: String| {
            let l = l.clone();
            async move {
                let now = Instant::now();
                l.lock().keys.get(&key).map_or(0, |log| {
                    log.hits.iter().filter(|&&t| t + log.window > now).count()
                })
            }
        };
        scenarios(
            l.clone(),
            Duration::from_secs(60),
            tokio::time::advance,
            counted,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_concurrency() {
        concurrency(vec![Arc::new(MemoryLimiter::new())]).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded() {
        let l = MemoryLimiter::new();
        let rule = Rule {
            limit: 5,
            window: Duration::from_secs(60),
        };
        for i in 0..MIN_SWEEP_KEYS {
            l.hit(&format!("old{i}"), rule).await.unwrap();
        }
        assert_eq!(l.len(), MIN_SWEEP_KEYS);
        tokio::time::advance(Duration::from_secs(61)).await;
        // The next new key finds the map at the threshold and sweeps the expired ones.
        l.hit("fresh", rule).await.unwrap();
        assert_eq!(l.len(), 1);
        for i in 0..10 {
            l.hit(&format!("k{i}"), rule).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        l.hit("late", rule).await.unwrap();
        tokio::time::advance(Duration::from_secs(31)).await;
        l.sweep();
        assert_eq!(l.len(), 1, "only the key hit within the window survives");
        // A refused attempt on an empty log (limit 0) leaves nothing behind.
        let closed = Rule { limit: 0, ..rule };
        l.hit("closed", closed).await.unwrap();
        assert_eq!(l.len(), 1);
    }

    /// KEYS[1] a limiter's log; ARGV[1] the window in ms: the attempts inside the window by
    /// the server's clock, as [`SLIDING_LOG`] counts them.
    static COUNTED: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now - tonumber(ARGV[1])), '+inf')
"#,
        )
    });

    /// The scenarios on `target` under a fresh prefix: time passes for real (Redis counts by
    /// its own clock, which tokio cannot pause), and the test looks at the log (by the
    /// server's clock) for the attempts to leave. Gives the prefix used.
    async fn redis_scenarios_on(target: &RedisTarget) -> String {
        let prefix = crate::testkit::redis_prefix();
        let l = RedisLimiter::connect(target, &prefix)
            .await
            .expect("connect");
        let window = Duration::from_millis(1000);
        let conn = target.connect(LinkOptions::default()).await.unwrap();
        let counted = |key: String| {
            let mut conn = conn.clone();
            let key = format!("{prefix}rl:{key}");
            async move {
                COUNTED
                    .key(key)
                    .arg(window.as_millis() as u64)
                    .invoke_async::<usize>(&mut conn)
                    .await
                    .unwrap()
            }
        };
        scenarios(
            Arc::new(l.clone()),
            window,
            |d: Duration| tokio::time::sleep(d),
            counted,
        )
        .await;

        // Keys live under the prefix and expire by themselves.
        let rule = Rule {
            limit: 5,
            window: Duration::from_secs(60),
        };
        l.hit("ttl", rule).await.unwrap();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}rl:ttl"))
            .query_async(&mut conn.clone())
            .await
            .unwrap();
        assert!(ttl > 59_000 && ttl <= 60_000, "{ttl}");
        prefix
    }

    /// [`concurrency`] with two instances sharing `target`; gives the prefix used.
    async fn redis_concurrency_on(target: &RedisTarget) -> String {
        let prefix = crate::testkit::redis_prefix();
        let first = RedisLimiter::connect(target, &prefix).await.unwrap();
        let second = RedisLimiter::connect(target, &prefix).await.unwrap();
        concurrency(vec![Arc::new(first), Arc::new(second)]).await;
        prefix
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_scenarios() {
        let Some(url) = crate::testkit::redis("web::ratelimit::tests::redis_scenarios").await
        else {
            return;
        };
        let prefix = redis_scenarios_on(&RedisTarget::Single { url: url.clone() }).await;
        crate::testkit::redis_cleanup(&url, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_concurrency() {
        let Some(url) = crate::testkit::redis("web::ratelimit::tests::redis_concurrency").await
        else {
            return;
        };
        let prefix = redis_concurrency_on(&RedisTarget::Single { url: url.clone() }).await;
        crate::testkit::redis_cleanup(&url, &prefix).await;
    }

    /// Both on a Redis Cluster (ports 7124–7126), its nodes gone with the test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_cluster() {
        let test = "web::ratelimit::tests::redis_cluster";
        let Some(cluster) = crate::testkit::RedisCluster::start(test, 7124, 3).await else {
            return;
        };
        let target = RedisTarget::Cluster {
            nodes: cluster.nodes(),
        };
        redis_scenarios_on(&target).await;
        redis_concurrency_on(&target).await;
    }
}
