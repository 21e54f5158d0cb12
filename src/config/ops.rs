//! `[metrics]`, `[ops]` and `[log]`: what operators reach ebok by.

use super::*;

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
