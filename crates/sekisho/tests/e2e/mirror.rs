//! Mirroring: a share of a route's requests is copied to a shadow cluster, whose answers
//! (and slowness) never reach the client.

use std::time::{Duration, Instant};

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::eventually;
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::{request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_copies_without_slowing_the_real_request() {
    let real = Upstream::named("real").await;
    let shadow = Upstream::start("shadow", |_| {
        Reply::text("shadow")
            .status(500)
            .delay(Duration::from_millis(500))
    })
    .await;
    let half = Upstream::named("half").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - {{ name: all, match: {{ path_prefix: /all }}, cluster: real, mirror: {{ cluster: shadow }} }}
  - {{ name: some, match: {{ path_prefix: /some }}, cluster: real, mirror: {{ cluster: half, percent: 50 }} }}
  - {{ name: none, match: {{ path_prefix: /none }}, cluster: real, mirror: {{ cluster: half, percent: 0 }} }}
clusters:
  - {{ name: real, endpoints: ["{}"] }}
  - {{ name: shadow, endpoints: ["{}"] }}
  - {{ name: half, endpoints: ["{}"] }}
"#,
        real.addr(),
        shadow.addr(),
        half.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    for i in 0..10 {
        let started = Instant::now();
        let r = c
            .send(request(
                "POST",
                &gw.url(&format!("/all/{i}")),
                &[("x-k", "v")],
                "body",
            ))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.text().as_str()),
            (200, "real"),
            "the shadow's answer never reaches the client"
        );
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "the slow shadow does not slow the request"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || async { shadow.count() == 10 }).await,
        "every request mirrored"
    );
    let copy = shadow
        .seen()
        .into_iter()
        .find(|s| s.uri == "/all/3")
        .expect("copy of /all/3");
    assert_eq!(
        (
            copy.method.as_str(),
            copy.body.as_ref(),
            copy.headers["x-k"].as_bytes()
        ),
        ("POST", &b"body"[..], &b"v"[..])
    );

    for _ in 0..200 {
        c.get(gw.addr, "/some").await;
        c.get(gw.addr, "/none").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = half.count();
    assert!(
        (50..=150).contains(&n),
        "about half of 200 mirrored, got {n}"
    );
    assert_eq!(half.seen().iter().filter(|s| s.uri == "/none").count(), 0);
    gw.stop().await;
}
