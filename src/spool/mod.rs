//! The local durable spool: when the live-session store or the history database cannot take
//! an event in time, the event is appended here (fsync, group commit), the NAS is answered,
//! and the spool is replayed in order once the stores are back. `kill -9` at any moment loses
//! nothing that was answered: a record is on disk before its append returns.
//!
//! Layout in the state directory: `spool.N.log` (generation N) holds records: a magic octet,
//! u32 payload length, u32 CRC-32 of the payload, the payload. Magic `0xEC`: an event in the
//! compact binary encoding of [`codec`] (written since spool format 2); `0xEB`: a JSON
//! [`SpoolRecord`] (format 1, still written for history records and read for both kinds, so
//! a spool left by an older ebok replays as it is). `spool.pos` holds the generation and the
//! offset up to which records were replayed. Records go into zeros written ahead of them
//! (see [`Writer::reserve`]), so the log ends in zeros; a torn record at the tail (a crash
//! mid-write, never answered) is cut off on open. A drained log is not truncated: the records
//! go on after the replayed ones until they fill a room, then the next generation starts.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::radius::event::AccountingEvent;
use crate::sessions::Applied;

mod codec;

/// What the spool keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpoolRecord {
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

/// A JSON [`SpoolRecord`].
const MAGIC: u8 = 0xEB;
/// An event in the binary encoding of [`codec`].
const MAGIC_EVENT: u8 = 0xEC;
const HEADER: usize = 9;
/// Appends (each one or more records) taken into one group commit at most.
const MAX_BATCH: usize = 1024;
/// Bytes read from the log at once when peeking.
const READ_CHUNK: usize = 1 << 20;
/// Records kept decoded in memory for the replay at most (a few hundred bytes each).
const MEMORY_RECORDS: usize = 1 << 16;

/// Framed records ready to append: the bytes as they go to the log, and how many records
/// they hold. Encoding happens in the caller, so the writer thread only writes.
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
    count: u64,
    /// The records pushed with [`Frames::push_owned_event`], with the end of each one in
    /// `buf`. When that is every record (as many as `count`), the writer keeps them for the
    /// replay, which then need not read the log back.
    records: Vec<(Arc<SpoolRecord>, usize)>,
}

impl Frames {
    pub fn new() -> Self {
        Frames::default()
    }

    /// Records framed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Frame one event (binary encoding).
    pub fn push_event(&mut self, event: &AccountingEvent, expires_at: OffsetDateTime) {
        let start = self.open(MAGIC_EVENT);
        codec::encode_event(&mut self.buf, event, expires_at);
        self.close(start);
    }

    /// Frame one event and keep it, so the replay can take it from memory.
    pub fn push_owned_event(&mut self, event: AccountingEvent, expires_at: OffsetDateTime) {
        let start = self.open(MAGIC_EVENT);
        codec::encode_event(&mut self.buf, &event, expires_at);
        self.close(start);
        let record = SpoolRecord::Event {
            event: Arc::new(event),
            expires_at,
        };
        self.records.push((Arc::new(record), self.buf.len()));
    }

    /// Frame any record: events in the binary encoding, history records as JSON.
    pub fn push(&mut self, record: &SpoolRecord) -> io::Result<()> {
        match record {
            SpoolRecord::Event { event, expires_at } => self.push_event(event, *expires_at),
            SpoolRecord::History(_) => {
                let start = self.open(MAGIC);
                if let Err(e) = serde_json::to_writer(&mut self.buf, record) {
                    self.buf.truncate(start);
                    return Err(io::Error::other(e));
                }
                self.close(start);
            }
        }
        Ok(())
    }

    fn open(&mut self, magic: u8) -> usize {
        let start = self.buf.len();
        self.buf.push(magic);
        self.buf.extend_from_slice(&[0; HEADER - 1]);
        start
    }

    fn close(&mut self, start: usize) {
        let payload = &self.buf[start + HEADER..];
        let len = payload.len() as u32;
        let crc = crc32(payload);
        self.buf[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 5..start + 9].copy_from_slice(&crc.to_le_bytes());
        self.count += 1;
    }
}

