//! `routes[i].auth`, `routes[i].rate_limit`, `routes[i].lock` and the root `default_auth`.

use std::time::Duration;

use super::{Decoder, Fields};
use crate::keys;
use crate::model::{
    ApiKeysConfig, AuthConfig, BreakerConfig, ClaimRequirement, ExtAuthCacheConfig, ExtAuthConfig,
    FailMode, JwksConfig, JwtAlgorithm, JwtConfig, JwtKeysConfig, KeyFileConfig, LockBackendConfig,
    LockConfig, LockWait, OnBusy, RateBackend, RateFallback, RateKey, RateLimitConfig, RouteAuth,
    TokenSource,
};
use crate::syntax;
use crate::yaml::{Node, Value};

/// `on_error` words.
pub(crate) const FAIL_MODES: &[(&str, FailMode)] =
    &[("closed", FailMode::Closed), ("open", FailMode::Open)];
/// `rate_limit.on_backend_error` words.
pub(crate) const RATE_FALLBACKS: &[(&str, RateFallback)] = &[
    ("local", RateFallback::Local),
    ("allow", RateFallback::Allow),
    ("deny", RateFallback::Deny),
];
/// Where a lock key's fields come from.
const LOCK_KEY_SOURCES: &[&str] = &["path", "query", "header", "form", "json"];

/// `routes[i].auth`: `public` or a policy.
pub(crate) fn route_auth(d: &mut Decoder, node: &Node, path: &str) -> RouteAuth {
    match &node.value {
        Value::Scalar(s) if s == "public" => RouteAuth::Public,
        Value::Scalar(_) => {
            d.expected(node, path, "`public` or an auth mapping");
            RouteAuth::Inherit
        }
        _ => auth(d, node, path).map_or(RouteAuth::Inherit, |a| RouteAuth::Policy(Box::new(a))),
    }
}

/// An `auth` mapping (a route's or `default_auth`).
pub(crate) fn auth(d: &mut Decoder, node: &Node, path: &str) -> Option<AuthConfig> {
    let f = d.map(node, path, keys::AUTH)?;
    let optional = f
        .get("optional")
        .and_then(|n| d.bool(n, &f.path("optional")))
        .unwrap_or(false);
    let jwt = f.get("jwt").and_then(|n| jwt(d, n, &f.path("jwt")));
    let ext_auth = f
        .get("ext_auth")
        .and_then(|n| ext_auth(d, n, &f.path("ext_auth")));
    let api_keys = f
        .get("api_keys")
        .and_then(|n| api_keys(d, n, &f.path("api_keys")));
    if f.get("jwt").is_none() && f.get("ext_auth").is_none() && f.get("api_keys").is_none() {
        d.error(
            path,
            node.mark,
            "no authentication method: set `jwt`, `api_keys` or `ext_auth` (or write `auth: public`)",
        );
        return None;
    }
    Some(AuthConfig {
        optional,
        jwt,
        ext_auth,
        api_keys,
    })
}

