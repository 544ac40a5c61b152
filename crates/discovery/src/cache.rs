//! [`DnsCache`]: the request-path cache and its background refresher.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};

use crate::entry::{Entry, Outcome, Policy, Served, Waiter};
use crate::host::{cache_key, ip_literal};
use crate::lookup::{Answer, Lookup};
use crate::stats::{Counters, DnsEntryInfo, DnsStats};
use crate::{DnsConfig, DnsError};

/// The refresher looks at the entries at least this often (eviction, missed wakes).
const MAX_TICK: Duration = Duration::from_secs(1);
/// `refresh_soon` starts at most one lookup per name per this interval.
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Waiters give the (already bounded) lookup task this much slack before giving up themselves.
const WAIT_GRACE: Duration = Duration::from_millis(100);

/// A DNS cache that honors TTLs, refreshes names in use ahead of expiry and
/// serves the previous answer while the resolver fails.
///
/// Shared as `Arc<DnsCache>`; a background task refreshes entries and stops
/// when the last `Arc` is dropped.
pub struct DnsCache {
    lookup: Lookup,
    policy: Policy,
    timeout: Duration,
    entries: RwLock<HashMap<Box<str>, Entry>>,
    counters: Counters,
    /// Wakes the refresher early: a lookup finished, or the cache is being dropped.
    wake: Arc<Notify>,
    /// Origin of the entries' millisecond `last_used` stamps.
    epoch: Instant,
    /// Lookups are spawned here, so `refresh_soon` works from any thread.
    runtime: Handle,
    me: Weak<DnsCache>,
}

