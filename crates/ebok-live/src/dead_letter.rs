//! Journal records that can never be applied, set aside so that the replay goes on.
//!
//! The replay applies the journal in order and waits while a store is down. A record the
//! store refuses for good (an event it cannot encode, a session record it cannot decode, a
//! history row the database rejects), or one that keeps failing while the store answers
//! everything else, would otherwise hold every record behind it forever. Such a record is
//! appended to `dead-letter.jsonl` in the state directory (one JSON object per line: when,
//! why, and the record as the journal's JSON holds it; synced before the replay moves on),
//! counted in `ebok_journal_set_aside_total{kind}` and logged. Nothing reads the file back:
//! it is for the operator (`jq` shows it), and an event in it can be sent again by the NAS
//! or with `radclient` once its cause is fixed.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

use crate::journal::JournalRecord;

/// The file name in the state directory.
pub const FILE_NAME: &str = "dead-letter.jsonl";

/// Where records that can never be applied go.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(with = "time::serde::rfc3339")]
    set_aside_at: OffsetDateTime,
    reason: &'a str,
    record: &'a JournalRecord,
}

impl DeadLetters {
    /// Dead letters in `dir` (the state directory); the file is created on first use.
    pub fn new(dir: &Path) -> Self {
        DeadLetters {
            path: dir.join(FILE_NAME),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `record` with `reason` and sync it; only then may the replay pass over it.
    pub fn set_aside(&self, record: &JournalRecord, reason: &str) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Line {
            set_aside_at: OffsetDateTime::now_utc(),
            reason,
            record,
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            if file.is_none() {
                *file = Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?,
                );
            }
            let f = file.as_mut().expect("opened above");
            f.write_all(&line)?;
            f.sync_data()?;
        }
        let kind = match record {
            JournalRecord::Event { .. } => "event",
            JournalRecord::History(_) => "history",
        };
        metrics::counter!("ebok_journal_set_aside_total", "kind" => kind).increment(1);
        match record {
            JournalRecord::Event { event, .. } => tracing::error!(
                file = %self.path.display(), reason, status = event.status.label(),
                nas = ?event.nas, session = ?event.session_id, user = ?event.user_name,
                event_time = %event.event_time,
                "journal: an event that can never be applied was set aside; the replay goes on"
            ),
            JournalRecord::History(a) => tracing::error!(
                file = %self.path.display(), reason, closed = a.closed.len(),
                readings = a.traffic.len(),
                "journal: history that can never be written was set aside; the replay goes on"
            ),
        }
        Ok(())
    }

    /// Every line written so far, parsed (for tests and tools).
    pub fn read(path: &Path) -> io::Result<Vec<serde_json::Value>> {
        match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).map_err(io::Error::other))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use ebok_radius::event::{AccountingEvent, StatusType};

    #[test]
    fn records_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let dl = DeadLetters::new(dir.path());
        assert!(DeadLetters::read(dl.path()).unwrap().is_empty());
        let at = time::macros::datetime!(2026-07-01 10:00 UTC);
        for sid in ["a", "b"] {
            let record = JournalRecord::Event {
                event: Arc::new(AccountingEvent::new(StatusType::Start, "nas1", sid, at)),
                expires_at: at,
            };
            dl.set_aside(&record, "time out of range").unwrap();
        }
        let lines = DeadLetters::read(dl.path()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["reason"], "time out of range");
        assert_eq!(lines[1]["record"]["Event"]["event"]["session_id"], "b");
    }
}
