//! Configuration: one serde struct with defaults, read from a TOML file, overridden by
//! `EBOK_*` environment variables, then by command-line flags. Every error names the file,
//! the key and the reason.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// The commented example configuration shipped in the repository.
pub const EXAMPLE: &str = include_str!("../systemd/ebok.example.toml");

/// What is wrong with a configuration: where (file and full key path, with the environment
/// variable when the value came from one) and why; the first problem, and every other one
/// found in the same pass in `more`.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
    /// Further problems: (key, reason).
    pub more: Vec<(String, String)>,
}

impl ConfigError {
    fn new(file: &str, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            key: key.into(),
            reason: reason.into(),
            more: Vec::new(),
        }
    }

    /// Every problem: (key, reason).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        std::iter::once((self.key.as_str(), self.reason.as_str()))
            .chain(self.more.iter().map(|(k, r)| (k.as_str(), r.as_str())))
    }
}

impl std::fmt::Display for ConfigError {
    /// One line per problem: `FILE: KEY: REASON`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (key, reason)) in self.all().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {key}: {reason}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

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

pub use crate::radius::capture::CaptureConfig;

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
    /// A PNG image printed at the top of invoice PDFs; checked by [`Config::validate`].
    pub logo: Option<PathBuf>,
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

    /// What is allowed but most likely not meant: (key, why). `config check` prints them,
    /// `run` logs them.
    pub fn warnings(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.isp.name.trim().is_empty() && !self.demo {
            out.push((
                "isp.name",
                "is empty: the page header, mails and invoices show no provider name".to_owned(),
            ));
        }
        if self.isp.nip.trim().is_empty() && !self.demo {
            out.push((
                "isp.nip",
                "is empty: invoices carry no seller's NIP and transfer QR codes no recipient's"
                    .to_owned(),
            ));
        }
        if self.web.public_url.is_empty() {
            out.push((
                "web.public_url",
                format!(
                    "is not set: mails link to http://{}/ and the panel answers only to \
                     loopback names; set it to the address subscribers use",
                    self.web.listen
                ),
            ));
        }
        out
    }

