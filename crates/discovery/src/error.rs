//! Errors of the DNS cache.

use std::time::Duration;

/// Why a name could not be resolved.
///
/// Every variant about a name carries it, so a log line or a 502 body says
/// which upstream host failed. Cloneable: one failed lookup answers every
/// caller waiting on it, and is cached briefly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN) or has no A/AAAA records.
    #[error("DNS name {host:?} not found: {detail}")]
    NotFound {
        /// The name looked up.
        host: String,
        /// What the server said.
        detail: String,
    },
    /// No answer within the configured timeout.
    #[error("DNS lookup of {host:?} timed out after {timeout:?}")]
    Timeout {
        /// The name looked up.
        host: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
    /// The resolver failed otherwise (server unreachable, SERVFAIL, REFUSED, malformed name).
    #[error("DNS lookup of {host:?} failed: {message}")]
    Resolver {
        /// The name looked up.
        host: String,
        /// The resolver's error.
        message: String,
    },
    /// The host string is not something that can be resolved (e.g. empty).
    #[error("invalid host name {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The cache's configuration is unusable.
    #[error("invalid DNS configuration: {0}")]
    Config(String),
}

impl DnsError {
    /// The host name the error is about, if any.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::NotFound { host, .. }
            | Self::Timeout { host, .. }
            | Self::Resolver { host, .. }
            | Self::InvalidHost { host, .. } => Some(host),
            Self::Config(_) => None,
        }
    }

    /// Whether trying again later may succeed (timeouts and resolver failures,
    /// not missing names or bad input). Retries of a request should not wait
    /// on DNS either way: negative answers are cached for `min_ttl`.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Resolver { .. })
    }
}
