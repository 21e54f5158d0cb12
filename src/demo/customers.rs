//! The demo's subscribers: tariffs and extras, people and companies, their addresses,
//! contracts, PPPoE logins and IPs.

use super::*;

/// An amount in grosze, written as złoty and grosze.
pub(super) const fn pln(zloty: i64, grosze: i64) -> i64 {
    zloty * 100 + grosze
}

pub(super) struct Tariff {
    pub(super) name: &'static str,
    pub(super) down_kbps: u32,
    pub(super) up_kbps: u32,
    /// Monthly fee, gross (VAT included), in grosze.
    pub(super) fee: i64,
}

pub(super) const TARIFFS: [Tariff; 5] = [
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
pub(super) struct Extra {
    pub(super) name: &'static str,
    /// Gross, in grosze.
    pub(super) price: i64,
}

pub(super) const PUBLIC_IP: Extra = Extra {
    name: "Publiczny adres IP",
    price: pln(10, 0),
};
pub(super) const TV: Extra = Extra {
    name: "Telewizja – Pakiet Podstawowy",
    price: pln(29, 99),
};
pub(super) const SPEED_UP: Extra = Extra {
    name: "Zwiększenie prędkości +300 Mb/s",
    price: pln(15, 0),
};
pub(super) const ROUTER: Extra = Extra {
    name: "Router Wi-Fi 6 (dzierżawa)",
    price: pln(5, 0),
};
pub(super) const SECOND_LINE: Extra = Extra {
    name: "Dodatkowe łącze (filia)",
    price: pln(60, 0),
};

/// How a subscriber pays.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Payer {
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

pub(super) struct Customer {
    pub(super) n: u32,
    pub(super) subscriber: SubscriberRecord,
    pub(super) contract: ContractRecord,
    pub(super) tariff: &'static Tariff,
    /// (login, password)
    pub(super) logins: Vec<(String, String)>,
    pub(super) ips: Vec<IpAssignmentRecord>,
    pub(super) extras: Vec<Extra>,
    pub(super) payer: Payer,
    /// Pays cash at the office instead of by transfer.
    pub(super) cash: bool,
}

pub(super) fn ext(kind: &str, n: u32) -> String {
    format!("demo-{kind}-{n:04}")
}

/// `ł` → `l`, `Ż` → `z` …: ASCII lower case for logins and e-mail addresses.
pub(super) fn fold(s: &str) -> String {
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

pub(super) fn date(year: i32, month: u8, day: u8) -> Date {
    let month = Month::try_from(month).expect("month 1–12");
    Date::from_calendar_date(year, month, day).expect("a valid demo date")
}

/// The first day of the month `k` months after (year, month); `k` may be negative.
pub(super) fn month_start(year: i32, month: u8, k: i32) -> Date {
    let index = year * 12 + i32::from(month) - 1 + k;
    date(index.div_euclid(12), (index.rem_euclid(12) + 1) as u8, 1)
}

/// Each subscriber's individual (virtual) account at the ISP's made-up bank: sort code
/// 1999 001 7 (bank 1999, branch 001, its own check digit 7), ISP client number 4610, then
/// the subscriber number.
pub(super) fn virtual_account(n: u32) -> Nrb {
    Nrb::from_bban(&format!("19990017{}{n:012}", "4610")).expect("24 digits")
}

pub(super) fn password(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..10).map(|_| char::from(*rng.pick(ALPHABET))).collect()
}

pub(super) const STREETS: &[(&str, &str, &str)] = &[
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

pub(super) fn address(rng: &mut Rng) -> Address {
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
pub(super) const PEOPLE: &[(&str, &str, bool)] = &[
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
pub(super) const COMPANIES: &[(&str, &str)] = &[
    ("Biuro Rachunkowe Bilans sp. z o.o.", "bilans"),
    ("Piekarnia Złoty Kłos s.c.", "zloty-klos"),
    ("Kancelaria Adwokacka Ewa Stępień", "kancelaria-stepien"),
    ("Auto-Serwis Górski sp.j.", "autoserwis-gorski"),
    ("Przychodnia Stomatologiczna Uśmiech sp. z o.o.", "usmiech"),
];

/// Subscriber numbers (1 = Jan Kowalski) of the late payers, the debtors and the cash payers.
pub(super) const LATE: &[u32] = &[6, 13, 20, 29, 34, 39];
pub(super) const DEBTORS: &[(u32, u32)] = &[(9, 3), (24, 2)];
pub(super) const CASH: &[u32] = &[4, 17, 31];
/// The company with a branch: a second PPPoE line and IP at another address.
pub(super) const WITH_BRANCH: u32 = 41;

pub(super) fn ipv6_prefix(n: u32) -> IpNet {
    // 2001:db8:1000::/40 carved into /56s, one per subscriber.
    let hextet3 = 0x1000 + (n >> 8) as u16;
    let hextet4 = ((n & 0xff) << 8) as u16;
    let addr = Ipv6Addr::new(0x2001, 0xdb8, hextet3, hextet4, 0, 0, 0, 0);
    IpNet::V6(Ipv6Net::new(addr, 56).expect("56 is a valid length"))
}

pub(super) fn host(ip: Ipv4Addr) -> IpNet {
    IpNet::from(IpAddr::V4(ip))
}

pub(super) fn ip_record(
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
pub(super) fn ipv6_since(start: Date) -> Date {
    start.max(date(2019, 6, 1))
}

pub(super) fn jan_kowalski(rng: &mut Rng) -> Customer {
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
        // Jan Kowalski's first contract ran 2013-01-01 – 2013-12-31, a fixed term; the
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

pub(super) fn payer_of(n: u32) -> Payer {
    if LATE.contains(&n) {
        Payer::Late
    } else if let Some((_, unpaid)) = DEBTORS.iter().find(|(d, _)| *d == n) {
        Payer::Debtor { unpaid: *unpaid }
    } else {
        Payer::Punctual
    }
}

pub(super) fn contract_start(rng: &mut Rng) -> Date {
    let year = 2013 + rng.below(13) as i32; // 2013–2025
    let month = if year == 2013 {
        2 + rng.below(11) // after Jan Kowalski, the first subscriber
    } else {
        1 + rng.below(12)
    };
    date(year, month as u8, 1)
}

/// New contracts since 2025 run for a fixed 24 months; older ones went on indefinitely.
pub(super) fn contract_end(start: Date) -> Option<Date> {
    (start.year() >= 2025).then(|| {
        month_start(start.year(), u8::from(start.month()), 24)
            .previous_day()
            .expect("not the first day ever")
    })
}

pub(super) fn person(rng: &mut Rng, n: u32, first: &str, last: &str, female: bool) -> Customer {
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

pub(super) fn company(rng: &mut Rng, n: u32, name: &str, slug: &str) -> Customer {
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
pub(super) fn customers() -> Vec<Customer> {
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
