//! The shared log's shape in Redis: which streams, under which keys, what an entry holds,
//! and the stream ids it is read by.
//!
//! The log is `K` streams. Each key carries its own hash tag (`ebok:log:{s3.41}`), chosen so
//! that the tags' slots are spread evenly over the 16,384 slots of a Redis Cluster: a
//! Cluster gives each shard a contiguous range of slots, so every shard holds its share of
//! the streams. An event goes to stream `hash(NAS key, Acct-Session-Id) mod K`, so the
//! events of one session stay in order.
//!
//! An entry is one field, `e`: a version byte, the appending instance (4 bytes) and its
//! sequence number (varint), then what the event tells the live map and history, in the
//! live session record's compact layout ([`crate::sessions::record::encode_event`]).

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::sessions::hash::Fnv1a;
use crate::sessions::record::{decode_event, encode_event};
use crate::sessions::StoreError;
use ebok_radius::event::AccountingEvent;

/// Version byte of an entry.
const ENTRY_VERSION: u8 = 3;
/// Slots of a Redis Cluster.
const SLOTS: u16 = 16_384;
/// The field an entry's bytes are under.
pub(crate) const FIELD: &str = "e";

/// CRC16-XMODEM, the hash Redis Cluster maps keys to slots with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Cluster slot of a hash tag.
pub(crate) fn slot(tag: &str) -> u16 {
    crc16(tag.as_bytes()) % SLOTS
}

/// The keys of the `k` streams under `prefix`: stream `i`'s hash tag falls in the `i`-th of
/// `k` equal ranges of slots.
pub(crate) fn stream_keys(prefix: &str, k: usize) -> Vec<String> {
    (0..k)
        .map(|i| {
            let low = (i * usize::from(SLOTS) / k) as u16;
            let high = ((i + 1) * usize::from(SLOTS) / k) as u16;
            let tag = (0u32..)
                .map(|n| format!("s{i}.{n}"))
                .find(|t| (low..high).contains(&slot(t)))
                .expect("every range of slots has a tag");
            format!("{prefix}log:{{{tag}}}")
        })
        .collect()
}

/// The stream an event of session (`nas`, `session_id`) goes to, of `k`.
pub(crate) fn stream_of(nas: &str, session_id: &str, k: usize) -> usize {
    (Fnv1a::new()
        .write(nas.as_bytes())
        .write(&[0])
        .write(session_id.as_bytes())
        .finish()
        % k as u64) as usize
}

/// Who appended an entry: the instance (random per process start) and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub instance: u32,
    /// Counts from 1 per instance; an entry appended again keeps its number.
    pub seq: u64,
}

/// One entry's bytes.
pub(crate) fn encode_entry(
    origin: Origin,
    event: &AccountingEvent,
    expires_at: OffsetDateTime,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(128);
    out.push(ENTRY_VERSION);
    out.extend_from_slice(&origin.instance.to_le_bytes());
    let mut v = origin.seq;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    encode_event(&mut out, event, expires_at)?;
    Ok(out)
}

/// An entry read back; `None` when the bytes are not one.
pub(crate) fn decode_entry(buf: &[u8]) -> Option<(Origin, AccountingEvent, OffsetDateTime)> {
    let (&version, rest) = buf.split_first()?;
    if version != ENTRY_VERSION || rest.len() < 4 {
        return None;
    }
    let instance = u32::from_le_bytes(rest[..4].try_into().ok()?);
    let mut rest = &rest[4..];
    let mut seq = 0u64;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first()?;
        rest = tail;
        if shift > 63 {
            return None;
        }
        seq |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let (event, expires_at) = decode_event(rest).ok()?;
    Some((Origin { instance, seq }, event, expires_at))
}

/// A stream entry id (`<milliseconds>-<sequence>`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    /// The first id at or after `t`: what `MINID` trims below.
    pub fn at(t: OffsetDateTime) -> EntryId {
        EntryId {
            ms: u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            seq: 0,
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for EntryId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        match (ms.parse(), seq.parse()) {
            (Ok(ms), Ok(seq)) => Ok(EntryId { ms, seq }),
            _ => Err(format!("not a stream id: {s:?}")),
        }
    }
}

