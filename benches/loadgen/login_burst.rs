//! `ebok-bench login-burst`: many logins at once against a running panel, for some
//! seconds, to see what argon2's bound costs and protects. `--logins` clients each send one
//! login after another; every login comes from a loopback address and with a login name of
//! its own (127.66.0.1 upward: the per-IP and per-account limits never stop it), so each reaches
//! the password check; meanwhile one client reads `/faq` in a loop. Reported: the logins'
//! answers by status, the panel's peak memory (VmHWM of the server process), and `/faq`
//! latency alone (the reference) and during the burst.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

#[derive(Args)]
pub struct LoginBurstArgs {
    /// The panel (loopback only).
    #[arg(long)]
    pub web: SocketAddr,
    /// Logins sent at once.
    #[arg(long, default_value_t = 500)]
    pub logins: usize,
    /// PID of the server, for its peak memory (VmHWM).
    #[arg(long)]
    pub server_pid: u32,
    /// How long the burst lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

/// One HTTP/1.1 exchange from `from` (a loopback address), `Connection: close`: status,
/// headers and body.
async fn exchange(from: IpAddr, to: SocketAddr, request: &str) -> anyhow::Result<(u16, String)> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let mut stream = socket.connect(to).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    Ok((status, text))
}

/// GET /logowanie, then POST a wrong password for `login`: the POST's status.
async fn login(from: IpAddr, web: SocketAddr, login: &str) -> anyhow::Result<u16> {
    let (_, page) = exchange(
        from,
        web,
        &format!("GET /logowanie HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"),
    )
    .await?;
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .context("no CSRF token on the login page")?;
    let cookies: Vec<&str> = page
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .filter_map(|c| c.split(';').next())
        .collect();
    let body = format!("login={login}&password=zle+haslo+1234&csrf={token}");
    let (status, _) = exchange(
        from,
        web,
        &format!(
            "POST /logowanie HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\nCookie: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            cookies.join("; "),
            body.len()
        ),
    )
    .await?;
    Ok(status)
}

/// Read `/faq` in a loop until `stop`: each answer's latency in µs.
async fn faq_reader(web: SocketAddr, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut lat = Vec::new();
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let ok = exchange(
            from,
            web,
            &format!("GET /faq HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"),
        )
        .await
        .is_ok_and(|(s, _)| s == 200);
        if ok {
            lat.push(t.elapsed().as_micros() as u64);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat
}

fn p(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

pub async fn login_burst(args: LoginBurstArgs) -> anyhow::Result<()> {
    if !args.web.ip().is_loopback() {
        bail!("--web must be a loopback address");
    }
    let web = args.web;
    let rss_before = peak_rss_kib(args.server_pid)?;
    // /faq alone first: the reference.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(faq_reader(web, stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut idle = idle.await?;
    idle.sort_unstable();

    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(faq_reader(web, stop.clone()));
    let started = Instant::now();
    // Every login from an address and with a login name never used before in this run, so no
    // per-IP or per-account limit stops it before the password check.
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let tasks: Vec<_> = (0..args.logins)
        .map(|_| {
            let next = next.clone();
            let until = started + Duration::from_secs(args.seconds);
            tokio::spawn(async move {
                // One login after another from this client until the burst's time is up.
                let mut answers = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let from = IpAddr::V4(Ipv4Addr::new(
                        127,
                        (66 + n / 62_500) as u8,
                        (n / 250 % 250) as u8,
                        (n % 250 + 1) as u8,
                    ));
                    answers.push(match login(from, web, &format!("burst{n}")).await {
                        Ok(s) => s.to_string(),
                        Err(e) => format!("error ({e})"),
                    });
                    if Instant::now() >= until {
                        break answers;
                    }
                }
            })
        })
        .collect();
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        for key in t.await? {
            *by_status.entry(key).or_default() += 1;
        }
    }
    let burst_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut during = during.await?;
    during.sort_unstable();
    let rss_peak = peak_rss_kib(args.server_pid)?;
    println!(
        "RESULT name=login-burst clients={} seconds={burst_s:.1} answers={by_status:?} \
         peak_rss_mib_before={:.0} peak_rss_mib={:.0} faq_idle_p50_ms={:.1} \
         faq_idle_p99_ms={:.1} faq_burst_p50_ms={:.1} faq_burst_p99_ms={:.1} faq_burst_max_ms={:.1} \
         faq_burst_answers={} cores={}",
        args.logins,
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        p(&idle, 0.5) as f64 / 1000.0,
        p(&idle, 0.99) as f64 / 1000.0,
        p(&during, 0.5) as f64 / 1000.0,
        p(&during, 0.99) as f64 / 1000.0,
        during.last().copied().unwrap_or(0) as f64 / 1000.0,
        during.len(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    Ok(())
}
