//! `ebok-bench`: the load generator and store benchmarks of issue 2 ("Benchmark", not a timed
//! test). `scripts/bench.sh` runs every part in one go against ebok and FreeRADIUS.
//!
//! * `load`: signed Accounting-Request streams (Start, Interim-Updates, Stop per session) over
//!   UDP with a window of outstanding requests → packets/s, reply latency, server CPU/packet.
//! * `redis-memory`: bytes of Redis memory per live session (`INFO memory`).
//! * `embedded-lookup`: lookup latency of the embedded store.
//! * `free-port`: a free loopback port, for the script.
//! * `gen-import`: import files of a large ISP, for `scripts/bench-import.sh` (issue 3).
//! * `hello`: a hello-world axum handler, the reference for the panel's requests/s in
//!   `scripts/bench-web.sh` (the panel itself is measured with wrk).
//! * `argon2`: the cost of one password verification with ebok's own argon2id parameters.
//! * `demo-contract`: the demo subscriber's contract number, for registering in the script.
//! * `seed-billing`: give the demo's Jan Kowalski ten years of monthly invoices and payments
//!   (issue 5: Płatności for a long-standing subscriber).
//! * `pdf`: the time to generate one invoice's PDF (issue 5).
//! * `capture`: signed Accounting-Requests at a fixed rate, answers ignored, for
//!   `scripts/bench-capture.sh` (passive capture beside the UDP listener, issue 6).
//! * `attribution`: "who held this IP at T" on a large session history (issue 6; module
//!   `attribution.rs`).
//! * `login-burst`: many panel logins at once; peak memory and `/faq` latency meanwhile
//!   (module `login_burst.rs`).

mod attribution;
mod login_burst;

/// The same allocator as `ebok` itself, so the hello-world reference of the panel benchmark
/// and the load generator run on it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use ebok::radius::event::{AccountingEvent, StatusType};
use ebok::radius::packet::{build_accounting_request, CODE_ACCOUNTING_RESPONSE, HEADER_LEN};
use ebok::sessions::LiveSessions;
use ipnet::Ipv6Net;
use md5::{Digest, Md5};
use time::OffsetDateTime;
use tokio::net::UdpSocket;

#[derive(Parser)]
#[command(
    name = "ebok-bench",
    about = "Load generator and store benchmarks for ebok"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send Start/Interim/Stop streams to a RADIUS accounting server and measure it.
    Load(LoadArgs),
    /// Fill a RedisSessions with N Start events and report Redis memory per live session.
    RedisMemory(RedisMemoryArgs),
    /// Fill an EmbeddedSessions with N sessions and measure single-threaded lookup latency.
    EmbeddedLookup(EmbeddedLookupArgs),
    /// Print a free loopback port (UDP and TCP both free at the moment of the check).
    FreePort,
    /// Write import files (CSV, docs/import.md) for N subscribers, each with one contract,
    /// PPPoE account and IP, and `--months` monthly invoices and payments.
    GenImport(GenImportArgs),
    /// Serve "Hello, World!" with axum on a multi-thread runtime (the panel's reference).
    Hello(HelloArgs),
    /// Time argon2id verifications with ebok's parameters, one after another (one core).
    Argon2(Argon2Args),
    /// Print the contract number of the demo's live line (Jan Kowalski) from the database.
    DemoContract(DemoContractArgs),
    /// Add monthly invoices and payments before the demo's own year so that Jan Kowalski
    /// has `--years` years of them (written through `ebok::store::billing`).
    SeedBilling(SeedBillingArgs),
    /// Time the PDF of Jan Kowalski's newest invoice (`ebok::web::billing::invoice_pdf`),
    /// one after another: mean and p99.
    Pdf(PdfArgs),
    /// Fill the session history with N sessions and time random IP attribution lookups.
    Attribution(attribution::AttributionArgs),
    /// Send signed Start/Interim/Stop requests at a fixed rate without waiting for answers
    /// (passive capture never answers) and report how many left.
    Capture(CaptureArgs),
    /// Many panel logins at once (each reaching argon2): their answers, the server's peak
    /// memory and `/faq` latency meanwhile (module `login_burst.rs`).
    LoginBurst(login_burst::LoginBurstArgs),
}

#[derive(Args)]
struct CaptureArgs {
    /// Where to send: the UDP listener, or an address whose traffic ebok captures. Only
    /// loopback, private and shared (100.64.0.0/10, fd00::/8) addresses.
    #[arg(long)]
    target: SocketAddr,
    #[arg(long, default_value = "testing123")]
    secret: String,
    /// Requests per second offered.
    #[arg(long)]
    rate: u64,
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Label in the SENT line.
    #[arg(long, default_value = "capture")]
    name: String,
}

#[derive(Args)]
struct SeedBillingArgs {
    /// The database `ebok run --demo` filled (sqlite://PATH or postgres://…).
    #[arg(long)]
    database_url: String,
    /// Years of monthly invoices Jan has afterwards (the demo's own 12 months included).
    #[arg(long, default_value_t = 10)]
    years: u32,
}

#[derive(Args)]
struct PdfArgs {
    /// The database `ebok run --demo` filled (sqlite://PATH or postgres://…).
    #[arg(long)]
    database_url: String,
    /// PDFs to time (after one untimed warm-up).
    #[arg(long, default_value_t = 50)]
    n: u32,
}

#[derive(Args)]
struct HelloArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

#[derive(Args)]
struct Argon2Args {
    /// Verifications to time (after one untimed warm-up).
    #[arg(long, default_value_t = 50)]
    n: u32,
}

#[derive(Args)]
struct DemoContractArgs {
    /// The database `ebok run --demo` filled (sqlite://PATH or postgres://…).
    #[arg(long)]
    database_url: String,
}

#[derive(Args)]
struct LoadArgs {
    /// Server address (loopback only).
    #[arg(long)]
    target: SocketAddr,
    #[arg(long, default_value = "testing123")]
    secret: String,
    /// Sessions to run; each sends Start, `--interims` Interim-Updates and Stop.
    #[arg(long, default_value_t = 100_000)]
    sessions: u64,
    /// Requests outstanding at once (spread over several sockets).
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Stop sending new requests after this many seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    #[arg(long, default_value_t = 3)]
    interims: u32,
    /// PID of the server, to read its CPU time from /proc/PID/stat (all its threads).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Another process whose CPU time counts as the server's (repeatable), e.g. redis-server
    /// for ebok with the Redis store.
    #[arg(long = "also-pid")]
    also_pid: Vec<u32>,
    /// Label in the RESULT line.
    #[arg(long, default_value = "load")]
    name: String,
    /// Retransmit an unanswered request after this long.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Retransmissions before a request counts as lost.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Add a Message-Authenticator to every request.
    #[arg(long)]
    message_authenticator: bool,
    /// ebok's Prometheus endpoint (http://127.0.0.1:PORT/metrics): report how many answers
    /// came from the spool and how deep it is.
    #[arg(long)]
    metrics: Option<String>,
    /// With --metrics: after the run, wait up to this many seconds for the spool to drain,
    /// and count the server's CPU until then too (the deferred work of spooled events).
    #[arg(long, default_value_t = 0)]
    settle: u64,
    /// How long to wait for the server to answer a first probe request.
    #[arg(long, default_value_t = 20)]
    ready_timeout: u64,
}

#[derive(Args)]
struct RedisMemoryArgs {
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    url: String,
    #[arg(long, default_value_t = 1_000_000)]
    sessions: u64,
    /// Concurrent apply tasks.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// `hash-max-listpack-value` / `-entries` to set for the run (restored afterwards), as
    /// recommended in src/sessions/redis.rs; 0 keeps the server's settings.
    #[arg(long, default_value_t = 256)]
    listpack_value: u64,
    #[arg(long, default_value_t = 512)]
    listpack_entries: u64,
    /// Key prefix (default: a unique one). Its keys are deleted at the end.
    #[arg(long)]
    prefix: Option<String>,
}

