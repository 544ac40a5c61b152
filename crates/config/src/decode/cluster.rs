//! `clusters[i]`: endpoints, protocol, load balancing, upstream TLS, the pool, and (in
//! `resilience`) health checks, outlier detection, circuit breaking and the retry budget.

mod resilience;

use std::time::Duration;

use super::Decoder;
use crate::keys;
use crate::model::{Cluster, Endpoint, LbPolicy, Pool, Protocol, UpstreamTls};
use crate::syntax;
use crate::yaml::{Node, Value};

/// `protocol` values, as written.
pub(crate) const PROTOCOLS: &[(&str, Protocol)] = &[
    ("http1", Protocol::Http1),
    ("h2", Protocol::H2),
    ("h2c", Protocol::H2c),
    ("auto", Protocol::Auto),
];
/// `lb` values, as written.
pub(crate) const LB_POLICIES: &[(&str, LbPolicy)] = &[
    ("round_robin", LbPolicy::RoundRobin),
    ("least_request", LbPolicy::LeastRequest),
    ("random", LbPolicy::Random),
];
/// `connect_timeout` when absent.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The pool when `pool` (or one of its keys) is absent.
pub(crate) fn default_pool() -> Pool {
    Pool {
        max_connections: 256,
        max_idle: 64,
        idle_timeout: Duration::from_secs(60),
        max_pending: 1024,
        pending_timeout: Duration::from_secs(5),
    }
}

/// Decodes one cluster; None only when it is not a mapping.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Cluster> {
    let f = d.map(node, path, keys::CLUSTER)?;
    let name = f
        .required(d, "name")
        .and_then(|n| d.nonempty(n, &f.path("name")))
        .unwrap_or_default();
    let mut endpoints = Vec::new();
    if let Some(n) = f.required(d, "endpoints") {
        let p = f.path("endpoints");
        let items = d.seq(n, &p).unwrap_or_default();
        if items.is_empty() && matches!(n.value, Value::Seq(_)) {
            d.error(&p, n.mark, "at least one endpoint is required");
        }
        for (i, item) in items.iter().enumerate() {
            if let Some(e) = endpoint(d, item, &format!("{p}[{i}]")) {
                endpoints.push(e);
            }
        }
    }
    let protocol = f
        .get("protocol")
        .and_then(|n| d.choice(n, &f.path("protocol"), "protocol", PROTOCOLS))
        .unwrap_or(Protocol::Http1);
    let lb = f
        .get("lb")
        .and_then(|n| d.choice(n, &f.path("lb"), "lb policy", LB_POLICIES))
        .unwrap_or(LbPolicy::LeastRequest);
    let connect_timeout = f
        .get("connect_timeout")
        .and_then(|n| d.positive_duration(n, &f.path("connect_timeout")))
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let tls = f.get("tls").and_then(|n| tls(d, n, &f.path("tls")));
    if tls.is_none() && matches!(protocol, Protocol::H2 | Protocol::Auto) {
        if let Some(n) = f.get("protocol") {
            let word = if protocol == Protocol::H2 {
                "h2"
            } else {
                "auto"
            };
            d.error(
                &f.path("protocol"),
                n.mark,
                format!("protocol `{word}` requires `tls` (use `h2c` for HTTP/2 without TLS)"),
            );
        }
    }
    let pool = match f.get("pool") {
        Some(n) => pool(d, n, &f.path("pool")),
        None => default_pool(),
    };
    let resilience = resilience::decode(d, &f);
    Some(Cluster {
        name,
        endpoints,
        protocol,
        lb,
        connect_timeout,
        tls,
        pool,
        resilience,
        at: f.location(),
    })
}

