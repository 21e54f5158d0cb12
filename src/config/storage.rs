//! `[database]`, `[state]` and `[retention]`: where data is kept, and for how long.

use super::*;

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

/// Hide the password part of a URL (database and Redis URLs alike).
pub use ebok_live::redis_link::redact_url;
