//! The attribution endpoints through the whole router: token required, clear 400s, an audit
//! row for every answered query, JSON lookups and the streamed CSV export (header, rows,
//! quoting) — on SQLite and on a fresh PostgreSQL database.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

use super::*;
use crate::testkit::{stored_closed_session as closed_session, subscriber_with_login};
use crate::web::settings::{OpsToken, PanelConfig};
use ebok_live::sessions::embedded::EmbeddedSessions;
use ebok_radius::event::{AccountingEvent, StatusType};

const TOKEN: &str = "test-token-of-the-abuse-desk";
const CALLER: &str = "203.0.113.9:40000";

struct Harness {
    state: AppState,
    _dir: tempfile::TempDir,
    pg: Option<crate::testkit::FreshPg>,
}

impl Harness {
    async fn start(db: Db, dir: tempfile::TempDir, pg: Option<crate::testkit::FreshPg>) -> Self {
        let live = EmbeddedSessions::open(&dir.path().join("live.sqlite"))
            .await
            .unwrap();
        let mut config = PanelConfig::default();
        config.ops.tokens = vec![OpsToken {
            name: "abuse".into(),
            sha256: ebok_store::auth::token_hash(TOKEN),
        }];
        config.state_dir = dir.path().to_owned();
        let state = AppState::new(db, Arc::new(live), Arc::new(config))
            .await
            .unwrap();
        Harness {
            state,
            _dir: dir,
            pg,
        }
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
        let db = Db::connect(&url).await.unwrap();
        Harness::start(db, dir, None).await
    }

    async fn postgres(test: &str) -> Option<Self> {
        let pg = crate::testkit::FreshPg::create(test).await?;
        let db = Db::connect(&pg.url).await.expect("connect and migrate");
        Some(Harness::start(db, tempfile::tempdir().unwrap(), Some(pg)).await)
    }

    async fn finish(self) {
        if let Db::Postgres(p) = &self.state.db {
            p.close().await;
        }
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
    }

    /// GET `path` from the caller's address, with the token or `authorization` as given.
    async fn get(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::get(path).header(header::HOST, "localhost");
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let caller: SocketAddr = CALLER.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(caller));
        let resp = crate::app(self.state.clone()).oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn ok(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        self.get(path, Some(&format!("Bearer {TOKEN}"))).await
    }

    async fn json(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.ok(path).await;
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    async fn audit(&self) -> Vec<audit::AuditEntry> {
        audit::recent_by_actor(&self.state.db, "ops:abuse", 50)
            .await
            .unwrap()
    }
}

fn base() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() - Duration::days(3);
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap()
}

