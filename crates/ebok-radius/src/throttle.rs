//! Log lines about what a NAS (or anyone on its network) sends are rate-limited: a flood
//! of bad datagrams must not become a flood of log. A [`Throttle`] lets one line through
//! per interval, and each line says how many events it stands for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One line per `every`; the events in between counted.
pub struct Throttle {
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
        let now = Instant::now();
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
        assert_eq!(t.note(3), Some(3));
        for _ in 0..1000 {
            assert_eq!(t.note(1), None);
        }
        assert_eq!(t.note(5), None);
        std::thread::sleep(Duration::from_millis(220));
        assert_eq!(t.note(2), Some(1007));
        assert_eq!(t.note(1), None);
    }
}
