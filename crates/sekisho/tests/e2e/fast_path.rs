//! The HTTP/1.1 fast path: framing cases from real and scripted upstreams, pipelining,
//! stale pooled connections, client aborts, handing a connection to the general pipeline
//! and getting it back, and strict head parsing with JSON errors.

use std::time::Duration;

use sekisho_test_support::client::{HttpClient, KeepAlive};
use sekisho_test_support::raw_upstream::{Answer, RawUpstream};
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::start;

fn config(cluster_addr: std::net::SocketAddr, extra_routes: &str) -> String {
    format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
{extra_routes}  - name: all
    match: {{ path_prefix: / }}
    cluster: svc
    response_headers: {{ set: {{ x-edited: "yes" }} }}
clusters:
  - {{ name: svc, endpoints: ["{cluster_addr}"] }}
"#
    )
}

/// `sekisho_http1_fast_path_requests_total` and `_handovers_total` from `/metrics`.
async fn fast_counters(admin: std::net::SocketAddr) -> (u64, u64) {
    let text = HttpClient::http1().get(admin, "/metrics").await.text();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    (
        value("sekisho_http1_fast_path_requests_total"),
        value("sekisho_http1_fast_path_handovers_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let up = Upstream::start("echo", |s| Reply::text(s.uri.clone())).await;
    let gw = start(&config(up.addr(), "")).await;
    let mut c = KeepAlive::connect(gw.addr).await;
    c.write(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b?x=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    for want in ["/a", "/b?x=1", "/c"] {
        let r = c.read(false).await.expect("response");
        assert_eq!((r.status, r.text().as_str()), (200, want));
        assert_eq!(r.header("x-edited"), "yes", "route edits apply");
        assert!(!r.header("x-request-id").is_empty());
        assert!(!r.header("date").is_empty());
    }
    let (served, handed) = fast_counters(gw.admin.unwrap()).await;
    assert_eq!((served, handed), (3, 0), "all three took the fast path");
    assert_eq!(up.connections(), 1, "one pooled upstream connection");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_framings_are_relayed_and_connections_reused_only_when_clean() {
    let up = RawUpstream::start(|r| {
        let path = r.head.split_whitespace().nth(1).unwrap_or("").to_string();
        let b = |s: &str| s.as_bytes().to_vec();
        match path.as_str() {
            "/chunked" => Answer::Bytes(b(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            )),
            "/close" => Answer::BytesThenClose(b("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")),
            "/extra" => Answer::Bytes(b("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")),
            "/head" => Answer::Bytes(b("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")),
            "/empty" => Answer::Bytes(b("HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n")),
            "/interim" => Answer::Bytes(b(
                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            )),
            "/ambiguous" => Answer::Bytes(b(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
            )),
            "/hop" => Answer::Bytes(b(
                "HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
            )),
            _ => Answer::ok("default"),
        }
    })
    .await;
    let gw = start(&config(up.addr(), "")).await;
    let mut c = KeepAlive::connect(gw.addr).await;
    let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();

    for _ in 0..2 {
        let r = c.send(&get("/chunked"), false).await;
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        assert!(r.chunked, "chunked passes through");
        assert_eq!(r.header("x-up"), "1");
    }
    let r = c.send(&get("/close"), false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "until close"));
    assert!(
        r.chunked,
        "a close-delimited body reaches the client chunked"
    );
    assert!(
        r.header("connection").is_empty(),
        "the client connection stays"
    );
    let r = c.send(&get("/extra"), false).await;
    assert_eq!(r.text(), "ok", "exactly Content-Length bytes");
    let r = c
        .send(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n", true)
        .await;
    assert_eq!((r.status, r.header("content-length")), (200, "10"));
    let r = c.send(&get("/empty"), false).await;
    assert_eq!((r.status, r.header("x-up")), (204, "1"));
    let r = c.send(&get("/interim"), false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "1xx skipped");
    let r = c.send(&get("/hop"), false).await;
    assert_eq!(r.text(), "ok");
    assert!(
        r.header("x-secret").is_empty() && r.header("keep-alive").is_empty(),
        "hop-by-hop fields and the ones Connection names are removed: {:?}",
        r.headers
    );
    let r = c.send(&get("/ambiguous"), false).await;
    assert_eq!(r.status, 502, "CL with TE from the upstream: {}", r.text());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["error"],
        "upstream_protocol_error"
    );
    let r = c.send(&get("/after"), false).await;
    assert_eq!(r.text(), "default", "the client connection survived it all");

    // Which upstream connection carried what: reused after clean exchanges only.
    let seen: Vec<(String, usize)> = up
        .seen()
        .iter()
        .map(|r| {
            let path = r.head.split_whitespace().nth(1).unwrap_or("").to_string();
            (path, r.conn)
        })
        .collect();
    let conn_of = |p: &str| seen.iter().find(|(s, _)| s == p).map(|(_, c)| *c).unwrap();
    assert_eq!(
        seen.iter()
            .filter(|(p, _)| p == "/chunked")
            .map(|(_, c)| *c)
            .collect::<Vec<_>>(),
        vec![0, 0],
        "a clean chunked exchange keeps the connection"
    );
    assert_eq!(conn_of("/close"), 0);
    assert_eq!(
        conn_of("/extra"),
        1,
        "closed by the upstream: a new connection"
    );
    assert_eq!(conn_of("/head"), 2, "bytes past Content-Length: not reused");
    assert_eq!(conn_of("/empty"), 2);
    assert_eq!(conn_of("/interim"), 2);
    assert_eq!(conn_of("/hop"), 2);
    assert_eq!(conn_of("/ambiguous"), 2);
    assert_eq!(
        conn_of("/after"),
        3,
        "a refused answer closes its connection"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pooled_connection_is_replaced_for_idempotent_requests_only() {
    // Each connection answers its first request, then closes on the next one without a
    // word, like a server whose keep-alive timeout fired just as the request arrived.
    let up = RawUpstream::start(|r| {
        if r.index == 0 {
            Answer::ok(&format!("conn {}", r.conn))
        } else {
            Answer::Close
        }
    })
    .await;
    let gw = start(&config(up.addr(), "")).await;
    let mut c = KeepAlive::connect(gw.addr).await;
    let r = c.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n", false).await;
    assert_eq!(r.text(), "conn 0");
    let r = c.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n", false).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "conn 1"),
        "resent on a new connection"
    );
    let r = c
        .send(
            b"POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
            false,
        )
        .await;
    assert_eq!(r.status, 502, "a POST is not sent twice: {}", r.text());
    assert_eq!(
        up.seen()
            .iter()
            .filter(|r| r.head.starts_with("POST"))
            .count(),
        1
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hands_over_to_the_general_pipeline_and_comes_back_after_parking() {
    let up = Upstream::start("echo", |s| Reply::text(s.uri.clone())).await;
    let limited = r#"  - name: limited
    match: { path_prefix: /limited }
    cluster: svc
    rate_limit: { limit: 1000, period: 1s }
"#;
    let gw = start(&config(up.addr(), limited)).await;
    let admin = gw.admin.unwrap();
    let mut c = KeepAlive::connect(gw.addr).await;
    let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    assert_eq!(c.send(&get("/fast"), false).await.text(), "/fast");
    let r = c.send(&get("/limited"), false).await;
    assert_eq!(r.text(), "/limited");
    assert!(
        !r.header("ratelimit-limit").is_empty()
            || !r.header("ratelimit").is_empty()
            || !r.header("ratelimit-policy").is_empty(),
        "the general pipeline ran the policy: {:?}",
        r.headers
    );
    assert_eq!(c.send(&get("/limited"), false).await.text(), "/limited");
    // Still with hyper (the connection has not idled): a fast route is served there too.
    assert_eq!(c.send(&get("/fast2"), false).await.text(), "/fast2");
    assert_eq!(fast_counters(admin).await, (1, 1));
    // Idle past the park delay: the next request starts in the fast path again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.send(&get("/fast3"), false).await.text(), "/fast3");
    assert_eq!(fast_counters(admin).await, (2, 1));

    // Requests the fast path never takes, each on its own connection.
    let handed_before = fast_counters(admin).await.1;
    let mut c = KeepAlive::connect(gw.addr).await;
    let r = c
        .send(
            b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            false,
        )
        .await;
    // hyper answers 100 Continue first when asked; skip it.
    let r = if r.status == 100 {
        c.read(false).await.unwrap()
    } else {
        r
    };
    assert_eq!((r.status, r.text().as_str()), (200, "/e"));
    let mut c = KeepAlive::connect(gw.addr).await;
    let r = c.send(b"GET /old HTTP/1.0\r\nHost: t\r\n\r\n", false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "/old"));
    let mut c = KeepAlive::connect(gw.addr).await;
    let r = c
        .send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", false)
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "/c"));
    assert_eq!(fast_counters(admin).await.1, handed_before + 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_and_client_aborts() {
    let up = Upstream::start("echo", |s| {
        if s.uri == "/slow" {
            Reply::text("late").delay(Duration::from_millis(800))
        } else {
            Reply::text(format!("{} bytes", s.body.len()))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let yaml = config(up.addr(), "").replace(
        r#"access_log: { path: "off" }"#,
        &format!("access_log: {{ path: \"{}\" }}", log.display()),
    );
    let gw = start(&yaml).await;

    // A body that arrives in pieces is forwarded whole.
    let body = vec![b'x'; 20_000];
    let mut c = KeepAlive::connect(gw.addr).await;
    c.write(
        format!(
            "PUT /b HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    for part in body.chunks(7_000) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.write(part).await;
    }
    let r = c.read(false).await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "20000 bytes"));

    // A client that leaves while the upstream thinks: 499 in the log, nothing breaks.
    let mut gone = KeepAlive::connect(gw.addr).await;
    gone.write(b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Request-Id: left-early\r\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(gone);
    let r = c
        .send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n", false)
        .await;
    assert_eq!(r.status, 200);
    gw.stop().await;
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("left-early"))
        .unwrap_or_else(|| panic!("no log line for the aborted request:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["status"], 499, "{line}");
    assert_eq!(v["route"], "all");
    let ok: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("\"uri\":\"/b\"")).unwrap()).unwrap();
    assert_eq!(
        (ok["status"].as_u64(), ok["method"].as_str()),
        (Some(200), Some("PUT"))
    );
    assert_eq!(ok["cluster"], "svc");
    assert!(ok["upstream_addr"].as_str().is_some() && ok["upstream_time"].as_f64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_heads_get_json_errors_and_close() {
    let up = Upstream::named("svc").await;
    let gw = start(&config(up.addr(), "")).await;
    for (raw, status, code) in [
        (
            &b"GET / HTTP/1.1\r\nHost: t\r\nX-Bad: a\x01b\r\n\r\n"[..],
            400,
            "bad_request",
        ),
        (b"GET /a<b HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            "ambiguous_request",
        ),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "bad_host"),
    ] {
        let mut c = KeepAlive::connect(gw.addr).await;
        let r = c.send(raw, false).await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(raw));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], code);
        assert_eq!(v["request_id"].as_str().map(str::len), Some(32));
        assert_eq!(r.header("connection"), "close");
        assert!(
            c.closed_within(Duration::from_secs(3)).await,
            "closed after the answer"
        );
    }
    let many: String = (0..200).map(|i| format!("x-{i}: v\r\n")).collect();
    let mut c = KeepAlive::connect(gw.addr).await;
    let r = c
        .send(
            format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
            false,
        )
        .await;
    assert_eq!(r.status, 431);
    assert_eq!(up.count(), 0, "nothing reached the upstream");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_sends_everything_through_the_general_pipeline() {
    let up = Upstream::start("echo", |s| Reply::text(s.uri.clone())).await;
    let yaml = config(up.addr(), "").replace(
        r#"listeners: [{ name: public, listen: "127.0.0.1:0" }]"#,
        r#"listeners: [{ name: public, listen: "127.0.0.1:0", http1_fast_path: false }]"#,
    );
    let gw = start(&yaml).await;
    let mut c = KeepAlive::connect(gw.addr).await;
    for p in ["/a", "/b"] {
        let r = c
            .send(
                format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
                false,
            )
            .await;
        assert_eq!(
            (r.status, r.text().as_str(), r.header("x-edited")),
            (200, p, "yes")
        );
    }
    assert_eq!(fast_counters(gw.admin.unwrap()).await, (0, 0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_per_try_timeouts_on_the_fast_path() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // 503 on every odd request; /slow takes longer than the per-try timeout the first time.
    let n = Arc::new(AtomicUsize::new(0));
    let slow_seen = Arc::new(AtomicUsize::new(0));
    let (n2, s2) = (n.clone(), slow_seen.clone());
    let up = Upstream::start("flaky", move |s| {
        if s.uri == "/slow" {
            if s2.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::text("late").delay(Duration::from_millis(600));
            }
            return Reply::text("quick");
        }
        if n2.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            Reply::text("busy").status(503)
        } else {
            Reply::text("fine")
        }
    })
    .await;
    let retried = r#"  - name: retried
    match: { host: t, path_prefix: / }
    cluster: svc
    per_try_timeout: 200ms
    retry: { attempts: 2, on: [5xx], backoff: { base: 5ms, max: 10ms } }
"#;
    let gw = start(&config(up.addr(), retried)).await;
    let mut c = KeepAlive::connect(gw.addr).await;
    let r = c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n", false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "fine"), "503 retried");
    let r = c
        .send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", false)
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "quick"),
        "per-try timeout retried"
    );
    let r = c
        .send(
            b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx",
            false,
        )
        .await;
    assert_eq!(r.status, 503, "a POST is not replayed after a 5xx");
    assert_eq!(
        fast_counters(gw.admin.unwrap()).await,
        (3, 0),
        "all on the fast path"
    );
    assert_eq!(up.count(), 2 + 2 + 1);
    gw.stop().await;
}
