//! The panel in a real headless Chromium: registration from Jan Kowalski's demo line
//! (127.0.0.1), e-mail confirmation through the outbox, logout, login, English, with
//! screenshots of every page in both languages at desktop and phone widths kept as test
//! artifacts (`<page>-<lang>-<width>.png`), and the transfer QR code on Płatności decoded
//! with zbarimg and checked against the payload, account and amount the page shows.
//! The tables of Płatności, e-Faktury, PPPoE and Adres IP are checked at both widths: at
//! 1280 px they are tables; at 390 px every cell of the first row is in sight, and a date
//! and an IP address each stay on one line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::webdriver::{which, Driver, Session};
use ebok::demo::DEMO_LOGIN;

const TEST: &str = "panel_in_chromium_registers_logs_in_and_out";
const JAN_PESEL: &str = "44051401359";
const LOGIN: &str = "jan.przegladarka";
const PASSWORD: &str = "Wiosna nad Wisłą 7";
const EMAIL: &str = "jan.kowalski@example.pl";

const DESKTOP: (&str, u32, u32) = ("1280", 1280, 900);
const PHONE: (&str, u32, u32) = ("390", 390, 844);
const BOTH: [(&str, u32, u32); 2] = [DESKTOP, PHONE];
/// The error page's heading in both languages.
const ERROR_HEADINGS: [&str; 2] = ["Coś poszło nie tak", "Something went wrong"];

/// A page of the tour: screenshot name, path, and its heading (`h1`) in Polish and English.
type Stop<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A table that turns into cards on a phone: the page (screenshot name), the table, and
/// within a row a date and an IP address that must each stay on one line.
struct Cards {
    page: &'static str,
    table: &'static str,
    date: Option<&'static str>,
    ip: Option<&'static str>,
}

const CARDS: [Cards; 4] = [
    Cards {
        page: "payments",
        table: "table.ledger",
        date: Some("td.nowrap"),
        ip: None,
    },
    Cards {
        page: "invoices",
        table: "table.invoices",
        date: Some("td.nowrap"),
        ip: None,
    },
    Cards {
        page: "pppoe",
        table: "table.history",
        date: Some("th.c-title"),
        ip: Some(".ip"),
    },
    Cards {
        page: "ip",
        table: "main table",
        date: None,
        ip: Some(".ip"),
    },
];

/// The script that checks a [`Cards`] table in the page at the current width: a list of
/// what is wrong, empty when nothing is. `arguments` are the table's selector, the date's
/// and the address's (or null) and whether the window is a phone's. There must be a data
/// row; every row is checked, the first as the task asks and the rest because a longer
/// value further down (a session of over a day) can crowd its card where the first fits.
const CARDS_JS: &str = r#"
const [table, dateSel, ipSel, phone] = arguments;
const t = document.querySelector(table);
const rows = t ? [...t.querySelectorAll(':scope > tbody > tr')] : [];
if (!rows.length) return ['no data row in ' + table];
const bad = [];
if (!phone) {
  const d = getComputedStyle(rows[0]).display;
  if (d !== 'table-row') bad.push(`${table}: a row is displayed as ${d}, not as a table row`);
  return bad;
}
const vw = document.documentElement.clientWidth;
// One line: the text's own box (not the label before it) is less than 1.5 lines high.
const oneLine = (el, what) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const h = range.getBoundingClientRect().height;
  const line = parseFloat(getComputedStyle(el).lineHeight);
  if (!(h > 0 && h < 1.5 * line))
    bad.push(`${what} "${el.textContent}" is ${h} px high, its line ${line} px`);
};
rows.forEach((row, n) => {
  const where = `${table} row ${n + 1}`;
  for (const c of row.children) {
    // An empty cell (no charge on a payment) shows nothing.
    if (!c.textContent.trim()) continue;
    const what = `${where} cell "${c.dataset.label || c.textContent.trim()}"`;
    const r = c.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) { bad.push(`${what} is not shown`); continue; }
    if (r.left < -0.5 || r.right > vw + 0.5) bad.push(`${what} spans ${r.left}..${r.right} px, the window 0..${vw}`);
    if (c.scrollWidth > c.clientWidth + 1) bad.push(`${what}: its content is wider than the cell`);
    for (let a = c.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const o = a.getBoundingClientRect();
      if (r.left < o.left - 0.5 || r.right > o.right + 0.5 || r.top < o.top - 0.5 || r.bottom > o.bottom + 0.5)
        bad.push(`${what} is clipped by <${a.tagName.toLowerCase()} class="${a.className}">`);
    }
  }
  for (const [sel, kind] of [[dateSel, 'date'], [ipSel, 'IP address']]) {
    if (!sel) continue;
    const el = row.querySelector(sel);
    if (el) oneLine(el, `${kind} in ${where}`);
    else bad.push(`no ${kind} (${sel}) in ${where}`);
  }
});
return bad;
"#;

