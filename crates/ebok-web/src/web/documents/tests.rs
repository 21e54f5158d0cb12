//! Documents end to end: published and withdrawn through the ops API, listed and downloaded
//! in the panel by the contract's holder, another subscriber and a visitor.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::web::settings::OpsToken;
use crate::web::tests::*;
use ebok_store::documents::MAX_DOCUMENT_BYTES;

const TOKEN: &str = "test-token-of-the-document-office";

async fn harness() -> Harness {
    Harness::with(|c| {
        c.ops.tokens = vec![OpsToken {
            name: "docs".into(),
            sha256: ebok_store::auth::token_hash(TOKEN),
        }]
    })
    .await
}

/// One ops API call; gives the status and the body as text.
async fn ops(h: &Harness, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "ebok.example.pl")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/pdf")
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [10, 1, 1, 1],
            5000,
        ))));
    let resp = crate::app(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {text}\ntrailer\n%%EOF\n").into_bytes()
}

/// Publish through the ops API; gives the new document's id.
async fn publish(h: &Harness, query: &str, body: Vec<u8>) -> i64 {
    let (status, body) = ops(h, Method::POST, &format!("/api/v1/documents?{query}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["id"].as_i64().unwrap()
}

#[tokio::test]
async fn owner_other_subscriber_and_visitor_see_what_they_may() {
    let h = harness().await;
    let terms = publish(
        &h,
        "kind=terms&title=Regulamin%20%C5%9Bwiadczenia%20us%C5%82ug",
        pdf("regulamin"),
    )
    .await;
    let contract = publish(
        &h,
        "kind=contract&title=Umowa%20UM%2F2013%2F001&contract=c1",
        pdf("umowa Jana"),
    )
    .await;

    // Jan, the holder of c1: both, the general one first, dates DD.MM.RRRR.
    let mut jan = jan_registered(&h).await;
    let page = jan.get("/dokumenty").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Regulamin świadczenia usług"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Umowa UM/2013/001"));
    assert!(
        page.body.contains("umowa UM/2013/001"),
        "names the contract"
    );
    assert!(page.body.contains(">Regulamin<") && page.body.contains(">Umowa<"));
    let today =
        ebok_store::tz::format_date(ebok_store::tz::warsaw_date(time::OffsetDateTime::now_utc()));
    assert!(page.body.contains(&today), "{}", page.body);
    assert!(page.body.find("regulamin").unwrap_or(0) < page.body.find("Umowa UM").unwrap());
    assert!(page.body.contains("href=\"/dokumenty\""), "menu item");
    let r = jan.get(&format!("/dokumenty/{contract}.pdf")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    let cd = r.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert_eq!(cd, "attachment; filename=\"Umowa-UM-2013-001.pdf\"");
    assert_eq!(r.body.as_bytes(), pdf("umowa Jana"));

    // Anna: the general one only; Jan's contract is a 404, like a missing document.
    let mut anna = anna_registered(&h).await;
    let page = anna.get("/dokumenty").await;
    assert!(page.body.contains("Regulamin świadczenia usług"));
    assert!(!page.body.contains("UM/2013/001"), "{}", page.body);
    let r = anna.get(&format!("/dokumenty/{contract}.pdf")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = anna.get(&format!("/dokumenty/{terms}.pdf")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"Regulamin-swiadczenia-uslug.pdf\""
    );
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    // A visitor: the general ones.
    let mut visitor = h.browser(STRANGER_IP);
    let page = visitor.get("/dokumenty").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Regulamin świadczenia usług"));
    assert!(!page.body.contains("UM/2013/001"));
    assert_eq!(
        visitor.get(&format!("/dokumenty/{terms}.pdf")).await.status,
        StatusCode::OK
    );
    for path in [
        format!("/dokumenty/{contract}.pdf"),
        "/dokumenty/999999.pdf".into(),
        format!("/dokumenty/{terms}"),
        "/dokumenty/x.pdf".into(),
    ] {
        assert_eq!(
            visitor.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Withdrawn: gone from the list and the download, still in the operators' list.
    let (status, body) = ops(
        &h,
        Method::DELETE,
        &format!("/api/v1/documents/{terms}"),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = ops(
        &h,
        Method::DELETE,
        &format!("/api/v1/documents/{terms}"),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!jan
        .get("/dokumenty")
        .await
        .body
        .contains("Regulamin świadczenia"));
    assert_eq!(
        jan.get(&format!("/dokumenty/{terms}.pdf")).await.status,
        StatusCode::NOT_FOUND
    );
    let (status, body) = ops(&h, Method::GET, "/api/v1/documents", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let withdrawn = list.iter().find(|d| d["id"] == terms).unwrap();
    assert!(withdrawn["withdrawn_at"].is_string());
    assert_eq!(withdrawn["kind"], "terms");

    // Publishing and withdrawing are in the audit log under the token's name.
    let audit = ebok_store::audit::recent(&h.state.db, 20).await.unwrap();
    for action in ["ops_document_publish", "ops_document_withdraw"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.actor == "ops:docs"),
            "{action}"
        );
    }
    h.finish().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_with_a_reason() {
    let h = harness().await;
    let post = |q: &'static str, body: Vec<u8>| {
        let h = &h;
        async move { ops(h, Method::POST, &format!("/api/v1/documents?{q}"), body).await }
    };
    let (status, body) = post(
        "kind=terms&title=Regulamin",
        b"<html>not a pdf</html>".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a PDF"), "{body}");
    // Named like a PDF, starts like one, but cut short.
    let (status, body) = post(
        "kind=terms&title=Regulamin.pdf",
        b"%PDF-1.7\n1 0 obj".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut big = pdf("big");
    big.resize(MAX_DOCUMENT_BYTES + 10, b' ');
    let (status, body) = post("kind=terms&title=Regulamin", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains("more than the 10485760 allowed"), "{body}");
    let (status, body) = post("kind=regulamin&title=Regulamin", pdf("x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("unknown kind"), "{body}");
    let (status, body) = post("kind=terms", pdf("x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("title"), "{body}");
    let (status, body) = post("kind=terms&title=%20", pdf("x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("title"), "{body}");
    let (status, body) = post("kind=annex&title=Aneks&contract=nope", pdf("x")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("nope"), "{body}");
    // Without a token: refused before anything is read.
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/documents?kind=terms&title=X")
        .header(header::HOST, "ebok.example.pl")
        .body(Body::from(pdf("x")))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [10, 1, 1, 1],
            5000,
        ))));
    let resp = crate::app(h.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(ebok_store::documents::all_documents(&h.state.db)
        .await
        .unwrap()
        .is_empty());
    h.finish().await;
}

#[test]
fn a_download_holds_its_permit_until_its_body_is_read() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let permit = slots.clone().acquire_owned().await.unwrap();
        let body = super::held_body(b"%PDF-1.7".to_vec(), permit);
        assert_eq!(slots.available_permits(), 0);
        let read = axum::body::to_bytes(body, 1024).await.unwrap();
        assert_eq!(&read[..], b"%PDF-1.7");
        assert_eq!(slots.available_permits(), 1);
    });
}