    /// Load: defaults, then the file (when given), then `EBOK_*` variables from `env`, then
    /// `cli`; finally validate.
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
        let from_env = apply_env(&mut doc, env).map_err(|(key, reason)| {
            ConfigError::new(&file, key, format!("{reason} (from the environment)"))
        })?;
        let mut config = deserialize_all(&file, doc, &from_env)?;
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
        // Every problem is reported, not only the first.
        let mut problems: Vec<ConfigError> = Vec::new();
        if self.radius.listen.is_empty() {
            problems.push(err(
                "radius.listen".into(),
                "no address to listen on".into(),
            ));
        }
        if !(0..=19).contains(&self.radius.replay_nice) {
            problems.push(err(
                "radius.replay_nice".into(),
                format!("{} is outside 0..=19", self.radius.replay_nice),
            ));
        }
        if self.radius.max_in_flight == 0 {
            problems.push(err(
                "radius.max_in_flight".into(),
                "must be at least 1".into(),
            ));
        }
        if self.radius.store_timeout_ms == 0 || self.radius.store_timeout_ms > 2500 {
            problems.push(err(
                "radius.store_timeout_ms".into(),
                "must be 1..=2500: a NAS gives up after about 3 s".into(),
            ));
        }
        if self.radius.journal_max_bytes != 0 && self.radius.journal_max_bytes < 1 << 20 {
            problems.push(err(
                "radius.journal_max_bytes".into(),
                "must be 0 (no cap) or at least 1048576 (1 MiB): one batch of a burst must fit"
                    .into(),
            ));
        }
        if !self.capture.interface.is_empty() {
            if self.capture.ports.is_empty() || self.capture.ports.contains(&0) {
                problems.push(err(
                    "capture.ports".into(),
                    "give at least one UDP port, none of them 0".into(),
                ));
            }
            if let Err(e) = crate::radius::capture::find_interface(&self.capture.interface)
                .map_err(|e| err("capture.interface".into(), e.to_string()))
            {
                problems.push(e);
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, nas) in self.nas.iter().enumerate() {
            let key = |k: &str| format!("nas[{i}].{k}");
            if nas.name.trim().is_empty() {
                problems.push(err(key("name"), "must not be empty".into()));
            }
            if !names.insert(nas.name.clone()) {
                problems.push(err(key("name"), format!("'{}' appears twice", nas.name)));
            }
            if nas.prefixes.is_empty() {
                problems.push(err(key("prefixes"), "at least one prefix is needed".into()));
            }
            for (j, p) in nas.prefixes.iter().enumerate() {
                if let Err(e) =
                    parse_prefix(p).map_err(|r| err(format!("nas[{i}].prefixes[{j}]"), r))
                {
                    problems.push(e);
                }
            }
            match (&nas.secret, &nas.secret_file) {
                (Some(_), Some(_)) => {
                    problems.push(err(
                        key("secret"),
                        "give either secret or secret_file, not both".into(),
                    ));
                }
                (None, None) => {
                    problems.push(err(
                        key("secret"),
                        "secret or secret_file is required".into(),
                    ));
                }
                _ => {}
            }
            match nas.read_secret() {
                // Neither or both given: said above.
                _ if nas.secret.is_some() == nas.secret_file.is_some() => {}
                Ok(secret) if secret.is_empty() => {
                    problems.push(err(key("secret"), "must not be empty".into()));
                }
                Ok(_) => {}
                Err(r) => problems.push(err(key("secret_file"), r)),
            }
            if !VENDORS.contains(&nas.vendor.as_str()) {
                problems.push(err(
                    key("vendor"),
                    format!(
                        "unknown vendor '{}', expected one of {VENDORS:?}",
                        nas.vendor
                    ),
                ));
            }
            if nas.interim_interval == Some(0) {
                problems.push(err(key("interim_interval"), "must be at least 1".into()));
            }
        }
        if self.sessions.interim_interval == 0 {
            problems.push(err(
                "sessions.interim_interval".into(),
                "must be at least 1".into(),
            ));
        }
        if self.sessions.expiry_sweep_interval == 0 {
            problems.push(err(
                "sessions.expiry_sweep_interval".into(),
                "must be at least 1".into(),
            ));
        }
        if !(1..=128).contains(&self.sessions.min_ipv6_prefix) {
            problems.push(err(
                "sessions.min_ipv6_prefix".into(),
                format!("{} is outside 1..=128", self.sessions.min_ipv6_prefix),
            ));
        }
        if self.sessions.store == StoreKind::Redis
            && !(self.sessions.redis_url.starts_with("redis://")
                || self.sessions.redis_url.starts_with("rediss://")
                || self.sessions.redis_url.starts_with("redis+unix://"))
        {
            problems.push(err(
                "sessions.redis_url".into(),
                "must start with redis://, rediss:// or redis+unix://".into(),
            ));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            problems.push(err(
                "database.url".into(),
                "must start with sqlite: or postgres://".into(),
            ));
        }
        if !self.isp.nip.is_empty() {
            if let Err(e) = self
                .isp
                .nip
                .parse::<crate::store::validate::Nip>()
                .map_err(|e| err("isp.nip".into(), e.to_string()))
            {
                problems.push(e);
            }
        }
        if let Some(path) = &self.isp.logo {
            if let Err(reason) = crate::web::billing::check_logo(path) {
                problems.push(err("isp.logo".into(), reason));
            }
        }
        for (i, p) in self.web.trusted_proxies.iter().enumerate() {
            if let Err(e) = parse_prefix(p).map_err(|r| err(format!("web.trusted_proxies[{i}]"), r))
            {
                problems.push(e);
            }
        }
        if !self.web.public_url.is_empty() && self.web.public_host().is_none() {
            problems.push(err(
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
                problems.push(err(
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
                problems.push(err(key.into(), "must be at least 1".into()));
            }
        }
        if self.web.session_idle_minutes == 0 {
            problems.push(err(
                "web.session_idle_minutes".into(),
                "must be at least 1".into(),
            ));
        }
        if self.web.session_absolute_hours == 0
            || self.web.session_absolute_hours * 60 < self.web.session_idle_minutes
        {
            problems.push(err(
                "web.session_absolute_hours".into(),
                "must be at least 1 and not shorter than session_idle_minutes".into(),
            ));
        }
        if self.web.accounts_per_subscriber == 0 {
            problems.push(err(
                "web.accounts_per_subscriber".into(),
                "must be at least 1".into(),
            ));
        }
        if let Err(e) = self
            .mail
            .check()
            .map_err(|e| err(e.key.to_owned(), e.reason.clone()))
        {
            problems.push(e);
        }
        for (i, t) in self.ops.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                problems.push(err(
                    format!("ops.tokens[{i}].name"),
                    "must not be empty".into(),
                ));
            }
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(err(
                    format!("ops.tokens[{i}].sha256"),
                    "must be 64 hex digits (make one with `ebok ops token NAME`)".into(),
                ));
            }
        }
        if self.retention.history_days == 0 || self.retention.interval_hours == 0 {
            problems.push(err(
                "retention".into(),
                "history_days and interval_hours must be at least 1".into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(err(
                "log.level".into(),
                format!("'{}' is not a log filter", self.log.level),
            ));
        }
        match problems.len() {
            0 => Ok(()),
            _ => {
                let mut first = problems.remove(0);
                first.more = problems.into_iter().map(|p| (p.key, p.reason)).collect();
                Err(first)
            }
        }
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

impl Config {
    /// The NAS client table in force (the configuration already validated): each entry's
    /// secret read, its expiry `2 × interim + grace` with the `[sessions]` fallbacks.
    pub fn nas_table(&self) -> Result<crate::radius::nas::NasTable, String> {
        let mut clients = Vec::new();
        for nas in self.nas_entries() {
            let interim = nas
                .interim_interval
                .unwrap_or(self.sessions.interim_interval);
            let grace = nas.grace.unwrap_or(self.sessions.grace);
            let client = crate::radius::nas::NasClient {
                name: nas.name.clone(),
                secret: nas.read_secret()?.into(),
                vendor: nas.vendor.clone(),
                expiry: std::time::Duration::from_secs(2 * interim + grace),
                coa_port: nas.coa_port,
            };
            let prefixes = nas
                .prefixes
                .iter()
                .map(|p| parse_prefix(p))
                .collect::<Result<Vec<_>, _>>()?;
            clients.push((client, prefixes));
        }
        Ok(crate::radius::nas::NasTable::new(clients))
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
/// Put the `EBOK_SECTION__KEY` variables of `env` into `doc`; returns which key each one set
/// (`radius.listen` → `EBOK_RADIUS__LISTEN`), for error messages.
fn apply_env(
    doc: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<std::collections::HashMap<String, String>, (String, String)> {
    let mut set = std::collections::HashMap::new();
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
        set.insert(key, name);
    }
    Ok(set)
}

/// Deserialize `doc` into a [`Config`], reporting every key serde refuses, not only the
/// first: each refused key is taken out (its default applies) and the rest read again.
fn deserialize_all(
    file: &str,
    mut doc: toml::Table,
    from_env: &std::collections::HashMap<String, String>,
) -> Result<Config, ConfigError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(doc.clone())) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => break,
            Err(e) => {
                let mut segments: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|s| match s {
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        serde_path_to_error::Segment::Seq { index } => Some(format!("[{index}]")),
                        _ => None,
                    })
                    .collect();
                let message = e.into_inner().message().to_owned();
                // An unknown key is reported at its section: name the key itself.
                if let Some(unknown) =
                    backquoted(&message).filter(|_| message.starts_with("unknown field"))
                {
                    if segments.last() != Some(&unknown) {
                        segments.push(unknown);
                    }
                }
                let key = key_path(&segments);
                let mut reason = plain(&message);
                if let Some(var) = from_env.get(&key) {
                    reason.push_str(&format!(" (from the environment variable {var})"));
                }
                let repeated = problems.iter().any(|(k, _)| *k == key);
                problems.push((key, reason));
                if repeated || problems.len() > 64 || !remove_path(&mut doc, &segments) {
                    break;
                }
            }
        }
    }
    let (key, reason) = problems.remove(0);
    let mut e = ConfigError::new(file, key, reason);
    e.more = problems;
    Err(e)
}

/// `["nas", "[0]", "secret"]` → `nas[0].secret`.
fn key_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !s.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(s);
    }
    if out.is_empty() {
        "-".to_owned()
    } else {
        out
    }
}

