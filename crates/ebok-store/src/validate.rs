//! Polish identifiers, checked on the way in: PESEL (person), NIP (company tax id) and NRB
//! (bank account; IBAN is `PL` + NRB). A value of [`Pesel`], [`Nip`] or [`Nrb`] is valid by
//! construction. A PESEL is never shown back in full: its `Display` and `Debug` are masked.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use time::{Date, Month};

fn digits_of(s: &str) -> Vec<u32> {
    s.bytes().map(|b| u32::from(b - b'0')).collect()
}

// ---------------------------------------------------------------------------------------------
// PESEL
// ---------------------------------------------------------------------------------------------

/// A valid PESEL: 11 digits, correct check digit, an existing birth date.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Pesel(String);

/// Why a text is not a PESEL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeselError {
    #[error("PESEL must have 11 digits")]
    Length,
    #[error("PESEL may contain digits only")]
    NotDigits,
    #[error("PESEL check digit does not match")]
    Checksum,
    #[error("PESEL encodes a date that does not exist")]
    Date,
}

const PESEL_WEIGHTS: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];

fn pesel_check_digit(first_ten: &[u32]) -> u32 {
    let sum: u32 = first_ten
        .iter()
        .zip(PESEL_WEIGHTS)
        .map(|(d, w)| d * w)
        .sum();
    (10 - sum % 10) % 10
}

/// The birth date encoded in the first six digits (month carries the century).
fn pesel_date(d: &[u32]) -> Option<Date> {
    let yy = (d[0] * 10 + d[1]) as i32;
    let mm = d[2] * 10 + d[3];
    let dd = (d[4] * 10 + d[5]) as u8;
    let (century, month) = match mm {
        1..=12 => (1900, mm),
        21..=32 => (2000, mm - 20),
        41..=52 => (2100, mm - 40),
        61..=72 => (2200, mm - 60),
        81..=92 => (1800, mm - 80),
        _ => return None,
    };
    let month = Month::try_from(month as u8).ok()?;
    Date::from_calendar_date(century + yy, month, dd).ok()
}

/// Check a PESEL (surrounding whitespace ignored).
pub fn pesel(input: &str) -> Result<Pesel, PeselError> {
    let s = input.trim();
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PeselError::NotDigits);
    }
    if s.len() != 11 {
        return Err(PeselError::Length);
    }
    let d = digits_of(s);
    if pesel_check_digit(&d[..10]) != d[10] {
        return Err(PeselError::Checksum);
    }
    pesel_date(&d).ok_or(PeselError::Date)?;
    Ok(Pesel(s.to_owned()))
}

impl Pesel {
    /// Build a PESEL for a birth date, a serial number (0–999) and sex — for demo and test
    /// data. `None` when the date is outside 1800–2299 or the serial is too large.
    pub fn from_parts(birth: Date, serial: u16, female: bool) -> Option<Pesel> {
        if serial > 999 {
            return None;
        }
        let year = birth.year();
        let offset = match year {
            1800..=1899 => 80,
            1900..=1999 => 0,
            2000..=2099 => 20,
            2100..=2199 => 40,
            2200..=2299 => 60,
            _ => return None,
        };
        let sex = if female { 0 } else { 1 };
        let ten = format!(
            "{:02}{:02}{:02}{serial:03}{sex}",
            year % 100,
            u8::from(birth.month()) + offset,
            birth.day()
        );
        let check = pesel_check_digit(&digits_of(&ten));
        Some(Pesel(format!("{ten}{check}")))
    }

    /// All eleven digits — for storage and comparison only, never for display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown to people: birth-date digits, the rest hidden (`440514*****`).
    pub(crate) fn masked(&self) -> String {
        format!("{}*****", &self.0[..6])
    }

    pub fn birth_date(&self) -> Date {
        pesel_date(&digits_of(&self.0)).expect("validated on construction")
    }

    /// The tenth digit is even for women, odd for men.
    pub fn is_female(&self) -> bool {
        (self.0.as_bytes()[9] - b'0') % 2 == 0
    }
}

impl fmt::Display for Pesel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Pesel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pesel({})", self.masked())
    }
}

