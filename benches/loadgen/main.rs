//! `ebok-bench`: the load generator and store benchmarks of ebok (a benchmark, not a timed
//! test). `scripts/bench.sh` runs every part in one go against ebok and FreeRADIUS.
//!
//! * `load`: signed Accounting-Request streams (Start, Interim-Updates, Stop per session) over
//!   UDP with a window of outstanding requests → packets/s, reply latency, server CPU/packet.
//! * `redis-memory`: bytes of Redis memory per live session (`INFO memory`).
//! * `embedded-lookup`: lookup latency of the embedded store.
//! * `free-port`: a free loopback port, for the script.
//! * `gen-import`: import files of a large ISP, for `scripts/bench-import.sh`.
//! * `hello`: a hello-world axum handler, the reference for the panel's requests/s in
//!   `scripts/bench-web.sh` (the panel itself is measured with wrk).
//! * `argon2`: the cost of one password verification with ebok's own argon2id parameters.
//! * `demo-contract`: the demo subscriber's contract number, for registering in the script.
//! * `billing-history`: give the demo's Jan Kowalski ten years of monthly invoices and payments
//!   (Płatności of a long-standing subscriber).
//! * `pdf`: the time to generate one invoice's PDF.
//! * `capture`: signed Accounting-Requests at a fixed rate, answers ignored, for
//!   `scripts/bench-capture.sh` (passive capture beside the UDP listener).
//! * `attribution`: "who held this IP at T" on a large session history (module
//!   `attribution.rs`).
//! * `login-burst`: many panel logins at once; peak memory and `/faq` latency meanwhile
//!   (module `login_burst.rs`).

mod attribution;
mod capture;
mod gen_import;
mod load;
mod login_burst;
mod measure;
mod panel;
mod stores;
mod synthetic;

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

use self::capture::*;
use self::gen_import::*;
use self::load::*;
use self::measure::*;
use self::panel::*;
use self::stores::*;
use self::synthetic::*;

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
    /// Fill the shared live-session log with N sessions (a Start and some Interim-Updates
    /// each) and report Redis memory per live session.
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
    BillingHistory(BillingHistoryArgs),
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
struct BillingHistoryArgs {
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
    /// came from the journal and how deep it is.
    #[arg(long)]
    metrics: Option<String>,
    /// With --metrics: after the run, wait up to this many seconds for the journal to drain,
    /// and count the server's CPU until then too (the deferred work of journaled events).
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
    /// Seconds of log Redis keeps: ebok's retention for 5-minute Interim-Updates (an
    /// expiry window of 2 × 300 + 60 s, and 30 s more).
    #[arg(long, default_value_t = 690)]
    retention: u64,
    /// Streams of the log.
    #[arg(long, default_value_t = 16)]
    streams: usize,
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
        Command::BillingHistory(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(billing_history(args)),
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
