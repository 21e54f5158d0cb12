//! Key names and layout of the Redis live-session store (`P` = the configured prefix):
//! * `P s:{b}` HASH, b = FNV-1a-64(nas, session id) mod 16384: field = that 64-bit hash (8
//!   bytes, big-endian), value = the session record (compact binary, see
//!   [`encode_record`](crate::sessions::record::encode_record)) or a
//!   tombstone of a recently closed session. The hash also names the session in the IP index,
//!   so index entries stay 8 bytes; the record carries NAS and session id, checked on read
//!   (a 64-bit collision is reported as [`StoreError::Corrupt`], never merged).
//!   Buckets are global, not per NAS, so they fill evenly however sessions spread over NASes:
//!   ~61 entries per bucket at 1,000,000 sessions.
//! * `P 4:{b}` HASH, b = FNV-1a-64(4 octets) mod 16384: field = the 4 octets, value = holder's
//!   8-byte session hash.
//! * `P 6:{len}:{b}` HASH, one family per prefix length, b = FNV-1a-64(prefix octets) mod
//!   16384: field = the ⌈len/8⌉ significant octets, value = holder's session hash.
//! * `P 6len` SET of the IPv6 prefix lengths in use; a lookup tries them longest first, in one
//!   script call.
//! * `P nasreset` HASH nas → time of its last Accounting-On/Off: events at or before it are
//!   stale.
//! * `P n` counter of live sessions; `P sweep` the expiry lock (`SET NX PX`, token-checked
//!   release).
//!
//! Every key written gets a TTL of one day (to one day and an hour) beyond the latest deadline
//! written into it (only ever extended), so the data of a dead deployment disappears by itself.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::{RedisSessions, BUCKETS, TTL_MARGIN_MS};
use crate::sessions::hash::fnv1a64;
use crate::sessions::rules::IpKey;
use crate::sessions::StoreError;

/// The names of the session and IPv4 index buckets, made once (every step of a batch names
/// a few of them).
pub(super) struct BucketNames {
    pub(super) sessions: Vec<String>,
    v4: Vec<String>,
}

impl BucketNames {
    pub(super) fn new(prefix: &str) -> Self {
        let family = |tag: &str| (0..BUCKETS).map(|b| format!("{prefix}{tag}:{b}")).collect();
        BucketNames {
            sessions: family("s"),
            v4: family("4"),
        }
    }
}

impl RedisSessions {
    pub(super) fn session_key(&self, h: u64) -> &str {
        &self.names.sessions[(h % BUCKETS) as usize]
    }

    pub(super) fn ip_key(&self, ip: &IpKey) -> (Cow<'_, str>, Vec<u8>) {
        match ip {
            IpKey::V4(a) => {
                let o = a.octets();
                let b = (fnv1a64(&o) % BUCKETS) as usize;
                (self.names.v4[b].as_str().into(), o.to_vec())
            }
            IpKey::V6(net) => {
                let len = net.prefix_len();
                let field = net.trunc().network().octets()[..usize::from(len).div_ceil(8)].to_vec();
                let b = fnv1a64(&field) % BUCKETS;
                (format!("{}6:{}:{}", self.prefix, len, b).into(), field)
            }
        }
    }
}

pub(super) fn prefixed(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push(tag);
    out.extend_from_slice(v);
    out
}

pub(super) fn field_hash(field: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = field
        .try_into()
        .map_err(|_| StoreError::Corrupt("session bucket field is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(b))
}

/// Seconds per TTL epoch: keys are given TTLs to the end of the epoch of the deadline written
/// (plus [`TTL_MARGIN_MS`]), so the events of a session whose deadline stays within one epoch
/// leave its keys' TTLs alone (an Interim-Update then needs no PTTL per key).
pub(super) const TTL_EPOCH_S: i64 = 6 * 3600;

pub(super) fn ttl_epoch(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(TTL_EPOCH_S)
}

/// The end of the TTL epoch `t` falls in.
pub(super) fn ttl_epoch_end(t: OffsetDateTime) -> OffsetDateTime {
    let end = (ttl_epoch(t) + 1).saturating_mul(TTL_EPOCH_S);
    OffsetDateTime::from_unix_timestamp(end).unwrap_or(t)
}

/// Milliseconds a key must live for a record with this deadline.
pub(super) fn ttl_ms(deadline: OffsetDateTime) -> i64 {
    let left = (deadline - OffsetDateTime::now_utc()).whole_milliseconds();
    i64::try_from(left.max(0))
        .unwrap_or(i64::MAX / 2)
        .saturating_add(TTL_MARGIN_MS)
}

/// The 64-bit name of a session: FNV-1a over (len(nas) as u32 LE, nas, session id).
pub(crate) fn session_hash(nas: &str, session_id: &str) -> u64 {
    let mut buf = Vec::with_capacity(4 + nas.len() + session_id.len());
    buf.extend_from_slice(&(nas.len() as u32).to_le_bytes());
    buf.extend_from_slice(nas.as_bytes());
    buf.extend_from_slice(session_id.as_bytes());
    fnv1a64(&buf)
}
