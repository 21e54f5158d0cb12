//! The accounting handler: takes a decoded event, makes it durable (live map + history, or
//! the journal when those cannot answer in time) and only then lets the listener reply.
//! Also replays the journal in order and closes expired sessions.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

use crate::dead_letter::DeadLetters;
use crate::history_writer::{self, HistoryError, HistoryStore, HistoryWriter, Written};
use crate::journal::{Frames, JournalLog, JournalRecord};
use crate::sessions::{Applied, LiveSessions, StoreError};
use ebok_radius::event::AccountingEvent;
use ebok_radius::journal::Journal;
pub use ebok_radius::journal::Recorded;

/// Records read from the journal per replay round. Under a backlog a round is one transaction
/// in each store: the history's indexes and daily traffic are updated all over their trees,
/// so each commit rewrites most of their pages whatever its size, and larger rounds cost
/// less per event (measured at 1,024 outstanding: 8,192 → 32,768 took the replay from
/// 59k to 77k events/s).
const REPLAY_BATCH: usize = 32_768;
/// How long the replay waits for a history commit. Nothing answers a NAS on this path, so
/// it only guards against a database that hangs; a round large enough to need longer than
/// `radius.store_timeout_ms` must still go through, or its journaled copy would be retried
/// (and time out) forever.
const REPLAY_HISTORY_TIMEOUT: Duration = Duration::from_secs(30);
/// Sessions replayed concurrently.
const REPLAY_LANES: usize = 2048;
/// How long a graceful stop goes on applying the journal.
const FINAL_REPLAY: Duration = Duration::from_secs(5);
/// Rounds in a row in which the same journal record was the first to fail, after which it
/// is tried alone and, when the store takes other records but not this one, set aside.
const POISON_AFTER: u32 = 5;

/// Records replayed alone, in order: NAS-wide events and history records (whose daily
/// traffic must be added exactly once).
fn is_barrier(record: &JournalRecord) -> bool {
    match record {
        JournalRecord::Event { event, .. } => matches!(
            event.status,
            ebok_radius::event::StatusType::AccountingOn
                | ebok_radius::event::StatusType::AccountingOff
        ),
        JournalRecord::History(_) => true,
    }
}

/// Where the run of records starting at `start` ends: a barrier alone, else up to the next
/// barrier.
fn run_end(batch: &[(Arc<JournalRecord>, u64)], start: usize) -> usize {
    if start >= batch.len() {
        return start;
    }
    if is_barrier(&batch[start].0) {
        return start + 1;
    }
    (start..batch.len())
        .find(|&i| is_barrier(&batch[i].0))
        .unwrap_or(batch.len())
}

/// Lane of a session key (FNV-1a).
fn lane_of(nas: &str, session_id: &str) -> usize {
    crate::sessions::hash::Fnv1a::new()
        .write(nas.as_bytes())
        .write(&[0])
        .write(session_id.as_bytes())
        .finish() as usize
}

/// What replaying one record did.
enum Replayed {
    /// Written (a history record).
    Done,
    /// Applied to the live map; its history is still to be written.
    Applied(Applied),
    /// A store is still unavailable: retry later.
    Unavailable,
}

/// Wall-clock time that follows tokio's clock, so tests with paused time see expiry move.
/// In production tokio's clock is the real one and this is plain `now_utc()`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    real: std::time::Instant,
    tokio: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            real: std::time::Instant::now(),
            tokio: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        let skew = self.tokio.elapsed().as_secs_f64() - self.real.elapsed().as_secs_f64();
        OffsetDateTime::now_utc() + time::Duration::seconds_f64(skew)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// When an Accounting-Response is sent (`radius.ack_after`): once the event is in the
/// journal (fsync'd, applied to the stores right after), or once the stores took it (the
/// journal used only when they fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckAfter {
    Journal,
    Store,
}

/// Shared state of the accounting pipeline.
pub struct Ingest {
    pub clock: Clock,
    pub live: Arc<dyn LiveSessions>,
    /// Where the history writer commits (the SQL history).
    history_store: Arc<dyn HistoryStore>,
    pub spool: JournalLog,
    history: HistoryWriter,
    ack_after: AckAfter,
    store_timeout: Duration,
    wake: Notify,
    /// The low-priority runtime the replay and the history writer work on, if any.
    background: Option<crate::background::Background>,
    /// Where records that can never be applied go.
    dead_letters: DeadLetters,
    /// The journal record (by the offset after it) that stopped the last replay rounds,
    /// and in how many rounds in a row.
    head_failures: std::sync::Mutex<(u64, u32)>,
}