/// Records handed to the replay, each with the log offset just after it.
pub type Peeked = Vec<(Arc<SpoolRecord>, u64)>;

enum Cmd {
    Append(Frames, oneshot::Sender<io::Result<()>>),
    Read(usize, oneshot::Sender<io::Result<Peeked>>),
    Consumed(u64, oneshot::Sender<io::Result<()>>),
    /// Tests: consume up to the offset, then compact whatever the head's size.
    #[cfg(test)]
    CompactAfter(u64, oneshot::Sender<io::Result<()>>),
}

/// Handle to the spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    tx: mpsc::Sender<Cmd>,
    depth: Arc<AtomicU64>,
    /// The log, shared with the writer thread: commands from async callers go through that
    /// thread (which batches their appends into one group commit), a blocking append takes
    /// the lock and writes itself.
    writer: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Open (or create) the spool in `dir`, cutting off a torn tail. Starts the writer thread.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let pos_path = dir.join("spool.pos");
        let (gen, mut read_off) = read_pos(&pos_path)?;
        let log_path = log_path(dir, gen);
        remove_other_generations(dir, gen)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)?;
        let mut len = file.metadata()?.len();
        if read_off > len {
            read_off = 0;
        }
        // Walk the records after the read offset, counting them and finding the end: zeros
        // (the preallocated room, kept) or a torn record (never answered, cut off).
        let mut end = read_off;
        let mut count = 0u64;
        while let Some(used) = record_len_at(&file, end, len)? {
            end += used;
            count += 1;
        }
        if end < len && !all_zero(&file, end, len)? {
            tracing::warn!(
                torn_bytes = len - end,
                "spool: cutting off an incomplete record at the tail (never answered)"
            );
            file.set_len(end)?;
            file.sync_all()?;
            len = end;
        }
        let depth = Arc::new(AtomicU64::new(count));
        metrics::gauge!("ebok_spool_depth").set(count as f64);
        let (tx, rx) = mpsc::channel(4096);
        let writer = Writer {
            file,
            dir: dir.to_path_buf(),
            gen,
            pos_path,
            write_off: end,
            room_end: len,
            read_off,
            depth: depth.clone(),
            buf: Vec::new(),
            peeked: std::collections::VecDeque::new(),
            memory: std::collections::VecDeque::new(),
        };
        let writer = Arc::new(Mutex::new(writer));
        let shared = writer.clone();
        std::thread::Builder::new()
            .name("ebok-spool".into())
            .spawn(move || Writer::run(&shared, rx))?;
        Ok(Spool { tx, depth, writer })
    }

    /// Records waiting to be replayed.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire)
    }

    /// Append one record; returns once it is on disk.
    pub async fn append(&self, record: &SpoolRecord) -> io::Result<()> {
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
    pub async fn append_frames(&self, frames: Frames) -> io::Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        self.call(|tx| Cmd::Append(frames, tx)).await
    }

    /// [`Spool::append_frames`] from a thread outside the tokio runtime, blocking it until
    /// the frames are on disk. The calling thread writes and syncs them itself (the radius
    /// receive thread, whose turn is one batch anyway): handing them to the writer thread
    /// and waiting for its answer cost two thread wake-ups per turn (perf: futex and
    /// scheduler ~7 % of the accounting path's CPU).
    pub fn append_frames_blocking(&self, frames: Frames) -> io::Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        lock(&self.writer).append_batch(&mut [(frames, ())])
    }

    /// Up to `max` records from the replay position, each with the offset just after it.
    pub async fn peek(&self, max: usize) -> io::Result<Peeked> {
        self.call(|tx| Cmd::Read(max, tx)).await
    }

    /// Mark everything before `offset` (an offset returned by [`Spool::peek`]) replayed.
    pub async fn consumed(&self, offset: u64) -> io::Result<()> {
        self.call(|tx| Cmd::Consumed(offset, tx)).await
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

struct Writer {
    file: File,
    dir: PathBuf,
    /// Generation of the log file; compaction moves to the next one.
    gen: u64,
    pos_path: PathBuf,
    write_off: u64,
    /// End of the file: zeros from `write_off` to here, written ahead (see [`Writer::reserve`]).
    room_end: u64,
    read_off: u64,
    depth: Arc<AtomicU64>,
    /// Reused for the bytes of one group commit.
    buf: Vec<u8>,
    /// End offsets of the records handed out by the last reads, past `read_off`: `consumed`
    /// counts from them instead of walking the headers again.
    peeked: std::collections::VecDeque<u64>,
    /// The most recently appended records still to be replayed, decoded: (start, end, record)
    /// in log order, back to back. The replay takes them from here instead of reading and
    /// decoding the log again; what is not here (after a restart, or past [`MEMORY_RECORDS`]
    /// under a long backlog) is read from the file.
    memory: std::collections::VecDeque<(u64, u64, Arc<SpoolRecord>)>,
}

impl Writer {
    fn run(this: &Mutex<Writer>, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(cmd) = rx.blocking_recv() {
            match cmd {
                Cmd::Append(payload, reply) => {
                    // Group commit: take every append already waiting, one fsync for all.
                    let mut batch = vec![(payload, reply)];
                    let mut other = None;
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Cmd::Append(p, r)) => batch.push((p, r)),
                            Ok(cmd) => {
                                other = Some(cmd);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let result = lock(this).append_batch(&mut batch);
                    for (_, reply) in batch {
                        let _ = reply.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        });
                    }
                    if let Some(cmd) = other {
                        lock(this).other(cmd);
                    }
                }
                cmd => lock(this).other(cmd),
            }
        }
    }

    fn other(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Append(..) => unreachable!("appends are batched by run"),
            Cmd::Read(max, reply) => {
                let _ = reply.send(self.read(max));
            }
            Cmd::Consumed(offset, reply) => {
                let _ = reply.send(self.consumed(offset));
            }
            #[cfg(test)]
            Cmd::CompactAfter(offset, reply) => {
                let r = self.consumed(offset).and_then(|()| self.compact());
                let _ = reply.send(r);
            }
        }
    }

    /// Write the frames of one group commit; on success their kept records move to
    /// `memory`.
    fn append_batch<R>(&mut self, all: &mut [(Frames, R)]) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut n = 0u64;
        for (f, _) in all.iter() {
            buf.extend_from_slice(&f.buf);
            n += f.count;
        }
        let len = buf.len() as u64;
        let written = self
            .reserve(self.write_off + len)
            .and_then(|()| self.file.write_all_at(&buf, self.write_off))
            .and_then(|()| self.file.sync_data());
        if buf.capacity() <= 4 * READ_CHUNK {
            self.buf = buf;
        }
        if let Err(e) = written {
            // Leave no partial record behind for the next append to follow.
            let _ = self.file.set_len(self.write_off);
            self.room_end = self.write_off;
            return Err(e);
        }
        self.remember(all);
        self.write_off += len;
        let depth = self.depth.fetch_add(n, Ordering::AcqRel) + n;
        metrics::gauge!("ebok_spool_depth").set(depth as f64);
        metrics::counter!("ebok_spool_appended_total").increment(n);
        Ok(())
    }

    /// Make the file reach at least `end` with zeros written ahead of the records, a
    /// [`ROOM`] at a time. A record then lands in blocks the file already has, and its
    /// `fdatasync` flushes only data: appending past the end made every group commit a
    /// journal commit of the new size and blocks too (on ext4 here, 8 KiB written and synced
    /// took 325 µs appended and 220 µs into a zeroed file). Zeros, not `fallocate`: allocated
    /// but unwritten blocks need the same metadata commit on their first write.
    fn reserve(&mut self, end: u64) -> io::Result<()> {
        static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
        if end <= self.room_end {
            return Ok(());
        }
        let target = end.next_multiple_of(ROOM);
        let mut at = self.room_end;
        while at < target {
            let n = ((target - at) as usize).min(ZEROS.len());
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.room_end = target;
        Ok(())
    }

    /// Keep the records of frames just written at `write_off` (not yet advanced) in memory,
    /// as long as they continue the records kept there and the memory has room.
    fn remember<R>(&mut self, all: &mut [(Frames, R)]) {
        let mut at = self.write_off;
        for (f, _) in all.iter_mut() {
            let contiguous = self.memory.back().is_none_or(|(_, end, _)| *end == at);
            if f.records.len() as u64 == f.count
                && contiguous
                && self.memory.len() + f.records.len() <= MEMORY_RECORDS
            {
                let mut start = at;
                for (record, end) in f.records.drain(..) {
                    let end = at + end as u64;
                    self.memory.push_back((start, end, record));
                    start = end;
                }
            }
            at += f.buf.len() as u64;
        }
    }

    /// Up to `max` records from the replay position: from memory where they are kept there,
    /// else read from the log in large chunks.
    fn read(&mut self, max: usize) -> io::Result<Peeked> {
        let mut out = Vec::new();
        let mut off = self.read_off;
        while out.len() < max && off < self.write_off {
            let kept_from = self.memory.front().map_or(self.write_off, |(s, _, _)| *s);
            if off < kept_from {
                off = self.read_file(&mut out, max, off, kept_from)?;
                continue;
            }
            let from = off;
            for (_, end, record) in self.memory.iter().skip_while(|(s, _, _)| *s < from) {
                if out.len() >= max {
                    break;
                }
                out.push((record.clone(), *end));
                off = *end;
            }
            if off < self.write_off && out.len() < max {
                // Past the memory: appends that did not fit; from the file.
                off = self.read_file(&mut out, max, off, self.write_off)?;
            }
        }
        // Remember where the records end, for `consumed`.
        let known = self.peeked.back().copied().unwrap_or(self.read_off);
        self.peeked
            .extend(out.iter().map(|(_, end)| *end).filter(|end| *end > known));
        Ok(out)
    }

    /// Records of the log between `off` and `until` (record boundaries), read in large
    /// chunks, up to `max` in `out` in all. Returns where it stopped.
    fn read_file(
        &mut self,
        out: &mut Vec<(Arc<SpoolRecord>, u64)>,
        max: usize,
        mut off: u64,
        until: u64,
    ) -> io::Result<u64> {
        let mut chunk = Vec::new();
        while out.len() < max && off < until {
            // At least the next whole record, else as much as READ_CHUNK allows.
            let mut header = [0u8; HEADER];
            self.file.read_exact_at(&mut header, off)?;
            let first =
                HEADER + u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
            let want = ((until - off) as usize).min(READ_CHUNK.max(first));
            chunk.resize(want, 0);
            self.file.read_exact_at(&mut chunk, off)?;
            let mut at = 0;
            while out.len() < max && at < chunk.len() {
                let Some(len) = framed_len(&chunk[at..]) else {
                    break; // continues in the next chunk
                };
                let (rec, used) = parse_record(&chunk[at..at + len]).ok_or_else(|| {
                    io::Error::other(format!("spool record at {} is corrupt", off + at as u64))
                })?;
                at += used;
                out.push((Arc::new(rec), off + at as u64));
            }
            if at == 0 {
                return Err(io::Error::other(format!(
                    "spool record at {off} is corrupt"
                )));
            }
            off += at as u64;
        }
        Ok(off)
    }

    fn consumed(&mut self, offset: u64) -> io::Result<()> {
        if offset <= self.read_off || offset > self.write_off {
            return Ok(());
        }
        // Count the records passed over: from the ends handed out by `read` when they reach
        // that far, else by walking the headers.
        let mut n = 0u64;
        let mut off = self.read_off;
        if self.peeked.back().is_some_and(|end| *end >= offset) {
            while let Some(end) = self.peeked.front().copied() {
                if end > offset {
                    break;
                }
                self.peeked.pop_front();
                n += 1;
                off = end;
            }
        } else {
            self.peeked.clear();
        }
        while off < offset {
            let mut header = [0u8; HEADER];
            self.file.read_exact_at(&mut header, off)?;
            let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as u64;
            off += HEADER as u64 + len;
            n += 1;
        }
        self.read_off = offset;
        while self
            .memory
            .front()
            .is_some_and(|(_, end, _)| *end <= offset)
        {
            self.memory.pop_front();
        }
        // A drained log is not truncated at once (that would give up the zeroed room): it
        // goes on after the replayed records until they fill a room, then a fresh generation
        // starts (nothing to copy), so replayed records never pile up behind `spool.pos`.
        // Under a backlog the unreplayed tail moves once the replayed head is large.
        // Compaction writes `spool.pos` itself.
        let drained = self.read_off == self.write_off;
        if self.read_off >= COMPACT_AT || (drained && self.read_off >= ROOM) {
            self.compact()?;
        } else {
            write_pos(&self.pos_path, self.gen, self.read_off)?;
        }
        let depth = self.depth.fetch_sub(n, Ordering::AcqRel) - n;
        metrics::gauge!("ebok_spool_depth").set(depth as f64);
        metrics::counter!("ebok_spool_replayed_total").increment(n);
        Ok(())
    }
}

