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
//! # Key layout (`P` = the configured prefix)
//! * `P s:{b}` HASH, b = FNV-1a-64(nas, session id) mod 16384: field = that 64-bit hash (8
//!   bytes, big-endian), value = the session record (compact binary, see [`encode_record`]) or a
//!   tombstone of a recently closed session. The hash also names the session in the IP index,
//!   so index entries stay 8 bytes; the record carries NAS and session id, checked on read
//!   (a 64-bit collision is reported as [`StoreError::Corrupt`], never merged).
//!   Buckets are global, not per NAS, so they fill evenly however sessions spread over NASes:
//!   ~61 entries per bucket at 1,000,000 sessions.
//! * `P 4:{b}` HASH, b = FNV-1a-64(4 octets) mod 16384: field = the 4 octets, value = holder's
//!   8-byte session hash.
//! * `P 6:{len}:{b}` HASH, one family per prefix length, b = FNV-1a-64(prefix octets) mod
//!   16384: field = the ⌈len/8⌉ significant octets, value = holder's session hash.
//! * `P 6len` SET of the IPv6 prefix lengths in use; a lookup tries them longest first, in one
//!   script call.
//! * `P nasreset` HASH nas → time of its last Accounting-On/Off: events at or before it are
//!   stale.
//! * `P n` counter of live sessions; `P sweep` the expiry lock (`SET NX PX`, token-checked
//!   release).
//!
//! Every key written gets a TTL of one day (to one day and an hour) beyond the latest deadline
//! written into it (only ever extended), so the data of a dead deployment disappears by itself.
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
use std::sync::{Arc, LazyLock};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ipnet::Ipv6Net;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use time::OffsetDateTime;

use super::record::{decode_record, decode_time, encode_record, encode_str_bytes, time_ord};
use super::rules::{self, IpKey, Record, Step};
use super::{Applied, ClosedSession, LiveSession, LiveSessions, StoreError};
use crate::radius::event::{AccountingEvent, StatusType};

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

/// The names of the session and IPv4 index buckets, made once (every step of a batch names
/// a few of them).
struct BucketNames {
    sessions: Vec<String>,
    v4: Vec<String>,
}

impl BucketNames {
    fn new(prefix: &str) -> Self {
        let family = |tag: &str| (0..BUCKETS).map(|b| format!("{prefix}{tag}:{b}")).collect();
        BucketNames {
            sessions: family("s"),
            v4: family("4"),
        }
    }
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

    fn session_key(&self, h: u64) -> &str {
        &self.names.sessions[(h % BUCKETS) as usize]
    }

