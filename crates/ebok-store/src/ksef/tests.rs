//! KSeF numbers, Base64URL, KOD I links and FA(3) files, without a database (the stored
//! files are tested with the import, `import/tests.rs`).

use time::macros::date;

use super::*;
use crate::billing::{InvoiceLine, InvoiceStatus};
use crate::money::{Money, Quantity, VatRate};

/// The Ministry of Finance's published example (KSeF documentation, "Numer KSeF").
const MF_EXAMPLE: &str = "5265877635-20250826-0100001AF629-AF";

#[test]
fn crc8_matches_the_published_example() {
    assert_eq!(crc8(&MF_EXAMPLE.as_bytes()[..32]), 0xAF);
    assert_eq!(with_checksum(&MF_EXAMPLE[..32]), MF_EXAMPLE);
    assert_eq!(check_number(MF_EXAMPLE), Ok(()));
    // CRC-8/SMBUS check value ("123456789" → 0xF4): the same parameters.
    assert_eq!(crc8(b"123456789"), 0xF4);
}

#[test]
fn ksef_numbers_are_checked_part_by_part() {
    let refused = |n: &str, why: &str| {
        let e = check_number(n).expect_err(n);
        assert!(e.contains(why), "{n}: {e}");
    };
    refused("5265877635-20250826-0100001AF629", "35 characters");
    refused(&format!("{MF_EXAMPLE}0"), "35 characters");
    refused("5265877635 20250826-0100001AF629-AF", "dashes");
    // A NIP whose check digit is wrong (with a matching CRC, so only the NIP is at fault).
    refused(&with_checksum("5265877636-20250826-0100001AF629"), "NIP");
    refused(
        &with_checksum("52658776A5-20250826-0100001AF629"),
        "10 digits",
    );
    // Dates that do not exist.
    refused(
        &with_checksum("5265877635-20250230-0100001AF629"),
        "not a date",
    );
    refused(
        &with_checksum("5265877635-20251301-0100001AF629"),
        "not a date",
    );
    // Lower-case or non-hex technical part.
    refused(
        &with_checksum("5265877635-20250826-0100001af629"),
        "upper-case hex",
    );
    refused(
        &with_checksum("5265877635-20250826-0100001AG629"),
        "upper-case hex",
    );
    // The checksum itself.
    refused("5265877635-20250826-0100001AF629-AE", "checksum");
    refused("5265877635-20250826-0100001AF629-af", "checksum");
    refused("5265877635-20250826-0100001AF629-ĄF", "35 characters");
    assert_eq!(seller_of(MF_EXAMPLE), "5265877635");
}

#[test]
fn base64url_without_padding() {
    // RFC 4648 §10 vectors, padding dropped.
    for (data, enc) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64url(data.as_bytes()), enc, "{data}");
    }
    // The URL-safe letters.
    assert_eq!(base64url(&[0xfb, 0xff, 0xbf]), "-_-_");
    assert_eq!(base64url(&sha256(b"")).len(), 43);
}

#[test]
fn verification_link_of_kod_i() {
    let hash = sha256(b"<Faktura/>");
    assert_eq!(
        verification_url(
            "qr-test.ksef.mf.gov.pl",
            "5265877635",
            date!(2026 - 02 - 01),
            &hash
        ),
        format!(
            "https://qr-test.ksef.mf.gov.pl/invoice/5265877635/01-02-2026/{}",
            base64url(&hash)
        )
    );
}

fn record(number: &str, issued_on: time::Date) -> InvoiceRecord {
    let line = |position, name: &str, net: i64, vat: i64| InvoiceLine {
        position,
        name: name.into(),
        unit: "mies.".into(),
        quantity: Quantity::ONE,
        unit_net: Money::from_grosze(net),
        net: Money::from_grosze(net),
        vat_rate: VatRate::R23,
        vat: Money::from_grosze(vat),
        gross: Money::from_grosze(net + vat),
    };
    InvoiceRecord {
        ext_id: "I-1".into(),
        subscriber_ext_id: "K-1".into(),
        number: number.into(),
        issued_on,
        sold_on: issued_on,
        due_on: issued_on + time::Duration::days(14),
        net: Money::from_grosze(13008),
        vat: Money::from_grosze(2992),
        gross: Money::from_grosze(16000),
        status: InvoiceStatus::Issued,
        ksef_number: None,
        lines: vec![
            line(1, "Abonament <Biznes> & IP", 12195, 2805),
            line(2, "Stały adres IP", 813, 187),
        ],
        ksef_xml: None,
    }
}

