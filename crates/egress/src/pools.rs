//! One upstream [`Cluster`] per destination `(scheme, host, port)`, created on first use,
//! kept while used, evicted when idle or when the map is full (least recently used first).
//!
//! HTTPS destinations use `Protocol::Auto`: one multiplexed HTTP/2 connection when the
//! origin offers h2 by ALPN, pooled HTTP/1.1 connections otherwise.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sekisho_config::{
    Cluster as ClusterConfig, ClusterResilience, Endpoint, LbPolicy, OutlierDetection, Pool,
    Protocol, UpstreamTls,
};
use sekisho_discovery::DnsCache;
use sekisho_proxy::{BoxError, Cluster, ClusterError, Resolve, ResolveFuture};
use sekisho_telemetry::metrics::{MetricWriter, Registry, RequestMetrics};

use crate::config::EgressConfig;
use crate::host::Scheme;
use crate::policy::Policy;

/// A pool's key.
pub(crate) type Key = (Scheme, String, u16);

/// A destination's pool and its per-destination metrics.
pub(crate) struct PoolEntry {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) metrics: Arc<RequestMetrics>,
    pub(crate) requests: AtomicU64,
    last_used_ms: AtomicU64,
}

/// Settings every destination's cluster is built with.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    pub(crate) keepalive_conns: usize,
    pub(crate) max_conns: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) pending_timeout: Duration,
    pub(crate) ca_file: Option<std::path::PathBuf>,
}

impl PoolSettings {
    pub(crate) fn from_config(c: &EgressConfig) -> Self {
        Self {
            keepalive_conns: c.keepalive_conns,
            // chocon's 0 means unlimited; the proxy crate hard-caps, so "large".
            max_conns: if c.max_conns_per_host == 0 {
                4096
            } else {
                c.max_conns_per_host
            },
            connect_timeout: c.connect_timeout,
            idle_timeout: c.idle_timeout,
            pending_timeout: c.proxy_read_timeout,
            ca_file: c.ca_file.clone(),
        }
    }

    /// The cluster config of one destination.
    pub(crate) fn cluster(&self, scheme: Scheme, host: &str, port: u16) -> ClusterConfig {
        let https = scheme == Scheme::Https;
        ClusterConfig {
            name: format!("{}://{host}:{port}", scheme.as_str()),
            endpoints: vec![Endpoint {
                host: host.to_owned(),
                port,
                weight: 1,
                at: Default::default(),
            }],
            protocol: if https {
                Protocol::Auto
            } else {
                Protocol::Http1
            },
            // Fixed upstream mode: the least busy of the name's addresses.
            lb: LbPolicy::LeastRequest,
            connect_timeout: self.connect_timeout,
            tls: https.then(|| UpstreamTls {
                sni: None,
                // The system's roots plus the operator's CA, as chocon users expect.
                ca: None,
                extra_ca: self.ca_file.clone(),
                system_roots: true,
                client_cert: None,
            }),
            pool: Pool {
                max_connections: self.max_conns.max(1),
                max_idle: self.keepalive_conns,
                idle_timeout: self.idle_timeout,
                max_pending: 4096,
                pending_timeout: self.pending_timeout,
            },
            resilience: ClusterResilience {
                // An origin's 5xx is an answer to relay, not a reason to stop using it.
                outlier_detection: OutlierDetection {
                    consecutive_5xx: 0,
                    ..OutlierDetection::default()
                },
                // chocon has no per-destination request cap; the pool caps connections.
                max_requests: 65_536,
                ..ClusterResilience::default()
            },
            at: Default::default(),
        }
    }
}

/// The DNS cache with denied addresses removed, so a pool never dials one even if a
/// name starts resolving to it later (DNS rebinding).
pub(crate) struct FilteredDns {
    pub(crate) dns: Arc<DnsCache>,
    pub(crate) policy: Arc<Policy>,
}

