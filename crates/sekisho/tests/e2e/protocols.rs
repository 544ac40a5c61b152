//! HTTP/2: h2c downstream, h2c upstream, gRPC passthrough with trailers intact.

use http::HeaderMap;
use sekisho_test_support::client::HttpClient;
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::{request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_to_http1_and_h2c_upstreams() {
    let h1 = Upstream::named("h1").await;
    let h2 = Upstream::named("h2").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - {{ name: a, match: {{ path_prefix: /h1/ }}, cluster: h1 }}
  - {{ name: b, match: {{ path_prefix: /h2/ }}, cluster: h2 }}
clusters:
  - {{ name: h1, endpoints: ["{}"] }}
  - {{ name: h2, endpoints: ["{}"], protocol: h2c }}
"#,
        h1.addr(),
        h2.addr()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::h2c();
    let r = c.get(gw.addr, "/h1/x").await;
    assert_eq!(
        (r.status.as_u16(), r.version, r.text().as_str()),
        (200, http::Version::HTTP_2, "h1")
    );
    assert_eq!(h1.seen()[0].version, http::Version::HTTP_11);
    // Many concurrent streams to the h2c cluster share one upstream connection.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, url) = (c.clone(), gw.url("/h2/x"));
        tasks.push(tokio::spawn(async move {
            c.send(request("GET", &url, &[], "")).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().text(), "h2");
    }
    assert_eq!(h2.seen()[0].version, http::Version::HTTP_2);
    assert_eq!(
        h2.connections(),
        1,
        "h2 upstream connections are multiplexed"
    );
    gw.stop().await;
}

/// The HTTP/1 smuggling scan (Content-Length with Transfer-Encoding in one head) is for
/// HTTP/1 heads only: an HTTP/2 request whose DATA looks like such a head, read in one go
/// with its HEADERS on an idle connection, is proxied, not refused. Raw frames, so the
/// HEADERS and DATA of the second request surely arrive in one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_bodies_that_look_like_http1_heads_are_not_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend([kind, flags]);
        f.extend(stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }
    /// Reads frames (acknowledging the server's SETTINGS) until the response HEADERS of
    /// `stream`; returns the first byte of its header block (HPACK static index of :status).
    async fn status_byte(c: &mut tokio::net::TcpStream, stream: u32) -> u8 {
        loop {
            let mut head = [0u8; 9];
            c.read_exact(&mut head).await.expect("frame head");
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0; len];
            c.read_exact(&mut payload).await.expect("frame payload");
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            match (head[3], head[4] & 1) {
                (4, 0) => c.write_all(&frame(4, 1, 0, &[])).await.expect("ack"),
                (1, _) if id == stream => return payload[0],
                _ => {}
            }
        }
    }

    let up = Upstream::named("up").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: a, match: {{ path_prefix: / }}, cluster: up }}]
clusters: [{{ name: up, endpoints: ["{}"] }}]
"#,
        up.addr()
    );
    let gw = start(&yaml).await;
    let body = b"x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
    // :method POST, :scheme http, :path /, :authority "x" (literal, not indexed).
    let block = [0x83, 0x86, 0x84, 0x01, 0x01, b'x'];
    let mut c = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(4, 0, 0, &[]));
    c.write_all(&hello).await.expect("preface");
    for stream in [1u32, 3] {
        // Let the connection go idle first: the scan starts with the first bytes read then.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut req = frame(1, 0x4, stream, &block);
        req.extend(frame(0, 0x1, stream, body));
        c.write_all(&req).await.expect("request");
        // 0x88 is :status 200 from HPACK's static table (0x8c would be 400).
        assert_eq!(status_byte(&mut c, stream).await, 0x88, "stream {stream}");
    }
    drop(c); // closed, so the gateway's drain need not wait for it
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body == body[..]));
    gw.stop().await;
}

/// gRPC through the gateway unchanged: content type, TE, body, and the trailers with
/// grpc-status and grpc-message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_passthrough_keeps_trailers() {
    let up = Upstream::start("grpc", |s| {
        assert_eq!(s.headers["content-type"], "application/grpc");
        assert_eq!(s.headers["te"], "trailers");
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "5".parse().unwrap());
        t.insert("grpc-message", "item%20not%20found".parse().unwrap());
        Reply::text("")
            .header("content-type", "application/grpc")
            .trailers(t)
    })
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: grpc, match: {{ path_prefix: /shop.Items/ }}, cluster: grpc }}]
clusters: [{{ name: grpc, endpoints: ["{}"], protocol: h2c }}]
"#,
        up.addr()
    );
    let gw = start(&yaml).await;
    // A length-prefixed protobuf message: flag 0, length 3, bytes.
    let frame = vec![0u8, 0, 0, 0, 3, 0x08, 0x96, 0x01];
    let r = HttpClient::h2c()
        .send(request(
            "POST",
            &gw.url("/shop.Items/Get"),
            &[("content-type", "application/grpc"), ("te", "trailers")],
            frame.clone(),
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/grpc");
    let trailers = r.trailers.expect("trailers reached the client");
    assert_eq!(trailers["grpc-status"], "5");
    assert_eq!(trailers["grpc-message"], "item%20not%20found");
    assert_eq!(up.seen()[0].body.as_ref(), frame.as_slice());
    gw.stop().await;
}
