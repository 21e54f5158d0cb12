//! One suite for the subscriber-data repositories on both backends: every scenario is
//! written once against a [`Db`] and run on a temp SQLite file and on a fresh PostgreSQL
//! database (`crate::testkit::FreshPg`; unreachable PostgreSQL records a skip, or fails
//! under `EBOK_REQUIRE_SERVICES=1`).

use std::net::IpAddr;

use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

use super::audit;
use super::billing::{
    balance, invoice_for, invoices_of, ledger, payments_of, upsert_invoice, upsert_payment,
    vat_totals, InvoiceLine, InvoiceRecord, InvoiceStatus, LedgerItem, PaymentRecord,
};
use super::content::{
    active_services, create_service_order, faq, news_item, published_news, service,
    service_orders_by_status, service_orders_of, set_service_order_status, upsert_faq, upsert_news,
    upsert_service, FaqRecord, NewServiceOrder, NewsRecord, OrderStatus, ServiceRecord,
};
use super::money::{LineAmounts, Money, Quantity, VatRate};
use super::panel::{
    add_ticket_message, confirm_email, consent_history, create_panel_account, create_ticket,
    current_consent, panel_account, panel_account_by_login, panel_account_of_subscriber,
    panel_accounts_by_email, record_consent, set_disabled, set_email, set_password_hash,
    set_ticket_status, ticket_for, ticket_messages, tickets_of, Author, TicketStatus,
};
use super::repo::{Entity, Page, StoreError, UniqueField, Upserted};
use super::subscribers::{
    contract_for, contracts_of, ip_assignments_by_address, ip_assignments_of, parse_ip_or_net,
    pppoe_accounts_of, subscriber, subscriber_by_ext_id, subscriber_by_login,
    subscriber_by_nip_and_contract, subscriber_by_pesel_and_contract, upsert_contract,
    upsert_ip_assignment, upsert_pppoe_account, upsert_subscriber, Address, ContractRecord,
    ContractStatus, IpAssignmentRecord, IpKind, PppoeAccountRecord, SubscriberKind,
    SubscriberRecord,
};
use super::validate::{nip, nrb, pesel};
use super::Db;
use crate::on_pool;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A database for one test, and what must live as long as it.
struct TestDb {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    pg: Option<crate::testkit::FreshPg>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        TestDb {
            db,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let pg = crate::testkit::FreshPg::create(test).await?;
        let db = Db::connect(&pg.url)
            .await
            .expect("connect and migrate postgres");
        Some(TestDb {
            db,
            _dir: None,
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

/// Generate `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(db: &Db)`.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let t = super::TestDb::sqlite().await;
                    super::$name(&t.db).await;
                    t.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(t) = super::TestDb::postgres(
                        concat!("store::tests::postgres::", stringify!($name))
                    ).await else {
                        return;
                    };
                    super::$name(&t.db).await;
                    t.finish().await;
                }
            )+
        }
    };
}

both_backends!(
    traffic_readings_count_once,
    subscriber_upsert_cycle,
    subscriber_validation,
    contract_upserts_and_reads,
    pppoe_accounts_ips_and_login_join,
    registration_lookups,
    invoice_upserts_with_lines,
    invoice_totals_are_verified,
    invoice_ownership,
    payments_upsert,
    pagination,
    balance_and_ledger,
    consents,
    panel_accounts,
    tickets,
    services_and_orders,
    news_and_faq,
    audit_log,
    deletes_cascade_or_are_refused,
);

/// Run `$body` (which uses `$tx`) in a transaction: commit when it is `Ok`, else roll back.
macro_rules! in_tx {
    ($db:expr, $tx:ident => $body:expr) => {{
        let mut $tx = $db.begin().await.expect("begin");
        let r = $body;
        if r.is_ok() {
            $tx.commit().await.expect("commit");
        } else {
            $tx.rollback().await.expect("rollback");
        }
        r
    }};
}

