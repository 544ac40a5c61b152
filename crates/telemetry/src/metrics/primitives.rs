//! Lock-free metric cells: counter, gauge and fixed-bucket histogram.
//!
//! All updates use `Relaxed` atomics: each cell is an independent statistic and
//! a scrape only needs every increment to land eventually, not an ordering
//! between cells.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (connections open, requests in flight).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// A gauge at zero.
    pub const fn new() -> Self {
        Self(AtomicI64::new(0))
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `n` (which may be negative).
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram with fixed upper bounds chosen at construction.
///
/// Each observation increments exactly one (non-cumulative) bucket, so a
/// record costs one `fetch_add` plus the sum update; the cumulative counts
/// Prometheus wants are computed at scrape time. The sum is an `f64` kept as
/// bits and updated with a CAS loop (lock-free; retries only under contention).
#[derive(Debug)]
pub struct Histogram {
    bounds: Box<[f64]>,
    /// `bounds.len() + 1` cells; the last one is the `+Inf` overflow bucket.
    buckets: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`], with cumulative bucket counts.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, ascending, without `+Inf`.
    pub bounds: Vec<f64>,
    /// `cumulative[i]` = observations `<= bounds[i]`; same length as `bounds`.
    pub cumulative: Vec<u64>,
    /// Total observations (the `+Inf` bucket and `_count`).
    pub count: u64,
    /// Sum of all observed values.
    pub sum: f64,
}

impl Histogram {
    /// A histogram with the given upper bounds.
    ///
    /// Non-finite bounds are dropped and the rest sorted and deduplicated, so
    /// any input yields a valid exposition.
    pub fn new(bounds: &[f64]) -> Self {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|v| v.is_finite()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let buckets = (0..=b.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            bounds: b.into_boxed_slice(),
            buckets,
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// A histogram over [`LATENCY_BUCKETS`] (seconds).
    pub fn latency() -> Self {
        Self::new(&LATENCY_BUCKETS)
    }

    /// Records one value.
    #[inline]
    pub fn observe(&self, v: f64) {
        // Linear scan: with ~14 bounds it beats a binary search's branches.
        // NaN compares false everywhere and lands in +Inf, like Prometheus'.
        let idx = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(cell) = self.buckets.get(idx) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// Records a duration in seconds.
    #[inline]
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Copies the current state, with cumulative bucket counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        let mut running = 0u64;
        for cell in self.buckets.iter().take(self.bounds.len()) {
            running = running.wrapping_add(cell.load(Ordering::Relaxed));
            cumulative.push(running);
        }
        let overflow = self.buckets.last().map_or(0, |c| c.load(Ordering::Relaxed));
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            cumulative,
            count: running.wrapping_add(overflow),
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_gauge() {
        let c = Counter::new();
        c.inc();
        c.add(4);
        assert_eq!(c.get(), 5);
        let g = Gauge::new();
        g.inc();
        g.inc();
        g.dec();
        g.add(-3);
        assert_eq!(g.get(), -2);
        g.set(7);
        assert_eq!(g.get(), 7);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::new(&[1.0, 0.5, f64::NAN, 2.0, 1.0]);
        for v in [0.1, 0.5, 0.7, 1.0, 3.0, f64::INFINITY] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.bounds, vec![0.5, 1.0, 2.0]);
        // le is inclusive: 0.5 falls in the 0.5 bucket.
        assert_eq!(s.cumulative, vec![2, 4, 4]);
        assert_eq!(s.count, 6);
    }

    #[test]
    fn histogram_sum_of_durations() {
        let h = Histogram::latency();
        h.observe_duration(Duration::from_millis(3));
        h.observe_duration(Duration::from_millis(20));
        let s = h.snapshot();
        assert!((s.sum - 0.023).abs() < 1e-12);
        assert_eq!(s.count, 2);
        // 3 ms lands in le=0.005, 20 ms in le=0.025.
        let at = |b: f64| {
            s.bounds
                .iter()
                .position(|x| *x == b)
                .map(|i| s.cumulative[i])
        };
        assert_eq!(at(0.0025), Some(0));
        assert_eq!(at(0.005), Some(1));
        assert_eq!(at(0.025), Some(2));
    }
}
