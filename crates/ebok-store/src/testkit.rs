//! Test support for this crate's tests and, through the `testkit` feature, for the tests of
//! the crates above: `ebok-testkit`'s service helpers, and builders of the stored and live
//! types. Never in the release binary.

pub use ebok_testkit::*;

use crate::subscribers::{
    upsert_contract, upsert_pppoe_account, upsert_subscriber, Address, ContractRecord,
    ContractStatus, PppoeAccountRecord, SubscriberKind, SubscriberRecord,
};

/// A subscriber with one contract and one PPPoE login.
pub async fn subscriber_with_login(db: &crate::Db, n: u32, last_name: &str, login: &str) {
    let address = Address {
        street: format!("ul. Sieciowa {n}"),
        postcode: "30-001".into(),
        city: "Kraków".into(),
    };
    let subscriber = SubscriberRecord {
        ext_id: format!("S{n}"),
        kind: SubscriberKind::Person,
        first_name: Some("Jan".into()),
        last_name: Some(last_name.into()),
        company_name: None,
        pesel: None,
        nip: None,
        home: address.clone(),
        correspondence: None,
        phone: None,
        email: None,
        bank_account: None,
    };
    let contract = ContractRecord {
        ext_id: format!("C{n}"),
        subscriber_ext_id: format!("S{n}"),
        number: format!("UM/{n}"),
        starts_on: time::macros::date!(2020 - 01 - 01),
        ends_on: None,
        monthly_fee: "50.00".parse().unwrap(),
        tariff: "Internet 100".into(),
        download_kbps: 102_400,
        upload_kbps: 10_240,
        installation: address,
        status: ContractStatus::Active,
    };
    let account = PppoeAccountRecord {
        ext_id: format!("P{n}"),
        contract_ext_id: format!("C{n}"),
        login: login.into(),
        password: None,
    };
    let mut tx = db.begin().await.unwrap();
    upsert_subscriber(&mut tx, &subscriber).await.unwrap();
    upsert_contract(&mut tx, &contract).await.unwrap();
    upsert_pppoe_account(&mut tx, &account).await.unwrap();
    tx.commit().await.unwrap();
}

/// A closed session written through the history writer's own path.
pub async fn stored_closed_session(
    db: &crate::Db,
    id: &str,
    login: &str,
    ipv4: Option<&str>,
    ipv6: &[&str],
    (start, stop): (time::OffsetDateTime, time::OffsetDateTime),
) {
    let session = ebok_live::sessions::LiveSession {
        nas: "192.0.2.1".into(),
        nas_client: "bras-1".into(),
        session_id: id.into(),
        user_name: Some(login.into()),
        framed_ip: ipv4.map(|ip| ip.parse().unwrap()),
        ipv6_prefixes: ipv6.iter().map(|p| p.parse().unwrap()).collect(),
        calling_station_id: Some(format!("02:00:00:00:00:{:02x}", id.len())),
        nas_port: None,
        nas_port_id: None,
        started_at: start,
        updated_at: stop,
        expires_at: stop,
        input_octets: 10,
        output_octets: 20,
        input_packets: 1,
        output_packets: 2,
        session_time: None,
    };
    let applied = ebok_live::sessions::Applied {
        closed: vec![ebok_live::sessions::ClosedSession {
            session,
            stopped_at: stop,
            reason: ebok_live::sessions::CloseReason::Stop,
            terminate_cause: Some(1),
        }],
        ..ebok_live::sessions::Applied::default()
    };
    crate::history::record(db, &applied).await.unwrap();
}

/// A SQLite database (migrated) in the file `name` of `dir`.
pub async fn sqlite_in(dir: &std::path::Path, name: &str) -> crate::Db {
    crate::Db::connect(&sqlite_url(dir, name))
        .await
        .expect("SQLite opens")
}

/// A closed PPPoE session of `login` on NAS `nas1` with the IPv4 address `ip`, from
/// `started` for `secs` seconds (3 MB down, 1 kB up), for history in tests; change its
/// fields for more.
pub fn closed_session(
    login: &str,
    sid: &str,
    ip: &str,
    started: time::OffsetDateTime,
    secs: i64,
    cause: Option<u32>,
) -> ebok_live::sessions::ClosedSession {
    let mut live = ebok_live::sessions::LiveSession::new("nas1", "nas1", sid, started);
    live.user_name = Some(login.into());
    live.framed_ip = Some(ip.parse().expect("an IPv4 address"));
    live.input_octets = 1_000;
    live.output_octets = 3_000_000;
    ebok_live::sessions::ClosedSession {
        session: live,
        stopped_at: started + time::Duration::seconds(secs),
        reason: ebok_live::sessions::CloseReason::Stop,
        terminate_cause: cause,
    }
}

/// A traffic reading of `user_name` from a session of its own (a fresh session id each
/// call), so that readings add up the way the deltas of separate sessions do.
pub fn traffic_sample(
    user_name: &str,
    at: time::OffsetDateTime,
    input: u64,
    output: u64,
) -> ebok_live::sessions::TrafficReading {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ebok_live::sessions::TrafficReading {
        nas: "test-nas".into(),
        session_id: format!("sample-{n}"),
        started_at: at,
        user_name: user_name.into(),
        at,
        input_octets: input,
        output_octets: output,
    }
}

/// `rec` with an FA(3) file of seller `seller_nip` (to a fixed buyer, written on the issue
/// day at 07:00 UTC), as a billing system would send it; gives the file too.
pub fn with_fa3_file(
    mut rec: crate::billing::InvoiceRecord,
    seller_nip: &str,
) -> (crate::billing::InvoiceRecord, String) {
    use crate::ksef::{fa3_xml, Party};
    let seller = Party {
        nip: seller_nip,
        name: "Światłonet sp. z o.o.",
        street: "ul. Radiowa 1",
        city: "30-001 Kraków",
    };
    let buyer = Party {
        nip: "6772345104",
        name: "Biuro \"Bilans\" <sp. z o.o.>",
        street: "ul. Floriańska 20/4",
        city: "31-021 Kraków",
    };
    let created = rec
        .issued_on
        .with_hms(7, 0, 0)
        .expect("07:00 exists")
        .assume_utc();
    let xml = fa3_xml(&rec, &seller, &buyer, created);
    rec.ksef_xml = Some(xml.clone());
    (rec, xml)
}
