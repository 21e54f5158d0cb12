//! The binary record of a live session or tombstone, as both stores keep it (the embedded
//! store's SQLite file, Redis hash fields): compact, and with the times at fixed offsets in
//! an order-preserving encoding, so that Redis's Lua scripts compare them bytewise.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;
use time::OffsetDateTime;

use super::rules::{Record, Tombstone};
use super::{CloseReason, ClosedSession, LiveSession, StoreError};
use ebok_radius::event::{AccountingEvent, StatusType};

// Layout.
//
// Live session (kind 0x01):
//   kind u8 | expires_at ord u64 BE | updated_at ord u64 BE | started_at ord u64 BE
//   | nas str | session_id str | flags u8 | [nas_client str] | [user_name str] | [framed_ip 4]
//   | [calling_station_id: tag u8 (0 = str follows, 1..=7 = MAC layout) + str or 6 octets]
//   | [nas_port varint] | [nas_port_id str] | [session_time varint]
//   | v6 count varint, each: len u8 + ⌈len/8⌉ octets
//   | input_octets, output_octets, input_packets, output_packets varints
// Tombstone (kind 0x81): kind | until ord | closed_at ord | nas str | session_id str
//   [ | 0x01 | cause flag u8 (1: varint Acct-Terminate-Cause follows) | the session its Stop
//   closed: a live session's layout from its expires_at on ] (absent: closed by expiry)
// str = varint length + bytes. ord = unix seconds << 30 | nanoseconds: big-endian ords
// compare bytewise like the times, which the Lua scripts rely on (fixed offsets 2, 10, 18;
// the NAS at offset 26).
// ---------------------------------------------------------------------------------------------

const KIND_LIVE: u8 = 0x01;
const KIND_TOMB: u8 = 0x81;

const F_USER: u8 = 1;
const F_FRAMED_IP: u8 = 1 << 1;
const F_CALLING: u8 = 1 << 2;
const F_PORT: u8 = 1 << 3;
const F_PORT_ID: u8 = 1 << 4;
const F_SESSION_TIME: u8 = 1 << 5;
const F_NAS_CLIENT: u8 = 1 << 6;

/// Time as an order-preserving 64-bit number (seconds < 2^34, i.e. before year 2514).
pub(crate) fn time_ord(t: OffsetDateTime) -> Result<u64, StoreError> {
    let ns = t.unix_timestamp_nanos();
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    if !(0..(1i128 << 34)).contains(&secs) {
        return Err(StoreError::Invalid(format!("time out of range: {t}")));
    }
    Ok(((secs as u64) << 30) | nanos as u64)
}

