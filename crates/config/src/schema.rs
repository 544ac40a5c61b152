//! The JSON Schema (draft 2020-12) of the config, for editors (`sekisho schema`).
//!
//! Property names must match the decoder's key lists in `keys.rs`; a test checks it.

use serde_json::{json, Map, Value};

mod policy;

/// A JSON Schema (draft 2020-12) of the whole config, with a description on every property.
pub fn json_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/sekisho/config.schema.json",
        "title": "sekisho config",
        "description": "Configuration of the sekisho API gateway. Unknown keys are errors; `${VAR}` and `${VAR:-default}` in values read the environment (`$$` is a literal `$`).",
        "type": "object",
        "additionalProperties": false,
        "required": ["listeners"],
        "properties": props(&[
            ("admin", r("admin"), "The admin HTTP listener (/metrics, /healthz, /readyz, /config, /clusters). None when absent."),
            ("access_log", r("accessLog"), "Where access log lines (JSON) go. Default: stdout."),
            ("dns", r("dns"), "The in-process DNS cache shared by all clusters."),
            ("listeners", arr(r("listener"), 1), "Client-facing listeners; at least one."),
            ("routes", arr(r("route"), 0), "Routes; order does not matter (the most specific match wins)."),
            ("clusters", arr(r("cluster"), 0), "Upstream clusters that routes send requests to."),
            ("default_auth", r("auth"), "Authentication of every route without its own `auth` (`auth: public` opts a route out)."),
        ]),
        "$defs": defs(),
    })
}

fn defs() -> Value {
    let mut defs = base_defs();
    if let Value::Object(m) = &mut defs {
        m.extend(policy::defs());
    }
    defs
}

