//! HTTP/2 prior knowledge (h2c): one shared connection, trailers.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, Response, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use sekisho_config::Protocol;
use sekisho_proxy::{BoxError, Cluster, NoResolver};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_concurrent_requests_share_one_connection() {
    let srv = server(Serve::H2, ok_handler()).await;
    let cluster = Cluster::new(
        &cluster(vec![endpoint(srv.addr, 1)], Protocol::H2c),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    let results = futures_util::future::join_all((0..50).map(|_| {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut req = get("/");
            req.headers_mut()
                .insert("x-delay-ms", "50".parse().expect("header"));
            let resp = cluster.send(req).await.expect("send");
            assert_eq!(resp.response.version(), Version::HTTP_2);
            body_string(resp.response).await
        })
    }))
    .await;
    for r in results {
        assert_eq!(r.expect("task"), "ok");
    }
    assert_eq!(srv.counts.accepted(), 1);
    let ep = &cluster.snapshot().endpoints[0];
    assert_eq!(ep.connections_opened_total, 1);
    assert_eq!(ep.in_flight, 0);
}

#[tokio::test]
async fn h2c_response_trailers_arrive() {
    let srv = server(
        Serve::H2,
        handler(|_req| async {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().expect("value"));
            trailers.insert("grpc-message", "fine".parse().expect("value"));
            let frames = vec![
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
                Ok(Frame::trailers(trailers)),
            ];
            Response::builder()
                .header("content-type", "application/grpc")
                .body(StreamBody::new(stream::iter(frames)).boxed_unsync())
                .expect("response")
        }),
    )
    .await;
    let cluster = Cluster::new(
        &cluster(vec![endpoint(srv.addr, 1)], Protocol::H2c),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    let resp = cluster.send(get("/pkg.Svc/Method")).await.expect("send");
    let collected = resp.response.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "fine");
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x02hi");
}
