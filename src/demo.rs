//! The demo ISP: a fixed, realistic Polish data set (the seed's Jan Kowalski and forty more
//! subscribers in and around Kraków, their contracts, PPPoE accounts, IPs, a year of invoices
//! and payments, services, news and FAQ) loaded through the store's own upserts, and a live
//! demo session sent as real signed Accounting-Requests through ebok's own RADIUS listener,
//! so that the panel on localhost recognises its visitor as Jan Kowalski.
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

/// PPPoE login of the seed's example subscriber, Jan Kowalski: the live demo session uses it.
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

/// SplitMix64: tiny, fixed forever, good enough for demo data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent stream for a key (subscriber, month …).
    fn keyed(parts: &[u64]) -> Rng {
        let mut r = Rng::new(SEED);
        for p in parts {
            r.0 ^= p.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            r.next();
        }
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// An amount in grosze, written as złoty and grosze.
const fn pln(zloty: i64, grosze: i64) -> i64 {
    zloty * 100 + grosze
}

struct Tariff {
    name: &'static str,
    down_kbps: u32,
    up_kbps: u32,
    /// Monthly fee, gross (VAT included), in grosze.
    fee: i64,
}

const TARIFFS: [Tariff; 5] = [
    Tariff {
        name: "Internet 100",
        down_kbps: 100_000,
        up_kbps: 20_000,
        fee: pln(50, 0),
    },
    Tariff {
        name: "Internet 300",
        down_kbps: 300_000,
        up_kbps: 50_000,
        fee: pln(59, 99),
    },
    Tariff {
        name: "Internet 600",
        down_kbps: 600_000,
        up_kbps: 100_000,
        fee: pln(74, 99),
    },
    Tariff {
        name: "Światłowód 1 Gb/s",
        down_kbps: 1_000_000,
        up_kbps: 300_000,
        fee: pln(94, 99),
    },
    Tariff {
        name: "Biznes 500",
        down_kbps: 500_000,
        up_kbps: 500_000,
        fee: pln(120, 0),
    },
];

/// A monthly service billed on its own invoice line; the names match the catalogue.
#[derive(Clone, Copy)]
struct Extra {
    name: &'static str,
    /// Gross, in grosze.
    price: i64,
}

const PUBLIC_IP: Extra = Extra {
    name: "Publiczny adres IP",
    price: pln(10, 0),
};
const TV: Extra = Extra {
    name: "Telewizja – Pakiet Podstawowy",
    price: pln(29, 99),
};
const SPEED_UP: Extra = Extra {
    name: "Zwiększenie prędkości +300 Mb/s",
    price: pln(15, 0),
};
const ROUTER: Extra = Extra {
    name: "Router Wi-Fi 6 (dzierżawa)",
    price: pln(5, 0),
};
const SECOND_LINE: Extra = Extra {
    name: "Dodatkowe łącze (filia)",
    price: pln(60, 0),
};

/// How a subscriber pays.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Payer {
    /// Within the 14 days, now and then a few days late.
    Punctual,
    /// Always 3–25 days after the due date.
    Late,
    /// Pays late, and the newest `unpaid` invoices not at all.
    Debtor { unpaid: u32 },
    /// Jan Kowalski: every invoice on time except the current month's, so the panel shows an
    /// amount due.
    CurrentUnpaid,
}

struct Customer {
    n: u32,
    subscriber: SubscriberRecord,
    contract: ContractRecord,
    tariff: &'static Tariff,
    /// (login, password)
    logins: Vec<(String, String)>,
    ips: Vec<IpAssignmentRecord>,
    extras: Vec<Extra>,
    payer: Payer,
    /// Pays cash at the office instead of by transfer.
    cash: bool,
}

fn ext(kind: &str, n: u32) -> String {
    format!("demo-{kind}-{n:04}")
}

/// `ł` → `l`, `Ż` → `z` …: ASCII lower case for logins and e-mail addresses.
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ą' | 'Ą' => 'a',
            'ć' | 'Ć' => 'c',
            'ę' | 'Ę' => 'e',
            'ł' | 'Ł' => 'l',
            'ń' | 'Ń' => 'n',
            'ó' | 'Ó' => 'o',
            'ś' | 'Ś' => 's',
            'ź' | 'Ź' | 'ż' | 'Ż' => 'z',
            c => c.to_ascii_lowercase(),
        })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect()
}

fn date(year: i32, month: u8, day: u8) -> Date {
    let month = Month::try_from(month).expect("month 1–12");
    Date::from_calendar_date(year, month, day).expect("a valid demo date")
}

/// The first day of the month `k` months after (year, month); `k` may be negative.
fn month_start(year: i32, month: u8, k: i32) -> Date {
    let index = year * 12 + i32::from(month) - 1 + k;
    date(index.div_euclid(12), (index.rem_euclid(12) + 1) as u8, 1)
}

/// Each subscriber's individual (virtual) account at the ISP's made-up bank: sort code
/// 1999 001 7 (bank 1999, branch 001, its own check digit 7), ISP client number 4610, then
/// the subscriber number.
fn virtual_account(n: u32) -> Nrb {
    Nrb::from_bban(&format!("19990017{}{n:012}", "4610")).expect("24 digits")
}

fn password(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..10).map(|_| char::from(*rng.pick(ALPHABET))).collect()
}

