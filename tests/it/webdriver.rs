//! A small W3C WebDriver client for the browser test: chromedriver as a child process on a
//! free loopback port, JSON over plain HTTP/1.1 (one connection per command), headless
//! Chromium with a throw-away profile. Only the commands the test uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A failed WebDriver command (or transport failure: status 0).
#[derive(Debug)]
pub struct WdError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.message)
    }
}

fn transport(e: impl std::fmt::Display) -> WdError {
    WdError {
        status: 0,
        error: "transport".into(),
        message: e.to_string(),
    }
}

/// Where `name` is on `PATH`, if it is.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A running chromedriver. Dropping it kills its whole process group, so that a panicking
/// test does not leave chromedriver or Chromium behind.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    /// Chromium's profile directory; removed after the processes are gone.
    profile: Option<tempfile::TempDir>,
}

impl Driver {
    /// Start `chromedriver` on a free port and wait until it reports ready.
    pub async fn start(chromedriver: &Path) -> Result<Driver, WdError> {
        use std::os::unix::process::CommandExt;
        // A free port: bind, note it, release. chromedriver takes it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(transport)?
            .port();
        let profile = tempfile::tempdir().map_err(transport)?;
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Chromium inherits it, Drop kills the group.
            .process_group(0)
            .spawn()
            .map_err(transport)?;
        let mut driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            profile: Some(profile),
        };
        let (exited, ready) = (std::cell::RefCell::new(None), std::cell::Cell::new(false));
        let (child, addr) = (std::cell::RefCell::new(&mut driver.child), driver.addr);
        let (exited_ref, ready_ref, child_ref) = (&exited, &ready, &child);
        crate::harness::eventually_within(Duration::from_secs(15), || async move {
            if let Ok(Some(status)) = child_ref.borrow_mut().try_wait() {
                *exited_ref.borrow_mut() = Some(status);
                return true;
            }
            let status = request(addr, "GET", "/status", None).await;
            ready_ref.set(status.is_ok_and(|v| v["ready"] == true));
            ready_ref.get()
        })
        .await;
        if let Some(status) = exited.into_inner() {
            return Err(transport(format!("chromedriver exited: {status}")));
        }
        if !ready.get() {
            return Err(transport("chromedriver not ready within 15 s"));
        }
        Ok(driver)
    }

    /// chromedriver's own log (for failure messages).
    pub fn log(&self) -> String {
        self.profile
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p.path().join("chromedriver.log")).ok())
            .unwrap_or_default()
    }

    /// A new headless Chromium session with a window of `width`×`height`.
    pub async fn session(
        &self,
        chromium: &Path,
        width: u32,
        height: u32,
    ) -> Result<Session, WdError> {
        let profile = self
            .profile
            .as_ref()
            .expect("profile")
            .path()
            .join("chromium");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        // Polish, like the panel's subscribers (it follows Accept-Language).
                        "prefs": { "intl.accept_languages": "pl-PL,pl" },
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--no-proxy-server",
                            "--lang=pl-PL",
                            format!("--user-data-dir={}", profile.display()),
                            format!("--window-size={width},{height}"),
                        ],
                    },
                },
            },
        });
        let v = request(self.addr, "POST", "/session", Some(&caps)).await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| transport(format!("no sessionId in {v}")))?
            .to_owned();
        Ok(Session {
            addr: self.addr,
            id,
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The negative id names the process group that chromedriver leads.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.profile.take();
    }
}

/// One browser session.
pub struct Session {
    addr: SocketAddr,
    id: String,
}

