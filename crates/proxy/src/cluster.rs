//! A cluster: its endpoint set, the background refresh task, and the request path.
//!
//! ```text
//! send ─► circuit breaker (max_requests) ─► pick address (LB over the healthy rotation, lock-free load)
//!      ─► checkout: idle HTTP/1 conn │ shared HTTP/2 conn │ dial (slot) │ wait (FIFO, bounded)
//!      ─► set URI form ─► send ─► HTTP/1: a task returns the conn to the pool once it is ready again
//!      ─► outcome (status / error) feeds outlier detection
//! ```

mod lease;
mod resilience;

pub use lease::Lease;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::uri::Scheme;
use http::Request;
use hyper::body::Incoming;
use parking_lot::Mutex;
use sekisho_config::{OutlierDetection, Protocol};

use crate::connect::{Connector, Established};
use crate::endpoints::{Endpoint, EndpointSet, Origin, Rotation};
use crate::error::{ClusterError, UpstreamError};
use crate::health::Clock;
use crate::limits::{Breaker, Permit, RetryBudget};
use crate::pool::{Checkout, Grant, H1Conn, H2Conn, H2Shared, PoolLimits};
use crate::request::{to_absolute_form, to_origin_form};
use crate::resolve::Resolve;
use crate::snapshot::{ClusterSnapshot, EndpointSnapshot};
use crate::{tls, UpstreamBody};

/// How often DNS-named endpoints are re-read from the (cheap, in-memory) DNS cache.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Bound on one name's lookup during a refresh (the cache answers from memory; this
/// only matters for a name's first lookup).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// A reused HTTP/1 connection may turn out closed just as we send; hyper then hands
/// the request back unsent and we try again, at most this many times.
const MAX_UNSENT_RETRIES: usize = 2;

/// An upstream cluster: endpoints, load balancing and a connection pool per address.
pub struct Cluster {
    name: String,
    origins: Vec<Arc<Origin>>,
    has_dns: bool,
    rotation: Rotation,
    limits: PoolLimits,
    expect_h2: bool,
    scheme: Scheme,
    connector: Connector,
    resolver: Arc<dyn Resolve>,
    set: ArcSwap<EndpointSet>,
    /// Serializes building a new set (DNS refresh, health changes), so the last one
    /// stored always reflects the latest health; never held across an await.
    rebuilding: Mutex<()>,
    outlier: OutlierDetection,
    clock: Clock,
    breaker: Arc<Breaker>,
    budget: RetryBudget,
    panic_routed: AtomicU64,
    /// Itself, for timers that re-admit ejected addresses.
    me: Weak<Cluster>,
}

/// A response head from an upstream.
#[derive(Debug)]
pub struct UpstreamResponse {
    /// The response; its body streams from the upstream connection.
    pub response: http::Response<Incoming>,
    /// The address that answered.
    pub endpoint: SocketAddr,
    /// Counts this request as in flight to `endpoint` (for `least_request`, snapshots,
    /// and choosing HTTP/2 connections) until dropped: keep it with the response body
    /// for exact counts; dropping it earlier only makes the counts optimistic.
    pub in_flight: InFlightGuard,
}

/// Marks one request in flight to an endpoint (and on an HTTP/2 connection) until dropped.
/// Also holds the request's place under the cluster's `max_requests`.
pub struct InFlightGuard {
    endpoint: Arc<Endpoint>,
    h2: Option<Arc<H2Shared>>,
    _permit: Permit,
}

