//! Import tests: the example files of every kind in both formats, re-import, changed rows and
//! broken files. Every database scenario is written once against a [`Db`] and run on a temp
//! SQLite file and on a fresh PostgreSQL database (unreachable PostgreSQL records a skip, or
//! fails under `EBOK_REQUIRE_SERVICES=1`).

use std::path::{Path, PathBuf};

use super::read::{detect_delimiter, json_path_at};
use super::{import_file, render_bar, FileFormat, ImportError, ImportKind, Progress};
use crate::billing::{balance, invoice_for, invoices_of};
use crate::money::Money;
use crate::on_pool;
use crate::repo::{Page, UpsertSummary};
use crate::subscribers::{
    ip_assignments_of, subscriber_by_ext_id, subscriber_by_login, ContractStatus,
};
use crate::Db;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A database and a scratch directory for one test.
struct TestDb {
    db: Db,
    dir: tempfile::TempDir,
    pg: Option<crate::testkit::FreshPg>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        TestDb { db, dir, pg: None }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let pg = crate::testkit::FreshPg::create(test).await?;
        let db = Db::connect(&pg.url)
            .await
            .expect("connect and migrate postgres");
        Some(TestDb {
            db,
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some(pg),
        })
    }

    async fn finish(self) {
        if let Db::Postgres(p) = &self.db {
            p.close().await;
        }
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
    }
}

/// Generate `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(db: &Db, dir: &Path)`.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let t = super::TestDb::sqlite().await;
                    super::$name(&t.db, t.dir.path()).await;
                    t.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(t) = super::TestDb::postgres(
                        concat!("ops::import::tests::postgres::", stringify!($name))
                    ).await else {
                        return;
                    };
                    super::$name(&t.db, t.dir.path()).await;
                    t.finish().await;
                }
            )+
        }
    };
}

both_backends!(
    examples_csv_then_jsonl,
    examples_jsonl_then_csv,
    changed_rows_are_updated,
    absent_columns_never_erase,
    contact_fields_are_checked,
    bad_pesel_on_line_4_imports_nothing,
    bad_money_names_its_column,
    missing_and_unknown_columns,
    unknown_contract_reference,
    malformed_json_line,
    json_errors_name_the_field,
    comma_delimiter_and_bom,
    invoice_rows_are_checked,
    duplicates_are_refused,
    progress_is_reported,
    unknown_format_and_missing_file,
);

fn example(kind: ImportKind, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/import")
        .join(format!("{}.{ext}", kind.as_str()))
}

fn example_text(kind: ImportKind, ext: &str) -> String {
    std::fs::read_to_string(example(kind, ext)).expect("example file")
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write test file");
    path
}

async fn import(db: &Db, kind: ImportKind, path: &Path) -> Result<UpsertSummary, ImportError> {
    import_file(db, kind, path, None).await
}

async fn import_ok(db: &Db, kind: ImportKind, path: &Path) -> UpsertSummary {
    import(db, kind, path)
        .await
        .unwrap_or_else(|e| panic!("import {kind} from {}: {e}", path.display()))
}

async fn import_err(db: &Db, kind: ImportKind, path: &Path) -> ImportError {
    match import(db, kind, path).await {
        Ok(s) => panic!("import {kind} from {} succeeded: {s:?}", path.display()),
        Err(e) => e,
    }
}

