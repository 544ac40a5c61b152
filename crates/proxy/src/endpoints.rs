//! Endpoint addresses: configured `host:port` entries ([`Origin`]) expand to socket
//! addresses ([`Endpoint`]), each with its own pool and counters. The current set is
//! immutable and swapped whole when DNS answers change.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use http::uri::Authority;
use http::HeaderValue;
use rustls_pki_types::ServerName;
use sekisho_config::LbPolicy;

use crate::error::ClusterError;
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

/// The addresses requests are balanced over, swapped as a whole.
pub(crate) struct EndpointSet {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    pub(crate) balancer: Balancer,
    /// False until every DNS-named endpoint has been looked up once.
    pub(crate) resolved: bool,
}

impl EndpointSet {
    pub(crate) fn new(policy: LbPolicy, endpoints: Vec<Arc<Endpoint>>, resolved: bool) -> Self {
        let balancer = Balancer::new(policy, endpoints.iter().map(|e| e.origin.weight));
        Self {
            endpoints,
            balancer,
            resolved,
        }
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
