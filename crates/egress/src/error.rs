//! Errors starting and running the egress proxy (request-time failures are answered
//! as HTTP responses by [`crate::respond`], never returned).

use std::net::SocketAddr;
use std::path::PathBuf;

/// The egress proxy could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A flag or setting is invalid.
    #[error("invalid egress setting: {0}")]
    Config(String),
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The DNS cache could not be set up.
    #[error("DNS resolver: {0}")]
    Dns(#[from] sekisho_discovery::DnsError),
    /// The access log could not be opened.
    #[error("access log: {0}")]
    AccessLog(#[from] sekisho_telemetry::access_log::AccessLogError),
    /// The access log directory could not be prepared.
    #[error("access log directory {}: {source}", path.display())]
    AccessLogDir {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The fixed upstream's pool could not be built (bad CA file, ...).
    #[error("upstream: {0}")]
    Upstream(#[from] sekisho_proxy::ClusterError),
    /// The pid file could not be written.
    #[error("pid file {}: {source}", path.display())]
    PidFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signal(std::io::Error),
    /// The Tokio runtime could not be built.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}