const STREETS: &[(&str, &str, &str)] = &[
    ("ul. Długa", "31-146", "Kraków"),
    ("ul. Karmelicka", "31-128", "Kraków"),
    ("ul. Józefa Dietla", "31-070", "Kraków"),
    ("ul. Krowoderska", "31-141", "Kraków"),
    ("ul. Grzegórzecka", "31-530", "Kraków"),
    ("ul. Zakopiańska", "30-418", "Kraków"),
    ("ul. Kalwaryjska", "30-504", "Kraków"),
    ("ul. Wielicka", "30-552", "Kraków"),
    ("ul. Lubicz", "31-503", "Kraków"),
    ("ul. Mogilska", "31-545", "Kraków"),
    ("os. Centrum A", "31-923", "Kraków"),
    ("os. Teatralne", "31-948", "Kraków"),
    ("ul. Bora-Komorowskiego", "31-876", "Kraków"),
    ("ul. Pachońskiego", "31-223", "Kraków"),
    ("ul. Królewska", "30-081", "Kraków"),
    ("ul. Czarnowiejska", "30-054", "Kraków"),
    ("ul. Lucjana Rydla", "30-087", "Kraków"),
    ("ul. Bronowicka", "30-084", "Kraków"),
    ("ul. Armii Krajowej", "30-150", "Kraków"),
    ("ul. Balicka", "30-149", "Kraków"),
    ("ul. Wadowicka", "30-415", "Kraków"),
    ("ul. Kapelanka", "30-347", "Kraków"),
    ("ul. Ruczaj", "30-409", "Kraków"),
    ("ul. Nowosądecka", "30-383", "Kraków"),
    ("ul. Wincentego Witosa", "30-612", "Kraków"),
    ("ul. Dobrego Pasterza", "31-416", "Kraków"),
    ("ul. Prądnicka", "31-202", "Kraków"),
    ("ul. Opolska", "31-323", "Kraków"),
    ("ul. Słowackiego", "32-020", "Wieliczka"),
    ("ul. Krakowska", "32-050", "Skawina"),
    ("ul. Kościuszki", "32-005", "Niepołomice"),
    ("ul. Krakowska", "32-087", "Zielonki"),
];

fn address(rng: &mut Rng) -> Address {
    let (street, postcode, city) = *rng.pick(STREETS);
    let number = 1 + rng.below(120);
    let street = if street.starts_with("os.") {
        format!("{street} {number}/{}", 1 + rng.below(60))
    } else if rng.chance(50) {
        format!("{street} {number}/{}", 1 + rng.below(40))
    } else {
        format!("{street} {number}")
    };
    Address {
        street,
        postcode: postcode.to_owned(),
        city: city.to_owned(),
    }
}

/// (first name, last name, female)
const PEOPLE: &[(&str, &str, bool)] = &[
    ("Anna", "Nowak", true),
    ("Piotr", "Wiśniewski", false),
    ("Katarzyna", "Wójcik", true),
    ("Tomasz", "Kowalczyk", false),
    ("Małgorzata", "Kamińska", true),
    ("Krzysztof", "Lewandowski", false),
    ("Agnieszka", "Zielińska", true),
    ("Andrzej", "Szymański", false),
    ("Barbara", "Woźniak", true),
    ("Paweł", "Dąbrowski", false),
    ("Ewa", "Kozłowska", true),
    ("Michał", "Jankowski", false),
    ("Magdalena", "Mazur", true),
    ("Marcin", "Kwiatkowski", false),
    ("Joanna", "Krawczyk", true),
    ("Grzegorz", "Piotrowski", false),
    ("Zofia", "Grabowska", true),
    ("Łukasz", "Nowakowski", false),
    ("Elżbieta", "Pawłowska", true),
    ("Jakub", "Michalski", false),
    ("Aleksandra", "Nowicka", true),
    ("Stanisław", "Adamczyk", false),
    ("Monika", "Dudek", true),
    ("Rafał", "Zając", false),
    ("Beata", "Wieczorek", true),
    ("Wojciech", "Jabłoński", false),
    ("Dorota", "Król", true),
    ("Kamil", "Majewski", false),
    ("Natalia", "Olszewska", true),
    ("Tadeusz", "Jaworski", false),
    ("Krystyna", "Wróbel", true),
    ("Mateusz", "Malinowski", false),
    ("Julia", "Pawlak", true),
    ("Zbigniew", "Witkowski", false),
    ("Maria", "Walczak", true),
];

/// (name, login and e-mail slug)
const COMPANIES: &[(&str, &str)] = &[
    ("Biuro Rachunkowe Bilans sp. z o.o.", "bilans"),
    ("Piekarnia Złoty Kłos s.c.", "zloty-klos"),
    ("Kancelaria Adwokacka Ewa Stępień", "kancelaria-stepien"),
    ("Auto-Serwis Górski sp.j.", "autoserwis-gorski"),
    ("Przychodnia Stomatologiczna Uśmiech sp. z o.o.", "usmiech"),
];

/// Subscriber numbers (1 = Jan Kowalski) of the late payers, the debtors and the cash payers.
const LATE: &[u32] = &[6, 13, 20, 29, 34, 39];
const DEBTORS: &[(u32, u32)] = &[(9, 3), (24, 2)];
const CASH: &[u32] = &[4, 17, 31];
/// The company with a branch: a second PPPoE line and IP at another address.
const WITH_BRANCH: u32 = 41;

