//! systemd integration: service notifications over `$NOTIFY_SOCKET` (READY, RELOADING,
//! STOPPING, STATUS, WATCHDOG — the sd_notify protocol, path or abstract `@` sockets) and
//! the service's life after start-up: ready once the stores answer, SIGHUP reloads, the
//! watchdog keep-alive, SIGTERM/SIGINT stop. Everything is a no-op without systemd.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::ingest::Ingest;
use crate::server::Running;
use crate::store::Db;

/// A bad notification environment (systemd sets it; a hand-made one may be wrong).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?}: {1}")]
    Socket(String, io::Error),
    #[error("WATCHDOG_USEC {0:?}: expected a positive number of microseconds")]
    WatchdogUsec(String),
}

/// Where service notifications go: the socket systemd named, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<SocketAddr>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`. A malformed value is logged
    /// and that part disabled: ebok runs without notifications rather than not at all.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = match watchdog_from(usec.as_deref(), pid.as_deref(), std::process::id()) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("systemd watchdog disabled: {e}");
                None
            }
        };
        match Notifier::new(socket.as_deref(), watchdog) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("systemd notifications disabled: {e}");
                Notifier::default()
            }
        }
    }

    /// Notifications to `socket` (`None`: nowhere); `watchdog` is WATCHDOG_USEC as a duration.
    pub fn new(
        socket: Option<&OsStr>,
        watchdog: Option<Duration>,
    ) -> Result<Notifier, NotifyError> {
        let socket = socket
            .filter(|s| !s.is_empty())
            .map(|s| socket_addr(s).map_err(|e| NotifyError::Socket(s.to_string_lossy().into(), e)))
            .transpose()?;
        Ok(Notifier {
            // Keep-alives are pointless when nobody listens for them.
            watchdog: watchdog.filter(|_| socket.is_some()),
            socket,
        })
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send WATCHDOG=1: half the manager's timeout, as sd_watchdog_enabled(3)
    /// advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Send one notification (newline-separated `KEY=VALUE` lines). A new socket per message:
    /// the manager may have been re-executed and bound its socket anew since the last one.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let Some(addr) = &self.socket else {
            return Ok(());
        };
        let n = UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), addr)?;
        if n != message.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
        }
        Ok(())
    }

    fn notify(&self, message: &str) {
        if let Err(e) = self.send(message) {
            tracing::warn!(error = %e, "could not notify systemd (NOTIFY_SOCKET)");
        }
    }

    /// Free-form status shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={}\n", one_line(status)));
    }

    /// Start-up or a reload finished.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={}\n", one_line(status)));
    }

    /// A reload begins; `Type=notify-reload` and `systemctl reload` need MONOTONIC_USEC to
    /// tell this reload from an earlier one.
    pub fn reloading(&self) {
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration\n",
            monotonic_usec()
        ));
    }

    /// Shutdown begins.
    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=stopping: draining requests in flight\n");
    }

    /// Watchdog keep-alive, with the status when it changed.
    pub fn watchdog(&self, status: Option<&str>) {
        match status {
            Some(s) => self.notify(&format!("WATCHDOG=1\nSTATUS={}\n", one_line(s))),
            None => self.notify("WATCHDOG=1\n"),
        }
    }
}

/// `NOTIFY_SOCKET`: a path, or `@name` for a socket in the abstract namespace.
fn socket_addr(s: &OsStr) -> io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match s.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(s),
    }
}

/// The watchdog timeout, when it is set and meant for this process (`WATCHDOG_PID` absent or
/// ours: a forked helper inherits the variables but must not feed the watchdog).
pub fn watchdog_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let micros: u64 = usec
        .trim()
        .parse()
        .ok()
        .filter(|&m| m > 0)
        .ok_or_else(|| NotifyError::WatchdogUsec(usec.to_owned()))?;
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(own_pid)) {
        return Ok(None);
    }
    Ok(Some(Duration::from_micros(micros)))
}

