//! The `ebok` command: parses the command line, loads the configuration and calls the
//! library.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ebok::config::{CliOverrides, Config, StoreKind};
use ebok::sessions::LiveSession;
use tokio::sync::watch;

/// mimalloc instead of glibc's malloc: the accounting path allocates and frees across
/// threads (listener, journal, store writer), where glibc spent about a quarter of the
/// server's CPU (`perf`, docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SQLite's own allocations on mimalloc too, and without SQLite's memory statistics (each of
/// its mallocs and frees took a global mutex to count them). In `perf` of the replay, glibc's
/// malloc and SQLite's mutexes were ≈ 15 % of the SQLite threads. Must run before SQLite is
/// first used (it is the first thing `main` does); a refusal leaves SQLite's defaults.
mod sqlite_alloc {
    use std::ffi::{c_int, c_void};

    use libsqlite3_sys as ffi;

    unsafe extern "C" {
        /// In the mimalloc library already linked (the `-sys` crate declares it only with
        /// its `extended` feature).
        fn mi_usable_size(p: *const c_void) -> usize;
    }

    unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
        // SQLite asks for 8-byte alignment; mimalloc's minimum is 16.
        unsafe { libmimalloc_sys::mi_malloc(n.max(0) as usize) }
    }
    unsafe extern "C" fn free(p: *mut c_void) {
        unsafe { libmimalloc_sys::mi_free(p) }
    }
    unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        unsafe { libmimalloc_sys::mi_realloc(p, n.max(0) as usize) }
    }
    unsafe extern "C" fn size(p: *mut c_void) -> c_int {
        let n = unsafe { mi_usable_size(p) };
        c_int::try_from(n).unwrap_or(c_int::MAX)
    }
    unsafe extern "C" fn roundup(n: c_int) -> c_int {
        n.max(0).saturating_add(7) & !7
    }
    unsafe extern "C" fn init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn shutdown(_: *mut c_void) {}

    pub fn install() {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: called once, before any SQLite connection exists (nothing else runs yet);
        // SQLite copies the methods; both options take the argument types given here.
        let (memstatus, malloc) = unsafe {
            (
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
                ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_MALLOC,
                    &methods as *const ffi::sqlite3_mem_methods,
                ),
            )
        };
        if memstatus != ffi::SQLITE_OK || malloc != ffi::SQLITE_OK {
            eprintln!("ebok: SQLite kept its default allocator ({memstatus}, {malloc})");
        }
    }
}

#[derive(Parser)]
#[command(
    name = "ebok",
    version,
    about = "RADIUS accounting server and subscriber self-service panel for PPPoE ISPs"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
struct Global {
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, short, global = true, env = "EBOK_CONFIG")]
    config: Option<PathBuf>,
    /// RADIUS accounting listen address (repeatable); overrides radius.listen.
    #[arg(long = "radius-listen", global = true)]
    radius_listen: Vec<SocketAddr>,
    /// Prometheus metrics listen address; overrides metrics.listen.
    #[arg(long = "metrics-listen", global = true)]
    metrics_listen: Option<SocketAddr>,
    /// Panel and ops API listen address; overrides web.listen.
    #[arg(long = "web-listen", global = true)]
    web_listen: Option<SocketAddr>,
    /// Live-session store: embedded or redis; overrides sessions.store.
    #[arg(long, global = true, value_parser = parse_store)]
    store: Option<StoreKind>,
    /// Redis URL; overrides sessions.redis_url (and a redis_cluster or redis_sentinel).
    #[arg(long = "redis-url", global = true)]
    redis_url: Option<String>,
    /// Database URL (sqlite://PATH or postgres://…); overrides database.url.
    #[arg(long = "database-url", global = true)]
    database_url: Option<String>,
    /// State directory; overrides state.dir.
    #[arg(long = "state-dir", global = true)]
    state_dir: Option<PathBuf>,
    /// Log filter; overrides log.level.
    #[arg(long = "log-level", global = true)]
    log_level: Option<String>,
    /// Print times in UTC instead of Europe/Warsaw.
    #[arg(long, global = true)]
    utc: bool,
}

