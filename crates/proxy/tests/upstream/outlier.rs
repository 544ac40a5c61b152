//! Passive outlier ejection against real upstreams: consecutive 5xx and connect failures
//! eject, ejections back off, at most `max_ejection_percent` are ejected.

use std::sync::Arc;
use std::time::Duration;

use sekisho_proxy::{Cluster, HealthStatus, NoResolver};

use crate::switch::*;

/// Sends until endpoint `i` has been ejected `times` times in all (at most 5 s).
async fn until_ejected(cluster: &Cluster, i: usize, times: u64) {
    within(5, "ejected", || async {
        let _ = hit(cluster).await;
        cluster.snapshot().endpoints[i].ejections_total >= times
    })
    .await;
}

#[tokio::test]
async fn consecutive_5xx_eject_and_the_endpoint_is_readmitted() {
    let a = Switch::start().await;
    let b = Switch::start().await;
    b.set_requests_fail(true);
    let mut cfg = rr_cluster(&[a.addr(), b.addr()]);
    cfg.resilience.outlier_detection = eject_after(3, Duration::from_millis(300));
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");

    until_ejected(&cluster, 1, 1).await;
    let snap = cluster.snapshot();
    assert_eq!(snap.endpoints[1].ejections_total, 1);

    // Re-admitted once the ejection time has passed.
    b.set_requests_fail(false);
    within(5, "b readmitted", || async {
        cluster.snapshot().endpoints[1].health == HealthStatus::Healthy
    })
    .await;
    // Round robin sends every other request to b again; a request may still meet a
    // connection b closed while it was ejected, so count only answers, for up to 5 s.
    within(5, "b takes requests again", || async {
        hit(&cluster).await.map(|(addr, _)| addr) == Some(b.addr())
    })
    .await;
}

#[tokio::test]
async fn ejected_endpoint_gets_no_traffic_and_ejections_back_off() {
    let a = Switch::start().await;
    let b = Switch::start().await;
    b.set_requests_fail(true);
    let mut cfg = rr_cluster(&[a.addr(), b.addr()]);
    // Long enough that the checks below run well inside it, even on a loaded machine.
    cfg.resilience.outlier_detection = eject_after(2, Duration::from_millis(1500));
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");

    until_ejected(&cluster, 1, 1).await;
    let first = cluster.snapshot().endpoints[1]
        .ejection_left_ms
        .expect("ejected");
    assert!(first <= 1500, "{first}");
    for _ in 0..5 {
        assert_eq!(hit(&cluster).await, Some((a.addr(), 200)));
    }
    // Still failing when it comes back: ejected again, for twice as long.
    within(5, "b back", || async {
        cluster.snapshot().endpoints[1].health == HealthStatus::Healthy
    })
    .await;
    until_ejected(&cluster, 1, 2).await;
    let second = cluster.snapshot().endpoints[1]
        .ejection_left_ms
        .expect("ejected");
    assert!(
        second > 1500,
        "second ejection lasts 2 x 1.5 s, {second} ms left"
    );
}

#[tokio::test]
async fn connect_failures_eject_a_dead_endpoint() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let a = Switch::start().await;
    let mut cfg = rr_cluster(&[a.addr(), dead]);
    cfg.resilience.outlier_detection = eject_after(2, Duration::from_secs(30));
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    until_ejected(&cluster, 1, 1).await;
    assert_eq!(
        cluster.snapshot().endpoints[1].health,
        HealthStatus::Ejected
    );
    for _ in 0..20 {
        assert_eq!(hit(&cluster).await, Some((a.addr(), 200)));
    }
}

#[tokio::test]
async fn at_most_max_ejection_percent_are_ejected() {
    let servers = [
        Switch::start().await,
        Switch::start().await,
        Switch::start().await,
        Switch::start().await,
    ];
    for s in &servers {
        s.set_requests_fail(true);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.addr()).collect();
    let mut cfg = rr_cluster(&addrs);
    cfg.resilience.outlier_detection = eject_after(1, Duration::from_secs(30));
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    for _ in 0..40 {
        let (_, status) = hit(&cluster).await.expect("answered");
        assert_eq!(status, 500);
    }
    let snap = cluster.snapshot();
    let ejected = snap
        .endpoints
        .iter()
        .filter(|e| e.health == HealthStatus::Ejected)
        .count();
    assert_eq!(ejected, 2, "50% of 4");
    assert_eq!(snap.healthy_endpoints, 2);
    assert!(!snap.panic_mode, "2 of 4 healthy is not below 50%");
}

#[tokio::test]
async fn panic_mode_when_ejections_leave_too_few() {
    let servers = [
        Switch::start().await,
        Switch::start().await,
        Switch::start().await,
    ];
    for s in &servers {
        s.set_requests_fail(true);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.addr()).collect();
    let mut cfg = rr_cluster(&addrs);
    let mut od = eject_after(1, Duration::from_secs(30));
    od.max_ejection_percent = 100;
    cfg.resilience.outlier_detection = od;
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    for _ in 0..10 {
        // Every address fails, yet every request is still routed.
        assert_eq!(hit(&cluster).await.map(|(_, s)| s), Some(500));
    }
    let snap = cluster.snapshot();
    assert!(snap.panic_mode);
    assert!(snap.healthy_endpoints < 2, "{snap:?}");
    assert!(snap.panic_routed_total > 0);
}
