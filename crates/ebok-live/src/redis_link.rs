//! Where Redis is and a link to it (one server only in this provisional copy).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Where Redis is: `[sessions] redis_url`, `redis_cluster`, or `redis_sentinel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single { url: String },
    Cluster { nodes: Vec<String> },
    Sentinel { service: String, nodes: Vec<String> },
}

/// Timeouts of a link.
#[derive(Debug, Clone, Copy)]
pub struct LinkOptions {
    pub connect_timeout: Duration,
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

impl RedisTarget {
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }

    pub async fn connect(&self, options: LinkOptions) -> Result<RedisLink, redis::RedisError> {
        let RedisTarget::Single { url } = self else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "not built here",
            )));
        };
        let client = redis::Client::open(url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(options.response_timeout)
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisLink { conn })
    }
}

/// A connection to the target; cheap to clone.
#[derive(Clone)]
pub struct RedisLink {
    conn: ConnectionManager,
}

impl RedisLink {
    pub fn is_cluster(&self) -> bool {
        false
    }
}

impl redis::aio::ConnectionLike for RedisLink {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        self.conn.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.conn.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        0
    }
}