async fn count(db: &Db, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    on_pool!(db, pool => sqlx::query_scalar::<_, i64>(&sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}")))
}

/// Records in each example file.
fn example_count(kind: ImportKind) -> u64 {
    match kind {
        ImportKind::Subscribers => 6,
        ImportKind::Contracts => 6,
        ImportKind::PppoeAccounts => 7,
        ImportKind::Ips => 8,
        ImportKind::Invoices => 7,
        ImportKind::Payments => 5,
        ImportKind::Services => 5,
        ImportKind::News => 3,
        ImportKind::Faq => 4,
    }
}

fn inserted(n: u64) -> UpsertSummary {
    UpsertSummary {
        inserted: n,
        updated: 0,
        unchanged: 0,
    }
}

fn unchanged(n: u64) -> UpsertSummary {
    UpsertSummary {
        inserted: 0,
        updated: 0,
        unchanged: n,
    }
}

/// Import every example of one format into an empty database.
async fn import_all(db: &Db, ext: &str) {
    for kind in ImportKind::ALL {
        let s = import_ok(db, kind, &example(kind, ext)).await;
        assert_eq!(s, inserted(example_count(kind)), "{kind}.{ext}");
    }
}

/// Re-import every example of one format: nothing changes.
async fn reimport_all(db: &Db, ext: &str) {
    for kind in ImportKind::ALL {
        let s = import_ok(db, kind, &example(kind, ext)).await;
        assert_eq!(s, unchanged(example_count(kind)), "{kind}.{ext} again");
    }
}

fn assert_row_error(e: &ImportError, file: &Path, line: u64, column: Option<&str>, reason: &str) {
    match e {
        ImportError::Row {
            file: f,
            line: l,
            column: c,
            reason: r,
        } => {
            assert_eq!(f, file, "{e}");
            assert_eq!(*l, line, "{e}");
            assert_eq!(c.as_deref(), column, "{e}");
            assert!(r.contains(reason), "{e}: reason should mention {reason:?}");
        }
        other => panic!("expected a row error, got {other:?}"),
    }
    let shown = e.to_string();
    assert!(shown.contains(&file.display().to_string()), "{shown}");
    assert!(shown.contains(&format!("line {line}")), "{shown}");
    if let Some(c) = column {
        assert!(shown.contains(c), "{shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// The example files
// ---------------------------------------------------------------------------------------------

/// What the examples put in the database.
async fn check_example_data(db: &Db) {
    for (table, kind) in [
        ("subscribers", ImportKind::Subscribers),
        ("contracts", ImportKind::Contracts),
        ("pppoe_accounts", ImportKind::PppoeAccounts),
        ("ip_assignments", ImportKind::Ips),
        ("invoices", ImportKind::Invoices),
        ("payments", ImportKind::Payments),
        ("services", ImportKind::Services),
        ("news", ImportKind::News),
        ("faq", ImportKind::Faq),
    ] {
        assert_eq!(
            count(db, table).await as u64,
            example_count(kind),
            "{table}"
        );
    }
    assert_eq!(count(db, "invoice_lines").await, 11);

    // The demo's subscriber Jan Kowalski, found from the PPPoE login as a live session would.
    let (jan, contract) = subscriber_by_login(db, "jan.kowalski")
        .await
        .unwrap()
        .expect("jan.kowalski");
    assert_eq!(jan.display_name(), "Jan Kowalski");
    assert_eq!(jan.home.to_string(), "ul. Internetowa 1, 30-001 Kraków");
    assert_eq!(jan.pesel.as_ref().unwrap().as_str(), "44051401359");
    assert_eq!(
        jan.bank_account.as_ref().unwrap().as_str(),
        "67109010140000071200001001"
    );
    assert_eq!(contract.number, "UM/2013/0001");
    assert_eq!(
        (
            contract.starts_on.to_string(),
            contract.ends_on.map(|d| d.to_string())
        ),
        ("2013-01-01".into(), Some("2013-12-31".into()))
    );
    assert_eq!(contract.monthly_fee.to_string(), "50,00\u{a0}zł");
    assert_eq!(contract.status, ContractStatus::Active);
    let ips: Vec<String> = ip_assignments_of(db, contract.id)
        .await
        .unwrap()
        .iter()
        .map(|i| i.address_text())
        .collect();
    assert_eq!(ips, ["203.0.113.10", "2001:db8:1001::/48"]);
    assert_eq!(
        balance(db, jan.id).await.unwrap(),
        Money::from_zloty(-50),
        "three invoices of 50,00, two paid"
    );

    // The company: NIP normalised, an invoice of three lines with totals that add up.
    let company = subscriber_by_ext_id(db, "K-1004").await.unwrap().unwrap();
    assert_eq!(company.nip.as_ref().unwrap().as_str(), "6772345104");
    assert_eq!(company.mailing_address().street, "skr. poczt. 112");
    let invoices = invoices_of(db, company.id, Page::first(10)).await.unwrap();
    assert_eq!(invoices.total, 2);
    let jan_invoice = invoices
        .items
        .iter()
        .find(|i| i.number == "FV/2026/01/0042")
        .unwrap();
    let (inv, lines) = invoice_for(db, company.id, jan_invoice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(inv.gross, "1 390,00".parse::<Money>().unwrap());
    assert_eq!(
        lines.iter().map(|l| l.gross).sum::<Money>(),
        inv.gross,
        "lines add up"
    );
    assert_eq!(
        inv.ksef_number.as_deref(),
        Some("5260250274-20260131-4F1C2A9B7D3E-0A")
    );
    assert_eq!(
        balance(db, company.id).await.unwrap(),
        "-160,00".parse::<Money>().unwrap()
    );
    let wojcik = subscriber_by_ext_id(db, "K-1005").await.unwrap().unwrap();
    assert_eq!(balance(db, wojcik.id).await.unwrap(), Money::ZERO);
}

/// Every kind from CSV; again (unchanged); then the JSON Lines examples hold the same data.
async fn examples_csv_then_jsonl(db: &Db, _dir: &Path) {
    import_all(db, "csv").await;
    check_example_data(db).await;
    reimport_all(db, "csv").await;
    reimport_all(db, "jsonl").await;
    check_example_data(db).await;
}

/// Every kind from JSON Lines; again (unchanged); then the CSV examples hold the same data.
async fn examples_jsonl_then_csv(db: &Db, _dir: &Path) {
    import_all(db, "jsonl").await;
    check_example_data(db).await;
    reimport_all(db, "jsonl").await;
    reimport_all(db, "csv").await;
}

async fn changed_rows_are_updated(db: &Db, dir: &Path) {
    import_all(db, "csv").await;
    let text =
        example_text(ImportKind::Subscribers, "csv").replace("+48 502 345 678", "+48 502 000 000");
    let path = write(dir, "subscribers.csv", text);
    let s = import_ok(db, ImportKind::Subscribers, &path).await;
    assert_eq!(
        s,
        UpsertSummary {
            inserted: 0,
            updated: 1,
            unchanged: 5
        }
    );
    let piotr = subscriber_by_ext_id(db, "K-1003").await.unwrap().unwrap();
    assert_eq!(piotr.phone.as_deref(), Some("+48 502 000 000"));

    // An invoice with a changed line (and totals) in JSON Lines, plus a new payment.
    let text = example_text(ImportKind::Invoices, "jsonl")
        .replace("\"Prace serwisowe\"", "\"Prace serwisowe (dojazd)\"");
    let path = write(dir, "invoices.jsonl", text);
    let s = import_ok(db, ImportKind::Invoices, &path).await;
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 1, 6));
    let mut text = example_text(ImportKind::Payments, "csv");
    text.push_str("W-6006;K-1001;2013-04-10;50;FV/2013/03/0001;przelew\n");
    let path = write(dir, "payments.csv", text);
    let s = import_ok(db, ImportKind::Payments, &path).await;
    assert_eq!((s.inserted, s.updated, s.unchanged), (1, 0, 5));
    let jan = subscriber_by_ext_id(db, "K-1001").await.unwrap().unwrap();
    assert_eq!(balance(db, jan.id).await.unwrap(), Money::ZERO);
}

/// A file without an optional column (or a JSON line without the key) leaves what is
/// stored in it as it is; a field given empty (or `null`) clears it.
async fn absent_columns_never_erase(db: &Db, dir: &Path) {
    import_all(db, "csv").await;
    let jan = || async { subscriber_by_ext_id(db, "K-1001").await.unwrap().unwrap() };
    let before = jan().await;
    assert!(before.pesel.is_some() && before.email.is_some() && before.phone.is_some());
    // Only the required columns and the names: nothing else of Jan's may go.
    let path = write(
        dir,
        "subscribers.csv",
        "ext_id;kind;first_name;last_name;home_street;home_postcode;home_city\n\
         K-1001;person;Jan;Kowalski;ul. Internetowa 1;30-001;Kraków\n",
    );
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        unchanged(1)
    );
    assert_eq!(jan().await, before);
    // The same as a JSON line without the keys; a new phone is taken.
    let path = write(
        dir,
        "subscribers.jsonl",
        r#"{"ext_id": "K-1001", "kind": "person", "first_name": "Jan", "last_name": "Kowalski", "home": {"street": "ul. Internetowa 1", "postcode": "30-001", "city": "Kraków"}, "phone": "+48 12 000 00 00"}
"#,
    );
    let s = import_ok(db, ImportKind::Subscribers, &path).await;
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 1, 0));
    let after = jan().await;
    assert_eq!(after.phone.as_deref(), Some("+48 12 000 00 00"));
    assert_eq!(
        (after.pesel, after.email.clone()),
        (before.pesel.clone(), before.email.clone())
    );
    // Given empty: cleared.
    let path = write(
        dir,
        "subscribers.jsonl",
        r#"{"ext_id": "K-1001", "kind": "person", "first_name": "Jan", "last_name": "Kowalski", "home": {"street": "ul. Internetowa 1", "postcode": "30-001", "city": "Kraków"}, "email": null}
"#,
    );
    import_ok(db, ImportKind::Subscribers, &path).await;
    let cleared = jan().await;
    assert_eq!(cleared.email, None);
    assert_eq!(cleared.pesel, before.pesel);
    // A contract file without ends_on keeps the stored end.
    let contracts = example_text(ImportKind::Contracts, "csv");
    let with_end = contracts
        .lines()
        .skip(1)
        .find(|l| l.split(';').nth(4).is_some_and(|e| !e.is_empty()))
        .expect("an example contract with an end date")
        .to_owned();
    let header: Vec<&str> = contracts.lines().next().unwrap().split(';').collect();
    let keep = |line: &str| -> String {
        line.split(';')
            .enumerate()
            .filter(|(i, _)| header[*i] != "ends_on")
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(";")
    };
    let path = write(
        dir,
        "contracts.csv",
        format!(
            "{}\n{}\n",
            keep(contracts.lines().next().unwrap()),
            keep(&with_end)
        ),
    );
    assert_eq!(
        import_ok(db, ImportKind::Contracts, &path).await,
        unchanged(1)
    );
}