/// Every address of a name was denied.
#[derive(Debug, thiserror::Error)]
#[error("every address of {0} is denied by the destination policy")]
pub(crate) struct AllDenied(String);

impl Resolve for FilteredDns {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let ips = self
                .dns
                .resolve(host)
                .await
                .map_err(|e| Box::new(e) as BoxError)?;
            let name_ok = self.policy.check_name(host).unwrap_or(false);
            let kept: Vec<IpAddr> = ips
                .iter()
                .copied()
                .filter(|ip| self.policy.check_ip(*ip, name_ok).is_ok())
                .collect();
            if kept.is_empty() {
                return Err(Box::new(AllDenied(host.to_owned())) as BoxError);
            }
            Ok(Arc::from(kept))
        })
    }

    fn refresh_soon(&self, host: &str) {
        self.dns.refresh_soon(host);
    }
}

/// The bounded map of destination pools.
pub(crate) struct Pools {
    map: Mutex<HashMap<Key, Arc<PoolEntry>>>,
    settings: PoolSettings,
    resolver: Arc<dyn Resolve>,
    registry: Arc<Registry>,
    max: usize,
    epoch: Instant,
}

impl Pools {
    pub(crate) fn new(
        settings: PoolSettings,
        resolver: Arc<dyn Resolve>,
        registry: Arc<Registry>,
        max: usize,
    ) -> Arc<Self> {
        let pools = Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            settings,
            resolver,
            registry,
            max: max.max(1),
            epoch: Instant::now(),
        });
        tokio::spawn(sweeper(Arc::downgrade(&pools)));
        pools
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<PoolEntry>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool of a destination, created if needed (must run inside the runtime).
    pub(crate) fn get(
        &self,
        scheme: Scheme,
        host: &str,
        port: u16,
    ) -> Result<Arc<PoolEntry>, ClusterError> {
        let now = self.now_ms();
        let mut map = self.lock();
        let key = (scheme, host.to_owned(), port);
        if let Some(e) = map.get(&key) {
            e.last_used_ms.store(now, Ordering::Relaxed);
            e.requests.fetch_add(1, Ordering::Relaxed);
            return Ok(e.clone());
        }
        if map.len() >= self.max {
            // Full: drop the least recently used destination (its requests in flight
            // keep their cluster alive until they finish).
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_used_ms.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let cfg = self.settings.cluster(scheme, host, port);
        let cluster = Cluster::new(&cfg, self.resolver.clone())?;
        let entry = Arc::new(PoolEntry {
            metrics: self.registry.request_metrics("egress", cluster.name()),
            cluster,
            requests: AtomicU64::new(1),
            last_used_ms: AtomicU64::new(now),
        });
        map.insert(key, entry.clone());
        Ok(entry)
    }

    /// Removes pools unused for the idle timeout with nothing in flight.
    fn sweep(&self) {
        let now = self.now_ms();
        let idle_ms = u64::try_from(self.settings.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        self.lock().retain(|_, e| {
            let recent = now.saturating_sub(e.last_used_ms.load(Ordering::Relaxed)) < idle_ms;
            let busy = Arc::strong_count(e) > 1
                || e.cluster
                    .snapshot()
                    .endpoints
                    .iter()
                    .any(|ep| ep.in_flight > 0);
            recent || busy
        });
        self.registry.prune_unused_request_metrics();
    }

    /// Number of destinations with a pool.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Pool gauges and the connection reuse ratio, per destination.
    pub(crate) fn collect(&self, w: &mut MetricWriter) {
        let entries: Vec<Arc<PoolEntry>> = self.lock().values().cloned().collect();
        w.gauge(
            "sekisho_egress_destinations",
            "Destinations with a connection pool.",
            &[],
            entries.len() as f64,
        );
        for e in entries {
            let snap = e.cluster.snapshot();
            let name = snap.name.as_str();
            let labels = [("destination", name)];
            e.cluster.timings().write(w, "sekisho_egress", &labels);
            let opened: u64 = snap
                .endpoints
                .iter()
                .map(|p| p.connections_opened_total)
                .sum();
            let requests = e.requests.load(Ordering::Relaxed);
            let sum = |f: fn(&sekisho_proxy::EndpointSnapshot) -> usize| {
                snap.endpoints.iter().map(f).sum::<usize>() as f64
            };
            w.counter(
                "sekisho_egress_upstream_requests_total",
                "Requests sent to the destination.",
                &labels,
                requests,
            );
            w.counter(
                "sekisho_egress_upstream_connections_opened_total",
                "Upstream connections opened to the destination.",
                &labels,
                opened,
            );
            w.counter(
                "sekisho_egress_upstream_connect_failures_total",
                "Failed dials to the destination.",
                &labels,
                snap.endpoints
                    .iter()
                    .map(|p| p.connect_failures_total)
                    .sum(),
            );
            w.gauge(
                "sekisho_egress_connection_reuse_ratio",
                "Share of requests served on an already open connection (1 - opened / requests).",
                &labels,
                reuse_ratio(opened, requests),
            );
            w.gauge(
                "sekisho_egress_upstream_connections_active",
                "Upstream connections carrying requests.",
                &labels,
                sum(|p| p.active_connections),
            );
            w.gauge(
                "sekisho_egress_upstream_connections_idle",
                "Idle upstream keep-alive connections.",
                &labels,
                sum(|p| p.idle_connections),
            );
            w.gauge(
                "sekisho_egress_upstream_in_flight",
                "Requests in flight to the destination.",
                &labels,
                sum(|p| p.in_flight),
            );
        }
    }
}

/// `1 - opened / requests`, clamped to [0, 1]; 0 before any request.
pub(crate) fn reuse_ratio(opened: u64, requests: u64) -> f64 {
    if requests == 0 {
        return 0.0;
    }
    (1.0 - opened as f64 / requests as f64).clamp(0.0, 1.0)
}

async fn sweeper(pools: Weak<Pools>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pools) = pools.upgrade() else { return };
        pools.sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_ratios() {
        assert_eq!(reuse_ratio(0, 0), 0.0);
        assert_eq!(reuse_ratio(1, 1), 0.0);
        assert_eq!(reuse_ratio(1, 100), 0.99);
        assert_eq!(reuse_ratio(5, 1), 0.0);
    }

    #[test]
    fn cluster_config_per_scheme() {
        let s = PoolSettings::from_config(&EgressConfig::default());
        let c = s.cluster(Scheme::Https, "api.example.com", 443);
        assert_eq!(c.name, "https://api.example.com:443");
        assert_eq!(c.protocol, Protocol::Auto);
        assert!(c.tls.is_some());
        assert_eq!(c.pool.max_idle, 2);
        assert_eq!(c.pool.max_connections, 4096);
        let c = s.cluster(Scheme::Http, "10.0.0.1", 80);
        assert_eq!(c.protocol, Protocol::Http1);
        assert!(c.tls.is_none());
    }

    #[tokio::test]
    async fn bounded_map_evicts_least_recently_used() {
        let pools = Pools::new(
            PoolSettings::from_config(&EgressConfig::default()),
            Arc::new(sekisho_proxy::NoResolver),
            Arc::new(Registry::new()),
            2,
        );
        let a = pools.get(Scheme::Http, "127.0.0.1", 1).expect("a");
        drop(a);
        tokio::time::sleep(Duration::from_millis(5)).await;
        pools.get(Scheme::Http, "127.0.0.1", 2).expect("b");
        tokio::time::sleep(Duration::from_millis(5)).await;
        pools.get(Scheme::Http, "127.0.0.1", 3).expect("c");
        assert_eq!(pools.len(), 2);
        let keys: Vec<u16> = pools.lock().keys().map(|k| k.2).collect();
        assert!(!keys.contains(&1), "{keys:?}");
    }
}
