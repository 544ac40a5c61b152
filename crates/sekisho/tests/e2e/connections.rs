//! Client connection limits: header size, header read time (slowloris), idle keep-alive,
//! maximum connections.

use std::time::{Duration, Instant};

use sekisho_test_support::client::{raw, HttpClient};
use sekisho_test_support::upstream::Upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::start;

fn config(up: &Upstream, limits: &str) -> String {
    format!(
        r#"
listeners:
  - name: public
    listen: "127.0.0.1:0"
    limits: {{ {limits} }}
access_log: {{ path: "off" }}
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: svc }}]
clusters: [{{ name: svc, endpoints: ["{}"] }}]
"#,
        up.addr()
    )
}

/// Reads until EOF or `within`; returns when the server closed and what it sent.
async fn wait_closed(s: &mut TcpStream, within: Duration) -> Option<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + within).into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some((start.elapsed(), all)),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed() {
    let up = Upstream::named("svc").await;
    let gw = start(&config(&up, "header_read_timeout: 300ms, idle_timeout: 1s")).await;

    // Slowloris: a head trickling in is cut at the header timeout, not the idle timeout.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let (after, _) = wait_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("slow head closed");
    assert!(after < Duration::from_millis(900), "closed after {after:?}");

    // An idle keep-alive connection lives past the header timeout, then is closed at idle.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "still open after 600 ms idle"
    );
    let (after, _) = wait_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("idle closed");
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(3),
        "idle close after {after:?}"
    );
    gw.stop().await;
}

/// Idle HTTP/1 connections are parked (hyper's state freed) after 250 ms and resumed by the
/// client's next request; HTTP/2 connections are not parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_keep_alive_connections_resume() {
    let up = Upstream::named("svc").await;
    let gw = start(&config(&up, "idle_timeout: 5s")).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 1024];
    for round in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "round {round}: {text}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // A request arriving in pieces across the park still gets the header read timeout's
    // full allowance, then a response.
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"Host: t\r\n\r\n").await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let h2 = HttpClient::h2c();
    for _ in 0..2 {
        assert_eq!(h2.get(gw.addr, "/").await.status, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(up.count(), 6);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let up = Upstream::named("svc").await;
    let gw = start(&config(&up, "max_header_bytes: 16KiB")).await;
    let big = "a".repeat(20 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let r = raw(gw.addr, req.as_bytes()).await;
    assert_eq!(r.status, 431, "{}", r.head);
    assert_eq!(up.count(), 0);
    let ok = HttpClient::http1().get(gw.addr, "/").await;
    assert_eq!(ok.status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_defers_extra_clients() {
    let up = Upstream::named("svc").await;
    let gw = start(&config(&up, "max_connections: 2, idle_timeout: 30s")).await;
    let hold = |addr| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        s
    };
    let a = hold(gw.addr).await;
    let _b = hold(gw.addr).await;
    // The third connects (kernel backlog) but is not served while two are open.
    let third = tokio::spawn(async move {
        raw(
            gw.addr,
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "third connection served past max_connections"
    );
    drop(a);
    let r = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served after a slot freed")
        .unwrap();
    assert_eq!(r.status, 200);
    gw.stop().await;
}

/// 1,000 connections trickling their headers (slowloris) do not stop normal requests: they
/// complete, and their latency stays within a bounded factor of the unloaded run (the
/// factor is printed; the bound asserted is generous).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_slow_header_connections_do_not_block_others() {
    let up = Upstream::named("svc").await;
    let gw = start(&config(
        &up,
        "header_read_timeout: 20s, max_connections: 5000",
    ))
    .await;
    let c = HttpClient::http1();
    let p99 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() * 99 / 100 - 1]
    };
    let mut base = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        assert_eq!(c.get(gw.addr, "/").await.status, 200);
        base.push(t.elapsed());
    }
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let mut loaded = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        assert_eq!(c.get(gw.addr, "/").await.status, 200);
        loaded.push(t.elapsed());
    }
    let (b, l) = (p99(base), p99(loaded));
    let factor = l.as_secs_f64() / b.as_secs_f64().max(1e-6);
    eprintln!("slowloris: p99 unloaded {b:?}, with 1000 slow-header connections {l:?} (factor {factor:.2})");
    assert!(
        l < Duration::from_secs(1),
        "p99 with slow connections: {l:?}"
    );
    assert_eq!(up.count(), 400, "slow heads never reached the upstream");
    drop(slow);
    gw.stop().await;
}
