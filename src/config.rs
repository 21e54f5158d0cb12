//! Configuration: one serde struct with defaults, read from a TOML file, overridden by
//! `EBOK_*` environment variables, then by command-line flags. Every error names the file,
//! the key and the reason.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// The commented example configuration shipped in the repository.
pub const EXAMPLE: &str = include_str!("../systemd/ebok.example.toml");

/// A configuration problem: where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(file: &str, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub radius: RadiusConfig,
    pub capture: CaptureConfig,
    pub nas: Vec<NasConfig>,
    pub sessions: SessionsConfig,
    pub database: DatabaseConfig,
    pub state: StateConfig,
    pub metrics: MetricsConfig,
    pub web: WebConfig,
    pub isp: IspConfig,
    pub mail: crate::mail::MailConfig,
    pub ops: OpsConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
    /// `ebok run --demo`: loopback lines, and a panel without `public_url` on any address.
    #[serde(skip)]
    pub demo: bool,
}

/// `[radius]`: the accounting listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// UDP addresses to bind.
    pub listen: Vec<SocketAddr>,
    /// SO_RCVBUF in bytes.
    pub recv_buffer: usize,
    /// Requests processed concurrently.
    pub max_in_flight: usize,
    /// Seconds a reply stays in the duplicate cache.
    pub duplicate_window: u64,
    /// When a NAS is answered: once the event is in the local journal (`journal`, the
    /// default: fsync'd, applied to the stores right after), or once the stores took it
    /// (`store`, the journal used only when they fail).
    pub ack_after: AckAfter,
    /// Milliseconds to wait for the live store before spooling.
    pub store_timeout_ms: u64,
    /// With `ack_after = "journal"`: niceness added to the thread that applies the journal to
    /// the stores (0..=19; 0 = no thread of its own), so answering goes first under load.
    pub replay_nice: i32,
    /// Bytes of journal records waiting for replay past which events are refused (the NAS is
    /// not answered and retries, keeping its own records) instead of filling the disk; 0: no
    /// cap. History records are always taken. The default, 4 GiB, holds about 20 million
    /// events (≈ 210 bytes each): a day of 5-minute interim updates from 70,000 sessions with
    /// the stores down, and still a small part of a state disk.
    pub journal_max_bytes: u64,
    /// Extra FreeRADIUS-format dictionary.
    pub dictionary: Option<PathBuf>,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            listen: vec![
                "0.0.0.0:1813".parse().expect("valid"),
                "[::]:1813".parse().expect("valid"),
            ],
            recv_buffer: 8 * 1024 * 1024,
            max_in_flight: 1024,
            duplicate_window: 30,
            ack_after: AckAfter::Journal,
            store_timeout_ms: 500,
            replay_nice: 10,
            journal_max_bytes: 4 << 30,
            dictionary: None,
        }
    }
}

/// `[capture]`: passive capture of accounting a NAS sends to another server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interface to read from (a mirror port, or the link to the other server); empty: off.
    pub interface: String,
    /// UDP destination ports whose datagrams are Accounting-Requests.
    pub ports: Vec<u16>,
    /// Receive frames addressed to other hosts too (needed on a mirror/SPAN port).
    pub promiscuous: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interface: String::new(),
            ports: vec![1813],
            promiscuous: false,
        }
    }
}

/// When an Accounting-Response is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckAfter {
    Journal,
    Store,
}

/// `[[nas]]`: one NAS client entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NasConfig {
    pub name: String,
    /// Source prefixes; a bare address means a single host.
    pub prefixes: Vec<String>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    #[serde(default = "default_vendor")]
    pub vendor: String,
    /// Seconds between Interim-Updates; falls back to `[sessions] interim_interval`.
    pub interim_interval: Option<u64>,
    /// Seconds of grace after two missed interims; falls back to `[sessions] grace`.
    pub grace: Option<u64>,
    /// RFC 5176 Dynamic Authorization port.
    #[serde(default = "default_coa_port")]
    pub coa_port: u16,
}

