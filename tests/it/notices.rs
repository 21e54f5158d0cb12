//! Outage notices on a running ebok: posted through the ops API over real HTTP, shown to the
//! caller whose live line (from real accounting through radclient) is on the named NAS,
//! counted in `ebok_notices_active`, gone once resolved.

use std::net::SocketAddr;

use ebok::config::OpsToken;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

const TOKEN: &str = "ebok_test-token-of-the-noc";

/// HTTP/1.0 POST of a JSON body with the ops token: status and body.
async fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn an_outage_on_the_callers_nas_is_shown_counted_and_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &Backend::Embedded, None);
    config.ops.tokens = vec![OpsToken {
        name: "noc".into(),
        sha256: ebok::store::auth::token_hash(TOKEN),
    }];
    let ebok = Ebok::start(config).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    // The test's own 127.0.0.1 becomes a live line on NAS 192.0.2.1.
    acct(
        &ebok,
        &attrs("Start", "n-1", "jan.kowalski", Some("127.0.0.1"), now, ""),
    )
    .await;
    let web = ebok.running.web_addr;
    let (status, body) = post_json(
        web,
        "/api/v1/notices",
        r#"{"title":"Awaria w węźle Podgórze","severity":"outage","nas":["192.0.2.1"]}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = post_json(
        web,
        "/api/v1/notices",
        r#"{"title":"Prace na innym koncentratorze","severity":"maintenance","nas":["192.0.2.99"]}"#,
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = post_json(
        web,
        "/api/v1/notices",
        r#"{"title":"x","severity":"outage","nas":["192.0.2.1"],"starts_at":"2026-01-31 13:00","expected_end":"2026-01-31 12:00"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("expected_end: must be after starts_at"),
        "{body}"
    );

    let page = http_get(web, "/").await;
    assert!(
        page.contains("Wykryliśmy awarię w Twojej okolicy"),
        "{page}"
    );
    assert!(page.contains("Awaria w węźle Podgórze"));
    assert!(!page.contains("Prace na innym koncentratorze"));
    assert!(!page.contains("jan.kowalski"));
    ebok_testkit::eventually("two notices active", || async {
        ebok.metric("ebok_notices_active").await == 2.0
    })
    .await;

    let (status, body) = post_json(web, &format!("/api/v1/notices/{id}/resolve"), "").await;
    assert_eq!(status, 200, "{body}");
    let page = http_get(web, "/").await;
    assert!(!page.contains("Awaria w węźle Podgórze"), "{page}");
    ebok_testkit::eventually("one notice active", || async {
        ebok.metric("ebok_notices_active").await == 1.0
    })
    .await;
    ebok.stop().await;
}
