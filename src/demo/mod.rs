//! The demo ISP: a fixed, realistic Polish data set (the demo's subscriber Jan Kowalski and forty more
//! subscribers in and around Kraków, their contracts, PPPoE accounts, IPs, a year of invoices
//! and payments, services, news and FAQ) loaded through the store's own upserts, and a live
//! demo session sent as real signed Accounting-Requests through ebok's own RADIUS listener,
//! so that the panel on localhost recognises its visitor as Jan Kowalski; and one outage
//! notice on the demo NAS ([`notice`]), so that the banner shows on that line.
//!
//! The data depends only on the `today` given: the same day gives the same records (a
//! second load changes nothing), a later day adds the new months' invoices and moves
//! statuses on. Randomness comes from a fixed-seed SplitMix64 written out here rather than
//! `rand`'s `StdRng`, whose output may change between `rand` releases.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::{IpNet, Ipv6Net};
use md5::{Digest, Md5};
use time::{Date, Month, OffsetDateTime, Time};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::radius::event::StatusType;
use crate::radius::packet::{self, CODE_ACCOUNTING_RESPONSE, HEADER_LEN};
use crate::store::billing::{
    upsert_invoice, upsert_payment, InvoiceLine, InvoiceRecord, InvoiceStatus, PaymentRecord,
};
use crate::store::content::{
    upsert_faq, upsert_news, upsert_service, FaqRecord, NewsRecord, ServiceRecord,
};
use crate::store::money::{LineAmounts, Money, Quantity, VatRate};
use crate::store::repo::{StoreError, UpsertSummary};
use crate::store::subscribers::{
    upsert_contract, upsert_ip_assignment, upsert_pppoe_account, upsert_subscriber, Address,
    ContractRecord, ContractStatus, IpAssignmentRecord, IpKind, PppoeAccountRecord, SubscriberKind,
    SubscriberRecord,
};
use crate::store::validate::{Nip, Nrb, Pesel};
use crate::store::Db;

mod billing;
mod content;
mod customers;
mod documents;
pub mod notice;
mod radius_client;
mod reminder;
mod rng;

use self::billing::*;
use self::content::*;
use self::customers::*;
pub use self::documents::load_documents;
pub use self::radius_client::*;
pub use self::reminder::{load_reminder_account, reminders_config};
use self::rng::*;

/// PPPoE login of the demo's subscriber Jan Kowalski: the live demo session uses it.
pub const DEMO_LOGIN: &str = "jan.kowalski";
/// The demo ISP (seller on the invoices, issuer of the KSeF numbers).
pub const ISP_NAME: &str = "DemoNet sp. z o.o.";
/// The demo ISP's NIP (valid check digit; a Kraków tax-office prefix).
pub const ISP_NIP: &str = "6772445515";
/// The demo customer office, one set of details for the footer, the contact page and the
/// FAQ (not the street of any demo subscriber).
const OFFICE_ADDRESS: &str = "ul. Internetowa 10, 30-001 Kraków";
const OFFICE_HOURS: &str = "pon.–pt. 8:00–16:00, sob. 9:00–13:00";
const OFFICE_PHONE: &str = "12 345 67 89";
const OFFICE_EMAIL: &str = "bok@demonet.example";
const TECHNICAL_PHONE: &str = "12 345 67 90";
const TECHNICAL_HOURS: &str = "codziennie 8:00–22:00";

const SEED: u64 = 0x0e60_4b00_2013_0101;

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

/// What [`load`] loaded, and what the upserts did with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub subscribers: usize,
    pub contracts: usize,
    pub pppoe_accounts: usize,
    pub ip_assignments: usize,
    pub invoices: usize,
    pub invoice_lines: usize,
    pub payments: usize,
    pub services: usize,
    pub news: usize,
    pub faq: usize,
    /// Outcomes of every upsert: a second load for the same day is all `unchanged`.
    pub changes: UpsertSummary,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} subscribers, {} contracts, {} PPPoE accounts, {} IPs, {} invoices ({} lines), \
             {} payments, {} services, {} news, {} FAQ entries \
             (inserted {}, updated {}, unchanged {})",
            self.subscribers,
            self.contracts,
            self.pppoe_accounts,
            self.ip_assignments,
            self.invoices,
            self.invoice_lines,
            self.payments,
            self.services,
            self.news,
            self.faq,
            self.changes.inserted,
            self.changes.updated,
            self.changes.unchanged,
        )
    }
}