async fn exec(db: &Db, sql: &str) {
    on_pool!(db, pool => {
        sqlx::query(sql).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
}

async fn try_exec(db: &Db, sql: &str) -> Result<u64, sqlx::Error> {
    on_pool!(db, pool => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()))
}

async fn count(db: &Db, sql: &str) -> i64 {
    on_pool!(db, pool => sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}")))
}

fn zl(s: &str) -> Money {
    s.parse().expect("amount")
}

fn addr(street: &str, postcode: &str, city: &str) -> Address {
    Address {
        street: street.into(),
        postcode: postcode.into(),
        city: city.into(),
    }
}

fn kowalski(ext_id: &str) -> SubscriberRecord {
    SubscriberRecord {
        ext_id: ext_id.into(),
        kind: SubscriberKind::Person,
        first_name: Some("Jan".into()),
        last_name: Some("Kowalski".into()),
        company_name: None,
        pesel: Some(pesel("44051401359").unwrap()),
        nip: None,
        home: addr("ul. Internetowa 1", "30-001", "Kraków"),
        correspondence: None,
        phone: Some("+48 12 345 67 89".into()),
        email: Some("jan.kowalski@example.pl".into()),
        bank_account: Some(nrb("61 1090 1014 0000 0712 1981 2874").unwrap()),
    }
}

fn nowak(ext_id: &str) -> SubscriberRecord {
    SubscriberRecord {
        ext_id: ext_id.into(),
        first_name: Some("Anna".into()),
        last_name: Some("Nowak".into()),
        pesel: Some(pesel("02070803628").unwrap()),
        home: addr("ul. Światłowodowa 7/3", "31-002", "Kraków"),
        email: Some("anna.nowak@example.pl".into()),
        bank_account: Some(nrb("64109010140000000000000042").unwrap()),
        ..kowalski(ext_id)
    }
}

fn company(ext_id: &str) -> SubscriberRecord {
    SubscriberRecord {
        ext_id: ext_id.into(),
        kind: SubscriberKind::Company,
        first_name: None,
        last_name: None,
        company_name: Some("Przykładowa Sp. z o.o.".into()),
        pesel: None,
        nip: Some(nip("526-025-02-74").unwrap()),
        home: addr("ul. Biurowa 10", "00-950", "Warszawa"),
        correspondence: Some(addr("skr. poczt. 12", "00-001", "Warszawa")),
        phone: None,
        email: Some("biuro@example.pl".into()),
        bank_account: None,
    }
}

fn contract(ext_id: &str, subscriber_ext_id: &str, number: &str) -> ContractRecord {
    ContractRecord {
        ext_id: ext_id.into(),
        subscriber_ext_id: subscriber_ext_id.into(),
        number: number.into(),
        starts_on: date!(2013 - 01 - 01),
        ends_on: Some(date!(2013 - 12 - 31)),
        monthly_fee: zl("50,00"),
        tariff: "Internet 100".into(),
        download_kbps: 102_400,
        upload_kbps: 10_240,
        installation: addr("ul. Internetowa 1", "30-001", "Kraków"),
        status: ContractStatus::Active,
    }
}

fn line(position: u32, name: &str, unit_net: &str, rate: VatRate) -> InvoiceLine {
    let a = LineAmounts::from_net(Quantity::ONE, zl(unit_net), rate);
    InvoiceLine {
        position,
        name: name.into(),
        unit: "usł.".into(),
        quantity: Quantity::ONE,
        unit_net: zl(unit_net),
        net: a.net,
        vat_rate: rate,
        vat: a.vat,
        gross: a.gross,
    }
}

fn invoice(
    ext_id: &str,
    subscriber_ext_id: &str,
    number: &str,
    issued_on: Date,
    lines: Vec<InvoiceLine>,
) -> InvoiceRecord {
    InvoiceRecord {
        ext_id: ext_id.into(),
        subscriber_ext_id: subscriber_ext_id.into(),
        number: number.into(),
        issued_on,
        sold_on: issued_on,
        due_on: issued_on + Duration::days(14),
        net: lines.iter().map(|l| l.net).sum(),
        vat: lines.iter().map(|l| l.vat).sum(),
        gross: lines.iter().map(|l| l.gross).sum(),
        status: InvoiceStatus::Issued,
        ksef_number: None,
        ksef_xml: None,
        lines,
    }
}

/// The demo's monthly fee (Abonament): 40,65 net + 23% = 50,00 gross.
fn monthly_invoice(ext_id: &str, subscriber_ext_id: &str, issued_on: Date) -> InvoiceRecord {
    invoice(
        ext_id,
        subscriber_ext_id,
        &format!("FV/{ext_id}"),
        issued_on,
        vec![line(1, "Abonament internetowy", "40,65", VatRate::R23)],
    )
}

fn payment(ext_id: &str, subscriber_ext_id: &str, paid_on: Date, amount: &str) -> PaymentRecord {
    PaymentRecord {
        ext_id: ext_id.into(),
        subscriber_ext_id: subscriber_ext_id.into(),
        paid_on,
        amount: zl(amount),
        title: format!("Abonament {ext_id}"),
        method: "przelew".into(),
    }
}

async fn put_subscriber(db: &Db, rec: &SubscriberRecord) -> i64 {
    in_tx!(db, tx => upsert_subscriber(&mut tx, rec).await).expect("upsert subscriber");
    subscriber_by_ext_id(db, &rec.ext_id)
        .await
        .unwrap()
        .expect("stored")
        .id
}

async fn put_contract(db: &Db, rec: &ContractRecord) -> i64 {
    in_tx!(db, tx => upsert_contract(&mut tx, rec).await).expect("upsert contract");
    let sql = format!("SELECT id FROM contracts WHERE ext_id = '{}'", rec.ext_id);
    count(db, &sql).await
}

// ---------------------------------------------------------------------------------------------
// Subscribers and contracts
// ---------------------------------------------------------------------------------------------

async fn subscriber_upsert_cycle(db: &Db) {
    let rec = kowalski("S1");
    assert_eq!(
        in_tx!(db, tx => upsert_subscriber(&mut tx, &rec).await).unwrap(),
        Upserted::Inserted
    );
    let stored = subscriber_by_ext_id(db, "S1").await.unwrap().unwrap();
    assert_eq!(stored.to_record(), rec);
    assert_eq!(stored.display_name(), "Jan Kowalski");
    assert_eq!(stored.mailing_address(), &rec.home);
    assert_eq!(stored.pesel.as_ref().unwrap().masked(), "440514*****");
    assert_eq!(
        subscriber(db, stored.id).await.unwrap().as_ref(),
        Some(&stored)
    );
    assert_eq!(subscriber(db, stored.id + 1000).await.unwrap(), None);
    assert_eq!(subscriber_by_ext_id(db, "nope").await.unwrap(), None);

    // Same values again: Unchanged, and updated_at is left alone.
    exec(db, "UPDATE subscribers SET updated_at = 1000").await;
    assert_eq!(
        in_tx!(db, tx => upsert_subscriber(&mut tx, &rec).await).unwrap(),
        Upserted::Unchanged
    );
    let after = subscriber(db, stored.id).await.unwrap().unwrap();
    assert_eq!(after.updated_at.unix_timestamp(), 1000);

    // A change: Updated, updated_at moves on, the id stays.
    let mut changed = rec.clone();
    changed.correspondence = Some(addr("ul. Pocztowa 2", "30-002", "Kraków"));
    changed.phone = None;
    assert_eq!(
        in_tx!(db, tx => upsert_subscriber(&mut tx, &changed).await).unwrap(),
        Upserted::Updated
    );
    let after = subscriber(db, stored.id).await.unwrap().unwrap();
    assert!(after.updated_at.unix_timestamp() > 1000);
    assert_eq!(after.to_record(), changed);
    assert_eq!(after.mailing_address().street, "ul. Pocztowa 2");
    assert_eq!(
        in_tx!(db, tx => upsert_subscriber(&mut tx, &changed).await).unwrap(),
        Upserted::Unchanged
    );

    // A company with NIP and correspondence address round-trips too.
    let firm = company("S2");
    assert_eq!(
        in_tx!(db, tx => upsert_subscriber(&mut tx, &firm).await).unwrap(),
        Upserted::Inserted
    );
    let stored = subscriber_by_ext_id(db, "S2").await.unwrap().unwrap();
    assert_eq!(stored.to_record(), firm);
    assert_eq!(stored.display_name(), "Przykładowa Sp. z o.o.");
    assert_eq!(count(db, "SELECT COUNT(*) FROM subscribers").await, 2);

    // A rolled-back transaction leaves nothing behind.
    let mut tx = db.begin().await.unwrap();
    upsert_subscriber(&mut tx, &kowalski("S3")).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(subscriber_by_ext_id(db, "S3").await.unwrap(), None);
}

async fn subscriber_validation(db: &Db) {
    let mut no_name = kowalski("S1");
    no_name.last_name = Some("  ".into());
    let e = in_tx!(db, tx => upsert_subscriber(&mut tx, &no_name).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "last_name",
                ..
            }
        ),
        "{e}"
    );
    let mut firm = company("S2");
    firm.company_name = None;
    let e = in_tx!(db, tx => upsert_subscriber(&mut tx, &firm).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "company_name",
                ..
            }
        ),
        "{e}"
    );
    let e = in_tx!(db, tx => upsert_subscriber(&mut tx, &kowalski("")).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "ext_id",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(count(db, "SELECT COUNT(*) FROM subscribers").await, 0);

    // Records deserialise from JSON with validated identifiers.
    let json = r#"{"ext_id":"S9","kind":"person","first_name":"Jan","last_name":"Kowalski",
        "pesel":"44051401359","home":{"street":"ul. Internetowa 1","postcode":"30-001",
        "city":"Kraków"},"bank_account":"PL61 1090 1014 0000 0712 1981 2874"}"#;
    let rec: SubscriberRecord = serde_json::from_str(json).unwrap();
    assert_eq!(
        rec.bank_account.as_ref().unwrap().as_str(),
        "61109010140000071219812874"
    );
    assert!(serde_json::from_str::<SubscriberRecord>(&json.replace("01359", "01358")).is_err());
    let json = r#"{"ext_id":"C9","subscriber_ext_id":"S9","number":"1/2013","starts_on":
        "2013-01-01","monthly_fee":"50,00","tariff":"Internet 100","download_kbps":102400,
        "upload_kbps":10240,"installation":{"street":"ul. Internetowa 1","postcode":"30-001",
        "city":"Kraków"},"status":"active"}"#;
    let c: ContractRecord = serde_json::from_str(json).unwrap();
    assert_eq!((c.starts_on, c.ends_on), (date!(2013 - 01 - 01), None));
    assert_eq!(c.monthly_fee, zl("50"));
}

