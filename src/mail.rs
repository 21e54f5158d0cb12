//! Outgoing mail: SMTP in production, an outbox folder of `.eml` files in the embedded default,
//! and the on-disk retry queue (`<state.dir>/mail-queue/`) that holds every message SMTP could
//! not take until a later attempt delivers it.
//!
//! A message is built once (Date, Message-ID, From, To, Reply-To, Content-Language,
//! `Auto-Submitted: auto-generated`, UTF-8 plain text); the queue keeps those exact bytes, so a
//! retried message keeps its Message-ID and date.
//!
//! Queue file layout: `<millis>-<random>.mail`, one message each, written to a dot-prefixed
//! temporary file, fsynced and renamed. The first line is JSON (envelope, attempts, last error),
//! the rest is the message exactly as it goes on the wire. A message the server keeps rejecting
//! with a permanent (5xx) answer is moved to `mail-queue/failed/` after a few attempts, never
//! deleted.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// How many times a message rejected with a permanent (5xx) answer is tried before it is moved
/// to `mail-queue/failed/`. More than once because an authentication failure (535) is also a
/// 5xx answer and is usually fixed by the operator, not by the message.
const MAX_PERMANENT_ATTEMPTS: u32 = 5;

/// Where queued messages live, under the state directory.
const QUEUE_DIR: &str = "mail-queue";
/// Where messages go that the server rejected permanently, under the queue directory.
const FAILED_DIR: &str = "failed";
const QUEUE_EXT: &str = "mail";

/// Which way outgoing mail leaves ebok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write each message as an `.eml` file into the outbox directory (nothing leaves the
    /// machine; the embedded default).
    #[default]
    Outbox,
    /// Deliver through an SMTP server (`[mail.smtp]`).
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; a server that does not offer STARTTLS is an
    /// error (never falls back to plain text). Port 587 by default.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS). Port 465 by default.
    Tls,
    /// No encryption: only for a relay on the same machine or a trusted network. Credentials,
    /// if set, are sent in the clear. Port 25 by default.
    None,
}

impl SmtpTls {
    /// The port used when `mail.smtp.port` is not set.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// `[mail.smtp]` section of ebok.toml.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// SMTP server host name (also the name checked in its TLS certificate).
    pub host: Option<String>,
    /// Server port; by default 587 (starttls), 465 (tls) or 25 (none).
    pub port: Option<u16>,
    /// `"starttls"` (default, required), `"tls"` (implicit TLS) or `"none"`.
    pub tls: SmtpTls,
    /// User name for SMTP AUTH (PLAIN or LOGIN); no authentication when unset.
    pub username: Option<String>,
    /// Password for SMTP AUTH. Prefer `password_file`.
    pub password: Option<String>,
    /// File holding the SMTP password (surrounding whitespace and the newline are trimmed).
    pub password_file: Option<PathBuf>,
    /// Timeout for connecting and for each SMTP command, in seconds.
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: None,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            password_file: None,
            timeout_secs: 10,
        }
    }
}

impl SmtpConfig {
    /// The port to connect to: the configured one or the default for the TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_file", &self.password_file)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// `[mail]` section of ebok.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `"outbox"` (default) or `"smtp"`.
    pub transport: MailTransport,
    /// Where the outbox transport writes `.eml` files; default `<state.dir>/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// The From address, e.g. `"e-BOK Przykład-Net <ebok@example.pl>"`.
    pub from: String,
    /// Optional Reply-To address (e.g. the customer office's mailbox).
    pub reply_to: Option<String>,
    /// SMTP server settings, used when `transport = "smtp"`.
    pub smtp: SmtpConfig,
    /// First wait before retrying queued messages, in seconds; doubles on each failed round.
    pub retry_initial_secs: u64,
    /// Longest wait between retry rounds, in seconds.
    pub retry_max_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::Outbox,
            outbox_dir: None,
            from: "e-BOK <ebok@localhost>".to_owned(),
            reply_to: None,
            smtp: SmtpConfig::default(),
            retry_initial_secs: 30,
            retry_max_secs: 1800,
        }
    }
}

/// A `[mail]` setting that cannot work; names the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct MailConfigError {
    /// The configuration key, e.g. `"mail.smtp.host"`.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn config_error(key: &'static str, reason: impl Into<String>) -> MailConfigError {
    MailConfigError {
        key,
        reason: reason.into(),
    }
}

