//! IP reassembly for captured fragments, IPv4 and IPv6 alike, without I/O: the caller passes
//! the time. Memory is bounded: at most `max_datagrams` datagrams are collected at once (the
//! oldest is evicted to make room), none may grow past [`MAX_PAYLOAD`], and a datagram not
//! complete within the timeout is dropped. Overlapping fragments are accepted only when the
//! overlapping octets agree; a conflicting overlap drops the whole datagram and every later
//! fragment of it until the timeout (RFC 5722), so no one can splice their own bytes into a
//! NAS's packet.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::frame::{Fragment, FragmentKey};

/// Largest reassembled payload: a UDP header and the largest RADIUS packet (RFC 2865 §3),
/// plus room for IPv6 extension headers in front of the UDP header.
pub(crate) const MAX_PAYLOAD: usize = 8 + 4096 + 64;

/// Why a datagram's fragments were thrown away; `label` is the metrics reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FragmentDrop {
    /// It would be larger than [`MAX_PAYLOAD`].
    TooBig,
    /// Fragments disagree: overlapping octets differ, or two different ends.
    Conflict,
    /// Not complete within the timeout.
    Timeout,
    /// Evicted to make room for a newer datagram.
    Evicted,
}

impl FragmentDrop {
    pub fn label(&self) -> &'static str {
        match self {
            FragmentDrop::TooBig => "fragment_too_big",
            FragmentDrop::Conflict => "fragment_conflict",
            FragmentDrop::Timeout => "fragment_timeout",
            FragmentDrop::Evicted => "fragment_evicted",
        }
    }
}

/// What adding one fragment gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// Waiting for more fragments.
    Pending,
    /// The datagram is complete: its payload (after the IP / Fragment header).
    Complete(Vec<u8>),
    /// The fragment belongs to a datagram that is ignored or was dropped earlier.
    Discarded,
    /// The datagram is dropped now.
    Dropped(FragmentDrop),
}

enum State {
    Collecting {
        data: Vec<u8>,
        /// Octet ranges received, sorted and merged.
        have: Vec<(usize, usize)>,
        /// Payload length, known once the last fragment came.
        total: Option<usize>,
    },
    /// Its remaining fragments are thrown away quietly: not for us, or already dropped.
    Dead,
}

struct Entry {
    first_seen: Instant,
    state: State,
}

/// Datagrams being reassembled.
pub(crate) struct Reassembly {
    entries: HashMap<FragmentKey, Entry>,
    max_datagrams: usize,
    timeout: Duration,
}

impl Reassembly {
    pub fn new(max_datagrams: usize, timeout: Duration) -> Self {
        Reassembly {
            entries: HashMap::new(),
            max_datagrams: max_datagrams.max(1),
            timeout,
        }
    }

    /// Datagrams held (collecting or remembered as dead).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first fragment of a datagram that is not for us: quietly drop its other
    /// fragments. When pieces of it are already held, it is checked against them like any
    /// fragment instead, so a forged first fragment cannot silently cancel a datagram.
    pub fn ignore(
        &mut self,
        fragment: &Fragment<'_>,
        now: Instant,
    ) -> (Added, Option<FragmentDrop>) {
        if self.entries.contains_key(&fragment.key) {
            return self.add(fragment, now);
        }
        let evicted = self.make_room(&fragment.key);
        self.entries.insert(
            fragment.key,
            Entry {
                first_seen: now,
                state: State::Dead,
            },
        );
        (Added::Discarded, evicted)
    }

