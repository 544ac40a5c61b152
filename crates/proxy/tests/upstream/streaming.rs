//! Large bodies stream through in both directions.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use sekisho_config::Protocol;
use sekisho_proxy::{BoxError, Cluster, NoResolver};

use crate::support::*;

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 128; // 8 MiB

/// Echoes the request body back as it arrives.
fn echo() -> Handler {
    handler(|req: Request<hyper::body::Incoming>| async move {
        Response::new(
            req.into_body()
                .map_err(|e| Box::new(e) as BoxError)
                .boxed_unsync(),
        )
    })
}

async fn stream_8mib(serve: Serve, protocol: Protocol) {
    let srv = server(serve, echo()).await;
    let cluster = Cluster::new(
        &cluster(vec![endpoint(srv.addr, 1)], protocol),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    // Chunks are produced lazily as the connection pulls them.
    let chunks = stream::iter(
        (0..CHUNKS)
            .map(|i| Ok::<_, BoxError>(Frame::data(Bytes::from(vec![(i % 251) as u8; CHUNK])))),
    );
    let req = Request::builder()
        .method("POST")
        .uri("/echo")
        .header(http::header::HOST, "upstream.test")
        .body(StreamBody::new(chunks).boxed_unsync())
        .expect("request");
    let resp = cluster.send(req).await.expect("send");
    let mut body = resp.response.into_body();
    let mut total = 0usize;
    let mut frames = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            // Every byte is where the sender put it.
            for (j, b) in data.iter().enumerate() {
                assert_eq!(*b as usize, ((total + j) / CHUNK) % 251);
            }
            total += data.len();
            frames += 1;
        }
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert!(
        frames > 1,
        "the response arrived in pieces, not buffered whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_body_streams_over_http1() {
    stream_8mib(Serve::H1, Protocol::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_body_streams_over_h2c() {
    stream_8mib(Serve::H2, Protocol::H2c).await;
}
