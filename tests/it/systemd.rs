//! The real `ebok` binary under a service manager's eyes: READY / RELOADING / STOPPING /
//! WATCHDOG on a NOTIFY_SOCKET the test binds, SIGHUP reloads of the NAS table while a load
//! of signed Accounting-Requests runs (nothing lost, nothing answered twice), a bad
//! configuration at SIGHUP; and the packaged files (`systemd/`, `[package.metadata.deb]`).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebok::radius::packet;
use ebok::sessions::LiveSessions;
use tokio::net::{UdpSocket, UnixDatagram};
use tokio::sync::mpsc;

const SECRET_A: &str = "secret-of-a";
const SECRET_C: &str = "secret-of-c";
/// How long a refused request is waited for before it counts as unanswered.
const REFUSED_WAIT: Duration = Duration::from_millis(400);

/// An Accounting-Request Start for session `session` of NAS-IP-Address `nas`.
fn start(id: u8, secret: &str, nas: Ipv4Addr, session: &str, ip: Ipv4Addr) -> Vec<u8> {
    packet::build_accounting_request(
        id,
        secret.as_bytes(),
        &[
            (40, 1u32.to_be_bytes().to_vec()),
            (44, session.as_bytes().to_vec()),
            (1, format!("user-{session}").into_bytes()),
            (4, nas.octets().to_vec()),
            (8, ip.octets().to_vec()),
            (55, 1_764_000_000u32.to_be_bytes().to_vec()),
        ],
        false,
    )
}

/// One NAS entry of the test configuration.
struct Nas<'a> {
    name: &'a str,
    prefix: &'a str,
    /// `secret = "…"` or `secret_file = "…"`.
    secret: String,
}

fn write_config(path: &Path, state: &Path, nas: &[Nas]) {
    let mut text = format!(
        "[radius]\nlisten = [\"127.0.0.1:0\"]\nrecv_buffer = 1048576\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [state]\ndir = \"{s}\"\n[database]\nurl = \"sqlite://{s}/ebok.sqlite\"\n\
         [retention]\nhistory_days = 36500\n",
        s = state.display()
    );
    for n in nas {
        text.push_str(&format!(
            "[[nas]]\nname = \"{}\"\nprefixes = [\"{}\"]\n{}\n",
            n.name, n.prefix, n.secret
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// The binary with a NOTIFY_SOCKET, its notifications and its log.
struct Service {
    child: Child,
    notes: mpsc::UnboundedReceiver<String>,
    watchdogs: Arc<AtomicUsize>,
    log: Arc<Mutex<String>>,
}

const STATES: [&str; 3] = ["READY=1", "RELOADING=1", "STOPPING=1"];

impl Service {
    async fn spawn(config: &Path, notify: PathBuf, watchdog_usec: u64) -> Service {
        let socket = UnixDatagram::bind(&notify).unwrap();
        let (tx, notes) = mpsc::unbounded_channel();
        let watchdogs = Arc::new(AtomicUsize::new(0));
        let seen = watchdogs.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf).await {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.lines().any(|l| l == "WATCHDOG=1") {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ebok"))
            .args(["--config", config.to_str().unwrap(), "run"])
            .env("NOTIFY_SOCKET", &notify)
            .env("WATCHDOG_USEC", watchdog_usec.to_string())
            .env_remove("WATCHDOG_PID")
            .env("EBOK_LOG__LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Service {
            child,
            notes,
            watchdogs,
            log,
        }
    }

    /// The next notification that changes the service state; it must be `state`. Status
    /// updates and keep-alives in between are skipped.
    async fn expect(&mut self, state: &str) -> String {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.notes.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {state} within 30 s; log:\n{}", self.log.lock().unwrap())
                })
                .expect("notify socket reader ended");
            if let Some(other) = STATES.iter().find(|s| msg.lines().any(|l| l == **s)) {
                assert_eq!(*other, state, "expected {state}, got: {msg:?}");
                return msg;
            }
        }
    }

    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The value of STATUS= in a notification.
fn status(msg: &str) -> &str {
    msg.lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or("")
}

/// The RADIUS address from the READY status line ("serving RADIUS 127.0.0.1:PORT, …"):
/// the configuration asks for port 0, so only ebok knows it.
fn radius_addr(status: &str) -> SocketAddr {
    status
        .strip_prefix("serving RADIUS ")
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no RADIUS address in status {status:?}"))
}

/// One request from source address `from`; whether a correct Accounting-Response came.
async fn probe(from: Ipv4Addr, to: SocketAddr, secret: &str, nas: Ipv4Addr, session: &str) -> bool {
    let sock = UdpSocket::bind((from, 0)).await.unwrap();
    let request = start(7, secret, nas, session, Ipv4Addr::new(10, 99, 0, 1));
    sock.send_to(&request, to).await.unwrap();
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(REFUSED_WAIT, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => {
            assert_eq!(
                buf[..n],
                packet::accounting_response(&request, secret.as_bytes(), false)[..],
                "a correctly signed Accounting-Response"
            );
            true
        }
        _ => false,
    }
}

/// Signed Starts from 127.0.0.1 (NAS "a") with `window` outstanding until `stop`, each sent
/// once; counts the answers per request.
struct Load {
    answered: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<LoadResult>,
}

struct LoadResult {
    sent: usize,
    answers: Vec<u32>,
    unexpected: usize,
}

fn load_nas() -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 1)
}

fn load_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0A14_0000 + i as u32)
}

