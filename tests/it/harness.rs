//! Start ebok in-process with a temporary state directory and talk to it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ebok::config::{Config, StoreKind};
use ebok::server::{Listeners, Running};
use ebok::sessions::LiveSession;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

pub const SECRET: &str = "testing123";

/// Which stores a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    Redis { url: String, prefix: String },
}

impl Backend {
    /// The embedded store, and Redis when it is reachable (or required).
    pub async fn all(test: &str) -> Vec<Backend> {
        let mut v = vec![Backend::Embedded];
        if let Some(url) = ebok_testkit::redis(test).await {
            v.push(Backend::Redis {
                url,
                prefix: ebok_testkit::redis_prefix(),
            });
        }
        v
    }

    pub async fn cleanup(&self) {
        if let Backend::Redis { url, prefix } = self {
            ebok_testkit::redis_cleanup(url, prefix).await;
        }
    }
}

/// A configuration for tests: loopback listeners on port 0, files in `dir`.
pub fn config(dir: &Path, backend: &Backend, database_url: Option<&str>) -> Config {
    let mut c = Config::default();
    c.radius.listen = vec!["127.0.0.1:0".parse().unwrap()];
    c.metrics.listen = "127.0.0.1:0".parse().unwrap();
    c.web.listen = "127.0.0.1:0".parse().unwrap();
    c.state.dir = dir.to_path_buf();
    c.database.url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("ebok.sqlite").display()));
    c.radius.recv_buffer = 1 << 20;
    // Test events carry fixed past timestamps: keep their history whatever today's date.
    c.retention.history_days = 365 * 100;
    // Test lines are loopback addresses (the browser and radclient run here).
    c.sessions.loopback_lines = true;
    if let Backend::Redis { url, prefix } = backend {
        c.sessions.store = StoreKind::Redis;
        c.sessions.redis_url = url.clone();
        c.sessions.redis_prefix = prefix.clone();
    }
    c
}

/// A running in-process ebok.
pub struct Ebok {
    pub running: Running,
    pub radius: SocketAddr,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Ebok {
    pub async fn start(config: Config) -> Ebok {
        let mut radius = Vec::new();
        for addr in &config.radius.listen {
            radius.push(ebok::server::bind_udp(*addr, config.radius.recv_buffer).unwrap());
        }
        let metrics = TcpListener::bind(config.metrics.listen).await.unwrap();
        let web = TcpListener::bind(config.web.listen).await.unwrap();
        let (tx, rx) = watch::channel(false);
        let (running, done) = ebok::server::start(
            config,
            Listeners {
                radius,
                metrics,
                web,
            },
            rx,
        )
        .await
        .expect("ebok starts");
        let radius = running.radius_addrs[0];
        Ebok {
            running,
            radius,
            shutdown: tx,
            done,
        }
    }

    /// Graceful stop: stop reading, drain in-flight requests.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(Duration::from_secs(20), self.done)
            .await
            .expect("shutdown in time")
            .unwrap();
    }

    /// Wait (bounded) until every answered event is applied to the stores.
    pub async fn settle(&self) {
        self.running.ingest.settled(Duration::from_secs(10)).await;
    }

    pub async fn lookup(&self, ip: &str) -> Option<LiveSession> {
        self.settle().await;
        self.running
            .ingest
            .live
            .lookup(ip.parse::<IpAddr>().unwrap())
            .await
            .unwrap()
    }

    /// The text of /metrics.
    pub async fn metrics(&self) -> String {
        http_get(self.running.metrics_addr, "/metrics").await
    }

    /// The value of one metric line (exact name with labels), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }
}

pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Minimal HTTP/1.0 GET, enough for /metrics.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    http_get_with(addr, path, "").await.1
}

/// HTTP/1.0 GET with extra header lines (each ending in CRLF): status and body.
pub async fn http_get_with(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
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

/// Send attributes with `radclient` (acct or status); true when a valid reply came back.
pub async fn radclient(to: SocketAddr, command: &str, secret: &str, attrs: &str) -> bool {
    let mut child = tokio::process::Command::new("radclient")
        .args(["-q", "-r", "1", "-t", "1"])
        .arg(to.to_string())
        .arg(command)
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient is installed (Debian package freeradius-utils)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(attrs.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    out.status.success()
}

/// `radclient acct` with the test secret, asserting a reply; then wait until the event is
/// applied to the stores (answers come once it is in the journal).
pub async fn acct(ebok: &Ebok, attrs: &str) {
    acct_unsettled(ebok, attrs).await;
    ebok.settle().await;
}

/// `radclient acct`, asserting a reply, without waiting for the stores.
pub async fn acct_unsettled(ebok: &Ebok, attrs: &str) {
    assert!(
        radclient(ebok.radius, "acct", SECRET, attrs).await,
        "no Accounting-Response for: {attrs}"
    );
}

/// Accounting attributes for one event, as radclient reads them.
pub fn attrs(
    status: &str,
    session: &str,
    user: &str,
    ip: Option<&str>,
    ts: i64,
    extra: &str,
) -> String {
    let mut a = format!(
        "Acct-Status-Type = {status}\nAcct-Session-Id = \"{session}\"\nUser-Name = \"{user}\"\n\
         NAS-IP-Address = 192.0.2.1\nEvent-Timestamp = {ts}\n\
         Calling-Station-Id = \"02:00:00:00:00:01\"\n"
    );
    if let Some(ip) = ip {
        a.push_str(&format!("Framed-IP-Address = {ip}\n"));
    }
    a.push_str(extra);
    a
}

/// A raw UDP client for what radclient cannot do (exact retransmissions, broken packets).
pub struct RawClient {
    pub socket: UdpSocket,
    pub to: SocketAddr,
}

impl RawClient {
    pub async fn new(to: SocketAddr) -> RawClient {
        RawClient {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            to,
        }
    }

    /// Send bytes; the reply if one comes within `wait`.
    pub async fn exchange(&self, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
        self.socket.send_to(bytes, self.to).await.unwrap();
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(wait, self.socket.recv(&mut buf)).await {
            Ok(Ok(n)) => Some(buf[..n].to_vec()),
            _ => None,
        }
    }
}

pub use ebok_testkit::{eventually, eventually_within};

pub use ebok_store::testkit::{closed_session, sqlite_in};

/// A loopback UDP port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback TCP port free at the moment of asking.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A signed Start for session `k-{i}` of NAS 192.0.2.1, line 10.5.x.x, at `ts`.
pub fn start_event(i: u32, ts: u32) -> Vec<u8> {
    let ip = std::net::Ipv4Addr::from(0x0A05_0000 + i);
    ebok::radius::packet::build_accounting_request(
        (i % 256) as u8,
        SECRET.as_bytes(),
        &[
            (40, 1u32.to_be_bytes().to_vec()),
            (44, format!("k-{i}").into_bytes()),
            (1, format!("user{i}").into_bytes()),
            (4, vec![192, 0, 2, 1]),
            (8, ip.octets().to_vec()),
            (55, ts.to_be_bytes().to_vec()),
        ],
        false,
    )
}

/// The `.eml` texts in `outbox` addressed to `to` (waits up to `within` for the first).
pub async fn mails_to(outbox: &Path, to: &str, within: Duration) -> Vec<String> {
    let found = std::cell::RefCell::new(Vec::new());
    let seen = &found;
    eventually_within(within, || async move {
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
        *seen.borrow_mut() = found;
        !seen.borrow().is_empty()
    })
    .await;
    found.into_inner()
}
