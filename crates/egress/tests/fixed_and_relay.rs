//! Fixed upstream mode across DNS changes, and a short version of the headline measurement:
//! through a delay relay, warm pooled connections beat a new HTTPS connection per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sekisho_egress::{Egress, EgressConfig, FixedUpstream, Scheme};
use sekisho_test_support::client::{tls_get, HttpClient, TestResponse};
use sekisho_test_support::dnsmasq::Dnsmasq;
use sekisho_test_support::tls::TestCa;
use sekisho_test_support::upstream::{Reply, Upstream};

fn config() -> EgressConfig {
    EgressConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        access_log: sekisho_egress::AccessLogSetting::Off,
        shutdown_timeout: Duration::from_secs(10),
        ..EgressConfig::default()
    }
}

async fn get(egress: &Egress, host: &str, path: &str) -> TestResponse {
    let req = Request::get(format!("http://{}{path}", egress.local_addr()))
        .header("host", host)
        .body(Full::<Bytes>::default())
        .unwrap();
    HttpClient::http1().send(req).await
}

#[tokio::test]
async fn fixed_upstream_keeps_host_and_follows_dns_changes() {
    let a = Upstream::start_at("127.0.0.2:0".parse().unwrap(), "a", None, |_| {
        Reply::text("a")
    })
    .await;
    let port = a.addr().port();
    let b = Upstream::start_at(SocketAddr::from(([127, 0, 0, 3], port)), "b", None, |_| {
        Reply::text("b")
    })
    .await;
    let dns = Dnsmasq::start(&[("api.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))], 1);
    let mut cfg = config();
    cfg.dns.resolvers = vec![dns.addr()];
    cfg.upstream = Some(FixedUpstream {
        scheme: Scheme::Http,
        host: "api.test".into(),
        port,
    });
    let egress = Egress::start(cfg).await.unwrap();
    let r = get(&egress, "client.example", "/x?y=1").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "a"));
    let seen = &a.seen()[0];
    assert_eq!(seen.headers["host"], "client.example");
    assert_eq!(seen.uri, "/x?y=1");
    // The fixed upstream is not the host convention: no loop marker, Host untouched.
    assert!(!seen.headers.contains_key("x-chocon-ver"));

    dns.set_hosts(&[("api.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))]);
    let moved = sekisho_test_support::eventually(Duration::from_secs(20), || async {
        get(&egress, "client.example", "/").await.text() == "b"
    })
    .await;
    assert!(
        moved,
        "requests never moved to the new address; dnsmasq log:\n{}",
        dns.log()
    );
    assert_eq!(b.seen()[0].headers["host"], "client.example");
}

/// The delay relay binary, killed (by its PID) on drop.
struct Relay {
    child: Child,
    addr: SocketAddr,
}

impl Relay {
    async fn start(target: SocketAddr, delay_ms: u32) -> Relay {
        let addr = sekisho_test_support::free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_delay-relay"))
            .args([
                "--listen",
                &addr.to_string(),
                "--target",
                &target.to_string(),
            ])
            .args(["--delay-ms", &delay_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn delay-relay");
        let up = sekisho_test_support::eventually(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(addr).await.is_ok()
        })
        .await;
        assert!(up, "delay-relay did not listen on {addr}");
        Relay { child, addr }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn warm_pools_through_a_delay_beat_a_new_https_connection_per_request() {
    const DELAY_MS: u32 = 9;
    const N: usize = 7;
    let ca = TestCa::new();
    let leaf = ca.leaf("origin", &["127.0.0.1"]);
    let origin = Upstream::start_with_tls("origin", Some(ca.server_config(&leaf)), |_| {
        Reply::text("hi")
    })
    .await;
    let relay = Relay::start(origin.addr(), DELAY_MS).await;

    // (b) a new TLS connection per request, through the relay.
    let client_tls = ca.client_config(&[b"h2", b"http/1.1"]);
    let mut new_conn = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        let (r, _) = tls_get(relay.addr, client_tls.clone(), "127.0.0.1", "/")
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        new_conn.push(t.elapsed());
    }

    // (c) through the egress proxy, whose pool reaches the origin through the relay.
    let mut cfg = config();
    cfg.ca_file = Some(ca.ca_path());
    let egress = Egress::start(cfg).await.unwrap();
    let host = format!("127.0.0.1.ccnproxy-https:{}", relay.addr.port());
    assert_eq!(get(&egress, &host, "/").await.status, 200); // warm the pool
    let opened_before = origin.connections();
    let mut pooled = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        assert_eq!(get(&egress, &host, "/").await.status, 200);
        pooled.push(t.elapsed());
    }
    let (b, c) = (median(new_conn), median(pooled));
    eprintln!("median per request: new HTTPS connection {b:?}, warm egress pool {c:?}");
    // The relay really adds distance: a new connection costs several round trips.
    assert!(
        b >= Duration::from_millis(2 * 2 * u64::from(DELAY_MS)),
        "{b:?}"
    );
    assert!(c < b / 2, "pooled {c:?} vs new connection {b:?}");
    assert_eq!(
        origin.connections(),
        opened_before,
        "the warm pool opened no new connection"
    );
}
