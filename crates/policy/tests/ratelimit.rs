//! Rate limits: local GCRA, and a global limit shared through a real Redis, including Redis
//! dying mid-test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Req;
use http::StatusCode;
use sekisho_policy::config::{RateBackend, RateFallback, RateKey, RateLimitConfig};
use sekisho_policy::RateLimiter;
use sekisho_test_support::redis::Redis;

fn redis_config(url: String, limit: u32) -> RateLimitConfig {
    let mut cfg = RateLimitConfig::new(
        RateKey::Header("x-tenant".into()),
        limit,
        Duration::from_secs(3600),
    );
    cfg.backend = RateBackend::Redis(url);
    // Generous on a loaded VM; the outage test asserts the bound it sets.
    cfg.timeout = Duration::from_millis(300);
    cfg
}

#[tokio::test]
async fn local_gcra_exact_with_headers() {
    let l = RateLimiter::new(
        "r",
        &RateLimitConfig::new(RateKey::ClientIp, 5, Duration::from_secs(3600)),
    )
    .unwrap();
    let req = Req::get("/");
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let ok = l.check(&req.view(), None).await.unwrap();
        assert_eq!(ok.headers.get("ratelimit-limit").unwrap(), "5");
        remaining.push(
            ok.headers
                .get("ratelimit-remaining")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);
    let r = l.check(&req.view(), None).await.unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(r.headers.get("retry-after").unwrap(), "720"); // one request per 720 s
    assert_eq!(l.counters().allowed, 5);
    assert_eq!(l.counters().limited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_exact_across_two_instances() {
    let redis = Redis::start();
    let a = Arc::new(RateLimiter::new("shop", &redis_config(redis.url(), 25)).unwrap());
    let b = Arc::new(RateLimiter::new("shop", &redis_config(redis.url(), 25)).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            let req = Req::get("/").header("x-tenant", "t1");
            l.check(&req.view(), None).await.is_ok()
        });
    }
    let mut allowed = 0;
    while let Some(r) = tasks.join_next().await {
        allowed += usize::from(r.unwrap());
    }
    assert_eq!(allowed, 25, "exactly the limit across both instances");
    let (ca, cb) = (a.counters(), b.counters());
    assert_eq!(ca.backend_errors + cb.backend_errors, 0);
    assert_eq!(ca.allowed + cb.allowed, 25);
    // Another tenant has its own bucket.
    let req = Req::get("/").header("x-tenant", "t2");
    assert!(a.check(&req.view(), None).await.is_ok());
}

#[tokio::test]
async fn redis_stopped_decides_fast_and_falls_back_to_local() {
    let mut redis = Redis::start();
    let mut cfg = redis_config(redis.url(), 3);
    cfg.timeout = Duration::from_millis(20);
    let l = RateLimiter::new("r", &cfg).unwrap();
    let req = Req::get("/").header("x-tenant", "t");
    assert!(l.check(&req.view(), None).await.is_ok());
    // On a loaded VM the first call may miss the 20 ms bound and be counted locally instead.
    let warm_local = l.counters().fallbacks;
    redis.stop();
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        outcomes.push(l.check(&req.view(), None).await.is_ok());
        // 20 ms bound plus scheduling slack on a shared VM.
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "decision took {:?}",
            t.elapsed()
        );
    }
    // Fallback: the same limit counted locally (3 fresh per instance), then 429.
    let allowed = outcomes.iter().filter(|o| **o).count() as u64;
    assert_eq!(allowed + warm_local, 3, "{outcomes:?}");
    let c = l.counters();
    assert!(l.breaker_open(), "circuit opened");
    assert!(c.breaker_skips > 0, "{c:?}");
    assert!(
        c.backend_errors <= 4,
        "a dead Redis is not called per request: {c:?}"
    );
    assert_eq!(c.fallbacks, 20 + warm_local);
}

#[tokio::test]
async fn redis_frozen_bounded_and_fail_closed_or_open() {
    let redis = Redis::start();
    let mut deny = redis_config(redis.url(), 100);
    deny.timeout = Duration::from_millis(20);
    deny.on_backend_error = RateFallback::Deny;
    let mut allow = deny.clone();
    allow.on_backend_error = RateFallback::Allow;
    let deny = RateLimiter::new("d", &deny).unwrap();
    let allow = RateLimiter::new("a", &allow).unwrap();
    let req = Req::get("/").header("x-tenant", "t");
    // Warm the pools; on a loaded VM a first call may miss the 20 ms bound, which is fine here.
    let _ = deny.check(&req.view(), None).await;
    let _ = allow.check(&req.view(), None).await;
    redis.pause(); // accepts connections, answers nothing: the slow-Redis case
    for _ in 0..10 {
        let t = Instant::now();
        let r = deny.check(&req.view(), None).await.unwrap_err();
        assert_eq!(
            (r.status, r.reason),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limit_unavailable")
        );
        assert!(allow.check(&req.view(), None).await.is_ok());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "took {:?}",
            t.elapsed()
        );
    }
    redis.resume();
}
