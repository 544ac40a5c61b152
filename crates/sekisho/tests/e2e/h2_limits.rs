//! HTTP/2 abuse limits: a client that opens streams and resets them at once (the rapid-reset
//! attack, CVE-2023-44487) loses its connection, and the gateway keeps serving others.

use std::time::Duration;

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::upstream::{Reply, Upstream};

use crate::common::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_closes_the_connection() {
    let up = Upstream::start("slow", |_| {
        Reply::text("ok").delay(Duration::from_millis(200))
    })
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: svc }}]
clusters: [{{ name: svc, endpoints: ["{}"] }}]
"#,
        up.addr()
    );
    let gw = start(&yaml).await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn_task = tokio::spawn(conn);
    let mut opened = 0;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..10_000 {
            let ready = match client.clone().ready().await {
                Ok(c) => c,
                Err(_) => return true,
            };
            client = ready;
            let req = http::Request::get(format!("http://{}/x", gw.addr))
                .body(())
                .unwrap();
            match client.send_request(req, false) {
                Ok((_resp, mut stream)) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    opened += 1;
                }
                Err(_) => return true,
            }
            if conn_task.is_finished() {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        ended,
        "the gateway kept a connection that reset {opened} streams"
    );
    assert!(opened < 10_000);
    // Other clients are unaffected.
    let r = HttpClient::h2c().get(gw.addr, "/fine").await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}
