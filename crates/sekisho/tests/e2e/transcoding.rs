//! Transcoding through the gateway, against a real gRPC server (Python grpcio): JSON in and
//! out, statuses mapped, server streams, bad fields named, gRPC passing through untouched.

use http::HeaderMap;
use sekisho_test_support::client::HttpClient;
use sekisho_test_support::grpc_server::{build_descriptor_set, GrpcServer};

use crate::common::{get, request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_to_grpc_and_back() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transcode/tests/grpc");
    let set = build_descriptor_set(&dir, "bookstore.proto");
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("bookstore.pb");
    std::fs::write(&pb, set).unwrap();
    let server = GrpcServer::start(&dir.join("server.py")).await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: bookstore
    match: {{ path_prefix: / }}
    cluster: bookstore
    timeout: 10s
    transcode: {{ descriptors: "{}", services: [bookstore.v1.Bookstore], metadata_headers: [x-user-id] }}
clusters: [{{ name: bookstore, protocol: h2c, endpoints: ["{}"] }}]
"#,
        pb.display(),
        server.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();

    let r = c.get(gw.addr, "/v1/shelves/3").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.json(), serde_json::json!({"id": "3", "theme": "theme 3"}));

    let r = c
        .send(request(
            "POST",
            &gw.url("/v1/shelves/3/books"),
            &[("content-type", "application/json")],
            r#"{"title": "Gateways", "author": "sekisho"}"#,
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["title"], "Gateways");

    // A field that cannot be converted: 400 naming it, nothing sent upstream.
    let r = c.get(gw.addr, "/v1/shelves/abc").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("shelf"), "{}", r.text());

    // gRPC NOT_FOUND → 404 with google.rpc.Status as JSON.
    let r = c.get(gw.addr, "/v1/fail/5").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["code"], 5);

    // Server streaming: a JSON array, streamed.
    let r = c.get(gw.addr, "/v1/shelves/2/books?count=3").await;
    assert_eq!(r.status, 200);
    let books = r.json();
    assert_eq!(books.as_array().map(Vec::len), Some(3), "{books}");

    // No rule for this path and method: 404 from the gateway.
    assert_eq!(c.get(gw.addr, "/v1/nothing/here").await.status, 404);

    // application/grpc on the same route passes through untouched (Ping has no HTTP rule).
    let r = HttpClient::h2c()
        .send(request(
            "POST",
            &gw.url("/bookstore.v1.Bookstore/Ping"),
            &[("content-type", "application/grpc"), ("te", "trailers")],
            vec![0u8, 0, 0, 0, 0],
        ))
        .await;
    assert_eq!(r.status, 200);
    let trailers = r.trailers.clone().unwrap_or_else(HeaderMap::new);
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..]),
        "{r:?}"
    );

    // A header on the metadata allow list is forwarded; the call succeeds with it.
    let r = c
        .send(get(&gw.url("/v1/shelves/4"), &[("x-user-id", "u1")]))
        .await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}

/// 400s for bad JSON bodies and query values name the field path as the client wrote it
/// (regression: query values were named by proto name, map entries and list items not at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fields_are_named_through_the_gateway() {
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
    transcode: {{ descriptors: "{}", services: [bookstore.v1.Bookstore] }}
clusters: [{{ name: bookstore, protocol: h2c, endpoints: ["{}"] }}]
"#,
        pb.display(),
        server.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let post = |path: &'static str, body: &'static str| {
        c.send(request(
            "POST",
            &gw.url(path),
            &[("content-type", "application/json")],
            body,
        ))
    };
    let cases = [
        // body: "book": the path starts at the body field.
        (
            post(
                "/v1/shelves/3/books",
                r#"{"title": "t", "published": "soon"}"#,
            )
            .await,
            "book.published",
        ),
        (
            post("/v1/shelves/3/books", r#"{"tags": ["a", 5]}"#).await,
            "book.tags[1]",
        ),
        (
            post("/v1/shelves/3/books", r#"{"id": "12x"}"#).await,
            "book.id",
        ),
        (
            post("/v1/echo", r#"{"nested": {"child": {"n": "x"}}}"#).await,
            "nested.child.n",
        ),
        (
            post("/v1/echo", r#"{"nestedMap": {"3": {"n": true}}}"#).await,
            "nestedMap[\"3\"].n",
        ),
        (post("/v1/echo", r#"{"by": "%%%"}"#).await, "by"),
        (
            c.get(gw.addr, "/v1/echo/p?nested.child.n=x").await,
            "nested.child.n",
        ),
        (
            c.get(gw.addr, "/v1/shelves/2/books?failCode=x").await,
            "failCode",
        ),
        (
            c.get(gw.addr, "/v1/shelves/2/books?fail_code=x").await,
            "fail_code",
        ),
    ];
    for (r, field) in cases {
        assert_eq!(r.status, 400, "{field}: {}", r.text());
        let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "expected {field}: {message}"
        );
        assert_eq!(r.json()["error"], "transcode_bad_request");
    }
    gw.stop().await;
}
