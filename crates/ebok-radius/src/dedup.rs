//! Duplicate detection per RFC 5080 §2.2.2: a request is identified by source IP, source
//! port and Identifier; a retransmission carries the same Request Authenticator. The reply
//! to a processed request is kept for a while and resent without processing again; a
//! retransmission of a request still being processed is dropped (the reply will follow).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to do with an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// First time: process it (the cache now marks it in progress).
    New,
    /// Being processed: drop the retransmission.
    InProgress,
    /// Already answered: resend these bytes.
    Answered(Vec<u8>),
}

#[derive(Debug)]
struct Entry {
    authenticator: [u8; 16],
    reply: Option<Reply>,
    at: Instant,
}

/// Replies up to this long (an Accounting-Response with a Message-Authenticator is 38) are
/// kept inline: remembering a reply allocates nothing.
const INLINE: usize = 40;

/// A remembered reply.
#[derive(Debug)]
enum Reply {
    Inline(u8, [u8; INLINE]),
    Heap(Vec<u8>),
}

impl Reply {
    fn new(bytes: &[u8]) -> Reply {
        if bytes.len() <= INLINE {
            let mut inline = [0u8; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Reply::Inline(bytes.len() as u8, inline)
        } else {
            Reply::Heap(bytes.to_vec())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Reply::Inline(len, b) => &b[..usize::from(*len)],
            Reply::Heap(v) => v,
        }
    }
}

type Key = (SocketAddr, u8);
/// Keys come only from configured NAS addresses whose requests were authenticated; a keyed
/// fast hash (foldhash, seeded per process) instead of SipHash.
type Shard = HashMap<Key, Entry, foldhash::fast::RandomState>;

/// The duplicate cache, sharded to keep lock contention low.
#[derive(Debug)]
pub struct DuplicateCache {
    shards: Vec<Mutex<Shard>>,
    window: Duration,
}

const SHARDS: usize = 16;

impl DuplicateCache {
    pub fn new(window: Duration) -> Self {
        DuplicateCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            window,
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        let port = key.0.port() as usize;
        &self.shards[(port ^ key.1 as usize) % SHARDS]
    }

    /// Look a request up and, when new, mark it in progress.
    pub fn check(&self, source: SocketAddr, identifier: u8, authenticator: [u8; 16]) -> Seen {
        let key = (source, identifier);
        let now = Instant::now();
        let mut shard = self.shard(&key).lock().expect("dedup lock");
        if let Some(e) = shard.get(&key) {
            if e.authenticator == authenticator && now.duration_since(e.at) < self.window {
                return match &e.reply {
                    Some(r) => Seen::Answered(r.bytes().to_vec()),
                    None => Seen::InProgress,
                };
            }
        }
        shard.insert(
            key,
            Entry {
                authenticator,
                reply: None,
                at: now,
            },
        );
        Seen::New
    }

    /// Remember the reply sent for a request.
    pub fn answered(
        &self,
        source: SocketAddr,
        identifier: u8,
        authenticator: [u8; 16],
        reply: &[u8],
    ) {
        let key = (source, identifier);
        let mut shard = self.shard(&key).lock().expect("dedup lock");
        if let Some(e) = shard.get_mut(&key) {
            if e.authenticator == authenticator {
                e.reply = Some(Reply::new(reply));
                e.at = Instant::now();
            }
        }
    }

    /// Forget a request that was not answered (dropped or failed), so a retransmission is
    /// processed afresh.
    pub fn forget(&self, source: SocketAddr, identifier: u8, authenticator: [u8; 16]) {
        let key = (source, identifier);
        let mut shard = self.shard(&key).lock().expect("dedup lock");
        if shard
            .get(&key)
            .is_some_and(|e| e.authenticator == authenticator)
        {
            shard.remove(&key);
        }
    }

    /// Drop entries older than the window; returns how many remain.
    pub fn purge(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let mut s = s.lock().expect("dedup lock");
                s.retain(|_, e| now.duration_since(e.at) < self.window);
                s.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmission_gets_cached_reply_and_new_authenticator_is_new() {
        let c = DuplicateCache::new(Duration::from_secs(30));
        let src: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        assert_eq!(c.check(src, 7, [1; 16]), Seen::New);
        assert_eq!(c.check(src, 7, [1; 16]), Seen::InProgress);
        c.answered(src, 7, [1; 16], b"reply");
        assert_eq!(c.check(src, 7, [1; 16]), Seen::Answered(b"reply".to_vec()));
        // A reply too long to keep inline comes back whole as well.
        let long: Vec<u8> = (0..=200u8).collect();
        assert_eq!(c.check(src, 8, [1; 16]), Seen::New);
        c.answered(src, 8, [1; 16], &long);
        assert_eq!(c.check(src, 8, [1; 16]), Seen::Answered(long));
        // Same id, other port or other authenticator: a different request.
        assert_eq!(
            c.check("10.0.0.1:4001".parse().unwrap(), 7, [1; 16]),
            Seen::New
        );
        assert_eq!(c.check(src, 7, [2; 16]), Seen::New);
        c.forget(src, 7, [2; 16]);
        assert_eq!(c.check(src, 7, [2; 16]), Seen::New);
    }

    #[test]
    fn entries_expire_after_window() {
        let c = DuplicateCache::new(Duration::from_millis(0));
        let src: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        assert_eq!(c.check(src, 1, [1; 16]), Seen::New);
        c.answered(src, 1, [1; 16], b"r");
        assert_eq!(c.check(src, 1, [1; 16]), Seen::New);
        assert_eq!(c.purge(), 0);
    }
}
