//! The Sentinel side of a [`RedisLink`](super::RedisLink): one multiplexed connection to the
//! primary the sentinels name, and the way it follows a failover.
//!
//! A failover is noticed by its errors, not by listening to the sentinels: when the
//! connection fails, or the server answers READONLY (the old primary came back as a
//! replica), LOADING or MASTERDOWN, the connection is dropped and the next command asks the
//! sentinels again (`Sentinel::async_master_for`, which checks that the server it names
//! says it is a primary) and connects there. A refused command ran nowhere, so it is sent
//! once more to the primary found then; after a connection error it is not (it may have
//! run), the caller gets the error and its next command goes to the new primary. One caller
//! at a time asks the sentinels; after a failed attempt the others get its error for
//! [`RETRY_PAUSE`] rather than asking again at once.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline,
    RedisError, TlsMode, Value,
};

use super::{judge, timed_out, AsValues, LinkOptions, Primary};

/// After a failed look-up, how long other callers get its error instead of asking again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub(super) struct SentinelLink {
    service: String,
    options: LinkOptions,
    /// How to talk to the primary: credentials, database, TLS.
    node: SentinelNodeConnectionInfo,
    db: i64,
    /// The sentinels (with their cached connections); locked while one caller asks them.
    resolver: tokio::sync::Mutex<Resolver>,
    /// The connection to the primary in use, `None` until the next look-up.
    current: std::sync::Mutex<Option<Current>>,
}

struct Resolver {
    sentinel: Sentinel,
    /// Counts the connections made, so a caller drops only the one that failed it.
    generation: u64,
    failed: Option<(Instant, RedisError)>,
}

#[derive(Clone)]
struct Current {
    generation: u64,
    conn: MultiplexedConnection,
}

impl SentinelLink {
    /// Ask the sentinels at `nodes` for the primary of `service` and connect to it.
    pub(super) async fn connect(
        service: &str,
        nodes: &[String],
        options: LinkOptions,
    ) -> Result<SentinelLink, RedisError> {
        let infos = nodes
            .iter()
            .map(|n| n.as_str().into_connection_info())
            .collect::<Result<Vec<ConnectionInfo>, _>>()?;
        // The primary gets the first URL's credentials and database; the sentinels know no
        // databases.
        let primary = infos.first().map(|i| i.redis_settings().clone());
        let sentinels: Vec<ConnectionInfo> = infos
            .iter()
            .map(|i| {
                let settings = i.redis_settings().clone().set_db(0);
                i.clone().set_redis_settings(settings)
            })
            .collect();
        let mut node = SentinelNodeConnectionInfo::default();
        if let Some(ConnectionAddr::TcpTls { insecure, .. }) = infos.first().map(|i| i.addr()) {
            node = node.set_tls_mode(if *insecure {
                TlsMode::Insecure
            } else {
                TlsMode::Secure
            });
        }
        let db = primary.as_ref().map_or(0, |p| p.db());
        if let Some(primary) = primary {
            node = node.set_redis_connection_info(primary);
        }
        let link = SentinelLink {
            service: service.to_owned(),
            options,
            node,
            db,
            resolver: tokio::sync::Mutex::new(Resolver {
                sentinel: Sentinel::build(sentinels)?,
                generation: 0,
                failed: None,
            }),
            current: std::sync::Mutex::new(None),
        };
        link.connection().await?;
        Ok(link)
    }

    pub(super) fn db(&self) -> i64 {
        self.db
    }

    pub(super) async fn command(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        self.run(|mut conn| async move { conn.req_packed_command(cmd).await })
            .await
    }

    pub(super) async fn commands(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> Result<Vec<Value>, RedisError> {
        self.run(|mut conn| async move { conn.req_packed_commands(pipeline, offset, count).await })
            .await
    }

    /// Send through the current connection; drop it when the answer says the primary is
    /// gone, and send a refused command once more to the primary the sentinels name now.
    async fn run<T, F, Fut>(&self, send: F) -> Result<T, RedisError>
    where
        T: AsValues,
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let current = self.connection().await?;
        let answer = send(current.conn).await;
        match judge(&answer) {
            Primary::Answered => answer,
            Primary::Lost => {
                self.forget(current.generation);
                answer
            }
            Primary::Refused => {
                self.forget(current.generation);
                let again = self.connection().await?;
                let answer = send(again.conn).await;
                if judge(&answer) != Primary::Answered {
                    self.forget(again.generation);
                }
                answer
            }
        }
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // Each change is one assignment: the value is whole even after a panic elsewhere.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop using connection `generation` (unless it was replaced already).
    fn forget(&self, generation: u64) {
        let mut current = self.lock_current();
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
        }
    }

    /// The connection in use, or a new one to the primary the sentinels name.
    async fn connection(&self) -> Result<Current, RedisError> {
        if let Some(c) = self.lock_current().clone() {
            return Ok(c);
        }
        let mut resolver = self.resolver.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(c) = self.lock_current().clone() {
            return Ok(c);
        }
        if let Some((at, e)) = &resolver.failed {
            if at.elapsed() < RETRY_PAUSE {
                return Err(e.clone());
            }
        }
        let timeout = self.options.connect_timeout;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(self.options.response_timeout);
        let attempt = async {
            let client = resolver
                .sentinel
                .async_master_for(&self.service, Some(&self.node))
                .await?;
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(&format!(
                "no primary for Sentinel service {:?} within {timeout:?}",
                self.service
            ))),
        };
        match result {
            Ok(conn) => {
                resolver.generation += 1;
                resolver.failed = None;
                let current = Current {
                    generation: resolver.generation,
                    conn,
                };
                *self.lock_current() = Some(current.clone());
                Ok(current)
            }
            Err(e) => {
                resolver.failed = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Use a connection to `url` as if the sentinels had named it (tests: a link left on a
    /// server that is no longer the primary).
    #[cfg(test)]
    pub(super) async fn pin_to(&self, url: &str) {
        let conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut resolver = self.resolver.lock().await;
        resolver.generation += 1;
        *self.lock_current() = Some(Current {
            generation: resolver.generation,
            conn,
        });
    }
}
