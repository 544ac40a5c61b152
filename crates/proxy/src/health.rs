//! Per-address health: the verdict of active checks and passive outlier ejection.
//!
//! Everything the request path reads or bumps is an atomic, so picking an address and
//! reporting a response never takes a lock. The state machines take the time as an
//! argument (milliseconds since the cluster was built), so tests drive them with a
//! clock of their own.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sekisho_config::{HealthCheck, OutlierDetection};

use crate::snapshot::{CheckResult, HealthStatus};

/// Milliseconds since a fixed instant (the cluster's creation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Now, in milliseconds since the epoch; at least 1 so that 0 can mean "never".
    pub(crate) fn now_ms(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64).max(1)
    }
}

/// What one request told about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response below 500: resets the failure counts.
    Success,
    /// A 5xx response, or the connection broke before the response head.
    ServerError,
    /// The connection could not be made (refused, timed out, TLS or handshake failed).
    ConnectFailure,
    /// Says nothing about the address (pool full, the request's own body failed).
    Neutral,
}

/// The active checks' bookkeeping, touched only by the checker (and snapshots).
#[derive(Debug, Default)]
struct CheckState {
    checked: bool,
    passes: u32,
    failures: u32,
    last: Option<CheckResult>,
}

/// Health of one endpoint address.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Active checks say unhealthy.
    check_failed: AtomicBool,
    check: Mutex<CheckState>,
    consecutive_5xx: AtomicU32,
    consecutive_connect_failures: AtomicU32,
    /// Ejected until this time (ms since the epoch); 0: never ejected.
    ejected_until: AtomicU64,
    /// How many ejections in a row the next one follows (its length multiplier - 1).
    ejection_level: AtomicU32,
    ejections_total: AtomicU64,
}

impl Health {
    /// Whether requests may go to the address now.
    pub(crate) fn is_available(&self, now_ms: u64) -> bool {
        !self.check_failed.load(Ordering::Relaxed) && !self.is_ejected(now_ms)
    }

    /// Whether the address is ejected now.
    pub(crate) fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now_ms
    }

    /// Counts one request's outcome; true when it reached an ejection threshold (the
    /// caller then decides, cluster-wide, whether to eject).
    pub(crate) fn record(&self, outcome: Outcome, cfg: &OutlierDetection) -> bool {
        match outcome {
            Outcome::Success => {
                // Loads first: a healthy address's counters stay 0 and their cache line clean.
                reset(&self.consecutive_5xx);
                reset(&self.consecutive_connect_failures);
                false
            }
            Outcome::ServerError => {
                let n = self.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
                cfg.consecutive_5xx > 0 && n >= cfg.consecutive_5xx
            }
            Outcome::ConnectFailure => {
                let n = self
                    .consecutive_connect_failures
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                cfg.consecutive_connect_failures > 0 && n >= cfg.consecutive_connect_failures
            }
            Outcome::Neutral => false,
        }
    }

    /// Forgets the failure counts (after an ejection, or when one was refused).
    pub(crate) fn clear_counts(&self) {
        reset(&self.consecutive_5xx);
        reset(&self.consecutive_connect_failures);
    }

    /// Ejects the address: for `base × n` (capped at `max`), where `n` counts ejections in
    /// a row; an address that stayed in for `max` since its last ejection starts over at
    /// one. Returns the ejection's length.
    pub(crate) fn eject(&self, now_ms: u64, cfg: &OutlierDetection) -> Duration {
        let max = cfg.max_ejection_time.max(cfg.base_ejection_time);
        let last_end = self.ejected_until.load(Ordering::Relaxed);
        let quiet = last_end == 0 || now_ms.saturating_sub(last_end) >= millis(max);
        let level = if quiet {
            1
        } else {
            self.ejection_level
                .load(Ordering::Relaxed)
                .saturating_add(1)
        };
        self.ejection_level.store(level, Ordering::Relaxed);
        let length = cfg.base_ejection_time.saturating_mul(level).min(max);
        self.ejected_until
            .store(now_ms + millis(length).max(1), Ordering::Relaxed);
        self.ejections_total.fetch_add(1, Ordering::Relaxed);
        self.clear_counts();
        length
    }

    /// Applies one active check; true when the verdict changed. A never-checked address
    /// takes its first result at once (it started healthy only for lack of evidence);
    /// later the thresholds apply.
    pub(crate) fn apply_check(&self, result: CheckResult, cfg: &HealthCheck) -> bool {
        let mut st = self.check.lock();
        let was_failed = self.check_failed.load(Ordering::Relaxed);
        let failed = if result.passed {
            st.failures = 0;
            st.passes = st.passes.saturating_add(1);
            was_failed && st.checked && st.passes < cfg.healthy_threshold
        } else {
            st.passes = 0;
            st.failures = st.failures.saturating_add(1);
            was_failed || !st.checked || st.failures >= cfg.unhealthy_threshold
        };
        st.checked = true;
        st.last = Some(result);
        self.check_failed.store(failed, Ordering::Relaxed);
        failed != was_failed
    }

    /// For snapshots.
    pub(crate) fn status(&self, now_ms: u64) -> HealthStatus {
        if self.check_failed.load(Ordering::Relaxed) {
            HealthStatus::Unhealthy
        } else if self.is_ejected(now_ms) {
            HealthStatus::Ejected
        } else {
            HealthStatus::Healthy
        }
    }

    /// Milliseconds of ejection left, if ejected.
    pub(crate) fn ejection_left_ms(&self, now_ms: u64) -> Option<u64> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        (until > now_ms).then(|| until - now_ms)
    }

    /// Ejections since the address appeared.
    pub(crate) fn ejections_total(&self) -> u64 {
        self.ejections_total.load(Ordering::Relaxed)
    }

    /// The latest active check, if any.
    pub(crate) fn last_check(&self) -> Option<CheckResult> {
        self.check.lock().last.clone()
    }
}

