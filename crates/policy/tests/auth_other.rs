//! External auth against a real HTTP service on loopback, and API keys from a file and env.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Req, TestServer};
use http::StatusCode;
use sekisho_policy::config::{
    ApiKeysConfig, AuthConfig, ExtAuthCacheConfig, ExtAuthConfig, FailMode,
};
use sekisho_policy::Authenticator;

async fn ext(server: &TestServer, cache: bool, on_error: FailMode) -> Authenticator {
    let mut cfg = ExtAuthConfig::new(format!("http://{}/check", server.addr));
    cfg.upstream_headers = vec!["x-user-id".into()];
    cfg.timeout = Duration::from_millis(200);
    cfg.on_error = on_error;
    if cache {
        cfg.cache = Some(ExtAuthCacheConfig {
            ttl: Duration::from_secs(30),
            key: vec!["authorization".into()],
            max_entries: 100,
        });
    }
    Authenticator::new(&AuthConfig {
        ext_auth: Some(cfg),
        ..AuthConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn ext_auth_allows_denies_and_forwards() {
    let mut allow = Answer::ok("");
    allow.headers.push(("x-user-id", "u-17".into()));
    let server = TestServer::start(allow).await;
    let a = ext(&server, false, FailMode::Closed).await;
    let req = Req::get("/v1/orders?page=2")
        .header("authorization", "Bearer abc")
        .header("x-user-id", "spoofed")
        .header("x-secret", "not forwarded");
    let ok = a.check(&req.view()).await.unwrap();
    let mut upstream = req.headers.clone();
    ok.apply(&mut upstream);
    assert_eq!(
        upstream.get_all("x-user-id").iter().collect::<Vec<_>>(),
        vec!["u-17"]
    );
    {
        let seen = server.seen.lock().unwrap();
        let (line, headers) = seen.last().unwrap();
        assert_eq!(line, "GET /check/v1/orders?page=2");
        assert_eq!(headers.get("authorization").unwrap(), "Bearer abc");
        assert!(headers.get("x-secret").is_none());
    }

    // A denial is returned to the client as the service sent it.
    server.set(Answer {
        status: StatusCode::FORBIDDEN,
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-reason", "suspended".into()),
        ],
        body: r#"{"error":"suspended"}"#.into(),
        delay: Duration::ZERO,
    });
    let r = a.check(&req.view()).await.unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::FORBIDDEN, "ext_auth_denied")
    );
    assert_eq!(r.headers.get("x-reason").unwrap(), "suspended");
    assert_eq!(r.body.as_deref(), Some(&br#"{"error":"suspended"}"#[..]));
    assert_eq!(a.failures_for("ext_auth_denied"), 1);
}

#[tokio::test]
async fn ext_auth_timeout_fails_closed_by_default_or_open_when_asked() {
    let mut slow = Answer::ok("");
    slow.delay = Duration::from_secs(3);
    let server = TestServer::start(slow).await;
    let closed = ext(&server, false, FailMode::Closed).await;
    let t = Instant::now();
    let r = closed.check(&Req::get("/").view()).await.unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::SERVICE_UNAVAILABLE, "ext_auth_unavailable")
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    let open = ext(&server, false, FailMode::Open).await;
    assert!(open.check(&Req::get("/").view()).await.is_ok());
    // A service that is down entirely fails the same way.
    server.stop();
    let r = closed.check(&Req::get("/").view()).await.unwrap_err();
    assert_eq!(r.reason, "ext_auth_unavailable");
}

#[tokio::test]
async fn ext_auth_decisions_are_cached_by_key() {
    let server = TestServer::start(Answer::ok("")).await;
    let a = ext(&server, true, FailMode::Closed).await;
    let alice = Req::get("/x").header("authorization", "Bearer alice");
    for _ in 0..5 {
        assert!(a.check(&alice.view()).await.is_ok());
    }
    assert_eq!(server.hits(), 1, "one call for five identical requests");
    // Another key is asked separately; a cached allow survives the service going away.
    let bob = Req::get("/x").header("authorization", "Bearer bob");
    assert!(a.check(&bob.view()).await.is_ok());
    assert_eq!(server.hits(), 2);
    server.stop();
    assert!(a.check(&alice.view()).await.is_ok());
}

/// An ext auth with a cache, `forward_headers` left at `[authorization, cookie]` and the given
/// extra `cache.key` headers.
async fn cached_ext(server: &TestServer, key: &[&str]) -> Authenticator {
    let mut cfg = ExtAuthConfig::new(format!("http://{}/check", server.addr));
    cfg.upstream_headers = vec!["x-user-id".into()];
    cfg.cache = Some(ExtAuthCacheConfig {
        ttl: Duration::from_secs(30),
        key: key.iter().map(|k| k.to_string()).collect(),
        max_entries: 100,
    });
    Authenticator::new(&AuthConfig {
        ext_auth: Some(cfg),
        ..AuthConfig::default()
    })
    .await
    .unwrap()
}

fn allow_as(user: &str) -> Answer {
    let mut a = Answer::ok("");
    a.headers.push(("x-user-id", user.into()));
    a
}

fn user_id(a: &sekisho_policy::AuthAllow) -> Option<String> {
    let mut h = http::HeaderMap::new();
    a.apply(&mut h);
    h.get("x-user-id").map(|v| v.to_str().unwrap().to_string())
}

/// Regression: with `cache: { ttl }` and no `key`, the decision was keyed by method and path
/// alone, so alice's allow (and her x-user-id) answered every later caller of the path,
/// anonymous ones included.
#[tokio::test]
async fn ext_auth_cache_without_key_never_shares_a_decision() {
    let server = TestServer::start(allow_as("alice")).await;
    let a = cached_ext(&server, &[]).await;
    let alice = Req::get("/orders").header("authorization", "Bearer alice");
    let ok = a.check(&alice.view()).await.unwrap();
    assert_eq!(user_id(&ok).as_deref(), Some("alice"));

    // The service refuses anonymous callers: the cache must ask it, not reuse alice's allow.
    server.set(Answer {
        status: StatusCode::UNAUTHORIZED,
        headers: Vec::new(),
        body: String::new(),
        delay: Duration::ZERO,
    });
    let r = a.check(&Req::get("/orders").view()).await.unwrap_err();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.hits(), 2, "the anonymous request was asked about");

    // Bob is asked about too and gets his own identity.
    server.set(allow_as("bob"));
    let bob = Req::get("/orders").header("authorization", "Bearer bob");
    let ok = a.check(&bob.view()).await.unwrap();
    assert_eq!(user_id(&ok).as_deref(), Some("bob"));
    assert_eq!(server.hits(), 3);
    // Alice's decision is still cached as hers.
    let ok = a.check(&alice.view()).await.unwrap();
    assert_eq!(user_id(&ok).as_deref(), Some("alice"));
    assert_eq!(server.hits(), 3);
}