impl FromStr for Pesel {
    type Err = PeselError;
    fn from_str(s: &str) -> Result<Pesel, PeselError> {
        pesel(s)
    }
}

impl TryFrom<String> for Pesel {
    type Error = PeselError;
    fn try_from(s: String) -> Result<Pesel, PeselError> {
        pesel(&s)
    }
}

// ---------------------------------------------------------------------------------------------
// NIP
// ---------------------------------------------------------------------------------------------

/// A valid NIP, normalised to 10 digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Nip(String);

/// Why a text is not a NIP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NipError {
    #[error("NIP must have 10 digits")]
    Length,
    #[error("NIP may contain digits, dashes and spaces only")]
    NotDigits,
    #[error("NIP check digit does not match")]
    Checksum,
}

const NIP_WEIGHTS: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];

/// The check digit for the first nine digits, or `None` when the remainder is 10 (no valid
/// NIP has those nine digits).
fn nip_check_digit(first_nine: &[u32]) -> Option<u32> {
    let sum: u32 = first_nine.iter().zip(NIP_WEIGHTS).map(|(d, w)| d * w).sum();
    Some(sum % 11).filter(|r| *r != 10)
}

/// Check a NIP written as `5260250274`, `526-025-02-74`, `526 025 02 74` or with the EU VAT
/// prefix `PL`.
pub fn nip(input: &str) -> Result<Nip, NipError> {
    let s = input.trim();
    let s = s
        .strip_prefix("PL")
        .or_else(|| s.strip_prefix("pl"))
        .unwrap_or(s);
    let mut digits = String::with_capacity(10);
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | ' ' => {}
            _ => return Err(NipError::NotDigits),
        }
    }
    if digits.len() != 10 {
        return Err(NipError::Length);
    }
    let d = digits_of(&digits);
    if digits == "0000000000" || nip_check_digit(&d[..9]) != Some(d[9]) {
        return Err(NipError::Checksum);
    }
    Ok(Nip(digits))
}

impl Nip {
    /// Complete nine digits with their check digit — for demo and test data. `None` when
    /// the input is not nine digits or no check digit exists (remainder 10).
    pub fn with_check_digit(first_nine: &str) -> Option<Nip> {
        if first_nine.len() != 9 || !first_nine.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let check = nip_check_digit(&digits_of(first_nine))?;
        nip(&format!("{first_nine}{check}")).ok()
    }

    /// Ten digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The customary written form `526-025-02-74`.
    pub fn dashed(&self) -> String {
        let s = &self.0;
        format!("{}-{}-{}-{}", &s[..3], &s[3..6], &s[6..8], &s[8..])
    }
}

impl fmt::Display for Nip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Nip {
    type Err = NipError;
    fn from_str(s: &str) -> Result<Nip, NipError> {
        nip(s)
    }
}

impl TryFrom<String> for Nip {
    type Error = NipError;
    fn try_from(s: String) -> Result<Nip, NipError> {
        nip(&s)
    }
}

// ---------------------------------------------------------------------------------------------
// NRB
// ---------------------------------------------------------------------------------------------

/// A valid Polish bank account number (NRB), 26 digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Nrb(String);

/// Why a text is not an NRB.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NrbError {
    #[error("account number must have 26 digits")]
    Length,
    #[error("account number may contain digits and spaces only")]
    NotDigits,
    #[error("account number check digits do not match")]
    Checksum,
}

/// `number` mod 97 for a long decimal string.
fn mod97(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97)
}

/// Check an NRB: 26 digits (spaces allowed), or the IBAN form `PL` + 26 digits. Valid when
/// BBAN + `2521` (PL) + check digits is 1 mod 97.
pub fn nrb(input: &str) -> Result<Nrb, NrbError> {
    let s = input.trim();
    let s = s
        .strip_prefix("PL")
        .or_else(|| s.strip_prefix("pl"))
        .unwrap_or(s);
    let mut digits = String::with_capacity(26);
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '\u{a0}' => {}
            _ => return Err(NrbError::NotDigits),
        }
    }
    if digits.len() != 26 {
        return Err(NrbError::Length);
    }
    if mod97(&format!("{}2521{}", &digits[2..], &digits[..2])) != 1 {
        return Err(NrbError::Checksum);
    }
    Ok(Nrb(digits))
}