/// Take the value at `segments` out of `doc`; false when there is nothing there.
fn remove_path(doc: &mut toml::Table, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut value: &mut toml::Value = match parents.first() {
        Some(first) => match doc.get_mut(first) {
            Some(v) => v,
            None => return false,
        },
        None => return doc.remove(last).is_some(),
    };
    for s in &parents[1..] {
        let next = match (s.strip_prefix('[').and_then(|i| i.strip_suffix(']')), value) {
            (Some(i), toml::Value::Array(a)) => i.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            (None, toml::Value::Table(t)) => t.get_mut(s),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return false,
        }
    }
    match (
        last.strip_prefix('[').and_then(|i| i.strip_suffix(']')),
        value,
    ) {
        (Some(i), toml::Value::Array(a)) => match i.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        (None, toml::Value::Table(t)) => t.remove(last).is_some(),
        _ => false,
    }
}

/// The first `backquoted` word of a serde message.
fn backquoted(message: &str) -> Option<String> {
    message.split('`').nth(1).map(str::to_owned)
}

/// A serde message in the words of the configuration: kinds of values instead of Rust type
/// names, "key" instead of "field".
fn plain(message: &str) -> String {
    let kind = |t: &str| -> String {
        let t = t.trim().trim_end_matches('.');
        match t {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number of 0 or more".into(),
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
            "f32" | "f64" => "a number".into(),
            "a boolean" => "true or false".into(),
            "a string" => "text in quotes".into(),
            "a sequence" => "a list in square brackets".into(),
            "a map" => "a section".into(),
            "socket address" => "an address and port (127.0.0.1:1813 or [::]:1813)".into(),
            t if t.starts_with("struct ") => "a section".into(),
            t => t.replace('`', "").to_owned(),
        }
    };
    let found = |what: &str| -> String {
        let what = what.trim();
        if let Some(v) = what.strip_prefix("string ") {
            format!("the text {v}")
        } else if let Some(v) = what.strip_prefix("integer ") {
            format!("the number {}", v.trim_matches('`'))
        } else if let Some(v) = what.strip_prefix("floating point ") {
            format!("the number {}", v.trim_matches('`'))
        } else if let Some(v) = what.strip_prefix("boolean ") {
            v.trim_matches('`').to_string()
        } else if what == "sequence" {
            "a list".into()
        } else if what == "map" {
            "a section".into()
        } else {
            what.replace('`', "")
        }
    };
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        if let Some((what, expected)) = rest.split_once(", expected ") {
            return format!("expected {}, found {}", kind(expected), found(what));
        }
    }
    if message.starts_with("unknown field") {
        let known: Vec<&str> = message
            .split_once("expected ")
            .map(|(_, k)| k.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return if known.is_empty() {
            "unknown key".into()
        } else {
            format!("unknown key (known here: {})", known.join(", "))
        };
    }
    if message.starts_with("unknown variant") {
        let value = backquoted(message).unwrap_or_default();
        let known: Vec<&str> = message
            .split_once("expected ")
            .map(|(_, k)| k.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return format!("unknown value {value:?} (expected {})", known.join(" or "));
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("missing key {}", field.replace('`', ""));
    }
    message.to_owned()
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
        assert_eq!(e.key, "radius.listen[0]", "{e}");
        assert!(e.reason.contains("address"), "{e}");

        let e = load_text("[radius]\nlisten = \n", vec![]).unwrap_err();
        assert_eq!(e.key, "line 2", "{e}");

        let e = load_text("[radius]\nlisen = []\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.lisen", "{e}");
        assert!(
            e.reason.starts_with("unknown key (known here: listen, "),
            "{e}"
        );
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

    /// Every problem at once, each with its full key, in plain words, naming the
    /// environment variable a value came from.
    #[test]
    fn every_problem_at_once_in_plain_words() {
        let e = load_text(
            "[radius]\nlistn = 1\nmax_in_flight = \"many\"\n[sessions]\nstore = \"mongo\"\n\
             [[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret = \"s\"\nunknown = 1\n",
            vec![("EBOK_WEB__MAX_CONNECTIONS", "-5")],
        )
        .unwrap_err();
        let all: std::collections::BTreeMap<&str, &str> = e.all().collect();
        assert_eq!(
            all.keys().copied().collect::<Vec<_>>(),
            [
                "nas[0].unknown",
                "radius.listn",
                "radius.max_in_flight",
                "sessions.store",
                "web.max_connections"
            ],
            "{e}"
        );
        assert_eq!(
            all["radius.max_in_flight"],
            "expected a whole number of 0 or more, found the text \"many\""
        );
        assert_eq!(
            all["sessions.store"],
            "unknown value \"mongo\" (expected embedded or redis)"
        );
        assert!(
            all["web.max_connections"]
                .ends_with("(from the environment variable EBOK_WEB__MAX_CONNECTIONS)"),
            "{e}"
        );
        assert_eq!(e.to_string().lines().count(), 5, "one line each: {e}");
        // Checks after reading report together too.
        let e = load_text(
            "[radius]\nreplay_nice = 20\n[database]\nurl = \"mysql://x\"\n",
            vec![],
        )
        .unwrap_err();
        let keys: Vec<&str> = e.all().map(|(k, _)| k).collect();
        assert_eq!(keys, ["radius.replay_nice", "database.url"]);
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

    #[test]
    fn nas_table_most_specific_prefix_wins_and_mapped_v4_matches() {
        let config: Config = toml::from_str(
            r#"
            [[nas]]
            name = "group"
            prefixes = ["10.0.0.0/24"]
            secret = "group-secret"
            interim_interval = 60
            grace = 30
            [[nas]]
            name = "special"
            prefixes = ["10.0.0.7", "2001:db8::/32"]
            secret = "special-secret"
            "#,
        )
        .unwrap();
        let t = config.nas_table().unwrap();
        let c = t.find("10.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(c.name, "special");
        assert_eq!(&*c.secret, b"special-secret");
        assert_eq!(c.expiry, std::time::Duration::from_secs(2 * 300 + 60));
        let g = t.find("::ffff:10.0.0.8".parse().unwrap()).unwrap();
        assert_eq!(g.name, "group");
        assert_eq!(g.expiry, std::time::Duration::from_secs(150));
        assert_eq!(
            t.find("2001:db8::1".parse().unwrap()).unwrap().name,
            "special"
        );
        assert!(t.find("10.0.1.1".parse().unwrap()).is_none());
    }
}
