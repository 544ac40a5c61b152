//! The effective config as JSON, in the shape users write, with defaults applied and the
//! values that came from the environment redacted (served by the admin `/config` endpoint).

use serde_json::{json, Map, Value};

mod policy;

use crate::decode::{cluster::LB_POLICIES, cluster::PROTOCOLS};
use crate::model::{
    Cluster, ClusterResilience, Config, Endpoint, HeaderOps, Listener, LogTarget, PathMatch, Route,
    RouteAction,
};
use crate::units::{format_duration as dur, format_size as size};

/// What a secret value is replaced with.
pub(crate) const REDACTED: &str = "<redacted>";

impl Config {
    /// The effective config: every key with its value after defaults, in the same shape as
    /// the YAML, with each value listed in [`Config::secret_paths`] replaced by `"<redacted>"`.
    pub fn effective_json(&self) -> Value {
        let mut root = Map::new();
        if let Some(a) = &self.admin {
            root.insert("admin".into(), json!({ "listen": a.listen.to_string() }));
        }
        let log = match &self.access_log.target {
            LogTarget::Off => "off".to_string(),
            LogTarget::Stdout => "stdout".to_string(),
            LogTarget::Stderr => "stderr".to_string(),
            LogTarget::File(p) => p.display().to_string(),
        };
        root.insert("access_log".into(), json!({ "path": log }));
        let dns = &self.dns;
        root.insert(
            "dns".into(),
            json!({
                "resolvers": dns.resolvers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "min_ttl": dur(dns.min_ttl),
                "max_ttl": dur(dns.max_ttl),
                "timeout": dur(dns.timeout),
                "max_stale": dur(dns.max_stale),
            }),
        );
        root.insert(
            "listeners".into(),
            self.listeners.iter().map(listener).collect(),
        );
        root.insert("routes".into(), self.routes.iter().map(route).collect());
        root.insert(
            "clusters".into(),
            self.clusters.iter().map(cluster).collect(),
        );
        if let Some(a) = &self.default_auth {
            root.insert("default_auth".into(), policy::auth(a));
        }
        let mut root = Value::Object(root);
        for path in &self.secret_paths {
            redact(&mut root, path);
        }
        root
    }
}

fn listener(l: &Listener) -> Value {
    let mut v = json!({
        "name": l.name,
        "listen": l.listen.to_string(),
        "limits": {
            "max_header_bytes": size(l.limits.max_header_bytes),
            "header_read_timeout": dur(l.limits.header_read_timeout),
            "idle_timeout": dur(l.limits.idle_timeout),
            "max_connections": l.limits.max_connections,
            "max_concurrent_streams": l.limits.max_concurrent_streams,
        },
        "http1_fast_path": l.http1_fast_path,
    });
    if let Some(tls) = &l.tls {
        let certs: Vec<Value> = tls
            .certs
            .iter()
            .map(|c| json!({ "cert": c.cert.display().to_string(), "key": c.key.display().to_string() }))
            .collect();
        v["tls"] = json!({ "certs": certs });
    }
    v
}