impl std::fmt::Debug for NasConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NasConfig")
            .field("name", &self.name)
            .field("prefixes", &self.prefixes)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("secret_file", &self.secret_file)
            .field("vendor", &self.vendor)
            .field("interim_interval", &self.interim_interval)
            .field("grace", &self.grace)
            .field("coa_port", &self.coa_port)
            .finish()
    }
}

fn default_vendor() -> String {
    "generic".to_owned()
}

fn default_coa_port() -> u16 {
    3799
}

/// Vendors whose NAS behaviour ebok knows.
pub const VENDORS: &[&str] = &[
    "generic",
    "mikrotik",
    "cisco",
    "juniper",
    "huawei",
    "accel-ppp",
];

/// Which live-session store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Redis,
}

/// `[sessions]`: the live map.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    pub store: StoreKind,
    pub redis_url: String,
    pub redis_prefix: String,
    pub interim_interval: u64,
    pub grace: u64,
    pub expiry_sweep_interval: u64,
    /// Shortest IPv6 prefix a session may hold as its line (ISPs delegate /48 to /64): a
    /// shorter one would let one session claim other networks' visitors.
    pub min_ipv6_prefix: u8,
    /// Accept loopback addresses as lines: only for a panel tried on the same machine
    /// (`ebok run --demo` sets it).
    pub loopback_lines: bool,
}

impl std::fmt::Debug for SessionsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionsConfig")
            .field("store", &self.store)
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("interim_interval", &self.interim_interval)
            .field("grace", &self.grace)
            .field("expiry_sweep_interval", &self.expiry_sweep_interval)
            .field("min_ipv6_prefix", &self.min_ipv6_prefix)
            .field("loopback_lines", &self.loopback_lines)
            .finish()
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            store: StoreKind::Embedded,
            redis_url: "redis://127.0.0.1:6379/".to_owned(),
            redis_prefix: "ebok:".to_owned(),
            interim_interval: 300,
            grace: 60,
            expiry_sweep_interval: 30,
            min_ipv6_prefix: 32,
            loopback_lines: false,
        }
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

/// `[database]`: SQL for history (and, later, subscriber data).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://ebok-data/ebok.sqlite".to_owned(),
        }
    }
}

/// `[state]`: local files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("ebok-data"),
        }
    }
}

/// `[metrics]`: Prometheus listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".parse().expect("valid"),
        }
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
    /// `None` when unset or malformed (refused by [`Config::validate`]).
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

    /// The trusted-proxy prefixes (checked by [`Config::validate`]).
    pub fn trusted_proxy_nets(&self) -> Vec<IpNet> {
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

/// `[retention]`: how long personal and connection data is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days of session history and daily traffic (Polish telecom law: 12 months).
    pub history_days: u32,
    /// Days the audit log is kept.
    pub audit_days: u32,
    /// Days after the end of a former subscriber's last contract until their personal data
    /// not needed for invoices is removed.
    pub former_subscriber_days: u32,
    /// Hours between pruning runs.
    pub interval_hours: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            history_days: 365,
            audit_days: 730,
            former_subscriber_days: 730,
            interval_hours: 24,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

/// Hide the password part of a URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Overrides given on the command line (applied last).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub radius_listen: Vec<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub web_listen: Option<SocketAddr>,
    pub store: Option<StoreKind>,
    pub redis_url: Option<String>,
    pub database_url: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub log_level: Option<String>,
}

/// The name errors use for a configuration that has no file.
pub const NO_FILE: &str = "(defaults)";