/// E-mail addresses, postcodes and phone numbers are checked at import, naming the column.
async fn contact_fields_are_checked(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "csv");
    for (from, to, column, reason) in [
        (
            "jan.kowalski@example.pl",
            "jan.kowalski.example.pl",
            "email",
            "not an e-mail",
        ),
        ("+48 12 345 67 89", "12 34", "phone", "not a phone number"),
        (";30-001;", ";30001;", "home_postcode", "not a postcode"),
    ] {
        let path = write(dir, "subscribers.csv", text.replacen(from, to, 1));
        let e = import_err(db, ImportKind::Subscribers, &path).await;
        assert_row_error(&e, &path, 2, Some(column), reason);
    }
    assert_eq!(count(db, "subscribers").await, 0);
}

// ---------------------------------------------------------------------------------------------
// Broken files import nothing
// ---------------------------------------------------------------------------------------------

async fn bad_pesel_on_line_4_imports_nothing(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "csv");
    assert!(text.lines().nth(3).unwrap().contains("90112311817"));
    let path = write(
        dir,
        "subscribers.csv",
        text.replace("90112311817", "90112311818"),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(
        &e,
        &path,
        4,
        Some("pesel"),
        "PESEL check digit does not match",
    );
    assert_eq!(
        count(db, "subscribers").await,
        0,
        "rows 2 and 3 rolled back"
    );

    // The same in JSON Lines (line 3 there), and a bad NIP and NRB.
    let text = example_text(ImportKind::Subscribers, "jsonl");
    let path = write(
        dir,
        "subscribers.jsonl",
        text.replace("90112311817", "90112311818"),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 3, Some("pesel"), "check digit");
    let path = write(
        dir,
        "subscribers.csv",
        example_text(ImportKind::Subscribers, "csv").replace("677-234-51-04", "677-234-51-05"),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 5, Some("nip"), "NIP check digit");
    let path = write(
        dir,
        "subscribers.csv",
        example_text(ImportKind::Subscribers, "csv")
            .replace("56109010140000071200001005", "56109010140000071200001006"),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 6, Some("bank_account"), "check digits");
    assert_eq!(count(db, "subscribers").await, 0);
}

