//! History writing: what applied events produced for history (closed sessions, traffic
//! readings) goes through one writer in group commits to a [`HistoryStore`] (the SQL
//! history), or, when the store fails or is too slow, into the journal for the replay to
//! write later. The store is a trait so the live side needs nothing of SQL.

use std::sync::Arc;
use std::time::Duration;

use crate::journal::{JournalLog, JournalRecord};
use crate::sessions::Applied;

/// Why a history commit did not happen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HistoryError {
    /// The store refused the data itself (a value out of range, a constraint): writing it
    /// again cannot succeed.
    pub refused_for_good: bool,
    pub message: String,
}

/// Where history is committed.
#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Write `applied` in one transaction within `limit`. Idempotent: writing the same
    /// sessions and readings again changes nothing.
    async fn commit(&self, applied: &Applied, limit: Duration) -> Result<(), HistoryError>;

    /// Whether the store answers now.
    async fn ping(&self) -> Result<(), HistoryError>;
}

/// Where a history write ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Committed to the database.
    Committed,
    /// The database failed or was too slow: appended to the journal for replay.
    Journaled,
}

enum Pending {
    /// Commit, or journal when the database fails.
    JournalLog(
        Applied,
        tokio::sync::oneshot::Sender<std::io::Result<Written>>,
    ),
    /// Commit alone within its own time limit, or say why not (a journaled history record
    /// being replayed).
    Direct(
        Applied,
        Duration,
        tokio::sync::oneshot::Sender<Result<(), HistoryError>>,
    ),
}

/// Group commit for history: one task drains every pending write into one transaction, so
/// the database sees one commit per batch instead of one per RADIUS packet, and history has
/// one writer (SQLite takes one at a time). When the database fails or does not commit
/// within `timeout`, the batch goes to the journal, so a caller's write is durable either way
/// and is never applied twice (the journal copy is written only when the commit did not
/// happen). Closed sessions are counted in `ebok_sessions_closed_total` once committed.
#[derive(Clone, Debug)]
pub struct HistoryWriter {
    tx: tokio::sync::mpsc::Sender<Pending>,
}

/// Writes merged into one transaction at most.
const HISTORY_BATCH: usize = 4096;

impl HistoryWriter {
    pub fn spawn(store: Arc<dyn HistoryStore>, spool: JournalLog, timeout: Duration) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(HISTORY_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(HISTORY_BATCH);
            while rx.recv_many(&mut batch, HISTORY_BATCH).await > 0 {
                let mut applied = Vec::new();
                let mut replies = Vec::new();
                for p in batch.drain(..) {
                    match p {
                        Pending::JournalLog(a, reply) => {
                            applied.push(a);
                            replies.push(reply);
                        }
                        Pending::Direct(a, limit, reply) => {
                            let _ = reply.send(store.commit(&a, limit).await);
                        }
                    }
                }
                if applied.is_empty() {
                    continue;
                }
                let merged = merge(applied);
                let result = match store.commit(&merged, timeout).await {
                    Ok(()) => Ok(Written::Committed),
                    Err(e) => {
                        tracing::warn!(error = %e, "history write failed; spooling it");
                        spool
                            .append(&JournalRecord::History(merged))
                            .await
                            .map(|()| Written::Journaled)
                    }
                };
                for reply in replies {
                    let _ = reply.send(match &result {
                        Ok(w) => Ok(*w),
                        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                    });
                }
            }
        });
        HistoryWriter { tx }
    }

    /// Make `applied` durable in history (or the journal).
    pub async fn write(&self, applied: Applied) -> std::io::Result<Written> {
        if applied.closed.is_empty() && applied.traffic.is_empty() {
            return Ok(Written::Committed);
        }
        let stopped = || std::io::Error::other("history writer stopped");
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Pending::JournalLog(applied, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Commit `applied` through the one writer within `limit`, or return the database's
    /// error (nothing is journaled): for history records replayed from the journal.
    pub async fn write_now(&self, applied: Applied, limit: Duration) -> Result<(), HistoryError> {
        if applied.closed.is_empty() && applied.traffic.is_empty() {
            return Ok(());
        }
        let stopped = || HistoryError {
            refused_for_good: false,
            message: "history writer stopped".into(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Pending::Direct(applied, limit, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Several outcomes as one: closed sessions and readings side by side, in order.
pub fn merge(all: impl IntoIterator<Item = Applied>) -> Applied {
    let mut closed = Vec::new();
    let mut traffic = Vec::new();
    for a in all {
        closed.extend(a.closed);
        traffic.extend(a.traffic);
    }
    Applied {
        stale: false,
        closed,
        traffic,
    }
}