fn jwt(d: &mut Decoder, node: &Node, path: &str) -> Option<JwtConfig> {
    let f = d.map(node, path, keys::JWT)?;
    let algorithms = f.required(d, "algorithms").map(|n| {
        let p = f.path("algorithms");
        let algs = d.list(n, &p, |d, item, ip| {
            d.choice(item, ip, "JWT algorithm", JwtAlgorithm::ALL)
        });
        if matches!(&n.value, Value::Seq(items) if items.is_empty()) {
            d.error(&p, n.mark, "at least one algorithm is required");
        }
        algs
    })?;
    let keys_cfg = f
        .required(d, "keys")
        .and_then(|n| jwt_keys(d, n, &f.path("keys")))?;
    let hmac = algorithms.contains(&JwtAlgorithm::HS256);
    if hmac && keys_cfg.secret_env.is_none() {
        if let Some(n) = f.get("algorithms") {
            d.error(
                &f.path("algorithms"),
                n.mark,
                "HS256 needs `keys.secret_env` (the shared secret)",
            );
        }
    }
    let mut cfg = JwtConfig::new(algorithms, keys_cfg);
    cfg.issuers = strings(d, &f, "issuers");
    cfg.audiences = strings(d, &f, "audiences");
    if let Some(v) = f
        .get("leeway")
        .and_then(|n| d.duration(n, &f.path("leeway")))
    {
        cfg.leeway = v;
    }
    if let Some(n) = f.get("from") {
        let p = f.path("from");
        cfg.from = d.list(n, &p, token_source);
        if matches!(&n.value, Value::Seq(items) if items.is_empty()) {
            d.error(&p, n.mark, "at least one token source is required");
        }
    }
    if let Some(n) = f.get("required_claims") {
        cfg.required_claims = d.list(n, &f.path("required_claims"), |d, item, ip| {
            let c = d.map(item, ip, keys::REQUIRED_CLAIM)?;
            let claim = c
                .required(d, "claim")
                .and_then(|n| d.nonempty(n, &c.path("claim")))?;
            Some(ClaimRequirement {
                claim,
                any_of: strings(d, &c, "any_of"),
            })
        });
    }
    if let Some(n) = f.get("forward_claims") {
        let p = f.path("forward_claims");
        for e in d.free_map(n, &p).unwrap_or_default() {
            let ep = crate::path::child(&p, &e.key);
            if let Some(h) = d.check(&e.value, &ep, syntax::header_name) {
                cfg.forward_claims.push((e.key.clone(), h));
            }
        }
    }
    if let Some(v) = f
        .get("strip_token")
        .and_then(|n| d.bool(n, &f.path("strip_token")))
    {
        cfg.strip_token = v;
    }
    if let Some(v) = f
        .get("cache_size")
        .and_then(|n| d.int(n, &f.path("cache_size")))
    {
        cfg.cache_size = v;
    }
    Some(cfg)
}

fn jwt_keys(d: &mut Decoder, node: &Node, path: &str) -> Option<JwtKeysConfig> {
    let f = d.map(node, path, keys::JWT_KEYS)?;
    let jwks = f.get("jwks").and_then(|n| {
        let p = f.path("jwks");
        let j = d.map(n, &p, keys::JWKS)?;
        let url = j
            .required(d, "url")
            .and_then(|n| d.check(n, &j.path("url"), http_url))?;
        let mut cfg = JwksConfig::new(url);
        if let Some(v) = j
            .get("refresh")
            .and_then(|n| d.positive_duration(n, &j.path("refresh")))
        {
            cfg.refresh = v;
        }
        if let Some(v) = j
            .get("min_refetch")
            .and_then(|n| d.duration(n, &j.path("min_refetch")))
        {
            cfg.min_refetch = v;
        }
        if let Some(v) = j
            .get("timeout")
            .and_then(|n| d.positive_duration(n, &j.path("timeout")))
        {
            cfg.timeout = v;
        }
        Some(cfg)
    });
    let files = match f.get("files") {
        Some(n) => d.list(n, &f.path("files"), |d, item, ip| {
            let k = d.map(item, ip, keys::KEY_FILE)?;
            let path = k
                .required(d, "path")
                .and_then(|n| d.file(n, &k.path("path")))?;
            let kid = k.get("kid").and_then(|n| d.nonempty(n, &k.path("kid")));
            Some(KeyFileConfig { path, kid })
        }),
        None => Vec::new(),
    };
    let secret_env = f
        .get("secret_env")
        .and_then(|n| d.nonempty(n, &f.path("secret_env")));
    if jwks.is_none() && files.is_empty() && secret_env.is_none() {
        d.error(
            path,
            node.mark,
            "no key: set `jwks`, `files` or `secret_env`",
        );
        return None;
    }
    Some(JwtKeysConfig {
        jwks,
        files,
        secret_env,
    })
}

fn token_source(d: &mut Decoder, node: &Node, path: &str) -> Option<TokenSource> {
    if let Value::Scalar(s) = &node.value {
        if s == "bearer" {
            return Some(TokenSource::Bearer);
        }
        d.expected(node, path, "`bearer`, {header: NAME} or {cookie: NAME}");
        return None;
    }
    let f = d.map(node, path, keys::TOKEN_SOURCE)?;
    match (f.get("header"), f.get("cookie")) {
        (Some(h), None) => d
            .check(h, &f.path("header"), syntax::header_name)
            .map(TokenSource::Header),
        (None, Some(c)) => d.nonempty(c, &f.path("cookie")).map(TokenSource::Cookie),
        _ => {
            d.error(path, node.mark, "set exactly one of `header` or `cookie`");
            None
        }
    }
}