fn base_defs() -> Value {
    json!({
        "duration": {
            "description": "A duration: numbers with units h, m, s, ms, us, ns, e.g. 250ms, 3s, 1.5s, 1m30s.",
            "type": "string",
            "pattern": "^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$",
        },
        "size": {
            "description": "A size in bytes: 512, or 64KiB, 1MiB, 1GiB (1024-based), or 1KB, 1MB, 1GB (1000-based).",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+ ?(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$" },
            ],
        },
        "socketAddr": {
            "description": "An ip:port socket address, e.g. 127.0.0.1:8080 or [::1]:8080.",
            "type": "string",
        },
        "headerName": {
            "description": "An HTTP header name (case-insensitive; stored lowercased).",
            "type": "string",
            "pattern": "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$",
        },
        "urlPath": {
            "description": "A URL path starting with `/`.",
            "type": "string",
            "pattern": "^/",
        },
        "admin": obj("`admin`: the admin listener.", &["listen"], &[
            ("listen", r("socketAddr"), "Address of the admin HTTP listener."),
        ]),
        "accessLog": obj("`access_log`: where access log lines go.", &[], &[
            ("path", s(), "`stdout` (default), `stderr`, `off`, or a file path (appended to; relative to the config file's directory)."),
        ]),
        "dns": obj("`dns`: the DNS cache shared by all clusters.", &[], &[
            ("resolvers", json!({ "type": "array", "items": { "type": "string" } }), "Name servers as `ip` or `ip:port` (port 53 by default). Empty: the system's (/etc/resolv.conf)."),
            ("min_ttl", r("duration"), "Answers are kept at least this long. Default 1s; at most max_ttl."),
            ("max_ttl", r("duration"), "Answers are refreshed at least this often. Default 300s."),
            ("timeout", r("duration"), "One lookup's time bound. Default 2s."),
            ("max_stale", r("duration"), "How long an expired answer is still served while the resolver fails. Default 1h."),
        ]),
        "listener": obj("A client-facing listener.", &["name", "listen"], &[
            ("name", s(), "Unique among listeners."),
            ("listen", r("socketAddr"), "The socket address to bind (unique; port 0 picks a free port)."),
            ("tls", r("listenerTls"), "Serve TLS (HTTP/2 and HTTP/1.1 by ALPN). Absent: plaintext HTTP/1.1 and h2c."),
            ("limits", r("listenerLimits"), "Per-connection limits."),
            ("http1_fast_path", json!({ "type": "boolean" }), "Proxy plain HTTP/1.1 requests with the gateway's own HTTP/1.1 engine (plaintext listeners). Default true."),
        ]),
        "listenerTls": obj("TLS for a listener.", &["certs"], &[
            ("certs", arr(r("certKey"), 1), "Certificate chains; the SNI name picks one, the first is the default."),
        ]),
        "certKey": obj("A PEM certificate chain and its private key.", &["cert", "key"], &[
            ("cert", s(), "PEM file with the chain, leaf first (relative to the config file's directory)."),
            ("key", s(), "PEM file with the private key (relative to the config file's directory)."),
        ]),
        "listenerLimits": obj("Per-connection limits of a listener.", &[], &[
            ("max_header_bytes", r("size"), "Request line plus headers. Default 64KiB; at least 1KiB."),
            ("header_read_timeout", r("duration"), "Time to receive the request head (slowloris bound). Default 10s."),
            ("idle_timeout", r("duration"), "A keep-alive connection with no request in flight is closed after this. Default 60s."),
            ("max_connections", pos_int(), "Connections past this wait in the accept queue. Default 10000."),
            ("max_concurrent_streams", pos_int(), "HTTP/2 streams per connection. Default 100."),
        ]),
        "route": route(),
        "match": obj_with(
            "How a route matches requests. At most one of path, path_prefix, path_template; none means `path_prefix: /`.",
            &[],
            &[
                ("host", s(), "Exact host (`api.example.com`) or wildcard (`*.example.com`), without port; case-insensitive. Absent: any host."),
                ("path", r("urlPath"), "The whole path, exactly."),
                ("path_prefix", r("urlPath"), "A path prefix: on a segment boundary if it ends with `/`, else a plain string prefix."),
                ("path_template", r("urlPath"), "A template like `/v1/items/{id}`: `{name}` matches one whole segment, a final `{name...}` or `{*name}` the rest."),
                ("methods", json!({ "type": "array", "items": { "type": "string" } }), "HTTP methods (uppercased); empty means any."),
                ("headers", arr(r("headerMatch"), 0), "Header predicates; all must match."),
            ],
            json!({ "not": { "anyOf": [
                { "required": ["path", "path_prefix"] },
                { "required": ["path", "path_template"] },
                { "required": ["path_prefix", "path_template"] },
            ] } }),
        ),
        "headerMatch": obj("A header predicate.", &["name"], &[
            ("name", r("headerName"), "Header name."),
            ("value", s(), "Exact value. Absent: the header only has to be present."),
            ("present", json!({ "const": true }), "`true`: the header only has to be present (same as no `value`)."),
        ]),
        "splitTarget": obj("A weighted split target.", &["cluster", "weight"], &[
            ("cluster", s(), "Name of a cluster."),
            ("weight", json!({ "type": "integer", "minimum": 0 }), "Relative weight (weights need not sum to 100); 0: reachable only by `split_header`."),
        ]),
        "directResponse": obj("Answer without an upstream.", &["status"], &[
            ("status", json!({ "type": "integer", "minimum": 100, "maximum": 599 }), "HTTP status, 100-599."),
            ("body", s(), "Response body. Default empty."),
            ("content_type", s(), "Content-Type. Default `text/plain; charset=utf-8`."),
        ]),
        "redirect": obj("Answer with a redirect.", &["location"], &[
            ("location", s(), "Absolute URL or path."),
            ("status", json!({ "enum": [301, 302, 303, 307, 308] }), "Redirect status. Default 301."),
            ("preserve_path", json!({ "type": "boolean" }), "Append the request's path and query to `location`. Default false."),
        ]),
        "rewrite": obj("Path rewrite before proxying.", &["prefix"], &[
            ("prefix", r("urlPath"), "Replaces the part of the path matched by `path_prefix` (only with `path_prefix`)."),
        ]),
        "headerOps": obj("Header edits.", &[], &[
            ("set", json!({ "type": "object", "additionalProperties": { "type": "string" } }), "`name: value` pairs replacing any existing values."),
            ("add", json!({ "type": "object", "additionalProperties": { "type": "string" } }), "`name: value` pairs appended."),
            ("remove", json!({ "type": "array", "items": { "$ref": "#/$defs/headerName" } }), "Header names to remove."),
        ]),
        "bufferRequest": obj("Read the whole request body before choosing an upstream.", &["max_bytes"], &[
            ("max_bytes", r("size"), "Bodies larger than this get 413."),
        ]),
        "retry": obj("Retry failed attempts, on another endpoint when possible, within the cluster's retry budget.", &["attempts"], &[
            ("attempts", json!({ "type": "integer", "minimum": 1, "maximum": 10 }), "Retries after the first try."),
            ("on", json!({ "type": "array", "items": { "enum": ["connect-failure", "reset", "5xx", "gateway-error"] } }), "Failures that are retried. Default [connect-failure, reset]."),
            ("statuses", json!({ "type": "array", "items": { "type": "integer", "minimum": 100, "maximum": 599 } }), "Response statuses that are retried."),
            ("non_idempotent", json!({ "type": "boolean" }), "Also retry non-idempotent methods after the request may have reached the upstream. Default false."),
            ("backoff", r("backoff"), "Backoff between retries: doubled each time, with jitter."),
        ]),
        "transcode": obj("HTTP+JSON / HTTP+Protobuf to gRPC from a descriptor set; application/grpc requests pass through.", &["descriptors", "services"], &[
            ("descriptors", s(), "FileDescriptorSet file (protoc --include_imports --descriptor_set_out)."),
            ("services", json!({ "type": "array", "items": { "type": "string" }, "minItems": 1 }), "Fully qualified gRPC services to expose."),
            ("auto_mapping", json!({ "type": "boolean" }), "Methods without an HTTP rule answer POST /pkg.Service/Method. Default true."),
            ("reject_unknown_fields", json!({ "type": "boolean" }), "Unknown JSON fields are a 400 instead of ignored. Default false."),
            ("case_insensitive_enums", json!({ "type": "boolean" }), "Accept enum names in any case. Default false."),
            ("use_proto_field_names", json!({ "type": "boolean" }), "JSON output uses proto field names instead of lowerCamelCase. Default false."),
            ("emit_defaults", json!({ "type": "boolean" }), "JSON output includes fields with default values. Default false."),
            ("stream_format", json!({ "enum": ["json_array", "ndjson", "sse"] }), "How server streams are written. Default json_array."),
            ("metadata_headers", json!({ "type": "array", "items": { "$ref": "#/$defs/headerName" } }), "Request headers forwarded as gRPC metadata."),
            ("max_request_bytes", r("size"), "Largest HTTP request body transcoded (413 past it). Default 4MiB."),
        ]),
        "backoff": obj("Backoff between retries.", &[], &[
            ("base", r("duration"), "First backoff. Default 25ms."),
            ("max", r("duration"), "Longest backoff. Default 250ms."),
        ]),
        "cors": obj("Browser origins allowed to call the route (CORS): preflights are answered at the gateway, actual responses get the Access-Control-* headers.", &["allow_origins"], &[
            ("allow_origins", arr(s(), 1), "`*`, an origin (`https://app.example.com`) or its subdomains (`https://*.example.com`), optionally with a port."),
            ("allow_methods", json!({ "type": "array", "items": s() }), "Methods a preflight may ask for. Default: the route's match.methods, else GET, HEAD, POST, PUT, PATCH, DELETE."),
            ("allow_headers", json!({ "type": "array", "items": { "$ref": "#/$defs/headerName" } }), "Request headers a preflight may ask for. Default content-type; transcode routes always add the gRPC-Web request headers."),
            ("expose_headers", json!({ "type": "array", "items": { "$ref": "#/$defs/headerName" } }), "Response headers scripts may read. Transcode routes always add grpc-status, grpc-message, grpc-status-details-bin."),
            ("max_age", r("duration"), "How long browsers may cache a preflight's answer. Default: not sent."),
            ("allow_credentials", json!({ "type": "boolean" }), "Cookies and HTTP auth may be sent; not with `*`. Default false."),
        ]),
        "mirror": obj("Copy a share of the route's requests to a shadow cluster; its answers are discarded.", &["cluster"], &[
            ("cluster", s(), "The shadow cluster."),
            ("percent", json!({ "type": "number", "minimum": 0, "maximum": 100 }), "Share of requests copied. Default 100."),
        ]),
        "cluster": obj("An upstream cluster.", &["name", "endpoints"], &[
            ("name", s(), "Unique among clusters."),
            ("endpoints", arr(r("endpoint"), 1), "The cluster's endpoints."),
            ("protocol", json!({ "enum": ["http1", "h2", "h2c", "auto"] }), "Upstream protocol: http1 (default), h2 (HTTP/2 over TLS), h2c (HTTP/2 prior knowledge), auto (ALPN). h2 and auto require tls."),
            ("lb", json!({ "enum": ["round_robin", "least_request", "random"] }), "Load-balancing policy. Default least_request."),
            ("connect_timeout", r("duration"), "Time bound of one connection attempt. Default 1s."),
            ("tls", r("upstreamTls"), "Connect to endpoints with TLS."),
            ("pool", r("pool"), "Connection pool limits, per endpoint."),
            ("health_check", r("healthCheck"), "Active HTTP health checks of every endpoint address. Absent: none."),
            ("outlier_detection", r("outlierDetection"), "Passive ejection of failing endpoint addresses. On by default."),
            ("panic_threshold", pct(), "When fewer than this percent of the addresses are healthy, route to all of them. Default 50; 0 disables panic mode."),
            ("max_requests", pos_int(), "Concurrent requests to the cluster; past it requests fail at once with 503 (circuit breaking). Default 1024."),
            ("retry_budget", r("retryBudget"), "How many retries the cluster accepts relative to its requests."),
        ]),
        "endpoint": {
            "description": "`host:port` / `[v6]:port`, or a map with an address and a weight.",
            "oneOf": [
                { "type": "string" },
                obj("An endpoint with a weight.", &["address"], &[
                    ("address", s(), "`host:port` or `[v6]:port`; a DNS name is resolved through the cache."),
                    ("weight", pos_int(), "Relative weight, at least 1. Default 1."),
                ]),
            ],
        },
        "upstreamTls": obj("TLS to the endpoints.", &[], &[
            ("sni", s(), "Server name to send and verify. Default: the endpoint's host."),
            ("ca", s(), "PEM file of trusted roots. Default: the bundled web PKI roots."),
            ("extra_ca", s(), "PEM file of roots trusted in addition to the default ones; not with `ca`."),
            ("system_roots", json!({ "type": "boolean" }), "Trust the operating system's roots instead of the bundled web PKI roots. Default false."),
            ("cert", s(), "Client certificate chain (PEM) for mutual TLS; needs `key`."),
            ("key", s(), "Client private key (PEM) for mutual TLS; needs `cert`."),
        ]),
        "pool": obj("Connection pool limits, per endpoint.", &[], &[
            ("max_connections", pos_int(), "Total (busy + idle) connections. Default 256."),
            ("max_idle", json!({ "type": "integer", "minimum": 0 }), "Idle keep-alive connections kept. Default 64; 0 keeps none."),
            ("idle_timeout", r("duration"), "An idle connection older than this is closed. Default 60s."),
            ("max_pending", pos_int(), "Requests waiting for a connection past the cap; more get 503. Default 1024."),
            ("pending_timeout", r("duration"), "Longest wait for a connection slot. Default 5s."),
        ]),
        "healthCheck": obj("Active HTTP health checks: GET `path` on every endpoint address; a 2xx answer passes.", &["path"], &[
            ("path", r("urlPath"), "Path (and query) requested."),
            ("interval", r("duration"), "Time between two checks of one address. Default 5s."),
            ("timeout", r("duration"), "Bound on one check (connect, request, response head). Default 1s."),
            ("healthy_threshold", pos_int(), "Consecutive passes that make an unhealthy address healthy. Default 2."),
            ("unhealthy_threshold", pos_int(), "Consecutive failures that make a healthy address unhealthy. Default 3."),
            ("host", s(), "Host header (HTTP/2 :authority) sent. Default: the endpoint's host:port."),
        ]),
        "outlierDetection": obj("Passive outlier ejection: addresses failing in a row leave the rotation for a while.", &[], &[
            ("consecutive_5xx", json!({ "type": "integer", "minimum": 0 }), "5xx answers (or resets) in a row that eject an address. Default 5; 0: never."),
            ("consecutive_connect_failures", json!({ "type": "integer", "minimum": 0 }), "Failed connection attempts in a row that eject an address. Default 5; 0: never."),
            ("base_ejection_time", r("duration"), "Length of the first ejection; the n-th lasts n times this. Default 30s."),
            ("max_ejection_time", r("duration"), "Longest ejection. Default 300s; at least base_ejection_time."),
            ("max_ejection_percent", pct(), "At most this percent of the addresses are ejected at once. Default 50."),
        ]),
        "retryBudget": obj("Retry budget: retries allowed relative to requests, so retries cannot multiply an outage.", &[], &[
            ("percent", pct(), "Retries allowed as a percentage of requests over the last 10 s. Default 20."),
            ("min_retries_per_second", json!({ "type": "integer", "minimum": 0 }), "Retries always allowed per second, whatever the percentage. Default 10."),
        ]),
    })
}