#[tokio::test]
async fn attribution_needs_a_token() {
    let h = Harness::sqlite().await;
    for path in [
        "/api/v1/attribution?ip=10.0.0.1",
        "/api/v1/attribution/export.csv?from=0&to=10",
    ] {
        for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
            let (status, headers, _) = h.get(path, auth).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    assert!(h.audit().await.is_empty());
    h.finish().await;
}

#[tokio::test]
async fn bad_questions_are_clear_400s_and_not_audited() {
    let h = Harness::sqlite().await;
    let cases = [
        ("/api/v1/attribution", "the query parameter ip is required"),
        (
            "/api/v1/attribution?ip=10.0.0.300",
            "is not an IPv4 or IPv6 address",
        ),
        (
            "/api/v1/attribution?ip=10.0.0.1&at=yesterday",
            "at \"yesterday\" is neither",
        ),
        (
            "/api/v1/attribution?ip=10.0.0.1&at=2026-13-01T00:00:00Z",
            "neither an RFC 3339",
        ),
        (
            "/api/v1/attribution/export.csv?to=10",
            "the query parameter from is required",
        ),
        (
            "/api/v1/attribution/export.csv?from=10",
            "the query parameter to is required",
        ),
        (
            "/api/v1/attribution/export.csv?from=100&to=99",
            "to (1970-01-01T00:01:39Z) is before from",
        ),
        (
            "/api/v1/attribution/export.csv?from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z",
            "longer than 366 days",
        ),
        (
            "/api/v1/attribution/export.csv?from=0&to=10&ip=host",
            "ip \"host\" is not",
        ),
    ];
    for (path, message) in cases {
        let (status, body) = h.json(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{path}: {error}");
    }
    // Exactly 366 days is allowed.
    let (status, _, _) = h
        .ok("/api/v1/attribution/export.csv?from=2025-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.audit().await.len(), 1, "only the answered query");
    h.finish().await;
}

async fn scenario(h: &Harness) {
    let db = &h.state.db;
    let t0 = base();
    let t = |s: i64| t0 + Duration::seconds(s);
    subscriber_with_login(db, 1, "Alański", "ala").await;
    let odd = "o\"neil;x";
    closed_session(
        db,
        "s-1",
        "ala",
        Some("10.9.0.1"),
        &["2001:db8:2:100::/56"],
        (t(0), t(100)),
    )
    .await;
    closed_session(db, "s-2", odd, Some("10.9.0.1"), &[], (t(100), t(200))).await;
    closed_session(db, "s-3", "ala", Some("10.9.0.2"), &[], (t(50), t(60))).await;
    let mut start = AccountingEvent::new(StatusType::Start, "192.0.2.1", "s-live", t(300));
    start.user_name = Some("ala".into());
    start.framed_ip = Some("10.9.0.1".parse().unwrap());
    h.state
        .live
        .apply(&start, OffsetDateTime::now_utc() + Duration::hours(1))
        .await
        .unwrap();

    // At a handover both sessions answer, newest first; RFC 3339 and Unix seconds alike.
    let at = t(100)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, body) = h
        .json(&format!("/api/v1/attribution?ip=10.9.0.1&at={at}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ip"], "10.9.0.1");
    let sessions = body["sessions"].as_array().unwrap();
    let ids: Vec<&str> = sessions
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s-2", "s-1"]);
    let ala = &sessions[1];
    assert_eq!(ala["source"], "history");
    assert_eq!(ala["login"], "ala");
    assert_eq!(ala["nas_client"], "bras-1");
    assert_eq!(ala["mac"], "02:00:00:00:00:03");
    assert_eq!(ala["stopped_at"], Value::String(at.clone()));
    assert_eq!(ala["close_reason"], "stop");
    assert_eq!(ala["terminate_cause"], 1);
    assert_eq!(ala["subscriber"]["name"], "Jan Alański");
    assert_eq!(ala["contract"]["number"], "UM/1");
    assert!(
        ala["subscriber"].get("pesel").is_none(),
        "identity numbers stay out"
    );
    assert_eq!(sessions[0]["subscriber"], Value::Null);

    let (_, body) = h
        .json(&format!(
            "/api/v1/attribution?ip=2001:db8:2:1ff::1&at={}",
            t(10).unix_timestamp()
        ))
        .await;
    assert_eq!(body["sessions"][0]["session_id"], "s-1");
    // Now: the live holder.
    let (_, body) = h.json("/api/v1/attribution?ip=10.9.0.1").await;
    assert_eq!(body["sessions"][0]["source"], "live");
    assert_eq!(body["sessions"][0]["stopped_at"], Value::Null);
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);

    // The export: header, rows in start order, quoting, attachment.
    let (status, headers, csv) = h
        .ok(&format!(
            "/api/v1/attribution/export.csv?ip=10.9.0.1&from={}&to={}",
            t(0).unix_timestamp(),
            t(1000).unix_timestamp()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"attribution-"),
        "{disposition}"
    );
    assert!(
        csv.contains(",\"o\"\"neil;x\","),
        "the login is quoted: {csv}"
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(CSV_HEADER.to_vec())
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let column = |name: &str| CSV_HEADER.iter().position(|c| *c == name).unwrap();
    let cells =
        |name: &str| -> Vec<String> { rows.iter().map(|r| r[column(name)].to_owned()).collect() };
    assert_eq!(cells("session_id"), ["s-1", "s-2", "s-live"]);
    assert_eq!(cells("login"), ["ala", odd, "ala"]);
    assert_eq!(cells("source"), ["history", "history", "live"]);
    assert_eq!(cells("ipv6_prefixes")[0], "2001:db8:2:100::/56");
    assert_eq!(cells("stopped_at")[2], "");
    assert_eq!(cells("subscriber_name"), ["Jan Alański", "", "Jan Alański"]);
    assert_eq!(cells("contract_number")[0], "UM/1");

    // All addresses in a period that s-3 and s-1 overlap.
    let (_, _, csv) = h
        .ok(&format!(
            "/api/v1/attribution/export.csv?from={}&to={}",
            t(55).unix_timestamp(),
            t(99).unix_timestamp()
        ))
        .await;
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Every answered query is in the audit log: who, from where, what, how many.
    let entries = h.audit().await;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(entries.len(), 5, "{actions:?}");
    assert!(entries
        .iter()
        .all(|e| e.ip == Some("203.0.113.9".parse().unwrap())));
    assert_eq!(
        actions[4],
        (
            "attribution_lookup",
            &*format!("ip 10.9.0.1 at {at}: 2 sessions")
        )
    );
    assert_eq!(
        actions[1],
        (
            "attribution_export",
            &*format!(
                "ip 10.9.0.1 from {} to {}: 3 sessions",
                t(0).format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
                t(1000)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            )
        )
    );
    assert!(
        actions[0].1.starts_with("all addresses from "),
        "{actions:?}"
    );
    assert!(actions[0].1.ends_with(": 2 sessions"), "{actions:?}");
}

#[tokio::test]
async fn lookup_and_export_sqlite() {
    let h = Harness::sqlite().await;
    scenario(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn lookup_and_export_postgres() {
    let Some(h) =
        Harness::postgres("ops::api::attribution::tests::lookup_and_export_postgres").await
    else {
        return;
    };
    scenario(&h).await;
    h.finish().await;
}
