//! Tests of the contact block, tickets, orders, news and FAQ.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

use axum::http::StatusCode;
use axum::Router;

use crate::web::settings::IspConfig;
use crate::web::tests::*;
use crate::web::AppState;
use ebok_store::content::{self, OrderStatus};
use ebok_store::content::{
    upsert_faq, upsert_news, upsert_service, FaqRecord, NewsRecord, ServiceRecord,
};
use ebok_store::money::Money;
use ebok_store::panel::{self, Author, TicketStatus};
use ebok_store::repo::Page;

fn isp() -> IspConfig {
    IspConfig {
        name: "Testnet".into(),
        nip: String::new(),
        office_phone: "12 633-55-50".into(),
        technical_phone: "12 294-45-49, kom. 696-445-536".into(),
        hours: "pon–pt 9.00–17.00".into(),
        address: "ul. Wrocławska 48-50, 30-011 Kraków".into(),
        email: "bok@testnet.example".into(),
        logo: None,
        ksef_qr_host: String::new(),
    }
}

/// The harness's application with the `[isp]` block of [`isp`] (the harness has none).
fn app_with_isp(h: &Harness) -> Router {
    let mut config = (*h.state.config).clone();
    config.isp = isp();
    crate::app(AppState {
        config: Arc::new(config),
        ..h.state.clone()
    })
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What [`Browser`] does, through another application: its cookies and CSRF token.
async fn via(app: &Router, b: &mut Browser, path: &str, form: Option<&[(&str, &str)]>) -> Resp {
    let mut req = Request::builder()
        .method(if form.is_some() {
            Method::POST
        } else {
            Method::GET
        })
        .uri(path)
        .header(header::HOST, "ebok.example.pl");
    if !b.cookies.is_empty() {
        let c: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        req = req.header(header::COOKIE, c.join("; "));
    }
    let body = match form {
        Some(fields) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let mut parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            if let Some(t) = &b.csrf {
                parts.push(format!("csrf={}", enc(t)));
            }
            Body::from(parts.join("&"))
        }
        None => Body::empty(),
    };
    let mut req = req.body(body).unwrap();
    req.extensions_mut().insert(ConnectInfo(b.peer));
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    for sc in headers.get_all(header::SET_COOKIE) {
        let sc = sc.to_str().unwrap();
        let kv = sc.split(';').next().unwrap();
        let (k, v) = kv.split_once('=').unwrap();
        b.cookies.insert(k.to_owned(), v.to_owned());
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(bytes.to_vec()).unwrap();
    if let Some(t) = body.split("name=\"csrf\" value=\"").nth(1) {
        b.csrf = Some(t.split('"').next().unwrap().to_owned());
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// A logged-in browser of `login` on `ip`: registered the first time, else logged in.
/// The first mail to `to` containing `needle` (waits up to 5 s).
async fn mail_with(h: &Harness, to: &str, needle: &str) -> String {
    h.mails_with(to, needle)
        .await
        .into_iter()
        .find(|m| m.contains(needle))
        .unwrap_or_else(|| panic!("no mail to {to} with {needle}"))
}

async fn jan(h: &Harness) -> Browser {
    logged_in(h, "jan.kowalski", JAN_IP).await
}

async fn anna(h: &Harness) -> Browser {
    logged_in(h, "anna.nowak", ANNA_IP).await
}

async fn subscriber_of(h: &Harness, login: &str) -> i64 {
    panel::panel_account_by_login(&h.state.db, login)
        .await
        .unwrap()
        .unwrap()
        .subscriber_id
}

async fn services(h: &Harness) -> (i64, i64) {
    let mut tx = h.state.db.begin().await.unwrap();
    for (ext, name, active) in [("tv", "Telewizja", true), ("old", "Modem 56k", false)] {
        upsert_service(
            &mut tx,
            &ServiceRecord {
                ext_id: ext.into(),
                name: name.into(),
                description: format!("Opis: {name}"),
                price: Money::from_grosze(123_456),
                active,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let active = content::active_services(&h.state.db).await.unwrap();
    let tv = active.iter().find(|s| s.ext_id == "tv").unwrap().id;
    let mut old = 0;
    for id in 1..10 {
        if let Some(s) = content::service(&h.state.db, id).await.unwrap() {
            if s.ext_id == "old" {
                old = s.id;
            }
        }
    }
    (tv, old)
}

// -----------------------------------------------------------------------------------------
// Markdown
// -----------------------------------------------------------------------------------------

// -----------------------------------------------------------------------------------------
// Kontakt
// -----------------------------------------------------------------------------------------

#[tokio::test]
async fn contact_block_comes_from_the_configuration() {
    let h = Harness::sqlite().await;
    let app = app_with_isp(&h);
    let mut visitor = h.browser(STRANGER_IP);
    let r = via(&app, &mut visitor, "/kontakt", None).await;
    assert_eq!(r.status, StatusCode::OK);
    for text in [
        "12 633-55-50",
        "href=\"tel:126335550\"",
        "12 294-45-49, kom. 696-445-536",
        "<dd>12 294-45-49, kom. 696-445-536</dd>",
        "pon–pt 9.00–17.00",
        "ul. Wrocławska 48-50, 30-011 Kraków",
        "href=\"mailto:bok@testnet.example\"",
        "Serwis techniczny",
        "zaloguj się do panelu",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
    assert!(!r.body.contains("name=\"subject\""), "no form for visitors");
    // In English.
    visitor.cookies.insert("ebok_lang".into(), "en".into());
    let r = via(&app, &mut visitor, "/kontakt", None).await;
    assert!(r.body.contains("Technical service, phone"), "{}", r.body);
    // Without configuration: a calm note, not an empty list.
    let r = h.browser(STRANGER_IP).get("/kontakt").await;
    assert!(r
        .body
        .contains("Dane kontaktowe nie zostały jeszcze podane"));
    // Writing needs an account.
    let mut visitor = h.browser(STRANGER_IP);
    let r = visitor
        .submit(
            "/logowanie",
            "/kontakt",
            &[("subject", "x"), ("message", "y")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/logowanie");
    h.finish().await;
}

async fn ticket_flow(h: &Harness) {
    let app = app_with_isp(h);
    let mut jan = jan(h).await;
    let page = via(&app, &mut jan, "/kontakt", None).await;
    assert!(page.body.contains("name=\"subject\""), "{}", page.body);
    assert!(page.body.contains("Nie masz jeszcze żadnych zgłoszeń"));
    // Validation re-renders with messages and keeps what was typed.
    let r = via(
        &app,
        &mut jan,
        "/kontakt",
        Some(&[("subject", ""), ("message", "Brak internetu")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(r.body.contains("Brak internetu"));
    let long = "x".repeat(MAX_MESSAGE + 1);
    let r = via(
        &app,
        &mut jan,
        "/kontakt",
        Some(&[("subject", "Temat"), ("message", &long)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Najwyżej 5000 znaków"));
    // Sent: a ticket, the thread, a mail to the office, an audit entry.
    let r = via(
        &app,
        &mut jan,
        "/kontakt",
        Some(&[
            ("subject", "Brak internetu <b>"),
            ("message", "Od rana nie działa.\nRouter miga."),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let jan_id = subscriber_of(h, "jan.kowalski").await;
    let tickets = panel::tickets_of(&h.state.db, jan_id).await.unwrap();
    assert_eq!(tickets.len(), 1);
    let id = tickets[0].id;
    assert_eq!(r.location(), format!("/kontakt/{id}?wyslano=1"));
    let thread = jan.get(r.location()).await;
    assert_eq!(thread.status, StatusCode::OK);
    assert!(thread.body.contains("Wiadomość wysłana"));
    assert!(
        thread.body.contains("Brak internetu &#60;b&#62;"),
        "{}",
        thread.body
    );
    assert!(thread.body.contains("Od rana nie działa.\nRouter miga."));
    assert!(thread.body.contains("oczekuje na odpowiedź"));
    let mail = mail_with(h, "bok@testnet.example", "Router miga.").await;
    assert!(mail.contains("Nowe zgłoszenie"), "{mail}");
    assert!(mail.contains(&format!(
        "zgłoszenie nr {id} od: Jan Kowalski (jan.kowalski)"
    )));
    let log = ebok_store::audit::recent_by_actor(&h.state.db, "panel:jan.kowalski", 10)
        .await
        .unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "ticket_created" && e.detail == format!("ticket {id}; lang pl")));
    // The office answers; the subscriber sees it and replies.
    let mut tx = h.state.db.begin().await.unwrap();
    panel::add_ticket_message(&mut tx, id, Author::Office, "Proszę zrestartować router.")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let thread = jan.get(&format!("/kontakt/{id}")).await;
    assert!(thread.body.contains("Proszę zrestartować router."));
    assert!(thread.body.contains("office-msg-office"));
    assert!(thread.body.contains("odpowiedziano"));
    let list = jan.get("/kontakt").await;
    assert!(list.body.contains(&format!("href=\"/kontakt/{id}\"")));
    assert!(list.body.contains("odpowiedziano"));
    let r = via(
        &app,
        &mut jan,
        &format!("/kontakt/{id}"),
        Some(&[("message", "Pomogło, dziękuję.")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let msgs = panel::ticket_messages(&h.state.db, id).await.unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2].author, Author::Subscriber);
    mail_with(h, "bok@testnet.example", "Pomogło, dziękuję.").await;
    // Another subscriber's ticket does not exist for Anna; visitors are sent to log in.
    let mut anna = anna(h).await;
    assert_eq!(
        anna.get(&format!("/kontakt/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(anna.get("/kontakt/abc").await.status, StatusCode::NOT_FOUND);
    anna.get("/kontakt").await;
    let r = anna
        .post(&format!("/kontakt/{id}"), &[("message", "cudze")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        panel::ticket_messages(&h.state.db, id).await.unwrap().len(),
        3
    );
    assert!(!anna.get("/kontakt").await.body.contains("Brak internetu"));
    let r = h.browser(STRANGER_IP).get(&format!("/kontakt/{id}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn tickets_thread_and_ownership() {
    let h = Harness::sqlite().await;
    ticket_flow(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn tickets_are_paginated() {
    let h = Harness::sqlite().await;
    let mut jan = jan_registered(&h).await;
    let jan_id = subscriber_of(&h, "jan.kowalski").await;
    let mut tx = h.state.db.begin().await.unwrap();
    for i in 1..=12 {
        panel::create_ticket(
            &mut tx,
            Some(jan_id),
            None,
            &format!("Sprawa-{i:02}"),
            "treść",
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let first = jan.get("/kontakt").await;
    assert_eq!(first.body.matches("<th scope=\"row\">").count(), 10);
    assert!(first.body.contains("Strona 1 z 2"));
    assert!(first.body.contains("href=\"/kontakt?strona=2\""));
    let second = jan.get("/kontakt?strona=2").await;
    assert_eq!(second.body.matches("<th scope=\"row\">").count(), 2);
    assert!(second.body.contains("href=\"/kontakt?strona=1\""));
    assert!(!second.body.contains("strona=3"));
    // Nonsense page numbers are the first page; past the end, the last.
    let odd = jan.get("/kontakt?strona=zero").await;
    assert!(odd.body.contains("Strona 1 z 2"));
    let past = jan.get("/kontakt?strona=99").await;
    assert!(past.body.contains("Strona 2 z 2"), "{}", past.body);
    assert_eq!(past.body.matches("<th scope=\"row\">").count(), 2);
    assert!(!past.body.contains("strona=98") && !past.body.contains("strona=100"));
    h.finish().await;
}

/// A new ticket is confirmed to its author by mail (in the page's language); the
/// author can close it (audited), nobody else can.
#[tokio::test]
async fn ticket_confirmed_by_mail_and_closed_by_its_author() {
    let h = Harness::sqlite().await;
    let mut jan = jan(&h).await;
    jan.cookies.insert("ebok_lang".into(), "en".into());
    let r = jan
        .submit(
            "/kontakt",
            "/kontakt",
            &[("subject", "Slow line"), ("message", "Since Monday.")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let jan_id = subscriber_of(&h, "jan.kowalski").await;
    let id = panel::tickets_of(&h.state.db, jan_id).await.unwrap()[0].id;
    let mail = mail_with(&h, "jan@example.pl", "We have received your request").await;
    assert!(
        mail.contains(&format!("no. {id}")) && mail.contains("Slow line"),
        "{mail}"
    );
    assert!(mail.contains(&format!("https://ebok.example.pl/kontakt/{id}")));

    let path = format!("/kontakt/{id}");
    let close = format!("/kontakt/{id}/zamknij");
    let mut anna = anna(&h).await;
    anna.get("/kontakt").await;
    assert_eq!(anna.post(&close, &[]).await.status, StatusCode::NOT_FOUND);
    let still = panel::ticket(&h.state.db, id).await.unwrap().unwrap();
    assert_eq!(still.status, TicketStatus::Open);

    jan.cookies.remove("ebok_lang");
    let page = jan.get(&path).await;
    assert!(page.body.contains(&format!("action=\"{close}\"")));
    let r = jan.post(&close, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = jan.get(r.location()).await;
    assert!(page.body.contains("Zgłoszenie zamknięte"), "{}", page.body);
    assert!(page.body.contains("zamknięte"));
    assert!(!page.body.contains(&format!("action=\"{close}\"")));
    let closed = panel::ticket(&h.state.db, id).await.unwrap().unwrap();
    assert_eq!(closed.status, TicketStatus::Closed);
    let log = ebok_store::audit::recent_by_actor(&h.state.db, "panel:jan.kowalski", 10)
        .await
        .unwrap();
    assert!(log.iter().any(|e| e.action == "ticket_closed"));
    // Without a CSRF token nothing happens.
    let r = jan.post_raw(&close, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    h.finish().await;
}

// -----------------------------------------------------------------------------------------
// Zamawianie usług
// -----------------------------------------------------------------------------------------

async fn order_flow(h: &Harness) {
    let (tv, old) = services(h).await;
    let app = app_with_isp(h);
    let mut jan = jan(h).await;
    let page = via(&app, &mut jan, "/zamawianie", None).await;
    assert!(page.body.contains("Telewizja"));
    assert!(
        page.body.contains("1\u{a0}234,56\u{a0}zł") || page.body.contains("1 234,56 zł"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("Modem 56k"),
        "inactive services are not offered"
    );
    assert!(
        !page.body.contains("name=\"phone\""),
        "a subscriber is known: no contact fields"
    );
    let r = via(
        &app,
        &mut jan,
        "/zamawianie",
        Some(&[("service", &old.to_string()), ("note", "")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Wybierz usługę z listy"));
    // A paid service: first its monthly price and the terms, nothing ordered yet.
    let r = via(
        &app,
        &mut jan,
        "/zamawianie",
        Some(&[("service", &tv.to_string()), ("note", "Po 17:00")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Potwierdź zamówienie"), "{}", r.body);
    assert!(r.body.contains("zł/mies."), "{}", r.body);
    assert!(r.body.contains("Warunki"));
    assert!(r.body.contains("name=\"confirmed\" value=\"1\""));
    assert!(r.body.contains("value=\"Po 17:00\""), "the note goes along");
    let jan_id = subscriber_of(h, "jan.kowalski").await;
    let none = content::service_orders_of(&h.state.db, jan_id).await;
    assert!(none.unwrap().is_empty(), "not ordered before confirming");
    let r = via(
        &app,
        &mut jan,
        "/zamawianie",
        Some(&[
            ("service", &tv.to_string()),
            ("note", "Po 17:00"),
            ("confirmed", "1"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let orders = content::service_orders_of(&h.state.db, jan_id)
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
    // Jan is told, in his language, with the price.
    let mail = mail_with(h, "jan@example.pl", "Przyjęliśmy Twoje zamówienie").await;
    assert!(
        mail.contains("Telewizja") && mail.contains("zł/mies."),
        "{mail}"
    );
    let page = jan.get("/zamawianie?wyslano=1").await;
    assert!(page.body.contains("Zamówienie przyjęte"));
    assert!(page.body.contains("Po 17:00"));
    assert!(page.body.contains(">nowe<"));
    let mut tx = h.state.db.begin().await.unwrap();
    content::set_service_order_status(&mut tx, orders[0].id, OrderStatus::InProgress)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(jan.get("/zamawianie").await.body.contains(">w realizacji<"));
    let mail = mail_with(h, "bok@testnet.example", "Usługa: Telewizja").await;
    assert!(mail.contains("Jan Kowalski"), "{mail}");
    // Anna does not see Jan's orders.
    let mut anna = anna(h).await;
    assert!(!anna.get("/zamawianie").await.body.contains("Po 17:00"));

    // A visitor's enquiry: contact required, then stored without a subscriber.
    let mut visitor = h.browser(STRANGER_IP);
    let page = visitor.get("/zamawianie").await;
    assert!(page.body.contains("name=\"phone\""));
    let r = visitor
        .post(
            "/zamawianie",
            &[
                ("service", &tv.to_string()),
                ("name", ""),
                ("email", ""),
                ("phone", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Summary and field, each once; the help does not say the same again.
    let either = "Podaj e-mail lub numer telefonu";
    assert_eq!(r.body.matches(either).count(), 2, "{}", r.body);
    assert!(r.body.contains(&format!("<a href=\"#email\">{either}")));
    assert!(r.body.contains("<a href=\"#name\">Wpisz imię i nazwisko"));
    assert!(r.body.contains("role=\"alert\""));
    let r = visitor
        .post(
            "/zamawianie",
            &[
                ("service", &tv.to_string()),
                ("name", "Ola"),
                ("email", "zły"),
                ("phone", "12"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("value=\"Ola\""));
    let r = visitor
        .post(
            "/zamawianie",
            &[
                ("service", &tv.to_string()),
                ("name", "Ola Nowa"),
                ("email", ""),
                ("phone", "+48 600 100 200"),
                ("note", "Blok 5"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = visitor.get(r.location()).await;
    assert!(page.body.contains("zapytanie zostało wysłane"));
    let new = content::service_orders_by_status(&h.state.db, OrderStatus::New)
        .await
        .unwrap();
    let enquiry = new.iter().find(|o| o.subscriber_id.is_none()).unwrap();
    assert_eq!(enquiry.contact_name.as_deref(), Some("Ola Nowa"));
    assert_eq!(enquiry.contact_phone.as_deref(), Some("+48 600 100 200"));
    assert_eq!(enquiry.contact_email, None);
    assert_eq!(enquiry.note, "Blok 5");
    let log = ebok_store::audit::recent_by_actor(&h.state.db, "visitor", 10)
        .await
        .unwrap();
    assert!(log.iter().any(|e| e.action == "service_enquiry"));
}

#[tokio::test]
async fn orders_by_subscribers_and_enquiries_by_visitors() {
    let h = Harness::sqlite().await;
    order_flow(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn visitor_enquiries_are_rate_limited_per_ip() {
    let h = Harness::sqlite().await;
    let (tv, _) = services(&h).await;
    let mut visitor = h.browser(STRANGER_IP);
    visitor.get("/zamawianie").await;
    let tv = tv.to_string();
    let fields = [
        ("service", tv.as_str()),
        ("name", "Spamer"),
        ("email", "s@example.pl"),
    ];
    for _ in 0..ENQUIRY_IP.limit {
        assert_eq!(
            visitor.post("/zamawianie", &fields).await.status,
            StatusCode::SEE_OTHER
        );
        visitor.get("/zamawianie").await;
    }
    let r = visitor.post("/zamawianie", &fields).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.body.contains("Spróbuj ponownie za") || r.body.contains("Zbyt wiele"),
        "{}",
        r.body
    );
    let all = content::service_orders_by_status(&h.state.db, OrderStatus::New)
        .await
        .unwrap();
    assert_eq!(all.len(), ENQUIRY_IP.limit as usize);
    // Another address is not affected.
    let mut other = h.browser("198.51.100.10");
    other.get("/zamawianie").await;
    assert_eq!(
        other.post("/zamawianie", &fields).await.status,
        StatusCode::SEE_OTHER
    );
    h.finish().await;
}

// -----------------------------------------------------------------------------------------
// Aktualności, FAQ
// -----------------------------------------------------------------------------------------

async fn news_flow(h: &Harness) {
    let now = time::OffsetDateTime::now_utc();
    let mut tx = h.state.db.begin().await.unwrap();
    for i in 1..=12i64 {
        upsert_news(
            &mut tx,
            &NewsRecord {
                ext_id: format!("n{i}"),
                title: format!("Komunikat {i:02}"),
                body_md: format!("Treść **{i}**."),
                published_at: now - time::Duration::days(20 - i),
            },
        )
        .await
        .unwrap();
    }
    upsert_news(
        &mut tx,
        &NewsRecord {
            ext_id: "evil".into(),
            title: "Przerwa <techniczna>".into(),
            body_md: "<script>alert(1)</script>\n\n[kliknij](javascript:alert(2)) \
                      <iframe src=\"https://evil.example\"></iframe> *ważne*"
                .into(),
            published_at: now - time::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    upsert_news(
        &mut tx,
        &NewsRecord {
            ext_id: "future".into(),
            title: "Jeszcze nie".into(),
            body_md: "x".into(),
            published_at: now + time::Duration::days(3),
        },
    )
    .await
    .unwrap();
    for (ext, q, a, pos) in [
        ("f2", "Jak zmienić hasło?", "W *Ustawieniach konta*.", 2),
        (
            "f1",
            "Jak się zarejestrować?",
            "Z łącza domowego: <a href=\"javascript:x()\">tu</a>",
            1,
        ),
    ] {
        upsert_faq(
            &mut tx,
            &FaqRecord {
                ext_id: ext.into(),
                question: q.into(),
                answer_md: a.into(),
                position: pos,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let mut b = h.browser(STRANGER_IP);
    let first = b.get("/aktualnosci").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.matches("<article").count(), 10);
    assert!(
        first.body.contains("Przerwa &#60;techniczna&#62;"),
        "{}",
        first.body
    );
    assert!(first.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(first.body.contains("&lt;iframe"));
    assert!(first.body.contains("<em>ważne</em>"));
    assert!(first.body.contains("kliknij"));
    assert!(!first.body.contains("<script"));
    assert!(!first.body.contains("<iframe"));
    assert!(!first.body.contains("javascript:"));
    assert!(!first.body.contains("Jeszcze nie"), "not yet published");
    assert!(first.body.contains("Komunikat 12"));
    assert!(first.body.contains("<strong>12</strong>"));
    assert!(first.body.contains("href=\"/aktualnosci?strona=2\""));
    let second = b.get("/aktualnosci?strona=2").await;
    assert_eq!(second.body.matches("<article").count(), 3);
    assert!(second.body.contains("Komunikat 01"));
    let future = content::published_news(&h.state.db, Page::first(100))
        .await
        .unwrap();
    assert_eq!(future.total, 13);
    let one = &future.items[0];
    let page = b.get(&format!("/aktualnosci/{}", one.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Przerwa &#60;techniczna&#62;</h1>"));
    assert_eq!(
        b.get("/aktualnosci/999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.get("/aktualnosci/x").await.status, StatusCode::NOT_FOUND);

    let faq = b.get("/faq").await;
    assert_eq!(faq.status, StatusCode::OK);
    let reg = faq.body.find("Jak się zarejestrować?").unwrap();
    let pwd = faq.body.find("Jak zmienić hasło?").unwrap();
    assert!(reg < pwd, "display order");
    assert!(faq.body.contains("<em>Ustawieniach konta</em>"));
    assert!(
        faq.body
            .contains("&lt;a href=&quot;javascript:x()&quot;&gt;")
            || faq.body.contains("&lt;a href=\"javascript:x()\"&gt;"),
        "{}",
        faq.body
    );
    assert!(!faq.body.contains("<a href=\"javascript"));
    // English frame around the same content.
    b.cookies.insert("ebok_lang".into(), "en".into());
    assert!(b
        .get("/faq")
        .await
        .body
        .contains("frequently asked questions"));
    assert!(b.get("/aktualnosci").await.body.contains("<h1>News</h1>"));
}

#[tokio::test]
async fn news_and_faq_rendered_safely_and_paginated() {
    let h = Harness::sqlite().await;
    news_flow(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn office_pages_on_postgres() {
    let Some(h) = Harness::postgres_redis("web::office::office_pages_on_postgres").await else {
        return;
    };
    ticket_flow(&h).await;
    order_flow(&h).await;
    news_flow(&h).await;
    h.finish().await;
}