/// What trying one stuck journal record alone showed.
enum Alone {
    /// It went through (or was set aside as never applicable).
    Done,
    /// It failed and its store does not answer either: wait.
    StoreDown,
    /// It failed while its store answers: set it aside if the store takes other records.
    Failed(String),
}

impl Ingest {
    /// Must be called inside a tokio runtime (it starts the history writer). With
    /// `background`, the history writer works there (give it a store with a connection of
    /// its own), and
    /// [`Ingest::run_replayer`] should be spawned there too ([`Ingest::spawn_replayer`]).
    pub fn new(
        live: Arc<dyn LiveSessions>,
        history_store: Arc<dyn HistoryStore>,
        spool: JournalLog,
        ack_after: AckAfter,
        store_timeout: Duration,
        background: Option<crate::background::Background>,
        dead_letters: DeadLetters,
    ) -> Self {
        let history = {
            let _on = background.as_ref().map(|bg| bg.handle().enter());
            // In journal mode only the replay writes history; in store mode the answers wait
            // for it, and it gets twice the live store's patience (a commit carries many
            // events).
            let timeout = match ack_after {
                AckAfter::Journal => REPLAY_HISTORY_TIMEOUT,
                AckAfter::Store => store_timeout * 2,
            };
            HistoryWriter::spawn(history_store.clone(), spool.clone(), timeout)
        };
        Ingest {
            clock: Clock::new(),
            live,
            history_store,
            spool,
            history,
            ack_after,
            store_timeout,
            wake: Notify::new(),
            background,
            dead_letters,
            head_failures: std::sync::Mutex::new((0, 0)),
        }
    }

    /// Start [`Ingest::run_replayer`] on the background runtime when there is one.
    pub fn spawn_replayer(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let replayer = self.clone().run_replayer(shutdown);
        match &self.background {
            Some(bg) => bg.handle().spawn(replayer),
            None => tokio::spawn(replayer),
        }
    }

    /// Make several events durable; one result per event, in their order. In journal mode
    /// they go to the journal in one append (one slot of its group commit), which also keeps
    /// them in memory for the replay.
    pub async fn record_batch(
        &self,
        events: Vec<(AccountingEvent, OffsetDateTime)>,
    ) -> Vec<io::Result<Recorded>> {
        if self.journal_mode() {
            let n = events.len();
            let frames = self.journal_frames(events);
            let result = self.spool.append_frames(frames).await;
            return self.journaled(n, result);
        }
        futures_util::future::join_all(events.iter().map(|(e, at)| self.record(e, *at))).await
    }

    /// True when answers wait for the journal only ([`Ingest::journal_blocking`] applies).
    pub fn journal_mode(&self) -> bool {
        self.ack_after == AckAfter::Journal
    }

    /// Journal mode, from a thread outside the tokio runtime: append the events to the
    /// journal in one write, blocking until they are on disk; one result per event.
    pub(crate) fn journal_blocking(
        &self,
        events: Vec<(AccountingEvent, OffsetDateTime)>,
    ) -> Vec<io::Result<Recorded>> {
        let n = events.len();
        let frames = self.journal_frames(events);
        let result = self.spool.append_frames_blocking(frames);
        self.journaled(n, result)
    }

    fn journal_frames(&self, events: Vec<(AccountingEvent, OffsetDateTime)>) -> Frames {
        let mut frames = Frames::new();
        for (event, expires_at) in events {
            frames.push_owned_event(event, expires_at);
        }
        frames
    }

    /// The outcome of one journal append for each of its `n` events; wakes the replay.
    fn journaled(&self, n: usize, result: io::Result<()>) -> Vec<io::Result<Recorded>> {
        if result.is_ok() {
            self.wake.notify_one();
        }
        (0..n)
            .map(|_| match &result {
                Ok(()) => Ok(Recorded::Journaled),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            })
            .collect()
    }

