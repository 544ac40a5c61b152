//! Per-key concurrency locks through the gateway, on memcached, Redis and local tables.

use super::*;

/// 100 concurrent purchases of one item through two processes: the shop never sees two at
/// once, every answer is the shop's or the busy 503, and the lock is free afterwards.
async fn one_purchase_at_a_time(backend: &str) {
    let shop = Shop::start(Duration::from_millis(30)).await;
    let gws = two_gateways(|l, a| lock_yaml(l, a, shop.addr, backend, "closed")).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let addr = gws[i % 2].1;
        tasks.spawn(async move { HttpClient::http1().try_send(buy(addr, 42)).await });
    }
    let (mut ok, mut busy) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap().expect("every request gets an answer");
        match r.status.as_u16() {
            200 => {
                assert_eq!(r.text(), "bought");
                ok += 1;
            }
            503 => {
                let body = r.json();
                assert_eq!(body["error"], "lock_busy", "{body}");
                assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
                assert_eq!(r.header("retry-after"), "1");
                busy += 1;
            }
            other => panic!("unexpected status {other}: {}", r.text()),
        }
    }
    assert_eq!(ok + busy, 100);
    assert!(ok >= 1, "someone bought it");
    assert_eq!(
        shop.max_inside.load(Ordering::SeqCst),
        1,
        "never two purchases at once"
    );
    assert_eq!(shop.served.load(Ordering::SeqCst), ok);
    // Released after each response: another item and the same item both go through now.
    for addr in [gws[0].1, gws[1].1] {
        let r = HttpClient::http1().send(buy(addr, 42)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A request without the key field is 400 and never reaches the shop.
    let r = HttpClient::http1()
        .send(request(
            "POST",
            &format!("http://{}/buy", gws[0].1),
            &[("content-type", "application/x-www-form-urlencoded")],
            "qty=1",
        ))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (400, Some("lock_key_missing"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_two_processes_memcached() {
    let mc = Memcached::start();
    one_purchase_at_a_time(&format!("{{ memcached: \"{}\" }}", mc.addr())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_two_processes_redis() {
    let redis = Redis::start();
    one_purchase_at_a_time(&format!("{{ redis: \"{}\" }}", redis.url())).await;
}

/// A client that gives up mid-purchase frees the lock at once: the abandoned purchase would
/// keep the shop busy for 10 s, yet the same item can be bought through the other process
/// within 3 s of the abort (well before the 10 s ttl too).
async fn lock_released_when_the_client_aborts(backend: &str) {
    let shop = Shop::start(Duration::from_millis(5)).await;
    let gws = two_gateways(|l, a| lock_yaml(l, a, shop.addr, backend, "closed")).await;
    let addr = gws[0].1;
    let abandoned = tokio::spawn(async move {
        HttpClient::http1()
            .try_send(buy_with(addr, 7, &[("x-hold-ms", "10000")]))
            .await
    });
    assert!(
        eventually(Duration::from_secs(5), || async {
            shop.inside.load(Ordering::SeqCst) == 1
        })
        .await
    );
    // Held: the other process answers busy.
    let r = HttpClient::http1().send(buy(gws[1].1, 7)).await;
    assert_eq!(r.status, 503);
    abandoned.abort();
    let _ = abandoned.await;
    let aborted = Instant::now();
    let freed = eventually(Duration::from_secs(3), || async {
        HttpClient::http1()
            .try_send(buy(gws[1].1, 7))
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(
        freed,
        "lock released when the client left, not when the upstream would have finished (10 s)"
    );
    assert!(aborted.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_released_when_the_client_aborts_memcached() {
    let mc = Memcached::start();
    lock_released_when_the_client_aborts(&format!("{{ memcached: \"{}\" }}", mc.addr())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_released_when_the_client_aborts_redis() {
    let redis = Redis::start();
    lock_released_when_the_client_aborts(&format!("{{ redis: \"{}\" }}", redis.url())).await;
}

/// The upstream fails (times out after the route's 1 s, or closes the connection without an
/// answer): the lock is released with the error answer, and the same item can be bought
/// again at once, although the timed-out purchase keeps the shop busy for 10 s.
async fn lock_released_after_an_upstream_failure(backend: &str) {
    let shop = Shop::start(Duration::from_millis(5)).await;
    let yaml = lock_yaml(free_addr(), free_addr(), shop.addr, backend, "closed").replace(
        "    cluster: shop\n",
        "    cluster: shop\n    timeout: 1s\n",
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    for (failure, headers, status, code) in [
        (
            "timeout",
            &[("x-hold-ms", "10000")][..],
            504,
            "upstream_timeout",
        ),
        ("reset", &[("x-reset", "1")][..], 502, "upstream_reset"),
    ] {
        let r = c.send(buy_with(gw.addr, 8, headers)).await;
        assert_eq!(r.status, status, "{failure}: {}", r.text());
        assert_eq!(r.json()["error"], code, "{failure}");
        let failed = Instant::now();
        let again = eventually(Duration::from_secs(3), || async {
            c.try_send(buy(gw.addr, 8))
                .await
                .is_ok_and(|r| r.status == 200)
        })
        .await;
        assert!(
            again,
            "{failure}: the lock was released with the error answer"
        );
        assert!(failed.elapsed() < Duration::from_secs(5), "{failure}");
    }
    // The last purchase's release is counted after its answer reached the client.
    let admin = gw.admin.unwrap();
    let released = r#"sekisho_lock_releases_total{route="buy",result="released"}"#;
    let counted = eventually(Duration::from_secs(3), || async {
        sample(&metrics(admin).await, released) == Some(4.0)
    })
    .await;
    let m = metrics(admin).await;
    assert!(counted, "4 releases expected: {m}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_released_after_an_upstream_failure_redis() {
    let redis = Redis::start();
    lock_released_after_an_upstream_failure(&format!("{{ redis: \"{}\" }}", redis.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_released_after_an_upstream_failure_memcached() {
    let mc = Memcached::start();
    lock_released_after_an_upstream_failure(&format!("{{ memcached: \"{}\" }}", mc.addr())).await;
}

/// The lock server dies mid-test: `on_error: closed` answers 503 quickly, `open` lets
/// purchases through unlocked; both count the backend errors, and the breaker opens.
async fn lock_server_killed(backend: &str, kill: impl FnOnce()) {
    let shop = Shop::start(Duration::from_millis(5)).await;
    let closed = start(&lock_yaml(
        free_addr(),
        free_addr(),
        shop.addr,
        backend,
        "closed",
    ))
    .await;
    let open = start(&lock_yaml(
        free_addr(),
        free_addr(),
        shop.addr,
        backend,
        "open",
    ))
    .await;
    for gw in [&closed, &open] {
        let r = HttpClient::http1().send(buy(gw.addr, 1)).await;
        assert_eq!(r.status, 200, "locks work before the kill");
    }
    kill();
    for _ in 0..5 {
        let t = Instant::now();
        let r = HttpClient::http1().send(buy(closed.addr, 1)).await;
        assert_eq!(r.status, 503, "{}", r.text());
        let body = r.json();
        assert_eq!(body["error"], "lock_unavailable", "{body}");
        assert_eq!(body["request_id"].as_str(), Some(r.header("x-request-id")));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "decided within the bound: {:?}",
            t.elapsed()
        );
        let r = HttpClient::http1().send(buy(open.addr, 1)).await;
        assert_eq!(r.status, 200, "fail open proceeds unlocked");
    }
    for (gw, outcome) in [(&closed, "failed_closed"), (&open, "failed_open")] {
        let m = metrics(gw.admin.unwrap()).await;
        let errors = sample(&m, r#"sekisho_lock_backend_errors_total{route="buy"}"#);
        // The default breaker opens after 3 failures; later requests skip the backend.
        assert!(
            errors.is_some_and(|n| n >= 3.0),
            "{outcome}: {errors:?}\n{m}"
        );
        let series = format!(r#"sekisho_lock_requests_total{{route="buy",outcome="{outcome}"}}"#);
        assert_eq!(sample(&m, &series), Some(5.0), "{m}");
        assert_eq!(
            sample(&m, r#"sekisho_lock_breaker_open{route="buy"}"#),
            Some(1.0),
            "{m}"
        );
    }
    closed.stop().await;
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_server_killed_fails_per_config_memcached() {
    let mut mc = Memcached::start();
    let backend = format!("{{ memcached: \"{}\" }}", mc.addr());
    lock_server_killed(&backend, || mc.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_server_killed_fails_per_config_redis() {
    let mut redis = Redis::start();
    let backend = format!("{{ redis: \"{}\" }}", redis.url());
    lock_server_killed(&backend, || redis.stop()).await;
}

/// Regression: a client could trip the memcached lock breaker for everyone with lock keys over
/// memcached's 250 bytes (three such requests counted as backend failures). They are the
/// client's 400 now, the backend is never asked, and the next normal purchase locks at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_key_too_long_is_400_and_does_not_open_the_breaker() {
    let mc = Memcached::start();
    let shop = Shop::start(Duration::from_millis(5)).await;
    let backend = format!("{{ memcached: \"{}\" }}", mc.addr());
    let gw = start(&lock_yaml(
        free_addr(),
        free_addr(),
        shop.addr,
        &backend,
        "closed",
    ))
    .await;
    let admin = gw.admin.unwrap();
    let c = HttpClient::http1();
    let long = "x".repeat(300);
    for _ in 0..5 {
        let r = c.send(buy(gw.addr, &long)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        let body = r.json();
        assert_eq!(body["error"], "lock_key_too_long", "{body}");
        assert_eq!(body["request_id"].as_str(), Some(r.header("x-request-id")));
    }
    assert_eq!(shop.served.load(Ordering::SeqCst), 0, "never proxied");
    let r = c.send(buy(gw.addr, 42)).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "bought"));
    let m = metrics(admin).await;
    for (series, want) in [
        (
            r#"sekisho_lock_requests_total{route="buy",outcome="key_too_long"}"#,
            5.0,
        ),
        (
            r#"sekisho_lock_requests_total{route="buy",outcome="acquired"}"#,
            1.0,
        ),
        (
            r#"sekisho_lock_requests_total{route="buy",outcome="failed_closed"}"#,
            0.0,
        ),
        (r#"sekisho_lock_backend_errors_total{route="buy"}"#, 0.0),
        (r#"sekisho_lock_breaker_open{route="buy"}"#, 0.0),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}\n{m}");
    }
    gw.stop().await;
}

/// Lock keys from a path parameter, the query, a header and a JSON body field, each through
/// the gateway: the same key waits (503), another key passes, a request without the field is
/// 400. A lock route that reads the body buffers at most 1 MiB: past it, 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_keys_from_path_query_header_and_json() {
    let shop = Shop::start(Duration::from_millis(5)).await;
    let lock = |key: &str| {
        format!(
            "    lock: {{ key: \"{key}\", backend: local, wait: {{ attempts: 1, backoff: 10ms }} }}\n"
        )
    };
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
routes:
  - name: by-path
    match: {{ path_template: "/items/{{id}}/buy" }}
    cluster: shop
{}  - name: by-query
    match: {{ path: /reserve }}
    cluster: shop
{}  - name: by-header
    match: {{ path: /checkout }}
    cluster: shop
{}  - name: by-json
    match: {{ path: /order, methods: [POST] }}
    cluster: shop
{}clusters: [{{ name: shop, endpoints: ["{}"] }}]
"#,
        lock("item/{path.id}"),
        lock("seat/{query.seat}"),
        lock("cart/{header.x-cart}"),
        lock("order/{json.order.item}"),
        shop.addr,
    );
    let gw = start(&yaml).await;
    let json = |item: &str| match item {
        "" => r#"{"order":{"qty":1}}"#.to_string(),
        i => format!(r#"{{"order":{{"item":"{i}","qty":1}}}}"#),
    };
    // (route, request for key A, for key B, without the field)
    type Make = Box<dyn Fn(&str, &[(&str, &str)]) -> http::Request<Full<Bytes>>>;
    let addr = gw.addr;
    let cases: Vec<(&str, Make)> = vec![
        (
            "by-path",
            Box::new(move |k, h| match k {
                "" => get(&format!("http://{addr}/items//buy"), h),
                k => get(&format!("http://{addr}/items/{k}/buy"), h),
            }),
        ),
        (
            "by-query",
            Box::new(move |k, h| get(&format!("http://{addr}/reserve?row=1&seat={k}"), h)),
        ),
        (
            "by-header",
            Box::new(move |k, h| {
                let mut h = h.to_vec();
                if !k.is_empty() {
                    h.push(("x-cart", k));
                }
                get(&format!("http://{addr}/checkout"), &h)
            }),
        ),
        (
            "by-json",
            Box::new(move |k, h| {
                let mut h = h.to_vec();
                h.push(("content-type", "application/json"));
                request("POST", &format!("http://{addr}/order"), &h, json(k))
            }),
        ),
    ];
    let c = HttpClient::http1();
    for (route, make) in &cases {
        let holder = {
            let req = make("A", &[("x-hold-ms", "2000")]);
            tokio::spawn(async move { HttpClient::http1().send(req).await })
        };
        assert!(
            eventually(Duration::from_secs(5), || async {
                shop.inside.load(Ordering::SeqCst) == 1
            })
            .await,
            "{route}: the holder reached the shop"
        );
        let r = c.send(make("A", &[])).await;
        assert_eq!(r.status, 503, "{route}: same key: {}", r.text());
        assert_eq!(r.json()["error"], "lock_busy", "{route}");
        let r = c.send(make("B", &[])).await;
        assert_eq!(r.status, 200, "{route}: another key: {}", r.text());
        let r = c.send(make("", &[])).await;
        // `/items//buy` normalizes to `/items/buy`: no route, so never an empty key.
        let want = if *route == "by-path" { 404 } else { 400 };
        assert_eq!(r.status, want, "{route}: no field: {}", r.text());
        if want == 400 {
            assert_eq!(r.json()["error"], "lock_key_missing", "{route}");
        }
        let r = holder.await.unwrap();
        assert_eq!(r.status, 200, "{route}: the holder is served");
        assert!(
            eventually(Duration::from_secs(5), || async {
                c.send(make("A", &[])).await.status == 200
            })
            .await,
            "{route}: released after the holder's answer"
        );
    }

    // The JSON-keyed route buffers the body to find the key: at most 1 MiB, then 413.
    let big = format!(
        r#"{{"order":{{"item":"A"}},"pad":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let before = shop.served.load(Ordering::SeqCst);
    let r = c
        .send(request(
            "POST",
            &gw.url("/order"),
            &[("content-type", "application/json")],
            big,
        ))
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "payload_too_large", "{body}");
    assert_eq!(body["request_id"].as_str(), Some(r.header("x-request-id")));
    assert_eq!(shop.served.load(Ordering::SeqCst), before, "never proxied");
    gw.stop().await;
}
