//! Proxy semantics: forwarded headers, ids, trace context, hop-by-hop, buffering, streaming,
//! upgrades, and a real nginx as the origin.

use std::time::Duration;

use sekisho_test_support::client::{raw, HttpClient};
use sekisho_test_support::nginx::Nginx;
use sekisho_test_support::upstream::{Reply, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{cluster, get, request, start};

fn one_route(extra: &str, up: &Upstream) -> String {
    format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: all
    match: {{ path_prefix: / }}
    cluster: svc
{extra}
clusters:
{}"#,
        cluster("svc", up.addr())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_request_id_and_trace_context() {
    let up = Upstream::named("svc").await;
    let gw = start(&one_route("", &up)).await;
    let c = HttpClient::http1();

    // A generated id reaches the upstream and comes back to the client.
    let r = c.get(gw.addr, "/a").await;
    let id = r.header("x-request-id").to_string();
    assert!(!id.is_empty());
    let s = up.seen().pop().unwrap();
    assert_eq!(s.headers["x-request-id"], id.as_str());
    assert_eq!(s.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(s.headers["x-forwarded-proto"], "http");
    assert_eq!(s.headers["x-forwarded-host"], gw.addr.to_string().as_str());
    assert!(s.headers["traceparent"]
        .to_str()
        .unwrap()
        .starts_with("00-"));

    // A client's id and trace are propagated: same trace id, a new parent id.
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = c
        .send(get(
            &gw.url("/b"),
            &[
                ("x-request-id", "client-id-1"),
                ("traceparent", tp),
                ("x-forwarded-for", "10.1.2.3"),
            ],
        ))
        .await;
    assert_eq!(r.header("x-request-id"), "client-id-1");
    let s = up.seen().pop().unwrap();
    assert_eq!(s.headers["x-request-id"], "client-id-1");
    assert_eq!(s.headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    let sent = s.headers["traceparent"].to_str().unwrap();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );
    assert!(!sent.contains("00f067aa0ba902b7"), "new span id: {sent}");
    assert!(sent.ends_with("-01"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_not_forwarded() {
    let up = Upstream::start("svc", |_| {
        Reply::text("ok")
            .header("connection", "x-up-private")
            .header("x-up-private", "1")
            .header("keep-alive", "timeout=5")
    })
    .await;
    let gw = start(&one_route("", &up)).await;
    let req = b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: close, x-private\r\nX-Private: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\r\n";
    let r = raw(gw.addr, req).await;
    assert_eq!(r.status, 200, "{}", r.head);
    let head = r.head.to_ascii_lowercase();
    assert!(!head.contains("x-up-private"), "{head}");
    assert!(!head.contains("keep-alive: timeout"), "{head}");
    let s = up.seen().pop().unwrap();
    for h in ["x-private", "keep-alive", "proxy-connection"] {
        assert!(s.headers.get(h).is_none(), "{h} forwarded");
    }
    assert_eq!(s.headers["te"], "trailers");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_route_413_and_full_body() {
    let up = Upstream::start("svc", |s| Reply::text(format!("{}", s.body.len()))).await;
    let gw = start(&one_route("    buffer_request: { max_bytes: 1KiB }", &up)).await;
    let c = HttpClient::http1();
    // Under the limit: the upstream gets the whole body with a Content-Length.
    let r = c
        .send(request("POST", &gw.url("/p"), &[], vec![b'x'; 1000]))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "1000");
    // Declared too large: 413 before reading, JSON body with the request id.
    let r = c
        .send(request("POST", &gw.url("/p"), &[], vec![b'x'; 2000]))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["request_id"], r.header("x-request-id"));
    // Chunked (no length) past the limit: 413 too.
    let mut body = String::new();
    for _ in 0..3 {
        body.push_str("200\r\n");
        body.push_str(&"y".repeat(512));
        body.push_str("\r\n");
    }
    body.push_str("0\r\n\r\n");
    let req = format!("POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}");
    let r = raw(gw.addr, req.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", r.head);
    assert_eq!(up.count(), 1, "nothing past the limit reached the upstream");
    gw.stop().await;
}

/// A large body streams both ways without buffering on a plain route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_through() {
    let up = Upstream::start("svc", |s| {
        Reply::text(String::from_utf8_lossy(&s.body).to_string())
    })
    .await;
    let gw = start(&one_route("", &up)).await;
    let c = HttpClient::http1();
    let body = "z".repeat(4 * 1024 * 1024);
    let r = c
        .send(request("POST", &gw.url("/big"), &[], body.clone()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    gw.stop().await;
}

/// WebSocket-style upgrade: after 101, bytes flow both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_passes_through() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(text.contains("upgrade: echo"), "{text}");
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
        )
        .await
        .unwrap();
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
    });
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: ws, match: {{ path_prefix: / }}, cluster: ws }}]
clusters:
{}"#,
        cluster("ws", up_addr)
    );
    let gw = start(&yaml).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for msg in [&b"ping"[..], b"second message"] {
        // A tunnel idle past the HTTP/1 park delay stays a tunnel (regression: parking).
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.write_all(msg).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], msg);
    }
    gw.stop().await;
}

/// nginx as a real origin behind the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_origin() {
    let nginx = Nginx::start(
        "    location /static/ { return 200 \"from nginx $request_uri $http_x_forwarded_for\\n\"; }\n    location / { return 404; }",
    )
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: legacy, match: {{ path_prefix: / }}, cluster: nginx }}]
clusters:
{}"#,
        cluster("nginx", nginx.addr())
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    for _ in 0..3 {
        let r = c.get(gw.addr, "/static/app.js?v=2").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "from nginx /static/app.js?v=2 127.0.0.1\n");
    }
    let r = c.get(gw.addr, "/missing").await;
    assert_eq!(r.status, 404, "upstream statuses pass through");
    gw.stop().await;
}