fn parse_store(s: &str) -> Result<StoreKind, String> {
    match s {
        "embedded" => Ok(StoreKind::Embedded),
        "redis" => Ok(StoreKind::Redis),
        _ => Err(format!("'{s}': expected embedded or redis")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the accounting server (the default command).
    Run {
        /// Load the demo ISP and make 127.0.0.1 Jan Kowalski's live line.
        #[arg(long)]
        demo: bool,
    },
    /// Load the demo ISP data set into the database (idempotent).
    Demo,
    /// Import one file from the billing system (CSV or JSON Lines; see docs/import.md).
    /// One transaction per file: a bad row imports nothing and names file, line, column.
    Import {
        /// subscribers, contracts, pppoe-accounts, ips, invoices, payments, services, news or faq
        kind: ebok::ops::import::ImportKind,
        file: PathBuf,
    },
    /// Print or check configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Operators' API helpers.
    Ops {
        #[command(subcommand)]
        command: OpsCommand,
    },
    /// Query the live-session map.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Outage and maintenance notices shown to the subscribers whose line they touch.
    Notices {
        #[command(subcommand)]
        command: ebok::notices::NoticesCommand,
    },
    /// Who held an IP address at a time (live map and session history), or with --from/--to
    /// every session of the address (or of all addresses) in a period. Audited.
    Attribution {
        /// IPv4 or IPv6 address; optional with --from/--to (then: all addresses).
        ip: Option<IpAddr>,
        /// RFC 3339 time or Unix seconds; default now.
        #[arg(conflicts_with_all = ["from", "to"])]
        time: Option<String>,
        /// Start of the period (RFC 3339 or Unix seconds).
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// End of the period, inclusive.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Print the period as CSV (the API's export) instead of a table.
        #[arg(long, requires = "from")]
        csv: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the commented example configuration.
    Example,
    /// Validate the configuration (file, environment and flags) and report file, key, reason.
    Check,
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Make a new API token: prints the token (give it to the client) and the line for
    /// `[ops] tokens` (only its SHA-256 is stored).
    Token { name: String },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Show the live session holding an IPv4 address or an address inside an IPv6 prefix.
    Lookup { ip: IpAddr },
    /// List live sessions (every filter given must hold).
    List {
        /// Only sessions of this NAS (its NAS key or configured entry name).
        #[arg(long)]
        nas: Option<String>,
        /// Only this PPPoE login.
        #[arg(long)]
        login: Option<String>,
        /// Only the PPPoE logins of this subscriber (billing id).
        #[arg(long)]
        subscriber: Option<String>,
        /// Only addresses inside (IPv4) or prefixes overlapping (IPv6) this prefix.
        #[arg(long)]
        prefix: Option<ipnet::IpNet>,
        /// Only stale sessions: no update for over half their expiry window.
        #[arg(long)]
        stale: bool,
    },
    /// Live and stale sessions and the newest update per NAS entry.
    Nas,
    /// Ask the NAS to change a live session (RFC 5176 CoA-Request), e.g.
    /// `ebok sessions coa 10.0.0.1 81a0002f Mikrotik-Rate-Limit=10M/20M`.
    Coa {
        nas: String,
        session_id: String,
        /// ATTRIBUTE=VALUE, named as in the RADIUS dictionaries (repeatable).
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Ask the NAS to end a live session (RFC 5176 Disconnect-Request to its CoA port).
    Disconnect {
        /// The session's NAS (as `sessions list` shows it).
        nas: String,
        /// Its Acct-Session-Id.
        session_id: String,
    },
}

impl Global {
    fn overrides(&self) -> CliOverrides {
        CliOverrides {
            radius_listen: self.radius_listen.clone(),
            metrics_listen: self.metrics_listen,
            web_listen: self.web_listen,
            store: self.store,
            redis_url: self.redis_url.clone(),
            database_url: self.database_url.clone(),
            state_dir: self.state_dir.clone(),
            log_level: self.log_level.clone(),
        }
    }

    fn load(&self) -> Result<Config, ebok::config::ConfigError> {
        Config::load(self.config.as_deref(), std::env::vars(), &self.overrides())
    }
}

/// Every configuration problem, one per line; exit status 2.
fn config_errors(e: &ebok::config::ConfigError) -> ExitCode {
    let n = e.all().count();
    eprintln!(
        "ebok: {}:",
        if n == 1 {
            "configuration error".to_owned()
        } else {
            format!("{n} configuration errors")
        }
    );
    for line in e.to_string().lines() {
        eprintln!("  {}", ebok::terminal::safe(line));
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    sqlite_alloc::install();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run { demo: false });
    if let Command::Config {
        command: ConfigCommand::Example,
    } = command
    {
        print!("{}", ebok::config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    if let Command::Ops {
        command: OpsCommand::Token { name },
    } = &command
    {
        let (token, digest) = ebok::ops::api::new_token();
        println!("token for {name}: {token}");
        println!("add to [ops] in ebok.toml:");
        println!("tokens = [{{ name = {name:?}, sha256 = \"{digest}\" }}]");
        return ExitCode::SUCCESS;
    }
    let config = match cli.global.load() {
        Ok(c) => c,
        Err(e) => return config_errors(&e),
    };
    let file = cli
        .global
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ebok::config::NO_FILE.to_owned());
    let mut config = config;
    config.demo = matches!(command, Command::Run { demo: true });
    if matches!(
        command,
        Command::Run { .. }
            | Command::Config {
                command: ConfigCommand::Check
            }
    ) {
        if let Err(e) = config.validate_for_serving(&file) {
            return config_errors(&e);
        }
    }
    if let Command::Config {
        command: ConfigCommand::Check,
    } = command
    {
        for (key, why) in config.warnings() {
            eprintln!("warning: {file}: {key} {why}");
        }
        println!(
            "{file}: configuration is valid ({}, store {}, database {})",
            ebok::terminal::count(config.nas_entries().len(), "NAS entry", "NAS entries"),
            match config.sessions.store {
                StoreKind::Embedded => "embedded",
                StoreKind::Redis => "redis",
            },
            ebok::config::redact_url(&config.database.url)
        );
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log.level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ebok: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Run { demo } => {
                run(
                    config,
                    cli.global.config.clone(),
                    cli.global.overrides(),
                    demo,
                )
                .await
            }
            Command::Import { kind, file } => {
                let db = ebok::store::Db::connect(&config.database.url)
                    .await
                    .context("opening the database (database.url)")?;
                let result = {
                    let mut bar = ebok::ops::import::progress_bar();
                    ebok::ops::import::import_file(&db, kind, &file, Some(&mut bar)).await
                };
                match result {
                    Ok(s) => {
                        println!(
                            "{kind}: {} inserted, {} updated, {} unchanged",
                            s.inserted, s.updated, s.unchanged
                        );
                        Ok(())
                    }
                    Err(e) => {
                        eprintln!("ebok: {e}\nnothing was imported");
                        std::process::exit(1);
                    }
                }
            }
            Command::Demo => {
                let db = ebok::store::Db::connect(&config.database.url)
                    .await
                    .context("opening the database (database.url)")?;
                let summary = ebok::demo::load(&db, ebok::demo::warsaw_today()).await?;
                println!("demo ISP loaded: {summary}");
                let published = ebok::demo::load_documents(&db).await?;
                println!("demo documents published: {published}");
                if let Some(email) = ebok::demo::load_reminder_account(&db).await? {
                    println!("demo panel account for payment reminders: {email}");
                }
                Ok(())
            }
            Command::Sessions { command } => sessions(config, command, cli.global.utc).await,
            Command::Notices { command } => {
                let db = ebok::store::Db::connect(&config.database.url)
                    .await
                    .context("opening the database (database.url)")?;
                let actor = format!("cli:{}", cli_user());
                let mut out = std::io::stdout().lock();
                ebok::notices::run(&db, &actor, command, cli.global.utc, &mut out).await
            }
            Command::Attribution {
                ip,
                time,
                from,
                to,
                csv,
            } => {
                use ebok::ops::api::attribution::CliQuery;
                let query = match (ip, from, to) {
                    (_, Some(from), Some(to)) => CliQuery::Period { ip, from, to, csv },
                    (Some(ip), _, _) => CliQuery::At { ip, at: time },
                    _ => anyhow::bail!("give an IP address, or a period with --from and --to"),
                };
                let live = ebok::server::open_live(&config, ebok::server::LiveRole::Reader).await?;
                let db = ebok::store::Db::connect(&config.database.url)
                    .await
                    .context("opening the database (database.url)")?;
                let actor = format!("cli:{}", cli_user());
                let mut out = std::io::stdout().lock();
                ebok::ops::api::attribution::cli(
                    live.as_ref(),
                    &db,
                    &actor,
                    query,
                    cli.global.utc,
                    &mut out,
                )
                .await?;
                Ok(())
            }
            Command::Config { .. } | Command::Ops { .. } => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ebok: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    mut config: Config,
    config_path: Option<PathBuf>,
    overrides: CliOverrides,
    demo: bool,
) -> anyhow::Result<()> {
    if demo && config.isp.name.is_empty() {
        config.isp = ebok::demo::isp();
    }
    if demo {
        // The demo's line is the browser on this machine.
        config.sessions.loopback_lines = true;
        // Payment reminders on, unless configured, with days that remind a debtor today.
        config
            .reminders
            .get_or_insert_with(|| ebok::demo::reminders_config(ebok::demo::warsaw_today()));
    }
    let notifier = std::sync::Arc::new(ebok::systemd::Notifier::from_env());
    notifier.status("starting: binding listeners, opening the stores");
    let listeners = ebok::server::Listeners::bind(&config).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (running, done) = ebok::server::start(config, listeners, shutdown_rx.clone()).await?;
    if demo {
        ebok::server::start_demo(&running, shutdown_rx.clone()).await?;
    }
    let served = ebok::systemd::serve(&running, notifier, shutdown_rx, || {
        ebok::server::reload(&running, config_path.as_deref(), &overrides)
    })
    .await;
    let _ = shutdown_tx.send(true);
    done.await.context("waiting for shutdown")?;
    served
}

async fn sessions(config: Config, command: SessionsCommand, utc: bool) -> anyhow::Result<()> {
    use ebok::terminal::{count, safe, time};
    let live = ebok::server::open_live(&config, ebok::server::LiveRole::Reader).await?;
    match command {
        SessionsCommand::Lookup { ip } => {
            let db = ebok::store::Db::connect(&config.database.url)
                .await
                .context("opening the database (database.url)")?;
            match ebok::identify::identify(live.as_ref(), &db, ip).await? {
                Some(found) => {
                    print_session(&found.session, utc);
                    match &found.holder {
                        Some((subscriber, contract)) => {
                            println!(
                                "subscriber   {} (billing id {})",
                                safe(&subscriber.display_name()),
                                safe(&subscriber.ext_id)
                            );
                            println!(
                                "contract     {} ({}, {})",
                                safe(&contract.number),
                                safe(&contract.tariff),
                                contract.monthly_fee
                            );
                        }
                        None => println!("subscriber   - (PPPoE login not in the subscriber data)"),
                    }
                }
                None => {
                    println!("{ip}: no live session holds this address");
                    std::process::exit(1);
                }
            }
        }
        SessionsCommand::Disconnect { nas, session_id } => {
            control(&config, live.as_ref(), &nas, &session_id, &[]).await?
        }
        SessionsCommand::Coa {
            nas,
            session_id,
            attributes,
        } => {
            let dict = ebok::server::dictionary(&config)?;
            let mut encoded = Vec::new();
            for a in &attributes {
                let (name, value) = a
                    .split_once('=')
                    .with_context(|| format!("{a:?}: expected ATTRIBUTE=VALUE"))?;
                encoded.push(dict.encode_attribute(name.trim(), value)?);
            }
            control(&config, live.as_ref(), &nas, &session_id, &encoded).await?
        }
        SessionsCommand::List {
            nas,
            login,
            subscriber,
            prefix,
            stale,
        } => {
            let mut filter = ebok::sessions::filter::SessionFilter {
                nas: nas.clone(),
                login,
                logins: None,
                prefix,
                stale,
            };
            if let Some(ext_id) = subscriber {
                let db = ebok::store::Db::connect(&config.database.url)
                    .await
                    .context("opening the database (database.url)")?;
                let Some(s) = ebok::store::subscribers::subscriber_by_ext_id(&db, &ext_id).await?
                else {
                    anyhow::bail!("no subscriber with billing id {ext_id:?}");
                };
                let accounts =
                    ebok::store::subscribers::pppoe_accounts_of_subscriber(&db, s.id).await?;
                filter.logins = Some(accounts.into_iter().map(|a| a.login).collect());
            }
            let now = time::OffsetDateTime::now_utc();
            let by_key = nas.as_deref().filter(|n| n.parse::<IpAddr>().is_ok());
            let all = filter.apply(live.list(by_key).await?, now);
            if !all.is_empty() {
                println!("NAS\tSESSION\tLOGIN\tIPV4\tIPV6\tSTARTED\tSTATE");
            }
            for s in &all {
                let v6 = s
                    .ipv6_prefixes
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    safe(&s.nas),
                    safe(&s.session_id),
                    safe(s.user_name.as_deref().unwrap_or("-")),
                    s.framed_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if v6.is_empty() { "-".into() } else { v6 },
                    time(s.started_at, utc),
                    if ebok::sessions::filter::is_stale(s, now) {
                        "stale"
                    } else {
                        "ok"
                    }
                );
            }
            println!("{}", count(all.len(), "live session", "live sessions"));
        }
        SessionsCommand::Nas => {
            let now = time::OffsetDateTime::now_utc();
            let mut counts = ebok::sessions::filter::per_nas(&live.list(None).await?, now);
            let table = config.nas_table().map_err(anyhow::Error::msg)?;
            println!("NAS\tSESSIONS\tSTALE\tNEWEST UPDATE");
            let show = |name: &str, c: Option<ebok::sessions::filter::NasSessions>| {
                let (sessions, stale, newest) =
                    c.map_or((0, 0, None), |c| (c.sessions, c.stale, c.newest_update));
                println!(
                    "{}\t{sessions}\t{stale}\t{}",
                    safe(name),
                    newest.map_or_else(|| "-".to_owned(), |t| time(t, utc))
                );
            };
            for (client, _) in table.clients() {
                show(&client.name, counts.remove(&client.name));
            }
            for (name, c) in counts {
                show(&format!("{name} (not configured)"), Some(c));
            }
        }
    }
    Ok(())
}

/// Disconnect (no attributes) or CoA a live session through its NAS; exits 1 on NAK or no
/// answer.
async fn control(
    config: &Config,
    live: &dyn ebok::sessions::LiveSessions,
    nas: &str,
    session_id: &str,
    attributes: &[Vec<u8>],
) -> anyhow::Result<()> {
    use ebok::radius::coa::{error_cause_name, Action, CoaClient, ControlOutcome};
    let action = if attributes.is_empty() {
        Action::Disconnect
    } else {
        Action::Change
    };
    let Some(session) = live.get(nas, session_id).await? else {
        println!(
            "{} {}: no such live session",
            ebok::terminal::safe(nas),
            ebok::terminal::safe(session_id)
        );
        std::process::exit(1);
    };
    let table = std::sync::Arc::new(config.nas_table().map_err(anyhow::Error::msg)?);
    let client = CoaClient::new(std::sync::Arc::new(move || table.clone()));
    match client
        .send(action, &session.control_target(), attributes)
        .await
    {
        Ok(ControlOutcome::Ack) => println!("{}-ACK", action.name()),
        Ok(ControlOutcome::Nak { error_cause }) => {
            println!(
                "{}-NAK{}",
                action.name(),
                error_cause
                    .map(|c| format!(", Error-Cause {c} ({})", error_cause_name(c)))
                    .unwrap_or_default()
            );
            std::process::exit(1);
        }
        Err(e) => {
            println!("no answer: {e}");
            std::process::exit(1);
        }
    }
    Ok(())
}

/// Who runs the command, for the audit log: `$USER`, else the numeric uid.
fn cli_user() -> String {
    use std::os::unix::fs::MetadataExt;
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| m.uid().to_string())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn print_session(s: &LiveSession, utc: bool) {
    use ebok::terminal::{octets, safe, time};
    let opt = |v: &Option<String>| v.as_deref().map_or("-".into(), |v| safe(v).into_owned());
    println!("session      {}", safe(&s.session_id));
    println!(
        "nas          {} (client entry {})",
        safe(&s.nas),
        safe(&s.nas_client)
    );
    println!("login        {}", opt(&s.user_name));
    println!(
        "ipv4         {}",
        s.framed_ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "-".into())
    );
    for p in &s.ipv6_prefixes {
        println!("ipv6         {p}");
    }
    println!("mac          {}", opt(&s.calling_station_id));
    println!("nas port     {}", opt(&s.nas_port_id));
    println!("started      {}", time(s.started_at, utc));
    println!("updated      {}", time(s.updated_at, utc));
    println!("expires      {}", time(s.expires_at, utc));
    println!(
        "traffic      in {} / out {} (subscriber's upload / download)",
        octets(s.input_octets),
        octets(s.output_octets)
    );
}
