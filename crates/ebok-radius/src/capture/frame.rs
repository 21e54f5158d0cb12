//! Frame parsing for passive capture, without I/O: Ethernet II with up to three VLAN tags
//! (802.1Q, 802.1ad QinQ), IPv4 with options and IPv6 with extension headers, down to a UDP
//! datagram or an IP fragment that must be reassembled first. Checksums are not verified:
//! the RADIUS authenticators decide what is accepted, and captured outgoing packets often
//! carry checksums the NIC has yet to fill in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad and the pre-standard QinQ value some switches still send.
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// VLAN tags followed before giving up on a frame.
pub(crate) const MAX_VLAN_TAGS: usize = 3;

const PROTO_UDP: u8 = 17;
const V6_HOP_BY_HOP: u8 = 0;
const V6_ROUTING: u8 = 43;
const V6_FRAGMENT: u8 = 44;
const V6_AUTH: u8 = 51;
const V6_DEST_OPTS: u8 = 60;
const V6_MOBILITY: u8 = 135;
const V6_HIP: u8 = 139;
const V6_SHIM6: u8 = 140;
/// Extension headers followed before giving up on a packet.
const MAX_V6_EXTENSIONS: usize = 8;

/// Why a frame was not usable. `label` is the `ebok_capture_dropped_total` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame shorter than its headers say")]
    Truncated,
    #[error("more than {MAX_VLAN_TAGS} VLAN tags")]
    TooManyVlanTags,
    #[error("malformed IP header")]
    BadIpHeader,
    #[error("malformed UDP header")]
    BadUdpHeader,
    #[error("malformed fragment")]
    BadFragment,
}

impl FrameError {
    pub fn label(&self) -> &'static str {
        match self {
            FrameError::Truncated => "truncated",
            FrameError::TooManyVlanTags => "too_many_vlan_tags",
            FrameError::BadIpHeader => "bad_ip_header",
            FrameError::BadUdpHeader => "bad_udp_header",
            FrameError::BadFragment => "bad_fragment",
        }
    }
}

/// What one frame carries, as far as accounting capture cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole UDP datagram.
    Udp(Udp<'a>),
    /// A piece of a fragmented IP datagram (whose UDP header may be in another piece).
    Fragment(Fragment<'a>),
    /// Anything else: ARP, TCP, ICMP, …
    Other,
}

/// A UDP datagram: addresses from the IP and UDP headers, and the UDP payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Udp<'a> {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub payload: &'a [u8],
}

/// Identifies the fragments of one IP datagram (RFC 791 §3.2, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// IPv4: the protocol; IPv6: the Next Header of the Fragment header.
    pub protocol: u8,
    /// IPv4: the 16-bit Identification; IPv6: the 32-bit one.
    pub id: u32,
}

/// One fragment: where its bytes go in the reassembled payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub key: FragmentKey,
    /// Byte offset in the reassembled payload (after the IP header / Fragment header).
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    pub data: &'a [u8],
}

impl Fragment<'_> {
    /// The UDP destination port when this is the first fragment of a UDP datagram whose UDP
    /// header follows directly (always so for IPv4), so uninteresting datagrams can be
    /// skipped before their other fragments are kept.
    pub(crate) fn first_udp_port(&self) -> Option<u16> {
        (self.offset == 0 && self.key.protocol == PROTO_UDP && self.data.len() >= 4)
            .then(|| be16(self.data, 2))
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Parse an Ethernet II frame (with or without VLAN tags).
pub(crate) fn parse_ethernet(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    if frame.len() < 14 {
        return Err(FrameError::Truncated);
    }
    let mut ethertype = be16(frame, 12);
    let mut at = 14;
    let mut tags = 0;
    while ETHERTYPE_VLAN.contains(&ethertype) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(FrameError::TooManyVlanTags);
        }
        if frame.len() < at + 4 {
            return Err(FrameError::Truncated);
        }
        ethertype = be16(frame, at + 2);
        at += 4;
    }
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(&frame[at..]),
        ETHERTYPE_IPV6 => parse_ipv6(&frame[at..]),
        _ => Ok(Frame::Other),
    }
}

