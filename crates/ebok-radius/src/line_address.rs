//! Which addresses a NAS may give a session as the subscriber's line.
//!
//! The panel recognises a subscriber by the address the browser comes from, so an address
//! the live map accepts for a session is a claim that "whoever comes from here is this
//! subscriber". An address no browser can come from (multicast, broadcast, unspecified,
//! link-local), loopback (every visitor of a panel on the same machine), or an IPv6 prefix
//! so short that it covers other networks (`::/0`, `2000::/3`) must never make that claim:
//! such an address is taken out of the event before it reaches the journal, and counted in
//! `ebok_radius_addresses_refused_total{reason}`. The session itself is still recorded.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

use super::event::AccountingEvent;

/// Why an address cannot identify a line (the `reason` label of the counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unspecified,
    Broadcast,
    Multicast,
    Loopback,
    LinkLocal,
    /// Reserved for future use (240.0.0.0/4) or IPv4-mapped IPv6 (::ffff:0:0/96).
    Reserved,
    /// An IPv6 prefix shorter than the configured minimum.
    ShortPrefix,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::Unspecified => "unspecified",
            Refused::Broadcast => "broadcast",
            Refused::Multicast => "multicast",
            Refused::Loopback => "loopback",
            Refused::LinkLocal => "link_local",
            Refused::Reserved => "reserved",
            Refused::ShortPrefix => "short_prefix",
        }
    }
}

/// The policy, from `[sessions] min_ipv6_prefix` and `[sessions] loopback_lines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAddresses {
    /// Shortest IPv6 prefix a session may hold (ISPs delegate /48 to /64 to a line).
    pub min_ipv6_prefix: u8,
    /// Accept loopback addresses as lines (the demo's browser on the same machine).
    pub loopback: bool,
}

impl Default for LineAddresses {
    fn default() -> Self {
        LineAddresses {
            min_ipv6_prefix: 32,
            loopback: false,
        }
    }
}

impl LineAddresses {
    /// Why `ip` cannot be a line's IPv4 address, if it cannot.
    pub(crate) fn check_v4(&self, ip: Ipv4Addr) -> Option<Refused> {
        Some(if ip.is_unspecified() {
            Refused::Unspecified
        } else if ip.is_broadcast() {
            Refused::Broadcast
        } else if ip.is_multicast() {
            Refused::Multicast
        } else if ip.is_loopback() {
            if self.loopback {
                return None;
            }
            Refused::Loopback
        } else if ip.is_link_local() {
            Refused::LinkLocal
        } else if ip.octets()[0] >= 240 {
            Refused::Reserved
        } else {
            return None;
        })
    }

    /// Why `net` cannot be a line's IPv6 prefix (or address, as a /128), if it cannot.
    pub(crate) fn check_v6(&self, net: Ipv6Net) -> Option<Refused> {
        let addr = net.network();
        let first = addr.segments()[0];
        Some(if net.prefix_len() < self.min_ipv6_prefix {
            Refused::ShortPrefix
        } else if addr.is_unspecified() {
            Refused::Unspecified
        } else if addr.is_multicast() {
            Refused::Multicast
        } else if addr.is_loopback() {
            if self.loopback {
                return None;
            }
            Refused::Loopback
        } else if first & 0xffc0 == 0xfe80 {
            Refused::LinkLocal
        } else if addr.to_ipv4_mapped().is_some() {
            Refused::Reserved
        } else {
            return None;
        })
    }