fn ipv6_prefix(n: u32) -> IpNet {
    // 2001:db8:1000::/40 carved into /56s, one per subscriber.
    let hextet3 = 0x1000 + (n >> 8) as u16;
    let hextet4 = ((n & 0xff) << 8) as u16;
    let addr = Ipv6Addr::new(0x2001, 0xdb8, hextet3, hextet4, 0, 0, 0, 0);
    IpNet::V6(Ipv6Net::new(addr, 56).expect("56 is a valid length"))
}

fn host(ip: Ipv4Addr) -> IpNet {
    IpNet::from(IpAddr::V4(ip))
}

fn ip_record(
    n: u32,
    k: u32,
    address: IpNet,
    kind: IpKind,
    activated_on: Date,
    installation: Option<Address>,
) -> IpAssignmentRecord {
    IpAssignmentRecord {
        ext_id: format!("{}-{k}", ext("ip", n)),
        contract_ext_id: ext("con", n),
        address,
        kind,
        activated_on: Some(activated_on),
        installation,
    }
}

/// IPv6 arrived in the demo network in mid-2019.
fn ipv6_since(start: Date) -> Date {
    start.max(date(2019, 6, 1))
}

fn jan_kowalski(rng: &mut Rng) -> Customer {
    let n = 1;
    let home = Address {
        street: "ul. Internetowa 1".into(),
        postcode: "30-001".into(),
        city: "Kraków".into(),
    };
    let tariff = &TARIFFS[0];
    let start = date(2013, 1, 1);
    Customer {
        n,
        subscriber: SubscriberRecord {
            ext_id: ext("sub", n),
            kind: SubscriberKind::Person,
            first_name: Some("Jan".into()),
            last_name: Some("Kowalski".into()),
            company_name: None,
            pesel: Some("44051401359".parse().expect("a valid PESEL")),
            nip: None,
            home: home.clone(),
            correspondence: None,
            phone: Some("+48 600 000 001".into()),
            email: Some("jan.kowalski@example.pl".into()),
            bank_account: Some(virtual_account(n)),
        },
        // The seed shows 2013-01-01 – 2013-12-31: that was the first, fixed term; the
        // contract then went on for an indefinite time, as Polish contracts do unless the
        // subscriber objects, so it is stored open-ended.
        contract: ContractRecord {
            ext_id: ext("con", n),
            subscriber_ext_id: ext("sub", n),
            number: String::new(), // numbered with the others
            starts_on: start,
            ends_on: None,
            monthly_fee: Money::from_grosze(tariff.fee),
            tariff: tariff.name.into(),
            download_kbps: tariff.down_kbps,
            upload_kbps: tariff.up_kbps,
            installation: home,
            status: ContractStatus::Active,
        },
        tariff,
        logins: vec![(DEMO_LOGIN.into(), password(rng))],
        ips: vec![
            // The machine's own loopback, so the panel on localhost recognises the visitor.
            ip_record(n, 1, host(Ipv4Addr::LOCALHOST), IpKind::Static, start, None),
            // The public-looking address (RFC 5737 documentation range), included in the old
            // contract's fee.
            ip_record(
                n,
                2,
                host(Ipv4Addr::new(192, 0, 2, 10)),
                IpKind::Static,
                start,
                None,
            ),
            ip_record(
                n,
                3,
                ipv6_prefix(n),
                IpKind::Static,
                ipv6_since(start),
                None,
            ),
        ],
        extras: Vec::new(),
        payer: Payer::CurrentUnpaid,
        cash: false,
    }
}

fn payer_of(n: u32) -> Payer {
    if LATE.contains(&n) {
        Payer::Late
    } else if let Some((_, unpaid)) = DEBTORS.iter().find(|(d, _)| *d == n) {
        Payer::Debtor { unpaid: *unpaid }
    } else {
        Payer::Punctual
    }
}

fn contract_start(rng: &mut Rng) -> Date {
    let year = 2013 + rng.below(13) as i32; // 2013–2025
    let month = if year == 2013 {
        2 + rng.below(11) // after Jan Kowalski, the first subscriber
    } else {
        1 + rng.below(12)
    };
    date(year, month as u8, 1)
}

/// New contracts since 2025 run for a fixed 24 months; older ones went on indefinitely.
fn contract_end(start: Date) -> Option<Date> {
    (start.year() >= 2025).then(|| {
        month_start(start.year(), u8::from(start.month()), 24)
            .previous_day()
            .expect("not the first day ever")
    })
}