impl Writer {
    /// Under a backlog that never drains, the replayed head of the file would grow forever:
    /// copy the unreplayed tail into the next generation's file, make it durable, then point
    /// `spool.pos` at it (atomic rename) and delete the old file. A crash before the pointer
    /// moves leaves the old generation in force and the new file an orphan, removed at open.
    fn compact(&mut self) -> io::Result<()> {
        let next = self.gen + 1;
        let path = log_path(&self.dir, next);
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = self.read_off;
        while off < self.write_off {
            let n = ((self.write_off - off) as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..n], off)?;
            out.write_all_at(&buf[..n], off - self.read_off)?;
            off += n as u64;
        }
        out.sync_all()?;
        write_pos(&self.pos_path, next, 0)?;
        let old = log_path(&self.dir, self.gen);
        self.file = out;
        self.gen = next;
        let shift = self.read_off;
        for end in self.peeked.iter_mut() {
            *end -= shift;
        }
        for (start, end, _) in self.memory.iter_mut() {
            *start -= shift;
            *end -= shift;
        }
        self.write_off -= self.read_off;
        self.room_end = self.write_off;
        self.read_off = 0;
        let _ = std::fs::remove_file(old);
        tracing::info!(generation = next, bytes = self.write_off, "spool compacted");
        Ok(())
    }
}

