//! Each error status the gateway answers itself, with its JSON body and request id, and the
//! access log line for each (499 for a client that left).

use std::time::Duration;

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::start;

fn assert_json_error(r: &sekisho_test_support::client::TestResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    let j = r.json();
    assert_eq!(j["error"], code, "{j}");
    assert_eq!(j["status"], status);
    assert_eq!(j["request_id"], r.header("x-request-id"));
    assert!(!r.header("x-request-id").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_with_json_bodies_and_access_log() {
    let slow = Upstream::start("slow", |_| {
        Reply::text("late").delay(Duration::from_secs(3))
    })
    .await;
    let dead = sekisho_test_support::free_addr();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("access.log");
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "{}" }}
routes:
  - {{ name: slow, match: {{ path_prefix: /slow }}, cluster: slow, timeout: 200ms }}
  - {{ name: abort, match: {{ path_prefix: /abort }}, cluster: slow }}
  - {{ name: dead, match: {{ path_prefix: /dead }}, cluster: dead }}
  - {{ name: nothing, match: {{ path_prefix: /nothing }}, cluster: nothing }}
clusters:
  - {{ name: slow, endpoints: ["{}"] }}
  - {{ name: dead, endpoints: ["{}"], connect_timeout: 500ms }}
  - {{ name: nothing, endpoints: ["no-such-name.invalid:80"] }}
"#,
        log_path.display(),
        slow.addr(),
        dead,
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    assert_json_error(&c.get(gw.addr, "/unrouted").await, 404, "no_route");
    assert_json_error(&c.get(gw.addr, "/slow").await, 504, "upstream_timeout");
    assert_json_error(
        &c.get(gw.addr, "/dead").await,
        502,
        "upstream_connect_failed",
    );
    let r = c.get(gw.addr, "/nothing").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["request_id"], r.header("x-request-id"));

    // A client that gives up while the upstream is still working: logged as 499.
    let abort = tokio::time::timeout(Duration::from_millis(300), c.get(gw.addr, "/abort")).await;
    assert!(abort.is_err());

    let found = sekisho_test_support::eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .count()
            >= 5
    })
    .await;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(found, "access log lines: {text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_uri = |u: &str| {
        lines
            .iter()
            .find(|l| l["uri"] == u)
            .unwrap_or_else(|| panic!("no line for {u}: {text}"))
    };
    assert_eq!(by_uri("/unrouted")["status"], 404);
    assert_eq!(by_uri("/slow")["status"], 504);
    assert_eq!(by_uri("/slow")["route"], "slow");
    assert_eq!(by_uri("/slow")["cluster"], "slow");
    assert_eq!(by_uri("/dead")["status"], 502);
    assert_eq!(by_uri("/abort")["status"], 499);
    let line = by_uri("/slow");
    for field in [
        "time",
        "remote_addr",
        "method",
        "uri",
        "status",
        "size",
        "ua",
        "ptime",
        "host",
        "request_id",
        "route",
        "cluster",
        "upstream_addr",
        "upstream_time",
        "auth",
        "auth_id",
    ] {
        assert!(line.get(field).is_some(), "field {field} missing: {line}");
    }
    gw.stop().await;
}