impl MailConfig {
    /// Check the section without sending anything: addresses parse, the SMTP settings are
    /// complete and consistent, the password file is readable.
    pub fn check(&self) -> Result<(), MailConfigError> {
        parse_mailbox(&self.from)
            .map_err(|e| config_error("mail.from", format!("not a valid address: {e}")))?;
        if let Some(reply_to) = &self.reply_to {
            parse_mailbox(reply_to)
                .map_err(|e| config_error("mail.reply_to", format!("not a valid address: {e}")))?;
        }
        if self.retry_initial_secs == 0 {
            return Err(config_error(
                "mail.retry_initial_secs",
                "must be at least 1",
            ));
        }
        if self.retry_max_secs < self.retry_initial_secs {
            return Err(config_error(
                "mail.retry_max_secs",
                "must not be smaller than mail.retry_initial_secs",
            ));
        }
        let smtp = &self.smtp;
        if smtp.password.is_some() && smtp.password_file.is_some() {
            return Err(config_error(
                "mail.smtp.password_file",
                "set either mail.smtp.password or mail.smtp.password_file, not both",
            ));
        }
        let has_password = smtp.password.is_some() || smtp.password_file.is_some();
        match (&smtp.username, has_password) {
            (Some(u), _) if u.is_empty() => {
                return Err(config_error("mail.smtp.username", "must not be empty"));
            }
            (Some(_), false) => {
                return Err(config_error(
                    "mail.smtp.password",
                    "mail.smtp.username is set but neither password nor password_file is",
                ));
            }
            (None, true) => {
                return Err(config_error(
                    "mail.smtp.username",
                    "a password is set but no username to go with it",
                ));
            }
            _ => {}
        }
        if smtp.port == Some(0) {
            return Err(config_error("mail.smtp.port", "must not be 0"));
        }
        if smtp.timeout_secs == 0 {
            return Err(config_error("mail.smtp.timeout_secs", "must be at least 1"));
        }
        if self.transport == MailTransport::Smtp {
            match smtp.host.as_deref().map(str::trim) {
                None | Some("") => {
                    return Err(config_error(
                        "mail.smtp.host",
                        "must be set when mail.transport = \"smtp\"",
                    ));
                }
                Some(_) => {}
            }
            if let Some(path) = &smtp.password_file {
                let password = read_password_file(path)?;
                if password.is_empty() {
                    return Err(config_error(
                        "mail.smtp.password_file",
                        format!("{} is empty", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn read_password_file(path: &Path) -> Result<String, MailConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| {
            config_error(
                "mail.smtp.password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
}

fn parse_mailbox(s: &str) -> Result<Mailbox, lettre::address::AddressError> {
    s.trim().parse()
}

/// Why a message could not be built, written or delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The `[mail]` configuration is unusable.
    #[error("mail configuration: {0}")]
    Config(#[from] MailConfigError),
    /// The recipient address does not parse.
    #[error("invalid recipient address {to:?}: {source}")]
    Recipient {
        /// The address as given.
        to: String,
        /// Why it was refused.
        source: lettre::address::AddressError,
    },
    /// lettre refused to build the message or the SMTP transport.
    #[error("cannot build mail: {0}")]
    Build(#[from] lettre::error::Error),
    /// Setting up the SMTP transport failed (e.g. TLS parameters).
    #[error("cannot set up SMTP transport: {0}")]
    Transport(#[source] lettre::transport::smtp::Error),
    /// A file in the outbox or queue directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The SMTP server did not take the message now; it is kept in the queue and the retry task
    /// will deliver it. Worth a log line, nothing more.
    #[error("SMTP delivery failed ({source}); message queued as {queued} for retry")]
    Queued {
        /// The queue file holding the message.
        queued: PathBuf,
        /// What the SMTP server or connection said.
        source: lettre::transport::smtp::Error,
    },
    /// The SMTP server did not take the message **and** it could not be queued: the message is
    /// lost. Should be logged as an error.
    #[error("SMTP delivery failed ({smtp}) and the message could not be queued: {queue}")]
    Lost {
        /// What the SMTP server or connection said.
        smtp: lettre::transport::smtp::Error,
        /// Why queueing failed.
        queue: Box<MailError>,
    },
}

impl MailError {
    /// True when the message is safe in the queue (the caller needs only to log it).
    pub fn is_queued(&self) -> bool {
        matches!(self, MailError::Queued { .. })
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MailError + '_ {
    move |source| MailError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One message to send: plain UTF-8 text to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient, `"jan@example.pl"` or `"Jan Kowalski <jan@example.pl>"`.
    pub to: String,
    /// Subject line (any UTF-8; encoded for the header as needed).
    pub subject: String,
    /// Body text (any UTF-8).
    pub text: String,
    /// Language of the text, `"pl"` or `"en"`; sent as Content-Language.
    pub language: &'static str,
}

/// Register help texts for the mail metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "ebok_mail_sent_total",
        "Mail messages delivered (SMTP accepted them or the outbox file was written)"
    );
    metrics::describe_counter!(
        "ebok_mail_failures_total",
        "Failed mail delivery attempts (each failed attempt of a queued message counts)"
    );
    metrics::describe_gauge!(
        "ebok_mail_queue_depth",
        "Mail messages waiting in the retry queue"
    );
}

/// Backoff of the retry task.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
}

enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

struct Inner {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// Right-hand side of generated Message-IDs: the From address's domain.
    message_id_domain: String,
    transport: Transport,
    queue_dir: PathBuf,
    failed_dir: PathBuf,
    backoff: Backoff,
    /// Messages in the queue, as last counted.
    depth: AtomicU64,
    /// Set once a retry task runs, so that a second one cannot send the same files twice.
    retry_running: AtomicBool,
    /// A message was queued (wakes an idle retry task).
    queued: Notify,
    /// A direct send succeeded while messages were queued (ends the retry task's backoff).
    recovered: Notify,
}

/// Sends [`OutgoingMail`]; cheap to clone (one shared transport, connection pool and queue).
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.inner.transport {
            Transport::Outbox(dir) => format!("outbox {}", dir.display()),
            Transport::Smtp(_) => "smtp".to_owned(),
        };
        f.debug_struct("Mailer")
            .field("from", &self.inner.from.to_string())
            .field("transport", &transport)
            .field("queue_dir", &self.inner.queue_dir)
            .finish()
    }
}

/// What a delivery attempt of raw bytes ended with.
enum DeliveryError {
    Smtp(lettre::transport::smtp::Error),
    Io(MailError),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Smtp(e) => e.fmt(f),
            DeliveryError::Io(e) => e.fmt(f),
        }
    }
}

/// The JSON first line of a queue file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueMeta {
    from: Option<String>,
    to: Vec<String>,
    /// Failed attempts with a permanent (5xx) answer so far.
    permanent_failures: u32,
    /// Failed attempts of any kind so far (the first, direct one included).
    attempts: u32,
    last_error: String,
}

impl QueueMeta {
    fn envelope(&self) -> Result<Envelope, String> {
        let from = match &self.from {
            Some(a) => Some(a.parse::<Address>().map_err(|e| e.to_string())?),
            None => None,
        };
        let to = self
            .to
            .iter()
            .map(|a| a.parse::<Address>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Envelope::new(from, to).map_err(|e| e.to_string())
    }
}

impl Mailer {
    /// Set up the configured transport. Creates the outbox directory (outbox transport) and the
    /// queue directory `<state_dir>/mail-queue`; reads the SMTP password file. Does not connect.
    pub fn new(cfg: &MailConfig, state_dir: &Path) -> Result<Mailer, MailError> {
        let backoff = Backoff {
            initial: Duration::from_secs(cfg.retry_initial_secs.max(1)),
            max: Duration::from_secs(cfg.retry_max_secs.max(cfg.retry_initial_secs).max(1)),
        };
        Mailer::with_backoff(cfg, state_dir, backoff)
    }

    fn with_backoff(
        cfg: &MailConfig,
        state_dir: &Path,
        backoff: Backoff,
    ) -> Result<Mailer, MailError> {
        cfg.check()?;
        let from = parse_mailbox(&cfg.from).expect("checked");
        let reply_to = cfg
            .reply_to
            .as_deref()
            .map(|r| parse_mailbox(r).expect("checked"));
        let transport = match cfg.transport {
            MailTransport::Outbox => {
                let dir = cfg
                    .outbox_dir
                    .clone()
                    .unwrap_or_else(|| state_dir.join("outbox"));
                std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                Transport::Outbox(dir)
            }
            MailTransport::Smtp => Transport::Smtp(smtp_transport(&cfg.smtp)?),
        };
        let queue_dir = state_dir.join(QUEUE_DIR);
        let failed_dir = queue_dir.join(FAILED_DIR);
        std::fs::create_dir_all(&failed_dir).map_err(io_error(&failed_dir))?;
        let mailer = Mailer {
            inner: Arc::new(Inner {
                message_id_domain: from.email.domain().to_owned(),
                from,
                reply_to,
                transport,
                queue_dir,
                failed_dir,
                backoff,
                depth: AtomicU64::new(0),
                retry_running: AtomicBool::new(false),
                queued: Notify::new(),
                recovered: Notify::new(),
            }),
        };
        let depth = mailer.refresh_depth_sync();
        if depth > 0 {
            tracing::info!(
                depth,
                dir = %mailer.inner.queue_dir.display(),
                "mail queue holds messages from an earlier run; the retry task will send them"
            );
        }
        Ok(mailer)
    }

    /// Where `.eml` files go (outbox transport); `None` with SMTP.
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.inner.transport {
            Transport::Outbox(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// The retry queue directory, `<state_dir>/mail-queue`.
    pub fn queue_dir(&self) -> &Path {
        &self.inner.queue_dir
    }

    /// Messages waiting in the retry queue, as last counted.
    pub fn queue_depth(&self) -> u64 {
        self.inner.depth.load(Ordering::Relaxed)
    }

    /// Build and send one message. With SMTP, a failed attempt puts the message into the retry
    /// queue and returns [`MailError::Queued`] (see [`MailError::is_queued`]); only
    /// [`MailError::Lost`] means it is gone.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.build(mail)?;
        let envelope = message.envelope().clone();
        let raw = message.formatted();
        match self.deliver(&envelope, &raw).await {
            Ok(()) => {
                metrics::counter!("ebok_mail_sent_total").increment(1);
                tracing::debug!(subject = %mail.subject, "mail sent");
                if self.queue_depth() > 0 {
                    self.inner.recovered.notify_one();
                }
                Ok(())
            }
            Err(DeliveryError::Io(e)) => {
                metrics::counter!("ebok_mail_failures_total").increment(1);
                Err(e)
            }
            Err(DeliveryError::Smtp(smtp)) => {
                metrics::counter!("ebok_mail_failures_total").increment(1);
                let meta = QueueMeta {
                    from: envelope.from().map(|a| a.to_string()),
                    to: envelope.to().iter().map(|a| a.to_string()).collect(),
                    permanent_failures: u32::from(smtp.is_permanent()),
                    attempts: 1,
                    last_error: smtp.to_string(),
                };
                match self.enqueue(&meta, &raw).await {
                    Ok(queued) => {
                        tracing::warn!(
                            error = %smtp,
                            file = %queued.display(),
                            "SMTP delivery failed; message queued for retry"
                        );
                        self.refresh_depth().await;
                        self.inner.queued.notify_one();
                        Err(MailError::Queued {
                            queued,
                            source: smtp,
                        })
                    }
                    Err(queue) => {
                        tracing::error!(
                            error = %smtp,
                            queue_error = %queue,
                            "SMTP delivery failed and the message could not be queued"
                        );
                        Err(MailError::Lost {
                            smtp,
                            queue: Box::new(queue),
                        })
                    }
                }
            }
        }
    }

    /// Start the task that resends queued messages, with exponential backoff between rounds,
    /// deleting each file once delivered. Call once per state directory, from within a tokio
    /// runtime; a second call returns a task that ends at once. Abort the handle at shutdown:
    /// a message interrupted mid-send stays queued (at worst it is sent twice, never lost).
    pub fn spawn_retry(&self) -> tokio::task::JoinHandle<()> {
        if self.inner.retry_running.swap(true, Ordering::SeqCst) {
            tracing::warn!("mail retry task already running; not starting another");
            return tokio::spawn(async {});
        }
        let mailer = self.clone();
        tokio::spawn(async move { mailer.retry_loop().await })
    }

    async fn retry_loop(self) {
        let backoff = self.inner.backoff;
        let mut delay = backoff.initial;
        loop {
            let remaining = self.retry_round().await;
            if remaining == 0 {
                delay = backoff.initial;
                // Idle: wake when a message is queued, and now and then anyway in case files
                // were put back by hand (e.g. from failed/).
                tokio::select! {
                    _ = self.inner.queued.notified() => {}
                    _ = tokio::time::sleep(backoff.max) => {}
                }
            } else {
                tracing::debug!(remaining, ?delay, "mail queue not empty; retrying later");
                tokio::select! {
                    _ = self.inner.recovered.notified() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(backoff.max);
            }
        }
    }

    /// One pass over the queue, oldest first. Stops at the first transient failure (the server
    /// is down or busy: the rest would fail the same way). Returns the messages left.
    async fn retry_round(&self) -> u64 {
        let files = match list_queue(&self.inner.queue_dir).await {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the mail queue");
                return self.queue_depth().max(1);
            }
        };
        for path in files {
            let (mut meta, raw) = match read_queue_file(&path).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        file = %path.display(),
                        "unreadable mail queue file; moving it aside"
                    );
                    self.move_to_failed(&path).await;
                    continue;
                }
            };
            let envelope = match meta.envelope() {
                Ok(envelope) => envelope,
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        file = %path.display(),
                        "bad envelope in mail queue file; moving it aside"
                    );
                    self.move_to_failed(&path).await;
                    continue;
                }
            };
            match self.deliver(&envelope, &raw).await {
                Ok(()) => {
                    metrics::counter!("ebok_mail_sent_total").increment(1);
                    tracing::info!(
                        file = %path.display(),
                        attempts = meta.attempts + 1,
                        "queued mail delivered"
                    );
                    if let Err(e) = tokio::fs::remove_file(&path).await {
                        // Delivered but still here: it would be sent again. Loud, not fatal.
                        tracing::error!(
                            error = %e,
                            file = %path.display(),
                            "cannot delete delivered mail from the queue"
                        );
                    }
                }
                Err(e) => {
                    metrics::counter!("ebok_mail_failures_total").increment(1);
                    meta.attempts += 1;
                    meta.last_error = e.to_string();
                    let permanent = matches!(&e, DeliveryError::Smtp(s) if s.is_permanent());
                    if !permanent {
                        tracing::warn!(error = %e, file = %path.display(), "mail retry failed");
                        if let Err(e) = write_queue_file(&path, &meta, &raw).await {
                            tracing::warn!(error = %e, "cannot update mail queue file");
                        }
                        break;
                    }
                    meta.permanent_failures += 1;
                    if meta.permanent_failures >= MAX_PERMANENT_ATTEMPTS {
                        tracing::error!(
                            error = %e,
                            file = %path.display(),
                            "mail rejected permanently; moved to {}",
                            self.inner.failed_dir.display()
                        );
                        if let Err(e) = write_queue_file(&path, &meta, &raw).await {
                            tracing::warn!(error = %e, "cannot update mail queue file");
                        }
                        self.move_to_failed(&path).await;
                    } else {
                        tracing::warn!(
                            error = %e,
                            file = %path.display(),
                            "mail rejected; will retry"
                        );
                        if let Err(e) = write_queue_file(&path, &meta, &raw).await {
                            tracing::warn!(error = %e, "cannot update mail queue file");
                        }
                    }
                }
            }
        }
        self.refresh_depth().await
    }

    async fn move_to_failed(&self, path: &Path) {
        let Some(name) = path.file_name() else { return };
        let target = self.inner.failed_dir.join(name);
        if let Err(e) = tokio::fs::rename(path, &target).await {
            tracing::error!(
                error = %e,
                file = %path.display(),
                "cannot move mail to the failed folder"
            );
        }
    }

    fn build(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to = parse_mailbox(&mail.to).map_err(|source| MailError::Recipient {
            to: mail.to.clone(),
            source,
        })?;
        let mut builder = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .date_now()
            .message_id(Some(format!(
                "<{}.{:016x}@{}>",
                unix_millis(),
                rand::random::<u64>(),
                self.inner.message_id_domain
            )))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                mail.language.to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            // Asks Exchange-style servers not to send out-of-office replies to us.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".to_owned(),
            ));
        if let Some(reply_to) = &self.inner.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        // A single text body, not a MIME part: lettre would add a CRLF after a part, which
        // readers show as an extra empty line. The encoding (7bit, quoted-printable or base64)
        // is chosen by lettre; line endings become CRLF.
        Ok(builder
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())?)
    }

    async fn deliver(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), DeliveryError> {
        match &self.inner.transport {
            // lettre ends DATA with "\r\n.\r\n" whatever the message ends with; without this
            // a message ending in CRLF would arrive with an extra empty line.
            Transport::Smtp(smtp) => smtp
                .send_raw(envelope, raw.strip_suffix(b"\r\n").unwrap_or(raw))
                .await
                .map(|_| ())
                .map_err(DeliveryError::Smtp),
            Transport::Outbox(dir) => {
                let path = dir.join(format!("{}.eml", file_stem()));
                write_atomic(&path, raw).await.map_err(DeliveryError::Io)?;
                tracing::info!(file = %path.display(), "mail written to the outbox");
                Ok(())
            }
        }
    }

    async fn enqueue(&self, meta: &QueueMeta, raw: &[u8]) -> Result<PathBuf, MailError> {
        let path = self
            .inner
            .queue_dir
            .join(format!("{}.{QUEUE_EXT}", file_stem()));
        write_queue_file(&path, meta, raw).await?;
        Ok(path)
    }

    async fn refresh_depth(&self) -> u64 {
        let depth = match list_queue(&self.inner.queue_dir).await {
            Ok(files) => files.len() as u64,
            Err(_) => return self.queue_depth(),
        };
        self.set_depth(depth);
        depth
    }

    fn refresh_depth_sync(&self) -> u64 {
        let depth = std::fs::read_dir(&self.inner.queue_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| is_queue_file(&e.path()))
                    .count() as u64
            })
            .unwrap_or(0);
        self.set_depth(depth);
        depth
    }

    fn set_depth(&self, depth: u64) {
        self.inner.depth.store(depth, Ordering::Relaxed);
        metrics::gauge!("ebok_mail_queue_depth").set(depth as f64);
    }
}

