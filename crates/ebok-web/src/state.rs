//! The application state both routers take: the databases, the live map, the settings and
//! what the panel keeps besides (its sessions, rate limits, mailer, CSRF key, host names), and
//! the helpers every handler uses (audit log, mail, absolute links).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ipnet::IpNet;

use crate::mail::{Attachment, Mailer, OutgoingMail};
use crate::web::i18n::Tr;
use crate::web::ratelimit::{MemoryLimiter, RateLimiter, RedisLimiter};
use crate::web::session_store::{RedisWebSessions, SessionPolicy, SqlWebSessions, WebSessionStore};
use crate::web::settings::PanelConfig;
use crate::web::{billing, host, request};
use ebok_live::sessions::LiveSessions;
use ebok_store::Db;

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub live: Arc<dyn LiveSessions>,
    pub config: Arc<PanelConfig>,
    pub panel: Arc<Panel>,
    /// Ends a subscriber's PPPoE session on its NAS ("restart my connection", the ops API's
    /// Disconnect/CoA): the RFC 5176 client where the RADIUS side runs in this process
    /// ([`AppState::with_radius`]). None: the panel and the API say it is unavailable.
    pub session_control: Option<Arc<dyn ebok_radius::coa::SessionControl>>,
    /// The accounting listener's shared state (NAS table in force, per-NAS activity), for
    /// the ops API's NAS overview. None where no listener runs in this process.
    pub radius: Option<Arc<ebok_radius::listener::RadiusContext>>,
}

/// What the panel needs besides the databases: where its sessions and rate-limit counters
/// live (SQL and memory for the embedded deployment, Redis when the live map is in Redis,
/// so that every instance sees them), the mailer, and the CSRF key.
pub struct Panel {
    pub sessions: Arc<dyn WebSessionStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub mailer: Mailer,
    pub csrf_key: request::CsrfKey,
    pub trusted: Vec<IpNet>,
    /// The host names the panel answers to.
    pub hosts: Arc<host::AllowedHosts>,
    /// Background tasks that may still hand mail to the mailer.
    pub mail_work: MailWork,
    /// The active outage and maintenance notices as this instance last read them.
    pub notices: crate::web::notices::NoticeCache,
}

/// Counts the background tasks that may still hand mail to the mailer, so that whoever
/// needs to know (shutdown, a test asserting that nothing was sent) can wait for them.
#[derive(Clone, Default)]
pub struct MailWork {
    running: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<tokio::sync::Notify>,
}

