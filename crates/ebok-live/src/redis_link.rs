//! One way to reach Redis whatever the deployment: a single server, a Redis Cluster, or the
//! primary of a Sentinel-watched set. [`RedisTarget`] says where Redis is (from
//! `[sessions]`); [`RedisTarget::connect`] gives a [`RedisLink`], a multiplexed connection
//! that reconnects by itself and that every Redis store of ebok talks through
//! (`redis::aio::ConnectionLike`: commands, pipelines, `Script::invoke_async`).
//!
//! - Single server: a `ConnectionManager`, which reconnects after a connection error.
//! - Cluster: the `redis` crate's async cluster connection, which routes each command by
//!   its key's slot and follows MOVED/ASK and topology changes. A pipeline or a script must
//!   keep all its keys in one slot (give them one `{hash tag}`).
//! - Sentinel: a connection to the primary the sentinels name, replaced after a failover
//!   (see `redis_link/sentinel.rs`).
//!
//! Every [`RedisTarget::connect`] opens connections of its own: a caller that blocks the
//! connection (`XREAD BLOCK`) connects separately, with a response timeout above its block.

mod sentinel;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

use self::sentinel::SentinelLink;

/// Where Redis is: `[sessions] redis_url`, `redis_cluster`, or `redis_sentinel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://host:port/db`).
    Single { url: String },
    /// Some nodes of a Redis Cluster (the others are learnt from them).
    Cluster { nodes: Vec<String> },
    /// The primary that the sentinels at `nodes` name for `service`. The user name and
    /// password of the first node URL are used with the primary as well as with the
    /// sentinels; its database number with the primary only.
    Sentinel { service: String, nodes: Vec<String> },
}

impl RedisTarget {
    /// For logs and errors: the kind and addresses, passwords redacted.
    pub fn describe(&self) -> String {
        let list = |nodes: &[String]| {
            nodes
                .iter()
                .map(|n| redact_url(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            RedisTarget::Single { url } => format!("Redis {}", redact_url(url)),
            RedisTarget::Cluster { nodes } => format!("Redis Cluster [{}]", list(nodes)),
            RedisTarget::Sentinel { service, nodes } => {
                format!("Redis Sentinel service {service:?} [{}]", list(nodes))
            }
        }
    }

    /// The `[sessions]` key this target is configured by, for error messages.
    pub fn config_key(&self) -> &'static str {
        match self {
            RedisTarget::Single { .. } => "sessions.redis_url",
            RedisTarget::Cluster { .. } => "sessions.redis_cluster",
            RedisTarget::Sentinel { .. } => "sessions.redis_sentinel",
        }
    }

    /// A multiplexed link that reconnects by itself. Cluster: routes each command by its
    /// key's slot, follows MOVED/ASK. Sentinel: asks the sentinels for the current primary;
    /// after a connection error or a READONLY / LOADING / MASTERDOWN answer it asks again and
    /// reconnects (so it follows a failover). Fails if nothing answers PING within the
    /// connect timeout.
    pub async fn connect(&self, options: LinkOptions) -> Result<RedisLink, RedisError> {
        let attempt = async {
            let inner = match self {
                RedisTarget::Single { url } => Inner::Single(single(url, options).await?),
                RedisTarget::Cluster { nodes } => Inner::Cluster(cluster(nodes, options).await?),
                RedisTarget::Sentinel { service, nodes } => Inner::Sentinel(Arc::new(
                    SentinelLink::connect(service, nodes, options).await?,
                )),
            };
            let mut link = RedisLink { inner };
            redis::cmd("PING").query_async::<String>(&mut link).await?;
            Ok(link)
        };
        match tokio::time::timeout(options.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(&format!(
                "{}: no answer to PING within {:?}",
                self.describe(),
                options.connect_timeout
            ))),
        }
    }
}

/// How long a link waits.
#[derive(Debug, Clone, Copy)]
pub struct LinkOptions {
    /// To connect (to the sentinels and the primary, to the cluster's nodes) and have PING
    /// answered.
    pub connect_timeout: Duration,
    /// For each answer; `None` waits as long as it takes. A caller that blocks (`XREAD
    /// BLOCK`) sets it above its block time.
    pub response_timeout: Option<Duration>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            connect_timeout: Duration::from_secs(3),
            response_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// A connection to the target; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct RedisLink {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelLink>),
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Single(_) => "single",
            Inner::Cluster(_) => "cluster",
            Inner::Sentinel(_) => "sentinel",
        };
        f.debug_struct("RedisLink")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// Whether the target is a Redis Cluster (keys a pipeline or script touches together
    /// must share a slot).
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
            Inner::Sentinel(s) => Box::pin(s.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Sentinel(s) => Box::pin(s.commands(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
            Inner::Sentinel(s) => s.db(),
        }
    }
}

async fn single(url: &str, options: LinkOptions) -> Result<ConnectionManager, RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(options.response_timeout)
        .set_number_of_retries(3);
    ConnectionManager::new_with_config(client, config).await
}

async fn cluster(nodes: &[String], options: LinkOptions) -> Result<ClusterConnection, RedisError> {
    let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .connection_timeout(options.connect_timeout);
    if let Some(t) = options.response_timeout {
        builder = builder.response_timeout(t);
    }
    builder.build()?.get_async_connection().await
}

fn timed_out(what: &str) -> RedisError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_owned()).into()
}

/// What an answer says about the primary a Sentinel link is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Primary {
    /// It answered (with data or an ordinary error).
    Answered,
    /// It refused the command as no (ready) primary: READONLY (a replica now), LOADING or
    /// MASTERDOWN. Nothing was executed, so the command may be sent again elsewhere.
    Refused,
    /// The connection failed or timed out: whether the command ran is unknown.
    Lost,
}

fn refusal(kind: Option<ServerErrorKind>) -> bool {
    matches!(
        kind,
        Some(
            ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown
        )
    )
}

/// [`Primary`] for an answer to a command or a pipeline.
fn judge<T: AsValues>(answer: &Result<T, RedisError>) -> Primary {
    match answer {
        Ok(values) if values.values().iter().any(refused_value) => Primary::Refused,
        Ok(_) => Primary::Answered,
        Err(e) => {
            let listed = e.clone().into_server_errors().unwrap_or_default();
            if refusal(server_kind(e.kind())) || listed.iter().any(|(_, s)| refusal(s.kind())) {
                Primary::Refused
            } else if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_unrecoverable_error()
            {
                Primary::Lost
            } else {
                Primary::Answered
            }
        }
    }
}

fn server_kind(kind: ErrorKind) -> Option<ServerErrorKind> {
    match kind {
        ErrorKind::Server(k) => Some(k),
        _ => None,
    }
}

fn refused_value(v: &Value) -> bool {
    match v {
        Value::ServerError(e) => refusal(e.kind()),
        Value::Array(items) => items.iter().any(refused_value),
        _ => false,
    }
}

/// The answers of a command (one) or of a pipeline (several), for [`judge`].
trait AsValues {
    fn values(&self) -> &[Value];
}

impl AsValues for Value {
    fn values(&self) -> &[Value] {
        std::slice::from_ref(self)
    }
}

impl AsValues for Vec<Value> {
    fn values(&self) -> &[Value] {
        self
    }
}

/// Hide the password of a URL (`scheme://user:***@host/…`).
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
