//! The admin listener: health, readiness, Prometheus metrics, effective config, clusters.

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::upstream::Upstream;

use crate::common::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints() {
    let up = Upstream::named("svc").await;
    std::env::set_var("SEKISHO_TEST_SECRET_HDR", "s3cr3t-value");
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: items
    match: {{ path_prefix: /items/ }}
    cluster: items
    request_headers: {{ set: {{ authorization: "Bearer ${{SEKISHO_TEST_SECRET_HDR}}" }} }}
clusters: [{{ name: items, endpoints: ["{}"] }}]
"#,
        up.addr()
    );
    let gw = start(&yaml).await;
    let admin = gw.admin.unwrap();
    let c = HttpClient::http1();
    for _ in 0..3 {
        assert_eq!(c.get(gw.addr, "/items/1").await.status, 200);
    }
    assert_eq!(c.get(gw.addr, "/nope").await.status, 404);
    assert_eq!(up.seen()[0].headers["authorization"], "Bearer s3cr3t-value");

    let r = c.get(admin, "/healthz").await;
    assert_eq!(r.status, 200);
    let r = c.get(admin, "/readyz").await;
    assert_eq!(r.status, 200);

    let m = c.get(admin, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").starts_with("text/plain"));
    let text = m.text();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("sekisho_requests_total{")
                && l.contains("route=\"items\"")
                && l.contains("code=\"200\"")
        })
        .unwrap_or_else(|| panic!("no request counter for items/200:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.contains("sekisho_request_duration_seconds_bucket"),
        "latency histogram"
    );
    assert!(
        text.contains("sekisho_upstream_connections_opened_total"),
        "pool metrics"
    );
    assert!(text.contains("sekisho_dns_cache_hits_total"), "DNS metrics");
    assert!(
        text.contains("sekisho_upstream_connect_seconds_count{cluster=\"items\"} 1"),
        "connect timing: {text}"
    );
    assert!(text.contains("sekisho_upstream_first_byte_seconds_count{cluster=\"items\"} 3"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("sekisho_requests_total{") && l.contains("code=\"404\"")),
        "404s counted"
    );

    let cfg = c.get(admin, "/config").await;
    let cfg_text = cfg.text();
    assert!(
        !cfg_text.contains("s3cr3t-value"),
        "secrets are redacted: {cfg_text}"
    );
    assert!(cfg_text.contains("<redacted>"));
    assert!(cfg.json()["config"]["routes"][0]["name"] == "items");
    assert_eq!(cfg.json()["reload"]["failures"], 0);

    let cl = c.get(admin, "/clusters").await.json();
    let ep = &cl["clusters"][0]["endpoints"][0];
    assert_eq!(cl["clusters"][0]["name"], "items");
    assert_eq!(ep["address"], up.addr().to_string());
    assert_eq!(ep["connections_opened_total"], 1, "{cl}");
    gw.stop().await;
}
