//! Cluster options end to end: weighted endpoints, balancing policies, pool limits (503 on
//! overflow), HTTP/2 over TLS with a client certificate; and the listener's stream limit.

use std::time::{Duration, Instant};

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::tls::TestCa;
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::{get, request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_endpoints_policies_and_pool_overflow() {
    let a = Upstream::named("a").await;
    let b = Upstream::named("b").await;
    let slow = Upstream::start("slow", |_| {
        Reply::text("slow").delay(Duration::from_millis(600))
    })
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - {{ name: w, match: {{ path_prefix: /weighted }}, cluster: weighted }}
  - {{ name: r, match: {{ path_prefix: /random }}, cluster: rand }}
  - {{ name: lr, match: {{ path_prefix: /least }}, cluster: least }}
  - {{ name: t, match: {{ path_prefix: /tiny }}, cluster: tiny }}
  - name: debug
    match: {{ path_prefix: /debug, headers: [{{ name: x-debug, present: true }}] }}
    cluster: a
    response_headers: {{ add: {{ x-debug-route: "yes" }} }}
  - {{ name: nodebug, match: {{ path_prefix: /debug }}, direct_response: {{ status: 204 }} }}
clusters:
  - name: weighted
    lb: round_robin
    endpoints: [{{ address: "{a}", weight: 1 }}, {{ address: "{b}", weight: 3 }}]
  - {{ name: rand, lb: random, endpoints: ["{a}", "{b}"] }}
  - {{ name: least, lb: least_request, endpoints: ["{a}", "{b}"] }}
  - {{ name: a, endpoints: ["{a}"] }}
  - name: tiny
    endpoints: ["{slow}"]
    pool: {{ max_connections: 1, max_idle: 1, idle_timeout: 10s, max_pending: 1, pending_timeout: 5s }}
"#,
        a = a.addr(),
        b = b.addr(),
        slow = slow.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();

    // Smooth weighted round robin: exactly 1:3 over each cycle of 4.
    let mut counts = std::collections::HashMap::new();
    for _ in 0..8 {
        *counts
            .entry(c.get(gw.addr, "/weighted").await.text())
            .or_insert(0) += 1;
    }
    assert_eq!((counts["a"], counts["b"]), (2, 6), "{counts:?}");

    // Random and least-request both reach every endpoint.
    for path in ["/random", "/least"] {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..60 {
            seen.insert(c.get(gw.addr, path).await.text());
        }
        assert_eq!(seen.len(), 2, "{path}: {seen:?}");
    }

    // Pool of one connection, one waiter: of four concurrent requests, the two past the
    // queue fail fast with 503, the others complete.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (c, url) = (c.clone(), gw.url("/tiny"));
        tasks.push(tokio::spawn(async move {
            c.send(request("GET", &url, &[], "")).await
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 503 {
            assert_eq!(r.json()["error"], "upstream_overloaded");
        }
        statuses.push(r.status.as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503], "{:?}", started.elapsed());
    assert_eq!(slow.connections(), 1, "never more than max_connections");

    // Header presence predicate, and response header `add`.
    let r = c
        .send(get(&gw.url("/debug"), &[("x-debug", "anything")]))
        .await;
    assert_eq!((r.status.as_u16(), r.header("x-debug-route")), (200, "yes"));
    assert_eq!(c.get(gw.addr, "/debug").await.status, 204);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_upstream_with_client_certificate() {
    let ca = TestCa::new();
    let server = ca.leaf("server", &["grpc.internal"]);
    let client = ca.leaf("client", &["gateway.internal"]);
    let up = Upstream::start_with_tls("mtls", Some(ca.server_config_mtls(&server)), |_| {
        Reply::text("mtls-ok")
    })
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - {{ name: m, match: {{ path_prefix: /m }}, cluster: mtls }}
  - {{ name: n, match: {{ path_prefix: /n }}, cluster: no-cert }}
clusters:
  - name: mtls
    protocol: h2
    endpoints: ["{addr}"]
    tls: {{ sni: grpc.internal, ca: "{ca}", cert: "{cert}", key: "{key}" }}
  - name: no-cert
    protocol: h2
    endpoints: ["{addr}"]
    tls: {{ sni: grpc.internal, ca: "{ca}" }}
"#,
        addr = up.addr(),
        ca = ca.ca_path().display(),
        cert = client.cert.display(),
        key = client.key.display(),
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let r = c.get(gw.addr, "/m").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "mtls-ok"));
    assert_eq!(up.seen()[0].version, http::Version::HTTP_2);
    // Without the client certificate the upstream refuses the handshake.
    assert_eq!(c.get(gw.addr, "/n").await.status, 502);
    gw.stop().await;
}

/// `max_concurrent_streams: 1` makes an HTTP/2 client run its streams one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_stream_limit_serializes_h2_streams() {
    let slow = Upstream::start("slow", |_| {
        Reply::text("ok").delay(Duration::from_millis(300))
    })
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0", limits: {{ max_concurrent_streams: 1 }} }}]
access_log: {{ path: "off" }}
routes: [{{ name: s, match: {{ path_prefix: / }}, cluster: slow }}]
clusters: [{{ name: slow, endpoints: ["{}"] }}]
"#,
        slow.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::h2c();
    c.get(gw.addr, "/warm").await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (c, url) = (c.clone(), gw.url("/x"));
            tokio::spawn(async move { c.send(request("GET", &url, &[], "")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "streams ran concurrently: {:?}",
        started.elapsed()
    );
    gw.stop().await;
}

/// Health checks take a failing endpoint out of rotation, and `/clusters` and the metrics
/// show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_state_on_admin_and_traffic_avoids_the_sick_endpoint() {
    let good = Upstream::named("good").await;
    let sick = Upstream::start("sick", |s| {
        if s.uri == "/healthz" {
            Reply::text("down").status(503)
        } else {
            Reply::text("sick")
        }
    })
    .await;
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: svc }}]
clusters:
  - name: svc
    lb: round_robin
    endpoints: ["{}", "{}"]
    health_check: {{ path: /healthz, interval: 200ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 1 }}
"#,
        good.addr(),
        sick.addr()
    );
    let gw = start(&yaml).await;
    let admin = gw.admin.unwrap();
    let c = HttpClient::http1();
    let sick_addr = sick.addr().to_string();
    let marked = sekisho_test_support::eventually(Duration::from_secs(5), || async {
        let cl = c.get(admin, "/clusters").await.json();
        cl["clusters"][0]["endpoints"]
            .as_array()
            .is_some_and(|eps| {
                eps.iter()
                    .any(|e| e["address"] == sick_addr.as_str() && e["health"] == "unhealthy")
            })
    })
    .await;
    assert!(marked, "{}", c.get(admin, "/clusters").await.text());
    for _ in 0..20 {
        assert_eq!(
            c.get(gw.addr, "/x").await.text(),
            "good",
            "traffic avoids the unhealthy endpoint"
        );
    }
    let metrics = c.get(admin, "/metrics").await.text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("sekisho_upstream_endpoint_healthy{") && l.contains(&sick_addr))
        .unwrap_or_else(|| panic!("no health metric:\n{metrics}"));
    assert!(line.ends_with(" 0"), "{line}");
    gw.stop().await;
}