fn ext_auth(d: &mut Decoder, node: &Node, path: &str) -> Option<ExtAuthConfig> {
    let f = d.map(node, path, keys::EXT_AUTH)?;
    let url = f
        .required(d, "url")
        .and_then(|n| d.check(n, &f.path("url"), plain_http_url))?;
    let mut cfg = ExtAuthConfig::new(url);
    if let Some(v) = f
        .get("timeout")
        .and_then(|n| d.positive_duration(n, &f.path("timeout")))
    {
        cfg.timeout = v;
    }
    if f.get("forward_headers").is_some() {
        cfg.forward_headers = header_names(d, &f, "forward_headers");
    }
    cfg.upstream_headers = header_names(d, &f, "upstream_headers");
    cfg.cache = f.get("cache").and_then(|n| {
        let c = d.map(n, &f.path("cache"), keys::EXT_AUTH_CACHE)?;
        let ttl = c
            .required(d, "ttl")
            .and_then(|n| d.positive_duration(n, &c.path("ttl")))?;
        let key = header_names(d, &c, "key");
        let max_entries = c
            .get("max_entries")
            .and_then(|n| d.at_least_one(n, &c.path("max_entries")))
            .unwrap_or(10_000);
        Some(ExtAuthCacheConfig {
            ttl,
            key,
            max_entries,
        })
    });
    if let Some(v) = f
        .get("on_error")
        .and_then(|n| d.choice(n, &f.path("on_error"), "failure mode", FAIL_MODES))
    {
        cfg.on_error = v;
    }
    if let Some(v) = f
        .get("error_status")
        .and_then(|n| status(d, n, &f.path("error_status")))
    {
        cfg.error_status = v;
    }
    Some(cfg)
}

fn api_keys(d: &mut Decoder, node: &Node, path: &str) -> Option<ApiKeysConfig> {
    let f = d.map(node, path, keys::API_KEYS)?;
    let header = f
        .get("header")
        .and_then(|n| d.check(n, &f.path("header"), syntax::header_name))
        .unwrap_or_else(|| "x-api-key".to_string());
    let file = f.get("file").and_then(|n| d.file(n, &f.path("file")));
    let env = f.get("env").and_then(|n| d.nonempty(n, &f.path("env")));
    if f.get("file").is_none() && f.get("env").is_none() {
        d.error(path, node.mark, "no keys: set `file` or `env`");
        return None;
    }
    Some(ApiKeysConfig { header, file, env })
}

/// `routes[i].rate_limit`
pub(crate) fn rate_limit(d: &mut Decoder, node: &Node, path: &str) -> Option<RateLimitConfig> {
    let f = d.map(node, path, keys::RATE_LIMIT)?;
    let key = match f.get("key") {
        Some(n) => rate_key(d, n, &f.path("key"))?,
        None => RateKey::ClientIp,
    };
    let limit: u32 = f
        .required(d, "limit")
        .and_then(|n| d.at_least_one(n, &f.path("limit")))?;
    let period = f
        .required(d, "period")
        .and_then(|n| d.positive_duration(n, &f.path("period")))?;
    let mut cfg = RateLimitConfig::new(key, limit, period);
    if let Some(v) = f
        .get("burst")
        .and_then(|n| d.at_least_one(n, &f.path("burst")))
    {
        cfg.burst = v;
    }
    if let Some(n) = f.get("backend") {
        let p = f.path("backend");
        cfg.backend = match backend(d, n, &p, &["redis"])? {
            Backend::Local => RateBackend::Local,
            Backend::Redis(url) => RateBackend::Redis(url),
            Backend::Memcached(_) => return None,
        };
    }
    if let Some(v) = f
        .get("timeout")
        .and_then(|n| d.positive_duration(n, &f.path("timeout")))
    {
        cfg.timeout = v;
    }
    if let Some(v) = f
        .get("on_backend_error")
        .and_then(|n| d.choice(n, &f.path("on_backend_error"), "fallback", RATE_FALLBACKS))
    {
        cfg.on_backend_error = v;
    }
    if let Some(b) = f
        .get("breaker")
        .and_then(|n| breaker(d, n, &f.path("breaker")))
    {
        cfg.breaker = b;
    }
    Some(cfg)
}

