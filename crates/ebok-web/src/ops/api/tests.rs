//! The ops API through the whole router (`tower::ServiceExt::oneshot`), on a temp SQLite
//! database and the embedded live store; the upsert scenario also on a fresh PostgreSQL
//! database.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

use super::auth::*;
use super::*;

use crate::state::AppState;
use crate::web::settings::{OpsToken, PanelConfig};
use ebok_live::sessions::embedded::EmbeddedSessions;
use ebok_live::sessions::LiveSessions;
use ebok_radius::event::{AccountingEvent, StatusType};
use ebok_store::auth::hex;
use ebok_store::auth::{base64url, token_hash};
use ebok_store::content::{self};
use ebok_store::subscribers::subscriber_by_ext_id;
use ebok_store::{audit, Db};

const TOKEN: &str = "test-token-of-the-billing-system";
const OTHER_TOKEN: &str = "test-token-of-the-noc";

/// An application on a temp directory (SQLite, embedded live store) or PostgreSQL.
struct Harness {
    state: AppState,
    _dir: tempfile::TempDir,
    pg: Option<crate::testkit::FreshPg>,
}

fn config_with(tokens: Vec<OpsToken>) -> Arc<PanelConfig> {
    let mut config = PanelConfig::default();
    config.ops.tokens = tokens;
    Arc::new(config)
}

fn billing_tokens() -> Vec<OpsToken> {
    vec![
        OpsToken {
            name: "noc".into(),
            sha256: token_hash(OTHER_TOKEN).to_uppercase(),
        },
        OpsToken {
            name: "billing".into(),
            sha256: token_hash(TOKEN),
        },
    ]
}

impl Harness {
    async fn sqlite(tokens: Vec<OpsToken>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
        let db = Db::connect(&url).await.unwrap();
        Harness::with_db(db, dir, None, tokens).await
    }

    async fn postgres(test: &str) -> Option<Harness> {
        let pg = crate::testkit::FreshPg::create(test).await?;
        let db = Db::connect(&pg.url).await.expect("connect and migrate");
        let dir = tempfile::tempdir().unwrap();
        Some(Harness::with_db(db, dir, Some(pg), billing_tokens()).await)
    }

    async fn with_db(
        db: Db,
        dir: tempfile::TempDir,
        pg: Option<crate::testkit::FreshPg>,
        tokens: Vec<OpsToken>,
    ) -> Harness {
        let live = EmbeddedSessions::open(&dir.path().join("live.sqlite"))
            .await
            .unwrap();
        let mut config = (*config_with(tokens)).clone();
        config.state_dir = dir.path().to_owned();
        let state = AppState::new(db, Arc::new(live), Arc::new(config))
            .await
            .expect("app state");
        Harness {
            state,
            _dir: dir,
            pg,
        }
    }

    async fn finish(self) {
        if let Db::Postgres(p) = &self.state.db {
            p.close().await;
        }
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
    }

    /// Send one request; gives the status, the headers and the body as JSON.
    async fn call(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let host = (self.state.config.web.public_host()).unwrap_or_else(|| "localhost".into());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host);
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = crate::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, headers, value)
    }

    async fn put(&self, kind: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, value) = self
            .call(
                Method::PUT,
                &format!("/api/v1/{kind}"),
                Some(&format!("Bearer {TOKEN}")),
                Some(body.to_string()),
            )
            .await;
        (status, value)
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.state.db {
            Db::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await.unwrap(),
        }
    }
}

fn address(street: &str) -> Value {
    json!({"street": street, "postcode": "30-001", "city": "Kraków"})
}

fn kowalski() -> Value {
    json!({
        "ext_id": "S1",
        "kind": "person",
        "first_name": "Jan",
        "last_name": "Kowalski",
        "pesel": "44051401359",
        "home": address("ul. Internetowa 1"),
        "phone": "+48 12 345 67 89",
        "email": "jan.kowalski@example.pl",
        "bank_account": "61 1090 1014 0000 0712 1981 2874"
    })
}

fn nowak() -> Value {
    json!({
        "ext_id": "S2",
        "kind": "person",
        "first_name": "Anna",
        "last_name": "Nowak",
        "pesel": "02070803628",
        "home": address("ul. Światłowodowa 7/3")
    })
}

