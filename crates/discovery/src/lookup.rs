//! One network lookup through hickory, with hickory's own cache out of the way.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::TokioResolver;

use crate::resolv_conf;
use crate::{DnsConfig, DnsError};

/// A successful answer: the addresses and the smallest TTL among the records (unclamped).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub addrs: Arc<[IpAddr]>,
    pub ttl: Duration,
}

/// Looks names up through hickory, bounded by a timeout.
#[derive(Clone)]
pub(crate) struct Lookup {
    resolver: TokioResolver,
    timeout: Duration,
}

impl Lookup {
    /// Builds the hickory resolver from `cfg` (or `/etc/resolv.conf` when it names no resolvers).
    pub fn new(cfg: &DnsConfig) -> Result<Self, DnsError> {
        let mut opts = ResolverOpts::default();
        let config = if cfg.resolvers.is_empty() {
            let text = std::fs::read_to_string(resolv_conf::PATH).unwrap_or_default();
            let conf = resolv_conf::parse(&text);
            if let Some(ndots) = conf.ndots {
                opts.ndots = ndots;
            }
            let servers = if conf.nameservers.is_empty() {
                // glibc's fallback when resolv.conf lists no server.
                vec![std::net::SocketAddr::from(([127, 0, 0, 1], 53))]
            } else {
                conf.nameservers
            };
            let search = conf
                .search
                .iter()
                .filter_map(|s| Name::from_ascii(s).ok())
                .collect();
            ResolverConfig::from_parts(None, search, name_servers(&servers))
        } else {
            ResolverConfig::from_name_servers(name_servers(&cfg.resolvers))
        };
        opts.timeout = cfg.timeout;
        // We cache, refresh and serve stale ourselves; hickory's cache would hand
        // our refreshes its own (decremented) copy instead of the server's answer.
        opts.cache_size = 0;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| DnsError::Config(format!("building the DNS resolver: {e}")))?;
        Ok(Self {
            resolver,
            timeout: cfg.timeout,
        })
    }

    /// Looks up A and AAAA records of `host`, bounded by the configured timeout.
    pub async fn lookup(&self, host: &str) -> Result<Answer, DnsError> {
        // Belt and braces with `cache_size = 0`: never answer a refresh from hickory's cache.
        self.resolver.clear_lookup_cache(host, RecordType::A);
        self.resolver.clear_lookup_cache(host, RecordType::AAAA);
        let found = tokio::time::timeout(self.timeout, self.resolver.lookup_ip(host))
            .await
            .map_err(|_| self.timeout_error(host))?
            .map_err(|e| self.classify(host, e))?;
        let addrs: Arc<[IpAddr]> = found.iter().collect();
        if addrs.is_empty() {
            return Err(DnsError::NotFound {
                host: host.to_owned(),
                detail: "no A or AAAA records".into(),
            });
        }
        let ttl = found
            .as_lookup()
            .answers()
            .iter()
            .filter(|r| {
                matches!(
                    r.record_type(),
                    RecordType::A | RecordType::AAAA | RecordType::CNAME
                )
            })
            .map(|r| r.ttl)
            .min()
            .unwrap_or(0);
        Ok(Answer {
            addrs,
            ttl: Duration::from_secs(u64::from(ttl)),
        })
    }

    fn timeout_error(&self, host: &str) -> DnsError {
        DnsError::Timeout {
            host: host.to_owned(),
            timeout: self.timeout,
        }
    }

    fn classify(&self, host: &str, e: NetError) -> DnsError {
        if e.is_nx_domain() || e.is_no_records_found() {
            DnsError::NotFound {
                host: host.to_owned(),
                detail: e.to_string(),
            }
        } else if matches!(e, NetError::Timeout) {
            self.timeout_error(host)
        } else {
            DnsError::Resolver {
                host: host.to_owned(),
                message: e.to_string(),
            }
        }
    }
}

/// UDP and TCP (for truncated answers) to each server, on its given port.
fn name_servers(addrs: &[std::net::SocketAddr]) -> Vec<NameServerConfig> {
    addrs
        .iter()
        .map(|addr| {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for conn in &mut ns.connections {
                conn.port = addr.port();
            }
            ns
        })
        .collect()
}
