//! `listeners[i]`

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::Decoder;
use crate::keys;
use crate::model::{CertKey, Listener, ListenerLimits, ListenerTls};
use crate::yaml::Node;

/// Limits when `limits` (or one of its keys) is absent.
pub(crate) fn default_limits() -> ListenerLimits {
    ListenerLimits {
        max_header_bytes: 64 * 1024,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 10_000,
        max_concurrent_streams: 100,
    }
}

/// Decodes one listener; None only when it is not a mapping.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Listener> {
    let f = d.map(node, path, keys::LISTENER)?;
    let name = f
        .required(d, "name")
        .and_then(|n| d.nonempty(n, &f.path("name")))
        .unwrap_or_default();
    // Port 0 is never reported as a duplicate address, so it is a safe placeholder.
    let listen = f
        .required(d, "listen")
        .and_then(|n| d.socket_addr(n, &f.path("listen")))
        .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let tls = f.get("tls").and_then(|n| tls(d, n, &f.path("tls")));
    let limits = match f.get("limits") {
        Some(n) => limits(d, n, &f.path("limits")),
        None => default_limits(),
    };
    let http1_fast_path = f
        .get("http1_fast_path")
        .and_then(|n| d.bool(n, &f.path("http1_fast_path")))
        .unwrap_or(true);
    Some(Listener {
        name,
        listen,
        tls,
        limits,
        http1_fast_path,
        at: f.location(),
    })
}

fn tls(d: &mut Decoder, node: &Node, path: &str) -> Option<ListenerTls> {
    let f = d.map(node, path, keys::LISTENER_TLS)?;
    let certs_node = f.required(d, "certs")?;
    let certs_path = f.path("certs");
    let items = d.seq(certs_node, &certs_path)?;
    if items.is_empty() {
        d.error(
            &certs_path,
            certs_node.mark,
            "at least one certificate is required",
        );
    }
    let mut certs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{certs_path}[{i}]");
        let Some(c) = d.map(item, &item_path, keys::CERT_KEY) else {
            continue;
        };
        let cert = c
            .required(d, "cert")
            .and_then(|n| d.file(n, &c.path("cert")));
        let key = c.required(d, "key").and_then(|n| d.file(n, &c.path("key")));
        if let (Some(cert), Some(key)) = (cert, key) {
            certs.push(CertKey {
                cert,
                key,
                at: c.location(),
            });
        }
    }
    Some(ListenerTls { certs })
}

fn limits(d: &mut Decoder, node: &Node, path: &str) -> ListenerLimits {
    let mut l = default_limits();
    let Some(f) = d.map(node, path, keys::LISTENER_LIMITS) else {
        return l;
    };
    if let Some(v) = f.get("max_header_bytes").and_then(|n| {
        let p = f.path("max_header_bytes");
        d.size(n, &p).filter(|v| {
            if *v < 1024 {
                d.error(&p, n.mark, "must be at least 1KiB");
            }
            *v >= 1024
        })
    }) {
        l.max_header_bytes = v;
    }
    if let Some(v) = f
        .get("header_read_timeout")
        .and_then(|n| d.positive_duration(n, &f.path("header_read_timeout")))
    {
        l.header_read_timeout = v;
    }
    if let Some(v) = f
        .get("idle_timeout")
        .and_then(|n| d.positive_duration(n, &f.path("idle_timeout")))
    {
        l.idle_timeout = v;
    }
    if let Some(v) = f
        .get("max_connections")
        .and_then(|n| d.at_least_one(n, &f.path("max_connections")))
    {
        l.max_connections = v;
    }
    if let Some(v) = f
        .get("max_concurrent_streams")
        .and_then(|n| d.at_least_one(n, &f.path("max_concurrent_streams")))
    {
        l.max_concurrent_streams = v;
    }
    l
}
