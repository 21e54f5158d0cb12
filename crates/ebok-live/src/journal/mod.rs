//! The local durable journal ("journal"): in journal mode every accounting event is appended
//! here (fsync, group commit) before the NAS is answered; in store mode only when the
//! live-session store or the history database cannot take it in time. It is replayed in order
//! into the stores. `kill -9` at any moment loses nothing that was answered: a record is on
//! disk before its append returns.
//!
//! Layout in the state directory: the journal is a sequence of segment files `spool.N.log`.
//! Appends go to the newest; one that would take it past [`SEGMENT_BYTES`] starts segment
//! N+1. A record is a magic octet, u32 payload length, u32 CRC-32 of the payload, the
//! payload. Magic `0xEC`: an event in the compact binary encoding of [`codec`] (written since
//! journal format 2); `0xEB`: a JSON [`JournalRecord`] (format 1, still written for history
//! records and read for both kinds, so a journal left by an older ebok replays as it is; its
//! single `spool.N.log` is a journal of one segment). `spool.pos` holds the number of the
//! segment the replay position is in and the offset in it. Once the replay has passed the
//! end of a segment, the file is deleted: compaction is an unlink, and no record is ever
//! copied. Records go into zeros written ahead of them (see [`Writer::reserve`]), so the
//! newest segment ends in zeros; a torn record at its tail (a crash mid-write, never
//! answered) is cut off on open. A drained journal is not truncated: records go on after the
//! replayed ones until those fill a room, then the next segment starts and the drained one is
//! deleted.
//!
//! The records waiting for replay are capped (`radius.journal_max_bytes`): past the cap an
//! append of events fails with [`JournalFull`] and the NAS is not answered, so it keeps the
//! record and retries, instead of the journal filling the disk.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::sessions::Applied;
use ebok_radius::event::AccountingEvent;

use segments::{log_path, sync_dir, write_pos, Sealed};

mod codec;
mod frames;
mod replay;
mod segments;
mod writer;

pub use self::frames::*;
use self::writer::*;

/// What the journal keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalRecord {
    /// An event not yet applied to the live map.
    Event {
        /// Shared: the replay hands the same event to the live map without copying it.
        event: Arc<AccountingEvent>,
        #[serde(with = "time::serde::timestamp")]
        expires_at: OffsetDateTime,
    },
    /// An event applied to the live map whose history write failed.
    History(Applied),
}

/// Appends (each one or more records) taken into one group commit at most.
const MAX_BATCH: usize = 1024;
/// Bytes read from the log at once when peeking.
const READ_CHUNK: usize = 1 << 20;
/// Records kept decoded in memory for the replay at most (a few hundred bytes each).
const MEMORY_RECORDS: usize = 1 << 16;
/// Bytes of records in a segment, at most (unless one append is larger): the replayed
/// records a backlog leaves on disk before a segment can go, and the unit of deletion.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Zeros written ahead of the records at a time.
const ROOM: u64 = 4 * 1024 * 1024;

/// Records handed to the replay, each with the journal offset just after it (what
/// [`JournalLog::consumed`] takes).
pub(crate) type Peeked = Vec<(Arc<JournalRecord>, u64)>;

/// An append of events refused because the records waiting for replay reached
/// `radius.journal_max_bytes`. It travels as an [`io::Error`] of kind
/// [`io::ErrorKind::QuotaExceeded`]; the replies of a group commit and the ingest copy errors
/// by kind and message, so callers recognise it with [`is_journal_full`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("journal full: {unreplayed} bytes wait for replay (radius.journal_max_bytes = {max})")]
pub(crate) struct JournalFull {
    /// Bytes of records waiting for replay when the append was refused.
    pub unreplayed: u64,
    pub max: u64,
}

impl From<JournalFull> for io::Error {
    fn from(e: JournalFull) -> io::Error {
        io::Error::new(io::ErrorKind::QuotaExceeded, e)
    }
}

pub use ebok_radius::journal::is_journal_full;

/// Segment files to delete, with the handle still open on one, if any.
type Doomed = Vec<(PathBuf, Option<File>)>;

enum Cmd {
    Append(Frames, oneshot::Sender<io::Result<()>>),
    Read(usize, oneshot::Sender<io::Result<Peeked>>),
    Consumed(u64, oneshot::Sender<io::Result<()>>),
    /// Stop the writer thread; answered once it has let go of the log.
    Close(oneshot::Sender<io::Result<()>>),
}

