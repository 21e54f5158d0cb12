//! Log lines about what a NAS (or anyone on its network) sends are rate-limited: a flood
//! of bad datagrams must not become a flood of log. A [`Throttle`] lets one line through
//! per interval, and each line says how many events it stands for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One line per `every`; the events in between counted.
pub(crate) struct Throttle {
    every: Duration,
    last: Mutex<Option<Instant>>,
    pending: AtomicU64,
}

impl Throttle {
    pub const fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: Mutex::new(None),
            pending: AtomicU64::new(0),
        }
    }

    /// Note `n` more events; `Some(total)` when a line is due now (the first at once),
    /// `total` being the events since the last line, these included.
    pub fn note(&self, n: u64) -> Option<u64> {
        self.note_at(n, Instant::now())
    }

    /// [`Throttle::note`] at `now` (tests pass their own clock).
    fn note_at(&self, n: u64, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.fetch_add(n, Ordering::Relaxed);
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            return None;
        }
        *last = Some(now);
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_saying_how_many_it_stands_for() {
        let t = Throttle::new(Duration::from_millis(200));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(t.note_at(3, at(0)), Some(3));
        for _ in 0..1000 {
            assert_eq!(t.note_at(1, at(10)), None);
        }
        assert_eq!(t.note_at(5, at(199)), None);
        assert_eq!(t.note_at(2, at(220)), Some(1007));
        assert_eq!(t.note_at(1, at(221)), None);
    }
}
