//! Verified Accounting-Request → AccountingEvent.
//!
//! Walks the attributes once, as borrowed slices of the packet (no copy per attribute), and
//! reads the values itself: IPv6 prefixes keep their length, Vendor-Specific attributes are
//! split and named by our dictionaries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;
use time::{Duration, OffsetDateTime};

use super::dict::{self, Dictionary};
use super::event::{AccountingEvent, StatusType, VendorAttribute};
use super::packet::{frame, DropReason, CODE_ACCOUNTING_REQUEST};

/// Attribute types read here (RFC 2865, 2866, 2869, 3162, 4818, 6911).
type AVPType = u8;

mod attr {
    use super::AVPType;

    pub const USER_NAME: AVPType = 1;
    pub const NAS_IP_ADDRESS: AVPType = 4;
    pub(crate) const NAS_PORT: AVPType = 5;
    pub const FRAMED_IP_ADDRESS: AVPType = 8;
    pub(crate) const CLASS: AVPType = 25;
    pub(crate) const VENDOR_SPECIFIC: AVPType = 26;
    pub(crate) const CALLED_STATION_ID: AVPType = 30;
    pub const CALLING_STATION_ID: AVPType = 31;
    pub const NAS_IDENTIFIER: AVPType = 32;
    pub const ACCT_STATUS_TYPE: AVPType = 40;
    pub const ACCT_DELAY_TIME: AVPType = 41;
    pub const ACCT_INPUT_OCTETS: AVPType = 42;
    pub const ACCT_OUTPUT_OCTETS: AVPType = 43;
    pub const ACCT_SESSION_ID: AVPType = 44;
    pub const ACCT_SESSION_TIME: AVPType = 46;
    pub const ACCT_INPUT_PACKETS: AVPType = 47;
    pub const ACCT_OUTPUT_PACKETS: AVPType = 48;
    pub(crate) const ACCT_TERMINATE_CAUSE: AVPType = 49;
    pub const ACCT_INPUT_GIGAWORDS: AVPType = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: AVPType = 53;
    pub const EVENT_TIMESTAMP: AVPType = 55;
    pub(crate) const NAS_PORT_ID: AVPType = 87;
    pub(crate) const NAS_IPV6_ADDRESS: AVPType = 95;
    pub(crate) const FRAMED_INTERFACE_ID: AVPType = 96;
    pub const FRAMED_IPV6_PREFIX: AVPType = 97;
    pub(crate) const DELEGATED_IPV6_PREFIX: AVPType = 123;
    pub(crate) const FRAMED_IPV6_ADDRESS: AVPType = 168;
}

/// Event-Timestamps before 2000-01-01 come from a NAS without a set clock, and no session
/// starts before then.
pub(crate) const PLAUSIBLE_SINCE: OffsetDateTime = time::macros::datetime!(2000-01-01 00:00 UTC);
/// How far past the arrival an Event-Timestamp is believed (NAS clock skew). A time further
/// ahead would make every later event of its session, or after an Accounting-On every event
/// of its NAS, look older than it and be ignored until that time came.
pub(crate) const MAX_CLOCK_AHEAD: Duration = Duration::minutes(10);
/// The longest Acct-Delay-Time believed: a NAS retries for minutes, and one that buffered
/// its accounting through an outage for hours; beyond a day the value says nothing true.
pub(crate) const MAX_DELAY: Duration = Duration::hours(24);

/// Times in a packet that could not be true and were bounded at the door (the event is
/// still recorded, with the bounded times). Counted in
/// `ebok_radius_times_corrected_total{attribute}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Corrected {
    /// Event-Timestamp more than [`MAX_CLOCK_AHEAD`] past the arrival: the arrival (less
    /// Acct-Delay-Time) was used instead.
    pub event_timestamp: bool,
    /// Acct-Delay-Time above [`MAX_DELAY`]: [`MAX_DELAY`] was used.
    pub delay_time: bool,
    /// Acct-Session-Time reaching back before [`PLAUSIBLE_SINCE`]: cut to reach back to it.
    pub session_time: bool,
}