/// An element reference from the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session {
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let path = format!("/session/{}{path}", self.id);
        request(self.addr, method, &path, body.as_ref()).await
    }

    pub async fn goto(&self, url: &str) -> Result<(), WdError> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    pub async fn current_url(&self) -> Result<String, WdError> {
        let v = self.cmd("GET", "/url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    pub async fn find(&self, css: &str) -> Result<Element, WdError> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        element_of(&v)
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, WdError> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        v.as_array()
            .map(|a| a.iter().map(element_of).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    pub async fn click(&self, e: &Element) -> Result<(), WdError> {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})))
            .await
            .map(drop)
    }

    pub async fn clear(&self, e: &Element) -> Result<(), WdError> {
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(json!({})))
            .await
            .map(drop)
    }

    pub async fn send_keys(&self, e: &Element, text: &str) -> Result<(), WdError> {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    /// The rendered text of an element (what a reader sees).
    pub async fn text(&self, e: &Element) -> Result<String, WdError> {
        let v = self
            .cmd("GET", &format!("/element/{}/text", e.0), None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    pub async fn source(&self) -> Result<String, WdError> {
        let v = self.cmd("GET", "/source", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Run a script in the page; its return value.
    pub async fn script(&self, js: &str) -> Result<Value, WdError> {
        self.script_with(js, json!([])).await
    }

    /// Run a script in the page with `args` (a JSON array, the script's `arguments`); its
    /// return value.
    pub async fn script_with(&self, js: &str, args: Value) -> Result<Value, WdError> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": js, "args": args })),
        )
        .await
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<(), WdError> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, WdError> {
        let v = self.cmd("GET", "/screenshot", None).await?;
        base64_decode(v.as_str().unwrap_or_default())
            .ok_or_else(|| transport("screenshot is not base64"))
    }

    /// A PNG of the whole page at the current width, through Chromium's DevTools command
    /// (W3C screenshots stop at the viewport); the viewport when that command is missing.
    pub async fn full_page_screenshot(&self) -> Result<Vec<u8>, WdError> {
        let size = self
            .script(
                "const e = document.documentElement; \
                 return [Math.max(e.scrollWidth, window.innerWidth), e.scrollHeight];",
            )
            .await?;
        let (w, h) = (
            size[0].as_f64().unwrap_or(0.0),
            size[1].as_f64().unwrap_or(0.0),
        );
        let params = json!({
            "cmd": "Page.captureScreenshot",
            "params": {
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 },
            },
        });
        match self.cmd("POST", "/goog/cdp/execute", Some(params)).await {
            Ok(v) => base64_decode(v["data"].as_str().unwrap_or_default())
                .ok_or_else(|| transport("screenshot is not base64")),
            Err(_) => self.screenshot().await,
        }
    }

    /// End the session (closes Chromium).
    pub async fn quit(self) -> Result<(), WdError> {
        request(self.addr, "DELETE", &format!("/session/{}", self.id), None)
            .await
            .map(drop)
    }
}

fn element_of(v: &Value) -> Result<Element, WdError> {
    v[ELEMENT_KEY]
        .as_str()
        .map(|s| Element(s.to_owned()))
        .ok_or_else(|| transport(format!("not an element: {v}")))
}

/// One WebDriver command: `value` of the answer, or the error it reports.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, WdError> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(head.as_bytes()).await?;
        s.write_all(body.as_bytes()).await?;
        // chromedriver announces `Connection: close` but keeps the socket open: read by
        // Content-Length (or to the last chunk), not to the end of the stream.
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while !answer_complete(&raw) {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(raw)
    };
    // Page loads after a click or navigation can take a while; nothing takes a minute.
    let raw = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| transport(format!("{method} {path}: no answer in 60 s")))?
        .map_err(transport)?;
    let (status, body) = parse_response(&raw).ok_or_else(|| transport("bad HTTP answer"))?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| transport(format!("{method} {path}: {e}")))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if status == 200 {
        // `POST /session` answers {"value": {"sessionId", "capabilities"}}.
        Ok(value)
    } else {
        Err(WdError {
            status,
            error: value["error"].as_str().unwrap_or("unknown").to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// The value of header `name` in an answer's head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    })
}

/// Whether `raw` holds a whole answer: the head and all the body it announces.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= len;
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return body.ends_with(b"0\r\n\r\n") && parse_response(raw).is_some();
    }
    false
}

/// Status code and body of one whole HTTP/1.1 answer.
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked =
        header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        let len = header(head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(body.len());
        return Some((status, body.get(..len)?.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Standard base64 (with or without padding) to bytes; `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = match clean.iter().position(|&c| c == b'=') {
        Some(p) if clean[p..].iter().all(|&c| c == b'=') && clean.len() - p <= 2 => &clean[..p],
        Some(_) => return None,
        None => &clean[..],
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[test]
fn base64_round_trips_known_values() {
    assert_eq!(base64_decode("").unwrap(), b"");
    assert_eq!(base64_decode("Zg==").unwrap(), b"f");
    assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
    assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
    assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
    assert_eq!(base64_decode("Zm9vYmFy\n").unwrap(), b"foobar");
    assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert!(base64_decode("Zm9v!").is_none());
    assert!(base64_decode("Z=m9").is_none());
}

#[test]
fn chunked_answers_are_joined() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
    assert!(answer_complete(raw));
    assert!(!answer_complete(&raw[..raw.len() - 2]));
    let (status, body) = parse_response(raw).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, b"{\"a\":1}");
}

#[test]
fn content_length_answers_end_at_their_length() {
    let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length:9\r\nConnection:close\r\n\r\n{\"a\":[1]}";
    assert!(answer_complete(raw));
    assert!(!answer_complete(&raw[..raw.len() - 1]));
    assert_eq!(parse_response(raw).unwrap(), (404, b"{\"a\":[1]}".to_vec()));
}
