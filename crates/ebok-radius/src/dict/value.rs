//! Attribute values: rendering wire values as text by their dictionary type, splitting
//! Vendor-Specific attributes, and the inverse, text to wire value.

use super::*;

/// Text of an attribute value by its dictionary type, or `None` when the length does not fit
/// the type. Strings are shown as UTF-8 (lossy), octets and unrendered types as `0x…` hex,
/// dates as RFC 3339 UTC, prefixes as `address/length`, MAC addresses as `aa:bb:…`.
pub fn render(kind: AttrKind, raw: &[u8]) -> Option<String> {
    let text = match kind {
        AttrKind::String => String::from_utf8_lossy(raw).into_owned(),
        AttrKind::Octets | AttrKind::Other => hex(raw),
        AttrKind::Integer => u32::from_be_bytes(raw.try_into().ok()?).to_string(),
        AttrKind::Integer64 => u64::from_be_bytes(raw.try_into().ok()?).to_string(),
        AttrKind::Short => u16::from_be_bytes(raw.try_into().ok()?).to_string(),
        AttrKind::Byte => u8::from_be_bytes(raw.try_into().ok()?).to_string(),
        AttrKind::Signed => i32::from_be_bytes(raw.try_into().ok()?).to_string(),
        AttrKind::Date => {
            let seconds = u32::from_be_bytes(raw.try_into().ok()?);
            OffsetDateTime::from_unix_timestamp(i64::from(seconds))
                .ok()?
                .format(&Rfc3339)
                .ok()?
        }
        AttrKind::IpAddr => Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).to_string(),
        AttrKind::Ipv6Addr => Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?).to_string(),
        AttrKind::Ipv6Prefix => render_ipv6_prefix(raw)?,
        AttrKind::Ipv4Prefix => render_ipv4_prefix(raw)?,
        AttrKind::IfId => {
            let octets = <[u8; 8]>::try_from(raw).ok()?;
            octets
                .chunks(2)
                .map(|pair| format!("{:02x}{:02x}", pair[0], pair[1]))
                .collect::<Vec<_>>()
                .join(":")
        }
        AttrKind::Ether => {
            let octets = <[u8; 6]>::try_from(raw).ok()?;
            octets
                .iter()
                .map(|octet| format!("{octet:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        }
    };
    Some(text)
}

/// RFC 3162 section 2.3: reserved octet, prefix length (0–128), then the prefix octets —
/// at least enough for the length, at most 16, missing trailing octets being zero.
fn render_ipv6_prefix(raw: &[u8]) -> Option<String> {
    let [_reserved, length, prefix @ ..] = raw else {
        return None;
    };
    let length = *length;
    if length > 128 || prefix.len() > 16 || prefix.len() < usize::from(length).div_ceil(8) {
        return None;
    }
    let mut octets = [0u8; 16];
    octets[..prefix.len()].copy_from_slice(prefix);
    Some(format!("{}/{length}", Ipv6Addr::from(octets)))
}

/// RFC 8044 section 3.11: reserved octet, prefix length (0–32), four prefix octets.
fn render_ipv4_prefix(raw: &[u8]) -> Option<String> {
    let [_reserved, length, a, b, c, d] = raw else {
        return None;
    };
    if *length > 32 {
        return None;
    }
    Some(format!("{}/{length}", Ipv4Addr::new(*a, *b, *c, *d)))
}

fn hex(raw: &[u8]) -> String {
    let mut text = String::with_capacity(2 + raw.len() * 2);
    text.push_str("0x");
    for octet in raw {
        let _ = write!(text, "{octet:02x}");
    }
    text
}

/// Sub-attributes of one Vendor-Specific attribute: `(vendor type, value)` in wire order.
pub(crate) type VendorSubAttributes = Vec<(u32, Vec<u8>)>;

/// Splits the value of one Vendor-Specific attribute (26) into the vendor id and its
/// sub-attributes `(type, value)`, following the vendor's `format=t,l` from `dict` (1,1 for
/// vendors it does not know). Any inconsistency is an error: the caller then keeps the whole
/// attribute raw.
pub(crate) fn split_vendor_specific(
    dict: &Dictionary,
    value: &[u8],
) -> Result<(u32, VendorSubAttributes), DictError> {
    let malformed = DictError::MalformedVsa;
    let [a, b, c, d, rest @ ..] = value else {
        return Err(malformed(format!(
            "{} octets, shorter than the 4-octet vendor id",
            value.len()
        )));
    };
    let vendor_id = u32::from_be_bytes([*a, *b, *c, *d]);
    let mut rest = rest;
    let (type_size, length_size, continuation) =
        dict.vendor(vendor_id).map_or((1, 1, 0), |vendor| {
            (
                usize::from(vendor.type_size),
                usize::from(vendor.length_size),
                usize::from(vendor.continuation),
            )
        });
    let header = type_size + length_size + continuation;
    let mut attributes = Vec::new();
    while !rest.is_empty() {
        if rest.len() < header {
            return Err(malformed(format!(
                "{} octets left, shorter than a {header}-octet sub-attribute header",
                rest.len()
            )));
        }
        let code = be_uint(&rest[..type_size]);
        let total = if length_size == 0 {
            // Without a length field the one sub-attribute runs to the end.
            rest.len()
        } else {
            let length = be_uint(&rest[type_size..type_size + length_size]) as usize;
            if length < header {
                return Err(malformed(format!(
                    "sub-attribute {code} length {length} is shorter than its {header}-octet header"
                )));
            }
            if length > rest.len() {
                return Err(malformed(format!(
                    "sub-attribute {code} length {length} runs past the end ({} octets left)",
                    rest.len()
                )));
            }
            length
        };
        attributes.push((code, rest[header..total].to_vec()));
        rest = &rest[total..];
    }
    Ok((vendor_id, attributes))
}

/// Why an attribute given by name and text cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    #[error("{name}: {value:?} is not a valid {kind} value")]
    BadValue {
        name: String,
        value: String,
        kind: &'static str,
    },
    #[error("{0}: value too long for one attribute")]
    TooLong(String),
    #[error("{0}: encrypted or tagged attributes cannot be sent this way")]
    Unsupported(String),
}