impl Corrected {
    /// The attribute names of the corrections made.
    pub fn attributes(self) -> impl Iterator<Item = &'static str> {
        [
            (self.event_timestamp, "Event-Timestamp"),
            (self.delay_time, "Acct-Delay-Time"),
            (self.session_time, "Acct-Session-Time"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
    }

    pub fn any(self) -> bool {
        self.event_timestamp || self.delay_time || self.session_time
    }
}

/// Decodes an Accounting-Request whose authenticators were already checked.
///
/// `packet` may be the datagram or the framed packet. Integer and address attributes of the
/// wrong length and malformed IPv6 prefixes reject the whole packet (`MalformedAttributes`);
/// Vendor-Specific attributes never do: what cannot be split or named is kept raw.
pub fn decode_event(
    packet: &[u8],
    source: IpAddr,
    nas_client: &str,
    arrival: OffsetDateTime,
    dict: &Dictionary,
) -> Result<AccountingEvent, DropReason> {
    decode_checked(packet, source, nas_client, arrival, dict).map(|(event, _)| event)
}

/// [`decode_event`], also saying which times were bounded (see [`Corrected`]).
///
/// The event time is the Event-Timestamp when it lies between [`PLAUSIBLE_SINCE`] and
/// [`MAX_CLOCK_AHEAD`] past the arrival, else the arrival less Acct-Delay-Time (at most
/// [`MAX_DELAY`]); Acct-Session-Time never reaches back before [`PLAUSIBLE_SINCE`]. Every
/// time an event carries into the stores is thus within a day of the arrival or the
/// NAS's own plausible clock, and a session never starts before 2000.
pub fn decode_checked(
    packet: &[u8],
    source: IpAddr,
    nas_client: &str,
    arrival: OffsetDateTime,
    dict: &Dictionary,
) -> Result<(AccountingEvent, Corrected), DropReason> {
    let packet = frame(packet)?;
    if packet[0] != CODE_ACCOUNTING_REQUEST {
        return Err(DropReason::UnknownCode);
    }
    let p = Attributes::parse(packet)?;

    let status = integer(&p, attr::ACCT_STATUS_TYPE)?.ok_or(DropReason::MissingStatusType)?;
    let status = StatusType::from_code(status).ok_or(DropReason::UnknownStatusType)?;
    let session_id = string(&p, attr::ACCT_SESSION_ID).unwrap_or_default();
    let on_off = matches!(status, StatusType::AccountingOn | StatusType::AccountingOff);
    if session_id.is_empty() && !on_off {
        return Err(DropReason::MissingSessionId);
    }

    let nas_ip_address = ipv4(&p, attr::NAS_IP_ADDRESS)?;
    let nas_ipv6_address = p.lookup(attr::NAS_IPV6_ADDRESS).map(ipv6).transpose()?;
    let nas_identifier = string(&p, attr::NAS_IDENTIFIER);
    let nas = match (nas_ip_address, nas_ipv6_address, &nas_identifier) {
        (Some(v4), _, _) => v4.to_string(),
        (None, Some(v6), _) => v6.to_string(),
        (None, None, Some(id)) if !id.is_empty() => id.clone(),
        _ => source.to_string(),
    };

    // RFC 2865 §5.8: 255.255.255.255 and .254 ask the NAS to choose; 0.0.0.0 is no address.
    let framed_ip = ipv4(&p, attr::FRAMED_IP_ADDRESS)?.filter(|ip| {
        !ip.is_unspecified()
            && *ip != Ipv4Addr::BROADCAST
            && *ip != Ipv4Addr::new(255, 255, 255, 254)
    });

    let framed_interface_id = p
        .lookup(attr::FRAMED_INTERFACE_ID)
        .map(|a| <[u8; 8]>::try_from(a).map_err(|_| DropReason::MalformedAttributes))
        .transpose()?;

    let delay_time = integer(&p, attr::ACCT_DELAY_TIME)?;
    let mut corrected = Corrected::default();
    let event_time = event_time(
        integer(&p, attr::EVENT_TIMESTAMP)?,
        delay_time,
        arrival,
        &mut corrected,
    );
    let mut session_time = integer(&p, attr::ACCT_SESSION_TIME)?;
    if let Some(secs) = session_time {
        let reach = (event_time - PLAUSIBLE_SINCE).whole_seconds().max(0);
        if i64::from(secs) > reach {
            session_time = Some(u32::try_from(reach).unwrap_or(u32::MAX));
            corrected.session_time = true;
        }
    }

    // Built in one go: the strings decoded above move in, none is copied again.
    let event = AccountingEvent {
        status,
        nas,
        nas_client: nas_client.to_owned(),
        source,
        session_id,
        user_name: string(&p, attr::USER_NAME),
        nas_ip_address,
        nas_ipv6_address,
        nas_identifier,
        nas_port: integer(&p, attr::NAS_PORT)?,
        nas_port_id: string(&p, attr::NAS_PORT_ID),
        framed_ip,
        framed_ipv6_prefixes: prefixes(&p, attr::FRAMED_IPV6_PREFIX)?,
        delegated_ipv6_prefixes: prefixes(&p, attr::DELEGATED_IPV6_PREFIX)?,
        framed_ipv6_addresses: p
            .lookup_all(attr::FRAMED_IPV6_ADDRESS)
            .map(ipv6)
            .collect::<Result<_, _>>()?,
        framed_interface_id,
        calling_station_id: string(&p, attr::CALLING_STATION_ID),
        called_station_id: string(&p, attr::CALLED_STATION_ID),
        input_octets: octets(&p, attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS)?,
        output_octets: octets(&p, attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS)?,
        input_packets: integer(&p, attr::ACCT_INPUT_PACKETS)?.map_or(0, u64::from),
        output_packets: integer(&p, attr::ACCT_OUTPUT_PACKETS)?.map_or(0, u64::from),
        session_time,
        terminate_cause: integer(&p, attr::ACCT_TERMINATE_CAUSE)?,
        class: p.lookup_all(attr::CLASS).map(<[u8]>::to_vec).collect(),
        event_time,
        delay_time,
        vendor_attributes: p
            .lookup_all(attr::VENDOR_SPECIFIC)
            .flat_map(|a| vendor_attributes(dict, a))
            .collect(),
    };
    Ok((event, corrected))
}

/// When the event happened (see [`decode_checked`]).
fn event_time(
    timestamp: Option<u32>,
    delay: Option<u32>,
    arrival: OffsetDateTime,
    corrected: &mut Corrected,
) -> OffsetDateTime {
    if let Some(ts) = timestamp {
        let ts = OffsetDateTime::from_unix_timestamp(i64::from(ts))
            .expect("every u32 is a valid Unix time");
        // A NAS whose clock was never set sends timestamps near 1970: such an
        // Event-Timestamp says nothing, and the arrival time is used instead.
        if ts >= PLAUSIBLE_SINCE && ts <= arrival + MAX_CLOCK_AHEAD {
            return ts;
        }
        corrected.event_timestamp |= ts > arrival;
    }
    let mut delay = Duration::seconds(i64::from(delay.unwrap_or(0)));
    if delay > MAX_DELAY {
        delay = MAX_DELAY;
        corrected.delay_time = true;
    }
    arrival - delay
}

/// The attributes of a framed packet, as (type, value) slices in packet order, with the
/// position of each type's first instance (an event reads some 30 types, most once).
struct Attributes<'a> {
    all: Vec<(AVPType, &'a [u8])>,
    /// Index into `all` + 1 of the first instance of each type; 0 when absent.
    first: [u8; 256],
}

impl<'a> Attributes<'a> {
    /// Split the attributes after the 20-octet header (`packet` is framed: its length is
    /// the Length field). Every attribute needs a length of 2..=255 that fits the packet.
    fn parse(packet: &'a [u8]) -> Result<Self, DropReason> {
        let mut rest = packet.get(20..).ok_or(DropReason::MalformedAttributes)?;
        let mut all = Vec::with_capacity(32);
        let mut first = [0u8; 256];
        while !rest.is_empty() {
            let [typ, len, ..] = *rest else {
                return Err(DropReason::MalformedAttributes);
            };
            let len = usize::from(len);
            if len < 2 || len > rest.len() {
                return Err(DropReason::MalformedAttributes);
            }
            // At most 4095 / 2 attributes: past 254 the first-instance index stays unset
            // for new types and lookups scan.
            if first[usize::from(typ)] == 0 && all.len() < 255 {
                first[usize::from(typ)] = (all.len() + 1) as u8;
            }
            all.push((typ, &rest[2..len]));
            rest = &rest[len..];
        }
        Ok(Attributes { all, first })
    }

