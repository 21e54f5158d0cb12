//! The panel's and the ops API's settings: `[web]`, `[isp]` and `[ops]` as the
//! configuration file gives them, and [`PanelConfig`], everything the application state is
//! built from (the binary's configuration composes it).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ebok_live::redis_link::RedisTarget;
use ebok_radius::nas::parse_prefix;
use ipnet::IpNet;
use serde::Deserialize;

use crate::mail::MailConfig;

/// What the panel and the ops API are built from.
#[derive(Debug, Clone, Default)]
pub struct PanelConfig {
    pub web: WebConfig,
    pub isp: IspConfig,
    pub ops: OpsConfig,
    pub mail: MailConfig,
    /// The state directory (the mail queue and outbox live under it).
    pub state_dir: PathBuf,
    /// Panel sessions and rate-limit counters shared through Redis (every instance sees
    /// them), when the live map is there; else in SQL and in memory.
    pub shared: Option<SharedRedis>,
    /// `run --demo`: the loopback line is the demo's.
    pub demo: bool,
    /// `[reminders]`: payment reminders by mail; `None` (the section absent): none.
    pub reminders: Option<crate::web::billing::RemindersConfig>,
}

/// Where Redis is (one server, a Cluster, or Sentinel) and the key prefix the panel's keys go
/// under.
#[derive(Clone)]
pub struct SharedRedis {
    pub target: RedisTarget,
    pub prefix: String,
}

impl std::fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRedis")
            .field("target", &self.target.describe())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A host name as compared: lower case, no trailing dot; an IP address in its canonical
/// text.
pub fn host_name(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host,
    }
}

/// `[web]`: the HTTP listener of the panel and the ops API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// The address subscribers reach the panel at (`https://ebok.example.pl`); links in
    /// mails are built from it, and the panel answers only to its host name (and
    /// `host_aliases`). Required unless `listen` is a loopback address (or `run --demo`).
    pub public_url: String,
    /// Other host names the panel answers to (the reverse proxy's, an operator's name).
    pub host_aliases: Vec<String>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` is believed (prefixes or
    /// addresses). Everyone else is identified by the TCP peer address.
    pub trusted_proxies: Vec<String>,
    /// Mark cookies `Secure`. Unset: on when `public_url` is https or a trusted proxy says
    /// the request came over TLS.
    pub secure_cookies: Option<bool>,
    /// Minutes without a request after which a panel session ends.
    pub session_idle_minutes: u64,
    /// Hours after login after which a panel session ends however active it is.
    pub session_absolute_hours: u64,
    /// Panel accounts one subscriber may register.
    pub accounts_per_subscriber: u32,
    /// Seconds a connection may take to send a request head, and may stay idle between
    /// requests.
    pub header_timeout_secs: u64,
    /// Seconds from a request's head to the answer (the body included): a request sent a
    /// byte a second gets 408.
    pub request_timeout_secs: u64,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            // Loopback: a panel on other addresses needs its public_url (see
            // `validate_for_serving`), and belongs behind a TLS reverse proxy anyway.
            listen: "127.0.0.1:8080".parse().expect("valid"),
            public_url: String::new(),
            host_aliases: Vec::new(),
            trusted_proxies: Vec::new(),
            secure_cookies: None,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            accounts_per_subscriber: 1,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl WebConfig {
    /// The host of `public_url` (`http(s)://host[:port][/…]`) as [`host_name`] writes it;
    /// `None` when unset or malformed (refused by the configuration check).
    pub fn public_host(&self) -> Option<String> {
        let url = &self.public_url;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        let authority = rest.split(['/', '?', '#']).next()?;
        if authority.contains('@') {
            return None;
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => authority.split(':').next().unwrap_or(authority),
        };
        let host = host_name(host);
        (!host.is_empty()).then_some(host)
    }

    /// The trusted-proxy prefixes (checked with the configuration).
    pub(crate) fn trusted_proxy_nets(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_prefix(p).ok())
            .collect()
    }
}

/// `[isp]`: who runs the panel, shown on every page and in mails.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IspConfig {
    /// Name shown in the page header and mails (empty: just "e-BOK").
    pub name: String,
    /// The ISP's NIP: the seller's tax id on invoices and the recipient's in transfer QR
    /// codes.
    pub nip: String,
    /// Customer office (BOK) phone.
    pub office_phone: String,
    /// Technical service phone.
    pub technical_phone: String,
    /// Opening hours, free text.
    pub hours: String,
    /// Customer office address, free text.
    pub address: String,
    /// Customer office e-mail.
    pub email: String,
    /// A PNG image printed at the top of invoice PDFs; checked with the configuration.
    pub logo: Option<PathBuf>,
    /// Host of KSeF's verification links in the invoices' QR code (KOD I): a bare host
    /// name; empty means `qr.ksef.mf.gov.pl` (production). `qr-test.ksef.mf.gov.pl` and
    /// `qr-demo.ksef.mf.gov.pl` serve KSeF's test and pre-production systems.
    pub ksef_qr_host: String,
}

impl IspConfig {
    /// `ksef_qr_host`, or KSeF's production host when empty.
    pub fn ksef_qr_host(&self) -> &str {
        if self.ksef_qr_host.is_empty() {
            crate::web::billing::ksef::DEFAULT_QR_HOST
        } else {
            &self.ksef_qr_host
        }
    }
}

/// `[ops]`: the operators' JSON API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    /// Bearer tokens accepted by `/api/v1/…`, stored as SHA-256 digests.
    pub tokens: Vec<OpsToken>,
}

/// One ops API token: who holds it and the SHA-256 (hex) of the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsToken {
    pub name: String,
    pub sha256: String,
}
