//! Time-based one-time passwords (RFC 6238) for the optional second factor, with the
//! enrolment URI (shown as a QR code by [`crate::web::qr`]) and recovery codes.
//!
//! Parameters are the ones every authenticator app understands: HMAC-SHA-1, 30-second
//! steps, 6 digits, a 160-bit secret. [`verify`] accepts the previous, current and next step
//! (clock drift of the phone) and refuses any step at or before the last one used, so a code
//! seen over someone's shoulder cannot be used again.

use std::fmt;
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Seconds per time step (RFC 6238 `X`).
pub(crate) const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret (RFC 4226 recommends 160 bits).
const SECRET_LEN: usize = 20;
/// The shortest secret [`TotpSecret::from_base32`] accepts (RFC 4226: at least 128 bits).
const MIN_SECRET_LEN: usize = 16;
/// RFC 4648 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Recovery-code letters: lower case without `i l o 0 1`, which people misread.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A TOTP shared secret. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// 20 random bytes from the operating system.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// Read a secret as stored or typed: RFC 4648 base32, case, spaces and `=` padding
    /// ignored. `None` when not base32 or shorter than 128 bits.
    pub(crate) fn from_base32(s: &str) -> Option<Self> {
        let bytes = base32_decode(s)?;
        (bytes.len() >= MIN_SECRET_LEN).then_some(TotpSecret(bytes))
    }

    /// RFC 4648 base32 without padding, as authenticator apps expect.
    pub(crate) fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    let mut padding = false;
    for c in s.chars() {
        if c.is_whitespace() {
            continue;
        }
        if c == '=' {
            padding = true;
            continue;
        }
        if padding {
            return None;
        }
        let c = c.to_ascii_uppercase();
        let v = BASE32.iter().position(|&a| char::from(a) == c)? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Leftover bits are only the zero fill of the last character.
    (bits < 5 && buffer == 0).then_some(out)
}

/// RFC 4226 HOTP with HMAC-SHA-1 and `digits` digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin =
        u32::from_be_bytes([h[offset], h[offset + 1], h[offset + 2], h[offset + 3]]) & 0x7fff_ffff;
    bin % 10u32.pow(digits)
}

/// The 6-digit code of the step holding `unix_time` (HMAC-SHA-1, 30-second steps).
pub fn code_at(secret: &[u8], unix_time: u64) -> u32 {
    hotp(secret, unix_time / STEP_SECONDS, DIGITS)
}

/// Accepts the code of the current step or ±1 step; refuses a step ≤ last_used_step (replay). Returns the matched step to store.
///
/// Spaces inside the code are ignored (`123 456`); anything but 6 digits is refused. Every
/// candidate step is computed and compared in constant time.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_time: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_time / STEP_SECONDS;
    let mut matched = None;
    for step in [now.checked_sub(1), Some(now), now.checked_add(1)]
        .into_iter()
        .flatten()
    {
        let expected = format!(
            "{:0width$}",
            hotp(secret, step, DIGITS),
            width = DIGITS as usize
        );
        let equal: bool = expected.as_bytes().ct_eq(typed.as_bytes()).into();
        let fresh = last_used_step.is_none_or(|last| step > last);
        if equal && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// Append `s` percent-encoded: everything but RFC 3986 unreserved characters becomes `%XX`.
fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The `otpauth://totp/…` URI for enrolment (Key Uri Format): label `issuer:account` and the
/// `issuer` parameter percent-encoded, secret in base32, SHA1/6 digits/30 s spelled out.
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    let mut uri = String::from("otpauth://totp/");
    percent_encode(&mut uri, issuer);
    uri.push(':');
    percent_encode(&mut uri, account);
    uri.push_str("?secret=");
    uri.push_str(&secret.to_base32());
    uri.push_str("&issuer=");
    percent_encode(&mut uri, issuer);
    let _ = write!(uri, "&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}");
    uri
}

/// `n` one-time recovery codes like `k7mq-x3fh`: 8 characters from a 31-letter alphabet
/// without look-alikes (≈ 39.6 bits each; recovery attempts are rate-limited). Store only
/// [`hash_recovery_code`] of each.
pub(crate) fn recovery_codes(n: usize) -> Vec<String> {
    let mut rng = OsRng;
    (0..n)
        .map(|_| {
            let mut code = String::with_capacity(9);
            for i in 0..8 {
                if i == 4 {
                    code.push('-');
                }
                let k = rng.gen_range(0..RECOVERY_ALPHABET.len());
                code.push(char::from(RECOVERY_ALPHABET[k]));
            }
            code
        })
        .collect()
}