async fn contract_upserts_and_reads(db: &Db) {
    // Unknown parent.
    let rec = contract("C1", "S1", "UM/2013/001");
    let e = in_tx!(db, tx => upsert_contract(&mut tx, &rec).await).unwrap_err();
    match e {
        StoreError::UnknownReference { kind, ext_id } => {
            assert_eq!((kind, ext_id.as_str()), (Entity::Subscriber, "S1"))
        }
        other => panic!("{other}"),
    }
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;

    assert_eq!(
        in_tx!(db, tx => upsert_contract(&mut tx, &rec).await).unwrap(),
        Upserted::Inserted
    );
    exec(db, "UPDATE contracts SET updated_at = 1000").await;
    assert_eq!(
        in_tx!(db, tx => upsert_contract(&mut tx, &rec).await).unwrap(),
        Upserted::Unchanged
    );
    let c1 = contracts_of(db, s1).await.unwrap();
    assert_eq!(c1.len(), 1);
    assert_eq!(c1[0].to_record("S1".into()), rec);
    assert_eq!(c1[0].updated_at.unix_timestamp(), 1000);

    // Open-ended extension and a new fee.
    let mut longer = rec.clone();
    longer.ends_on = None;
    longer.monthly_fee = zl("59,99");
    longer.status = ContractStatus::Suspended;
    assert_eq!(
        in_tx!(db, tx => upsert_contract(&mut tx, &longer).await).unwrap(),
        Upserted::Updated
    );
    let c1 = contracts_of(db, s1).await.unwrap();
    assert_eq!(c1[0].to_record("S1".into()), longer);
    assert!(c1[0].updated_at.unix_timestamp() > 1000);

    // A second, newer contract comes first.
    let mut second = contract("C2", "S1", "UM/2014/007");
    second.starts_on = date!(2014 - 03 - 01);
    second.ends_on = None;
    put_contract(db, &second).await;
    let numbers: Vec<String> = contracts_of(db, s1)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.number)
        .collect();
    assert_eq!(numbers, ["UM/2014/007", "UM/2013/001"]);
    assert!(contracts_of(db, s2).await.unwrap().is_empty());

    // Ownership check.
    let id = c1[0].id;
    assert_eq!(
        contract_for(db, s1, id).await.unwrap().map(|c| c.id),
        Some(id)
    );
    assert_eq!(contract_for(db, s2, id).await.unwrap(), None);

    // A contract number held by another contract.
    let clash = contract("C3", "S2", "UM/2013/001");
    let e = in_tx!(db, tx => upsert_contract(&mut tx, &clash).await).unwrap_err();
    match e {
        StoreError::Duplicate { field, value } => {
            assert_eq!(
                (field, value.as_str()),
                (UniqueField::ContractNumber, "UM/2013/001")
            )
        }
        other => panic!("{other}"),
    }

    // End before start.
    let mut bad = contract("C4", "S2", "UM/2013/009");
    bad.ends_on = Some(date!(2012 - 12 - 31));
    let e = in_tx!(db, tx => upsert_contract(&mut tx, &bad).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "ends_on",
                ..
            }
        ),
        "{e}"
    );

    // Moving a contract to another subscriber is an update.
    let mut moved = second.clone();
    moved.subscriber_ext_id = "S2".into();
    assert_eq!(
        in_tx!(db, tx => upsert_contract(&mut tx, &moved).await).unwrap(),
        Upserted::Updated
    );
    assert_eq!(contracts_of(db, s2).await.unwrap().len(), 1);
    assert_eq!(contracts_of(db, s1).await.unwrap().len(), 1);
}

async fn pppoe_accounts_ips_and_login_join(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    put_subscriber(db, &nowak("S2")).await;
    let c1 = put_contract(db, &contract("C1", "S1", "UM/1")).await;
    let c2 = put_contract(db, &contract("C2", "S2", "UM/2")).await;

    let acc = PppoeAccountRecord {
        ext_id: "P1".into(),
        contract_ext_id: "C1".into(),
        login: "jan.kowalski@isp".into(),
        password: Some("tajne-haslo".into()),
    };
    assert!(!format!("{acc:?}").contains("tajne"));
    let e = in_tx!(db, tx => upsert_pppoe_account(&mut tx, &PppoeAccountRecord {
        contract_ext_id: "C9".into(),
        ..acc.clone()
    })
    .await)
    .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::UnknownReference { kind: Entity::Contract, ref ext_id } if ext_id == "C9"
        ),
        "{e}"
    );
    assert_eq!(
        in_tx!(db, tx => upsert_pppoe_account(&mut tx, &acc).await).unwrap(),
        Upserted::Inserted
    );
    assert_eq!(
        in_tx!(db, tx => upsert_pppoe_account(&mut tx, &acc).await).unwrap(),
        Upserted::Unchanged
    );
    let new_password = PppoeAccountRecord {
        password: Some("nowe".into()),
        ..acc.clone()
    };
    assert_eq!(
        in_tx!(db, tx => upsert_pppoe_account(&mut tx, &new_password).await).unwrap(),
        Upserted::Updated
    );
    let accounts = pppoe_accounts_of(db, c1).await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].password.as_deref(), Some("nowe"));
    assert!(!format!("{:?}", accounts[0]).contains("nowe"));
    assert!(pppoe_accounts_of(db, c2).await.unwrap().is_empty());

    // The same login on another account.
    let clash = PppoeAccountRecord {
        ext_id: "P2".into(),
        contract_ext_id: "C2".into(),
        login: "jan.kowalski@isp".into(),
        password: None,
    };
    let e = in_tx!(db, tx => upsert_pppoe_account(&mut tx, &clash).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Duplicate {
                field: UniqueField::PppoeLogin,
                ..
            }
        ),
        "{e}"
    );

    // The live-session join.
    let (s, c) = subscriber_by_login(db, "jan.kowalski@isp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.id, c.id), (s1, c1));
    assert_eq!(s.display_name(), "Jan Kowalski");
    assert_eq!(c.number, "UM/1");
    assert_eq!(
        subscriber_by_login(db, "JAN.KOWALSKI@ISP").await.unwrap(),
        None
    );
    assert_eq!(subscriber_by_login(db, "nobody").await.unwrap(), None);

    // IPs: a static address and a delegated IPv6 prefix.
    let v4 = IpAssignmentRecord {
        ext_id: "I1".into(),
        contract_ext_id: "C1".into(),
        address: parse_ip_or_net("192.0.2.10").unwrap(),
        kind: IpKind::Static,
        activated_on: Some(date!(2013 - 01 - 02)),
        installation: None,
    };
    let v6 = IpAssignmentRecord {
        ext_id: "I2".into(),
        contract_ext_id: "C1".into(),
        address: parse_ip_or_net("2001:db8:1::/48").unwrap(),
        kind: IpKind::Pool,
        activated_on: None,
        installation: Some(addr("ul. Internetowa 1/2", "30-001", "Kraków")),
    };
    for r in [&v4, &v6] {
        assert_eq!(
            in_tx!(db, tx => upsert_ip_assignment(&mut tx, r).await).unwrap(),
            Upserted::Inserted
        );
        assert_eq!(
            in_tx!(db, tx => upsert_ip_assignment(&mut tx, r).await).unwrap(),
            Upserted::Unchanged
        );
    }
    let moved = IpAssignmentRecord {
        contract_ext_id: "C2".into(),
        ..v4.clone()
    };
    assert_eq!(
        in_tx!(db, tx => upsert_ip_assignment(&mut tx, &moved).await).unwrap(),
        Upserted::Updated
    );
    let on_c1 = ip_assignments_of(db, c1).await.unwrap();
    assert_eq!(on_c1.len(), 1);
    assert_eq!(on_c1[0].to_record("C1".into()), v6);
    assert_eq!(on_c1[0].address_text(), "2001:db8:1::/48");
    let on_c2 = ip_assignments_of(db, c2).await.unwrap();
    assert_eq!(on_c2[0].address_text(), "192.0.2.10");
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    let found = ip_assignments_by_address(db, ip).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].contract_id, c2);
    assert!(ip_assignments_by_address(db, "192.0.2.11".parse().unwrap())
        .await
        .unwrap()
        .is_empty());
    let e = in_tx!(db, tx => upsert_ip_assignment(&mut tx, &IpAssignmentRecord {
        contract_ext_id: "C404".into(),
        ..v4.clone()
    })
    .await)
    .unwrap_err();
    assert!(matches!(e, StoreError::UnknownReference { .. }), "{e}");
}

