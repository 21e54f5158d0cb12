//! The `[mail]` configuration: transport, sender, SMTP server and retry backoff, and its
//! checks.

use super::*;

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
    pub(crate) fn default_port(self) -> u16 {
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
    pub(crate) fn effective_port(&self) -> u16 {
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
    /// Mail the subscribers an outage or maintenance notice touches, once per notice.
    pub notices: bool,
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
            notices: false,
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

pub(super) fn config_error(key: &'static str, reason: impl Into<String>) -> MailConfigError {
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

pub(super) fn read_password_file(path: &Path) -> Result<String, MailConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| {
            config_error(
                "mail.smtp.password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
}

pub(super) fn parse_mailbox(s: &str) -> Result<Mailbox, lettre::address::AddressError> {
    s.trim().parse()
}