/// The stored form of a recovery code: lower case without spaces and dashes, then SHA-256
/// as lower-case hex, so `K7MQ X3FH` and `k7mq-x3fh` match.
pub(crate) fn hash_recovery_code(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    let digest = Sha256::digest(normal.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 Appendix B, SHA-1 column (8 digits).
        let vectors: [(u64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (t, expected) in vectors {
            assert_eq!(hotp(RFC_SECRET, t / STEP_SECONDS, 8), expected, "T={t}");
            // The 6-digit code is the last six digits of the same truncation.
            assert_eq!(code_at(RFC_SECRET, t), expected % 1_000_000, "T={t}");
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        // RFC 4226 Appendix D.
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), code);
        }
    }

    #[test]
    fn base32_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        // Padded, lower case and spaced forms decode too.
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb oi").unwrap(), b"foobar");
        assert!(base32_decode("MZXW1").is_none(), "1 is not base32");
        assert!(base32_decode("MY=A").is_none(), "data after padding");
        assert!(base32_decode("MZ").is_none(), "non-zero fill bits");
    }

    #[test]
    fn secret_round_trip_and_debug() {
        let s = TotpSecret::generate();
        assert_eq!(s.as_bytes().len(), 20);
        let text = s.to_base32();
        assert_eq!(text.len(), 32);
        assert!(!text.contains('='));
        assert_eq!(TotpSecret::from_base32(&text).unwrap(), s);
        assert_eq!(
            TotpSecret::from_base32(&text.to_lowercase()).unwrap(),
            s,
            "case ignored"
        );
        assert!(!format!("{s:?}").contains(&text));
        assert_ne!(TotpSecret::generate(), s);
        assert!(TotpSecret::from_base32("MZXW6YTB").is_none(), "too short");
        assert!(TotpSecret::from_base32("not base32 at all!").is_none());
    }

    fn code_text(secret: &[u8], t: u64) -> String {
        format!("{:06}", code_at(secret, t))
    }

    #[test]
    fn window_of_one_step() {
        let t = 1_700_000_000u64;
        let step = t / 30;
        assert_eq!(
            verify(RFC_SECRET, &code_text(RFC_SECRET, t), t, None),
            Some(step)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_text(RFC_SECRET, t - 30), t, None),
            Some(step - 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_text(RFC_SECRET, t + 30), t, None),
            Some(step + 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_text(RFC_SECRET, t - 60), t, None),
            None
        );
        assert_eq!(
            verify(RFC_SECRET, &code_text(RFC_SECRET, t + 60), t, None),
            None
        );
        assert_eq!(
            verify(b"another secret 12345", &code_text(RFC_SECRET, t), t, None),
            None
        );
    }

    #[test]
    fn replay_refused() {
        let t = 1_700_000_000u64;
        let code = code_text(RFC_SECRET, t);
        let used = verify(RFC_SECRET, &code, t, None).unwrap();
        assert_eq!(verify(RFC_SECRET, &code, t, Some(used)), None);
        assert_eq!(verify(RFC_SECRET, &code, t + 20, Some(used)), None);
        // The previous step's code after the current one was used: also refused.
        let earlier = code_text(RFC_SECRET, t - 30);
        assert_eq!(verify(RFC_SECRET, &earlier, t, Some(used)), None);
        // The next step is still fine.
        let next = code_text(RFC_SECRET, t + 30);
        assert_eq!(
            verify(RFC_SECRET, &next, t + 30, Some(used)),
            Some(used + 1)
        );
    }

    #[test]
    fn code_format() {
        let t = 1_234_567_890u64; // code 005924: leading zeros matter
        assert_eq!(code_text(RFC_SECRET, t), "005924");
        let step = Some(t / 30);
        assert_eq!(verify(RFC_SECRET, "005924", t, None), step);
        assert_eq!(verify(RFC_SECRET, "005 924", t, None), step);
        assert_eq!(verify(RFC_SECRET, " 00 59 24 ", t, None), step);
        assert_eq!(verify(RFC_SECRET, "5924", t, None), None);
        assert_eq!(verify(RFC_SECRET, "0005924", t, None), None);
        assert_eq!(verify(RFC_SECRET, "00592a", t, None), None);
        assert_eq!(verify(RFC_SECRET, "", t, None), None);
        assert_eq!(verify(RFC_SECRET, "-05924", t, None), None);
    }

    #[test]
    fn otpauth_uri_is_encoded() {
        let secret = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let uri = otpauth_uri("Net Łódź: ISP", "jan.kowalski@example.pl", &secret);
        assert_eq!(
            uri,
            "otpauth://totp/Net%20%C5%81%C3%B3d%C5%BA%3A%20ISP:jan.kowalski%40example.pl\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Net%20%C5%81%C3%B3d%C5%BA%3A%20ISP\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_shape_and_hash() {
        let codes = recovery_codes(10);
        assert_eq!(codes.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 9);
            assert_eq!(c.as_bytes()[4], b'-');
            assert!(c
                .bytes()
                .filter(|&b| b != b'-')
                .all(|b| RECOVERY_ALPHABET.contains(&b)));
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);

        let h = hash_recovery_code("k7mq-x3fh");
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(hash_recovery_code("K7MQ X3FH"), h);
        assert_eq!(hash_recovery_code(" k7mqx3fh "), h);
        assert_ne!(hash_recovery_code("k7mq-x3fj"), h);
        // SHA-256("abc")
        assert_eq!(
            hash_recovery_code("a-b c"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