impl MailWork {
    /// Run `work` in the background, counted until it ends.
    pub fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering;
        self.running.fetch_add(1, Ordering::SeqCst);
        let running = self.running.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            work.await;
            if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                done.notify_waiters();
            }
        });
    }

    /// Wait until no counted task runs.
    pub async fn settled(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl AppState {
    /// Build the state from the configuration: panel sessions and rate limits in Redis
    /// when they are shared, else in SQL and in memory; the CSRF key shared through the
    /// database.
    pub async fn new(
        db: Db,
        live: Arc<dyn LiveSessions>,
        config: Arc<PanelConfig>,
    ) -> anyhow::Result<AppState> {
        let policy = SessionPolicy {
            idle: Duration::from_secs(config.web.session_idle_minutes * 60),
            absolute: Duration::from_secs(config.web.session_absolute_hours * 3600),
        };
        let (sessions, limiter): (Arc<dyn WebSessionStore>, Arc<dyn RateLimiter>) =
            match &config.shared {
                Some(redis) => {
                    let target = &redis.target;
                    let prefix = format!("{}web:", redis.prefix);
                    let place = || format!("{} ({})", target.describe(), target.config_key());
                    (
                        Arc::new(
                            RedisWebSessions::connect(target, &prefix, policy)
                                .await
                                .with_context(|| format!("panel sessions in {}", place()))?,
                        ),
                        Arc::new(
                            RedisLimiter::connect(target, &format!("{prefix}rl:"))
                                .await
                                .with_context(|| format!("rate limits in {}", place()))?,
                        ),
                    )
                }
                None => (
                    Arc::new(SqlWebSessions::new(db.clone(), policy)),
                    Arc::new(MemoryLimiter::new()),
                ),
            };
        let mailer = Mailer::new(&config.mail, &config.state_dir).context("mail ([mail])")?;
        billing::init_invoice_mail(&db)
            .await
            .context("starting the new-invoice mail watermark")?;
        let csrf_key = ebok_store::auth::server_secret(&db, "csrf")
            .await
            .context("reading the CSRF key from the database")?;
        let csrf_key = request::CsrfKey::new(csrf_key.as_bytes());
        let panel = Panel {
            sessions,
            limiter,
            mailer,
            csrf_key,
            trusted: config.web.trusted_proxy_nets(),
            hosts: Arc::new(host::AllowedHosts::from_config(&config.web, config.demo)),
            mail_work: MailWork::default(),
            notices: Default::default(),
        };
        Ok(AppState {
            db,
            live,
            config,
            panel: Arc::new(panel),
            session_control: None,
            radius: None,
        })
    }

    /// The state with the accounting listener's context (the NAS table it keeps current
    /// across reloads) and a session control that asks the NAS through RFC 5176.
    pub fn with_radius(self, radius: Arc<ebok_radius::listener::RadiusContext>) -> AppState {
        let table = radius.clone();
        let control = ebok_radius::coa::CoaClient::new(Arc::new(move || table.nas_table()));
        AppState {
            radius: Some(radius),
            ..self.with_session_control(Arc::new(control))
        }
    }

    /// The state with `control` ending subscribers' sessions (the RFC 5176 client, or a
    /// test's stand-in).
    pub(crate) fn with_session_control(
        self,
        control: Arc<dyn ebok_radius::coa::SessionControl>,
    ) -> AppState {
        AppState {
            session_control: Some(control),
            ..self
        }
    }

    /// Append to the audit log; a failure is logged, never shown to the subscriber.
    pub async fn audit(&self, actor: &str, action: &str, ip: Option<IpAddr>, detail: &str) {
        let r = async {
            let mut tx = self.db.begin().await?;
            ebok_store::audit::append(&mut tx, actor, action, ip, detail).await?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, actor, action, "audit log write failed");
        }
    }

    /// Send a mail in the background: the answer to the browser never waits for (or
    /// reveals) mail delivery. Failures are counted and logged by the mailer.
    pub fn mail(&self, t: Tr, to: &str, subject_key: &str, body_key: &str, args: &[(&str, &str)]) {
        self.mail_with(t, to, subject_key, body_key, args, Vec::new());
    }

    /// [`AppState::mail`] with files attached.
    pub fn mail_with(
        &self,
        t: Tr,
        to: &str,
        subject_key: &str,
        body_key: &str,
        args: &[(&str, &str)],
        attachments: Vec<Attachment>,
    ) {
        let isp = match self.config.isp.name.as_str() {
            "" => "e-BOK".to_owned(),
            name => name.to_owned(),
        };
        let text = format!(
            "{}\n\n{}\n\n{}\n\n-- \n{}\n",
            t.t("mail.greeting"),
            t.f(body_key, args),
            t.f("mail.signature", &[("isp", &isp)]),
            t.t("mail.auto"),
        );
        let mail = OutgoingMail {
            to: to.to_owned(),
            subject: t.t(subject_key).to_owned(),
            text,
            language: t.code(),
            attachments,
        };
        let mailer = self.panel.mailer.clone();
        self.panel.mail_work.spawn(async move {
            if let Err(e) = mailer.send(&mail).await {
                tracing::warn!(error = %e, "mail not delivered now (queued for retry)");
            }
        });
    }

    /// An absolute link for mails: `[web] public_url`, else the listen address (with
    /// `localhost` for a wildcard). Never the request's Host header: a forged Host would
    /// put a reset link to someone else's site into a subscriber's mailbox.
    pub fn link(&self, path: &str) -> String {
        let web = &self.config.web;
        if !web.public_url.is_empty() {
            return format!("{}{path}", web.public_url.trim_end_matches('/'));
        }
        let port = web.listen.port();
        let host = match web.listen.ip() {
            ip if ip.is_unspecified() => "localhost".to_owned(),
            IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{port}{path}")
    }
}
