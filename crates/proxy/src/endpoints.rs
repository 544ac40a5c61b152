//! Endpoint addresses: configured `host:port` entries ([`Origin`]) expand to socket
//! addresses ([`Endpoint`]), each with its own pool, counters and health. The current set
//! is immutable and swapped whole when DNS answers or an address's health change; it
//! holds the addresses requests are balanced over, so picking one needs no health lookup.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use http::uri::Authority;
use http::HeaderValue;
use rustls_pki_types::ServerName;
use sekisho_config::LbPolicy;

use crate::error::ClusterError;
use crate::health::{in_panic, Health};
use crate::lb::{Balancer, Candidate};
use crate::pool::{Pool, PoolLimits};

/// One configured endpoint (`clusters[i].endpoints[j]`).
#[derive(Debug)]
pub(crate) struct Origin {
    /// Position in the config, to keep the configured order.
    pub(crate) index: usize,
    /// Host as written, without IPv6 brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) weight: u32,
    /// Set when `host` is an IP literal: no DNS involved.
    pub(crate) ip: Option<IpAddr>,
    /// TLS server name (SNI and verification), when the cluster uses TLS.
    pub(crate) server_name: Option<ServerName<'static>>,
    /// `host:port`, the authority used when the request names none.
    pub(crate) authority: Authority,
    /// The same, as a `Host` header value.
    pub(crate) host_header: HeaderValue,
}

impl Origin {
    /// Parses one config endpoint.
    pub(crate) fn new(
        cluster: &str,
        index: usize,
        ep: &sekisho_config::Endpoint,
        server_name: impl FnOnce(&str) -> Result<Option<ServerName<'static>>, ClusterError>,
    ) -> Result<Self, ClusterError> {
        let host = ep
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let ip = host.parse::<IpAddr>().ok();
        let text = match ip {
            Some(IpAddr::V6(_)) => format!("[{host}]:{}", ep.port),
            _ => format!("{host}:{}", ep.port),
        };
        let bad = || ClusterError::Endpoint {
            cluster: cluster.to_owned(),
            endpoint: text.clone(),
        };
        let authority = Authority::try_from(text.as_str()).map_err(|_| bad())?;
        let host_header = HeaderValue::from_str(&text).map_err(|_| bad())?;
        Ok(Self {
            index,
            server_name: server_name(&host)?,
            host,
            port: ep.port,
            weight: ep.weight.max(1),
            ip,
            authority,
            host_header,
        })
    }
}

/// One endpoint address with its pool and counters.
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) origin: Arc<Origin>,
    pub(crate) pool: Arc<Pool>,
    /// Requests picked for this address whose [`InFlightGuard`](crate::InFlightGuard) is alive.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) opened: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    /// Active checks and outlier ejection; carried over while the address stays in the set.
    pub(crate) health: Health,
}

impl Endpoint {
    pub(crate) fn new(
        addr: SocketAddr,
        origin: Arc<Origin>,
        limits: PoolLimits,
        h2: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            addr,
            origin,
            pool: Pool::new(addr, limits, h2),
            in_flight: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            health: Health::default(),
        })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Gone from the set and no request holds it: drain the pool, or idle connections
        // (whose tasks keep the pool alive) would linger forever.
        self.pool.close();
    }
}

impl Candidate for Arc<Endpoint> {
    fn load(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// How a set chooses its rotation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotation {
    pub(crate) policy: LbPolicy,
    pub(crate) panic_threshold: u32,
}

/// The cluster's addresses and the ones requests are balanced over, swapped as a whole.
pub(crate) struct EndpointSet {
    /// Every address, healthy or not.
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    /// The addresses in rotation: the healthy ones, or all of them in panic mode.
    pub(crate) rotation: Vec<Arc<Endpoint>>,
    /// Built for `rotation`.
    pub(crate) balancer: Balancer,
    /// Addresses available when the set was built (not failing checks, not ejected).
    pub(crate) healthy: usize,
    /// Too few were healthy: `rotation` holds every address.
    pub(crate) panic: bool,
    /// False until every DNS-named endpoint has been looked up once.
    pub(crate) resolved: bool,
    /// What it was built with, to rebuild it.
    pub(crate) config: Rotation,
}

impl EndpointSet {
    /// A set whose rotation reflects each address's health at `now_ms`.
    pub(crate) fn new(
        rotation: Rotation,
        endpoints: Vec<Arc<Endpoint>>,
        resolved: bool,
        now_ms: u64,
    ) -> Self {
        let available: Vec<Arc<Endpoint>> = endpoints
            .iter()
            .filter(|e| e.health.is_available(now_ms))
            .cloned()
            .collect();
        let healthy = available.len();
        let panic = in_panic(healthy, endpoints.len(), rotation.panic_threshold);
        let in_rotation = if panic || healthy == endpoints.len() {
            endpoints.clone()
        } else {
            available
        };
        let balancer = Balancer::new(rotation.policy, in_rotation.iter().map(|e| e.origin.weight));
        Self {
            endpoints,
            rotation: in_rotation,
            balancer,
            healthy,
            panic,
            resolved,
            config: rotation,
        }
    }

    /// Whether the rotation still matches every address's health at `now_ms` (an
    /// ejection may have run out, a check may have changed a verdict).
    pub(crate) fn is_current(&self, now_ms: u64) -> bool {
        let fresh = Self::new(self.config, self.endpoints.clone(), self.resolved, now_ms);
        fresh.panic == self.panic
            && fresh.rotation.len() == self.rotation.len()
            && fresh
                .rotation
                .iter()
                .zip(&self.rotation)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// Whether `addrs` (address, origin index) are exactly this set's, in any order.
    pub(crate) fn same_as(&self, addrs: &[(SocketAddr, usize)]) -> bool {
        addrs.len() == self.endpoints.len()
            && addrs.iter().all(|(a, i)| {
                self.endpoints
                    .iter()
                    .any(|e| e.addr == *a && e.origin.index == *i)
            })
    }

    /// The endpoint for `addr` from `origin`, if this set has it (to keep its pool).
    pub(crate) fn find(&self, addr: SocketAddr, origin: usize) -> Option<&Arc<Endpoint>> {
        self.endpoints
            .iter()
            .find(|e| e.addr == addr && e.origin.index == origin)
    }
}
