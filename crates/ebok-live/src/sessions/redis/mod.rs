//! Redis live-session store: the production map, shared by every ebok instance.
//!
//! # Consistency
//! Every change is a compare-and-set: Rust reads the stored record (and the NAS restart
//! time), plans the change with [`rules::step_event`], and one Lua script writes it only if
//! both are still what was read (else Rust re-reads and plans again). The same script applies
//! the plan's IP index releases (only where the entry still points at this session) and
//! claims (free, own, dangling, or held by a session the new one outranks: the script reads
//! the holder's record to compare). Concurrent instances therefore never lose an update nor
//! let an older session take an IP back. The batch apply of the replay skips the read where
//! this instance already knows the value (it wrote or read it last; a Start of an unknown
//! session is planned as new): the script's check is what makes that safe, and a refusal
//! makes the instance forget and read again.
//!
//! # Key layout
//! See [`keys`].
//!
//! # Expiry and Accounting-On/Off
//! There is no expiry index (it would cost memory per session). `expire(now)` takes the sweep
//! lock, then scans the 16384 session buckets with a script that filters server-side (the
//! deadline sits at a fixed offset in every record) and returns only due records; each is
//! closed by the same compare-and-set. With 1,000,000 sessions a sweep reads every record once
//! inside Redis: about one second, in 128 script calls of ~8 ms each (measured), so call it
//! about once a minute. While one instance sweeps, `expire` on the others returns nothing. Accounting-On/Off records the NAS restart time first, then
//! runs the same kind of scan filtered by NAS.
//!
//! # Redis settings
//! Records are 90–140 bytes, so the default `hash-max-listpack-value 64` would turn every
//! bucket into a real hash table (several times the memory). Set
//! ```text
//! hash-max-listpack-value 256
//! hash-max-listpack-entries 256
//! ```
//! (512 entries once above ~2,000,000 sessions). Then a session with an IPv4 address and two
//! IPv6 prefixes costs about 200–230 bytes. `connect` logs a warning when the server's
//! `hash-max-listpack-value` is too small. Redis Cluster: scripts touch several buckets, so put
//! a hash tag in the prefix (`{ebok}:`) to keep every key in one slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ipnet::Ipv6Net;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;

mod batch;
mod keys;
mod scripts;

use self::keys::{field_hash, session_hash, ttl_ms, BucketNames};
use self::scripts::{run_apply, LOOKUP, SCAN, SET_MAX, UNLOCK};
use super::record::{decode_record, decode_time, encode_record, encode_str_bytes, time_ord};
use super::rules::{self, IpKey, Record, Step};
use super::{Applied, ClosedSession, LiveSession, LiveSessions, StoreError};
use ebok_radius::event::{AccountingEvent, StatusType};

/// Buckets per key family (a power of two: the Lua side takes the low 14 bits).
const BUCKETS: u64 = 16384;
/// Session buckets scanned per script call.
const SCAN_BATCH: u64 = 128;
/// TTL margin beyond the latest deadline written into a key.
const TTL_MARGIN_MS: i64 = 24 * 3600 * 1000;
/// Compare-and-set attempts before giving up with [`StoreError::Timeout`].
const CAS_ATTEMPTS: usize = 64;
/// How long one instance may hold the sweep lock.
const SWEEP_LOCK_MS: u64 = 300_000;
/// Events per pipelined batch apply (a pipeline of reads, then one of script calls).
const PIPELINE_EVENTS: usize = 1024;
/// Compare-and-set steps per script call at most: a call per step made Redis dispatch a
/// script, look up the NAS restart time and extend the live counter's TTL for every event;
/// a call holds Redis for its whole run, so not all of a batch goes into one.
const SCRIPT_STEPS: usize = 128;
/// Smallest `hash-max-listpack-value` that keeps session buckets compact.
const MIN_LISTPACK_VALUE: i64 = 200;
/// Session values [`Known`] holds at most (≈ 200 bytes each); past it, it starts empty again.
const KNOWN_MAX: usize = 131_072;
/// NAS restart times [`Known`] holds at most.
const KNOWN_NAS_MAX: usize = 4096;

/// The Redis live-session store.
#[derive(Clone)]
pub struct RedisSessions {
    conn: ConnectionManager,
    prefix: String,
    known: Arc<std::sync::Mutex<Known>>,
    names: Arc<BucketNames>,
}