impl Config {
    /// Load: defaults, then the file (when given), then `EBOK_*` variables from `env`, then
    /// `cli`; finally validate.
    /// What serving the panel needs beyond [`Config::validate`]: a `public_url` unless the
    /// panel listens on loopback only or this is the demo (links in mails, and the host
    /// names it answers to, come from it).
    pub fn validate_for_serving(&self, file: &str) -> Result<(), ConfigError> {
        if self.web.public_url.is_empty() && !self.web.listen.ip().is_loopback() && !self.demo {
            return Err(ConfigError::new(
                file,
                "web.public_url",
                format!(
                    "must be set when web.listen ({}) is not a loopback address: mails link \
                     to it, and the panel answers only to its host name",
                    self.web.listen
                ),
            ));
        }
        Ok(())
    }

    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        cli: &CliOverrides,
    ) -> Result<Config, ConfigError> {
        let file = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| NO_FILE.to_owned());
        let mut doc = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::new(&file, "-", format!("cannot read: {e}")))?;
                text.parse::<toml::Table>()
                    .map_err(|e| toml_error(&file, &text, &e))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut doc, env).map_err(|(key, reason)| {
            ConfigError::new(&file, key, format!("{reason} (from the environment)"))
        })?;
        let mut config: Config = Config::deserialize(toml::Value::Table(doc.clone()))
            .map_err(|e| ConfigError::new(&file, guess_key(&e.to_string()), e.message()))?;
        config.apply_cli(cli);
        config.validate(&file)?;
        Ok(config)
    }

    fn apply_cli(&mut self, cli: &CliOverrides) {
        if !cli.radius_listen.is_empty() {
            self.radius.listen = cli.radius_listen.clone();
        }
        if let Some(a) = cli.metrics_listen {
            self.metrics.listen = a;
        }
        if let Some(a) = cli.web_listen {
            self.web.listen = a;
        }
        if let Some(s) = cli.store {
            self.sessions.store = s;
        }
        if let Some(u) = &cli.redis_url {
            self.sessions.redis_url = u.clone();
        }
        if let Some(u) = &cli.database_url {
            self.database.url = u.clone();
        }
        if let Some(d) = &cli.state_dir {
            self.state.dir = d.clone();
        }
        if let Some(l) = &cli.log_level {
            self.log.level = l.clone();
        }
    }

    /// Check what serde cannot: prefixes, secrets, ranges, URLs.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let err = |key: String, reason: String| ConfigError::new(file, key, reason);
        if self.radius.listen.is_empty() {
            return Err(err(
                "radius.listen".into(),
                "no address to listen on".into(),
            ));
        }
        if !(0..=19).contains(&self.radius.replay_nice) {
            return Err(err(
                "radius.replay_nice".into(),
                format!("{} is outside 0..=19", self.radius.replay_nice),
            ));
        }
        if self.radius.max_in_flight == 0 {
            return Err(err(
                "radius.max_in_flight".into(),
                "must be at least 1".into(),
            ));
        }
        if self.radius.store_timeout_ms == 0 || self.radius.store_timeout_ms > 2500 {
            return Err(err(
                "radius.store_timeout_ms".into(),
                "must be 1..=2500: a NAS gives up after about 3 s".into(),
            ));
        }
        if self.radius.journal_max_bytes != 0 && self.radius.journal_max_bytes < 1 << 20 {
            return Err(err(
                "radius.journal_max_bytes".into(),
                "must be 0 (no cap) or at least 1048576 (1 MiB): one batch of a burst must fit"
                    .into(),
            ));
        }
        if !self.capture.interface.is_empty() {
            if self.capture.ports.is_empty() || self.capture.ports.contains(&0) {
                return Err(err(
                    "capture.ports".into(),
                    "give at least one UDP port, none of them 0".into(),
                ));
            }
            crate::radius::capture::find_interface(&self.capture.interface)
                .map_err(|e| err("capture.interface".into(), e.to_string()))?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, nas) in self.nas.iter().enumerate() {
            let key = |k: &str| format!("nas[{i}].{k}");
            if nas.name.trim().is_empty() {
                return Err(err(key("name"), "must not be empty".into()));
            }
            if !names.insert(nas.name.clone()) {
                return Err(err(key("name"), format!("'{}' appears twice", nas.name)));
            }
            if nas.prefixes.is_empty() {
                return Err(err(key("prefixes"), "at least one prefix is needed".into()));
            }
            for (j, p) in nas.prefixes.iter().enumerate() {
                parse_prefix(p).map_err(|r| err(format!("nas[{i}].prefixes[{j}]"), r))?;
            }
            match (&nas.secret, &nas.secret_file) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        key("secret"),
                        "give either secret or secret_file, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(err(
                        key("secret"),
                        "secret or secret_file is required".into(),
                    ))
                }
                _ => {}
            }
            let secret = nas.read_secret().map_err(|r| err(key("secret_file"), r))?;
            if secret.is_empty() {
                return Err(err(key("secret"), "must not be empty".into()));
            }
            if !VENDORS.contains(&nas.vendor.as_str()) {
                return Err(err(
                    key("vendor"),
                    format!(
                        "unknown vendor '{}', expected one of {VENDORS:?}",
                        nas.vendor
                    ),
                ));
            }
            if nas.interim_interval == Some(0) {
                return Err(err(key("interim_interval"), "must be at least 1".into()));
            }
        }
        if self.sessions.interim_interval == 0 {
            return Err(err(
                "sessions.interim_interval".into(),
                "must be at least 1".into(),
            ));
        }
        if self.sessions.expiry_sweep_interval == 0 {
            return Err(err(
                "sessions.expiry_sweep_interval".into(),
                "must be at least 1".into(),
            ));
        }
        if !(1..=128).contains(&self.sessions.min_ipv6_prefix) {
            return Err(err(
                "sessions.min_ipv6_prefix".into(),
                format!("{} is outside 1..=128", self.sessions.min_ipv6_prefix),
            ));
        }
        if self.sessions.store == StoreKind::Redis
            && !(self.sessions.redis_url.starts_with("redis://")
                || self.sessions.redis_url.starts_with("rediss://")
                || self.sessions.redis_url.starts_with("redis+unix://"))
        {
            return Err(err(
                "sessions.redis_url".into(),
                "must start with redis://, rediss:// or redis+unix://".into(),
            ));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(err(
                "database.url".into(),
                "must start with sqlite: or postgres://".into(),
            ));
        }
        if !self.isp.nip.is_empty() {
            self.isp
                .nip
                .parse::<crate::store::validate::Nip>()
                .map_err(|e| err("isp.nip".into(), e.to_string()))?;
        }
        for (i, p) in self.web.trusted_proxies.iter().enumerate() {
            parse_prefix(p).map_err(|r| err(format!("web.trusted_proxies[{i}]"), r))?;
        }
        if !self.web.public_url.is_empty() && self.web.public_host().is_none() {
            return Err(err(
                "web.public_url".into(),
                "must be empty or an https:// (or http://) address with a host name".into(),
            ));
        }
        for (i, alias) in self.web.host_aliases.iter().enumerate() {
            let name = host_name(alias);
            let ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
            if !ok {
                return Err(err(
                    format!("web.host_aliases[{i}]"),
                    format!("{alias:?} is not a host name or address (no scheme, port or path)"),
                ));
            }
        }
        for (key, v) in [
            ("web.header_timeout_secs", self.web.header_timeout_secs),
            ("web.request_timeout_secs", self.web.request_timeout_secs),
            ("web.max_connections", self.web.max_connections as u64),
        ] {
            if v == 0 {
                return Err(err(key.into(), "must be at least 1".into()));
            }
        }
        if self.web.session_idle_minutes == 0 {
            return Err(err(
                "web.session_idle_minutes".into(),
                "must be at least 1".into(),
            ));
        }
        if self.web.session_absolute_hours == 0
            || self.web.session_absolute_hours * 60 < self.web.session_idle_minutes
        {
            return Err(err(
                "web.session_absolute_hours".into(),
                "must be at least 1 and not shorter than session_idle_minutes".into(),
            ));
        }
        if self.web.accounts_per_subscriber == 0 {
            return Err(err(
                "web.accounts_per_subscriber".into(),
                "must be at least 1".into(),
            ));
        }
        self.mail
            .check()
            .map_err(|e| err(e.key.to_owned(), e.reason.clone()))?;
        for (i, t) in self.ops.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(err(
                    format!("ops.tokens[{i}].name"),
                    "must not be empty".into(),
                ));
            }
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    format!("ops.tokens[{i}].sha256"),
                    "must be 64 hex digits (make one with `ebok ops token NAME`)".into(),
                ));
            }
        }
        if self.retention.history_days == 0 || self.retention.interval_hours == 0 {
            return Err(err(
                "retention".into(),
                "history_days and interval_hours must be at least 1".into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(err(
                "log.level".into(),
                format!("'{}' is not a log filter", self.log.level),
            ));
        }
        Ok(())
    }

    /// NAS entries in force: the configured ones, or the loopback default when none is set.
    pub fn nas_entries(&self) -> Vec<NasConfig> {
        if !self.nas.is_empty() {
            return self.nas.clone();
        }
        vec![NasConfig {
            name: "localhost".to_owned(),
            prefixes: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            secret: Some("testing123".to_owned()),
            secret_file: None,
            vendor: default_vendor(),
            interim_interval: None,
            grace: None,
            coa_port: default_coa_port(),
        }]
    }
}