impl AttrKind {
    pub(super) fn label(self) -> &'static str {
        match self {
            AttrKind::String => "string",
            AttrKind::Octets => "octets (0x… hex)",
            AttrKind::Integer => "integer",
            AttrKind::Integer64 => "integer64",
            AttrKind::Short => "short",
            AttrKind::Byte => "byte",
            AttrKind::Signed => "signed",
            AttrKind::Date => "date (unix seconds or RFC 3339)",
            AttrKind::IpAddr => "IPv4 address",
            AttrKind::Ipv6Addr => "IPv6 address",
            AttrKind::Ipv6Prefix => "IPv6 prefix",
            AttrKind::Ipv4Prefix => "IPv4 prefix",
            AttrKind::IfId => "interface id (xxxx:xxxx:xxxx:xxxx)",
            AttrKind::Ether => "MAC address",
            AttrKind::Other => "octets (0x… hex)",
        }
    }
}

/// The inverse of [`render`]: the wire value of `text` for an attribute of `kind`; integer
/// kinds also take the attribute's `VALUE` names through `value_number`.
pub(crate) fn parse_value(
    kind: AttrKind,
    text: &str,
    value_number: impl Fn(&str) -> Option<u32>,
) -> Option<Vec<u8>> {
    let text = text.trim();
    let int = |t: &str| t.parse::<u64>().ok().or(value_number(t).map(u64::from));
    Some(match kind {
        AttrKind::String => text.as_bytes().to_vec(),
        AttrKind::Octets | AttrKind::Other => {
            let digits = text.strip_prefix("0x")?;
            if digits.len() % 2 != 0 {
                return None;
            }
            (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?
        }
        AttrKind::Integer => u32::try_from(int(text)?).ok()?.to_be_bytes().to_vec(),
        AttrKind::Integer64 => int(text)?.to_be_bytes().to_vec(),
        AttrKind::Short => u16::try_from(int(text)?).ok()?.to_be_bytes().to_vec(),
        AttrKind::Byte => vec![u8::try_from(int(text)?).ok()?],
        AttrKind::Signed => text.parse::<i32>().ok()?.to_be_bytes().to_vec(),
        AttrKind::Date => {
            let seconds = match text.parse::<u32>() {
                Ok(s) => s,
                Err(_) => {
                    u32::try_from(OffsetDateTime::parse(text, &Rfc3339).ok()?.unix_timestamp())
                        .ok()?
                }
            };
            seconds.to_be_bytes().to_vec()
        }
        AttrKind::IpAddr => text.parse::<Ipv4Addr>().ok()?.octets().to_vec(),
        AttrKind::Ipv6Addr => text.parse::<Ipv6Addr>().ok()?.octets().to_vec(),
        AttrKind::Ipv6Prefix => {
            let net = text.parse::<ipnet::Ipv6Net>().ok()?.trunc();
            let len = net.prefix_len();
            let mut out = vec![0, len];
            out.extend_from_slice(&net.network().octets()[..usize::from(len).div_ceil(8)]);
            out
        }
        AttrKind::Ipv4Prefix => {
            let net = text.parse::<ipnet::Ipv4Net>().ok()?.trunc();
            let mut out = vec![0, net.prefix_len()];
            out.extend_from_slice(&net.network().octets());
            out
        }
        AttrKind::IfId => {
            let groups: Vec<&str> = text.split(':').collect();
            if groups.len() != 4 {
                return None;
            }
            groups
                .iter()
                .map(|g| u16::from_str_radix(g, 16).ok().map(u16::to_be_bytes))
                .collect::<Option<Vec<[u8; 2]>>>()?
                .concat()
        }
        AttrKind::Ether => {
            let octets = text
                .split([':', '-'])
                .map(|o| u8::from_str_radix(o, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            if octets.len() != 6 {
                return None;
            }
            octets
        }
    })
}