fn route(r: &Route) -> Value {
    let m = &r.matcher;
    let mut matcher = Map::new();
    if let Some(h) = &m.host {
        matcher.insert("host".into(), json!(h));
    }
    let (key, p) = match &m.path {
        PathMatch::Exact(p) => ("path", p),
        PathMatch::Prefix(p) => ("path_prefix", p),
        PathMatch::Template(p) => ("path_template", p),
    };
    matcher.insert(key.into(), json!(p));
    matcher.insert("methods".into(), json!(m.methods));
    let headers: Vec<Value> = m
        .headers
        .iter()
        .map(|h| match &h.value {
            Some(v) => json!({ "name": h.name, "value": v }),
            None => json!({ "name": h.name, "present": true }),
        })
        .collect();
    matcher.insert("headers".into(), json!(headers));

    let mut v = json!({
        "name": r.name,
        "match": matcher,
        "request_headers": header_ops(&r.request_headers),
        "response_headers": header_ops(&r.response_headers),
        "timeout": dur(r.timeout),
        "allow_encoded_slashes": r.allow_encoded_slashes,
    });
    match &r.action {
        RouteAction::Cluster(c) => v["cluster"] = json!(c),
        RouteAction::Split(s) => {
            let targets: Vec<Value> = s
                .targets
                .iter()
                .map(|t| json!({ "cluster": t.cluster, "weight": t.weight }))
                .collect();
            v["split"] = json!(targets);
            v["split_header"] = json!(s.override_header);
        }
        RouteAction::Direct(dr) => {
            v["direct_response"] =
                json!({ "status": dr.status, "body": dr.body, "content_type": dr.content_type });
        }
        RouteAction::Redirect(rd) => {
            v["redirect"] = json!({
                "location": rd.location,
                "status": rd.status,
                "preserve_path": rd.preserve_path,
            });
        }
    }
    if let Some(rw) = &r.rewrite {
        v["rewrite"] = json!({ "prefix": rw.prefix });
    }
    if let Some(b) = &r.buffer_request {
        v["buffer_request"] = json!({ "max_bytes": size(b.max_bytes) });
    }
    if let Some(t) = r.per_try_timeout {
        v["per_try_timeout"] = json!(dur(t));
    }
    if let Some(rt) = &r.retry {
        let on: Vec<&str> = rt
            .on
            .iter()
            .filter_map(|o| {
                crate::decode::route::RETRY_ON
                    .iter()
                    .find(|(_, v)| v == o)
                    .map(|(k, _)| *k)
            })
            .collect();
        v["retry"] = json!({
            "attempts": rt.attempts,
            "on": on,
            "statuses": rt.statuses,
            "non_idempotent": rt.non_idempotent,
            "backoff": { "base": dur(rt.backoff_base), "max": dur(rt.backoff_max) },
        });
    }
    if let Some(t) = &r.transcode {
        let format = crate::decode::route::STREAM_FORMATS
            .iter()
            .find(|(_, f)| *f == t.stream_format)
            .map_or("json_array", |(k, _)| *k);
        v["transcode"] = json!({
            "descriptors": t.descriptors.display().to_string(),
            "services": t.services,
            "auto_mapping": t.auto_mapping,
            "reject_unknown_fields": t.reject_unknown_fields,
            "case_insensitive_enums": t.case_insensitive_enums,
            "use_proto_field_names": t.use_proto_field_names,
            "emit_defaults": t.emit_defaults,
            "stream_format": format,
            "metadata_headers": t.metadata_headers,
            "max_request_bytes": size(t.max_request_bytes),
        });
    }
    if let Some(m) = &r.mirror {
        v["mirror"] = json!({ "cluster": m.cluster, "percent": m.percent });
    }
    if let Some(a) = policy::route_auth(&r.auth) {
        v["auth"] = a;
    }
    if let Some(rl) = &r.rate_limit {
        v["rate_limit"] = policy::rate_limit(rl);
    }
    if let Some(l) = &r.lock {
        v["lock"] = policy::lock(l);
    }
    if let Some(c) = &r.cors {
        v["cors"] = json!({
            "allow_origins": c.allow_origins.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "allow_methods": c.allow_methods,
            "allow_headers": c.allow_headers,
            "expose_headers": c.expose_headers,
            "max_age": c.max_age.map(dur),
            "allow_credentials": c.allow_credentials,
        });
    }
    v
}

fn header_ops(ops: &HeaderOps) -> Value {
    let pairs = |list: &[(String, String)]| -> Map<String, Value> {
        list.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
    };
    json!({ "set": pairs(&ops.set), "add": pairs(&ops.add), "remove": ops.remove })
}

fn cluster(c: &Cluster) -> Value {
    let mut v = json!({
        "name": c.name,
        "endpoints": c.endpoints.iter().map(endpoint).collect::<Vec<_>>(),
        "protocol": word(PROTOCOLS, c.protocol),
        "lb": word(LB_POLICIES, c.lb),
        "connect_timeout": dur(c.connect_timeout),
        "pool": {
            "max_connections": c.pool.max_connections,
            "max_idle": c.pool.max_idle,
            "idle_timeout": dur(c.pool.idle_timeout),
            "max_pending": c.pool.max_pending,
            "pending_timeout": dur(c.pool.pending_timeout),
        },
    });
    resilience(&c.resilience, &mut v);
    if let Some(tls) = &c.tls {
        let mut t = Map::new();
        if let Some(sni) = &tls.sni {
            t.insert("sni".into(), json!(sni));
        }
        if let Some(ca) = &tls.ca {
            t.insert("ca".into(), json!(ca.display().to_string()));
        }
        if tls.system_roots {
            t.insert("system_roots".into(), json!(true));
        }
        if let Some(ca) = &tls.extra_ca {
            t.insert("extra_ca".into(), json!(ca.display().to_string()));
        }
        if let Some((cert, key)) = &tls.client_cert {
            t.insert("cert".into(), json!(cert.display().to_string()));
            t.insert("key".into(), json!(key.display().to_string()));
        }
        v["tls"] = Value::Object(t);
    }
    v
}

