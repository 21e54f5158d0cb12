//! The connection note's answer for a visitor who is not logged in: "is the address you come
//! from a live line of our network?" (see [`super::pages::Chrome`]).
//!
//! With the embedded live map that is a read of memory, asked every time. With Redis it is a
//! round trip (≈ 17 µs of CPU between ebok and redis-server, more than the rest of the page),
//! so the answer for an address is remembered for [`TTL`]: a visitor clicking through the
//! anonymous pages, or a script hammering the home page from one address, asks Redis once
//! per [`TTL`]. Failed lookups are not remembered.
//!
//! Only the note uses this. Registration and everything logged in ask the live map itself
//! every time: a session that has just ended can leave the note saying "our line" for at most
//! [`TTL`], never let anyone register or see whose line it is.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use ebok_live::sessions::LiveSessions;

/// How long an answer is believed.
pub const TTL: Duration = Duration::from_secs(2);
/// Addresses remembered at most; when full, the stale ones go, and if none is stale, all.
const CAPACITY: usize = 65_536;

/// Remembered answers (or none: ask every time).
pub struct LineNoteCache {
    answers: Option<Mutex<HashMap<IpAddr, (bool, Instant)>>>,
}

impl LineNoteCache {
    /// `remember`: keep answers for [`TTL`] (a remote live map); else ask every time.
    pub fn new(remember: bool) -> Self {
        LineNoteCache {
            answers: remember.then(|| Mutex::new(HashMap::new())),
        }
    }

    /// Is `ip` a live line? A lookup error reads as "no", as everywhere in the note.
    pub(crate) async fn is_live(&self, live: &dyn LiveSessions, ip: IpAddr) -> bool {
        let Some(answers) = &self.answers else {
            return matches!(live.lookup(ip).await, Ok(Some(_)));
        };
        let now = Instant::now();
        if let Some(&(known, at)) = lock(answers).get(&ip) {
            if now.duration_since(at) < TTL {
                return known;
            }
        }
        let known = match live.lookup(ip).await {
            Ok(found) => found.is_some(),
            Err(_) => return false,
        };
        let mut map = lock(answers);
        if map.len() >= CAPACITY && !map.contains_key(&ip) {
            map.retain(|_, (_, at)| now.duration_since(*at) < TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(ip, (known, now));
        known
    }

    /// Addresses remembered now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.answers.as_ref().map_or(0, |a| lock(a).len())
    }
}

/// The map even if a panicking holder poisoned the lock (it holds plain values).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebok_live::sessions::embedded::EmbeddedSessions;
    use ebok_radius::event::{AccountingEvent, StatusType};
    use time::OffsetDateTime;

    async fn event(live: &dyn LiveSessions, status: StatusType, at: OffsetDateTime) {
        let mut e = AccountingEvent::new(status, "nas1", "s1", at);
        e.user_name = Some("jan@isp".into());
        e.framed_ip = Some("10.0.0.7".parse().unwrap());
        live.apply(&e, at + time::Duration::hours(1)).await.unwrap();
    }

    async fn map() -> (EmbeddedSessions, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let live = EmbeddedSessions::open(&dir.path().join("live.sqlite"))
            .await
            .unwrap();
        (live, dir)
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_remembered_for_the_ttl_only_when_asked_to() {
        let (live, _dir) = map().await;
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let t0 = OffsetDateTime::now_utc();
        let cached = LineNoteCache::new(true);
        let direct = LineNoteCache::new(false);
        assert!(!cached.is_live(&live, ip).await, "no session yet");
        event(&live, StatusType::Start, t0).await;
        assert!(direct.is_live(&live, ip).await);
        assert!(
            !cached.is_live(&live, ip).await,
            "the 'no' is believed for the TTL"
        );
        tokio::time::advance(TTL).await;
        assert!(cached.is_live(&live, ip).await, "asked again after the TTL");
        event(&live, StatusType::Stop, t0 + time::Duration::seconds(1)).await;
        assert!(!direct.is_live(&live, ip).await);
        assert!(cached.is_live(&live, ip).await, "stale by at most the TTL");
        tokio::time::advance(TTL).await;
        assert!(!cached.is_live(&live, ip).await);
        assert_eq!(cached.len(), 1);
        assert_eq!(direct.len(), 0, "nothing remembered for a local map");
        live.close().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_is_bounded() {
        let (live, _dir) = map().await;
        let cached = LineNoteCache::new(true);
        for i in 0..CAPACITY as u32 {
            cached.is_live(&live, IpAddr::from(i.to_be_bytes())).await;
        }
        assert_eq!(cached.len(), CAPACITY);
        // Full of fresh answers: a new address starts over.
        cached.is_live(&live, "10.9.9.9".parse().unwrap()).await;
        assert_eq!(cached.len(), 1);
        // Full again, then all stale: they go, the new answers stay.
        for i in 1..CAPACITY as u32 {
            cached.is_live(&live, IpAddr::from(i.to_be_bytes())).await;
        }
        tokio::time::advance(TTL).await;
        cached.is_live(&live, "10.9.9.8".parse().unwrap()).await;
        cached.is_live(&live, "10.9.9.7".parse().unwrap()).await;
        assert_eq!(cached.len(), 2);
        live.close().await;
    }
}
