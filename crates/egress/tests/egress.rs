//! The egress proxy on loopback sockets: host convention, headers, errors, policy, pools.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sekisho_egress::{Egress, EgressConfig, Policy, Rule};
use sekisho_test_support::client::{raw, HttpClient, TestResponse};
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

async fn start(cfg: EgressConfig) -> Egress {
    Egress::start(cfg).await.expect("egress starts")
}

async fn get(egress: &Egress, host: &str, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut b = Request::get(format!("http://{}{path}", egress.local_addr())).header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    HttpClient::http1()
        .send(b.body(Full::<Bytes>::default()).unwrap())
        .await
}

#[tokio::test]
async fn host_convention_rewrites_host_and_keeps_path_and_query() {
    let up = Upstream::named("origin").await;
    let egress = start(config()).await;
    let port = up.addr().port();
    let r = get(
        &egress,
        &format!("127.0.0.1.ccnproxy:{port}"),
        "/a/b?x=1&y=2",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "origin");
    let seen = up.seen();
    assert_eq!(seen[0].uri, "/a/b?x=1&y=2");
    assert_eq!(
        seen[0].headers["host"],
        format!("127.0.0.1:{port}").as_str()
    );
    assert!(seen[0].headers.contains_key("x-chocon-ver"));
    // Labels after the marker are dropped.
    let r = get(
        &egress,
        &format!("127.0.0.1.ccnproxy.local.example:{port}"),
        "/",
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn bad_hosts_are_400_and_nothing_is_sent() {
    let up = Upstream::named("origin").await;
    let egress = start(config()).await;
    let port = up.addr().port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("ccnproxy:{port}"),
        format!("ccnproxy-https.127.0.0.1:{port}"),
        format!("127.0.0.1.ccnproxy:{port}0000"),
        "a..b.ccnproxy".to_string(),
    ] {
        let r = get(&egress, &host, "/", &[]).await;
        assert_eq!(r.status, 400, "{host}: {}", r.text());
        assert!(!r.header("x-chocon-id").is_empty());
    }
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn chocon_id_is_reused_or_generated_and_returned() {
    let up = Upstream::named("origin").await;
    let egress = start(config()).await;
    let host = format!("127.0.0.1.ccnproxy:{}", up.addr().port());
    let r = get(&egress, &host, "/", &[("x-chocon-id", "client-id-1")]).await;
    assert_eq!(r.header("x-chocon-id"), "client-id-1");
    assert_eq!(up.seen()[0].headers["x-chocon-id"], "client-id-1");
    let r = get(&egress, &host, "/", &[]).await;
    let generated = r.header("x-chocon-id").to_string();
    assert!(generated.len() >= 16, "{generated:?}");
    assert_eq!(up.seen()[1].headers["x-chocon-id"], generated.as_str());
}

#[tokio::test]
async fn a_request_that_passed_an_egress_proxy_is_a_loop() {
    let up = Upstream::named("origin").await;
    let egress = start(config()).await;
    let host = format!("127.0.0.1.ccnproxy:{}", up.addr().port());
    let r = get(
        &egress,
        &host,
        "/",
        &[("x-chocon-ver", "sekisho-egress/0.1.0")],
    )
    .await;
    assert_eq!(r.status, 508);
    assert!(r.text().contains("loop"), "{}", r.text());
    assert_eq!(up.count(), 0);
    // Two proxies chained by the host convention: the second one refuses.
    let second = start(config()).await;
    let via = format!("127.0.0.1.ccnproxy:{}", second.local_addr().port());
    let r = get(&egress, &via, "/", &[]).await;
    assert_eq!(r.status, 508);
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let up = Upstream::start("origin", |_| {
        Reply::text("ok")
            .header("x-drop", "1")
            .header("connection", "x-drop")
    })
    .await;
    let egress = start(config()).await;
    let host = format!("127.0.0.1.ccnproxy:{}", up.addr().port());
    let r = get(
        &egress,
        &host,
        "/",
        &[
            ("connection", "x-private"),
            ("x-private", "1"),
            ("proxy-authorization", "x"),
            ("x-keep", "1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = &up.seen()[0].headers;
    assert!(!seen.contains_key("x-private"));
    assert!(!seen.contains_key("proxy-authorization"));
    assert_eq!(seen["x-keep"], "1");
    assert!(!r.headers.contains_key("x-drop"));
}

#[tokio::test]
async fn slow_upstream_is_504_and_refused_connection_is_502() {
    let slow = Upstream::start("slow", |_| {
        Reply::text("late").delay(Duration::from_secs(3))
    })
    .await;
    let egress = start(EgressConfig {
        proxy_read_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let r = get(
        &egress,
        &format!("127.0.0.1.ccnproxy:{}", slow.addr().port()),
        "/",
        &[],
    )
    .await;
    assert_eq!(r.status, 504, "{}", r.text());
    let closed = sekisho_test_support::free_addr();
    let r = get(
        &egress,
        &format!("127.0.0.1.ccnproxy:{}", closed.port()),
        "/",
        &[],
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().is_empty());
}

#[tokio::test]
async fn metadata_addresses_are_denied_by_default() {
    let egress = start(config()).await;
    for host in [
        "169.254.169.254.ccnproxy",
        "metadata.google.internal.ccnproxy",
        "169.254.169.254.ccnproxy-https:443",
    ] {
        let r = get(&egress, host, "/latest/meta-data/", &[]).await;
        assert_eq!(r.status, 403, "{host}: {}", r.text());
    }
}

#[tokio::test]
async fn a_name_resolving_to_a_denied_address_is_refused_and_nothing_sent() {
    use sekisho_test_support::dnsmasq::Dnsmasq;
    let up = Upstream::named("origin").await;
    let dns = Dnsmasq::start(
        &[
            ("meta.test", IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))),
            ("inner.test", IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
        1,
    );
    let mut cfg = config();
    cfg.dns.resolvers = vec![dns.addr()];
    // Deny loopback too: then the upstream must see nothing.
    cfg.policy = Policy::new(vec![], vec!["127.0.0.0/8".parse::<Rule>().unwrap()], true);
    let egress = start(cfg).await;
    let port = up.addr().port();
    let r = get(&egress, &format!("meta.test.ccnproxy:{port}"), "/", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = get(&egress, &format!("inner.test.ccnproxy:{port}"), "/", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = get(&egress, &format!("127.0.0.1.ccnproxy:{port}"), "/", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(up.count(), 0);
    assert_eq!(up.connections(), 0);
}

#[tokio::test]
async fn allow_list_admits_only_listed_destinations() {
    let up = Upstream::named("origin").await;
    let mut cfg = config();
    cfg.policy = Policy::new(vec!["127.0.0.2".parse::<Rule>().unwrap()], vec![], true);
    let egress = start(cfg).await;
    let r = get(
        &egress,
        &format!("127.0.0.1.ccnproxy:{}", up.addr().port()),
        "/",
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let up = Upstream::named("origin").await;
    let egress = start(config()).await;
    let host = format!("127.0.0.1.ccnproxy:{}", up.addr().port());
    for _ in 0..20 {
        let r = get(&egress, &host, "/", &[]).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(up.count(), 20);
    assert_eq!(up.connections(), 1);
    let metrics = get(&egress, "anything", "/.api/metrics", &[]).await.text();
    assert!(
        metrics.contains("sekisho_egress_connection_reuse_ratio{destination=\"http://127.0.0.1:"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "sekisho_egress_upstream_connections_opened_total{destination=\"http://127.0.0.1:"
    ));
    let ratio_line = metrics
        .lines()
        .find(|l| l.starts_with("sekisho_egress_connection_reuse_ratio"))
        .unwrap();
    assert!(ratio_line.ends_with(" 0.95"), "{ratio_line}");
}

#[tokio::test]
async fn https_destination_multiplexes_on_one_h2_connection() {
    let ca = TestCa::new();
    let leaf = ca.leaf("origin", &["127.0.0.1"]);
    let up = Upstream::start_with_tls("h2", Some(ca.server_config(&leaf)), |_| {
        Reply::text("secure").delay(Duration::from_millis(200))
    })
    .await;
    let mut cfg = config();
    cfg.ca_file = Some(ca.ca_path());
    let egress = start(cfg).await;
    let host = format!("127.0.0.1.ccnproxy-https:{}", up.addr().port());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = HttpClient::http1();
        let req = Request::get(format!("http://{}/", egress.local_addr()))
            .header("host", host.as_str())
            .body(Full::<Bytes>::default())
            .unwrap();
        tasks.push(tokio::spawn(async move { client.send(req).await }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), "secure");
    }
    assert!(up.seen().iter().all(|s| s.version == http::Version::HTTP_2));
    assert_eq!(up.connections(), 1);
    // Network timings per destination: one connect and one TLS handshake, ten responses.
    let metrics = get(&egress, "anything", "/.api/metrics", &[]).await.text();
    let value = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains("destination=\"https://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(value("sekisho_egress_connect_seconds_count"), "1");
    assert_eq!(value("sekisho_egress_tls_handshake_seconds_count"), "1");
    assert_eq!(value("sekisho_egress_first_byte_seconds_count"), "10");
    assert_eq!(
        value("sekisho_egress_dns_seconds_count"),
        "0",
        "an IP needs no lookup"
    );
}

#[tokio::test]
async fn untrusted_origin_certificate_is_502() {
    let ca = TestCa::new();
    let leaf = ca.leaf("origin", &["127.0.0.1"]);
    let up =
        Upstream::start_with_tls("tls", Some(ca.server_config(&leaf)), |_| Reply::text("x")).await;
    let egress = start(config()).await; // web PKI roots only
    let r = get(
        &egress,
        &format!("127.0.0.1.ccnproxy-ssl:{}", up.addr().port()),
        "/",
        &[],
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn stats_endpoint_has_chocons_shape() {
    let up = Upstream::named("origin").await;
    let egress = start(config()).await;
    let host = format!("127.0.0.1.ccnproxy:{}", up.addr().port());
    for _ in 0..3 {
        get(&egress, &host, "/", &[]).await;
    }
    get(&egress, "nomarker", "/", &[]).await;
    let j = get(&egress, "localhost:3000", "/.api/http-stats", &[])
        .await
        .json();
    assert_eq!(j["request"]["count"], 4);
    assert_eq!(j["request"]["status_count"]["200"], 3);
    assert_eq!(j["request"]["status_count"]["400"], 1);
    let resp = &j["response"];
    for k in ["max_time", "min_time", "average_time"] {
        assert!(resp[k].is_f64(), "{k}: {j}");
    }
    for p in ["90", "95", "99"] {
        assert!(resp["percentiled_time"][p].is_f64(), "{p}: {j}");
    }
}

#[tokio::test]
async fn client_gone_before_the_response_is_logged_as_499() {
    let up = Upstream::start("slow", |_| {
        Reply::text("late").delay(Duration::from_millis(800))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.access_log = sekisho_egress::AccessLogSetting::Dir {
        dir: dir.path().to_owned(),
        keep: Duration::from_secs(86_400),
        every: Duration::from_secs(86_400),
    };
    let egress = start(cfg).await;
    let req = format!(
        "GET /gone HTTP/1.1\r\nHost: 127.0.0.1.ccnproxy:{}\r\n\r\n",
        up.addr().port()
    );
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(egress.local_addr())
            .await
            .unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let seen =
            sekisho_test_support::eventually(Duration::from_secs(5), || async { up.count() == 1 })
                .await;
        assert!(seen);
    } // closed before the upstream answers
    let current = dir.path().join("current");
    let logged = sekisho_test_support::eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(&current).is_ok_and(|t| t.contains("\"status\":499"))
    })
    .await;
    assert!(logged, "{:?}", std::fs::read_to_string(&current));
}

#[tokio::test]
async fn access_log_lines_have_chocons_field_names() {
    let up = Upstream::named("origin").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.access_log = sekisho_egress::AccessLogSetting::Dir {
        dir: dir.path().to_owned(),
        keep: Duration::from_secs(86_400),
        every: Duration::from_secs(86_400),
    };
    let egress = start(cfg).await;
    let host = format!("127.0.0.1.ccnproxy:{}", up.addr().port());
    let r = get(
        &egress,
        &host,
        "/logged?q=1",
        &[("user-agent", "test-agent")],
    )
    .await;
    let id = r.header("x-chocon-id").to_string();
    egress.shutdown().await; // flushes
    let text = std::fs::read_to_string(dir.path().join("current")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "chocon_req",
            "host",
            "method",
            "ptime",
            "remote_addr",
            "size",
            "status",
            "time",
            "ua",
            "uri"
        ]
    );
    assert_eq!(line["uri"], "/logged");
    assert_eq!(line["status"], 200);
    assert_eq!(line["size"], 6);
    assert_eq!(line["ua"], "test-agent");
    assert_eq!(line["host"], host.as_str());
    assert_eq!(line["remote_addr"], "127.0.0.1");
    assert_eq!(line["chocon_req"], id.as_str());
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_then_stops_accepting() {
    let up = Upstream::start("slow", |_| {
        Reply::text("done").delay(Duration::from_millis(500))
    })
    .await;
    let egress = start(config()).await;
    let addr = egress.local_addr();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1.ccnproxy:{}\r\n\r\n",
        up.addr().port()
    );
    let in_flight = tokio::spawn(async move { raw(addr, req.as_bytes()).await });
    let arrived =
        sekisho_test_support::eventually(Duration::from_secs(5), || async { up.count() == 1 })
            .await;
    assert!(arrived);
    egress.shutdown().await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, b"done");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// `--read-timeout` bounds the whole request, body included (chocon's ReadTimeout): a client
/// that stops sending its body gets 408 instead of holding an upstream connection.
#[tokio::test]
async fn stalled_request_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::named("origin").await;
    let mut cfg = config();
    cfg.read_timeout = Duration::from_millis(300);
    let egress = start(cfg).await;
    let mut s = tokio::net::TcpStream::connect(egress.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1.ccnproxy:{}\r\nContent-Length: 100\r\n\r\n0123456789",
        up.addr().port()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered within the bound")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
