//! Lending a raw HTTP/1.1 connection for one exchange (the gateway's fast path).
//!
//! ```text
//! lease ─► circuit breaker ─► pick address (LB) ─► idle raw conn (checked open) │ dial │ wait
//!       ─► caller writes the request and reads the response (sekisho-h1) ─► responded / failed
//!       ─► finish: back to the pool when the exchange ended cleanly, else closed
//! ```
//!
//! The caller owns the socket for the whole exchange, in its own task: no hyper connection,
//! no channel between tasks, no body type. Everything else is the cluster's usual machinery
//! (`max_requests`, balancing, the pool's hard cap and queue, outlier detection, timings).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;

use super::{Cluster, InFlightGuard};
use crate::endpoints::Endpoint;
use crate::error::UpstreamError;
use crate::health::Outcome;
use crate::pool::{Grant, RawCheckout, RawConn, Slot};

/// An upstream connection lent for one request; see the module docs.
pub struct Lease {
    conn: RawConn,
    cluster: Arc<Cluster>,
    endpoint: Arc<Endpoint>,
    reused: bool,
    started: Instant,
    /// Counts the request in flight (balancing, `max_requests`) until the lease ends.
    _in_flight: InFlightGuard,
}

impl Lease {
    /// The socket and its read buffer (empty at the start of an exchange).
    pub fn io(&mut self) -> (&mut TcpStream, &mut Vec<u8>) {
        (&mut self.conn.io, &mut self.conn.buf)
    }

    /// The address the request goes to.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint.addr
    }

    /// Whether the connection served an earlier request (it may have been closed by the
    /// server just now: a request that got no byte back may be sent again on a fresh one).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The response head arrived with `status`: feeds outlier detection (5xx) and the
    /// time-to-first-byte histogram.
    pub fn responded(&self, status: u16) {
        self.cluster.connector.timings.ttfb(self.started.elapsed());
        let outcome = if status >= 500 {
            Outcome::ServerError
        } else {
            Outcome::Success
        };
        self.cluster.record_outcome(&self.endpoint, outcome);
    }

    /// The exchange failed before a response head (reset, protocol error, timeout): the
    /// connection is closed and the failure counts against the address.
    pub fn failed(self) {
        self.cluster
            .record_outcome(&self.endpoint, Outcome::ServerError);
    }

    /// The exchange is over: a connection that ended cleanly (`reusable`: both messages
    /// complete, nothing left unread, persistence agreed) goes back to the pool; any other
    /// is closed.
    pub fn finish(mut self, reusable: bool) {
        if reusable && self.conn.buf.is_empty() {
            // A buffer that grew for a large head is not kept for an idle connection.
            if self.conn.buf.capacity() > RETAINED_BUF {
                self.conn.buf = Vec::new();
            }
            let pool = self.endpoint.pool.clone();
            pool.put_raw(self.conn);
        }
    }
}

/// Read buffer capacity an idle raw connection keeps.
const RETAINED_BUF: usize = 16 * 1024;

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("endpoint", &self.endpoint.addr)
            .field("reused", &self.reused)
            .finish()
    }
}

impl Cluster {
    /// Whether [`Cluster::lease`] can serve this cluster: HTTP/1.1 to plaintext endpoints.
    pub fn leases_raw_http1(&self) -> bool {
        self.connector.tls.is_none() && self.connector.protocol == sekisho_config::Protocol::Http1
    }

    /// Lends a connection to an address in rotation (not in `exclude` when another one is
    /// available), for one HTTP/1.1 exchange the caller conducts itself. `fresh` skips idle
    /// connections (to resend a request whose reused connection closed under it).
    ///
    /// Fails fast with [`UpstreamError::CircuitOpen`] at `max_requests`; bounded by
    /// `connect_timeout` and `pool.pending_timeout`, like [`Cluster::send`].
    pub async fn lease(
        self: &Arc<Self>,
        exclude: &[SocketAddr],
        fresh: bool,
    ) -> Result<Lease, UpstreamError> {
        let (endpoint, guard) = self.admit(exclude).await?;
        let started = Instant::now();
        let (conn, reused) = match self.raw_conn(&endpoint, fresh).await {
            Ok(c) => c,
            Err(e) => {
                let outcome = match e {
                    UpstreamError::ConnectFailed { .. } | UpstreamError::ConnectTimeout { .. } => {
                        Outcome::ConnectFailure
                    }
                    _ => Outcome::Neutral,
                };
                self.record_outcome(&endpoint, outcome);
                return Err(e);
            }
        };
        Ok(Lease {
            conn,
            cluster: self.clone(),
            endpoint,
            reused,
            started,
            _in_flight: guard,
        })
    }

    async fn raw_conn(
        &self,
        ep: &Arc<Endpoint>,
        fresh: bool,
    ) -> Result<(RawConn, bool), UpstreamError> {
        loop {
            let slot = match ep.pool.checkout_raw(fresh)? {
                RawCheckout::Idle(conn) => {
                    if conn.looks_open() {
                        return Ok((conn, true));
                    }
                    continue;
                }
                RawCheckout::Connect(slot) => slot,
                RawCheckout::Wait(rx) => match ep.pool.wait(rx).await? {
                    Grant::Raw(conn) if conn.looks_open() => return Ok((conn, true)),
                    Grant::Slot(slot) => slot,
                    // Closed while handed over, or (never) a hyper connection: try again.
                    _ => continue,
                },
            };
            return self.dial_raw(ep, slot).await.map(|c| (c, false));
        }
    }

    async fn dial_raw(&self, ep: &Arc<Endpoint>, mut slot: Slot) -> Result<RawConn, UpstreamError> {
        let addr = ep.addr;
        let timeout = self.connector.connect_timeout;
        let started = Instant::now();
        let io = match tokio::time::timeout(timeout, crate::connect::tcp_connect(addr)).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => {
                ep.connect_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.connect_failed(ep);
                return Err(e);
            }
            Err(_) => {
                ep.connect_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.connect_failed(ep);
                return Err(UpstreamError::ConnectTimeout { addr, timeout });
            }
        };
        self.connector.timings.connect(started.elapsed());
        ep.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ep.pool.established_h1(&mut slot);
        Ok(RawConn {
            io,
            buf: Vec::new(),
            slot,
        })
    }
}