fn counts(inserted: u64, updated: u64, unchanged: u64) -> Value {
    json!({"inserted": inserted, "updated": updated, "unchanged": unchanged})
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_and_wrong_tokens_get_the_same_401() {
    let h = Harness::sqlite(billing_tokens()).await;
    let path = "/api/v1/sessions/lookup?ip=192.0.2.1";
    let (status, headers, missing) = h.call(Method::GET, path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert!(missing["error"].is_string(), "{missing}");

    for auth in [
        "Bearer wrong-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        TOKEN,
        &format!("Bearer {}", token_hash(TOKEN)),
    ] {
        let (status, headers, body) = h.call(Method::GET, path, Some(auth), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body, missing, "no hint which: {auth}");
    }
    let (status, _, _) = h
        .call(
            Method::PUT,
            "/api/v1/subscribers",
            Some("Bearer wrong"),
            Some(kowalski().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.count("subscribers").await, 0);
    h.finish().await;
}

#[tokio::test]
async fn no_tokens_configured_refuses_everything() {
    let h = Harness::sqlite(vec![]).await;
    for auth in [
        None,
        Some(format!("Bearer {TOKEN}")),
        Some("Bearer ".into()),
    ] {
        let (status, headers, _) = h
            .call(
                Method::PUT,
                "/api/v1/subscribers",
                auth.as_deref(),
                Some("[]".into()),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    // Health needs no token, and stays open.
    let (status, _, _) = h.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    h.finish().await;
}

#[tokio::test]
async fn right_tokens_are_accepted_and_audited_by_name() {
    let h = Harness::sqlite(billing_tokens()).await;
    let (status, _, body) = h
        .call(
            Method::PUT,
            "/api/v1/subscribers",
            Some(&format!("bearer  {TOKEN} ")),
            Some("[]".into()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(0, 0, 0));
    // The other token is configured with an upper-case digest.
    let (status, _, body) = h
        .call(
            Method::PUT,
            "/api/v1/subscribers",
            Some(&format!("Bearer {OTHER_TOKEN}")),
            Some(kowalski().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(1, 0, 0));

    let noc = audit::recent_by_actor(&h.state.db, "ops:noc", 10)
        .await
        .unwrap();
    assert_eq!(noc.len(), 1);
    assert_eq!(noc[0].action, "ops_upsert");
    assert!(
        noc[0].detail.starts_with("subscribers: 1 records"),
        "{noc:?}"
    );
    let billing = audit::recent_by_actor(&h.state.db, "ops:billing", 10)
        .await
        .unwrap();
    assert_eq!(billing.len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn generated_tokens_work() {
    let (token, digest) = new_token();
    let (again, _) = new_token();
    assert_ne!(token, again);
    assert!(token.starts_with("ebok_"));
    // 32 random bytes in unpadded base64url: 43 characters.
    assert_eq!(token.len(), "ebok_".len() + 43);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(digest, token_hash(&token));
    assert_eq!(digest.len(), 64);
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));

    let h = Harness::sqlite(vec![OpsToken {
        name: "generated".into(),
        sha256: digest,
    }])
    .await;
    let (status, _, _) = h
        .call(
            Method::GET,
            "/api/v1/sessions/lookup?ip=192.0.2.1",
            Some(&format!("Bearer {token}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.finish().await;
}

#[test]
fn encodings() {
    for (input, expected) in [
        (&b""[..], ""),
        (b"f", "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg"),
        (b"fooba", "Zm9vYmE"),
        (b"foobar", "Zm9vYmFy"),
        (&[0xfb, 0xff, 0xbf], "-_-_"),
    ] {
        assert_eq!(base64url(input), expected);
    }
    // SHA-256("abc"), FIPS 180-2.
    assert_eq!(
        token_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let d = decode_digest(&token_hash("abc").to_uppercase()).unwrap();
    assert_eq!(hex(&d), token_hash("abc"));
    assert!(decode_digest("zz").is_none());
    assert!(decode_digest(&"g".repeat(64)).is_none());
}

// ---------------------------------------------------------------------------------------------
// Upserts
// ---------------------------------------------------------------------------------------------

/// Insert, repeat, change: the counts; then a bad record stores nothing.
async fn upsert_scenario(h: &Harness) {
    let (status, body) = h.put("subscribers", json!([kowalski(), nowak()])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(2, 0, 0));

    let (status, body) = h.put("subscribers", json!([kowalski(), nowak()])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(0, 0, 2));

    let mut moved = nowak();
    moved["home"] = address("ul. Nowa 2");
    let (status, body) = h.put("subscribers", json!([kowalski(), moved])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(0, 1, 1));
    let stored = subscriber_by_ext_id(&h.state.db, "S2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.home.street, "ul. Nowa 2");

    // A single object is one record.
    let (status, body) = h.put("subscribers", kowalski()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(0, 0, 1));

    // Keys left out keep what is stored; a bad e-mail is refused, naming the field.
    let mut bare = kowalski();
    for key in ["pesel", "phone", "email", "bank_account"] {
        bare.as_object_mut().unwrap().remove(key);
    }
    let (status, body) = h.put("subscribers", bare).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, counts(0, 0, 1));
    let jan = subscriber_by_ext_id(&h.state.db, "S1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        jan.pesel.map(|p| p.as_str().to_owned()).as_deref(),
        Some("44051401359")
    );
    assert_eq!(jan.email.as_deref(), Some("jan.kowalski@example.pl"));
    let mut bad = kowalski();
    bad["email"] = json!("jan.kowalski.example.pl");
    let (status, body) = h.put("subscribers", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "email");

    // A new subscriber followed by one the store refuses: nothing of the request is kept.
    let mut s3 = nowak();
    s3["ext_id"] = json!("S3");
    let mut nameless = nowak();
    nameless["ext_id"] = json!("S4");
    nameless["first_name"] = json!(" ");
    let (status, body) = h.put("subscribers", json!([s3, nameless])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["index"], 1);
    assert_eq!(body["field"], "first_name");
    assert!(body["error"].is_string());
    assert!(subscriber_by_ext_id(&h.state.db, "S3")
        .await
        .unwrap()
        .is_none());

    // A reference to a parent that is not stored.
    let (status, body) = h
        .put(
            "payments",
            json!([
                {"ext_id": "W1", "subscriber_ext_id": "S1", "paid_on": "2024-01-10",
                 "amount": "50.00", "title": "Abonament", "method": "przelew"},
                {"ext_id": "W2", "subscriber_ext_id": "S99", "paid_on": "2024-01-10",
                 "amount": "50.00", "title": "Abonament", "method": "przelew"}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["index"], 1);
    assert_eq!(body["field"], "subscriber_ext_id");
    assert_eq!(h.count("payments").await, 0);

    // Two subscribers, 5 successful calls, no audit entry from the refused ones.
    assert_eq!(h.count("subscribers").await, 2);
    let audit = audit::recent_by_actor(&h.state.db, "ops:billing", 100)
        .await
        .unwrap();
    assert_eq!(audit.len(), 5, "{audit:?}");
}

#[tokio::test]
async fn upsert_counts_sqlite() {
    let h = Harness::sqlite(billing_tokens()).await;
    upsert_scenario(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn upsert_counts_postgres() {
    let Some(h) = Harness::postgres("ops::api::tests::upsert_counts_postgres").await else {
        return;
    };
    upsert_scenario(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn bad_records_are_422_with_index_and_field() {
    let h = Harness::sqlite(billing_tokens()).await;
    let mut bad_pesel = nowak();
    bad_pesel["pesel"] = json!("44051401358");
    let mut bad_kind = nowak();
    bad_kind["kind"] = json!("robot");
    let mut no_last_name = nowak();
    no_last_name.as_object_mut().unwrap().remove("last_name");
    let mut no_street = nowak();
    no_street["home"].as_object_mut().unwrap().remove("street");
    let mut misspelt = nowak();
    misspelt["emial"] = json!("x@example.pl");
    let mut no_ext_id = nowak();
    no_ext_id.as_object_mut().unwrap().remove("ext_id");
    let cases = [
        (bad_pesel, Some("pesel")),
        (bad_kind, Some("kind")),
        // A person without a last name is refused by the model, not by the decoder.
        (no_last_name, Some("last_name")),
        (no_street, Some("home.street")),
        (misspelt, Some("emial")),
        (no_ext_id, Some("ext_id")),
        (json!(42), None),
    ];
    for (record, field) in cases {
        let (status, body) = h.put("subscribers", json!([kowalski(), record])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["index"], 1, "{body}");
        assert_eq!(body["field"], json!(field), "{body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(h.count("subscribers").await, 0);

    // Not JSON, or not records at all: 400.
    for body in ["{\"ext_id\": ", "not json", "\"text\"", "7"] {
        let (status, _, value) = h
            .call(
                Method::PUT,
                "/api/v1/subscribers",
                Some(&format!("Bearer {TOKEN}")),
                Some(body.into()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {value}");
        assert!(value["error"].is_string());
        assert!(value.get("index").is_none());
    }
    h.finish().await;
}

#[tokio::test]
async fn too_large_bodies_are_refused() {
    let h = Harness::sqlite(billing_tokens()).await;
    let big = format!("[{}]", " ".repeat(MAX_BODY));
    let (status, _, value) = h
        .call(
            Method::PUT,
            "/api/v1/subscribers",
            Some(&format!("Bearer {TOKEN}")),
            Some(big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(value["error"].is_string());
    h.finish().await;
}

#[tokio::test]
async fn every_kind_has_an_endpoint() {
    let h = Harness::sqlite(billing_tokens()).await;
    let pushes = [
        ("subscribers", kowalski()),
        (
            "contracts",
            json!({
                "ext_id": "C1", "subscriber_ext_id": "S1", "number": "UM/2013/0001",
                "starts_on": "2013-01-01", "monthly_fee": "50.00", "tariff": "Internet 100",
                "download_kbps": 102400, "upload_kbps": 10240,
                "installation": address("ul. Internetowa 1"), "status": "active"
            }),
        ),
        (
            "pppoe-accounts",
            json!({"ext_id": "P1", "contract_ext_id": "C1", "login": "jan.kowalski",
                   "password": "tajne"}),
        ),
        (
            "ips",
            json!({"ext_id": "I1", "contract_ext_id": "C1", "address": "192.0.2.10",
                   "kind": "static", "activated_on": "2013-01-02"}),
        ),
        (
            "invoices",
            json!({
                "ext_id": "F1", "subscriber_ext_id": "S1", "number": "FV/1/2024",
                "issued_on": "2024-01-01", "sold_on": "2024-01-01", "due_on": "2024-01-15",
                "net": "40.65", "vat": "9.35", "gross": "50.00", "status": "issued",
                "lines": [{"position": 1, "name": "Abonament", "unit": "usł.",
                           "quantity": "1", "unit_net": "40.65", "net": "40.65",
                           "vat_rate": "23", "vat": "9.35", "gross": "50.00"}]
            }),
        ),
        (
            "payments",
            json!({"ext_id": "W1", "subscriber_ext_id": "S1", "paid_on": "2024-01-10",
                   "amount": "50.00", "title": "Abonament 01/2024", "method": "przelew"}),
        ),
        (
            "services",
            json!({"ext_id": "U1", "name": "Publiczny IP", "description": "Stały IPv4",
                   "price": "10.00", "active": true}),
        ),
        (
            "news",
            json!({"ext_id": "N1", "title": "Przerwa techniczna", "body_md": "W nocy.",
                   "published_at": "2024-01-01T10:00:00Z"}),
        ),
        (
            "faq",
            json!({"ext_id": "Q1", "question": "Jak skonfigurować router?",
                   "answer_md": "Tak.", "position": 1}),
        ),
    ];
    for (kind, record) in &pushes {
        let (status, body) = h.put(kind, record.clone()).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(body, counts(1, 0, 0), "{kind}");
    }
    for (kind, record) in &pushes {
        let (status, body) = h.put(kind, json!([record])).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(body, counts(0, 0, 1), "{kind}");
    }

    // Totals that do not add up name the field.
    let mut invoice = pushes[4].1.clone();
    invoice["ext_id"] = json!("F2");
    invoice["number"] = json!("FV/2/2024");
    invoice["gross"] = json!("50.01");
    let (status, body) = h.put("invoices", invoice).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        (body["index"].clone(), body["field"].clone()),
        (json!(0), json!("gross"))
    );

    // A login held by another account.
    let (status, body) = h
        .put(
            "pppoe-accounts",
            json!({"ext_id": "P2", "contract_ext_id": "C1", "login": "jan.kowalski"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "login");

    // Only PUT writes; unknown paths are JSON 404s.
    let (status, _, _) = h
        .call(
            Method::POST,
            "/api/v1/subscribers",
            Some(&format!("Bearer {TOKEN}")),
            Some("[]".into()),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, body) = h.call(Method::GET, "/api/v1/nothing", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

async fn start_session(live: &dyn LiveSessions, id: &str, login: Option<&str>, ip: Ipv4Addr) {
    let now = OffsetDateTime::now_utc();
    let mut ev = AccountingEvent::new(StatusType::Start, "192.0.2.1", id, now);
    ev.user_name = login.map(str::to_owned);
    ev.framed_ip = Some(ip);
    live.apply(&ev, now + Duration::minutes(15)).await.unwrap();
}

#[tokio::test]
async fn lookup_joins_session_to_subscriber() {
    let h = Harness::sqlite(billing_tokens()).await;
    let contract = json!({
        "ext_id": "C1", "subscriber_ext_id": "S1", "number": "UM/2013/0001",
        "starts_on": "2013-01-01", "ends_on": "2013-12-31", "monthly_fee": "50.00",
        "tariff": "Internet 100", "download_kbps": 102400, "upload_kbps": 10240,
        "installation": address("ul. Internetowa 1"), "status": "active"
    });
    assert_eq!(h.put("subscribers", kowalski()).await.0, StatusCode::OK);
    assert_eq!(h.put("contracts", contract).await.0, StatusCode::OK);
    let pppoe = json!({"ext_id": "P1", "contract_ext_id": "C1", "login": "jan.kowalski"});
    assert_eq!(h.put("pppoe-accounts", pppoe).await.0, StatusCode::OK);

    start_session(
        h.state.live.as_ref(),
        "s-1",
        Some("jan.kowalski"),
        Ipv4Addr::new(198, 51, 100, 7),
    )
    .await;
    start_session(
        h.state.live.as_ref(),
        "s-2",
        Some("unknown.login"),
        Ipv4Addr::new(198, 51, 100, 8),
    )
    .await;
    let auth = format!("Bearer {TOKEN}");

    let (status, headers, body) = h
        .call(
            Method::GET,
            "/api/v1/sessions/lookup?ip=198.51.100.7",
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(body["ip"], "198.51.100.7");
    assert_eq!(body["session"]["session_id"], "s-1");
    assert_eq!(body["session"]["user_name"], "jan.kowalski");
    assert_eq!(body["session"]["framed_ip"], "198.51.100.7");
    assert!(body["session"]["started_at"]
        .as_str()
        .unwrap()
        .contains('T'));
    assert_eq!(body["subscriber"]["name"], "Jan Kowalski");
    assert_eq!(body["subscriber"]["ext_id"], "S1");
    assert_eq!(body["subscriber"]["home"]["street"], "ul. Internetowa 1");
    assert!(body["subscriber"].get("pesel").is_none());
    assert_eq!(body["contract"]["number"], "UM/2013/0001");
    assert_eq!(body["contract"]["monthly_fee"], "50.00");
    assert_eq!(body["contract"]["starts_on"], "2013-01-01");
    assert_eq!(body["contract"]["ends_on"], "2013-12-31");

    // The same address written as IPv4-mapped IPv6.
    let (status, _, body) = h
        .call(
            Method::GET,
            "/api/v1/sessions/lookup?ip=::ffff:198.51.100.7",
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscriber"]["name"], "Jan Kowalski");

    // A session whose login no account has: the session without an owner.
    let (status, _, body) = h
        .call(
            Method::GET,
            "/api/v1/sessions/lookup?ip=198.51.100.8",
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["session"]["user_name"], "unknown.login");
    assert!(body["subscriber"].is_null() && body["contract"].is_null());

    let (status, _, body) = h
        .call(
            Method::GET,
            "/api/v1/sessions/lookup?ip=198.51.100.9",
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].is_string());

    for bad in ["/api/v1/sessions/lookup", "/api/v1/sessions/lookup?ip=nope"] {
        let (status, _, body) = h.call(Method::GET, bad, Some(&auth), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        h.state
            .live
            .lookup(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)))
            .await
            .unwrap()
            .map(|s| s.session_id),
        Some("s-1".to_owned())
    );
    // Every lookup is in the audit log, with the token's name and the address asked for.
    let audit = ebok_store::audit::recent(&h.state.db, 50).await.unwrap();
    let lookups: Vec<_> = audit.iter().filter(|a| a.action == "ops_lookup").collect();
    assert!(lookups
        .iter()
        .any(|a| a.detail == "ip 198.51.100.7" && a.actor.starts_with("ops:")));
    assert!(lookups.iter().any(|a| a.detail == "ip 198.51.100.9"));
    h.finish().await;
}

#[tokio::test]
async fn health_reports_both_stores() {
    let h = Harness::sqlite(billing_tokens()).await;
    let (status, _, body) = h.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ok", "database": {"backend": "sqlite", "ok": true},
               "sessions": {"ok": true}})
    );
    if let Db::Sqlite(p) = &h.state.db {
        p.close().await;
    }
    let (status, _, body) = h.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"]["ok"], false);
    assert_eq!(body["sessions"]["ok"], true);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// The customer office: tickets, orders, news (through the API and seen in the panel)
// ---------------------------------------------------------------------------------------------

use crate::web::tests as web;

/// The panel harness (seeded subscribers, browsers) with this API's tokens configured.
fn office(h: &web::Harness) -> Harness {
    let mut config = (*h.state.config).clone();
    config.ops.tokens = billing_tokens();
    Harness {
        state: AppState {
            config: Arc::new(config),
            ..h.state.clone()
        },
        _dir: tempfile::tempdir().unwrap(),
        pg: None,
    }
}

impl Harness {
    async fn office_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self
            .call(
                method,
                path,
                Some(&format!("Bearer {TOKEN}")),
                body.map(|b| b.to_string()),
            )
            .await;
        (status, value)
    }
}

async fn billing_actions(h: &Harness) -> Vec<(String, String)> {
    audit::recent_by_actor(&h.state.db, "ops:billing", 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.detail))
        .collect()
}

#[tokio::test]
async fn office_endpoints_need_a_token() {
    let panel = web::Harness::sqlite().await;
    let h = office(&panel);
    for (method, path, body) in [
        (Method::GET, "/api/v1/tickets", None),
        (Method::GET, "/api/v1/tickets/1", None),
        (
            Method::POST,
            "/api/v1/tickets/1/answer",
            Some(r#"{"body":"x"}"#),
        ),
        (Method::POST, "/api/v1/tickets/1/close", None),
        (Method::GET, "/api/v1/orders?status=new", None),
        (
            Method::PUT,
            "/api/v1/orders/1/status",
            Some(r#"{"status":"done"}"#),
        ),
        (Method::DELETE, "/api/v1/news/n1", None),
    ] {
        for auth in [None, Some("Bearer wrong-token")] {
            let (status, headers, value) = h
                .call(method.clone(), path, auth, body.map(str::to_owned))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {value}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    assert!(billing_actions(&h).await.is_empty());
    panel.finish().await;
}

#[tokio::test]
async fn tickets_answered_and_closed_through_the_api() {
    let panel = web::Harness::sqlite().await;
    let h = office(&panel);
    let mut jan = web::jan_registered(&panel).await;
    // Jan writes in English.
    jan.cookies.insert("ebok_lang".into(), "en".into());
    let r = jan
        .submit(
            "/kontakt",
            "/kontakt",
            &[
                ("subject", "No internet"),
                ("message", "Since this morning."),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let thread_path = r.location().split('?').next().unwrap().to_owned();
    let id: i64 = thread_path.rsplit('/').next().unwrap().parse().unwrap();

    let (status, list) = h.office_call(Method::GET, "/api/v1/tickets", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["status"], "open");
    let (status, one) = h
        .office_call(Method::GET, &format!("/api/v1/tickets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["ticket"]["subject"], "No internet");
    assert_eq!(one["subscriber"]["name"], "Jan Kowalski");
    assert_eq!(one["messages"][0]["author"], "subscriber");
    assert_eq!(one["messages"][0]["body"], "Since this morning.");
    assert!(one["subscriber"].get("pesel").is_none());

    // Bad requests.
    let (status, _) = h
        .office_call(Method::GET, "/api/v1/tickets?status=lost", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .office_call(Method::GET, "/api/v1/tickets/999999", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .office_call(Method::GET, "/api/v1/tickets/abc", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer = format!("/api/v1/tickets/{id}/answer");
    let (status, _) = h
        .office_call(Method::POST, &answer, Some(json!({"body": "  "})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = h
        .office_call(Method::POST, &answer, Some(json!({"text": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .office_call(
            Method::POST,
            "/api/v1/tickets/999999/answer",
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The answer: stored, mailed in English to the confirmed address, shown in the panel.
    let (status, answered) = h
        .office_call(
            Method::POST,
            &answer,
            Some(json!({"body": "Please restart the router."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["ticket"]["status"], "answered");
    assert_eq!(answered["mailed_to"], "jan@example.pl");
    assert_eq!(answered["messages"][1]["author"], "office");
    // Besides the confirmation of the address and of the ticket.
    let mails = panel
        .mails_with("jan@example.pl", "Please restart the router.")
        .await;
    let mail = mails
        .iter()
        .find(|m| m.contains("Please restart the router."))
        .expect("answer mailed");
    assert!(mail.contains("Answer from the customer office"), "{mail}");
    assert!(mail.contains(&format!("https://ebok.example.pl/kontakt/{id}")));
    let page = jan.get(&thread_path).await;
    assert!(page.body.contains("Please restart the router."));
    assert!(page.body.contains("answered"));
    let (_, open) = h.office_call(Method::GET, "/api/v1/tickets", None).await;
    assert_eq!(open["total"], 0);
    let (_, waiting) = h
        .office_call(Method::GET, "/api/v1/tickets?status=answered", None)
        .await;
    assert_eq!(waiting["total"], 1);

    // Closing.
    let close = format!("/api/v1/tickets/{id}/close");
    let (status, closed) = h.office_call(Method::POST, &close, None).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["ticket"]["status"], "closed");
    let page = jan.get(&thread_path).await;
    assert!(page.body.contains(">closed<"), "{}", page.body);
    let (status, _) = h
        .office_call(Method::POST, "/api/v1/tickets/999999/close", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let actions = billing_actions(&h).await;
    for (action, detail) in [
        ("ops_tickets_list", "status open, page 1".to_owned()),
        ("ops_ticket_read", format!("ticket {id}")),
        ("ops_ticket_answer", format!("ticket {id}")),
        ("ops_ticket_close", format!("ticket {id}")),
    ] {
        assert!(
            actions.iter().any(|(a, d)| a == action && *d == detail),
            "{action} {detail} not in {actions:?}"
        );
    }
    // Failed changes leave no audit entry claiming they happened.
    assert_eq!(
        actions
            .iter()
            .filter(|(a, _)| a == "ops_ticket_answer")
            .count(),
        1
    );
    panel.finish().await;
}

#[tokio::test]
async fn answers_to_polish_subscribers_are_in_polish() {
    let panel = web::Harness::sqlite().await;
    let h = office(&panel);
    let mut jan = web::jan_registered(&panel).await;
    let r = jan
        .submit(
            "/kontakt",
            "/kontakt",
            &[("subject", "Faktura"), ("message", "Proszę o duplikat.")],
        )
        .await;
    let id: i64 = r
        .location()
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (status, _) = h
        .office_call(
            Method::POST,
            &format!("/api/v1/tickets/{id}/answer"),
            Some(json!({"body": "Wysłaliśmy duplikat."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mails = panel
        .mails_with("jan@example.pl", "Wysłaliśmy duplikat.")
        .await;
    let mail = mails
        .iter()
        .find(|m| m.contains("Wysłaliśmy duplikat."))
        .expect("answer mailed");
    assert!(mail.contains("Odpowiedź Biura Obsługi Klienta"), "{mail}");
    panel.finish().await;
}

#[tokio::test]
async fn orders_listed_and_moved_through_the_api() {
    let panel = web::Harness::sqlite().await;
    let h = office(&panel);
    let (status, body) = h
        .put(
            "services",
            json!({"ext_id": "tv", "name": "Telewizja", "description": "120 kanałów",
                   "price": "29.99", "active": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tv = content::active_services(&h.state.db).await.unwrap()[0].id;
    let mut jan = web::jan_registered(&panel).await;
    let r = jan
        .submit(
            "/zamawianie",
            "/zamawianie",
            // A paid service: ordered from its confirmation step.
            &[
                ("service", &tv.to_string()),
                ("note", "Po 17:00"),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let (status, list) = h
        .office_call(Method::GET, "/api/v1/orders?status=new&per_page=10", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["pages"], 1);
    assert_eq!(list["items"][0]["note"], "Po 17:00");
    assert_eq!(list["items"][0]["service_id"], tv);
    let id = list["items"][0]["id"].as_i64().unwrap();

    let path = format!("/api/v1/orders/{id}/status");
    let (status, _) = h
        .office_call(Method::PUT, &path, Some(json!({"status": "lost"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = h
        .office_call(
            Method::PUT,
            "/api/v1/orders/999999/status",
            Some(json!({"status": "done"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .office_call(Method::GET, "/api/v1/orders?status=lost", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, moved) = h
        .office_call(Method::PUT, &path, Some(json!({"status": "done"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["status"], "done");
    assert!(jan.get("/zamawianie").await.body.contains(">zrealizowane<"));
    let (_, new) = h.office_call(Method::GET, "/api/v1/orders", None).await;
    assert_eq!(new["total"], 0);

    let actions = billing_actions(&h).await;
    assert!(actions
        .iter()
        .any(|(a, d)| a == "ops_order_status" && *d == format!("order {id}: new -> done")));
    assert!(actions
        .iter()
        .any(|(a, d)| a == "ops_orders_list" && d == "status new, page 1"));
    panel.finish().await;
}

#[tokio::test]
async fn news_published_and_deleted_through_the_api() {
    let panel = web::Harness::sqlite().await;
    let h = office(&panel);
    let published = (OffsetDateTime::now_utc() - Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, body) = h
        .put(
            "news",
            json!({"ext_id": "awaria-1", "title": "Awaria w Krakowie",
                   "body_md": "Usuwamy **awarię**. <script>x()</script>",
                   "published_at": published}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut visitor = panel.browser(web::STRANGER_IP);
    let page = visitor.get("/aktualnosci").await;
    assert!(page.body.contains("Awaria w Krakowie"));
    assert!(page.body.contains("<strong>awarię</strong>"));
    assert!(!page.body.contains("<script>"));
    // Editing is the same PUT.
    let (status, body) = h
        .put(
            "news",
            json!({"ext_id": "awaria-1", "title": "Awaria usunięta",
                   "body_md": "Działa.", "published_at": published}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, counts(0, 1, 0));
    assert!(visitor
        .get("/aktualnosci")
        .await
        .body
        .contains("Awaria usunięta"));

    let (status, deleted) = h
        .office_call(Method::DELETE, "/api/v1/news/awaria-1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted, json!({"deleted": true}));
    assert!(!visitor.get("/aktualnosci").await.body.contains("Awaria"));
    let (status, _) = h
        .office_call(Method::DELETE, "/api/v1/news/awaria-1", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let actions = billing_actions(&h).await;
    assert_eq!(
        actions
            .iter()
            .filter(|(a, d)| a == "ops_news_delete" && d == "news awaria-1")
            .count(),
        1,
        "{actions:?}"
    );
    panel.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Live sessions, NAS overview, Disconnect and CoA
// ---------------------------------------------------------------------------------------------

/// A session as the in-test NAS of `radius::coa` expects it (NAS 127.0.0.1, session
/// 81a0002f, login jan@isp), and two more on another NAS, one of them stale.
async fn live_fixture(h: &Harness) {
    let now = OffsetDateTime::now_utc();
    let mut ev = AccountingEvent::new(StatusType::Start, "127.0.0.1", "81a0002f", now);
    ev.user_name = Some("jan@isp".into());
    ev.framed_ip = Some(Ipv4Addr::new(198, 51, 100, 7));
    ev.nas_client = "test-nas".into();
    h.state
        .live
        .apply(&ev, now + Duration::minutes(15))
        .await
        .unwrap();
    start_session(
        h.state.live.as_ref(),
        "s-2",
        Some("anna"),
        Ipv4Addr::new(203, 0, 113, 9),
    )
    .await;
    // Last heard 10 minutes ago, expires in 5: more than half its window gone.
    let then = now - Duration::minutes(10);
    let mut ev = AccountingEvent::new(StatusType::InterimUpdate, "192.0.2.1", "s-3", then);
    ev.user_name = Some("stary".into());
    ev.framed_ip = Some(Ipv4Addr::new(203, 0, 113, 10));
    h.state
        .live
        .apply(&ev, now + Duration::minutes(5))
        .await
        .unwrap();
}

fn ids(body: &Value) -> Vec<&str> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn live_sessions_are_listed_filtered_and_audited() {
    let h = Harness::sqlite(billing_tokens()).await;
    live_fixture(&h).await;
    let auth = format!("Bearer {TOKEN}");
    let get = |q: &str| {
        let path = format!("/api/v1/sessions{q}");
        let auth = auth.clone();
        let h = &h;
        async move { h.call(Method::GET, &path, Some(&auth), None).await }
    };
    let (status, _, body) = get("").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), ["81a0002f", "s-2", "s-3"]);
    assert_eq!(body["total"], 3);
    assert_eq!(body["items"][2]["stale"], true);
    assert_eq!(body["items"][1]["stale"], false);

    assert_eq!(ids(&get("?nas=192.0.2.1").await.2), ["s-2", "s-3"]);
    assert_eq!(ids(&get("?nas=test-nas").await.2), ["81a0002f"]);
    assert_eq!(ids(&get("?login=ANNA").await.2), ["s-2"]);
    assert_eq!(ids(&get("?prefix=203.0.113.0/24").await.2), ["s-2", "s-3"]);
    assert_eq!(ids(&get("?prefix=198.51.100.7").await.2), ["81a0002f"]);
    assert_eq!(ids(&get("?stale=true").await.2), ["s-3"]);
    let (_, _, page) = get("?per_page=2&page=2").await;
    assert_eq!(ids(&page), ["s-3"]);
    assert_eq!(page["pages"], 2);

    // By subscriber: their PPPoE logins.
    assert_eq!(h.put("subscribers", kowalski()).await.0, StatusCode::OK);
    let contract = json!({
        "ext_id": "C1", "subscriber_ext_id": "S1", "number": "UM/2013/0001",
        "starts_on": "2013-01-01", "monthly_fee": "50.00", "tariff": "Internet 100",
        "download_kbps": 102400, "upload_kbps": 10240,
        "installation": address("ul. Internetowa 1"), "status": "active"
    });
    assert_eq!(h.put("contracts", contract).await.0, StatusCode::OK);
    let pppoe = json!({"ext_id": "P1", "contract_ext_id": "C1", "login": "anna"});
    assert_eq!(h.put("pppoe-accounts", pppoe).await.0, StatusCode::OK);
    assert_eq!(ids(&get("?subscriber=S1").await.2), ["s-2"]);
    let (status, _, body) = get("?subscriber=S404").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    for bad in ["?prefix=nope", "?stale=maybe", "?colour=red"] {
        let (status, _, body) = get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _, _) = h.call(Method::GET, "/api/v1/sessions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let audit = ebok_store::audit::recent(&h.state.db, 50).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "ops_sessions"
        && a.detail.contains("login=ANNA")
        && a.actor == "ops:billing"));
    h.finish().await;
}

/// The RFC 5176 client wired as at start-up, towards the in-test NAS on `port`.
fn wire_coa(h: &mut Harness, port: u16) {
    let nas = ebok_radius::nas::NasClient {
        name: "test-nas".into(),
        secret: b"coa-secret".as_slice().into(),
        vendor: "rfc".into(),
        expiry: std::time::Duration::from_secs(600),
        coa_port: port,
    };
    let table = Arc::new(ebok_radius::nas::NasTable::new([(
        nas,
        vec!["127.0.0.1/32".parse().unwrap()],
    )]));
    let client = ebok_radius::coa::CoaClient::new(Arc::new(move || table.clone()))
        .with_retries(2, std::time::Duration::from_millis(300));
    h.state = h.state.clone().with_session_control(Arc::new(client));
}

/// POST a JSON body with the billing token: status and JSON answer.
async fn post_json(h: &Harness, path: &str, body: Value) -> (StatusCode, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, answer) = h
        .call(Method::POST, path, Some(&auth), Some(body.to_string()))
        .await;
    (status, answer)
}

#[tokio::test]
async fn disconnect_and_coa_through_the_api_report_ack_nak_and_timeout() {
    use ebok_radius::coa::{CODE_COA_NAK, CODE_DISCONNECT_ACK};
    use ebok_radius::fake_nas::{fake_nas, SECRET};
    let session = json!({"nas": "127.0.0.1", "session_id": "81a0002f"});
    let change = json!({"nas": "127.0.0.1", "session_id": "81a0002f",
        "attributes": {"Filter-Id": "gold", "Mikrotik-Rate-Limit": "10M/20M"}});

    // Not wired (a panel-only process): 503.
    let mut h = Harness::sqlite(billing_tokens()).await;
    live_fixture(&h).await;
    let (status, _) = post_json(&h, "/api/v1/sessions/disconnect", session.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Disconnect-ACK after one lost request.
    let (port, seen) = fake_nas(CODE_DISCONNECT_ACK, None, 1, SECRET).await;
    wire_coa(&mut h, port);
    let (status, answer) = post_json(&h, "/api/v1/sessions/disconnect", session.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], "ack");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Input errors before anything is sent.
    for (path, bad, want) in [
        (
            "coa",
            json!({"nas": "127.0.0.1", "session_id": "81a0002f"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "coa",
            json!({"nas": "127.0.0.1", "session_id": "81a0002f", "attributes": {"No-Such": "1"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "coa",
            json!({"nas": "127.0.0.1", "session_id": "81a0002f", "attributes": {"Session-Timeout": "soon"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "disconnect",
            json!({"nas": "127.0.0.1", "session_id": "81a0002f", "attributes": {"Filter-Id": "x"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "disconnect",
            json!({"nas": "127.0.0.1", "session_id": "nope"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "disconnect",
            json!({"nas": "127.0.0.1"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) =
            post_json(&h, &format!("/api/v1/sessions/{path}"), bad.clone()).await;
        assert_eq!(status, want, "{bad}: {answer}");
        assert!(answer["error"].is_string());
    }
    h.finish().await;

    // CoA-NAK with its Error-Cause.
    let mut h = Harness::sqlite(billing_tokens()).await;
    live_fixture(&h).await;
    let (port, _) = fake_nas(CODE_COA_NAK, Some(401), 0, SECRET).await;
    wire_coa(&mut h, port);
    let (status, answer) = post_json(&h, "/api/v1/sessions/coa", change.clone()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["result"], "nak");
    assert_eq!(answer["error_cause"], 401);
    assert_eq!(answer["error_cause_name"], "Unsupported Attribute");
    let audit = ebok_store::audit::recent(&h.state.db, 50).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "ops_coa"
        && a.detail.contains("81a0002f")
        && a.detail.contains("Filter-Id")
        && a.detail.contains("nak Some(401)")));
    h.finish().await;

    // No NAS listening: 504 after the tries.
    let mut h = Harness::sqlite(billing_tokens()).await;
    live_fixture(&h).await;
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    wire_coa(&mut h, silent.local_addr().unwrap().port());
    let (status, answer) = post_json(&h, "/api/v1/sessions/coa", change).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{answer}");
    h.finish().await;
}