impl NasConfig {
    /// The shared secret, from `secret` or the first line of `secret_file`.
    pub fn read_secret(&self) -> Result<Vec<u8>, String> {
        if let Some(s) = &self.secret {
            return Ok(s.as_bytes().to_vec());
        }
        let path = self.secret_file.as_ref().ok_or("no secret given")?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(text
            .lines()
            .next()
            .unwrap_or("")
            .trim_end()
            .as_bytes()
            .to_vec())
    }
}

/// A prefix, or a bare address as a host prefix.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("'{s}' is not an IP address or prefix"))
}

/// Apply `EBOK_SECTION__KEY=value` variables onto the TOML document. A value is read as a
/// TOML value when it parses as one (numbers, booleans, arrays), else as a string.
fn apply_env(
    doc: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), (String, String)> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("EBOK_") && k.contains("__"))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name["EBOK_".len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let key = path.join(".");
        if path.iter().any(|p| p.is_empty()) {
            return Err((key, format!("malformed variable name {name}")));
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut table = &mut *doc;
        for section in &path[..path.len() - 1] {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| (key.clone(), format!("{section} is not a section")))?;
        }
        table.insert(path[path.len() - 1].clone(), value);
    }
    Ok(())
}

/// A TOML syntax error with its line.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
    let key = match line {
        Some(l) => format!("line {l}"),
        None => "-".to_owned(),
    };
    ConfigError::new(file, key, e.message().trim().to_owned())
}

