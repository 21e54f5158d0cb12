//! HTTP-level tests of the panel: the whole router in-process, requests carrying the TCP
//! peer address they would have, real SQLite (and PostgreSQL + Redis in the second
//! harness), the outbox as the mail the subscriber would get.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use time::macros::date;
use time::OffsetDateTime;
use tower::ServiceExt;

use super::AppState;
use crate::web::settings::{PanelConfig, SharedRedis};
use ebok_live::redis_link::RedisTarget;
use ebok_live::sessions::embedded::EmbeddedSessions;
use ebok_live::sessions::stream::{StreamOptions, StreamSessions};
use ebok_live::sessions::LiveSessions;
use ebok_radius::event::{AccountingEvent, StatusType};
use ebok_store::money::Money;
use ebok_store::subscribers::{
    upsert_contract, upsert_pppoe_account, upsert_subscriber, Address, ContractRecord,
    ContractStatus, PppoeAccountRecord, SubscriberKind, SubscriberRecord,
};
use ebok_store::Db;

pub const JAN_IP: &str = "83.1.2.3";
pub const ANNA_IP: &str = "83.1.2.4";
pub const FIRM_IP: &str = "83.1.2.5";
pub const STRANGER_IP: &str = "198.51.100.9";
pub const PROXY_IP: &str = "10.0.0.5";
pub const JAN_PESEL: &str = "44051401359";
pub const FIRM_NIP: &str = "526-025-02-74";
pub const GOOD_PASSWORD: &str = "Wiosna nad Wisłą 7";

pub struct Harness {
    pub state: AppState,
    app: Router,
    pub dir: tempfile::TempDir,
    pg: Option<crate::testkit::FreshPg>,
    redis: Option<(String, String)>,
}

fn person(
    ext: &str,
    first: &str,
    last: &str,
    pesel: Option<&str>,
    nip: Option<&str>,
) -> SubscriberRecord {
    SubscriberRecord {
        ext_id: ext.into(),
        kind: if nip.is_some() {
            SubscriberKind::Company
        } else {
            SubscriberKind::Person
        },
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        company_name: nip.map(|_| "Firma Sp. z o.o.".to_owned()),
        pesel: pesel.map(|p| p.parse().unwrap()),
        nip: nip.map(|n| n.parse().unwrap()),
        home: Address {
            street: "ul. Internetowa 1".into(),
            postcode: "30-001".into(),
            city: "Kraków".into(),
        },
        correspondence: None,
        phone: None,
        email: None,
        bank_account: None,
    }
}

fn contract(ext: &str, sub: &str, number: &str) -> ContractRecord {
    ContractRecord {
        ext_id: ext.into(),
        subscriber_ext_id: sub.into(),
        number: number.into(),
        starts_on: date!(2013 - 01 - 01),
        ends_on: None,
        monthly_fee: Money::from_grosze(5000),
        tariff: "Internet 100".into(),
        download_kbps: 100_000,
        upload_kbps: 20_000,
        installation: Address {
            street: "ul. Internetowa 1".into(),
            postcode: "30-001".into(),
            city: "Kraków".into(),
        },
        status: ContractStatus::Active,
    }
}

