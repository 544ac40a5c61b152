//! Schema definitions of the route policies: `auth` (and `default_auth`), `rate_limit`, `lock`.

use serde_json::{json, Map, Value};

use super::{arr, obj, pos_int, r, s};

/// The policy `$defs`, merged into the schema's.
pub(super) fn defs() -> Map<String, Value> {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let headers = json!({ "type": "array", "items": { "$ref": "#/$defs/headerName" } });
    let fail_mode = json!({ "enum": ["closed", "open"] });
    let status = json!({ "type": "integer", "minimum": 400, "maximum": 599 });
    let algorithms: Vec<&str> = crate::model::JwtAlgorithm::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut m = Map::new();
    m.insert("auth".into(), obj("Authentication: the first configured method that finds a credential decides (JWT, then API key, then the external service).", &[], &[
        ("optional", json!({ "type": "boolean" }), "A request with no credential at all passes as anonymous. Default false."),
        ("jwt", r("jwt"), "Verify a JSON Web Token."),
        ("ext_auth", r("extAuth"), "Ask an external HTTP service."),
        ("api_keys", r("apiKeys"), "Static API keys, each with a name."),
    ]));
    m.insert("routeAuth".into(), json!({
        "description": "`public` (no authentication, even with a `default_auth`) or an auth policy.",
        "oneOf": [ { "const": "public" }, r("auth") ],
    }));
    m.insert("jwt".into(), obj("JWT verification: signature, exp/nbf with leeway, iss, aud, required claims.", &["algorithms", "keys"], &[
        ("issuers", strings.clone(), "Accepted `iss` values; empty: not checked."),
        ("audiences", strings.clone(), "Accepted `aud` values; empty: not checked."),
        ("algorithms", json!({ "type": "array", "items": { "enum": algorithms }, "minItems": 1 }), "Accepted `alg` values (never `none`)."),
        ("leeway", r("duration"), "Clock skew allowed on exp and nbf. Default 30s."),
        ("keys", r("jwtKeys"), "Where the verification keys come from."),
        ("from", json!({ "type": "array", "minItems": 1, "items": { "oneOf": [ { "const": "bearer" }, r("tokenSource") ] } }), "Where the token is looked for, in order. Default [bearer]."),
        ("required_claims", arr(r("requiredClaim"), 0), "Claims a valid token must have; lacking one is 403."),
        ("forward_claims", json!({ "type": "object", "additionalProperties": { "$ref": "#/$defs/headerName" } }), "`claim: header` pairs: claims sent upstream as headers."),
        ("strip_token", json!({ "type": "boolean" }), "Remove the token's header or cookie before proxying. Default false."),
        ("cache_size", json!({ "type": "integer", "minimum": 0 }), "Verified tokens remembered (a repeated token skips the signature check; exp still checked; re-verified every 5 minutes). Default 10000; 0 disables."),
    ]));
    m.insert(
        "jwtKeys".into(),
        obj(
            "JWT verification keys; at least one source.",
            &[],
            &[
                (
                    "jwks",
                    r("jwks"),
                    "A JWKS URL, refreshed in the background and served stale when it fails.",
                ),
                (
                    "files",
                    arr(r("keyFile"), 0),
                    "PEM public keys (RSA, EC or Ed25519).",
                ),
                (
                    "secret_env",
                    s(),
                    "Environment variable with the HS256 shared secret (at least 32 bytes).",
                ),
            ],
        ),
    );
    m.insert(
        "jwks".into(),
        obj(
            "A JWKS endpoint.",
            &["url"],
            &[
                ("url", s(), "http:// or https:// URL of the JWKS document."),
                (
                    "refresh",
                    r("duration"),
                    "Background refresh period. Default 5m.",
                ),
                (
                    "min_refetch",
                    r("duration"),
                    "At most one refetch per this for tokens naming an unknown kid. Default 30s.",
                ),
                ("timeout", r("duration"), "Bound on one fetch. Default 2s."),
            ],
        ),
    );
    m.insert(
        "keyFile".into(),
        obj(
            "A PEM public key file.",
            &["path"],
            &[
                (
                    "path",
                    s(),
                    "The PEM file (relative to the config file's directory).",
                ),
                (
                    "kid",
                    s(),
                    "Matched against the token's kid; without it the key matches any token.",
                ),
            ],
        ),
    );
    m.insert(
        "tokenSource".into(),
        obj(
            "A header or cookie holding the token.",
            &[],
            &[
                (
                    "header",
                    r("headerName"),
                    "The whole header value is the token.",
                ),
                ("cookie", s(), "The cookie's value is the token."),
            ],
        ),
    );
    m.insert("requiredClaim".into(), obj("A claim the token must carry.", &["claim"], &[
        ("claim", s(), "Claim name."),
        ("any_of", strings.clone(), "Accepted values (a string claim is split on spaces, like scope); empty: present is enough."),
    ]));
    m.insert("extAuth".into(), obj("External authorization service: 2xx allows, anything else is returned to the client.", &["url"], &[
        ("url", s(), "http:// URL; the request's path and query are appended to its path."),
        ("timeout", r("duration"), "Bound on one call. Default 200ms."),
        ("forward_headers", headers.clone(), "Request headers sent to the service. Default [authorization, cookie]."),
        ("upstream_headers", headers.clone(), "Headers of an allowing answer copied to the upstream request."),
        ("cache", r("extAuthCache"), "Reuse decisions for a short time."),
        ("on_error", fail_mode.clone(), "When the service fails or times out: closed (reject, default) or open (allow)."),
        ("error_status", status.clone(), "Status when failing closed. Default 503."),
    ]));
    m.insert(
        "extAuthCache".into(),
        obj(
            "Decision cache of the external service.",
            &["ttl"],
            &[
                (
                    "ttl",
                    r("duration"),
                    "How long an allow, 401 or 403 is reused.",
                ),
                (
                    "key",
                    headers.clone(),
                    "Request headers whose values (with method and path) key a decision.",
                ),
                (
                    "max_entries",
                    pos_int(),
                    "Most decisions kept. Default 10000.",
                ),
            ],
        ),
    );
    m.insert(
        "apiKeys".into(),
        obj(
            "Static API keys; a key's name shows in logs and metrics.",
            &[],
            &[
                (
                    "header",
                    r("headerName"),
                    "Header carrying the key. Default x-api-key.",
                ),
                (
                    "file",
                    s(),
                    "File with one `name: key` per line, # comments.",
                ),
                (
                    "env",
                    s(),
                    "Environment variable holding `name:key,name:key`.",
                ),
            ],
        ),
    );
    m.insert("rateLimit".into(), obj("Rate limit (GCRA): `limit` requests per `period` per key, `burst` at once.", &["limit", "period"], &[
        ("key", json!({ "oneOf": [ { "enum": ["client_ip", "api_key"] }, r("rateKey") ] }), "What is counted: client_ip (default), api_key, {header: NAME} or {claim: NAME}."),
        ("limit", pos_int(), "Requests per period, sustained."),
        ("period", r("duration"), "The period."),
        ("burst", pos_int(), "Requests allowed at once from a full bucket. Default: limit."),
        ("backend", json!({ "oneOf": [ { "const": "local" }, r("redisBackend") ] }), "local (per instance, default) or {redis: URL} (shared by every instance)."),
        ("timeout", r("duration"), "Bound on a Redis decision. Default 20ms."),
        ("on_backend_error", json!({ "enum": ["local", "allow", "deny"] }), "When Redis fails: local (count per instance, default), allow, or deny (429)."),
        ("breaker", r("breaker"), "Stop asking a failing backend for a while."),
    ]));
    m.insert(
        "rateKey".into(),
        obj(
            "A header or JWT claim the limit is counted by (absent: the client IP).",
            &[],
            &[
                ("header", r("headerName"), "Request header."),
                ("claim", s(), "Claim of the verified JWT."),
            ],
        ),
    );
    m.insert(
        "redisBackend".into(),
        obj(
            "A Redis server.",
            &["redis"],
            &[("redis", s(), "redis://host:port[/db]")],
        ),
    );
    m.insert(
        "lockBackend".into(),
        obj(
            "A shared lock server: exactly one of the keys.",
            &[],
            &[
                ("redis", s(), "redis://host:port[/db]"),
                (
                    "memcached",
                    s(),
                    "host:port of memcached 1.6+ (meta commands).",
                ),
            ],
        ),
    );
    m.insert("lock".into(), obj("At most one request in flight per key, e.g. one purchase per item; the lock is released when the response ends.", &["key", "backend"], &[
        ("key", s(), "Template with {path.P}, {query.Q}, {header.H}, {form.F} or {json.a.b} fields, e.g. buy/{form.item_id}."),
        ("backend", json!({ "oneOf": [ { "const": "local" }, r("lockBackend") ] }), "local (one instance), {memcached: host:port} or {redis: URL}."),
        ("ttl", r("duration"), "The key expires after this if a gateway dies holding it. Default 10s."),
        ("wait", r("lockWait"), "Retries while the lock is held."),
        ("on_busy", r("onBusy"), "The answer when the lock stays held."),
        ("on_error", fail_mode, "When the backend fails or is slower than timeout: closed (503, default) or open (proceed unlocked)."),
        ("timeout", r("duration"), "Bound on each backend call. Default 50ms."),
        ("breaker", r("breaker"), "Stop asking a failing backend for a while."),
    ]));
    m.insert(
        "lockWait".into(),
        obj(
            "Retries while a lock is held.",
            &[],
            &[
                (
                    "attempts",
                    json!({ "type": "integer", "minimum": 0 }),
                    "Retries after the first try. Default 3.",
                ),
                (
                    "backoff",
                    r("duration"),
                    "Pause before each retry (jittered). Default 20ms.",
                ),
            ],
        ),
    );
    m.insert(
        "onBusy".into(),
        obj(
            "The answer when a lock stays held.",
            &[],
            &[
                ("status", status, "Status. Default 503."),
                (
                    "retry_after",
                    r("duration"),
                    "Sent as Retry-After (whole seconds, rounded up). Default 1s; 0s: none.",
                ),
            ],
        ),
    );
    m.insert("breaker".into(), obj("Circuit breaker: consecutive failures open it for `cooldown`, then one probe goes through.", &[], &[
        ("failures", pos_int(), "Failures in a row that open it. Default 3."),
        ("cooldown", r("duration"), "How long it stays open. Default 2s."),
    ]));
    m
}