    /// Make one event durable. `Ok` means the NAS may be answered.
    pub async fn record(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> io::Result<Recorded> {
        // In journal mode every event goes through the journal; in store mode only while older
        // events wait there (newer ones queue behind them) or when the stores fail.
        if self.ack_after == AckAfter::Store && self.spool.depth() == 0 {
            match self.apply(event, expires_at).await {
                Ok(applied) => {
                    return Ok(match self.store_history(applied).await? {
                        Written::Committed => Recorded::Stored,
                        Written::Journaled => {
                            self.wake.notify_one();
                            Recorded::Journaled
                        }
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, nas = %event.nas, session = %event.session_id,
                        "live store unavailable; spooling the event");
                }
            }
        }
        self.spool.append_event(event, expires_at).await?;
        self.wake.notify_one();
        Ok(Recorded::Journaled)
    }

    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.store_timeout, self.live.apply(event, expires_at))
            .await
            .unwrap_or(Err(StoreError::Timeout));
        metrics::histogram!("ebok_store_latency_seconds", "store" => "live", "op" => "apply")
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("ebok_store_errors_total", "store" => "live").increment(1);
        }
        if let Ok(a) = &result {
            if a.stale {
                metrics::counter!("ebok_radius_stale_events_total").increment(1);
            }
        }
        result
    }

    /// Through the history writer (group commit; it journals by itself when the database
    /// fails).
    async fn store_history(&self, applied: Applied) -> io::Result<Written> {
        self.history.write(applied).await
    }

    /// A journaled history record, through the same writer (history has one writer), without
    /// journaled it again: a failure leaves it in the journal.
    async fn write_history(&self, applied: &Applied) -> Result<(), HistoryError> {
        self.history
            .write_now(applied.clone(), REPLAY_HISTORY_TIMEOUT)
            .await
    }

    /// Set a journal record aside for good (see [`crate::dead_letter`]).
    fn set_aside(&self, record: &JournalRecord, reason: &str) -> io::Result<()> {
        self.dead_letters.set_aside(record, reason)
    }

    /// Replay journaled records until the journal is empty or a store fails. Returns the number
    /// of records replayed (set-aside ones included).
    ///
    /// Events of different sessions are independent, so a run of events is replayed in
    /// parallel lanes (one lane per session key, sequential within it) and the stores' group
    /// commit batches them. Accounting-On/Off and history records are barriers, replayed alone
    /// in journal order. The replay position only moves past a prefix of records that all
    /// succeeded or were set aside; an event replayed twice after a failure is recognised as
    /// stale (and reports its history again, which history writes only once).
    ///
    /// No single record stops the replay: one a store refuses for good is set aside at once
    /// ([`crate::dead_letter`]); one that is the first to fail [`POISON_AFTER`] rounds in a
    /// row is tried alone, and set aside when it fails while its store takes the records
    /// after it. Only a store that answers nothing makes the replay wait.
    pub async fn replay(&self) -> io::Result<usize> {
        let mut done = 0;
        loop {
            let batch = self.spool.peek(REPLAY_BATCH).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            let mut ok_until = None;
            let mut start = 0;
            while start < batch.len() {
                let end = run_end(&batch, start);
                let ok = self.replay_run(&batch[start..end]).await?;
                done += ok;
                if ok > 0 {
                    ok_until = Some(batch[start + ok - 1].1);
                }
                if ok == end - start {
                    start = end;
                    continue;
                }
                // The record at `head` stopped this round.
                let head = start + ok;
                if !self.keeps_failing(batch[head].1) {
                    break;
                }
                let passed = match self.try_alone(&batch[head].0).await? {
                    Alone::Done => 1,
                    Alone::StoreDown => 0,
                    Alone::Failed(why) => {
                        // Proof that the store works: it takes the records after this one.
                        let next_end = run_end(&batch, head + 1).max(head + 1);
                        let others = if head + 1 < batch.len() {
                            self.replay_run(&batch[head + 1..next_end]).await?
                        } else {
                            0
                        };
                        if others == 0 {
                            0
                        } else {
                            self.set_aside(
                                &batch[head].0,
                                &format!(
                                    "failed {POISON_AFTER} times while the store took other \
                                     records: {why}"
                                ),
                            )?;
                            1 + others
                        }
                    }
                };
                if passed == 0 {
                    break;
                }
                done += passed;
                ok_until = Some(batch[head + passed - 1].1);
                start = head + passed;
            }
            let complete = start >= batch.len();
            if let Some(offset) = ok_until {
                self.spool.consumed(offset).await?;
            }
            if !complete {
                return Ok(done);
            }
        }
    }

    /// Count one more round stopped by the record ending at `offset`; true once it is
    /// [`POISON_AFTER`] rounds in a row.
    fn keeps_failing(&self, offset: u64) -> bool {
        let mut head = self.head_failures.lock().unwrap_or_else(|e| e.into_inner());
        if head.0 == offset {
            head.1 += 1;
        } else {
            *head = (offset, 1);
        }
        head.1 >= POISON_AFTER
    }

    /// Try one stuck record alone (see [`Ingest::replay`]).
    async fn try_alone(&self, record: &JournalRecord) -> io::Result<Alone> {
        match record {
            JournalRecord::Event { event, expires_at } => {
                match self.apply(event, *expires_at).await {
                    Ok(applied) => {
                        self.store_history(applied).await?;
                        Ok(Alone::Done)
                    }
                    Err(e) if e.is_permanent() => {
                        self.set_aside(record, &e.to_string())?;
                        Ok(Alone::Done)
                    }
                    Err(e) => Ok(match self.live.ping().await {
                        Ok(()) => Alone::Failed(e.to_string()),
                        Err(_) => Alone::StoreDown,
                    }),
                }
            }
            JournalRecord::History(applied) => match self.write_history(applied).await {
                Ok(()) => Ok(Alone::Done),
                Err(e) if e.refused_for_good => {
                    self.set_aside(record, &e.to_string())?;
                    Ok(Alone::Done)
                }
                Err(e) => Ok(match self.history_store.ping().await {
                    Ok(()) => Alone::Failed(e.to_string()),
                    Err(_) => Alone::StoreDown,
                }),
            },
        }
    }

    /// Replay a run of records; returns how many leading records all succeeded (or were set
    /// aside for good).
    async fn replay_run(&self, run: &[(Arc<JournalRecord>, u64)]) -> io::Result<usize> {
        if self.live.batches() {
            if let Some(events) = run
                .iter()
                .map(|(r, _)| match &**r {
                    JournalRecord::Event { event, expires_at } => {
                        Some((event.clone(), *expires_at))
                    }
                    JournalRecord::History(_) => None,
                })
                .collect::<Option<Vec<_>>>()
            {
                return self.replay_batch(&events).await;
            }
        }
        let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); REPLAY_LANES.min(run.len())];
        for (i, (record, _)) in run.iter().enumerate() {
            let lane = match &**record {
                JournalRecord::Event { event, .. } => {
                    lane_of(&event.nas, &event.session_id) % lanes.len()
                }
                JournalRecord::History(_) => 0,
            };
            lanes[lane].push(i);
        }
        let results = futures_util::future::join_all(lanes.into_iter().map(|lane| async move {
            let mut out = Vec::with_capacity(lane.len());
            for i in lane {
                let r = self.replay_one(&run[i].0).await;
                let failed = !matches!(r, Ok(Replayed::Done | Replayed::Applied(_)));
                out.push((i, r));
                if failed {
                    break; // later events of this session wait for the next attempt
                }
            }
            out
        }))
        .await;
        let mut ok = vec![false; run.len()];
        let mut history = Vec::new();
        for (i, r) in results.into_iter().flatten() {
            match r? {
                Replayed::Done => ok[i] = true,
                Replayed::Applied(applied) => {
                    ok[i] = true;
                    history.push(applied);
                }
                Replayed::Unavailable => {}
            }
        }
        // What the events produced for history, as one group commit (the writer journals it
        // itself when the database fails) before the run counts as replayed.
        let merged = history_writer::merge(history);
        self.store_history(merged).await?;
        Ok(ok.iter().take_while(|v| **v).count())
    }

    /// Replay a run of events through the store's batch apply (one commit, journal order).
    /// An event the store refuses for good is set aside and the rest go on; the first one
    /// refused because the store is unavailable ends the run there.
    async fn replay_batch(
        &self,
        events: &[(Arc<AccountingEvent>, OffsetDateTime)],
    ) -> io::Result<usize> {
        let mut history = Vec::new();
        let mut ok = 0;
        while ok < events.len() {
            let started = Instant::now();
            let results = self.live.apply_batch(&events[ok..]).await;
            metrics::histogram!("ebok_store_latency_seconds", "store" => "live", "op" => "apply_batch")
                .record(started.elapsed().as_secs_f64());
            let before = ok;
            let mut unavailable = false;
            for r in results {
                match r {
                    Ok(applied) => {
                        if applied.stale {
                            metrics::counter!("ebok_radius_stale_events_total").increment(1);
                        }
                        history.push(applied);
                        ok += 1;
                    }
                    Err(e) if e.is_permanent() => {
                        let (event, expires_at) = &events[ok];
                        let record = JournalRecord::Event {
                            event: event.clone(),
                            expires_at: *expires_at,
                        };
                        self.set_aside(&record, &e.to_string())?;
                        ok += 1;
                    }
                    Err(e) => {
                        metrics::counter!("ebok_store_errors_total", "store" => "live")
                            .increment(1);
                        tracing::warn!(error = %e, "replay: live store unavailable; retrying later");
                        unavailable = true;
                        break;
                    }
                }
            }
            if unavailable || ok == before {
                break;
            }
        }
        self.store_history(history_writer::merge(history)).await?;
        Ok(ok)
    }

    /// Replay one record.
    async fn replay_one(&self, record: &JournalRecord) -> io::Result<Replayed> {
        Ok(match record {
            JournalRecord::Event { event, expires_at } => {
                match self.apply(event, *expires_at).await {
                    Ok(applied) => Replayed::Applied(applied),
                    Err(e) if e.is_permanent() => {
                        self.set_aside(record, &e.to_string())?;
                        Replayed::Done
                    }
                    Err(_) => Replayed::Unavailable,
                }
            }
            JournalRecord::History(applied) => match self.write_history(applied).await {
                Ok(()) => Replayed::Done,
                Err(e) if e.refused_for_good => {
                    self.set_aside(record, &e.to_string())?;
                    Replayed::Done
                }
                Err(_) => Replayed::Unavailable,
            },
        })
    }

    /// Wait until everything answered so far is applied to the stores (the journal is empty),
    /// at most `limit`. True when it is.
    pub async fn settled(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.spool.depth() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// Background task: replay whenever something is journaled, retrying every second.
    pub(crate) async fn run_replayer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if self.spool.depth() > 0 {
                // Shutdown may cut a replay short: what was not marked consumed is replayed
                // again at the next start and recognised as stale where already applied.
                let replayed = tokio::select! {
                    r = self.replay() => r,
                    _ = shutdown.changed() => return self.final_replay().await,
                };
                match replayed {
                    Ok(n) if n > 0 => {
                        // Routine in journal mode: every answered event passes here.
                        tracing::debug!(replayed = n, left = self.spool.depth(), "spool replayed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "spool replay failed"),
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return self.final_replay().await,
            }
        }
    }

    /// On a graceful stop, apply what the journal still holds (the requests in flight
    /// finish meanwhile) for at most [`FINAL_REPLAY`], so that the stores are current when
    /// ebok has stopped; what is left is replayed at the next start.
    async fn final_replay(&self) {
        let deadline = tokio::time::Instant::now() + FINAL_REPLAY;
        while self.spool.depth() > 0 && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.replay()).await {
                Ok(Ok(0)) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "stopping: journal replay failed");
                    return;
                }
                Err(_) => break,
            }
        }
        if self.spool.depth() > 0 {
            tracing::info!(
                left = self.spool.depth(),
                "stopping: journal records left for the next start"
            );
        }
    }

    /// Close sessions whose time ran out and write them to history.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let closed = self.live.expire(now).await?;
        let n = closed.len();
        if n > 0 {
            let applied = Applied {
                stale: false,
                closed,
                traffic: Vec::new(),
            };
            metrics::counter!("ebok_sessions_expired_total").increment(n as u64);
            self.store_history(applied)
                .await
                .map_err(|_| StoreError::Timeout)?;
        }
        Ok(n)
    }

    /// Background task: expiry sweeps and the live-session gauge.
    pub async fn run_sweeper(
        self: Arc<Self>,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            match self.sweep(self.clock.now()).await {
                Ok(n) if n > 0 => tracing::info!(expired = n, "closed sessions without updates"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
            if let Ok(n) = self.live.count().await {
                metrics::gauge!("ebok_live_sessions").set(n as f64);
            }
        }
    }
}

/// The listener's seam: accepted events go through [`Ingest`].
#[async_trait::async_trait]
impl Journal for Ingest {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    async fn record_batch(
        &self,
        events: Vec<(AccountingEvent, OffsetDateTime)>,
    ) -> Vec<io::Result<Recorded>> {
        Ingest::record_batch(self, events).await
    }

    fn record_blocking(
        &self,
        events: Vec<(AccountingEvent, OffsetDateTime)>,
    ) -> Vec<io::Result<Recorded>> {
        self.journal_blocking(events)
    }
}
