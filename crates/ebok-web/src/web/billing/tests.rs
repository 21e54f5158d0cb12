//! Tests of the payments and e-Faktury pages, the invoice PDF and the new-invoice mail.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use time::macros::date;
use time::{Date, Month};
use tower::ServiceExt;

use super::*;

use crate::web::tests::*;
use crate::web::AppState;
use ebok_store::billing::{self, InvoiceLine, InvoiceStatus};
use ebok_store::billing::{upsert_invoice, upsert_payment, InvoiceRecord, PaymentRecord};
use ebok_store::money::Money;
use ebok_store::money::{Quantity, VatRate};
use ebok_store::panel;
use ebok_store::subscribers::upsert_subscriber;
use ebok_store::subscribers::{self};
use ebok_store::validate::nrb;

const JAN_NRB: &str = "61109010140000071219812874";
const JAN_LAST: &str = "Kowalski-Łężyński";

fn line(position: u32, name: &str, gross: i64, rate: VatRate) -> InvoiceLine {
    let (net, vat) = rate.split_gross(Money::from_grosze(gross));
    InvoiceLine {
        position,
        name: name.into(),
        unit: "usł.".into(),
        quantity: Quantity::ONE,
        unit_net: net,
        net,
        vat_rate: rate,
        vat,
        gross: Money::from_grosze(gross),
    }
}

fn invoice_rec(
    ext: &str,
    sub: &str,
    number: &str,
    issued: Date,
    status: InvoiceStatus,
    lines: Vec<InvoiceLine>,
) -> InvoiceRecord {
    let sum = |f: fn(&InvoiceLine) -> Money| lines.iter().map(f).sum::<Money>();
    InvoiceRecord {
        ext_id: ext.into(),
        subscriber_ext_id: sub.into(),
        number: number.into(),
        issued_on: issued,
        sold_on: issued,
        due_on: issued.replace_day(15).unwrap(),
        net: sum(|l| l.net),
        vat: sum(|l| l.vat),
        gross: sum(|l| l.gross),
        status,
        ksef_number: None,
        ksef_xml: None,
        lines,
    }
}

/// The k-th month from January 2024 (k = 1 → 2024-01-01).
fn month(k: u32) -> Date {
    let m0 = k - 1;
    let year = 2024 + (m0 / 12) as i32;
    let month = Month::try_from((m0 % 12 + 1) as u8).unwrap();
    Date::from_calendar_date(year, month, 1).unwrap()
}

fn number(k: u32) -> String {
    let d = month(k);
    format!("FV/{}/{:02}/{k:03}", d.year(), u8::from(d.month()))
}