/// STATUS= is one line: newlines would start new assignments.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC with.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, owned `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// Whether the stores answer, and how much the journal holds for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreHealth {
    pub live: bool,
    pub database: bool,
    pub journal: u64,
}

impl StoreHealth {
    /// Ask both stores, each within `limit`.
    pub async fn check(ingest: &Ingest, db: &Db, limit: Duration) -> StoreHealth {
        let (live, database) = tokio::join!(
            tokio::time::timeout(limit, ingest.live.ping()),
            tokio::time::timeout(limit, db.ping()),
        );
        StoreHealth {
            live: matches!(live, Ok(Ok(()))),
            database: matches!(database, Ok(Ok(()))),
            journal: ingest.spool.depth(),
        }
    }

    pub fn ok(&self) -> bool {
        self.live && self.database
    }

    fn describe(&self) -> String {
        let word = |up: bool| if up { "ok" } else { "NOT ANSWERING" };
        format!(
            "live store {}, database {}, journal {} events",
            word(self.live),
            word(self.database),
            self.journal
        )
    }
}

/// Where ebok listens, the first part of every status line while serving (port 0 in the
/// configuration becomes the bound port here).
pub fn listening(running: &Running) -> String {
    let radius: Vec<String> = running.radius_addrs.iter().map(|a| a.to_string()).collect();
    format!(
        "serving RADIUS {}, web {}, metrics {}",
        radius.join(" "),
        running.web_addr,
        running.metrics_addr
    )
}

/// Run the started service until SIGTERM or SIGINT: READY=1 once the database and the live
/// store answered (the listeners are bound by then and already journal what arrives), the
/// watchdog task, and on SIGHUP RELOADING=1, `reload` (which swaps in the new NAS table or
/// says why not), READY=1. Sends STOPPING=1 before returning; the caller then shuts down.
pub async fn serve<F>(
    running: &Running,
    notifier: Arc<Notifier>,
    shutdown: watch::Receiver<bool>,
    reload: F,
) -> anyhow::Result<()>
where
    F: Fn() -> anyhow::Result<usize>,
{
    // Handlers first: SIGHUP's default action is to terminate, and systemd may send one as
    // soon as READY=1 is out.
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;

    let check = Duration::from_secs(2);
    let mut health = StoreHealth::check(&running.ingest, &running.db, check).await;
    while !health.ok() {
        let status = format!("waiting for the stores: {}", health.describe());
        tracing::warn!("{status}");
        notifier.status(&status);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = term.recv() => return stopping(&notifier),
            _ = int.recv() => return stopping(&notifier),
            _ = hup.recv() => tracing::info!("SIGHUP before ready: the configuration is read at start"),
        }
        health = StoreHealth::check(&running.ingest, &running.db, check).await;
    }
    let serving = listening(running);
    let status = format!("{serving}; {}", health.describe());
    notifier.ready(&status);
    tracing::info!(notify = notifier.enabled(), "ready: {status}");

    let watchdog = tokio::spawn(run_watchdog(
        notifier.clone(),
        running.ingest.clone(),
        running.db.clone(),
        serving.clone(),
        shutdown,
    ));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                notifier.reloading();
                // Packets keep flowing with the old table until the new one is swapped in.
                let outcome = match reload() {
                    Ok(n) => {
                        tracing::info!(prefixes = n, "SIGHUP: NAS table reloaded");
                        format!("NAS table reloaded ({n} prefixes)")
                    }
                    Err(e) => {
                        tracing::error!("SIGHUP: reload refused, keeping the old NAS table: {e:#}");
                        format!("reload refused, old NAS table kept: {e:#}")
                    }
                };
                let health = StoreHealth::check(&running.ingest, &running.db, check).await;
                notifier.ready(&format!("{serving}; {}; {outcome}", health.describe()));
            }
        }
    }
    watchdog.abort();
    stopping(&notifier)
}

fn stopping(notifier: &Notifier) -> anyhow::Result<()> {
    notifier.stopping();
    tracing::info!("shutting down: draining requests in flight");
    Ok(())
}

