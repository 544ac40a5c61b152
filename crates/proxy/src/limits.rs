//! Cluster-wide limits: the circuit breaker on concurrent requests and the retry budget.
//!
//! Both are lock-free: the breaker is one counter; the budget is a ring of one-second
//! buckets, each an atomic packing the bucket's second with its count, so a bucket
//! moves on to a new second and counts in one compare-and-swap.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Length of the retry budget's window, in seconds.
const WINDOW_SECS: u64 = 10;

/// `max_requests`: concurrent requests to a cluster.
#[derive(Debug)]
pub(crate) struct Breaker {
    max: usize,
    active: AtomicUsize,
    rejected: AtomicU64,
}

/// One request counted by the [`Breaker`] until dropped.
#[derive(Debug)]
pub(crate) struct Permit(Arc<Breaker>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Breaker {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            active: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    /// A permit, or None (counted) when `max` requests are already active: fail fast, no queue.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        if self.active.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.active.fetch_sub(1, Ordering::Relaxed);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Permit(self.clone()))
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// Per-second counts over the last [`WINDOW_SECS`] seconds.
#[derive(Debug, Default)]
struct Window {
    /// `second << 32 | count`, indexed by `second % WINDOW_SECS`.
    buckets: [AtomicU64; WINDOW_SECS as usize],
}

impl Window {
    fn add(&self, sec: u64) {
        let tag = sec & 0xffff_ffff;
        let Some(bucket) = self.buckets.get((sec % WINDOW_SECS) as usize) else {
            return;
        };
        let mut cur = bucket.load(Ordering::Relaxed);
        loop {
            let next = if cur >> 32 == tag {
                cur.saturating_add(1).min(tag << 32 | 0xffff_ffff)
            } else {
                tag << 32 | 1
            };
            match bucket.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Count in second `sec` alone.
    fn at(&self, sec: u64) -> u64 {
        self.buckets
            .get((sec % WINDOW_SECS) as usize)
            .map(|b| b.load(Ordering::Relaxed))
            .filter(|v| v >> 32 == sec & 0xffff_ffff)
            .map_or(0, |v| v & 0xffff_ffff)
    }

    /// Sum over the window ending with second `sec`.
    fn sum(&self, sec: u64) -> u64 {
        (sec.saturating_sub(WINDOW_SECS - 1)..=sec)
            .map(|s| self.at(s))
            .sum()
    }
}

/// `retry_budget`: retries allowed while within `percent` of the requests over the last
/// ten seconds, or while under `min_per_second` in the current second.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    percent: u64,
    min_per_second: u64,
    epoch: Instant,
    /// Every attempt sent (first tries and retries).
    attempts: Window,
    retries: Window,
    granted: AtomicU64,
    exhausted: AtomicU64,
}

impl RetryBudget {
    pub(crate) fn new(cfg: sekisho_config::RetryBudget) -> Self {
        Self {
            percent: u64::from(cfg.percent),
            min_per_second: u64::from(cfg.min_retries_per_second),
            epoch: Instant::now(),
            attempts: Window::default(),
            retries: Window::default(),
            granted: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Counts one attempt.
    pub(crate) fn record_attempt(&self) {
        self.attempts.add(self.now());
    }

    /// Takes one retry from the budget if there is one.
    pub(crate) fn try_acquire(&self) -> bool {
        self.try_acquire_at(self.now())
    }

    fn try_acquire_at(&self, sec: u64) -> bool {
        let retries = self.retries.sum(sec);
        // First tries: attempts that were not retries.
        let requests = self.attempts.sum(sec).saturating_sub(retries);
        let within_percent = (retries + 1) * 100 <= requests * self.percent;
        let within_floor = self.retries.at(sec) < self.min_per_second;
        if within_percent || within_floor {
            // Two racing callers may both pass: the budget is approximate by one or two.
            self.retries.add(sec);
            self.granted.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Retries granted since the cluster was built.
    pub(crate) fn granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
    }

    /// Retries refused because the budget was spent.
    pub(crate) fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(percent: u32, min: u32) -> RetryBudget {
        RetryBudget::new(sekisho_config::RetryBudget {
            percent,
            min_retries_per_second: min,
        })
    }

    #[test]
    fn breaker_fails_fast_past_max() {
        let b = Breaker::new(2);
        let p1 = b.try_acquire().expect("first");
        let _p2 = b.try_acquire().expect("second");
        assert!(b.try_acquire().is_none());
        assert_eq!((b.active(), b.rejected()), (2, 1));
        drop(p1);
        let _p3 = b.try_acquire().expect("freed by the first");
        assert_eq!(b.active(), 2);
    }

    #[test]
    fn window_slides() {
        let w = Window::default();
        w.add(3);
        w.add(3);
        w.add(5);
        assert_eq!((w.at(3), w.at(4), w.at(5)), (2, 0, 1));
        assert_eq!(w.sum(12), 3);
        assert_eq!(w.sum(13), 1); // second 3 left the window
        w.add(13); // reuses second 3's bucket
        assert_eq!((w.at(3), w.at(13)), (0, 1));
        assert_eq!(w.sum(14), 2);
    }

    #[test]
    fn percent_of_first_tries() {
        let b = budget(20, 0);
        // No requests: nothing to retry against.
        assert!(!b.try_acquire_at(0));
        for _ in 0..100 {
            b.attempts.add(0);
        }
        // Each granted retry is then sent: an attempt, but not a request of its own.
        let granted = (0..50)
            .filter(|_| {
                let ok = b.try_acquire_at(0);
                if ok {
                    b.attempts.add(0);
                }
                ok
            })
            .count();
        assert_eq!(granted, 20);
        assert_eq!((b.granted(), b.exhausted()), (20, 31));
        // Still spent 9 s later; free again once the window has moved past second 0.
        assert!(!b.try_acquire_at(9));
        for _ in 0..10 {
            b.attempts.add(10);
        }
        assert!(b.try_acquire_at(10));
        b.attempts.add(10);
        assert!(b.try_acquire_at(10));
        b.attempts.add(10);
        assert!(!b.try_acquire_at(10));
    }

    #[test]
    fn per_second_floor() {
        let b = budget(0, 3);
        assert_eq!((0..10).filter(|_| b.try_acquire_at(0)).count(), 3);
        assert_eq!((0..10).filter(|_| b.try_acquire_at(1)).count(), 3);
    }

    #[test]
    fn retries_count_as_attempts_but_not_requests() {
        let b = budget(50, 0);
        for _ in 0..4 {
            b.attempts.add(0);
        }
        // 4 first tries: 2 retries; their own attempts do not earn more.
        assert!(b.try_acquire_at(0));
        b.attempts.add(0);
        assert!(b.try_acquire_at(0));
        b.attempts.add(0);
        assert!(!b.try_acquire_at(0));
    }
}
