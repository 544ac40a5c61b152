//! Load balancing across real endpoints, and DNS-named endpoints.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sekisho_config::{Endpoint, LbPolicy, Location, Protocol};
use sekisho_proxy::{BoxError, Cluster, NoResolver, Resolve, ResolveFuture};

use crate::support::*;

#[tokio::test]
async fn weighted_round_robin_exact_sequence() {
    let a = server(Serve::H1, ok_handler()).await;
    let b = server(Serve::H1, ok_handler()).await;
    let mut cfg = cluster(
        vec![endpoint(a.addr, 2), endpoint(b.addr, 1)],
        Protocol::Http1,
    );
    cfg.lb = LbPolicy::RoundRobin;
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    let mut seq = Vec::new();
    for _ in 0..6 {
        let resp = cluster.send(get("/")).await.expect("send");
        seq.push(resp.endpoint);
        body_string(resp.response).await;
    }
    assert_eq!(seq, [a.addr, b.addr, a.addr, a.addr, b.addr, a.addr]);
}

#[tokio::test]
async fn least_request_prefers_the_idle_endpoint() {
    let a = server(Serve::H1, ok_handler()).await;
    let b = server(Serve::H1, ok_handler()).await;
    let cluster = Cluster::new(
        &cluster(
            vec![endpoint(a.addr, 1), endpoint(b.addr, 1)],
            Protocol::Http1,
        ),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    let slow = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut req = get("/slow");
            req.headers_mut()
                .insert("x-delay-ms", "400".parse().expect("header"));
            let resp = cluster.send(req).await.expect("slow send");
            let busy = resp.endpoint;
            body_string(resp.response).await;
            busy
        })
    };
    eventually("one request in flight", || {
        cluster
            .snapshot()
            .endpoints
            .iter()
            .any(|e| e.in_flight == 1)
    })
    .await;
    let busy = cluster
        .snapshot()
        .endpoints
        .iter()
        .find(|e| e.in_flight == 1)
        .map(|e| e.address)
        .expect("busy endpoint");
    for _ in 0..10 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_ne!(resp.endpoint, busy);
        body_string(resp.response).await;
    }
    assert_eq!(slow.await.expect("task"), busy);
}

/// A resolver whose answers the test changes, counting `refresh_soon` calls.
#[derive(Default)]
struct FakeDns {
    answer: Mutex<Vec<IpAddr>>,
    refreshes: AtomicUsize,
}

impl Resolve for FakeDns {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            assert_eq!(host, "svc.test");
            Ok::<_, BoxError>(Arc::from(self.answer.lock().clone()))
        })
    }

    fn refresh_soon(&self, _host: &str) {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn dns_name_expands_to_all_addresses_and_follows_changes() {
    let a = server(Serve::H1, ok_handler()).await;
    let port = a.addr.port();
    let ip_a: IpAddr = [127, 0, 0, 1].into();
    // Nothing listens on 127.0.0.2 at this port: its dials fail.
    let ip_b: IpAddr = [127, 0, 0, 2].into();
    let dns = Arc::new(FakeDns::default());
    *dns.answer.lock() = vec![ip_a, ip_b];
    let named = Endpoint {
        host: "svc.test".into(),
        port,
        weight: 3,
        at: Location::default(),
    };
    let mut cfg = cluster(vec![named], Protocol::Http1);
    cfg.lb = LbPolicy::RoundRobin;
    cfg.connect_timeout = Duration::from_millis(300);
    let cluster = Cluster::new(&cfg, dns.clone()).expect("cluster");

    // The first request waits for the first answer instead of failing with no endpoints.
    let first = cluster.send(get("/")).await;
    let snap = cluster.snapshot();
    let mut addrs: Vec<SocketAddr> = snap.endpoints.iter().map(|e| e.address).collect();
    addrs.sort();
    assert_eq!(
        addrs,
        [SocketAddr::new(ip_a, port), SocketAddr::new(ip_b, port)]
    );
    assert!(snap
        .endpoints
        .iter()
        .all(|e| e.host == "svc.test" && e.weight == 3));
    if let Ok(resp) = first {
        body_string(resp.response).await;
    }

    // A failed dial to a DNS-named address asks the cache to re-resolve.
    let mut failed = false;
    for _ in 0..2 {
        if let Err(e) = cluster.send(get("/")).await {
            assert_eq!(e.endpoint(), Some(SocketAddr::new(ip_b, port)), "{e}");
            failed = true;
        }
    }
    assert!(failed, "round robin must have tried the dead address");
    assert!(dns.refreshes.load(Ordering::SeqCst) >= 1);

    // The dead address disappears from DNS: it leaves the set.
    *dns.answer.lock() = vec![ip_a];
    eventually("set follows DNS", || {
        cluster.snapshot().endpoints.len() == 1
    })
    .await;
    for _ in 0..3 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_eq!(resp.endpoint, SocketAddr::new(ip_a, port));
        body_string(resp.response).await;
    }
}
