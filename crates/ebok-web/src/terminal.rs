//! Text for an operator's terminal: what NAS devices and billing files send made harmless,
//! and times, octets and counts in a form people read.
//!
//! A User-Name or Calling-Station-Id is whatever a NAS (or a subscriber's router behind it)
//! put there: `ESC[2J` clears the screen, an OSC sequence sets the window title, a CR or LF
//! forges output lines. [`safe`] writes every control character as an escape (`\x1b`,
//! `\r`, `\u{202e}`), so a terminal shows it and never runs it.

use std::borrow::Cow;
use std::fmt::Write as _;

use time::macros::format_description;
use time::OffsetDateTime;

/// `text` with every control character (C0, DEL, C1, and the Unicode bidirectional and
/// line-separator controls that reorder or break a line) written as an escape.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `2026-12-04 14:56:11 CET`: Europe/Warsaw (CET or CEST), or with `utc` the same in UTC.
pub fn time(t: OffsetDateTime, utc: bool) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    if utc {
        let t = t.to_offset(time::UtcOffset::UTC);
        return format!("{} UTC", t.format(fmt).unwrap_or_default());
    }
    let local = ebok_store::tz::to_warsaw(t);
    let zone = if local.offset().whole_hours() == 2 {
        "CEST"
    } else {
        "CET"
    };
    format!("{} {zone}", local.format(fmt).unwrap_or_default())
}

/// Octets as `512 B`, `1.2 kB`, `34.5 MB`, `2.1 GB`, `1.0 TB` (powers of 1000).
pub fn octets(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `1 live session`, `2 live sessions`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An Acct-Terminate-Cause by its RFC name (`User-Request (1)`), or its number when unknown.
pub fn terminate_cause(cause: u32) -> String {
    match ebok_radius::dict::Dictionary::builtin().value_name(None, 49, cause) {
        Some(name) => format!("{name} ({cause})"),
        None => cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(safe("jan.kowalski"), "jan.kowalski");
        assert!(matches!(safe("zażółć"), Cow::Borrowed(_)));
        assert_eq!(safe("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(safe("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(
            safe("x\r\nsession      forged"),
            "x\\r\\nsession      forged"
        );
        assert_eq!(safe("\u{9b}31m"), "\\x9b31m");
        assert_eq!(safe("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(
            safe("a\\x1b"),
            "a\\\\x1b",
            "a backslash cannot fake an escape"
        );
        assert_eq!(safe("\0\x7f"), "\\x00\\x7f");
    }

    #[test]
    fn times_octets_counts_causes() {
        let winter = datetime!(2026-12-04 13:56:11.841601431 UTC);
        assert_eq!(time(winter, false), "2026-12-04 14:56:11 CET");
        assert_eq!(time(winter, true), "2026-12-04 13:56:11 UTC");
        let summer = datetime!(2026-07-01 10:00 UTC);
        assert_eq!(time(summer, false), "2026-07-01 12:00:00 CEST");
        assert_eq!(octets(0), "0 B");
        assert_eq!(octets(999), "999 B");
        assert_eq!(octets(1_234), "1.2 kB");
        assert_eq!(octets(2_500_000_000), "2.5 GB");
        assert_eq!(octets(999_960), "1.0 MB");
        assert_eq!(octets(u64::MAX), "18.4 EB");
        assert_eq!(count(1, "live session", "live sessions"), "1 live session");
        assert_eq!(count(0, "live session", "live sessions"), "0 live sessions");
        assert_eq!(terminate_cause(1), "User-Request (1)");
        assert_eq!(terminate_cause(4242), "4242");
    }
}
