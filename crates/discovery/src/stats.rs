//! Counters for metrics, and the per-name view for the admin page.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A snapshot of the cache's counters (monotonic since start, except `entries`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsStats {
    /// `resolve` calls answered from a fresh entry.
    pub hits: u64,
    /// `resolve` calls that had to wait for a lookup (their own or a coalesced one).
    pub misses: u64,
    /// `resolve` calls answered with an expired entry while refreshes fail or are in flight.
    pub stale_served: u64,
    /// `resolve` calls answered with a recently cached failure, without a lookup.
    pub negative_hits: u64,
    /// Lookups sent to the network (first lookups and refreshes).
    pub lookups: u64,
    /// Lookups that failed (NXDOMAIN, timeout, server errors).
    pub lookup_failures: u64,
    /// Lookups started in the background (refresh ahead, retries, `refresh_soon`).
    pub refreshes: u64,
    /// Names currently cached.
    pub entries: usize,
}

/// The counters behind [`DnsStats`]; relaxed atomics, they are only read for reporting.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale_served: AtomicU64,
    pub negative_hits: AtomicU64,
    pub lookups: AtomicU64,
    pub lookup_failures: AtomicU64,
    pub refreshes: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, entries: usize) -> DnsStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DnsStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            stale_served: get(&self.stale_served),
            negative_hits: get(&self.negative_hits),
            lookups: get(&self.lookups),
            lookup_failures: get(&self.lookup_failures),
            refreshes: get(&self.refreshes),
            entries,
        }
    }
}

/// One cached name, for the admin `/clusters` page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsEntryInfo {
    /// The name (lowercased).
    pub host: String,
    /// The answer being served; empty if the name never resolved.
    pub addrs: Arc<[IpAddr]>,
    /// TTL of that answer after clamping to `[min_ttl, max_ttl]`.
    pub ttl: Duration,
    /// Milliseconds until the answer expires; negative: stale for that long.
    /// `None` if the name never resolved.
    pub ttl_left_ms: Option<i64>,
    /// The last lookup error, until a lookup succeeds again.
    pub last_error: Option<String>,
    /// Consecutive failed lookups.
    pub failures: u32,
    /// Whether a lookup is in flight.
    pub refreshing: bool,
}
