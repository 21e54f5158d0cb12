//! Delivery of a built message: SMTP (lettre, pooled) or the outbox folder.

use super::*;

/// What a delivery attempt of raw bytes ended with.
pub(super) enum DeliveryError {
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

impl Mailer {
    pub(super) async fn deliver(
        &self,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), DeliveryError> {
        match &self.inner.transport {
            // lettre ends DATA with "\r\n.\r\n" whatever the message ends with; without this
            // a message ending in CRLF would arrive with an extra empty line.
            Transport::Smtp(smtp) => smtp
                .send_raw(envelope, raw.strip_suffix(b"\r\n").unwrap_or(raw))
                .await
                .map(|_| ())
                .map_err(DeliveryError::Smtp),
            Transport::Outbox(dir) => write_to_outbox(dir, raw).await.map_err(DeliveryError::Io),
        }
    }
}

pub(super) fn smtp_transport(
    cfg: &SmtpConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
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

pub(super) fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}