fn smtp_transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let host = cfg.host.as_deref().unwrap_or_default().trim().to_owned();
    let tls = match cfg.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => {
            Tls::Required(TlsParameters::new(host.clone()).map_err(MailError::Transport)?)
        }
        SmtpTls::Tls => {
            Tls::Wrapper(TlsParameters::new(host.clone()).map_err(MailError::Transport)?)
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(cfg.effective_port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(cfg.timeout_secs)))
        .pool_config(PoolConfig::new().max_size(4));
    if let Some(username) = &cfg.username {
        let password = match (&cfg.password, &cfg.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(file)) => read_password_file(file)?,
            (None, None) => String::new(),
        };
        // lettre sends AUTH over an unencrypted connection too when told to; `tls = "none"`
        // is documented as "trusted relay only", so say so when it is not on this machine.
        if cfg.tls == SmtpTls::None && !is_local_host(&host) {
            tracing::warn!(
                host = %host,
                "mail.smtp.tls = \"none\" with credentials: \
                 the password crosses the network unencrypted"
            );
        }
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(builder.build())
}

fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A file name that sorts by creation time and does not collide.
fn file_stem() -> String {
    format!("{:013}-{:08x}", unix_millis(), rand::random::<u32>())
}

fn is_queue_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().and_then(|e| e.to_str()) == Some(QUEUE_EXT)
}

