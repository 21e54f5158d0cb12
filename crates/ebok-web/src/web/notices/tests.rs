//! Notices through the whole panel on real SQLite (and PostgreSQL with the Redis live map)
//! and the real live map: who sees which notice (NAS of the live session, installation
//! address, everyone), the anonymous view from a live line, resolving, the once-only mail
//! in each recipient's language with two senders racing, and the ops API's checks.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::web::settings::OpsToken;
use crate::web::tests::*;
use crate::web::AppState;
use ebok_radius::event::{AccountingEvent, StatusType};
use ebok_store::notices::{self, NoticeDraft, Severity};

const TOKEN: &str = "test-token-of-the-noc";
const OUTAGE: &str = "Awaria światłowodu na Podgórzu";

/// Anna's line moves to `nas2` (Stop on nas1, Start on nas2): Jan stays on nas1.
async fn anna_on_nas2(h: &Harness) {
    let live = h.state.live.as_ref();
    let now = OffsetDateTime::now_utc();
    let mut stop = AccountingEvent::new(StatusType::Stop, "nas1", "s-anna", now);
    stop.user_name = Some("anna@isp".into());
    live.apply(&stop, now + time::Duration::hours(1))
        .await
        .unwrap();
    let mut start = AccountingEvent::new(StatusType::Start, "nas2", "s-anna-2", now);
    start.user_name = Some("anna@isp".into());
    start.framed_ip = Some(ANNA_IP.parse().unwrap());
    live.apply(&start, now + time::Duration::hours(1))
        .await
        .unwrap();
}

fn draft(severity: Severity) -> NoticeDraft {
    NoticeDraft {
        title: OUTAGE.into(),
        body: "Ekipa naprawcza jest na miejscu.".into(),
        severity,
        starts_at: OffsetDateTime::now_utc() - time::Duration::minutes(5),
        expected_end: Some(OffsetDateTime::now_utc() + time::Duration::hours(3)),
        everyone: false,
        nas: Vec::new(),
        postcodes: Vec::new(),
        cities: Vec::new(),
    }
}

/// Store a notice and show it at once (as the ops API does).
async fn post(h: &Harness, d: NoticeDraft) -> i64 {
    let d = d.normalized().unwrap();
    let mut tx = h.state.db.begin().await.unwrap();
    let id = notices::create(&mut tx, &d).await.unwrap();
    tx.commit().await.unwrap();
    h.state.panel.notices.invalidate();
    id
}

async fn resolve(h: &Harness, id: i64) {
    let mut tx = h.state.db.begin().await.unwrap();
    notices::resolve(&mut tx, id).await.unwrap();
    tx.commit().await.unwrap();
    h.state.panel.notices.invalidate();
}

fn banner(body: &str) -> bool {
    body.contains("class=\"outage sev-")
}

async fn nas_targeting(h: Harness) {
    anna_on_nas2(&h).await;
    let mut jan = jan_registered(&h).await;
    let mut anna = anna_registered(&h).await;
    let mut d = draft(Severity::Outage);
    d.nas = vec!["nas2".into()];
    post(&h, d).await;
    // Anna's live session is on nas2: the dashboard card and the banner on every page.
    let p = anna.get("/panel").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(banner(&p.body), "{}", p.body);
    assert!(p.body.contains(OUTAGE));
    assert!(p.body.contains("Wykryliśmy awarię w Twojej okolicy"));
    assert!(p.body.contains("Ekipa naprawcza jest na miejscu."));
    for path in ["/faq", "/platnosci", "/pppoe"] {
        let page = anna.get(path).await;
        assert!(banner(&page.body) && page.body.contains(OUTAGE), "{path}");
    }
    // Jan is on nas1: nothing, and the dashboard says so.
    let p = jan.get("/panel").await;
    assert!(!banner(&p.body), "{}", p.body);
    assert!(!p.body.contains(OUTAGE));
    assert!(p.body.contains("Nie ma awarii ani prac serwisowych"));
    // Anna from elsewhere still sees it (her session is on nas2), in English too.
    let mut away = h.browser(STRANGER_IP);
    away.login("anna.nowak", GOOD_PASSWORD).await;
    away.get("/jezyk/en?wroc=/faq").await;
    let page = away.get("/faq").await;
    assert!(
        page.body
            .contains("We have detected an outage in your area"),
        "{}",
        page.body
    );
    h.finish().await;
}

#[tokio::test]
async fn only_subscribers_on_the_nas_see_the_notice() {
    nas_targeting(Harness::sqlite().await).await;
}

#[tokio::test]
async fn only_subscribers_on_the_nas_see_the_notice_postgres_redis() {
    let Some(h) = Harness::postgres_redis("web::notices::nas_targeting").await else {
        return;
    };
    nas_targeting(h).await;
}