    /// Add one fragment. A second value reports a datagram evicted to make room.
    pub fn add(&mut self, fragment: &Fragment<'_>, now: Instant) -> (Added, Option<FragmentDrop>) {
        let evicted = self.make_room(&fragment.key);
        let entry = self.entries.entry(fragment.key).or_insert_with(|| Entry {
            first_seen: now,
            state: State::Collecting {
                data: Vec::new(),
                have: Vec::new(),
                total: None,
            },
        });
        let State::Collecting { data, have, total } = &mut entry.state else {
            return (Added::Discarded, evicted);
        };
        let added = match place(data, have, total, fragment) {
            Err(reason) => {
                entry.state = State::Dead;
                Added::Dropped(reason)
            }
            Ok(()) if *total == Some(have[0].1) && have.len() == 1 && have[0].0 == 0 => {
                let payload = std::mem::take(data);
                self.entries.remove(&fragment.key);
                Added::Complete(payload)
            }
            Ok(()) => Added::Pending,
        };
        (added, evicted)
    }

    /// Drop datagrams older than the timeout; returns how many were still collecting.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut incomplete = 0;
        self.entries.retain(|_, e| {
            let keep = now.saturating_duration_since(e.first_seen) < self.timeout;
            if !keep && matches!(e.state, State::Collecting { .. }) {
                incomplete += 1;
            }
            keep
        });
        incomplete
    }

    /// With the table full and `key` new, evict the oldest datagram.
    fn make_room(&mut self, key: &FragmentKey) -> Option<FragmentDrop> {
        if self.entries.len() < self.max_datagrams || self.entries.contains_key(key) {
            return None;
        }
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.first_seen)
            .map(|(k, _)| *k)?;
        let e = self.entries.remove(&oldest)?;
        matches!(e.state, State::Collecting { .. }).then_some(FragmentDrop::Evicted)
    }
}