/// Handle to the journal; cheap to clone.
#[derive(Clone)]
pub struct JournalLog {
    tx: mpsc::Sender<Cmd>,
    depth: Arc<AtomicU64>,
    /// The log, shared with the writer thread: commands from async callers go through that
    /// thread (which batches their appends into one group commit), a blocking append takes
    /// the lock and writes itself.
    writer: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for JournalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalLog")
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl JournalLog {
    /// Open (or create) the journal in `dir`, cutting off a torn tail and deleting segments
    /// already replayed. Starts the writer thread. No cap until [`JournalLog::set_max_bytes`].
    pub fn open(dir: &Path) -> io::Result<JournalLog> {
        JournalLog::open_segmented(dir, SEGMENT_BYTES)
    }

    /// [`JournalLog::open`] with segments of `segment_bytes` (tests use small ones).
    fn open_segmented(dir: &Path, segment_bytes: u64) -> io::Result<JournalLog> {
        std::fs::create_dir_all(dir)?;
        let pos_path = dir.join("spool.pos");
        let opened = segments::open(dir, &pos_path)?;
        segments::remove(opened.leftovers.into_iter().map(|p| (p, None)).collect());
        let depth = Arc::new(AtomicU64::new(opened.records));
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            pos_path,
            sealed: opened.sealed,
            file: opened.file,
            seg: opened.n,
            base: opened.base,
            write_off: opened.write_off,
            room_end: opened.room_end,
            read_off: opened.read_off,
            reading: None,
            segment_bytes,
            max_bytes: 0,
            depth: depth.clone(),
            buf: Vec::new(),
            peeked: VecDeque::new(),
            memory: VecDeque::new(),
        };
        // The position may stand at the end of a segment: it goes now, not after the next
        // replay.
        segments::remove(writer.release()?);
        metrics::gauge!("ebok_journal_depth").set(opened.records as f64);
        metrics::gauge!("ebok_journal_max_bytes").set(0.0);
        writer.gauge_bytes();
        let (tx, rx) = mpsc::channel(4096);
        let writer = Arc::new(Mutex::new(writer));
        let shared = writer.clone();
        std::thread::Builder::new()
            .name("ebok-spool".into())
            .spawn(move || {
                let closed = Writer::run(&shared, rx);
                // The thread's hold on the log goes before the closer hears back.
                drop(shared);
                if let Some(reply) = closed {
                    let _ = reply.send(Ok(()));
                }
            })?;
        Ok(JournalLog { tx, depth, writer })
    }

    /// Refuse appends of events with [`JournalFull`] while `max_bytes` or more bytes of
    /// records wait for replay (0: no cap). History records are always taken: their events
    /// are in the journal already.
    pub fn set_max_bytes(&self, max_bytes: u64) {
        lock(&self.writer).max_bytes = max_bytes;
        metrics::gauge!("ebok_journal_max_bytes").set(max_bytes as f64);
    }