pub(crate) fn ord_time(ord: u64) -> Result<OffsetDateTime, StoreError> {
    let secs = ord >> 30;
    let nanos = ord & ((1 << 30) - 1);
    if nanos >= 1_000_000_000 {
        return Err(StoreError::Corrupt("bad nanoseconds in time".into()));
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode_time(b: &[u8]) -> Result<OffsetDateTime, StoreError> {
    let a: [u8; 8] = b
        .try_into()
        .map_err(|_| StoreError::Corrupt("stored time is not 8 bytes".into()))?;
    ord_time(u64::from_be_bytes(a))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Layouts of MAC addresses stored as 6 octets; anything else is stored as text.
fn render_mac(layout: u8, m: &[u8; 6]) -> Option<String> {
    let mut buf = [0u8; 17];
    let n = render_mac_into(layout, m, &mut buf)?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// [`render_mac`] into `out`, without allocating; returns the length.
fn render_mac_into(layout: u8, m: &[u8; 6], out: &mut [u8; 17]) -> Option<usize> {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    // (digits, separator, octets per group)
    let (digits, sep, group) = match layout {
        1 => (UPPER, Some(b':'), 1),
        2 => (LOWER, Some(b':'), 1),
        3 => (UPPER, Some(b'-'), 1),
        4 => (LOWER, Some(b'-'), 1),
        5 => (LOWER, Some(b'.'), 2),
        6 => (UPPER, None, 6),
        7 => (LOWER, None, 6),
        _ => return None,
    };
    let mut n = 0;
    for (i, b) in m.iter().enumerate() {
        if let Some(sep) = sep {
            if i > 0 && i % group == 0 {
                out[n] = sep;
                n += 1;
            }
        }
        out[n] = digits[usize::from(b >> 4)];
        out[n + 1] = digits[usize::from(b & 0x0f)];
        n += 2;
    }
    Some(n)
}

fn pack_mac(s: &str) -> Option<(u8, [u8; 6])> {
    if s.len() > 17 {
        return None;
    }
    let mut m = [0u8; 6];
    let mut nibbles = 0;
    for c in s.bytes() {
        if matches!(c, b':' | b'-' | b'.') {
            continue;
        }
        let d = char::from(c).to_digit(16)? as u8;
        if nibbles == 12 {
            return None;
        }
        m[nibbles / 2] |= if nibbles % 2 == 0 { d << 4 } else { d };
        nibbles += 1;
    }
    if nibbles != 12 {
        return None;
    }
    let mut buf = [0u8; 17];
    (1..=7)
        .find(|&l| render_mac_into(l, &m, &mut buf).is_some_and(|n| &buf[..n] == s.as_bytes()))
        .map(|l| (l, m))
}

/// The check [`encode_record`] makes of a record's times (they are stored as 64-bit
/// orderable values), without encoding it.
pub(crate) fn check_record_times(r: &Record) -> Result<(), StoreError> {
    match r {
        Record::Closed(t) => {
            time_ord(t.until)?;
            time_ord(t.closed_at)?;
            if let Some(c) = &t.closed {
                check_live_times(&c.session)?;
            }
        }
        Record::Live(s) => check_live_times(s)?,
    }
    Ok(())
}

fn check_live_times(s: &LiveSession) -> Result<(), StoreError> {
    time_ord(s.expires_at)?;
    time_ord(s.updated_at)?;
    time_ord(s.started_at)?;
    Ok(())
}

/// Encode a record compactly (see the layout above).
pub(crate) fn encode_record(r: &Record) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(128);
    match r {
        Record::Closed(t) => {
            out.push(KIND_TOMB);
            out.extend_from_slice(&time_ord(t.until)?.to_be_bytes());
            out.extend_from_slice(&time_ord(t.closed_at)?.to_be_bytes());
            put_str(&mut out, t.nas.as_bytes());
            put_str(&mut out, t.session_id.as_bytes());
            if let Some(c) = &t.closed {
                out.push(1);
                match c.terminate_cause {
                    None => out.push(0),
                    Some(cause) => {
                        out.push(1);
                        put_varint(&mut out, u64::from(cause));
                    }
                }
                encode_live(&mut out, &c.session)?;
            }
        }
        Record::Live(s) => {
            out.push(KIND_LIVE);
            encode_live(&mut out, s)?;
        }
    }
    Ok(out)
}

/// A live session's layout after its kind octet.
fn encode_live(out: &mut Vec<u8>, s: &LiveSession) -> Result<(), StoreError> {
    out.extend_from_slice(&time_ord(s.expires_at)?.to_be_bytes());
    out.extend_from_slice(&time_ord(s.updated_at)?.to_be_bytes());
    out.extend_from_slice(&time_ord(s.started_at)?.to_be_bytes());
    encode_fields(out, s);
    Ok(())
}

/// A live session's attributes after its times: key, flags, optional fields, prefixes,
/// counters.
fn encode_fields(out: &mut Vec<u8>, s: &LiveSession) {
    put_str(out, s.nas.as_bytes());
    put_str(out, s.session_id.as_bytes());
    encode_attributes(out, s);
}

/// A live session's layout from its flags on (after the NAS and session id).
fn encode_attributes(out: &mut Vec<u8>, s: &LiveSession) {
    let mut flags = 0u8;
    for (set, f) in [
        (s.user_name.is_some(), F_USER),
        (s.framed_ip.is_some(), F_FRAMED_IP),
        (s.calling_station_id.is_some(), F_CALLING),
        (s.nas_port.is_some(), F_PORT),
        (s.nas_port_id.is_some(), F_PORT_ID),
        (s.session_time.is_some(), F_SESSION_TIME),
        (s.nas_client != s.nas, F_NAS_CLIENT),
    ] {
        if set {
            flags |= f;
        }
    }
    out.push(flags);
    if s.nas_client != s.nas {
        put_str(out, s.nas_client.as_bytes());
    }
    if let Some(u) = &s.user_name {
        put_str(out, u.as_bytes());
    }
    if let Some(ip) = s.framed_ip {
        out.extend_from_slice(&ip.octets());
    }
    if let Some(c) = &s.calling_station_id {
        match pack_mac(c) {
            Some((layout, m)) => {
                out.push(layout);
                out.extend_from_slice(&m);
            }
            None => {
                out.push(0);
                put_str(out, c.as_bytes());
            }
        }
    }
    if let Some(p) = s.nas_port {
        put_varint(out, u64::from(p));
    }
    if let Some(p) = &s.nas_port_id {
        put_str(out, p.as_bytes());
    }
    if let Some(t) = s.session_time {
        put_varint(out, u64::from(t));
    }
    put_varint(out, s.ipv6_prefixes.len() as u64);
    for p in &s.ipv6_prefixes {
        let len = p.prefix_len();
        out.push(len);
        out.extend_from_slice(&p.trunc().network().octets()[..usize::from(len).div_ceil(8)]);
    }
    for c in [
        s.input_octets,
        s.output_octets,
        s.input_packets,
        s.output_packets,
    ] {
        put_varint(out, c);
    }
}

/// Zigzag: small signed numbers as small unsigned ones.
// An event's first octet: the status code, then how what follows is written.
const STATUS: u8 = 0x0f;
/// The NAS key is an IPv4 address in its usual text: its 4 octets follow.
const NAS_V4: u8 = 0x10;
/// The session id is hex of even length, lower case (or digits only): its octets follow.
const SID_HEX_LOWER: u8 = 0x20;
/// The session id is hex of even length, upper case: its octets follow.
const SID_HEX_UPPER: u8 = 0x40;
/// An Acct-Terminate-Cause follows.
const HAS_CAUSE: u8 = 0x80;
/// 2020-01-01 in Unix seconds: event times are written from it.
const LOG_EPOCH: i64 = 1_577_836_800;

/// [`SID_HEX_LOWER`] or [`SID_HEX_UPPER`] when the id can be written as its octets, else 0.
fn hex_case(id: &str) -> u8 {
    let b = id.as_bytes();
    if b.is_empty() || b.len() % 2 != 0 || !b.iter().all(u8::is_ascii_hexdigit) {
        return 0;
    }
    let lower = b.iter().any(u8::is_ascii_lowercase);
    let upper = b.iter().any(u8::is_ascii_uppercase);
    match (lower, upper) {
        (true, true) => 0,
        (false, true) => SID_HEX_UPPER,
        _ => SID_HEX_LOWER,
    }
}

/// Hex text (checked by [`hex_case`]) as its octets.
fn pack_hex(id: &str) -> Vec<u8> {
    let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    id.as_bytes()
        .chunks(2)
        .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
        .collect()
}

/// Octets as hex text in the given case.
fn unpack_hex(bytes: &[u8], upper: bool) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(digits[usize::from(b >> 4)]));
        s.push(char::from(digits[usize::from(b & 15)]));
    }
    Some(s)
}
const NANOS_PER_SECOND: i64 = 1_000_000_000;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// What an accounting event tells the live map and history, for the shared log's entries:
/// status, Acct-Terminate-Cause, the NAS key (an IPv4 address as 4 octets) and session id
/// (hex as its octets), event time, the deadline from it, then the attributes in a live
/// session's layout (IPv6 prefixes merged, a MAC in 6 octets). Attributes nothing downstream
/// reads are left out.
pub(crate) fn encode_event(
    out: &mut Vec<u8>,
    e: &AccountingEvent,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    // The first octet: the status code (at most 8) in the low four bits, how the NAS key and
    // the session id are written, and whether an Acct-Terminate-Cause follows.
    let nas_v4 = e
        .nas
        .parse::<Ipv4Addr>()
        .ok()
        .filter(|ip| ip.to_string() == e.nas);
    let sid_hex = hex_case(&e.session_id);
    let mut first = e.status.code() as u8;
    if nas_v4.is_some() {
        first |= NAS_V4;
    }
    first |= sid_hex;
    if e.terminate_cause.is_some() {
        first |= HAS_CAUSE;
    }
    out.push(first);
    if let Some(c) = e.terminate_cause {
        put_varint(out, u64::from(c));
    }
    match nas_v4 {
        Some(ip) => out.extend_from_slice(&ip.octets()),
        None => put_str(out, e.nas.as_bytes()),
    }
    match sid_hex {
        0 => put_str(out, e.session_id.as_bytes()),
        _ => {
            let packed = pack_hex(&e.session_id);
            put_str(out, &packed);
        }
    }
    // The event time: seconds from 2020 (shifted, the low bit set when nanoseconds follow,
    // as four octets; an Event-Timestamp has none).
    let ord = time_ord(e.event_time)?;
    let secs = zigzag((ord >> 30) as i64 - LOG_EPOCH);
    let nanos = (ord & ((1 << 30) - 1)) as u32;
    if nanos == 0 {
        put_varint(out, secs << 1);
    } else {
        put_varint(out, secs << 1 | 1);
        out.extend_from_slice(&nanos.to_le_bytes());
    }
    // The deadline from the event time: whole seconds as a rule (the expiry window is), so
    // those take two octets instead of six; the low bit says which unit follows.
    let ahead = (expires_at - e.event_time).whole_nanoseconds();
    let ahead =
        i64::try_from(ahead).map_err(|_| StoreError::Invalid("deadline out of range".into()))?;
    if ahead % NANOS_PER_SECOND == 0 {
        put_varint(out, zigzag(ahead / NANOS_PER_SECOND) << 1);
    } else {
        put_varint(out, zigzag(ahead) << 1 | 1);
    }
    let fields = LiveSession {
        nas: e.nas.clone(),
        nas_client: e.nas_client.clone(),
        session_id: e.session_id.clone(),
        user_name: e.user_name.clone(),
        framed_ip: e.framed_ip,
        ipv6_prefixes: e.ipv6_prefixes(),
        calling_station_id: e.calling_station_id.clone(),
        nas_port: e.nas_port,
        nas_port_id: e.nas_port_id.clone(),
        started_at: e.event_time,
        updated_at: e.event_time,
        expires_at,
        input_octets: e.input_octets,
        output_octets: e.output_octets,
        input_packets: e.input_packets,
        output_packets: e.output_packets,
        session_time: e.session_time,
    };
    encode_attributes(out, &fields);
    Ok(())
}

