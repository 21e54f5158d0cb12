//! The live map shared by several ebok instances through a replicated event log in Redis.
//!
//! Every instance holds the whole live map in memory, in its own [`EmbeddedSessions`] (the
//! map, the IPv6 prefix trie and the one set of [`super::rules`]), with that store's file as
//! its local snapshot. Redis holds only an append-only log of accounting events: `K`
//! streams ([`log`]), each under its own hash tag, so a Redis Cluster spreads them over its
//! shards. Applying an event appends it to its session's stream; every instance reads every
//! stream ([`reader`]) and applies every entry to its own map, noting in the same commit how
//! far it has read. An append is answered once this instance has read the entry back and
//! applied it, with what that changed: so the instance that ingested an event writes its
//! history, exactly once.
//!
//! Why the instances agree: the rules decide by event time (older events change nothing, an
//! IP belongs to the session that most recently started with it, Accounting-On/Off close by
//! the NAS's restart time) and one session's events stay in order in one stream, so every
//! interleaving of the streams gives the same map.
//!
//! What Redis keeps: each append trims its stream to the retention (`MINID`), which covers
//! the longest NAS expiry window with a margin. Every live session has an event inside it,
//! and an Interim-Update carries all a session needs, so an instance with no snapshot that
//! reads the retained log knows every live session. An instance whose snapshot is older than
//! what Redis still holds starts afresh from the retained log.
//!
//! Failover: Redis replicates asynchronously, so a promoted replica can miss the last
//! appends. When this instance sees the connection fail, it appends again what it appended
//! in the [`REAPPEND_WINDOW`] before (events are idempotent under the rules).
//!
//! Expiry: each instance closes sessions whose deadline (carried in the entry, the same
//! everywhere) has passed, held back by how far its readers are behind the end of the
//! streams, so that an event already in the log is never overtaken. The history writes are
//! idempotent, so the same expiry closed by every instance makes one row.

pub(crate) mod log;
mod reader;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use self::log::{encode_entry, stream_keys, stream_of, EntryId, Origin, FIELD};
use super::embedded::EmbeddedSessions;
use super::{Applied, ClosedSession, LiveSession, LiveSessions, StoreError};
use crate::redis_link::{LinkOptions, RedisLink, RedisTarget};
use ebok_radius::event::AccountingEvent;

/// How long before a connection failure this instance's appends are appended again.
pub const REAPPEND_WINDOW: Duration = Duration::from_secs(3);
/// How long an append waits to be read back before it is reported as not applied (the
/// caller keeps it in its journal and tries again).
const READBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often appends kept for a re-append are retried while Redis does not take them.
const REAPPEND_RETRY: Duration = Duration::from_millis(500);

/// How the log is laid out and kept.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Start of every key (`ebok:`).
    pub prefix: String,
    /// Number of streams (`K`): fixed for the life of a log.
    pub streams: usize,
    /// How much of the log Redis keeps: the longest NAS expiry window plus a margin.
    pub retention: Duration,
}

/// What the instance and its readers share.
pub(crate) struct Shared {
    instance: u32,
    /// Appends waiting to be read back, by sequence number.
    waiters: Mutex<HashMap<u64, oneshot::Sender<Result<Applied, StoreError>>>>,
    /// Per stream: when a read last reached its end (the answer's arrival).
    caught_up: Vec<Mutex<Option<OffsetDateTime>>>,
    /// Per stream: the reader waits at the end for new entries (it has applied all it got).
    at_tail: Vec<AtomicBool>,
    /// A reader saw its connection fail since the last look.
    failed: AtomicBool,
}

impl Shared {
    fn lock_waiters(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Applied, StoreError>>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand an entry's outcome to whoever appended it here and waits.
    pub(crate) fn resolve(&self, origin: Origin, result: Result<Applied, StoreError>) {
        if origin.instance != self.instance {
            return;
        }
        if let Some(tx) = self.lock_waiters().remove(&origin.seq) {
            let _ = tx.send(result);
        }
    }

    /// Stream `stream` has been read and applied to its end as of `at`; its reader waits
    /// there.
    pub(crate) fn set_caught_up(&self, stream: usize, at: OffsetDateTime) {
        *self.caught_up[stream]
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(at);
        self.at_tail[stream].store(true, Ordering::SeqCst);
    }

    /// Stream `stream`'s reader got entries it has not applied yet.
    pub(crate) fn set_behind(&self, stream: usize) {
        self.at_tail[stream].store(false, Ordering::SeqCst);
    }

    /// How far behind the end of the log this instance may be at `now`: zero when every
    /// reader waits at its stream's end, else the longest time since a stream was last read
    /// to its end; `None` until every stream was read to its end once.
    fn lag(&self, now: OffsetDateTime) -> Option<time::Duration> {
        let mut lag = time::Duration::ZERO;
        for (caught_up, at_tail) in self.caught_up.iter().zip(&self.at_tail) {
            let caught_up = (*caught_up.lock().unwrap_or_else(|e| e.into_inner()))?;
            if !at_tail.load(Ordering::SeqCst) {
                lag = lag.max(now - caught_up);
            }
        }
        Some(lag)
    }

    pub(crate) fn connection_failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }
}

