//! `[sessions]`: the live-session store.

use super::*;

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
    /// Streams of the shared live-session log (fixed for the life of a log).
    pub log_streams: usize,
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
            .field("log_streams", &self.log_streams)
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
            log_streams: 16,
            interim_interval: 300,
            grace: 60,
            expiry_sweep_interval: 30,
            min_ipv6_prefix: 32,
            loopback_lines: false,
        }
    }
}

impl SessionsConfig {
    /// Where Redis is.
    pub fn redis_target(&self) -> ebok_live::redis_link::RedisTarget {
        ebok_live::redis_link::RedisTarget::Single {
            url: self.redis_url.clone(),
        }
    }
}