impl InFlightGuard {
    fn new(endpoint: Arc<Endpoint>, permit: Permit) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Self {
            endpoint,
            h2: None,
            _permit: permit,
        }
    }

    fn on_h2(&mut self, conn: &H2Conn) {
        conn.shared.streams.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = self.h2.replace(conn.shared.clone()) {
            old.streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(h2) = &self.h2 {
            h2.streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for InFlightGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightGuard")
            .field("endpoint", &self.endpoint.addr)
            .finish()
    }
}

/// A connection checked out for one request.
enum Conn {
    H1 { conn: H1Conn, reused: bool },
    H2 { conn: H2Conn, reused: bool },
}

impl Cluster {
    /// Builds a cluster: loads TLS files (errors name the file) and spawns the task that
    /// refreshes DNS-named endpoints and closes idle connections. Must be called inside
    /// a Tokio runtime; the task stops when the cluster is dropped.
    pub fn new(
        cfg: &sekisho_config::Cluster,
        dns: Arc<dyn Resolve>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let name = cfg.name.clone();
        if cfg.endpoints.is_empty() {
            return Err(ClusterError::NoEndpoints { cluster: name });
        }
        let tls_config = match (&cfg.tls, cfg.protocol) {
            (Some(t), protocol) => Some(tls::client_config(&name, t, protocol)?),
            (None, Protocol::H2) => return Err(tls_required(&name, "h2")),
            (None, Protocol::Auto) => return Err(tls_required(&name, "auto")),
            (None, _) => None,
        };
        let origins = cfg
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, ep)| {
                Origin::new(&name, i, ep, |host| {
                    cfg.tls
                        .as_ref()
                        .map(|t| tls::server_name(&name, t, host))
                        .transpose()
                })
                .map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limits = PoolLimits {
            max_connections: cfg.pool.max_connections.max(1),
            max_idle: cfg.pool.max_idle,
            idle_timeout: cfg.pool.idle_timeout,
            max_pending: cfg.pool.max_pending,
            pending_timeout: cfg.pool.pending_timeout,
        };
        // `auto` starts out expecting HTTP/2, so a burst of first requests shares one
        // dial; the pool switches if the server picks HTTP/1.1.
        let expect_h2 = !matches!(cfg.protocol, Protocol::Http1);
        let has_dns = origins.iter().any(|o| o.ip.is_none());
        let static_eps = dedup(
            origins
                .iter()
                .filter_map(|o| o.ip.map(|ip| (SocketAddr::new(ip, o.port), o.index))),
        );
        let endpoints = static_eps
            .iter()
            .filter_map(|&(addr, i)| {
                let origin = origins.get(i)?.clone();
                Some(Endpoint::new(addr, origin, limits, expect_h2))
            })
            .collect();
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ClusterError::NoRuntime {
                cluster: name.clone(),
            })?;
        let rotation = Rotation {
            policy: cfg.lb,
            panic_threshold: cfg.resilience.panic_threshold,
        };
        let clock = Clock::new();
        let set = EndpointSet::new(rotation, endpoints, !has_dns, clock.now_ms());
        let cluster = Arc::new_cyclic(|me| Cluster {
            set: ArcSwap::from_pointee(set),
            rebuilding: Mutex::new(()),
            outlier: cfg.resilience.outlier_detection.clone(),
            clock,
            breaker: Breaker::new(cfg.resilience.max_requests),
            budget: RetryBudget::new(cfg.resilience.retry_budget),
            panic_routed: AtomicU64::new(0),
            me: me.clone(),
            origins,
            has_dns,
            rotation,
            limits,
            expect_h2,
            scheme: if tls_config.is_some() {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            },
            connector: Connector::new(cfg.protocol, tls_config, cfg.connect_timeout),
            resolver: dns,
            name,
        });
        runtime.spawn(background(Arc::downgrade(&cluster), limits.idle_timeout));
        if let Some(hc) = &cfg.resilience.health_check {
            runtime.spawn(crate::checker::run(
                Arc::downgrade(&cluster),
                Arc::new(hc.clone()),
            ));
        }
        Ok(cluster)
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `req` to one endpoint and returns the response head. The URI is put in the
    /// form the connection's protocol needs; no header is added or removed, except that
    /// an HTTP/1 request without `Host` gets one (from the URI or the endpoint).
    ///
    /// Bounded by `connect_timeout` and `pending_timeout`; the response itself is not:
    /// the caller times the whole request. Same as [`Cluster::send_excluding`] with
    /// nothing to exclude.
    pub async fn send(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send_excluding(req, &[]).await
    }

    /// Sends `req` like [`Cluster::send`], to an address not in `exclude` when the
    /// rotation has another one (a retry passes the addresses already tried); when every
    /// address in rotation is excluded, one of them is used anyway.
    ///
    /// Fails at once with [`UpstreamError::CircuitOpen`] (503) when `max_requests`
    /// requests are in flight to the cluster. The response status (5xx) or the error
    /// feeds outlier detection.
    pub async fn send_excluding(
        &self,
        req: Request<UpstreamBody>,
        exclude: &[SocketAddr],
    ) -> Result<UpstreamResponse, UpstreamError> {
        let (endpoint, mut guard) = self.admit(exclude).await?;
        let started = std::time::Instant::now();
        let result = self.send_to(&endpoint, req, &mut guard).await;
        if result.is_ok() {
            self.connector.timings.ttfb(started.elapsed());
        }
        self.observe(&endpoint, &result);
        Ok(UpstreamResponse {
            response: result?,
            endpoint: endpoint.addr,
            in_flight: guard,
        })
    }

    /// Counts the attempt (retry budget), takes a place under `max_requests` (or fails fast:
    /// circuit breaking) and picks an address in rotation, marked in flight.
    async fn admit(
        &self,
        exclude: &[SocketAddr],
    ) -> Result<(Arc<Endpoint>, InFlightGuard), UpstreamError> {
        self.budget.record_attempt();
        let permit = self
            .breaker
            .try_acquire()
            .ok_or_else(|| UpstreamError::CircuitOpen {
                cluster: self.name.clone(),
                max_requests: self.breaker.max(),
            })?;
        let endpoint = self.pick(exclude).await?;
        let guard = InFlightGuard::new(endpoint.clone(), permit);
        Ok((endpoint, guard))
    }

    /// Network timings (DNS wait, connect, TLS handshake, time to first byte).
    pub fn timings(&self) -> crate::TimingsSnapshot {
        self.connector.timings.snapshot()
    }

    /// Per-address counts and health, for `/clusters` and metrics.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let set = self.set.load();
        let now = self.clock.now_ms();
        ClusterSnapshot {
            name: self.name.clone(),
            endpoints: set
                .endpoints
                .iter()
                .map(|e| {
                    let p = e.pool.stats();
                    EndpointSnapshot {
                        address: e.addr,
                        host: e.origin.host.clone(),
                        weight: e.origin.weight,
                        active_connections: p.total.saturating_sub(p.idle + p.connecting),
                        idle_connections: p.idle,
                        connecting: p.connecting,
                        pending: p.pending,
                        in_flight: e.in_flight.load(Ordering::Relaxed),
                        connections_opened_total: e.opened.load(Ordering::Relaxed),
                        connect_failures_total: e.connect_failures.load(Ordering::Relaxed),
                        health: e.health.status(now),
                        ejections_total: e.health.ejections_total(),
                        ejection_left_ms: e.health.ejection_left_ms(now),
                        last_check: e.health.last_check(),
                    }
                })
                .collect(),
            healthy_endpoints: set
                .endpoints
                .iter()
                .filter(|e| e.health.is_available(now))
                .count(),
            panic_mode: set.panic,
            panic_routed_total: self.panic_routed.load(Ordering::Relaxed),
            active_requests: self.breaker.active(),
            max_requests: self.breaker.max(),
            circuit_breaker_rejections_total: self.breaker.rejected(),
            retries_total: self.budget.granted(),
            retry_budget_exhausted_total: self.budget.exhausted(),
        }
    }

    async fn send_to(
        &self,
        ep: &Arc<Endpoint>,
        mut req: Request<UpstreamBody>,
        guard: &mut InFlightGuard,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let addr = ep.addr;
        let mut unsent_retries = 0;
        loop {
            let (result, reused) = match self.checkout(ep).await? {
                Conn::H1 { mut conn, reused } => {
                    to_origin_form(&mut req, &ep.origin);
                    let result = conn.tx.try_send_request(req).await;
                    if result.is_ok() {
                        // Busy until the response body is read.
                        ep.pool.return_when_ready(conn);
                    }
                    (result, reused)
                }
                Conn::H2 { mut conn, reused } => {
                    to_absolute_form(&mut req, &self.scheme, &ep.origin).map_err(|e| {
                        UpstreamError::InvalidRequest {
                            addr,
                            source: Box::new(e),
                        }
                    })?;
                    guard.on_h2(&conn);
                    (conn.tx.try_send_request(req).await, reused)
                }
            };
            match result {
                Ok(response) => return Ok(response),
                Err(mut e) => match e.take_message() {
                    Some(back) if reused && unsent_retries < MAX_UNSENT_RETRIES => {
                        // A pooled connection closed under us before anything was sent.
                        unsent_retries += 1;
                        req = back;
                    }
                    Some(_) => return Err(UpstreamError::from_send(addr, e.into_error(), false)),
                    None => return Err(UpstreamError::from_send(addr, e.into_error(), true)),
                },
            }
        }
    }

    async fn checkout(&self, ep: &Arc<Endpoint>) -> Result<Conn, UpstreamError> {
        let mut checkout = ep.pool.checkout()?;
        if matches!(checkout, Checkout::Connect(_)) && ep.pool.returning() > 0 {
            // A connection whose response was just read is about to be back (its task is
            // woken but has not run): yield once rather than dial a new one.
            drop(checkout);
            tokio::task::yield_now().await;
            checkout = ep.pool.checkout()?;
        }
        let grant = match checkout {
            Checkout::H1(conn) => return Ok(Conn::H1 { conn, reused: true }),
            Checkout::H2(conn) => return Ok(Conn::H2 { conn, reused: true }),
            Checkout::Connect(slot) => Grant::Slot(slot),
            Checkout::Wait(rx) => ep.pool.wait(rx).await?,
        };
        let slot = match grant {
            Grant::H1(conn) => return Ok(Conn::H1 { conn, reused: true }),
            Grant::H2(conn) => return Ok(Conn::H2 { conn, reused: true }),
            Grant::Slot(slot) => slot,
            // Never offered to hyper's waiters; if it were, its slot dials anew.
            Grant::Raw(raw) => raw.slot,
        };
        let connected = self
            .connector
            .connect(ep.addr, ep.origin.server_name.as_ref(), &ep.pool, slot)
            .await;
        match connected {
            Ok(Established::H1(conn)) => {
                ep.opened.fetch_add(1, Ordering::Relaxed);
                Ok(Conn::H1 {
                    conn,
                    reused: false,
                })
            }
            Ok(Established::H2(conn)) => {
                ep.opened.fetch_add(1, Ordering::Relaxed);
                Ok(Conn::H2 {
                    conn,
                    reused: false,
                })
            }
            Err(e) => {
                ep.connect_failures.fetch_add(1, Ordering::Relaxed);
                self.connect_failed(ep);
                Err(e)
            }
        }
    }

    /// A dial to `ep` failed: a DNS-named address may be stale (a pod went away).
    fn connect_failed(&self, ep: &Endpoint) {
        if ep.origin.ip.is_none() {
            self.resolver.refresh_soon(&ep.origin.host);
        }
    }

    /// Re-reads DNS-named endpoints and swaps in a new set if the addresses changed.
    /// A name that fails to resolve keeps its previous addresses.
    async fn refresh(&self) {
        if !self.has_dns {
            return;
        }
        let resolved_from = self.set.load_full();
        let current = &resolved_from;
        let mut addrs = Vec::new();
        for origin in &self.origins {
            if let Some(ip) = origin.ip {
                addrs.push((SocketAddr::new(ip, origin.port), origin.index));
                continue;
            }
            let started = std::time::Instant::now();
            let resolved =
                tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(&origin.host)).await;
            if !current.resolved {
                // Only the first resolution keeps requests waiting; refreshes are background.
                self.connector.timings.dns(started.elapsed());
            }
            match resolved {
                Ok(Ok(ips)) => {
                    addrs.extend(
                        ips.iter()
                            .map(|&ip| (SocketAddr::new(ip, origin.port), origin.index)),
                    );
                }
                Ok(Err(e)) => {
                    tracing::warn!(cluster = %self.name, host = %origin.host, error = %e, "cannot resolve endpoint");
                    keep_previous(current, origin.index, &mut addrs);
                }
                Err(_) => {
                    tracing::warn!(cluster = %self.name, host = %origin.host, "endpoint resolution timed out");
                    keep_previous(current, origin.index, &mut addrs);
                }
            }
        }
        let addrs = dedup(addrs.into_iter());
        // The set may have been rebuilt for a health change while we resolved: build
        // on the latest one, under the lock, so neither change is lost.
        let _rebuilding = self.rebuilding.lock();
        let current = self.set.load_full();
        if current.resolved && current.same_as(&addrs) {
            return;
        }
        let endpoints = addrs
            .iter()
            .filter_map(|&(addr, i)| match current.find(addr, i) {
                Some(e) => Some(e.clone()),
                None => {
                    let origin = self.origins.get(i)?.clone();
                    Some(Endpoint::new(addr, origin, self.limits, self.expect_h2))
                }
            })
            .collect();
        // Endpoints left out are dropped with the old set (once their last request
        // finishes), which drains their pools.
        self.set.store(Arc::new(EndpointSet::new(
            self.rotation,
            endpoints,
            true,
            self.clock.now_ms(),
        )));
    }

    fn sweep(&self) {
        let now = Instant::now();
        for e in &self.set.load().endpoints {
            e.pool.sweep(now);
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Refreshes endpoints every second and sweeps idle connections often enough to honor
/// `idle_timeout`; ends when the cluster is dropped.
async fn background(cluster: Weak<Cluster>, idle_timeout: Duration) {
    let tick = (idle_timeout / 2).clamp(Duration::from_millis(10), REFRESH_EVERY);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refresh: Option<Instant> = None;
    loop {
        interval.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if last_refresh.is_none_or(|t| t.elapsed() >= REFRESH_EVERY) {
            last_refresh = Some(Instant::now());
            cluster.refresh().await;
        }
        cluster.sweep();
        // An ejection's timer normally re-admits the address; this catches a missed one.
        if !cluster.set.load().is_current(cluster.clock.now_ms()) {
            cluster.rebuild();
        }
    }
}

fn keep_previous(current: &EndpointSet, origin: usize, addrs: &mut Vec<(SocketAddr, usize)>) {
    addrs.extend(
        current
            .endpoints
            .iter()
            .filter(|e| e.origin.index == origin)
            .map(|e| (e.addr, origin)),
    );
}

/// Keeps the first occurrence of each address (two names may resolve to the same IP).
fn dedup(addrs: impl Iterator<Item = (SocketAddr, usize)>) -> Vec<(SocketAddr, usize)> {
    let mut out: Vec<(SocketAddr, usize)> = Vec::new();
    for (addr, i) in addrs {
        if !out.iter().any(|(a, _)| *a == addr) {
            out.push((addr, i));
        }
    }
    out
}

fn tls_required(cluster: &str, protocol: &'static str) -> ClusterError {
    ClusterError::TlsRequired {
        cluster: cluster.to_owned(),
        protocol,
    }
}
