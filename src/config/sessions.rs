//! `[sessions]`: the live-session store, and where Redis is (one server, a Cluster, or
//! Sentinel) when the store is there.

use ebok_live::redis_link::RedisTarget;

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
    /// One Redis server; used unless `redis_cluster` or `redis_sentinel` is given.
    pub redis_url: String,
    /// Nodes of a Redis Cluster (`redis://host:port`); the others are learnt from them.
    pub redis_cluster: Option<Vec<String>>,
    /// A primary and its replicas watched by Redis Sentinel: ebok asks the sentinels for
    /// the primary and follows a failover.
    pub redis_sentinel: Option<SentinelConfig>,
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
            .field(
                "redis_cluster",
                &self
                    .redis_cluster
                    .as_ref()
                    .map(|nodes| nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>()),
            )
            .field("redis_sentinel", &self.redis_sentinel)
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
            redis_cluster: None,
            redis_sentinel: None,
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

/// `[sessions] redis_sentinel = { service = "…", nodes = ["redis://…", …] }`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the primary under (`sentinel monitor NAME …`).
    pub service: String,
    /// The sentinels (`redis://host:26379`). A user name and password in the first URL are
    /// sent to the sentinels and to the primary; its database number selects the primary's.
    pub nodes: Vec<String>,
}

impl std::fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("service", &self.service)
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SessionsConfig {
    /// Where Redis is: the Cluster when `redis_cluster` is given, else the Sentinel set when
    /// `redis_sentinel` is, else the server at `redis_url`.
    pub fn redis_target(&self) -> RedisTarget {
        if let Some(nodes) = &self.redis_cluster {
            RedisTarget::Cluster {
                nodes: nodes.clone(),
            }
        } else if let Some(s) = &self.redis_sentinel {
            RedisTarget::Sentinel {
                service: s.service.clone(),
                nodes: s.nodes.clone(),
            }
        } else {
            RedisTarget::Single {
                url: self.redis_url.clone(),
            }
        }
    }

    /// The problems of the Redis keys in use, (full key, reason): at most one of
    /// `redis_cluster` and `redis_sentinel`, each with its nodes, and URLs ebok can use.
    pub(super) fn redis_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut urls = |key: &str, nodes: &[String]| {
            if nodes.is_empty() {
                problems.push((key.to_owned(), "give at least one node URL".to_owned()));
            }
            for (i, url) in nodes.iter().enumerate() {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    problems.push((
                        format!("{key}[{i}]"),
                        format!(
                            "{:?} must start with redis:// or rediss://",
                            redact_url(url)
                        ),
                    ));
                }
            }
        };
        match (&self.redis_cluster, &self.redis_sentinel) {
            (Some(_), Some(_)) => {
                problems.push((
                    "sessions.redis_sentinel".to_owned(),
                    "give either redis_cluster or redis_sentinel, not both".to_owned(),
                ));
            }
            (Some(nodes), None) => urls("sessions.redis_cluster", nodes),
            (None, Some(sentinel)) => {
                urls("sessions.redis_sentinel.nodes", &sentinel.nodes);
                if sentinel.service.trim().is_empty() {
                    problems.push((
                        "sessions.redis_sentinel.service".to_owned(),
                        "must name the service the sentinels monitor".to_owned(),
                    ));
                }
            }
            (None, None) => {
                let url = &self.redis_url;
                if !(url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("redis+unix://"))
                {
                    problems.push((
                        "sessions.redis_url".to_owned(),
                        "must start with redis://, rediss:// or redis+unix://".to_owned(),
                    ));
                }
            }
        }
        problems
    }
}