/// Load the demo ISP in one transaction (upserts by stable `demo-…` ext_ids). Records already
/// stored with the same values are left alone. Meant for an empty or demo database: a real
/// import holding the same contract or invoice numbers makes it fail with
/// [`StoreError::Duplicate`] and nothing is written.
pub async fn load(db: &Db, today: Date) -> Result<DemoSummary, StoreError> {
    let data = dataset(today);
    let mut changes = UpsertSummary::default();
    let mut tx = db.begin().await?;
    for r in &data.subscribers {
        changes.add(upsert_subscriber(&mut tx, r).await?);
    }
    for r in &data.contracts {
        changes.add(upsert_contract(&mut tx, r).await?);
    }
    for r in &data.pppoe_accounts {
        changes.add(upsert_pppoe_account(&mut tx, r).await?);
    }
    for r in &data.ip_assignments {
        changes.add(upsert_ip_assignment(&mut tx, r).await?);
    }
    for r in &data.invoices {
        changes.add(upsert_invoice(&mut tx, r).await?);
    }
    for r in &data.payments {
        changes.add(upsert_payment(&mut tx, r).await?);
    }
    for r in &data.services {
        changes.add(upsert_service(&mut tx, r).await?);
    }
    for r in &data.news {
        changes.add(upsert_news(&mut tx, r).await?);
    }
    for r in &data.faq {
        changes.add(upsert_faq(&mut tx, r).await?);
    }
    tx.commit().await?;
    notice::post_outage(db).await?;
    Ok(DemoSummary {
        subscribers: data.subscribers.len(),
        contracts: data.contracts.len(),
        pppoe_accounts: data.pppoe_accounts.len(),
        ip_assignments: data.ip_assignments.len(),
        invoices: data.invoices.len(),
        invoice_lines: data.invoices.iter().map(|i| i.lines.len()).sum(),
        payments: data.payments.len(),
        services: data.services.len(),
        news: data.news.len(),
        faq: data.faq.len(),
        changes,
    })
}

// ---------------------------------------------------------------------------------------------
// The data set
// ---------------------------------------------------------------------------------------------

/// The demo records, in the order they must be upserted (parents first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoData {
    pub subscribers: Vec<SubscriberRecord>,
    pub contracts: Vec<ContractRecord>,
    pub pppoe_accounts: Vec<PppoeAccountRecord>,
    pub ip_assignments: Vec<IpAssignmentRecord>,
    pub invoices: Vec<InvoiceRecord>,
    pub payments: Vec<PaymentRecord>,
    pub services: Vec<ServiceRecord>,
    pub news: Vec<NewsRecord>,
    pub faq: Vec<FaqRecord>,
}

/// The whole demo data set for `today` (a pure function: same day, same records).
pub fn dataset(today: Date) -> DemoData {
    let customers = customers();
    let (invoices, payments) = billing(&customers, today);
    let mut pppoe_accounts = Vec::new();
    for c in &customers {
        for (i, (login, password)) in c.logins.iter().enumerate() {
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("-{}", i + 1)
            };
            pppoe_accounts.push(PppoeAccountRecord {
                ext_id: format!("{}{suffix}", ext("ppp", c.n)),
                contract_ext_id: c.contract.ext_id.clone(),
                login: login.clone(),
                password: Some(password.clone()),
            });
        }
    }
    DemoData {
        subscribers: customers.iter().map(|c| c.subscriber.clone()).collect(),
        contracts: customers.iter().map(|c| c.contract.clone()).collect(),
        pppoe_accounts,
        ip_assignments: customers.iter().flat_map(|c| c.ips.clone()).collect(),
        invoices,
        payments,
        services: services(),
        news: news(today),
        faq: faq(),
    }
}

/// Today in Warsaw, the `today` [`load`] expects for a demo shown now.
pub fn warsaw_today() -> Date {
    crate::tz::warsaw_date(OffsetDateTime::now_utc())
}