async fn registration_lookups(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    let s3 = put_subscriber(db, &company("S3")).await;
    let c1 = put_contract(db, &contract("C1", "S1", "UM/2013/001")).await;
    put_contract(db, &contract("C2", "S2", "UM/2013/002")).await;
    let c3 = put_contract(db, &contract("C3", "S3", "UM/2013/003")).await;

    let jan = pesel("44051401359").unwrap();
    let anna = pesel("02070803628").unwrap();
    let (s, c) = subscriber_by_pesel_and_contract(db, &jan, "UM/2013/001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.id, c.id), (s1, c1));
    // Surrounding spaces in the typed number are forgiven.
    assert!(subscriber_by_pesel_and_contract(db, &jan, " UM/2013/001 ")
        .await
        .unwrap()
        .is_some());
    // Someone else's contract, or an unknown one.
    assert_eq!(
        subscriber_by_pesel_and_contract(db, &jan, "UM/2013/002")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        subscriber_by_pesel_and_contract(db, &anna, "UM/2013/001")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        subscriber_by_pesel_and_contract(db, &anna, "UM/2013/002")
            .await
            .unwrap()
            .map(|(s, _)| s.id),
        Some(s2)
    );
    assert_eq!(
        subscriber_by_pesel_and_contract(db, &jan, "UM/9")
            .await
            .unwrap(),
        None
    );

    let firm = nip("5260250274").unwrap();
    let (s, c) = subscriber_by_nip_and_contract(db, &firm, "UM/2013/003")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.id, c.id), (s3, c3));
    assert_eq!(
        subscriber_by_nip_and_contract(db, &firm, "UM/2013/001")
            .await
            .unwrap(),
        None
    );
    let other = nip("7740001454").unwrap();
    assert_eq!(
        subscriber_by_nip_and_contract(db, &other, "UM/2013/003")
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Billing
// ---------------------------------------------------------------------------------------------

async fn invoice_upserts_with_lines(db: &Db) {
    let early = monthly_invoice("F1", "S1", date!(2013 - 01 - 31));
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &early).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::UnknownReference {
                kind: Entity::Subscriber,
                ..
            }
        ),
        "{e}"
    );
    let s1 = put_subscriber(db, &kowalski("S1")).await;

    let mut rec = invoice(
        "F1",
        "S1",
        "FV/2013/01/001",
        date!(2013 - 01 - 31),
        vec![
            line(1, "Abonament internetowy 01/2013", "40,65", VatRate::R23),
            line(2, "Instalacja", "100,00", VatRate::R8),
            line(3, "Opłata pocztowa", "5,00", VatRate::Np),
        ],
    );
    rec.ksef_number = Some("5260250274-20130131-0123456789AB-48".into());
    assert_eq!(rec.gross, zl("50,00") + zl("108,00") + zl("5,00"));
    assert_eq!(
        in_tx!(db, tx => upsert_invoice(&mut tx, &rec).await).unwrap(),
        Upserted::Inserted
    );
    let page = invoices_of(db, s1, Page::first(10)).await.unwrap();
    assert_eq!(page.total, 1);
    let (inv, lines) = invoice_for(db, s1, page.items[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inv.to_record("S1".into(), lines.clone()), rec);
    let totals = vat_totals(&lines);
    assert_eq!(
        totals.iter().map(|t| t.rate).collect::<Vec<_>>(),
        [VatRate::R23, VatRate::R8, VatRate::Np]
    );
    assert_eq!(totals[1].vat, zl("8,00"));

    // Same invoice, lines listed in another order: still unchanged.
    exec(db, "UPDATE invoices SET updated_at = 1000").await;
    let mut shuffled = rec.clone();
    shuffled.lines.reverse();
    assert_eq!(
        in_tx!(db, tx => upsert_invoice(&mut tx, &shuffled).await).unwrap(),
        Upserted::Unchanged
    );
    let (inv, _) = invoice_for(db, s1, inv.id).await.unwrap().unwrap();
    assert_eq!(inv.updated_at.unix_timestamp(), 1000);

    // Only the status changes (paid): updated, lines kept.
    let mut paid = rec.clone();
    paid.status = InvoiceStatus::Paid;
    assert_eq!(
        in_tx!(db, tx => upsert_invoice(&mut tx, &paid).await).unwrap(),
        Upserted::Updated
    );
    let (inv, lines) = invoice_for(db, s1, inv.id).await.unwrap().unwrap();
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert!(inv.updated_at.unix_timestamp() > 1000);
    assert_eq!(lines.len(), 3);

    // A corrected invoice with fewer lines: the stored lines are replaced.
    let corrected = InvoiceRecord {
        ext_id: "F1".into(),
        ..invoice(
            "F1",
            "S1",
            "FV/2013/01/001",
            date!(2013 - 01 - 31),
            vec![line(
                1,
                "Abonament internetowy 01/2013",
                "40,65",
                VatRate::R23,
            )],
        )
    };
    assert_eq!(
        in_tx!(db, tx => upsert_invoice(&mut tx, &corrected).await).unwrap(),
        Upserted::Updated
    );
    let (inv, lines) = invoice_for(db, s1, inv.id).await.unwrap().unwrap();
    assert_eq!(inv.to_record("S1".into(), lines.clone()), corrected);
    assert_eq!(count(db, "SELECT COUNT(*) FROM invoice_lines").await, 1);

    // Quantity with thousandths and a gross-based line survive the round trip.
    let a = LineAmounts::from_gross("2,5".parse().unwrap(), zl("12,30"), VatRate::R23);
    let fractional = invoice(
        "F2",
        "S1",
        "FV/2013/02/001",
        date!(2013 - 02 - 28),
        vec![InvoiceLine {
            position: 1,
            name: "Transfer ponad limit".into(),
            unit: "GB".into(),
            quantity: "2,5".parse().unwrap(),
            unit_net: zl("10,00"),
            net: a.net,
            vat_rate: VatRate::R23,
            vat: a.vat,
            gross: a.gross,
        }],
    );
    put_invoice(db, &fractional).await;
    let page = invoices_of(db, s1, Page::first(10)).await.unwrap();
    let (inv, lines) = invoice_for(db, s1, page.items[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inv.number, "FV/2013/02/001");
    assert_eq!(lines[0].quantity, Quantity::from_milli(2500));
    assert_eq!(inv.to_record("S1".into(), lines), fractional);

    // An invoice number already used by another invoice.
    let clash = monthly_invoice("F3", "S1", date!(2013 - 03 - 31));
    let clash = InvoiceRecord {
        number: "FV/2013/01/001".into(),
        ..clash
    };
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &clash).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Duplicate { field: UniqueField::InvoiceNumber, ref value }
                if value == "FV/2013/01/001"
        ),
        "{e}"
    );
}

async fn put_invoice(db: &Db, rec: &InvoiceRecord) {
    in_tx!(db, tx => upsert_invoice(&mut tx, rec).await).expect("upsert invoice");
}

async fn invoice_totals_are_verified(db: &Db) {
    put_subscriber(db, &kowalski("S1")).await;
    let good = invoice(
        "F1",
        "S1",
        "FV/1",
        date!(2013 - 01 - 31),
        vec![
            line(1, "Abonament", "40,65", VatRate::R23),
            line(2, "Usługa zwolniona", "10,00", VatRate::Zw),
        ],
    );
    let expect_totals = |e: StoreError, what: &str, stated: &str, computed: &str| match e {
        StoreError::InvoiceTotals {
            number,
            what: w,
            stated: s,
            computed: c,
        } => {
            assert_eq!(number, "FV/1");
            assert_eq!(w, what);
            assert_eq!((s, c), (zl(stated), zl(computed)));
        }
        other => panic!("{other}"),
    };

    let mut bad = good.clone();
    bad.gross = zl("60,01");
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    expect_totals(e, "gross total", "60,01", "60,00");

    let mut bad = good.clone();
    bad.net = zl("50,66");
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    expect_totals(e, "net total", "50,66", "50,65");

    let mut bad = good.clone();
    bad.vat = zl("9,34");
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    expect_totals(e, "VAT total", "9,34", "9,35");

    let mut bad = good.clone();
    bad.lines[0].gross = zl("50,01");
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    expect_totals(e, "line 1 gross", "50,01", "50,00");

    let mut bad = good.clone();
    bad.lines[1].vat = zl("0,80");
    bad.lines[1].gross = zl("10,80");
    bad.vat += zl("0,80");
    bad.gross += zl("0,80");
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    expect_totals(e, "line 2 VAT at zw", "0,80", "0,00");

    let mut bad = good.clone();
    bad.lines[1].position = 1;
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { field: "lines", .. }),
        "{e}"
    );

    let mut bad = good.clone();
    bad.lines.clear();
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { field: "lines", .. }),
        "{e}"
    );

    // Nothing was stored by the rejected ones; the good one goes in.
    assert_eq!(count(db, "SELECT COUNT(*) FROM invoices").await, 0);
    put_invoice(db, &good).await;
    assert_eq!(count(db, "SELECT COUNT(*) FROM invoice_lines").await, 2);

    // A bad update of a stored invoice leaves the stored one as it was.
    let mut bad = good.clone();
    bad.lines.pop();
    let e = in_tx!(db, tx => upsert_invoice(&mut tx, &bad).await).unwrap_err();
    expect_totals(e, "net total", "50,65", "40,65");
    assert_eq!(count(db, "SELECT COUNT(*) FROM invoice_lines").await, 2);
}