/// What this instance last read or wrote for a session or a NAS restart time, so the batch
/// apply plans on it without reading it from Redis first. Never trusted further than that:
/// every step's compare-and-set still checks it against Redis, and a refused step drops the
/// session's and its NAS's entries (another instance, an expiry sweep or a flush changed
/// them), so the retry and later batches read afresh.
#[derive(Default)]
struct Known {
    /// Session hash → its stored value (`None`: absent).
    records: HashMap<u64, Option<Vec<u8>>>,
    /// NAS → its stored restart time (`None`: absent).
    resets: HashMap<String, Option<Vec<u8>>>,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// Connect to `url` (`redis://…`); every key starts with `prefix` (e.g. `ebok:`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(StdDuration::from_secs(3)))
            .set_response_timeout(Some(StdDuration::from_secs(5)))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let store = RedisSessions {
            conn,
            prefix: prefix.to_owned(),
            known: Default::default(),
            names: Arc::new(BucketNames::new(prefix)),
        };
        store.ping().await?;
        store.check_config().await;
        Ok(store)
    }

    /// Warn when the server would store session buckets as hash tables.
    async fn check_config(&self) {
        let mut conn = self.conn.clone();
        let reply: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("hash-max-listpack-value")
            .query_async(&mut conn)
            .await;
        if let Ok(pair) = reply {
            if let Some(v) = pair.get(1).and_then(|v| v.parse::<i64>().ok()) {
                if v < MIN_LISTPACK_VALUE {
                    tracing::warn!(
                        hash_max_listpack_value = v,
                        "redis hash-max-listpack-value is below {MIN_LISTPACK_VALUE}: live \
                         sessions will use several times more memory (set it to 256)"
                    );
                }
            }
        }
    }

    /// Forget what this instance knew of a session it just changed outside the batch apply.
    fn forget(&self, h: u64) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .records
            .remove(&h);
    }

    async fn read(
        &self,
        h: u64,
        nas: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), StoreError> {
        let mut conn = self.conn.clone();
        let (cur, reset): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
            .cmd("HGET")
            .arg(self.session_key(h))
            .arg(&h.to_be_bytes()[..])
            .cmd("HGET")
            .arg(format!("{}nasreset", self.prefix))
            .arg(nas)
            .query_async(&mut conn)
            .await?;
        Ok((cur, reset))
    }

    async fn read_one(&self, h: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGET")
            .arg(self.session_key(h))
            .arg(&h.to_be_bytes()[..])
            .query_async(&mut conn)
            .await?)
    }

    /// Run one planned step if the key still holds `expected` (and, when `reset_check` is
    /// given, the NAS restart time is still the one read). Returns false when it changed.
    async fn cas(
        &self,
        h: u64,
        expected: Option<&[u8]>,
        reset_check: Option<(&str, Option<&[u8]>)>,
        prior: Option<&Record>,
        step: &Step,
    ) -> Result<bool, StoreError> {
        let new_value = match &step.record {
            Some(r) => encode_record(r)?,
            None => Vec::new(),
        };
        let mut inv = self.cas_invocation();
        self.push_step(&mut inv, h, expected, reset_check, prior, step, new_value);
        let mut conn = self.conn.clone();
        let done: Vec<Vec<i64>> = run_apply(&mut conn, &[inv]).await?;
        Ok(done == [[1]])
    }

    async fn apply_session(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let h = session_hash(&event.nas, &event.session_id);
        for _ in 0..CAS_ATTEMPTS {
            let (cur, reset) = self.read(h, &event.nas).await?;
            let prior = cur.as_deref().map(decode_record).transpose()?;
            if let Some(p) = &prior {
                check_key(p, &event.nas, &event.session_id)?;
            }
            let reset_at = reset.as_deref().map(decode_time).transpose()?;
            let step = rules::step_event(prior.as_ref(), reset_at, event, expires_at);
            if !step.write {
                return Ok(step.applied);
            }
            if self
                .cas(
                    h,
                    cur.as_deref(),
                    Some((&event.nas, reset.as_deref())),
                    prior.as_ref(),
                    &step,
                )
                .await?
            {
                self.forget(h);
                return Ok(step.applied);
            }
        }
        Err(StoreError::Timeout)
    }

    async fn nas_restart(&self, event: &AccountingEvent) -> Result<Applied, StoreError> {
        let at = event.event_time;
        let key = format!("{}nasreset", self.prefix);
        let mut conn = self.conn.clone();
        let stored: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(&key)
            .arg(&event.nas)
            .query_async(&mut conn)
            .await?;
        let stored = stored.as_deref().map(decode_time).transpose()?;
        if rules::restart_is_stale(stored, at) {
            return Ok(Applied {
                stale: true,
                ..Applied::default()
            });
        }
        // It closes sessions of this NAS and moves its restart time: what this instance
        // knows of either is out of date.
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = Known::default();
        let _: i64 = SET_MAX
            .key(&key)
            .arg(&event.nas)
            .arg(&time_ord(at)?.to_be_bytes()[..])
            .arg(ttl_ms(at))
            .invoke_async(&mut conn)
            .await?;

        let mut applied = Applied::default();
        let t = time_ord(at)?.to_be_bytes().to_vec();
        let nas_enc = encode_str_bytes(event.nas.as_bytes());
        for (field, value) in self.scan(b"n", &t, &nas_enc).await? {
            let h = field_hash(&field)?;
            let closed = self
                .close_while(h, Some(value), |r| match r {
                    Record::Live(s) if rules::restart_closes(s, &event.nas, at) => {
                        Some(rules::step_restart(s, at))
                    }
                    _ => None,
                })
                .await?;
            applied.closed.extend(closed);
        }
        Ok(applied)
    }

    /// Close one record while `plan` still wants it closed, re-reading after a lost race.
    async fn close_while(
        &self,
        h: u64,
        mut value: Option<Vec<u8>>,
        plan: impl Fn(&Record) -> Option<Step>,
    ) -> Result<Vec<ClosedSession>, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(raw) = value.take() else {
                return Ok(Vec::new());
            };
            let record = decode_record(&raw)?;
            let Some(step) = plan(&record) else {
                return Ok(Vec::new());
            };
            if self.cas(h, Some(&raw), None, Some(&record), &step).await? {
                self.forget(h);
                return Ok(step.applied.closed);
            }
            value = self.read_one(h).await?;
        }
        Err(StoreError::Timeout)
    }

    /// Scan every session bucket with the server-side filter `mode` (`x` due at or before `t`,
    /// `n` live of the NAS `nas_enc` updated at or before `t`, `a` live, optionally of a NAS).
    async fn scan(
        &self,
        mode: &[u8],
        t: &[u8],
        nas_enc: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut start = 0;
        while start < BUCKETS {
            let mut inv = SCAN.prepare_invoke();
            for b in start..(start + SCAN_BATCH).min(BUCKETS) {
                inv.key(&self.names.sessions[b as usize]);
            }
            inv.arg(mode).arg(t).arg(nas_enc);
            let flat: Vec<Vec<u8>> = inv.invoke_async(&mut conn).await?;
            let mut it = flat.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                out.push((f, v));
            }
            start += SCAN_BATCH;
        }
        Ok(out)
    }

    async fn sweep(&self, now: OffsetDateTime) -> Result<Vec<ClosedSession>, StoreError> {
        let t = time_ord(now)?.to_be_bytes().to_vec();
        let mut closed = Vec::new();
        for (field, value) in self.scan(b"x", &t, b"").await? {
            let h = field_hash(&field)?;
            closed.extend(
                self.close_while(h, Some(value), |r| rules::step_deadline(r, now))
                    .await?,
            );
        }
        Ok(closed)
    }
}

