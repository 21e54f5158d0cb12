//! `run`: start every part of ebok on sockets bound by the caller, until shutdown. `main`
//! binds the configured addresses; tests bind port 0 and call the same function.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{watch, Semaphore};

use crate::config::{AckAfter, Config, StoreKind};
use crate::ingest::Ingest;
use crate::journal::JournalLog;
use crate::radius::dedup::DuplicateCache;
use crate::radius::dict::Dictionary;
use crate::radius::listener::{self, RadiusContext};
use crate::sessions::embedded::EmbeddedSessions;
use crate::sessions::stream::{StreamOptions, StreamSessions};
use crate::sessions::LiveSessions;
use crate::store::Db;

/// Sockets ebok serves on.
pub struct Listeners {
    pub radius: Vec<UdpSocket>,
    pub metrics: TcpListener,
    pub web: TcpListener,
}

impl Listeners {
    /// Bind the configured addresses: UDP with a raised SO_RCVBUF (IPv6 sockets v6-only so
    /// `0.0.0.0` and `[::]` can both be bound), TCP for metrics.
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let mut radius = Vec::new();
        for addr in &config.radius.listen {
            let s = bind_udp(*addr, config.radius.recv_buffer)
                .with_context(|| format!("binding RADIUS listener {addr} (radius.listen)"))?;
            radius.push(s);
        }
        let metrics = TcpListener::bind(config.metrics.listen)
            .await
            .with_context(|| {
                format!(
                    "binding metrics listener {} (metrics.listen)",
                    config.metrics.listen
                )
            })?;
        let web = TcpListener::bind(config.web.listen)
            .await
            .with_context(|| format!("binding web listener {} (web.listen)", config.web.listen))?;
        Ok(Listeners {
            radius,
            metrics,
            web,
        })
    }
}

pub use crate::radius::listener::bind_udp;

/// The running parts, for callers (tests, the CLI) that want to look inside.
pub struct Running {
    pub ingest: Arc<Ingest>,
    /// The SQL database: subscribers, billing, history.
    pub db: Db,
    pub radius: Arc<RadiusContext>,
    pub radius_addrs: Vec<SocketAddr>,
    /// Passive capture, when `[capture] interface` is set.
    pub capture: Option<crate::radius::capture::CaptureHandle>,
    pub metrics_addr: SocketAddr,
    pub web_addr: SocketAddr,
}

/// Who opens the live map: the daemon (it ingests) or a command beside it (it only reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveRole {
    Daemon,
    Reader,
}

/// Open the live-session store the configuration names: the embedded map, or (Redis) this
/// instance's map shared through the log in Redis, with its snapshot in the state directory.
/// A [`LiveRole::Reader`] of the shared map reads a copy of the daemon's snapshot and the log
/// from there, and never appends.
pub async fn open_live(config: &Config, role: LiveRole) -> anyhow::Result<Arc<dyn LiveSessions>> {
    std::fs::create_dir_all(&config.state.dir).with_context(|| {
        format!(
            "creating state directory {} (state.dir)",
            config.state.dir.display()
        )
    })?;
    let path = config.state.dir.join("live.sqlite");
    Ok(match config.sessions.store {
        StoreKind::Embedded => Arc::new(
            EmbeddedSessions::open(&path)
                .await
                .with_context(|| format!("opening embedded live store {}", path.display()))?,
        ),
        StoreKind::Redis => {
            let target = config.sessions.redis_target();
            let options = StreamOptions {
                prefix: config.sessions.redis_prefix.clone(),
                streams: config.sessions.log_streams,
                retention: log_retention(config)?,
            };
            let opened = match role {
                LiveRole::Daemon => StreamSessions::open(&target, &path, options).await,
                LiveRole::Reader => StreamSessions::open_copy(&target, &path, options).await,
            };
            let store = Arc::new(opened.with_context(|| {
                format!(
                    "joining the live-session log in Redis {} (sessions.redis_*)",
                    target.describe()
                )
            })?);
            if role == LiveRole::Daemon {
                store.spawn_reappender();
            }
            store
        }
    })
}

/// The log kept beyond the longest expiry window (see [`log_retention`]).
const LOG_MARGIN: Duration = Duration::from_secs(30);