impl Nrb {
    /// Complete a 24-digit BBAN (8-digit bank sort code + 16-digit account) with its check
    /// digits — e.g. to give each subscriber an individual (virtual) account.
    pub fn from_bban(bban: &str) -> Option<Nrb> {
        if bban.len() != 24 || !bban.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let check = 98 - mod97(&format!("{bban}252100"));
        nrb(&format!("{check:02}{bban}")).ok()
    }

    /// 26 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `PL61109010140000071219812874`.
    pub fn iban(&self) -> String {
        format!("PL{}", self.0)
    }

    /// `PL61 1090 1014 0000 0712 1981 2874`.
    pub fn iban_grouped(&self) -> String {
        format!("PL{}", self.grouped())
    }

    /// `61 1090 1014 0000 0712 1981 2874`: check digits, then groups of four.
    pub fn grouped(&self) -> String {
        let mut out = self.0[..2].to_owned();
        for chunk in self.0.as_bytes()[2..].chunks(4) {
            out.push(' ');
            out.push_str(std::str::from_utf8(chunk).expect("ascii digits"));
        }
        out
    }

    /// The eight-digit bank sort code (numer rozliczeniowy).
    pub fn sort_code(&self) -> &str {
        &self.0[2..10]
    }
}

impl fmt::Display for Nrb {
    /// The grouped form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

impl FromStr for Nrb {
    type Err = NrbError;
    fn from_str(s: &str) -> Result<Nrb, NrbError> {
        nrb(s)
    }
}

impl TryFrom<String> for Nrb {
    type Error = NrbError;
    fn try_from(s: String) -> Result<Nrb, NrbError> {
        nrb(&s)
    }
}

/// An e-mail address as the panel and the imports take it: one `@` with something before
/// it, a domain with a dot inside; no spaces, control characters or `<>,;"` (which would
/// let one field carry several addresses or headers).
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

/// A Polish postcode: `NN-NNN`.
pub(crate) fn valid_postcode(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6
        && b[2] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
}

/// A phone number: 9 to 15 digits (Polish numbers have 9; with a country code up to the
/// E.164 maximum), an optional leading `+`, and spaces, dashes, dots or parentheses between.
pub fn valid_phone(phone: &str) -> bool {
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    (9..=15).contains(&digits)
        && body
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'(')
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b' ' | b'-' | b'.' | b'(' | b')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_postcodes_phones() {
        assert!(valid_email("agata@poczta.pl"));
        assert!(!valid_email("agata@poczta"));
        assert!(!valid_email("a b@poczta.pl"));
        assert!(!valid_email("a@b.pl>"));
        assert!(!valid_email("a@b@c.pl"));
        assert!(!valid_email("@b.pl"));
        for ok in ["30-001", "00-950"] {
            assert!(valid_postcode(ok), "{ok}");
        }
        for bad in ["30001", "3-0001", "30-00a", "30-0011", ""] {
            assert!(!valid_postcode(bad), "{bad}");
        }
        for ok in [
            "12 345 67 89",
            "+48 12 345 67 89",
            "601-234-567",
            "(12) 345 67 89",
            "+420601234567",
        ] {
            assert!(valid_phone(ok), "{ok}");
        }
        for bad in [
            "123",
            "12 34a 67 89",
            "++48123456789",
            "601234567 wew. 12",
            "+",
            "1234567890123456",
        ] {
            assert!(!valid_phone(bad), "{bad}");
        }
    }
    use time::macros::date;

    // Extra valid numbers below were computed independently of this code with a few lines
    // of Python applying the published algorithms (PESEL weights 1,3,7,9,…; NIP weights
    // 6,5,7,2,3,4,5,6,7 mod 11; NRB check = 98 − (BBAN‖"252100" mod 97)), then checked again
    // by the code under test.

    #[test]
    fn pesel_valid() {
        // Widely published examples (DOMAIN-PL.md ✔ and the PESEL article's example).
        let p = pesel("44051401359").unwrap();
        assert_eq!(p.birth_date(), date!(1944 - 05 - 14));
        assert!(!p.is_female());
        assert_eq!(
            pesel("02070803628").unwrap().birth_date(),
            date!(1902 - 07 - 08)
        );
        assert!(pesel("02070803628").unwrap().is_female());
        // Century encoding: computed ones.
        let cases = [
            ("00222900009", date!(2000 - 02 - 29)), // leap day in 2000
            ("04322900000", date!(2004 - 12 - 29)),
            ("99923100007", date!(1899 - 12 - 31)), // +80: 1800s
            ("25410100003", date!(2125 - 01 - 01)), // +40: 2100s
            ("99723100001", date!(2299 - 12 - 31)), // +60: 2200s
            ("88010112346", date!(1988 - 01 - 01)),
            ("03211500781", date!(2003 - 01 - 15)),
        ];
        for (s, d) in cases {
            assert_eq!(
                pesel(s).unwrap_or_else(|e| panic!("{s}: {e}")).birth_date(),
                d
            );
        }
        assert_eq!(pesel(" 44051401359\n").unwrap().as_str(), "44051401359");
    }

    #[test]
    fn pesel_invalid() {
        // A common made-up PESEL: its check digit should be 3.
        assert_eq!(pesel("12345678901"), Err(PeselError::Checksum));
        assert!(pesel("12345678903").is_err()); // checksum fine, month 34 → 2014-14: no
        assert_eq!(pesel("12345678903"), Err(PeselError::Date));
        assert_eq!(pesel("44051401358"), Err(PeselError::Checksum)); // last digit changed
        assert_eq!(pesel("44051041359"), Err(PeselError::Checksum)); // digits swapped
        assert_eq!(pesel("4405140135"), Err(PeselError::Length));
        assert_eq!(pesel("440514013590"), Err(PeselError::Length));
        assert_eq!(pesel(""), Err(PeselError::Length));
        assert_eq!(pesel("4405140135a"), Err(PeselError::NotDigits));
        assert_eq!(pesel("440514 01359"), Err(PeselError::NotDigits));
        // Checksum right, date impossible (computed).
        assert_eq!(pesel("01222900006"), Err(PeselError::Date)); // 2001-02-29
        assert_eq!(pesel("00022900003"), Err(PeselError::Date)); // 1900-02-29
        assert_eq!(pesel("96133100003"), Err(PeselError::Date)); // month 13
        assert_eq!(pesel("96013200005"), Err(PeselError::Date)); // 32 January
        assert_eq!(pesel("00000000000"), Err(PeselError::Date));
    }

    #[test]
    fn pesel_is_masked() {
        let p = pesel("44051401359").unwrap();
        assert_eq!(p.masked(), "440514*****");
        assert_eq!(p.to_string(), "440514*****");
        assert_eq!(format!("{p:?}"), "Pesel(440514*****)");
        assert!(!format!("{p} {p:?}").contains("01359"));
        assert_eq!(serde_json::from_str::<Pesel>("\"44051401359\"").unwrap(), p);
        assert!(serde_json::from_str::<Pesel>("\"12345678901\"").is_err());
    }

    #[test]
    fn pesel_from_parts_round_trips() {
        for (d, serial, female) in [
            (date!(1944 - 05 - 14), 13, false),
            (date!(2000 - 02 - 29), 999, true),
            (date!(1850 - 07 - 01), 0, true),
            (date!(2150 - 11 - 30), 500, false),
        ] {
            let p = Pesel::from_parts(d, serial, female).unwrap();
            assert_eq!(pesel(p.as_str()).as_ref(), Ok(&p));
            assert_eq!(p.birth_date(), d);
            assert_eq!(p.is_female(), female);
        }
        assert_eq!(
            Pesel::from_parts(date!(1944 - 05 - 14), 13, false)
                .unwrap()
                .as_str(),
            "44051401311"
        );
        assert!(Pesel::from_parts(date!(1799 - 12 - 31), 1, true).is_none());
        assert!(Pesel::from_parts(date!(1990 - 01 - 01), 1000, true).is_none());
    }

    #[test]
    fn nip_valid_and_normalised() {
        for s in [
            "526-025-02-74",
            "5260250274",
            "PL5260250274",
            "pl 526 025 02 74",
        ] {
            assert_eq!(nip(s).unwrap().as_str(), "5260250274", "{s}");
        }
        assert_eq!(nip("5260250274").unwrap().dashed(), "526-025-02-74");
        // Published NIPs of large listed companies (checked with the algorithm).
        for s in [
            "7740001454",
            "692-000-00-13",
            "525-000-77-38",
            "5260251049",
            "5260250995",
        ] {
            assert!(nip(s).is_ok(), "{s}");
        }
        // Computed: 123456321 → remainder 8.
        assert_eq!(
            Nip::with_check_digit("123456321").unwrap().as_str(),
            "1234563218"
        );
    }

    #[test]
    fn nip_invalid() {
        assert_eq!(nip("5260250275"), Err(NipError::Checksum));
        assert_eq!(nip("1234567890"), Err(NipError::Checksum));
        assert_eq!(nip("7792262412"), Err(NipError::Checksum));
        assert_eq!(nip("0000000000"), Err(NipError::Checksum));
        assert_eq!(nip("526025027"), Err(NipError::Length));
        assert_eq!(nip("52602502741"), Err(NipError::Length));
        assert_eq!(nip("526/025/02/74"), Err(NipError::NotDigits));
        assert_eq!(nip("DE5260250274"), Err(NipError::NotDigits));
        // Remainder 10 is never valid, whatever the tenth digit: 123456789 sums to 241,
        // 241 mod 11 = 10.
        assert_eq!(Nip::with_check_digit("123456789"), None);
        for last in 0..=9 {
            assert_eq!(nip(&format!("123456789{last}")), Err(NipError::Checksum));
        }
    }

    #[test]
    fn nrb_valid_forms() {
        let n = nrb("61109010140000071219812874").unwrap();
        assert_eq!(n.grouped(), "61 1090 1014 0000 0712 1981 2874");
        assert_eq!(n.to_string(), "61 1090 1014 0000 0712 1981 2874");
        assert_eq!(n.iban(), "PL61109010140000071219812874");
        assert_eq!(n.iban_grouped(), "PL61 1090 1014 0000 0712 1981 2874");
        assert_eq!(n.sort_code(), "10901014");
        for s in [
            "61 1090 1014 0000 0712 1981 2874",
            "PL61109010140000071219812874",
            "PL61 1090 1014 0000 0712 1981 2874",
            "61\u{a0}1090\u{a0}1014\u{a0}0000\u{a0}0712\u{a0}1981\u{a0}2874",
        ] {
            assert_eq!(nrb(s).as_ref(), Ok(&n), "{s}");
        }
        // Another published example account, and computed virtual accounts.
        assert!(nrb("27 1140 2004 0000 3002 0135 5387").is_ok());
        for s in [
            "20102055581111123456789012",
            "20124010370000000000000001",
            "64109010140000000000000042",
        ] {
            assert!(nrb(s).is_ok(), "{s}");
        }
        assert_eq!(
            Nrb::from_bban("109010140000000000000042").unwrap().as_str(),
            "64109010140000000000000042"
        );
        assert_eq!(Nrb::from_bban("109010140000071219812874").unwrap(), n);
    }

    #[test]
    fn nrb_invalid() {
        assert_eq!(nrb("61109010140000071219812875"), Err(NrbError::Checksum));
        assert_eq!(nrb("16109010140000071219812874"), Err(NrbError::Checksum));
        assert_eq!(nrb("61109010140000071219821874"), Err(NrbError::Checksum)); // swap
        assert_eq!(nrb("6110901014000007121981287"), Err(NrbError::Length));
        assert_eq!(nrb("611090101400000712198128744"), Err(NrbError::Length));
        assert_eq!(
            nrb("61-1090-1014-0000-0712-1981-2874"),
            Err(NrbError::NotDigits)
        );
        assert_eq!(
            nrb("DE61109010140000071219812874"),
            Err(NrbError::NotDigits)
        );
        assert_eq!(nrb(""), Err(NrbError::Length));
        assert!(Nrb::from_bban("12345").is_none());
    }
}
