//! One cached name: its last good answer, its failures, and when to refresh it.
//!
//! Pure state driven by an explicit `now`, so the expiry, stale and backoff
//! rules are unit-tested without a clock or a network.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::DnsError;

/// What a lookup ends with, as seen by the callers waiting on it.
pub(crate) type Outcome = Result<Arc<[IpAddr]>, DnsError>;
/// Callers waiting on a lookup in flight; `None` until it ends.
pub(crate) type Waiter = watch::Receiver<Option<Outcome>>;

/// Refresh at this fraction of the TTL, so the new answer lands before expiry.
const REFRESH_AHEAD: f64 = 0.8;
/// Floor of the refresh interval, so a TTL of 0 does not spin the refresher.
const MIN_REFRESH: Duration = Duration::from_millis(200);
/// First retry delay after a failed refresh; doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Negative answers are kept at least this long, even with `min_ttl = 0`.
const MIN_NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// The timing rules, derived once from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    pub max_stale: Duration,
    /// Longest retry delay while refreshes fail.
    pub max_backoff: Duration,
    /// An entry nobody asked for in this long is dropped.
    pub idle: Duration,
}

impl Policy {
    pub fn new(cfg: &crate::DnsConfig) -> Self {
        Self {
            min_ttl: cfg.min_ttl,
            max_ttl: cfg.max_ttl,
            max_stale: cfg.max_stale,
            max_backoff: cfg
                .max_ttl
                .clamp(Duration::from_secs(1), Duration::from_secs(30)),
            // Long enough that a name used once per scrape or cron survives,
            // short enough that removed clusters' names go away.
            idle: (cfg.max_ttl * 10).max(Duration::from_secs(600)),
        }
    }

    fn negative_ttl(&self) -> Duration {
        self.min_ttl.max(MIN_NEGATIVE_TTL)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(16);
        BACKOFF_BASE.saturating_mul(1 << exp).min(self.max_backoff)
    }
}

/// The last good answer.
#[derive(Debug, Clone)]
pub(crate) struct Good {
    pub addrs: Arc<[IpAddr]>,
    /// TTL after clamping to `[min_ttl, max_ttl]`.
    pub ttl: Duration,
    pub expires: Instant,
}

/// What `resolve` may answer from memory.
#[derive(Debug)]
pub(crate) enum Served {
    Fresh(Arc<[IpAddr]>),
    /// Expired but within `max_stale`: served while the refresher retries.
    Stale(Arc<[IpAddr]>),
    /// The name has no usable answer and failed recently: answer the cached error.
    Negative(DnsError),
    /// Nothing usable: the caller must wait for a lookup.
    Miss,
}

/// One name's state in the cache.
#[derive(Debug)]
pub(crate) struct Entry {
    pub good: Option<Good>,
    /// The last failure and until when it is answered without a new lookup.
    pub negative: Option<(DnsError, Instant)>,
    /// Consecutive failed lookups.
    pub failures: u32,
    pub next_refresh: Instant,
    pub inflight: Option<Waiter>,
    /// When `refresh_soon` last started a lookup (rate limit).
    pub last_forced: Option<Instant>,
    /// Milliseconds since the cache's epoch; atomic so hits need only a read lock.
    pub last_used: AtomicU64,
}

impl Entry {
    pub fn new(now: Instant, used_ms: u64) -> Self {
        Self {
            good: None,
            negative: None,
            failures: 0,
            next_refresh: now,
            inflight: None,
            last_forced: None,
            last_used: AtomicU64::new(used_ms),
        }
    }

    /// Marks the entry used. Stores at most once a second: a store on every hit
    /// would bounce the cache line between cores on a hot name.
    pub fn touch(&self, used_ms: u64) {
        if used_ms.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= 1000 {
            self.last_used.store(used_ms, Ordering::Relaxed);
        }
    }

