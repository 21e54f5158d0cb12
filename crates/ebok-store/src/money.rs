//! Money in PLN as exact grosze (never floats), quantities in thousandths, and the VAT rates
//! and line arithmetic of Polish invoices (net → VAT → gross, rounding half away from zero
//! on grosze).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of Polish złoty, held exactly as grosze (1 zł = 100 gr).
///
/// Parses `50`, `50,00`, `50.00`, `1 234,56`, `1234.5`, `-12,30` (or `−12,30`, as it is
/// displayed) and an optional trailing `zł`/`PLN`; displays as `1 234,56 zł` and
/// `−12,30 zł` (U+00A0 between thousands, comma for decimals, U+2212 minus sign; `{:#}`
/// leaves out the currency). Serde and CSV use a decimal string with a dot and a hyphen:
/// `"-1234.56"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a text is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty amount")]
    Empty,
    #[error("too many decimal places")]
    TooManyDecimals,
    #[error("amount out of range")]
    Overflow,
    #[error("not an amount: {0:?}")]
    Invalid(String),
}

const NBSP: char = '\u{a0}';
/// The typographic minus sign of displayed amounts; a hyphen is what machines write.
const MINUS: char = '\u{2212}';

fn is_group_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}')
}

/// Digits of an integer part, optionally grouped by spaces in threes (`1 234 567`).
fn integer_digits(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let groups: Vec<&str> = s.split(is_group_space).collect();
    let all_digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    if !groups.iter().all(|g| all_digits(g)) {
        return None;
    }
    if groups.len() > 1 && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)) {
        return None;
    }
    Some(groups.concat())
}

/// Whole units and a fraction of at most `max_decimals` digits, scaled by 10^max_decimals.
/// Shared by [`Money`] (2 decimals) and [`Quantity`] (3 decimals).
fn parse_scaled(input: &str, max_decimals: u32) -> Result<i64, MoneyError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    let invalid = || MoneyError::Invalid(input.to_owned());
    let (negative, s) = if let Some(rest) = s.strip_prefix(['-', MINUS]) {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    };
    let mut seps = s.match_indices([',', '.']);
    let (int_part, frac_part) = match (seps.next(), seps.next()) {
        (None, _) => (s, ""),
        (Some((i, _)), None) => {
            let frac = &s[i + 1..];
            if frac.is_empty() {
                return Err(invalid());
            }
            (&s[..i], frac)
        }
        (Some(_), Some(_)) => return Err(invalid()),
    };
    let digits = integer_digits(int_part).ok_or_else(invalid)?;
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if frac_part.len() > max_decimals as usize {
        return Err(MoneyError::TooManyDecimals);
    }
    let scale = 10i64.pow(max_decimals);
    let whole: i64 = digits.parse().map_err(|_| MoneyError::Overflow)?;
    let mut frac: i64 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().map_err(|_| invalid())?
    };
    frac *= 10i64.pow(max_decimals - frac_part.len() as u32);
    let value = whole
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac))
        .ok_or(MoneyError::Overflow)?;
    Ok(if negative { -value } else { value })
}

/// The sign a displayed number starts with: a minus sign or nothing.
fn sign(n: i64) -> &'static str {
    if n < 0 {
        "\u{2212}"
    } else {
        ""
    }
}