/// The event and deadline [`encode_event`] wrote (all of `buf`).
pub(crate) fn decode_event(buf: &[u8]) -> Result<(AccountingEvent, OffsetDateTime), StoreError> {
    let mut r = Reader { buf, pos: 0 };
    let first = r.u8()?;
    let status =
        StatusType::from_code(u32::from(first & STATUS)).ok_or_else(|| corrupt("status"))?;
    let terminate_cause = match first & HAS_CAUSE {
        0 => None,
        _ => Some(r.u32()?),
    };
    let nas = match first & NAS_V4 {
        0 => r.string()?,
        _ => {
            let o: [u8; 4] = r.take(4)?.try_into().map_err(|_| corrupt("nas"))?;
            Ipv4Addr::from(o).to_string()
        }
    };
    let session_id = match first & (SID_HEX_LOWER | SID_HEX_UPPER) {
        0 => r.string()?,
        case => {
            let n = r.varint()?;
            let bytes = r.take(usize::try_from(n).map_err(|_| corrupt("session id"))?)?;
            unpack_hex(bytes, case == SID_HEX_UPPER).ok_or_else(|| corrupt("session id"))?
        }
    };
    let secs = r.varint()?;
    let nanos = match secs & 1 {
        0 => 0,
        _ => u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| corrupt("event time"))?),
    };
    let secs = unzigzag(secs >> 1)
        .checked_add(LOG_EPOCH)
        .filter(|s| (0..1 << 34).contains(s))
        .ok_or_else(|| corrupt("event time"))?;
    if nanos >= 1 << 30 {
        return Err(corrupt("event time"));
    }
    let event_time = ord_time(((secs as u64) << 30) | u64::from(nanos))?;
    let ahead = r.varint()?;
    let ahead = match ahead & 1 {
        0 => unzigzag(ahead >> 1)
            .checked_mul(NANOS_PER_SECOND)
            .ok_or_else(|| corrupt("deadline"))?,
        _ => unzigzag(ahead >> 1),
    };
    let ahead = time::Duration::nanoseconds(ahead);
    let expires_at = event_time
        .checked_add(ahead)
        .ok_or_else(|| corrupt("deadline"))?;
    let s = decode_attributes(&mut r, nas, session_id, event_time, event_time, expires_at)?;
    if r.pos != buf.len() {
        return Err(corrupt("trailing bytes"));
    }
    let mut e = AccountingEvent::new(status, &s.nas, &s.session_id, event_time);
    e.nas_client = s.nas_client;
    e.user_name = s.user_name;
    e.framed_ip = s.framed_ip;
    e.delegated_ipv6_prefixes = s.ipv6_prefixes;
    e.calling_station_id = s.calling_station_id;
    e.nas_port = s.nas_port;
    e.nas_port_id = s.nas_port_id;
    e.input_octets = s.input_octets;
    e.output_octets = s.output_octets;
    e.input_packets = s.input_packets;
    e.output_packets = s.output_packets;
    e.session_time = s.session_time;
    e.terminate_cause = terminate_cause;
    Ok((e, expires_at))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("session record: {what}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn time(&mut self) -> Result<OffsetDateTime, StoreError> {
        decode_time(self.take(8)?)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        u32::try_from(self.varint()?).map_err(|_| corrupt("u32 out of range"))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let n = usize::try_from(self.varint()?).map_err(|_| corrupt("length"))?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt("not UTF-8"))
    }
}