/// The demo ISP's own details, used by `ebok run --demo` when `[isp]` is not configured.
pub fn isp() -> crate::config::IspConfig {
    crate::config::IspConfig {
        name: ISP_NAME.into(),
        nip: ISP_NIP.into(),
        office_phone: OFFICE_PHONE.into(),
        technical_phone: format!("{TECHNICAL_PHONE} ({TECHNICAL_HOURS})"),
        hours: OFFICE_HOURS.into(),
        address: OFFICE_ADDRESS.into(),
        email: OFFICE_EMAIL.into(),
        logo: None,
        // The demo's invoices never went to KSeF: their codes point at the test system.
        ksef_qr_host: "qr-test.ksef.mf.gov.pl".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use time::macros::date;

    use super::*;
    use crate::radius::decode::decode_event;
    use crate::radius::dict::Dictionary;
    use crate::radius::event::AccountingEvent;
    use crate::store::billing::{balance, invoice_for, invoices_of, payments_of};
    use crate::store::content::{active_services, faq as stored_faq};
    use crate::store::repo::Page;
    use crate::store::subscribers::{
        contracts_of, ip_assignments_by_address, subscriber_by_ext_id, subscriber_by_login,
    };

    const TODAY: Date = date!(2026 - 11 - 25);

    /// The FAQ's contact answer gives the office the footer and the contact page give.
    #[test]
    fn faq_and_footer_give_the_same_office() {
        let isp = isp();
        let data = dataset(TODAY);
        let answer = &data
            .faq
            .iter()
            .find(|f| f.question.contains("Biurem Obsługi Klienta"))
            .expect("a contact question")
            .answer_md;
        for detail in [
            &isp.address,
            &isp.hours,
            &isp.email,
            &isp.office_phone,
            &isp.technical_phone.replace(" (", ", ").replace(')', ""),
        ] {
            assert!(answer.contains(detail.as_str()), "{detail} not in {answer}");
        }
        // No demo subscriber lives at the office.
        assert!(data
            .subscribers
            .iter()
            .all(|s| !isp.address.starts_with(&format!("{},", s.home.street))));
    }

    #[test]
    fn the_data_set_is_fixed_and_consistent() {
        let a = dataset(TODAY);
        assert_eq!(a, dataset(TODAY), "same day, same data");
        assert_eq!(a.subscribers.len(), 41);
        assert_eq!(a.contracts.len(), 41);
        assert_eq!(a.subscribers.iter().filter(|s| s.nip.is_some()).count(), 5);
        // Identifiers are unique.
        let unique = |v: Vec<String>| {
            let n = v.len();
            assert_eq!(v.into_iter().collect::<HashSet<_>>().len(), n);
        };
        unique(
            a.subscribers
                .iter()
                .filter_map(|s| s.pesel.as_ref())
                .map(|p| p.as_str().to_owned())
                .collect(),
        );
        unique(
            a.subscribers
                .iter()
                .filter_map(|s| s.nip.as_ref())
                .map(|p| p.as_str().to_owned())
                .collect(),
        );
        unique(
            a.subscribers
                .iter()
                .filter_map(|s| s.bank_account.as_ref())
                .map(|p| p.as_str().to_owned())
                .collect(),
        );
        unique(a.contracts.iter().map(|c| c.number.clone()).collect());
        unique(a.pppoe_accounts.iter().map(|p| p.login.clone()).collect());
        unique(
            a.ip_assignments
                .iter()
                .map(|i| i.address.to_string())
                .collect(),
        );
        unique(a.invoices.iter().map(|i| i.number.clone()).collect());
        unique(a.invoices.iter().map(|i| i.ext_id.clone()).collect());
        for c in &a.contracts {
            c.check().unwrap();
            let fee = c.monthly_fee.grosze();
            assert!(
                (pln(50, 0)..=pln(120, 0)).contains(&fee),
                "{}: {fee}",
                c.number
            );
            assert!(c.number.starts_with("KR/"));
        }
        for i in &a.invoices {
            i.check().unwrap_or_else(|e| panic!("{}: {e}", i.number));
            assert_eq!(i.due_on - i.issued_on, time::Duration::days(14));
            assert_eq!(i.issued_on.day(), 1);
        }
        // Jan Kowalski holds the first contract of 2013.
        let jan = &a.contracts[0];
        assert_eq!(
            (jan.number.as_str(), jan.starts_on),
            ("KR/2013/0001", date!(2013 - 01 - 01))
        );
        assert!(a.contracts[1..].iter().all(|c| c.starts_on > jan.starts_on));
        // The first invoice of this month is Jan's.
        assert!(a
            .invoices
            .iter()
            .any(|i| i.number == "FV/2026/11/0001" && i.ext_id == "demo-inv-0001-2026-11"));
        // Some invoices reach KSeF, with well-formed numbers.
        let ksef: Vec<&str> = a
            .invoices
            .iter()
            .filter_map(|i| i.ksef_number.as_deref())
            .collect();
        assert!(!ksef.is_empty());
        for k in &ksef {
            assert_eq!(k.len(), 35, "{k}");
            assert!(k.starts_with(ISP_NIP));
            assert_eq!(crate::store::ksef::check_number(k), Ok(()));
        }
        // Company invoices carry FA(3) files that pass the store's checks, the current
        // month's without a KSeF number yet (OFFLINE).
        let with_xml: Vec<_> = a.invoices.iter().filter(|i| i.ksef_xml.is_some()).collect();
        assert!(with_xml.len() > ksef.len(), "{} files", with_xml.len());
        assert!(with_xml.iter().any(|i| i.ksef_number.is_none()));
        for i in with_xml {
            let facts = crate::store::ksef::check_record(i)
                .expect("FA(3) file")
                .expect("facts");
            assert_eq!(facts.seller_nip, ISP_NIP);
        }
        assert!(Nip::with_check_digit(&ISP_NIP[..9]).is_some_and(|n| n.as_str() == ISP_NIP));
    }

    #[test]
    fn month_arithmetic() {
        assert_eq!(month_start(2026, 11, -11), date!(2025 - 12 - 01));
        assert_eq!(month_start(2026, 1, -1), date!(2025 - 12 - 01));
        assert_eq!(month_start(2025, 3, 24), date!(2027 - 03 - 01));
        assert_eq!(fold("Łukasz.Wiśniewski-Żak"), "lukasz.wisniewski-zak");
    }

    // -----------------------------------------------------------------------------------------
    // Loading into both backends
    // -----------------------------------------------------------------------------------------

    async fn check_load(db: &Db) {
        let first = load(db, TODAY).await.expect("first load");
        let records = first.subscribers
            + first.contracts
            + first.pppoe_accounts
            + first.ip_assignments
            + first.invoices
            + first.payments
            + first.services
            + first.news
            + first.faq;
        assert_eq!(first.changes.inserted as usize, records, "{first}");
        assert_eq!(first.subscribers, 41);
        assert!(first.invoices >= 41 * 11, "{first}");

        let second = load(db, TODAY).await.expect("second load");
        assert_eq!(second.changes.unchanged as usize, records, "{second}");
        assert_eq!((second.changes.inserted, second.changes.updated), (0, 0));

        // Jan Kowalski, as the panel finds him through his PPPoE login.
        let (jan, contract) = subscriber_by_login(db, DEMO_LOGIN)
            .await
            .unwrap()
            .expect("Jan");
        assert_eq!(jan.display_name(), "Jan Kowalski");
        assert_eq!(jan.home.to_string(), "ul. Internetowa 1, 30-001 Kraków");
        assert_eq!(jan.pesel.as_ref().map(Pesel::as_str), Some("44051401359"));
        assert_eq!(jan.email.as_deref(), Some("jan.kowalski@example.pl"));
        assert!(jan.bank_account.is_some());
        assert_eq!(contract.number, "KR/2013/0001");
        assert_eq!(contract.monthly_fee, "50,00".parse::<Money>().unwrap());
        assert_eq!(contract.monthly_fee.to_string(), "50,00\u{a0}zł");
        assert_eq!(contract.starts_on, date!(2013 - 01 - 01));
        assert_eq!(contract.installation.city, "Kraków");
        let local = ip_assignments_by_address(db, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .unwrap();
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].contract_id, contract.id);

        // Jan owes exactly this month's invoice.
        let jan_invoices = invoices_of(db, jan.id, Page::first(500)).await.unwrap();
        assert_eq!(jan_invoices.total, 12);
        let newest = &jan_invoices.items[0];
        assert_eq!(newest.number, "FV/2026/11/0001");
        assert_eq!(newest.status, InvoiceStatus::Overdue); // due 15.11, today 25.11
        assert!(jan_invoices.items[1..]
            .iter()
            .all(|i| i.status == InvoiceStatus::Paid));
        assert_eq!(balance(db, jan.id).await.unwrap(), -newest.gross);
        assert_eq!(newest.gross, Money::from_zloty(50));

        // Every subscriber: invoice totals match their lines, statuses match the payments.
        let mut owing = 0;
        for n in 1..=41 {
            let s = subscriber_by_ext_id(db, &ext("sub", n))
                .await
                .unwrap()
                .expect("stored");
            assert_eq!(contracts_of(db, s.id).await.unwrap().len(), 1);
            let invoices = invoices_of(db, s.id, Page::first(500)).await.unwrap();
            let mut unpaid = Money::ZERO;
            for inv in &invoices.items {
                let (stored, lines) = invoice_for(db, s.id, inv.id).await.unwrap().expect("own");
                assert!(!lines.is_empty());
                assert_eq!(stored.net, lines.iter().map(|l| l.net).sum::<Money>());
                assert_eq!(stored.vat, lines.iter().map(|l| l.vat).sum::<Money>());
                assert_eq!(stored.gross, lines.iter().map(|l| l.gross).sum::<Money>());
                assert_eq!(stored.gross, stored.net + stored.vat);
                if stored.status != InvoiceStatus::Paid {
                    unpaid += stored.gross;
                }
                if stored.status == InvoiceStatus::Overdue {
                    assert!(stored.due_on < TODAY);
                }
            }
            let paid = payments_of(db, s.id, Page::first(500)).await.unwrap();
            assert!(paid.items.iter().all(|p| p.paid_on <= TODAY));
            assert_eq!(balance(db, s.id).await.unwrap(), -unpaid, "subscriber {n}");
            if unpaid > Money::ZERO {
                owing += 1;
            }
        }
        assert!((3..=12).contains(&owing), "{owing} subscribers owe money");

        assert_eq!(stored_faq(db).await.unwrap().len(), 8);
        assert_eq!(active_services(db).await.unwrap().len(), 4);

        // Documents: a regulamin and a cennik for everyone, Jan's umowa for him; once.
        assert_eq!(load_documents(db).await.unwrap(), 3);
        assert_eq!(load_documents(db).await.unwrap(), 0);
        let docs = crate::store::documents::visible_documents(db, Some(jan.id))
            .await
            .unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[2].title.contains(&contract.number), "{docs:?}");
        let general = crate::store::documents::visible_documents(db, None)
            .await
            .unwrap();
        assert_eq!(general.len(), 2);
        let (_, pdf) = crate::store::documents::visible_pdf(db, general[0].id, None)
            .await
            .unwrap()
            .unwrap();
        assert!(crate::store::documents::check_pdf(&pdf).is_ok());
    }

    #[tokio::test]
    async fn demo_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("demo.sqlite").display());
        let db = Db::connect(&url).await.unwrap();
        check_load(&db).await;
        // A later day adds the new month and moves statuses on, without clashes.
        let later = load(&db, date!(2027 - 01 - 03)).await.expect("later load");
        assert!(
            later.changes.inserted > 0 && later.changes.updated > 0,
            "{later}"
        );
    }

    #[tokio::test]
    async fn demo_postgresql() {
        let Some(pg) = crate::testkit::FreshPg::create("demo_postgresql").await else {
            return;
        };
        let db = Db::connect(&pg.url)
            .await
            .expect("connect to the fresh database");
        check_load(&db).await;
        if let Db::Postgres(pool) = db {
            pool.close().await;
        }
        pg.drop_db().await;
    }

    // -----------------------------------------------------------------------------------------
    // The live session against a tiny responder
    // -----------------------------------------------------------------------------------------

    const SECRET: &[u8] = b"demo-secret";

    /// A stand-in for ebok's listener: verifies and decodes every request, answers unless
    /// `drop_first` (then the first request is ignored, to exercise the retry), and hands
    /// the raw requests and their events to the test.
    async fn responder(
        answer_with: &'static [u8],
        drop_first: bool,
    ) -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<(Vec<u8>, AccountingEvent)>,
    ) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = 0;
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let request = buf[..len].to_vec();
                packet::verify_accounting_request(&request, SECRET)
                    .expect("signed with the secret");
                let event = decode_event(
                    &request,
                    from.ip(),
                    "demo",
                    OffsetDateTime::now_utc(),
                    Dictionary::builtin(),
                )
                .expect("decodes");
                seen += 1;
                let answer = !(drop_first && seen == 1);
                if tx.send((request.clone(), event)).is_err() {
                    return;
                }
                if answer {
                    let reply = packet::accounting_response(&request, answer_with, false);
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn live_session_start_is_signed_retried_and_answered() {
        let (addr, mut rx) = responder(SECRET, true).await;
        send_live_session(addr, SECRET, Ipv4Addr::LOCALHOST, DEMO_LOGIN)
            .await
            .expect("answered on the second try");
        let (first, e) = rx.recv().await.unwrap();
        let (again, _) = rx.recv().await.unwrap();
        assert_eq!(first, again, "a retry is a byte-identical retransmission");
        assert_eq!(e.status, StatusType::Start);
        assert_eq!(e.session_id, "demo-127.0.0.1");
        assert_eq!(e.user_name.as_deref(), Some(DEMO_LOGIN));
        assert_eq!(e.framed_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            e.framed_ipv6_prefixes,
            vec!["::1/128".parse::<Ipv6Net>().unwrap()]
        );
        assert_eq!(e.nas_ip_address, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(e.nas, "127.0.0.1");
        assert_eq!(e.calling_station_id.as_deref(), Some(DEMO_MAC));
        assert_eq!(e.source, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let now = OffsetDateTime::now_utc();
        assert!((now - e.event_time).whole_seconds().abs() < 10);
    }

    #[tokio::test]
    async fn other_address_has_no_ipv6_and_wildcard_means_loopback() {
        let (addr, mut rx) = responder(SECRET, false).await;
        let wildcard = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
        let ip = Ipv4Addr::new(100, 64, 0, 12);
        send_live_session(wildcard, SECRET, ip, "anna.nowak")
            .await
            .unwrap();
        let (_, e) = rx.recv().await.unwrap();
        assert_eq!(e.framed_ip, Some(ip));
        assert_eq!(e.session_id, "demo-100.64.0.12");
        assert!(e.framed_ipv6_prefixes.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_is_an_error() {
        // Bound and silent.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let e = send_live_session(addr, SECRET, Ipv4Addr::LOCALHOST, DEMO_LOGIN)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(silent);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_with_another_secret_is_ignored() {
        let (addr, _rx) = responder(b"not-the-secret", false).await;
        let e = send_live_session(addr, SECRET, Ipv4Addr::LOCALHOST, DEMO_LOGIN)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn keep_alive_sends_growing_interims_until_shutdown() {
        let (addr, mut rx) = responder(SECRET, false).await;
        let (stop, stopped) = watch::channel(false);
        let secret: Arc<[u8]> = Arc::from(SECRET);
        let task = tokio::spawn(async move {
            keep_alive(
                addr,
                &secret,
                Ipv4Addr::LOCALHOST,
                DEMO_LOGIN,
                Duration::from_millis(600),
                stopped,
            )
            .await
        });
        let mut events = Vec::new();
        while events.len() < 2 {
            let (_, e) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("an interim in time")
                .unwrap();
            events.push(e);
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("keep_alive stops")
            .unwrap();
        for e in &events {
            assert_eq!(e.status, StatusType::InterimUpdate);
            assert_eq!(e.session_id, "demo-127.0.0.1");
            assert_eq!(e.user_name.as_deref(), Some(DEMO_LOGIN));
            assert_eq!(e.framed_ip, Some(Ipv4Addr::LOCALHOST));
        }
        // 0.6 s and 1.2 s in: whole seconds 0 and 1.
        assert!(
            events[1].output_octets > events[0].output_octets,
            "{events:?}"
        );
        assert!(events[1].input_octets > events[0].input_octets);
        assert!(events[1].session_time > events[0].session_time);
    }

    #[test]
    fn counters_fold_into_gigawords() {
        let c = Counters::after(Duration::from_secs(20_000));
        assert_eq!(c.output_octets, 5_000_000_000);
        let a = attributes(
            StatusType::InterimUpdate,
            Ipv4Addr::LOCALHOST,
            DEMO_LOGIN,
            2_000_000_000,
            Duration::from_secs(60),
            Some(c),
        );
        let request = packet::build_accounting_request(7, SECRET, &a, true);
        let e = decode_event(
            &request,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "demo",
            OffsetDateTime::now_utc(),
            Dictionary::builtin(),
        )
        .unwrap();
        assert_eq!(e.output_octets, 5_000_000_000);
        assert_eq!(e.session_time, Some(20_000));
    }
}
