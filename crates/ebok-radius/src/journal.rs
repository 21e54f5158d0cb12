//! The seam between the listener and whatever keeps the events: the listener hands each
//! batch of accepted events to a [`Journal`] and answers the NAS only for the events it
//! reports durable. The listener knows nothing of stores; the live layer implements this.

use std::io;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::event::AccountingEvent;

/// How an event was made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Applied to the live map and history.
    Stored,
    /// Written to the local journal, applied later by its replay.
    Journaled,
}

/// Where the listener puts the events it accepted.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// The time a batch arrived (one read per batch).
    fn now(&self) -> OffsetDateTime;

    /// Make `events` (each with the time its session expires without news) durable, in
    /// their order; one result per event. An error means: do not answer, the NAS retries.
    async fn record_batch(
        &self,
        events: Vec<(AccountingEvent, OffsetDateTime)>,
    ) -> Vec<io::Result<Recorded>>;

    /// As [`Journal::record_batch`], from an OS thread outside the async runtime, blocking
    /// until the events are on disk.
    fn record_blocking(
        &self,
        events: Vec<(AccountingEvent, OffsetDateTime)>,
    ) -> Vec<io::Result<Recorded>>;
}

/// An event refused because the journal holds as much as `radius.journal_max_bytes` allows
/// (the NAS keeps it and retries): the error kind such refusals carry.
pub fn is_journal_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::QuotaExceeded
}
