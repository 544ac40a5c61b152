//! Replays the saved fuzz inputs of `fuzz/regressions/http1` against a live gateway with the
//! fuzz target's config: each gets an answer or a closed connection, and the gateway keeps
//! serving normal requests afterwards.

use std::time::Duration;

use sekisho_test_support::client::{raw, HttpClient};
use sekisho_test_support::upstream::Upstream;

use crate::common::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_http1_fuzz_inputs() {
    let up = Upstream::named("up").await;
    let yaml = format!(
        r#"
access_log: {{ path: "off" }}
listeners:
  - name: public
    listen: "127.0.0.1:0"
    limits: {{ header_read_timeout: 200ms, idle_timeout: 200ms, max_header_bytes: 16KiB }}
routes:
  - {{ name: guard, match: {{ path_prefix: /admin/ }}, direct_response: {{ status: 403 }} }}
  - {{ name: buffered, match: {{ path_prefix: /buf/ }}, cluster: up, buffer_request: {{ max_bytes: 1KiB }} }}
  - {{ name: retried, match: {{ path_prefix: /retry/ }}, cluster: up, retry: {{ attempts: 1 }} }}
  - {{ name: items, match: {{ path_template: "/v1/items/{{id}}", methods: [GET] }}, cluster: up }}
  - {{ name: all, match: {{ path_prefix: / }}, cluster: up }}
clusters: [{{ name: up, endpoints: ["{}"] }}]
"#,
        up.addr()
    );
    let gw = start(&yaml).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/http1");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), raw(gw.addr, &data)).await;
        n += 1;
    }
    assert!(n >= 5, "expected the saved inputs in {}", dir.display());
    assert_eq!(
        HttpClient::http1().get(gw.addr, "/v1/items/1").await.status,
        200,
        "still serving"
    );
    gw.stop().await;
}