/// Jan gets an individual account and a surname with Polish letters; 25 monthly invoices
/// of 50,00 zł (the first 22 paid, on the 10th) and 22 payments: 150,00 zł due. Anna gets
/// one paid invoice. Gives the ids of Jan's invoices (k = 1…25) and Anna's invoice.
async fn seed_billing(h: &Harness) -> (Vec<i64>, i64) {
    let db = &h.state.db;
    let (jan, _) = subscribers::subscriber_by_login(db, "jan@isp")
        .await
        .unwrap()
        .unwrap();
    let (anna, _) = subscribers::subscriber_by_login(db, "anna@isp")
        .await
        .unwrap()
        .unwrap();
    let mut rec = jan.to_record();
    rec.bank_account = Some(nrb(JAN_NRB).unwrap());
    rec.last_name = Some(JAN_LAST.into());
    let mut tx = db.begin().await.unwrap();
    upsert_subscriber(&mut tx, &rec).await.unwrap();
    for k in 1..=25u32 {
        let mut r = invoice_rec(
            &format!("i{k}"),
            &jan.ext_id,
            &number(k),
            month(k),
            if k <= 22 {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Issued
            },
            vec![line(1, "Internet 100 Mb/s — abonament", 5000, VatRate::R23)],
        );
        if k == 25 {
            r.ksef_number = Some("5260250274-20260101-0A1B2C3D4E5F-4C".into());
        }
        upsert_invoice(&mut tx, &r).await.unwrap();
        if k <= 22 {
            upsert_payment(
                &mut tx,
                &PaymentRecord {
                    ext_id: format!("p{k}"),
                    subscriber_ext_id: jan.ext_id.clone(),
                    paid_on: month(k).replace_day(10).unwrap(),
                    amount: Money::from_grosze(5000),
                    title: format!("Przelew za {}", number(k)),
                    method: "przelew".into(),
                },
            )
            .await
            .unwrap();
        }
    }
    upsert_invoice(
        &mut tx,
        &invoice_rec(
            "a1",
            &anna.ext_id,
            "FV/2026/01/900",
            date!(2026 - 01 - 01),
            InvoiceStatus::Paid,
            vec![line(1, "Internet", 5000, VatRate::R23)],
        ),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut ids = Vec::new();
    for k in 1..=25u32 {
        ids.extend(
            billing::invoice_ids_by_ext(db, &[format!("i{k}").as_str()])
                .await
                .unwrap(),
        );
    }
    let anna_invoice = billing::invoice_ids_by_ext(db, &["a1"]).await.unwrap()[0];
    (ids, anna_invoice)
}

/// The body with non-breaking spaces (money, thousands) as plain ones.
fn plain(s: &str) -> String {
    s.replace('\u{a0}', " ")
}

/// GET with the browser's cookies and address, the body as bytes (PDF is not text).
async fn get_bytes(h: &Harness, b: &Browser, path: &str) -> (StatusCode, HeaderMapOwned, Vec<u8>) {
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut req = Request::builder()
        .uri(path)
        .header(header::HOST, "ebok.example.pl")
        .header(header::COOKIE, cookies.join("; "))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(b.peer));
    let resp = crate::app(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

type HeaderMapOwned = axum::http::HeaderMap;

/// Keep a page for a look when `EBOK_TEST_ARTIFACTS` names a folder.
fn artifact(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("EBOK_TEST_ARTIFACTS") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), bytes);
    }
}

#[test]
fn transfer_qr_payload_known_case() {
    let acc = nrb(JAN_NRB).unwrap();
    assert_eq!(
        billing::transfer_qr_payload(
            Some("526-025-02-74"),
            &acc,
            Money::from_grosze(123),
            "Firma | „Net” Sp. z o.o.",
            "Faktura FV/2026/05/001"
        ),
        "5260250274|PL|61109010140000071219812874|000123|Firma Net Sp. z o.o.|Faktura FV/2026/05/001|||"
    );
    // Long texts are cut, Polish letters stay, a bad NIP is left out, amounts above
    // 9999,99 zł get more digits.
    assert_eq!(
        billing::transfer_qr_payload(
            Some("123"),
            &acc,
            Money::from_grosze(1_234_567),
            "Łączność Światłowodowa Żółw",
            "Abonament za styczeń 2026, umowa UM/2013/001 i inne"
        ),
        "|PL|61109010140000071219812874|1234567|Łączność Światłowodo|Abonament za styczeń 2026, umowa|||"
    );
    assert_eq!(billing::qr_text("  a|b\n<c>  ", 10), "a b c");
}