async fn invoice_ownership(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    put_invoice(db, &monthly_invoice("F1", "S1", date!(2013 - 01 - 31))).await;
    put_invoice(db, &monthly_invoice("F2", "S2", date!(2013 - 01 - 31))).await;
    let mine = invoices_of(db, s1, Page::first(10)).await.unwrap().items;
    let theirs = invoices_of(db, s2, Page::first(10)).await.unwrap().items;
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    assert!(invoice_for(db, s1, mine[0].id).await.unwrap().is_some());
    // Another subscriber's invoice id gives nothing, like a missing id.
    assert_eq!(invoice_for(db, s1, theirs[0].id).await.unwrap(), None);
    assert_eq!(invoice_for(db, s2, mine[0].id).await.unwrap(), None);
    assert_eq!(invoice_for(db, s1, 987_654).await.unwrap(), None);
    assert_eq!(
        invoice_for(db, s2, theirs[0].id)
            .await
            .unwrap()
            .map(|(i, _)| i.number),
        Some("FV/F2".to_owned())
    );
}

async fn payments_upsert(db: &Db) {
    let rec = payment("P1", "S1", date!(2013 - 02 - 05), "50,00");
    let e = in_tx!(db, tx => upsert_payment(&mut tx, &rec).await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::UnknownReference {
                kind: Entity::Subscriber,
                ..
            }
        ),
        "{e}"
    );
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    assert_eq!(
        in_tx!(db, tx => upsert_payment(&mut tx, &rec).await).unwrap(),
        Upserted::Inserted
    );
    exec(db, "UPDATE payments SET updated_at = 1000").await;
    assert_eq!(
        in_tx!(db, tx => upsert_payment(&mut tx, &rec).await).unwrap(),
        Upserted::Unchanged
    );
    let stored = payments_of(db, s1, Page::first(10)).await.unwrap().items;
    assert_eq!(stored[0].to_record("S1".into()), rec);
    assert_eq!(stored[0].updated_at.unix_timestamp(), 1000);
    let mut corrected = rec.clone();
    corrected.amount = zl("-50,00");
    corrected.title = "Zwrot nadpłaty".into();
    assert_eq!(
        in_tx!(db, tx => upsert_payment(&mut tx, &corrected).await).unwrap(),
        Upserted::Updated
    );
    let stored = payments_of(db, s1, Page::first(10)).await.unwrap().items;
    assert_eq!(stored[0].to_record("S1".into()), corrected);
    assert_eq!(stored.len(), 1);
}

