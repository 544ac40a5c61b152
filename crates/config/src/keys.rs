//! The keys each config section accepts: shared by the decoder (strictness, "did you mean")
//! and checked against the JSON Schema by a test, so the two cannot drift apart.

/// The document root.
pub(crate) const ROOT: &[&str] = &[
    "admin",
    "access_log",
    "dns",
    "listeners",
    "routes",
    "clusters",
];
/// `admin`
pub(crate) const ADMIN: &[&str] = &["listen"];
/// `access_log`
pub(crate) const ACCESS_LOG: &[&str] = &["path"];
/// `dns`
pub(crate) const DNS: &[&str] = &["resolvers", "min_ttl", "max_ttl", "timeout", "max_stale"];
/// `listeners[i]`
pub(crate) const LISTENER: &[&str] = &["name", "listen", "tls", "limits"];
/// `listeners[i].tls`
pub(crate) const LISTENER_TLS: &[&str] = &["certs"];
/// `listeners[i].tls.certs[j]`
pub(crate) const CERT_KEY: &[&str] = &["cert", "key"];
/// `listeners[i].limits`
pub(crate) const LISTENER_LIMITS: &[&str] = &[
    "max_header_bytes",
    "header_read_timeout",
    "idle_timeout",
    "max_connections",
    "max_concurrent_streams",
];
/// `routes[i]`
pub(crate) const ROUTE: &[&str] = &[
    "name",
    "match",
    "cluster",
    "split",
    "split_header",
    "direct_response",
    "redirect",
    "rewrite",
    "request_headers",
    "response_headers",
    "timeout",
    "buffer_request",
    "allow_encoded_slashes",
    "per_try_timeout",
    "retry",
    "mirror",
    "transcode",
];
/// The route keys that choose its action; exactly one is required.
pub(crate) const ROUTE_ACTIONS: &[&str] = &["cluster", "split", "direct_response", "redirect"];
/// `routes[i].match`
pub(crate) const MATCH: &[&str] = &[
    "host",
    "path",
    "path_prefix",
    "path_template",
    "methods",
    "headers",
];
/// The match keys for the path; at most one.
pub(crate) const MATCH_PATHS: &[&str] = &["path", "path_prefix", "path_template"];
/// `routes[i].match.headers[j]`
pub(crate) const HEADER_MATCH: &[&str] = &["name", "value", "present"];
/// `routes[i].split[j]`
pub(crate) const SPLIT_TARGET: &[&str] = &["cluster", "weight"];
/// `routes[i].direct_response`
pub(crate) const DIRECT_RESPONSE: &[&str] = &["status", "body", "content_type"];
/// `routes[i].redirect`
pub(crate) const REDIRECT: &[&str] = &["location", "status", "preserve_path"];
/// `routes[i].rewrite`
pub(crate) const REWRITE: &[&str] = &["prefix"];
/// `routes[i].request_headers` / `response_headers`
pub(crate) const HEADER_OPS: &[&str] = &["set", "add", "remove"];
/// `routes[i].buffer_request`
pub(crate) const BUFFER_REQUEST: &[&str] = &["max_bytes"];
/// `routes[i].retry`
pub(crate) const RETRY: &[&str] = &["attempts", "on", "statuses", "non_idempotent", "backoff"];
/// `routes[i].retry.backoff`
pub(crate) const BACKOFF: &[&str] = &["base", "max"];
/// `routes[i].mirror`
pub(crate) const MIRROR: &[&str] = &["cluster", "percent"];
/// `routes[i].transcode`
pub(crate) const TRANSCODE: &[&str] = &[
    "descriptors",
    "services",
    "auto_mapping",
    "reject_unknown_fields",
    "case_insensitive_enums",
    "use_proto_field_names",
    "emit_defaults",
    "stream_format",
    "metadata_headers",
    "max_request_bytes",
];
/// `clusters[i]`
pub(crate) const CLUSTER: &[&str] = &[
    "name",
    "endpoints",
    "protocol",
    "lb",
    "connect_timeout",
    "tls",
    "pool",
    "health_check",
    "outlier_detection",
    "panic_threshold",
    "max_requests",
    "retry_budget",
];
/// `clusters[i].endpoints[j]` in map form
pub(crate) const ENDPOINT: &[&str] = &["address", "weight"];
/// `clusters[i].tls`
pub(crate) const UPSTREAM_TLS: &[&str] = &["sni", "ca", "extra_ca", "system_roots", "cert", "key"];
/// `clusters[i].pool`
pub(crate) const POOL: &[&str] = &[
    "max_connections",
    "max_idle",
    "idle_timeout",
    "max_pending",
    "pending_timeout",
];

/// `clusters[i].health_check`
pub(crate) const HEALTH_CHECK: &[&str] = &[
    "path",
    "interval",
    "timeout",
    "healthy_threshold",
    "unhealthy_threshold",
    "host",
];
/// `clusters[i].outlier_detection`
pub(crate) const OUTLIER_DETECTION: &[&str] = &[
    "consecutive_5xx",
    "consecutive_connect_failures",
    "base_ejection_time",
    "max_ejection_time",
    "max_ejection_percent",
];
/// `clusters[i].retry_budget`
pub(crate) const RETRY_BUDGET: &[&str] = &["percent", "min_retries_per_second"];

/// Every section's keys, by name (for documentation checks).
#[cfg(test)]
pub(crate) const ALL: &[(&str, &[&str])] = &[
    ("root", ROOT),
    ("admin", ADMIN),
    ("access_log", ACCESS_LOG),
    ("dns", DNS),
    ("listener", LISTENER),
    ("listener tls", LISTENER_TLS),
    ("cert", CERT_KEY),
    ("limits", LISTENER_LIMITS),
    ("route", ROUTE),
    ("match", MATCH),
    ("header match", HEADER_MATCH),
    ("split target", SPLIT_TARGET),
    ("direct_response", DIRECT_RESPONSE),
    ("redirect", REDIRECT),
    ("rewrite", REWRITE),
    ("header ops", HEADER_OPS),
    ("buffer_request", BUFFER_REQUEST),
    ("retry", RETRY),
    ("backoff", BACKOFF),
    ("mirror", MIRROR),
    ("transcode", TRANSCODE),
    ("cluster", CLUSTER),
    ("endpoint", ENDPOINT),
    ("upstream tls", UPSTREAM_TLS),
    ("pool", POOL),
    ("health_check", HEALTH_CHECK),
    ("outlier_detection", OUTLIER_DETECTION),
    ("retry_budget", RETRY_BUDGET),
];
