//! Payment reminders through the real mailer's outbox: before and after the due date once
//! each with two instances racing, nothing when the balance covers the invoice, for an
//! unconfirmed address, a disabled account or outside 8:00–20:00; the mail's amount, account
//! and a PNG attachment that decodes (zbarimg) to the transfer QR payload.

use std::sync::Arc;

use time::macros::date;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::*;
use crate::web::tests::*;
use ebok_store::billing::{
    self, upsert_invoice, upsert_payment, InvoiceLine, InvoiceRecord, InvoiceStatus, PaymentRecord,
};
use ebok_store::money::{Money, Quantity, VatRate};
use ebok_store::subscribers::{subscriber_by_login, upsert_subscriber};
use ebok_store::validate::nrb;
use mail_parser::MimeHeaders;

const JAN_NRB: &str = "61109010140000071219812874";
const CFG: RemindersConfig = RemindersConfig {
    days_before: 3,
    days_after: 7,
    from_hour: 8,
    until_hour: 20,
};
const DUE: Date = date!(2026 - 03 - 13);
const BEFORE_SUBJECT: &str = "Przypomnienie o terminie płatności";
const AFTER_SUBJECT: &str = "Minął termin płatności faktury";

/// Warsaw wall-clock time on `day`.
fn at(day: Date, hour: u8) -> OffsetDateTime {
    ebok_store::tz::from_warsaw(PrimitiveDateTime::new(
        day,
        time::Time::from_hms(hour, 0, 0).unwrap(),
    ))
}