impl Load {
    fn start(to: SocketAddr, window: usize) -> Load {
        let answered = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (answered.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut free: Vec<u8> = (0..=255).collect();
            // Identifier → (request number, request bytes) while outstanding.
            let mut outstanding: HashMap<u8, (usize, Vec<u8>)> = HashMap::new();
            let mut answers = Vec::new();
            let mut unexpected = 0;
            let mut buf = [0u8; 4096];
            loop {
                let sending = !halt.load(Ordering::SeqCst);
                if sending && outstanding.len() < window {
                    let id = free.pop().expect("window below 256");
                    let i = answers.len();
                    let request = start(id, SECRET_A, load_nas(), &format!("l-{i}"), load_ip(i));
                    sock.send_to(&request, to).await.unwrap();
                    outstanding.insert(id, (i, request));
                    answers.push(0u32);
                    continue;
                }
                if !sending && outstanding.is_empty() {
                    break;
                }
                let n = match tokio::time::timeout(Duration::from_secs(15), sock.recv(&mut buf))
                    .await
                {
                    Ok(r) => r.unwrap(),
                    Err(_) => break, // the rest are lost; the assertions say so
                };
                match outstanding.remove(&buf[1]) {
                    Some((i, request))
                        if buf[..n]
                            == packet::accounting_response(
                                &request,
                                SECRET_A.as_bytes(),
                                false,
                            )[..] =>
                    {
                        answers[i] += 1;
                        free.insert(0, buf[1]);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(entry) => {
                        outstanding.insert(buf[1], entry);
                        unexpected += 1;
                    }
                    None => unexpected += 1,
                }
            }
            // Anything still arriving would be a second answer.
            while let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await
            {
                unexpected += 1;
            }
            LoadResult {
                sent: answers.len(),
                answers,
                unexpected,
            }
        });
        Load {
            answered,
            stop,
            task,
        }
    }

