//! Test support for ebok's crates, a dev-dependency never built into the product: where Redis
//! and PostgreSQL are, a fresh PostgreSQL database per test, waiting for an event, and the
//! rule for missing services. A service test on a
//! machine without the service is skipped and recorded in `target/ebok-skipped.txt` (the test
//! script prints the list) — unless `EBOK_REQUIRE_SERVICES=1` (set by CI), where it fails.
//! Redis Cluster and Sentinel deployments are started per test ([`RedisCluster`],
//! [`RedisSentinel`]).

mod redis_servers;

pub use redis_servers::{RedisCluster, RedisSentinel};

use std::io::Write;
use std::time::Duration;

/// Redis URL for tests (`EBOK_TEST_REDIS`, default the local server).
pub fn redis_url() -> String {
    std::env::var("EBOK_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// PostgreSQL server URL for tests (`EBOK_TEST_POSTGRES`, default the local server).
pub fn postgres_url() -> String {
    std::env::var("EBOK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn require_services() -> bool {
    std::env::var("EBOK_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Record that `test` skipped because `service` is unreachable, or panic under CI.
pub fn skip(test: &str, service: &str, why: &str) {
    if require_services() {
        panic!("{test}: {service} is required (EBOK_REQUIRE_SERVICES=1) but unreachable: {why}");
    }
    eprintln!("SKIPPED {test}: {service} unreachable: {why}");
    // The workspace's target folder, where the test script looks.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ebok-skipped.txt"))
    {
        let _ = writeln!(f, "{test}: {service} unreachable ({why})");
    }
}

/// Redis URL if the server answers PING, else `None` after recording the skip.
pub async fn redis(test: &str) -> Option<String> {
    let url = redis_url();
    let check = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(_)) => Some(url),
        Ok(Err(e)) => {
            skip(test, "redis", &e.to_string());
            None
        }
        Err(_) => {
            skip(test, "redis", "timed out");
            None
        }
    }
}

/// A fresh, empty PostgreSQL database for one test: its URL. Dropped by [`FreshPg::drop_db`]
/// (tests call it at the end; leftovers are named `ebok_test_*`).
pub struct FreshPg {
    pub url: String,
    name: String,
}

impl FreshPg {
    pub async fn create(test: &str) -> Option<FreshPg> {
        use sqlx::Connection;
        let admin = postgres_url();
        let attempt = async {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            let name = format!("ebok_test_{:016x}", rand::random::<u64>());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(name)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(name)) => {
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(FreshPg {
                    url: format!("{base}/{name}"),
                    name,
                })
            }
            Ok(Err(e)) => {
                skip(test, "postgresql", &e.to_string());
                None
            }
            Err(_) => {
                skip(test, "postgresql", "timed out");
                None
            }
        }
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A random key prefix so concurrent Redis tests do not see each other.
pub fn redis_prefix() -> String {
    format!("ebok-test:{:016x}:", rand::random::<u64>())
}

/// Delete every Redis key under `prefix`.
pub async fn redis_cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _: Result<u64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// A SQLite database URL for the file `name` in `dir`.
pub fn sqlite_url(dir: &std::path::Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

/// Wait until `check` holds, polling every 20 ms; panics naming `what` after 10 s. For
/// background work a test cannot join (replay, mail queue, another process).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if !eventually_within(Duration::from_secs(10), check).await {
        panic!("timed out waiting for: {what}");
    }
}

/// [`eventually`] with its own limit, for a caller that says itself what failed (with the
/// state it saw last) or waits on something slower: whether `check` held within `limit`.
pub async fn eventually_within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