impl std::fmt::Debug for DnsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsCache")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl DnsCache {
    /// Builds the cache and spawns its refresher task.
    ///
    /// Must be called inside a tokio runtime (an error otherwise). With no
    /// `resolvers` configured, the name servers and search domains of
    /// `/etc/resolv.conf` are used.
    pub fn new(cfg: DnsConfig) -> Result<Arc<Self>, DnsError> {
        cfg.validate()?;
        let runtime = Handle::try_current().map_err(|_| {
            DnsError::Config("DnsCache::new must be called inside a tokio runtime".into())
        })?;
        let lookup = Lookup::new(&cfg)?;
        let wake = Arc::new(Notify::new());
        let cache = Arc::new_cyclic(|me| Self {
            lookup,
            policy: Policy::new(&cfg),
            timeout: cfg.timeout,
            entries: RwLock::new(HashMap::new()),
            counters: Counters::default(),
            wake: wake.clone(),
            epoch: Instant::now(),
            runtime: runtime.clone(),
            me: me.clone(),
        });
        runtime.spawn(refresher(Arc::downgrade(&cache), wake));
        Ok(cache)
    }

    /// The addresses of `host`.
    ///
    /// IP literals (`127.0.0.1`, `::1`, `[::1]`) are returned as they are. A
    /// known name is answered from memory, without waiting on the network,
    /// even when expired (for up to `max_stale`) while the resolver fails. An
    /// unknown name waits for one lookup (shared with concurrent callers),
    /// bounded by the configured timeout.
    pub async fn resolve(&self, host: &str) -> Result<Arc<[IpAddr]>, DnsError> {
        if let Some(ip) = ip_literal(host) {
            return Ok(Arc::from([ip]));
        }
        if host.is_empty() {
            return Err(DnsError::InvalidHost {
                host: String::new(),
                reason: "empty host name",
            });
        }
        let key = cache_key(host);
        let now = Instant::now();
        let used = self.millis(now);
        {
            let map = self.read();
            if let Some(entry) = map.get(&*key) {
                entry.touch(used);
                if let Some(served) = self.answer_from(entry.serve(now, &self.policy)) {
                    return served;
                }
            }
        }

        let waiter = {
            let mut map = self.write();
            let now = Instant::now();
            if !map.contains_key(&*key) {
                map.insert(Box::from(&*key), Entry::new(now, used));
            }
            let Some(entry) = map.get_mut(&*key) else {
                return Err(self.vanished(&key));
            };
            // Another caller's lookup may have finished between the two locks.
            if let Some(served) = self.answer_from(entry.serve(now, &self.policy)) {
                return served;
            }
            Counters::bump(&self.counters.misses);
            self.start_lookup(&key, entry, false)
        };
        self.wait(waiter, &key).await
    }

    /// Re-resolves `host` in the background now, e.g. after a connect failure
    /// to one of its addresses. At most once per second per name; a no-op for
    /// IP literals and names not in the cache.
    pub fn refresh_soon(&self, host: &str) {
        if host.is_empty() || ip_literal(host).is_some() {
            return;
        }
        let key = cache_key(host);
        let now = Instant::now();
        let due = |e: &Entry| {
            e.inflight.is_none()
                && e.last_forced
                    .is_none_or(|t| now.duration_since(t) >= FORCED_REFRESH_INTERVAL)
        };
        // Connect failures come in bursts: decide under the read lock first.
        if !self.read().get(&*key).is_some_and(due) {
            return;
        }
        let mut map = self.write();
        if let Some(entry) = map.get_mut(&*key).filter(|e| due(e)) {
            entry.last_forced = Some(now);
            let _ = self.start_lookup(&key, entry, true);
        }
    }

    /// The counters, for metrics.
    pub fn stats(&self) -> DnsStats {
        self.counters.snapshot(self.read().len())
    }

    /// Every cached name with its answer and state, sorted by name, for the admin page.
    pub fn entries(&self) -> Vec<DnsEntryInfo> {
        let now = Instant::now();
        let map = self.read();
        let mut out: Vec<DnsEntryInfo> = map
            .iter()
            .map(|(host, e)| DnsEntryInfo {
                host: host.to_string(),
                addrs: e
                    .good
                    .as_ref()
                    .map_or_else(|| Arc::from([]), |g| g.addrs.clone()),
                ttl: e.good.as_ref().map_or(Duration::ZERO, |g| g.ttl),
                ttl_left_ms: e.good.as_ref().map(|g| signed_millis(g.expires, now)),
                last_error: e.last_error(),
                failures: e.failures,
                refreshing: e.inflight.is_some(),
            })
            .collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// Counts and returns what `serve` allows answering without a lookup.
    fn answer_from(&self, served: Served) -> Option<Outcome> {
        match served {
            Served::Fresh(addrs) => {
                Counters::bump(&self.counters.hits);
                Some(Ok(addrs))
            }
            Served::Stale(addrs) => {
                Counters::bump(&self.counters.stale_served);
                Some(Ok(addrs))
            }
            Served::Negative(err) => {
                Counters::bump(&self.counters.negative_hits);
                Some(Err(err))
            }
            Served::Miss => None,
        }
    }

    /// Joins the lookup in flight for `host`, or spawns one.
    fn start_lookup(&self, host: &str, entry: &mut Entry, background: bool) -> Waiter {
        if let Some(waiter) = &entry.inflight {
            // A closed channel means the task died without answering (a panic):
            // start over rather than leave the name stuck.
            if waiter.has_changed().is_ok() {
                return waiter.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        entry.inflight = Some(rx.clone());
        Counters::bump(&self.counters.lookups);
        if background {
            Counters::bump(&self.counters.refreshes);
        }
        let lookup = self.lookup.clone();
        let me = self.me.clone();
        let host = host.to_owned();
        self.runtime.spawn(async move {
            let result = lookup.lookup(&host).await;
            let outcome = match me.upgrade() {
                Some(cache) => cache.complete(&host, result),
                None => result.map(|a| a.addrs),
            };
            // No receiver left is normal for background refreshes.
            let _ = tx.send(Some(outcome));
        });
        rx
    }

    /// Stores a lookup's result and says what its waiters get.
    fn complete(&self, host: &str, result: Result<Answer, DnsError>) -> Outcome {
        let now = Instant::now();
        let outcome = {
            let mut map = self.write();
            let Some(entry) = map.get_mut(host) else {
                return result.map(|a| a.addrs);
            };
            entry.inflight = None;
            match result {
                Ok(answer) => {
                    if entry.good.as_ref().is_some_and(|g| g.addrs != answer.addrs) {
                        tracing::info!(host, addrs = ?answer.addrs, "DNS answer changed");
                    }
                    entry.record_success(answer.addrs.clone(), answer.ttl, now, &self.policy);
                    Ok(answer.addrs)
                }
                Err(err) => {
                    Counters::bump(&self.counters.lookup_failures);
                    entry.record_failure(err.clone(), now, &self.policy);
                    match entry.serve(now, &self.policy) {
                        Served::Fresh(addrs) | Served::Stale(addrs) => {
                            tracing::warn!(host, error = %err, failures = entry.failures,
                                "DNS refresh failed; serving the previous answer");
                            Ok(addrs)
                        }
                        Served::Negative(_) | Served::Miss => {
                            tracing::debug!(host, error = %err, "DNS lookup failed");
                            Err(err)
                        }
                    }
                }
            }
        };
        // The entry's next refresh moved; let the refresher plan around it.
        self.wake.notify_one();
        outcome
    }

    async fn wait(&self, mut waiter: Waiter, host: &str) -> Outcome {
        let bound = self.timeout + WAIT_GRACE;
        match tokio::time::timeout(bound, waiter.wait_for(Option::is_some)).await {
            Ok(Ok(done)) => match &*done {
                Some(outcome) => outcome.clone(),
                None => Err(self.vanished(host)),
            },
            Ok(Err(_closed)) => Err(self.vanished(host)),
            Err(_elapsed) => Err(DnsError::Timeout {
                host: host.to_owned(),
                timeout: self.timeout,
            }),
        }
    }

    fn vanished(&self, host: &str) -> DnsError {
        DnsError::Resolver {
            host: host.to_owned(),
            message: "the lookup ended without an answer".into(),
        }
    }

    /// One refresher pass: evicts idle names, starts due refreshes, and
    /// returns when the next one is due.
    fn refresh_due(&self, now: Instant) -> Instant {
        let used_now = self.millis(now);
        let idle_ms = u64::try_from(self.policy.idle.as_millis()).unwrap_or(u64::MAX);
        let mut map = self.write();
        map.retain(|host, e| {
            let keep = e.inflight.is_some() || used_now.saturating_sub(e.last_used_ms()) < idle_ms;
            if !keep {
                tracing::debug!(host = &**host, "evicting idle DNS entry");
            }
            keep
        });
        let mut next = now + MAX_TICK;
        for (host, entry) in map.iter_mut() {
            let busy = entry
                .inflight
                .as_ref()
                .is_some_and(|w| w.has_changed().is_ok());
            if busy {
                continue;
            }
            if entry.next_refresh <= now {
                let _ = self.start_lookup(host, entry, true);
            } else {
                next = next.min(entry.next_refresh);
            }
        }
        next
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    // Critical sections never panic, so a poisoned lock still holds consistent data.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Box<str>, Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Box<str>, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for DnsCache {
    fn drop(&mut self) {
        // The refresher only holds a Weak; wake it so it notices and exits now.
        self.wake.notify_one();
    }
}

/// Refreshes due entries until the cache is dropped.
async fn refresher(cache: Weak<DnsCache>, wake: Arc<Notify>) {
    loop {
        let next = match cache.upgrade() {
            Some(cache) => cache.refresh_due(Instant::now()),
            None => return,
        };
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            () = wake.notified() => {}
        }
    }
}

/// `deadline - now` in milliseconds, negative once past.
fn signed_millis(deadline: Instant, now: Instant) -> i64 {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if deadline >= now {
        ms(deadline - now)
    } else {
        -ms(now - deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn config() -> DnsConfig {
        DnsConfig {
            // Nothing listens on the discard port; these tests never need an answer.
            resolvers: vec![SocketAddr::from(([127, 0, 0, 1], 9))],
            ..DnsConfig::default()
        }
    }

    /// The proxy boxes `resolve` as a `Send` future and shares the cache across threads.
    #[allow(dead_code)]
    fn resolve_future_is_send(cache: &DnsCache) {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        send_sync(cache);
        send(cache.resolve("api.test"));
    }

    #[test]
    fn new_outside_a_runtime_is_an_error() {
        let err = DnsCache::new(config()).expect_err("no runtime");
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }

    #[tokio::test]
    async fn incoherent_config_is_rejected() {
        let err = DnsCache::new(DnsConfig {
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(1),
            ..config()
        })
        .expect_err("min > max");
        assert!(matches!(err, DnsError::Config(_)), "{err:?}");
    }

    #[tokio::test]
    async fn idle_entries_are_evicted_and_used_ones_refreshed() {
        let cache = DnsCache::new(config()).expect("cache");
        let now = Instant::now();
        let addrs: Arc<[IpAddr]> = Arc::from([IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))]);
        for host in ["idle.test", "used.test"] {
            let mut entry = Entry::new(now, cache.millis(now));
            entry.record_success(addrs.clone(), Duration::from_secs(60), now, &cache.policy);
            cache.write().insert(host.into(), entry);
        }
        let later = now + cache.policy.idle + Duration::from_secs(1);
        if let Some(entry) = cache.read().get("used.test") {
            entry.touch(cache.millis(later));
        }

        cache.refresh_due(later);
        let hosts: Vec<String> = cache.entries().into_iter().map(|e| e.host).collect();
        assert_eq!(hosts, ["used.test"]);
        // The used entry was past its refresh-ahead point, so a refresh started.
        assert_eq!(cache.stats().refreshes, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refresher_stops_when_the_last_arc_is_dropped() {
        let metrics = Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let cache = DnsCache::new(config()).expect("cache");
        assert_eq!(metrics.num_alive_tasks(), before + 1, "refresher spawned");
        let weak = Arc::downgrade(&cache);
        drop(cache);
        assert!(weak.upgrade().is_none(), "no task keeps the cache alive");

        let deadline = Instant::now() + Duration::from_secs(2);
        while metrics.num_alive_tasks() > before {
            assert!(Instant::now() < deadline, "refresher still running");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
