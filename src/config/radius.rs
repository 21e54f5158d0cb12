//! `[radius]` and `[[nas]]`: the accounting listener and the NAS clients, and the NAS table
//! built from them.

use super::*;

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

pub use crate::ingest::AckAfter;

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

impl Config {
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

pub use crate::radius::nas::parse_prefix;