    fn ip_key(&self, ip: &IpKey) -> (std::borrow::Cow<'_, str>, Vec<u8>) {
        match ip {
            IpKey::V4(a) => {
                let o = a.octets();
                let b = (fnv1a64(&o) % BUCKETS) as usize;
                (self.names.v4[b].as_str().into(), o.to_vec())
            }
            IpKey::V6(net) => {
                let len = net.prefix_len();
                let field = net.trunc().network().octets()[..usize::from(len).div_ceil(8)].to_vec();
                let b = fnv1a64(&field) % BUCKETS;
                (format!("{}6:{}:{}", self.prefix, len, b).into(), field)
            }
        }
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

    /// A call of the compare-and-set script, its steps still to be added with
    /// [`RedisSessions::push_step`].
    fn cas_invocation(&self) -> ApplyCall {
        let mut inv = ApplyCall::default();
        inv.key(format!("{}n", self.prefix))
            .key(format!("{}6len", self.prefix))
            .key(format!("{}nasreset", self.prefix))
            .arg(format!("{}s:", self.prefix));
        inv
    }

    /// Add one planned step to a compare-and-set script call, with the step's record already
    /// encoded (`new_value`, empty for none).
    #[allow(clippy::too_many_arguments)]
    fn push_step(
        &self,
        inv: &mut ApplyCall,
        h: u64,
        expected: Option<&[u8]>,
        reset_check: Option<(&str, Option<&[u8]>)>,
        prior: Option<&Record>,
        step: &Step,
        new_value: Vec<u8>,
    ) {
        let prior_live = matches!(prior, Some(Record::Live(_)));
        let new_live = matches!(step.record, Some(Record::Live(_)));
        let delta: i64 = i64::from(new_live) - i64::from(prior_live);
        let ttl_ms = step
            .record
            .as_ref()
            .map_or(TTL_MARGIN_MS, |r| ttl_ms(ttl_epoch_end(r.deadline())));
        // The keys already holding this session's entries have TTLs to the end of its prior
        // deadline's epoch (plus the margin): while the deadline stays in that epoch, they
        // need no touch.
        let retouch = match (prior, &step.record) {
            (Some(p), Some(r)) => ttl_epoch(p.deadline()) != ttl_epoch(r.deadline()),
            _ => true,
        };
        let claims: &[IpKey] = if new_live { &step.claims } else { &[] };

        inv.key(self.session_key(h));
        inv.arg(&h.to_be_bytes()[..]);
        inv.arg(expected.unwrap_or_default());
        match reset_check {
            None => inv.arg("").arg(""),
            Some((nas, None)) => inv.arg("-").arg(nas),
            Some((nas, Some(v))) => inv.arg(prefixed(b'=', v)).arg(nas),
        };
        inv.arg(new_value)
            .arg(delta)
            .arg(ttl_ms)
            .arg(if retouch { "1" } else { "" })
            .arg(step.releases.len() + claims.len());
        for ip in &step.releases {
            let (k, f) = self.ip_key(ip);
            inv.key(k).arg("r").arg(f);
        }
        for ip in claims {
            let (k, f) = self.ip_key(ip);
            let op = match ip {
                IpKey::V4(_) => "c".to_owned(),
                IpKey::V6(n) => format!("c{}", n.prefix_len()),
            };
            inv.key(k).arg(op).arg(f);
        }
    }

    /// [`LiveSessions::apply_batch`] for Start/Interim/Stop events: one pipeline reads every
    /// session and NAS restart time the batch names, the events are planned in order (each
    /// on the state the previous one of its session leaves), and one pipeline runs all the
    /// compare-and-set scripts, in order. Redis runs a pipeline's scripts one after the
    /// other, so each sees its predecessors' writes; a script that finds its session (or NAS
    /// restart time) changed by someone else refuses, and that event and the later ones of
    /// its session are applied again one by one, on fresh reads.
    async fn apply_session_batch(
        &self,
        events: &[(&AccountingEvent, OffsetDateTime)],
    ) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        struct Session {
            h: u64,
            /// Encoded record as stored (before the batch) or as planned so far.
            cur: Option<Vec<u8>>,
            prior: Option<Record>,
        }
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut sessions: Vec<Session> = Vec::new();
        let mut nas_index: HashMap<&str, usize> = HashMap::new();
        let mut of_event = Vec::with_capacity(events.len());
        // What this instance knows is planned on without a read; a Start of a session it does
        // not know is planned as new. Everything else is read in one pipeline.
        let mut read = redis::pipe();
        let mut to_read = Vec::new();
        // Per NAS of the batch: its known restart time, `None` while it is still to be read.
        let mut nas_known: Vec<Option<Option<Vec<u8>>>> = Vec::new();
        {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            for (e, _) in events {
                let h = session_hash(&e.nas, &e.session_id);
                let i = *index.entry(h).or_insert_with(|| {
                    let cur = match known.records.remove(&h) {
                        Some(v) => v,
                        None if e.status == StatusType::Start => None,
                        None => {
                            read.cmd("HGET")
                                .arg(self.session_key(h))
                                .arg(&h.to_be_bytes()[..]);
                            to_read.push(sessions.len());
                            None
                        }
                    };
                    sessions.push(Session {
                        h,
                        cur,
                        prior: None,
                    });
                    sessions.len() - 1
                });
                of_event.push(i);
            }
            for (e, _) in events {
                let n = nas_index.len();
                if let std::collections::hash_map::Entry::Vacant(v) = nas_index.entry(&e.nas) {
                    v.insert(n);
                    let value = known.resets.get(&e.nas).cloned();
                    if value.is_none() {
                        read.cmd("HGET")
                            .arg(format!("{}nasreset", self.prefix))
                            .arg(&e.nas);
                    }
                    nas_known.push(value);
                }
            }
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> = if read.cmd_iter().next().is_some() {
            read.query_async(&mut conn).await?
        } else {
            Vec::new()
        };
        let mut values = values.into_iter();
        let mut next_value = || {
            values
                .next()
                .ok_or_else(|| StoreError::Protocol("pipeline answered a different count".into()))
        };
        for &i in &to_read {
            sessions[i].cur = next_value()?;
        }
        let resets = nas_known
            .into_iter()
            .map(|v| match v {
                Some(v) => Ok(v),
                None => next_value(),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reset_times = resets
            .iter()
            .map(|r| r.as_deref().map(decode_time).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        for s in &mut sessions {
            s.prior = s.cur.as_deref().map(decode_record).transpose()?;
        }

        // Plan in order. results[i]: what event i reports, `None` while its script has not
        // answered (or refused); scripted: (event, what it reports when its script runs).
        let mut results: Vec<Option<Result<Applied, StoreError>>> =
            (0..events.len()).map(|_| None).collect();
        let mut scripted_ok = vec![false; events.len()];
        let mut scripted: Vec<(usize, Applied)> = Vec::new();
        // The steps go into script calls of up to SCRIPT_STEPS each, all in one pipeline.
        let mut calls: Vec<ApplyCall> = Vec::new();
        let mut in_call = SCRIPT_STEPS;
        for (i, (event, expires_at)) in events.iter().enumerate() {
            let s = &mut sessions[of_event[i]];
            if let Some(p) = &s.prior {
                if let Err(e) = check_key(p, &event.nas, &event.session_id) {
                    results[i] = Some(Err(e));
                    continue;
                }
            }
            let n = nas_index[event.nas.as_str()];
            let step = rules::step_event(s.prior.as_ref(), reset_times[n], event, *expires_at);
            if !step.write {
                results[i] = Some(Ok(step.applied));
                continue;
            }
            // An event whose record cannot be encoded is refused alone; the session's later
            // events are planned on the state before it.
            let new_value = match step.record.as_ref().map(encode_record).transpose() {
                Ok(v) => v.unwrap_or_default(),
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            if in_call == SCRIPT_STEPS {
                calls.push(self.cas_invocation());
                in_call = 0;
            }
            in_call += 1;
            self.push_step(
                calls.last_mut().expect("pushed above"),
                s.h,
                s.cur.as_deref(),
                Some((&event.nas, resets[n].as_deref())),
                s.prior.as_ref(),
                &step,
                new_value.clone(),
            );
            s.cur = (!new_value.is_empty()).then_some(new_value);
            s.prior = step.record;
            scripted.push((i, step.applied));
        }
        let done: Vec<i64> = if calls.is_empty() {
            Vec::new()
        } else {
            run_apply(&mut conn, &calls)
                .await?
                .into_iter()
                .flatten()
                .collect()
        };
        if done.len() != scripted.len() {
            return Err(StoreError::Protocol(
                "pipeline answered a different count".into(),
            ));
        }
        for ((i, applied), ok) in scripted.into_iter().zip(done) {
            if ok == 1 {
                results[i] = Some(Ok(applied));
                scripted_ok[i] = true;
            }
        }
        // From a refused script on, a session's events were planned on a state that was not
        // there: apply them again one by one, in order (except those whose script ran).
        let mut out = Vec::with_capacity(events.len());
        let mut refused = vec![false; sessions.len()];
        let mut refused_nas = vec![false; nas_index.len()];
        for (i, (event, expires_at)) in events.iter().enumerate() {
            let si = of_event[i];
            let r = match results[i].take() {
                Some(r) if !refused[si] || scripted_ok[i] => r,
                _ => {
                    refused[si] = true;
                    refused_nas[nas_index[event.nas.as_str()]] = true;
                    self.apply_session(event, *expires_at).await
                }
            };
            out.push(r);
        }
        // Remember what Redis holds now, except what a refusal showed to be out of date.
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.records.len() + sessions.len() > KNOWN_MAX {
            known.records.clear();
        }
        for (s, refused) in sessions.into_iter().zip(refused) {
            if !refused {
                known.records.insert(s.h, s.cur);
            }
        }
        if known.resets.len() + nas_index.len() > KNOWN_NAS_MAX {
            known.resets.clear();
        }
        for (nas, &n) in &nas_index {
            if refused_nas[n] {
                known.resets.remove(*nas);
            } else if known.resets.get(*nas) != Some(&resets[n]) {
                known.resets.insert((*nas).to_owned(), resets[n].clone());
            }
        }
        Ok(out)
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

fn prefixed(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push(tag);
    out.extend_from_slice(v);
    out
}

fn field_hash(field: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = field
        .try_into()
        .map_err(|_| StoreError::Corrupt("session bucket field is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(b))
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

/// Seconds per TTL epoch: keys are given TTLs to the end of the epoch of the deadline written
/// (plus [`TTL_MARGIN_MS`]), so the events of a session whose deadline stays within one epoch
/// leave its keys' TTLs alone (an Interim-Update then needs no PTTL per key).
const TTL_EPOCH_S: i64 = 6 * 3600;

fn ttl_epoch(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(TTL_EPOCH_S)
}

/// The end of the TTL epoch `t` falls in.
fn ttl_epoch_end(t: OffsetDateTime) -> OffsetDateTime {
    let end = (ttl_epoch(t) + 1).saturating_mul(TTL_EPOCH_S);
    OffsetDateTime::from_unix_timestamp(end).unwrap_or(t)
}

/// Milliseconds a key must live for a record with this deadline.
fn ttl_ms(deadline: OffsetDateTime) -> i64 {
    let left = (deadline - OffsetDateTime::now_utc()).whole_milliseconds();
    i64::try_from(left.max(0))
        .unwrap_or(i64::MAX / 2)
        .saturating_add(TTL_MARGIN_MS)
}

/// FNV-1a, 64 bit: stable across processes and versions (unlike std's random-seeded hasher).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The 64-bit name of a session: FNV-1a over (len(nas) as u32 LE, nas, session id).
pub(crate) fn session_hash(nas: &str, session_id: &str) -> u64 {
    let mut buf = Vec::with_capacity(4 + nas.len() + session_id.len());
    buf.extend_from_slice(&(nas.len() as u32).to_le_bytes());
    buf.extend_from_slice(nas.as_bytes());
    buf.extend_from_slice(session_id.as_bytes());
    fnv1a64(&buf)
}

/// One call of the [`APPLY`] script being built: its keys and its arguments, each packed in
/// one buffer (a `ScriptInvocation` keeps a `Vec` per argument and copies them all again
/// into the command; a step has 10–15 of them).
#[derive(Default)]
struct ApplyCall {
    keys: redis::Cmd,
    nkeys: usize,
    args: redis::Cmd,
}

impl ApplyCall {
    fn key<T: redis::ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.arg(key);
        self.nkeys += 1;
        self
    }

    fn arg<T: redis::ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.arg(arg);
        self
    }

    /// `EVALSHA` of the script with these keys and arguments.
    fn command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(APPLY.get_hash()).arg(self.nkeys);
        for part in self.keys.args_iter().chain(self.args.args_iter()) {
            if let redis::Arg::Simple(bytes) = part {
                cmd.arg(bytes);
            }
        }
        cmd
    }
}

/// Run script calls in one pipeline; one answer per call. When Redis does not have the
/// script (first use, or after a flush or restart) nothing ran: load it and send again.
async fn run_apply(
    conn: &mut ConnectionManager,
    calls: &[ApplyCall],
) -> Result<Vec<Vec<i64>>, StoreError> {
    let mut write = redis::pipe();
    for call in calls {
        write.add_command(call.command());
    }
    Ok(match write.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            APPLY.load_async(conn).await?;
            write.query_async(conn).await?
        }
        r => r?,
    })
}

// ---------------------------------------------------------------------------------------------
// Lua scripts. Shared helpers: `cmp8(a, ao, b, bo)` compares 8 bytes bytewise (the locale-aware
// `<` on strings is not safe for binary data); `bucket(h)` is the session bucket of an 8-byte
// hash (its low 14 bits); `touch(k, ms)` makes a key's TTL at least `ms`, never shortens it,
// and when it extends it, extends it an hour further: the keys an event writes then need
// only a PTTL on most later events, not a PEXPIRE each time a deadline moves.
// ---------------------------------------------------------------------------------------------

const LUA_HELPERS: &str = r#"
local function cmp8(a, ao, b, bo)
  for i = 0, 7 do
    local x, y = string.byte(a, ao + i), string.byte(b, bo + i)
    if x ~= y then
      if x < y then return -1 else return 1 end
    end
  end
  return 0
end
local function bucket(h)
  return tostring((string.byte(h, 7) % 64) * 256 + string.byte(h, 8))
end
local function touch(k, ms)
  local t = redis.call('PTTL', k)
  ms = tonumber(ms)
  if t == -1 or (t >= 0 and t < ms) then
    redis.call('PEXPIRE', k, ms + 3600000)
  end
end
"#;

/// Compare-and-set session keys, each followed by its IP index releases and claims, in
/// order; returns 1 or 0 per step (0: the key or the NAS restart time was not as read, and
/// nothing of that step was written). The NAS restart times are read once per call and the
/// TTLs extended once per key, at the end.
/// KEYS: counter, 6len, nasreset, then per step: its bucket, then its index keys.
/// ARGV: session key prefix, then per step: field, expected value | '' (absent), reset check
///       ('' none, '-' absent, '='..v), nas, new value ('' delete), live-count delta, ttl ms,
///       '1' to touch the keys the step keeps (its deadline left the prior one's TTL epoch)
///       or '', number of index keys, then per index key: op ('r' release, 'c' claim,
///       'c<len>' claim IPv6 prefix), field. Keys the step newly writes are always touched.
static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_HELPERS}{}",
        r#"
local sp = ARGV[1]
local resets, ttls, lens, done = {}, {}, {}, {}
local function later(k, ms)
  ms = tonumber(ms)
  local t = ttls[k]
  if (not t) or t < ms then ttls[k] = ms end
end
local delta = 0
local k, a = 4, 2
while a <= #ARGV do
  local h, bk, nops = ARGV[a], KEYS[k], tonumber(ARGV[a + 8])
  local cur = redis.call('HGET', bk, h)
  local ok
  if ARGV[a + 1] == '' then ok = not cur else ok = cur == ARGV[a + 1] end
  local rc = ARGV[a + 2]
  if ok and rc ~= '' then
    local nas = ARGV[a + 3]
    local r = resets[nas]
    if r == nil then
      r = redis.call('HGET', KEYS[3], nas)
      if r then r = '=' .. r else r = '-' end
      resets[nas] = r
    end
    ok = r == rc
  end
  if ok then
    local new, d, ttl = ARGV[a + 4], tonumber(ARGV[a + 5]), ARGV[a + 6]
    local retouch = ARGV[a + 7] ~= '' or not cur
    if new == '' then
      redis.call('HDEL', bk, h)
    else
      redis.call('HSET', bk, h, new)
      if retouch then later(bk, ttl) end
    end
    delta = delta + d
    if new ~= '' or d ~= 0 then later(KEYS[1], ttl) end
    for j = 0, nops - 1 do
      local op, f, ik = ARGV[a + 9 + 2 * j], ARGV[a + 10 + 2 * j], KEYS[k + 1 + j]
      local holder = redis.call('HGET', ik, f)
      if string.sub(op, 1, 1) == 'r' then
        if holder == h then redis.call('HDEL', ik, f) end
      else
        local take = (not holder) or holder == h or #holder ~= 8
        if not take then
          local hv = redis.call('HGET', sp .. bucket(holder), holder)
          if (not hv) or string.byte(hv, 1) ~= 1 or #hv < 25 then
            take = true
          else
            local c = cmp8(new, 18, hv, 18)
            if c == 0 then c = cmp8(new, 10, hv, 10) end
            take = c > 0
          end
        end
        local kept = take and holder == h
        if take and not kept then redis.call('HSET', ik, f, h) end
        if take and (retouch or not kept) then later(ik, ttl) end
        if #op > 1 and (retouch or not kept) then
          local len = string.sub(op, 2)
          if not lens[len] then
            redis.call('SADD', KEYS[2], len)
            lens[len] = true
          end
          later(KEYS[2], ttl)
        end
      end
    end
  end
  done[#done + 1] = ok and 1 or 0
  k, a = k + 1 + nops, a + 9 + 2 * nops
end
if delta ~= 0 then redis.call('INCRBY', KEYS[1], delta) end
for key, ms in pairs(ttls) do touch(key, ms) end
return done
"#
    ))
});

/// Scan session buckets, filtering server-side. ARGV: mode, time ord, encoded NAS ('' = any).
/// Returns field, value, field, value…
static SCAN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_HELPERS}{}",
        r#"
