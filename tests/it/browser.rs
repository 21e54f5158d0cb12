//! The panel in a real headless Chromium: registration from Jan Kowalski's demo line
//! (127.0.0.1), e-mail confirmation through the outbox, logout, login, English, with
//! screenshots of the main pages at desktop and phone widths kept as test artifacts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::webdriver::{which, Driver, Session};

const TEST: &str = "panel_in_chromium_registers_logs_in_and_out";
const JAN_PESEL: &str = "44051401359";
const LOGIN: &str = "jan.przegladarka";
const PASSWORD: &str = "Wiosna nad Wisłą 7";
const EMAIL: &str = "jan.kowalski@example.pl";

const DESKTOP: (&str, u32, u32) = ("desktop", 1280, 900);
const PHONE: (&str, u32, u32) = ("phone", 390, 844);

/// `<target>/ebok-artifacts/screenshots`, created empty of old PNGs.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ebok-artifacts").join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The browser session plus what the test needs around it.
struct Tab {
    s: Session,
    base: String,
    shots: PathBuf,
    taken: Vec<String>,
    /// Pages wider than the window (horizontal scrolling), by screenshot name.
    overflow: Vec<String>,
}

impl Tab {
    async fn open(&self, path: &str) {
        self.s
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.s.current_url().await.unwrap();
        url.strip_prefix(&self.base).unwrap_or(&url).to_owned()
    }

    /// The visible text of the page, or `None` while a new page replaces the old one (a
    /// click that submits a form does not wait for the next page).
    async fn try_text(&self) -> Option<String> {
        let body = self.s.find("body").await.ok()?;
        self.s.text(&body).await.ok()
    }

    /// The visible text of the page.
    async fn text(&self) -> String {
        for _ in 0..50 {
            if let Some(text) = self.try_text().await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no page text at {}", self.path().await)
    }

    /// Wait (up to 10 s) until the page's visible text contains `needle`.
    async fn expect_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.try_text().await.unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "page {} does not show {needle:?}; it shows:\n{text}",
                    self.path().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self
            .s
            .find(css)
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        self.s
            .click(&e)
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replace the content of the input `#id` with `value`.
    async fn fill(&self, id: &str, value: &str) {
        let e = self
            .s
            .find(&format!("#{id}"))
            .await
            .unwrap_or_else(|e| panic!("find #{id}: {e}"));
        self.s.clear(&e).await.unwrap();
        self.s.send_keys(&e, value).await.unwrap();
    }

    /// Save `<name>-<size>.png` for each size, then return to the desktop size.
    async fn shoot(&mut self, name: &str, sizes: &[(&str, u32, u32)]) {
        for &(label, w, h) in sizes {
            self.s.set_window_size(w, h).await.unwrap();
            // Let the layout settle at the new width before measuring and capturing.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let file = format!("{name}-{label}.png");
            let wide = self
                .s
                .script("return document.documentElement.scrollWidth > window.innerWidth;")
                .await
                .unwrap();
            if wide == true {
                self.overflow.push(file.clone());
            }
            let png = self.s.full_page_screenshot().await.unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{file} is a PNG");
            std::fs::write(self.shots.join(&file), png).unwrap();
            self.taken.push(file);
        }
        let (_, w, h) = DESKTOP;
        self.s.set_window_size(w, h).await.unwrap();
    }

    /// Press the logout button in the menu and wait for the logged-out home page.
    async fn log_out(&self, done: &str) {
        self.click("nav.menu form[action='/wyloguj'] button").await;
        self.expect_text(done).await;
        assert!(
            self.s
                .find_all("nav.menu form[action='/wyloguj']")
                .await
                .unwrap()
                .is_empty(),
            "no logout button after logging out"
        );
    }
}

/// The `.eml` texts in `outbox` addressed to `to` (waits up to 10 s for the first).
async fn mails_to(outbox: &Path, to: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(outbox).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "eml") {
                let raw = std::fs::read(&p).unwrap();
                let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
                let addressed = m
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .is_some_and(|a| a.eq_ignore_ascii_case(to));
                if addressed {
                    found.push(m.body_text(0).unwrap_or_default().into_owned());
                }
            }
        }
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn panel_in_chromium_registers_logs_in_and_out() {
    // A long scenario makes a large future: on the heap, not the test thread's stack.
    Box::pin(scenario()).await;
}

