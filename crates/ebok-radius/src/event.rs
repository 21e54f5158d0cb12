//! The plain accounting event: what one verified Accounting-Request says, free of wire format.
//! Everything downstream (live map, journal, history) works on this type only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Acct-Status-Type (RFC 2866 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusType {
    Start,
    Stop,
    InterimUpdate,
    AccountingOn,
    AccountingOff,
}

impl StatusType {
    /// The RFC 2866 numeric value.
    pub fn code(self) -> u32 {
        match self {
            StatusType::Start => 1,
            StatusType::Stop => 2,
            StatusType::InterimUpdate => 3,
            StatusType::AccountingOn => 7,
            StatusType::AccountingOff => 8,
        }
    }

    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => StatusType::Start,
            2 => StatusType::Stop,
            3 => StatusType::InterimUpdate,
            7 => StatusType::AccountingOn,
            8 => StatusType::AccountingOff,
            _ => return None,
        })
    }

    /// Short lower-case label, used in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            StatusType::Start => "start",
            StatusType::Stop => "stop",
            StatusType::InterimUpdate => "interim",
            StatusType::AccountingOn => "accounting_on",
            StatusType::AccountingOff => "accounting_off",
        }
    }
}

/// One Vendor-Specific sub-attribute, named from `radius-dict/` when the dictionary knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorAttribute {
    pub vendor_id: u32,
    pub attr_type: u32,
    /// `Vendor-Attribute` name from the dictionary, `None` for unknown ones (kept raw).
    pub name: Option<String>,
    /// The value rendered by its dictionary type (string, integer, ipaddr, …), when known.
    pub text: Option<String>,
    /// Raw value octets as received.
    pub raw: Vec<u8>,
}

/// A decoded, authenticated Accounting-Request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingEvent {
    pub status: StatusType,
    /// The key of the NAS this event belongs to: NAS-IP-Address, else NAS-IPv6-Address, else
    /// NAS-Identifier, else the UDP source address. Sessions are keyed by (nas, session_id).
    pub nas: String,
    /// Name of the configured NAS client entry whose prefix matched the source address.
    pub nas_client: String,
    /// UDP source address the request came from.
    pub source: IpAddr,
    /// Acct-Session-Id (empty for Accounting-On/Off when the NAS omits it).
    pub session_id: String,
    pub user_name: Option<String>,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub nas_ipv6_address: Option<Ipv6Addr>,
    pub nas_identifier: Option<String>,
    pub nas_port: Option<u32>,
    pub nas_port_id: Option<String>,
    /// Framed-IP-Address; 0.0.0.0 and 255.255.255.254/255 (RFC 2865 "NAS chooses") are ignored.
    pub framed_ip: Option<Ipv4Addr>,
    /// Every Framed-IPv6-Prefix (RFC 3162).
    pub framed_ipv6_prefixes: Vec<Ipv6Net>,
    /// Every Delegated-IPv6-Prefix (RFC 4818).
    pub delegated_ipv6_prefixes: Vec<Ipv6Net>,
    /// Every Framed-IPv6-Address (RFC 6911).
    pub framed_ipv6_addresses: Vec<Ipv6Addr>,
    /// Framed-Interface-Id (RFC 3162), 8 octets.
    pub framed_interface_id: Option<[u8; 8]>,
    /// Calling-Station-Id: for PPPoE normally the subscriber router's MAC.
    pub calling_station_id: Option<String>,
    pub called_station_id: Option<String>,
    /// Octets with Acct-Input/Output-Gigawords folded in (64 bit).
    pub input_octets: u64,
    pub output_octets: u64,
    pub input_packets: u64,
    pub output_packets: u64,
    pub session_time: Option<u32>,
    /// Acct-Terminate-Cause value (RFC 2866 §5.10).
    pub terminate_cause: Option<u32>,
    /// Class attributes, in order.
    pub class: Vec<Vec<u8>>,
    /// When it happened: Event-Timestamp, else arrival time minus Acct-Delay-Time.
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    /// Acct-Delay-Time as sent.
    pub delay_time: Option<u32>,
    pub vendor_attributes: Vec<VendorAttribute>,
}

impl AccountingEvent {
    /// A bare event, for tests and for code that fills fields one by one.
    pub fn new(
        status: StatusType,
        nas: &str,
        session_id: &str,
        event_time: OffsetDateTime,
    ) -> Self {
        AccountingEvent {
            status,
            nas: nas.to_owned(),
            nas_client: nas.to_owned(),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            session_id: session_id.to_owned(),
            user_name: None,
            nas_ip_address: None,
            nas_ipv6_address: None,
            nas_identifier: None,
            nas_port: None,
            nas_port_id: None,
            framed_ip: None,
            framed_ipv6_prefixes: Vec::new(),
            delegated_ipv6_prefixes: Vec::new(),
            framed_ipv6_addresses: Vec::new(),
            framed_interface_id: None,
            calling_station_id: None,
            called_station_id: None,
            input_octets: 0,
            output_octets: 0,
            input_packets: 0,
            output_packets: 0,
            session_time: None,
            terminate_cause: None,
            class: Vec::new(),
            event_time,
            delay_time: None,
            vendor_attributes: Vec::new(),
        }
    }

    /// Every IPv6 prefix this session holds: framed and delegated prefixes, and each
    /// Framed-IPv6-Address as a /128.
    pub fn ipv6_prefixes(&self) -> Vec<Ipv6Net> {
        let mut all: Vec<Ipv6Net> = self
            .framed_ipv6_prefixes
            .iter()
            .chain(self.delegated_ipv6_prefixes.iter())
            .copied()
            .chain(
                self.framed_ipv6_addresses
                    .iter()
                    .map(|a| Ipv6Net::new(*a, 128).expect("128 is a valid length")),
            )
            .map(|n| n.trunc())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}
