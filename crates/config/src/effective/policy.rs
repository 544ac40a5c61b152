//! The effective form of the route policies (`auth`, `rate_limit`, `lock`).

use serde_json::{json, Map, Value};

use crate::decode::policy::{FAIL_MODES, RATE_FALLBACKS};
use crate::model::{
    AuthConfig, BreakerConfig, LockBackendConfig, LockConfig, RateBackend, RateKey,
    RateLimitConfig, RouteAuth, TokenSource,
};
use crate::units::format_duration as dur;

fn word<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, t)| *t == v).map_or("?", |(w, _)| w)
}

fn breaker(b: &BreakerConfig) -> Value {
    json!({ "failures": b.failures, "cooldown": dur(b.cooldown) })
}

/// A route's `auth`, None when inherited.
pub(super) fn route_auth(a: &RouteAuth) -> Option<Value> {
    match a {
        RouteAuth::Inherit => None,
        RouteAuth::Public => Some(json!("public")),
        RouteAuth::Policy(p) => Some(auth(p)),
    }
}

/// An `auth` mapping.
pub(super) fn auth(a: &AuthConfig) -> Value {
    let mut v = Map::new();
    v.insert("optional".into(), json!(a.optional));
    if let Some(j) = &a.jwt {
        let mut keys = Map::new();
        if let Some(k) = &j.keys.jwks {
            keys.insert(
                "jwks".into(),
                json!({
                    "url": k.url,
                    "refresh": dur(k.refresh),
                    "min_refetch": dur(k.min_refetch),
                    "timeout": dur(k.timeout),
                }),
            );
        }
        if !j.keys.files.is_empty() {
            let files: Vec<Value> = j
                .keys
                .files
                .iter()
                .map(|f| {
                    let mut e = json!({ "path": f.path.display().to_string() });
                    if let Some(kid) = &f.kid {
                        e["kid"] = json!(kid);
                    }
                    e
                })
                .collect();
            keys.insert("files".into(), json!(files));
        }
        if let Some(env) = &j.keys.secret_env {
            keys.insert("secret_env".into(), json!(env));
        }
        let from: Vec<Value> = j
            .from
            .iter()
            .map(|s| match s {
                TokenSource::Bearer => json!("bearer"),
                TokenSource::Header(h) => json!({ "header": h }),
                TokenSource::Cookie(c) => json!({ "cookie": c }),
            })
            .collect();
        let forward: Map<String, Value> = j
            .forward_claims
            .iter()
            .map(|(c, h)| (c.clone(), json!(h)))
            .collect();
        v.insert(
            "jwt".into(),
            json!({
                "issuers": j.issuers,
                "audiences": j.audiences,
                "algorithms": j.algorithms.iter().map(|a| a.name()).collect::<Vec<_>>(),
                "leeway": dur(j.leeway),
                "keys": keys,
                "from": from,
                "required_claims": j.required_claims.iter()
                    .map(|c| json!({ "claim": c.claim, "any_of": c.any_of }))
                    .collect::<Vec<_>>(),
                "forward_claims": forward,
                "strip_token": j.strip_token,
                "cache_size": j.cache_size,
            }),
        );
    }
    if let Some(k) = &a.api_keys {
        let mut e = json!({ "header": k.header });
        if let Some(f) = &k.file {
            e["file"] = json!(f.display().to_string());
        }
        if let Some(env) = &k.env {
            e["env"] = json!(env);
        }
        v.insert("api_keys".into(), e);
    }
    if let Some(x) = &a.ext_auth {
        let mut e = json!({
            "url": x.url,
            "timeout": dur(x.timeout),
            "forward_headers": x.forward_headers,
            "upstream_headers": x.upstream_headers,
            "on_error": word(FAIL_MODES, x.on_error),
            "error_status": x.error_status,
        });
        if let Some(c) = &x.cache {
            e["cache"] = json!({ "ttl": dur(c.ttl), "key": c.key, "max_entries": c.max_entries });
        }
        v.insert("ext_auth".into(), e);
    }
    Value::Object(v)
}

/// A `rate_limit` mapping.
pub(super) fn rate_limit(r: &RateLimitConfig) -> Value {
    let key = match &r.key {
        RateKey::ClientIp => json!("client_ip"),
        RateKey::ApiKey => json!("api_key"),
        RateKey::Header(h) => json!({ "header": h }),
        RateKey::Claim(c) => json!({ "claim": c }),
    };
    let backend = match &r.backend {
        RateBackend::Local => json!("local"),
        RateBackend::Redis(url) => json!({ "redis": url }),
    };
    json!({
        "key": key,
        "limit": r.limit,
        "period": dur(r.period),
        "burst": r.burst,
        "backend": backend,
        "timeout": dur(r.timeout),
        "on_backend_error": word(RATE_FALLBACKS, r.on_backend_error),
        "breaker": breaker(&r.breaker),
    })
}

/// A `lock` mapping.
pub(super) fn lock(l: &LockConfig) -> Value {
    let backend = match &l.backend {
        LockBackendConfig::Local => json!("local"),
        LockBackendConfig::Memcached(a) => json!({ "memcached": a }),
        LockBackendConfig::Redis(url) => json!({ "redis": url }),
    };
    json!({
        "key": l.key,
        "backend": backend,
        "ttl": dur(l.ttl),
        "wait": { "attempts": l.wait.attempts, "backoff": dur(l.wait.backoff) },
        "on_busy": {
            "status": l.on_busy.status,
            "retry_after": dur(l.on_busy.retry_after.unwrap_or_default()),
        },
        "on_error": word(FAIL_MODES, l.on_error),
        "timeout": dur(l.timeout),
        "breaker": breaker(&l.breaker),
    })
}
