//! Framing of journal records: magic octet, u32 payload length, u32 CRC-32, payload; the
//! [`Frames`] an append carries and the parsing of records read back.

use super::*;

/// A JSON [`JournalRecord`].
pub(super) const MAGIC: u8 = 0xEB;
/// An event in the binary encoding of [`codec`].
pub(super) const MAGIC_EVENT: u8 = 0xEC;
pub(super) const HEADER: usize = 9;

/// Framed records ready to append: the bytes as they go to the log, and how many records
/// they hold. Encoding happens in the caller, so the writer thread only writes.
#[derive(Debug, Default)]
pub struct Frames {
    pub(super) buf: Vec<u8>,
    pub(super) count: u64,
    /// How many of the records are events: only those count against the cap.
    pub(super) events: u64,
    /// The records pushed with [`Frames::push_owned_event`], with the end of each one in
    /// `buf`. When that is every record (as many as `count`), the writer keeps them for the
    /// replay, which then need not read the log back.
    pub(super) records: Vec<(Arc<JournalRecord>, usize)>,
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
    pub(crate) fn push_event(&mut self, event: &AccountingEvent, expires_at: OffsetDateTime) {
        let start = self.open(MAGIC_EVENT);
        codec::encode_event(&mut self.buf, event, expires_at);
        self.close(start);
        self.events += 1;
    }

    /// Frame one event and keep it, so the replay can take it from memory.
    pub(crate) fn push_owned_event(&mut self, event: AccountingEvent, expires_at: OffsetDateTime) {
        self.push_event(&event, expires_at);
        let record = JournalRecord::Event {
            event: Arc::new(event),
            expires_at,
        };
        self.records.push((Arc::new(record), self.buf.len()));
    }

    /// Frame any record: events in the binary encoding, history records as JSON.
    pub fn push(&mut self, record: &JournalRecord) -> io::Result<()> {
        match record {
            JournalRecord::Event { event, expires_at } => self.push_event(event, *expires_at),
            JournalRecord::History(_) => {
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

/// Length of the framed record at the start of `bytes`, when all of it is there.
pub(super) fn framed_len(bytes: &[u8]) -> Option<usize> {
    let len = HEADER + u32::from_le_bytes(bytes.get(1..5)?.try_into().ok()?) as usize;
    (bytes.len() >= len).then_some(len)
}

pub(super) fn parse_record(bytes: &[u8]) -> Option<(JournalRecord, usize)> {
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
pub(super) fn decode_payload(magic: u8, payload: &[u8]) -> Option<JournalRecord> {
    match magic {
        MAGIC_EVENT => {
            let (event, expires_at) = codec::decode_event(payload)?;
            Some(JournalRecord::Event {
                event: Arc::new(event),
                expires_at,
            })
        }
        MAGIC => serde_json::from_slice(payload).ok(),
        _ => None,
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    // crc32fast (already built for the PDF's deflate) uses the CPU's carry-less multiply
    // where there is one: the byte-at-a-time table took ~2 % of the accounting path.
    crc32fast::hash(data)
}
