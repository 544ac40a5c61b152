//! gRPC-Web through a transcoding route, against a real gRPC server (Python grpcio): unary
//! calls, statuses in the trailer frame and in headers, server streams that stream, and
//! the base64 `-text` variant, as a browser's gRPC-Web client sends them.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sekisho_test_support::client::{HttpClient, TestResponse};
use sekisho_test_support::grpc_server::{build_descriptor_set, GrpcServer};
use sekisho_transcode::frame::FrameDecoder;
use sekisho_transcode::grpc_web::{parse_trailers, text_encode, TextDecoder, TRAILER_FLAG};

use crate::common::{request, start, Gw};

/// A gRPC frame around `msg`.
fn frame(msg: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, u8::try_from(msg.len()).unwrap()];
    v.extend_from_slice(msg);
    v
}

/// Splits a binary gRPC-Web body into its messages and its trailer frame.
fn split(body: &[u8]) -> (Vec<Bytes>, Option<HeaderMap>) {
    let mut frames = Vec::new();
    let mut d = FrameDecoder::new(1 << 20);
    d.push(Bytes::copy_from_slice(body), &mut frames).unwrap();
    assert!(d.is_empty(), "a partial frame at the end: {body:?}");
    let mut messages = Vec::new();
    let mut trailers = None;
    for f in frames {
        assert!(trailers.is_none(), "a frame after the trailer frame");
        if f.flags & TRAILER_FLAG != 0 {
            trailers = Some(parse_trailers(&f.payload).unwrap());
        } else {
            messages.push(f.payload);
        }
    }
    (messages, trailers)
}

/// `theme N` shelves as the server encodes them (`Shelf { id, theme }`).
fn shelf(id: u8) -> Vec<u8> {
    let theme = format!("theme {id}");
    let mut v = vec![0x08, id, 0x12, u8::try_from(theme.len()).unwrap()];
    v.extend_from_slice(theme.as_bytes());
    v
}

async fn gateway() -> (Gw, GrpcServer, tempfile::TempDir) {
    gateway_with("").await
}

/// [`gateway`] with `route_extra` (YAML lines at the route's indentation) added to the route.
async fn gateway_with(route_extra: &str) -> (Gw, GrpcServer, tempfile::TempDir) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transcode/tests/grpc");
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("bookstore.pb");
    std::fs::write(&pb, build_descriptor_set(&dir, "bookstore.proto")).unwrap();
    let server = GrpcServer::start(&dir.join("server.py")).await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: bookstore
    match: {{ path_prefix: / }}
    cluster: bookstore
    timeout: 20s
    transcode: {{ descriptors: "{}", services: [bookstore.v1.Bookstore] }}
{route_extra}clusters: [{{ name: bookstore, protocol: h2c, endpoints: ["{}"] }}]
"#,
        pb.display(),
        server.addr()
    );
    (start(&yaml).await, server, tmp)
}

