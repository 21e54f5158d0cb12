//! The accounting handler: takes a decoded event, makes it durable (live map + history, or
//! the spool when those cannot answer in time) and only then lets the listener reply.
//! Also replays the spool in order and closes expired sessions.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

use crate::radius::event::AccountingEvent;
use crate::sessions::{Applied, LiveSessions, StoreError};
use crate::spool::{Spool, SpoolRecord};
use crate::store::{history, Db};

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

/// Shared state of the accounting pipeline.
pub struct Ingest {
    pub clock: Clock,
    pub live: Arc<dyn LiveSessions>,
    pub db: Db,
    pub spool: Spool,
    store_timeout: Duration,
    wake: Notify,
}

/// Where an event ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Applied to the live map and history.
    Stored,
    /// Written to the local spool for later replay.
    Spooled,
}

impl Ingest {
    pub fn new(live: Arc<dyn LiveSessions>, db: Db, spool: Spool, store_timeout: Duration) -> Self {
        Ingest {
            clock: Clock::new(),
            live,
            db,
            spool,
            store_timeout,
            wake: Notify::new(),
        }
    }

    /// Make one event durable. `Ok` means the NAS may be answered.
    pub async fn record(
        &self,
        event: AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> io::Result<Recorded> {
        // While older events wait in the spool, newer ones queue behind them.
        if self.spool.depth() == 0 {
            match self.apply(&event, expires_at).await {
                Ok(applied) => match self.write_history(&applied).await {
                    Ok(()) => return Ok(Recorded::Stored),
                    Err(e) => {
                        tracing::warn!(error = %e, "history write failed; spooling it");
                        self.spool.append(&SpoolRecord::History(applied)).await?;
                        self.wake.notify_one();
                        return Ok(Recorded::Spooled);
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, nas = %event.nas, session = %event.session_id,
                        "live store unavailable; spooling the event");
                }
            }
        }
        self.spool
            .append(&SpoolRecord::Event {
                event: Box::new(event),
                expires_at,
            })
            .await?;
        self.wake.notify_one();
        Ok(Recorded::Spooled)
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

    async fn write_history(&self, applied: &Applied) -> Result<(), sqlx::Error> {
        if applied.closed.is_empty() && applied.traffic.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = tokio::time::timeout(self.store_timeout, history::record(&self.db, applied))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        metrics::histogram!("ebok_store_latency_seconds", "store" => "sql", "op" => "history")
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("ebok_store_errors_total", "store" => "sql").increment(1);
        } else {
            metrics::counter!("ebok_sessions_closed_total").increment(applied.closed.len() as u64);
        }
        result
    }

    /// Replay spooled records in order until the spool is empty or a store fails.
    /// Returns the number of records replayed.
    pub async fn replay(&self) -> io::Result<usize> {
        let mut done = 0;
        loop {
            let batch = self.spool.peek(256).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            let mut last_ok = None;
            for (record, offset) in batch {
                let ok = match record {
                    SpoolRecord::Event { event, expires_at } => {
                        match self.apply(&event, expires_at).await {
                            Ok(applied) => {
                                if self.write_history(&applied).await.is_err() {
                                    self.spool.append(&SpoolRecord::History(applied)).await?;
                                }
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    SpoolRecord::History(applied) => self.write_history(&applied).await.is_ok(),
                };
                if !ok {
                    break;
                }
                last_ok = Some(offset);
                done += 1;
            }
            match last_ok {
                Some(offset) => self.spool.consumed(offset).await?,
                None => return Ok(done),
            }
        }
    }

    /// Background task: replay whenever something is spooled, retrying every second.
    pub async fn run_replayer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if self.spool.depth() > 0 {
                match self.replay().await {
                    Ok(n) if n > 0 => {
                        tracing::info!(replayed = n, left = self.spool.depth(), "spool replayed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "spool replay failed"),
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
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
            if self.write_history(&applied).await.is_err() {
                self.spool
                    .append(&SpoolRecord::History(applied))
                    .await
                    .map_err(|_| StoreError::Timeout)?;
                self.wake.notify_one();
            }
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
