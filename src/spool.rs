//! The local durable spool: when the live-session store or the history database cannot take
//! an event in time, the event is appended here (fsync, group commit), the NAS is answered,
//! and the spool is replayed in order once the stores are back. `kill -9` at any moment loses
//! nothing that was answered: a record is on disk before its append returns.
//!
//! Layout in the state directory: `spool.N.log` (generation N) holds records (`0xEB`, u32 length, u32 CRC-32,
//! JSON payload); `spool.pos` holds the generation and the offset up to which records were
//! replayed. A torn
//! record at the tail (a crash mid-write, never answered) is cut off on open.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::radius::event::AccountingEvent;
use crate::sessions::Applied;

/// What the spool keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpoolRecord {
    /// An event not yet applied to the live map.
    Event {
        event: Box<AccountingEvent>,
        #[serde(with = "time::serde::timestamp")]
        expires_at: OffsetDateTime,
    },
    /// An event applied to the live map whose history write failed.
    History(Applied),
}

const MAGIC: u8 = 0xEB;
const HEADER: usize = 9;
const MAX_BATCH: usize = 1024;

enum Cmd {
    Append(Vec<u8>, oneshot::Sender<io::Result<()>>),
    Read(usize, oneshot::Sender<io::Result<Vec<(SpoolRecord, u64)>>>),
    Consumed(u64, oneshot::Sender<io::Result<()>>),
    /// Tests: consume up to the offset, then compact whatever the head's size.
    #[cfg(test)]
    CompactAfter(u64, oneshot::Sender<io::Result<()>>),
}

/// Handle to the spool; cheap to clone.
#[derive(Clone, Debug)]
pub struct Spool {
    tx: mpsc::Sender<Cmd>,
    depth: Arc<AtomicU64>,
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
            .append(true)
            .create(true)
            .open(&log_path)?;
        let len = file.metadata()?.len();
        if read_off > len {
            read_off = 0;
        }
        // Walk the records after the read offset, counting them and finding a torn tail.
        let mut end = read_off;
        let mut count = 0u64;
        while let Some(used) = record_len_at(&file, end, len)? {
            end += used;
            count += 1;
        }
        if end < len {
            tracing::warn!(
                torn_bytes = len - end,
                "spool: cutting off an incomplete record at the tail (never answered)"
            );
            file.set_len(end)?;
            file.sync_all()?;
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
            read_off,
            depth: depth.clone(),
        };
        std::thread::Builder::new()
            .name("ebok-spool".into())
            .spawn(move || writer.run(rx))?;
        Ok(Spool { tx, depth })
    }

    /// Records waiting to be replayed.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire)
    }

    /// Append one record; returns once it is on disk.
    pub async fn append(&self, record: &SpoolRecord) -> io::Result<()> {
        let payload = serde_json::to_vec(record).map_err(io::Error::other)?;
        self.call(|tx| Cmd::Append(payload, tx)).await
    }

    /// Up to `max` records from the replay position, each with the offset just after it.
    pub async fn peek(&self, max: usize) -> io::Result<Vec<(SpoolRecord, u64)>> {
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
    read_off: u64,
    depth: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
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
                    let result = self.append_batch(batch.iter().map(|(p, _)| p.as_slice()));
                    for (_, reply) in batch {
                        let _ = reply.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        });
                    }
                    if let Some(cmd) = other {
                        self.other(cmd);
                    }
                }
                cmd => self.other(cmd),
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
                let r = self.consumed(offset).and_then(|()| {
                    self.compact()?;
                    write_pos(&self.pos_path, self.gen, self.read_off)
                });
                let _ = reply.send(r);
            }
        }
    }

    fn append_batch<'a>(&mut self, payloads: impl Iterator<Item = &'a [u8]>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut n = 0u64;
        for p in payloads {
            buf.push(MAGIC);
            buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32(p).to_le_bytes());
            buf.extend_from_slice(p);
            n += 1;
        }
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
        {
            // Leave no partial record behind for the next append to follow.
            let _ = self.file.set_len(self.write_off);
            return Err(e);
        }
        self.write_off += buf.len() as u64;
        let depth = self.depth.fetch_add(n, Ordering::AcqRel) + n;
        metrics::gauge!("ebok_spool_depth").set(depth as f64);
        metrics::counter!("ebok_spool_appended_total").increment(n);
        Ok(())
    }

    fn read(&mut self, max: usize) -> io::Result<Vec<(SpoolRecord, u64)>> {
        let mut out = Vec::new();
        let mut off = self.read_off;
        while out.len() < max && off < self.write_off {
            let mut header = [0u8; HEADER];
            self.file.read_exact_at(&mut header, off)?;
            let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
            let mut payload = vec![0u8; len];
            self.file.read_exact_at(&mut payload, off + HEADER as u64)?;
            let mut record = header.to_vec();
            record.extend_from_slice(&payload);
            let (rec, used) = parse_record(&record)
                .ok_or_else(|| io::Error::other(format!("spool record at {off} is corrupt")))?;
            off += used as u64;
            out.push((rec, off));
        }
        Ok(out)
    }

    fn consumed(&mut self, offset: u64) -> io::Result<()> {
        if offset <= self.read_off || offset > self.write_off {
            return Ok(());
        }
        // Count the records passed over.
        let mut n = 0u64;
        let mut off = self.read_off;
        while off < offset {
            let mut header = [0u8; HEADER];
            self.file.read_exact_at(&mut header, off)?;
            let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as u64;
            off += HEADER as u64 + len;
            n += 1;
        }
        self.read_off = offset;
        if self.read_off == self.write_off {
            // Everything replayed: start a fresh file.
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.write_off = 0;
            self.read_off = 0;
        } else if self.read_off >= COMPACT_AT {
            self.compact()?;
        }
        write_pos(&self.pos_path, self.gen, self.read_off)?;
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
        let mut out = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        out.set_len(0)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = self.read_off;
        while off < self.write_off {
            let n = ((self.write_off - off) as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..n], off)?;
            out.write_all(&buf[..n])?;
            off += n as u64;
        }
        out.sync_all()?;
        write_pos(&self.pos_path, next, 0)?;
        let old = log_path(&self.dir, self.gen);
        self.file = out;
        self.gen = next;
        self.write_off -= self.read_off;
        self.read_off = 0;
        let _ = std::fs::remove_file(old);
        tracing::info!(generation = next, bytes = self.write_off, "spool compacted");
        Ok(())
    }
}

