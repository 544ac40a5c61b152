//! The name-resolution seam: clusters ask a [`Resolve`] for addresses, so tests can fake DNS.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::BoxError;

/// The future returned by [`Resolve::resolve`].
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<[IpAddr]>, BoxError>> + Send + 'a>>;

/// Resolves endpoint host names to addresses. Implemented by the shared DNS cache;
/// clusters call it once a second per DNS-named endpoint (never per request).
pub trait Resolve: Send + Sync + 'static {
    /// The current addresses of `host` (a DNS name; IP literals never reach here).
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a>;

    /// A connection to one of `host`'s addresses failed: re-resolve it soon.
    fn refresh_soon(&self, host: &str);
}

/// A resolver that knows no names: for clusters whose endpoints are all IP literals.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoResolver;

/// [`NoResolver`] was asked for a name.
#[derive(Debug, thiserror::Error)]
#[error("no DNS resolver configured, cannot resolve {0:?}")]
pub struct NoResolverError(pub String);

impl Resolve for NoResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move { Err(Box::new(NoResolverError(host.to_owned())) as BoxError) })
    }

    fn refresh_soon(&self, _host: &str) {}
}

impl Resolve for sekisho_discovery::DnsCache {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            sekisho_discovery::DnsCache::resolve(self, host)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }

    fn refresh_soon(&self, host: &str) {
        sekisho_discovery::DnsCache::refresh_soon(self, host);
    }
}