    /// Wait until `more` further requests were answered, so a reload falls inside the load.
    async fn progress(&self, more: usize) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        let answered = &self.answered;
        let moved = crate::harness::eventually_within(Duration::from_secs(30), || async move {
            answered.load(Ordering::SeqCst) >= target
        })
        .await;
        assert!(moved, "the load stalled below {target} answers");
    }

    async fn finish(self) -> LoadResult {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_under_load_without_losing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ebok.toml");
    let secret_b = dir.path().join("b.secret");
    // Loopback sources stand for the NAS devices: a (the load), b (added), c (removed).
    let (b, c) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let (nas_b, nas_c) = (Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(192, 0, 2, 3));
    let nas_a = || Nas {
        name: "a",
        prefix: "127.0.0.1/32",
        secret: format!("secret = \"{SECRET_A}\""),
    };
    let nas_b_entry = |prefix| Nas {
        name: "b",
        prefix,
        secret: format!("secret_file = \"{}\"", secret_b.display()),
    };
    let nas_c_entry = || Nas {
        name: "c",
        prefix: "127.0.0.3/32",
        secret: format!("secret = \"{SECRET_C}\""),
    };
    write_config(&config, &state, &[nas_a(), nas_c_entry()]);

    // Keep-alives every 150 ms.
    let mut svc = Service::spawn(&config, dir.path().join("notify.sock"), 300_000).await;
    let ready = svc.expect("READY=1").await;
    let to = radius_addr(status(&ready));
    assert!(
        status(&ready).contains("live store ok, database ok"),
        "READY only once the stores answered: {ready:?}"
    );
    assert!(
        probe(c, to, SECRET_C, nas_c, "c-1").await,
        "NAS c accepted at start"
    );
    assert!(
        !probe(b, to, "secret-b-1", nas_b, "b-0").await,
        "NAS b unknown at start"
    );

    let load = Load::start(to, 32);
    load.progress(200).await;

    // 1: a new NAS with its secret in a file.
    std::fs::write(&secret_b, "secret-b-1\n").unwrap();
    write_config(
        &config,
        &state,
        &[nas_a(), nas_b_entry("127.0.0.2/32"), nas_c_entry()],
    );
    svc.signal("HUP");
    let reloading = svc.expect("RELOADING=1").await;
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let after = svc.expect("READY=1").await;
    assert!(
        status(&after).contains("NAS table reloaded (3 prefixes)"),
        "{after:?}"
    );
    assert!(
        probe(b, to, "secret-b-1", nas_b, "b-1").await,
        "new NAS b accepted after reload"
    );
    load.progress(200).await;

    // 2: NAS b's secret file changes.
    std::fs::write(&secret_b, "secret-b-2\n").unwrap();
    svc.signal("HUP");
    svc.expect("RELOADING=1").await;
    svc.expect("READY=1").await;
    assert!(
        !probe(b, to, "secret-b-1", nas_b, "b-2").await,
        "old secret of b refused"
    );
    assert!(
        probe(b, to, "secret-b-2", nas_b, "b-3").await,
        "new secret of b accepted"
    );
    load.progress(200).await;

    // 3: NAS c removed.
    write_config(&config, &state, &[nas_a(), nas_b_entry("127.0.0.2/32")]);
    svc.signal("HUP");
    svc.expect("RELOADING=1").await;
    svc.expect("READY=1").await;
    assert!(
        !probe(c, to, SECRET_C, nas_c, "c-2").await,
        "removed NAS c refused"
    );
    load.progress(200).await;

    // 4: a broken configuration keeps the old table and says why.
    write_config(&config, &state, &[nas_a(), nas_b_entry("10.0.0.0/33")]);
    svc.signal("HUP");
    svc.expect("RELOADING=1").await;
    let refused = svc.expect("READY=1").await;
    assert!(status(&refused).contains("reload refused"), "{refused:?}");
    assert!(
        probe(b, to, "secret-b-2", nas_b, "b-4").await,
        "old table still in force"
    );
    assert!(
        !probe(c, to, SECRET_C, nas_c, "c-3").await,
        "c still removed"
    );
    load.progress(200).await;

    let result = load.finish().await;
    assert_eq!(
        result.unexpected, 0,
        "replies that match no outstanding request"
    );
    let unanswered: Vec<usize> = (0..result.sent)
        .filter(|&i| result.answers[i] == 0)
        .collect();
    assert!(
        unanswered.is_empty(),
        "{} of {} requests unanswered, first {:?}",
        unanswered.len(),
        result.sent,
        &unanswered[..unanswered.len().min(10)]
    );
    assert!(
        result.answers.iter().all(|&n| n == 1),
        "each answered exactly once"
    );
    let log = svc.log();
    assert!(
        log.contains("SIGHUP: reload refused, keeping the old NAS table")
            && log.contains("nas[1].prefixes[0]")
            && log.contains("10.0.0.0/33"),
        "the refused reload names key and value in the log:\n{log}"
    );
    // Keep-alives every 150 ms over several seconds.
    let kept_alive = svc.watchdogs.load(Ordering::SeqCst);
    assert!(kept_alive >= 5, "WATCHDOG=1 sent {kept_alive} times");

    svc.signal("TERM");
    let stopping = svc.expect("STOPPING=1").await;
    assert!(status(&stopping).contains("stopping"), "{stopping:?}");
    let exit = tokio::task::spawn_blocking(move || svc.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "graceful stop: {exit}");

    // Every answered event is in the live map the binary left on disk.
    let live = ebok::sessions::embedded::EmbeddedSessions::open(&state.join("live.sqlite"))
        .await
        .unwrap();
    for i in 0..result.sent {
        let s = live
            .get(&load_nas().to_string(), &format!("l-{i}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("answered session l-{i} is live"));
        assert_eq!(s.framed_ip, Some(load_ip(i)));
    }
    assert_eq!(
        live.list(Some("192.0.2.1")).await.unwrap().len(),
        result.sent
    );
    for (nas, session, present) in [
        (nas_c, "c-1", true),
        (nas_b, "b-0", false),
        (nas_b, "b-1", true),
        (nas_b, "b-2", false),
        (nas_b, "b-3", true),
        (nas_c, "c-2", false),
        (nas_b, "b-4", true),
        (nas_c, "c-3", false),
    ] {
        let found = live.get(&nas.to_string(), session).await.unwrap().is_some();
        assert_eq!(found, present, "session {session} of {nas}");
    }
    eprintln!(
        "reload under load: {} requests, 4 SIGHUPs, {} keep-alives",
        result.sent, kept_alive
    );
}

/// The configuration the package installs as /etc/ebok/ebok.toml is valid and keeps state
/// where the unit's StateDirectory is.
#[test]
fn packaged_configuration_points_at_var_lib_ebok() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = ebok::config::Config::load(
        Some(&root.join("systemd/ebok.toml")),
        Vec::<(String, String)>::new(),
        &ebok::config::CliOverrides::default(),
    )
    .expect("systemd/ebok.toml is valid");
    assert_eq!(c.state.dir, Path::new("/var/lib/ebok"));
    assert_eq!(c.database.url, "sqlite:///var/lib/ebok/ebok.sqlite");
    let unit = std::fs::read_to_string(root.join("systemd/ebok.service")).unwrap();
    assert!(unit.contains("StateDirectory=ebok\n"));
    assert!(unit.contains("ExecStart=/usr/bin/ebok --config /etc/ebok/ebok.toml run\n"));
}

/// Every file `[package.metadata.deb]` ships exists, and the binary, configuration and
/// directories land where the unit expects them.
#[test]
fn deb_assets_exist_and_match_the_unit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().expect("assets");
    let mut targets = HashMap::new();
    for asset in assets {
        let a = asset.as_array().expect("[source, target, mode]");
        let (src, dst) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
        // The binary comes from the build; `target/release/` is cargo-deb's spelling of it.
        if let Some(bin) = src.strip_prefix("target/release/") {
            assert_eq!(bin, "ebok");
        } else {
            let found = glob_count(root, src);
            assert!(found > 0, "asset {src} matches no file");
        }
        targets.insert(dst.to_owned(), src.to_owned());
    }
    assert_eq!(targets["usr/bin/"], "target/release/ebok");
    assert_eq!(targets["etc/ebok/ebok.toml"], "systemd/ebok.toml");
    assert_eq!(
        targets["usr/lib/tmpfiles.d/ebok.conf"],
        "systemd/ebok.tmpfiles"
    );
    // cargo-deb adds the unit and the sysusers file from unit-scripts by their names.
    let units = deb["systemd-units"]["unit-scripts"].as_str().unwrap();
    for name in ["ebok.service", "ebok.sysusers"] {
        assert!(root.join(units).join(name).is_file(), "{units}{name}");
    }
}

