//! The HTTP side: one axum router on `[web] listen` serving the subscribers' panel (Polish
//! by default, English on request) and the operators' JSON API under `/api/v1`.
//!
//! Panel rooms: [`pages`] (layout, home, errors, language), [`auth`] (login, second
//! factor, logout), [`register`] (registration from one's own line), [`account`]
//! (recovery, e-mail confirmation, settings, TOTP); [`paging`] (lists a page at a time).
//! Every panel request passes
//! [`request::panel_layer`]: caller IP, language, CSRF check on POST, security headers.

/// Run `$body` inside a write transaction on `$db`, committed when the body finishes; a
/// `?` in the body gives up and the transaction rolls back. Gives `anyhow::Result<body>`.
macro_rules! in_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        async {
            let mut $tx = $db.begin().await?;
            let out = $body;
            $tx.commit().await?;
            Ok::<_, anyhow::Error>(out)
        }
        .await
    };
}

pub mod account;
pub mod auth;
pub mod billing;
pub mod dashboard;
pub mod error;
pub mod host;
pub mod i18n;
pub mod line;
pub mod line_note;
pub mod office;
pub mod pages;
pub mod paging;
pub mod passwords;
pub mod ratelimit;
pub mod redirect;
pub mod register;
pub mod request;
pub mod serve;
pub mod session_store;
pub mod settings;
pub mod stats;
pub mod totp;

#[cfg(test)]
pub(crate) mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;
use ipnet::IpNet;

use crate::mail::{Mailer, OutgoingMail};
use ebok_live::sessions::LiveSessions;
use ebok_store::Db;
use i18n::Tr;
use ratelimit::{MemoryLimiter, RateLimiter, RedisLimiter, Rule};
use session_store::{RedisWebSessions, SessionPolicy, SqlWebSessions, WebSessionStore};
use settings::PanelConfig;

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub live: Arc<dyn LiveSessions>,
    pub config: Arc<PanelConfig>,
    pub panel: Arc<Panel>,
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
    /// The connection note's "is this a live line" for visitors not logged in.
    pub line_note: line_note::LineNoteCache,
    /// Ends a subscriber's PPPoE session on its NAS ("restart my connection"); set once at
    /// start-up (RFC 5176 client) or by a test. Unset: the panel says it is unavailable.
    pub session_control: std::sync::OnceLock<Arc<dyn ebok_radius::coa::SessionControl>>,
    /// The accounting listener's shared state (NAS table in force, per-NAS activity), for
    /// the ops API's NAS overview; set once at start-up. Unset in panel-only tests.
    pub radius: std::sync::OnceLock<Arc<ebok_radius::listener::RadiusContext>>,
    /// The host names the panel answers to.
    pub hosts: Arc<host::AllowedHosts>,
}

/// Attempts allowed before "try again in …".
pub mod limits {
    use super::Rule;
    use std::time::Duration;

    const fn rule(limit: u32, minutes: u64) -> Rule {
        Rule {
            limit,
            window: Duration::from_secs(minutes * 60),
        }
    }
    /// Failed logins from one IP.
    pub const LOGIN_IP: Rule = rule(20, 15);
    /// Failed logins of one account (whatever the IP).
    pub const LOGIN_ACCOUNT: Rule = rule(5, 15);
    /// Wrong second-factor codes of one account.
    pub const CODE_ACCOUNT: Rule = rule(5, 15);
    /// Registration attempts from one IP.
    pub const REGISTER_IP: Rule = rule(10, 60);
    /// Recovery requests from one IP / for one e-mail address.
    pub const RECOVER_IP: Rule = rule(5, 60);
    pub const RECOVER_EMAIL: Rule = rule(3, 60);
    /// Requests for a new e-mail confirmation link from one IP / for one address.
    pub const CONFIRM_IP: Rule = rule(5, 60);
    pub const CONFIRM_EMAIL: Rule = rule(3, 60);
    /// Wrong current passwords in the settings.
    pub const SETTINGS_ACCOUNT: Rule = rule(5, 15);
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
                    let url = &redis.url;
                    let prefix = format!("{}web:", redis.prefix);
                    (
                        Arc::new(
                            RedisWebSessions::connect(url, &prefix, policy)
                                .await
                                .context("panel sessions in Redis (sessions.redis_url)")?,
                        ),
                        Arc::new(
                            RedisLimiter::connect(url, &format!("{prefix}rl:"))
                                .await
                                .context("rate limits in Redis (sessions.redis_url)")?,
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
            // Remembered only where asking costs a round trip.
            line_note: line_note::LineNoteCache::new(config.shared.is_some()),
            session_control: std::sync::OnceLock::new(),
            radius: std::sync::OnceLock::new(),
            hosts: Arc::new(host::AllowedHosts::from_config(&config.web, config.demo)),
        };
        Ok(AppState {
            db,
            live,
            config,
            panel: Arc::new(panel),
        })
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
        };
        let mailer = self.panel.mailer.clone();
        tokio::spawn(async move {
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

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let panel = Router::new()
        .route("/", get(pages::home))
        .route("/panel", get(dashboard::panel))
        .route("/jezyk/{code}", get(pages::language))
        .route("/logowanie", get(auth::login_form).post(auth::login))
        .route("/logowanie/kod", get(auth::code_form).post(auth::code))
        .route("/wyloguj", post(auth::logout))
        .route("/rejestracja", get(register::form).post(register::submit))
        .route(
            "/przywracanie",
            get(account::recover_form).post(account::recover),
        )
        .route(
            "/przywracanie/{token}",
            get(account::reset_form).post(account::reset),
        )
        .route(
            "/email/ponownie",
            get(account::resend_form).post(account::resend),
        )
        .route(
            "/email/{token}",
            get(account::confirm_form).post(account::confirm),
        )
        .route("/ustawienia", get(account::settings))
        .route("/ustawienia/haslo", post(account::change_password))
        .route("/ustawienia/email", post(account::change_email))
        .route(
            "/ustawienia/wyloguj-wszedzie",
            post(account::logout_everywhere),
        )
        .route(
            "/ustawienia/2fa",
            get(account::totp_setup).post(account::totp_enable),
        )
        .route("/ustawienia/2fa/wylacz", post(account::totp_disable))
        .route("/ustawienia/2fa/kody", post(account::new_recovery_codes))
        .route("/ustawienia/sesje/zakoncz", post(account::end_session))
        .merge(billing::routes())
        .merge(line::routes())
        .merge(stats::routes())
        .merge(office::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request::panel_layer,
        ));
    let hosts = state.panel.hosts.clone();
    Router::new()
        .route("/static/ebok.css", get(pages::stylesheet))
        .nest("/api/v1", crate::ops::api::router())
        .merge(panel)
        .route_layer(axum::middleware::from_fn(crate::ops::metrics::track_route))
        .layer(axum::middleware::from_fn(
            crate::ops::metrics::track_unmatched,
        ))
        // Outermost: a request for another host name reaches nothing (see `host`).
        .layer(axum::middleware::from_fn_with_state(hosts, host::check))
        .with_state(state)
}
