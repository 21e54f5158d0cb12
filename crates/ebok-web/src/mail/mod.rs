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

mod config;
#[cfg(test)]
mod fake_smtp;
mod files;
mod queue;
#[cfg(test)]
mod tests;
mod transport;

pub use self::config::*;
use self::files::*;
use self::queue::*;
use self::transport::*;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

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

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the reader sees.
    pub file_name: String,
    /// `image/png`, `application/pdf`, …
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// One message to send: plain UTF-8 text to one recipient, with files attached when there
/// are any.
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
    /// Files sent with the text (the message becomes multipart/mixed).
    pub attachments: Vec<Attachment>,
}

/// Register help texts for the mail metrics.
pub(crate) fn describe_metrics() {
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
    pub(crate) fn queue_depth(&self) -> u64 {
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
        let builder = builder.header(MIME_VERSION_1_0);
        if mail.attachments.is_empty() {
            // A single text body, not a MIME part: lettre would add a CRLF after a part,
            // which readers show as an extra empty line. The encoding (7bit,
            // quoted-printable or base64) is chosen by lettre; line endings become CRLF.
            return Ok(builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text.clone())?);
        }
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(mail.text.clone()));
        for a in &mail.attachments {
            let content_type = ContentType::parse(a.content_type)
                .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid"));
            parts = parts.singlepart(
                lettre::message::Attachment::new(a.file_name.clone())
                    .body(a.bytes.clone(), content_type),
            );
        }
        Ok(builder.multipart(parts)?)
    }
}