fn reset(counter: &AtomicU32) {
    if counter.load(Ordering::Relaxed) != 0 {
        counter.store(0, Ordering::Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether `ejected + 1` of `total` addresses stays within `max_percent`.
pub(crate) fn may_eject(ejected: usize, total: usize, max_percent: u32) -> bool {
    (ejected + 1) * 100 <= total * max_percent as usize
}

/// Whether `healthy` of `total` is below `threshold` percent (then all addresses are used).
pub(crate) fn in_panic(healthy: usize, total: usize, threshold: u32) -> bool {
    total > 0 && healthy * 100 < total * threshold as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlier(base_ms: u64, max_ms: u64) -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: 3,
            consecutive_connect_failures: 2,
            base_ejection_time: Duration::from_millis(base_ms),
            max_ejection_time: Duration::from_millis(max_ms),
            max_ejection_percent: 50,
        }
    }

    fn hc() -> HealthCheck {
        HealthCheck {
            path: "/h".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            host: None,
        }
    }

    fn result(passed: bool) -> CheckResult {
        CheckResult {
            passed,
            detail: String::new(),
        }
    }

    #[test]
    fn consecutive_counts_reset_on_success() {
        let h = Health::default();
        let cfg = outlier(100, 1000);
        assert!(!h.record(Outcome::ServerError, &cfg));
        assert!(!h.record(Outcome::ServerError, &cfg));
        assert!(!h.record(Outcome::Success, &cfg));
        assert!(!h.record(Outcome::ServerError, &cfg));
        assert!(!h.record(Outcome::Neutral, &cfg));
        assert!(!h.record(Outcome::ServerError, &cfg));
        assert!(h.record(Outcome::ServerError, &cfg));
        assert!(!h.record(Outcome::ConnectFailure, &cfg));
        assert!(h.record(Outcome::ConnectFailure, &cfg));
        let off = OutlierDetection {
            consecutive_5xx: 0,
            ..cfg
        };
        assert!((0..100).all(|_| !h.record(Outcome::ServerError, &off)));
    }

    #[test]
    fn ejection_backs_off_caps_and_starts_over() {
        let h = Health::default();
        let cfg = outlier(100, 250);
        assert!(h.is_available(10));
        assert_eq!(h.eject(10, &cfg), Duration::from_millis(100));
        assert!(!h.is_available(109));
        assert_eq!(h.status(50), HealthStatus::Ejected);
        assert_eq!(h.ejection_left_ms(50), Some(60));
        assert!(h.is_available(110));
        // Ejected again soon after: twice as long, then capped.
        assert_eq!(h.eject(120, &cfg), Duration::from_millis(200));
        assert!(!h.is_available(319));
        assert!(h.is_available(320));
        assert_eq!(h.eject(330, &cfg), Duration::from_millis(250));
        assert_eq!(h.ejections_total(), 3);
        // In rotation for `max` since the last ejection ended: back to the base.
        assert_eq!(h.eject(580 + 250, &cfg), Duration::from_millis(100));
    }

    #[test]
    fn active_checks_first_result_then_thresholds() {
        let h = Health::default();
        let cfg = hc();
        // A new address is healthy until a check says otherwise; the first failure counts.
        assert!(h.is_available(1));
        assert!(h.apply_check(result(false), &cfg));
        assert_eq!(h.status(1), HealthStatus::Unhealthy);
        assert!(!h.is_available(1));
        // Two passes in a row to come back.
        assert!(!h.apply_check(result(true), &cfg));
        assert!(!h.apply_check(result(false), &cfg));
        assert!(!h.apply_check(result(true), &cfg));
        assert!(h.apply_check(result(true), &cfg));
        assert!(h.is_available(1));
        // Three failures in a row to go out again.
        assert!(!h.apply_check(result(false), &cfg));
        assert!(!h.apply_check(result(false), &cfg));
        assert!(h.apply_check(result(false), &cfg));
        assert_eq!(h.last_check().map(|c| c.passed), Some(false));
    }

    #[test]
    fn a_passing_first_check_keeps_it_healthy() {
        let h = Health::default();
        assert!(!h.apply_check(result(true), &hc()));
        assert!(!h.apply_check(result(false), &hc()));
        assert!(h.is_available(1));
    }

    #[test]
    fn ejection_percent_and_panic() {
        assert!(may_eject(0, 2, 50));
        assert!(!may_eject(1, 2, 50));
        assert!(!may_eject(0, 1, 50));
        assert!(may_eject(2, 3, 100));
        assert!(!may_eject(0, 10, 0));
        assert!(may_eject(0, 10, 10));
        assert!(!may_eject(1, 10, 10));
        assert!(in_panic(0, 3, 50));
        assert!(in_panic(1, 3, 50));
        assert!(!in_panic(2, 3, 50));
        assert!(!in_panic(1, 2, 50));
        assert!(!in_panic(0, 2, 0));
        assert!(!in_panic(0, 0, 50));
    }
}