/// Compare ids given as text (an unparsable one sorts first).
#[cfg(test)]
pub(crate) fn cmp_text(a: &str, b: &str) -> std::cmp::Ordering {
    let p = |s: &str| s.parse::<EntryId>().unwrap_or_default();
    p(a).cmp(&p(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebok_radius::event::StatusType;
    use std::cmp::Ordering;
    use time::macros::datetime;

    /// The slot function agrees with Redis's published examples.
    #[test]
    fn slots_are_redis_cluster_slots() {
        // CLUSTER KEYSLOT of these keys on a real server.
        assert_eq!(slot("123456789"), 0x31c3 % SLOTS);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("bar"), 5061);
    }

    #[test]
    fn streams_spread_over_the_slot_ranges_and_keep_their_names() {
        let keys = stream_keys("ebok:", 16);
        assert_eq!(keys.len(), 16);
        for (i, k) in keys.iter().enumerate() {
            let tag = &k[k.find('{').unwrap() + 1..k.find('}').unwrap()];
            let s = usize::from(slot(tag));
            assert!(s * 16 / 16_384 == i, "{k}: slot {s}");
        }
        assert_eq!(keys, stream_keys("ebok:", 16), "stable across starts");
    }

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        let mut e = AccountingEvent::new(
            StatusType::InterimUpdate,
            "10.0.0.1",
            "81a0002f",
            datetime!(2026-12-05 12:00 UTC),
        );
        e.user_name = Some("jan@isp".into());
        e.framed_ip = Some("100.64.0.7".parse().unwrap());
        e.nas_client = "bras-1".into();
        e.calling_station_id = Some("AA:BB:CC:00:11:22".into());
        e.nas_port_id = Some("ae0.100:100".into());
        e.session_time = Some(600);
        e.input_octets = 12_345_678_901;
        e.delegated_ipv6_prefixes = vec!["2001:db8:100::/56".parse().unwrap()];
        e.framed_ipv6_prefixes = vec!["2001:db8:1:2::/64".parse().unwrap()];
        let origin = Origin {
            instance: 0x89ab_cdef,
            seq: 300,
        };
        let at = datetime!(2026-12-05 12:11:00.123456789 UTC);
        let bytes = encode_entry(origin, &e, at).unwrap();
        let (o, back, deadline) = decode_entry(&bytes).unwrap();
        assert_eq!((o, deadline), (origin, at));
        // What the live map reads of it is all there.
        assert_eq!(back.ipv6_prefixes(), e.ipv6_prefixes());
        let fields = |e: &AccountingEvent| {
            (
                e.status,
                e.event_time,
                e.nas.clone(),
                e.nas_client.clone(),
                e.session_id.clone(),
                e.user_name.clone(),
                e.framed_ip,
                e.calling_station_id.clone(),
                e.nas_port_id.clone(),
                e.session_time,
                e.input_octets,
            )
        };
        assert_eq!(fields(&back), fields(&e));
        assert!(bytes.len() < 110, "{} bytes", bytes.len());
        // A deadline whole seconds after the event (the expiry window is whole seconds), and
        // a Stop's terminate cause: both still round trip, the deadline in fewer octets.
        e.status = StatusType::Stop;
        e.terminate_cause = Some(1);
        let whole = datetime!(2026-12-05 12:11 UTC);
        let short = encode_entry(origin, &e, whole).unwrap();
        let (_, stop, deadline) = decode_entry(&short).unwrap();
        assert_eq!(
            (stop.status, stop.terminate_cause, deadline),
            (StatusType::Stop, Some(1), whole)
        );
        assert!(
            short.len() + 3 <= bytes.len(),
            "{} against {}",
            short.len(),
            bytes.len()
        );
        assert!(decode_entry(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode_entry(b"\x02garbage-entry").is_none());
        assert!(decode_entry(b"").is_none());
    }

    /// NAS keys and session ids in every shape keep their exact text, and the event time
    /// its nanoseconds (or none), before and after 2020.
    #[test]
    fn identities_and_times_round_trip_in_every_shape() {
        let origin = Origin {
            instance: 7,
            seq: 1,
        };
        let mut short = 0;
        for nas in [
            "192.0.2.1",
            "010.0.2.1",
            "bras-1",
            "2001:db8::1",
            "10.0.0.256",
        ] {
            for sid in [
                "81a0002f",
                "81A0002F",
                "81a0002F",
                "0000123456",
                "abc",
                "",
                "ses-1/7",
                "00",
            ] {
                for at in [
                    datetime!(2026-12-05 12:00 UTC),
                    datetime!(2026-12-05 12:00:00.000000001 UTC),
                    datetime!(2011-03-01 08:30:15.5 UTC),
                ] {
                    let e = AccountingEvent::new(StatusType::Start, nas, sid, at);
                    let deadline = at + time::Duration::minutes(11);
                    let bytes = encode_entry(origin, &e, deadline).unwrap();
                    let (_, back, d) = decode_entry(&bytes).unwrap();
                    assert_eq!(
                        (
                            back.nas.as_str(),
                            back.session_id.as_str(),
                            back.event_time,
                            d
                        ),
                        (nas, sid, at, deadline),
                        "{nas} {sid} {at}"
                    );
                    if nas == "192.0.2.1" && sid == "81A0002F" && at.nanosecond() == 0 {
                        short = bytes.len();
                    }
                }
            }
        }
        // Version, instance and sequence 6; status 1; the NAS 4; the id 1 + 4; a whole-second
        // time 5; the deadline 2; flags, prefix count and four counters 6.
        assert_eq!(short, 6 + 1 + 4 + 5 + 5 + 2 + 6);
    }

    #[test]
    fn ids_order_as_redis_orders_them() {
        assert_eq!(
            cmp_text("1700000000000-5", "1700000000000-12"),
            Ordering::Less
        );
        assert_eq!(cmp_text("999-0", "1000-0"), Ordering::Less);
        assert_eq!("0-0".parse::<EntryId>().unwrap(), EntryId::default());
        assert_eq!(
            EntryId::at(datetime!(2026-12-05 12:00 UTC)).to_string(),
            "1796472000000-0"
        );
    }
}