/// How much of the live-session log Redis keeps: the longest expiry window of any NAS
/// entry, and 30 seconds more. A session's deadline is its last event's arrival plus the
/// window, and that event was appended after it arrived, so the window alone covers every
/// live session; the 30 seconds cover the instances' clocks (which set the trimming point)
/// differing from Redis's (which stamps the entries). Should a clock be further off, a new
/// instance misses the sessions whose last entry was trimmed early until their next
/// Interim-Update.
pub fn log_retention(config: &Config) -> anyhow::Result<Duration> {
    let table = config.nas_table().map_err(anyhow::Error::msg)?;
    let longest = table
        .clients()
        .iter()
        .map(|(c, _)| c.expiry)
        .max()
        .unwrap_or(Duration::from_secs(
            2 * config.sessions.interim_interval + config.sessions.grace,
        ));
    Ok(longest + LOG_MARGIN)
}

/// The dictionary in force: built-in, or the configured file.
pub fn dictionary(config: &Config) -> anyhow::Result<&'static Dictionary> {
    Ok(match &config.radius.dictionary {
        None => Dictionary::builtin(),
        Some(path) => Box::leak(Box::new(load_dictionary(path)?)),
    })
}

fn load_dictionary(path: &Path) -> anyhow::Result<Dictionary> {
    Dictionary::load_with_builtin(path)
        .with_context(|| format!("loading dictionary {} (radius.dictionary)", path.display()))
}