/// Parse an IPv4 packet; bytes past Total Length (Ethernet padding) are ignored.
pub(crate) fn parse_ipv4(packet: &[u8]) -> Result<Frame<'_>, FrameError> {
    if packet.len() < 20 {
        return Err(FrameError::Truncated);
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    if packet[0] >> 4 != 4 || header_len < 20 {
        return Err(FrameError::BadIpHeader);
    }
    let total = usize::from(be16(packet, 2));
    if total < header_len {
        return Err(FrameError::BadIpHeader);
    }
    if packet.len() < total {
        return Err(FrameError::Truncated);
    }
    let flags_offset = be16(packet, 6);
    let more = flags_offset & 0x2000 != 0;
    let offset = usize::from(flags_offset & 0x1fff) * 8;
    let protocol = packet[9];
    let source = IpAddr::V4(Ipv4Addr::new(
        packet[12], packet[13], packet[14], packet[15],
    ));
    let destination = IpAddr::V4(Ipv4Addr::new(
        packet[16], packet[17], packet[18], packet[19],
    ));
    let payload = &packet[header_len..total];
    if protocol != PROTO_UDP {
        return Ok(Frame::Other);
    }
    if more || offset > 0 {
        return fragment(
            FragmentKey {
                source,
                destination,
                protocol,
                id: u32::from(be16(packet, 4)),
            },
            offset,
            more,
            payload,
        );
    }
    parse_udp(source, destination, payload).map(Frame::Udp)
}

/// Parse an IPv6 packet, following extension headers to UDP or a Fragment header.
pub(crate) fn parse_ipv6(packet: &[u8]) -> Result<Frame<'_>, FrameError> {
    if packet.len() < 40 {
        return Err(FrameError::Truncated);
    }
    if packet[0] >> 4 != 6 {
        return Err(FrameError::BadIpHeader);
    }
    let payload_len = usize::from(be16(packet, 4));
    if payload_len == 0 {
        // A jumbogram (RFC 2675): never RADIUS.
        return Ok(Frame::Other);
    }
    if packet.len() < 40 + payload_len {
        return Err(FrameError::Truncated);
    }
    let mut source = [0u8; 16];
    source.copy_from_slice(&packet[8..24]);
    let mut destination = [0u8; 16];
    destination.copy_from_slice(&packet[24..40]);
    ipv6_payload(
        IpAddr::V6(Ipv6Addr::from(source)),
        IpAddr::V6(Ipv6Addr::from(destination)),
        packet[6],
        &packet[40..40 + payload_len],
        true,
    )
}

/// Walk IPv6 extension headers from `next` through `payload` to UDP. A Fragment header is
/// allowed only in the packet as received (`fragment_allowed`), not inside a reassembled
/// payload.
fn ipv6_payload(
    source: IpAddr,
    destination: IpAddr,
    mut next: u8,
    payload: &[u8],
    fragment_allowed: bool,
) -> Result<Frame<'_>, FrameError> {
    let mut at = 0;
    for _ in 0..MAX_V6_EXTENSIONS {
        let rest = &payload[at..];
        match next {
            PROTO_UDP => return parse_udp(source, destination, rest).map(Frame::Udp),
            V6_FRAGMENT => {
                if !fragment_allowed {
                    return Err(FrameError::BadFragment);
                }
                if rest.len() < 8 {
                    return Err(FrameError::Truncated);
                }
                let offset = usize::from(be16(rest, 2) & 0xfff8);
                let more = rest[3] & 1 != 0;
                let key = FragmentKey {
                    source,
                    destination,
                    protocol: rest[0],
                    id: u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
                };
                if offset == 0 && !more {
                    // An atomic fragment (RFC 6946): a whole packet; read on.
                    next = rest[0];
                    at += 8;
                    continue;
                }
                if !(key.protocol == PROTO_UDP || is_v6_extension(key.protocol)) {
                    return Ok(Frame::Other);
                }
                return fragment(key, offset, more, &rest[8..]);
            }
            n if is_v6_extension(n) => {
                if rest.len() < 2 {
                    return Err(FrameError::Truncated);
                }
                let len = if n == V6_AUTH {
                    (usize::from(rest[1]) + 2) * 4
                } else {
                    (usize::from(rest[1]) + 1) * 8
                };
                if rest.len() < len {
                    return Err(FrameError::Truncated);
                }
                next = rest[0];
                at += len;
            }
            _ => return Ok(Frame::Other),
        }
    }
    Ok(Frame::Other)
}