/// Appends kept for a re-append after a failover.
#[derive(Default)]
struct Recent {
    /// What went in during the last [`REAPPEND_WINDOW`]: when, stream, entry.
    kept: VecDeque<(Instant, usize, Arc<Vec<u8>>)>,
    /// Taken from `kept` when a connection failed: to append again.
    pending: Vec<(usize, Arc<Vec<u8>>)>,
}

/// The live map of an instance sharing the log (see the module documentation).
pub struct StreamSessions {
    local: Arc<EmbeddedSessions>,
    link: RedisLink,
    keys: Arc<Vec<String>>,
    shared: Arc<Shared>,
    seq: AtomicU64,
    retention: Duration,
    recent: Mutex<Recent>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    /// A reader's copy (the CLI while the daemon runs): it reads the log, never appends.
    read_only: bool,
    /// The snapshot copy to remove when done (read-only copies only).
    copy: Option<PathBuf>,
}

impl std::fmt::Debug for StreamSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSessions")
            .field("streams", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// A process-unique instance id: the start time and process id, hashed.
fn instance_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    crate::sessions::hash::Fnv1a::new()
        .write(&nanos.to_le_bytes())
        .write(&std::process::id().to_le_bytes())
        .finish() as u32
        | 1
}

impl StreamSessions {
    /// Join the log at `target`, with the local snapshot at `snapshot` (created when
    /// missing). Returns once every stream has been read to its end, so the map is complete.
    pub async fn open(
        target: &RedisTarget,
        snapshot: &Path,
        options: StreamOptions,
    ) -> Result<Self, StoreError> {
        Self::start(target, snapshot, options, false, None).await
    }

    /// A read-only copy for a process beside the running daemon (the CLI): the daemon's
    /// snapshot at `snapshot` copied to a file next to it, then the log read on from there.
    pub async fn open_copy(
        target: &RedisTarget,
        snapshot: &Path,
        options: StreamOptions,
    ) -> Result<Self, StoreError> {
        let copy = snapshot.with_extension(format!("copy-{}.sqlite", std::process::id()));
        remove_store_file(&copy);
        if snapshot.exists() {
            EmbeddedSessions::copy_file(snapshot, &copy).await?;
        }
        Self::start(target, &copy, options, true, Some(copy.clone())).await
    }