async fn pagination(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    {
        let mut tx = db.begin().await.unwrap();
        for i in 0..25u8 {
            let day = date!(2012 - 01 - 01) + Duration::days(i64::from(i) * 31);
            upsert_invoice(&mut tx, &monthly_invoice(&format!("F{i:02}"), "S1", day))
                .await
                .unwrap();
            upsert_payment(&mut tx, &payment(&format!("P{i:02}"), "S1", day, "50,00"))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let mut seen = Vec::new();
    for n in 1..=3 {
        let page = invoices_of(db, s1, Page::new(n, 10)).await.unwrap();
        assert_eq!(page.total, 25);
        assert_eq!(page.pages(), 3);
        assert_eq!(page.has_next(), n < 3);
        assert_eq!(page.items.len(), if n < 3 { 10 } else { 5 });
        seen.extend(page.items.into_iter().map(|i| i.issued_on));
    }
    // Newest first, nothing repeated or lost across pages.
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 25);
    assert!(invoices_of(db, s1, Page::new(4, 10))
        .await
        .unwrap()
        .items
        .is_empty());
    let none = invoices_of(db, s2, Page::first(10)).await.unwrap();
    assert_eq!((none.total, none.items.len(), none.pages()), (0, 0, 1));

    let p = payments_of(db, s1, Page::new(2, 20)).await.unwrap();
    assert_eq!((p.total, p.items.len()), (25, 5));
    let first = payments_of(db, s1, Page::first(1)).await.unwrap();
    assert_eq!(first.items[0].ext_id, "P24");
    assert_eq!(first.pages(), 25);
    assert!(payments_of(db, s2, Page::first(5))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn balance_and_ledger(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    assert_eq!(balance(db, s1).await.unwrap(), Money::ZERO);
    assert!(ledger(db, s1).await.unwrap().is_empty());

    put_invoice(db, &monthly_invoice("F1", "S1", date!(2013 - 01 - 31))).await;
    put_invoice(db, &monthly_invoice("F2", "S1", date!(2013 - 02 - 28))).await;
    let mut cancelled = monthly_invoice("F3", "S1", date!(2013 - 03 - 10));
    cancelled.status = InvoiceStatus::Cancelled;
    put_invoice(db, &cancelled).await;
    let mut overdue = monthly_invoice("F4", "S1", date!(2013 - 03 - 31));
    overdue.status = InvoiceStatus::Overdue;
    put_invoice(db, &overdue).await;
    for p in [
        payment("P1", "S1", date!(2013 - 02 - 05), "50,00"),
        payment("P2", "S1", date!(2013 - 02 - 28), "30,00"),
        payment("P3", "S2", date!(2013 - 02 - 28), "999,99"),
    ] {
        in_tx!(db, tx => upsert_payment(&mut tx, &p).await).unwrap();
    }
    // 80,00 paid − 150,00 invoiced (the cancelled one does not count).
    assert_eq!(balance(db, s1).await.unwrap(), zl("-70,00"));
    assert_eq!(balance(db, s2).await.unwrap(), zl("999,99"));

    let l = ledger(db, s1).await.unwrap();
    let view: Vec<(Date, &str, Money, Money)> = l
        .iter()
        .map(|e| {
            let label = match &e.item {
                LedgerItem::Invoice { number, .. } => number.as_str(),
                LedgerItem::Payment { title, .. } => title.as_str(),
            };
            (e.date, label, e.amount, e.balance)
        })
        .collect();
    assert_eq!(
        view,
        [
            (date!(2013 - 01 - 31), "FV/F1", zl("-50"), zl("-50")),
            (date!(2013 - 02 - 05), "Abonament P1", zl("50"), zl("0")),
            // Same day: the invoice before the payment.
            (date!(2013 - 02 - 28), "FV/F2", zl("-50"), zl("-50")),
            (date!(2013 - 02 - 28), "Abonament P2", zl("30"), zl("-20")),
            (date!(2013 - 03 - 31), "FV/F4", zl("-50"), zl("-70")),
        ]
    );
    assert_eq!(l.last().unwrap().balance, balance(db, s1).await.unwrap());
    match &l[0].item {
        LedgerItem::Invoice { due_on, .. } => assert_eq!(*due_on, date!(2013 - 02 - 14)),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Panel
// ---------------------------------------------------------------------------------------------

async fn consents(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    assert_eq!(current_consent(db, s1).await.unwrap(), None);
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    let given =
        in_tx!(db, tx => record_consent(&mut tx, s1, true, Some(ip), "2013-01").await).unwrap();
    let c = current_consent(db, s1).await.unwrap().unwrap();
    assert_eq!(
        (c.id, c.given, c.ip, c.text_version.as_str()),
        (given, true, Some(ip), "2013-01")
    );
    let before = OffsetDateTime::now_utc() - Duration::minutes(1);
    assert!(c.at > before);
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    in_tx!(db, tx => record_consent(&mut tx, s1, false, Some(v6), "2013-01").await).unwrap();
    in_tx!(db, tx => record_consent(&mut tx, s2, true, None, "2014-02").await).unwrap();
    let c = current_consent(db, s1).await.unwrap().unwrap();
    assert!(!c.given);
    assert_eq!(c.ip, Some(v6));
    let history = consent_history(db, s1).await.unwrap();
    assert_eq!(
        history.iter().map(|c| c.given).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(current_consent(db, s2).await.unwrap().unwrap().ip, None);
    let e = in_tx!(db, tx => record_consent(&mut tx, 424_242, true, None, "x").await).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::Subscriber,
                id: 424_242
            }
        ),
        "{e}"
    );
}

async fn panel_accounts(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    let s3 = put_subscriber(db, &company("S3")).await;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let id = in_tx!(db, tx => create_panel_account(
        &mut tx, s1, "Jan.Kowalski", hash, "Jan.Kowalski@Example.pl"
    )
    .await)
    .unwrap();
    let a = panel_account(db, id).await.unwrap().unwrap();
    assert_eq!((a.subscriber_id, a.login.as_str()), (s1, "Jan.Kowalski"));
    assert_eq!(a.password_hash, hash);
    assert!(!a.disabled && a.email_confirmed_at.is_none());
    assert!(!format!("{a:?}").contains("argon2"));

    for login in ["jan.kowalski", "JAN.KOWALSKI", " Jan.Kowalski "] {
        assert_eq!(
            panel_account_by_login(db, login)
                .await
                .unwrap()
                .map(|a| a.id),
            Some(id),
            "{login}"
        );
    }
    assert_eq!(panel_account_by_login(db, "jan").await.unwrap(), None);
    assert_eq!(
        panel_account_of_subscriber(db, s1)
            .await
            .unwrap()
            .map(|a| a.id),
        Some(id)
    );
    assert_eq!(panel_account_of_subscriber(db, s2).await.unwrap(), None);
    assert_eq!(panel_account(db, id + 100).await.unwrap(), None);

    // The same login in another case is taken; the transaction stays usable afterwards.
    let mut tx = db.begin().await.unwrap();
    let e = create_panel_account(&mut tx, s2, "JAN.kowalski", hash, "anna@example.pl")
        .await
        .unwrap_err();
    match e {
        StoreError::Duplicate { field, value } => {
            assert_eq!(
                (field, value.as_str()),
                (UniqueField::PanelLogin, "JAN.kowalski")
            )
        }
        other => panic!("{other}"),
    }
    let e = create_panel_account(&mut tx, s1, "jan2", hash, "jan@example.pl")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Duplicate {
                field: UniqueField::PanelAccountOfSubscriber,
                ..
            }
        ),
        "{e}"
    );
    let anna = create_panel_account(&mut tx, s2, "anna", hash, "anna@example.pl")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let firm = in_tx!(db, tx => create_panel_account(
        &mut tx, s3, "Zażółć", hash, "biuro@example.pl"
    )
    .await)
    .unwrap();
    assert_eq!(
        panel_account_by_login(db, "ZAŻÓŁĆ")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(firm)
    );
    let e = in_tx!(db, tx => create_panel_account(&mut tx, s2, "  ", hash, "x@example.pl").await)
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { field: "login", .. }),
        "{e}"
    );
    let e = in_tx!(db, tx => create_panel_account(
        &mut tx, 777_777, "ghost", hash, "g@example.pl"
    )
    .await)
    .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::Subscriber,
                ..
            }
        ),
        "{e}"
    );

    // Recovery by e-mail ignores case.
    let by_mail = panel_accounts_by_email(db, "jan.kowalski@EXAMPLE.PL")
        .await
        .unwrap();
    assert_eq!(by_mail.iter().map(|a| a.id).collect::<Vec<_>>(), [id]);
    assert!(panel_accounts_by_email(db, "nobody@example.pl")
        .await
        .unwrap()
        .is_empty());

    // Changes.
    in_tx!(db, tx => confirm_email(&mut tx, id).await).unwrap();
    assert!(panel_account(db, id)
        .await
        .unwrap()
        .unwrap()
        .email_confirmed_at
        .is_some());
    in_tx!(db, tx => set_email(&mut tx, id, "nowy@example.pl").await).unwrap();
    let a = panel_account(db, id).await.unwrap().unwrap();
    assert_eq!(a.email, "nowy@example.pl");
    assert!(a.email_confirmed_at.is_none());
    assert_eq!(
        panel_accounts_by_email(db, "NOWY@example.pl")
            .await
            .unwrap()
            .len(),
        1
    );
    in_tx!(db, tx => set_password_hash(&mut tx, id, "$argon2id$new").await).unwrap();
    in_tx!(db, tx => set_disabled(&mut tx, id, true).await).unwrap();
    let a = panel_account(db, id).await.unwrap().unwrap();
    assert_eq!(a.password_hash, "$argon2id$new");
    assert!(a.disabled);
    in_tx!(db, tx => set_disabled(&mut tx, id, false).await).unwrap();
    assert!(!panel_account(db, id).await.unwrap().unwrap().disabled);
    assert!(!panel_account(db, anna).await.unwrap().unwrap().disabled);
    for e in [
        in_tx!(db, tx => set_password_hash(&mut tx, 999, "x").await).unwrap_err(),
        in_tx!(db, tx => set_email(&mut tx, 999, "x@example.pl").await).unwrap_err(),
        in_tx!(db, tx => confirm_email(&mut tx, 999).await).unwrap_err(),
        in_tx!(db, tx => set_disabled(&mut tx, 999, true).await).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                StoreError::NotFound {
                    kind: Entity::PanelAccount,
                    id: 999
                }
            ),
            "{e}"
        );
    }
}

async fn tickets(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let s2 = put_subscriber(db, &nowak("S2")).await;
    let t1 = in_tx!(db, tx => create_ticket(
        &mut tx, Some(s1), None, "Brak internetu", "Od rana nie działa."
    )
    .await)
    .unwrap();
    let t2 = in_tx!(db, tx => create_ticket(
        &mut tx, Some(s1), None, "Faktura", "Proszę o duplikat."
    )
    .await)
    .unwrap();
    let visitor = in_tx!(db, tx => create_ticket(
        &mut tx, None, Some("Piotr, 600 100 200"), "Zasięg", "Czy jest zasięg na ul. Polnej?"
    )
    .await)
    .unwrap();
    let t = ticket_for(db, s1, t1).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.subject.as_str()),
        (TicketStatus::Open, "Brak internetu")
    );
    assert_eq!(ticket_for(db, s2, t1).await.unwrap(), None);
    assert_eq!(ticket_for(db, s1, visitor).await.unwrap(), None);

    in_tx!(db, tx => add_ticket_message(&mut tx, t1, Author::Office, "Sprawdzamy.").await).unwrap();
    assert_eq!(
        ticket_for(db, s1, t1).await.unwrap().unwrap().status,
        TicketStatus::Answered
    );
    in_tx!(db, tx => add_ticket_message(&mut tx, t1, Author::Subscriber, "Nadal nie działa.").await)
        .unwrap();
    assert_eq!(
        ticket_for(db, s1, t1).await.unwrap().unwrap().status,
        TicketStatus::Open
    );
    let messages = ticket_messages(db, t1).await.unwrap();
    assert_eq!(
        messages
            .iter()
            .map(|m| (m.author, m.body.as_str()))
            .collect::<Vec<_>>(),
        [
            (Author::Subscriber, "Od rana nie działa."),
            (Author::Office, "Sprawdzamy."),
            (Author::Subscriber, "Nadal nie działa."),
        ]
    );
    in_tx!(db, tx => set_ticket_status(&mut tx, t1, TicketStatus::Closed).await).unwrap();
    assert_eq!(
        ticket_for(db, s1, t1).await.unwrap().unwrap().status,
        TicketStatus::Closed
    );

    // Most recently active first.
    exec(
        db,
        &format!("UPDATE tickets SET updated_at = 2000 WHERE id = {t1}"),
    )
    .await;
    exec(
        db,
        &format!("UPDATE tickets SET updated_at = 1000 WHERE id = {t2}"),
    )
    .await;
    let mine: Vec<i64> = tickets_of(db, s1)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(mine, [t1, t2]);
    assert!(tickets_of(db, s2).await.unwrap().is_empty());
    assert_eq!(ticket_messages(db, visitor).await.unwrap().len(), 1);
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM tickets WHERE subscriber_id IS NULL"
        )
        .await,
        1
    );

    let e = in_tx!(db, tx => add_ticket_message(&mut tx, 999_999, Author::Office, "x").await)
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::Ticket,
                ..
            }
        ),
        "{e}"
    );
    let e = in_tx!(db, tx => set_ticket_status(&mut tx, 999_999, TicketStatus::Closed).await)
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::Ticket,
                ..
            }
        ),
        "{e}"
    );
    let e =
        in_tx!(db, tx => create_ticket(&mut tx, Some(s1), None, "Temat", " ").await).unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { field: "body", .. }),
        "{e}"
    );
    let e = in_tx!(db, tx => create_ticket(&mut tx, Some(123_456), None, "Temat", "Treść").await)
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::Subscriber,
                ..
            }
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------

