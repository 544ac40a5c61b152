//! Concurrency locks against real memcached and Redis: two independent policy instances stand
//! in for two gateway processes sharing the lock server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Req;
use http::StatusCode;
use sekisho_policy::config::{FailMode, LockBackendConfig, LockConfig, LockWait};
use sekisho_policy::LockPolicy;
use sekisho_test_support::memcached::Memcached;
use sekisho_test_support::redis::Redis;

fn config(backend: LockBackendConfig) -> LockConfig {
    let mut cfg = LockConfig::new("buy/{query.item_id}", backend);
    cfg.wait = LockWait {
        attempts: 3,
        backoff: Duration::from_millis(5),
    };
    // Generous for a loaded 2-core VM; the failure tests set their own.
    cfg.timeout = Duration::from_millis(500);
    cfg
}

/// 100 concurrent purchases of one item through two "gateways": never two holders at once,
/// and every attempt either held the lock or got the busy answer.
async fn never_two_holders(backend: LockBackendConfig) {
    let gateways = [
        Arc::new(LockPolicy::new(&config(backend.clone())).unwrap()),
        Arc::new(LockPolicy::new(&config(backend)).unwrap()),
    ];
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let policy = gateways[i % 2].clone();
        let (inside, max_inside) = (inside.clone(), max_inside.clone());
        tasks.spawn(async move {
            let req = Req::get("/buy?item_id=42");
            match policy.acquire(&req.view()).await {
                Ok(Some(guard)) => {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max_inside.fetch_max(now, Ordering::SeqCst);
                    // The "upstream" works for a moment while holding the lock.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(guard);
                    "held"
                }
                Ok(None) => "unlocked",
                Err(r)
                    if r.status == StatusCode::SERVICE_UNAVAILABLE && r.reason == "lock_busy" =>
                {
                    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
                    "busy"
                }
                Err(r) => panic!("unexpected rejection {r:?}"),
            }
        });
    }
    let (mut held, mut busy) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            "held" => held += 1,
            "busy" => busy += 1,
            other => panic!("attempt ended {other}"),
        }
    }
    assert_eq!(max_inside.load(Ordering::SeqCst), 1, "two holders at once");
    assert_eq!(held + busy, 100);
    assert!(held >= 1);
    let c0 = gateways[0].counters();
    let c1 = gateways[1].counters();
    assert_eq!(c0.acquired + c1.acquired, held);
    assert_eq!(c0.backend_errors + c1.backend_errors, 0);

    // Every guard was dropped: releases run in the background; the key frees up.
    let free = sekisho_test_support::eventually(Duration::from_secs(5), || async {
        match gateways[0].acquire_key("buy/42".into()).await {
            Ok(Some(g)) => g.release().await,
            _ => false,
        }
    })
    .await;
    assert!(free, "lock released after the guards dropped");
}

