//! Tests of recovery, e-mail confirmation, settings, sessions and TOTP.

use axum::http::StatusCode;
use time::OffsetDateTime;

use crate::web::tests::*;
use crate::web::{limits, totp};

/// Every `id="…"` of a page, for "no two elements share an id".
fn ids(body: &str) -> Vec<&str> {
    body.split(" id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect()
}

fn assert_unique_ids(body: &str) {
    let all = ids(body);
    let mut seen = std::collections::HashSet::new();
    for id in &all {
        assert!(seen.insert(*id), "id {id} twice in:\n{body}");
    }
}

/// The form summary: a `role="alert"` list linking to each field in error, each field's
/// own message beside it (so each message twice, no more), a message naming every empty
/// required field, typed text kept but no secret.
#[tokio::test]
async fn form_errors_are_summarised_and_name_each_empty_field() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(JAN_IP);
    let r = b
        .submit(
            "/rejestracja",
            "/rejestracja",
            &[
                ("login", "jan.kowalski"),
                ("password", GOOD_PASSWORD),
                ("password2", ""),
                ("email", ""),
                ("id", JAN_PESEL),
                ("contract", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = &r.body;
    let summary = body
        .split("<div class=\"error-summary\" role=\"alert\"")
        .nth(1)
        .expect("a summary")
        .split("</div>")
        .next()
        .unwrap();
    for (field, msg) in [
        (
            "password2",
            "Wpisz hasło jeszcze raz, aby wykluczyć literówkę.",
        ),
        ("email", "Wpisz adres e-mail."),
        ("contract", "Wpisz numer umowy."),
    ] {
        assert!(
            summary.contains(&format!("<a href=\"#{field}\">{msg}</a>")),
            "{field}: {summary}"
        );
        assert_eq!(body.matches(msg).count(), 2, "{msg}: summary and field");
        assert!(body.contains(&format!("id=\"{field}\"")));
    }
    assert!(!summary.contains("href=\"#login\""), "the login was fine");
    assert!(body.contains("value=\"jan.kowalski\""), "typed text kept");
    assert!(!body.contains(GOOD_PASSWORD), "no password echoed");
    assert!(!body.contains(JAN_PESEL), "the PESEL is not shown back");
    assert!(
        body.contains("wpisz go jeszcze raz"),
        "and the page says why"
    );
    assert_unique_ids(body);

    // The login form: each empty field by name; a refusal is the summary alone.
    let r = b
        .submit(
            "/logowanie",
            "/logowanie",
            &[("login", ""), ("password", "")],
        )
        .await;
    assert!(r
        .body
        .contains("<a href=\"#login\">Wpisz identyfikator.</a>"));
    assert!(r.body.contains("<a href=\"#password\">Wpisz hasło.</a>"));
    let r = b
        .submit(
            "/logowanie",
            "/logowanie",
            &[("login", "nikt"), ("password", "złe hasło 123")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body
            .matches("Nieprawidłowy identyfikator lub hasło.")
            .count(),
        1
    );
    assert!(r.body.contains("value=\"nikt\"") && !r.body.contains("złe hasło"));
    h.finish().await;
}

/// The page a confirmation link opens states the validity the token was given, and
/// offers a new link: sent to an address that waits, the same answer for any other,
/// rate-limited.
#[tokio::test]
async fn confirmation_page_tells_the_validity_and_sends_a_new_link() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(JAN_IP);
    let r = b
        .register("jan.kowalski", "jan@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let first = h.mails_to("jan@example.pl", 1).await;
    assert!(first[0].contains("Link działa 24 godz."), "{}", first[0]);
    let old = link_in(&first[0], "https://ebok.example.pl/email/");
    let old = old.trim_start_matches("https://ebok.example.pl").to_owned();
    let page = b.get(&old).await;
    assert_eq!(page.status, StatusCode::OK);

    let mut v = h.browser(STRANGER_IP);
    let r = v.get("/email/nie-ma-takiego").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("minęło 24 godz."), "{}", r.body);
    assert!(!r.body.contains("30 min"));
    assert!(r.body.contains("action=\"/email/ponownie\""));

    // An address nobody waits for and one that waits: the same page.
    let r = v
        .post("/email/ponownie", &[("email", "obcy@example.pl")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let unknown = r.body.clone();
    // Asked for directly (no link followed), the page blames no link.
    let ask = v.get("/email/ponownie").await;
    assert!(!ask.body.contains("Ten link jest nieważny"));
    let r = v
        .post("/email/ponownie", &[("email", "JAN@example.pl")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let strip = |s: &str| s.split("<main").nth(1).unwrap().to_owned();
    assert_eq!(strip(&unknown), strip(&r.body));
    assert!(r.body.contains("Działa 24 godz."));
    let mails = h.mails_to("jan@example.pl", 2).await;
    assert_eq!(mails.len(), 2);
    let new = link_in(&mails[1], "https://ebok.example.pl/email/");
    let new = new.trim_start_matches("https://ebok.example.pl").to_owned();
    assert_ne!(new, old);
    assert!(h.mails_to("obcy@example.pl", 1).await.is_empty());
    // The new link replaced the old one, and confirms.
    assert_eq!(b.get(&old).await.status, StatusCode::NOT_FOUND);
    let r = b.submit(&new, &new, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("został potwierdzony"));
    // A confirmed address waits no more: nothing is sent.
    v.get("/email/ponownie").await;
    v.post("/email/ponownie", &[("email", "jan@example.pl")])
        .await;
    h.state.panel.mail_work.settled().await;
    assert_eq!(h.mails_to("jan@example.pl", 2).await.len(), 2);
    // Limited per address like the other mail-sending forms (two asked for so far).
    for _ in 2..limits::CONFIRM_EMAIL.limit {
        v.get("/email/ponownie").await;
        let r = v
            .post("/email/ponownie", &[("email", "jan@example.pl")])
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    v.get("/email/ponownie").await;
    let r = v
        .post("/email/ponownie", &[("email", "jan@example.pl")])
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    h.finish().await;
}

/// Settings: unique ids across its forms, the address waiting for confirmation, the
/// account's sessions with this one marked and the others ended one by one (another
/// account's session: 404).
#[tokio::test]
async fn settings_show_pending_email_and_end_other_sessions() {
    let h = Harness::sqlite().await;
    let mut jan = jan_registered(&h).await;
    let page = jan.get("/ustawienia").await;
    assert_unique_ids(&page.body);
    assert!(!page.body.contains("czeka na potwierdzenie"));
    assert!(
        !page.body.contains("action=\"/email/ponownie\""),
        "confirmed: nothing to resend"
    );
    assert!(page.body.contains("id=\"pw-current\"") && page.body.contains("id=\"em-current\""));

    let r = jan
        .post(
            "/ustawienia/email",
            &[("current", GOOD_PASSWORD), ("email", "jan.nowy@example.pl")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = jan.get("/ustawienia").await;
    assert!(page.body.contains("czeka na potwierdzenie"));
    assert!(page.body.contains("jan.nowy@example.pl"));
    assert!(page
        .body
        .contains("name=\"email\" value=\"jan.nowy@example.pl\""));

    // A second browser of Jan's, and one of Anna's.
    let mut other = h.browser(JAN_IP);
    assert_eq!(
        other.login("jan.kowalski", GOOD_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let page = jan.get("/ustawienia").await;
    assert_eq!(page.body.matches("<strong>ta sesja</strong>").count(), 1);
    let ends: Vec<&str> = page
        .body
        .split("name=\"id\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(ends.len(), 1, "one other session");
    assert!(page.body.contains(JAN_IP));
    let mut anna = anna_registered(&h).await;
    let mut anna2 = h.browser(ANNA_IP);
    anna2.login("anna.nowak", GOOD_PASSWORD).await;
    let annas = anna.get("/ustawienia").await;
    let anna_id = annas
        .body
        .split("name=\"id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    jan.get("/ustawienia").await;
    let r = jan
        .post("/ustawienia/sesje/zakoncz", &[("id", &anna_id)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(anna2.get("/panel").await.status, StatusCode::OK);

    jan.get("/ustawienia").await;
    let r = jan
        .post("/ustawienia/sesje/zakoncz", &[("id", ends[0])])
        .await;
    assert_eq!(r.location(), "/ustawienia?n=session_ended");
    assert_eq!(other.get("/panel").await.location(), "/logowanie");
    assert_eq!(jan.get("/panel").await.status, StatusCode::OK);
    let page = jan.get("/ustawienia?n=session_ended").await;
    assert!(page.body.contains("Sesja zakończona."));
    assert!(!page.body.contains("name=\"id\" value=\""));
    let log = ebok_store::audit::recent_by_actor(&h.state.db, "panel:jan.kowalski", 20)
        .await
        .unwrap();
    assert!(log.iter().any(|e| e.action == "session_ended"));
    h.finish().await;
}

fn code_now(secret: &totp::TotpSecret) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    format!("{:06}", totp::code_at(secret.as_bytes(), now))
}

fn codes_in(body: &str) -> Vec<String> {
    body.split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Enrolment shows an `otpauth://` link beside the QR code and numeric code inputs;
/// new recovery codes need the password, are shown once and replace the old ones.
#[tokio::test]
async fn totp_link_numeric_inputs_and_new_recovery_codes() {
    let h = Harness::sqlite().await;
    let mut b = jan_registered(&h).await;
    let page = b.get("/ustawienia/2fa").await;
    assert!(page
        .body
        .contains("href=\"otpauth://totp/Testnet:jan.kowalski?secret="));
    assert!(page.body.contains("inputmode=\"numeric\""));
    assert!(page.body.contains("autocomplete=\"one-time-code\""));
    let secret: String = page
        .body
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .replace(' ', "");
    let secret = totp::TotpSecret::from_base32(&secret).unwrap();
    let r = b.post("/ustawienia/2fa", &[("code", "")]).await;
    assert!(r.body.contains("Wpisz kod, który pokazuje aplikacja."));
    let r = b
        .post("/ustawienia/2fa", &[("code", &code_now(&secret))])
        .await;
    let old = codes_in(&r.body);
    assert_eq!(old.len(), 10);

    let page = b.get("/ustawienia").await;
    assert_unique_ids(&page.body);
    assert!(page.body.contains("id=\"totp-code\"") && page.body.contains("inputmode=\"numeric\""));
    let r = b
        .post("/ustawienia/2fa/kody", &[("current", "nie to hasło")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .body
        .contains("<a href=\"#codes-current\">Obecne hasło jest nieprawidłowe.</a>"));
    b.get("/ustawienia").await;
    let r = b
        .post("/ustawienia/2fa/kody", &[("current", GOOD_PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let new = codes_in(&r.body);
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    assert!(
        !b.get("/ustawienia").await.body.contains(&new[0]),
        "shown once"
    );

    // The old codes stopped working, the new ones work (in their own field).
    let mut c = h.browser(JAN_IP);
    c.login("jan.kowalski", GOOD_PASSWORD).await;
    let r = c
        .submit("/logowanie/kod", "/logowanie/kod", &[("recovery", &old[0])])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = c
        .submit(
            "/logowanie/kod",
            "/logowanie/kod",
            &[("code", ""), ("recovery", &new[0])],
        )
        .await;
    assert_eq!(r.location(), "/panel");
    h.finish().await;
}
