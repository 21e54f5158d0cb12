//! Test support for this crate's unit tests: `ebok-testkit`'s service helpers, and builders
//! of this crate's own types.

pub use ebok_testkit::*;

/// A SQLite database (migrated) in the file `name` of `dir`.
pub async fn sqlite_in(dir: &std::path::Path, name: &str) -> crate::store::Db {
    crate::store::Db::connect(&sqlite_url(dir, name))
        .await
        .expect("SQLite opens")
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
    let mut live = crate::sessions::LiveSession::new("nas1", "nas1", sid, started);
    live.user_name = Some(login.into());
    live.framed_ip = Some(ip.parse().expect("an IPv4 address"));
    live.input_octets = 1_000;
    live.output_octets = 3_000_000;
    crate::sessions::ClosedSession {
        session: live,
        stopped_at: started + time::Duration::seconds(secs),
        reason: crate::sessions::CloseReason::Stop,
        terminate_cause: cause,
    }
}

/// A traffic reading of `user_name` from a session of its own (a fresh session id each
/// call), so that readings add up the way the deltas of separate sessions do.
pub fn traffic_sample(
    user_name: &str,
    at: time::OffsetDateTime,
    input: u64,
    output: u64,
) -> crate::sessions::TrafficReading {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::sessions::TrafficReading {
        nas: "test-nas".into(),
        session_id: format!("sample-{n}"),
        started_at: at,
        user_name: user_name.into(),
        at,
        input_octets: input,
        output_octets: output,
    }
}