/// Start everything; returns once started. The returned task finishes after `shutdown`
/// turns true and in-flight requests are drained.
pub async fn start(
    config: Config,
    listeners: Listeners,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(Running, tokio::task::JoinHandle<()>)> {
    let handle = crate::ops::metrics::install();
    let db = Db::connect(&config.database.url).await.with_context(|| {
        format!(
            "opening database {} (database.url)",
            crate::config::redact_url(&config.database.url)
        )
    })?;
    // In journal mode the replay gets a thread of its own at a lower priority; the live store
    // is opened there so its writer, SQLite thread and log readers work at that priority too
    // (the panel reads its memory).
    let replay_thread = match config.radius.ack_after {
        AckAfter::Journal if config.radius.replay_nice > 0 => Some(
            crate::background::Background::start(config.radius.replay_nice)
                .context("starting the replay thread (radius.replay_nice)")?,
        ),
        _ => None,
    };
    let live = match &replay_thread {
        Some(bg) => {
            let c = config.clone();
            bg.handle()
                .spawn(async move { open_live(&c, LiveRole::Daemon).await })
                .await
                .context("opening the live store on the replay thread")??
        }
        None => open_live(&config, LiveRole::Daemon).await?,
    };
    let spool = JournalLog::open(&config.state.dir).with_context(|| {
        format!(
            "opening spool in {} (state.dir)",
            config.state.dir.display()
        )
    })?;
    spool.set_max_bytes(config.radius.journal_max_bytes);
    // With a background runtime the history writer works there, on a connection of its own.
    let history_store: Arc<dyn crate::history_writer::HistoryStore> = {
        let _on = replay_thread.as_ref().map(|bg| bg.handle().enter());
        match &replay_thread {
            Some(_) => Arc::new(db.dedicated_writer()),
            None => Arc::new(db.clone()),
        }
    };
    let ingest = Arc::new(Ingest::new(
        live,
        history_store,
        spool,
        config.radius.ack_after,
        Duration::from_millis(config.radius.store_timeout_ms),
        replay_thread,
        crate::dead_letter::DeadLetters::new(&config.state.dir),
    ));
    if let Ok(n) = ingest.live.count().await {
        metrics::gauge!("ebok_live_sessions").set(n as f64);
    }
    let nas = config.nas_table().map_err(anyhow::Error::msg)?;
    let ctx = Arc::new(RadiusContext {
        nas: RwLock::new(Arc::new(nas)),
        dedup: DuplicateCache::new(Duration::from_secs(config.radius.duplicate_window)),
        journal: ingest.clone(),
        activity: Default::default(),
        dict: dictionary(&config)?,
        limit: Arc::new(Semaphore::new(config.radius.max_in_flight)),
        max_in_flight: config.radius.max_in_flight,
        lines: crate::radius::line_address::LineAddresses {
            min_ipv6_prefix: config.sessions.min_ipv6_prefix,
            loopback: config.sessions.loopback_lines,
        },
    });

    let radius_addrs = listeners
        .radius
        .iter()
        .map(|s| s.local_addr())
        .collect::<Result<Vec<_>, _>>()?;
    let metrics_addr = listeners.metrics.local_addr()?;
    let web_addr = listeners.web.local_addr()?;

    let mut tasks = Vec::new();
    for socket in listeners.radius {
        // Journal mode: each socket on a thread of its own (no runtime wake-ups per batch);
        // answers that wait for the stores keep the async loop.
        tasks.push(if ingest.journal_mode() {
            listener::serve_on_thread(socket, ctx.clone(), shutdown.clone())?
        } else {
            tokio::spawn(listener::serve(
                Arc::new(socket),
                ctx.clone(),
                shutdown.clone(),
            ))
        });
    }
    // Passive capture feeds the same context; it stops with the listeners.
    let capture = if config.capture.interface.is_empty() {
        None
    } else {
        let (handle, task) = crate::radius::capture::start(
            &config.capture,
            config.radius.recv_buffer,
            ctx.clone(),
            shutdown.clone(),
        )
        .with_context(|| {
            format!(
                "capture.interface = {:?}: passive capture cannot start",
                config.capture.interface
            )
        })?;
        tasks.push(task);
        Some(handle)
    };
    let background = vec![
        ingest.spawn_replayer(shutdown.clone()),
        tokio::spawn(ingest.clone().run_sweeper(
            Duration::from_secs(config.sessions.expiry_sweep_interval),
            shutdown.clone(),
        )),
        tokio::spawn(purge_duplicates(ctx.clone(), shutdown.clone())),
        tokio::spawn(retention(
            db.clone(),
            config.retention.clone(),
            shutdown.clone(),
        )),
    ];
    // The panel's "restart my connection" asks the NAS through RFC 5176; it reads the NAS
    // table through the listener's context, so a SIGHUP reload reaches it too.
    let state =
        crate::web::AppState::new(db.clone(), ingest.live.clone(), Arc::new(config.panel()))
            .await?
            .with_radius(ctx.clone());
    for (key, why) in config.warnings() {
        tracing::warn!("configuration: {key} {why}");
    }
    let mail_retry = state.panel.mailer.spawn_retry();
    let panel_purge = tokio::spawn(purge_panel(state.clone(), shutdown.clone()));
    let invoice_mail = tokio::spawn(crate::web::billing::run_invoice_mail(
        state.clone(),
        shutdown.clone(),
    ));
    let notices = tokio::spawn(crate::web::notices::run_notices(
        state.clone(),
        shutdown.clone(),
    ));
    let reminders = config.reminders.map(|cfg| {
        tokio::spawn(crate::web::billing::run_payment_reminders(
            state.clone(),
            cfg,
            shutdown.clone(),
        ))
    });
    let app = ebok_web::app(state);
    let web_task = tokio::spawn(crate::web::serve::serve(
        listeners.web,
        app,
        crate::web::serve::Limits::from_config(&config.web),
        shutdown.clone(),
    ));
    let mut metrics_shutdown = shutdown.clone();
    // Histogram samples wait in the recorder until an upkeep folds them into the buckets;
    // without a Prometheus scraping us they would pile up, so fold them every 5 s.
    let upkeep_handle = handle.clone();
    let mut upkeep_shutdown = shutdown.clone();
    let metrics_upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep_handle.run_upkeep(),
                _ = upkeep_shutdown.changed() => break,
            }
        }
    });
    let metrics_task = tokio::spawn(async move {
        let app = crate::ops::metrics::router(handle);
        let _ = axum::serve(listeners.metrics, app)
            .with_graceful_shutdown(async move {
                let _ = metrics_shutdown.changed().await;
            })
            .await;
    });
    tracing::info!(radius = ?radius_addrs, metrics = %metrics_addr, web = %web_addr, store = ?config.sessions.store,
        database = db.backend(), "ebok started");

    let drain_ctx = ctx.clone();
    let done = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
        // Listeners stopped reading; let the requests already received finish.
        if tokio::time::timeout(Duration::from_secs(10), drain_ctx.drain())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: requests still in flight after 10 s");
        }
        for t in background {
            let _ = t.await;
        }
        let _ = metrics_task.await;
        let _ = metrics_upkeep.await;
        let _ = web_task.await;
        let _ = panel_purge.await;
        let _ = invoice_mail.await;
        let _ = notices.await;
        if let Some(r) = reminders {
            let _ = r.await;
        }
        mail_retry.abort();
        tracing::info!("ebok stopped");
    });
    Ok((
        Running {
            ingest,
            db,
            radius: ctx,
            radius_addrs,
            capture,
            metrics_addr,
            web_addr,
        },
        done,
    ))
}

