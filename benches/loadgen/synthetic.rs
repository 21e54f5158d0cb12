//! Synthetic subscribers and the attributes of their Accounting-Requests.

use super::*;

pub(super) const FIRST: [&str; 20] = [
    "jan",
    "anna",
    "piotr",
    "maria",
    "tomasz",
    "ewa",
    "pawel",
    "kasia",
    "marek",
    "agnieszka",
    "krzysztof",
    "magda",
    "michal",
    "joanna",
    "adam",
    "barbara",
    "lukasz",
    "monika",
    "rafal",
    "zofia",
];
pub(super) const LAST: [&str; 20] = [
    "kowalski",
    "nowak",
    "wisniewski",
    "wojcik",
    "kowalczyk",
    "kaminski",
    "lewandowski",
    "zielinski",
    "szymanski",
    "wozniak",
    "dabrowski",
    "kozlowski",
    "jankowski",
    "mazur",
    "kwiatkowski",
    "krawczyk",
    "piotrowski",
    "grabowski",
    "nowakowski",
    "pawlowski",
];

/// Session `i` of a run tagged `tag`: every identifying value is distinct per `i`.
pub(super) struct Subscriber {
    pub(super) session_id: String,
    pub(super) user_name: String,
    pub(super) ipv4: Ipv4Addr,
    /// The /64 on the PPPoE link (Framed-IPv6-Prefix).
    pub(super) wan64: Ipv6Net,
    /// The /56 delegated to the subscriber's router (Delegated-IPv6-Prefix).
    pub(super) pd56: Ipv6Net,
    pub(super) mac: String,
}

impl Subscriber {
    pub(super) fn new(tag: u32, i: u64) -> Self {
        let i32_ = i as u32;
        // MikroTik-style hex ids; 16 characters with the run tag in front.
        let session_id = format!("{tag:08x}{i32_:08x}");
        let user_name = format!(
            "{}.{}{}",
            FIRST[(i % 20) as usize],
            LAST[((i / 20) % 20) as usize],
            i / 400 + 1
        );
        // 10.0.0.0/8 from 10.0.1.0 on: 16 million addresses, never .0/.255 problems here.
        let ipv4 = Ipv4Addr::from(0x0a00_0100u32.wrapping_add(i32_) | 0x0a00_0000);
        // 2001:db8::/32 holds 2^24 /56s; /64 links come from 2001:db8:ff00::/40.
        let n = (i32_ & 0x00ff_ffff) as u128;
        let pd = (0x2001_0db8u128 << 96) | (n << 72);
        let wan = (0x2001_0db8_ff00u128 << 80) | (n << 64);
        let pd56 = Ipv6Net::new(Ipv6Addr::from(pd), 56).expect("valid");
        let wan64 = Ipv6Net::new(Ipv6Addr::from(wan), 64).expect("valid");
        let m = i32_.to_be_bytes();
        let mac = format!(
            "4C:5E:0C:{:02X}:{:02X}:{:02X}",
            m[1] ^ (tag as u8),
            m[2],
            m[3]
        );
        Subscriber {
            session_id,
            user_name,
            ipv4,
            wan64,
            pd56,
            mac,
        }
    }
}

pub(super) fn run_tag() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let x = nanos ^ (u64::from(std::process::id()) << 32);
    (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u32
}

pub(super) fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as u32
}

/// RFC 3162 prefix attribute value: reserved, length, significant octets.
pub(super) fn prefix_value(net: &Ipv6Net) -> Vec<u8> {
    let len = net.prefix_len();
    let mut v = vec![0, len];
    v.extend_from_slice(&net.network().octets()[..usize::from(len).div_ceil(8)]);
    v
}

pub(super) fn u32v(x: u32) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

pub(super) const INTERIM: u32 = 300;
pub(super) const NAS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Attributes of event `step` (0 = Start, 1..=interims = Interim-Update, then Stop) of a
/// session, as a MikroTik PPPoE concentrator sends them.
pub(super) fn event_attributes(
    sub: &Subscriber,
    i: u64,
    step: u32,
    interims: u32,
    base_time: u32,
) -> Vec<(u8, Vec<u8>)> {
    let status = if step == 0 {
        1
    } else if step <= interims {
        3
    } else {
        2
    };
    let session_time = step * INTERIM;
    let bytes_in = u64::from(step) * 7_340_123 + i % 1000;
    let bytes_out = u64::from(step) * 91_234_567 + i % 997;
    let mut a: Vec<(u8, Vec<u8>)> = vec![
        (40, u32v(status)),
        (44, sub.session_id.as_bytes().to_vec()),
        (1, sub.user_name.as_bytes().to_vec()),
        (4, NAS_IP.octets().to_vec()),
        (5, u32v(15_728_640 + (i as u32 & 0xffff))),
        (61, u32v(5)), // Virtual
        (87, b"pppoe-vlan100".to_vec()),
        (6, u32v(2)), // Framed-User
        (7, u32v(1)), // PPP
        (31, sub.mac.as_bytes().to_vec()),
        (30, b"pppoe-service1".to_vec()),
        (8, sub.ipv4.octets().to_vec()),
        (97, prefix_value(&sub.wan64)),
        (123, prefix_value(&sub.pd56)),
        (45, u32v(1)), // RADIUS
        (41, u32v(0)),
        (55, u32v(base_time + session_time)),
    ];
    if step > 0 {
        a.extend([
            (46, u32v(session_time)),
            (42, u32v(bytes_in as u32)),
            (52, u32v((bytes_in >> 32) as u32)),
            (43, u32v(bytes_out as u32)),
            (53, u32v((bytes_out >> 32) as u32)),
            (47, u32v((bytes_in / 900) as u32)),
            (48, u32v((bytes_out / 1200) as u32)),
        ]);
    }
    if status == 2 {
        a.push((49, u32v(1))); // User-Request
    }
    a
}
