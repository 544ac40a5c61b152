//! Point-in-time counts of a cluster, for `/clusters` and metrics.

use std::net::SocketAddr;

/// A cluster's endpoints and their pools, as of [`Cluster::snapshot`](crate::Cluster::snapshot).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterSnapshot {
    /// The cluster's name.
    pub name: String,
    /// One entry per endpoint address currently in the set.
    pub endpoints: Vec<EndpointSnapshot>,
}

/// One endpoint address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EndpointSnapshot {
    /// The socket address.
    pub address: SocketAddr,
    /// The configured host it came from (an IP literal or a DNS name).
    pub host: String,
    /// The configured weight.
    pub weight: u32,
    /// Connections carrying requests (HTTP/2: with at least one stream).
    pub active_connections: usize,
    /// Open connections carrying nothing.
    pub idle_connections: usize,
    /// Connections being dialed.
    pub connecting: usize,
    /// Requests waiting for a connection.
    pub pending: usize,
    /// Requests in flight (including those waiting for a connection).
    pub in_flight: usize,
    /// Connections successfully opened since the address appeared.
    pub connections_opened_total: u64,
    /// Failed dials (refused, timed out, TLS or handshake failure) since the address appeared.
    pub connect_failures_total: u64,
}