/// SIGHUP: read the configuration again (file, environment, flags) and swap in its NAS list
/// and secrets; returns the number of prefixes. Requests in flight finish with the table
/// they started with. On any error the old table stays and the error says why.
pub fn reload(
    running: &Running,
    config_path: Option<&Path>,
    overrides: &crate::config::CliOverrides,
) -> anyhow::Result<usize> {
    let config = Config::load(config_path, std::env::vars(), overrides)?;
    let table = config.nas_table().map_err(anyhow::Error::msg)?;
    let prefixes = table.len();
    running.radius.replace_nas_table(table);
    Ok(prefixes)
}

/// Prune connection data and the audit log past their retention periods, at start and then
/// every `interval_hours`.
async fn retention(
    db: Db,
    config: crate::config::RetentionConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = time::OffsetDateTime::now_utc();
        let pruned = crate::store::retention::prune(
            &db,
            now,
            config.history_days,
            config.audit_days,
            config.former_subscriber_days,
        )
        .await;
        match pruned {
            Ok(p) => tracing::info!(
                sessions = p.sessions,
                traffic_days = p.traffic_days,
                audit = p.audit,
                former_subscribers = p.former_subscribers,
                "retention: pruned old rows"
            ),
            Err(e) => tracing::warn!(error = %e, "retention: pruning failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(u64::from(config.interval_hours) * 3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The demo ISP on a running ebok: load the demo data set, then put Jan Kowalski's line on
/// 127.0.0.1 through the real accounting path (a signed Start to our own listener, with the
/// secret the NAS table gives loopback) and keep it alive with Interim-Updates.
pub async fn start_demo(running: &Running, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let summary = crate::demo::load(&running.db, crate::demo::warsaw_today())
        .await
        .context("loading the demo data set")?;
    tracing::info!("demo data loaded: {summary}");
    let published = crate::demo::load_documents(&running.db)
        .await
        .context("publishing the demo documents")?;
    tracing::info!(published, "demo documents");
    if let Some(email) = crate::demo::load_reminder_account(&running.db)
        .await
        .context("the demo's panel account for payment reminders")?
    {
        tracing::info!(%email, "demo panel account for payment reminders");
    }
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let nas = running
        .radius
        .nas_table()
        .find(ip.into())
        .cloned()
        .context("the demo needs a [[nas]] entry for 127.0.0.1 (or none at all: the default covers loopback)")?;
    let radius = *running
        .radius_addrs
        .iter()
        .find(|a| a.is_ipv4())
        .context("the demo needs an IPv4 RADIUS listener (radius.listen)")?;
    crate::demo::send_live_session(radius, &nas.secret, ip, crate::demo::DEMO_LOGIN)
        .await
        .context("sending the demo session's Start to our own RADIUS listener")?;
    running.ingest.settled(Duration::from_secs(5)).await;
    // Interim-Updates well inside the NAS entry's expiry.
    let every = (nas.expiry / 4).max(Duration::from_secs(1));
    let secret = nas.secret.clone();
    tokio::spawn(async move {
        crate::demo::keep_alive(
            radius,
            &secret,
            ip,
            crate::demo::DEMO_LOGIN,
            every,
            shutdown,
        )
        .await
    });
    let contract = crate::identify::identify(running.ingest.live.as_ref(), &running.db, ip.into())
        .await
        .ok()
        .flatten()
        .and_then(|found| found.holder)
        .map(|(_, c)| c.number)
        .unwrap_or_default();
    tracing::info!(
        "demo: 127.0.0.1 is Jan Kowalski's line (PPPoE login {}); register him at the panel \
         with PESEL 44051401359 and contract number {contract}",
        crate::demo::DEMO_LOGIN
    );
    Ok(())
}

async fn purge_duplicates(ctx: Arc<RadiusContext>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => { ctx.dedup.purge(); }
            _ = shutdown.changed() => return,
        }
    }
}

/// Hourly: drop expired panel sessions and mailed tokens.
async fn purge_panel(state: crate::web::AppState, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(3600);
    // Not at start-up: the first pass waits an hour, out of the way of imports and the demo.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = state.panel.sessions.purge_expired().await {
            tracing::warn!(error = %e, "purging panel sessions");
        }
        if let Err(e) = crate::store::auth::purge_tokens(&state.db).await {
            tracing::warn!(error = %e, "purging mailed tokens");
        }
    }
}