/// Anna's contract moves to Nowa Huta (31-900): a postcode notice touches her only; a city
/// notice, typed in capitals, both; resolved, nobody.
#[tokio::test]
async fn address_areas_and_resolving() {
    let h = Harness::sqlite().await;
    let db = &h.state.db;
    let (anna_sub, _) = ebok_store::subscribers::subscriber_by_login(db, "anna@isp")
        .await
        .unwrap()
        .unwrap();
    let sql = "UPDATE contracts SET inst_postcode = '31-900' WHERE subscriber_id = $1";
    match db {
        ebok_store::Db::Sqlite(p) => sqlx::query(sql)
            .bind(anna_sub.id)
            .execute(p)
            .await
            .map(|_| ()),
        ebok_store::Db::Postgres(p) => sqlx::query(sql)
            .bind(anna_sub.id)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
    let mut jan = jan_registered(&h).await;
    let mut anna = anna_registered(&h).await;
    let mut d = draft(Severity::Maintenance);
    d.postcodes = vec!["31-900".into()];
    d.title = "Wymiana przełącznika w Nowej Hucie".into();
    let huta = post(&h, d).await;
    let p = anna.get("/panel").await;
    assert!(
        p.body.contains("Wymiana przełącznika w Nowej Hucie"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Prace serwisowe w Twojej okolicy"));
    assert!(!jan.get("/panel").await.body.contains("Nowej Hucie"));
    let mut d = draft(Severity::Outage);
    d.cities = vec!["KRAKÓW".into()];
    let city = post(&h, d).await;
    assert!(jan.get("/kontakt").await.body.contains(OUTAGE));
    assert!(anna.get("/kontakt").await.body.contains(OUTAGE));
    resolve(&h, city).await;
    resolve(&h, huta).await;
    for b in [&mut jan, &mut anna] {
        let p = b.get("/panel").await;
        assert!(!banner(&p.body), "{}", p.body);
        assert!(!p.body.contains(OUTAGE) && !p.body.contains("Nowej Hucie"));
    }
    h.finish().await;
}

/// A visitor on Anna's live line sees the nas2 outage and nothing of Anna; other visitors
/// see it only when it is for everyone.
#[tokio::test]
async fn visitors_on_a_live_line_see_the_notice_without_personal_data() {
    let h = Harness::sqlite().await;
    anna_on_nas2(&h).await;
    let mut d = draft(Severity::Outage);
    d.nas = vec!["nas2".into()];
    post(&h, d).await;
    let mut visitor = h.browser(ANNA_IP);
    let home = visitor.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("Wykryliśmy awarię w Twojej okolicy"),
        "{}",
        home.body
    );
    assert!(home.body.contains(OUTAGE));
    for personal in [
        "Anna",
        "Nowak",
        "anna@isp",
        "UM/2014/002",
        "Internetowa",
        JAN_IP,
        "nas2",
    ] {
        assert!(
            !home.body.contains(personal),
            "{personal} shown to a visitor"
        );
    }
    for ip in [JAN_IP, STRANGER_IP] {
        let page = h.browser(ip).get("/faq").await;
        assert!(!banner(&page.body), "{ip}: {}", page.body);
    }
    let mut d = draft(Severity::Info);
    d.everyone = true;
    d.title = "Nowy numer infolinii".into();
    post(&h, d).await;
    let page = h.browser(STRANGER_IP).get("/faq").await;
    assert!(page.body.contains("Nowy numer infolinii"), "{}", page.body);
    assert!(page.body.contains(">Komunikat<"), "{}", page.body);
    assert!(!page.body.contains(OUTAGE));
    h.finish().await;
}

/// Anna confirms her address and uses the panel in English.
async fn anna_confirmed_in_english(h: &Harness) {
    let mut anna = anna_registered(h).await;
    let mails = h.mails_to("anna@example.pl", 1).await;
    let link = link_in(&mails[0], "https://ebok.example.pl/email/");
    let path = link.trim_start_matches("https://ebok.example.pl");
    let r = anna.submit(path, path, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    anna.get("/jezyk/en?wroc=/panel").await;
}

#[tokio::test]
async fn the_mail_goes_once_per_notice_in_each_language_with_two_senders() {
    let h = Harness::with(|c| c.mail.notices = true).await;
    drop(jan_registered(&h).await);
    anna_confirmed_in_english(&h).await;
    anna_on_nas2(&h).await;
    let mut d = draft(Severity::Outage);
    d.nas = vec!["nas1".into(), "nas2".into()];
    post(&h, d).await;
    // A second instance over the same database, live map and outbox.
    let other = AppState::new(
        h.state.db.clone(),
        h.state.live.clone(),
        h.state.config.clone(),
    )
    .await
    .unwrap();
    let (a, b) = tokio::join!(super::mail::pass(&h.state), super::mail::pass(&other));
    assert_eq!(a.unwrap() + b.unwrap(), 2);
    // Later passes find nothing more to send.
    assert_eq!(super::mail::pass(&other).await.unwrap(), 0);
    assert_eq!(super::mail::pass(&h.state).await.unwrap(), 0);
    h.state.panel.mail_work.settled().await;
    other.panel.mail_work.settled().await;
    let jan = h.mails_with("jan@example.pl", OUTAGE).await;
    let jan: Vec<_> = jan.iter().filter(|m| m.contains(OUTAGE)).collect();
    assert_eq!(jan.len(), 1, "{jan:?}");
    assert!(jan[0].starts_with("Awaria w Twojej okolicy"), "{}", jan[0]);
    assert!(jan[0].contains("Przewidywane zakończenie"));
    let anna = h.mails_with("anna@example.pl", OUTAGE).await;
    let anna: Vec<_> = anna.iter().filter(|m| m.contains(OUTAGE)).collect();
    assert_eq!(anna.len(), 1, "{anna:?}");
    assert!(anna[0].starts_with("An outage in your area"), "{}", anna[0]);
    assert!(anna[0].contains("https://ebok.example.pl/panel"));
    h.finish().await;
}

#[tokio::test]
async fn no_mail_unless_configured() {
    let h = Harness::sqlite().await;
    drop(jan_registered(&h).await);
    let mut d = draft(Severity::Outage);
    d.everyone = true;
    post(&h, d).await;
    assert_eq!(super::mail::pass(&h.state).await.unwrap(), 0);
    h.state.panel.mail_work.settled().await;
    let n = notices::unmailed(&h.state.db, OffsetDateTime::now_utc(), 10)
        .await
        .unwrap();
    assert_eq!(
        n.len(),
        1,
        "the marker stays free for when mail is turned on"
    );
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// The ops API
// ---------------------------------------------------------------------------------------------

async fn api(h: &Harness, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let app = crate::app(h.state.clone());
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "ebok.example.pl")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let mut req = req.body(body).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn ops_api_posts_changes_resolves_and_refuses_bad_input() {
    let h = Harness::with(|c| {
        c.ops.tokens = vec![OpsToken {
            name: "noc".into(),
            sha256: ebok_store::auth::token_hash(TOKEN),
        }]
    })
    .await;
    let good = json!({
        "title": OUTAGE, "body": "Naprawiamy.", "severity": "outage",
        "starts_at": "2026-01-31 13:00", "expected_end": "2026-01-31T16:00:00Z",
        "nas": ["nas2", " nas2 "]
    });
    for (change, needle) in [
        (
            json!({"severity": "disaster"}),
            "unknown severity \"disaster\": one of info, maintenance, outage",
        ),
        (
            json!({"starts_at": "yesterday"}),
            "starts_at \"yesterday\" is neither",
        ),
        (
            json!({"expected_end": "2026-01-31 12:00"}),
            "expected_end: must be after starts_at",
        ),
        (json!({"title": "  "}), "title: must not be empty"),
        (
            json!({"nas": [], "postcodes": ["31900"]}),
            "postcodes: \"31900\" is not a postcode",
        ),
        (json!({"nas": []}), "everyone: name at least one"),
        (
            json!({"everyone": true}),
            "everyone: a notice for everyone takes no",
        ),
        (json!({"colour": "red"}), "unknown field `colour`"),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = api(&h, Method::POST, "/api/v1/notices", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(needle), "{change}: {error}");
    }
    let (status, list) = api(&h, Method::GET, "/api/v1/notices?status=all", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 0, "nothing stored by refused requests");

    let (status, created) = api(&h, Method::POST, "/api/v1/notices", Some(good)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["nas"], json!(["nas2"]));
    assert_eq!(created["starts_at"], "2026-01-31T12:00:00Z");
    assert_eq!(created["resolved_at"], Value::Null);
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/notices/{id}");
    let (status, changed) = api(
        &h,
        Method::PATCH,
        &path,
        Some(json!({"severity": "maintenance", "expected_end": ""})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["severity"], "maintenance");
    assert_eq!(changed["expected_end"], Value::Null);
    assert_eq!(changed["title"], OUTAGE);
    let (status, _) = api(
        &h,
        Method::PUT,
        "/api/v1/notices/99999",
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, open) = api(&h, Method::GET, "/api/v1/notices", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(open["items"][0]["id"], id);

    let (status, resolved) = api(&h, Method::POST, &format!("{path}/resolve"), None).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert!(resolved["resolved_at"].is_string());
    let (status, again) = api(&h, Method::PATCH, &path, Some(json!({"title": "Inny"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert!(again["error"].as_str().unwrap().contains("is resolved"));
    let (_, open) = api(&h, Method::GET, "/api/v1/notices", None).await;
    assert_eq!(open["total"], 0);

    let actions: Vec<String> = ebok_store::audit::recent_by_actor(&h.state.db, "ops:noc", 20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "ops_notice_create",
        "ops_notice_update",
        "ops_notice_resolve",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
    // Without a token: 401.
    let app = crate::app(h.state.clone());
    let req = Request::builder()
        .uri("/api/v1/notices")
        .header(header::HOST, "ebok.example.pl")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    h.finish().await;
}