/// Send WATCHDOG=1 every half timeout while the runtime still runs tasks: a probe task must
/// be scheduled and finish within the interval. The stores are deliberately NOT part of the
/// check — with a store down ebok keeps answering from its journal and replays later, and a
/// restart would only drop the packets in flight; their state goes to STATUS= instead.
pub async fn run_watchdog(
    notifier: Arc<Notifier>,
    ingest: Arc<Ingest>,
    db: Db,
    serving: String,
    mut shutdown: watch::Receiver<bool>,
) {
    // READY=1 was sent with both stores answering.
    let mut last = (true, true);
    let Some(every) = notifier.watchdog_interval() else {
        return;
    };
    // A fixed rhythm: the time the checks take does not push the next keep-alive back.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if tokio::time::timeout(every / 2, tokio::spawn(async {}))
            .await
            .is_err()
        {
            tracing::error!(
                "watchdog: the runtime did not run a probe task in time; not feeding the watchdog"
            );
            continue;
        }
        notifier.watchdog(None);
        // The store check may take up to its limit; the keep-alive is already out.
        // Only a change of the stores' state updates STATUS=, not every journal count.
        let health = StoreHealth::check(&ingest, &db, every / 4).await;
        if (health.live, health.database) != last {
            if !health.ok() {
                tracing::warn!("{}", health.describe());
            }
            notifier.status(&format!("{serving}; {}", health.describe()));
            last = (health.live, health.database);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// A notification socket bound at a temporary path and a notifier aimed at it.
    fn path_socket() -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path.as_os_str()), None).unwrap();
        (dir, sock, n)
    }

    #[test]
    fn notifies_a_path_socket() {
        let (_dir, sock, n) = path_socket();
        assert!(n.enabled());
        n.ready("serving\nRADIUS 127.0.0.1:1813");
        assert_eq!(
            recv(&sock),
            "READY=1\nSTATUS=serving RADIUS 127.0.0.1:1813\n"
        );
        n.stopping();
        assert!(recv(&sock).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn notifies_an_abstract_socket() {
        let name = format!("ebok-test-{}-{}", std::process::id(), rand::random::<u64>());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        let env = format!("@{name}");
        let n = Notifier::new(Some(OsStr::new(&env)), Some(Duration::from_secs(30))).unwrap();
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        n.watchdog(Some("live store NOT ANSWERING"));
        assert_eq!(recv(&sock), "WATCHDOG=1\nSTATUS=live store NOT ANSWERING\n");
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let (_dir, sock, n) = path_socket();
        let before = monotonic_usec();
        n.reloading();
        let after = monotonic_usec();
        let msg = recv(&sock);
        let mut lines = msg.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .expect("MONOTONIC_USEC second")
            .parse()
            .unwrap();
        assert!(
            before > 0 && before <= usec && usec <= after,
            "{before} {usec} {after}"
        );
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_no_watchdog() {
        let n = Notifier::new(None, Some(Duration::from_secs(30))).unwrap();
        assert!(!n.enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.send("READY=1\n").unwrap();
        let empty = Notifier::new(Some(OsStr::new("")), None).unwrap();
        assert!(!empty.enabled());
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens");
        let n = Notifier::new(Some(path.as_os_str()), None).unwrap();
        assert_eq!(
            n.send("READY=1\n").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        n.ready("logged, not fatal");
    }

    #[test]
    fn watchdog_variables() {
        assert_eq!(
            watchdog_from(Some("30000000"), None, 7).unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_from(Some("500000"), Some("7"), 7).unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(watchdog_from(Some("500000"), Some("8"), 7).unwrap(), None);
        assert_eq!(watchdog_from(None, Some("7"), 7).unwrap(), None);
        for bad in ["abc", "0", "-5"] {
            let e = watchdog_from(Some(bad), None, 7).unwrap_err();
            assert!(e.to_string().contains("WATCHDOG_USEC"), "{e}");
        }
    }
}
