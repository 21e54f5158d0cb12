//! The journal's files: segment files `spool.N.log` (records back to back, then zeros written
//! ahead), the position file `spool.pos`, and the walk that finds a segment's records when
//! the journal is opened.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{decode_payload, parse_record, HEADER, MAGIC, MAGIC_EVENT, READ_CHUNK};

pub(super) fn log_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("spool.{n}.log"))
}

/// A segment before the newest one: complete, only read from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sealed {
    /// The segment's number (`spool.N.log`).
    pub n: u64,
    /// Journal offset of its first byte.
    pub base: u64,
    /// Journal offset of the end of its last record (the zeros after it are not counted).
    pub end: u64,
}

/// The segments found by [`open`], from the replay position to the newest.
pub(super) struct Opened {
    /// Segments before the newest that still hold records to replay, oldest first.
    pub sealed: VecDeque<Sealed>,
    /// The newest segment, opened for appending, and its number.
    pub file: File,
    pub n: u64,
    /// Journal offset of the newest segment's first byte.
    pub base: u64,
    /// Journal offset of the end of the records.
    pub write_off: u64,
    /// Length of the newest segment's file: zeros from its last record to here.
    pub room_end: u64,
    /// Journal offset up to which records were replayed.
    pub read_off: u64,
    /// Records after `read_off`.
    pub records: u64,
    /// Segment files before the replay position's, to remove.
    pub leftovers: Vec<PathBuf>,
}

/// Find the segments of the journal in `dir`: from the one `spool.pos` names to the newest,
/// counting their records after the replay position. A torn record at the tail of the
/// newest one (a crash mid-write, never answered) is cut off; the newest file is created when
/// there is none. Journal offsets start at zero at the first byte of the position's segment.
pub(super) fn open(dir: &Path, pos_path: &Path) -> io::Result<Opened> {
    let (pos_n, pos_off) = read_pos(pos_path)?;
    let mut leftovers = Vec::new();
    let mut chain = Vec::new();
    for n in numbers(dir)? {
        if n < pos_n {
            leftovers.push(log_path(dir, n));
        } else {
            chain.push(n);
        }
    }
    // When the position's segment is gone (spool.pos lost or rewritten by hand), replay what
    // is left from its start rather than nothing.
    let mut from = if chain.first() == Some(&pos_n) || chain.is_empty() {
        pos_off
    } else {
        0
    };
    if chain.is_empty() {
        chain.push(pos_n);
    }
    let mut sealed = VecDeque::new();
    let mut base = 0;
    let mut read_off = None;
    let mut records = 0;
    let (&newest, older) = chain.split_last().expect("at least one segment");
    for &n in older {
        let file = File::open(log_path(dir, n))?;
        let len = file.metadata()?.len();
        if from > len {
            from = 0;
        }
        let (end, count) = walk(&file, from, len)?;
        if end < len && !all_zero(&file, end, len)? {
            // Never a crash: a segment is complete before the next one starts. Its records
            // after the damage cannot be found; the others still replay.
            tracing::error!(
                segment = n,
                bytes = len - end,
                "spool: a complete segment holds damaged bytes after its last valid record; skipping them"
            );
        }
        read_off.get_or_insert(base + from);
        records += count;
        sealed.push_back(Sealed {
            n,
            base,
            end: base + end,
        });
        base += end;
        from = 0;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(log_path(dir, newest))?;
    let mut len = file.metadata()?.len();
    if from > len {
        from = 0;
    }
    // After the records: zeros (the room written ahead, kept) or a torn record (cut off).
    let (end, count) = walk(&file, from, len)?;
    if end < len && !all_zero(&file, end, len)? {
        tracing::warn!(
            torn_bytes = len - end,
            "spool: cutting off an incomplete record at the tail (never answered)"
        );
        file.set_len(end)?;
        file.sync_all()?;
        len = end;
    }
    // A segment created here must be in the directory before a record in it is answered.
    sync_dir(dir)?;
    Ok(Opened {
        sealed,
        file,
        n: newest,
        base,
        write_off: base + end,
        room_end: len,
        read_off: read_off.unwrap_or(base + from),
        records: records + count,
        leftovers,
    })
}

/// Numbers of the segment files in `dir`, ascending.
fn numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let n = name
            .to_str()
            .and_then(|s| s.strip_prefix("spool."))
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok());
        out.extend(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// Remove segment files whose records were all replayed, with the handles still open on
/// them (closing the last one is what frees the blocks). Called without the writer's lock:
/// syncing the directory and freeing 64 MiB of extents must not hold up an append.
pub(super) fn remove(doomed: Vec<(PathBuf, Option<File>)>) {
    let Some(dir) = doomed.first().and_then(|(path, _)| path.parent()) else {
        return;
    };
    // `spool.pos`, renamed past these segments, must be on disk before they go: else a crash
    // could leave it naming a deleted segment (harmless but for replaying the next one from
    // its start).
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(error = %e, "spool: cannot sync the state directory; replayed segments stay until the next start");
        return;
    }
    for (path, file) in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => metrics::counter!("ebok_journal_segments_removed_total").increment(1),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Left behind the position, it is removed at the next open.
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "spool: cannot remove a replayed segment")
            }
        }
        drop(file);
    }
}

/// Records from `from` on (up to `len`, the file's length): where the last valid one ends,
/// and how many there are. Read in large chunks; a record is valid when its header, CRC and
/// payload decode.
fn walk(file: &File, from: u64, len: u64) -> io::Result<(u64, u64)> {
    let mut buf = Vec::new();
    let mut off = from;
    let mut count = 0;
    while len - off >= HEADER as u64 {
        buf.resize(((len - off) as usize).min(READ_CHUNK), 0);
        file.read_exact_at(&mut buf, off)?;
        let mut at = 0;
        while let Some((_, used)) = parse_record(&buf[at..]) {
            at += used;
            count += 1;
        }
        if at == 0 {
            // The end, or one record larger than a chunk.
            match record_len_at(file, off, len)? {
                Some(used) => {
                    off += used;
                    count += 1;
                    continue;
                }
                None => break,
            }
        }
        off += at as u64;
    }
    Ok((off, count))
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
    if super::crc32(&payload) != crc || decode_payload(header[0], &payload).is_none() {
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

/// `spool.pos`: the replay position's segment number and offset in that file (16 bytes).
pub(super) fn read_pos(path: &Path) -> io::Result<(u64, u64)> {
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

pub(super) fn write_pos(path: &Path, n: u64, off: u64) -> io::Result<()> {
    let tmp = path.with_extension("pos.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&n.to_le_bytes())?;
        f.write_all(&off.to_le_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Make the directory's entries (a new segment, a renamed `spool.pos`) durable: syncing a
/// file does not write the directory that names it.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
