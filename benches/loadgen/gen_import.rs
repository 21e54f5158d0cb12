//! `gen-import`: import files of a large ISP.

use super::*;

pub(super) const FIRST_NAMES: [&str; 8] = [
    "Jan",
    "Anna",
    "Piotr",
    "Katarzyna",
    "Tomasz",
    "Małgorzata",
    "Paweł",
    "Agnieszka",
];
pub(super) const LAST_NAMES: [&str; 8] = [
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
];
pub(super) const STREETS: [&str; 6] = [
    "ul. Internetowa",
    "ul. Floriańska",
    "ul. Długa",
    "ul. Karmelicka",
    "os. Centrum",
    "al. Pokoju",
];
pub(super) const TARIFFS: [(&str, i64, u32, u32); 3] = [
    ("Światłowód 150 Mb/s", 5000, 150_000, 30_000),
    ("Światłowód 300 Mb/s", 6900, 300_000, 60_000),
    ("Światłowód 600 Mb/s", 8900, 600_000, 100_000),
];

/// Writes the import files as a stream: memory does not depend on `--subscribers`.
pub(super) fn gen_import(args: GenImportArgs) -> anyhow::Result<()> {
    use ebok::store::money::{LineAmounts, Money, Quantity, VatRate};
    use ebok::store::validate::Pesel;
    use std::io::{BufWriter, Write};
    use time::{Date, Month};

    if !(1..=12).contains(&args.months) {
        bail!("--months must be 1..=12");
    }
    fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let open = |name: &str| -> anyhow::Result<BufWriter<fs::File>> {
        let path = args.dir.join(name);
        let f = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(BufWriter::with_capacity(1 << 16, f))
    };
    let mut subs = open("subscribers.csv")?;
    let mut contracts = open("contracts.csv")?;
    let mut pppoe = open("pppoe-accounts.csv")?;
    let mut ips = open("ips.csv")?;
    let mut invoices = open("invoices.csv")?;
    let mut payments = open("payments.csv")?;
    writeln!(
        subs,
        "ext_id;kind;first_name;last_name;company_name;pesel;nip;home_street;home_postcode;\
         home_city;correspondence_street;correspondence_postcode;correspondence_city;phone;\
         email;bank_account"
    )?;
    writeln!(
        contracts,
        "ext_id;subscriber_ext_id;number;starts_on;ends_on;monthly_fee;tariff;download_kbps;\
         upload_kbps;installation_street;installation_postcode;installation_city;status"
    )?;
    writeln!(pppoe, "ext_id;contract_ext_id;login;password")?;
    writeln!(ips, "ext_id;contract_ext_id;address;kind;activated_on")?;
    writeln!(
        invoices,
        "ext_id;subscriber_ext_id;number;issued_on;sold_on;due_on;net;vat;gross;status;\
         ksef_number;line_position;line_name;line_unit;line_quantity;line_unit_net;line_net;\
         line_vat_rate;line_vat;line_gross"
    )?;
    writeln!(
        payments,
        "ext_id;subscriber_ext_id;paid_on;amount;title;method"
    )?;
    let epoch = Date::from_calendar_date(1950, Month::January, 1)?;
    let first_month = 13 - args.months;
    for i in 0..args.subscribers {
        let n = u64::from(i) + 1;
        let birth = epoch + time::Duration::days(i64::from(i % 20_000));
        let female = i % 2 == 1;
        let pesel = Pesel::from_parts(birth, (i / 20_000 % 1000) as u16, female)
            .context("PESEL out of range")?;
        let first = FIRST_NAMES[(i % 8) as usize];
        let last = LAST_NAMES[(i / 8 % 8) as usize];
        let last = if female {
            last.replace("ski", "ska")
        } else {
            last.to_owned()
        };
        let street = format!("{} {}", STREETS[(i % 6) as usize], i % 150 + 1);
        let postcode = format!("30-{:03}", i % 1000);
        writeln!(
            subs,
            "K-{n};person;{first};{last};;{};;{street};{postcode};Kraków;;;;+48 12 {:03} {:02} {:02};\
             abonent{n}@example.pl;",
            pesel.as_str(),
            n / 10_000 % 1000,
            n / 100 % 100,
            n % 100
        )?;
        let (tariff, fee, down, up) = TARIFFS[(i % 3) as usize];
        let starts = Date::from_calendar_date(2020 + (i % 5) as i32, Month::March, 1)?;
        writeln!(
            contracts,
            "C-{n};K-{n};UM/{n:06};{starts};;{};{tariff};{down};{up};{street};{postcode};\
             Kraków;active",
            Money::from_grosze(fee).to_decimal_string()
        )?;
        writeln!(pppoe, "P-{n};C-{n};abonent{n};haslo-{n:x}")?;
        writeln!(
            ips,
            "IP-{n};C-{n};10.{}.{}.{};static;{starts}",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        )?;
        let (gross_fee, rate) = (Money::from_grosze(fee), VatRate::R23);
        // The monthly fee is gross; the line is written net-based from the carved-out net.
        let (unit_net, _) = rate.split_gross(gross_fee);
        let a = LineAmounts::from_net(Quantity::from_milli(1000), unit_net, rate);
        for m in first_month..=12u8 {
            let month = Month::try_from(m)?;
            let issued = Date::from_calendar_date(2025, month, 1)?;
            let due = issued + time::Duration::days(14);
            let (net, vat, gross) = (
                a.net.to_decimal_string(),
                a.vat.to_decimal_string(),
                a.gross.to_decimal_string(),
            );
            writeln!(
                invoices,
                "I-{n}-{m};K-{n};FV/2025/{m:02}/{n:06};{issued};{issued};{due};{net};{vat};\
                 {gross};paid;;1;Abonament {tariff} – {m:02}/2025;mies.;1;{};{net};23;{vat};\
                 {gross}",
                unit_net.to_decimal_string()
            )?;
            writeln!(
                payments,
                "Y-{n}-{m};K-{n};{};{gross};Opłata za FV/2025/{m:02}/{n:06};przelew",
                issued + time::Duration::days(10)
            )?;
        }
    }
    for mut w in [subs, contracts, pppoe, ips, invoices, payments] {
        w.flush()?;
    }
    Ok(())
}
