//! GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per key) in a
//! sharded map of atomics: a check takes a shard's read lock and one compare-and-swap.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::breaker::mono_nanos;

const SHARDS: usize = 64;
/// Past this many keys a shard drops the keys whose bucket is full again (they are equal to new).
const SWEEP_AT: usize = 4096;

/// The outcome of one GCRA step, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Whether the request conforms.
    pub allowed: bool,
    /// Requests left in the bucket after this one.
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset: Duration,
    /// When denied: time until one request would conform.
    pub retry_after: Duration,
}

/// The rate: one request per `interval`, `burst` at once from a full bucket.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Emission interval in ns (`period / limit`).
    pub interval: u64,
    /// Bucket depth in ns (`interval * burst`).
    pub capacity: u64,
}

impl Rate {
    /// `limit` per `period`, `burst` at once (both at least 1).
    pub fn new(limit: u32, period: Duration, burst: u32) -> Self {
        let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let interval = (period / u64::from(limit.max(1))).max(1);
        Self {
            interval,
            capacity: interval.saturating_mul(u64::from(burst.max(1))),
        }
    }

    /// One step from theoretical arrival time `tat` at `now`: the new `tat` when allowed.
    pub fn step(&self, tat: u64, now: u64) -> (Step, Option<u64>) {
        let new = tat.max(now).saturating_add(self.interval);
        let diff = new - now;
        if diff > self.capacity {
            let step = Step {
                allowed: false,
                remaining: 0,
                reset: Duration::from_nanos(tat.saturating_sub(now)),
                retry_after: Duration::from_nanos(diff - self.capacity),
            };
            return (step, None);
        }
        let step = Step {
            allowed: true,
            remaining: (self.capacity - diff) / self.interval,
            reset: Duration::from_nanos(diff),
            retry_after: Duration::ZERO,
        };
        (step, Some(new))
    }
}

/// Per-instance GCRA limiter over many keys.
#[derive(Debug)]
pub struct LocalGcra {
    rate: Rate,
    hasher: RandomState,
    sweep_at: usize,
    shards: Vec<RwLock<HashMap<Box<str>, AtomicU64>>>,
}

impl LocalGcra {
    /// A limiter with an empty bucket table.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            hasher: RandomState::new(),
            sweep_at: SWEEP_AT,
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    /// Counts one request for `key` now.
    pub fn check(&self, key: &str) -> Step {
        self.check_at(key, mono_nanos())
    }

    /// Counts one request for `key` at `now` (ns on the [`mono_nanos`] clock).
    pub fn check_at(&self, key: &str, now: u64) -> Step {
        let idx = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        let Some(shard) = self.shards.get(idx) else {
            return self.rate.step(0, now).0;
        };
        if let Ok(map) = shard.read() {
            if let Some(tat) = map.get(key) {
                return self.cas(tat, now);
            }
        }
        let Ok(mut map) = shard.write() else {
            // A poisoned shard only happens after a panic elsewhere; stay available.
            return self.rate.step(0, now).0;
        };
        if map.len() >= self.sweep_at && !map.contains_key(key) {
            map.retain(|_, tat| tat.load(Ordering::Relaxed) > now);
        }
        let tat = map.entry(key.into()).or_insert_with(|| AtomicU64::new(0));
        self.cas(tat, now)
    }

    fn cas(&self, tat: &AtomicU64, now: u64) -> Step {
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let (step, new) = self.rate.step(current, now);
            let Some(new) = new else { return step };
            match tat.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return step,
                Err(seen) => current = seen,
            }
        }
    }

    /// Number of keys tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn burst_then_exact_rate() {
        // 10 per second, burst 5.
        let g = LocalGcra::new(Rate::new(10, Duration::from_secs(1), 5));
        let t0 = 100 * SEC;
        let allowed = (0..20).filter(|_| g.check_at("k", t0).allowed).count();
        assert_eq!(allowed, 5, "burst");
        let denied = g.check_at("k", t0);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Duration::from_millis(100));
        // Over the next second exactly 10 more conform, one per 100 ms.
        let mut n = 0;
        for ms in 1..=1000u64 {
            if g.check_at("k", t0 + ms * 1_000_000).allowed {
                n += 1;
            }
        }
        assert_eq!(n, 10);
        assert!(g.check_at("other", t0).allowed, "keys are independent");
    }

    #[test]
    fn remaining_counts_down() {
        let g = LocalGcra::new(Rate::new(3, Duration::from_secs(60), 3));
        let r: Vec<u64> = (0..3).map(|_| g.check_at("k", SEC).remaining).collect();
        assert_eq!(r, vec![2, 1, 0]);
        assert!(!g.check_at("k", SEC).allowed);
    }

    #[test]
    fn concurrent_checks_are_exact() {
        let g = std::sync::Arc::new(LocalGcra::new(Rate::new(
            1000,
            Duration::from_secs(3600),
            1000,
        )));
        let now = SEC;
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    (0..1000).filter(|_| g.check_at("k", now).allowed).count()
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn sweep_drops_full_buckets() {
        let mut g = LocalGcra::new(Rate::new(1, Duration::from_millis(1), 1));
        g.sweep_at = 8;
        for i in 0..2000 {
            g.check_at(&format!("old{i}"), SEC);
        }
        // Much later every old bucket is full again; new keys trigger sweeps in every shard.
        for i in 0..2000 {
            g.check_at(&format!("new{i}"), 10 * SEC);
        }
        assert!(g.len() < 3000, "{}", g.len());
    }
}
