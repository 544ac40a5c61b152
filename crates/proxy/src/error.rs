//! Errors: building a cluster ([`ClusterError`]) and sending a request ([`UpstreamError`]).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;

/// A cluster could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A PEM file (CA bundle, client certificate or key) could not be read or parsed.
    #[error("cluster {cluster}: cannot load {what} from {}: {source}", path.display())]
    Pem {
        /// The cluster's name.
        cluster: String,
        /// What the file should hold (`CA certificates`, `client certificate`, `client key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parse or I/O error.
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    #[error("cluster {cluster}: no certificate found in {}", path.display())]
    NoCertificates {
        /// The cluster's name.
        cluster: String,
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the TLS settings (bad CA, key not matching the certificate, ...).
    #[error("cluster {cluster}: TLS settings rejected ({context}): {source}")]
    Tls {
        /// The cluster's name.
        cluster: String,
        /// Which step failed, and the file involved if any.
        context: String,
        /// The rustls error.
        source: rustls::Error,
    },
    /// `h2` and `auto` negotiate the protocol with ALPN, which needs `tls`.
    #[error("cluster {cluster}: protocol {protocol} requires tls")]
    TlsRequired {
        /// The cluster's name.
        cluster: String,
        /// The protocol as written in the config.
        protocol: &'static str,
    },
    /// An endpoint's host (or `tls.sni`) is not a valid TLS server name.
    #[error("cluster {cluster}: invalid TLS server name {name:?}")]
    ServerName {
        /// The cluster's name.
        cluster: String,
        /// The offending name.
        name: String,
    },
    /// An endpoint's `host:port` is not a valid URI authority.
    #[error("cluster {cluster}: invalid endpoint {endpoint:?}")]
    Endpoint {
        /// The cluster's name.
        cluster: String,
        /// The endpoint as `host:port`.
        endpoint: String,
    },
    /// The cluster has no endpoints at all.
    #[error("cluster {cluster}: no endpoints configured")]
    NoEndpoints {
        /// The cluster's name.
        cluster: String,
    },
    /// [`Cluster::new`](crate::Cluster::new) must run inside a Tokio runtime (it spawns the refresh task).
    #[error("cluster {cluster}: must be created inside a Tokio runtime")]
    NoRuntime {
        /// The cluster's name.
        cluster: String,
    },
}

/// Broad classes of [`UpstreamError`], for mapping to HTTP statuses and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamErrorKind {
    /// No endpoint address is known (all DNS names unresolved or empty), or none is
    /// healthy with panic mode off.
    NoEndpoints,
    /// The cluster is at `max_requests` (circuit breaking), or the endpoint's pool is
    /// full: the pending queue overflowed, the wait for a connection timed out, or the
    /// pool was drained while waiting.
    Overloaded,
    /// The TCP connection was refused or failed.
    Connect,
    /// Establishing the connection (TCP, TLS and the HTTP handshake) took longer than `connect_timeout`.
    ConnectTimeout,
    /// The TLS handshake failed.
    Tls,
    /// The connection was closed or reset while the request was in flight.
    Reset,
    /// The upstream violated HTTP (malformed response, HTTP/2 protocol error).
    Protocol,
    /// The request could not be sent as given (e.g. its body failed).
    InvalidRequest,
}

impl UpstreamErrorKind {
    /// The status the gateway answers with, by default:
    /// 503 for `NoEndpoints`/`Overloaded` (no upstream was tried; try later),
    /// 504 for `ConnectTimeout` (like nginx's `proxy_connect_timeout`: the upstream did not answer in time),
    /// 502 for every other upstream failure, 500 for `InvalidRequest`.
    pub fn status(self) -> StatusCode {
        match self {
            Self::NoEndpoints | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::ConnectTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Connect | Self::Tls | Self::Reset | Self::Protocol => StatusCode::BAD_GATEWAY,
            Self::InvalidRequest => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable name (`connect_failed`), for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoEndpoints => "no_endpoints",
            Self::Overloaded => "overloaded",
            Self::Connect => "connect_failed",
            Self::ConnectTimeout => "connect_timeout",
            Self::Tls => "tls",
            Self::Reset => "reset",
            Self::Protocol => "protocol",
            Self::InvalidRequest => "invalid_request",
        }
    }
}