#[derive(Args)]
struct EmbeddedLookupArgs {
    #[arg(long, default_value_t = 1_000_000)]
    sessions: u64,
    #[arg(long, default_value_t = 200_000)]
    lookups: u64,
    /// Concurrent apply tasks while filling.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Directory for the store (default: a new one under the temp dir, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct GenImportArgs {
    #[arg(long, default_value_t = 50_000)]
    subscribers: u32,
    /// Monthly invoices (and payments) per subscriber, the last `months` months of 2025.
    #[arg(long, default_value_t = 12)]
    months: u8,
    /// Directory for subscribers.csv, contracts.csv, pppoe-accounts.csv, ips.csv,
    /// invoices.csv and payments.csv (created when missing).
    #[arg(long)]
    dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::GenImport(args) => gen_import(args),
        Command::Load(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(load(args)),
        Command::RedisMemory(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(redis_memory(args)),
        Command::EmbeddedLookup(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(embedded_lookup(args)),
        Command::FreePort => free_port(),
        Command::Hello(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(hello(args)),
        Command::Argon2(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(argon2_cost(args)),
        Command::DemoContract(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(demo_contract(args)),
        Command::SeedBilling(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(seed_billing(args)),
        Command::Pdf(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(pdf_cost(args)),
        Command::Capture(args) => send_paced(args),
        Command::LoginBurst(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(login_burst::login_burst(args)),
        Command::Attribution(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(attribution::attribution(args)),
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic subscribers

const FIRST: [&str; 20] = [
    "jan",
    "anna",
    "piotr",
    "maria",
    "tomasz",
    "ewa",
    "pawel",
    "kasia",
    "marek",
    "agnieszka",
    "krzysztof",
    "magda",
    "michal",
    "joanna",
    "adam",
    "barbara",
    "lukasz",
    "monika",
    "rafal",
    "zofia",
];
const LAST: [&str; 20] = [
    "kowalski",
    "nowak",
    "wisniewski",
    "wojcik",
    "kowalczyk",
    "kaminski",
    "lewandowski",
    "zielinski",
    "szymanski",
    "wozniak",
    "dabrowski",
    "kozlowski",
    "jankowski",
    "mazur",
    "kwiatkowski",
    "krawczyk",
    "piotrowski",
    "grabowski",
    "nowakowski",
    "pawlowski",
];

/// Session `i` of a run tagged `tag`: every identifying value is distinct per `i`.
struct Subscriber {
    session_id: String,
    user_name: String,
    ipv4: Ipv4Addr,
    /// The /64 on the PPPoE link (Framed-IPv6-Prefix).
    wan64: Ipv6Net,
    /// The /56 delegated to the subscriber's router (Delegated-IPv6-Prefix).
    pd56: Ipv6Net,
    mac: String,
}

impl Subscriber {
    fn new(tag: u32, i: u64) -> Self {
        let i32_ = i as u32;
        // MikroTik-style hex ids; 16 characters with the run tag in front.
        let session_id = format!("{tag:08x}{i32_:08x}");
        let user_name = format!(
            "{}.{}{}",
            FIRST[(i % 20) as usize],
            LAST[((i / 20) % 20) as usize],
            i / 400 + 1
        );
        // 10.0.0.0/8 from 10.0.1.0 on: 16 million addresses, never .0/.255 problems here.
        let ipv4 = Ipv4Addr::from(0x0a00_0100u32.wrapping_add(i32_) | 0x0a00_0000);
        // 2001:db8::/32 holds 2^24 /56s; /64 links come from 2001:db8:ff00::/40.
        let n = (i32_ & 0x00ff_ffff) as u128;
        let pd = (0x2001_0db8u128 << 96) | (n << 72);
        let wan = (0x2001_0db8_ff00u128 << 80) | (n << 64);
        let pd56 = Ipv6Net::new(Ipv6Addr::from(pd), 56).expect("valid");
        let wan64 = Ipv6Net::new(Ipv6Addr::from(wan), 64).expect("valid");
        let m = i32_.to_be_bytes();
        let mac = format!(
            "4C:5E:0C:{:02X}:{:02X}:{:02X}",
            m[1] ^ (tag as u8),
            m[2],
            m[3]
        );
        Subscriber {
            session_id,
            user_name,
            ipv4,
            wan64,
            pd56,
            mac,
        }
    }
}

fn run_tag() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let x = nanos ^ (u64::from(std::process::id()) << 32);
    (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u32
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as u32
}

/// RFC 3162 prefix attribute value: reserved, length, significant octets.
fn prefix_value(net: &Ipv6Net) -> Vec<u8> {
    let len = net.prefix_len();
    let mut v = vec![0, len];
    v.extend_from_slice(&net.network().octets()[..usize::from(len).div_ceil(8)]);
    v
}

fn u32v(x: u32) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

const INTERIM: u32 = 300;
const NAS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Attributes of event `step` (0 = Start, 1..=interims = Interim-Update, then Stop) of a
/// session, as a MikroTik PPPoE concentrator sends them.
fn event_attributes(
    sub: &Subscriber,
    i: u64,
    step: u32,
    interims: u32,
    base_time: u32,
) -> Vec<(u8, Vec<u8>)> {
    let status = if step == 0 {
        1
    } else if step <= interims {
        3
    } else {
        2
    };
    let session_time = step * INTERIM;
    let bytes_in = u64::from(step) * 7_340_123 + i % 1000;
    let bytes_out = u64::from(step) * 91_234_567 + i % 997;
    let mut a: Vec<(u8, Vec<u8>)> = vec![
        (40, u32v(status)),
        (44, sub.session_id.as_bytes().to_vec()),
        (1, sub.user_name.as_bytes().to_vec()),
        (4, NAS_IP.octets().to_vec()),
        (5, u32v(15_728_640 + (i as u32 & 0xffff))),
        (61, u32v(5)), // Virtual
        (87, b"pppoe-vlan100".to_vec()),
        (6, u32v(2)), // Framed-User
        (7, u32v(1)), // PPP
        (31, sub.mac.as_bytes().to_vec()),
        (30, b"pppoe-service1".to_vec()),
        (8, sub.ipv4.octets().to_vec()),
        (97, prefix_value(&sub.wan64)),
        (123, prefix_value(&sub.pd56)),
        (45, u32v(1)), // RADIUS
        (41, u32v(0)),
        (55, u32v(base_time + session_time)),
    ];
    if step > 0 {
        a.extend([
            (46, u32v(session_time)),
            (42, u32v(bytes_in as u32)),
            (52, u32v((bytes_in >> 32) as u32)),
            (43, u32v(bytes_out as u32)),
            (53, u32v((bytes_out >> 32) as u32)),
            (47, u32v((bytes_in / 900) as u32)),
            (48, u32v((bytes_out / 1200) as u32)),
        ]);
    }
    if status == 2 {
        a.push((49, u32v(1))); // User-Request
    }
    a
}

// ---------------------------------------------------------------------------------------------
// capture

/// Offer `rate` requests/s for `seconds`: packets built beforehand (sessions of Start,
/// 3 Interim-Updates and Stop), sent on a schedule that catches up after any stall.
fn send_paced(args: CaptureArgs) -> anyhow::Result<()> {
    let allowed = match args.target.ip() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64)
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.octets()[0] == 0xfd,
    };
    if !allowed {
        bail!("--target must be a loopback, private or shared address");
    }
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be positive");
    }
    let count = args.rate * args.seconds;
    let (tag, base_time) = (run_tag(), unix_now());
    let packets: Vec<Vec<u8>> = (0..count)
        .map(|n| {
            let (i, step) = (n / 5, (n % 5) as u32);
            let attrs = event_attributes(&Subscriber::new(tag, i), i, step, 3, base_time);
            build_accounting_request(n as u8, args.secret.as_bytes(), &attrs, false)
        })
        .collect();
    let bind: SocketAddr = if args.target.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    let socket = std::net::UdpSocket::bind(bind)?;
    socket.connect(args.target)?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut errors = 0u64;
    while sent < count {
        let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
        if sent >= due.min(count) {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        while sent < due.min(count) {
            // ICMP errors from the other end (none listening) are not our concern.
            if socket.send(&packets[sent as usize]).is_err() {
                errors += 1;
            }
            sent += 1;
        }
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "SENT name={} rate={} sent={} errors={} seconds={:.3} achieved={:.0}",
        args.name,
        args.rate,
        sent - errors,
        errors,
        took,
        (sent - errors) as f64 / took
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// load

/// What every socket task shares.
struct Plan {
    secret: Vec<u8>,
    sessions: u64,
    interims: u32,
    tag: u32,
    base_time: u32,
    timeout: Duration,
    retries: u32,
    message_authenticator: bool,
    start: Instant,
    /// No new requests after this.
    deadline: Instant,
    /// Give up on outstanding requests after this.
    drain_deadline: Instant,
    next_session: AtomicU64,
    stop: AtomicBool,
}

impl Plan {
    fn events_per_session(&self) -> u32 {
        self.interims + 2
    }
}

/// One stream of a socket: the session it is working through and its request in flight.
struct Slot {
    session: u64,
    step: u32,
    sub: Option<Subscriber>,
    id: u8,
    packet: Vec<u8>,
    first_sent: Instant,
    last_sent: Instant,
    tries: u32,
    busy: bool,
}

#[derive(Default)]
struct SocketStats {
    sent: u64,
    answered: u64,
    answered_in_window: u64,
    retransmits: u64,
    lost: u64,
    bad_replies: u64,
    unfinished: u64,
    sessions_done: u64,
    last_reply: Option<Instant>,
    latencies_us: Vec<u32>,
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    if !args.target.ip().is_loopback() {
        bail!("--target must be a loopback address");
    }
    if args.window == 0 || args.sessions == 0 {
        bail!("--window and --sessions must be positive");
    }
    let secret = args.secret.as_bytes().to_vec();
    wait_ready(
        args.target,
        &secret,
        Duration::from_secs(args.ready_timeout),
    )
    .await?;

    // At most 128 streams per socket, so a freed identifier waits behind ≥128 others before
    // it is reused (servers' duplicate caches key on source port + identifier).
    let n_sockets = args.window.div_ceil(128).max(2).min(args.window);
    let mut sockets = Vec::with_capacity(n_sockets);
    for _ in 0..n_sockets {
        let bind: SocketAddr = if args.target.is_ipv6() {
            "[::1]:0".parse()?
        } else {
            "127.0.0.1:0".parse()?
        };
        let s = UdpSocket::bind(bind).await?;
        s.connect(args.target).await?;
        sockets.push(s);
    }

    let metrics0 = match &args.metrics {
        Some(url) => Some(scrape(url).await?),
        None => None,
    };
    let kernel_drops0 = udp_rcvbuf_errors();
    let host_busy0 = host_busy_ticks();
    let pids: Vec<u32> = args
        .server_pid
        .iter()
        .chain(&args.also_pid)
        .copied()
        .collect();
    let server_cpu0 = args.server_pid.map(|_| cpu_sum(&pids)).transpose()?;
    let also_cpu0 = cpu_sum(&args.also_pid)?;
    let self_cpu0 = proc_cpu_ticks(std::process::id())?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let drain = Duration::from_millis(args.timeout_ms * 2).max(Duration::from_secs(2));
    let plan = Arc::new(Plan {
        secret,
        sessions: args.sessions,
        interims: args.interims,
        tag: run_tag(),
        base_time: unix_now(),
        timeout: Duration::from_millis(args.timeout_ms),
        retries: args.retries,
        message_authenticator: args.message_authenticator,
        start,
        deadline,
        drain_deadline: deadline + drain,
        next_session: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (k, sock) in sockets.into_iter().enumerate() {
        let streams = args.window / n_sockets + usize::from(k < args.window % n_sockets);
        tasks.spawn(run_socket(sock, plan.clone(), streams));
    }
    // A progress line every 5 s on stderr.
    let progress_plan = plan.clone();
    let progress = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let started = progress_plan
                .next_session
                .load(Ordering::Relaxed)
                .min(progress_plan.sessions);
            eprintln!(
                "  … {:>4.0} s, {started} sessions started",
                progress_plan.start.elapsed().as_secs_f64()
            );
        }
    });

    let mut all = SocketStats::default();
    while let Some(r) = tasks.join_next().await {
        let s = r?;
        all.sent += s.sent;
        all.answered += s.answered;
        all.answered_in_window += s.answered_in_window;
        all.retransmits += s.retransmits;
        all.lost += s.lost;
        all.bad_replies += s.bad_replies;
        all.unfinished += s.unfinished;
        all.sessions_done += s.sessions_done;
        all.last_reply = all.last_reply.max(s.last_reply);
        all.latencies_us.extend(s.latencies_us);
    }
    progress.abort();
    let end = Instant::now();
    plan.stop.store(true, Ordering::Relaxed);
    let server_cpu1 = args.server_pid.map(|_| cpu_sum(&pids)).transpose()?;
    let also_s = (cpu_sum(&args.also_pid)? - also_cpu0) as f64 / clock_ticks_per_second();
    let self_cpu1 = proc_cpu_ticks(std::process::id())?;
    let kernel_drops = udp_rcvbuf_errors().saturating_sub(kernel_drops0);
    let host_busy = host_busy_ticks().saturating_sub(host_busy0);

    // The measured window: until the deadline, or until the last reply when every session
    // finished earlier.
    let window_end = if plan.next_session.load(Ordering::Relaxed) >= plan.sessions
        && all.last_reply.is_some_and(|t| t < deadline)
    {
        all.last_reply.unwrap_or(deadline)
    } else {
        deadline
    };
    let window_s = (window_end - start).as_secs_f64().max(1e-6);
    let pps = all.answered_in_window as f64 / window_s;
    all.latencies_us.sort_unstable();
    let p50 = percentile(&all.latencies_us, 0.50);
    let p99 = percentile(&all.latencies_us, 0.99);
    let max = all.latencies_us.last().copied().unwrap_or(0);
    let tck = clock_ticks_per_second();
    let self_cpu_s = (self_cpu1 - self_cpu0) as f64 / tck;

    println!("== {} → {} ==", args.name, args.target);
    println!(
        "  window {} requests on {} sockets, {} interim(s)/session, {:.1} s measured ({:.1} s total)",
        args.window,
        n_sockets,
        args.interims,
        window_s,
        (end - start).as_secs_f64()
    );
    println!(
        "  requests sent {} (+{} retransmissions), answered {} ({} in window), sessions completed {}",
        all.sent, all.retransmits, all.answered, all.answered_in_window, all.sessions_done
    );
    println!(
        "  timeouts {}, lost {}, unanswered at end {}, bad replies {}; kernel UDP receive-buffer \
         drops on this host during the run {kernel_drops}",
        all.retransmits, all.lost, all.unfinished, all.bad_replies
    );
    println!("  answered packets/s {pps:.0}");
    println!("  reply latency µs: p50 {p50}  p99 {p99}  max {max}");
    let mut cpu_fields = String::new();
    if let (Some(a), Some(b)) = (server_cpu0, server_cpu1) {
        let server_s = (b - a) as f64 / tck;
        let per_pkt = if all.answered > 0 {
            server_s * 1e6 / all.answered as f64
        } else {
            f64::NAN
        };
        let also = if args.also_pid.is_empty() {
            String::new()
        } else {
            format!(
                " (of which {also_s:.2} s in --also-pid {:?})",
                args.also_pid
            )
        };
        println!(
            "  server CPU {server_s:.2} s{also} ({:.0}% of one core) → {per_pkt:.1} µs per answered packet",
            server_s * 100.0 / (end - start).as_secs_f64()
        );
        cpu_fields = format!(" server_cpu_s={server_s:.2} cpu_us_per_pkt={per_pkt:.1}");
    }
    // Whatever else ran on the machine meanwhile (builds, other tests) competed for the cores.
    let server_ticks = match (server_cpu0, server_cpu1) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    let other_s = host_busy.saturating_sub(server_ticks + (self_cpu1 - self_cpu0)) as f64 / tck;
    println!("  load generator CPU {self_cpu_s:.2} s; other processes on the host {other_s:.2} s");
    cpu_fields.push_str(&format!(" other_cpu_s={other_s:.2}"));
    if let (Some(url), Some(m0)) = (&args.metrics, &metrics0) {
        let m1 = scrape(url).await?;
        let spooled =
            metric(&m1, "ebok_radius_spooled_total") - metric(m0, "ebok_radius_spooled_total");
        let depth = metric(&m1, "ebok_spool_depth");
        let share = if all.answered > 0 {
            spooled * 100.0 / all.answered as f64
        } else {
            0.0
        };
        println!(
            "  ebok: {spooled:.0} answers ({share:.1}%) came after a spool append instead of the stores; spool depth at the end {depth:.0}"
        );
        cpu_fields.push_str(&format!(
            " spooled={spooled:.0} spooled_pct={share:.1} spool_depth={depth:.0}"
        ));
        if args.settle > 0 && depth > 0.0 {
            let settle_start = Instant::now();
            let until = settle_start + Duration::from_secs(args.settle);
            let mut left = depth;
            while left > 0.0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                left = metric(&scrape(url).await?, "ebok_spool_depth");
            }
            let waited = settle_start.elapsed().as_secs_f64();
            let replayed = depth - left;
            print!(
                "  spool replay: {replayed:.0} events in {waited:.1} s ({:.0}/s), {left:.0} left",
                replayed / waited.max(1e-6)
            );
            cpu_fields.push_str(&format!(
                " replay_per_s={:.0} spool_left={left:.0}",
                replayed / waited.max(1e-6)
            ));
            if let Some(a) = server_cpu0 {
                let total_s = (cpu_sum(&pids)? - a) as f64 / tck;
                let per = total_s * 1e6 / all.answered.max(1) as f64;
                let bound = if left > 0.0 {
                    " (lower bound: spool not empty)"
                } else {
                    ""
                };
                print!("; server CPU incl. replay {total_s:.2} s → {per:.1} µs/packet{bound}");
                cpu_fields.push_str(&format!(" cpu_us_per_pkt_incl_replay={per:.1}"));
            }
            println!();
        }
    }
    println!(
        "RESULT name={} pps={pps:.0} answered={} p50_us={p50} p99_us={p99} max_us={max} timeouts={} lost={} unfinished={}{cpu_fields} bench_cpu_s={self_cpu_s:.2} kernel_drops={kernel_drops} window={} duration_s={window_s:.1}",
        args.name, all.answered, all.retransmits, all.lost, all.unfinished, args.window
    );
    Ok(())
}

/// Send a probe Start (and its Stop) until the server answers: the server is up.
async fn wait_ready(target: SocketAddr, secret: &[u8], limit: Duration) -> anyhow::Result<()> {
    let bind: SocketAddr = if target.is_ipv6() {
        "[::1]:0".parse()?
    } else {
        "127.0.0.1:0".parse()?
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(target).await?;
    let sub = Subscriber::new(run_tag(), 0xffff_fff0);
    let until = Instant::now() + limit;
    let now = unix_now();
    let mut id = 0u8;
    for step in [0u32, 1] {
        let attrs = event_attributes(&sub, 0, step, 0, now);
        loop {
            id = id.wrapping_add(1);
            let packet = build_accounting_request(id, secret, &attrs, false);
            sock.send(&packet).await?;
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await {
                Ok(Ok(n)) if reply_ok(&buf[..n], &packet, secret) => break,
                _ if Instant::now() >= until => {
                    bail!("{target} did not answer an Accounting-Request within {limit:?}")
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// An authentic Accounting-Response to `request` (RFC 2866 §3 Response Authenticator).
fn reply_ok(reply: &[u8], request: &[u8], secret: &[u8]) -> bool {
    if reply.len() < HEADER_LEN || reply[0] != CODE_ACCOUNTING_RESPONSE || reply[1] != request[1] {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
    if len < HEADER_LEN || len > reply.len() {
        return false;
    }
    let mut md5 = Md5::new();
    md5.update(&reply[..4]);
    md5.update(&request[4..HEADER_LEN]);
    md5.update(&reply[HEADER_LEN..len]);
    md5.update(secret);
    md5.finalize()[..] == reply[4..HEADER_LEN]
}

async fn run_socket(sock: UdpSocket, plan: Arc<Plan>, streams: usize) -> SocketStats {
    let mut stats = SocketStats {
        latencies_us: Vec::with_capacity(1 << 16),
        ..SocketStats::default()
    };
    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..streams)
        .map(|_| Slot {
            session: 0,
            step: 0,
            sub: None,
            id: 0,
            packet: Vec::new(),
            first_sent: now,
            last_sent: now,
            tries: 0,
            busy: false,
        })
        .collect();
    // Identifier → slot; freed identifiers go to the back of the queue.
    let mut by_id: [Option<u16>; 256] = [None; 256];
    let mut free_ids: std::collections::VecDeque<u8> = (0..=255u8).collect();
    let mut buf = vec![0u8; 4096];

    for (k, slot) in slots.iter_mut().enumerate() {
        if !next_request(&plan, slot, k, &mut by_id, &mut free_ids) {
            break;
        }
        // A failed send is retransmitted after the timeout like a lost datagram.
        let _ = send(&sock, slot, &mut stats).await;
    }

    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if slots.iter().all(|s| !s.busy) {
            break;
        }
        tokio::select! {
            r = sock.recv(&mut buf) => {
                let mut next = r.ok();
                // Drain what is already queued before going back to the scheduler.
                while let Some(n) = next {
                    let t = Instant::now();
                    handle_reply(&plan, &sock, &buf[..n], t, &mut slots, &mut by_id, &mut free_ids, &mut stats).await;
                    next = sock.try_recv(&mut buf).ok();
                }
            }
            _ = tick.tick() => {
                let t = Instant::now();
                if t >= plan.drain_deadline {
                    stats.unfinished += slots.iter().filter(|s| s.busy).count() as u64;
                    break;
                }
                for (k, s) in slots.iter_mut().enumerate() {
                    if !s.busy || t.duration_since(s.last_sent) < plan.timeout {
                        continue;
                    }
                    stats.retransmits += 1;
                    if s.tries >= plan.retries {
                        // Lost: the NAS gives up on this event and goes on with the session.
                        stats.lost += 1;
                        by_id[usize::from(s.id)] = None;
                        free_ids.push_back(s.id);
                        s.busy = false;
                        s.step += 1;
                        if next_request(&plan, s, k, &mut by_id, &mut free_ids) {
                            let _ = send(&sock, s, &mut stats).await;
                        }
                    } else {
                        s.tries += 1;
                        s.last_sent = t;
                        let _ = sock.send(&s.packet).await;
                    }
                }
            }
        }
    }
    stats
}

#[allow(clippy::too_many_arguments)]
async fn handle_reply(
    plan: &Plan,
    sock: &UdpSocket,
    reply: &[u8],
    t: Instant,
    slots: &mut [Slot],
    by_id: &mut [Option<u16>; 256],
    free_ids: &mut std::collections::VecDeque<u8>,
    stats: &mut SocketStats,
) {
    if reply.len() < HEADER_LEN {
        stats.bad_replies += 1;
        return;
    }
    let id = reply[1];
    let Some(k) = by_id[usize::from(id)] else {
        // A late duplicate answer to a retransmitted request: not an error.
        return;
    };
    let k = usize::from(k);
    let s = &mut slots[k];
    if !reply_ok(reply, &s.packet, &plan.secret) {
        stats.bad_replies += 1;
        return;
    }
    stats.answered += 1;
    if t <= plan.deadline {
        stats.answered_in_window += 1;
    }
    stats.last_reply = Some(t);
    stats.latencies_us.push(
        t.duration_since(s.first_sent)
            .as_micros()
            .min(u128::from(u32::MAX)) as u32,
    );
    by_id[usize::from(id)] = None;
    free_ids.push_back(id);
    s.busy = false;
    s.step += 1;
    if s.step >= plan.events_per_session() {
        stats.sessions_done += 1;
    }
    if next_request(plan, s, k, by_id, free_ids) {
        let _ = send(sock, s, stats).await;
    }
}

/// Prepare the slot's next request (next event of its session, or a new session). False when
/// there is nothing more to send.
fn next_request(
    plan: &Plan,
    s: &mut Slot,
    k: usize,
    by_id: &mut [Option<u16>; 256],
    free_ids: &mut std::collections::VecDeque<u8>,
) -> bool {
    if Instant::now() >= plan.deadline || plan.stop.load(Ordering::Relaxed) {
        return false;
    }
    if s.sub.is_none() || s.step >= plan.events_per_session() {
        let i = plan.next_session.fetch_add(1, Ordering::Relaxed);
        if i >= plan.sessions {
            s.sub = None;
            return false;
        }
        s.session = i;
        s.step = 0;
        s.sub = Some(Subscriber::new(plan.tag, i));
    }
    let Some(id) = free_ids.pop_front() else {
        return false;
    };
    let sub = s.sub.as_ref().expect("set above");
    let attrs = event_attributes(sub, s.session, s.step, plan.interims, plan.base_time);
    s.packet = build_accounting_request(id, &plan.secret, &attrs, plan.message_authenticator);
    s.id = id;
    s.tries = 0;
    s.busy = true;
    by_id[usize::from(id)] = Some(k as u16);
    true
}

async fn send(sock: &UdpSocket, s: &mut Slot, stats: &mut SocketStats) -> std::io::Result<()> {
    let t = Instant::now();
    s.first_sent = t;
    s.last_sent = t;
    stats.sent += 1;
    sock.send(&s.packet).await.map(|_| ())
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// CPU ticks of several processes together.
fn cpu_sum(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|&p| proc_cpu_ticks(p)).sum()
}

/// utime + stime of a process (all its threads), in clock ticks.
fn proc_cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// GET a Prometheus text page (plain HTTP/1.0, loopback) → metric name → sum over labels.
async fn scrape(url: &str) -> anyhow::Result<std::collections::HashMap<String, f64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .context("--metrics must be an http:// URL")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream
            .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let body = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .context("metrics endpoint timed out")?
        .with_context(|| format!("fetching {url}"))?;
    let text = String::from_utf8_lossy(&body);
    let mut out = std::collections::HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("ebok_")) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let Ok(v) = value.parse::<f64>() {
            *out.entry(name.to_owned()).or_insert(0.0) += v;
        }
    }
    Ok(out)
}

fn metric(m: &std::collections::HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

/// Busy time of all CPUs of the host (/proc/stat: everything but idle and iowait), in ticks.
fn host_busy_ticks() -> u64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest fields are inside user/nice).
    v.iter().take(8).sum::<u64>() - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0)
}

/// Udp RcvbufErrors of the whole host (/proc/net/snmp): datagrams the kernel dropped because
/// a socket's receive buffer was full.
fn udp_rcvbuf_errors() -> u64 {
    let Ok(snmp) = fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// `getconf CLK_TCK`, 100 when it cannot be asked.
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------------------
// Store benchmarks

/// A Start event of subscriber `i`, as the listener would decode it.
fn start_event(tag: u32, i: u64, at: OffsetDateTime) -> AccountingEvent {
    let sub = Subscriber::new(tag, i);
    // Eight NASes, as a mid-size ISP would have.
    let nas_ip = Ipv4Addr::new(192, 0, 2, 1 + (i % 8) as u8);
    let nas = nas_ip.to_string();
    let mut e = AccountingEvent::new(StatusType::Start, &nas, &sub.session_id, at);
    e.nas_client = format!("bras-{}", 1 + i % 8);
    e.source = IpAddr::V4(nas_ip);
    e.nas_ip_address = Some(nas_ip);
    e.user_name = Some(sub.user_name);
    e.nas_port = Some(15_728_640 + (i as u32 & 0xffff));
    e.nas_port_id = Some("pppoe-vlan100".to_owned());
    e.framed_ip = Some(sub.ipv4);
    e.delegated_ipv6_prefixes = vec![sub.pd56];
    e.calling_station_id = Some(sub.mac);
    e.called_station_id = Some("pppoe-service1".to_owned());
    e.delay_time = Some(0);
    e
}

/// Apply `start_event(tag, i)` for i in 0..n with `concurrency` tasks, printing progress.
async fn fill<S: LiveSessions + Clone>(
    store: S,
    tag: u32,
    n: u64,
    concurrency: usize,
    with_wan64: bool,
) -> anyhow::Result<Duration> {
    let at = OffsetDateTime::now_utc();
    let expires = at + time::Duration::seconds(i64::from(2 * INTERIM + 60));
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let store = store.clone();
        let next = next.clone();
        let done = done.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let mut e = start_event(tag, i, at);
                if with_wan64 {
                    e.framed_ipv6_prefixes = vec![Subscriber::new(tag, i).wan64];
                }
                store
                    .apply(&e, expires)
                    .await
                    .with_context(|| format!("applying Start of session {i}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let report = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let d = done.load(Ordering::Relaxed);
                let s = started.elapsed().as_secs_f64();
                eprintln!("  … {d}/{n} sessions in {s:.0} s ({:.0}/s)", d as f64 / s);
            }
        })
    };
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r? {
            next.store(n, Ordering::Relaxed);
            result = Err(e);
        }
    }
    report.abort();
    result.map(|()| started.elapsed())
}

/// `hash-max-listpack-*` settings of the server, restored on drop of the guard's owner.
async fn redis_config_get(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> anyhow::Result<String> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(key)
        .query_async(conn)
        .await?;
    pair.get(1)
        .cloned()
        .with_context(|| format!("CONFIG GET {key}: no value"))
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .context("INFO memory has no used_memory")?
        .trim()
        .parse()
        .context("used_memory is not a number")
}

async fn delete_prefix(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<u64> {
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    // SCAN ends when the cursor returns to 0; bounded anyway.
    for _ in 0..10_000_000u64 {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(conn).await?;
            deleted += n;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(deleted)
}

async fn redis_memory(args: RedisMemoryArgs) -> anyhow::Result<()> {
    use ebok::sessions::redis::RedisSessions;

    let tag = run_tag();
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("ebok-bench-{tag:08x}:"));
    if prefix.contains(['*', '?', '[', ']', '\\']) {
        bail!("--prefix must not contain glob characters");
    }
    let client = redis::Client::open(args.url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let old_value = redis_config_get(&mut conn, "hash-max-listpack-value").await?;
    let old_entries = redis_config_get(&mut conn, "hash-max-listpack-entries").await?;
    let set = args.listpack_value > 0;
    if set {
        for (k, v) in [
            ("hash-max-listpack-value", args.listpack_value),
            ("hash-max-listpack-entries", args.listpack_entries),
        ] {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg(k)
                .arg(v)
                .query_async(&mut conn)
                .await?;
        }
    }
    let (value, entries) = (
        redis_config_get(&mut conn, "hash-max-listpack-value").await?,
        redis_config_get(&mut conn, "hash-max-listpack-entries").await?,
    );
    println!(
        "== redis-memory: {} sessions, prefix {prefix}, hash-max-listpack-value {value} entries {entries} (server had {old_value}/{old_entries}) ==",
        args.sessions
    );

    let outcome = async {
        let store = RedisSessions::connect(&args.url, &prefix).await?;
        let before = used_memory(&mut conn).await?;
        let took = fill(store.clone(), tag, args.sessions, args.concurrency, false).await?;
        let after = used_memory(&mut conn).await?;
        let live = store.count().await?;
        // Check a sample resolves, so the memory is that of a working map.
        let probe = Subscriber::new(tag, args.sessions / 2);
        let found = store.lookup(IpAddr::V4(probe.ipv4)).await?;
        let v6 = store
            .lookup(IpAddr::V6(Ipv6Addr::from(
                u128::from(probe.pd56.network()) | 0x1234_5678,
            )))
            .await?;
        anyhow::ensure!(
            found.as_ref().map(|s| s.session_id.as_str()) == Some(probe.session_id.as_str())
                && v6.is_some(),
            "lookup of a filled session failed"
        );
        Ok::<_, anyhow::Error>((before, after, took, live))
    }
    .await;

    let deleted = delete_prefix(&mut conn, &prefix).await;
    if set {
        for (k, v) in [
            ("hash-max-listpack-value", &old_value),
            ("hash-max-listpack-entries", &old_entries),
        ] {
            let _: Result<(), _> = redis::cmd("CONFIG")
                .arg("SET")
                .arg(k)
                .arg(v)
                .query_async(&mut conn)
                .await;
        }
    }
    let (before, after, took, live) = outcome?;
    let deleted = deleted?;
    let per = (after.saturating_sub(before)) as f64 / args.sessions as f64;
    println!(
        "  filled in {:.1} s ({:.0} Start/s, {} tasks); live count {live}",
        took.as_secs_f64(),
        args.sessions as f64 / took.as_secs_f64(),
        args.concurrency
    );
    println!(
        "  used_memory {before} → {after} bytes: {per:.1} bytes per live session; {deleted} keys deleted"
    );
    println!(
        "RESULT name=redis-memory sessions={} bytes_per_session={per:.1} used_before={before} used_after={after} fill_s={:.1} listpack_value={value} listpack_entries={entries}",
        args.sessions,
        took.as_secs_f64()
    );
    Ok(())
}

async fn embedded_lookup(args: EmbeddedLookupArgs) -> anyhow::Result<()> {
    use ebok::sessions::embedded::EmbeddedSessions;

    let tag = run_tag();
    let (dir, remove) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("ebok-bench-embedded-{tag:08x}")),
            true,
        ),
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("live.sqlite");
    println!(
        "== embedded-lookup: {} sessions, {} lookups, store {} ==",
        args.sessions,
        args.lookups,
        path.display()
    );
    let outcome = async {
        let store = Arc::new(EmbeddedSessions::open(&path).await?);
        let took = fill(
            ArcStore(store.clone()),
            tag,
            args.sessions,
            args.concurrency,
            true,
        )
        .await?;
        println!(
            "  filled in {:.1} s ({:.0} Start/s, {} tasks); live count {}",
            took.as_secs_f64(),
            args.sessions as f64 / took.as_secs_f64(),
            args.concurrency,
            store.count().await?
        );
        // Single-threaded: one task, one lookup at a time, on this thread.
        let store2 = store.clone();
        let n = args.lookups;
        let sessions = args.sessions;
        let measured = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(lookups(&*store2, tag, sessions, n))
        })
        .await??;
        Ok::<_, anyhow::Error>(measured)
    }
    .await;
    if remove {
        let _ = fs::remove_dir_all(&dir);
    }
    let (v4, v6, misses) = outcome?;
    let mut all: Vec<u32> = v4.iter().chain(v6.iter()).copied().collect();
    all.sort_unstable();
    let line = |l: &[u32]| {
        format!(
            "p50 {} p99 {} max {}",
            percentile(l, 0.5),
            percentile(l, 0.99),
            l.last().copied().unwrap_or(0)
        )
    };
    println!("  IPv4 lookups µs: {}", line(&v4));
    println!(
        "  IPv6 lookups µs (inside /56 or /64 prefixes): {}",
        line(&v6)
    );
    println!(
        "  all {} lookups µs: {}; wrong or missing answers: {misses}",
        all.len(),
        line(&all)
    );
    println!(
        "RESULT name=embedded-lookup sessions={} lookups={} p50_us={} p99_us={} max_us={} v4_p99_us={} v6_p99_us={} wrong={misses}",
        args.sessions,
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
        percentile(&v4, 0.99),
        percentile(&v6, 0.99)
    );
    Ok(())
}

/// Lets `fill` clone a shared store.
struct ArcStore<S>(Arc<S>);

impl<S> Clone for ArcStore<S> {
    fn clone(&self) -> Self {
        ArcStore(self.0.clone())
    }
}

#[async_trait::async_trait]
impl<S: LiveSessions> LiveSessions for ArcStore<S> {
    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<ebok::sessions::Applied, ebok::sessions::StoreError> {
        self.0.apply(event, expires_at).await
    }
    async fn lookup(
        &self,
        ip: IpAddr,
    ) -> Result<Option<ebok::sessions::LiveSession>, ebok::sessions::StoreError> {
        self.0.lookup(ip).await
    }
    async fn get(
        &self,
        nas: &str,
        session_id: &str,
    ) -> Result<Option<ebok::sessions::LiveSession>, ebok::sessions::StoreError> {
        self.0.get(nas, session_id).await
    }
    async fn list(
        &self,
        nas: Option<&str>,
    ) -> Result<Vec<ebok::sessions::LiveSession>, ebok::sessions::StoreError> {
        self.0.list(nas).await
    }
    async fn expire(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<ebok::sessions::ClosedSession>, ebok::sessions::StoreError> {
        self.0.expire(now).await
    }
    async fn count(&self) -> Result<u64, ebok::sessions::StoreError> {
        self.0.count().await
    }
    async fn ping(&self) -> Result<(), ebok::sessions::StoreError> {
        self.0.ping().await
    }
}

/// Random hits: half IPv4 addresses, half IPv6 addresses anywhere inside a session's /56
/// delegated prefix or /64 link prefix. Returns (v4 µs, v6 µs, wrong answers).
async fn lookups<S: LiveSessions + ?Sized>(
    store: &S,
    tag: u32,
    sessions: u64,
    n: u64,
) -> anyhow::Result<(Vec<u32>, Vec<u32>, u64)> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d ^ u64::from(tag));
    let mut v4 = Vec::with_capacity(n as usize / 2 + 1);
    let mut v6 = Vec::with_capacity(n as usize / 2 + 1);
    let mut wrong = 0;
    let run_until = Instant::now() + Duration::from_secs(600);
    for k in 0..n {
        let i = rng.next() % sessions;
        let sub = Subscriber::new(tag, i);
        let ip = match k % 4 {
            0 | 2 => IpAddr::V4(sub.ipv4),
            1 => IpAddr::V6(Ipv6Addr::from(
                u128::from(sub.pd56.network())
                    | (((u128::from(rng.next()) << 8) | u128::from(rng.next() & 0xff))
                        & ((1u128 << 72) - 1)),
            )),
            _ => IpAddr::V6(Ipv6Addr::from(
                u128::from(sub.wan64.network()) | u128::from(rng.next()),
            )),
        };
        let t = Instant::now();
        let found = store.lookup(ip).await?;
        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if found.map(|s| s.session_id) != Some(sub.session_id) {
            wrong += 1;
        }
        if ip.is_ipv4() {
            v4.push(us);
        } else {
            v6.push(us);
        }
        if k % 1024 == 0 && Instant::now() > run_until {
            eprintln!("  lookups stopped after 600 s at {k}");
            break;
        }
    }
    v4.sort_unstable();
    v6.sort_unstable();
    Ok((v4, v6, wrong))
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn free_port() -> anyhow::Result<()> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            println!("{port}");
            return Ok(());
        }
    }
    bail!("no free loopback port found")
}

// ---------------------------------------------------------------------------------------------
// gen-import
// ---------------------------------------------------------------------------------------------

const FIRST_NAMES: [&str; 8] = [
    "Jan",
    "Anna",
    "Piotr",
    "Katarzyna",
    "Tomasz",
    "Małgorzata",
    "Paweł",
    "Agnieszka",
];
const LAST_NAMES: [&str; 8] = [
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
];
const STREETS: [&str; 6] = [
    "ul. Internetowa",
    "ul. Floriańska",
    "ul. Długa",
    "ul. Karmelicka",
    "os. Centrum",
    "al. Pokoju",
];
const TARIFFS: [(&str, i64, u32, u32); 3] = [
    ("Światłowód 150 Mb/s", 5000, 150_000, 30_000),
    ("Światłowód 300 Mb/s", 6900, 300_000, 60_000),
    ("Światłowód 600 Mb/s", 8900, 600_000, 100_000),
];

/// Writes the import files as a stream: memory does not depend on `--subscribers`.
fn gen_import(args: GenImportArgs) -> anyhow::Result<()> {
    use ebok::store::money::{LineAmounts, Money, Quantity, VatRate};
    use ebok::store::validate::Pesel;
    use std::io::{BufWriter, Write};
    use time::{Date, Month};

    if !(1..=12).contains(&args.months) {
        bail!("--months must be 1..=12");
    }
    fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let open = |name: &str| -> anyhow::Result<BufWriter<fs::File>> {
        let path = args.dir.join(name);
        let f = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(BufWriter::with_capacity(1 << 16, f))
    };
    let mut subs = open("subscribers.csv")?;
    let mut contracts = open("contracts.csv")?;
    let mut pppoe = open("pppoe-accounts.csv")?;
    let mut ips = open("ips.csv")?;
    let mut invoices = open("invoices.csv")?;
    let mut payments = open("payments.csv")?;
    writeln!(
        subs,
        "ext_id;kind;first_name;last_name;company_name;pesel;nip;home_street;home_postcode;\
         home_city;correspondence_street;correspondence_postcode;correspondence_city;phone;\
         email;bank_account"
    )?;
    writeln!(
        contracts,
        "ext_id;subscriber_ext_id;number;starts_on;ends_on;monthly_fee;tariff;download_kbps;\
         upload_kbps;installation_street;installation_postcode;installation_city;status"
    )?;
    writeln!(pppoe, "ext_id;contract_ext_id;login;password")?;
    writeln!(ips, "ext_id;contract_ext_id;address;kind;activated_on")?;
    writeln!(
        invoices,
        "ext_id;subscriber_ext_id;number;issued_on;sold_on;due_on;net;vat;gross;status;\
         ksef_number;line_position;line_name;line_unit;line_quantity;line_unit_net;line_net;\
         line_vat_rate;line_vat;line_gross"
    )?;
    writeln!(
        payments,
        "ext_id;subscriber_ext_id;paid_on;amount;title;method"
    )?;
    let epoch = Date::from_calendar_date(1950, Month::January, 1)?;
    let first_month = 13 - args.months;
    for i in 0..args.subscribers {
        let n = u64::from(i) + 1;
        let birth = epoch + time::Duration::days(i64::from(i % 20_000));
        let female = i % 2 == 1;
        let pesel = Pesel::from_parts(birth, (i / 20_000 % 1000) as u16, female)
            .context("PESEL out of range")?;
        let first = FIRST_NAMES[(i % 8) as usize];
        let last = LAST_NAMES[(i / 8 % 8) as usize];
        let last = if female {
            last.replace("ski", "ska")
        } else {
            last.to_owned()
        };
        let street = format!("{} {}", STREETS[(i % 6) as usize], i % 150 + 1);
        let postcode = format!("30-{:03}", i % 1000);
        writeln!(
            subs,
            "K-{n};person;{first};{last};;{};;{street};{postcode};Kraków;;;;+48 12 {:03} {:02} {:02};\
             abonent{n}@example.pl;",
            pesel.as_str(),
            n / 10_000 % 1000,
            n / 100 % 100,
            n % 100
        )?;
        let (tariff, fee, down, up) = TARIFFS[(i % 3) as usize];
        let starts = Date::from_calendar_date(2020 + (i % 5) as i32, Month::March, 1)?;
        writeln!(
            contracts,
            "C-{n};K-{n};UM/{n:06};{starts};;{};{tariff};{down};{up};{street};{postcode};\
             Kraków;active",
            Money::from_grosze(fee).to_decimal_string()
        )?;
        writeln!(pppoe, "P-{n};C-{n};abonent{n};haslo-{n:x}")?;
        writeln!(
            ips,
            "IP-{n};C-{n};10.{}.{}.{};static;{starts}",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        )?;
        let (gross_fee, rate) = (Money::from_grosze(fee), VatRate::R23);
        // The monthly fee is gross; the line is written net-based from the carved-out net.
        let (unit_net, _) = rate.split_gross(gross_fee);
        let a = LineAmounts::from_net(Quantity::from_milli(1000), unit_net, rate);
        for m in first_month..=12u8 {
            let month = Month::try_from(m)?;
            let issued = Date::from_calendar_date(2025, month, 1)?;
            let due = issued + time::Duration::days(14);
            let (net, vat, gross) = (
                a.net.to_decimal_string(),
                a.vat.to_decimal_string(),
                a.gross.to_decimal_string(),
            );
            writeln!(
                invoices,
                "I-{n}-{m};K-{n};FV/2025/{m:02}/{n:06};{issued};{issued};{due};{net};{vat};\
                 {gross};paid;;1;Abonament {tariff} – {m:02}/2025;mies.;1;{};{net};23;{vat};\
                 {gross}",
                unit_net.to_decimal_string()
            )?;
            writeln!(
                payments,
                "Y-{n}-{m};K-{n};{};{gross};Opłata za FV/2025/{m:02}/{n:06};przelew",
                issued + time::Duration::days(10)
            )?;
        }
    }
    for mut w in [subs, contracts, pppoe, ips, invoices, payments] {
        w.flush()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The panel's reference and password cost (scripts/bench-web.sh)
// ---------------------------------------------------------------------------------------------

/// The smallest useful axum server: one route, a static body, no middleware. Runs until
/// killed.
async fn hello(args: HelloArgs) -> anyhow::Result<()> {
    async fn handler() -> &'static str {
        "Hello, World!"
    }
    let app = axum::Router::new().route("/", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!("hello-world on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Hash one password with `ebok::web::passwords::hash`, then verify it `--n` times in a row
/// with `verify` (each on tokio's blocking pool, as the login handler does, but never two at
/// once): mean and p99 per verification, and what one core sustains.
async fn argon2_cost(args: Argon2Args) -> anyhow::Result<()> {
    use ebok::web::passwords::{hash, verify};
    let password = "Wiosna nad Wisłą 7";
    let stored = hash(password).await?;
    let params = stored.split('$').nth(3).unwrap_or("?").to_owned();
    anyhow::ensure!(
        verify(password, Some(&stored)).await?,
        "verify refused the password"
    );
    let n = args.n.max(1);
    let mut micros = Vec::with_capacity(n as usize);
    let cpu0 = proc_cpu_ticks(std::process::id())?;
    let t0 = Instant::now();
    for i in 0..n {
        // Alternate right and wrong passwords: both take the full cost.
        let given = if i % 2 == 0 { password } else { "zły 1234567" };
        let t = Instant::now();
        let ok = verify(given, Some(&stored)).await?;
        micros.push(t.elapsed().as_micros() as u32);
        anyhow::ensure!(ok == (i % 2 == 0), "wrong verification result");
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (proc_cpu_ticks(std::process::id())? - cpu0) as f64 / clock_ticks_per_second();
    micros.sort_unstable();
    let mean_ms = micros.iter().map(|&m| f64::from(m)).sum::<f64>() / f64::from(n) / 1000.0;
    let p99_ms = f64::from(percentile(&micros, 0.99)) / 1000.0;
    println!(
        "RESULT argon2 params={params} n={n} mean_ms={mean_ms:.1} p99_ms={p99_ms:.1} \
         per_core_per_s={:.1} cpu_ms_per_verify={:.1}",
        f64::from(n) / wall,
        cpu * 1000.0 / f64::from(n),
    );
    Ok(())
}

async fn demo_contract(args: DemoContractArgs) -> anyhow::Result<()> {
    let db = ebok::store::Db::connect(&args.database_url)
        .await
        .context("opening the database")?;
    let (_, contract) = ebok::store::subscribers::subscriber_by_login(&db, ebok::demo::DEMO_LOGIN)
        .await?
        .context("the demo data set is not loaded")?;
    println!("{}", contract.number);
    Ok(())
}

/// Jan Kowalski (the demo's live line) and his subscriber record.
async fn demo_jan(
    url: &str,
) -> anyhow::Result<(ebok::store::Db, ebok::store::subscribers::Subscriber)> {
    let db = ebok::store::Db::connect(url)
        .await
        .context("opening the database")?;
    let (sub, _) = ebok::store::subscribers::subscriber_by_login(&db, ebok::demo::DEMO_LOGIN)
        .await?
        .context("the demo data set is not loaded")?;
    Ok((db, sub))
}

/// Monthly invoices (subscription 79.99 zł and a router 9.99 zł, 23 % VAT, issued on the 1st,
/// due on the 15th, paid on the 10th) for the months before the demo's own twelve, back to
/// `years` years before the current month; idempotent (fixed ext ids).
async fn seed_billing(args: SeedBillingArgs) -> anyhow::Result<()> {
    use ebok::store::billing::{
        upsert_invoices, upsert_payments, InvoiceLine, InvoiceRecord, InvoiceStatus, PaymentRecord,
    };
    use ebok::store::money::{LineAmounts, Money, Quantity, VatRate};
    let (db, jan) = demo_jan(&args.database_url).await?;
    let today = OffsetDateTime::now_utc().date();
    let first = today.replace_day(1)?;
    let line = |position: u32, name: String, grosze: i64| {
        let unit_gross = Money::from_grosze(grosze);
        let a = LineAmounts::from_gross(Quantity::ONE, unit_gross, VatRate::R23);
        InvoiceLine {
            position,
            name,
            unit: "mies.".into(),
            quantity: Quantity::ONE,
            unit_net: VatRate::R23.split_gross(unit_gross).0,
            net: a.net,
            vat_rate: VatRate::R23,
            vat: a.vat,
            gross: a.gross,
        }
    };
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    for months_ago in 12..i64::from(args.years.max(1)) * 12 {
        // The 1st of the month `months_ago` months before this one.
        let total =
            i64::from(first.year()) * 12 + i64::from(u8::from(first.month())) - 1 - months_ago;
        let (y, m) = (
            i32::try_from(total.div_euclid(12))?,
            u8::try_from(total.rem_euclid(12) + 1)?,
        );
        let issued = time::Date::from_calendar_date(y, m.try_into()?, 1)?;
        let lines = vec![
            line(1, format!("Abonament internet – {m:02}/{y}"), 7999),
            line(2, format!("Dzierżawa routera – {m:02}/{y}"), 999),
        ];
        let gross: Money = lines.iter().map(|l| l.gross).sum();
        let number = format!("FV/BENCH/{y}/{m:02}");
        let key = format!("{}-{y}-{m:02}", jan.ext_id);
        payments.push(PaymentRecord {
            ext_id: format!("bench-pay-{key}"),
            subscriber_ext_id: jan.ext_id.clone(),
            paid_on: issued + time::Duration::days(9),
            amount: gross,
            title: format!("Faktura {number}"),
            method: "przelew".into(),
        });
        invoices.push(InvoiceRecord {
            ext_id: format!("bench-inv-{key}"),
            subscriber_ext_id: jan.ext_id.clone(),
            number,
            issued_on: issued,
            sold_on: issued,
            due_on: issued + time::Duration::days(14),
            net: lines.iter().map(|l| l.net).sum(),
            vat: lines.iter().map(|l| l.vat).sum(),
            gross,
            status: InvoiceStatus::Paid,
            ksef_number: None,
            lines,
        });
    }
    let mut tx = db.begin().await?;
    upsert_invoices(&mut tx, &invoices, &[])
        .await
        .map_err(|(i, e)| anyhow::anyhow!("invoice {i}: {e}"))?;
    upsert_payments(&mut tx, &payments)
        .await
        .map_err(|(i, e)| anyhow::anyhow!("payment {i}: {e}"))?;
    tx.commit().await?;
    println!(
        "seeded {} invoices and {} payments for {}",
        invoices.len(),
        payments.len(),
        jan.display_name()
    );
    Ok(())
}

/// Build the document and the PDF of Jan's newest invoice `n` times, as the
/// `/e-faktury/{id}?pdf` handler does (minus the blocking-pool hop and the HTTP answer).
async fn pdf_cost(args: PdfArgs) -> anyhow::Result<()> {
    use ebok::store::billing::{invoice_for, invoices_of};
    use ebok::web::billing::{invoice_doc, invoice_pdf};
    use ebok::web::i18n::{Lang, Tr};
    let (db, jan) = demo_jan(&args.database_url).await?;
    let newest = invoices_of(&db, jan.id, ebok::store::repo::Page { number: 1, size: 1 })
        .await?
        .items
        .into_iter()
        .next()
        .context("Jan has no invoice")?;
    let (inv, lines) = invoice_for(&db, jan.id, newest.id)
        .await?
        .context("the newest invoice vanished")?;
    let t = Tr::new(Lang::Pl);
    let isp = ebok::config::IspConfig {
        name: ebok::demo::ISP_NAME.into(),
        ..Default::default()
    };
    let contracts = ebok::store::subscribers::contracts_of(&db, jan.id).await?;
    let today = OffsetDateTime::now_utc().date();
    let one = || -> anyhow::Result<usize> {
        let doc = invoice_doc(t, &isp, &jan, &contracts, &inv, &lines, today)?;
        Ok(invoice_pdf(t, &doc, None)?.len())
    };
    let bytes = one()?; // warm-up: font parsing and the like happen once
    let n = args.n.max(1);
    let mut micros = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t0 = Instant::now();
        one()?;
        micros.push(t0.elapsed().as_micros() as u32);
    }
    micros.sort_unstable();
    let mean_ms = micros.iter().map(|&m| f64::from(m)).sum::<f64>() / f64::from(n) / 1000.0;
    let p99_ms = f64::from(percentile(&micros, 0.99)) / 1000.0;
    println!(
        "RESULT pdf invoice={} lines={} bytes={bytes} n={n} mean_ms={mean_ms:.2} p99_ms={p99_ms:.2}",
        inv.number,
        lines.len()
    );
    Ok(())
}