    pub fn last_used_ms(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// What can be answered now without a lookup. Cheap: an `Arc` clone at most.
    pub fn serve(&self, now: Instant, p: &Policy) -> Served {
        if let Some(good) = &self.good {
            if now < good.expires {
                return Served::Fresh(good.addrs.clone());
            }
            if now < good.expires + p.max_stale {
                return Served::Stale(good.addrs.clone());
            }
        }
        match &self.negative {
            Some((err, until)) if now < *until => Served::Negative(err.clone()),
            _ => Served::Miss,
        }
    }

    /// A lookup answered: replace the answer, forget failures, plan the refresh ahead of expiry.
    pub fn record_success(
        &mut self,
        addrs: Arc<[IpAddr]>,
        raw_ttl: Duration,
        now: Instant,
        p: &Policy,
    ) {
        let ttl = raw_ttl.clamp(p.min_ttl, p.max_ttl);
        self.good = Some(Good {
            addrs,
            ttl,
            expires: now + ttl,
        });
        self.negative = None;
        self.failures = 0;
        self.next_refresh = now + ttl.mul_f64(REFRESH_AHEAD).max(MIN_REFRESH);
    }

    /// A lookup failed: keep any previous answer (it is served stale), remember
    /// the error, and retry with backoff.
    pub fn record_failure(&mut self, err: DnsError, now: Instant, p: &Policy) {
        self.failures = self.failures.saturating_add(1);
        let retry = p.backoff(self.failures);
        // Only consulted once no answer is servable (see `serve`).
        self.negative = Some((err, now + p.negative_ttl()));
        self.next_refresh = now + retry;
    }

    /// The last error, for the admin page; `None` once a lookup succeeds again.
    pub fn last_error(&self) -> Option<String> {
        self.negative.as_ref().map(|(e, _)| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DnsConfig;
    use std::net::Ipv4Addr;

    fn policy() -> Policy {
        Policy::new(&DnsConfig {
            min_ttl: Duration::from_secs(2),
            max_ttl: Duration::from_secs(60),
            max_stale: Duration::from_secs(30),
            ..DnsConfig::default()
        })
    }

    fn addrs(last: u8) -> Arc<[IpAddr]> {
        Arc::from([IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))])
    }

    fn not_found() -> DnsError {
        DnsError::NotFound {
            host: "a.test".into(),
            detail: "NXDOMAIN".into(),
        }
    }

    #[test]
    fn new_entry_is_a_miss() {
        let now = Instant::now();
        assert!(matches!(
            Entry::new(now, 0).serve(now, &policy()),
            Served::Miss
        ));
    }

    #[test]
    fn ttl_is_clamped_and_refresh_planned_ahead_of_expiry() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Entry::new(t0, 0);
        e.record_success(addrs(2), Duration::from_secs(3600), t0, &p);
        let good = e.good.clone().expect("answer stored");
        assert_eq!(good.ttl, Duration::from_secs(60));
        assert_eq!(e.next_refresh, t0 + Duration::from_secs(48));

        e.record_success(addrs(2), Duration::ZERO, t0, &p);
        assert_eq!(e.good.as_ref().map(|g| g.ttl), Some(Duration::from_secs(2)));
    }

    #[test]
    fn fresh_then_stale_then_miss() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Entry::new(t0, 0);
        e.record_success(addrs(2), Duration::from_secs(10), t0, &p);
        assert!(matches!(
            e.serve(t0 + Duration::from_secs(9), &p),
            Served::Fresh(_)
        ));
        assert!(matches!(
            e.serve(t0 + Duration::from_secs(10), &p),
            Served::Stale(_)
        ));
        assert!(matches!(
            e.serve(t0 + Duration::from_secs(39), &p),
            Served::Stale(_)
        ));
        assert!(matches!(
            e.serve(t0 + Duration::from_secs(40), &p),
            Served::Miss
        ));
    }

    #[test]
    fn failed_refresh_keeps_serving_the_old_answer_and_backs_off() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Entry::new(t0, 0);
        e.record_success(addrs(2), Duration::from_secs(10), t0, &p);
        let t1 = t0 + Duration::from_secs(8);
        e.record_failure(not_found(), t1, &p);
        assert!(matches!(e.serve(t1, &p), Served::Fresh(a) if a == addrs(2)));
        assert!(matches!(
            e.serve(t1 + Duration::from_secs(5), &p),
            Served::Stale(_)
        ));
        assert!(e.last_error().is_some_and(|m| m.contains("a.test")));
        let first = e.next_refresh - t1;
        e.record_failure(not_found(), t1, &p);
        assert!(e.next_refresh - t1 > first, "backoff grows");
        for _ in 0..40 {
            e.record_failure(not_found(), t1, &p);
        }
        assert_eq!(e.next_refresh - t1, p.max_backoff, "backoff is capped");

        e.record_success(addrs(3), Duration::from_secs(10), t1, &p);
        assert_eq!(e.failures, 0);
        assert!(e.last_error().is_none());
    }

    #[test]
    fn first_lookup_failure_is_cached_briefly() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Entry::new(t0, 0);
        e.record_failure(not_found(), t0, &p);
        assert!(matches!(
            e.serve(t0 + Duration::from_secs(1), &p),
            Served::Negative(_)
        ));
        assert!(matches!(
            e.serve(t0 + Duration::from_secs(2), &p),
            Served::Miss
        ));
    }

    #[test]
    fn zero_ttl_does_not_spin() {
        let p = Policy::new(&DnsConfig {
            min_ttl: Duration::ZERO,
            ..DnsConfig::default()
        });
        let t0 = Instant::now();
        let mut e = Entry::new(t0, 0);
        e.record_success(addrs(2), Duration::ZERO, t0, &p);
        assert_eq!(e.next_refresh, t0 + MIN_REFRESH);
        assert!(matches!(e.serve(t0, &p), Served::Stale(_)));
    }
}