async fn bad_money_names_its_column(db: &Db, dir: &Path) {
    import_ok(
        db,
        ImportKind::Subscribers,
        &example(ImportKind::Subscribers, "csv"),
    )
    .await;
    let text = example_text(ImportKind::Contracts, "csv");
    assert!(text.lines().nth(3).unwrap().contains(";59,99;"));
    let path = write(dir, "contracts.csv", text.replace(";59,99;", ";59,9x;"));
    let e = import_err(db, ImportKind::Contracts, &path).await;
    assert_row_error(&e, &path, 4, Some("monthly_fee"), "not an amount");
    assert_eq!(count(db, "contracts").await, 0);

    // Three decimals, and a bad date in another column.
    let path = write(dir, "contracts.csv", text.replace(";59,99;", ";59,999;"));
    let e = import_err(db, ImportKind::Contracts, &path).await;
    assert_row_error(&e, &path, 4, Some("monthly_fee"), "decimal places");
    let path = write(
        dir,
        "contracts.csv",
        text.replace("2021-09-15", "15.09.2021"),
    );
    let e = import_err(db, ImportKind::Contracts, &path).await;
    assert_row_error(
        &e,
        &path,
        4,
        Some("starts_on"),
        "(expected a date as YYYY-MM-DD)",
    );

    // A time without its offset.
    let news = example_text(ImportKind::News, "csv");
    let path = write(
        dir,
        "news.csv",
        news.replace("2026-03-02T10:30:00+01:00", "2026-03-02 10:30"),
    );
    let e = import_err(db, ImportKind::News, &path).await;
    assert_row_error(
        &e,
        &path,
        8,
        Some("published_at"),
        "2026-01-15T09:00:00+01:00",
    );

    // A money amount as a JSON number is refused (it would have been a float).
    let text = example_text(ImportKind::Payments, "jsonl");
    let path = write(
        dir,
        "payments.jsonl",
        text.replace("\"amount\": \"1390.00\"", "\"amount\": 1390.00"),
    );
    let e = import_err(db, ImportKind::Payments, &path).await;
    assert_row_error(&e, &path, 3, Some("amount"), "as strings, e.g. \"50.00\"");
    assert_eq!(count(db, "payments").await, 0);
}

/// Rewrite a CSV text through a filter on its records.
fn rewrite_csv(
    text: &str,
    delimiter: u8,
    out_delimiter: u8,
    mut f: impl FnMut(Vec<String>) -> Vec<String>,
) -> String {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut w = csv::WriterBuilder::new()
        .delimiter(out_delimiter)
        .from_writer(Vec::new());
    for rec in r.records() {
        let rec: Vec<String> = rec.unwrap().iter().map(str::to_owned).collect();
        w.write_record(f(rec)).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

async fn missing_and_unknown_columns(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "csv");
    let without_city = rewrite_csv(&text, b';', b';', |mut r| {
        r.remove(9);
        r
    });
    assert!(without_city.starts_with("ext_id;kind;first_name;last_name;company_name;pesel;nip;home_street;home_postcode;correspondence_street"));
    let path = write(dir, "subscribers.csv", without_city);
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 1, Some("home_city"), "missing column");

    // Optional columns may be left out.
    let minimal = rewrite_csv(&text, b';', b';', |r| {
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
            .iter()
            .map(|&i| r[i].clone())
            .collect()
    });
    let path = write(dir, "minimal.csv", minimal);
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        inserted(6)
    );

    let typo = text.replacen("phone", "telefon", 1);
    let path = write(dir, "subscribers.csv", typo);
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 1, Some("telefon"), "unknown column");

    let twice = text.replacen("phone;email", "phone;phone", 1);
    let path = write(dir, "subscribers.csv", twice);
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 1, Some("phone"), "appears twice");

    let path = write(dir, "empty.csv", "");
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 1, None, "empty file");

    // A row with a field too many.
    let extra = text.replacen(
        "jan.kowalski@example.pl;",
        "jan.kowalski@example.pl;extra;",
        1,
    );
    let path = write(dir, "subscribers.csv", extra);
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 2, None, "17 fields but the header has 16");
    assert_eq!(
        count(db, "subscribers").await,
        6,
        "only the minimal file went in"
    );
}

async fn unknown_contract_reference(db: &Db, dir: &Path) {
    for kind in [ImportKind::Subscribers, ImportKind::Contracts] {
        import_ok(db, kind, &example(kind, "csv")).await;
    }
    let text = example_text(ImportKind::PppoeAccounts, "csv");
    assert!(text.lines().nth(6).unwrap().contains("U-2005"));
    let path = write(dir, "pppoe-accounts.csv", text.replace("U-2005", "U-9999"));
    let e = import_err(db, ImportKind::PppoeAccounts, &path).await;
    assert_row_error(
        &e,
        &path,
        7,
        Some("contract_ext_id"),
        "contract with ext_id \"U-9999\" is not known",
    );
    assert_eq!(
        count(db, "pppoe_accounts").await,
        0,
        "the six rows before rolled back"
    );

    let text = example_text(ImportKind::Payments, "jsonl");
    let path = write(dir, "payments.jsonl", text.replace("K-1005", "K-0000"));
    let e = import_err(db, ImportKind::Payments, &path).await;
    assert_row_error(
        &e,
        &path,
        5,
        Some("subscriber_ext_id"),
        "subscriber with ext_id \"K-0000\" is not known",
    );
    assert_eq!(count(db, "payments").await, 0);
}