local mode, t, nas = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for _, key in ipairs(KEYS) do
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local hit = false
    if mode == 'x' then
      hit = #v >= 17 and cmp8(v, 2, t, 1) <= 0
    elseif string.byte(v, 1) == 1 and #v >= 26 then
      hit = nas == '' or string.sub(v, 26, 25 + #nas) == nas
      if hit and mode == 'n' then hit = cmp8(v, 10, t, 1) <= 0 end
    end
    if hit then
      out[#out + 1] = all[i]
      out[#out + 1] = v
    end
  end
end
return out
"#
    ))
});

/// First live session found through the index keys, in order. ARGV: session key prefix, then
/// one field per index key.
static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_HELPERS}{}",
        r#"
for i, key in ipairs(KEYS) do
  local ref = redis.call('HGET', key, ARGV[i + 1])
  if ref and #ref == 8 then
    local v = redis.call('HGET', ARGV[1] .. bucket(ref), ref)
    if v and string.byte(v, 1) == 1 then return v end
  end
end
return false
"#
    ))
});

/// Raise a NAS restart time (never lower it). KEYS: nasreset. ARGV: nas, ord, ttl ms.
static SET_MAX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_HELPERS}{}",
        r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or #cur ~= 8 or cmp8(ARGV[2], 1, cur, 1) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
touch(KEYS[1], ARGV[3])
return 1
"#
    ))
});

/// Release the sweep lock if this instance still holds it.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

#[cfg(test)]
mod unit {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    /// A store on a prefix of its own in the test Redis, with the URL and prefix to clean
    /// up; `None` when Redis is unreachable and not required (the skip is recorded).
    async fn test_store(what: &str) -> Option<(String, String, RedisSessions)> {
        let url = crate::testkit::redis(what).await?;
        let prefix = crate::testkit::redis_prefix();
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

        crate::testkit::redis_cleanup(&url, &prefix).await;
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

        crate::testkit::redis_cleanup(&url, &prefix).await;
    }
}