/// Decode a record written by [`encode_record`].
pub(crate) fn decode_record(buf: &[u8]) -> Result<Record, StoreError> {
    let mut r = Reader { buf, pos: 0 };
    let record = match r.u8()? {
        KIND_TOMB => {
            let until = r.time()?;
            let closed_at = r.time()?;
            let nas = r.string()?;
            let session_id = r.string()?;
            let closed = if r.pos < buf.len() {
                if r.u8()? != 1 {
                    return Err(corrupt("tombstone tail"));
                }
                let terminate_cause = match r.u8()? {
                    0 => None,
                    _ => Some(r.u32()?),
                };
                Some(Box::new(ClosedSession {
                    session: decode_live(&mut r)?,
                    stopped_at: closed_at,
                    reason: CloseReason::Stop,
                    terminate_cause,
                }))
            } else {
                None
            };
            Record::Closed(Tombstone {
                nas,
                session_id,
                closed_at,
                until,
                closed,
            })
        }
        KIND_LIVE => Record::Live(decode_live(&mut r)?),
        other => return Err(corrupt(&format!("unknown kind {other:#04x}"))),
    };
    if r.pos != buf.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(record)
}

/// A live session's layout after its kind octet (see [`encode_live`]).
fn decode_live(r: &mut Reader) -> Result<LiveSession, StoreError> {
    let expires_at = r.time()?;
    let updated_at = r.time()?;
    let started_at = r.time()?;
    decode_fields(r, started_at, updated_at, expires_at)
}