/// Sending a request to a cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The cluster has no endpoint address to send to.
    #[error("cluster {cluster}: no endpoints available")]
    NoEndpoints {
        /// The cluster's name.
        cluster: String,
    },
    /// Every address fails its health checks or is ejected, and panic mode is off
    /// (`panic_threshold: 0`).
    #[error("cluster {cluster}: no healthy endpoint")]
    NoHealthyEndpoints {
        /// The cluster's name.
        cluster: String,
    },
    /// `max_requests` requests are already in flight to the cluster (circuit breaking).
    #[error("cluster {cluster}: {max_requests} requests already in flight (max_requests)")]
    CircuitOpen {
        /// The cluster's name.
        cluster: String,
        /// The configured bound.
        max_requests: usize,
    },
    /// Too many requests already wait for a connection to this endpoint (`pool.max_pending`).
    #[error("upstream {addr}: connection pool full, {max_pending} requests already waiting")]
    PoolOverflow {
        /// The endpoint.
        addr: SocketAddr,
        /// The configured queue bound.
        max_pending: usize,
    },
    /// No connection became free within `pool.pending_timeout`.
    #[error("upstream {addr}: no connection free within {timeout:?}")]
    PendingTimeout {
        /// The endpoint.
        addr: SocketAddr,
        /// The configured wait bound.
        timeout: Duration,
    },
    /// The endpoint was removed (DNS change, cluster dropped) while the request waited for it.
    #[error("upstream {addr}: endpoint removed while waiting for a connection")]
    PoolClosed {
        /// The endpoint.
        addr: SocketAddr,
    },
    /// The TCP connect failed (refused, unreachable, ...).
    #[error("upstream {addr}: connect failed: {source}")]
    ConnectFailed {
        /// The endpoint.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// TCP connect plus TLS and HTTP handshakes took longer than `connect_timeout`.
    #[error("upstream {addr}: connect timed out after {timeout:?}")]
    ConnectTimeout {
        /// The endpoint.
        addr: SocketAddr,
        /// The configured bound.
        timeout: Duration,
    },
    /// The TLS handshake failed (untrusted certificate, wrong name, no common ALPN, ...).
    #[error("upstream {addr}: TLS handshake failed: {source}")]
    Tls {
        /// The endpoint.
        addr: SocketAddr,
        /// The handshake error (rustls errors are wrapped in `io::Error`).
        source: io::Error,
    },
    /// The HTTP/2 connection preface or settings exchange failed.
    #[error("upstream {addr}: HTTP handshake failed: {source}")]
    Handshake {
        /// The endpoint.
        addr: SocketAddr,
        /// The hyper error.
        source: hyper::Error,
    },
    /// The connection closed or was reset before the response head arrived.
    #[error("upstream {addr}: connection closed or reset{}: {source}", if *.request_sent { "" } else { " before the request was sent" })]
    Reset {
        /// The endpoint.
        addr: SocketAddr,
        /// Whether any part of the request may have reached the upstream.
        request_sent: bool,
        /// The cause (hyper's error, or the socket's on the fast path).
        source: crate::BoxError,
    },
    /// The upstream's response violated HTTP.
    #[error("upstream {addr}: protocol error: {source}")]
    Protocol {
        /// The endpoint.
        addr: SocketAddr,
        /// What was wrong.
        source: crate::BoxError,
    },
    /// The request could not be sent (its body failed, or it is not valid for the protocol).
    #[error("upstream {addr}: invalid request: {source}")]
    InvalidRequest {
        /// The endpoint.
        addr: SocketAddr,
        /// The cause.
        source: crate::BoxError,
    },
}

