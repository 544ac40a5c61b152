//! Route policies: `auth`, `default_auth`, `rate_limit`, `lock`.

use std::time::Duration;

use super::{ok, one_error, MINIMAL};
use crate::{
    FailMode, JwtAlgorithm, LockBackendConfig, RateBackend, RateFallback, RateKey, RouteAuth,
    TokenSource,
};

fn with(extra: &str) -> String {
    MINIMAL.replace(
        "    cluster: backend\n",
        &format!("    cluster: backend\n{extra}"),
    )
}

#[test]
fn auth_decodes_every_method_with_defaults() {
    let c = ok(&with(
        "    auth:
      jwt:
        algorithms: [RS256, ES256]
        audiences: [shop]
        keys:
          jwks: { url: https://id.example.com/jwks.json, refresh: 1m }
          files: [{ path: keys/old.pem, kid: old }]
        from: [bearer, { cookie: session }]
        required_claims: [{ claim: scope, any_of: [buy] }]
        forward_claims: { sub: X-User-Id }
      api_keys: { env: API_KEYS }
      ext_auth: { url: 'http://127.0.0.1:9000/check', cache: { ttl: 5s } }
",
    ));
    let RouteAuth::Policy(a) = &c.routes[0].auth else {
        panic!("no auth: {:?}", c.routes[0].auth);
    };
    assert!(!a.optional);
    let j = a.jwt.as_ref().unwrap();
    assert_eq!(j.algorithms, [JwtAlgorithm::RS256, JwtAlgorithm::ES256]);
    assert_eq!(j.leeway, Duration::from_secs(30));
    let jwks = j.keys.jwks.as_ref().unwrap();
    assert_eq!(
        (jwks.refresh, jwks.min_refetch),
        (Duration::from_secs(60), Duration::from_secs(30))
    );
    assert_eq!(
        j.keys.files[0].path,
        std::path::Path::new("/etc/sekisho/keys/old.pem")
    );
    assert_eq!(
        j.from,
        [TokenSource::Bearer, TokenSource::Cookie("session".into())]
    );
    assert_eq!(j.forward_claims, [("sub".into(), "x-user-id".into())]);
    assert_eq!(a.api_keys.as_ref().unwrap().header, "x-api-key");
    let x = a.ext_auth.as_ref().unwrap();
    assert_eq!(
        (x.on_error, x.error_status, x.timeout),
        (FailMode::Closed, 503, Duration::from_millis(200))
    );
    assert_eq!(x.cache.as_ref().unwrap().max_entries, 10_000);
    let eff = c.effective_json();
    assert_eq!(eff["routes"][0]["auth"]["jwt"]["algorithms"][1], "ES256");
    assert_eq!(eff["routes"][0]["auth"]["ext_auth"]["on_error"], "closed");
}

#[test]
fn default_auth_applies_unless_public() {
    let src = format!(
        "default_auth: {{ api_keys: {{ env: KEYS }} }}\n{}",
        MINIMAL.replace(
            "    cluster: backend\n",
            "    cluster: backend\n  - name: open\n    match: { path_prefix: /health }\n    cluster: backend\n    auth: public\n",
        )
    );
    let c = ok(&src);
    assert!(c.default_auth.is_some());
    assert_eq!(c.routes[0].auth, RouteAuth::Inherit);
    assert_eq!(c.routes[1].auth, RouteAuth::Public);
    assert_eq!(c.effective_json()["routes"][1]["auth"], "public");
}

#[test]
fn auth_errors_name_their_place() {
    one_error(
        &with("    auth: { optional: true }\n"),
        "routes[0].auth",
        7,
        "no authentication method",
    );
    one_error(
        &with("    auth: nobody\n"),
        "routes[0].auth",
        7,
        "`public` or an auth mapping",
    );
    one_error(
        &with("    auth:\n      jwt: { algorithms: [none], keys: { secret_env: S } }\n"),
        "routes[0].auth.jwt.algorithms[0]",
        8,
        "invalid JWT algorithm",
    );
    one_error(
        &with(
            "    auth:\n      jwt: { algorithms: [HS256], keys: { files: [{ path: k.pem }] } }\n",
        ),
        "routes[0].auth.jwt.algorithms",
        8,
        "secret_env",
    );
    one_error(
        &with("    auth:\n      jwt: { algorithms: [RS256], keys: {} }\n"),
        "routes[0].auth.jwt.keys",
        8,
        "no key",
    );
    one_error(
        &with("    auth:\n      ext_auth: { url: 'https://auth/check' }\n"),
        "routes[0].auth.ext_auth.url",
        8,
        "http://",
    );
    one_error(
        &with("    auth:\n      jwt: { algorithms: [RS256], keys: { secret_env: S }, from: [{ header: a, cookie: b }] }\n"),
        "routes[0].auth.jwt.from[0]",
        8,
        "exactly one",
    );
}

#[test]
fn rate_limit_decodes_and_checks_its_key() {
    let c = ok(&with(
        "    rate_limit: { key: { header: X-Tenant }, limit: 100, period: 1s, backend: { redis: 'redis://127.0.0.1:6379' }, on_backend_error: deny }\n",
    ));
    let r = c.routes[0].rate_limit.as_ref().unwrap();
    assert_eq!(r.key, RateKey::Header("x-tenant".into()));
    assert_eq!((r.limit, r.burst), (100, 100));
    assert_eq!(
        r.backend,
        RateBackend::Redis("redis://127.0.0.1:6379".into())
    );
    assert_eq!(r.on_backend_error, RateFallback::Deny);
    assert_eq!(r.timeout, Duration::from_millis(20));
    assert_eq!(
        c.effective_json()["routes"][0]["rate_limit"]["backend"]["redis"],
        "redis://127.0.0.1:6379"
    );

    one_error(
        &with("    rate_limit: { limit: 0, period: 1s }\n"),
        "routes[0].rate_limit.limit",
        7,
        "at least 1",
    );
    one_error(
        &with("    rate_limit: { limit: 5, period: 1s, backend: { memcached: 'a:1' } }\n"),
        "routes[0].rate_limit.backend.memcached",
        7,
        "unknown backend",
    );
    one_error(
        &with("    rate_limit: { key: { claim: sub }, limit: 5, period: 1s }\n"),
        "routes[0].rate_limit.key",
        7,
        "needs `jwt` authentication",
    );
    one_error(
        &with("    rate_limit: { key: api_key, limit: 5, period: 1s }\n"),
        "routes[0].rate_limit.key",
        7,
        "needs `api_keys` authentication",
    );
}

#[test]
fn lock_decodes_and_checks_its_template() {
    let c = ok(&with(
        "    lock:\n      key: 'buy/{form.item_id}'\n      backend: { memcached: '127.0.0.1:11211' }\n      wait: { attempts: 5 }\n      on_busy: { status: 409, retry_after: 0s }\n",
    ));
    let l = c.routes[0].lock.as_ref().unwrap();
    assert_eq!(l.key, "buy/{form.item_id}");
    assert_eq!(
        l.backend,
        LockBackendConfig::Memcached("127.0.0.1:11211".into())
    );
    assert_eq!(
        (l.ttl, l.wait.attempts, l.wait.backoff),
        (Duration::from_secs(10), 5, Duration::from_millis(20))
    );
    assert_eq!((l.on_busy.status, l.on_busy.retry_after), (409, None));
    assert_eq!(l.on_error, FailMode::Closed);
    let c = ok(&with(
        "    lock: { key: 'buy/{path.id}', backend: local }\n",
    ));
    assert_eq!(
        c.routes[0].lock.as_ref().unwrap().backend,
        LockBackendConfig::Local
    );

    one_error(
        &with("    lock: { key: buy, backend: local }\n"),
        "routes[0].lock.key",
        7,
        "has no {field}",
    );
    one_error(
        &with("    lock: { key: 'buy/{body.id}', backend: local }\n"),
        "routes[0].lock.key",
        7,
        "SOURCE one of",
    );
    one_error(
        &with("    lock: { key: 'buy/{form.id', backend: local }\n"),
        "routes[0].lock.key",
        7,
        "without",
    );
    one_error(
        &with("    lock: { key: 'buy/{form.id}', backend: { redis: 'http://x' } }\n"),
        "routes[0].lock.backend.redis",
        7,
        "Redis URL",
    );
    one_error(
        &with("    lock: { key: 'buy/{form.id}', backend: local, ttl: 10ms }\n"),
        "routes[0].lock.ttl",
        7,
        "at least 1s",
    );
}