/// Replayed bytes at the head of the log after which the tail is moved to a new file.
const COMPACT_AT: u64 = 64 * 1024 * 1024;

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
    if header[0] != MAGIC || off + HEADER as u64 + plen > len {
        return Ok(None);
    }
    let mut payload = vec![0u8; plen as usize];
    file.read_exact_at(&mut payload, off + HEADER as u64)?;
    let crc = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes"));
    if crc32(&payload) != crc || serde_json::from_slice::<SpoolRecord>(&payload).is_err() {
        return Ok(None);
    }
    Ok(Some(HEADER as u64 + plen))
}

fn parse_record(bytes: &[u8]) -> Option<(SpoolRecord, usize)> {
    if bytes.len() < HEADER || bytes[0] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(bytes[1..5].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[5..9].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER + len)?;
    if crc32(payload) != crc {
        return None;
    }
    let rec = serde_json::from_slice(payload).ok()?;
    Some((rec, HEADER + len))
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
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::event::StatusType;

    fn rec(i: u32) -> SpoolRecord {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000 + i as i64).unwrap();
        SpoolRecord::Event {
            event: Box::new(AccountingEvent::new(
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
        assert_eq!(first[0].0, rec(0));
        spool.consumed(first[9].1).await.unwrap();
        assert_eq!(spool.depth(), 40);
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 40);
        let rest = spool.peek(100).await.unwrap();
        assert_eq!(rest.len(), 40);
        assert_eq!(rest[0].0, rec(10));
        assert_eq!(rest[39].0, rec(49));
        spool.consumed(rest[39].1).await.unwrap();
        assert_eq!(spool.depth(), 0);
        assert_eq!(
            std::fs::metadata(dir.path().join("spool.0.log"))
                .unwrap()
                .len(),
            0
        );
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
        let (tx, rx) = oneshot::channel();
        spool
            .tx
            .send(Cmd::CompactAfter(all[3].1, tx))
            .await
            .unwrap();
        rx.await.unwrap().unwrap();
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
            .map(|r| r.0)
            .collect();
        assert_eq!(rest, (4..11).map(rec).collect::<Vec<_>>());
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
            all.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            vec![rec(1), rec(2), rec(3)]
        );
    }
}