fn person(rng: &mut Rng, n: u32, first: &str, last: &str, female: bool) -> Customer {
    let birth = date(
        1940 + rng.below(56) as i32,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    );
    let pesel = Pesel::from_parts(birth, rng.below(1000) as u16, female).expect("1940–1995");
    let home = address(rng);
    let correspondence = rng.chance(10).then(|| address(rng));
    let email = rng
        .chance(85)
        .then(|| format!("{}.{}@example.pl", fold(first), fold(last)));
    let start = contract_start(rng);
    let tariff = &TARIFFS[*rng.pick(&[0usize, 0, 1, 1, 1, 2, 2, 3])];
    let mut extras = Vec::new();
    let public_ip = rng.chance(20);
    if public_ip {
        extras.push(PUBLIC_IP);
    }
    if rng.chance(15) {
        extras.push(TV);
    }
    if tariff.down_kbps < 600_000 && rng.chance(10) {
        extras.push(SPEED_UP);
    }
    if rng.chance(25) {
        extras.push(ROUTER);
    }
    let v4 = if public_ip {
        (
            host(Ipv4Addr::new(198, 51, 100, 10 + n as u8)),
            IpKind::Static,
        )
    } else {
        // Carrier-grade NAT (RFC 6598): handed out from the pool.
        (
            host(Ipv4Addr::new(
                100,
                64,
                (n / 200) as u8,
                10 + (n % 200) as u8,
            )),
            IpKind::Pool,
        )
    };
    Customer {
        n,
        subscriber: SubscriberRecord {
            ext_id: ext("sub", n),
            kind: SubscriberKind::Person,
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            company_name: None,
            pesel: Some(pesel),
            nip: None,
            home: home.clone(),
            correspondence,
            phone: Some(format!("+48 600 000 {n:03}")),
            email,
            bank_account: Some(virtual_account(n)),
        },
        contract: ContractRecord {
            ext_id: ext("con", n),
            subscriber_ext_id: ext("sub", n),
            number: String::new(),
            starts_on: start,
            ends_on: contract_end(start),
            monthly_fee: Money::from_grosze(tariff.fee),
            tariff: tariff.name.into(),
            download_kbps: tariff.down_kbps,
            upload_kbps: tariff.up_kbps,
            installation: home,
            status: ContractStatus::Active,
        },
        tariff,
        logins: vec![(format!("{}.{}", fold(first), fold(last)), password(rng))],
        ips: vec![
            ip_record(n, 1, v4.0, v4.1, start, None),
            ip_record(
                n,
                2,
                ipv6_prefix(n),
                IpKind::Static,
                ipv6_since(start),
                None,
            ),
        ],
        extras,
        payer: payer_of(n),
        cash: CASH.contains(&n),
    }
}

fn company(rng: &mut Rng, n: u32, name: &str, slug: &str) -> Customer {
    let nip = loop {
        let prefix = rng.pick(&["675", "676", "677", "678", "679", "944", "945"]);
        if let Some(nip) = Nip::with_check_digit(&format!("{prefix}{:06}", rng.below(1_000_000))) {
            break nip;
        }
    };
    let office = address(rng);
    let start = contract_start(rng);
    let tariff = &TARIFFS[*rng.pick(&[3usize, 4, 4])];
    let mut logins = vec![(slug.to_owned(), password(rng))];
    // Business tariffs include a public address (RFC 5737 documentation range).
    let mut ips = vec![
        ip_record(
            n,
            1,
            host(Ipv4Addr::new(203, 0, 113, 10 + n as u8)),
            IpKind::Static,
            start,
            None,
        ),
        ip_record(
            n,
            2,
            ipv6_prefix(n),
            IpKind::Static,
            ipv6_since(start),
            None,
        ),
    ];
    let mut extras = Vec::new();
    if n == WITH_BRANCH {
        let branch = address(rng);
        let since = month_start(start.year(), u8::from(start.month()), 18);
        logins.push((format!("{slug}-filia"), password(rng)));
        ips.push(ip_record(
            n,
            3,
            host(Ipv4Addr::new(203, 0, 113, 100 + n as u8)),
            IpKind::Static,
            since,
            Some(branch),
        ));
        extras.push(SECOND_LINE);
    }
    Customer {
        n,
        subscriber: SubscriberRecord {
            ext_id: ext("sub", n),
            kind: SubscriberKind::Company,
            first_name: None,
            last_name: None,
            company_name: Some(name.into()),
            pesel: None,
            nip: Some(nip),
            home: office.clone(),
            correspondence: None,
            phone: Some(format!("+48 12 000 01 {n:02}")),
            email: Some(format!("{slug}@example.pl")),
            bank_account: Some(virtual_account(n)),
        },
        contract: ContractRecord {
            ext_id: ext("con", n),
            subscriber_ext_id: ext("sub", n),
            number: String::new(),
            starts_on: start,
            ends_on: contract_end(start),
            monthly_fee: Money::from_grosze(tariff.fee),
            tariff: tariff.name.into(),
            download_kbps: tariff.down_kbps,
            upload_kbps: tariff.up_kbps,
            installation: office,
            status: ContractStatus::Active,
        },
        tariff,
        logins,
        ips,
        extras,
        payer: payer_of(n),
        cash: false,
    }
}

/// Everyone, with contract numbers `KR/<year>/<nnnn>` in order of signing within each year.
fn customers() -> Vec<Customer> {
    let mut rng = Rng::new(SEED);
    let mut all = vec![jan_kowalski(&mut rng)];
    for (i, (first, last, female)) in PEOPLE.iter().enumerate() {
        all.push(person(&mut rng, i as u32 + 2, first, last, *female));
    }
    let base = all.len() as u32 + 1;
    for (i, (name, slug)) in COMPANIES.iter().enumerate() {
        all.push(company(&mut rng, base + i as u32, name, slug));
    }
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| (all[i].contract.starts_on, all[i].n));
    let mut seq = 0;
    let mut year = 0;
    for i in order {
        let start = all[i].contract.starts_on.year();
        if start != year {
            (year, seq) = (start, 0);
        }
        seq += 1;
        all[i].contract.number = format!("KR/{year}/{seq:04}");
    }
    all
}