/// An invoice of `login`'s subscriber due on `due`; Jan's subscriber gets his account number.
async fn owes(h: &Harness, login: &str, number: &str, due: Date, gross: i64) {
    let db = &h.state.db;
    let (sub, _) = subscriber_by_login(db, login).await.unwrap().unwrap();
    let mut tx = db.begin().await.unwrap();
    if login == "jan@isp" {
        let mut rec = sub.to_record();
        rec.bank_account = Some(nrb(JAN_NRB).unwrap());
        upsert_subscriber(&mut tx, &rec).await.unwrap();
    }
    let gross = Money::from_grosze(gross);
    let (net, vat) = VatRate::R23.split_gross(gross);
    let issued = due - time::Duration::days(14);
    upsert_invoice(
        &mut tx,
        &InvoiceRecord {
            ext_id: number.into(),
            subscriber_ext_id: sub.ext_id.clone(),
            number: number.into(),
            issued_on: issued,
            sold_on: issued,
            due_on: due,
            net,
            vat,
            gross,
            status: InvoiceStatus::Issued,
            ksef_number: None,
            ksef_xml: None,
            lines: vec![InvoiceLine {
                position: 1,
                name: "Internet 100 Mb/s — abonament".into(),
                unit: "usł.".into(),
                quantity: Quantity::ONE,
                unit_net: net,
                net,
                vat_rate: VatRate::R23,
                vat,
                gross,
            }],
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The raw `.eml` files in the outbox whose subject is `subject`.
async fn reminder_mails(h: &Harness, states: &[&AppState], subject: &str) -> Vec<Vec<u8>> {
    for s in states {
        s.panel.mail_work.settled().await;
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(h.dir.path().join("outbox")).unwrap() {
        let raw = std::fs::read(e.unwrap().path()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        if parsed.subject() == Some(subject) {
            out.push(raw);
        }
    }
    out
}

/// The text of a QR code in a PNG, read by zbarimg (apt package zbar-tools).
async fn zbar(png: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qr.png");
    std::fs::write(&path, png).unwrap();
    let out = tokio::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&path)
        .output()
        .await
        .expect("zbarimg runs (apt-get install zbar-tools)");
    assert!(out.status.success(), "zbarimg: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

#[tokio::test]
async fn before_and_after_are_sent_once_each_with_two_instances_racing() {
    let h = Harness::sqlite().await;
    jan_registered(&h).await;
    owes(&h, "jan@isp", "FV/2026/03/001", DUE, 123_456).await;
    // A second instance on the same database (its own mailer, the same outbox).
    let other = AppState::new(
        h.state.db.clone(),
        h.state.live.clone(),
        Arc::new((*h.state.config).clone()),
    )
    .await
    .unwrap();
    let states = [&h.state, &other];

    // Too early for the first reminder: 4 days before the due date.
    let early = at(DUE - time::Duration::days(4), 9);
    assert_eq!(send_due_reminders(&h.state, &CFG, early).await.unwrap(), 0);

    let before = at(DUE - time::Duration::days(3), 9);
    let (a, b) = tokio::join!(
        send_due_reminders(&h.state, &CFG, before),
        send_due_reminders(&other, &CFG, before)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(send_due_reminders(&h.state, &CFG, before).await.unwrap(), 0);
    // A day later (the catch-up window still covers it): nothing more.
    let later = at(DUE - time::Duration::days(2), 12);
    assert_eq!(send_due_reminders(&other, &CFG, later).await.unwrap(), 0);
    let mails = reminder_mails(&h, &states, BEFORE_SUBJECT).await;
    assert_eq!(mails.len(), 1);

    // The mail: amount, due date, account number, title, and the QR code as a PNG.
    let parsed = mail_parser::MessageParser::default()
        .parse(&mails[0])
        .unwrap();
    let text = parsed.body_text(0).unwrap().into_owned();
    assert!(text.contains("1\u{a0}234,56\u{a0}zł"), "{text}");
    assert!(text.contains("13.03.2026"), "{text}");
    assert!(text.contains("61 1090 1014 0000 0712 1981 2874"), "{text}");
    assert!(text.contains("Faktura FV/2026/03/001"), "{text}");
    assert!(text.contains("https://ebok.example.pl/platnosci"), "{text}");
    assert_eq!(parsed.attachment_count(), 1);
    let png = parsed.attachment(0).unwrap();
    assert_eq!(png.attachment_name(), Some("przelew.png"));
    let expected = billing::transfer_qr_payload(
        Some("6772445515"),
        &nrb(JAN_NRB).unwrap(),
        Money::from_grosze(123_456),
        "Testnet",
        "Faktura FV/2026/03/001",
    );
    assert_eq!(
        expected,
        "6772445515|PL|61109010140000071219812874|123456|Testnet|Faktura FV/2026/03/001|||"
    );
    assert_eq!(zbar(png.contents()).await, expected);

    // The due date passes unpaid: nothing until 7 days after, then once.
    let due_passed = at(DUE + time::Duration::days(6), 19);
    assert_eq!(
        send_due_reminders(&h.state, &CFG, due_passed)
            .await
            .unwrap(),
        0
    );
    let after = at(DUE + time::Duration::days(7), 8);
    let (a, b) = tokio::join!(
        send_due_reminders(&other, &CFG, after),
        send_due_reminders(&h.state, &CFG, after)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(send_due_reminders(&h.state, &CFG, after).await.unwrap(), 0);
    let mails = reminder_mails(&h, &states, AFTER_SUBJECT).await;
    assert_eq!(mails.len(), 1);
    let parsed = mail_parser::MessageParser::default()
        .parse(&mails[0])
        .unwrap();
    assert!(parsed
        .body_text(0)
        .unwrap()
        .contains("1\u{a0}234,56\u{a0}zł"));
    assert_eq!(parsed.attachment_count(), 1);
    assert_eq!(reminder_mails(&h, &states, BEFORE_SUBJECT).await.len(), 1);
    h.finish().await;
}

async fn set_disabled(h: &Harness, account: i64, disabled: bool) {
    let mut tx = h.state.db.begin().await.unwrap();
    ebok_store::panel::set_disabled(&mut tx, account, disabled)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn nothing_when_covered_unconfirmed_disabled_or_outside_hours() {
    let h = Harness::sqlite().await;
    jan_registered(&h).await;
    // Anna registers but never confirms her address.
    anna_registered(&h).await;
    owes(&h, "jan@isp", "FV/2026/03/001", DUE, 5_000).await;
    owes(&h, "anna@isp", "FV/2026/03/002", DUE, 5_000).await;
    let day = DUE - time::Duration::days(3);

    // Outside 8:00–20:00 Polish time.
    for hour in [0, 7, 20, 23] {
        assert_eq!(
            send_due_reminders(&h.state, &CFG, at(day, hour))
                .await
                .unwrap(),
            0,
            "{hour}:00"
        );
    }
    // Jan's account disabled; Anna's address unconfirmed.
    let account = ebok_store::panel::panel_account_by_login(&h.state.db, "jan.kowalski")
        .await
        .unwrap()
        .unwrap();
    set_disabled(&h, account.id, true).await;
    assert_eq!(
        send_due_reminders(&h.state, &CFG, at(day, 10))
            .await
            .unwrap(),
        0
    );
    // Enabled again, but Jan paid (the billing system has not marked the invoice yet).
    set_disabled(&h, account.id, false).await;
    let (jan, _) = subscriber_by_login(&h.state.db, "jan@isp")
        .await
        .unwrap()
        .unwrap();
    let mut tx = h.state.db.begin().await.unwrap();
    upsert_payment(
        &mut tx,
        &PaymentRecord {
            ext_id: "p1".into(),
            subscriber_ext_id: jan.ext_id,
            paid_on: day,
            amount: Money::from_grosze(5_000),
            title: "FV/2026/03/001".into(),
            method: "przelew".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        send_due_reminders(&h.state, &CFG, at(day, 10))
            .await
            .unwrap(),
        0
    );
    assert!(reminder_mails(&h, &[&h.state], BEFORE_SUBJECT)
        .await
        .is_empty());
    // Nothing was claimed either: a later change (an address confirmed) still gets one.
    assert!(
        ebok_store::reminders::reminder_candidates(
            &h.state.db,
            ebok_store::reminders::ReminderKind::Before,
            DUE,
            DUE,
            10
        )
        .await
        .unwrap()
        .is_empty(),
        "Anna's address is unconfirmed, Jan's balance covers his"
    );
    h.finish().await;
}

#[test]
fn config_ranges() {
    assert!(CFG.problems().is_empty());
    assert!(RemindersConfig::default().problems().is_empty());
    let bad = RemindersConfig {
        days_before: 0,
        days_after: 61,
        from_hour: 24,
        until_hour: 20,
    };
    let keys: Vec<&str> = bad.problems().iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        ["days_before", "days_after", "from_hour", "until_hour"]
    );
    let empty_window = RemindersConfig {
        from_hour: 9,
        until_hour: 9,
        ..CFG
    };
    let keys: Vec<&str> = empty_window.problems().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["until_hour"]);
    let edge = RemindersConfig {
        days_before: 30,
        days_after: 60,
        from_hour: 0,
        until_hour: 24,
    };
    assert!(edge.problems().is_empty());
}