/// An FA(3) file of `rec` from seller 5260250274.
fn file_of(rec: &InvoiceRecord) -> String {
    crate::testkit::with_fa3_file(rec.clone(), "5260250274").1
}

#[test]
fn written_fa3_files_pass_the_checks() {
    let rec = record("FV/2026/02/0042", date!(2026 - 02 - 28));
    let xml = file_of(&rec);
    let facts = check_xml(xml.as_bytes()).expect("well-formed FA(3)");
    assert_eq!(
        facts,
        Fa3Facts {
            seller_nip: "5260250274".into(),
            issued_on: date!(2026 - 02 - 28),
            number: "FV/2026/02/0042".into(),
        }
    );
    assert!(xml.contains("<KodFormularza kodSystemowy=\"FA (3)\""));
    assert!(xml.contains("<P_13_1>130.08</P_13_1>") && xml.contains("<P_15>160.00</P_15>"));
    assert!(xml.contains("Abonament &lt;Biznes&gt; &amp; IP"), "{xml}");
    assert_eq!(xml.matches("<FaWiersz>").count(), 2);

    // The record's checks: number, date and seller must agree with the file.
    let mut with = rec.clone();
    with.ksef_xml = Some(xml.clone());
    with.ksef_number = Some(with_checksum("5260250274-20260301-0100001AF629"));
    assert_eq!(
        check_record(&with).unwrap().unwrap().seller_nip,
        "5260250274"
    );
    with.ksef_number = Some(MF_EXAMPLE.into());
    let e = check_record(&with).unwrap_err().to_string();
    assert!(
        e.starts_with("ksef_number:") && e.contains("Podmiot1"),
        "{e}"
    );
    with.ksef_number = None;
    with.number = "FV/2026/02/0043".into();
    let e = check_record(&with).unwrap_err().to_string();
    assert!(e.starts_with("ksef_xml:") && e.contains("P_2"), "{e}");
    let mut with = rec.clone();
    with.ksef_xml = Some(xml);
    with.issued_on = date!(2026 - 02 - 27);
    let e = check_record(&with).unwrap_err().to_string();
    assert!(e.contains("P_1"), "{e}");
}

#[test]
fn bad_files_are_refused() {
    let rec = record("FV/1", date!(2026 - 02 - 28));
    let good = file_of(&rec);
    let refused = |xml: &[u8], why: &str| {
        let e = check_xml(xml).expect_err(why);
        assert!(e.contains(why), "{why}: {e}");
    };
    // Size: the limit is on bytes, checked before parsing.
    let mut big = good.clone().into_bytes();
    big.resize(MAX_XML_BYTES + 1, b' ');
    refused(&big, "more than the 3 MiB");
    let mut fits = good.clone().into_bytes();
    fits.resize(MAX_XML_BYTES, b' ');
    assert!(check_xml(&fits).is_ok());
    // Well-formedness.
    refused(
        good.replace("</P_2>", "</P_3>").as_bytes(),
        "not well-formed",
    );
    refused(good.replace("</Faktura>", "").as_bytes(), "");
    refused(
        good.replace("&amp;", "&bogus;").as_bytes(),
        "not well-formed",
    );
    refused(format!("{good}<Faktura/>").as_bytes(), "more than one root");
    refused(format!("{good}text").as_bytes(), "outside its root");
    refused(
        good.replacen(
            "<Faktura",
            "<!DOCTYPE Faktura [<!ENTITY x \"y\">]><Faktura",
            1,
        )
        .as_bytes(),
        "DOCTYPE",
    );
    refused(b"\xff\xfe<a/>", "not UTF-8");
    refused(b"", "no root element");
    // FA(3) facts.
    refused(
        good.replace("FA (3)", "FA (2)").as_bytes(),
        "not an FA(3) invoice",
    );
    refused(
        good.replace("<NIP>5260250274</NIP>", "<NIP>5260250275</NIP>")
            .as_bytes(),
        "seller's NIP",
    );
    refused(
        good.replace("<P_1>2026-02-28</P_1>", "<P_1>28.02.2026</P_1>")
            .as_bytes(),
        "P_1",
    );
    refused(good.replace("<P_2>FV/1</P_2>", "").as_bytes(), "P_2");
}