/// A live session's attributes (see [`encode_fields`]) with the given times.
fn decode_fields(
    r: &mut Reader,
    started_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<LiveSession, StoreError> {
    let nas = r.string()?;
    let session_id = r.string()?;
    decode_attributes(r, nas, session_id, started_at, updated_at, expires_at)
}

/// [`encode_attributes`]'s part of a live session, given its NAS and session id.
fn decode_attributes(
    r: &mut Reader,
    nas: String,
    session_id: String,
    started_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<LiveSession, StoreError> {
    let flags = r.u8()?;
    let nas_client = if flags & F_NAS_CLIENT != 0 {
        r.string()?
    } else {
        nas.clone()
    };
    let user_name = (flags & F_USER != 0).then(|| r.string()).transpose()?;
    let framed_ip = (flags & F_FRAMED_IP != 0)
        .then(|| -> Result<Ipv4Addr, StoreError> {
            let o: [u8; 4] = r.take(4)?.try_into().map_err(|_| corrupt("ipv4"))?;
            Ok(Ipv4Addr::from(o))
        })
        .transpose()?;
    let calling_station_id = (flags & F_CALLING != 0)
        .then(|| -> Result<String, StoreError> {
            match r.u8()? {
                0 => r.string(),
                layout => {
                    let m: [u8; 6] = r.take(6)?.try_into().map_err(|_| corrupt("mac"))?;
                    render_mac(layout, &m).ok_or_else(|| corrupt("MAC layout"))
                }
            }
        })
        .transpose()?;
    let nas_port = (flags & F_PORT != 0).then(|| r.u32()).transpose()?;
    let nas_port_id = (flags & F_PORT_ID != 0).then(|| r.string()).transpose()?;
    let session_time = (flags & F_SESSION_TIME != 0).then(|| r.u32()).transpose()?;
    let n = r.varint()?;
    if n > 1024 {
        return Err(corrupt("too many IPv6 prefixes"));
    }
    let mut ipv6_prefixes = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = r.u8()?;
        if len > 128 {
            return Err(corrupt("IPv6 prefix length"));
        }
        let mut o = [0u8; 16];
        let bytes = r.take(usize::from(len).div_ceil(8))?;
        o[..bytes.len()].copy_from_slice(bytes);
        let net = Ipv6Net::new(Ipv6Addr::from(o), len).map_err(|_| corrupt("prefix"))?;
        ipv6_prefixes.push(net.trunc());
    }
    let input_octets = r.varint()?;
    let output_octets = r.varint()?;
    let input_packets = r.varint()?;
    let output_packets = r.varint()?;
    Ok(LiveSession {
        nas,
        nas_client,
        session_id,
        user_name,
        framed_ip,
        ipv6_prefixes,
        calling_station_id,
        nas_port,
        nas_port_id,
        started_at,
        updated_at,
        expires_at,
        input_octets,
        output_octets,
        input_packets,
        output_packets,
        session_time,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn sample() -> LiveSession {
        LiveSession {
            nas: "192.0.2.1".into(),
            nas_client: "bras-1".into(),
            session_id: "81a00012".into(),
            user_name: Some("jan.kowalski@isp".into()),
            framed_ip: Some(Ipv4Addr::new(100, 64, 3, 7)),
            ipv6_prefixes: vec![
                "2001:db8:1:100::/56".parse().unwrap(),
                "2001:db8:2:3::/64".parse().unwrap(),
                "2001:db8:2:3::5/128".parse().unwrap(),
            ],
            calling_station_id: Some("AA:BB:CC:0D:0E:0F".into()),
            nas_port: Some(15728642),
            nas_port_id: Some("ether1-vlan100".into()),
            started_at: datetime!(2024-05-01 09:00:00.25 UTC),
            updated_at: datetime!(2024-05-01 10:00:00 UTC),
            expires_at: datetime!(2024-05-01 10:11:00.000000001 UTC),
            input_octets: 12_345_678_901,
            output_octets: 98_765_432_109,
            input_packets: 1_234_567,
            output_packets: 7_654_321,
            session_time: Some(3600),
        }
    }

    #[test]
    fn record_roundtrip_and_size() {
        let s = sample();
        let enc = encode_record(&Record::Live(s.clone())).unwrap();
        assert_eq!(decode_record(&enc).unwrap(), Record::Live(s.clone()));
        // 25 fixed + 26 key + 17 user + 4 + 7 MAC + 23 port + 2 + 35 IPv6 + 17 counters.
        assert!(enc.len() <= 160, "record is {} bytes", enc.len());

        let mut bare = sample();
        bare.nas_client = bare.nas.clone();
        bare.user_name = None;
        bare.framed_ip = None;
        bare.ipv6_prefixes.clear();
        bare.calling_station_id = Some("odd id".into());
        bare.nas_port = None;
        bare.nas_port_id = None;
        bare.session_time = None;
        let enc = encode_record(&Record::Live(bare.clone())).unwrap();
        assert_eq!(decode_record(&enc).unwrap(), Record::Live(bare));

        let tomb = Record::Closed(Tombstone {
            nas: "n".into(),
            session_id: "s".into(),
            closed_at: datetime!(2024-05-01 10:00 UTC),
            until: datetime!(2024-05-01 10:11 UTC),
            closed: None,
        });
        assert_eq!(decode_record(&encode_record(&tomb).unwrap()).unwrap(), tomb);
        // A Stop's tombstone keeps the session it closed, cause included.
        let Record::Closed(mut t) = tomb else {
            unreachable!()
        };
        let mut session = sample();
        session.nas = "n".into();
        session.session_id = "s".into();
        t.closed = Some(Box::new(ClosedSession {
            session,
            stopped_at: t.closed_at,
            reason: CloseReason::Stop,
            terminate_cause: Some(1),
        }));
        let tomb = Record::Closed(t);
        assert_eq!(decode_record(&encode_record(&tomb).unwrap()).unwrap(), tomb);
        assert!(decode_record(&enc[..enc.len() - 1]).is_err());
        assert!(decode_record(&[0x42]).is_err());
    }

    #[test]
    fn mac_layouts_roundtrip() {
        for mac in [
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "aabb.ccdd.eeff",
            "AABBCCDDEEFF",
            "00:11:22:33:44:55",
            "AA:BB:CC:DD:EE:FF",
            "aa-bb-cc-dd-ee-ff",
            "aabbccddeeff",
        ] {
            let (layout, m) = pack_mac(mac).unwrap();
            assert_eq!(render_mac(layout, &m).as_deref(), Some(mac));
        }
        assert!(pack_mac("Aa:bb:cc:dd:ee:ff").is_none());
        assert!(pack_mac("aa:bb:cc:dd:ee").is_none());
        for not_packed in [
            "aabbccddeeff0",
            "aa:bb:cc:dd:ee:fg",
            "aa:bbcc:dd:ee:ff",
            "aabb.ccdd.eeff.",
            "ąabbccddeeff",
            "",
        ] {
            assert!(pack_mac(not_packed).is_none(), "{not_packed}");
        }
    }

    #[test]
    fn ords_sort_like_times() {
        let a = datetime!(2024-05-01 10:00:00.999999999 UTC);
        let b = datetime!(2024-05-01 10:00:01 UTC);
        assert!(time_ord(a).unwrap().to_be_bytes() < time_ord(b).unwrap().to_be_bytes());
        assert_eq!(ord_time(time_ord(a).unwrap()).unwrap(), a);
    }
}