fn rate_key(d: &mut Decoder, node: &Node, path: &str) -> Option<RateKey> {
    if let Value::Scalar(s) = &node.value {
        return match s.as_str() {
            "client_ip" => Some(RateKey::ClientIp),
            "api_key" => Some(RateKey::ApiKey),
            _ => {
                d.expected(
                    node,
                    path,
                    "`client_ip`, `api_key`, {header: NAME} or {claim: NAME}",
                );
                None
            }
        };
    }
    let f = d.map(node, path, keys::RATE_KEY)?;
    match (f.get("header"), f.get("claim")) {
        (Some(h), None) => d
            .check(h, &f.path("header"), syntax::header_name)
            .map(RateKey::Header),
        (None, Some(c)) => d.nonempty(c, &f.path("claim")).map(RateKey::Claim),
        _ => {
            d.error(path, node.mark, "set exactly one of `header` or `claim`");
            None
        }
    }
}

/// `routes[i].lock`
pub(crate) fn lock(d: &mut Decoder, node: &Node, path: &str) -> Option<LockConfig> {
    let f = d.map(node, path, keys::LOCK)?;
    let key = f
        .required(d, "key")
        .and_then(|n| d.check(n, &f.path("key"), lock_key))?;
    let backend = f
        .required(d, "backend")
        .and_then(|n| backend(d, n, &f.path("backend"), &["memcached", "redis"]))?;
    let backend = match backend {
        Backend::Local => LockBackendConfig::Local,
        Backend::Redis(url) => LockBackendConfig::Redis(url),
        Backend::Memcached(addr) => LockBackendConfig::Memcached(addr),
    };
    let mut cfg = LockConfig::new(key, backend);
    if let Some(v) = f
        .get("ttl")
        .and_then(|n| d.positive_duration(n, &f.path("ttl")))
    {
        if v < Duration::from_secs(1) {
            if let Some(n) = f.get("ttl") {
                d.error(
                    &f.path("ttl"),
                    n.mark,
                    "at least 1s (backends count whole seconds)",
                );
            }
        }
        cfg.ttl = v;
    }
    if let Some(n) = f.get("wait") {
        if let Some(w) = d.map(n, &f.path("wait"), keys::LOCK_WAIT) {
            let mut wait = LockWait::default();
            if let Some(v) = w
                .get("attempts")
                .and_then(|n| d.int(n, &w.path("attempts")))
            {
                wait.attempts = v;
            }
            if let Some(v) = w
                .get("backoff")
                .and_then(|n| d.duration(n, &w.path("backoff")))
            {
                wait.backoff = v;
            }
            cfg.wait = wait;
        }
    }
    if let Some(n) = f.get("on_busy") {
        if let Some(b) = d.map(n, &f.path("on_busy"), keys::ON_BUSY) {
            let mut on_busy = OnBusy::default();
            if let Some(v) = b
                .get("status")
                .and_then(|n| status(d, n, &b.path("status")))
            {
                on_busy.status = v;
            }
            if let Some(n) = b.get("retry_after") {
                on_busy.retry_after = d
                    .duration(n, &b.path("retry_after"))
                    .filter(|v| !v.is_zero());
            }
            cfg.on_busy = on_busy;
        }
    }
    if let Some(v) = f
        .get("on_error")
        .and_then(|n| d.choice(n, &f.path("on_error"), "failure mode", FAIL_MODES))
    {
        cfg.on_error = v;
    }
    if let Some(v) = f
        .get("timeout")
        .and_then(|n| d.positive_duration(n, &f.path("timeout")))
    {
        cfg.timeout = v;
    }
    if let Some(b) = f
        .get("breaker")
        .and_then(|n| breaker(d, n, &f.path("breaker")))
    {
        cfg.breaker = b;
    }
    Some(cfg)
}