impl UpstreamError {
    /// The error's class; [`UpstreamErrorKind::status`] maps it to an HTTP status.
    pub fn kind(&self) -> UpstreamErrorKind {
        match self {
            Self::NoEndpoints { .. } | Self::NoHealthyEndpoints { .. } => {
                UpstreamErrorKind::NoEndpoints
            }
            Self::CircuitOpen { .. }
            | Self::PoolOverflow { .. }
            | Self::PendingTimeout { .. }
            | Self::PoolClosed { .. } => UpstreamErrorKind::Overloaded,
            Self::ConnectFailed { .. } => UpstreamErrorKind::Connect,
            Self::ConnectTimeout { .. } => UpstreamErrorKind::ConnectTimeout,
            Self::Tls { .. } => UpstreamErrorKind::Tls,
            Self::Handshake { .. } | Self::Protocol { .. } => UpstreamErrorKind::Protocol,
            Self::Reset { .. } => UpstreamErrorKind::Reset,
            Self::InvalidRequest { .. } => UpstreamErrorKind::InvalidRequest,
        }
    }

    /// Whether retrying is *safe*: nothing of the request reached the upstream
    /// (it failed before or while connecting, or the upstream refused the stream unprocessed).
    /// Whether it is *useful* is the retry policy's call.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NoEndpoints { .. }
            | Self::NoHealthyEndpoints { .. }
            | Self::CircuitOpen { .. }
            | Self::PoolOverflow { .. }
            | Self::PendingTimeout { .. }
            | Self::PoolClosed { .. }
            | Self::ConnectFailed { .. }
            | Self::ConnectTimeout { .. }
            | Self::Tls { .. }
            | Self::Handshake { .. } => true,
            Self::Reset { request_sent, .. } => !request_sent,
            Self::Protocol { .. } | Self::InvalidRequest { .. } => false,
        }
    }

    /// The endpoint address involved, if one was chosen.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        match self {
            Self::NoEndpoints { .. }
            | Self::NoHealthyEndpoints { .. }
            | Self::CircuitOpen { .. } => None,
            Self::PoolOverflow { addr, .. }
            | Self::PendingTimeout { addr, .. }
            | Self::PoolClosed { addr }
            | Self::ConnectFailed { addr, .. }
            | Self::ConnectTimeout { addr, .. }
            | Self::Tls { addr, .. }
            | Self::Handshake { addr, .. }
            | Self::Reset { addr, .. }
            | Self::Protocol { addr, .. }
            | Self::InvalidRequest { addr, .. } => Some(*addr),
        }
    }

    /// Classifies a hyper error from `send_request`. `request_sent` is false when hyper
    /// handed the request back unsent.
    pub(crate) fn from_send(addr: SocketAddr, source: hyper::Error, request_sent: bool) -> Self {
        if source.is_user() {
            // The request itself (e.g. its body stream) failed: the client's problem, not the upstream's.
            return Self::InvalidRequest {
                addr,
                source: Box::new(source),
            };
        }
        if let Some(reason) = h2_reason(&source) {
            // REFUSED_STREAM: the server guarantees it did not process the stream (RFC 9113 8.7).
            let refused = reason == h2::Reason::REFUSED_STREAM;
            if reason == h2::Reason::PROTOCOL_ERROR
                || reason == h2::Reason::COMPRESSION_ERROR
                || reason == h2::Reason::FRAME_SIZE_ERROR
            {
                return Self::Protocol {
                    addr,
                    source: Box::new(source),
                };
            }
            return Self::Reset {
                addr,
                request_sent: request_sent && !refused,
                source: Box::new(source),
            };
        }
        if source.is_parse() || source.is_parse_status() || source.is_parse_too_large() {
            Self::Protocol {
                addr,
                source: Box::new(source),
            }
        } else {
            Self::Reset {
                addr,
                request_sent,
                source: Box::new(source),
            }
        }
    }
}

/// The HTTP/2 error code carried by a hyper error, if any.
fn h2_reason(err: &hyper::Error) -> Option<h2::Reason> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h2e) = e.downcast_ref::<h2::Error>() {
            return h2e.reason();
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            UpstreamErrorKind::NoEndpoints.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            UpstreamErrorKind::Overloaded.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(UpstreamErrorKind::Connect.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            UpstreamErrorKind::ConnectTimeout.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(UpstreamErrorKind::Reset.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn connect_errors_are_retryable() {
        let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
        let e = UpstreamError::ConnectFailed {
            addr,
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(e.is_retryable());
        assert_eq!(e.kind(), UpstreamErrorKind::Connect);
        assert_eq!(e.endpoint(), Some(addr));
        assert!(e.to_string().contains("127.0.0.1:1"));
    }
}
