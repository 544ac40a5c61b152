//! The cache's settings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::DnsError;

/// Settings of a [`DnsCache`](crate::DnsCache).
///
/// Mirrors the `dns:` section of the gateway config; [`Default`] holds the
/// same defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers to ask. Empty: the system's, from `/etc/resolv.conf`.
    pub resolvers: Vec<SocketAddr>,
    /// Answers are kept at least this long, whatever TTL the server sent.
    /// Negative answers of a first lookup are kept this long (at least 1 s).
    pub min_ttl: Duration,
    /// Answers are refreshed at least this often, whatever TTL the server sent.
    pub max_ttl: Duration,
    /// Bound on one lookup (A and AAAA together).
    pub timeout: Duration,
    /// How long past expiry an answer is still served while refreshes fail.
    pub max_stale: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            resolvers: Vec::new(),
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(300),
            timeout: Duration::from_secs(2),
            max_stale: Duration::from_secs(3600),
        }
    }
}

impl DnsConfig {
    /// Checks the settings are coherent.
    pub fn validate(&self) -> Result<(), DnsError> {
        if self.min_ttl > self.max_ttl {
            return Err(DnsError::Config(format!(
                "min_ttl ({:?}) is greater than max_ttl ({:?})",
                self.min_ttl, self.max_ttl
            )));
        }
        if self.timeout.is_zero() {
            return Err(DnsError::Config("timeout must be greater than zero".into()));
        }
        Ok(())
    }
}