/// A lock key template: literal text with `{source.field}` parts, e.g. `buy/{form.item_id}`.
fn lock_key(s: &str) -> Result<String, String> {
    let mut rest = s;
    let mut fields = 0;
    while let Some(open) = rest.find('{') {
        if rest[..open].contains('}') {
            return Err(format!("invalid lock key {s:?}: `}}` without `{{`"));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("invalid lock key {s:?}: `{{` without `}}`"));
        };
        let field = &after[..close];
        let (source, name) = field.split_once('.').unwrap_or((field, ""));
        if !LOCK_KEY_SOURCES.contains(&source) || name.is_empty() {
            return Err(format!(
                "invalid lock key field {{{field}}}: expected {{SOURCE.NAME}} with SOURCE one of {}",
                LOCK_KEY_SOURCES.join(", ")
            ));
        }
        fields += 1;
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("invalid lock key {s:?}: `}}` without `{{`"));
    }
    if fields == 0 {
        return Err(format!(
            "lock key {s:?} has no {{field}}: every request would share one lock"
        ));
    }
    Ok(s.to_string())
}

enum Backend {
    Local,
    Redis(String),
    Memcached(String),
}

/// `local`, `{redis: URL}` or `{memcached: host:port}` (`kinds` says which shared ones fit).
fn backend(d: &mut Decoder, node: &Node, path: &str, kinds: &[&str]) -> Option<Backend> {
    let what = {
        let mut w = vec!["`local`".to_string()];
        w.extend(kinds.iter().map(|k| format!("{{{k}: ...}}")));
        w.join(" or ")
    };
    if let Value::Scalar(s) = &node.value {
        if s == "local" {
            return Some(Backend::Local);
        }
        d.expected(node, path, &what);
        return None;
    }
    let Value::Map(entries) = &node.value else {
        d.expected(node, path, &what);
        return None;
    };
    let [entry] = entries.as_slice() else {
        d.expected(node, path, &what);
        return None;
    };
    let p = crate::path::child(path, &entry.key);
    match entry.key.as_str() {
        "redis" if kinds.contains(&"redis") => d
            .check(&entry.value, &p, |s| {
                if s.starts_with("redis://") {
                    Ok(s.to_string())
                } else {
                    Err(format!(
                        "invalid Redis URL {s:?} (expected redis://host:port[/db])"
                    ))
                }
            })
            .map(Backend::Redis),
        "memcached" if kinds.contains(&"memcached") => {
            d.check(&entry.value, &p, host_port).map(Backend::Memcached)
        }
        _ => {
            d.error(
                &p,
                entry.key_mark,
                format!("unknown backend `{}` (expected {what})", entry.key),
            );
            None
        }
    }
}

fn breaker(d: &mut Decoder, node: &Node, path: &str) -> Option<BreakerConfig> {
    let f = d.map(node, path, keys::BREAKER)?;
    let mut b = BreakerConfig::default();
    if let Some(v) = f
        .get("failures")
        .and_then(|n| d.at_least_one(n, &f.path("failures")))
    {
        b.failures = v;
    }
    if let Some(v) = f
        .get("cooldown")
        .and_then(|n| d.positive_duration(n, &f.path("cooldown")))
    {
        b.cooldown = v;
    }
    Some(b)
}

fn status(d: &mut Decoder, node: &Node, path: &str) -> Option<u16> {
    let v: u16 = d.int(node, path)?;
    if !(400..=599).contains(&v) {
        d.error(path, node.mark, format!("invalid status {v} (400-599)"));
        return None;
    }
    Some(v)
}

/// A list of strings under `key` (empty when absent).
fn strings(d: &mut Decoder, f: &Fields<'_>, key: &str) -> Vec<String> {
    match f.get(key) {
        Some(n) => d.list(n, &f.path(key), |d, item, ip| d.nonempty(item, ip)),
        None => Vec::new(),
    }
}

/// A list of header names under `key` (lowercased; empty when absent).
fn header_names(d: &mut Decoder, f: &Fields<'_>, key: &str) -> Vec<String> {
    match f.get(key) {
        Some(n) => d.list(n, &f.path(key), |d, item, ip| {
            d.check(item, ip, syntax::header_name)
        }),
        None => Vec::new(),
    }
}

fn http_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(s.to_string()),
        _ => Err(format!(
            "invalid URL {s:?} (expected http://host/... or https://host/...)"
        )),
    }
}

fn plain_http_url(s: &str) -> Result<String, String> {
    match s.strip_prefix("http://") {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(s.to_string()),
        _ => Err(format!(
            "invalid URL {s:?} (expected http://host:port/path)"
        )),
    }
}

fn host_port(s: &str) -> Result<String, String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(s.to_string())
        }
        _ => Err(format!("invalid address {s:?} (expected host:port)")),
    }
}