fn route() -> Value {
    let mut route = obj("A route: a match and one action.", &["name"], &[
        ("name", s(), "Unique among routes; used in logs and metrics."),
        ("match", r("match"), "Which requests the route takes. Absent: every request."),
        ("cluster", s(), "Action: proxy to this cluster."),
        ("split", arr(r("splitTarget"), 1), "Action: a weighted split across clusters (canary)."),
        ("split_header", r("headerName"), "With `split`: a request carrying this header with a target's cluster name goes to that target. Default x-sekisho-cluster."),
        ("direct_response", r("directResponse"), "Action: answer directly."),
        ("redirect", r("redirect"), "Action: answer with a redirect."),
        ("rewrite", r("rewrite"), "Path rewrite applied before proxying."),
        ("request_headers", r("headerOps"), "Edits of the request sent upstream."),
        ("response_headers", r("headerOps"), "Edits of the response sent to the client."),
        ("timeout", r("duration"), "Bound on the whole request, from routing to the response head. Default 15s."),
        ("buffer_request", r("bufferRequest"), "Read the whole request body before choosing an upstream."),
        ("allow_encoded_slashes", json!({ "type": "boolean" }), "Accept %2F / %5C in the path (kept encoded). Default false."),
        ("per_try_timeout", r("duration"), "Bound on each attempt (first try and each retry). Default: none, only `timeout`."),
        ("retry", r("retry"), "Retry failed attempts."),
        ("mirror", r("mirror"), "Copy a share of the traffic to a shadow cluster."),
        ("transcode", r("transcode"), "HTTP+JSON / HTTP+Protobuf to gRPC for the route's gRPC cluster."),
        ("auth", r("routeAuth"), "Who may call the route: `public` or an auth policy. Absent: `default_auth` if set, else public."),
        ("rate_limit", r("rateLimit"), "Requests per period per key; 429 past it."),
        ("lock", r("lock"), "At most one request in flight per key (e.g. one purchase per item); 503 while held."),
        ("cors", r("cors"), "Browser origins allowed to call the route; preflights answered at the gateway."),
    ]);
    if let Value::Object(m) = &mut route {
        let one_of: Vec<Value> = crate::keys::ROUTE_ACTIONS
            .iter()
            .map(|k| json!({ "required": [k] }))
            .collect();
        m.insert("oneOf".into(), Value::Array(one_of));
    }
    route
}