/// `health_check` (when set), `outlier_detection`, `panic_threshold`, `max_requests`, `retry_budget`.
fn resilience(r: &ClusterResilience, v: &mut Value) {
    if let Some(hc) = &r.health_check {
        v["health_check"] = json!({
            "path": hc.path,
            "interval": dur(hc.interval),
            "timeout": dur(hc.timeout),
            "healthy_threshold": hc.healthy_threshold,
            "unhealthy_threshold": hc.unhealthy_threshold,
        });
        if let Some(host) = &hc.host {
            v["health_check"]["host"] = json!(host);
        }
    }
    let o = &r.outlier_detection;
    v["outlier_detection"] = json!({
        "consecutive_5xx": o.consecutive_5xx,
        "consecutive_connect_failures": o.consecutive_connect_failures,
        "base_ejection_time": dur(o.base_ejection_time),
        "max_ejection_time": dur(o.max_ejection_time),
        "max_ejection_percent": o.max_ejection_percent,
    });
    v["panic_threshold"] = json!(r.panic_threshold);
    v["max_requests"] = json!(r.max_requests);
    v["retry_budget"] = json!({
        "percent": r.retry_budget.percent,
        "min_retries_per_second": r.retry_budget.min_retries_per_second,
    });
}

/// The word a user writes for `want`.
fn word<T: PartialEq + Copy>(options: &[(&'static str, T)], want: T) -> &'static str {
    options
        .iter()
        .find(|(_, v)| *v == want)
        .map_or("", |(name, _)| *name)
}

fn endpoint(e: &Endpoint) -> Value {
    let address = if e.host.contains(':') {
        format!("[{}]:{}", e.host, e.port)
    } else {
        format!("{}:{}", e.host, e.port)
    };
    if e.weight == 1 {
        json!(address)
    } else {
        json!({ "address": address, "weight": e.weight })
    }
}

/// Replaces the value at YAML path `path` (e.g. `routes[0].request_headers.set.x-key`) with
/// [`REDACTED`]. Where the effective form is a scalar written differently (an endpoint map
/// shown as a string), that whole scalar is redacted; a path to nothing shown is ignored.
fn redact(v: &mut Value, path: &str) {
    if path.is_empty() {
        *v = json!(REDACTED);
        return;
    }
    match v {
        Value::Array(items) => {
            let Some(rest) = path.strip_prefix('[') else {
                return;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                return;
            };
            if let Some(item) = index.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                redact(item, tail);
            }
        }
        Value::Object(map) => {
            let rest = path.strip_prefix('.').unwrap_or(path);
            // Keys may contain dots (header names): take the longest key that fits, and
            // compare case-insensitively because header names are shown lowercased.
            let found = map
                .keys()
                .filter(|k| {
                    rest.len() >= k.len()
                        && rest.is_char_boundary(k.len())
                        && rest[..k.len()].eq_ignore_ascii_case(k)
                        && matches!(rest.as_bytes().get(k.len()), None | Some(b'.') | Some(b'['))
                })
                .max_by_key(|k| k.len())
                .cloned();
            if let Some(key) = found {
                let tail = &rest[key.len()..];
                if let Some(child) = map.get_mut(&key) {
                    redact(child, tail);
                }
            }
        }
        _ => *v = json!(REDACTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_by_path() {
        let mut v = json!({
            "routes": [{ "request_headers": { "set": { "x.key": "s", "x": "t" } } }],
            "clusters": [{ "endpoints": ["a:1"] }],
        });
        redact(&mut v, "routes[0].request_headers.set.X.Key");
        redact(&mut v, "clusters[0].endpoints[0].address");
        redact(&mut v, "nothing.here");
        redact(&mut v, "routes[7].name");
        assert_eq!(v["routes"][0]["request_headers"]["set"]["x.key"], REDACTED);
        assert_eq!(v["routes"][0]["request_headers"]["set"]["x"], "t");
        assert_eq!(v["clusters"][0]["endpoints"][0], REDACTED);
    }
}