/// Files matching `pattern` (a path, or a directory followed by `/*`).
fn glob_count(root: &Path, pattern: &str) -> usize {
    match pattern.strip_suffix("/*") {
        Some(dir) => std::fs::read_dir(root.join(dir))
            .map(|d| d.count())
            .unwrap_or(0),
        None => usize::from(root.join(pattern).is_file()),
    }
}

/// With the live store down the watchdog is still fed (ebok journals and replays, a restart
/// would only lose packets in flight) and the status line says the store is not answering,
/// then that it is back.
#[tokio::test]
async fn watchdog_is_fed_while_the_live_store_is_down() {
    use crate::durability::OwnRedis;
    let Some(mut redis) =
        OwnRedis::start_on_free_port("watchdog_is_fed_while_the_live_store_is_down").await
    else {
        return;
    };
    let port = redis.port;
    let backend = crate::harness::Backend::Redis {
        url: redis.url(),
        prefix: "watchdogtest:".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let ebok =
        crate::harness::Ebok::start(crate::harness::config(dir.path(), &backend, None)).await;
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let notifier = Arc::new(
        ebok::systemd::Notifier::new(Some(path.as_os_str()), Some(Duration::from_millis(400)))
            .unwrap(),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watchdog = tokio::spawn(ebok::systemd::run_watchdog(
        notifier,
        ebok.running.ingest.clone(),
        ebok.running.db.clone(),
        "serving".into(),
        stop_rx,
    ));
    let mut notes = Notes {
        socket,
        buf: vec![0u8; 4096],
    };
    assert!(notes.until("WATCHDOG=1").await >= 1);

    redis.stop();
    notes
        .until("STATUS=serving; live store NOT ANSWERING, database ok")
        .await;
    // Keep-alives go on during the outage (one per 200 ms).
    let fed = notes.keep_alives_for(Duration::from_millis(1500)).await;
    assert!(fed >= 4, "only {fed} WATCHDOG=1 while the store was down");

    let _redis = OwnRedis::start(port).await.unwrap();
    notes
        .until("STATUS=serving; live store ok, database ok")
        .await;
    let _ = stop_tx.send(true);
    watchdog.await.unwrap();
    ebok.stop().await;
    backend.cleanup().await;
}

/// Notifications read straight off a socket, for tests that call the library directly.
struct Notes {
    socket: UnixDatagram,
    buf: Vec<u8>,
}

impl Notes {
    async fn next(&mut self, wait: Duration) -> Option<String> {
        let n = tokio::time::timeout(wait, self.socket.recv(&mut self.buf))
            .await
            .ok()?
            .unwrap();
        Some(String::from_utf8_lossy(&self.buf[..n]).into_owned())
    }

    /// Read until a notification contains `text`; the keep-alives seen on the way.
    async fn until(&mut self, text: &str) -> usize {
        let mut keep_alives = 0;
        loop {
            let msg = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no notification with {text:?}"));
            keep_alives += msg.lines().filter(|l| *l == "WATCHDOG=1").count();
            if msg.contains(text) {
                return keep_alives;
            }
        }
    }

    /// The keep-alives that arrive within `span`.
    async fn keep_alives_for(&mut self, span: Duration) -> usize {
        let end = tokio::time::Instant::now() + span;
        let mut keep_alives = 0;
        while let Some(msg) = self.next(end - tokio::time::Instant::now()).await {
            keep_alives += msg.lines().filter(|l| *l == "WATCHDOG=1").count();
        }
        keep_alives
    }
}