async fn services_and_orders(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    let static_ip = ServiceRecord {
        ext_id: "SV1".into(),
        name: "Stały adres IP".into(),
        description: "Publiczny, stały adres IPv4.".into(),
        price: zl("10,00"),
        active: true,
    };
    let tv = ServiceRecord {
        ext_id: "SV2".into(),
        name: "Telewizja".into(),
        description: "Pakiet podstawowy.".into(),
        price: zl("29,99"),
        active: false,
    };
    for s in [&static_ip, &tv] {
        assert_eq!(
            in_tx!(db, tx => upsert_service(&mut tx, s).await).unwrap(),
            Upserted::Inserted
        );
        assert_eq!(
            in_tx!(db, tx => upsert_service(&mut tx, s).await).unwrap(),
            Upserted::Unchanged
        );
    }
    let active = active_services(db).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].to_record(), static_ip);
    let sv1 = active[0].id;
    let cheaper = ServiceRecord {
        price: zl("5,00"),
        ..static_ip.clone()
    };
    assert_eq!(
        in_tx!(db, tx => upsert_service(&mut tx, &cheaper).await).unwrap(),
        Upserted::Updated
    );
    assert_eq!(service(db, sv1).await.unwrap().unwrap().price, zl("5,00"));
    let sv2 = count(db, "SELECT id FROM services WHERE ext_id = 'SV2'").await;
    assert!(!service(db, sv2).await.unwrap().unwrap().active);
    assert_eq!(service(db, 999_999).await.unwrap(), None);

    // Orders: by a subscriber, by a visitor.
    let mine = in_tx!(db, tx => create_service_order(&mut tx, &NewServiceOrder {
        subscriber_id: Some(s1),
        service_id: sv1,
        note: "Od przyszłego miesiąca".into(),
        ..Default::default()
    })
    .await)
    .unwrap();
    let visitors = in_tx!(db, tx => create_service_order(&mut tx, &NewServiceOrder {
        service_id: sv1,
        contact_name: Some("Piotr Zieliński".into()),
        contact_phone: Some("600 100 200".into()),
        ..Default::default()
    })
    .await)
    .unwrap();
    let orders = service_orders_of(db, s1).await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!((orders[0].id, orders[0].status), (mine, OrderStatus::New));
    assert_eq!(orders[0].note, "Od przyszłego miesiąca");
    let queue: Vec<i64> = service_orders_by_status(db, OrderStatus::New)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(queue, [mine, visitors]);
    in_tx!(db, tx => set_service_order_status(&mut tx, visitors, OrderStatus::InProgress).await)
        .unwrap();
    let in_progress = service_orders_by_status(db, OrderStatus::InProgress)
        .await
        .unwrap();
    assert_eq!(in_progress.len(), 1);
    assert_eq!(in_progress[0].contact_phone.as_deref(), Some("600 100 200"));
    assert_eq!(in_progress[0].subscriber_id, None);

    let e = in_tx!(db, tx => set_service_order_status(&mut tx, 999_999, OrderStatus::Done).await)
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::ServiceOrder,
                ..
            }
        ),
        "{e}"
    );
    let e = in_tx!(db, tx => create_service_order(&mut tx, &NewServiceOrder {
        service_id: sv1,
        contact_name: Some("Anonim".into()),
        ..Default::default()
    })
    .await)
    .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    let e = in_tx!(db, tx => create_service_order(&mut tx, &NewServiceOrder {
        subscriber_id: Some(s1),
        service_id: sv2,
        ..Default::default()
    })
    .await)
    .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "service_id",
                ..
            }
        ),
        "{e}"
    );
    let e = in_tx!(db, tx => create_service_order(&mut tx, &NewServiceOrder {
        subscriber_id: Some(s1),
        service_id: 999_999,
        ..Default::default()
    })
    .await)
    .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                kind: Entity::Service,
                ..
            }
        ),
        "{e}"
    );
}

async fn news_and_faq(db: &Db) {
    let now = OffsetDateTime::now_utc();
    let mut tx = db.begin().await.unwrap();
    for i in 0..12i64 {
        let rec = NewsRecord {
            ext_id: format!("N{i:02}"),
            title: format!("Aktualność {i}"),
            body_md: format!("Treść **{i}**"),
            published_at: datetime!(2013-01-01 10:00:00.123 UTC) + Duration::days(i),
        };
        assert_eq!(
            upsert_news(&mut tx, &rec).await.unwrap(),
            Upserted::Inserted
        );
        // Sub-second parts are not stored, and do not make a change.
        assert_eq!(
            upsert_news(&mut tx, &rec).await.unwrap(),
            Upserted::Unchanged
        );
    }
    let future = NewsRecord {
        ext_id: "NF".into(),
        title: "Przerwa techniczna".into(),
        body_md: "Jutro.".into(),
        published_at: now + Duration::days(1),
    };
    upsert_news(&mut tx, &future).await.unwrap();
    tx.commit().await.unwrap();

    let first = published_news(db, Page::first(5)).await.unwrap();
    assert_eq!(first.total, 12);
    assert_eq!(first.pages(), 3);
    assert_eq!(first.items[0].ext_id, "N11");
    assert_eq!(
        first.items[0].published_at,
        datetime!(2013-01-12 10:00:00 UTC)
    );
    let last = published_news(db, Page::new(3, 5)).await.unwrap();
    assert_eq!(
        last.items
            .iter()
            .map(|n| n.ext_id.as_str())
            .collect::<Vec<_>>(),
        ["N01", "N00"]
    );
    let fid = count(db, "SELECT id FROM news WHERE ext_id = 'NF'").await;
    assert_eq!(news_item(db, fid).await.unwrap(), None);
    let id0 = last.items[1].id;
    assert_eq!(
        news_item(db, id0).await.unwrap().unwrap().title,
        "Aktualność 0"
    );

    // Publishing the future one now makes it visible.
    let now_rec = NewsRecord {
        published_at: now - Duration::minutes(1),
        ..future.clone()
    };
    assert_eq!(
        in_tx!(db, tx => upsert_news(&mut tx, &now_rec).await).unwrap(),
        Upserted::Updated
    );
    assert_eq!(
        published_news(db, Page::first(5)).await.unwrap().items[0].ext_id,
        "NF"
    );

    // FAQ in display order.
    let entries = [
        ("Q2", 20, "Jak zmienić hasło?"),
        ("Q1", 10, "Jak skonfigurować router?"),
    ];
    for (ext_id, position, question) in entries {
        let rec = FaqRecord {
            ext_id: ext_id.into(),
            question: question.into(),
            answer_md: "Zobacz *panel*.".into(),
            position,
        };
        assert_eq!(
            in_tx!(db, tx => upsert_faq(&mut tx, &rec).await).unwrap(),
            Upserted::Inserted
        );
        assert_eq!(
            in_tx!(db, tx => upsert_faq(&mut tx, &rec).await).unwrap(),
            Upserted::Unchanged
        );
    }
    let list: Vec<String> = faq(db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.ext_id)
        .collect();
    assert_eq!(list, ["Q1", "Q2"]);
    let moved = FaqRecord {
        ext_id: "Q2".into(),
        question: "Jak zmienić hasło?".into(),
        answer_md: "Zobacz *panel*.".into(),
        position: 1,
    };
    assert_eq!(
        in_tx!(db, tx => upsert_faq(&mut tx, &moved).await).unwrap(),
        Upserted::Updated
    );
    let list = faq(db).await.unwrap();
    assert_eq!(list[0].to_record(), moved);
}

