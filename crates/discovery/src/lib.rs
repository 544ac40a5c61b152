//! Endpoint discovery: an in-process DNS cache that honors TTLs, refreshes ahead and serves stale.
//!
//! Resolving once at start (nginx) or only on expiry leaves a proxy with dead
//! addresses after pods restart, or makes requests wait on DNS. [`DnsCache`]
//! sits on top of hickory-resolver (whose own cache is disabled) and:
//!
//! - answers known names from memory: a read lock and an `Arc` clone;
//! - refreshes names in use in the background at ~80% of their TTL (the
//!   server's TTL clamped to `[min_ttl, max_ttl]`), so requests never wait
//!   on a re-resolve;
//! - keeps serving the last answer for up to `max_stale` past expiry while
//!   the resolver times out, fails or even says NXDOMAIN, retrying with backoff;
//! - coalesces concurrent first lookups of a name into one, and caches a
//!   failed first lookup for `min_ttl` (at least 1 s);
//! - evicts names nobody asked for in `max(10 × max_ttl, 10 min)`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sekisho_discovery::DnsError> {
//! use sekisho_discovery::{DnsCache, DnsConfig};
//!
//! let dns = DnsCache::new(DnsConfig::default())?;
//! let addrs = dns.resolve("payment.payment.svc.cluster.local").await?;
//! // after a connect failure to one of `addrs`:
//! dns.refresh_soon("payment.payment.svc.cluster.local");
//! # Ok(()) }
//! ```

mod cache;
mod config;
mod entry;
mod error;
mod host;
mod lookup;
mod resolv_conf;
mod stats;

pub use cache::DnsCache;
pub use config::DnsConfig;
pub use error::DnsError;
pub use stats::{DnsEntryInfo, DnsStats};