async fn call(gw: &Gw, method: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
    HttpClient::http1()
        .send(request(
            "POST",
            &gw.url(&format!("/bookstore.v1.Bookstore/{method}")),
            &[("content-type", content_type), ("x-grpc-web", "1")],
            body,
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_unary_errors_and_streams() {
    let (gw, _server, _tmp) = gateway().await;

    // Unary: one message, then grpc-status 0 in the trailer frame.
    let r = call(
        &gw,
        "GetShelf",
        "application/grpc-web+proto",
        frame(&[0x08, 3]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/grpc-web+proto");
    assert!(
        r.header("access-control-expose-headers")
            .contains("grpc-status"),
        "{:?}",
        r.headers
    );
    let (messages, trailers) = split(&r.body);
    assert_eq!(messages, vec![Bytes::from(shelf(3))]);
    assert_eq!(trailers.expect("trailer frame")["grpc-status"], "0");
    assert!(r.trailers.is_none(), "no HTTP trailers for browsers");

    // A unary error before any message: grpcio answers trailers-only, so the status is in
    // the response headers (the protocol allows it) and the body is empty.
    let r = call(&gw, "Fail", "application/grpc-web", frame(&[0x08, 5])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("grpc-status"), "5", "{:?}", r.headers);
    assert_eq!(r.header("grpc-message"), "failed with 5");
    assert!(r.body.is_empty(), "{:?}", r.body);

    // A server stream that fails after two books: the books, then the error in the trailers.
    let list = [0x08, 2, 0x10, 2, 0x28, 9]; // shelf 2, count 2, fail_code 9
    let r = call(&gw, "ListBooks", "application/grpc-web", frame(&list)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (messages, trailers) = split(&r.body);
    assert_eq!(messages.len(), 2, "{messages:?}");
    let trailers = trailers.expect("trailer frame");
    assert_eq!(trailers["grpc-status"], "9");
    assert_eq!(trailers["grpc-message"], "stopped after 2");

    // -text: base64 both ways, the same frames inside.
    let r = call(
        &gw,
        "GetShelf",
        "application/grpc-web-text",
        text_encode(&frame(&[0x08, 7])).to_vec(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/grpc-web-text+proto");
    let mut d = TextDecoder::default();
    let raw = d.push(&r.body).expect("the answer is base64");
    assert!(d.is_empty());
    let (messages, trailers) = split(&raw);
    assert_eq!(messages, vec![Bytes::from(shelf(7))]);
    assert_eq!(trailers.expect("trailer frame")["grpc-status"], "0");

    // A -text stream: every chunk is base64 on its own; together they decode to the frames.
    let r = call(
        &gw,
        "ListBooks",
        "application/grpc-web-text",
        text_encode(&frame(&[0x08, 1, 0x10, 3])).to_vec(),
    )
    .await;
    let raw = TextDecoder::default().push(&r.body).unwrap();
    let (messages, trailers) = split(&raw);
    assert_eq!(messages.len(), 3);
    assert_eq!(trailers.expect("trailer frame")["grpc-status"], "0");

    // Bad input is the client's, answered by the gateway: a gRPC-Web client reads only a
    // gRPC status, so it is HTTP 200 with grpc-status INTERNAL (HTTP 400 in the gRPC spec's
    // table) and the request id in grpc-message.
    let r = call(
        &gw,
        "GetShelf",
        "application/grpc-web-text",
        b"AAAA!".to_vec(),
    )
    .await;
    assert_grpc_error(&r, "13", "base64");
    assert_eq!(r.header("content-type"), "application/grpc-web-text+proto");
    let r = HttpClient::http1()
        .send(request(
            "GET",
            &gw.url("/bookstore.v1.Bookstore/GetShelf"),
            &[("content-type", "application/grpc-web")],
            Vec::new(),
        ))
        .await;
    assert_grpc_error(&r, "13", "POST");
    gw.stop().await;
}

/// The first books reach the client while the upstream is still working on the stream:
/// the gateway must not hold the answer until the trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_server_streams_are_not_buffered() {
    let (gw, _server, _tmp) = gateway().await;
    // shelf 1, count 2, then 3 s of work before the end.
    let list = frame(&[0x08, 1, 0x10, 2, 0x30, 0xb8, 0x17]);
    let req = Request::post(gw.url("/bookstore.v1.Bookstore/ListBooks"))
        .header("content-type", "application/grpc-web")
        .body(Full::new(Bytes::from(list)))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut seen = Vec::new();
    let mut first_book = None;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap_or_default();
        seen.extend_from_slice(&data);
        if first_book.is_none() && !data.is_empty() {
            first_book = Some(Instant::now());
        }
    }
    let end = Instant::now();
    let first_book = first_book.expect("some data");
    let (messages, trailers) = split(&seen);
    assert_eq!(messages.len(), 2);
    assert_eq!(trailers.expect("trailer frame")["grpc-status"], "0");
    assert!(
        end - first_book >= Duration::from_secs(2),
        "the first book came {:?} before the end: the stream was buffered",
        end - first_book
    );
    gw.stop().await;
}

async fn call_as(gw: &Gw, method: &str, user: Option<&str>, body: Vec<u8>) -> TestResponse {
    let mut headers = vec![
        ("content-type", "application/grpc-web"),
        ("x-grpc-web", "1"),
    ];
    if let Some(u) = user {
        headers.push(("x-user", u));
    }
    HttpClient::http1()
        .send(request(
            "POST",
            &gw.url(&format!("/bookstore.v1.Bookstore/{method}")),
            &headers,
            body,
        ))
        .await
}

/// Regression: gRPC-Web requests were served before the route's lock was taken, so a lock on
/// a transcoding route did not hold them. The lock (keyed without the body) is held for the
/// whole call, its stream included, and released when the stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_calls_hold_the_routes_lock() {
    let (gw, _server, _tmp) = gateway_with(
        "    lock:\n      key: \"user/{header.x-user}\"\n      backend: local\n      wait: { attempts: 1, backoff: 10ms }\n      on_busy: { status: 503, retry_after: 2s }\n",
    )
    .await;
    // Alice's server stream: one book, then 3 s of work before the end.
    let list = frame(&[0x08, 1, 0x10, 1, 0x30, 0xb8, 0x17]);
    let req = Request::post(gw.url("/bookstore.v1.Bookstore/ListBooks"))
        .header("content-type", "application/grpc-web")
        .header("x-user", "alice")
        .body(Full::new(Bytes::from(list)))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("grpc-status").is_none(), "{resp:?}");

    // While it streams, alice's other calls find the lock held: UNAVAILABLE with Retry-After.
    let t = Instant::now();
    let r = call_as(&gw, "GetShelf", Some("alice"), frame(&[0x08, 3])).await;
    assert_grpc_error(&r, "14", "another request holds this lock");
    assert_eq!(r.header("retry-after"), "2");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "answered busy, not after the stream: {:?}",
        t.elapsed()
    );
    // Bob has his own lock; a call without the key header is refused before the upstream.
    let r = call_as(&gw, "GetShelf", Some("bob"), frame(&[0x08, 3])).await;
    assert_eq!(r.status, 200);
    let (messages, trailers) = split(&r.body);
    assert_eq!(messages, vec![Bytes::from(shelf(3))]);
    assert_eq!(trailers.expect("trailer frame")["grpc-status"], "0");
    let r = call_as(&gw, "GetShelf", None, frame(&[0x08, 3])).await;
    assert_grpc_error(&r, "13", "lacks a field");

    // The stream ends; then alice's lock is free again.
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let (messages, trailers) = split(&body);
    assert_eq!(messages.len(), 1);
    assert_eq!(trailers.expect("trailer frame")["grpc-status"], "0");
    let freed = sekisho_test_support::eventually(Duration::from_secs(5), || async {
        let r = call_as(&gw, "GetShelf", Some("alice"), frame(&[0x08, 3])).await;
        r.status == 200 && r.header("grpc-status").is_empty()
    })
    .await;
    assert!(freed, "alice's lock released when her stream ended");
    gw.stop().await;
}

/// A trailers-only gRPC error from the gateway: HTTP 200, the status and a message naming
/// `needle` and the request id in the headers, no body.
fn assert_grpc_error(r: &TestResponse, code: &str, needle: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("grpc-status"), code, "{r:?}");
    let message = r.header("grpc-message");
    assert!(message.contains(needle), "{message}");
    let id = r.header("x-request-id");
    assert!(!id.is_empty() && message.contains(id), "{message} / {id}");
    assert!(r.body.is_empty(), "{r:?}");
    assert!(
        r.header("access-control-expose-headers").is_empty()
            || r.header("access-control-expose-headers")
                .contains("grpc-status"),
        "{r:?}"
    );
}

/// Errors the gateway itself answers to gRPC-Web and gRPC clients (no route, auth, a dead
/// cluster, a timeout, a body over the limit) are gRPC statuses, not JSON bodies they cannot read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_are_grpc_statuses_for_grpc_clients() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transcode/tests/grpc");
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("bookstore.pb");
    std::fs::write(&pb, build_descriptor_set(&dir, "bookstore.proto")).unwrap();
    let keys = tmp.path().join("keys.txt");
    std::fs::write(&keys, "web: sk-web-0123456789\n").unwrap();
    let server = GrpcServer::start(&dir.join("server.py")).await;
    // A port nothing listens on: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: guarded
    match: {{ path_prefix: /bookstore.v1.Bookstore/GetShelf }}
    cluster: bookstore
    auth: {{ api_keys: {{ file: "{keys}" }} }}
    transcode: {{ descriptors: "{pb}", services: [bookstore.v1.Bookstore], max_request_bytes: 64 }}
  - name: narrow
    match: {{ path_prefix: /bookstore.v1.Bookstore/ListBooks, headers: [{{ name: x-narrow, present: true }}] }}
    cluster: narrow
    transcode: {{ descriptors: "{pb}", services: [bookstore.v1.Bookstore] }}
  - name: slow
    match: {{ path_prefix: /bookstore.v1.Bookstore/ListBooks }}
    cluster: bookstore
    timeout: 500ms
    transcode: {{ descriptors: "{pb}", services: [bookstore.v1.Bookstore] }}
  - name: down
    match: {{ path_prefix: /down.v1.Down/ }}
    cluster: down
clusters:
  - {{ name: bookstore, protocol: h2c, endpoints: ["{up}"] }}
  - {{ name: down, protocol: h2c, endpoints: ["{dead}"] }}
  - {{ name: narrow, protocol: h2c, endpoints: ["{up}"], max_requests: 1 }}
"#,
        keys = keys.display(),
        pb = pb.display(),
        up = server.addr(),
    );
    let gw = start(&yaml).await;
    let client = HttpClient::http1();
    let web = |path: &str, headers: &[(&str, &str)], body: Vec<u8>| {
        let mut h = vec![("content-type", "application/grpc-web+proto")];
        h.extend_from_slice(headers);
        client.send(request("POST", &gw.url(path), &h, body))
    };
    let get_shelf = "/bookstore.v1.Bookstore/GetShelf";

    // No credential: HTTP 401 → UNAUTHENTICATED (16); with the key the call goes through.
    let r = web(get_shelf, &[], frame(&[0x08, 3])).await;
    assert_grpc_error(&r, "16", "authentication required");
    assert_eq!(r.header("content-type"), "application/grpc-web+proto");
    let r = web(
        get_shelf,
        &[("x-api-key", "sk-web-0123456789")],
        frame(&[0x08, 3]),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(split(&r.body).0, vec![Bytes::from(shelf(3))]);

    // A message over transcode.max_request_bytes: 413 → RESOURCE_EXHAUSTED (8).
    let r = web(
        get_shelf,
        &[("x-api-key", "sk-web-0123456789")],
        frame(&[7; 100]),
    )
    .await;
    assert_grpc_error(&r, "8", "larger than 64 bytes");

    // The route's timeout passes before the answer's head (no book, then 1.5 s of work):
    // 504 → DEADLINE_EXCEEDED (4).
    let slow = frame(&[0x08, 1, 0x30, 0xdc, 0x0b]);
    let r = web("/bookstore.v1.Bookstore/ListBooks", &[], slow).await;
    assert_grpc_error(&r, "4", "did not answer within");

    // A cluster at its max_requests: 503 → UNAVAILABLE (14) at once for the second call.
    let url = gw.url("/bookstore.v1.Bookstore/ListBooks");
    let first = tokio::spawn(async move {
        let h = [("content-type", "application/grpc-web"), ("x-narrow", "1")];
        // 3 s of work: long enough to still hold the slot on a busy machine.
        let slow = frame(&[0x08, 1, 0x30, 0xb8, 0x17]);
        HttpClient::http1()
            .send(request("POST", &url, &h, slow))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = web(
        "/bookstore.v1.Bookstore/ListBooks",
        &[("x-narrow", "1")],
        frame(&[]),
    )
    .await;
    assert_grpc_error(&r, "14", "(max_requests)");
    // The first call, no book then the work, ends well (trailers-only: status 0 in headers).
    let first = first.await.unwrap();
    assert_eq!(first.header("grpc-status"), "0", "{first:?}");

    // No route: 404 → UNIMPLEMENTED (12).
    let r = web("/nowhere.v1.X/Call", &[], frame(&[])).await;
    assert_grpc_error(&r, "12", "no route");

    // A dead cluster (connection refused, HTTP 502) → UNAVAILABLE (14), for gRPC-Web (passed through on a route
    // without transcode) and for plain gRPC over h2c alike.
    let r = web("/down.v1.Down/Call", &[], frame(&[])).await;
    assert_grpc_error(&r, "14", "connect failed");
    let r = HttpClient::h2c()
        .send(request(
            "POST",
            &gw.url("/down.v1.Down/Call"),
            &[("content-type", "application/grpc"), ("te", "trailers")],
            frame(&[]),
        ))
        .await;
    assert_grpc_error(&r, "14", "connect failed");
    assert_eq!(r.header("content-type"), "application/grpc");

    // Anything else still gets the JSON error body.
    let r = HttpClient::http1()
        .send(request("POST", &gw.url("/down.v1.Down/Call"), &[], "{}"))
        .await;
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.json()["error"], "upstream_connect_failed");
    gw.stop().await;
}

/// A browser's cross-origin gRPC-Web call: the preflight is answered by the gateway (before
/// auth, never forwarded) for allowed origins and refused for others; the actual answers,
/// the gateway's own gRPC errors included, carry the CORS headers a script needs to read
/// grpc-status. The same policy works on a route that does not transcode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_cors_preflight_and_answers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transcode/tests/grpc");
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("bookstore.pb");
    std::fs::write(&pb, build_descriptor_set(&dir, "bookstore.proto")).unwrap();
    let keys = tmp.path().join("keys.txt");
    std::fs::write(&keys, "web: sk-web-0123456789\n").unwrap();
    let server = GrpcServer::start(&dir.join("server.py")).await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: plain
    match: {{ path_prefix: /plain, methods: [PUT] }}
    direct_response: {{ status: 200, body: done }}
    response_headers: {{ set: {{ x-total: "3" }} }}
    cors:
      allow_origins: ["*"]
      allow_headers: [x-token]
      expose_headers: [x-total]
      max_age: 1m
  - name: bookstore
    match: {{ path_prefix: / }}
    cluster: bookstore
    auth: {{ api_keys: {{ file: "{keys}" }} }}
    transcode: {{ descriptors: "{pb}", services: [bookstore.v1.Bookstore] }}
    cors:
      allow_origins: ["https://app.test", "https://*.example.test"]
      allow_headers: [x-api-key]
clusters: [{{ name: bookstore, protocol: h2c, endpoints: ["{up}"] }}]
"#,
        keys = keys.display(),
        pb = pb.display(),
        up = server.addr(),
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let get_shelf = "/bookstore.v1.Bookstore/GetShelf";
    let preflight = |path: &str, origin: &str, method: &str, headers: &str| {
        c.send(request(
            "OPTIONS",
            &gw.url(path),
            &[
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", headers),
            ],
            Vec::new(),
        ))
    };
    let web_headers = "content-type,x-grpc-web,x-user-agent,grpc-timeout,x-api-key";

    // Allowed: an exact origin and a subdomain pattern; no credential needed.
    for origin in ["https://app.test", "https://a.example.test"] {
        let r = preflight(get_shelf, origin, "POST", web_headers).await;
        assert_eq!(r.status, 204, "{origin}: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), origin);
        assert!(r.header("access-control-allow-methods").contains("POST"));
        let allowed = r.header("access-control-allow-headers");
        for h in web_headers.split(',') {
            assert!(allowed.contains(h), "{h} not in {allowed}");
        }
        assert_eq!(r.header("vary"), "Origin");
        assert!(r.body.is_empty());
    }
    // Refused: another origin (also one that only ends like an allowed one), a header
    // the route does not allow.
    for (origin, headers) in [
        ("https://evil.test", "content-type"),
        ("https://example.test", "content-type"),
        ("https://app.test", "content-type,x-secret"),
    ] {
        let r = preflight(get_shelf, origin, "POST", headers).await;
        assert_eq!(r.status, 403, "{origin} {headers}: {r:?}");
        assert_eq!(r.json()["error"], "cors_rejected");
        assert_eq!(r.json()["request_id"], r.header("x-request-id"));
        assert!(r.header("access-control-allow-origin").is_empty());
    }

    // The actual call from an allowed origin: the answer is readable, grpc-status exposed.
    let call = |origin: &'static str, key: &'static str| {
        let mut h = vec![
            ("content-type", "application/grpc-web+proto"),
            ("origin", origin),
        ];
        if !key.is_empty() {
            h.push(("x-api-key", key));
        }
        c.send(request("POST", &gw.url(get_shelf), &h, frame(&[0x08, 3])))
    };
    let r = call("https://app.test", "sk-web-0123456789").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(split(&r.body).0, vec![Bytes::from(shelf(3))]);
    assert_eq!(r.header("access-control-allow-origin"), "https://app.test");
    let exposed = r.header("access-control-expose-headers");
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{exposed}"
    );
    // The gateway's own error (no key) reaches the script too, as a gRPC status.
    let r = call("https://app.test", "").await;
    assert_grpc_error(&r, "16", "authentication required");
    assert_eq!(r.header("access-control-allow-origin"), "https://app.test");
    // Another origin: answered, but without CORS headers the browser hides it.
    let r = call("https://evil.test", "sk-web-0123456789").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("access-control-allow-origin").is_empty());
    assert_eq!(r.header("vary"), "Origin");

    // A route without transcode, matching only PUT: the preflight announces PUT.
    let r = preflight("/plain", "https://any.test", "PUT", "x-token").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), "https://any.test");
    assert_eq!(r.header("access-control-allow-methods"), "PUT");
    assert_eq!(r.header("access-control-allow-headers"), "x-token");
    assert_eq!(r.header("access-control-max-age"), "60");
    let r = preflight("/plain", "https://any.test", "DELETE", "").await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = c
        .send(request(
            "PUT",
            &gw.url("/plain"),
            &[("origin", "https://any.test")],
            "x",
        ))
        .await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "done"));
    assert_eq!(r.header("access-control-allow-origin"), "https://any.test");
    assert_eq!(r.header("access-control-expose-headers"), "x-total");
    gw.stop().await;
}