async fn audit_log(db: &Db) {
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let a = in_tx!(db, tx => audit::append(&mut tx, "panel:jan", "login", Some(ip), "ok").await)
        .unwrap();
    let b =
        in_tx!(db, tx => audit::append(&mut tx, "ops:billing", "import", None, "12 rows").await)
            .unwrap();
    let c = in_tx!(db, tx => audit::append(&mut tx, "panel:jan", "logout", Some(ip), "").await)
        .unwrap();
    let recent = audit::recent(db, 2).await.unwrap();
    assert_eq!(recent.iter().map(|e| e.id).collect::<Vec<_>>(), [c, b]);
    assert_eq!(recent[1].ip, None);
    let all = audit::recent(db, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].id, a);
    assert_eq!((all[2].action.as_str(), all[2].ip), ("login", Some(ip)));
    assert!(all[2].at > OffsetDateTime::now_utc() - Duration::minutes(1));
    let jan = audit::recent_by_actor(db, "panel:jan", 10).await.unwrap();
    assert_eq!(jan.iter().map(|e| e.id).collect::<Vec<_>>(), [c, a]);
}

/// The migrations' ON DELETE rules: a subscriber's contracts, accounts and the rest go with
/// it; invoices and payments (accounting records) block the delete.
async fn deletes_cascade_or_are_refused(db: &Db) {
    let s1 = put_subscriber(db, &kowalski("S1")).await;
    put_subscriber(db, &nowak("S2")).await;
    put_contract(db, &contract("C1", "S1", "UM/1")).await;
    in_tx!(db, tx => upsert_pppoe_account(&mut tx, &PppoeAccountRecord {
        ext_id: "P1".into(),
        contract_ext_id: "C1".into(),
        login: "jan".into(),
        password: None,
    })
    .await)
    .unwrap();
    in_tx!(db, tx => create_panel_account(&mut tx, s1, "jan", "h", "j@example.pl").await).unwrap();
    in_tx!(db, tx => record_consent(&mut tx, s1, true, None, "v1").await).unwrap();
    in_tx!(db, tx => create_ticket(&mut tx, Some(s1), None, "T", "B").await).unwrap();
    put_invoice(db, &monthly_invoice("F2", "S2", date!(2013 - 01 - 31))).await;

    let n = try_exec(db, "DELETE FROM subscribers WHERE ext_id = 'S1'")
        .await
        .unwrap();
    assert_eq!(n, 1);
    for table in [
        "contracts",
        "pppoe_accounts",
        "panel_accounts",
        "einvoice_consents",
        "tickets",
        "ticket_messages",
    ] {
        assert_eq!(
            count(db, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    let e = try_exec(db, "DELETE FROM subscribers WHERE ext_id = 'S2'")
        .await
        .unwrap_err();
    assert!(
        e.as_database_error().is_some_and(|d| {
            // SQLite reports RESTRICT as a trigger constraint (1811), not as 787.
            d.is_foreign_key_violation() || d.message().contains("FOREIGN KEY")
        }),
        "{e}"
    );
    assert_eq!(count(db, "SELECT COUNT(*) FROM subscribers").await, 1);
}

// ---------------------------------------------------------------------------------------------
// Daily traffic from session readings
// ---------------------------------------------------------------------------------------------

/// Readings written again, in any repetition, count once; a day's octets start from the
/// counters the session had at the end of the day before; counters that went backwards
/// keep what was counted.
async fn traffic_readings_count_once(db: &Db) {
    use crate::history::{record, traffic_on};
    use ebok_live::sessions::{Applied, TrafficReading};
    let r = |sid: &str, at: time::OffsetDateTime, i: u64, o: u64| TrafficReading {
        nas: "10.0.0.1".into(),
        session_id: sid.into(),
        started_at: datetime!(2026-07-01 08:00 UTC),
        user_name: "jan".into(),
        at,
        input_octets: i,
        output_octets: o,
    };
    let write = |readings: Vec<TrafficReading>| async move {
        record(
            db,
            &Applied {
                traffic: readings,
                ..Applied::default()
            },
        )
        .await
        .unwrap()
    };
    let day1 = datetime!(2026-07-01 10:00 UTC);
    let day2 = datetime!(2026-07-02 10:00 UTC);
    let all = vec![
        r("a", day1, 100, 1000),
        r("a", day1 + time::Duration::hours(1), 300, 1500),
        r("b", day1, 10, 10),
        r("a", day2, 500, 2000),
        // The NAS's counters went backwards (a reset): 50 and 60 more.
        r("a", day2 + time::Duration::hours(1), 50, 60),
    ];
    for reading in &all {
        write(vec![reading.clone()]).await;
    }
    let totals = || async {
        (
            traffic_on(db, "jan", crate::tz::warsaw_date(day1))
                .await
                .unwrap(),
            traffic_on(db, "jan", crate::tz::warsaw_date(day2))
                .await
                .unwrap(),
        )
    };
    let expected = (Some((310, 1510)), Some((250, 560)));
    assert_eq!(totals().await, expected);
    // Everything again: one by one, all at once, and an older reading after a newer one.
    for reading in &all {
        write(vec![reading.clone()]).await;
    }
    write(all.clone()).await;
    write(vec![r("a", day1, 100, 1000)]).await;
    assert_eq!(totals().await, expected);
}

// ---------------------------------------------------------------------------------------------
// Schema parity
// ---------------------------------------------------------------------------------------------

/// Both migrations define the same tables with the same columns.
#[tokio::test]
async fn migrations_define_the_same_columns() {
    let lite = TestDb::sqlite().await;
    let Some(pg) = TestDb::postgres("store::tests::migrations_define_the_same_columns").await
    else {
        return;
    };
    let tables = [
        "subscribers",
        "contracts",
        "pppoe_accounts",
        "ip_assignments",
        "invoices",
        "invoice_lines",
        "payments",
        "einvoice_consents",
        "panel_accounts",
        "tickets",
        "ticket_messages",
        "services",
        "service_orders",
        "news",
        "faq",
        "audit_log",
        "session_history",
        "traffic_daily",
        "session_traffic",
        "documents",
        "payment_reminders",
    ];
    for table in tables {
        let Db::Sqlite(sp) = &lite.db else {
            unreachable!()
        };
        let Db::Postgres(pp) = &pg.db else {
            unreachable!()
        };
        let mut lite_cols: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(sp)
                .await
                .unwrap();
        let mut pg_cols: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1",
        )
        .bind(table)
        .fetch_all(pp)
        .await
        .unwrap();
        lite_cols.sort();
        pg_cols.sort();
        assert!(!lite_cols.is_empty(), "{table}");
        assert_eq!(lite_cols, pg_cols, "{table}");
    }
    lite.finish().await;
    pg.finish().await;
}
