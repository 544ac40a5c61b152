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