async fn scenario() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        ebok::testkit::skip(
            TEST,
            "chromium",
            "chromium or chromedriver not on PATH (Debian: chromium chromium-driver)",
        );
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &Backend::Embedded, None);
    // As a real deployment would: the ISP's name in the header and footer.
    c.isp = ebok::demo::isp();
    let ebok = Ebok::start(c).await;
    let (_demo_tx, demo_rx) = tokio::sync::watch::channel(false);
    ebok::server::start_demo(&ebok.running, demo_rx)
        .await
        .expect("demo data and Jan's live line");
    ebok.settle().await;

    // Jan's contract number, as the database has it.
    let db = &ebok.running.ingest.db;
    let found = ebok::identify::identify(
        ebok.running.ingest.live.as_ref(),
        db,
        "127.0.0.1".parse().unwrap(),
    )
    .await
    .unwrap()
    .expect("127.0.0.1 is Jan's live line");
    let (jan, line_contract) = found.holder.expect("the line has a holder");
    let contracts = ebok::store::subscribers::contracts_of(db, jan.id)
        .await
        .unwrap();
    let contract = contracts
        .iter()
        .find(|c| c.id == line_contract.id)
        .expect("the line's contract is among Jan's")
        .number
        .clone();

    let driver = match Driver::start(&chromedriver).await {
        Ok(d) => d,
        Err(e) => {
            ebok::testkit::skip(TEST, "chromium", &format!("chromedriver: {e}"));
            return;
        }
    };
    let (_, w, h) = DESKTOP;
    let session = driver
        .session(&chromium, w, h)
        .await
        .unwrap_or_else(|e| panic!("new session: {e}\n{}", driver.log()));
    let mut tab = Tab {
        s: session,
        base: format!("http://{}", ebok.running.web_addr),
        shots: screenshot_dir(),
        taken: Vec::new(),
        overflow: Vec::new(),
    };
    let both = [DESKTOP, PHONE];

    // Home: the panel recognises the line before anyone logs in.
    tab.open("/").await;
    tab.expect_text("Łączysz się z adresu 127.0.0.1 — to łącze naszej sieci.")
        .await;
    tab.shoot("home-pl", &both).await;

    tab.open("/przywracanie").await;
    tab.expect_text("Przywrócenie hasła dostępu").await;
    tab.shoot("recover-pl", &both).await;

    // Registration through the menu.
    tab.open("/").await;
    tab.click("nav.menu a[href='/rejestracja']").await;
    tab.expect_text("Utwórz swój identyfikator i hasło.").await;
    assert_eq!(tab.path().await, "/rejestracja");
    tab.shoot("register-pl", &both).await;

    // A wrong contract number is refused with the calm explanation.
    tab.fill("login", LOGIN).await;
    tab.fill("password", PASSWORD).await;
    tab.fill("password2", PASSWORD).await;
    tab.fill("email", EMAIL).await;
    tab.fill("id", JAN_PESEL).await;
    tab.fill("contract", "UM/1999/99999").await;
    tab.click("form[action='/rejestracja'] button[type=submit]")
        .await;
    tab.expect_text("Podane dane nie pasują do łącza, z którego się łączysz.")
        .await;
    assert_eq!(tab.path().await, "/rejestracja");
    tab.shoot("register-refused-pl", &both).await;

    // The right one: straight into the panel.
    tab.fill("login", LOGIN).await;
    tab.fill("password", PASSWORD).await;
    tab.fill("password2", PASSWORD).await;
    tab.fill("email", EMAIL).await;
    tab.fill("id", JAN_PESEL).await;
    tab.fill("contract", &contract).await;
    tab.click("form[action='/rejestracja'] button[type=submit]")
        .await;
    tab.expect_text("Twoje dane").await;
    assert!(
        tab.path().await.starts_with("/panel"),
        "{}",
        tab.path().await
    );
    let text = tab.text().await;
    assert!(text.contains("Jan Kowalski"), "{text}");
    assert!(text.contains(&contract), "{text}");
    assert!(
        text.contains(&format!("łącze umowy {contract}")),
        "connection note names the contract: {text}"
    );
    tab.shoot("panel-pl", &both).await;

    tab.open("/ustawienia").await;
    tab.expect_text("Ustawienia konta").await;
    tab.expect_text(LOGIN).await;
    tab.shoot("settings-pl", &both).await;

    tab.open("/ustawienia/2fa").await;
    tab.expect_text("Włączanie logowania dwuetapowego").await;
    assert!(
        !tab.s.find_all(".qr svg").await.unwrap().is_empty(),
        "QR code"
    );
    tab.shoot("totp-pl", &both).await;

    // The confirmation mail, opened in the browser.
    let mails = mails_to(&dir.path().join("outbox"), EMAIL).await;
    assert_eq!(mails.len(), 1, "one confirmation mail: {mails:?}");
    let link = mails[0]
        .split_whitespace()
        .find(|w| w.contains("/email/"))
        .unwrap_or_else(|| panic!("no /email/ link in {}", mails[0]));
    let path = &link[link.find("/email/").unwrap()..];
    tab.open(path).await;
    tab.expect_text("Potwierdzenie adresu e-mail").await;
    tab.click("main form button[type=submit]").await;
    tab.expect_text(&format!("Adres e-mail {EMAIL} został potwierdzony."))
        .await;

    // Out, and back in through the login page.
    tab.log_out("Wylogowano.").await;
    tab.click("nav.menu a[href='/logowanie']").await;
    tab.expect_text("Wpisz podany przy rejestracji identyfikator")
        .await;
    tab.shoot("login-pl", &both).await;
    tab.fill("login", LOGIN).await;
    tab.fill("password", PASSWORD).await;
    tab.click("form[action='/logowanie'] button[type=submit]")
        .await;
    tab.expect_text("Twoje dane").await;
    tab.expect_text("Jan Kowalski").await;

    // English through the header link, on the same page.
    tab.click("header a.lang").await;
    tab.expect_text("Your data").await;
    assert!(
        tab.path().await.starts_with("/panel"),
        "{}",
        tab.path().await
    );
    let source = tab.s.source().await.unwrap();
    assert!(source.contains("<html lang=\"en\">"), "html lang is en");
    let text = tab.text().await;
    for menu in ["Your data", "Account settings", "Log out"] {
        assert!(text.contains(menu), "English menu has {menu:?}: {text}");
    }
    assert!(
        text.contains(&format!("the line of contract {contract}")),
        "{text}"
    );
    tab.shoot("panel-en", &both).await;
    tab.log_out("You have been logged out.").await;

    let Tab {
        s,
        shots,
        taken,
        overflow,
        ..
    } = tab;
    s.quit().await.unwrap();
    drop(driver);
    ebok.stop().await;

    eprintln!(
        "{TEST}: {} screenshots in {} ({:.1} s)",
        taken.len(),
        shots.display(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        overflow.is_empty(),
        "pages wider than the window (horizontal scrolling): {overflow:?}"
    );
}