    /// Records waiting to be replayed.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire)
    }

    /// Bytes of records waiting to be replayed (what the cap counts).
    pub fn bytes(&self) -> u64 {
        lock(&self.writer).unreplayed()
    }

    /// Append one record; returns once it is on disk.
    pub async fn append(&self, record: &JournalRecord) -> io::Result<()> {
        let mut frames = Frames::new();
        frames.push(record)?;
        self.append_frames(frames).await
    }

    /// Append one event; returns once it is on disk.
    pub async fn append_event(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> io::Result<()> {
        let mut frames = Frames::new();
        frames.push_event(event, expires_at);
        self.append_frames(frames).await
    }

    /// Append framed records, in their order, in one write; returns once all are on disk.
    pub(crate) async fn append_frames(&self, frames: Frames) -> io::Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        self.call(|tx| Cmd::Append(frames, tx)).await
    }

    /// [`JournalLog::append_frames`] from a thread outside the tokio runtime, blocking it until
    /// the frames are on disk. The calling thread writes and syncs them itself (the radius
    /// receive thread, whose turn is one batch anyway): handing them to the writer thread
    /// and waiting for its answer cost two thread wake-ups per turn (perf: futex and
    /// scheduler ~7 % of the accounting path's CPU).
    pub(crate) fn append_frames_blocking(&self, frames: Frames) -> io::Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut writer = lock(&self.writer);
        let mut all = [(frames, ())];
        if writer.refused_from(&all) == 0 {
            return Err(writer.full().into());
        }
        writer.append_batch(&mut all, 1)
    }

    /// Up to `max` records from the replay position, each with the offset just after it.
    pub async fn peek(&self, max: usize) -> io::Result<Peeked> {
        self.call(|tx| Cmd::Read(max, tx)).await
    }

    /// Mark everything before `offset` (an offset returned by [`JournalLog::peek`]) replayed.
    /// Segments the position has passed are deleted before this returns.
    pub(crate) async fn consumed(&self, offset: u64) -> io::Result<()> {
        self.call(|tx| Cmd::Consumed(offset, tx)).await
    }

    /// Stop the writer thread and wait until it has finished: the commands sent before this
    /// one are answered, later ones from other handles fail. The segment files are closed
    /// when the last handle goes, so closing the last one releases them before this
    /// returns (a restart in-process, or a test reopening the directory, sees only what is
    /// on disk).
    pub async fn close(self) -> io::Result<()> {
        let JournalLog { tx, writer, .. } = self;
        let (reply, closed) = oneshot::channel();
        let stopped = || io::Error::other("spool writer stopped");
        tx.send(Cmd::Close(reply)).await.map_err(|_| stopped())?;
        closed.await.map_err(|_| stopped())??;
        drop(writer);
        Ok(())
    }

    /// Send one command to the writer thread and wait for its answer.
    async fn call<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<io::Result<T>>) -> Cmd,
    ) -> io::Result<T> {
        let stopped = || io::Error::other("spool writer stopped");
        let (tx, rx) = oneshot::channel();
        self.tx.send(cmd(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use super::*;
    use ebok_radius::event::{StatusType, VendorAttribute as VendorAttributeT};

    fn rec(i: u32) -> JournalRecord {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000 + i as i64).unwrap();
        JournalRecord::Event {
            event: Arc::new(AccountingEvent::new(
                StatusType::Start,
                "nas",
                &format!("s{i}"),
                t,
            )),
            expires_at: t,
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[tokio::test]
    async fn append_peek_consume_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        let appends: Vec<_> = (0..50)
            .map(|i| {
                let s = spool.clone();
                async move { s.append(&rec(i)).await }
            })
            .collect();
        for a in appends {
            a.await.unwrap();
        }
        assert_eq!(spool.depth(), 50);
        let first = spool.peek(10).await.unwrap();
        assert_eq!(first.len(), 10);
        assert_eq!(*first[0].0, rec(0));
        spool.consumed(first[9].1).await.unwrap();
        assert_eq!(spool.depth(), 40);
        spool.close().await.unwrap();

        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 40);
        let rest = spool.peek(100).await.unwrap();
        assert_eq!(rest.len(), 40);
        assert_eq!(*rest[0].0, rec(10));
        assert_eq!(*rest[39].0, rec(49));
        spool.consumed(rest[39].1).await.unwrap();
        assert_eq!(spool.depth(), 0);
        // Drained, the log keeps its zeroed room; new records follow the replayed ones, and
        // only they are replayed after a reopen.
        let log_len = || {
            std::fs::metadata(dir.path().join("spool.0.log"))
                .unwrap()
                .len()
        };
        assert_eq!(log_len(), ROOM);
        spool.append(&rec(50)).await.unwrap();
        spool.close().await.unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(log_len(), ROOM, "a zero tail is room, not a torn record");
        assert_eq!(spool.depth(), 1);
        assert_eq!(records(&spool.peek(10).await.unwrap()), vec![rec(50)]);
    }

    /// Files of this process open under `dir`.
    fn open_files_under(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    /// Closing the last handle stops the writer thread and closes the segment files before
    /// it returns; the commands sent before it are answered.
    #[tokio::test]
    async fn close_answers_what_came_before_and_releases_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let dir_path = dir.path().canonicalize().unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        spool.append(&rec(1)).await.unwrap();
        assert!(open_files_under(&dir_path) > 0);
        // An append sent just before the close (they reach the writer in one batch).
        let other = spool.clone();
        let two = rec(2);
        let (appended, closed) = tokio::join!(other.append(&two), spool.close());
        appended.unwrap();
        closed.unwrap();
        drop(other);
        assert_eq!(open_files_under(&dir_path), 0);
        // Closing the last handle releases the files itself.
        let spool = JournalLog::open(dir.path()).unwrap();
        assert!(open_files_under(&dir_path) > 0);
        spool.close().await.unwrap();
        assert_eq!(open_files_under(&dir_path), 0);
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(peek_all(&spool).await, vec![rec(1), rec(2)]);
        // A handle left over after a close finds the writer stopped.
        let other = spool.clone();
        spool.close().await.unwrap();
        let err = other.peek(1).await.unwrap_err();
        assert_eq!(err.to_string(), "spool writer stopped");
    }

    /// Blocking appends (written by the calling thread under the log's lock) and async ones
    /// (group-committed by the writer thread) interleave without losing or tearing a record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_and_async_appends_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        let threads: Vec<_> = [0u32, 1000]
            .into_iter()
            .map(|base| {
                let s = spool.clone();
                std::thread::spawn(move || {
                    for i in base..base + 100 {
                        s.append_frames_blocking(kept(i..i + 1)).unwrap();
                    }
                })
            })
            .collect();
        for i in 2000..2100 {
            spool.append(&rec(i)).await.unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(spool.depth(), 300);
        let check = |all: Vec<JournalRecord>| {
            assert_eq!(all.len(), 300);
            for base in [0u32, 1000, 2000] {
                let mine: Vec<_> = all
                    .iter()
                    .filter(|r| (base..base + 100).any(|i| **r == rec(i)))
                    .cloned()
                    .collect();
                assert_eq!(mine, (base..base + 100).map(rec).collect::<Vec<_>>());
            }
        };
        check(peek_all(&spool).await);
        spool.close().await.unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        check(peek_all(&spool).await);
    }

    /// Once the replayed records fill a room, a drained journal starts the next segment and
    /// deletes the drained one, so they do not pile up behind `spool.pos`.
    #[tokio::test]
    async fn a_drained_journal_past_a_room_starts_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        let n = 100_000;
        for i in (0..n).step_by(1000) {
            spool.append_frames(kept(i..i + 1000)).await.unwrap();
        }
        let end = spool.peek(n as usize).await.unwrap().last().unwrap().1;
        assert!(end > ROOM, "{end} bytes do not fill a room");
        spool.consumed(end).await.unwrap();
        assert_eq!(spool.depth(), 0);
        assert_eq!(spool.bytes(), 0);
        assert_eq!(segment_files(dir.path()), vec![1]);
        spool.append(&rec(n)).await.unwrap();
        spool.close().await.unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(records(&spool.peek(10).await.unwrap()), vec![rec(n)]);
    }

    /// Small segments for the tests: a few dozen records each.
    const SMALL: u64 = 2048;

    /// Numbers of the segment files in `dir`, ascending.
    fn segment_files(dir: &Path) -> Vec<u64> {
        let mut out: Vec<u64> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("spool.")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Inode and contents of every segment file.
    fn snapshot(dir: &Path) -> std::collections::BTreeMap<u64, (u64, Vec<u8>)> {
        use std::os::unix::fs::MetadataExt;
        segment_files(dir)
            .into_iter()
            .map(|n| {
                let path = log_path(dir, n);
                let ino = std::fs::metadata(&path).unwrap().ino();
                (n, (ino, std::fs::read(&path).unwrap()))
            })
            .collect()
    }

    /// Under a backlog of several segments, replaying part of it only deletes the segments
    /// the position passed: every other segment file keeps its inode and every byte it had
    /// (appends only add after them), so no unreplayed record is ever copied or rewritten.
    #[tokio::test]
    async fn replaying_a_backlog_deletes_passed_segments_and_rewrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        let mut next = 0;
        while segment_files(dir.path()).len() < 4 {
            spool.append_frames(kept(next..next + 7)).await.unwrap();
            next += 7;
        }
        let total = next;
        let mut replayed = 0;
        let mut removed = 0;
        while replayed < total {
            let before = snapshot(dir.path());
            let step = spool.peek(11).await.unwrap();
            assert_eq!(records(&step)[0], rec(replayed));
            spool.consumed(step.last().unwrap().1).await.unwrap();
            replayed += step.len() as u32;
            assert_eq!(spool.depth(), u64::from(total - replayed));
            let after = snapshot(dir.path());
            for (n, (ino, bytes)) in &after {
                let (old_ino, old_bytes) = &before[n];
                assert_eq!(ino, old_ino, "segment {n} was replaced");
                assert_eq!(bytes, old_bytes, "segment {n} was rewritten");
            }
            let gone: Vec<_> = before.keys().filter(|n| !after.contains_key(n)).collect();
            // Only the oldest segments go, and only once the position is past them.
            for n in &gone {
                assert!(**n < *after.keys().next().unwrap());
            }
            removed += gone.len();
        }
        assert!(removed >= 3, "{removed} segments removed");
        assert_eq!(spool.bytes(), 0);
        // An append only adds bytes after the records of the newest segment.
        let (n, end) = {
            let w = lock(&spool.writer);
            (w.seg, (w.write_off - w.base) as usize)
        };
        let (ino, bytes) = snapshot(dir.path()).remove(&n).unwrap();
        spool.append(&rec(total)).await.unwrap();
        let (new_ino, new_bytes) = snapshot(dir.path()).remove(&n).unwrap();
        assert_eq!(ino, new_ino);
        assert_eq!(new_bytes[..end], bytes[..end]);
    }

    /// Reopening walks every segment from the position's to the newest: the records come
    /// back in order with the right depth, a torn record at the tail of the newest segment is
    /// cut off, segment files before the position's are deleted, and replay and appends go
    /// on across segments.
    #[tokio::test]
    async fn reopen_walks_the_segments_cuts_a_torn_tail_and_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        let mut total = 0;
        while segment_files(dir.path()).len() < 4 {
            spool.append(&rec(total)).await.unwrap();
            total += 1;
        }
        // Replay into the second segment.
        let first_segment = {
            let w = lock(&spool.writer);
            w.sealed[0].end
        };
        let all = spool.peek(usize::MAX).await.unwrap();
        let k = all
            .iter()
            .position(|(_, end)| *end > first_segment)
            .unwrap()
            + 2;
        spool.consumed(all[k - 1].1).await.unwrap();
        assert_eq!(segment_files(dir.path()), vec![1, 2, 3]);
        let (newest, records_end) = {
            let w = lock(&spool.writer);
            (w.seg, w.write_off - w.base)
        };
        spool.close().await.unwrap();
        // A leftover before the position, and a torn record after the zeros of the newest.
        std::fs::write(dir.path().join("spool.0.log"), b"leftover").unwrap();
        let path = log_path(dir.path(), newest);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[MAGIC_EVENT, 200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        assert_eq!(segment_files(dir.path()), vec![1, 2, 3]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), records_end);
        assert_eq!(spool.depth(), u64::from(total) - k as u64);
        let rest = spool.peek(usize::MAX).await.unwrap();
        assert_eq!(
            records(&rest),
            (k as u32..total).map(rec).collect::<Vec<_>>()
        );
        // Consume across a segment boundary, append into new segments, reopen again.
        spool.consumed(rest[rest.len() / 2].1).await.unwrap();
        let from = k as u32 + rest.len() as u32 / 2 + 1;
        for i in total..total + 100 {
            spool.append(&rec(i)).await.unwrap();
        }
        assert!(segment_files(dir.path()).len() > 3);
        spool.close().await.unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        assert_eq!(spool.depth(), u64::from(total + 100 - from));
        let rest = spool.peek(usize::MAX).await.unwrap();
        assert_eq!(
            records(&rest),
            (from..total + 100).map(rec).collect::<Vec<_>>()
        );
        spool.consumed(rest.last().unwrap().1).await.unwrap();
        assert_eq!(spool.depth(), 0);
        assert_eq!(segment_files(dir.path()).len(), 1);
    }

    /// Only the newest segment can end in a torn record; bytes that are not a record after
    /// the records of a complete segment are skipped at open, never cut, and the segments
    /// after it replay as well.
    #[tokio::test]
    async fn damage_after_the_records_of_a_complete_segment_is_skipped_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        let mut total = 0;
        while segment_files(dir.path()).len() < 3 {
            spool.append(&rec(total)).await.unwrap();
            total += 1;
        }
        let end = lock(&spool.writer).sealed[0].end;
        spool.close().await.unwrap();
        let path = log_path(dir.path(), 0);
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(end < len, "the segment ends in zeros");
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[MAGIC_EVENT, 1, 2, 3], end).unwrap();
        drop(f);
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert_eq!(spool.depth(), u64::from(total));
        let all = records(&spool.peek(usize::MAX).await.unwrap());
        assert_eq!(all, (0..total).map(rec).collect::<Vec<_>>());
    }

    /// A journal as ebok wrote it before segments: one `spool.N.log` (records, then zeros) and
    /// `spool.pos` naming it. It is a journal of one segment: replay goes on from the
    /// position, appends follow the records.
    #[tokio::test]
    async fn a_spool_of_one_file_opens_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let mut frames = Frames::new();
        for i in 0..5 {
            frames.push(&rec(i)).unwrap();
        }
        let two = {
            let mut f = Frames::new();
            f.push(&rec(0)).unwrap();
            f.push(&rec(1)).unwrap();
            f.buf.len() as u64
        };
        let mut log = frames.buf.clone();
        log.resize(log.len() + 4096, 0);
        std::fs::write(dir.path().join("spool.7.log"), &log).unwrap();
        segments::write_pos(&dir.path().join("spool.pos"), 7, two).unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        assert_eq!(spool.depth(), 3);
        assert_eq!(spool.bytes(), frames.buf.len() as u64 - two);
        spool.append(&rec(5)).await.unwrap();
        assert_eq!(segment_files(dir.path()), vec![7]);
        let all = spool.peek(100).await.unwrap();
        assert_eq!(records(&all), (2..6).map(rec).collect::<Vec<_>>());
        spool.consumed(all[0].1).await.unwrap();
        spool.close().await.unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        assert_eq!(peek_all(&spool).await, (3..6).map(rec).collect::<Vec<_>>());
    }

    /// When `spool.pos` names a segment that is not there, the oldest one left replays from
    /// its start.
    #[tokio::test]
    async fn a_position_in_a_missing_segment_replays_the_next_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut frames = Frames::new();
        for i in 0..3 {
            frames.push(&rec(i)).unwrap();
        }
        std::fs::write(dir.path().join("spool.4.log"), &frames.buf).unwrap();
        segments::write_pos(&dir.path().join("spool.pos"), 2, 100).unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(peek_all(&spool).await, (0..3).map(rec).collect::<Vec<_>>());
    }

    /// Past the cap, appends of events are refused with the journal-full error, by the
    /// writer thread and by a blocking append alike; history records are still taken; once
    /// the replay consumed some, events are taken again.
    #[tokio::test]
    async fn past_the_cap_events_are_refused_and_history_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open_segmented(dir.path(), SMALL).unwrap();
        let one = {
            let mut f = Frames::new();
            f.push(&rec(0)).unwrap();
            f.buf.len() as u64
        };
        spool.set_max_bytes(10 * one);
        for i in 0..10 {
            spool.append(&rec(i)).await.unwrap();
        }
        assert_eq!(spool.bytes(), 10 * one);
        let full = |e: io::Error| {
            assert!(is_journal_full(&e), "{e}");
            let inner = e.get_ref().and_then(|e| e.downcast_ref::<JournalFull>());
            assert_eq!(inner.unwrap().max, 10 * one, "{e}");
        };
        full(spool.append(&rec(10)).await.unwrap_err());
        full(spool.append_frames_blocking(kept(10..11)).unwrap_err());
        let history = JournalRecord::History(crate::sessions::Applied::default());
        spool.append(&history).await.unwrap();
        assert_eq!(spool.depth(), 11);
        // Once the replay consumed some, events fit again up to the cap; concurrent appends
        // (one group commit or several) are taken while they fit, the others refused.
        let all = spool.peek(8).await.unwrap();
        spool.consumed(all[7].1).await.unwrap();
        let size = {
            let mut f = Frames::new();
            f.push(&rec(100)).unwrap();
            f.buf.len() as u64
        };
        let room = (10 * one - spool.bytes()) / size;
        assert!(room > 0);
        let appends: Vec<_> = (100..100 + room as u32 + 3)
            .map(|i| {
                let s = spool.clone();
                tokio::spawn(async move { s.append(&rec(i)).await })
            })
            .collect();
        let mut taken = 0;
        for a in appends {
            match a.await.unwrap() {
                Ok(()) => taken += 1,
                Err(e) => full(e),
            }
        }
        assert_eq!(taken, room);
        assert!(spool.bytes() <= 10 * one);
        spool.append(&history).await.unwrap();
        assert!(spool.bytes() > 10 * one);
        assert_eq!(spool.depth(), 2 + 1 + taken + 1);
        let rest = records(&spool.peek(100).await.unwrap());
        assert_eq!(rest[..3], [rec(8), rec(9), history.clone()]);
        assert_eq!(rest.last(), Some(&history));
        // Without a cap, anything goes.
        spool.set_max_bytes(0);
        spool.append_frames_blocking(kept(20..30)).unwrap();
    }

    /// Frames of owned events (kept in memory by the writer).
    fn kept(range: std::ops::Range<u32>) -> Frames {
        let mut frames = Frames::new();
        for i in range {
            let JournalRecord::Event { event, expires_at } = rec(i) else {
                unreachable!()
            };
            frames.push_owned_event((*event).clone(), expires_at);
        }
        frames
    }

    fn records(peeked: &Peeked) -> Vec<JournalRecord> {
        peeked.iter().map(|r| (*r.0).clone()).collect()
    }

    async fn peek_all(spool: &JournalLog) -> Vec<JournalRecord> {
        records(&spool.peek(1000).await.unwrap())
    }

    #[tokio::test]
    async fn kept_records_replay_from_memory_and_from_the_file_alike() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        spool.append_frames(kept(0..3)).await.unwrap();
        // A record that is not kept breaks the run: later kept frames are read from the file
        // until the memory is empty again.
        spool.append(&rec(3)).await.unwrap();
        spool.append_frames(kept(4..6)).await.unwrap();
        let all = spool.peek(1000).await.unwrap();
        assert_eq!(records(&all), (0..6).map(rec).collect::<Vec<_>>());
        // The same bytes are on disk: the ends handed out match the file's records.
        spool.consumed(all[1].1).await.unwrap();
        assert_eq!(peek_all(&spool).await, (2..6).map(rec).collect::<Vec<_>>());
        spool.consumed(all[5].1).await.unwrap();
        assert_eq!(spool.depth(), 0);
        // Memory starts again with the next kept append.
        spool.append_frames(kept(6..8)).await.unwrap();
        spool.append_frames(kept(8..9)).await.unwrap();
        assert_eq!(peek_all(&spool).await, (6..9).map(rec).collect::<Vec<_>>());
        let peeked = spool.peek(2).await.unwrap();
        spool.consumed(peeked[1].1).await.unwrap();
        spool.close().await.unwrap();
        // After a restart only the file is left, and it holds the same records.
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 1);
        assert_eq!(peek_all(&spool).await, vec![rec(8)]);
    }

    /// The memory of kept records and the ends handed out carry over from one segment to
    /// the next; more than the memory holds is read from the files, in order.
    #[tokio::test]
    async fn kept_records_survive_new_segments_and_memory_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let spool = JournalLog::open_segmented(dir.path(), 256).unwrap();
        for i in 0..10 {
            spool.append_frames(kept(i..i + 1)).await.unwrap();
        }
        assert!(segment_files(dir.path()).len() > 2);
        assert_eq!(lock(&spool.writer).memory.len(), 10);
        let all = spool.peek(10).await.unwrap();
        spool.consumed(all[3].1).await.unwrap();
        let rest = spool.peek(100).await.unwrap();
        assert_eq!(records(&rest), (4..10).map(rec).collect::<Vec<_>>());
        spool.consumed(rest[1].1).await.unwrap();
        assert_eq!(peek_all(&spool).await, (6..10).map(rec).collect::<Vec<_>>());
        // More than the memory holds (and one append larger than a segment): the overflow
        // comes from the file, in order.
        let n = MEMORY_RECORDS as u32 + 10;
        spool.append_frames(kept(10..10 + n)).await.unwrap();
        spool.append_frames(kept(10 + n..12 + n)).await.unwrap();
        let all = spool.peek(usize::MAX).await.unwrap();
        assert_eq!(all.len(), n as usize + 6);
        for (k, (record, _)) in all.iter().enumerate() {
            assert_eq!(**record, rec(6 + k as u32));
        }
        spool.consumed(all.last().unwrap().1).await.unwrap();
        assert_eq!(spool.depth(), 0);
        assert_eq!(segment_files(dir.path()).len(), 1);
    }

    fn full_event() -> AccountingEvent {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let mut e = AccountingEvent::new(StatusType::Stop, "192.0.2.1", "sess-ł", t);
        e.nas_client = "bras-1".into();
        e.source = "2001:db8::1".parse().unwrap();
        e.user_name = Some("jan@isp".into());
        e.nas_ip_address = Some("192.0.2.1".parse().unwrap());
        e.nas_ipv6_address = Some("2001:db8::2".parse().unwrap());
        e.nas_identifier = Some(String::new());
        e.nas_port = Some(15_728_640);
        e.nas_port_id = Some("pppoe-vlan100".into());
        e.framed_ip = Some("100.64.1.2".parse().unwrap());
        e.framed_ipv6_prefixes = vec!["2001:db8:1:2::/64".parse().unwrap()];
        e.delegated_ipv6_prefixes = vec![
            "2001:db8:100::/56".parse().unwrap(),
            "2001:db8:200::/61".parse().unwrap(),
            "::/0".parse().unwrap(),
        ];
        e.framed_ipv6_addresses = vec!["2001:db8::99".parse().unwrap()];
        e.framed_interface_id = Some([1, 2, 3, 4, 5, 6, 7, 8]);
        e.calling_station_id = Some("AA:BB:CC:DD:EE:FF".into());
        e.called_station_id = Some("service1".into());
        e.input_octets = u64::MAX;
        e.output_octets = 1 << 40;
        e.input_packets = 0;
        e.output_packets = 127;
        e.session_time = Some(u32::MAX);
        e.terminate_cause = Some(1);
        e.class = vec![vec![], vec![0, 255, 7]];
        e.delay_time = Some(0);
        e.vendor_attributes = vec![
            VendorAttributeT {
                vendor_id: 14988,
                attr_type: 8,
                name: Some("Mikrotik-Rate-Limit".into()),
                text: Some("10M/10M".into()),
                raw: b"10M/10M".to_vec(),
            },
            VendorAttributeT {
                vendor_id: 0,
                attr_type: 0,
                name: None,
                text: None,
                raw: vec![1, 2],
            },
        ];
        e
    }

    #[test]
    fn binary_event_roundtrip_and_rejects_damage() {
        let e = full_event();
        let deadline = OffsetDateTime::from_unix_timestamp(-5).unwrap();
        let mut buf = Vec::new();
        codec::encode_event(&mut buf, &e, deadline);
        assert_eq!(codec::decode_event(&buf), Some((e.clone(), deadline)));
        let json = serde_json::to_vec(&JournalRecord::Event {
            event: Arc::new(e.clone()),
            expires_at: deadline,
        })
        .unwrap();
        assert!(
            buf.len() * 2 < json.len(),
            "{} vs {}",
            buf.len(),
            json.len()
        );
        for cut in 0..buf.len() {
            assert_eq!(codec::decode_event(&buf[..cut]), None, "cut at {cut}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert_eq!(codec::decode_event(&longer), None);
        let bare = AccountingEvent::new(
            StatusType::AccountingOn,
            "nas",
            "",
            OffsetDateTime::UNIX_EPOCH,
        );
        let mut buf = Vec::new();
        codec::encode_event(&mut buf, &bare, deadline);
        assert_eq!(codec::decode_event(&buf), Some((bare, deadline)));
    }

    #[tokio::test]
    async fn json_records_of_format_1_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        // A log as an older ebok wrote it: JSON payloads only.
        let mut old = Vec::new();
        for i in 0..3 {
            let p = serde_json::to_vec(&rec(i)).unwrap();
            old.push(MAGIC);
            old.extend_from_slice(&(p.len() as u32).to_le_bytes());
            old.extend_from_slice(&crc32(&p).to_le_bytes());
            old.extend_from_slice(&p);
        }
        std::fs::write(dir.path().join("spool.0.log"), &old).unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 3);
        let history = JournalRecord::History(crate::sessions::Applied::default());
        spool.append(&rec(3)).await.unwrap();
        spool.append(&history).await.unwrap();
        let mut frames = Frames::new();
        frames.push_event(&full_event(), OffsetDateTime::UNIX_EPOCH);
        frames.push(&rec(4)).unwrap();
        spool.append_frames(frames).await.unwrap();
        assert_eq!(spool.depth(), 7);
        let all: Vec<_> = spool.peek(100).await.unwrap();
        let mut want: Vec<_> = (0..4).map(rec).collect();
        want.push(history);
        want.push(JournalRecord::Event {
            event: Arc::new(full_event()),
            expires_at: OffsetDateTime::UNIX_EPOCH,
        });
        want.push(rec(4));
        assert_eq!(all.iter().map(|r| (*r.0).clone()).collect::<Vec<_>>(), want);
        // Consume in two steps; the depth follows.
        spool.consumed(all[1].1).await.unwrap();
        assert_eq!(spool.depth(), 5);
        spool.close().await.unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 5);
        let rest = spool.peek(2).await.unwrap();
        assert_eq!(*rest[0].0, want[2]);
        let rest = spool.peek(100).await.unwrap();
        assert_eq!(rest.len(), 5);
        spool.consumed(rest[4].1).await.unwrap();
        assert_eq!(spool.depth(), 0);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = JournalLog::open(dir.path()).unwrap();
            spool.append(&rec(1)).await.unwrap();
            spool.append(&rec(2)).await.unwrap();
            spool.close().await.unwrap();
        }
        let path = dir.path().join("spool.0.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[MAGIC, 200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 2);
        spool.append(&rec(3)).await.unwrap();
        let all = spool.peek(10).await.unwrap();
        assert_eq!(
            all.iter().map(|r| (*r.0).clone()).collect::<Vec<_>>(),
            vec![rec(1), rec(2), rec(3)]
        );
    }

    #[tokio::test]
    async fn torn_record_in_the_zeroed_room_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let end = {
            let spool = JournalLog::open(dir.path()).unwrap();
            spool.append(&rec(1)).await.unwrap();
            spool.append(&rec(2)).await.unwrap();
            let end = spool.peek(10).await.unwrap()[1].1;
            spool.close().await.unwrap();
            end
        };
        let path = dir.path().join("spool.0.log");
        // A crash mid-write: the start of a third record where the next append goes, the
        // rest of the room still zeros.
        let mut frames = Frames::new();
        frames.push(&rec(3)).unwrap();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&frames.buf[..frames.buf.len() / 2], end)
            .unwrap();
        drop(f);
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
        spool.append(&rec(4)).await.unwrap();
        spool.close().await.unwrap();
        let spool = JournalLog::open(dir.path()).unwrap();
        assert_eq!(
            records(&spool.peek(10).await.unwrap()),
            vec![rec(1), rec(2), rec(4)]
        );
    }
}