/// `host:port`, `[v6]:port` or `{address, weight}`.
fn endpoint(d: &mut Decoder, node: &Node, path: &str) -> Option<Endpoint> {
    let at = crate::model::Location {
        path: path.to_string(),
        line: node.mark.line,
        column: node.mark.column,
    };
    if let Value::Map(_) = node.value {
        let f = d.map(node, path, keys::ENDPOINT)?;
        let address = f
            .required(d, "address")
            .and_then(|n| d.check(n, &f.path("address"), syntax::endpoint));
        let weight = match f.get("weight") {
            Some(n) => d.at_least_one::<u32>(n, &f.path("weight")),
            None => Some(1),
        };
        let ((host, port), weight) = (address?, weight?);
        return Some(Endpoint {
            host,
            port,
            weight,
            at,
        });
    }
    let (host, port) = d.check(node, path, syntax::endpoint)?;
    Some(Endpoint {
        host,
        port,
        weight: 1,
        at,
    })
}

fn tls(d: &mut Decoder, node: &Node, path: &str) -> Option<UpstreamTls> {
    let f = d.map(node, path, keys::UPSTREAM_TLS)?;
    let sni = f.get("sni").and_then(|n| {
        d.check(n, &f.path("sni"), |s| {
            syntax::host(s).and_then(|h| {
                if h.starts_with("*.") {
                    Err(format!("invalid sni {s:?}: a server name, not a wildcard"))
                } else {
                    Ok(h)
                }
            })
        })
    });
    let ca = f.get("ca").and_then(|n| d.file(n, &f.path("ca")));
    let extra_ca = f
        .get("extra_ca")
        .and_then(|n| d.file(n, &f.path("extra_ca")));
    let system_roots = f
        .get("system_roots")
        .and_then(|n| d.bool(n, &f.path("system_roots")))
        .unwrap_or(false);
    if ca.is_some() && system_roots {
        if let Some(n) = f.get("system_roots") {
            d.error(
                &f.path("system_roots"),
                n.mark,
                "`ca` replaces the default roots; `system_roots` chooses them: use one of the two",
            );
        }
    }
    if ca.is_some() && extra_ca.is_some() {
        if let Some(n) = f.get("extra_ca") {
            d.error(
                &f.path("extra_ca"),
                n.mark,
                "`extra_ca` adds to the default roots, `ca` replaces them: use one of the two",
            );
        }
    }
    let cert = f.get("cert").and_then(|n| d.file(n, &f.path("cert")));
    let key = f.get("key").and_then(|n| d.file(n, &f.path("key")));
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            if f.get("cert").is_some() != f.get("key").is_some() {
                let missing = if f.get("cert").is_some() {
                    "key"
                } else {
                    "cert"
                };
                d.error(
                    path,
                    f.mark,
                    format!(
                        "missing `{missing}`: a client certificate needs both `cert` and `key`"
                    ),
                );
            }
            None
        }
    };
    Some(UpstreamTls {
        sni,
        ca,
        extra_ca,
        system_roots,
        client_cert,
    })
}

fn pool(d: &mut Decoder, node: &Node, path: &str) -> Pool {
    let mut p = default_pool();
    let Some(f) = d.map(node, path, keys::POOL) else {
        return p;
    };
    if let Some(v) = f
        .get("max_connections")
        .and_then(|n| d.at_least_one(n, &f.path("max_connections")))
    {
        p.max_connections = v;
    }
    // 0 is allowed: no idle connection is kept (no reuse).
    if let Some(v) = f
        .get("max_idle")
        .and_then(|n| d.int(n, &f.path("max_idle")))
    {
        p.max_idle = v;
    }
    if let Some(v) = f
        .get("idle_timeout")
        .and_then(|n| d.positive_duration(n, &f.path("idle_timeout")))
    {
        p.idle_timeout = v;
    }
    if let Some(v) = f
        .get("max_pending")
        .and_then(|n| d.at_least_one(n, &f.path("max_pending")))
    {
        p.max_pending = v;
    }
    if let Some(v) = f
        .get("pending_timeout")
        .and_then(|n| d.positive_duration(n, &f.path("pending_timeout")))
    {
        p.pending_timeout = v;
    }
    p
}