async fn malformed_json_line(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "jsonl");
    let broken: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replacen(
                    "\"first_name\": \"Piotr\", ",
                    "\"first_name\": \"Piotr\" ",
                    1,
                )
            } else {
                l.to_owned()
            }
        })
        .collect();
    let path = write(dir, "subscribers.jsonl", broken.join("\n"));
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(
        &e,
        &path,
        3,
        Some("first_name"),
        "malformed JSON: expected `,` or `}`",
    );
    assert_eq!(count(db, "subscribers").await, 0);

    // A line cut short.
    let mut lines: Vec<&str> = text.lines().collect();
    lines[4] = &lines[4][..40];
    let path = write(dir, "subscribers.jsonl", lines.join("\n"));
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.to_string().contains("malformed JSON"), "{e}");

    // Blank lines are skipped but still counted.
    let spaced = text.replace('\n', "\n\n");
    let path = write(
        dir,
        "spaced.jsonl",
        spaced.replace("90112311817", "9011231181"),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 5, Some("pesel"), "11 digits");
    assert_eq!(count(db, "subscribers").await, 0);
}

async fn json_errors_name_the_field(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "jsonl");
    let path = write(
        dir,
        "subscribers.jsonl",
        text.replacen(", \"city\": \"Kraków\"}", "}", 1),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 1, Some("home.city"), "missing field \"city\"");
    let path = write(
        dir,
        "subscribers.jsonl",
        text.replacen("\"kind\": \"person\"", "\"kind\": \"osoba\"", 1),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 1, Some("kind"), "unknown variant `osoba`");
    // A rule of the model, checked by the store.
    let path = write(
        dir,
        "subscribers.jsonl",
        text.replacen("\"first_name\": \"Anna\", ", "", 1),
    );
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(
        &e,
        &path,
        2,
        Some("first_name"),
        "a person needs a first name",
    );
    assert_eq!(count(db, "subscribers").await, 0);

    // Invoice totals point at the line that does not add up.
    import_ok(
        db,
        ImportKind::Subscribers,
        &example(ImportKind::Subscribers, "csv"),
    )
    .await;
    let text = example_text(ImportKind::Invoices, "jsonl");
    let path = write(
        dir,
        "invoices.jsonl",
        text.replacen("\"gross\": \"10.00\"", "\"gross\": \"10.01\"", 1),
    );
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 4, Some("lines[1].gross"), "line 2 gross");
    let path = write(
        dir,
        "invoices.jsonl",
        text.replacen("\"quantity\": \"0.5\"", "\"quantity\": \"pół\"", 1),
    );
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 7, Some("lines[1].quantity"), "not an amount");
    let path = write(
        dir,
        "invoices.jsonl",
        text.replacen("\"net\": \"1130.08\"", "\"net\": \"1130.09\"", 1),
    );
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 4, Some("net"), "net total");
    assert_eq!(count(db, "invoices").await, 0);
}

async fn comma_delimiter_and_bom(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "csv");
    let commas = rewrite_csv(&text, b';', b',', |r| r);
    assert!(commas.starts_with("ext_id,kind,"));
    let path = write(dir, "commas.csv", &commas);
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        inserted(6)
    );
    // The same data behind a byte order mark, with either delimiter: nothing changes.
    let path = write(dir, "bom-commas.csv", format!("\u{feff}{commas}"));
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        unchanged(6)
    );
    let path = write(dir, "bom-semicolons.csv", format!("\u{feff}{text}"));
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        unchanged(6)
    );
    // Windows line ends.
    let path = write(dir, "crlf.csv", text.replace('\n', "\r\n"));
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        unchanged(6)
    );
    let jsonl = example_text(ImportKind::Subscribers, "jsonl");
    let path = write(
        dir,
        "bom.jsonl",
        format!("\u{feff}{}", jsonl.replace('\n', "\r\n")),
    );
    assert_eq!(
        import_ok(db, ImportKind::Subscribers, &path).await,
        unchanged(6)
    );

    // Money with a comma in a comma-separated file: quoted, or with a dot.
    import_ok(
        db,
        ImportKind::Contracts,
        &example(ImportKind::Contracts, "csv"),
    )
    .await;
    let contracts = example_text(ImportKind::Contracts, "csv");
    let commas = rewrite_csv(&contracts, b';', b',', |r| r);
    assert!(commas.contains(",\"50,00\","), "{commas}");
    let path = write(dir, "contracts.csv", commas.replace("\"50,00\"", "50.00"));
    assert_eq!(
        import_ok(db, ImportKind::Contracts, &path).await,
        unchanged(6)
    );
    // A file that is not UTF-8: Windows-1250 "ś" (0x9C) in Wiśniewski.
    let at = text.find("Wiśniewski").unwrap() + "Wi".len();
    let mut bytes = text.as_bytes()[..at].to_vec();
    bytes.push(0x9c);
    bytes.extend_from_slice(&text.as_bytes()[at + "ś".len()..]);
    let path = write(dir, "cp1250.csv", bytes);
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(&e, &path, 4, Some("last_name"), "not valid UTF-8");
}

