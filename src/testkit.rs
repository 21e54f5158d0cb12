//! Test support shared by unit and integration tests: where Redis and PostgreSQL are, a fresh
//! PostgreSQL database per test, and the rule for missing services. A service test on a
//! machine without the service is skipped and recorded in `target/ebok-skipped.txt` (the test
//! script prints the list) — unless `EBOK_REQUIRE_SERVICES=1` (set by CI), where it fails.

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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
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

/// A SQLite database (migrated) in the file `name` of `dir`.
pub async fn sqlite_in(dir: &std::path::Path, name: &str) -> crate::store::Db {
    let url = format!("sqlite://{}", dir.join(name).display());
    crate::store::Db::connect(&url).await.expect("SQLite opens")
}

/// A closed PPPoE session of `login` on NAS `nas1` with the IPv4 address `ip`, from
/// `started` for `secs` seconds (3 MB down, 1 kB up), for history in tests; change its
/// fields for more.
pub fn closed_session(
    login: &str,
    sid: &str,
    ip: &str,
    started: time::OffsetDateTime,
    secs: i64,
    cause: Option<u32>,
) -> crate::sessions::ClosedSession {
    crate::sessions::ClosedSession {
        session: crate::sessions::LiveSession {
            nas: "nas1".into(),
            nas_client: "nas1".into(),
            session_id: sid.into(),
            user_name: Some(login.into()),
            framed_ip: Some(ip.parse().expect("an IPv4 address")),
            ipv6_prefixes: Vec::new(),
            calling_station_id: None,
            nas_port: None,
            nas_port_id: None,
            started_at: started,
            updated_at: started,
            expires_at: started,
            input_octets: 1_000,
            output_octets: 3_000_000,
            input_packets: 0,
            output_packets: 0,
            session_time: None,
        },
        stopped_at: started + time::Duration::seconds(secs),
        reason: crate::sessions::CloseReason::Stop,
        terminate_cause: cause,
    }
}
