//! The document root and the small top-level sections: `admin`, `access_log`, `dns`.

use std::time::Duration;

use super::{cluster, listener, route, Decoder};
use crate::keys;
use crate::model::{AccessLog, Admin, Config, Dns, LogTarget};
use crate::syntax;
use crate::yaml::{Mark, Node, Value};

/// Decodes the whole config; `root` is None for an empty document.
pub(crate) fn decode_root(d: &mut Decoder, root: Option<&Node>) -> Config {
    let empty = Node {
        value: Value::Map(Vec::new()),
        mark: Mark { line: 1, column: 1 },
        secret: false,
    };
    let root = root.unwrap_or(&empty);
    let mut config = Config {
        admin: None,
        access_log: AccessLog {
            target: LogTarget::Stdout,
        },
        dns: default_dns(),
        listeners: Vec::new(),
        routes: Vec::new(),
        clusters: Vec::new(),
        default_auth: None,
        secret_paths: Vec::new(),
    };
    let Some(f) = d.map(root, "", keys::ROOT) else {
        return config;
    };
    if let Some(n) = f.get("admin") {
        config.admin = admin(d, n);
    }
    if let Some(n) = f.get("access_log") {
        config.access_log = access_log(d, n);
    }
    if let Some(n) = f.get("dns") {
        config.dns = dns(d, n);
    }
    if let Some(n) = f.get("default_auth") {
        config.default_auth = super::policy::auth(d, n, "default_auth");
    }
    match f.get("listeners") {
        Some(n) => {
            if let Some(items) = d.seq(n, "listeners") {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("listeners[{i}]");
                    if let Some(l) = listener::decode(d, item, &path) {
                        config.listeners.push(l);
                    }
                }
                if items.is_empty() {
                    d.error("listeners", n.mark, "at least one listener is required");
                }
            }
        }
        None => d.error(
            "",
            f.mark,
            "missing required key `listeners` (at least one listener is required)",
        ),
    }
    if let Some(n) = f.get("routes") {
        if let Some(items) = d.seq(n, "routes") {
            for (i, item) in items.iter().enumerate() {
                if let Some(r) = route::decode(d, item, &format!("routes[{i}]")) {
                    config.routes.push(r);
                }
            }
        }
    }
    if let Some(n) = f.get("clusters") {
        if let Some(items) = d.seq(n, "clusters") {
            for (i, item) in items.iter().enumerate() {
                if let Some(c) = cluster::decode(d, item, &format!("clusters[{i}]")) {
                    config.clusters.push(c);
                }
            }
        }
    }
    config
}

/// The `dns` section when absent.
pub(crate) fn default_dns() -> Dns {
    Dns {
        resolvers: Vec::new(),
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(300),
        timeout: Duration::from_secs(2),
        max_stale: Duration::from_secs(3600),
    }
}

fn admin(d: &mut Decoder, node: &Node) -> Option<Admin> {
    let f = d.map(node, "admin", keys::ADMIN)?;
    let listen = f.required(d, "listen")?;
    let listen = d.socket_addr(listen, &f.path("listen"))?;
    Some(Admin {
        listen,
        at: f.location(),
    })
}

fn access_log(d: &mut Decoder, node: &Node) -> AccessLog {
    let stdout = AccessLog {
        target: LogTarget::Stdout,
    };
    let Some(f) = d.map(node, "access_log", keys::ACCESS_LOG) else {
        return stdout;
    };
    let Some(n) = f.get("path") else {
        return stdout;
    };
    let target = match d.nonempty(n, &f.path("path")).as_deref() {
        Some("stdout") | None => LogTarget::Stdout,
        Some("stderr") => LogTarget::Stderr,
        Some("off") => LogTarget::Off,
        Some(file) => LogTarget::File(d.base_dir.join(file)),
    };
    AccessLog { target }
}

fn dns(d: &mut Decoder, node: &Node) -> Dns {
    let mut dns = default_dns();
    let Some(f) = d.map(node, "dns", keys::DNS) else {
        return dns;
    };
    if let Some(n) = f.get("resolvers") {
        let path = f.path("resolvers");
        for (i, item) in d.seq(n, &path).unwrap_or_default().iter().enumerate() {
            if let Some(a) = d.check(item, &format!("{path}[{i}]"), syntax::resolver) {
                dns.resolvers.push(a);
            }
        }
    }
    for (key, slot) in [
        ("min_ttl", &mut dns.min_ttl),
        ("max_ttl", &mut dns.max_ttl),
        ("timeout", &mut dns.timeout),
        ("max_stale", &mut dns.max_stale),
    ] {
        if let Some(n) = f.get(key) {
            let value = if key == "timeout" {
                d.positive_duration(n, &f.path(key))
            } else {
                d.duration(n, &f.path(key))
            };
            if let Some(v) = value {
                *slot = v;
            }
        }
    }
    if dns.min_ttl > dns.max_ttl {
        let mark = d.marks.get("dns.min_ttl").copied().unwrap_or(f.mark);
        d.error(
            "dns.min_ttl",
            mark,
            format!(
                "min_ttl ({}) is greater than max_ttl ({})",
                crate::units::format_duration(dns.min_ttl),
                crate::units::format_duration(dns.max_ttl)
            ),
        );
    }
    dns
}