async fn invoice_rows_are_checked(db: &Db, dir: &Path) {
    import_ok(
        db,
        ImportKind::Subscribers,
        &example(ImportKind::Subscribers, "csv"),
    )
    .await;
    let text = example_text(ImportKind::Invoices, "csv");
    let lines: Vec<&str> = text.lines().collect();
    let edit = |n: usize, from: &str, to: &str| -> String {
        let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert!(v[n - 1].contains(from), "line {n}: {}", v[n - 1]);
        v[n - 1] = v[n - 1].replacen(from, to, 1);
        v.join("\n") + "\n"
    };
    // Line 6 is the second line of FV/2026/01/0042.
    let path = write(dir, "invoices.csv", edit(6, ";1,87;10,00", ";1,87;10,01"));
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 6, Some("line_gross"), "line 2 gross");
    // An invoice column that does not repeat the first row's.
    let path = write(dir, "invoices.csv", edit(7, ";1 390,00;", ";1 390,01;"));
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(
        &e,
        &path,
        7,
        Some("gross"),
        "differs from the first row of invoice \"I-5004\"",
    );
    // Totals that do not match the lines: the invoice's first row.
    let text_net = text.replace(";130,08;29,92;", ";130,09;29,92;");
    let path = write(dir, "invoices.csv", &text_net);
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 8, Some("net"), "net total is 130,09");
    // A position twice.
    let path = write(
        dir,
        "invoices.csv",
        edit(12, ";2;Prace serwisowe;", ";1;Prace serwisowe;"),
    );
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(
        &e,
        &path,
        12,
        Some("line_position"),
        "position 1 appears twice",
    );
    assert!(!e.to_string().contains("lines:"), "{e}");
    // Rows of one invoice that are not consecutive (a free line of 0,00 for FV/2026/01/0007,
    // so that the invoice's first rows alone add up).
    let free = lines[9]
        .replacen(";1;Abonament", ";2;Gratis: router", 1)
        .replace(";56,10;56,10;23;12,90;69,00", ";0,00;0,00;23;0,00;0,00");
    let path = write(dir, "invoices.csv", format!("{text}{free}\n"));
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 13, Some("ext_id"), "must be consecutive");
    // An invoice number held by another invoice.
    let path = write(
        dir,
        "invoices.csv",
        text.replace("FV/2026/01/0007", "FV/2013/01/0001"),
    );
    let e = import_err(db, ImportKind::Invoices, &path).await;
    assert_row_error(&e, &path, 10, Some("number"), "invoice number");
    assert_eq!(count(db, "invoices").await, 0);
    assert_eq!(count(db, "invoice_lines").await, 0);
}

async fn duplicates_are_refused(db: &Db, dir: &Path) {
    let text = example_text(ImportKind::Subscribers, "csv");
    let mut lines: Vec<&str> = text.lines().collect();
    let again = lines[1];
    lines.push(again);
    let path = write(dir, "subscribers.csv", lines.join("\n"));
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert_row_error(
        &e,
        &path,
        8,
        Some("ext_id"),
        "subscriber \"K-1001\" appears more than once",
    );
    assert_eq!(count(db, "subscribers").await, 0);

    // A login held by another account: refused by the database (PostgreSQL aborts the
    // transaction; the import rolls it back).
    for kind in [ImportKind::Subscribers, ImportKind::Contracts] {
        import_ok(db, kind, &example(kind, "csv")).await;
    }
    let text = example_text(ImportKind::PppoeAccounts, "csv");
    let path = write(
        dir,
        "pppoe-accounts.csv",
        text.replace("bilans.monitoring", "bilans.biuro"),
    );
    let e = import_err(db, ImportKind::PppoeAccounts, &path).await;
    assert_row_error(
        &e,
        &path,
        6,
        Some("login"),
        "PPPoE login \"bilans.biuro\" is already taken",
    );
    assert_eq!(count(db, "pppoe_accounts").await, 0);
    // The database is fine afterwards.
    let s = import_ok(
        db,
        ImportKind::PppoeAccounts,
        &example(ImportKind::PppoeAccounts, "csv"),
    )
    .await;
    assert_eq!(s, inserted(7));
}

async fn progress_is_reported(db: &Db, _dir: &Path) {
    let path = example(ImportKind::Subscribers, "csv");
    let size = std::fs::metadata(&path).unwrap().len();
    let mut seen: Vec<Progress> = Vec::new();
    let mut cb = |p: Progress| seen.push(p);
    import_file(db, ImportKind::Subscribers, &path, Some(&mut cb))
        .await
        .unwrap();
    assert_eq!(seen.len(), 7, "six rows and the end");
    assert!(seen.iter().all(|p| p.total_bytes == size));
    assert!(seen.windows(2).all(|w| w[0].rows < w[1].rows || w[1].done));
    assert!(seen.windows(2).all(|w| w[0].bytes <= w[1].bytes));
    let last = seen.last().unwrap();
    assert_eq!((last.rows, last.bytes, last.done), (6, size, true));
    assert_eq!(seen[5].bytes, size, "the last row ends the file");
    assert!(seen[0].bytes > 0 && seen[0].bytes < size);

    // The terminal bar accepts the same calls (stderr is not a terminal under test).
    let mut bar = super::progress_bar();
    for p in seen {
        bar(p);
    }
}