/// `1234567` → `1 234 567` with `sep` between groups of three.
fn group_thousands(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_grosze(grosze: i64) -> Money {
        Money(grosze)
    }

    /// Whole złoty, e.g. `Money::from_zloty(50)` = 50,00 zł.
    pub const fn from_zloty(zloty: i64) -> Money {
        Money(zloty * 100)
    }

    pub const fn grosze(self) -> i64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn abs(self) -> Money {
        Money(self.0.abs())
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// Machine form with a dot and two decimals: `-1234.50`. Used by serde and CSV export.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Money, MoneyError> {
        let t = s.trim();
        let t = ["zł", "ZŁ", "Zł", "PLN", "pln"]
            .iter()
            .find_map(|c| t.strip_suffix(c))
            .unwrap_or(t);
        parse_scaled(t, 2).map(Money).map_err(|e| match e {
            MoneyError::Invalid(_) => MoneyError::Invalid(s.to_owned()),
            other => other,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        let whole = group_thousands(&(abs / 100).to_string(), NBSP);
        write!(f, "{}{whole},{:02}", sign(self.0), abs % 100)?;
        if !f.alternate() {
            write!(f, "{NBSP}zł")?;
        }
        Ok(())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        // Only strings: a JSON number would already have passed through a float.
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0 - o.0)
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 += o.0;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, o: Money) {
        self.0 -= o.0;
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

/// `n / d` rounded half away from zero (`d > 0`).
fn div_round(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d {
        q + n.signum()
    } else {
        q
    }
}

/// A quantity on an invoice line, exact to thousandths (`1`, `1,5`, `0.001`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i64);

impl Quantity {
    pub const ONE: Quantity = Quantity(1000);

    pub const fn from_milli(milli: i64) -> Quantity {
        Quantity(milli)
    }

    pub const fn milli(self) -> i64 {
        self.0
    }
}

impl FromStr for Quantity {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Quantity, MoneyError> {
        parse_scaled(s, 3).map(Quantity)
    }
}

impl fmt::Display for Quantity {
    /// Polish form without trailing zeros: `1`, `1,5`, `0,001`, `−2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        write!(f, "{}{}", sign(self.0), abs / 1000)?;
        let frac = abs % 1000;
        if frac != 0 {
            let digits = format!("{frac:03}");
            write!(f, ",{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        s.serialize_str(&format!("{sign}{}.{:03}", abs / 1000, abs % 1000))
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A Polish VAT rate. `Zw` (zwolniony, exempt) and `Np` (nie podlega, outside the scope)
/// carry no tax, like 0%, but must be shown as such on the invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VatRate {
    R23,
    R8,
    R5,
    R0,
    Zw,
    Np,
}

/// An unknown VAT rate text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VAT rate {0:?} (expected 23, 8, 5, 0, zw or np)")]
pub struct VatRateError(pub String);

impl VatRate {
    pub const ALL: [VatRate; 6] = [
        VatRate::R23,
        VatRate::R8,
        VatRate::R5,
        VatRate::R0,
        VatRate::Zw,
        VatRate::Np,
    ];

    /// The tax percentage (0 for `zw` and `np`).
    pub const fn percent(self) -> i64 {
        match self {
            VatRate::R23 => 23,
            VatRate::R8 => 8,
            VatRate::R5 => 5,
            VatRate::R0 | VatRate::Zw | VatRate::Np => 0,
        }
    }

    /// Stored and serialised form: `23`, `8`, `5`, `0`, `zw`, `np`.
    pub const fn as_str(self) -> &'static str {
        match self {
            VatRate::R23 => "23",
            VatRate::R8 => "8",
            VatRate::R5 => "5",
            VatRate::R0 => "0",
            VatRate::Zw => "zw",
            VatRate::Np => "np",
        }
    }

    /// As printed on an invoice: `23%`, `0%`, `zw`, `np`.
    pub fn label(self) -> String {
        match self {
            VatRate::Zw | VatRate::Np => self.as_str().to_owned(),
            _ => format!("{}%", self.percent()),
        }
    }

    /// VAT on a net amount, rounded to grosze half away from zero.
    pub(crate) fn vat_of_net(self, net: Money) -> Money {
        Money(div_round(i128::from(net.0) * i128::from(self.percent()), 100) as i64)
    }

    /// Split a gross amount into (net, VAT): VAT = gross × p / (100 + p), rounded to grosze
    /// half away from zero; net = gross − VAT.
    pub fn split_gross(self, gross: Money) -> (Money, Money) {
        let p = i128::from(self.percent());
        let vat = Money(div_round(i128::from(gross.0) * p, 100 + p) as i64);
        (gross - vat, vat)
    }
}

impl fmt::Display for VatRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl FromStr for VatRate {
    type Err = VatRateError;
    /// Accepts `23`, `23%`, `zw`, `ZW`, `np`, `np.`.
    fn from_str(s: &str) -> Result<VatRate, VatRateError> {
        let t = s.trim().trim_end_matches('%').trim_end_matches('.').trim();
        match t.to_ascii_lowercase().as_str() {
            "23" => Ok(VatRate::R23),
            "8" => Ok(VatRate::R8),
            "5" => Ok(VatRate::R5),
            "0" => Ok(VatRate::R0),
            "zw" => Ok(VatRate::Zw),
            "np" => Ok(VatRate::Np),
            _ => Err(VatRateError(s.to_owned())),
        }
    }
}

impl Serialize for VatRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VatRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<VatRate, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Net, VAT and gross of one invoice line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineAmounts {
    pub net: Money,
    pub vat: Money,
    pub gross: Money,
}

impl LineAmounts {
    /// Net-based line: net = quantity × unit net price (rounded to grosze), VAT from net,
    /// gross = net + VAT.
    pub fn from_net(quantity: Quantity, unit_net: Money, rate: VatRate) -> LineAmounts {
        let net = Money(div_round(i128::from(quantity.0) * i128::from(unit_net.0), 1000) as i64);
        let vat = rate.vat_of_net(net);
        LineAmounts {
            net,
            vat,
            gross: net + vat,
        }
    }

    /// Gross-based line (common for consumers): gross = quantity × unit gross price, VAT
    /// carved out of the gross, net = gross − VAT.
    pub fn from_gross(quantity: Quantity, unit_gross: Money, rate: VatRate) -> LineAmounts {
        let gross =
            Money(div_round(i128::from(quantity.0) * i128::from(unit_gross.0), 1000) as i64);
        let (net, vat) = rate.split_gross(gross);
        LineAmounts { net, vat, gross }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_polish_and_machine_forms() {
        assert_eq!(m("50,00").grosze(), 5000);
        assert_eq!(m("50.00").grosze(), 5000);
        assert_eq!(m("50").grosze(), 5000);
        assert_eq!(m("1 234,56").grosze(), 123456);
        assert_eq!(m("1\u{a0}234,56").grosze(), 123456);
        assert_eq!(m("1\u{202f}234\u{202f}567,8").grosze(), 123456780);
        assert_eq!(m("1234.5").grosze(), 123450);
        assert_eq!(m("-12,30").grosze(), -1230);
        assert_eq!(m("\u{2212}12,30\u{a0}zł").grosze(), -1230);
        assert_eq!(m("+0,01").grosze(), 1);
        assert_eq!(m("  7,5  ").grosze(), 750);
        assert_eq!(m("0,05").grosze(), 5);
        assert_eq!(m("50,00 zł").grosze(), 5000);
        assert_eq!(m("50,00zł").grosze(), 5000);
        assert_eq!(m("50.00 PLN").grosze(), 5000);
        assert_eq!(m("-0,00").grosze(), 0);
    }

    #[test]
    fn rejects_junk_and_extra_decimals() {
        assert_eq!("1,234".parse::<Money>(), Err(MoneyError::TooManyDecimals));
        assert_eq!("0.001".parse::<Money>(), Err(MoneyError::TooManyDecimals));
        assert_eq!("".parse::<Money>(), Err(MoneyError::Empty));
        assert_eq!("   ".parse::<Money>(), Err(MoneyError::Empty));
        for bad in [
            "abc",
            "12a",
            "1.234,56",
            "1,234.56",
            "12 34",
            "1234 567",
            ",5",
            "5,",
            "5.",
            "--5",
            "- 5",
            "1e3",
            "0x10",
            "NaN",
            "zł",
            "5 zł zł",
            "١٢",
        ] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            "99999999999999999999".parse::<Money>(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            "92233720368547758,08".parse::<Money>(),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn displays_as_polish_zloty() {
        assert_eq!(
            Money::from_grosze(123456).to_string(),
            "1\u{a0}234,56\u{a0}zł"
        );
        assert_eq!(Money::from_zloty(50).to_string(), "50,00\u{a0}zł");
        assert_eq!(Money::from_grosze(5).to_string(), "0,05\u{a0}zł");
        // A minus sign (U+2212), not a hyphen.
        assert_eq!(
            Money::from_grosze(-1230).to_string(),
            "\u{2212}12,30\u{a0}zł"
        );
        assert_eq!(Money::from_grosze(-5).to_string(), "\u{2212}0,05\u{a0}zł");
        assert_eq!(
            format!("{:#}", Money::from_grosze(-123456)),
            "\u{2212}1\u{a0}234,56"
        );
        // The machine forms keep the hyphen.
        assert_eq!(Money::from_grosze(-1230).to_decimal_string(), "-12.30");
        assert_eq!(
            Money::from_grosze(123456789012).to_string(),
            "1\u{a0}234\u{a0}567\u{a0}890,12\u{a0}zł"
        );
        assert_eq!(format!("{:#}", Money::from_grosze(100000)), "1\u{a0}000,00");
        assert_eq!(format!("{:#}", Money::from_grosze(99999)), "999,99");
        // Display → parse round trip.
        for g in [0, 1, -1, 99, 100, 123456, -987654321, i64::MAX] {
            let x = Money::from_grosze(g);
            assert_eq!(x.to_string().parse::<Money>(), Ok(x));
            assert_eq!(x.to_decimal_string().parse::<Money>(), Ok(x));
        }
    }

    #[test]
    fn serde_as_decimal_string() {
        let x = Money::from_grosze(-123456);
        assert_eq!(serde_json::to_string(&x).unwrap(), "\"-1234.56\"");
        assert_eq!(
            serde_json::from_str::<Money>("\"1 234,56\"")
                .unwrap()
                .grosze(),
            123456
        );
        assert!(serde_json::from_str::<Money>("12.5").is_err());
        assert!(serde_json::from_str::<Money>("\"1,234\"").is_err());
    }

    #[test]
    fn arithmetic() {
        let a = Money::from_grosze(1050);
        let b = Money::from_grosze(-300);
        assert_eq!((a + b).grosze(), 750);
        assert_eq!((a - b).grosze(), 1350);
        assert_eq!((-a).grosze(), -1050);
        let mut c = a;
        c += b;
        c -= Money::from_grosze(50);
        assert_eq!(c.grosze(), 700);
        assert_eq!([a, b, a].iter().sum::<Money>().grosze(), 1800);
        assert_eq!(Vec::<Money>::new().into_iter().sum::<Money>(), Money::ZERO);
        assert_eq!(
            Money::from_grosze(i64::MAX).checked_add(Money::from_grosze(1)),
            None
        );
        assert!(b.is_negative() && b.abs() == Money::from_grosze(300));
    }

    #[test]
    fn quantities() {
        let q = |s: &str| s.parse::<Quantity>().unwrap().milli();
        assert_eq!(q("1"), 1000);
        assert_eq!(q("1,5"), 1500);
        assert_eq!(q("0.001"), 1);
        assert_eq!(q("2 000"), 2_000_000);
        assert!("0,0001".parse::<Quantity>().is_err());
        assert_eq!(Quantity::from_milli(1500).to_string(), "1,5");
        assert_eq!(Quantity::from_milli(1).to_string(), "0,001");
        assert_eq!(Quantity::from_milli(12000).to_string(), "12");
        assert_eq!(Quantity::from_milli(-2000).to_string(), "\u{2212}2");
        assert_eq!(serde_json::to_string(&Quantity::ONE).unwrap(), "\"1.000\"");
    }

    #[test]
    fn vat_rates_parse_and_print() {
        for r in VatRate::ALL {
            assert_eq!(r.as_str().parse::<VatRate>(), Ok(r));
        }
        assert_eq!("23%".parse::<VatRate>(), Ok(VatRate::R23));
        assert_eq!("ZW".parse::<VatRate>(), Ok(VatRate::Zw));
        assert_eq!("np.".parse::<VatRate>(), Ok(VatRate::Np));
        assert!("22".parse::<VatRate>().is_err());
        assert!("7".parse::<VatRate>().is_err());
        assert_eq!(VatRate::R23.to_string(), "23%");
        assert_eq!(VatRate::Zw.to_string(), "zw");
        assert_eq!(serde_json::to_string(&VatRate::R8).unwrap(), "\"8\"");
    }

    #[test]
    fn vat_rounding_half_away_from_zero() {
        // 40,65 × 23% = 9,3495 → 9,35 (gross 50,00: the demo's monthly fee).
        let l = LineAmounts::from_net(Quantity::ONE, m("40,65"), VatRate::R23);
        assert_eq!((l.net, l.vat, l.gross), (m("40,65"), m("9,35"), m("50,00")));
        // 0,50 × 23% = 0,115 → 0,12 (exact half rounds up).
        assert_eq!(VatRate::R23.vat_of_net(m("0,50")), m("0,12"));
        // Negative (correction) lines round away from zero too: −0,115 → −0,12.
        assert_eq!(VatRate::R23.vat_of_net(m("-0,50")), m("-0,12"));
        // 0,10 × 23% = 0,023 → 0,02.
        assert_eq!(VatRate::R23.vat_of_net(m("0,10")), m("0,02"));
        assert_eq!(VatRate::R8.vat_of_net(m("100,00")), m("8,00"));
        assert_eq!(VatRate::Zw.vat_of_net(m("100,00")), Money::ZERO);
        assert_eq!(VatRate::Np.vat_of_net(m("100,00")), Money::ZERO);
        // Quantity × unit price rounds once: 3 × 33,333… is not representable; 1,5 × 0,99 =
        // 1,485 → 1,49.
        let l = LineAmounts::from_net("1,5".parse().unwrap(), m("0,99"), VatRate::R0);
        assert_eq!((l.net, l.vat, l.gross), (m("1,49"), Money::ZERO, m("1,49")));
    }

    #[test]
    fn gross_based_lines() {
        // 50,00 gross at 23%: VAT = 50 × 23/123 = 9,3495… → 9,35, net 40,65.
        let l = LineAmounts::from_gross(Quantity::ONE, m("50,00"), VatRate::R23);
        assert_eq!((l.net, l.vat, l.gross), (m("40,65"), m("9,35"), m("50,00")));
        // 100,00 gross at 8%: VAT = 7,407… → 7,41.
        assert_eq!(
            VatRate::R8.split_gross(m("100,00")),
            (m("92,59"), m("7,41"))
        );
        let l = LineAmounts::from_gross(Quantity::from_milli(12000), m("50,00"), VatRate::R23);
        assert_eq!(l.gross, m("600,00"));
        assert_eq!(l.net + l.vat, l.gross);
    }
}
