//! Reminder candidates and claims on SQLite and PostgreSQL: the due-date window, paid and
//! cancelled invoices, a balance that covers the invoice, unconfirmed and disabled panel
//! accounts, and a claim taken once by two racing callers.

use time::macros::date;
use time::Duration;

use super::*;
use crate::billing::PaymentRecord;
use crate::billing::{upsert_invoice, upsert_payment, InvoiceLine, InvoiceRecord, InvoiceStatus};
use crate::documents::tests::{on_postgres, on_sqlite};
use crate::money::{Quantity, VatRate};
use crate::panel::{confirm_email, create_panel_account, set_disabled};
use crate::subscribers::subscriber_by_ext_id;
use crate::testkit::subscriber_with_login;

fn invoice(ext: &str, sub: &str, due_on: Date, gross: i64, status: InvoiceStatus) -> InvoiceRecord {
    let gross = Money::from_grosze(gross);
    let (net, vat) = VatRate::R23.split_gross(gross);
    InvoiceRecord {
        ext_id: ext.into(),
        subscriber_ext_id: sub.into(),
        number: format!("FV/{ext}"),
        issued_on: due_on - Duration::days(14),
        sold_on: due_on - Duration::days(14),
        due_on,
        net,
        vat,
        gross,
        status,
        ksef_number: None,
        lines: vec![InvoiceLine {
            position: 1,
            name: "Abonament".into(),
            unit: "usł.".into(),
            quantity: Quantity::ONE,
            unit_net: net,
            net,
            vat_rate: VatRate::R23,
            vat,
            gross,
        }],
    }
}

/// A subscriber `S{n}` with a panel account whose e-mail is confirmed or not.
async fn subscriber(db: &Db, n: u32, confirmed: bool) -> (i64, i64) {
    subscriber_with_login(db, n, &format!("Abonent{n}"), &format!("login{n}")).await;
    let sub = subscriber_by_ext_id(db, &format!("S{n}"))
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = db.begin().await.unwrap();
    let account = create_panel_account(
        &mut tx,
        sub,
        &format!("panel{n}"),
        "x",
        &format!("abonent{n}@example.pl"),
    )
    .await
    .unwrap();
    if confirmed {
        confirm_email(&mut tx, account).await.unwrap();
    }
    tx.commit().await.unwrap();
    (sub, account)
}

async fn scenario(db: &Db) {
    let due = date!(2026 - 03 - 15);
    let (_s1, _) = subscriber(db, 1, true).await;
    let (_s2, _) = subscriber(db, 2, false).await;
    let (_s3, account3) = subscriber(db, 3, true).await;
    let (_s4, _) = subscriber(db, 4, true).await;
    let mut tx = db.begin().await.unwrap();
    for rec in [
        invoice("1a", "S1", due, 123_456, InvoiceStatus::Issued),
        invoice(
            "1b",
            "S1",
            due + Duration::days(30),
            5_000,
            InvoiceStatus::Issued,
        ),
        invoice("1c", "S1", due, 5_000, InvoiceStatus::Paid),
        invoice("1d", "S1", due, 5_000, InvoiceStatus::Cancelled),
        invoice("2a", "S2", due, 5_000, InvoiceStatus::Issued),
        invoice("3a", "S3", due, 5_000, InvoiceStatus::Overdue),
        invoice("4a", "S4", due, 5_000, InvoiceStatus::Issued),
    ] {
        upsert_invoice(&mut tx, &rec).await.unwrap();
    }
    // S4 paid it (the billing system has not marked the invoice yet): covered.
    upsert_payment(
        &mut tx,
        &PaymentRecord {
            ext_id: "p4".into(),
            subscriber_ext_id: "S4".into(),
            paid_on: due,
            amount: Money::from_grosze(5_000),
            title: "FV/4a".into(),
            method: "przelew".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let numbers = |c: &[ReminderCandidate]| c.iter().map(|c| c.number.clone()).collect::<Vec<_>>();
    let found = reminder_candidates(db, ReminderKind::Before, due, due, 100)
        .await
        .unwrap();
    // Not: 1b (outside the window), 1c paid, 1d cancelled, 2a unconfirmed address,
    // 4a covered by the balance.
    assert_eq!(numbers(&found), ["FV/1a", "FV/3a"]);
    let first = &found[0];
    assert_eq!(first.emails, ["abonent1@example.pl"]);
    // S1's balance counts 1b and the paid 1c too (the payment of 1c is not in this data):
    // the reminder is for this invoice's gross.
    assert_eq!(first.balance, Money::from_grosze(-133_456));
    assert_eq!(first.amount(), Money::from_grosze(123_456));
    let partly = ReminderCandidate {
        balance: Money::from_grosze(-1_000),
        ..first.clone()
    };
    assert_eq!(partly.amount(), Money::from_grosze(1_000));

    // A disabled account gets nothing.
    let mut tx = db.begin().await.unwrap();
    set_disabled(&mut tx, account3, true).await.unwrap();
    tx.commit().await.unwrap();
    let found = reminder_candidates(db, ReminderKind::Before, due, due, 100)
        .await
        .unwrap();
    assert_eq!(numbers(&found), ["FV/1a"]);

    // Claimed once, by one of two racing callers; the other kind is separate.
    let id = first.invoice_id;
    let (a, b) = tokio::join!(
        claim_reminder(db, id, ReminderKind::Before),
        claim_reminder(db, id, ReminderKind::Before)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one claim wins");
    assert!(!claim_reminder(db, id, ReminderKind::Before).await.unwrap());
    assert!(reminder_candidates(db, ReminderKind::Before, due, due, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        numbers(
            &reminder_candidates(db, ReminderKind::After, due, due, 100)
                .await
                .unwrap()
        ),
        ["FV/1a"]
    );
    assert!(claim_reminder(db, id, ReminderKind::After).await.unwrap());
}

#[tokio::test]
async fn reminders_on_sqlite() {
    on_sqlite(scenario).await;
}

#[tokio::test]
async fn reminders_on_postgres() {
    on_postgres("store::reminders::tests::reminders_on_postgres", scenario).await;
}