/// The log, whoever holds it (a panic while writing leaves nothing half-done that the next
/// append would follow: a failed write cuts the file back).
fn lock(writer: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    writer.lock().unwrap_or_else(|e| e.into_inner())
}

/// Replayed bytes at the head of the log after which the tail is moved to a new file.
const COMPACT_AT: u64 = 64 * 1024 * 1024;
/// Zeros written ahead of the records at a time.
const ROOM: u64 = 4 * 1024 * 1024;

fn log_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("spool.{gen}.log"))
}

/// Delete log files of other generations (leftovers of an interrupted compaction).
fn remove_other_generations(dir: &Path, keep: u64) -> io::Result<()> {
    let keep = format!("spool.{keep}.log");
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("spool.") && name.ends_with(".log") && name != keep {
            std::fs::remove_file(dir.join(&*name))?;
        }
    }
    Ok(())
}

/// Length of the valid record at `off`, or `None` at the end or at a torn/corrupt record.
fn record_len_at(file: &File, off: u64, len: u64) -> io::Result<Option<u64>> {
    if off + HEADER as u64 > len {
        return Ok(None);
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, off)?;
    let plen = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as u64;
    if !matches!(header[0], MAGIC | MAGIC_EVENT) || off + HEADER as u64 + plen > len {
        return Ok(None);
    }
    let mut payload = vec![0u8; plen as usize];
    file.read_exact_at(&mut payload, off + HEADER as u64)?;
    let crc = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes"));
    if crc32(&payload) != crc || decode_payload(header[0], &payload).is_none() {
        return Ok(None);
    }
    Ok(Some(HEADER as u64 + plen))
}

