//! The replay side of the writer: reading records from memory or the log, and marking them
//! replayed (segments passed are deleted).

use super::*;

impl Writer {
    /// Up to `max` records from the replay position: from memory where they are kept there,
    /// else read from the log in large chunks.
    pub(super) fn read(&mut self, max: usize) -> io::Result<Peeked> {
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

    /// The file of the segment holding the journal offset `off` (before `write_off`), with
    /// the journal offsets of its first byte and of the end of its records.
    pub(super) fn segment_at(&mut self, off: u64) -> io::Result<(&File, u64, u64)> {
        let i = self.sealed.partition_point(|s| s.end <= off);
        let Some(&Sealed { n, base, end }) = self.sealed.get(i) else {
            return Ok((&self.file, self.base, self.write_off));
        };
        if self.reading.as_ref().is_none_or(|(m, _)| *m != n) {
            self.reading = Some((n, File::open(log_path(&self.dir, n))?));
        }
        let (_, file) = self.reading.as_ref().expect("opened above");
        Ok((file, base, end))
    }

    /// Records of the journal between `off` and `until` (record boundaries), read in large
    /// chunks, up to `max` in `out` in all. Returns where it stopped.
    pub(super) fn read_file(
        &mut self,
        out: &mut Vec<(Arc<JournalRecord>, u64)>,
        max: usize,
        mut off: u64,
        until: u64,
    ) -> io::Result<u64> {
        let mut chunk = Vec::new();
        while out.len() < max && off < until {
            let (file, base, end) = self.segment_at(off)?;
            // No record spans two segments.
            let stop = until.min(end);
            // At least the next whole record, else as much as READ_CHUNK allows.
            let mut header = [0u8; HEADER];
            file.read_exact_at(&mut header, off - base)?;
            let first =
                HEADER + u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
            let want = ((stop - off) as usize).min(READ_CHUNK.max(first));
            chunk.resize(want, 0);
            file.read_exact_at(&mut chunk, off - base)?;
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

    /// Mark the records before `offset` replayed. Returns the segments the position has
    /// passed, to be deleted once the lock is released.
    pub(super) fn consumed(&mut self, offset: u64) -> io::Result<Doomed> {
        if offset <= self.read_off || offset > self.write_off {
            return Ok(Vec::new());
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
            let (file, base, _) = self.segment_at(off)?;
            let mut header = [0u8; HEADER];
            file.read_exact_at(&mut header, off - base)?;
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
        let depth = self.depth.fetch_sub(n, Ordering::AcqRel) - n;
        metrics::gauge!("ebok_journal_depth").set(depth as f64);
        metrics::counter!("ebok_journal_replayed_total").increment(n);
        self.gauge_bytes();
        // A drained journal is not truncated at once (that would give up the zeroed room):
        // records go on after the replayed ones until those fill a room, then a fresh
        // segment starts and the drained one goes, so replayed records never pile up.
        if self.read_off == self.write_off && self.write_off - self.base >= self.room() {
            if let Err(e) = self.roll() {
                tracing::warn!(error = %e, "spool: cannot start a new segment; the drained one stays for now");
            }
        }
        self.release()
    }

    /// Let go of the segments the replay position has passed: `spool.pos` is moved past
    /// them, and they are returned for [`segments::remove`].
    pub(super) fn release(&mut self) -> io::Result<Doomed> {
        let mut doomed = Vec::new();
        while let Some(s) = self.sealed.front().copied() {
            if s.end > self.read_off {
                break;
            }
            self.sealed.pop_front();
            let file = self.reading.take_if(|(n, _)| *n == s.n).map(|(_, f)| f);
            doomed.push((log_path(&self.dir, s.n), file));
        }
        let (n, base) = self
            .sealed
            .front()
            .map_or((self.seg, self.base), |s| (s.n, s.base));
        write_pos(&self.pos_path, n, self.read_off - base)?;
        Ok(doomed)
    }
}
