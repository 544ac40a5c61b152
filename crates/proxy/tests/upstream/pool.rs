//! Connection reuse, the hard cap, the pending queue and idle handling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use http::Response;
use sekisho_config::Protocol;
use sekisho_proxy::{Cluster, NoResolver, UpstreamError, UpstreamErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

fn slow_get(ms: u64) -> http::Request<sekisho_proxy::UpstreamBody> {
    let mut req = get("/slow");
    req.headers_mut()
        .insert("x-delay-ms", ms.to_string().parse().expect("header"));
    req
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let srv = server(Serve::H1, ok_handler()).await;
    let cluster = Cluster::new(
        &cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    for _ in 0..20 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_eq!(body_string(resp.response).await, "ok");
    }
    assert_eq!(srv.counts.accepted(), 1);
    let snap = cluster.snapshot();
    assert_eq!(snap.endpoints[0].connections_opened_total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_cap_is_never_exceeded() {
    let srv = server(Serve::H1, ok_handler()).await;
    let mut cfg = cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1);
    cfg.pool.max_connections = 3;
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    let results = join_all((0..9).map(|_| {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let resp = cluster.send(slow_get(100)).await?;
            Ok::<_, UpstreamError>(body_string(resp.response).await)
        })
    }))
    .await;
    for r in results {
        assert_eq!(r.expect("task").expect("send"), "ok");
    }
    assert!(
        srv.counts.max_open() <= 3,
        "server saw {} connections at once",
        srv.counts.max_open()
    );
    assert!(
        srv.counts.accepted() <= 3,
        "accepted {}",
        srv.counts.accepted()
    );
}

#[tokio::test]
async fn excess_past_max_pending_fails_fast() {
    let srv = server(Serve::H1, ok_handler()).await;
    let mut cfg = cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1);
    cfg.pool.max_connections = 1;
    cfg.pool.max_pending = 1;
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    let started = Instant::now();
    let results = join_all((0..4).map(|_| {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let resp = cluster.send(slow_get(300)).await;
            (resp.map(|r| r.endpoint), started.elapsed())
        })
    }))
    .await;
    let mut ok = 0;
    for r in results {
        match r.expect("task") {
            (Ok(_), _) => ok += 1,
            (Err(e), elapsed) => {
                assert!(matches!(e, UpstreamError::PoolOverflow { .. }), "{e}");
                assert_eq!(e.kind(), UpstreamErrorKind::Overloaded);
                assert!(e.is_retryable());
                assert!(
                    elapsed < Duration::from_millis(250),
                    "overflow took {elapsed:?}"
                );
            }
        }
    }
    assert_eq!(ok, 2, "one in flight and one queued succeed");
    assert_eq!(srv.counts.accepted(), 1);
}

#[tokio::test]
async fn pending_timeout_is_honoured() {
    let srv = server(Serve::H1, ok_handler()).await;
    let mut cfg = cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1);
    cfg.pool.max_connections = 1;
    cfg.pool.pending_timeout = Duration::from_millis(100);
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    let slow = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.send(slow_get(600)).await.map(|r| r.endpoint) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let err = cluster.send(get("/")).await.expect_err("must time out");
    let waited = started.elapsed();
    assert!(matches!(err, UpstreamError::PendingTimeout { .. }), "{err}");
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_millis(450),
        "{waited:?}"
    );
    assert!(slow.await.expect("task").is_ok());
}

#[tokio::test]
async fn idle_timeout_closes_idle_connections() {
    let srv = server(Serve::H1, ok_handler()).await;
    let mut cfg = cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1);
    cfg.pool.idle_timeout = Duration::from_millis(200);
    let cluster = Cluster::new(&cfg, Arc::new(NoResolver)).expect("cluster");
    let resp = cluster.send(get("/")).await.expect("send");
    body_string(resp.response).await;
    eventually("pooled connection idle", || {
        cluster.snapshot().endpoints[0].idle_connections == 1
    })
    .await;
    eventually("server sees the close", || srv.counts.closed() == 1).await;
    let ep = &cluster.snapshot().endpoints[0];
    assert_eq!((ep.idle_connections, ep.active_connections), (0, 0));
    // And the next request simply opens a new one.
    let resp = cluster.send(get("/")).await.expect("send");
    assert_eq!(body_string(resp.response).await, "ok");
    assert_eq!(srv.counts.accepted(), 2);
}

#[tokio::test]
async fn server_connection_close_does_not_fail_next_request() {
    let srv = server(
        Serve::H1,
        handler(|_req| async {
            Response::builder()
                .header(http::header::CONNECTION, "close")
                .body(text("bye"))
                .expect("response")
        }),
    )
    .await;
    let cluster = Cluster::new(
        &cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    for _ in 0..5 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_eq!(body_string(resp.response).await, "bye");
    }
    assert_eq!(srv.counts.accepted(), 5);
}

/// A raw server that answers one request per connection and then closes it after
/// 30 ms without saying so (a shorter keep-alive timeout than ours).
#[tokio::test]
async fn silently_closed_keepalive_connection_is_not_reused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            });
        }
    });
    let cluster = Cluster::new(
        &cluster(vec![endpoint(addr, 1)], Protocol::Http1),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    for _ in 0..3 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_eq!(body_string(resp.response).await, "ok");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn dead_endpoint_is_connect_failed_with_its_address() {
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let cluster = Cluster::new(
        &cluster(vec![endpoint(addr, 1)], Protocol::Http1),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    let err = cluster.send(get("/")).await.expect_err("must fail");
    match &err {
        UpstreamError::ConnectFailed { addr: a, .. } => assert_eq!(*a, addr),
        other => panic!("expected ConnectFailed, got {other}"),
    }
    assert_eq!(err.kind(), UpstreamErrorKind::Connect);
    assert_eq!(err.kind().status(), http::StatusCode::BAD_GATEWAY);
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&addr.to_string()));
    let ep = &cluster.snapshot().endpoints[0];
    assert_eq!(ep.connect_failures_total, 1);
    assert_eq!(
        (ep.active_connections, ep.connecting, ep.in_flight),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn upgraded_connection_is_a_tunnel_and_leaves_the_pool() {
    let srv = server(
        Serve::H1,
        handler(|mut req: http::Request<hyper::body::Incoming>| async move {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on_upgrade.await {
                    let mut io = hyper_util::rt::TokioIo::new(up);
                    let mut buf = [0u8; 4];
                    if io.read_exact(&mut buf).await.is_ok() {
                        let _ = io.write_all(&buf).await;
                    }
                }
            });
            Response::builder()
                .status(http::StatusCode::SWITCHING_PROTOCOLS)
                .header(http::header::CONNECTION, "upgrade")
                .header(http::header::UPGRADE, "echo")
                .body(text(""))
                .expect("response")
        }),
    )
    .await;
    let cluster = Cluster::new(
        &cluster(vec![endpoint(srv.addr, 1)], Protocol::Http1),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    let mut req = get("/ws");
    req.headers_mut()
        .insert(http::header::CONNECTION, "upgrade".parse().expect("value"));
    req.headers_mut()
        .insert(http::header::UPGRADE, "echo".parse().expect("value"));
    let resp = cluster.send(req).await.expect("send");
    assert_eq!(
        resp.response.status(),
        http::StatusCode::SWITCHING_PROTOCOLS
    );
    let upgraded = hyper::upgrade::on(resp.response).await.expect("upgrade");
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    io.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    io.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
    // The tunnel is not a pooled connection: the next request dials a new one.
    let resp = cluster.send(get("/")).await.expect("send");
    body_string(resp.response).await;
    assert_eq!(srv.counts.accepted(), 2);
}