    async fn start(
        target: &RedisTarget,
        snapshot: &Path,
        options: StreamOptions,
        read_only: bool,
        copy: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        let link = target.connect(LinkOptions::default()).await?;
        let keys = Arc::new(stream_keys(&options.prefix, options.streams.max(1)));
        let mut local = EmbeddedSessions::open(snapshot).await?;
        if let Some(key) = reader::snapshot_gap(&link, &keys, &local).await? {
            tracing::warn!(stream = %key, snapshot = %snapshot.display(),
                "the local snapshot is older than what Redis keeps of the log; starting \
                 afresh from the retained log");
            local.close().await;
            remove_store_file(snapshot);
            local = EmbeddedSessions::open(snapshot).await?;
        }
        let local = Arc::new(local);
        let shared = Arc::new(Shared {
            instance: instance_id(),
            waiters: Mutex::new(HashMap::new()),
            caught_up: keys.iter().map(|_| Mutex::new(None)).collect(),
            at_tail: keys.iter().map(|_| AtomicBool::new(false)).collect(),
            failed: AtomicBool::new(false),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut ready = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            ready.push(rx);
            tasks.push(tokio::spawn(reader::run(reader::Reader {
                stream: i,
                key: key.clone(),
                target: target.clone(),
                local: local.clone(),
                shared: shared.clone(),
                stop: stopped.clone(),
                ready: Some(tx),
            })));
        }
        for rx in ready {
            // A reader that ended (stopped) before it caught up: nothing more to wait for.
            let _ = rx.await;
        }
        let store = StreamSessions {
            local,
            link,
            keys,
            shared,
            seq: AtomicU64::new(0),
            retention: options.retention,
            recent: Mutex::new(Recent::default()),
            tasks: Mutex::new(tasks),
            stop,
            read_only,
            copy,
        };
        if read_only {
            tracing::debug!(
                streams = store.keys.len(),
                sessions = store.local_count(),
                "read the shared live-session log"
            );
        } else {
            tracing::info!(
                streams = store.keys.len(),
                sessions = store.local_count(),
                "joined the shared live-session log"
            );
        }
        Ok(store)
    }

    /// Keep retrying the re-appends a failover left pending, in the background.
    pub fn spawn_reappender(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let mut stopped = self.stop.subscribe();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAPPEND_RETRY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                let Some(me) = me.upgrade() else { return };
                if let Err(e) = me.flush_pending().await {
                    tracing::debug!(error = %e, "re-append after a connection failure: not yet");
                }
            }
        });
        self.lock_tasks().push(task);
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn local_count(&self) -> usize {
        self.local.live_count()
    }

    /// Stop reading the log and close the snapshot (removing it, for a read-only copy).
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.lock_tasks());
        for t in tasks {
            let _ = t.await;
        }
    }

    /// When a connection failed since the last look, take what went in during the window
    /// before for appending again.
    fn note_failure(&self) {
        if !self.shared.failed.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut recent = self.lock_recent();
        let cutoff = Instant::now().checked_sub(REAPPEND_WINDOW);
        let kept: Vec<_> = recent.kept.drain(..).collect();
        for (at, stream, entry) in kept {
            if cutoff.is_none_or(|c| at >= c) {
                recent.pending.push((stream, entry));
            }
        }
        if !recent.pending.is_empty() {
            tracing::warn!(
                entries = recent.pending.len(),
                "Redis connection failed: appending the last appends again"
            );
        }
    }

    /// Append what a failover may have lost, if anything.
    async fn flush_pending(&self) -> Result<(), StoreError> {
        self.note_failure();
        let pending = std::mem::take(&mut self.lock_recent().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let n = pending.len();
        match self.append(&pending).await {
            Ok(()) => {
                metrics::counter!("ebok_log_reappended_total").increment(n as u64);
                Ok(())
            }
            Err(e) => {
                self.lock_recent().pending.extend(pending);
                Err(e)
            }
        }
    }

    /// Append entries to their streams: one pipeline per stream (one hash slot), each
    /// append trimming its stream to the retention.
    async fn append(&self, entries: &[(usize, Arc<Vec<u8>>)]) -> Result<(), StoreError> {
        let min_id = EntryId::at(
            OffsetDateTime::now_utc()
                - time::Duration::try_from(self.retention).unwrap_or(time::Duration::DAY),
        )
        .to_string();
        let mut per_stream: Vec<Vec<&[u8]>> = vec![Vec::new(); self.keys.len()];
        for (stream, entry) in entries {
            per_stream[*stream].push(entry);
        }
        let sends = per_stream
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty())
            .map(|(i, batch)| {
                let mut pipe = redis::pipe();
                for entry in batch {
                    pipe.cmd("XADD")
                        .arg(&self.keys[i])
                        .arg("MINID")
                        .arg("~")
                        .arg(&min_id)
                        .arg("*")
                        .arg(FIELD)
                        .arg(*entry)
                        .ignore();
                }
                let mut link = self.link.clone();
                async move { pipe.query_async::<()>(&mut link).await }
            });
        let results = futures_util::future::join_all(sends).await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            self.shared.connection_failed();
            return Err(StoreError::Redis(e));
        }
        Ok(())
    }
}

/// Remove an embedded store's file and its WAL companions.
fn remove_store_file(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

impl Drop for StreamSessions {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(copy) = &self.copy {
            remove_store_file(copy);
        }
    }
}