const MONTHS: [&str; 12] = [
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

/// CRC-8 (polynomial 0x07, initial value 0) as KSeF uses for the last two characters of its
/// invoice numbers.
fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// A KSeF number in the system's shape: seller's NIP, acceptance date, 12 hex digits (the
/// technical part, fixed per subscriber and month here), CRC-8 of the 32 characters before.
fn ksef_number(n: u32, accepted: Date) -> String {
    let mut rng = Rng::keyed(&[
        u64::from(n),
        accepted.year() as u64,
        u64::from(u8::from(accepted.month())),
        0x4b53_4546,
    ]);
    let data = format!(
        "{ISP_NIP}-{:04}{:02}{:02}-{:012X}",
        accepted.year(),
        u8::from(accepted.month()),
        accepted.day(),
        rng.next() & 0xffff_ffff_ffff
    );
    format!("{data}-{:02X}", crc8(data.as_bytes()))
}

/// Business invoices go through KSeF from April 2026 (small firms' start date).
fn ksef_since() -> Date {
    date(2026, 4, 1)
}

/// When the invoice of `months_ago` (0 = the current month) is paid, if at all — regardless
/// of `today`, which only hides payments not yet made.
fn payment_day(c: &Customer, issued: Date, due: Date, months_ago: i32) -> Option<Date> {
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

fn line(position: u32, name: String, gross: i64) -> InvoiceLine {
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

/// Twelve monthly invoices (the current month and eleven before it, issued on the 1st, due
/// 14 days later) for every contract running then, numbered `FV/<year>/<month>/<nnnn>` in
/// subscriber order, and the payments made by `today`.
fn billing(customers: &[Customer], today: Date) -> (Vec<InvoiceRecord>, Vec<PaymentRecord>) {
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    let (year, month) = (today.year(), u8::from(today.month()));
    for months_ago in (0..12).rev() {
        let issued = month_start(year, month, -months_ago);
        let (y, m) = (issued.year(), u8::from(issued.month()));
        let period = format!("{} {y}", MONTHS[usize::from(m) - 1]);
        let due = issued + time::Duration::days(14);
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
            let ksef_number = (c.subscriber.kind == SubscriberKind::Company
                && issued >= ksef_since())
            .then(|| ksef_number(c.n, issued));
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
            invoices.push(InvoiceRecord {
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
            });
        }
    }
    (invoices, payments)
}

fn services() -> Vec<ServiceRecord> {
    let s = |id: &str, name: &str, description: &str, price: i64, active: bool| ServiceRecord {
        ext_id: format!("demo-svc-{id}"),
        name: name.into(),
        description: description.into(),
        price: Money::from_grosze(price),
        active,
    };
    vec![
        s(
            "public-ip",
            PUBLIC_IP.name,
            "Stały, publiczny adres IPv4 zamiast adresu z puli — dla kamer, serwera domowego \
             i zdalnego dostępu. Opłata miesięczna.",
            PUBLIC_IP.price,
            true,
        ),
        s(
            "tv",
            TV.name,
            "Ponad 80 kanałów telewizji cyfrowej na dekoderze IPTV lub w aplikacji, w tym \
             20 w jakości HD. Opłata miesięczna, dekoder w cenie.",
            TV.price,
            true,
        ),
        s(
            "speed-up",
            SPEED_UP.name,
            "Dodatkowe 300 Mb/s do pobierania w Twoim obecnym pakiecie, bez zmiany umowy. \
             Opłata miesięczna.",
            SPEED_UP.price,
            true,
        ),
        s(
            "router",
            ROUTER.name,
            "Dwupasmowy router Wi-Fi 6 skonfigurowany przez nas do Twojego łącza, z wymianą \
             w razie awarii. Opłata miesięczna.",
            ROUTER.price,
            true,
        ),
        s(
            "voip",
            "Telefon VoIP",
            "Numer stacjonarny z abonamentem na rozmowy krajowe. Usługa wycofana z oferty.",
            pln(9, 99),
            false,
        ),
    ]
}

/// Published at 08:00 UTC `days_ago` days before `today`.
fn news(today: Date) -> Vec<NewsRecord> {
    let at = |days_ago: i64| {
        (today - time::Duration::days(days_ago))
            .with_time(Time::from_hms(8, 0, 0).expect("08:00"))
            .assume_utc()
    };
    let works = today + time::Duration::days(6);
    let works_end = works.next_day().expect("a later day");
    let n = |i: u32, days_ago: i64, title: &str, body: String| NewsRecord {
        ext_id: format!("demo-news-{i}"),
        title: title.into(),
        body_md: body,
        published_at: at(days_ago),
    };
    vec![
        n(
            1,
            2,
            "Nowy panel klienta e-BOK",
            "Oddajemy do Państwa dyspozycji nowy **panel klienta e-BOK**. Znajdą w nim \
             Państwo:\n\n\
             - dane umowy, abonament i adresy IP przypisane do łącza,\n\
             - ustawienia PPPoE do konfiguracji routera,\n\
             - faktury i płatności wraz z aktualnym saldem,\n\
             - zgodę na **e-Fakturę** i faktury do wydruku,\n\
             - kontakt z Biurem Obsługi Klienta.\n\n\
             Aby założyć konto, wybierz **Logowanie do panelu → Rejestracja** — \
             z własnego łącza w naszej sieci. Szczegóły w [FAQ](/faq)."
                .into(),
        ),
        n(
            2,
            5,
            "Planowane prace serwisowe",
            format!(
                "W nocy z **{} na {}**, w godzinach **1.00–4.00**, przeprowadzimy prace \
                 modernizacyjne sieci szkieletowej na Krowodrzy i w Bronowicach. W tym \
                 czasie możliwe są krótkie, kilkuminutowe przerwy w dostępie do \
                 Internetu.\n\nZa utrudnienia przepraszamy.",
                crate::tz::format_date(works),
                crate::tz::format_date(works_end)
            ),
        ),
        n(
            3,
            30,
            "Szybszy Internet w tej samej cenie",
            "Od tego miesiąca pakiet **Internet 300** ma prędkość pobierania **300 Mb/s** \
             i wysyłania **50 Mb/s**, a **Internet 600** — **600 / 100 Mb/s**. Zmiana \
             następuje automatycznie, bez aneksu do umowy i bez zmiany abonamentu.\n\n\
             Jeżeli po zmianie prędkość nie wzrosła, uruchom ponownie router."
                .into(),
        ),
        n(
            4,
            75,
            "e-Faktura — wygodniej i bez papieru",
            "Zamiast papierowej faktury pocztą możesz otrzymywać **e-Fakturę**: dostępną \
             w panelu zaraz po wystawieniu, do pobrania i wydruku w każdej chwili.\n\n\
             Zgodę wyrazisz w panelu w zakładce **e-Faktury**; możesz ją też w każdej \
             chwili wycofać."
                .into(),
        ),
        n(
            5,
            120,
            "Faktury dla firm w KSeF",
            "Faktury dla klientów biznesowych wystawiamy w **Krajowym Systemie e-Faktur \
             (KSeF)**. Numer KSeF każdej faktury widać w panelu przy fakturze. Klienci \
             indywidualni otrzymują faktury jak dotychczas."
                .into(),
        ),
    ]
}

fn faq() -> Vec<FaqRecord> {
    let q = |position: i64, question: &str, answer: &str| FaqRecord {
        ext_id: format!("demo-faq-{position}"),
        question: question.into(),
        answer_md: answer.into(),
        position,
    };
    vec![
        q(
            1,
            "Jak zarejestrować się w panelu klienta?",
            "Rejestracja jest możliwa **tylko z Twojego łącza** w naszej sieci — panel \
             rozpoznaje łącze, z którego się łączysz.\n\n\
             1. Połącz się z Internetem przez swoje łącze (router lub komputer w domu).\n\
             2. Wybierz **Logowanie do panelu → Rejestracja**.\n\
             3. Wymyśl identyfikator i hasło, podaj adres e-mail, numer **PESEL** (firmy: \
             **NIP**) i **numer umowy**, np. `KR/2013/0001`.\n\
             4. Kliknij **Zatwierdź**.\n\n\
             Dane te służą tylko do sprawdzenia, że jesteś stroną umowy, i nie są nigdzie \
             publikowane. Od tej chwili logujesz się swoim identyfikatorem i hasłem.",
        ),
        q(
            2,
            "Nie pamiętam hasła ani identyfikatora. Co zrobić?",
            "Wybierz **Przywracanie dostępu** i wpisz adres e-mail podany przy \
             rejestracji — wyślemy na niego Twój identyfikator i link do ustawienia nowego \
             hasła. Jeśli nie masz już dostępu do tej skrzynki, skontaktuj się z Biurem \
             Obsługi Klienta.",
        ),
        q(
            3,
            "Jak skonfigurować router (PPPoE)?",
            "W ustawieniach WAN routera wybierz typ połączenia **PPPoE** i wpisz:\n\n\
             | Ustawienie | Wartość |\n\
             | --- | --- |\n\
             | Nazwa użytkownika | login PPPoE z panelu, np. `jan.kowalski` |\n\
             | Hasło | hasło PPPoE z panelu (zakładka **PPPoE**) |\n\
             | MTU | 1492 |\n\
             | IPv6 | DHCPv6-PD (prefiks /56) |\n\n\
             Adres IP i serwery DNS router otrzyma automatycznie.",
        ),
        q(
            4,
            "Jak opłacić fakturę?",
            "Najwygodniej przelewem na **Twój indywidualny numer rachunku** — znajdziesz go \
             w panelu w zakładce **Płatności** i na każdej fakturze. Wpłaty na ten rachunek \
             księgujemy automatycznie, więc tytuł przelewu może być dowolny.\n\n\
             Termin płatności to **14 dni** od daty wystawienia faktury. Można też zapłacić \
             gotówką lub kartą w Biurze Obsługi Klienta.",
        ),
        q(
            5,
            "Co to jest e-Faktura i jak ją włączyć?",
            "e-Faktura to faktura w formie elektronicznej, dostępna w panelu zaraz po \
             wystawieniu. Zgodę na jej otrzymywanie wyrażasz w zakładce **e-Faktury**; \
             zapisujemy datę i treść zgody. Zgodę możesz w każdej chwili wycofać — wtedy \
             wrócimy do faktur papierowych.",
        ),
        q(
            6,
            "Gdzie sprawdzę swój adres IP?",
            "W zakładce **Adres IP** panelu: adresy przypisane do umowy, data aktywacji \
             i adres instalacji. Publiczny, stały adres IPv4 można zamówić w zakładce \
             **Zamawianie usług**.",
        ),
        q(
            7,
            "Jak zmienić pakiet albo zamówić dodatkową usługę?",
            "Wybierz **Zamawianie usług**, wskaż usługę i wyślij zamówienie. Skontaktujemy \
             się, aby potwierdzić termin. Zmiana pakietu na szybszy nie wymaga wizyty \
             technika.",
        ),
        q(
            8,
            "Jak skontaktować się z Biurem Obsługi Klienta?",
            // The same details as the footer and the contact page (`isp()`).
            &format!(
                "**Biuro Obsługi Klienta** — {OFFICE_ADDRESS}, {OFFICE_HOURS}, \
                 tel. {OFFICE_PHONE}, e-mail {OFFICE_EMAIL}.\n\n\
                 **Serwis techniczny** — tel. {TECHNICAL_PHONE}, {TECHNICAL_HOURS}.\n\n\
                 Po zalogowaniu możesz też napisać do nas z zakładki **Kontakt** w panelu."
            ),
        ),
    ]
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

// ---------------------------------------------------------------------------------------------
// The live demo session
// ---------------------------------------------------------------------------------------------

/// RADIUS attribute types the demo NAS sends (RFC 2865, 2866, 2869, 3162).
mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_PROTOCOL: u8 = 7;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
}

/// Tries per request, and how long to wait for each answer.
const TRIES: u32 = 3;
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// Acct-Interim-Interval announced in the Start (ebok's default `[sessions] interim_interval`;
/// informative only: ebok takes the interval from its NAS configuration).
const START_INTERIM: Duration = Duration::from_secs(300);
/// The demo router's MAC: from the range RFC 7042 reserves for documentation.
const DEMO_MAC: &str = "00-00-5E-00-53-01";
/// Made-up average traffic of the demo line, octets per second.
const DOWNLOAD_RATE: u64 = 250_000;
const UPLOAD_RATE: u64 = 40_000;

/// Acct-Session-Id of the demo session for `ip`.
pub fn session_id(ip: Ipv4Addr) -> String {
    format!("demo-{ip}")
}

/// Traffic so far, from the NAS's point of view (input = from the subscriber).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    session_time: u32,
    input_octets: u64,
    output_octets: u64,
    input_packets: u64,
    output_packets: u64,
}

impl Counters {
    fn after(elapsed: Duration) -> Counters {
        let secs = elapsed.as_secs();
        let (input_octets, output_octets) = (secs * UPLOAD_RATE, secs * DOWNLOAD_RATE);
        Counters {
            session_time: u32::try_from(secs).unwrap_or(u32::MAX),
            input_octets,
            output_octets,
            input_packets: input_octets / 400,
            output_packets: output_octets / 1200,
        }
    }
}

fn u32_attr(t: u8, v: u32) -> (u8, Vec<u8>) {
    (t, v.to_be_bytes().to_vec())
}

/// The attributes of a demo Accounting-Request: Start (no counters) or Interim-Update.
fn attributes(
    status: StatusType,
    ip: Ipv4Addr,
    login: &str,
    event_time: u32,
    interim: Duration,
    counters: Option<Counters>,
) -> Vec<(u8, Vec<u8>)> {
    let mut a = vec![
        u32_attr(attr::ACCT_STATUS_TYPE, status.code()),
        (attr::ACCT_SESSION_ID, session_id(ip).into_bytes()),
        (attr::USER_NAME, login.as_bytes().to_vec()),
        u32_attr(attr::SERVICE_TYPE, 2),    // Framed
        u32_attr(attr::FRAMED_PROTOCOL, 1), // PPP
        (attr::FRAMED_IP_ADDRESS, ip.octets().to_vec()),
    ];
    if ip.is_loopback() {
        // A browser on this machine may come from ::1: give the session that too. RFC 3162:
        // reserved octet, prefix length, prefix.
        let mut prefix = vec![0, 128];
        prefix.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        a.push((attr::FRAMED_IPV6_PREFIX, prefix));
    }
    a.extend([
        (attr::NAS_IP_ADDRESS, Ipv4Addr::LOCALHOST.octets().to_vec()),
        (attr::NAS_IDENTIFIER, b"ebok-demo".to_vec()),
        u32_attr(attr::NAS_PORT_TYPE, 15), // Ethernet (PPPoE)
        (attr::CALLING_STATION_ID, DEMO_MAC.as_bytes().to_vec()),
        u32_attr(attr::EVENT_TIMESTAMP, event_time),
        u32_attr(attr::ACCT_DELAY_TIME, 0),
        u32_attr(
            attr::ACCT_INTERIM_INTERVAL,
            u32::try_from(interim.as_secs()).unwrap_or(u32::MAX),
        ),
    ]);
    if let Some(c) = counters {
        let low = |v: u64| (v & 0xffff_ffff) as u32;
        let high = |v: u64| (v >> 32) as u32;
        a.extend([
            u32_attr(attr::ACCT_SESSION_TIME, c.session_time),
            u32_attr(attr::ACCT_INPUT_OCTETS, low(c.input_octets)),
            u32_attr(attr::ACCT_INPUT_GIGAWORDS, high(c.input_octets)),
            u32_attr(attr::ACCT_OUTPUT_OCTETS, low(c.output_octets)),
            u32_attr(attr::ACCT_OUTPUT_GIGAWORDS, high(c.output_octets)),
            u32_attr(attr::ACCT_INPUT_PACKETS, low(c.input_packets)),
            u32_attr(attr::ACCT_OUTPUT_PACKETS, low(c.output_packets)),
        ]);
    }
    a
}

fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Where to send: a wildcard listen address (`0.0.0.0`, `::`) means this machine's IPv4
/// loopback, the address the NAS table knows the demo NAS by.
fn target_of(radius: SocketAddr) -> SocketAddr {
    if radius.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, radius.port()))
    } else {
        radius
    }
}

