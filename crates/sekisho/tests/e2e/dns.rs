//! DNS endpoints against a real DNS server (dnsmasq) on a loopback port: answers cached
//! with their TTL, changes followed, and the last answer served when the server is gone.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::dnsmasq::Dnsmasq;
use sekisho_test_support::eventually;
use sekisho_test_support::upstream::Upstream;

use crate::common::start;

/// Two upstreams on the same port of 127.0.0.2 and 127.0.0.3.
async fn twin_upstreams() -> (Upstream, Upstream, u16) {
    for _ in 0..20 {
        let probe = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let a: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
        let b: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
        if std::net::TcpListener::bind(b).is_ok() {
            return (
                Upstream::named_at(a, "a").await,
                Upstream::named_at(b, "b").await,
                port,
            );
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_dns_changes_and_serves_stale_when_resolver_dies() {
    let (_a, _b, port) = twin_upstreams().await;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut dns = Dnsmasq::start(&[("svc.test", ip("127.0.0.2"))], 1);
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
admin: {{ listen: "127.0.0.1:0" }}
dns: {{ resolvers: ["{}"], min_ttl: 1s, max_ttl: 2s, timeout: 500ms, max_stale: 1h }}
routes: [{{ name: svc, match: {{ path_prefix: / }}, cluster: svc }}]
clusters: [{{ name: svc, endpoints: ["svc.test:{port}"] }}]
"#,
        dns.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let r = c.get(gw.addr, "/").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "a"));

    // The answer changes; within a few TTLs the gateway follows without a restart.
    dns.set_hosts(&[("svc.test", ip("127.0.0.3"))]);
    let followed = eventually(Duration::from_secs(10), || async {
        c.get(gw.addr, "/").await.text() == "b"
    })
    .await;
    assert!(followed, "the new DNS answer was not followed");

    // The DNS server dies: well past the TTL, requests still succeed on the last answer.
    dns.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let r = c.get(gw.addr, "/").await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "b"));
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "stale answers are served without waiting for the resolver"
        );
    }
    // The admin view shows the cached entry.
    let admin = gw.admin.unwrap();
    let clusters = c.get(admin, "/clusters").await.json();
    let entries = clusters["dns"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["host"] == "svc.test"),
        "{clusters}"
    );
    gw.stop().await;
}