async fn list_queue(dir: &Path) -> Result<Vec<PathBuf>, MailError> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(io_error(dir))?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(io_error(dir))? {
        let path = entry.path();
        if is_queue_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

async fn write_queue_file(path: &Path, meta: &QueueMeta, raw: &[u8]) -> Result<(), MailError> {
    let mut bytes = serde_json::to_vec(meta).expect("queue meta serializes");
    bytes.push(b'\n');
    bytes.extend_from_slice(raw);
    write_atomic(path, &bytes).await
}

async fn read_queue_file(path: &Path) -> Result<(QueueMeta, Vec<u8>), MailError> {
    let bytes = tokio::fs::read(path).await.map_err(io_error(path))?;
    let bad = |what: String| MailError::Io {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header line".to_owned()))?;
    let meta: QueueMeta = serde_json::from_slice(&bytes[..newline])
        .map_err(|e| bad(format!("bad header line: {e}")))?;
    Ok((meta, bytes[newline + 1..].to_vec()))
}

/// Write `bytes` to `path` so that a reader sees either nothing or the whole file: a dot-named
/// temporary file in the same directory, fsync, rename, fsync of the directory.
async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MailError> {
    use tokio::io::AsyncWriteExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("mail");
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, path).await?;
        tokio::fs::File::open(dir).await?.sync_all().await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result.map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicU8;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    const SUBJECT: &str = "Przywrócenie hasła — zażółć gęślą jaźń";
    const TEXT: &str = "Dzień dobry,\r\n\r\nŻółw śpi. Łódź, Gdańsk, Kraków.\r\n\
                        .kropka na początku wiersza\r\nZAŻÓŁĆ GĘŚLĄ JAŹŃ\r\n";

    fn polish_mail() -> OutgoingMail {
        OutgoingMail {
            to: "Paweł Żak <pawel@example.pl>".to_owned(),
            subject: SUBJECT.to_owned(),
            text: TEXT.to_owned(),
            language: "pl",
        }
    }

    fn fast() -> Backoff {
        Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        }
    }

    /// What the fake SMTP server does with MAIL FROM.
    const ACCEPT: u8 = 0;
    const BUSY: u8 = 1; // 451
    const REJECT: u8 = 2; // 550

    #[derive(Debug, Clone, Default)]
    struct Received {
        auth: Option<(String, String)>,
        mail_from: String,
        rcpt_to: Vec<String>,
        data: Vec<u8>,
    }

    #[derive(Clone, Default)]
    struct Seen {
        messages: Arc<Mutex<Vec<Received>>>,
        mail_commands: Arc<AtomicU64>,
        auth_commands: Arc<AtomicU64>,
    }

    impl Seen {
        fn messages(&self) -> Vec<Received> {
            self.messages.lock().unwrap().clone()
        }
    }

    /// A small SMTP server: greeting, EHLO with AUTH PLAIN LOGIN, AUTH, MAIL, RCPT, DATA with
    /// dot-unstuffing, RSET, NOOP, QUIT. `mode` decides the answer to MAIL FROM.
    fn fake_smtp(listener: TcpListener, mode: Arc<AtomicU8>) -> Seen {
        let seen = Seen::default();
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, mode) = (s.clone(), mode.clone());
                tokio::spawn(async move {
                    let _ = smtp_session(stream, s, mode).await;
                });
            }
        });
        seen
    }

    async fn smtp_session(
        stream: tokio::net::TcpStream,
        seen: Seen,
        mode: Arc<AtomicU8>,
    ) -> io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        async fn read_line(
            r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
            line: &mut String,
        ) -> io::Result<bool> {
            line.clear();
            Ok(r.read_line(line).await? > 0)
        }
        w.write_all(b"220 mx.test ESMTP fake\r\n").await?;
        let mut current = Received::default();
        let mut auth = None;
        while read_line(&mut r, &mut line).await? {
            let cmd = line.trim_end_matches(['\r', '\n']).to_owned();
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                w.write_all(b"250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                    .await?;
            } else if upper.starts_with("HELO") {
                w.write_all(b"250 mx.test\r\n").await?;
            } else if upper.starts_with("AUTH PLAIN") {
                seen.auth_commands.fetch_add(1, Ordering::SeqCst);
                let initial = cmd[10..].trim().to_owned();
                let b64 = if initial.is_empty() {
                    w.write_all(b"334 \r\n").await?;
                    read_line(&mut r, &mut line).await?;
                    line.trim().to_owned()
                } else {
                    initial
                };
                let decoded = base64_decode(&b64);
                let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                auth = Some((
                    String::from_utf8(parts[1].to_vec()).unwrap(),
                    String::from_utf8(parts[2].to_vec()).unwrap(),
                ));
                w.write_all(b"235 2.7.0 ok\r\n").await?;
            } else if upper.starts_with("AUTH LOGIN") {
                seen.auth_commands.fetch_add(1, Ordering::SeqCst);
                w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                read_line(&mut r, &mut line).await?;
                let user = String::from_utf8(base64_decode(line.trim())).unwrap();
                w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                read_line(&mut r, &mut line).await?;
                let pass = String::from_utf8(base64_decode(line.trim())).unwrap();
                auth = Some((user, pass));
                w.write_all(b"235 2.7.0 ok\r\n").await?;
            } else if upper.starts_with("MAIL FROM:") {
                seen.mail_commands.fetch_add(1, Ordering::SeqCst);
                match mode.load(Ordering::SeqCst) {
                    BUSY => w.write_all(b"451 4.3.0 try again later\r\n").await?,
                    REJECT => w.write_all(b"550 5.7.1 not from you\r\n").await?,
                    _ => {
                        current = Received {
                            auth: auth.clone(),
                            mail_from: angle(&cmd),
                            ..Received::default()
                        };
                        w.write_all(b"250 2.1.0 ok\r\n").await?;
                    }
                }
            } else if upper.starts_with("RCPT TO:") {
                current.rcpt_to.push(angle(&cmd));
                w.write_all(b"250 2.1.5 ok\r\n").await?;
            } else if upper == "DATA" {
                w.write_all(b"354 go ahead\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if r.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    // RFC 5321 4.5.2: a leading dot was doubled by the client.
                    let raw = if raw.starts_with(b"..") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    data.extend_from_slice(raw);
                }
                current.data = data;
                seen.messages.lock().unwrap().push(current.clone());
                w.write_all(b"250 2.0.0 queued\r\n").await?;
            } else if upper == "RSET" || upper == "NOOP" {
                w.write_all(b"250 2.0.0 ok\r\n").await?;
            } else if upper == "QUIT" {
                w.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            } else {
                w.write_all(b"502 5.5.2 what?\r\n").await?;
            }
        }
        Ok(())
    }

    fn angle(cmd: &str) -> String {
        let start = cmd.find('<').map(|i| i + 1).unwrap_or(0);
        let end = cmd[start..]
            .find('>')
            .map(|i| start + i)
            .unwrap_or(cmd.len());
        cmd[start..end].to_owned()
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    fn smtp_config(addr: SocketAddr) -> MailConfig {
        MailConfig {
            transport: MailTransport::Smtp,
            from: "e-BOK Przykład-Net <ebok@przyklad.pl>".to_owned(),
            reply_to: Some("BOK <bok@przyklad.pl>".to_owned()),
            smtp: SmtpConfig {
                host: Some(addr.ip().to_string()),
                port: Some(addr.port()),
                tls: SmtpTls::None,
                username: Some("ebok".to_owned()),
                password: Some("tajne hasło ąę".to_owned()),
                timeout_secs: 5,
                ..SmtpConfig::default()
            },
            ..MailConfig::default()
        }
    }

    fn queue_files(mailer: &Mailer) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(mailer.queue_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| is_queue_file(p))
            .collect();
        files.sort();
        files
    }

    /// Poll until `cond` holds; panics after 10 s.
    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Checks the headers and body of a message as a mail reader would decode them.
    fn assert_polish_message(raw: &[u8]) {
        let parsed = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("message parses");
        assert_eq!(parsed.subject(), Some(SUBJECT));
        let from = parsed.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.address(), Some("ebok@przyklad.pl"));
        assert_eq!(from.name(), Some("e-BOK Przykład-Net"));
        let to = parsed.to().and_then(|a| a.first()).expect("To");
        assert_eq!(to.address(), Some("pawel@example.pl"));
        assert_eq!(to.name(), Some("Paweł Żak"));
        let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
        assert_eq!(reply_to.address(), Some("bok@przyklad.pl"));
        assert_eq!(
            parsed.header_raw("Content-Language").map(str::trim),
            Some("pl")
        );
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        let message_id = parsed.message_id().expect("Message-ID");
        assert!(message_id.ends_with("@przyklad.pl"), "{message_id}");
        assert!(parsed.date().is_some(), "Date");
        let body = parsed.body_text(0).expect("text body");
        assert_eq!(body.replace("\r\n", "\n"), TEXT.replace("\r\n", "\n"));
        // The raw headers themselves are 7-bit: the Polish subject is encoded, not raw UTF-8.
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        assert!(raw[..head_end].is_ascii());
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        assert!(
            head.contains("content-type: text/plain; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("mime-version: 1.0"), "{head}");
    }

    #[tokio::test]
    async fn smtp_exchange_with_auth_delivers_polish_mail() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
        let state = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(&smtp_config(addr), state.path()).unwrap();
        assert_eq!(mailer.outbox_dir(), None);

        mailer.send(&polish_mail()).await.expect("sent");

        let got = seen.messages();
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(
            m.auth,
            Some(("ebok".to_owned(), "tajne hasło ąę".to_owned()))
        );
        assert_eq!(m.mail_from, "ebok@przyklad.pl");
        assert_eq!(m.rcpt_to, vec!["pawel@example.pl".to_owned()]);
        assert_polish_message(&m.data);

        // Mostly ASCII text goes as 7bit or quoted-printable, line by line: lines that begin
        // with a dot, and a line that is only a dot, must survive the SMTP dot-stuffing.
        let dotted = "Linia 1\r\n.\r\n..dwie kropki\r\n.kropka\r\nKoniec, dziękujemy.\r\n";
        let mail = OutgoingMail {
            to: "jan@example.pl".to_owned(),
            subject: "Hello".to_owned(),
            text: dotted.to_owned(),
            language: "en",
        };
        mailer.send(&mail).await.expect("sent");
        let got = seen.messages();
        assert_eq!(got.len(), 2);
        let parsed = mail_parser::MessageParser::default()
            .parse(&got[1].data)
            .unwrap();
        assert_eq!(parsed.subject(), Some("Hello"));
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            dotted.replace("\r\n", "\n")
        );
        assert!(queue_files(&mailer).is_empty());
    }

    #[tokio::test]
    async fn starttls_is_required_not_opportunistic() {
        // The fake server does not offer STARTTLS: nothing may go out in plain text.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
        let state = tempfile::tempdir().unwrap();
        let mut cfg = smtp_config(addr);
        cfg.smtp.tls = SmtpTls::Starttls;
        let mailer = Mailer::new(&cfg, state.path()).unwrap();
        let err = mailer.send(&polish_mail()).await.unwrap_err();
        assert!(err.is_queued(), "{err}");
        assert_eq!(
            seen.auth_commands.load(Ordering::SeqCst),
            0,
            "password sent in clear"
        );
        assert_eq!(seen.mail_commands.load(Ordering::SeqCst), 0);
        assert!(seen.messages().is_empty());
        assert_eq!(queue_files(&mailer).len(), 1);
    }

    #[tokio::test]
    async fn smtp_password_file_is_read_and_trimmed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
        let state = tempfile::tempdir().unwrap();
        let file = state.path().join("smtp-password");
        std::fs::write(&file, "  z pliku\n").unwrap();
        let mut cfg = smtp_config(addr);
        cfg.smtp.password = None;
        cfg.smtp.password_file = Some(file);
        let mailer = Mailer::new(&cfg, state.path()).unwrap();
        mailer.send(&polish_mail()).await.expect("sent");
        assert_eq!(
            seen.messages()[0].auth,
            Some(("ebok".to_owned(), "z pliku".to_owned()))
        );
    }

    #[tokio::test]
    async fn busy_server_queues_then_retry_delivers() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let _guard = metrics::set_default_local_recorder(&recorder);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(BUSY));
        let seen = fake_smtp(listener, mode.clone());
        let state = tempfile::tempdir().unwrap();
        let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();

        let err = mailer.send(&polish_mail()).await.unwrap_err();
        assert!(err.is_queued(), "{err}");
        assert!(err.to_string().contains("451"), "{err}");
        let files = queue_files(&mailer);
        assert_eq!(files.len(), 1);
        assert_eq!(mailer.queue_depth(), 1);
        assert!(seen.messages().is_empty());

        let retry = mailer.spawn_retry();
        // The retry task keeps trying while the server is busy, and the message stays queued.
        wait_for("a retry attempt", || {
            seen.mail_commands.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert_eq!(queue_files(&mailer), files);

        mode.store(ACCEPT, Ordering::SeqCst);
        wait_for("delivery", || seen.messages().len() == 1).await;
        wait_for("empty queue", || queue_files(&mailer).is_empty()).await;
        // The gauge follows the file removal a moment later.
        wait_for("queue depth 0", || mailer.queue_depth() == 0).await;
        let m = &seen.messages()[0];
        assert_eq!(m.rcpt_to, vec!["pawel@example.pl".to_owned()]);
        assert_polish_message(&m.data);
        retry.abort();

        let text = metrics.render();
        assert!(text.contains("ebok_mail_sent_total 1"), "{text}");
        assert!(text.contains("ebok_mail_queue_depth 0"), "{text}");
        let failures: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("ebok_mail_failures_total "))
            .expect("failures counter")
            .parse()
            .unwrap();
        assert!(failures >= 3, "{text}");
    }

    #[tokio::test]
    async fn refused_connection_queues_then_retry_delivers_after_restart() {
        // A port with nobody listening: bind, note the port, close.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let state = tempfile::tempdir().unwrap();
        let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();
        let err = mailer.send(&polish_mail()).await.unwrap_err();
        assert!(err.is_queued(), "{err}");
        assert_eq!(queue_files(&mailer).len(), 1);

        // A fresh Mailer on the same state directory picks up the queue (as after a restart).
        drop(mailer);
        let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();
        assert_eq!(mailer.queue_depth(), 1);
        let retry = mailer.spawn_retry();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(queue_files(&mailer).len(), 1, "nothing to deliver to yet");

        let listener = TcpListener::bind(addr).await.unwrap();
        let seen = fake_smtp(listener, Arc::new(AtomicU8::new(ACCEPT)));
        wait_for("empty queue", || queue_files(&mailer).is_empty()).await;
        assert_eq!(seen.messages().len(), 1);
        assert_polish_message(&seen.messages()[0].data);
        retry.abort();
    }

    #[tokio::test]
    async fn permanent_rejection_ends_in_failed_folder() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = fake_smtp(listener, Arc::new(AtomicU8::new(REJECT)));
        let state = tempfile::tempdir().unwrap();
        let mailer = Mailer::with_backoff(&smtp_config(addr), state.path(), fast()).unwrap();
        let err = mailer.send(&polish_mail()).await.unwrap_err();
        assert!(err.is_queued(), "{err}");
        let retry = mailer.spawn_retry();
        let failed = state.path().join("mail-queue/failed");
        wait_for("the message in failed/", || {
            std::fs::read_dir(&failed).unwrap().count() == 1
        })
        .await;
        assert!(queue_files(&mailer).is_empty());
        assert_eq!(
            seen.mail_commands.load(Ordering::SeqCst),
            u64::from(MAX_PERMANENT_ATTEMPTS)
        );
        let kept = std::fs::read_dir(&failed).unwrap().next().unwrap().unwrap();
        let (meta, raw) = read_queue_file(&kept.path()).await.unwrap();
        assert!(meta.last_error.contains("550"), "{}", meta.last_error);
        assert_polish_message(&raw);
        retry.abort();
    }

    #[tokio::test]
    async fn second_retry_task_is_refused() {
        let state = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(&MailConfig::default(), state.path()).unwrap();
        let first = mailer.spawn_retry();
        let second = mailer.clone().spawn_retry();
        second.await.unwrap();
        assert!(!first.is_finished());
        first.abort();
    }

    #[tokio::test]
    async fn outbox_writes_parsable_eml() {
        let state = tempfile::tempdir().unwrap();
        let cfg = MailConfig {
            from: "e-BOK Przykład-Net <ebok@przyklad.pl>".to_owned(),
            reply_to: Some("BOK <bok@przyklad.pl>".to_owned()),
            ..MailConfig::default()
        };
        let mailer = Mailer::new(&cfg, state.path()).unwrap();
        let outbox = state.path().join("outbox");
        assert_eq!(mailer.outbox_dir(), Some(outbox.as_path()));
        assert!(outbox.is_dir());

        mailer.send(&polish_mail()).await.unwrap();
        let mut english = polish_mail();
        english.language = "en";
        mailer.send(&english).await.unwrap();

        let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.iter().all(|f| f.extension().unwrap() == "eml"));
        // Two mails written in the same millisecond may sort either way by name: tell them
        // apart by their language.
        let mut mails: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        mails.sort_by_key(|m| {
            let parsed = mail_parser::MessageParser::default().parse(m).unwrap();
            parsed
                .header_raw("Content-Language")
                .map(|l| l.trim() == "en")
        });
        let raw = mails[0].clone();
        assert_polish_message(&raw);
        let second = mails[1].clone();
        let parsed = mail_parser::MessageParser::default()
            .parse(&second)
            .unwrap();
        assert_eq!(
            parsed.header_raw("Content-Language").map(str::trim),
            Some("en")
        );
        assert_ne!(
            parsed.message_id(),
            mail_parser::MessageParser::default()
                .parse(&raw)
                .unwrap()
                .message_id()
        );
    }

    #[tokio::test]
    async fn outbox_dir_from_config_is_created() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("deep/er/outbox");
        let cfg = MailConfig {
            outbox_dir: Some(dir.clone()),
            ..MailConfig::default()
        };
        let mailer = Mailer::new(&cfg, state.path()).unwrap();
        mailer.send(&polish_mail()).await.unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn bad_recipient_is_an_error() {
        let state = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(&MailConfig::default(), state.path()).unwrap();
        let mut mail = polish_mail();
        mail.to = "nie-adres".to_owned();
        let err = mailer.send(&mail).await.unwrap_err();
        assert!(matches!(err, MailError::Recipient { .. }), "{err}");
    }

    #[test]
    fn config_parses_from_toml_with_defaults() {
        let cfg: MailConfig = toml::from_str(
            r#"
            transport = "smtp"
            from = "e-BOK <ebok@example.pl>"
            [smtp]
            host = "smtp.example.pl"
            tls = "tls"
            username = "ebok"
            password = "sekret"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.transport, MailTransport::Smtp);
        assert_eq!(cfg.smtp.tls, SmtpTls::Tls);
        assert_eq!(cfg.smtp.effective_port(), 465);
        assert_eq!(cfg.smtp.timeout_secs, 10);
        cfg.check().unwrap();
        let default = MailConfig::default();
        assert_eq!(default.transport, MailTransport::Outbox);
        assert_eq!(default.smtp.effective_port(), 587);
        default.check().unwrap();
        assert!(toml::from_str::<MailConfig>("smtp = { hots = \"x\" }").is_err());
        assert!(toml::from_str::<MailConfig>("transport = \"sendmail\"").is_err());
    }

    #[test]
    fn password_never_in_debug() {
        let cfg = smtp_config("127.0.0.1:25".parse().unwrap());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("tajne"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
        let state = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let mailer = Mailer::new(&cfg, state.path()).unwrap();
        let shown = format!("{mailer:?}");
        assert!(!shown.contains("tajne"), "{shown}");
    }

    #[test]
    fn check_names_the_key() {
        let state = tempfile::tempdir().unwrap();
        let smtp = || MailConfig {
            transport: MailTransport::Smtp,
            smtp: SmtpConfig {
                host: Some("smtp.example.pl".to_owned()),
                ..SmtpConfig::default()
            },
            ..MailConfig::default()
        };
        let key = |cfg: MailConfig| cfg.check().unwrap_err().key;
        smtp().check().unwrap();

        let mut c = smtp();
        c.smtp.host = None;
        assert_eq!(key(c), "mail.smtp.host");
        let mut c = smtp();
        c.smtp.host = Some("  ".to_owned());
        let err = c.check().unwrap_err();
        assert_eq!(err.key, "mail.smtp.host");
        assert!(err.to_string().starts_with("mail.smtp.host: "), "{err}");

        assert_eq!(
            key(MailConfig {
                from: "not an address".to_owned(),
                ..MailConfig::default()
            }),
            "mail.from"
        );
        assert_eq!(
            key(MailConfig {
                reply_to: Some("bok@".to_owned()),
                ..MailConfig::default()
            }),
            "mail.reply_to"
        );

        let mut c = smtp();
        c.smtp.username = Some("u".to_owned());
        c.smtp.password = Some("p".to_owned());
        c.smtp.password_file = Some(state.path().join("pw"));
        assert_eq!(key(c), "mail.smtp.password_file");

        let mut c = smtp();
        c.smtp.username = Some("u".to_owned());
        c.smtp.password_file = Some(state.path().join("missing"));
        let err = c.check().unwrap_err();
        assert_eq!(err.key, "mail.smtp.password_file");
        assert!(err.reason.contains("cannot read"), "{err}");

        let mut c = smtp();
        c.smtp.username = Some("u".to_owned());
        assert_eq!(key(c), "mail.smtp.password");

        let mut c = smtp();
        c.smtp.password = Some("p".to_owned());
        assert_eq!(key(c), "mail.smtp.username");

        let mut c = smtp();
        c.smtp.timeout_secs = 0;
        assert_eq!(key(c), "mail.smtp.timeout_secs");

        let mut c = smtp();
        c.smtp.port = Some(0);
        assert_eq!(key(c), "mail.smtp.port");

        let mut c = smtp();
        c.retry_max_secs = 1;
        assert_eq!(key(c), "mail.retry_max_secs");

        // Mailer::new refuses the same configuration with the same message.
        let mut c = smtp();
        c.smtp.host = None;
        let err = Mailer::new(&c, state.path()).unwrap_err();
        assert!(err.to_string().contains("mail.smtp.host"), "{err}");
    }
}