/// Whether the file holds only zero octets from `from` to `to`.
fn all_zero(file: &File, mut from: u64, to: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; READ_CHUNK];
    while from < to {
        let n = ((to - from) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], from)?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        from += n as u64;
    }
    Ok(true)
}

/// Length of the framed record at the start of `bytes`, when all of it is there.
fn framed_len(bytes: &[u8]) -> Option<usize> {
    let len = HEADER + u32::from_le_bytes(bytes.get(1..5)?.try_into().ok()?) as usize;
    (bytes.len() >= len).then_some(len)
}

fn parse_record(bytes: &[u8]) -> Option<(SpoolRecord, usize)> {
    if bytes.len() < HEADER {
        return None;
    }
    let len = u32::from_le_bytes(bytes[1..5].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[5..9].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER + len)?;
    if crc32(payload) != crc {
        return None;
    }
    Some((decode_payload(bytes[0], payload)?, HEADER + len))
}

/// A record's payload by its magic octet.
fn decode_payload(magic: u8, payload: &[u8]) -> Option<SpoolRecord> {
    match magic {
        MAGIC_EVENT => {
            let (event, expires_at) = codec::decode_event(payload)?;
            Some(SpoolRecord::Event {
                event: Arc::new(event),
                expires_at,
            })
        }
        MAGIC => serde_json::from_slice(payload).ok(),
        _ => None,
    }
}