/// A socket sending from the loopback when the target is local, so the source address is
/// the demo NAS's 127.0.0.1 (or ::1).
async fn socket_for(target: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match target.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(v6) if v6.is_loopback() => Ipv6Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    UdpSocket::bind(SocketAddr::new(local, 0)).await
}

/// True when `reply` is the Accounting-Response to `request`, signed with `secret`
/// (RFC 2866 §3: MD5 over the reply with the request's authenticator, then the secret).
fn is_response_to(reply: &[u8], request: &[u8], secret: &[u8]) -> bool {
    let Ok(reply) = packet::frame(reply) else {
        return false;
    };
    if reply[0] != CODE_ACCOUNTING_RESPONSE || reply[1] != request[1] {
        return false;
    }
    let mut md5 = Md5::new();
    md5.update(&reply[..4]);
    md5.update(&request[4..HEADER_LEN]);
    md5.update(&reply[HEADER_LEN..]);
    md5.update(secret);
    md5.finalize()[..] == reply[4..HEADER_LEN]
}

/// Send `request` and wait for its Accounting-Response: [`TRIES`] times the same bytes (a
/// retransmission, which ebok's duplicate cache answers without processing twice), each
/// waiting [`REPLY_TIMEOUT`].
async fn exchange(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &[u8],
    secret: &[u8],
) -> io::Result<()> {
    let mut buf = vec![0u8; packet::MAX_LEN + 1];
    for _ in 0..TRIES {
        socket.send_to(request, target).await?;
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(Ok((len, _))) => {
                    if is_response_to(&buf[..len], request, secret) {
                        return Ok(());
                    }
                }
                // An ICMP port unreachable, where the platform reports one: nobody listens
                // yet; wait out this try.
                Ok(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no Accounting-Response from {target} after {TRIES} tries: is ebok listening \
             there, is the sender's address a configured NAS and the secret its secret?"
        ),
    ))
}