/// Put a fragment's octets in place, checking them against what is already there.
fn place(
    data: &mut Vec<u8>,
    have: &mut Vec<(usize, usize)>,
    total: &mut Option<usize>,
    fragment: &Fragment<'_>,
) -> Result<(), FragmentDrop> {
    let start = fragment.offset;
    let end = start + fragment.data.len();
    if end > MAX_PAYLOAD {
        return Err(FragmentDrop::TooBig);
    }
    let known_end = have.last().map_or(0, |r| r.1);
    match (*total, fragment.more) {
        // Two different last fragments, or a last one shorter than what came before.
        (Some(t), false) if t != end => return Err(FragmentDrop::Conflict),
        (None, false) if known_end > end => return Err(FragmentDrop::Conflict),
        (Some(t), true) if end >= t => return Err(FragmentDrop::Conflict),
        _ => {}
    }
    for &(s, e) in have.iter() {
        let (from, to) = (s.max(start), e.min(end));
        if from < to && data[from..to] != fragment.data[from - start..to - start] {
            return Err(FragmentDrop::Conflict);
        }
    }
    if !fragment.more {
        *total = Some(end);
    }
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(fragment.data);
    // Merge [start, end) into the sorted, disjoint ranges.
    let mut merged = (start, end);
    have.retain(|&(s, e)| {
        if e < merged.0 || s > merged.1 {
            true
        } else {
            merged = (merged.0.min(s), merged.1.max(e));
            false
        }
    });
    let at = have.partition_point(|r| r.0 < merged.0);
    have.insert(at, merged);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            source: IpAddr::from([192, 0, 2, 1]),
            destination: IpAddr::from([192, 0, 2, 9]),
            protocol: 17,
            id,
        }
    }

    fn frag(id: u32, offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            data,
        }
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn in_order_out_of_order_and_duplicate_fragments_reassemble() {
        let p = payload(40);
        let t0 = Instant::now();
        let mut r = Reassembly::new(8, Duration::from_secs(30));
        assert_eq!(r.add(&frag(1, 0, true, &p[..16]), t0).0, Added::Pending);
        assert_eq!(r.add(&frag(1, 16, true, &p[16..32]), t0).0, Added::Pending);
        assert_eq!(
            r.add(&frag(1, 32, false, &p[32..]), t0).0,
            Added::Complete(p.clone())
        );
        assert!(r.is_empty());

        // Last first, an exact duplicate, and an overlapping fragment that agrees.
        assert_eq!(r.add(&frag(2, 32, false, &p[32..]), t0).0, Added::Pending);
        assert_eq!(r.add(&frag(2, 8, true, &p[8..24]), t0).0, Added::Pending);
        assert_eq!(r.add(&frag(2, 8, true, &p[8..24]), t0).0, Added::Pending);
        assert_eq!(r.add(&frag(2, 16, true, &p[16..32]), t0).0, Added::Pending);
        assert_eq!(
            r.add(&frag(2, 0, true, &p[..16]), t0).0,
            Added::Complete(p.clone())
        );
        assert!(r.is_empty());
    }

    #[test]
    fn conflicting_overlap_drops_the_datagram_and_its_later_fragments() {
        let p = payload(32);
        let mut forged = p[8..24].to_vec();
        forged[3] ^= 0xff;
        let t0 = Instant::now();
        let mut r = Reassembly::new(8, Duration::from_secs(30));
        assert_eq!(r.add(&frag(1, 0, true, &p[..16]), t0).0, Added::Pending);
        assert_eq!(
            r.add(&frag(1, 8, true, &forged), t0).0,
            Added::Dropped(FragmentDrop::Conflict)
        );
        // The genuine rest no longer completes anything.
        assert_eq!(r.add(&frag(1, 16, false, &p[16..]), t0).0, Added::Discarded);
        // Two different ends.
        assert_eq!(r.add(&frag(2, 16, false, &p[16..]), t0).0, Added::Pending);
        assert_eq!(
            r.add(&frag(2, 16, false, &p[16..24]), t0).0,
            Added::Dropped(FragmentDrop::Conflict)
        );
        // A middle fragment reaching past the known end.
        assert_eq!(r.add(&frag(3, 16, false, &p[16..24]), t0).0, Added::Pending);
        assert_eq!(
            r.add(&frag(3, 16, true, &p[16..32]), t0).0,
            Added::Dropped(FragmentDrop::Conflict)
        );
        // A last fragment ending before octets already received.
        assert_eq!(r.add(&frag(4, 16, true, &p[16..32]), t0).0, Added::Pending);
        assert_eq!(
            r.add(&frag(4, 0, false, &p[..8]), t0).0,
            Added::Dropped(FragmentDrop::Conflict)
        );
    }

    #[test]
    fn size_limit_timeout_and_eviction_bound_memory() {
        let big = vec![0u8; 512];
        let t0 = Instant::now();
        let mut r = Reassembly::new(2, Duration::from_secs(30));
        assert_eq!(
            r.add(&frag(1, MAX_PAYLOAD - 256, true, &big), t0).0,
            Added::Dropped(FragmentDrop::TooBig)
        );
        // The table holds two datagrams: a third evicts the oldest (the dead one: not
        // counted), a fourth evicts a collecting one.
        let t1 = t0 + Duration::from_secs(1);
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(r.add(&frag(2, 0, true, &big[..8]), t1).0, Added::Pending);
        assert_eq!(
            r.add(&frag(3, 0, true, &big[..8]), t2),
            (Added::Pending, None)
        );
        assert_eq!(
            r.add(&frag(4, 0, true, &big[..8]), t2),
            (Added::Pending, Some(FragmentDrop::Evicted))
        );
        assert_eq!(r.len(), 2);
        // Both still collecting after the timeout: dropped and counted.
        assert_eq!(r.expire(t2 + Duration::from_secs(29)), 0);
        assert_eq!(r.expire(t2 + Duration::from_secs(30)), 2);
        assert!(r.is_empty());
        // An ignored datagram's fragments are discarded until the timeout.
        assert_eq!(
            r.ignore(&frag(5, 0, true, &big[..8]), t0),
            (Added::Discarded, None)
        );
        assert_eq!(r.add(&frag(5, 8, false, &big[..8]), t0).0, Added::Discarded);
        assert_eq!(r.expire(t0 + Duration::from_secs(30)), 0);
        assert_eq!(r.add(&frag(5, 8, false, &big[..8]), t0).0, Added::Pending);
    }
}