/// `spool.pos`: generation and replay offset (16 bytes).
fn read_pos(path: &Path) -> io::Result<(u64, u64)> {
    match std::fs::read(path) {
        Ok(b) if b.len() == 16 => Ok((
            u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
        )),
        Ok(_) => Ok((0, 0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((0, 0)),
        Err(e) => Err(e),
    }
}

fn write_pos(path: &Path, gen: u64, off: u64) -> io::Result<()> {
    let tmp = path.with_extension("pos.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&gen.to_le_bytes())?;
        f.write_all(&off.to_le_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub fn crc32(data: &[u8]) -> u32 {
    // crc32fast (already built for the PDF's deflate) uses the CPU's carry-less multiply
    // where there is one: the byte-at-a-time table took ~2 % of the accounting path.
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::event::{StatusType, VendorAttribute as VendorAttributeT};

    fn rec(i: u32) -> SpoolRecord {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000 + i as i64).unwrap();
        SpoolRecord::Event {
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
        let spool = Spool::open(dir.path()).unwrap();
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
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let spool = Spool::open(dir.path()).unwrap();
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
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(log_len(), ROOM, "a zero tail is room, not a torn record");
        assert_eq!(spool.depth(), 1);
        assert_eq!(records(&spool.peek(10).await.unwrap()), vec![rec(50)]);
    }

    /// Blocking appends (written by the calling thread under the log's lock) and async ones
    /// (group-committed by the writer thread) interleave without losing or tearing a record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_and_async_appends_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
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
        let check = |all: Vec<SpoolRecord>| {
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
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let spool = Spool::open(dir.path()).unwrap();
        check(peek_all(&spool).await);
    }

    /// Once the replayed records fill a room, a drained log starts the next generation, so
    /// they do not pile up behind `spool.pos`.
    #[tokio::test]
    async fn a_drained_log_past_a_room_starts_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let n = 100_000;
        for i in (0..n).step_by(1000) {
            spool.append_frames(kept(i..i + 1000)).await.unwrap();
        }
        let end = spool.peek(n as usize).await.unwrap().last().unwrap().1;
        assert!(end > ROOM, "{end} bytes do not fill a room");
        spool.consumed(end).await.unwrap();
        assert_eq!(spool.depth(), 0);
        assert!(dir.path().join("spool.1.log").exists());
        assert!(!dir.path().join("spool.0.log").exists());
        spool.append(&rec(n)).await.unwrap();
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(records(&spool.peek(10).await.unwrap()), vec![rec(n)]);
    }

    #[tokio::test]
    async fn compaction_moves_the_tail_to_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for i in 0..10 {
            spool.append(&rec(i)).await.unwrap();
        }
        let all = spool.peek(10).await.unwrap();
        // Pretend the head is large: compact right after consuming four records.
        compact_after(&spool, all[3].1).await;
        assert_eq!(spool.depth(), 6);
        assert!(dir.path().join("spool.1.log").exists());
        assert!(!dir.path().join("spool.0.log").exists());
        spool.append(&rec(10)).await.unwrap();
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // An orphan of an interrupted compaction is removed at open.
        std::fs::write(dir.path().join("spool.2.log"), b"partial").unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert!(!dir.path().join("spool.2.log").exists());
        let rest: Vec<_> = spool
            .peek(100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (*r.0).clone())
            .collect();
        assert_eq!(rest, (4..11).map(rec).collect::<Vec<_>>());
    }

    /// Frames of owned events (kept in memory by the writer).
    fn kept(range: std::ops::Range<u32>) -> Frames {
        let mut frames = Frames::new();
        for i in range {
            let SpoolRecord::Event { event, expires_at } = rec(i) else {
                unreachable!()
            };
            frames.push_owned_event((*event).clone(), expires_at);
        }
        frames
    }

    /// Consume up to `offset`, then compact whatever the head's size.
    async fn compact_after(spool: &Spool, offset: u64) {
        let (tx, rx) = oneshot::channel();
        spool.tx.send(Cmd::CompactAfter(offset, tx)).await.unwrap();
        rx.await.unwrap().unwrap();
    }

    fn records(peeked: &Peeked) -> Vec<SpoolRecord> {
        peeked.iter().map(|r| (*r.0).clone()).collect()
    }

    async fn peek_all(spool: &Spool) -> Vec<SpoolRecord> {
        records(&spool.peek(1000).await.unwrap())
    }

    #[tokio::test]
    async fn kept_records_replay_from_memory_and_from_the_file_alike() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
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
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // After a restart only the file is left, and it holds the same records.
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 1);
        assert_eq!(peek_all(&spool).await, vec![rec(8)]);
    }

    #[tokio::test]
    async fn kept_records_survive_compaction_and_memory_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.append_frames(kept(0..10)).await.unwrap();
        let all = spool.peek(10).await.unwrap();
        compact_after(&spool, all[3].1).await;
        // Offsets moved to the new generation; memory followed them.
        let rest = spool.peek(100).await.unwrap();
        assert_eq!(records(&rest), (4..10).map(rec).collect::<Vec<_>>());
        spool.consumed(rest[1].1).await.unwrap();
        assert_eq!(peek_all(&spool).await, (6..10).map(rec).collect::<Vec<_>>());
        // More than the memory holds: the overflow comes from the file, in order.
        let n = MEMORY_RECORDS as u32 + 10;
        spool.append_frames(kept(10..10 + n)).await.unwrap();
        spool.append_frames(kept(10 + n..12 + n)).await.unwrap();
        let all = spool.peek(usize::MAX).await.unwrap();
        assert_eq!(all.len(), n as usize + 6);
        for (k, (record, _)) in all.iter().enumerate() {
            assert_eq!(**record, rec(6 + k as u32));
        }
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
        let json = serde_json::to_vec(&SpoolRecord::Event {
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
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 3);
        let history = SpoolRecord::History(crate::sessions::Applied::default());
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
        want.push(SpoolRecord::Event {
            event: Arc::new(full_event()),
            expires_at: OffsetDateTime::UNIX_EPOCH,
        });
        want.push(rec(4));
        assert_eq!(all.iter().map(|r| (*r.0).clone()).collect::<Vec<_>>(), want);
        // Consume in two steps; the depth follows.
        spool.consumed(all[1].1).await.unwrap();
        assert_eq!(spool.depth(), 5);
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let spool = Spool::open(dir.path()).unwrap();
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
            let spool = Spool::open(dir.path()).unwrap();
            spool.append(&rec(1)).await.unwrap();
            spool.append(&rec(2)).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let path = dir.path().join("spool.0.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[MAGIC, 200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let spool = Spool::open(dir.path()).unwrap();
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
            let spool = Spool::open(dir.path()).unwrap();
            spool.append(&rec(1)).await.unwrap();
            spool.append(&rec(2)).await.unwrap();
            spool.peek(10).await.unwrap()[1].1
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let path = dir.path().join("spool.0.log");
        // A crash mid-write: the start of a third record where the next append goes, the
        // rest of the room still zeros.
        let mut frames = Frames::new();
        frames.push(&rec(3)).unwrap();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&frames.buf[..frames.buf.len() / 2], end)
            .unwrap();
        drop(f);
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
        spool.append(&rec(4)).await.unwrap();
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(
            records(&spool.peek(10).await.unwrap()),
            vec![rec(1), rec(2), rec(4)]
        );
    }
}