async fn seed(db: &Db) {
    let anna_pesel =
        ebok_store::validate::Pesel::from_parts(date!(1990 - 03 - 15), 123, true).unwrap();
    let mut tx = db.begin().await.unwrap();
    for (s, c, login) in [
        (
            person("s1", "Jan", "Kowalski", Some(JAN_PESEL), None),
            contract("c1", "s1", "UM/2013/001"),
            "jan@isp",
        ),
        (
            person("s2", "Anna", "Nowak", Some(anna_pesel.as_str()), None),
            contract("c2", "s2", "UM/2014/002"),
            "anna@isp",
        ),
        (
            person("s3", "Ewa", "Firmowa", None, Some(FIRM_NIP)),
            contract("c3", "s3", "UM/2015/003"),
            "firma@isp",
        ),
    ] {
        upsert_subscriber(&mut tx, &s).await.unwrap();
        upsert_contract(&mut tx, &c).await.unwrap();
        upsert_pppoe_account(
            &mut tx,
            &PppoeAccountRecord {
                ext_id: format!("p-{login}"),
                contract_ext_id: c.ext_id.clone(),
                login: login.into(),
                password: None,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn start_session(live: &dyn LiveSessions, sid: &str, login: &str, ip: &str) {
    session_event(live, StatusType::Start, sid, login, ip).await;
}

/// An event of session `sid` on `nas1`, now, applied to the live map.
async fn session_event(
    live: &dyn LiveSessions,
    status: StatusType,
    sid: &str,
    login: &str,
    ip: &str,
) {
    let now = OffsetDateTime::now_utc();
    let mut e = AccountingEvent::new(status, "nas1", sid, now);
    e.user_name = Some(login.into());
    e.framed_ip = Some(ip.parse().unwrap());
    live.apply(&e, now + time::Duration::hours(1))
        .await
        .unwrap();
}

impl Harness {
    /// SQLite, embedded live map, memory rate limits.
    pub async fn sqlite() -> Harness {
        Harness::with(|_| {}).await
    }

    /// [`Harness::sqlite`] with a configuration change.
    pub async fn with(tweak: impl FnOnce(&mut PanelConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
        let db = Db::connect(&url).await.unwrap();
        let live: Arc<dyn LiveSessions> = Arc::new(
            EmbeddedSessions::open(&dir.path().join("live.sqlite"))
                .await
                .unwrap(),
        );
        Harness::build(db, live, dir, None, None, tweak).await
    }

    /// PostgreSQL, Redis live map, Redis panel sessions and rate limits.
    pub async fn postgres_redis(test: &str) -> Option<Harness> {
        let url = crate::testkit::redis(test).await?;
        let pg = crate::testkit::FreshPg::create(test).await?;
        let db = Db::connect(&pg.url).await.unwrap();
        let prefix = crate::testkit::redis_prefix();
        let dir = tempfile::tempdir().unwrap();
        let live: Arc<dyn LiveSessions> = Arc::new(
            StreamSessions::open(
                &ebok_live::redis_link::RedisTarget::Single { url: url.clone() },
                &dir.path().join("live.sqlite"),
                StreamOptions {
                    prefix: prefix.clone(),
                    streams: 4,
                    retention: std::time::Duration::from_secs(3600),
                },
            )
            .await
            .unwrap(),
        );
        let (u, p) = (url.clone(), prefix.clone());
        Some(
            Harness::build(db, live, dir, Some(pg), Some((url, prefix)), move |c| {
                c.shared = Some(SharedRedis {
                    target: RedisTarget::Single { url: u.clone() },
                    prefix: p.clone(),
                });
            })
            .await,
        )
    }

    async fn build(
        db: Db,
        live: Arc<dyn LiveSessions>,
        dir: tempfile::TempDir,
        pg: Option<crate::testkit::FreshPg>,
        redis: Option<(String, String)>,
        tweak: impl FnOnce(&mut PanelConfig),
    ) -> Harness {
        seed(&db).await;
        start_session(live.as_ref(), "s-jan", "jan@isp", JAN_IP).await;
        start_session(live.as_ref(), "s-anna", "anna@isp", ANNA_IP).await;
        start_session(live.as_ref(), "s-firm", "firma@isp", FIRM_IP).await;
        let mut config = PanelConfig {
            state_dir: dir.path().to_owned(),
            ..PanelConfig::default()
        };
        config.web.trusted_proxies = vec![PROXY_IP.into()];
        config.web.public_url = "https://ebok.example.pl".into();
        config.isp.name = "Testnet".into();
        config.isp.nip = "677-244-55-15".into();
        tweak(&mut config);
        let state = AppState::new(db, live, Arc::new(config)).await.unwrap();
        let app = crate::app(state.clone());
        Harness {
            state,
            app,
            dir,
            pg,
            redis,
        }
    }

    pub async fn finish(self) {
        if let Db::Postgres(p) = &self.state.db {
            p.close().await;
        }
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
        if let Some((url, prefix)) = self.redis {
            crate::testkit::redis_cleanup(&url, &prefix).await;
            // The panel sessions' keys open with their hash tag.
            crate::testkit::redis_cleanup(&url, &format!("{{{prefix}")).await;
        }
    }

    /// The panel rebuilt with `control` ending sessions; `browser` (logged in before) goes on
    /// talking to the new one.
    pub fn with_session_control(
        &mut self,
        control: Arc<dyn ebok_radius::coa::SessionControl>,
        browser: &mut Browser,
    ) {
        self.state = self.state.clone().with_session_control(control);
        self.app = crate::app(self.state.clone());
        browser.app = self.app.clone();
    }

    pub fn browser(&self, ip: &str) -> Browser {
        Browser {
            app: self.app.clone(),
            peer: SocketAddr::new(ip.parse().unwrap(), 40000),
            host: "ebok.example.pl".into(),
            cookies: HashMap::new(),
            headers: Vec::new(),
            csrf: None,
        }
    }

    fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// The mails to `to` in the outbox once there are `count` of them (waits up to 5 s).
    pub async fn mails_to(&self, to: &str, count: usize) -> Vec<String> {
        ebok_testkit::eventually_within(Duration::from_secs(5), || async {
            read_mails(&self.outbox(), to).len() >= count
        })
        .await;
        read_mails(&self.outbox(), to)
    }

    /// The mails to `to` once one of them contains `needle` (waits up to 5 s; others may be
    /// in the outbox before it).
    pub async fn mails_with(&self, to: &str, needle: &str) -> Vec<String> {
        ebok_testkit::eventually_within(Duration::from_secs(5), || async {
            read_mails(&self.outbox(), to)
                .iter()
                .any(|m| m.contains(needle))
        })
        .await;
        read_mails(&self.outbox(), to)
    }
}

fn read_mails(dir: &std::path::Path, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    for p in files {
        if p.extension().is_some_and(|x| x == "eml") {
            let raw = std::fs::read(&p).unwrap();
            let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to_matches = parsed
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .is_some_and(|a| a.eq_ignore_ascii_case(to));
            if to_matches {
                let subject = parsed.subject().unwrap_or_default().to_owned();
                let body = parsed
                    .body_text(0)
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                out.push(format!("{subject}\n{body}"));
            }
        }
    }
    out
}

/// The link in a mail that starts with `prefix`.
pub fn link_in(mail: &str, prefix: &str) -> String {
    let start = mail
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {mail}"));
    mail[start..].split_whitespace().next().unwrap().to_owned()
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser: its own cookies, source address, and the CSRF token of the last page.
pub struct Browser {
    app: Router,
    pub peer: SocketAddr,
    /// The Host header sent.
    pub host: String,
    pub cookies: HashMap<String, String>,
    pub headers: Vec<(String, String)>,
    pub csrf: Option<String>,
}

impl Browser {
    async fn send(&mut self, method: Method, path: &str, body: Option<String>) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.as_str());
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(b)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for sc in headers.get_all(header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (kv, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        if let Some(t) = body.split("name=\"csrf\" value=\"").nth(1) {
            self.csrf = Some(t.split('"').next().unwrap().to_owned());
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    /// POST a form with the CSRF token of the last page (fetch `page` first when given).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(t) = &self.csrf {
            all.push(("csrf".into(), t.clone()));
        }
        self.post_raw(path, &all).await
    }

    pub async fn post_raw(&mut self, path: &str, fields: &[(String, String)]) -> Resp {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        self.send(Method::POST, path, Some(body.join("&"))).await
    }

    /// GET the page, then POST its form.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let r = self.get(page).await;
        assert!(r.status.is_success(), "GET {page}: {}", r.status);
        self.post(action, fields).await
    }

    pub async fn register(&mut self, login: &str, email: &str, id: &str, contract: &str) -> Resp {
        self.submit(
            "/rejestracja",
            "/rejestracja",
            &[
                ("login", login),
                ("password", GOOD_PASSWORD),
                ("password2", GOOD_PASSWORD),
                ("email", email),
                ("id", id),
                ("contract", contract),
            ],
        )
        .await
    }

    pub async fn login(&mut self, login: &str, password: &str) -> Resp {
        self.submit(
            "/logowanie",
            "/logowanie",
            &[("login", login), ("password", password)],
        )
        .await
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Register Jan from his line and confirm his e-mail; gives his logged-in browser.
pub(crate) async fn jan_registered(h: &Harness) -> Browser {
    let mut b = h.browser(JAN_IP);
    let r = b
        .register("jan.kowalski", "jan@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mails = h.mails_to("jan@example.pl", 1).await;
    let link = link_in(&mails[0], "https://ebok.example.pl/email/");
    let path = link.trim_start_matches("https://ebok.example.pl");
    let r = b.submit(path, path, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    b
}

/// A logged-in browser of `login` from `ip`: registered first when the account does not
/// exist yet (Jan with his confirmed address, anyone else as Anna's contract holder).
pub(crate) async fn logged_in(h: &Harness, login: &str, ip: &str) -> Browser {
    let known = ebok_store::panel::panel_account_by_login(&h.state.db, login)
        .await
        .unwrap()
        .is_some();
    if known {
        let mut b = h.browser(ip);
        let r = b.login(login, GOOD_PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        return b;
    }
    if login == "jan.kowalski" {
        return jan_registered(h).await;
    }
    let pesel = ebok_store::validate::Pesel::from_parts(date!(1990 - 03 - 15), 123, true).unwrap();
    let mut b = h.browser(ip);
    let r = b
        .register(login, "anna@example.pl", pesel.as_str(), "UM/2014/002")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    b
}

/// Anna, registered from her line and logged in.
pub(crate) async fn anna_registered(h: &Harness) -> Browser {
    logged_in(h, "anna.nowak", ANNA_IP).await
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn registration_from_own_line_logs_in_and_mails_a_confirmation() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(JAN_IP);
    let page = b.get("/rejestracja").await;
    assert!(page.body.contains("name=\"pesel\"") || page.body.contains("name=\"id\""));
    let r = b
        .register("Jan.Kowalski", "jan@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/panel?n=registered");
    let panel = b.get("/panel").await;
    assert_eq!(panel.status, StatusCode::OK);
    assert!(panel.body.contains("Jan Kowalski"), "{}", panel.body);
    assert!(panel.body.contains("UM/2013/001"));
    assert!(
        panel.body.contains("łącze umowy UM/2013/001"),
        "connection note names the contract to its holder"
    );
    let mails = h.mails_to("jan@example.pl", 1).await;
    assert!(mails[0].contains("Potwierdź adres e-mail"), "{}", mails[0]);
    assert!(mails[0].contains("Jan.Kowalski"));
    // Audit trail.
    let log = ebok_store::audit::recent(&h.state.db, 10).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "register" && e.ip == Some(JAN_IP.parse().unwrap())));
    // A second account for the same subscriber is refused (limit 1), from the same line.
    let mut again = h.browser(JAN_IP);
    let r = again
        .register("jan2", "jan2@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("konto w panelu już istnieje"), "{}", r.body);
    h.finish().await;
}

#[tokio::test]
async fn registration_refused_from_unmapped_ip_with_advice() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(STRANGER_IP);
    let page = b.get("/rejestracja").await;
    assert!(
        !page.body.contains("name=\"login\""),
        "no form off the ISP's lines"
    );
    assert!(page.body.contains("Połącz się przez swoje łącze domowe"));
    assert!(page.body.contains(STRANGER_IP));
    let r = b
        .post(
            "/rejestracja",
            &[
                ("login", "obcy"),
                ("password", GOOD_PASSWORD),
                ("password2", GOOD_PASSWORD),
                ("email", "x@example.pl"),
                ("id", JAN_PESEL),
                ("contract", "UM/2013/001"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        ebok_store::panel::panel_account_by_login(&h.state.db, "obcy")
            .await
            .unwrap()
            .is_none()
    );
    h.finish().await;
}

#[tokio::test]
async fn registration_refused_from_another_subscribers_line_without_saying_which_field() {
    let h = Harness::sqlite().await;
    // Anna's line, Jan's PESEL and contract.
    let mut b = h.browser(ANNA_IP);
    let r1 = b
        .register("intruz", "i@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r1.status, StatusCode::FORBIDDEN);
    // Jan's line, right PESEL, wrong contract; and right contract, another valid PESEL.
    let mut j = h.browser(JAN_IP);
    let r2 = j
        .register("jan.k", "j@example.pl", JAN_PESEL, "UM/2014/002")
        .await;
    let other = ebok_store::validate::Pesel::from_parts(date!(1990 - 03 - 15), 123, true).unwrap();
    let r3 = j
        .register("jan.k", "j@example.pl", other.as_str(), "UM/2013/001")
        .await;
    for r in [&r1, &r2, &r3] {
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("nie pasują do łącza"), "{}", r.body);
        assert!(!r.body.contains("PESEL jest niepoprawny"));
    }
    assert!(
        ebok_store::panel::panel_account_by_login(&h.state.db, "intruz")
            .await
            .unwrap()
            .is_none()
    );
    h.finish().await;
}

#[tokio::test]
async fn spoofed_forwarded_for_from_untrusted_peer_is_ignored() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(STRANGER_IP);
    b.headers.push(("x-forwarded-for".into(), JAN_IP.into()));
    b.headers
        .push(("forwarded".into(), format!("for={JAN_IP}")));
    let r = b
        .register("spoof", "s@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The same header from the configured proxy is believed.
    let mut p = h.browser(PROXY_IP);
    p.headers
        .push(("x-forwarded-for".into(), format!("203.0.113.1, {JAN_IP}")));
    let r = p
        .register("jan.proxy", "jp@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    h.finish().await;
}

#[tokio::test]
async fn registration_field_rules_rerender_with_messages() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(JAN_IP);
    let r = b
        .register(
            "jan.kowalski",
            "jan@example.pl",
            "44051401358",
            "UM/2013/001",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("cyfra kontrolna się nie zgadza"),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"jan.kowalski\""), "values kept");
    assert!(!r.body.contains(GOOD_PASSWORD), "passwords never echoed");
    for (pw, msg) in [
        ("krótkie", "co najmniej 10 znaków"),
        ("jan.kowalski", "nie może być identyfikatorem"),
        (JAN_PESEL, "nie może być numerem PESEL"),
        ("qwertyuiop", "zbyt popularne"),
    ] {
        let r = b
            .submit(
                "/rejestracja",
                "/rejestracja",
                &[
                    ("login", "jan.kowalski"),
                    ("password", pw),
                    ("password2", pw),
                    ("email", "jan@example.pl"),
                    ("id", JAN_PESEL),
                    ("contract", "UM/2013/001"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains(msg), "{pw}: {}", r.body);
    }
    let r = b
        .submit(
            "/rejestracja",
            "/rejestracja",
            &[
                ("login", "jan.kowalski"),
                ("password", GOOD_PASSWORD),
                ("password2", "inne hasło 12345"),
                ("email", "zły adres"),
                ("id", JAN_PESEL),
                ("contract", "UM/2013/001"),
            ],
        )
        .await;
    assert!(r.body.contains("Hasła się różnią") && r.body.contains("poprawny adres e-mail"));
    // English.
    b.headers.push(("accept-language".into(), "en".into()));
    let r = b
        .register(
            "jan.kowalski",
            "jan@example.pl",
            "44051401358",
            "UM/2013/001",
        )
        .await;
    assert!(r.body.contains("check digit does not match"), "{}", r.body);
    h.finish().await;
}

#[tokio::test]
async fn company_registers_with_nip_and_logins_are_unique_ignoring_case() {
    let h = Harness::sqlite().await;
    let _jan = jan_registered(&h).await;
    let mut f = h.browser(FIRM_IP);
    let r = f
        .register("JAN.KOWALSKI", "biuro@firma.pl", FIRM_NIP, "UM/2015/003")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("identyfikator jest już zajęty"));
    let r = f
        .register("firma", "biuro@firma.pl", "5260250274", "UM/2015/003")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Login, sessions, CSRF
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_logout_and_session_fixation() {
    let h = Harness::sqlite().await;
    drop(jan_registered(&h).await);
    // A cookie planted before login is never adopted.
    let mut b = h.browser(STRANGER_IP);
    b.cookies
        .insert("ebok_session".into(), "planted0000".into());
    let r = b.login("JAN.kowalski", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let sid = b.cookies["ebok_session"].clone();
    assert_ne!(sid, "planted0000");
    let set = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        set.iter().any(|c| c.starts_with("ebok_session=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")
            && c.contains("Secure")),
        "{set:?}"
    );
    let p = b.get("/panel").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("którego nie rozpoznajemy"),
        "connection note off any line"
    );
    let mut on_anna = h.browser(ANNA_IP);
    on_anna.login("jan.kowalski", GOOD_PASSWORD).await;
    let p = on_anna.get("/panel").await;
    assert!(
        p.body.contains("nie należy do Twojego konta"),
        "connection note on another's line"
    );
    // A second login gets another id.
    let mut b2 = h.browser(JAN_IP);
    b2.login("jan.kowalski", GOOD_PASSWORD).await;
    assert_ne!(b2.cookies["ebok_session"], sid);
    // Logout ends the session server-side: the old cookie no longer works.
    b.get("/panel").await;
    let r = b.post("/wyloguj", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut replay = h.browser(STRANGER_IP);
    replay.cookies.insert("ebok_session".into(), sid);
    assert_eq!(replay.get("/panel").await.location(), "/logowanie");
    assert_eq!(
        b2.get("/panel").await.status,
        StatusCode::OK,
        "other session unaffected"
    );
    h.finish().await;
}

#[tokio::test]
async fn login_brute_force_is_throttled_per_account_and_per_ip() {
    let h = Harness::sqlite().await;
    drop(jan_registered(&h).await);
    let mut a = h.browser(STRANGER_IP);
    for _ in 0..5 {
        let r = a.login("jan.kowalski", "wrong password 1").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("Nieprawidłowy identyfikator lub hasło"));
    }
    // Even the right password waits now, from any address.
    let mut c = h.browser(ANNA_IP);
    let r = c.login("jan.kowalski", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Spróbuj ponownie za 15 min"), "{}", r.body);
    // Per IP: many logins tried from one address.
    let mut s = h.browser("192.0.2.77");
    let mut last = StatusCode::OK;
    for i in 0..25 {
        last = s.login(&format!("nobody{i}"), "whatever pass").await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let log = ebok_store::audit::recent(&h.state.db, 100).await.unwrap();
    assert!(log.iter().filter(|e| e.action == "login_failed").count() >= 5);
    h.finish().await;
}

/// DNS rebinding: a page elsewhere whose name now points at the panel makes the victim's
/// browser (on the victim's own line) send the registration under that other name. Nothing
/// with another Host reaches a handler; the panel's own names and aliases work.
#[tokio::test]
async fn requests_for_another_host_name_are_refused_before_any_handler() {
    let h = Harness::with(|c| c.web.host_aliases = vec!["panel.example.pl".into()]).await;
    let mut victim = h.browser(JAN_IP);
    victim.host = "rebound.evil.example".into();
    let r = victim.get("/rejestracja").await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    assert!(!r.body.contains("csrf"), "no form is served");
    let r = victim
        .post(
            "/rejestracja",
            &[
                ("login", "attacker"),
                ("password", GOOD_PASSWORD),
                ("password2", GOOD_PASSWORD),
                ("email", "a@evil.example"),
                ("id", JAN_PESEL),
                ("contract", "UM/2013/001"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    assert!(
        ebok_store::panel::panel_account_by_login(&h.state.db, "attacker")
            .await
            .unwrap()
            .is_none()
    );
    for path in ["/", "/api/v1/nas", "/static/ebok.css", "/nie-ma"] {
        assert_eq!(
            victim.get(path).await.status,
            StatusCode::MISDIRECTED_REQUEST,
            "{path}"
        );
    }
    for host in ["ebok.example.pl", "EBOK.example.pl:443", "panel.example.pl"] {
        victim.host = host.into();
        assert_eq!(victim.get("/").await.status, StatusCode::OK, "{host}");
    }
    h.finish().await;
}

/// 40 guesses sent at once, the right password among them (last): the limit is reserved
/// before argon2 runs, so at most 5 of them are checked at all, on both limiter backends.
async fn simultaneous_guesses_get_at_most_the_limit_checked(h: &Harness) {
    drop(jan_registered(h).await);
    let mut browsers = Vec::new();
    for _ in 0..40 {
        let mut b = h.browser(STRANGER_IP);
        b.get("/logowanie").await;
        browsers.push(b);
    }
    let guesses = browsers.iter_mut().enumerate().map(|(i, b)| async move {
        let password = if i == 39 {
            GOOD_PASSWORD.to_owned()
        } else {
            format!("wrong password {i}")
        };
        b.post(
            "/logowanie",
            &[("login", "jan.kowalski"), ("password", &password)],
        )
        .await
        .status
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} guesses checked: {statuses:?}");
    assert!(checked >= 1, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_guesses_are_bounded_in_memory() {
    let h = Harness::sqlite().await;
    simultaneous_guesses_get_at_most_the_limit_checked(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_guesses_are_bounded_in_redis() {
    let Some(h) =
        Harness::postgres_redis("web::tests::simultaneous_guesses_are_bounded_in_redis").await
    else {
        return;
    };
    simultaneous_guesses_get_at_most_the_limit_checked(&h).await;
    h.finish().await;
}

#[tokio::test]
async fn csrf_missing_forged_or_cross_site_is_refused() {
    let h = Harness::sqlite().await;
    drop(jan_registered(&h).await);
    let mut b = h.browser(JAN_IP);
    b.get("/logowanie").await;
    let fields = |t: Option<&str>| {
        let mut f = vec![
            ("login".to_owned(), "jan.kowalski".to_owned()),
            ("password".to_owned(), GOOD_PASSWORD.to_owned()),
        ];
        if let Some(t) = t {
            f.push(("csrf".into(), t.into()));
        }
        f
    };
    assert_eq!(
        b.post_raw("/logowanie", &fields(None)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.post_raw("/logowanie", &fields(Some(&"0".repeat(64))))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A token from another browser does not fit this one's cookie.
    let mut other = h.browser(JAN_IP);
    other.get("/logowanie").await;
    let foreign = other.csrf.clone().unwrap();
    assert_eq!(
        b.post_raw("/logowanie", &fields(Some(&foreign)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Right token, but the browser says the form came from another site.
    let good = b.csrf.clone().unwrap();
    b.headers
        .push(("origin".into(), "https://evil.example".into()));
    assert_eq!(
        b.post_raw("/logowanie", &fields(Some(&good))).await.status,
        StatusCode::FORBIDDEN
    );
    b.headers.clear();
    assert_eq!(
        b.post_raw("/logowanie", &fields(Some(&good))).await.status,
        StatusCode::SEE_OTHER
    );
    // Logged in: a state change needs the session-bound token, not the anonymous one.
    let p = b.get("/ustawienia").await;
    assert_eq!(p.status, StatusCode::OK);
    let fields = vec![("csrf".to_owned(), foreign)];
    assert_eq!(
        b.post_raw("/ustawienia/wyloguj-wszedzie", &fields)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(b.get("/panel").await.status, StatusCode::OK);
    h.finish().await;
}

/// The connection note on pages other than "Twój panel" (answered in the session's query,
/// without the overview): the own line names its contract, another's line does not.
async fn connection_note_on_every_page(h: &Harness) {
    let mut b = jan_registered(h).await;
    for page in ["/kontakt", "/panel", "/ustawienia"] {
        let p = b.get(page).await;
        assert_eq!(p.status, StatusCode::OK, "{page}");
        assert!(p.body.contains("łącze umowy UM/2013/001"), "{page}");
    }
    b.peer = SocketAddr::new(ANNA_IP.parse().unwrap(), 40000);
    for page in ["/kontakt", "/panel"] {
        let p = b.get(page).await;
        assert!(p.body.contains("nie należy do Twojego konta"), "{page}");
        assert!(!p.body.contains("łącze umowy"), "{page}");
    }
    b.peer = SocketAddr::new(STRANGER_IP.parse().unwrap(), 40000);
    assert!(b
        .get("/kontakt")
        .await
        .body
        .contains("którego nie rozpoznajemy"));
}

#[tokio::test]
async fn connection_note_on_every_page_of_each_backend() {
    let sqlite = Harness::sqlite().await;
    let others = Harness::postgres_redis("web::connection_note_on_every_page").await;
    for h in std::iter::once(sqlite).chain(others) {
        connection_note_on_every_page(&h).await;
        h.finish().await;
    }
}

/// With the shared map, a line whose session has just ended is no longer called ours and
/// cannot register, though the form is already in the browser.
#[tokio::test]
async fn registration_asks_the_live_map_when_the_session_has_just_ended() {
    let Some(h) = Harness::postgres_redis("web::registration_asks_the_live_map").await else {
        return;
    };
    let known = "to łącze naszej sieci";
    let mut b = h.browser(JAN_IP);
    assert!(b.get("/").await.body.contains(known));
    let form = b.get("/rejestracja").await;
    assert!(form.body.contains("name=\"contract\""), "{}", form.body);
    // Jan's session ends (the form is already in his browser).
    session_event(
        h.state.live.as_ref(),
        StatusType::Stop,
        "s-jan",
        "jan@isp",
        JAN_IP,
    )
    .await;
    assert!(!b.get("/").await.body.contains(known));
    let r = b
        .post(
            "/rejestracja",
            &[
                ("login", "jan.kowalski"),
                ("password", GOOD_PASSWORD),
                ("password2", GOOD_PASSWORD),
                ("email", "jan@example.pl"),
                ("id", JAN_PESEL),
                ("contract", "UM/2013/001"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        ebok_store::panel::panel_account_by_login(&h.state.db, "jan.kowalski")
            .await
            .unwrap()
            .is_none()
    );
    h.finish().await;
}

/// A page without a form makes no CSRF seed (no cookie, no work); a page with one does, and
/// a token whose seed the browser never got back is refused.
#[tokio::test]
async fn csrf_seed_only_where_a_form_is_shown() {
    let h = Harness::sqlite().await;
    let seed_cookie = |r: &Resp| {
        r.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("ebok_csrf="))
    };
    let mut b = h.browser(JAN_IP);
    for page in ["/", "/jezyk/en?wroc=/", "/nie-ma-takiej-strony"] {
        let r = b.get(page).await;
        assert!(!seed_cookie(&r), "{page} set a CSRF seed");
        assert!(r.headers.contains_key("content-security-policy"), "{page}");
    }
    assert!(b.csrf.is_none() && !b.cookies.contains_key("ebok_csrf"));
    let r = b.get("/logowanie").await;
    assert!(seed_cookie(&r) && b.csrf.is_some());
    // The same browser keeps its seed: no new cookie, the same token.
    let token = b.csrf.clone();
    assert!(!seed_cookie(&b.get("/logowanie").await));
    assert_eq!(b.csrf, token);
    // A browser that drops the seed cookie cannot use the token made for it.
    let mut forgetful = h.browser(JAN_IP);
    forgetful.get("/logowanie").await;
    forgetful.cookies.clear();
    let r = forgetful
        .post(
            "/logowanie",
            &[("login", "jan.kowalski"), ("password", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.contains_key("content-security-policy"));
    h.finish().await;
}

#[tokio::test]
async fn security_headers_and_languages() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(JAN_IP);
    let r = b.get("/").await;
    let csp = r
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(r.headers.get("referrer-policy").unwrap(), "same-origin");
    assert!(r.body.contains("lang=\"pl\"") && r.body.contains("Logowanie do panelu"));
    assert!(r.body.contains(&format!(
        "Łączysz się z adresu {JAN_IP} — to łącze naszej sieci."
    )));
    assert!(
        !r.body.contains("Kowalski"),
        "a visitor is not told whose line it is"
    );
    assert!(!r.body.contains("<script"));
    let r = b.get("/jezyk/en?wroc=/logowanie").await;
    assert_eq!(r.location(), "/logowanie");
    let r = b.get("/logowanie").await;
    assert!(
        r.body.contains("lang=\"en\"") && r.body.contains("Log in to the panel"),
        "{}",
        r.body
    );
    assert_eq!(b.get("/jezyk/pl?wroc=//evil.example").await.location(), "/");
    // A TAB, CR/LF or NUL after the slash: browsers would follow the first to another
    // site, the others cannot go into a header; all go home, none is an error.
    for evil in [
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%00",
        "/%0d%0aSet-Cookie:x=1",
    ] {
        let r = b.get(&format!("/jezyk/pl?wroc={evil}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{evil}");
        assert_eq!(r.location(), "/", "{evil}");
    }
    let mut e = h.browser(STRANGER_IP);
    e.headers
        .push(("accept-language".into(), "en-US,en;q=0.9".into()));
    let r = e.get("/nie-ma-takiej").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such page"));
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Recovery, e-mail, settings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn recovery_is_indistinguishable_and_its_link_works_once() {
    let h = Harness::sqlite().await;
    drop(jan_registered(&h).await);
    let mut b = h.browser(STRANGER_IP);
    let known = b
        .submit(
            "/przywracanie",
            "/przywracanie",
            &[("email", "JAN@example.pl")],
        )
        .await;
    let unknown = b
        .submit(
            "/przywracanie",
            "/przywracanie",
            &[("email", "nikt@example.pl")],
        )
        .await;
    assert_eq!(known.status, unknown.status);
    let strip = |s: &str| s.split("name=\"csrf\"").next().unwrap().to_owned();
    assert_eq!(
        strip(&known.body).replace("JAN@example.pl", "X"),
        strip(&unknown.body).replace("nikt@example.pl", "X")
    );
    let mails = h.mails_to("jan@example.pl", 2).await;
    let reset = mails
        .iter()
        .find(|m| m.contains("Przywracanie dostępu"))
        .expect("reset mail");
    assert!(reset.contains("jan.kowalski"), "reminds the identifier");
    assert!(!reset.contains(GOOD_PASSWORD));
    let link = link_in(reset, "https://ebok.example.pl/przywracanie/");
    let path = link
        .trim_start_matches("https://ebok.example.pl")
        .to_owned();
    assert!(read_mails(&h.outbox(), "nikt@example.pl").is_empty());
    // Sessions are ended by a reset.
    let mut jan = h.browser(JAN_IP);
    jan.login("jan.kowalski", GOOD_PASSWORD).await;
    let new = "Lato nad Odrą 2026!";
    let r = b
        .submit(&path, &path, &[("password", new), ("password2", new)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Twój identyfikator to jan.kowalski"));
    assert_eq!(jan.get("/panel").await.location(), "/logowanie");
    assert_eq!(
        b.login("jan.kowalski", GOOD_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.login("jan.kowalski", new).await.status,
        StatusCode::SEE_OTHER
    );
    // Used up.
    let again = b.get(&path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.body.contains("Ten link jest nieważny"));
    h.finish().await;
}

#[tokio::test]
async fn recovery_link_expires_after_30_minutes_and_needs_a_confirmed_address() {
    let h = Harness::sqlite().await;
    let mut b = h.browser(JAN_IP);
    b.register("jan.kowalski", "jan@example.pl", JAN_PESEL, "UM/2013/001")
        .await;
    // Not confirmed yet: no reset mail.
    let mut v = h.browser(STRANGER_IP);
    v.submit(
        "/przywracanie",
        "/przywracanie",
        &[("email", "jan@example.pl")],
    )
    .await;
    // Whatever the request started has handed its mail over (or sent none).
    h.state.panel.mail_work.settled().await;
    assert_eq!(
        h.mails_to("jan@example.pl", 1).await.len(),
        1,
        "only the confirmation mail"
    );
    let confirm = link_in(
        &h.mails_to("jan@example.pl", 1).await[0],
        "https://ebok.example.pl/email/",
    );
    let path = confirm
        .trim_start_matches("https://ebok.example.pl")
        .to_owned();
    assert!(
        b.get(&path).await.body.contains("Potwierdzam"),
        "GET only shows a button"
    );
    b.post(&path, &[]).await;
    v.submit(
        "/przywracanie",
        "/przywracanie",
        &[("email", "jan@example.pl")],
    )
    .await;
    let mails = h.mails_to("jan@example.pl", 2).await;
    let link = link_in(
        mails
            .iter()
            .find(|m| m.contains("Przywracanie dostępu"))
            .unwrap(),
        "https://ebok.example.pl/przywracanie/",
    );
    let path = link
        .trim_start_matches("https://ebok.example.pl")
        .to_owned();
    ebok_store::on_pool!(&h.state.db, pool => sqlx::query("UPDATE account_tokens SET expires_at = expires_at - 1801").execute(pool).await.unwrap().rows_affected());
    assert_eq!(v.get(&path).await.status, StatusCode::NOT_FOUND);
    h.finish().await;
}

#[tokio::test]
async fn settings_change_password_ends_other_sessions_and_email_change_is_confirmed() {
    let h = Harness::sqlite().await;
    let mut b = jan_registered(&h).await;
    let mut other = h.browser(ANNA_IP);
    other.login("jan.kowalski", GOOD_PASSWORD).await;
    let new = "Jesień w Beskidach 9";
    let r = b
        .submit(
            "/ustawienia",
            "/ustawienia/haslo",
            &[
                ("current", "zle haslo 123"),
                ("password", new),
                ("password2", new),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Obecne hasło jest nieprawidłowe"));
    let r = b
        .submit(
            "/ustawienia",
            "/ustawienia/haslo",
            &[
                ("current", GOOD_PASSWORD),
                ("password", new),
                ("password2", new),
            ],
        )
        .await;
    assert_eq!(r.location(), "/ustawienia?n=password_changed");
    assert_eq!(
        b.get("/ustawienia?n=password_changed").await.status,
        StatusCode::OK
    );
    assert_eq!(
        other.get("/panel").await.location(),
        "/logowanie",
        "other session ended"
    );
    let r = b
        .submit(
            "/ustawienia",
            "/ustawienia/email",
            &[("current", new), ("email", "jan.nowy@example.pl")],
        )
        .await;
    assert!(r.body.contains("jan.nowy@example.pl"));
    let notice = h.mails_to("jan@example.pl", 3).await;
    assert!(
        notice
            .iter()
            .any(|m| m.contains("zmianę adresu e-mail na jan.nowy@example.pl")),
        "{notice:?}"
    );
    let confirm = h.mails_to("jan.nowy@example.pl", 1).await;
    let path = link_in(&confirm[0], "https://ebok.example.pl/email/")
        .trim_start_matches("https://ebok.example.pl")
        .to_owned();
    let r = b.submit(&path, &path, &[]).await;
    assert!(r.body.contains("jan.nowy@example.pl"));
    let acc = ebok_store::panel::panel_account_by_login(&h.state.db, "jan.kowalski")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.email, "jan.nowy@example.pl");
    assert!(acc.email_confirmed_at.is_some());
    // Logout everywhere.
    let r = b
        .submit("/ustawienia", "/ustawienia/wyloguj-wszedzie", &[])
        .await;
    assert_eq!(r.location(), "/?n=logged_out_all");
    assert_eq!(b.get("/panel").await.location(), "/logowanie");
    h.finish().await;
}

#[tokio::test]
async fn totp_second_factor_enrolment_login_replay_and_recovery_codes() {
    let h = Harness::sqlite().await;
    let mut b = jan_registered(&h).await;
    let page = b.get("/ustawienia/2fa").await;
    assert!(page.body.contains("<svg"));
    let secret: String = page
        .body
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .replace(' ', "");
    let secret = super::totp::TotpSecret::from_base32(&secret).unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    let code = format!("{:06}", super::totp::code_at(secret.as_bytes(), now));
    let r = b.post("/ustawienia/2fa", &[("code", &code)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes: Vec<String> = r
        .body
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    b.submit("/ustawienia", "/wyloguj", &[]).await;

    // Password alone is not enough now.
    let mut c = h.browser(JAN_IP);
    let r = c.login("jan.kowalski", GOOD_PASSWORD).await;
    assert_eq!(r.location(), "/logowanie/kod");
    assert_eq!(c.get("/panel").await.location(), "/logowanie");
    // The code used at enrolment cannot be replayed.
    let r = c
        .submit("/logowanie/kod", "/logowanie/kod", &[("code", &code)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A recovery code works once.
    let pending = c.cookies["ebok_session"].clone();
    let r = c
        .submit(
            "/logowanie/kod",
            "/logowanie/kod",
            &[("code", &codes[0].to_uppercase())],
        )
        .await;
    assert_eq!(r.location(), "/panel");
    assert_ne!(
        c.cookies["ebok_session"], pending,
        "id rotated after the second factor"
    );
    assert_eq!(c.get("/panel").await.status, StatusCode::OK);
    let mut d = h.browser(JAN_IP);
    d.login("jan.kowalski", GOOD_PASSWORD).await;
    let r = d
        .submit("/logowanie/kod", "/logowanie/kod", &[("code", &codes[0])])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = d
        .submit("/logowanie/kod", "/logowanie/kod", &[("code", &codes[1])])
        .await;
    assert_eq!(r.location(), "/panel");
    h.finish().await;
}

#[tokio::test]
async fn panel_flow_on_postgres_with_redis_sessions_and_limits() {
    let Some(h) =
        Harness::postgres_redis("web::panel_flow_on_postgres_with_redis_sessions_and_limits").await
    else {
        return;
    };
    let mut b = jan_registered(&h).await;
    assert_eq!(b.get("/panel").await.status, StatusCode::OK);
    b.submit("/panel", "/wyloguj", &[]).await;
    assert_eq!(b.get("/panel").await.location(), "/logowanie");
    let mut a = h.browser(STRANGER_IP);
    for _ in 0..5 {
        a.login("jan.kowalski", "wrong password 1").await;
    }
    assert_eq!(
        a.login("jan.kowalski", GOOD_PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let mut x = h.browser(ANNA_IP);
    assert_eq!(
        x.register("intruz", "i@example.pl", JAN_PESEL, "UM/2013/001")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    h.finish().await;
}

#[tokio::test]
async fn your_data_shows_each_contract_with_its_ips_and_nothing_of_others() {
    use ebok_store::subscribers::{upsert_ip_assignment, IpAssignmentRecord, IpKind};
    let h = Harness::sqlite().await;
    let mut tx = h.state.db.begin().await.unwrap();
    for (ext, contract, addr) in [
        ("ip1", "c1", "83.1.2.3"),
        ("ip2", "c1", "2001:db8:10::/48"),
        ("ip3", "c2", "83.1.2.4"),
    ] {
        upsert_ip_assignment(
            &mut tx,
            &IpAssignmentRecord {
                ext_id: ext.into(),
                contract_ext_id: contract.into(),
                address: addr
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| addr.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .unwrap(),
                kind: IpKind::Static,
                activated_on: Some(date!(2013 - 01 - 02)),
                installation: None,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let mut b = jan_registered(&h).await;
    let p = b.get("/panel").await;
    assert_eq!(p.status, StatusCode::OK);
    for needle in [
        "Twoje dane",
        "UM/2013/001",
        "01.01.2013 – na czas nieokreślony",
        "50,00",
        "Informacje dla poszczególnych IP",
        "83.1.2.3",
        "2001:db8:10::/48",
        "02.01.2013",
        "ul. Internetowa 1, 30-001 Kraków",
        "Internet 100",
    ] {
        // An IPv6 prefix may wrap after a colon (`<wbr>`).
        assert!(
            p.body.replace("<wbr>", "").contains(needle),
            "missing {needle}"
        );
    }
    assert!(
        !p.body.contains("83.1.2.4") && !p.body.contains("UM/2014/002"),
        "nothing of Anna's"
    );
    b.headers.push(("accept-language".into(), "en".into()));
    b.cookies.remove("ebok_lang");
    let p = b.get("/panel").await;
    assert!(p.body.contains("Information per IP") && p.body.contains("indefinite"));
    h.finish().await;
}

#[tokio::test]
async fn mail_links_never_come_from_the_host_header() {
    let mut config = PanelConfig::default();
    config.web.listen = "0.0.0.0:8080".parse().unwrap();
    let h = Harness::sqlite().await;
    let state = AppState {
        config: Arc::new(config),
        ..h.state.clone()
    };
    assert_eq!(state.link("/email/x"), "http://localhost:8080/email/x");
    assert_eq!(h.state.link("/email/x"), "https://ebok.example.pl/email/x");
    // A forged Host on the recovery request changes nothing in the mail.
    drop(jan_registered(&h).await);
    let mut b = h.browser(STRANGER_IP);
    b.get("/przywracanie").await;
    b.headers.push(("host".into(), "evil.example".into()));
    b.post("/przywracanie", &[("email", "jan@example.pl")])
        .await;
    let mails = h.mails_to("jan@example.pl", 2).await;
    assert!(mails.iter().all(|m| !m.contains("evil.example")));
    assert!(mails
        .iter()
        .any(|m| m.contains("https://ebok.example.pl/przywracanie/")));
    h.finish().await;
}
