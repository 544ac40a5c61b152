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
clusters: [{{ name: bookstore, protocol: h2c, endpoints: ["{}"] }}]
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

    // Bad input is the client's: 400 with the JSON error body and the request id.
    let r = call(
        &gw,
        "GetShelf",
        "application/grpc-web-text",
        b"AAAA!".to_vec(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "transcode_bad_request");
    assert!(r.json()["request_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let r = HttpClient::http1()
        .send(request(
            "GET",
            &gw.url("/bookstore.v1.Bookstore/GetShelf"),
            &[("content-type", "application/grpc-web")],
            Vec::new(),
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("POST"), "{}", r.text());
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
