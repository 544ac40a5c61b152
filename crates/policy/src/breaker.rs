//! A lock-free circuit breaker: after N consecutive backend failures, skip the backend for a
//! cooldown so a dead server costs nothing per request; then let one probe through.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// Monotonic nanoseconds since the first call in this process (fits an `AtomicU64`).
pub(crate) fn mono_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Circuit breaker state shared by every request of one policy.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    cooldown: u64,
    consecutive: AtomicU32,
    /// 0 when closed; else when the cooldown ends (see [`mono_nanos`]).
    open_until: AtomicU64,
    probing: AtomicBool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        Self {
            failures: cfg.failures.max(1),
            cooldown: nanos(cfg.cooldown),
            consecutive: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// Whether this request may call the backend. When open past the cooldown, exactly one
    /// caller (the probe) gets `true` until it reports success or failure.
    pub fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if mono_nanos() < until {
            return false;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the circuit is open (the backend is being skipped).
    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    /// The backend answered: close the circuit.
    pub fn success(&self) {
        self.consecutive.store(0, Ordering::Release);
        if self.open_until.load(Ordering::Acquire) != 0 {
            self.open_until.store(0, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            tracing::info!("circuit closed: backend answered");
        }
    }

    /// The backend failed or timed out.
    pub fn failure(&self) {
        let n = self
            .consecutive
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        let was_probing = self.probing.load(Ordering::Acquire);
        if n >= self.failures || was_probing {
            let until = mono_nanos().saturating_add(self.cooldown).max(1);
            let was = self.open_until.swap(until, Ordering::AcqRel);
            self.probing.store(false, Ordering::Release);
            if was == 0 {
                tracing::warn!(failures = n, "circuit opened: backend failing");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_probes_once_after_cooldown() {
        let b = Breaker::new(BreakerConfig {
            failures: 2,
            cooldown: Duration::from_millis(30),
        });
        assert!(b.allow());
        b.failure();
        assert!(b.allow());
        b.failure();
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after cooldown");
        assert!(!b.allow(), "only one probe");
        b.failure();
        assert!(!b.allow(), "failed probe reopens");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow());
        assert!(!b.is_open());
    }
}
