//! Active health checks and panic mode, against real upstreams.

use std::sync::Arc;
use std::time::Duration;

use sekisho_proxy::{Cluster, HealthStatus, NoResolver, UpstreamErrorKind};

use crate::switch::*;

fn status(cluster: &Cluster, i: usize) -> HealthStatus {
    cluster.snapshot().endpoints[i].health
}

#[tokio::test]
async fn failing_check_takes_endpoint_out_then_it_recovers() {
    let a = Switch::start().await;
    let b = Switch::start().await;
    b.set_check_fails(true);
    let mut cfg = rr_cluster(&[a.addr(), b.addr()]);
    cfg.resilience.health_check = Some(fast_checks());
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");

    within(5, "b unhealthy", || async {
        status(&cluster, 1) == HealthStatus::Unhealthy
    })
    .await;
    let snap = cluster.snapshot();
    assert_eq!(snap.healthy_endpoints, 1);
    assert!(!snap.panic_mode);
    let last = snap.endpoints[1].last_check.clone().expect("checked");
    assert!(!last.passed);
    assert!(last.detail.contains("503"), "{}", last.detail);
    // Checks dial their own connections: the pools are untouched.
    assert!(snap
        .endpoints
        .iter()
        .all(|e| e.connections_opened_total == 0));

    for _ in 0..20 {
        assert_eq!(hit(&cluster).await, Some((a.addr(), 200)));
    }

    b.set_check_fails(false);
    within(5, "b healthy again", || async {
        status(&cluster, 1) == HealthStatus::Healthy
    })
    .await;
    let mut seen_b = false;
    for _ in 0..4 {
        seen_b |= hit(&cluster).await.map(|(addr, _)| addr) == Some(b.addr());
    }
    assert!(seen_b, "b is back in rotation");
}

#[tokio::test]
async fn checks_stop_when_the_cluster_is_dropped() {
    let a = Switch::start().await;
    let mut cfg = rr_cluster(&[a.addr()]);
    cfg.resilience.health_check = Some(fast_checks());
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    within(5, "checks running", || async { a.checks() >= 2 }).await;
    drop(cluster);
    // A check in progress may still land; after that, none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = a.checks();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.checks(), after);
}

#[tokio::test]
async fn refused_connection_fails_the_check() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let a = Switch::start().await;
    let mut cfg = rr_cluster(&[a.addr(), dead]);
    cfg.resilience.health_check = Some(fast_checks());
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    within(5, "dead endpoint unhealthy", || async {
        status(&cluster, 1) == HealthStatus::Unhealthy
    })
    .await;
    for _ in 0..10 {
        assert_eq!(hit(&cluster).await, Some((a.addr(), 200)));
    }
}

#[tokio::test]
async fn panic_mode_routes_to_all_when_every_endpoint_fails_checks() {
    let a = Switch::start().await;
    let b = Switch::start().await;
    a.set_check_fails(true);
    b.set_check_fails(true);
    let mut cfg = rr_cluster(&[a.addr(), b.addr()]);
    cfg.resilience.health_check = Some(fast_checks());
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    within(5, "both unhealthy", || async {
        cluster.snapshot().healthy_endpoints == 0
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let (addr, status) = hit(&cluster).await.expect("still routed");
        assert_eq!(status, 200);
        seen.insert(addr);
    }
    assert_eq!(seen.len(), 2, "panic mode uses every address");
    let snap = cluster.snapshot();
    assert!(snap.panic_mode);
    assert!(snap.panic_routed_total >= 6);

    // With panic mode off, nothing healthy means 503 at once.
    let mut cfg = rr_cluster(&[a.addr(), b.addr()]);
    cfg.resilience.health_check = Some(fast_checks());
    cfg.resilience.panic_threshold = 0;
    let strict = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    within(5, "both unhealthy", || async {
        strict.snapshot().healthy_endpoints == 0
    })
    .await;
    let err = strict
        .send(crate::support::get("/"))
        .await
        .expect_err("no healthy endpoint");
    assert_eq!(err.kind(), UpstreamErrorKind::NoEndpoints);
    assert!(err.to_string().contains("no healthy endpoint"), "{err}");
    assert!(!strict.snapshot().panic_mode);
}
