//! Checks across items: unique names and addresses, cluster references, route conflicts.
//! (Checks of a single value happen while decoding it.)

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::conflicts;
use crate::decode::{closest, Decoder};
use crate::model::{Config, Location, RateKey, RouteAction, RouteAuth};

/// Reports every cross-item problem in `config` into `d`.
pub(crate) fn validate(config: &Config, d: &mut Decoder) {
    unique_names(
        d,
        "listener",
        config.listeners.iter().map(|l| (&l.name, &l.at)),
    );
    unique_names(d, "route", config.routes.iter().map(|r| (&r.name, &r.at)));
    unique_names(
        d,
        "cluster",
        config.clusters.iter().map(|c| (&c.name, &c.at)),
    );
    unique_addresses(config, d);
    cluster_references(config, d);
    route_conflicts(config, d);
    policy_dependencies(config, d);
}

/// A rate limit keyed by a JWT claim or an API key needs that kind of authentication on the
/// route; without it every request would silently be counted by client IP.
fn policy_dependencies(config: &Config, d: &mut Decoder) {
    for r in &config.routes {
        if let Some(l) = &r.lock {
            let problem = if !matches!(r.action, RouteAction::Cluster(_) | RouteAction::Split(_)) {
                Some("a lock guards proxied requests: use it with `cluster` or `split`")
            } else if r.transcode.is_some()
                && (l.key.contains("{form.") || l.key.contains("{json."))
            {
                Some("a transcoded route's lock key cannot read the body (`form.`/`json.`); use path, query or header fields")
            } else {
                None
            };
            if let Some(message) = problem {
                let path = format!("{}.lock", r.at.path);
                let at = d.location(&path, &r.at);
                d.errors.push(crate::ConfigError::at(&at, message));
            }
        }
        let Some(rl) = &r.rate_limit else { continue };
        let auth = match &r.auth {
            RouteAuth::Policy(a) => Some(&**a),
            RouteAuth::Inherit => config.default_auth.as_ref(),
            RouteAuth::Public => None,
        };
        let missing = match &rl.key {
            RateKey::Claim(_) if auth.is_none_or(|a| a.jwt.is_none()) => "`jwt`",
            RateKey::ApiKey if auth.is_none_or(|a| a.api_keys.is_none()) => "`api_keys`",
            _ => continue,
        };
        let path = format!("{}.rate_limit.key", r.at.path);
        let at = d.location(&path, &r.at);
        d.errors.push(crate::ConfigError::at(
            &at,
            format!("this key needs {missing} authentication on the route (its `auth` or `default_auth`)"),
        ));
    }
}

fn unique_names<'c>(
    d: &mut Decoder,
    kind: &str,
    items: impl Iterator<Item = (&'c String, &'c Location)>,
) {
    let mut seen: HashMap<&str, Location> = HashMap::new();
    for (name, at) in items {
        if name.is_empty() {
            continue; // already reported as missing
        }
        let here = d.location(&format!("{}.name", at.path), at);
        match seen.get(name.as_str()) {
            Some(first) => d.errors.push(crate::ConfigError::at(
                &here,
                format!(
                    "duplicate {kind} name `{name}` (first at {} line {})",
                    first.path, first.line
                ),
            )),
            None => {
                seen.insert(name, here);
            }
        }
    }
}

fn unique_addresses(config: &Config, d: &mut Decoder) {
    let mut seen: HashMap<SocketAddr, Location> = HashMap::new();
    let admin = config.admin.iter().map(|a| (a.listen, &a.at));
    let listeners = config.listeners.iter().map(|l| (l.listen, &l.at));
    for (addr, at) in admin.chain(listeners) {
        // Port 0 asks the OS for a free port: never a clash.
        if addr.port() == 0 {
            continue;
        }
        let here = d.location(&format!("{}.listen", at.path), at);
        match seen.get(&addr) {
            Some(first) => d.errors.push(crate::ConfigError::at(
                &here,
                format!(
                    "duplicate listen address {addr} (first at {} line {})",
                    first.path, first.line
                ),
            )),
            None => {
                seen.insert(addr, here);
            }
        }
    }
}

fn cluster_references(config: &Config, d: &mut Decoder) {
    let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    for r in &config.routes {
        let refs: Vec<(String, &str)> = match &r.action {
            RouteAction::Cluster(c) => vec![(format!("{}.cluster", r.at.path), c.as_str())],
            RouteAction::Split(s) => s
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        format!("{}.split[{i}].cluster", r.at.path),
                        t.cluster.as_str(),
                    )
                })
                .collect(),
            RouteAction::Direct(_) | RouteAction::Redirect(_) => Vec::new(),
        };
        let mirror = r
            .mirror
            .as_ref()
            .map(|m| (format!("{}.mirror.cluster", r.at.path), m.cluster.as_str()));
        let refs = refs.into_iter().chain(mirror);
        for (path, name) in refs {
            if names.contains(&name) {
                continue;
            }
            let hint = match closest(name, &names) {
                Some(c) => format!(" (did you mean `{c}`?)"),
                None if names.is_empty() => " (no clusters are defined)".to_string(),
                None => format!(" (defined: {})", names.join(", ")),
            };
            let at = d.location(&path, &r.at);
            d.errors.push(crate::ConfigError::at(
                &at,
                format!("unknown cluster `{name}`{hint}"),
            ));
        }
    }
}

fn route_conflicts(config: &Config, d: &mut Decoder) {
    for (later, earlier) in conflicts::find(&config.routes) {
        let (a, b) = (&config.routes[later], &config.routes[earlier]);
        let at = d.location(&format!("{}.match", a.at.path), &a.at);
        d.errors.push(crate::ConfigError::at(
            &at,
            format!(
                "conflicting matches: {} {:?} and {} {:?} match the same requests",
                a.at.path, a.name, b.at.path, b.name
            ),
        ));
    }
}
