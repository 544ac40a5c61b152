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
    let yaml = include_str!("../../../../fuzz/http1-gateway.yaml")
        .replace("UPSTREAM", &up.addr().to_string());
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