    /// The first instance of `typ`.
    fn lookup(&self, typ: AVPType) -> Option<&'a [u8]> {
        match self.first[usize::from(typ)] {
            0 if self.all.len() > 255 => self.all.iter().find(|(t, _)| *t == typ).map(|(_, v)| *v),
            0 => None,
            i => Some(self.all[usize::from(i) - 1].1),
        }
    }

    /// Every instance of `typ`, in order.
    fn lookup_all(&self, typ: AVPType) -> impl Iterator<Item = &'a [u8]> + '_ {
        let from = match self.first[usize::from(typ)] {
            0 if self.all.len() > 255 => 0,
            0 => self.all.len(),
            i => usize::from(i) - 1,
        };
        self.all[from..]
            .iter()
            .filter(move |(t, _)| *t == typ)
            .map(|(_, v)| *v)
    }
}

/// First instance of a 4-octet integer attribute.
fn integer(p: &Attributes, typ: AVPType) -> Result<Option<u32>, DropReason> {
    p.lookup(typ)
        .map(|a| {
            <[u8; 4]>::try_from(a)
                .map(u32::from_be_bytes)
                .map_err(|_| DropReason::MalformedAttributes)
        })
        .transpose()
}

fn ipv4(p: &Attributes, typ: AVPType) -> Result<Option<Ipv4Addr>, DropReason> {
    p.lookup(typ)
        .map(|a| {
            <[u8; 4]>::try_from(a)
                .map(Ipv4Addr::from)
                .map_err(|_| DropReason::MalformedAttributes)
        })
        .transpose()
}

