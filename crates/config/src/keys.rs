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
    "default_auth",
];
/// `admin`
pub(crate) const ADMIN: &[&str] = &["listen"];
/// `access_log`
pub(crate) const ACCESS_LOG: &[&str] = &["path"];
/// `dns`
pub(crate) const DNS: &[&str] = &["resolvers", "min_ttl", "max_ttl", "timeout", "max_stale"];
/// `listeners[i]`
pub(crate) const LISTENER: &[&str] = &["name", "listen", "tls", "limits", "http1_fast_path"];
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
    "auth",
    "rate_limit",
    "lock",
    "cors",
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
/// `routes[i].cors`
pub(crate) const CORS: &[&str] = &[
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "max_age",
    "allow_credentials",
];
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
/// `routes[i].auth` / `default_auth`
pub(crate) const AUTH: &[&str] = &["optional", "jwt", "ext_auth", "api_keys"];
/// `auth.jwt`
pub(crate) const JWT: &[&str] = &[
    "issuers",
    "audiences",
    "algorithms",
    "leeway",
    "keys",
    "from",
    "required_claims",
    "forward_claims",
    "strip_token",
    "cache_size",
];
/// `auth.jwt.keys`
pub(crate) const JWT_KEYS: &[&str] = &["jwks", "files", "secret_env"];
/// `auth.jwt.keys.jwks`
pub(crate) const JWKS: &[&str] = &["url", "refresh", "min_refetch", "timeout"];
/// `auth.jwt.keys.files[i]`
pub(crate) const KEY_FILE: &[&str] = &["path", "kid"];
/// `auth.jwt.from[i]` in map form
pub(crate) const TOKEN_SOURCE: &[&str] = &["header", "cookie"];
/// `auth.jwt.required_claims[i]`
pub(crate) const REQUIRED_CLAIM: &[&str] = &["claim", "any_of"];
/// `auth.ext_auth`
pub(crate) const EXT_AUTH: &[&str] = &[
    "url",
    "timeout",
    "forward_headers",
    "upstream_headers",
    "cache",
    "on_error",
    "error_status",
];
/// `auth.ext_auth.cache`
pub(crate) const EXT_AUTH_CACHE: &[&str] = &["ttl", "key", "max_entries"];
/// `auth.api_keys`
pub(crate) const API_KEYS: &[&str] = &["header", "file", "env"];
/// `routes[i].rate_limit`
pub(crate) const RATE_LIMIT: &[&str] = &[
    "key",
    "limit",
    "period",
    "burst",
    "backend",
    "timeout",
    "on_backend_error",
    "breaker",
];
/// `routes[i].rate_limit.key` in map form
pub(crate) const RATE_KEY: &[&str] = &["header", "claim"];
/// `routes[i].lock`
pub(crate) const LOCK: &[&str] = &[
    "key", "backend", "ttl", "wait", "on_busy", "on_error", "timeout", "breaker",
];
/// `routes[i].lock.wait`
pub(crate) const LOCK_WAIT: &[&str] = &["attempts", "backoff"];
/// `routes[i].lock.on_busy`
pub(crate) const ON_BUSY: &[&str] = &["status", "retry_after"];
/// `rate_limit.breaker` / `lock.breaker`
pub(crate) const BREAKER: &[&str] = &["failures", "cooldown"];
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
    ("cors", CORS),
    ("auth", AUTH),
    ("jwt", JWT),
    ("jwt keys", JWT_KEYS),
    ("jwks", JWKS),
    ("key file", KEY_FILE),
    ("token source", TOKEN_SOURCE),
    ("required claim", REQUIRED_CLAIM),
    ("ext_auth", EXT_AUTH),
    ("ext_auth cache", EXT_AUTH_CACHE),
    ("api_keys", API_KEYS),
    ("rate_limit", RATE_LIMIT),
    ("rate key", RATE_KEY),
    ("lock", LOCK),
    ("lock wait", LOCK_WAIT),
    ("on_busy", ON_BUSY),
    ("breaker", BREAKER),
    ("cluster", CLUSTER),
    ("endpoint", ENDPOINT),
    ("upstream tls", UPSTREAM_TLS),
    ("pool", POOL),
    ("health_check", HEALTH_CHECK),
    ("outlier_detection", OUTLIER_DETECTION),
    ("retry_budget", RETRY_BUDGET),
];