/// Regression: `cache.key: [authorization]` while clients authenticate with a session cookie
/// (forwarded by default) keyed every cookie user to the same empty authorization.
#[tokio::test]
async fn ext_auth_cache_keys_by_forwarded_cookie_even_when_key_names_authorization() {
    let server = TestServer::start(allow_as("carol")).await;
    let a = cached_ext(&server, &["authorization"]).await;
    let carol = Req::get("/orders").header("cookie", "session=carol");
    assert_eq!(
        user_id(&a.check(&carol.view()).await.unwrap()).as_deref(),
        Some("carol")
    );
    server.set(allow_as("dave"));
    let dave = Req::get("/orders").header("cookie", "session=dave");
    assert_eq!(
        user_id(&a.check(&dave.view()).await.unwrap()).as_deref(),
        Some("dave")
    );
    assert_eq!(server.hits(), 2);
    // Repeats come from the cache, each with its own identity.
    for (req, who) in [(&carol, "carol"), (&dave, "dave")] {
        assert_eq!(
            user_id(&a.check(&req.view()).await.unwrap()).as_deref(),
            Some(who)
        );
    }
    assert_eq!(server.hits(), 2);
    // An extra `key` header still splits the cache further.
    let a = cached_ext(&server, &["x-tenant"]).await;
    let before = server.hits();
    for tenant in ["t1", "t2", "t1"] {
        let req = Req::get("/orders")
            .header("cookie", "session=dave")
            .header("x-tenant", tenant);
        assert!(a.check(&req.view()).await.is_ok());
    }
    assert_eq!(server.hits() - before, 2, "one call per tenant");
}

#[tokio::test]
async fn api_keys_from_file_and_env() {
    let (_dir, path) = sekisho_test_support::write_temp(
        "keys.txt",
        "# name: key\nmobile-app: k-mobile-0123456789abcdef\n\npartner: k-partner-0123456789abcdef\n",
    );
    std::env::set_var("SEKISHO_TEST_API_KEYS", "batch:k-batch-0123456789abcdef");
    let a = Authenticator::new(&AuthConfig {
        api_keys: Some(ApiKeysConfig {
            header: "x-api-key".into(),
            file: Some(path),
            env: Some("SEKISHO_TEST_API_KEYS".into()),
        }),
        ..AuthConfig::default()
    })
    .await
    .unwrap();
    for (key, name) in [
        ("k-mobile-0123456789abcdef", "mobile-app"),
        ("k-partner-0123456789abcdef", "partner"),
        ("k-batch-0123456789abcdef", "batch"),
    ] {
        let req = Req::get("/").header("x-api-key", key);
        let ok = a.check(&req.view()).await.unwrap();
        assert_eq!(
            ok.identity.as_ref().unwrap().api_key_name.as_deref(),
            Some(name)
        );
        let mut upstream = req.headers.clone();
        ok.apply(&mut upstream);
        assert!(
            upstream.get("x-api-key").is_none(),
            "the key is not sent upstream"
        );
    }
    let r = a
        .check(&Req::get("/").header("x-api-key", "nope").view())
        .await
        .unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
    assert!(r.headers.get("www-authenticate").is_some());
    let r = a.check(&Req::get("/").view()).await.unwrap_err();
    assert_eq!(r.reason, "missing_credentials");
    assert_eq!(a.failures_for("invalid_api_key"), 1);
    assert_eq!(a.allowed(), 3);
    assert_eq!(
        a.stats().api_key_requests(),
        [("mobile-app", 1), ("partner", 1), ("batch", 1)]
    );
    // Another caller (a second route sharing this authenticator) counts on its own.
    let other = a.new_stats();
    let req = Req::get("/").header("x-api-key", "k-batch-0123456789abcdef");
    assert!(a.check_counted(&req.view(), &other).await.is_ok());
    let r = a.check_counted(&Req::get("/").view(), &other).await;
    assert_eq!(r.unwrap_err().reason, "missing_credentials");
    assert_eq!(
        other.api_key_requests(),
        [("mobile-app", 0), ("partner", 0), ("batch", 1)]
    );
    assert_eq!(
        (other.allowed(), other.failures_for("missing_credentials")),
        (1, 1)
    );
    assert_eq!((a.allowed(), a.failures_for("missing_credentials")), (3, 1));
}