fn ipv6(a: &[u8]) -> Result<Ipv6Addr, DropReason> {
    <[u8; 16]>::try_from(a)
        .map(Ipv6Addr::from)
        .map_err(|_| DropReason::MalformedAttributes)
}

/// First instance of a text attribute; invalid UTF-8 is replaced, not rejected.
fn string(p: &Attributes, typ: AVPType) -> Option<String> {
    p.lookup(typ)
        .map(|a| String::from_utf8_lossy(a).into_owned())
}

/// A 32-bit counter with its Gigawords overflow count (RFC 2869 §5.1) folded in.
fn octets(p: &Attributes, low: AVPType, gigawords: AVPType) -> Result<u64, DropReason> {
    let low = integer(p, low)?.unwrap_or(0);
    let high = integer(p, gigawords)?.unwrap_or(0);
    Ok((u64::from(high) << 32) | u64::from(low))
}

fn prefixes(p: &Attributes, typ: AVPType) -> Result<Vec<Ipv6Net>, DropReason> {
    p.lookup_all(typ).map(ipv6_prefix).collect()
}

/// An RFC 3162 §2.3 prefix value: reserved octet, prefix length 0..=128, then at least
/// enough octets to hold the length and at most 16. Set bits beyond the length are cleared
/// rather than rejected, and the reserved octet is not checked.
fn ipv6_prefix(value: &[u8]) -> Result<Ipv6Net, DropReason> {
    let [_reserved, length, prefix @ ..] = value else {
        return Err(DropReason::MalformedAttributes);
    };
    if *length > 128 || prefix.len() > 16 || prefix.len() < usize::from(*length).div_ceil(8) {
        return Err(DropReason::MalformedAttributes);
    }
    let mut octets = [0u8; 16];
    octets[..prefix.len()].copy_from_slice(prefix);
    let net = Ipv6Net::new(Ipv6Addr::from(octets), *length).expect("length checked above");
    Ok(net.trunc())
}

