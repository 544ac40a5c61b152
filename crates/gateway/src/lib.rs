//! The API gateway: listeners, TLS, the request pipeline, filters and the admin endpoints.
//!
//! [`Gateway::start`] compiles a [`sekisho_config::Config`] into a plan (router, filters,
//! clusters), binds the listeners and serves. See `pipeline` for a request's way through.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod access;
mod admin;
mod body;
mod conn_io;
mod control;
mod cors;
mod fast;
mod forward;
mod grpc_web;
mod handover;
mod headers;
mod listener;
mod pipeline;
mod plan;
mod policies;
mod policy_stage;
mod respond;
mod server;
mod tls;
mod transcoding;
mod upgrade;

pub use control::ReloadStatus;
pub use handover::HandoverError;
pub use plan::{compile, Plan};
pub use respond::{GatewayError, GrpcClient};
pub use server::{Gateway, ReloadSource, StartError, Upgrade};

/// Errors carried by bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Checks a config the way `serve` would, without binding anything: parses, validates and
/// compiles the plan (TLS files, routes, clusters). Needs a tokio runtime (clusters start
/// background tasks), which it stops again.
pub async fn check(config: sekisho_config::Config) -> Result<(), sekisho_config::ConfigErrors> {
    let dns = sekisho_discovery::DnsCache::new(sekisho_discovery::DnsConfig {
        resolvers: config.dns.resolvers.clone(),
        min_ttl: config.dns.min_ttl,
        max_ttl: config.dns.max_ttl,
        timeout: config.dns.timeout,
        max_stale: config.dns.max_stale,
    })
    .map_err(|e| {
        sekisho_config::ConfigErrors(vec![sekisho_config::ConfigError::at(
            &Default::default(),
            format!("DNS resolver: {e}"),
        )])
    })?;
    let registry = sekisho_telemetry::metrics::Registry::new();
    let mut errors = Vec::new();
    for l in &config.listeners {
        if let Some(t) = &l.tls {
            if let Err(mut e) = tls::server_config(t) {
                errors.append(&mut e);
            }
        }
    }
    // Policies are built too (key files, API key files, secrets, backend addresses).
    match policies::prepare(&config, None).await {
        Ok(policies) => {
            if let Err(mut e) =
                compile(std::sync::Arc::new(config), policies, &dns, &registry, None)
            {
                errors.append(&mut e.0);
            }
        }
        Err(mut e) => errors.append(&mut e),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(sekisho_config::ConfigErrors(errors))
    }
}