fn is_v6_extension(n: u8) -> bool {
    matches!(
        n,
        V6_HOP_BY_HOP | V6_ROUTING | V6_DEST_OPTS | V6_AUTH | V6_MOBILITY | V6_HIP | V6_SHIM6
    )
}

fn fragment(
    key: FragmentKey,
    offset: usize,
    more: bool,
    data: &[u8],
) -> Result<Frame<'_>, FrameError> {
    // Every fragment but the last carries a multiple of 8 octets (RFC 791, RFC 8200).
    if data.is_empty() || (more && data.len() % 8 != 0) {
        return Err(FrameError::BadFragment);
    }
    Ok(Frame::Fragment(Fragment {
        key,
        offset,
        more,
        data,
    }))
}

/// Parse the UDP header at the start of `bytes`; bytes past its Length are ignored.
pub(crate) fn parse_udp(
    source: IpAddr,
    destination: IpAddr,
    bytes: &[u8],
) -> Result<Udp<'_>, FrameError> {
    if bytes.len() < 8 {
        return Err(FrameError::Truncated);
    }
    let len = usize::from(be16(bytes, 4));
    if len < 8 {
        return Err(FrameError::BadUdpHeader);
    }
    if len > bytes.len() {
        return Err(FrameError::Truncated);
    }
    Ok(Udp {
        source: SocketAddr::new(source, be16(bytes, 0)),
        destination: SocketAddr::new(destination, be16(bytes, 2)),
        payload: &bytes[8..len],
    })
}

/// The UDP datagram in a reassembled payload (what follows the IPv4 header or the IPv6
/// Fragment header).
pub(crate) fn parse_reassembled<'a>(
    key: &FragmentKey,
    payload: &'a [u8],
) -> Result<Frame<'a>, FrameError> {
    match key.source {
        IpAddr::V4(_) => parse_udp(key.source, key.destination, payload).map(Frame::Udp),
        IpAddr::V6(_) => ipv6_payload(key.source, key.destination, key.protocol, payload, false),
    }
}

/// Frame builders for tests and the benchmark: the inverse of the parsers above.
pub mod build {
    use std::net::Ipv6Addr;

    use super::PROTO_UDP;

    /// Destination and source MAC addresses of built frames (locally administered).
    pub(crate) const MAC_HEADER: [u8; 12] = [
        0x02, 0, 0, 0, 0, 0x01, // destination
        0x02, 0, 0, 0, 0, 0x02, // source
    ];