    /// Take every address that cannot identify a line out of `event`; `refused` is told
    /// each one with its reason.
    pub fn filter(&self, event: &mut AccountingEvent, mut refused: impl FnMut(Refused)) {
        if let Some(ip) = event.framed_ip {
            if let Some(r) = self.check_v4(ip) {
                refused(r);
                event.framed_ip = None;
            }
        }
        let mut keep = |net: &Ipv6Net| match self.check_v6(*net) {
            Some(r) => {
                refused(r);
                false
            }
            None => true,
        };
        event.framed_ipv6_prefixes.retain(&mut keep);
        event.delegated_ipv6_prefixes.retain(&mut keep);
        event
            .framed_ipv6_addresses
            .retain(|a: &Ipv6Addr| keep(&Ipv6Net::new(*a, 128).expect("128 is a valid length")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StatusType;

    fn v6(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_that_must_never_identify_a_line() {
        let policy = LineAddresses::default();
        for (ip, reason) in [
            ("0.0.0.0", Refused::Unspecified),
            ("255.255.255.255", Refused::Broadcast),
            ("224.0.0.1", Refused::Multicast),
            ("239.255.255.250", Refused::Multicast),
            ("127.0.0.1", Refused::Loopback),
            ("127.3.4.5", Refused::Loopback),
            ("169.254.1.1", Refused::LinkLocal),
            ("240.0.0.1", Refused::Reserved),
        ] {
            assert_eq!(policy.check_v4(ip.parse().unwrap()), Some(reason), "{ip}");
        }
        for ip in ["100.64.1.2", "10.0.0.7", "192.0.2.1", "223.255.255.254"] {
            assert_eq!(policy.check_v4(ip.parse().unwrap()), None, "{ip}");
        }
        for (net, reason) in [
            ("::/0", Refused::ShortPrefix),
            ("2000::/3", Refused::ShortPrefix),
            ("2001:db8::/31", Refused::ShortPrefix),
            ("::/128", Refused::Unspecified),
            ("ff02::1/128", Refused::Multicast),
            ("ff00::/8", Refused::ShortPrefix),
            ("::1/128", Refused::Loopback),
            ("fe80::1/128", Refused::LinkLocal),
            ("fe80::/64", Refused::LinkLocal),
            ("::ffff:10.0.0.1/128", Refused::Reserved),
        ] {
            assert_eq!(policy.check_v6(v6(net)), Some(reason), "{net}");
        }
        for net in [
            "2001:db8::/32",
            "2001:db8:1::/48",
            "2001:db8:1:2::/64",
            "2a02::1/128",
        ] {
            assert_eq!(policy.check_v6(v6(net)), None, "{net}");
        }
        let strict = LineAddresses {
            min_ipv6_prefix: 48,
            ..policy
        };
        assert_eq!(
            strict.check_v6(v6("2001:db8::/32")),
            Some(Refused::ShortPrefix)
        );
    }

    #[test]
    fn loopback_only_where_allowed() {
        let demo = LineAddresses {
            loopback: true,
            ..LineAddresses::default()
        };
        assert_eq!(demo.check_v4("127.0.0.1".parse().unwrap()), None);
        assert_eq!(demo.check_v6(v6("::1/128")), None);
        // Everything else stays refused.
        assert_eq!(
            demo.check_v4("224.0.0.1".parse().unwrap()),
            Some(Refused::Multicast)
        );
    }

    #[test]
    fn filter_keeps_the_session_and_its_good_addresses() {
        let at = time::macros::datetime!(2026-07-01 10:00 UTC);
        let mut e = AccountingEvent::new(StatusType::Start, "nas1", "s1", at);
        e.framed_ip = Some("224.0.0.1".parse().unwrap());
        e.framed_ipv6_prefixes = vec![v6("::/0"), v6("2001:db8:1:2::/64")];
        e.delegated_ipv6_prefixes = vec![v6("2000::/3"), v6("2001:db8:100::/56")];
        e.framed_ipv6_addresses = vec!["::1".parse().unwrap(), "2001:db8:1:2::7".parse().unwrap()];
        let mut reasons = Vec::new();
        LineAddresses::default().filter(&mut e, |r| reasons.push(r.label()));
        assert_eq!(
            reasons,
            ["multicast", "short_prefix", "short_prefix", "loopback"]
        );
        assert_eq!(e.framed_ip, None);
        assert_eq!(e.framed_ipv6_prefixes, [v6("2001:db8:1:2::/64")]);
        assert_eq!(e.delegated_ipv6_prefixes, [v6("2001:db8:100::/56")]);
        assert_eq!(
            e.framed_ipv6_addresses,
            ["2001:db8:1:2::7".parse::<Ipv6Addr>().unwrap()]
        );
    }
}
