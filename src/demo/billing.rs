//! A year of invoices (with KSeF numbers from their start) and payments of the demo's
//! subscribers, some late, some in debt.

use super::*;

pub(super) const MONTHS: [&str; 12] = [
    "styczeń",
    "luty",
    "marzec",
    "kwiecień",
    "maj",
    "czerwiec",
    "lipiec",
    "sierpień",
    "wrzesień",
    "październik",
    "listopad",
    "grudzień",
];

/// A KSeF number in the system's shape: seller's NIP, acceptance date, 12 hex digits (the
/// technical part, fixed per subscriber and month here), CRC-8 of the 32 characters before.
pub(super) fn ksef_number(n: u32, accepted: Date) -> String {
    let mut rng = Rng::keyed(&[
        u64::from(n),
        accepted.year() as u64,
        u64::from(u8::from(accepted.month())),
        0x4b53_4546,
    ]);
    crate::store::ksef::with_checksum(&format!(
        "{ISP_NIP}-{:04}{:02}{:02}-{:012X}",
        accepted.year(),
        u8::from(accepted.month()),
        accepted.day(),
        rng.next() & 0xffff_ffff_ffff
    ))
}

/// The FA(3) file of a company's invoice `rec` (seller: the demo ISP), written on its
/// issue day at 07:00 UTC.
fn fa3_file(c: &Customer, rec: &InvoiceRecord) -> Option<String> {
    use crate::store::ksef::{fa3_xml, Party};
    let nip = c.subscriber.nip.as_ref()?;
    let (street, city) = OFFICE_ADDRESS.split_once(", ")?;
    let seller = Party {
        nip: ISP_NIP,
        name: ISP_NAME,
        street,
        city,
    };
    let home = &c.subscriber.home;
    let buyer_city = format!("{} {}", home.postcode, home.city);
    let buyer = Party {
        nip: nip.as_str(),
        name: c.subscriber.company_name.as_deref().unwrap_or_default(),
        street: &home.street,
        city: &buyer_city,
    };
    let created = rec.issued_on.with_hms(7, 0, 0).ok()?.assume_utc();
    Some(fa3_xml(rec, &seller, &buyer, created))
}

/// Business invoices go through KSeF from April 2026 (small firms' start date).
pub(super) fn ksef_since() -> Date {
    date(2026, 4, 1)
}

/// When the invoice of `months_ago` (0 = the current month) is paid, if at all — regardless
/// of `today`, which only hides payments not yet made.
pub(super) fn payment_day(c: &Customer, issued: Date, due: Date, months_ago: i32) -> Option<Date> {
    let mut rng = Rng::keyed(&[
        u64::from(c.n),
        issued.year() as u64,
        u64::from(u8::from(issued.month())),
    ]);
    let days = |d: u64| time::Duration::days(d as i64);
    match c.payer {
        Payer::CurrentUnpaid if months_ago == 0 => None,
        Payer::CurrentUnpaid => Some(issued + days(1 + rng.below(14))),
        Payer::Punctual if rng.chance(4) => Some(due + days(1 + rng.below(10))),
        Payer::Punctual => Some(issued + days(1 + rng.below(14))),
        Payer::Late => Some(due + days(3 + rng.below(23))),
        Payer::Debtor { unpaid } if months_ago < unpaid as i32 => None,
        Payer::Debtor { .. } => Some(due + days(5 + rng.below(30))),
    }
}

pub(super) fn line(position: u32, name: String, gross: i64) -> InvoiceLine {
    let quantity = Quantity::ONE;
    let unit_gross = Money::from_grosze(gross);
    let a = LineAmounts::from_gross(quantity, unit_gross, VatRate::R23);
    let (unit_net, _) = VatRate::R23.split_gross(unit_gross);
    InvoiceLine {
        position,
        name,
        unit: "mies.".into(),
        quantity,
        unit_net,
        net: a.net,
        vat_rate: VatRate::R23,
        vat: a.vat,
        gross: a.gross,
    }
}

/// Days from an invoice's issue (the 1st of the month) to its due date.
pub(super) const DAYS_TO_PAY: u8 = 14;

/// Twelve monthly invoices (the current month and eleven before it, issued on the 1st, due
/// 14 days later) for every contract running then, numbered `FV/<year>/<month>/<nnnn>` in
/// subscriber order, and the payments made by `today`.
pub(super) fn billing(
    customers: &[Customer],
    today: Date,
) -> (Vec<InvoiceRecord>, Vec<PaymentRecord>) {
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    let (year, month) = (today.year(), u8::from(today.month()));
    for months_ago in (0..12).rev() {
        let issued = month_start(year, month, -months_ago);
        let (y, m) = (issued.year(), u8::from(issued.month()));
        let period = format!("{} {y}", MONTHS[usize::from(m) - 1]);
        let due = issued + time::Duration::days(i64::from(DAYS_TO_PAY));
        let mut seq = 0;
        for c in customers.iter().filter(|c| c.contract.starts_on <= issued) {
            seq += 1;
            let number = format!("FV/{y}/{m:02}/{seq:04}");
            let mut lines = vec![line(
                1,
                format!("Abonament {} – {period}", c.tariff.name),
                c.tariff.fee,
            )];
            for (i, e) in c.extras.iter().enumerate() {
                lines.push(line(
                    i as u32 + 2,
                    format!("{} – {period}", e.name),
                    e.price,
                ));
            }
            let net = lines.iter().map(|l| l.net).sum();
            let vat = lines.iter().map(|l| l.vat).sum();
            let gross: Money = lines.iter().map(|l| l.gross).sum();
            let paid_on = payment_day(c, issued, due, months_ago).filter(|d| *d <= today);
            let status = match paid_on {
                Some(_) => InvoiceStatus::Paid,
                None if due < today => InvoiceStatus::Overdue,
                None => InvoiceStatus::Issued,
            };
            // Company invoices go to KSeF as FA(3) files; this month's is still waiting for
            // its KSeF number (its code reads OFFLINE).
            let in_ksef = c.subscriber.kind == SubscriberKind::Company && issued >= ksef_since();
            let ksef_number = (in_ksef && months_ago > 0).then(|| ksef_number(c.n, issued));
            let key = format!("{:04}-{y}-{m:02}", c.n);
            if let Some(paid_on) = paid_on {
                payments.push(PaymentRecord {
                    ext_id: format!("demo-pay-{key}"),
                    subscriber_ext_id: c.subscriber.ext_id.clone(),
                    paid_on,
                    amount: gross,
                    title: format!("Faktura {number}"),
                    method: if c.cash { "gotówka" } else { "przelew" }.into(),
                });
            }
            let mut rec = InvoiceRecord {
                ext_id: format!("demo-inv-{key}"),
                subscriber_ext_id: c.subscriber.ext_id.clone(),
                number,
                issued_on: issued,
                sold_on: issued,
                due_on: due,
                net,
                vat,
                gross,
                status,
                ksef_number,
                lines,
                ksef_xml: None,
            };
            if in_ksef {
                rec.ksef_xml = fa3_file(c, &rec);
            }
            invoices.push(rec);
        }
    }
    (invoices, payments)
}