    /// An Ethernet frame: MAC addresses, the given VLAN tags (TPID, VLAN id), EtherType,
    /// payload.
    pub fn ethernet(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = MAC_HEADER.to_vec();
        for (tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An IPv4 packet carrying UDP: header with `options` and a correct checksum, `payload`.
    pub fn ipv4(
        src: [u8; 4],
        dst: [u8; 4],
        id: u16,
        more: bool,
        offset8: u16,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let ihl = 5 + options.len() / 4;
        let total = ihl * 4 + payload.len();
        let flags = offset8 | if more { 0x2000 } else { 0 };
        let mut p = vec![0x40 | ihl as u8, 0];
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[64, PROTO_UDP, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(options);
        let sum = p
            .chunks(2)
            .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// An IPv6 header with Next Header `next`, then `payload` (extension headers included).
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(payload);
        p
    }

    /// An IPv6 Fragment header.
    pub fn v6_fragment_header(next: u8, offset8: u16, more: bool, id: u32) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(&((offset8 << 3) | u16::from(more)).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h
    }

    /// A UDP header (checksum 0: none, as IPv4 allows) and payload.
    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = sport.to_be_bytes().to_vec();
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const NAS: [u8; 4] = [192, 0, 2, 1];
    const SRV: [u8; 4] = [192, 0, 2, 9];

    fn udp_of(frame: &[u8]) -> Udp<'_> {
        match parse_ethernet(frame).unwrap() {
            Frame::Udp(u) => u,
            other => panic!("not a whole UDP datagram: {other:?}"),
        }
    }

    #[test]
    fn plain_ipv4_udp_with_exact_bytes_and_padding() {
        // A 60-octet minimum frame: 14 Ethernet + 20 IP + 8 UDP + 4 payload + 14 padding.
        let frame: Vec<u8> = [
            &MAC_HEADER[..],
            &[0x08, 0x00],
            &[
                0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
            ],
            &NAS,
            &SRV,
            &[0x04, 0xd2, 0x07, 0x15, 0x00, 0x0c, 0x00, 0x00],
            b"RADS",
            &[0u8; 14],
        ]
        .concat();
        assert_eq!(frame.len(), 60);
        let u = udp_of(&frame);
        assert_eq!(u.source, "192.0.2.1:1234".parse().unwrap());
        assert_eq!(u.destination, "192.0.2.9:1813".parse().unwrap());
        assert_eq!(u.payload, b"RADS");
    }

    #[test]
    fn vlan_tags_802_1q_and_qinq_are_followed() {
        let ip = ipv4(NAS, SRV, 1, false, 0, &[], &udp(4000, 1813, b"x"));
        for tags in [
            vec![(0x8100, 10)],
            vec![(0x88a8, 100), (0x8100, 10)],
            vec![(0x9100, 7), (0x8100, 10)],
            vec![(0x88a8, 1), (0x88a8, 2), (0x8100, 3)],
        ] {
            let f = ethernet(&tags, ETHERTYPE_IPV4, &ip);
            assert_eq!(udp_of(&f).payload, b"x", "tags {tags:?}");
        }
        let four = [(0x88a8, 1), (0x8100, 2), (0x8100, 3), (0x8100, 4)];
        assert_eq!(
            parse_ethernet(&ethernet(&four, ETHERTYPE_IPV4, &ip)),
            Err(FrameError::TooManyVlanTags)
        );
        // A tag cut off in the middle.
        let cut = ethernet(&[(0x8100, 10)], ETHERTYPE_IPV4, &ip);
        assert_eq!(parse_ethernet(&cut[..16]), Err(FrameError::Truncated));
    }

    #[test]
    fn ipv4_options_are_skipped() {
        // Record Route option (7), 8 octets, padded by End of Options to 12.
        let options = [7, 7, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let f = ethernet(
            &[],
            ETHERTYPE_IPV4,
            &ipv4(NAS, SRV, 1, false, 0, &options, &udp(4000, 1813, b"opt")),
        );
        assert_eq!(f[14], 0x48);
        assert_eq!(udp_of(&f).payload, b"opt");
    }

    #[test]
    fn ipv4_fragments_carry_key_offset_and_more() {
        let data = [0xaa; 16];
        let f = ethernet(
            &[],
            ETHERTYPE_IPV4,
            &ipv4(NAS, SRV, 0xbeef, true, 3, &[], &data),
        );
        let Frame::Fragment(frag) = parse_ethernet(&f).unwrap() else {
            panic!("a fragment");
        };
        assert_eq!(frag.key.id, 0xbeef);
        assert_eq!(frag.key.protocol, PROTO_UDP);
        assert_eq!(frag.key.source, IpAddr::from(NAS));
        assert_eq!(frag.offset, 24);
        assert!(frag.more);
        assert_eq!(frag.data, &data);
        assert_eq!(frag.first_udp_port(), None);
        // The first fragment shows the UDP port.
        let first = udp(4000, 1813, &[0; 24]);
        let f = ethernet(
            &[],
            ETHERTYPE_IPV4,
            &ipv4(NAS, SRV, 1, true, 0, &[], &first[..16]),
        );
        let Frame::Fragment(frag) = parse_ethernet(&f).unwrap() else {
            panic!("a fragment");
        };
        assert_eq!(frag.first_udp_port(), Some(1813));
        // A non-final fragment must hold a multiple of 8 octets.
        let f = ethernet(
            &[],
            ETHERTYPE_IPV4,
            &ipv4(NAS, SRV, 1, true, 0, &[], &[0; 12]),
        );
        assert_eq!(parse_ethernet(&f), Err(FrameError::BadFragment));
    }

    #[test]
    fn malformed_ipv4_and_udp_are_errors_and_other_protocols_ignored() {
        let good = ipv4(NAS, SRV, 1, false, 0, &[], &udp(4000, 1813, b"abc"));
        let mut bad_ihl = good.clone();
        bad_ihl[0] = 0x44;
        assert_eq!(parse_ipv4(&bad_ihl), Err(FrameError::BadIpHeader));
        let mut long_total = good.clone();
        long_total[3] += 1;
        assert_eq!(parse_ipv4(&long_total), Err(FrameError::Truncated));
        let mut udp_len = good.clone();
        udp_len[25] = 7;
        assert_eq!(parse_ipv4(&udp_len), Err(FrameError::BadUdpHeader));
        let mut tcp = good.clone();
        tcp[9] = 6;
        assert_eq!(parse_ipv4(&tcp), Ok(Frame::Other));
        let arp = ethernet(&[], 0x0806, &[0; 28]);
        assert_eq!(parse_ethernet(&arp), Ok(Frame::Other));
        assert_eq!(parse_ethernet(&[0; 13]), Err(FrameError::Truncated));
    }

    const V6_NAS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const V6_SRV: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);

    #[test]
    fn ipv6_extension_headers_are_followed() {
        // Hop-by-Hop (8 octets) → Destination Options (16 octets) → UDP.
        let mut payload = vec![V6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        payload.extend_from_slice(&[PROTO_UDP, 1, 1, 12]);
        payload.extend_from_slice(&[0; 12]);
        payload.extend_from_slice(&udp(4000, 1813, b"v6"));
        let f = ethernet(
            &[(0x8100, 10)],
            ETHERTYPE_IPV6,
            &ipv6(V6_NAS, V6_SRV, V6_HOP_BY_HOP, &payload),
        );
        let u = udp_of(&f);
        assert_eq!(u.source, SocketAddr::new(V6_NAS.into(), 4000));
        assert_eq!(u.payload, b"v6");
        // An extension header running past the packet.
        let f = ethernet(
            &[],
            ETHERTYPE_IPV6,
            &ipv6(V6_NAS, V6_SRV, V6_HOP_BY_HOP, &[PROTO_UDP, 3, 0, 0]),
        );
        assert_eq!(parse_ethernet(&f), Err(FrameError::Truncated));
        // ICMPv6 is not ours.
        let f = ethernet(&[], ETHERTYPE_IPV6, &ipv6(V6_NAS, V6_SRV, 58, &[0; 8]));
        assert_eq!(parse_ethernet(&f), Ok(Frame::Other));
    }

    #[test]
    fn ipv6_fragment_header_and_atomic_fragment() {
        let mut payload = v6_fragment_header(PROTO_UDP, 2, true, 0x0102_0304);
        payload.extend_from_slice(&[0x55; 8]);
        let f = ethernet(
            &[],
            ETHERTYPE_IPV6,
            &ipv6(V6_NAS, V6_SRV, V6_FRAGMENT, &payload),
        );
        let Frame::Fragment(frag) = parse_ethernet(&f).unwrap() else {
            panic!("a fragment");
        };
        assert_eq!(frag.key.id, 0x0102_0304);
        assert_eq!(frag.key.protocol, PROTO_UDP);
        assert_eq!(frag.offset, 16);
        assert!(frag.more);
        assert_eq!(frag.data, &[0x55; 8]);
        // Offset 0 without More: the whole datagram is here.
        let mut atomic = v6_fragment_header(PROTO_UDP, 0, false, 9);
        atomic.extend_from_slice(&udp(4000, 1813, b"whole"));
        let f = ethernet(
            &[],
            ETHERTYPE_IPV6,
            &ipv6(V6_NAS, V6_SRV, V6_FRAGMENT, &atomic),
        );
        assert_eq!(udp_of(&f).payload, b"whole");
        // A reassembled payload with a Destination Options header before UDP.
        let key = FragmentKey {
            source: V6_NAS.into(),
            destination: V6_SRV.into(),
            protocol: V6_DEST_OPTS,
            id: 1,
        };
        let mut reassembled = vec![PROTO_UDP, 0, 1, 4, 0, 0, 0, 0];
        reassembled.extend_from_slice(&udp(4000, 1813, b"after"));
        let Frame::Udp(u) = parse_reassembled(&key, &reassembled).unwrap() else {
            panic!("udp");
        };
        assert_eq!(u.payload, b"after");
        // A Fragment header inside a reassembled payload is refused.
        let nested = FragmentKey {
            protocol: V6_FRAGMENT,
            ..key
        };
        assert_eq!(
            parse_reassembled(&nested, &atomic),
            Err(FrameError::BadFragment)
        );
    }
}
