//! Point-in-time counts of a cluster, for `/clusters` and metrics.

use std::net::SocketAddr;

/// A cluster's endpoints and their pools, as of [`Cluster::snapshot`](crate::Cluster::snapshot).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterSnapshot {
    /// The cluster's name.
    pub name: String,
    /// One entry per endpoint address currently in the set.
    pub endpoints: Vec<EndpointSnapshot>,
    /// Addresses in rotation: not failing health checks and not ejected.
    pub healthy_endpoints: usize,
    /// Too few addresses are healthy (below `panic_threshold`): requests go to all of them.
    pub panic_mode: bool,
    /// Requests routed while in panic mode.
    pub panic_routed_total: u64,
    /// Requests in flight to the cluster, counted against `max_requests`.
    pub active_requests: usize,
    /// The cluster's `max_requests`.
    pub max_requests: usize,
    /// Requests refused at once because `max_requests` were in flight.
    pub circuit_breaker_rejections_total: u64,
    /// Retries granted by the retry budget.
    pub retries_total: u64,
    /// Retries refused because the retry budget was spent.
    pub retry_budget_exhausted_total: u64,
}

/// Whether an address takes requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// In rotation.
    Healthy,
    /// Failing active health checks.
    Unhealthy,
    /// Ejected by outlier detection for a while.
    Ejected,
}

impl HealthStatus {
    /// `healthy`, `unhealthy` or `ejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Ejected => "ejected",
        }
    }
}

/// The result of one active health check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    /// Whether the check passed (a 2xx answer within the timeout).
    pub passed: bool,
    /// What happened: `200 OK`, `status 503`, `timed out after 1s`, a connect error.
    pub detail: String,
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
    /// Whether it takes requests now.
    pub health: HealthStatus,
    /// Times outlier detection ejected it since it appeared.
    pub ejections_total: u64,
    /// Milliseconds of ejection left, when ejected.
    pub ejection_left_ms: Option<u64>,
    /// The latest active health check, when checks are configured and one ran.
    pub last_check: Option<CheckResult>,
}
