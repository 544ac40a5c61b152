//! Retries: a dead endpoint costs no failed request, 5xx and per-try timeouts are retried
//! for idempotent methods, a POST is not replayed after the upstream may have seen it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::free_addr;
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::{request, start};

/// One of three endpoints killed under load: no idempotent request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_killed_under_load_costs_no_request() {
    let ups = [
        Upstream::named("a").await,
        Upstream::named("b").await,
        Upstream::named("c").await,
    ];
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: api
    match: {{ path_prefix: / }}
    cluster: svc
    retry: {{ attempts: 2, on: [connect-failure, reset, gateway-error] }}
clusters:
  - name: svc
    lb: round_robin
    connect_timeout: 300ms
    endpoints: ["{}", "{}", "{}"]
"#,
        ups[0].addr(),
        ups[1].addr(),
        ups[2].addr()
    );
    let gw = start(&yaml).await;
    let failed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (failed, url) = (failed.clone(), gw.url("/item"));
        clients.push(tokio::spawn(async move {
            let c = HttpClient::http1();
            for _ in 0..300 {
                match c.try_send(request("GET", &url, &[], "")).await {
                    Ok(r) if r.status == 200 => {}
                    Ok(r) => {
                        eprintln!("status {}: {}", r.status, r.text());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("error {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Killed under load: once a sixth of the requests are served, not at a fixed time (a
    // fast machine finishes them all within a fixed delay).
    let deadline = Instant::now() + Duration::from_secs(10);
    while ups.iter().map(|u| u.count()).sum::<usize>() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ups[1].stop();
    let before = ups[1].count();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no failed request with one endpoint dead"
    );
    assert_eq!(
        ups[1].count(),
        before,
        "the dead endpoint served nothing after it died"
    );
    // Every request was served by someone: the dead one before it died, the others after.
    let served = ups[0].count() + before + ups[2].count();
    assert!(served >= 1200, "served {served} of 1200");
    assert!(
        ups[0].count() + ups[2].count() >= 900,
        "most requests came after the kill"
    );
    assert!(ups[0].count() > 0 && ups[2].count() > 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_retries_per_try_timeout_and_non_idempotent_methods() {
    // Answers 503 to every other request: a retry always lands on a 200.
    let flaky_n = Arc::new(AtomicUsize::new(0));
    let n = flaky_n.clone();
    let flaky = Upstream::start("flaky", move |_| {
        if n.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            Reply::text("busy").status(503)
        } else {
            Reply::text("ok")
        }
    })
    .await;
    let slow = Upstream::start("slow", |_| {
        Reply::text("slow").delay(Duration::from_secs(3))
    })
    .await;
    let fast = Upstream::named("fast").await;
    let dead = free_addr();
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: flaky
    match: {{ path_prefix: /flaky }}
    cluster: flaky
    retry: {{ attempts: 1, on: [gateway-error] }}
  - name: hedge
    match: {{ path_prefix: /slow }}
    cluster: slow-fast
    per_try_timeout: 300ms
    timeout: 5s
    retry: {{ attempts: 2, on: [reset], backoff: {{ base: 1ms, max: 5ms }} }}
  - name: post-dead
    match: {{ path_prefix: /dead }}
    cluster: dead-fast
    retry: {{ attempts: 2 }}
clusters:
  - {{ name: flaky, endpoints: ["{}"] }}
  - {{ name: slow-fast, lb: round_robin, endpoints: ["{}", "{}"] }}
  - {{ name: dead-fast, lb: round_robin, connect_timeout: 300ms, endpoints: ["{}", "{}"] }}
"#,
        flaky.addr(),
        slow.addr(),
        fast.addr(),
        dead,
        fast.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();

    // GET: the 503 is retried and the client sees the 200.
    for _ in 0..4 {
        let r = c.get(gw.addr, "/flaky").await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    }
    assert_eq!(flaky.count(), 8, "every GET took two attempts");
    // POST is not idempotent: its 503 comes back as it is.
    let r = c.send(request("POST", &gw.url("/flaky"), &[], "x")).await;
    assert_eq!(r.status, 503);
    assert_eq!(flaky.count(), 9, "the POST was sent once");

    // A slow endpoint: the per-try timeout moves GETs to the fast one well before 3 s.
    for _ in 0..4 {
        let started = Instant::now();
        let r = c.get(gw.addr, "/slow").await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "fast"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    // A connect failure sent nothing: even a POST is retried (on the live endpoint).
    for _ in 0..4 {
        let r = c
            .send(request("POST", &gw.url("/dead"), &[], "payload"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(fast
        .seen()
        .iter()
        .filter(|s| s.method == http::Method::POST)
        .all(|s| s.body.as_ref() == b"payload"));
    gw.stop().await;
}
