//! Upstream clusters: pooled connections with hard caps, load balancing, HTTP/1.1, h2 and TLS to endpoints.
//!
//! A [`Cluster`] is built once from its config and shared; [`Cluster::send`] is the
//! whole request path:
//!
//! 1. take a place under the cluster's `max_requests` (or fail fast: circuit breaking),
//!    then pick an endpoint address ([`sekisho_config::LbPolicy`]) among those in
//!    rotation, read without locking: healthy ones (active health checks, passive
//!    outlier ejection), or all of them in panic mode (DNS names are re-read in the
//!    background every second);
//! 2. check out a connection from that address's pool: an idle HTTP/1.1 connection, a
//!    shared HTTP/2 one, a slot to dial a new one (never more than
//!    `pool.max_connections` busy + idle + dialing), or a place in a bounded FIFO queue;
//! 3. send with the URI in the protocol's form (origin-form for HTTP/1.1, absolute for HTTP/2).
//!
//! Retries: [`Cluster::send_excluding`] avoids the addresses already tried, and
//! [`Cluster::try_acquire_retry`] spends the cluster's retry budget.
//!
//! Errors say what failed and whether a retry is safe ([`UpstreamError::is_retryable`]);
//! [`UpstreamErrorKind::status`] gives the HTTP status to answer with.

#![deny(missing_docs)]

mod checker;
mod cluster;
mod connect;
mod endpoints;
mod error;
mod health;
mod lb;
mod limits;
mod pool;
mod request;
mod resolve;
mod snapshot;
mod timings;
mod tls;

pub use cluster::{Cluster, InFlightGuard, Lease, UpstreamResponse};
pub use error::{ClusterError, UpstreamError, UpstreamErrorKind};
pub use resolve::{NoResolver, NoResolverError, Resolve, ResolveFuture};
pub use snapshot::{CheckResult, ClusterSnapshot, EndpointSnapshot, HealthStatus};
pub use timings::TimingsSnapshot;

/// A boxed error, as request bodies and resolvers produce.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body the gateway sends upstream.
pub type UpstreamBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