/// The sub-attributes of one Vendor-Specific value, named and rendered when the dictionary
/// knows them. A value the dictionary cannot split is kept whole as `attr_type` 0: `raw` is
/// what follows the Vendor-Id, or the whole value (with `vendor_id` 0) when it is shorter
/// than a Vendor-Id.
fn vendor_attributes(dict: &Dictionary, value: &[u8]) -> Vec<VendorAttribute> {
    let Ok((vendor_id, subs)) = dict::split_vendor_specific(dict, value) else {
        let (vendor_id, raw) = match value.split_first_chunk::<4>() {
            Some((id, rest)) => (u32::from_be_bytes(*id), rest.to_vec()),
            None => (0, value.to_vec()),
        };
        return vec![VendorAttribute {
            vendor_id,
            attr_type: 0,
            name: None,
            text: None,
            raw,
        }];
    };
    subs.into_iter()
        .map(|(attr_type, raw)| {
            let def = dict.vendor_attribute(vendor_id, attr_type);
            VendorAttribute {
                vendor_id,
                attr_type,
                name: def.map(|d| d.name.clone()),
                text: def.and_then(|d| dict::render(d.kind, &raw)),
                raw,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const ARRIVAL: OffsetDateTime = datetime!(2024-01-01 12:00:00 UTC);
    const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    /// An Accounting-Request around the given attribute octets (hex, whitespace ignored).
    /// The authenticator is left zero: decoding does not check it.
    fn packet(attrs: &[&str]) -> Vec<u8> {
        let hex: String = attrs.concat().split_whitespace().collect();
        let mut p = vec![CODE_ACCOUNTING_REQUEST, 1, 0, 0];
        p.extend_from_slice(&[0; 16]);
        p.extend(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()),
        );
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    fn decode(attrs: &[&str]) -> Result<AccountingEvent, DropReason> {
        decode_event(
            &packet(attrs),
            SOURCE,
            "bras",
            ARRIVAL,
            Dictionary::builtin(),
        )
    }

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    const START: &str = "280600000001"; // Acct-Status-Type = Start
    const INTERIM: &str = "280600000003"; // Acct-Status-Type = Interim-Update
    const SESSION: &str = "2c0a3831613030303033"; // Acct-Session-Id = "81a00003"
    const NAS_IP: &str = "04060a000001"; // NAS-IP-Address = 10.0.0.1

    #[test]
    fn attributes_past_the_255th_are_found() {
        // 300 empty Class attributes first (a legal 620-octet packet), then the rest.
        let classes = "1902".repeat(300);
        let event = decode(&[&classes, NAS_IP, START, SESSION, "05060000000c"]).unwrap();
        assert_eq!(event.status, StatusType::Start);
        assert_eq!(event.session_id, "81a00003");
        assert_eq!(event.nas, "10.0.0.1");
        assert_eq!(event.nas_port, Some(12));
        assert_eq!(event.class.len(), 300);
        assert_eq!(event.user_name, None);
    }

    #[test]
    fn mikrotik_start() {
        let event = decode(&[
            START,
            SESSION,
            "010e6a616e2e6b6f77616c736b69", // User-Name = "jan.kowalski"
            NAS_IP,
            "20076272617331",                         // NAS-Identifier = "bras1"
            "050600f00002",                           // NAS-Port = 15728642
            "57106574686572322d766c616e313030",       // NAS-Port-Id = "ether2-vlan100"
            "1f1341413a42423a43433a44443a45453a4646", // Calling-Station-Id = "AA:BB:CC:DD:EE:FF"
            "1e0b7070706f652d737663",                 // Called-Station-Id = "pppoe-svc"
            "080664400102",                           // Framed-IP-Address = 100.64.1.2
            "610c004020010db800010002",               // Framed-IPv6-Prefix = 2001:db8:1:2::/64
            "7b0b003820010db8010000",                 // Delegated-IPv6-Prefix = 2001:db8:100::/56
            "290600000000",                           // Acct-Delay-Time = 0
            "1a0f00003a8c080931304d2f32304d",         // Mikrotik-Rate-Limit = "10M/20M"
        ])
        .unwrap();

        let mut expected = AccountingEvent::new(StatusType::Start, "10.0.0.1", "81a00003", ARRIVAL);
        expected.nas_client = "bras".into();
        expected.source = SOURCE;
        expected.user_name = Some("jan.kowalski".into());
        expected.nas_ip_address = Some(Ipv4Addr::new(10, 0, 0, 1));
        expected.nas_identifier = Some("bras1".into());
        expected.nas_port = Some(15728642);
        expected.nas_port_id = Some("ether2-vlan100".into());
        expected.calling_station_id = Some("AA:BB:CC:DD:EE:FF".into());
        expected.called_station_id = Some("pppoe-svc".into());
        expected.framed_ip = Some(Ipv4Addr::new(100, 64, 1, 2));
        expected.framed_ipv6_prefixes = vec![net("2001:db8:1:2::/64")];
        expected.delegated_ipv6_prefixes = vec![net("2001:db8:100::/56")];
        expected.delay_time = Some(0);
        expected.vendor_attributes = vec![VendorAttribute {
            vendor_id: 14988,
            attr_type: 8,
            name: Some("Mikrotik-Rate-Limit".into()),
            text: Some("10M/20M".into()),
            raw: b"10M/20M".to_vec(),
        }];
        assert_eq!(event, expected);
    }

    #[test]
    fn interim_with_gigawords() {
        let event = decode(&[
            INTERIM,
            SESSION,
            NAS_IP,
            "2a0600000005", // Acct-Input-Octets = 5
            "340600000001", // Acct-Input-Gigawords = 1
            "2b06ffffffff", // Acct-Output-Octets = 4294967295
            "350600000002", // Acct-Output-Gigawords = 2
            "2f0600000007", // Acct-Input-Packets = 7
            "3006ffffffff", // Acct-Output-Packets = 4294967295
            "2e0600000e10", // Acct-Session-Time = 3600
        ])
        .unwrap();
        assert_eq!(event.status, StatusType::InterimUpdate);
        assert_eq!(event.input_octets, 4_294_967_301);
        assert_eq!(event.output_octets, 12_884_901_887);
        assert_eq!(event.input_packets, 7);
        assert_eq!(event.output_packets, 4_294_967_295);
        assert_eq!(event.session_time, Some(3600));

        // Gigawords alone, octets absent.
        let event = decode(&[INTERIM, SESSION, "340600000001"]).unwrap();
        assert_eq!(event.input_octets, 1 << 32);
        assert_eq!(event.output_octets, 0);
    }

    #[test]
    fn stop_with_cause_and_classes() {
        let event = decode(&[
            "280600000002", // Acct-Status-Type = Stop
            SESSION,
            "310600000001", // Acct-Terminate-Cause = User-Request
            "19046162",     // Class = "ab"
            "1903ff",       // Class = 0xff
        ])
        .unwrap();
        assert_eq!(event.status, StatusType::Stop);
        assert_eq!(event.terminate_cause, Some(1));
        assert_eq!(event.class, vec![b"ab".to_vec(), vec![0xff]]);
    }

    #[test]
    fn event_time() {
        // Acct-Delay-Time = 30, no Event-Timestamp: arrival − 30 s.
        let event = decode(&[START, SESSION, "29060000001e"]).unwrap();
        assert_eq!(event.event_time, datetime!(2024-01-01 11:59:30 UTC));
        assert_eq!(event.delay_time, Some(30));

        // Event-Timestamp = 1700000000 wins over the delay.
        let event = decode(&[START, SESSION, "29060000001e", "37066553f100"]).unwrap();
        assert_eq!(event.event_time, datetime!(2023-11-14 22:13:20 UTC));
        assert_eq!(event.delay_time, Some(30));

        // An unset NAS clock (Event-Timestamp near 1970): arrival − delay.
        let event = decode(&[START, SESSION, "370600000064"]).unwrap();
        assert_eq!(event.event_time, ARRIVAL);
        // Neither: arrival.
        assert_eq!(decode(&[START, SESSION]).unwrap().event_time, ARRIVAL);
    }

    fn checked(attrs: &[&str]) -> (AccountingEvent, Corrected) {
        decode_checked(
            &packet(attrs),
            SOURCE,
            "bras",
            ARRIVAL,
            Dictionary::builtin(),
        )
        .unwrap()
    }

    #[test]
    fn impossible_times_are_bounded_at_the_door() {
        // Acct-Delay-Time = 2^31 − 1 (68 years before the arrival): a day at most.
        let (event, c) = checked(&[START, SESSION, "29067fffffff"]);
        assert_eq!(event.event_time, ARRIVAL - MAX_DELAY);
        assert_eq!(event.delay_time, Some(i32::MAX as u32), "kept as sent");
        assert!(c.delay_time && !c.event_timestamp && !c.session_time);

        // Acct-Session-Time = 2^32 − 1 on an Interim (136 years): back to 2000 at most.
        let (event, c) = checked(&[INTERIM, SESSION, "2e06ffffffff"]);
        assert_eq!(
            event.event_time - Duration::seconds(i64::from(event.session_time.unwrap())),
            PLAUSIBLE_SINCE
        );
        assert_eq!(c.attributes().collect::<Vec<_>>(), ["Acct-Session-Time"]);

        // Event-Timestamp = 2^32 − 1 (year 2106): the arrival instead.
        let (event, c) = checked(&[START, SESSION, "3706ffffffff"]);
        assert_eq!(event.event_time, ARRIVAL);
        assert!(c.event_timestamp);
        // Five minutes ahead is clock skew, believed.
        let ahead = (ARRIVAL + Duration::minutes(5)).unix_timestamp() as u32;
        let (event, c) = checked(&[START, SESSION, &format!("3706{ahead:08x}")]);
        assert_eq!(event.event_time, ARRIVAL + Duration::minutes(5));
        assert!(!c.any());
    }

    #[test]
    fn framed_ip_placeholders_ignored() {
        for placeholder in ["080600000000", "0806ffffffff", "0806fffffffe"] {
            let event = decode(&[START, SESSION, placeholder]).unwrap();
            assert_eq!(event.framed_ip, None, "{placeholder}");
        }
        assert_eq!(
            decode(&[START, SESSION, "08070a00000100"]),
            Err(DropReason::MalformedAttributes)
        );
    }

    #[test]
    fn multiple_ipv6_prefixes_and_addresses() {
        let event = decode(&[
            START,
            SESSION,
            "610c004020010db800010002", // Framed-IPv6-Prefix = 2001:db8:1:2::/64
            "610c004020010db800010003", // Framed-IPv6-Prefix = 2001:db8:1:3::/64
            "7b0b003820010db8010000",   // Delegated-IPv6-Prefix = 2001:db8:100::/56
            "7b0a003020010db80200",     // Delegated-IPv6-Prefix = 2001:db8:200::/48
            "a81220010db8000100020000000000000001", // Framed-IPv6-Address = 2001:db8:1:2::1
            "a81220010db8000100030000000000000001", // Framed-IPv6-Address = 2001:db8:1:3::1
            "600a0211223344556677",     // Framed-Interface-Id = 0211:2233:4455:6677
        ])
        .unwrap();
        assert_eq!(
            event.framed_ipv6_prefixes,
            vec![net("2001:db8:1:2::/64"), net("2001:db8:1:3::/64")]
        );
        assert_eq!(
            event.delegated_ipv6_prefixes,
            vec![net("2001:db8:100::/56"), net("2001:db8:200::/48")]
        );
        assert_eq!(
            event.framed_ipv6_addresses,
            vec![
                "2001:db8:1:2::1".parse::<Ipv6Addr>().unwrap(),
                "2001:db8:1:3::1".parse().unwrap()
            ]
        );
        assert_eq!(
            event.framed_interface_id,
            Some([0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77])
        );
        assert_eq!(
            decode(&[START, SESSION, "6009 02112233445566"]), // 7-octet Framed-Interface-Id
            Err(DropReason::MalformedAttributes)
        );
    }

    #[test]
    fn prefix_edge_cases() {
        let ok = |attr: &str| decode(&[START, SESSION, attr]).map(|e| e.framed_ipv6_prefixes);
        // /0 with no prefix octets.
        assert_eq!(ok("61040000"), Ok(vec![net("::/0")]));
        // /128 with 16 octets.
        assert_eq!(
            ok("61140080 20010db8000000000000000000000001"),
            Ok(vec![net("2001:db8::1/128")])
        );
        // /56 with exactly 7 octets, and with 16 octets and host bits set (truncated).
        assert_eq!(
            ok("610b0038 20010db8aabbcc"),
            Ok(vec![net("2001:db8:aabb:cc00::/56")])
        );
        assert_eq!(
            ok("61140038 20010db8aabbccddeeff000000000001"),
            Ok(vec![net("2001:db8:aabb:cc00::/56")])
        );
        // /57 needs 8 octets; 7 is too few.
        assert_eq!(
            ok("610b0039 20010db8aabbcc"),
            Err(DropReason::MalformedAttributes)
        );
        // Length 129.
        assert_eq!(
            ok("61140081 20010db8000000000000000000000001"),
            Err(DropReason::MalformedAttributes)
        );
        // 17 prefix octets.
        assert_eq!(
            ok("61150080 20010db800000000000000000000000100"),
            Err(DropReason::MalformedAttributes)
        );
        // No prefix-length octet.
        assert_eq!(ok("610300"), Err(DropReason::MalformedAttributes));
        // Delegated-IPv6-Prefix goes through the same parser.
        assert_eq!(
            decode(&[START, SESSION, "7b0b0081 20010db8010000"]),
            Err(DropReason::MalformedAttributes)
        );
    }

    #[test]
    fn accounting_on_without_session_id() {
        let event = decode(&["280600000007", NAS_IP]).unwrap(); // Accounting-On
        assert_eq!(event.status, StatusType::AccountingOn);
        assert_eq!(event.session_id, "");
        assert_eq!(event.nas, "10.0.0.1");
        let event = decode(&["280600000008"]).unwrap(); // Accounting-Off, no NAS attributes
        assert_eq!(event.status, StatusType::AccountingOff);
        assert_eq!(event.nas, "192.0.2.7");
    }

    #[test]
    fn session_id_required_for_sessions() {
        for status in [START, INTERIM, "280600000002"] {
            assert_eq!(decode(&[status, NAS_IP]), Err(DropReason::MissingSessionId));
            // An empty Acct-Session-Id is no better.
            assert_eq!(decode(&[status, "2c02"]), Err(DropReason::MissingSessionId));
        }
    }

    #[test]
    fn status_type_checks() {
        assert_eq!(
            decode(&[SESSION, NAS_IP]),
            Err(DropReason::MissingStatusType)
        );
        for unknown in [
            "280600000000",
            "280600000004",
            "280600000009",
            "28060000000f",
        ] {
            assert_eq!(
                decode(&[unknown, SESSION]),
                Err(DropReason::UnknownStatusType),
                "{unknown}"
            );
        }
        // Integer attributes must be exactly 4 octets.
        assert_eq!(
            decode(&["2805000001", SESSION]),
            Err(DropReason::MalformedAttributes)
        );
        assert_eq!(
            decode(&[START, SESSION, "2a070000000005"]),
            Err(DropReason::MalformedAttributes)
        );
    }

    #[test]
    fn nas_key_fallbacks() {
        let v6 = "5f1220010db8000000000000000000000099"; // NAS-IPv6-Address = 2001:db8::99
        let id = "20076272617331"; // NAS-Identifier = "bras1"
        let nas = |attrs: &[&str]| decode(attrs).unwrap().nas;
        assert_eq!(nas(&[START, SESSION, id, v6, NAS_IP]), "10.0.0.1");
        assert_eq!(nas(&[START, SESSION, id, v6]), "2001:db8::99");
        assert_eq!(nas(&[START, SESSION, id]), "bras1");
        assert_eq!(nas(&[START, SESSION, "2002"]), "192.0.2.7"); // empty NAS-Identifier
        assert_eq!(nas(&[START, SESSION]), "192.0.2.7");
        let event = decode(&[START, SESSION, v6]).unwrap();
        assert_eq!(
            event.nas_ipv6_address,
            Some("2001:db8::99".parse().unwrap())
        );
    }

    #[test]
    fn strings_are_utf8_lossy() {
        let event = decode(&[START, SESSION, "0106 6aff c582"]).unwrap(); // "j", 0xff, "ł"
        assert_eq!(event.user_name.as_deref(), Some("j\u{fffd}ł"));
    }

    #[test]
    fn unknown_vendor_kept_raw() {
        // Vendor 99999 (unknown, so split as type 1 octet, length 1 octet), sub-attribute 1 = "x".
        let event = decode(&[START, SESSION, "1a090001869f010378"]).unwrap();
        assert_eq!(
            event.vendor_attributes,
            vec![VendorAttribute {
                vendor_id: 99999,
                attr_type: 1,
                name: None,
                text: None,
                raw: b"x".to_vec(),
            }]
        );

        // Known vendor, unknown sub-attribute 250.
        let event = decode(&[START, SESSION, "1a0900003a8cfa0378"]).unwrap();
        assert_eq!(
            event.vendor_attributes,
            vec![VendorAttribute {
                vendor_id: 14988,
                attr_type: 250,
                name: None,
                text: None,
                raw: b"x".to_vec(),
            }]
        );
    }

    #[test]
    fn malformed_vendor_specific_kept_raw() {
        let event = decode(&[
            START,
            SESSION,
            "1a0a00003a8c08093130", // Mikrotik sub-attribute claims 9 octets, has 4
            "1a040000",             // shorter than a Vendor-Id
            NAS_IP,
        ])
        .unwrap();
        assert_eq!(
            event.vendor_attributes,
            vec![
                VendorAttribute {
                    vendor_id: 14988,
                    attr_type: 0,
                    name: None,
                    text: None,
                    raw: vec![0x08, 0x09, 0x31, 0x30],
                },
                VendorAttribute {
                    vendor_id: 0,
                    attr_type: 0,
                    name: None,
                    text: None,
                    raw: vec![0, 0],
                },
            ]
        );
        assert_eq!(event.nas, "10.0.0.1");
    }

    #[test]
    fn framing_and_code_checked() {
        let mut p = packet(&[START, SESSION]);
        p[0] = 12;
        assert_eq!(
            decode_event(&p, SOURCE, "bras", ARRIVAL, Dictionary::builtin()),
            Err(DropReason::UnknownCode)
        );
        let p = packet(&[START, SESSION, "0101"]);
        assert_eq!(
            decode_event(&p, SOURCE, "bras", ARRIVAL, Dictionary::builtin()),
            Err(DropReason::MalformedAttributes)
        );
    }
}