#[tokio::test]
async fn payments_page_shows_balance_ledger_account_and_qr() {
    let h = Harness::sqlite().await;
    payments_scenario(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn payments_page_on_postgres() {
    let Some(h) = Harness::postgres_redis("billing_payments_pg").await else {
        return;
    };
    payments_scenario(&h).await;
    h.finish().await;
}

async fn payments_scenario(h: &Harness) {
    let (ids, _) = seed_billing(h).await;
    let mut b = jan_registered(h).await;
    let r = b.get("/platnosci").await;
    assert_eq!(r.status, StatusCode::OK);
    artifact("payments.html", r.body.as_bytes());
    let body = plain(&r.body);
    assert!(body.contains("Do zapłaty: 150,00 zł"), "{body}");
    assert!(body.contains("61 1090 1014 0000 0712 1981 2874"));
    // The QR code for the amount due, titled with the oldest unpaid invoice.
    let payload = "|PL|61109010140000071219812874|015000|Testnet|Faktura FV/2025/11/023|||";
    assert!(body.contains(payload), "{body}");
    assert!(body.contains("<svg") && body.contains("aria-label=\"Kod QR do przelewu\""));
    // Newest first with the running balance: invoices 25, 24, 23 unpaid.
    let i25 = body.find("Faktura FV/2026/01/025").expect("newest invoice");
    let i24 = body.find("Faktura FV/2025/12/024").unwrap();
    let i23 = body.find("Faktura FV/2025/11/023 (").unwrap();
    assert!(i25 < i24 && i24 < i23);
    let row25 = &body[i25..i24];
    assert!(row25.contains("\u{2212}150,00 zł"), "{row25}");
    assert!(body[i24..i23].contains("\u{2212}100,00 zł"));
    assert!(body.contains(&format!("href=\"/e-faktury/{}\"", ids[24])));
    assert!(body.contains("Wpłata: Przelew za FV/2025/10/022"));
    assert!(body.contains("Strona 1 z 3"));
    assert!(!body.contains("FV/2024/01/001"));
    // 47 lines: the third page holds the oldest 7.
    let r = b.get("/platnosci?strona=3").await;
    let body = plain(&r.body);
    assert!(body.contains("Strona 3 z 3"));
    assert!(body.contains("Faktura FV/2024/01/001"));
    assert_eq!(body.matches("<tr>").count(), 1 + 7, "{body}");
    assert!(!body.contains("FV/2026/01/025"));
    // Nonsense page numbers fall back to the first page.
    let r = b.get("/platnosci?strona=abc").await;
    assert!(plain(&r.body).contains("Strona 1 z 3"));
}

#[tokio::test]
async fn settled_balance_has_no_qr_and_pages_need_login() {
    let h = Harness::sqlite().await;
    seed_billing(&h).await;
    let mut visitor = h.browser(STRANGER_IP);
    for path in [
        "/platnosci",
        "/e-faktury",
        "/e-faktury/1",
        "/e-faktury/1.pdf",
    ] {
        let r = visitor.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            r.location(),
            format!("/logowanie?wroc={}", path.replace('?', "%3F"))
        );
    }
    // Jan pays everything: settled, no code.
    let mut tx = h.state.db.begin().await.unwrap();
    upsert_payment(
        &mut tx,
        &PaymentRecord {
            ext_id: "p-all".into(),
            subscriber_ext_id: "s1".into(),
            paid_on: date!(2026 - 02 - 01),
            amount: Money::from_grosze(20000),
            title: String::new(),
            method: "przelew".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut b = jan_registered(&h).await;
    let body = plain(&b.get("/platnosci").await.body);
    assert!(body.contains("Nadpłata: 50,00 zł"), "{body}");
    assert!(!body.contains("<svg"));
    assert!(body.contains(">Wpłata<"));
    h.finish().await;
}

#[tokio::test]
async fn invoices_page_lists_and_consent_is_recorded() {
    let h = Harness::sqlite().await;
    let (ids, _) = seed_billing(&h).await;
    let mut b = jan_registered(&h).await;
    let r = b.get("/e-faktury").await;
    assert_eq!(r.status, StatusCode::OK);
    artifact("invoices.html", r.body.as_bytes());
    let body = plain(&r.body);
    assert!(body.contains("Zgoda nie została udzielona"));
    assert!(body.contains("FV/2026/01/025"));
    assert!(body.contains("5260250274-20260101-0A1B2C3D4E5F-4C"));
    assert!(body.contains("po terminie"), "issued and past due");
    assert!(body.contains("zapłacona"));
    assert!(body.contains("15.01.2026"));
    assert!(body.contains(&format!("/e-faktury/{}.pdf", ids[24])));
    assert!(body.contains("Strona 1 z 2"));
    assert!(!body.contains("FV/2024/01/001"));
    let body = plain(&b.get("/e-faktury?strona=2").await.body);
    assert!(body.contains("FV/2024/01/001") && body.contains("Strona 2 z 2"));

    // Give the consent, then revoke it.
    let r = b
        .submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/e-faktury");
    let (jan, _) = subscribers::subscriber_by_login(&h.state.db, "jan@isp")
        .await
        .unwrap()
        .unwrap();
    let c = panel::current_consent(&h.state.db, jan.id)
        .await
        .unwrap()
        .unwrap();
    assert!(c.given);
    assert_eq!(c.ip.unwrap().to_string(), JAN_IP);
    assert_eq!(c.text_version, "2026-2/pl");
    let body = plain(&b.get("/e-faktury").await.body);
    assert!(body.contains("Zgoda udzielona"), "{body}");
    assert!(body.contains(JAN_IP) && body.contains("2026-2/pl"));
    assert!(body.contains("value=\"revoke\""));
    // Giving it again with the same wording records nothing new.
    b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
        .await;
    assert_eq!(
        panel::consent_history(&h.state.db, jan.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let r = b
        .submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "revoke")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let history = panel::consent_history(&h.state.db, jan.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(!history[0].given && history[1].given);
    assert_eq!(history[0].ip.unwrap().to_string(), JAN_IP);
    let body = plain(&b.get("/e-faktury").await.body);
    assert!(body.contains("Zgoda cofnięta"));
    let audit = ebok_store::audit::recent(&h.state.db, 20).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(actions.contains(&"einvoice_consent_given"), "{actions:?}");
    assert!(actions.contains(&"einvoice_consent_revoked"));
    let given = audit
        .iter()
        .find(|a| a.action == "einvoice_consent_given")
        .unwrap();
    assert_eq!(given.ip.unwrap().to_string(), JAN_IP);
    assert!(given.detail.contains("2026-2/pl"));
    // A post without the CSRF token is refused by the panel layer.
    let mut fresh = b;
    fresh.csrf = None;
    let r = fresh
        .post("/e-faktury/zgoda", &[("decision", "give")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    h.finish().await;
}

#[tokio::test]
async fn invoice_print_page_and_ownership() {
    let h = Harness::sqlite().await;
    let (ids, anna_invoice) = seed_billing(&h).await;
    let mut b = jan_registered(&h).await;
    let r = b.get(&format!("/e-faktury/{}", ids[24])).await;
    assert!(
        r.body.contains("NIP: 6772445515"),
        "the seller's NIP from [isp] nip"
    );
    assert_eq!(r.status, StatusCode::OK);
    artifact("invoice.html", r.body.as_bytes());
    let body = plain(&r.body);
    for needle in [
        "Faktura VAT nr FV/2026/01/025",
        "Data wystawienia",
        "01.01.2026",
        "Data sprzedaży",
        "Testnet",
        &format!("Jan {JAN_LAST}"),
        "ul. Internetowa 1",
        "30-001 Kraków",
        "Internet 100 Mb/s — abonament",
        "40,65",
        "9,35",
        "23%",
        "Do zapłaty: <strong>50,00 zł</strong>",
        "61 1090 1014 0000 0712 1981 2874",
        "5260250274-20260101-0A1B2C3D4E5F-4C",
        "class=\"invoice-doc\"",
    ] {
        assert!(body.contains(needle), "{needle} missing in {body}");
    }
    // Another subscriber's invoice, a missing one and garbage: 404 alike.
    for path in [
        format!("/e-faktury/{anna_invoice}"),
        format!("/e-faktury/{anna_invoice}.pdf"),
        "/e-faktury/999999".to_owned(),
        "/e-faktury/999999.pdf".to_owned(),
        "/e-faktury/abc".to_owned(),
    ] {
        let (status, headers, _) = get_bytes(&h, &b, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_ne!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/pdf"
        );
    }
    h.finish().await;
}

#[tokio::test]
async fn invoice_pdf_text_matches_the_invoice() {
    let h = Harness::sqlite().await;
    seed_billing(&h).await;
    // A two-rate invoice for Jan.
    let rec = invoice_rec(
        "i-two",
        "s1",
        "FV/2026/02/777",
        date!(2026 - 02 - 01),
        InvoiceStatus::Issued,
        vec![
            line(
                1,
                "Internet światłowodowy 1 Gb/s — abonament za luty 2026",
                12300,
                VatRate::R23,
            ),
            line(2, "Dzierżawa routera Wi-Fi", 1080, VatRate::R8),
        ],
    );
    let mut tx = h.state.db.begin().await.unwrap();
    upsert_invoice(&mut tx, &rec).await.unwrap();
    tx.commit().await.unwrap();
    let id = billing::invoice_ids_by_ext(&h.state.db, &["i-two"])
        .await
        .unwrap()[0];
    let b = jan_registered(&h).await;
    let (status, headers, pdf) = get_bytes(&h, &b, &format!("/e-faktury/{id}.pdf")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/pdf"
    );
    assert!(headers
        .get(header::CONTENT_DISPOSITION)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("faktura-FV-2026-02-777.pdf"));
    assert!(pdf.starts_with(b"%PDF-"));
    artifact("invoice.pdf", &pdf);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = match tokio::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .await
    {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!("pdftotext failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            crate::testkit::skip(
                "invoice_pdf_text_matches_the_invoice",
                "pdftotext",
                &e.to_string(),
            );
            return;
        }
    };
    let text = plain(&String::from_utf8(out.stdout).unwrap());
    for needle in [
        "Faktura VAT nr FV/2026/02/777",
        &format!("Jan {JAN_LAST}"),
        "30-001 Kraków",
        "Internet światłowodowy",
        "Dzierżawa routera Wi-Fi",
        "100,00", // net 23%
        "23,00",  // VAT 23%
        "10,00",  // net 8%
        "0,80",   // VAT 8%
        "110,00", // net total
        "23,80",  // VAT total
        "Do zapłaty: 133,80 zł",
        "61 1090 1014 0000 0712 1981 2874",
        "15.02.2026",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing in PDF text:\n{text}"
        );
    }
    // The font is embedded (a subset), not referenced.
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/FontFile2") || raw.contains("/FontFile3"));
    h.finish().await;
}

/// A grey `w` × `h` PNG (8-bit greyscale, one stored deflate block), made here so the
/// test needs no image file.
fn tiny_png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut raw = Vec::new();
    for _ in 0..h {
        raw.push(0); // no filter
        raw.extend(std::iter::repeat_n(0x80u8, w as usize));
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    let mut z = vec![0x78, 0x01, 1];
    z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    z.extend_from_slice(&raw);
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

async fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.pdf");
    std::fs::write(&file, pdf).unwrap();
    match tokio::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .await
    {
        Ok(o) if o.status.success() => Some(plain(&String::from_utf8(o.stdout).unwrap())),
        Ok(o) => panic!("pdftotext failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            crate::testkit::skip("invoice PDF text", "pdftotext", &e.to_string());
            None
        }
    }
}

/// The PDF names the customer and the contract, carries the configured logo, and says
/// nothing about being paid or not (that changes; the document does not).
#[tokio::test]
async fn invoice_pdf_has_customer_contract_and_logo_but_no_status() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, tiny_png(40, 20)).unwrap();
    let path = logo.clone();
    let h = Harness::with(move |c| c.isp.logo = Some(path)).await;
    let (ids, _) = seed_billing(&h).await;
    let b = jan_registered(&h).await;
    let (status, _, pdf) = get_bytes(&h, &b, &format!("/e-faktury/{}.pdf", ids[0])).await;
    assert_eq!(status, StatusCode::OK);
    artifact("invoice-logo.pdf", &pdf);
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/Image"), "the logo is drawn");
    let Some(text) = pdf_text(&pdf).await else {
        return;
    };
    for needle in ["Numer klienta: s1", "Numer umowy: UM/2013/001"] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    assert!(!text.contains("Status"), "status in the PDF:\n{text}");
    for word in ["zapłacona", "po terminie"] {
        assert!(!text.contains(word), "{word} in the PDF:\n{text}");
    }
    // The print page keeps the status, and shows the same numbers.
    let mut b = b;
    let page = b.get(&format!("/e-faktury/{}", ids[0])).await;
    assert!(page.body.contains("Numer klienta") && page.body.contains("UM/2013/001"));
    assert!(page.body.contains("Status"));
    h.finish().await;
}

/// An ISP logo must be a PNG that can be read (the configuration check names `isp.logo`
/// when it is not; see the configuration's tests).
#[test]
fn a_logo_that_is_not_a_png_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("logo.png");
    std::fs::write(&text, "not an image").unwrap();
    for path in [text, dir.path().join("missing.png")] {
        assert!(
            crate::web::billing::check_logo(&path).is_err(),
            "{} accepted",
            path.display()
        );
    }
    let good = dir.path().join("good.png");
    std::fs::write(&good, tiny_png(3, 2)).unwrap();
    assert!(crate::web::billing::check_logo(&good).is_ok());
}

#[tokio::test]
async fn totals_that_do_not_match_the_lines_are_refused() {
    let h = Harness::sqlite().await;
    let (ids, _) = seed_billing(&h).await;
    let id = ids[0];
    ebok_store::on_pool!(&h.state.db, pool => {
        sqlx::query("UPDATE invoices SET gross = gross + 1 WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    });
    let mut b = jan_registered(&h).await;
    let r = b.get(&format!("/e-faktury/{id}")).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.body.contains("jej kwoty wymagają sprawdzenia"),
        "{}",
        r.body
    );
    let (status, headers, _) = get_bytes(&h, &b, &format!("/e-faktury/{id}.pdf")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(headers
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // The others still show.
    assert_eq!(
        b.get(&format!("/e-faktury/{}", ids[1])).await.status,
        StatusCode::OK
    );
    h.finish().await;
}

#[tokio::test]
async fn new_invoice_mail_goes_to_consenting_subscribers_only() {
    let h = Harness::sqlite().await;
    let (ids, anna_invoice) = seed_billing(&h).await;
    let mut b = jan_registered(&h).await;
    // No consent yet: nothing.
    assert_eq!(notify_new_invoices(&h.state, &[ids[24]]).await, 0);
    b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
        .await;
    // Anna has no panel account; an unknown id is skipped.
    assert_eq!(
        notify_new_invoices(&h.state, &[ids[24], anna_invoice, 999_999]).await,
        1
    );
    let mails = h.mails_to("jan@example.pl", 2).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("Nowa faktura"))
        .expect("mail");
    assert!(mail.contains("FV/2026/01/025"), "{mail}");
    assert!(plain(mail).contains("50,00 zł"));
    assert!(mail.contains(&format!("https://ebok.example.pl/e-faktury/{}", ids[24])));
    // Revoked: nothing again.
    b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "revoke")])
        .await;
    assert_eq!(notify_new_invoices(&h.state, &[ids[24]]).await, 0);
    h.finish().await;
}

#[tokio::test]
async fn invoices_added_by_any_route_are_mailed_once() {
    let h = Harness::sqlite().await;
    let (ids, _) = seed_billing(&h).await;
    let mut b = jan_registered(&h).await;
    b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
        .await;
    // The harness started before seeding: everything seeded counts as new, once.
    assert!(notify_pending_invoices(&h.state).await.unwrap() >= 1);
    assert_eq!(notify_pending_invoices(&h.state).await.unwrap(), 0);
    // A second instance sharing the database takes nothing the first already took.
    let other = AppState { ..h.state.clone() };
    assert_eq!(notify_pending_invoices(&other).await.unwrap(), 0);
    let mails = h.mails_to("jan@example.pl", 2).await;
    assert!(mails.iter().any(|m| m.contains("Nowa faktura")));
    assert!(ids.len() >= 25);
    h.finish().await;
}

#[tokio::test]
async fn invoices_put_through_the_ops_api_mail_consenting_subscribers() {
    let h = Harness::sqlite().await;
    seed_billing(&h).await;
    let mut b = jan_registered(&h).await;
    b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
        .await;
    let token = "billing-test-token";
    let mut config = (*h.state.config).clone();
    config.ops.tokens.push(crate::web::settings::OpsToken {
        name: "billing".into(),
        sha256: ebok_store::auth::token_hash(token),
    });
    let state = AppState {
        config: std::sync::Arc::new(config),
        ..h.state.clone()
    };
    let app = crate::app(state);
    let put = |body: String| {
        let mut req = Request::builder()
            .method("PUT")
            .uri("/api/v1/invoices")
            .header(header::HOST, "ebok.example.pl")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                5000,
            ))));
        app.clone().oneshot(req)
    };
    let invoice = |gross: &str, net: &str, vat: &str| {
        format!(
            r#"{{"ext_id":"i-api","subscriber_ext_id":"s1","number":"FV/2026/03/555",
            "issued_on":"2026-03-01","sold_on":"2026-03-01","due_on":"2026-03-15",
            "net":"{net}","vat":"{vat}","gross":"{gross}","status":"issued","ksef_number":null,
            "lines":[{{"position":1,"name":"Internet","unit":"usł.","quantity":"1",
            "unit_net":"{net}","net":"{net}","vat_rate":"23","vat":"{vat}","gross":"{gross}"}}]}}"#
        )
    };
    let r = put(invoice("61.50", "50.00", "11.50")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mails = h.mails_with("jan@example.pl", "FV/2026/03/555").await;
    assert!(
        mails.iter().any(|m| m.contains("FV/2026/03/555")),
        "{mails:?}"
    );
    // An update of the same invoice mails nothing more.
    let r = put(invoice("123.00", "100.00", "23.00")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    h.state.panel.mail_work.settled().await;
    let mails = h.mails_to("jan@example.pl", 3).await;
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.contains("FV/2026/03/555"))
            .count(),
        1
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// KSeF: the XML download and KOD I
// ---------------------------------------------------------------------------------------------

/// Store `rec` with its FA(3) file (seller 5260250274) and give the invoice's id and file.
async fn with_fa3(h: &Harness, rec: InvoiceRecord) -> (i64, String) {
    let (rec, xml) = ebok_store::testkit::with_fa3_file(rec, "5260250274");
    let mut tx = h.state.db.begin().await.unwrap();
    upsert_invoice(&mut tx, &rec).await.unwrap();
    tx.commit().await.unwrap();
    let id = billing::invoice_ids_by_ext(&h.state.db, &[rec.ext_id.as_str()])
        .await
        .unwrap()[0];
    (id, xml)
}

fn ksef_invoice(ext: &str, sub: &str, number: &str, ksef: Option<&str>) -> InvoiceRecord {
    let mut rec = invoice_rec(
        ext,
        sub,
        number,
        date!(2026 - 02 - 01),
        InvoiceStatus::Issued,
        vec![line(1, "Internet 1 Gb/s — abonament", 12300, VatRate::R23)],
    );
    rec.ksef_number = ksef.map(str::to_owned);
    rec
}

/// A KSeF number of seller 5260250274 accepted on 2026-02-02.
fn ksef_no() -> String {
    ebok_store::ksef::with_checksum("5260250274-20260202-00000A1B2C3D")
}

#[tokio::test]
async fn ksef_xml_is_served_to_its_owner_only() {
    let h = Harness::sqlite().await;
    let (ids, _) = seed_billing(&h).await;
    let number = ksef_no();
    let (id, xml) = with_fa3(
        &h,
        ksef_invoice("k1", "s1", "FV/2026/02/900", Some(&number)),
    )
    .await;
    let (anna, _) = subscribers::subscriber_by_login(&h.state.db, "anna@isp")
        .await
        .unwrap()
        .unwrap();
    let (anna_id, _) = with_fa3(&h, ksef_invoice("k2", &anna.ext_id, "FV/2026/02/901", None)).await;
    let b = jan_registered(&h).await;

    let (status, headers, body) = get_bytes(&h, &b, &format!("/e-faktury/{id}.xml")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, xml.as_bytes(), "byte for byte");
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/xml"
    );
    assert_eq!(
        headers.get(header::CONTENT_DISPOSITION).unwrap(),
        "attachment; filename=\"faktura-FV-2026-02-900.xml\""
    );
    assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    assert!(headers
        .get(header::CACHE_CONTROL)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("no-store"));
    // Another subscriber's file, an invoice without one, a missing id, garbage: 404 alike.
    for path in [
        format!("/e-faktury/{anna_id}.xml"),
        format!("/e-faktury/{}.xml", ids[0]),
        "/e-faktury/999999.xml".to_owned(),
        "/e-faktury/x.xml".to_owned(),
    ] {
        let (status, headers, body) = get_bytes(&h, &b, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_ne!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/xml"
        );
        assert!(!body.starts_with(b"<?xml"), "{path}");
    }
    // Logged out: no file.
    let anon = h.browser("198.51.100.7");
    let (status, _, body) = get_bytes(&h, &anon, &format!("/e-faktury/{id}.xml")).await;
    assert_ne!(status, StatusCode::OK);
    assert!(!body.starts_with(b"<?xml"));

    // The page: KOD I with the KSeF number under it, the XML link; the list links it too.
    let mut b = b;
    let r = b.get(&format!("/e-faktury/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    artifact("invoice-ksef.html", r.body.as_bytes());
    assert!(r.body.contains("class=\"ksef-code\""), "{}", r.body);
    assert!(r.body.contains("<svg ") && r.body.contains("Kod weryfikacyjny KSeF"));
    assert!(r
        .body
        .contains(&format!("<span class=\"ksef\">{number}</span>")));
    assert!(r.body.contains(&format!("href=\"/e-faktury/{id}.xml\"")));
    let r = b.get("/e-faktury").await;
    assert!(r.body.contains(&format!("href=\"/e-faktury/{id}.xml\"")));
    assert!(!r
        .body
        .contains(&format!("href=\"/e-faktury/{}.xml\"", ids[0])));
    // Without XML: no code, no link.
    let r = b.get(&format!("/e-faktury/{}", ids[24])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("ksef-code") && !r.body.contains("<svg "));
    assert!(!r.body.contains(".xml\""));
    h.finish().await;
}

#[tokio::test]
async fn kod_i_reads_offline_until_the_number_is_known() {
    let h = Harness::sqlite().await;
    seed_billing(&h).await;
    let (id, _) = with_fa3(&h, ksef_invoice("k1", "s1", "FV/2026/02/900", None)).await;
    let mut b = jan_registered(&h).await;
    let r = b.get(&format!("/e-faktury/{id}")).await;
    assert!(
        r.body.contains("<span class=\"ksef\">OFFLINE</span>"),
        "{}",
        r.body
    );
    h.finish().await;
}

/// Run `cmd`; `None` (a recorded skip) when the tool is not installed.
async fn tool(test: &str, cmd: &str, args: &[&std::ffi::OsStr]) -> Option<Vec<u8>> {
    match tokio::process::Command::new(cmd).args(args).output().await {
        Ok(o) if o.status.success() => Some(o.stdout),
        Ok(o) => panic!("{cmd} failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            crate::testkit::skip(test, cmd, &e.to_string());
            None
        }
    }
}

/// The PDF's QR code, rendered by pdftoppm and read by zbarimg, is the KOD I link whose
/// last segment is Base64URL(SHA-256) of the XML file the panel serves.
#[tokio::test]
async fn invoice_pdf_qr_code_verifies_the_downloaded_xml() {
    const TEST: &str = "invoice_pdf_qr_code_verifies_the_downloaded_xml";
    let h = Harness::sqlite().await;
    seed_billing(&h).await;
    let number = ksef_no();
    let (id, _) = with_fa3(
        &h,
        ksef_invoice("k1", "s1", "FV/2026/02/900", Some(&number)),
    )
    .await;
    let b = jan_registered(&h).await;
    let (_, _, xml) = get_bytes(&h, &b, &format!("/e-faktury/{id}.xml")).await;
    let (status, _, pdf) = get_bytes(&h, &b, &format!("/e-faktury/{id}.pdf")).await;
    assert_eq!(status, StatusCode::OK);
    artifact("invoice-ksef.pdf", &pdf);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let prefix = dir.path().join("page");
    let Some(_) = tool(
        TEST,
        "pdftoppm",
        &[
            "-r".as_ref(),
            "150".as_ref(),
            "-png".as_ref(),
            file.as_os_str(),
            prefix.as_os_str(),
        ],
    )
    .await
    else {
        return;
    };
    let mut pngs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    pngs.sort();
    assert!(!pngs.is_empty());
    let mut args: Vec<&std::ffi::OsStr> = vec!["--raw".as_ref(), "-q".as_ref()];
    args.extend(pngs.iter().map(|p| p.as_os_str()));
    let Some(out) = tool(TEST, "zbarimg", &args).await else {
        return;
    };
    let url = String::from_utf8(out).unwrap().trim().to_owned();
    let hash = ebok_store::ksef::base64url(&ebok_store::ksef::sha256(&xml));
    assert_eq!(
        url,
        format!("https://qr.ksef.mf.gov.pl/invoice/5260250274/01-02-2026/{hash}")
    );
    assert_eq!(url.rsplit('/').next(), Some(hash.as_str()));
    // The number is printed under the code.
    if let Some(text) = tool(TEST, "pdftotext", &[file.as_os_str(), "-".as_ref()]).await {
        assert!(String::from_utf8_lossy(&text).contains(&number));
    }
    h.finish().await;
}