#[async_trait]
impl LiveSessions for RedisSessions {
    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        match event.status {
            StatusType::AccountingOn | StatusType::AccountingOff => self.nas_restart(event).await,
            _ => self.apply_session(event, expires_at).await,
        }
    }

    async fn apply_batch(
        &self,
        events: &[(Arc<AccountingEvent>, OffsetDateTime)],
    ) -> Vec<Result<Applied, StoreError>> {
        let events: Vec<(&AccountingEvent, OffsetDateTime)> =
            events.iter().map(|(e, at)| (&**e, *at)).collect();
        let events = &events[..];
        let restarts = events.iter().any(|(e, _)| {
            matches!(
                e.status,
                StatusType::AccountingOn | StatusType::AccountingOff
            )
        });
        if restarts || events.len() < 2 {
            let mut out = Vec::with_capacity(events.len());
            for (event, expires_at) in events {
                let r = self.apply(event, *expires_at).await;
                let failed = r.is_err();
                out.push(r);
                if failed {
                    break; // later events wait for the next attempt
                }
            }
            return out;
        }
        let mut out = Vec::with_capacity(events.len());
        for part in events.chunks(PIPELINE_EVENTS) {
            match self.apply_session_batch(part).await {
                Ok(rs) => {
                    let failed = rs.iter().any(Result::is_err);
                    out.extend(rs);
                    if failed {
                        break;
                    }
                }
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        out
    }

    fn batches(&self) -> bool {
        true
    }

    async fn lookup(&self, ip: IpAddr) -> Result<Option<LiveSession>, StoreError> {
        let mut conn = self.conn.clone();
        let candidates: Vec<(std::borrow::Cow<'_, str>, Vec<u8>)> = match ip {
            IpAddr::V4(a) => vec![self.ip_key(&IpKey::V4(a))],
            IpAddr::V6(a) => {
                let lens: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(format!("{}6len", self.prefix))
                    .query_async(&mut conn)
                    .await?;
                let mut lens: Vec<u8> = lens
                    .iter()
                    .filter_map(|l| l.parse().ok())
                    .filter(|l| *l <= 128)
                    .collect();
                lens.sort_unstable_by(|a, b| b.cmp(a));
                lens.iter()
                    .filter_map(|l| Ipv6Net::new(a, *l).ok())
                    .map(|n| self.ip_key(&IpKey::V6(n.trunc())))
                    .collect()
            }
        };
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut inv = LOOKUP.prepare_invoke();
        inv.arg(format!("{}s:", self.prefix));
        for (k, f) in candidates {
            inv.key(k).arg(f);
        }
        let found: Option<Vec<u8>> = inv.invoke_async(&mut conn).await?;
        match found.as_deref().map(decode_record).transpose()? {
            Some(Record::Live(s)) if s.holds(ip) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    async fn get(&self, nas: &str, session_id: &str) -> Result<Option<LiveSession>, StoreError> {
        let h = session_hash(nas, session_id);
        match self
            .read_one(h)
            .await?
            .as_deref()
            .map(decode_record)
            .transpose()?
        {
            Some(Record::Live(s)) if s.nas == nas && s.session_id == session_id => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    async fn list(&self, nas: Option<&str>) -> Result<Vec<LiveSession>, StoreError> {
        let nas_enc = nas.map_or_else(Vec::new, |n| encode_str_bytes(n.as_bytes()));
        let mut out = Vec::new();
        for (_, v) in self.scan(b"a", b"", &nas_enc).await? {
            if let Record::Live(s) = decode_record(&v)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn expire(&self, now: OffsetDateTime) -> Result<Vec<ClosedSession>, StoreError> {
        let lock = format!("{}sweep", self.prefix);
        let token = format!("{:016x}", rand::random::<u64>());
        let mut conn = self.conn.clone();
        let got: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(SWEEP_LOCK_MS)
            .query_async(&mut conn)
            .await?;
        if got.is_none() {
            // Another instance is sweeping right now.
            return Ok(Vec::new());
        }
        let result = self.sweep(now).await;
        let _: Result<i64, _> = UNLOCK.key(&lock).arg(&token).invoke_async(&mut conn).await;
        result
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let n: Option<i64> = redis::cmd("GET")
            .arg(format!("{}n", self.prefix))
            .query_async(&mut conn)
            .await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

fn check_key(r: &Record, nas: &str, session_id: &str) -> Result<(), StoreError> {
    if r.key() != (nas, session_id) {
        return Err(StoreError::Corrupt(format!(
            "session key hash collision: ({nas}, {session_id}) vs {:?}",
            r.key()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use std::net::Ipv4Addr;

    use super::keys::{ttl_epoch_end, TTL_EPOCH_S};
    use super::*;

    /// A store on a prefix of its own in the test Redis, with the URL and prefix to clean
    /// up; `None` when Redis is unreachable and not required (the skip is recorded).
    async fn test_store(what: &str) -> Option<(String, String, RedisSessions)> {
        let url = ebok_testkit::redis(what).await?;
        let prefix = ebok_testkit::redis_prefix();
        let store = RedisSessions::connect(&url, &prefix).await.unwrap();
        Some((url, prefix, store))
    }

    /// Redis forgets scripts (`SCRIPT FLUSH`, a restart): the next call loads it again, for a
    /// single apply and for a batch's pipeline.
    #[tokio::test]
    async fn scripts_are_loaded_again_after_a_flush() {
        let Some((url, prefix, store)) = test_store("redis script flush").await else {
            return;
        };
        let flush = || async {
            let _: () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut store.conn.clone())
                .await
                .unwrap();
        };
        let now = OffsetDateTime::now_utc();
        let deadline = now + time::Duration::hours(1);
        let mut e = AccountingEvent::new(StatusType::Start, "nas-flush", "s1", now);
        e.framed_ip = Some(Ipv4Addr::new(10, 9, 1, 1));
        flush().await;
        store.apply(&e, deadline).await.unwrap();

        // A batch (one pipeline of script calls) after another flush.
        flush().await;
        e.status = StatusType::InterimUpdate;
        e.event_time = now + time::Duration::seconds(1);
        e.input_octets = 77;
        let other = AccountingEvent::new(StatusType::Start, "nas-flush", "s2", now);
        let rs = store
            .apply_batch(&[(Arc::new(e), deadline), (Arc::new(other), deadline)])
            .await;
        assert!(rs.iter().all(Result::is_ok), "{rs:?}");
        let s1 = store.get("nas-flush", "s1").await.unwrap().unwrap();
        assert_eq!(s1.input_octets, 77);
        assert!(store.get("nas-flush", "s2").await.unwrap().is_some());
        assert_eq!(
            store
                .lookup("10.9.1.1".parse().unwrap())
                .await
                .unwrap()
                .map(|s| s.session_id),
            Some("s1".to_owned())
        );

        ebok_testkit::redis_cleanup(&url, &prefix).await;
    }

    /// Keys get TTLs to the end of the deadline's epoch plus the margin; events whose
    /// deadline stays in the epoch leave them, a deadline in a later epoch extends them all.
    #[tokio::test]
    async fn key_ttls_cover_the_deadline_epoch() {
        let Some((url, prefix, store)) = test_store("redis key TTLs").await else {
            return;
        };
        let mut conn = store.conn.clone();
        let now = OffsetDateTime::now_utc();
        // Deadlines just inside the next epoch, so two of them share it for sure.
        let d1 = ttl_epoch_end(now) + time::Duration::seconds(60);
        let d2 = d1 + time::Duration::seconds(60);
        let d3 = d1 + time::Duration::seconds(TTL_EPOCH_S);
        let net: Ipv6Net = "2001:db8:9:1::/64".parse().unwrap();
        let h = session_hash("nas-ttl", "s1");
        let keys = [
            store.session_key(h).to_owned(),
            store
                .ip_key(&IpKey::V4(Ipv4Addr::new(10, 9, 0, 1)))
                .0
                .into_owned(),
            store.ip_key(&IpKey::V6(net)).0.into_owned(),
            format!("{prefix}6len"),
            format!("{prefix}n"),
        ];
        let mut pttls = async |keys: &[String]| -> Vec<i64> {
            let mut out = Vec::new();
            for k in keys {
                let t: i64 = redis::cmd("PTTL")
                    .arg(k)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                out.push(t);
            }
            out
        };
        // At least the epoch's end plus the margin from now, at most an hour more.
        let check = |ttls: &[i64], deadline: OffsetDateTime| {
            let need = ttl_ms(ttl_epoch_end(deadline));
            for (k, t) in keys.iter().zip(ttls) {
                assert!(*t >= need - 10_000, "{k}: {t} ms < {need} ms");
                assert!(*t <= need + 3_610_000, "{k}: {t} ms > {need} ms + 1 h");
            }
        };

        let mut e = AccountingEvent::new(StatusType::Start, "nas-ttl", "s1", now);
        e.framed_ip = Some(Ipv4Addr::new(10, 9, 0, 1));
        e.framed_ipv6_prefixes.push(net);
        store.apply(&e, d1).await.unwrap();
        let first = pttls(&keys).await;
        check(&first, d1);

        // Shorten one key's TTL behind the store's back: an Interim whose deadline stays in
        // the epoch does not look at it (that is the PTTL saved), one in the next epoch does.
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(&keys[1])
            .arg(3_600_000)
            .query_async(&mut store.conn.clone())
            .await
            .unwrap();
        e.status = StatusType::InterimUpdate;
        e.event_time = now + time::Duration::seconds(1);
        store.apply(&e, d2).await.unwrap();
        let second = pttls(&keys).await;
        assert!(second[1] <= 3_600_000, "the same epoch touched {}", keys[1]);
        for i in [0, 2, 3, 4] {
            assert!(
                second[i] <= first[i],
                "a deadline in the same epoch extended {}",
                keys[i]
            );
        }

        e.event_time = now + time::Duration::seconds(2);
        store.apply(&e, d3).await.unwrap();
        check(&pttls(&keys).await, d3);

        ebok_testkit::redis_cleanup(&url, &prefix).await;
    }
}