/// serde's messages name the offending field in backquotes; use it as the key when present.
fn guess_key(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: Vec<(&str, &str)>) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ebok.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            Some(&path),
            env.into_iter().map(|(a, b)| (a.to_owned(), b.to_owned())),
            &CliOverrides::default(),
        )
    }

    #[test]
    fn example_is_valid_and_matches_defaults() {
        let c = load_text(EXAMPLE, vec![]).unwrap();
        let d = Config::default();
        assert_eq!(c.radius.listen, d.radius.listen);
        assert_eq!(c.radius.recv_buffer, d.radius.recv_buffer);
        assert_eq!(c.radius.journal_max_bytes, d.radius.journal_max_bytes);
        assert_eq!(c.sessions.interim_interval, d.sessions.interim_interval);
        assert_eq!(c.database.url, d.database.url);
        assert_eq!(c.metrics.listen, d.metrics.listen);
        assert_eq!(c.nas.len(), 1);
        assert_eq!(c.nas[0].read_secret().unwrap(), b"testing123");
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let c = load_text(
            "[sessions]\nstore = \"embedded\"\n",
            vec![
                ("EBOK_SESSIONS__STORE", "redis"),
                ("EBOK_RADIUS__MAX_IN_FLIGHT", "7"),
                ("EBOK_RADIUS__LISTEN", "[\"127.0.0.1:1999\"]"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.sessions.store, StoreKind::Redis);
        assert_eq!(c.radius.max_in_flight, 7);
        assert_eq!(c.radius.listen, vec!["127.0.0.1:1999".parse().unwrap()]);

        let cli = CliOverrides {
            store: Some(StoreKind::Embedded),
            ..Default::default()
        };
        let c = Config::load(
            None,
            vec![("EBOK_SESSIONS__STORE".to_owned(), "redis".to_owned())],
            &cli,
        )
        .unwrap();
        assert_eq!(c.sessions.store, StoreKind::Embedded);
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let e = load_text(
            "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.0/33\"]\nsecret = \"s\"\n",
            vec![],
        )
        .unwrap_err();
        assert!(e.file.ends_with("ebok.toml"), "{e}");
        assert_eq!(e.key, "nas[0].prefixes[0]");
        assert!(e.reason.contains("10.0.0.0/33"), "{e}");

        let e = load_text("[radius]\nlisten = [\"x\"]\n", vec![]).unwrap_err();
        assert!(e.to_string().contains("invalid socket address"), "{e}");

        let e = load_text("[radius]\nlisten = \n", vec![]).unwrap_err();
        assert_eq!(e.key, "line 2", "{e}");

        let e = load_text("[radius]\nlisen = []\n", vec![]).unwrap_err();
        assert_eq!(e.key, "lisen", "{e}");
        let e = load_text("[radius]\nreplay_nice = 20\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.replay_nice", "{e}");
        assert!(e.reason.contains("0..=19"), "{e}");
        let e = load_text("[radius]\njournal_max_bytes = 4096\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.journal_max_bytes", "{e}");

        let e = load_text("[isp]\nnip = \"526-025-02-75\"\n", vec![]).unwrap_err();
        assert_eq!(e.key, "isp.nip", "{e}");
        let e = load_text("[web]\ntrusted_proxies = [\"10.0.0.0/40\"]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "web.trusted_proxies[0]", "{e}");

        let e =
            load_text("[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "nas[0].secret");

        let e = load_text(
            "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret_file = \"/nonexistent/x\"\n",
            vec![],
        )
        .unwrap_err();
        assert_eq!(e.key, "nas[0].secret_file");
        assert!(e.reason.contains("/nonexistent/x"));

        let e = load_text("[database]\nurl = \"mysql://x\"\n", vec![]).unwrap_err();
        assert_eq!(e.key, "database.url");
    }

    #[test]
    fn secret_file_first_line_and_hidden_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "s3cret\nignored\n").unwrap();
        let c = load_text(
            &format!(
                "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret_file = \"{}\"\n",
                secret.display()
            ),
            vec![],
        )
        .unwrap();
        assert_eq!(c.nas[0].read_secret().unwrap(), b"s3cret");
        let c = load_text(
            "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret = \"topsecret\"\n",
            vec![],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
        assert_eq!(
            redact_url("postgres://u:pw@h/db"),
            "postgres://u:***@h/db".to_owned()
        );
    }

    #[test]
    fn capture_interface_must_exist_and_ports_be_given() {
        let c = load_text("[capture]\ninterface = \"lo\"\n", vec![]).unwrap();
        assert_eq!(c.capture.ports, vec![1813]);
        assert!(!c.capture.promiscuous);
        let e = load_text("[capture]\ninterface = \"ebok-none0\"\n", vec![]).unwrap_err();
        assert_eq!(e.key, "capture.interface", "{e}");
        assert!(
            e.reason.contains("ebok-none0") && e.reason.contains("lo"),
            "{e}"
        );
        let e = load_text("[capture]\ninterface = \"lo\"\nports = []\n", vec![]).unwrap_err();
        assert_eq!(e.key, "capture.ports", "{e}");
        let e = load_text("[capture]\ninterface = \"lo\"\nports = [0]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "capture.ports", "{e}");
        // Off by default, whatever the ports say.
        assert!(load_text("[capture]\nports = []\n", vec![]).is_ok());
    }

    #[test]
    fn default_nas_is_loopback_only() {
        let c = Config::default();
        let nas = c.nas_entries();
        assert_eq!(nas.len(), 1);
        assert!(nas[0]
            .prefixes
            .iter()
            .all(|p| parse_prefix(p).unwrap().addr().is_loopback()));
    }
}