/// `<target>/ebok-artifacts/screenshots`, created empty of old PNGs.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ebok-artifacts").join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|x| x == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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
    /// What the [`Cards`] checks found wrong, with the screenshot's name.
    layout: Vec<String>,
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
        let text = std::cell::RefCell::new(None);
        let seen = &text;
        eventually_within(Duration::from_secs(5), || async move {
            *seen.borrow_mut() = self.try_text().await;
            seen.borrow().is_some()
        })
        .await;
        let text = text.into_inner();
        match text {
            Some(text) => text,
            None => panic!("no page text at {}", self.path().await),
        }
    }

    /// Wait (up to 10 s) until the page's visible text contains `needle`.
    async fn expect_text(&self, needle: &str) {
        let text = std::cell::RefCell::new(String::new());
        let seen = &text;
        let shown = eventually_within(Duration::from_secs(10), || async move {
            *seen.borrow_mut() = self.try_text().await.unwrap_or_default();
            seen.borrow().contains(needle)
        })
        .await;
        if !shown {
            panic!(
                "page {} does not show {needle:?}; it shows:\n{}",
                self.path().await,
                text.borrow()
            );
        }
    }

    /// Wait (up to 10 s) until the page's `h1` contains `expected`; the error page fails.
    async fn expect_heading(&self, expected: &str) {
        let heading = std::cell::RefCell::new(String::new());
        let seen = &heading;
        // Stops early at an error page's heading: it will not turn into the expected one.
        let done = eventually_within(Duration::from_secs(10), || async move {
            let h1 = match self.s.find("h1").await {
                Ok(e) => self.s.text(&e).await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let done = h1.contains(expected) || ERROR_HEADINGS.contains(&h1.as_str());
            *seen.borrow_mut() = h1;
            done
        })
        .await;
        let h1 = heading.into_inner();
        if !done || !h1.contains(expected) {
            panic!(
                "page {} has the heading {h1:?}, not {expected:?}:\n{}",
                self.path().await,
                self.try_text().await.unwrap_or_default()
            );
        }
    }

    /// The rendered text of the first element matching `css`.
    async fn text_of(&self, css: &str) -> String {
        let e = self
            .s
            .find(css)
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        self.s.text(&e).await.unwrap()
    }

    /// The `href` of the first link matching `css` (as written in the page).
    async fn href(&self, css: &str) -> String {
        let js = format!("return document.querySelector({css:?}).getAttribute('href');");
        match self.s.script(&js).await.unwrap().as_str() {
            Some(href) => href.to_owned(),
            None => panic!("no link {css} at {}", self.path().await),
        }
    }

    /// Open each page and find on it an element matching its selector.
    async fn expect_each(&self, pages: &[(&str, &str)]) {
        for &(path, css) in pages {
            self.open(path).await;
            assert!(
                !self.s.find_all(css).await.unwrap().is_empty(),
                "{path} has no {css}"
            );
        }
    }

    /// Switch the panel to `lang` ("pl" or "en"), then visit each page of `stops`: check its
    /// heading and save `<name>-<lang>-<width>.png` at both widths.
    async fn tour(&mut self, lang: &str, stops: &[Stop<'_>]) {
        self.open(&format!("/jezyk/{lang}?wroc=/")).await;
        for &(name, path, pl, en) in stops {
            self.open(path).await;
            self.expect_heading(if lang == "en" { en } else { pl })
                .await;
            let cards = CARDS.iter().find(|c| c.page == name);
            self.shoot_checked(&format!("{name}-{lang}"), &BOTH, cards)
                .await;
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
        self.shoot_checked(name, sizes, None).await;
    }

    /// [`Tab::shoot`], checking the page's `cards` table at each size.
    async fn shoot_checked(
        &mut self,
        name: &str,
        sizes: &[(&str, u32, u32)],
        cards: Option<&Cards>,
    ) {
        for &(label, w, h) in sizes {
            self.s.set_window_size(w, h).await.unwrap();
            // Let the layout settle at the new width before measuring and capturing.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let file = format!("{name}-{label}.png");
            if let Some(c) = cards {
                let args = serde_json::json!([c.table, c.date, c.ip, w < 600]);
                let found = self.s.script_with(CARDS_JS, args).await.unwrap();
                let found = found.as_array().cloned().unwrap_or_default();
                self.layout.extend(
                    found
                        .iter()
                        .map(|p| format!("{file}: {}", p.as_str().unwrap_or("?"))),
                );
            }
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

/// The transfer QR code on Płatności (the open page, captured in `png`): its payload printed
/// beneath it is in the ZBP format (`NIP|PL|NRB|grosze|recipient|title|||`) for the account
/// shown and the amount `due`, and the code decoded with zbarimg is that payload.
async fn check_transfer_qr(tab: &Tab, png: &Path, due: ebok::store::money::Money) {
    let payload = tab.text_of("figure.transfer-qr code.payload").await;
    let account: String = tab
        .text_of("p.nrb")
        .await
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let shown = tab.text_of("figure.transfer-qr figcaption").await;
    let f: Vec<&str> = payload.split('|').collect();
    let digits = |s: &str, n: usize| s.len() >= n && s.bytes().all(|b| b.is_ascii_digit());
    assert_eq!(f.len(), 9, "nine fields: {payload:?}");
    assert!(
        f[0].is_empty() || (f[0].len() == 10 && digits(f[0], 10)),
        "NIP: {payload}"
    );
    assert_eq!(f[1], "PL", "{payload}");
    assert!(f[2].len() == 26 && digits(f[2], 26), "NRB: {payload}");
    assert_eq!(f[2], account, "the account shown: {payload}");
    assert!(digits(f[3], 6), "amount in grosze, 6+ digits: {payload}");
    assert_eq!(f[3].parse::<i64>().unwrap(), due.grosze(), "{payload}");
    assert_eq!(f[4], ebok::demo::ISP_NAME, "recipient: {payload}");
    assert!(!f[5].is_empty(), "title: {payload}");
    assert!(f[6..].iter().all(|x| x.is_empty()), "{payload}");
    // WebDriver gives the no-break space in "80,00 zł" as a plain one.
    let amount = due.to_string().replace('\u{a0}', " ");
    assert!(
        shown.replace('\u{a0}', " ").contains(&amount),
        "{amount} in {shown}"
    );

    let Some(zbarimg) = which("zbarimg") else {
        ebok_testkit::skip(
            TEST,
            "zbarimg",
            "zbarimg not on PATH (Debian: zbar-tools); the QR code is not decoded",
        );
        return;
    };
    // Raw bytes (no charset guessing), QR codes only.
    let out = std::process::Command::new(zbarimg)
        .args([
            "--quiet",
            "--raw",
            "-Sbinary",
            "-Sdisable",
            "-Sqrcode.enable",
        ])
        .arg(png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zbarimg finds a QR code in {}: {}",
        png.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded = String::from_utf8(out.stdout).expect("the QR code holds UTF-8");
    assert_eq!(decoded.trim_end_matches('\n'), payload, "decoded QR code");
}

/// KSeF: Jan's latest invoice gets an FA(3) file and a KSeF number; its page shows KOD I
/// with the number under it, and the code in the screenshot (`invoice-ksef-1280.png`),
/// decoded with zbarimg, is the verification link ending in Base64URL(SHA-256) of the file.
async fn check_ksef_code(
    tab: &mut Tab,
    db: &ebok::store::Db,
    jan: &ebok::store::subscribers::Subscriber,
) {
    use ebok::store::{billing, ksef};
    let page = billing::invoices_of(db, jan.id, ebok::store::repo::Page::first(1))
        .await
        .unwrap();
    let latest = page.items.first().expect("Jan has invoices");
    let (inv, lines) = billing::invoice_for(db, jan.id, latest.id)
        .await
        .unwrap()
        .unwrap();
    let (mut rec, xml) = ebok::store::testkit::with_fa3_file(
        inv.to_record(jan.ext_id.clone(), lines),
        ebok::demo::ISP_NIP,
    );
    let number = ksef::with_checksum(&format!(
        "{}-{:04}{:02}{:02}-00000000ABCD",
        ebok::demo::ISP_NIP,
        rec.issued_on.year(),
        u8::from(rec.issued_on.month()),
        rec.issued_on.day()
    ));
    rec.ksef_number = Some(number.clone());
    let mut tx = db.begin().await.unwrap();
    billing::upsert_invoice(&mut tx, &rec).await.unwrap();
    tx.commit().await.unwrap();

    tab.open(&format!("/e-faktury/{}", inv.id)).await;
    assert_eq!(tab.text_of("figure.ksef-code .ksef").await, number);
    tab.shoot("invoice-ksef-pl", &[DESKTOP]).await;
    let Some(zbarimg) = which("zbarimg") else {
        ebok_testkit::skip(TEST, "zbarimg", "zbarimg not on PATH (Debian: zbar-tools)");
        return;
    };
    let png = tab.shots.join("invoice-ksef-pl-1280.png");
    let out = std::process::Command::new(zbarimg)
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zbarimg finds KOD I in {}",
        png.display()
    );
    let decoded = String::from_utf8(out.stdout).unwrap();
    let hash = ksef::base64url(&ksef::sha256(xml.as_bytes()));
    let (d, m, y) = (
        rec.issued_on.day(),
        u8::from(rec.issued_on.month()),
        rec.issued_on.year(),
    );
    assert_eq!(
        decoded.trim_end_matches('\n'),
        format!(
            "https://qr-test.ksef.mf.gov.pl/invoice/{}/{d:02}-{m:02}-{y:04}/{hash}",
            ebok::demo::ISP_NIP
        ),
        "decoded KOD I"
    );
}

/// `15.01.2026`: how the panel writes a day.
fn is_pl_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[2] == b'.'
        && b[5] == b'.'
        && [0, 1, 3, 4, 6, 7, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// Closed sessions of Jan's demo line for the history table on PPPoE (the demo has none):
/// the newest with an IPv4 address and an IPv6 prefix, the other over a day long.
async fn jan_history(db: &ebok::store::Db) {
    let now = time::OffsetDateTime::now_utc();
    let closed = |sid: &str, ip: &str, hours_ago: i64, secs: i64| {
        let started = now - time::Duration::hours(hours_ago);
        let mut c = crate::harness::closed_session(DEMO_LOGIN, sid, ip, started, secs, Some(2));
        c.session.output_octets = 1_700_000_000;
        c.session.input_octets = 52_000_000;
        c
    };
    let mut newest = closed("hist-2", "198.51.100.147", 30, 5 * 3600 + 7 * 60);
    newest.session.ipv6_prefixes = vec!["2001:db8:1000:100::/56".parse().unwrap()];
    let applied = ebok::sessions::Applied {
        stale: false,
        closed: vec![
            closed("hist-1", "198.51.100.23", 80, 26 * 3600 + 65),
            newest,
        ],
        traffic: Vec::new(),
    };
    ebok::store::history::record(db, &applied).await.unwrap();
}

#[tokio::test]
async fn panel_in_chromium_registers_logs_in_and_out() {
    // A long scenario makes a large future: on the heap, not the test thread's stack.
    Box::pin(scenario()).await;
}

async fn scenario() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        ebok_testkit::skip(
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
    let db = &ebok.running.db;
    let found = ebok::identify::identify(
        ebok.running.ingest.live.as_ref(),
        db,
        "127.0.0.1".parse().unwrap(),
    )
    .await
    .unwrap()
    .expect("127.0.0.1 is Jan's live line");
    let (jan, line_contract) = found.holder.expect("the line has a holder");
    jan_history(db).await;
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
            ebok_testkit::skip(TEST, "chromium", &format!("chromedriver: {e}"));
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
        layout: Vec::new(),
    };
    // Home: the panel recognises the line before anyone logs in.
    tab.open("/").await;
    tab.expect_text("Łączysz się z adresu 127.0.0.1 — to łącze naszej sieci.")
        .await;
    // The demo's outage on its NAS (127.0.0.1): a banner the visitor on that line sees,
    // visible on the page and in its screenshot.
    tab.expect_text("Wykryliśmy awarię w Twojej okolicy").await;
    let banner = tab.text_of("main .outage.sev-outage .outage-lead").await;
    assert!(banner.contains("Awaria łącza światłowodowego"), "{banner}");
    let shown = tab
        .s
        .script(
            "const b = document.querySelector('main .outage'); const r = b.getBoundingClientRect(); \
             return r.width > 0 && r.height > 0 && getComputedStyle(b).visibility === 'visible' \
             && r.top < window.innerHeight;",
        )
        .await
        .unwrap();
    assert_eq!(shown, true, "the outage banner is visible above the fold");
    tab.shoot("outage-banner", &[DESKTOP, PHONE]).await;
    let png = std::fs::metadata(tab.shots.join("outage-banner-1280.png")).unwrap();
    assert!(png.len() > 10_000, "the banner screenshot has content");

    // Every public page in both languages, before logging in (logged in, some of them lead
    // to the panel instead).
    tab.open("/aktualnosci").await;
    let news_item = tab.href("main a[href^='/aktualnosci/']").await;
    let news_title = tab.text_of(&format!("main a[href='{news_item}']")).await;
    let news_date = tab.text_of("main .office-date time").await;
    assert!(
        is_pl_date(&news_date),
        "news dated {news_date:?}, not DD.MM.RRRR"
    );
    assert!(
        tab.s.find_all("main [lang]").await.unwrap().is_empty(),
        "no lang attributes inside a Polish page"
    );
    let public: [Stop; 10] = [
        (
            "home",
            "/",
            "Elektroniczne Biuro Obsługi Klienta",
            "Customer self-service",
        ),
        (
            "login",
            "/logowanie",
            "Logowanie do panelu",
            "Log in to the panel",
        ),
        ("register", "/rejestracja", "Rejestracja", "Registration"),
        (
            "recover",
            "/przywracanie",
            "Przywracanie dostępu",
            "Recover access",
        ),
        ("news", "/aktualnosci", "Aktualności", "News"),
        ("news-item", &news_item, &news_title, &news_title),
        (
            "orders",
            "/zamawianie",
            "Zamawianie usług",
            "Order services",
        ),
        ("contact-public", "/kontakt", "Kontakt", "Contact"),
        ("documents", "/dokumenty", "Dokumenty", "Documents"),
        (
            "faq",
            "/faq",
            "FAQ — najczęściej zadawane pytania",
            "FAQ — frequently asked questions",
        ),
    ];
    tab.tour("pl", &public).await;
    tab.tour("en", &public).await;
    // On English pages the texts kept only in Polish say so.
    tab.expect_each(&[
        ("/aktualnosci", "article.office-news[lang='pl']"),
        ("/faq", "section.office-faq[lang='pl']"),
        ("/zamawianie", "main tbody th[lang='pl']"),
    ])
    .await;
    tab.open("/jezyk/pl?wroc=/").await;
    tab.expect_text("Łączysz się z adresu 127.0.0.1").await;

    // Registration through the menu.
    tab.click("nav.menu a[href='/rejestracja']").await;
    tab.expect_text("Utwórz swój identyfikator i hasło.").await;
    assert_eq!(tab.path().await, "/rejestracja");

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
    tab.shoot("register-refused-pl", &BOTH).await;

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

    tab.open("/ustawienia").await;
    tab.expect_text("Ustawienia konta").await;
    tab.expect_text(LOGIN).await;

    tab.open("/ustawienia/2fa").await;
    tab.expect_text("Włączanie logowania dwuetapowego").await;
    assert!(
        !tab.s.find_all(".qr svg").await.unwrap().is_empty(),
        "QR code"
    );

    // The confirmation mail, opened in the browser.
    let mails = mails_to(&dir.path().join("outbox"), EMAIL, Duration::from_secs(10)).await;
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
    tab.fill("login", LOGIN).await;
    tab.fill("password", PASSWORD).await;
    tab.click("form[action='/logowanie'] button[type=submit]")
        .await;
    tab.expect_text("Twoje dane").await;
    tab.expect_text("Jan Kowalski").await;
    // The dashboard: what is due, the live line (this browser's 127.0.0.1), the menu
    // marking the page.
    for part in [
        "Do zapłaty",
        "Twoje połączenie",
        "Połączenie trwa od",
        "127.0.0.1",
    ] {
        tab.expect_text(part).await;
    }
    assert_eq!(
        tab.text_of("nav.menu a[aria-current='page']").await,
        "Twoje dane"
    );

    // A message to the office through the contact form, for a ticket thread to show.
    tab.open("/kontakt").await;
    tab.fill("subject", "Wolny internet wieczorem").await;
    tab.fill(
        "message",
        "Od tygodnia po 20:00 strony ładują się bardzo wolno.",
    )
    .await;
    tab.click("form[action='/kontakt'] button[type=submit]")
        .await;
    tab.expect_heading("Zgłoszenie nr").await;
    tab.expect_text("Wolny internet wieczorem").await;
    let ticket = tab.path().await;
    let ticket = ticket.split('?').next().unwrap().to_owned();
    assert!(ticket.starts_with("/kontakt/"), "{ticket}");

    // The restart confirmation is for one live session, as the form on PPPoE asks for it.
    tab.open("/pppoe").await;
    let restart = tab
        .s
        .script(
            "const f = document.querySelector(\"form[action='/pppoe/restart']\"); \
             return f && '/pppoe/restart?' + new URLSearchParams(new FormData(f));",
        )
        .await
        .unwrap();
    let restart = restart
        .as_str()
        .expect("a live session to restart")
        .to_owned();
    tab.open("/e-faktury").await;
    let invoice = tab.href("table.invoices a[href^='/e-faktury/']").await;

    let panel: [Stop; 12] = [
        ("panel", "/panel", "Twoje dane", "Your data"),
        ("ip", "/adres-ip", "Adres IP", "IP address"),
        ("pppoe", "/pppoe", "PPPoE", "PPPoE"),
        (
            "pppoe-restart",
            &restart,
            "Restart połączenia",
            "Restart the connection",
        ),
        ("payments", "/platnosci", "Płatności", "Payments"),
        ("invoices", "/e-faktury", "e-Faktury", "e-Invoices"),
        ("invoice", &invoice, "Faktura VAT nr", "VAT invoice no."),
        ("stats", "/statystyki", "Statystyki", "Statistics"),
        (
            "settings",
            "/ustawienia",
            "Ustawienia konta",
            "Account settings",
        ),
        (
            "totp",
            "/ustawienia/2fa",
            "Włączanie logowania dwuetapowego",
            "Turning on two-step login",
        ),
        ("contact", "/kontakt", "Kontakt", "Contact"),
        ("ticket", &ticket, "Zgłoszenie nr", "Message no."),
    ];
    tab.tour("pl", &panel).await;

    // The transfer QR code for Jan's amount due.
    let due = -ebok::store::billing::balance(db, jan.id).await.unwrap();
    assert!(due.grosze() > 0, "demo Jan has an amount due: {due}");
    tab.open("/platnosci").await;
    check_transfer_qr(&tab, &tab.shots.join("payments-pl-1280.png"), due).await;
    // Days as DD.MM.RRRR, and what Jan owes with a minus sign, never a hyphen.
    let day = tab.text_of("table.ledger tbody td.nowrap").await;
    assert!(is_pl_date(&day), "ledger dated {day:?}, not DD.MM.RRRR");
    let ledger = tab.text_of("table.ledger tbody").await;
    assert!(
        ledger.contains('\u{2212}'),
        "a negative balance in {ledger}"
    );
    assert!(
        !ledger
            .split_whitespace()
            .any(|w| w.len() > 1 && w.starts_with('-') && w.as_bytes()[1].is_ascii_digit()),
        "a hyphen for a minus in {ledger}"
    );

    check_ksef_code(&mut tab, db, &jan).await;

    // English through the header link, on the same page.
    tab.open("/panel").await;
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
    tab.tour("en", &panel).await;
    tab.expect_each(&[
        ("/panel", "main dd[lang='pl']"),
        (&invoice, "table.inv-lines tbody th[lang='pl']"),
    ])
    .await;
    tab.log_out("You have been logged out.").await;

    // A deep link (a mail's link to the ticket) opened logged out: the login, then the
    // ticket itself.
    tab.open(&ticket).await;
    assert!(
        tab.path().await.starts_with("/logowanie?wroc="),
        "{}",
        tab.path().await
    );
    tab.fill("login", LOGIN).await;
    tab.fill("password", PASSWORD).await;
    tab.click("form[action='/logowanie'] button[type=submit]")
        .await;
    tab.expect_text("Wolny internet wieczorem").await;
    assert_eq!(tab.path().await, ticket);
    tab.log_out("You have been logged out.").await;

    let Tab {
        s,
        shots,
        taken,
        overflow,
        layout,
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
    assert!(
        layout.is_empty(),
        "tables not readable as cards on a phone (or not tables on a desktop):\n{}",
        layout.join("\n")
    );
}
