//! Circuit breaking, `send_excluding` and the retry budget.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use sekisho_proxy::{Cluster, NoResolver, UpstreamError, UpstreamErrorKind};

use crate::support::*;
use crate::switch::*;

#[tokio::test]
async fn circuit_breaker_rejects_the_excess_at_once() {
    let a = server(Serve::H1, ok_handler()).await;
    let mut cfg = rr_cluster(&[a.addr]);
    cfg.resilience.max_requests = 2;
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    let slow = || {
        let c = cluster.clone();
        tokio::spawn(async move {
            let mut req = get("/");
            req.headers_mut()
                .insert("x-delay-ms", http::HeaderValue::from_static("1500"));
            let resp = c.send(req).await.expect("slow request");
            body_string(resp.response).await
        })
    };
    let (s1, s2) = (slow(), slow());
    eventually("two in flight", || cluster.snapshot().active_requests == 2).await;

    let started = Instant::now();
    let err = cluster.send(get("/")).await.expect_err("over max_requests");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "fails fast, no queueing"
    );
    assert!(
        matches!(
            err,
            UpstreamError::CircuitOpen {
                max_requests: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), UpstreamErrorKind::Overloaded);
    assert_eq!(err.kind().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(cluster.snapshot().circuit_breaker_rejections_total, 1);

    assert_eq!(s1.await.expect("join"), "ok");
    assert_eq!(s2.await.expect("join"), "ok");
    eventually("permits back", || cluster.snapshot().active_requests == 0).await;
    assert_eq!(hit(&cluster).await.map(|(_, s)| s), Some(200));
}

#[tokio::test]
async fn send_excluding_avoids_the_addresses_tried() {
    let servers = [
        server(Serve::H1, ok_handler()).await,
        server(Serve::H1, ok_handler()).await,
        server(Serve::H1, ok_handler()).await,
    ];
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    for lb in [
        sekisho_config::LbPolicy::RoundRobin,
        sekisho_config::LbPolicy::LeastRequest,
        sekisho_config::LbPolicy::Random,
    ] {
        let mut cfg = rr_cluster(&addrs);
        cfg.lb = lb;
        let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
        let mut seen = HashSet::new();
        for _ in 0..30 {
            let resp = cluster
                .send_excluding(get("/"), &[addrs[0]])
                .await
                .expect("send");
            assert_ne!(resp.endpoint, addrs[0], "{lb:?}");
            seen.insert(resp.endpoint);
            body_string(resp.response).await;
        }
        assert_eq!(seen.len(), 2, "{lb:?}: both others used");
        for _ in 0..10 {
            let resp = cluster
                .send_excluding(get("/"), &[addrs[0], addrs[2]])
                .await
                .expect("send");
            assert_eq!(resp.endpoint, addrs[1]);
            body_string(resp.response).await;
        }
        // Everything excluded: still sent somewhere rather than failed.
        let resp = cluster
            .send_excluding(get("/"), &addrs)
            .await
            .expect("send");
        assert!(addrs.contains(&resp.endpoint));
    }
}

#[tokio::test]
async fn retry_budget_is_a_share_of_requests_plus_a_floor() {
    let a = server(Serve::H1, ok_handler()).await;
    let mut cfg = rr_cluster(&[a.addr]);
    cfg.resilience.retry_budget = sekisho_config::RetryBudget {
        percent: 0,
        min_retries_per_second: 2,
    };
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    // The floor is per second: on a slow machine the second may turn over between
    // calls, so only check that the floor allows some and the budget then runs out.
    let granted = (0..50).filter(|_| cluster.try_acquire_retry()).count();
    assert!((2..=10).contains(&granted), "{granted}");
    let snap = cluster.snapshot();
    assert_eq!(snap.retries_total, granted as u64);
    assert_eq!(snap.retry_budget_exhausted_total, 50 - granted as u64);

    let mut cfg = rr_cluster(&[a.addr]);
    cfg.resilience.retry_budget = sekisho_config::RetryBudget {
        percent: 50,
        min_retries_per_second: 0,
    };
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    for _ in 0..10 {
        hit(&cluster).await.expect("sent");
    }
    // Each granted retry is sent (an attempt, not a new request): 50% of 10 requests.
    let mut granted = 0;
    while cluster.try_acquire_retry() {
        granted += 1;
        hit(&cluster).await.expect("retry sent");
        assert!(granted <= 10, "budget never runs out");
    }
    assert_eq!(granted, 5);
    assert_eq!(cluster.snapshot().retry_budget_exhausted_total, 1);
}