#[async_trait]
impl LiveSessions for StreamSessions {
    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let one = [(Arc::new(event.clone()), expires_at)];
        self.apply_batch(&one)
            .await
            .pop()
            .unwrap_or(Err(StoreError::Protocol("no outcome".into())))
    }

    /// Append the events, then wait until this instance has read each back and applied it.
    async fn apply_batch(
        &self,
        events: &[(Arc<AccountingEvent>, OffsetDateTime)],
    ) -> Vec<Result<Applied, StoreError>> {
        if self.read_only {
            return events
                .iter()
                .map(|_| {
                    Err(StoreError::Invalid(
                        "a read-only copy of the live map".into(),
                    ))
                })
                .collect();
        }
        if let Err(e) = self.flush_pending().await {
            let text = e.to_string();
            return events
                .iter()
                .map(|_| Err(StoreError::Protocol(text.clone())))
                .collect();
        }
        let mut entries = Vec::with_capacity(events.len());
        // Per event: the read-back to wait for, or why it cannot go into the log.
        let mut answers = Vec::with_capacity(events.len());
        {
            let mut waiters = self.shared.lock_waiters();
            for (event, expires_at) in events {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
                let origin = Origin {
                    instance: self.shared.instance,
                    seq,
                };
                match encode_entry(origin, event, *expires_at) {
                    Ok(entry) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.insert(seq, tx);
                        answers.push(Ok((seq, rx)));
                        let stream = stream_of(&event.nas, &event.session_id, self.keys.len());
                        entries.push((stream, Arc::new(entry)));
                    }
                    Err(e) => answers.push(Err(e)),
                }
            }
        }
        if let Err(e) = self.append(&entries).await {
            let mut waiters = self.shared.lock_waiters();
            for (seq, _) in answers.iter().flatten() {
                waiters.remove(seq);
            }
            let text = e.to_string();
            return events
                .iter()
                .map(|_| {
                    Err(StoreError::Protocol(format!(
                        "appending to the log: {text}"
                    )))
                })
                .collect();
        }
        {
            let now = Instant::now();
            let mut recent = self.lock_recent();
            while recent
                .kept
                .front()
                .is_some_and(|(at, _, _)| now.duration_since(*at) > REAPPEND_WINDOW)
            {
                recent.kept.pop_front();
            }
            recent
                .kept
                .extend(entries.into_iter().map(|(s, e)| (now, s, e)));
        }
        let deadline = tokio::time::Instant::now() + READBACK_TIMEOUT;
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            let (seq, rx) = match answer {
                Ok(waiting) => waiting,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            out.push(match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(StoreError::Protocol("the log reader stopped".into())),
                Err(_) => {
                    self.shared.lock_waiters().remove(&seq);
                    Err(StoreError::Timeout)
                }
            });
        }
        out
    }

    fn batches(&self) -> bool {
        true
    }

    async fn lookup(&self, ip: IpAddr) -> Result<Option<LiveSession>, StoreError> {
        self.local.lookup(ip).await
    }

    async fn get(&self, nas: &str, session_id: &str) -> Result<Option<LiveSession>, StoreError> {
        self.local.get(nas, session_id).await
    }

    async fn list(&self, nas: Option<&str>) -> Result<Vec<LiveSession>, StoreError> {
        self.local.list(nas).await
    }

    async fn sessions_of_users(&self, users: &[&str]) -> Result<Vec<LiveSession>, StoreError> {
        self.local.sessions_of_users(users).await
    }

    /// Close what expired by `now`, held back by how far the readers are behind (the time
    /// since every stream was last read to its end): an entry still on its way could be
    /// the one that keeps a session alive.
    async fn expire(&self, now: OffsetDateTime) -> Result<Vec<ClosedSession>, StoreError> {
        match self.shared.lag(OffsetDateTime::now_utc()) {
            Some(lag) => self.local.expire(now - lag.max(time::Duration::ZERO)).await,
            None => Ok(Vec::new()),
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.local.count().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut link = self.link.clone();
        redis::cmd("PING").query_async::<String>(&mut link).await?;
        Ok(())
    }

    /// Wait until every stream has been read up to the entry that was last in it when the
    /// call began (at most [`READBACK_TIMEOUT`]).
    async fn settle(&self) -> Result<(), StoreError> {
        let mut ends = Vec::with_capacity(self.keys.len());
        for key in self.keys.iter() {
            let end = reader::last_id(&self.link, key).await?;
            ends.push((reader::position_note(key), end));
        }
        let deadline = tokio::time::Instant::now() + READBACK_TIMEOUT;
        for (note, end) in ends {
            let Some(end) = end else { continue };
            loop {
                let pos: EntryId = self
                    .local
                    .note(&note)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_default();
                if pos >= end {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::Timeout);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }
}