/// Start the demo session: a signed Accounting-Request Start for `login` on `ip`
/// (Acct-Session-Id `demo-<ip>`, NAS-IP-Address 127.0.0.1, for a loopback `ip` also
/// Framed-IPv6-Prefix `::1/128`) sent to ebok's own RADIUS listener at `radius`, from the
/// loopback. `secret` is the one the NAS table gives 127.0.0.1. Errors when no valid
/// Accounting-Response comes after three tries of one second.
pub async fn send_live_session(
    radius: SocketAddr,
    secret: &[u8],
    ip: Ipv4Addr,
    login: &str,
) -> io::Result<()> {
    let target = target_of(radius);
    let socket = socket_for(target).await?;
    let attrs = attributes(
        StatusType::Start,
        ip,
        login,
        unix_now(),
        START_INTERIM,
        None,
    );
    let request = packet::build_accounting_request(rand::random(), secret, &attrs, true);
    exchange(&socket, target, &request, secret).await
}

/// Keep the demo session alive: an Interim-Update for the session [`send_live_session`]
/// started, every `every` (use at most the NAS's interim interval, so the session never
/// reaches its 2 × interim + grace expiry), with counters growing as if the line carried
/// traffic, until `shutdown` turns true or its sender is dropped. A lost update is logged
/// and the next one tried; no Stop is sent at shutdown (the session expires on its own).
///
/// To spawn it, own the borrowed arguments:
/// `tokio::spawn(async move { demo::keep_alive(addr, &secret, ip, &login, every, rx).await })`.
pub async fn keep_alive(
    radius: SocketAddr,
    secret: &[u8],
    ip: Ipv4Addr,
    login: &str,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let target = target_of(radius);
    let socket = match socket_for(target).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "demo: no socket for Interim-Updates; the demo session will expire");
            return;
        }
    };
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(started + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut identifier: u8 = rand::random();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = ticks.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        identifier = identifier.wrapping_add(1);
        let attrs = attributes(
            StatusType::InterimUpdate,
            ip,
            login,
            unix_now(),
            every,
            Some(Counters::after(started.elapsed())),
        );
        let request = packet::build_accounting_request(identifier, secret, &attrs, true);
        tokio::select! {
            sent = exchange(&socket, target, &request, secret) => {
                if let Err(e) = sent {
                    tracing::warn!(error = %e, session = %session_id(ip), "demo: Interim-Update not answered");
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
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
        for k in ksef {
            assert_eq!(k.len(), 35, "{k}");
            assert!(k.starts_with(ISP_NIP));
            assert_eq!(format!("{:02X}", crc8(&k.as_bytes()[..32])), &k[33..]);
        }
        assert!(Nip::with_check_digit(&ISP_NIP[..9]).is_some_and(|n| n.as_str() == ISP_NIP));
    }

    #[test]
    fn ksef_checksum_matches_the_published_example() {
        assert_eq!(crc8(b"5265877635-20250826-0100001AF629"), 0xAF);
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