/// A holder whose lock expired must not delete the next holder's lock.
async fn only_holder_releases(backend: LockBackendConfig) {
    let mut cfg = config(backend);
    cfg.ttl = Duration::from_secs(1);
    cfg.wait.attempts = 0;
    let a = LockPolicy::new(&cfg).unwrap();
    let b = LockPolicy::new(&cfg).unwrap();
    let stale = a.acquire_key("buy/7".into()).await.unwrap().unwrap();
    assert_eq!(
        b.acquire_key("buy/7".into()).await.unwrap_err().reason,
        "lock_busy"
    );
    // memcached TTLs are whole seconds and expire on second boundaries: allow up to ~3 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    let newer = loop {
        if let Ok(Some(g)) = b.acquire_key("buy/7".into()).await {
            break Some(g);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let got = newer.is_some();
    assert!(got, "the expired lock was taken by b");
    assert!(!stale.release().await, "the stale token must not release");
    assert_eq!(a.counters().release_lost, 1);
    assert_eq!(
        a.acquire_key("buy/7".into()).await.unwrap_err().reason,
        "lock_busy",
        "b still holds it"
    );
    assert!(newer.unwrap().release().await);
    assert!(
        a.acquire_key("buy/7".into())
            .await
            .unwrap()
            .unwrap()
            .release()
            .await
    );
}

async fn server_dies(backend: LockBackendConfig, stop: impl FnOnce()) {
    let mut closed = config(backend.clone());
    closed.timeout = Duration::from_millis(50);
    let mut open = closed.clone();
    open.on_error = FailMode::Open;
    let closed = LockPolicy::new(&closed).unwrap();
    let open = LockPolicy::new(&open).unwrap();
    // Warm both pools (a first call may miss 50 ms on a loaded VM; that is fine), then kill.
    if let Ok(Some(g)) = closed.acquire_key("warm/1".into()).await {
        g.release().await;
    }
    if let Ok(Some(g)) = open.acquire_key("warm/2".into()).await {
        g.release().await;
    }
    stop();
    for _ in 0..10 {
        let t = Instant::now();
        let r = closed.acquire_key("buy/9".into()).await.unwrap_err();
        assert_eq!(
            (r.status, r.reason),
            (StatusCode::SERVICE_UNAVAILABLE, "lock_unavailable")
        );
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "closed decision took {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        assert!(
            open.acquire_key("buy/9".into()).await.unwrap().is_none(),
            "fail open proceeds unlocked"
        );
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "open decision took {:?}",
            t.elapsed()
        );
    }
    assert!(closed.counters().failed_closed >= 10);
    assert!(open.counters().failed_open >= 10);
    assert!(closed.counters().backend_errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached_never_two_holders() {
    let mc = Memcached::start();
    never_two_holders(LockBackendConfig::Memcached(mc.addr().to_string())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_never_two_holders() {
    let redis = Redis::start();
    never_two_holders(LockBackendConfig::Redis(redis.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_never_two_holders() {
    // One instance only: both "gateways" would have separate tables, so use one policy twice.
    let policy = Arc::new(LockPolicy::new(&config(LockBackendConfig::Local)).unwrap());
    let g = policy.acquire_key("buy/1".into()).await.unwrap().unwrap();
    assert_eq!(
        policy.acquire_key("buy/1".into()).await.unwrap_err().reason,
        "lock_busy"
    );
    assert!(g.release().await);
    assert!(policy.acquire_key("buy/1".into()).await.unwrap().is_some());
}

#[tokio::test]
async fn memcached_only_holder_releases() {
    let mc = Memcached::start();
    only_holder_releases(LockBackendConfig::Memcached(mc.addr().to_string())).await;
}

#[tokio::test]
async fn redis_only_holder_releases() {
    let redis = Redis::start();
    only_holder_releases(LockBackendConfig::Redis(redis.url())).await;
}

#[tokio::test]
async fn memcached_killed_fails_per_config_within_bound() {
    let mut mc = Memcached::start();
    let addr = mc.addr().to_string();
    server_dies(LockBackendConfig::Memcached(addr), || mc.stop()).await;
}

#[tokio::test]
async fn redis_killed_fails_per_config_within_bound() {
    let mut redis = Redis::start();
    let url = redis.url();
    server_dies(LockBackendConfig::Redis(url), || redis.stop()).await;
}

#[tokio::test]
async fn redis_frozen_fails_within_timeout() {
    let redis = Redis::start();
    let mut cfg = config(LockBackendConfig::Redis(redis.url()));
    cfg.timeout = Duration::from_millis(50);
    let p = LockPolicy::new(&cfg).unwrap();
    if let Ok(Some(g)) = p.acquire_key("warm".into()).await {
        g.release().await;
    }
    redis.pause();
    let t = Instant::now();
    assert_eq!(
        p.acquire_key("buy/1".into()).await.unwrap_err().reason,
        "lock_unavailable"
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    redis.resume();
}

#[tokio::test]
async fn missing_key_field_is_400_and_body_keys_work() {
    let p = LockPolicy::new(&LockConfig::new(
        "buy/{form.item_id}",
        LockBackendConfig::Local,
    ))
    .unwrap();
    assert!(p.needs_body());
    let req = Req::get("/buy");
    let mut view = req.view();
    let r = p.acquire(&view).await.unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::BAD_REQUEST, "lock_key_missing")
    );
    view.body = Some(b"item_id=5&qty=1");
    let g = p.acquire(&view).await.unwrap().unwrap();
    assert_eq!(g.key(), "buy/5");
    assert_eq!(p.counters().bad_request, 1);
}

/// Regression: a key over memcached's 250 bytes failed in the client's encoding and counted as
/// a backend failure, so three such requests opened the breaker for everyone. Now it is the
/// client's 400 on every backend, the backend untouched, and a normal key still locks.
async fn too_long_key_is_400_and_never_a_backend_failure(backend: LockBackendConfig) {
    use sekisho_policy::lock::{key_len, MAX_KEY_BYTES};
    let p = LockPolicy::new(&config(backend)).unwrap();
    // 250 bytes exactly is fine; a space counts 3 (memcached's escaping), on every backend.
    let fits = format!("buy/{}", "x".repeat(MAX_KEY_BYTES - 4));
    assert_eq!(key_len(&fits), MAX_KEY_BYTES);
    assert!(
        p.acquire_key(fits.clone())
            .await
            .unwrap()
            .unwrap()
            .release()
            .await
    );
    for long in [
        format!("buy/{}", "x".repeat(MAX_KEY_BYTES)),
        format!("buy/{} ", "x".repeat(MAX_KEY_BYTES - 6)),
    ] {
        for _ in 0..5 {
            let r = p.acquire_key(long.clone()).await.unwrap_err();
            assert_eq!(
                (r.status, r.reason),
                (StatusCode::BAD_REQUEST, "lock_key_too_long")
            );
        }
    }
    let c = p.counters();
    assert_eq!((c.key_too_long, c.backend_errors), (10, 0), "{c:?}");
    assert!(!p.breaker_open());
    let g = p.acquire_key("buy/1".into()).await.unwrap();
    assert!(g.is_some(), "a normal key still takes the lock");
}

#[tokio::test]
async fn memcached_too_long_key_is_a_client_error() {
    let mc = Memcached::start();
    too_long_key_is_400_and_never_a_backend_failure(LockBackendConfig::Memcached(
        mc.addr().to_string(),
    ))
    .await;
}

#[tokio::test]
async fn redis_too_long_key_is_a_client_error() {
    let redis = Redis::start();
    too_long_key_is_400_and_never_a_backend_failure(LockBackendConfig::Redis(redis.url())).await;
}

#[tokio::test]
async fn local_too_long_key_is_a_client_error() {
    too_long_key_is_400_and_never_a_backend_failure(LockBackendConfig::Local).await;
}