/// A `$ref` to a definition.
fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

fn s() -> Value {
    json!({ "type": "string" })
}

fn pct() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": 100 })
}

fn pos_int() -> Value {
    json!({ "type": "integer", "minimum": 1 })
}

fn arr(items: Value, min: usize) -> Value {
    json!({ "type": "array", "items": items, "minItems": min })
}

/// `properties` from `(name, schema, description)`.
fn props(list: &[(&str, Value, &str)]) -> Value {
    let mut m = Map::new();
    for (name, schema, description) in list {
        let mut schema = schema.clone();
        if let Value::Object(o) = &mut schema {
            o.insert("description".into(), json!(description));
        }
        m.insert((*name).to_string(), schema);
    }
    Value::Object(m)
}

/// A closed object schema.
fn obj(description: &str, required: &[&str], list: &[(&str, Value, &str)]) -> Value {
    json!({
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": props(list),
    })
}

/// A closed object schema with extra keywords merged in.
fn obj_with(
    description: &str,
    required: &[&str],
    list: &[(&str, Value, &str)],
    extra: Value,
) -> Value {
    let mut v = obj(description, required, list);
    if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
        o.extend(e);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use std::collections::BTreeSet;

    /// The property names of the object schema at `pointer`.
    fn property_names(schema: &Value, pointer: &str) -> BTreeSet<String> {
        let Some(Value::Object(props)) = schema.pointer(&format!("{pointer}/properties")) else {
            panic!("no properties at {pointer}");
        };
        props.keys().cloned().collect()
    }

    #[test]
    fn schema_and_decoder_accept_the_same_keys() {
        let schema = json_schema();
        let sections: &[(&str, &[&str])] = &[
            ("", keys::ROOT),
            ("/$defs/admin", keys::ADMIN),
            ("/$defs/accessLog", keys::ACCESS_LOG),
            ("/$defs/dns", keys::DNS),
            ("/$defs/listener", keys::LISTENER),
            ("/$defs/listenerTls", keys::LISTENER_TLS),
            ("/$defs/certKey", keys::CERT_KEY),
            ("/$defs/listenerLimits", keys::LISTENER_LIMITS),
            ("/$defs/route", keys::ROUTE),
            ("/$defs/match", keys::MATCH),
            ("/$defs/headerMatch", keys::HEADER_MATCH),
            ("/$defs/splitTarget", keys::SPLIT_TARGET),
            ("/$defs/directResponse", keys::DIRECT_RESPONSE),
            ("/$defs/redirect", keys::REDIRECT),
            ("/$defs/rewrite", keys::REWRITE),
            ("/$defs/headerOps", keys::HEADER_OPS),
            ("/$defs/bufferRequest", keys::BUFFER_REQUEST),
            ("/$defs/retry", keys::RETRY),
            ("/$defs/backoff", keys::BACKOFF),
            ("/$defs/mirror", keys::MIRROR),
            ("/$defs/cors", keys::CORS),
            ("/$defs/transcode", keys::TRANSCODE),
            ("/$defs/auth", keys::AUTH),
            ("/$defs/jwt", keys::JWT),
            ("/$defs/jwtKeys", keys::JWT_KEYS),
            ("/$defs/jwks", keys::JWKS),
            ("/$defs/keyFile", keys::KEY_FILE),
            ("/$defs/tokenSource", keys::TOKEN_SOURCE),
            ("/$defs/requiredClaim", keys::REQUIRED_CLAIM),
            ("/$defs/extAuth", keys::EXT_AUTH),
            ("/$defs/extAuthCache", keys::EXT_AUTH_CACHE),
            ("/$defs/apiKeys", keys::API_KEYS),
            ("/$defs/rateLimit", keys::RATE_LIMIT),
            ("/$defs/rateKey", keys::RATE_KEY),
            ("/$defs/redisBackend", &["redis"]),
            ("/$defs/lockBackend", &["redis", "memcached"]),
            ("/$defs/lock", keys::LOCK),
            ("/$defs/lockWait", keys::LOCK_WAIT),
            ("/$defs/onBusy", keys::ON_BUSY),
            ("/$defs/breaker", keys::BREAKER),
            ("/$defs/cluster", keys::CLUSTER),
            ("/$defs/endpoint/oneOf/1", keys::ENDPOINT),
            ("/$defs/upstreamTls", keys::UPSTREAM_TLS),
            ("/$defs/pool", keys::POOL),
            ("/$defs/healthCheck", keys::HEALTH_CHECK),
            ("/$defs/outlierDetection", keys::OUTLIER_DETECTION),
            ("/$defs/retryBudget", keys::RETRY_BUDGET),
        ];
        for (pointer, known) in sections {
            let decoder: BTreeSet<String> = known.iter().map(|k| k.to_string()).collect();
            assert_eq!(
                property_names(&schema, pointer),
                decoder,
                "section {pointer:?}"
            );
        }
        // Every object definition is covered above, so a new section cannot be missed.
        let Some(Value::Object(defs)) = schema.get("$defs") else {
            panic!("no $defs");
        };
        for (name, def) in defs {
            if def.get("properties").is_some() {
                let pointer = format!("/$defs/{name}");
                assert!(
                    sections.iter().any(|(p, _)| *p == pointer),
                    "{pointer} is not compared with the decoder"
                );
            }
        }
    }

    #[test]
    fn every_property_has_a_description() {
        fn walk(v: &Value, at: &str) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::Object(props)) = o.get("properties") {
                        for (name, p) in props {
                            assert!(
                                p.get("description").and_then(Value::as_str).is_some(),
                                "{at}/properties/{name} has no description"
                            );
                        }
                    }
                    for (k, child) in o {
                        walk(child, &format!("{at}/{k}"));
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        walk(child, &format!("{at}/{i}"));
                    }
                }
                _ => {}
            }
        }
        let schema = json_schema();
        walk(&schema, "");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }

    #[test]
    fn every_ref_resolves() {
        fn walk(v: &Value, root: &Value) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        let pointer = r.trim_start_matches('#');
                        assert!(root.pointer(pointer).is_some(), "dangling {r}");
                    }
                    o.values().for_each(|c| walk(c, root));
                }
                Value::Array(a) => a.iter().for_each(|c| walk(c, root)),
                _ => {}
            }
        }
        let schema = json_schema();
        walk(&schema, &schema);
    }
}