async fn unknown_format_and_missing_file(db: &Db, dir: &Path) {
    let path = write(dir, "subscribers.xlsx", "");
    let e = import_err(db, ImportKind::Subscribers, &path).await;
    assert!(matches!(e, ImportError::UnknownFormat { .. }), "{e:?}");
    let e = import_err(db, ImportKind::Subscribers, &dir.join("missing.csv")).await;
    assert!(matches!(e, ImportError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.csv"), "{e}");
    // An empty JSON Lines file is fine: nothing to do.
    let path = write(dir, "empty.ndjson", "\n");
    assert_eq!(
        import_ok(db, ImportKind::Faq, &path).await,
        UpsertSummary::default()
    );
}

// ---------------------------------------------------------------------------------------------
// Without a database
// ---------------------------------------------------------------------------------------------

#[test]
fn kind_names() {
    for kind in ImportKind::ALL {
        assert_eq!(kind.as_str().parse::<ImportKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(
        "PPPoE-Accounts".parse::<ImportKind>(),
        Ok(ImportKind::PppoeAccounts)
    );
    let e = "customers".parse::<ImportKind>().unwrap_err();
    assert!(e.to_string().contains("pppoe-accounts"), "{e}");
}

#[test]
fn formats_by_extension() {
    let f = |p: &str| FileFormat::of_path(Path::new(p));
    assert_eq!(f("a/b.csv"), Some(FileFormat::Csv));
    assert_eq!(f("B.CSV"), Some(FileFormat::Csv));
    assert_eq!(f("x.jsonl"), Some(FileFormat::JsonLines));
    assert_eq!(f("x.ndjson"), Some(FileFormat::JsonLines));
    assert_eq!(f("x.json"), None);
    assert_eq!(f("csv"), None);
}

#[test]
fn delimiters() {
    assert_eq!(detect_delimiter(b"a;b;c\n1,5;2;3"), b';');
    assert_eq!(detect_delimiter(b"a,b,c\n1;2;3;4;5"), b',');
    assert_eq!(detect_delimiter(b"\"a;b;c\",d,e"), b',');
    assert_eq!(detect_delimiter(b"single"), b',');
}

#[test]
fn json_paths() {
    let text = r#"{"a":1,"home":{"street":"x,y","city":"K"},"lines":[{"n":1},{"n":"\"2"#;
    let at = |needle: &str| text.find(needle).unwrap() + needle.len();
    assert_eq!(json_path_at(text, at(r#""a":1"#)), "a");
    assert_eq!(json_path_at(text, at(r#""street":"x,y""#)), "home.street");
    assert_eq!(json_path_at(text, at(r#""city":"K"}"#)), "home");
    assert_eq!(json_path_at(text, at(r#"{"n":1}"#)), "lines[0]");
    assert_eq!(json_path_at(text, text.len()), "lines[1].n");
    assert_eq!(json_path_at(r#"{"a":1}"#, 7), "");
}

#[test]
fn bar() {
    let p = Progress {
        rows: 12,
        bytes: 1_500_000,
        total_bytes: 3_000_000,
        done: false,
    };
    assert_eq!(
        render_bar(&p, 10),
        "\r[#####     ]  50%  12 rows  1.5 / 3.0 MB"
    );
    let empty = Progress::default();
    assert!(render_bar(&empty, 4).starts_with("\r[####] 100%"));
}

/// The example CSV files carry every documented column, in the documented order.
#[test]
fn example_headers_are_the_documented_columns() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/import.md"))
            .expect("docs/import.md");
    for kind in ImportKind::ALL {
        let names: Vec<&str> = kind.csv_columns().iter().map(|(c, _)| *c).collect();
        let text = example_text(kind, "csv");
        assert_eq!(text.lines().next().unwrap(), names.join(";"), "{kind}.csv");
        for (c, required) in kind.csv_columns() {
            let row = format!("| `{c}` | {} |", if *required { "yes" } else { "no" });
            let section = doc
                .split("\n### ")
                .find(|s| s.starts_with(&format!("`{kind}`")))
                .unwrap_or_else(|| panic!("docs/import.md has no section for {kind}"));
            assert!(section.contains(&row), "docs/import.md, {kind}: {row}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// KSeF: numbers and FA(3) files
// ---------------------------------------------------------------------------------------------

mod ksef_files {
    use super::*;
    use crate::billing::invoice_ids_by_ext;
    use crate::ksef::{sha256, stored_xml, xml_for, MAX_XML_BYTES};

    both_backends!(
        ksef_files_are_stored_byte_for_byte,
        bad_ksef_numbers_and_files_name_line_and_column,
    );

    /// The example's FA(3) file of I-5005.
    fn example_xml() -> String {
        let text = example_text(ImportKind::Invoices, "jsonl");
        let line = text.lines().find(|l| l.contains("\"I-5005\"")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["ksef_xml"].as_str().unwrap().to_owned()
    }

    /// The example's I-5005 line rewritten: `ksef_xml` replaced by `with` (`None`: left out).
    fn i5005_with(with: Option<serde_json::Value>) -> String {
        let text = example_text(ImportKind::Invoices, "jsonl");
        let line = text.lines().find(|l| l.contains("\"I-5005\"")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        match with {
            Some(x) => obj.insert("ksef_xml".into(), x),
            None => obj.remove("ksef_xml"),
        };
        format!("{v}\n")
    }

    async fn ksef_files_are_stored_byte_for_byte(db: &Db, dir: &Path) {
        import_all(db, "jsonl").await;
        let company = subscriber_by_ext_id(db, "K-1004").await.unwrap().unwrap();
        let other = subscriber_by_ext_id(db, "K-1001").await.unwrap().unwrap();
        let ids = invoice_ids_by_ext(db, &["I-5005", "I-5004"]).await.unwrap();
        let (with, without) = (ids[0], ids[1]);
        assert_eq!(xml_for(db, company.id, without).await.unwrap(), None);
        let xml = example_xml();
        let stored = xml_for(db, company.id, with)
            .await
            .unwrap()
            .expect("stored file");
        assert_eq!(stored, xml.as_bytes(), "byte for byte");
        let facts = stored_xml(db, company.id, with).await.unwrap().unwrap();
        assert_eq!(facts.sha256, sha256(xml.as_bytes()).to_vec());
        assert_eq!(facts.seller_nip, "5260250274");
        assert_eq!(facts.size, xml.len() as i64);
        // Another subscriber's invoice id: nothing, like a missing one.
        assert_eq!(xml_for(db, other.id, with).await.unwrap(), None);
        assert_eq!(stored_xml(db, other.id, with).await.unwrap(), None);

        // Left out: the stored file stays (and nothing changes).
        let path = write(dir, "invoices.jsonl", i5005_with(None));
        assert_eq!(
            import_ok(db, ImportKind::Invoices, &path).await,
            unchanged(1)
        );
        assert!(xml_for(db, company.id, with).await.unwrap().is_some());
        // Another file (one byte more): updated, the new hash stored.
        let changed = xml.replace("</Faktura>", "</Faktura>\n");
        let path = write(
            dir,
            "invoices.jsonl",
            i5005_with(Some(changed.clone().into())),
        );
        let s = import_ok(db, ImportKind::Invoices, &path).await;
        assert_eq!(s.updated, 1, "{s:?}");
        let facts = stored_xml(db, company.id, with).await.unwrap().unwrap();
        assert_eq!(facts.sha256, sha256(changed.as_bytes()).to_vec());
        // null: removed.
        let path = write(
            dir,
            "invoices.jsonl",
            i5005_with(Some(serde_json::Value::Null)),
        );
        assert_eq!(import_ok(db, ImportKind::Invoices, &path).await.updated, 1);
        assert_eq!(xml_for(db, company.id, with).await.unwrap(), None);
        // The CSV example carries the same file: stored again, byte for byte.
        import_ok(
            db,
            ImportKind::Invoices,
            &example(ImportKind::Invoices, "csv"),
        )
        .await;
        let stored = xml_for(db, company.id, with)
            .await
            .unwrap()
            .expect("stored file");
        assert_eq!(stored, xml.as_bytes());
        assert_eq!(count(db, "ksef_invoices").await, 1);
    }

    async fn bad_ksef_numbers_and_files_name_line_and_column(db: &Db, dir: &Path) {
        import_ok(
            db,
            ImportKind::Subscribers,
            &example(ImportKind::Subscribers, "csv"),
        )
        .await;
        // A wrong checksum on line 8 (I-5005's first row) of the CSV.
        let text = example_text(ImportKind::Invoices, "csv");
        let bad = text.replace(
            "5260250274-20260228-9B0E7D2C1A4F-D9",
            "5260250274-20260228-9B0E7D2C1A4F-D8",
        );
        assert_ne!(bad, text);
        let path = write(dir, "invoices.csv", &bad);
        let e = import_err(db, ImportKind::Invoices, &path).await;
        assert_row_error(
            &e,
            &path,
            8,
            Some("ksef_number"),
            "checksum \"D8\" does not match",
        );
        assert!(e.to_string().contains("\"D9\""), "{e}");
        // A seller's NIP with a wrong check digit, in JSON Lines (line 4: I-5004).
        let jsonl = example_text(ImportKind::Invoices, "jsonl");
        let bad = jsonl.replace(
            "5260250274-20260131-4F1C2A9B7D3E-0A",
            &crate::ksef::with_checksum("5260250275-20260131-4F1C2A9B7D3E"),
        );
        let path = write(dir, "invoices.jsonl", &bad);
        let e = import_err(db, ImportKind::Invoices, &path).await;
        assert_row_error(&e, &path, 4, Some("ksef_number"), "seller's NIP");
        // A malformed file and one over the size limit (line 5: I-5005).
        let xml = example_xml();
        let lines: Vec<&str> = jsonl.lines().collect();
        let with_line5 = |line: String| {
            let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            v[4] = line.trim_end().to_owned();
            v.join("\n") + "\n"
        };
        let broken = xml.replace("</P_2>", "</P_3>");
        let path = write(
            dir,
            "invoices.jsonl",
            with_line5(i5005_with(Some(broken.into()))),
        );
        let e = import_err(db, ImportKind::Invoices, &path).await;
        assert_row_error(&e, &path, 5, Some("ksef_xml"), "not well-formed");
        let mut huge = xml.clone();
        huge.push_str(&" ".repeat(MAX_XML_BYTES));
        let path = write(
            dir,
            "invoices.jsonl",
            with_line5(i5005_with(Some(huge.into()))),
        );
        let e = import_err(db, ImportKind::Invoices, &path).await;
        assert_row_error(&e, &path, 5, Some("ksef_xml"), "more than the 3 MiB");
        assert_eq!(count(db, "invoices").await, 0);
        assert_eq!(count(db, "ksef_invoices").await, 0);
    }
}
