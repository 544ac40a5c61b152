//! Request smuggling vectors: each is refused with 400 and never reaches the upstream.

use sekisho_test_support::client::raw;
use sekisho_test_support::upstream::Upstream;

use crate::common::{cluster, start};

/// (name, raw request). Each must get a 400 (or be refused before any response) and send
/// nothing upstream.
const VECTORS: &[(&str, &str)] = &[
    ("CL and TE together", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE and CL together", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"),
    ("conflicting CL", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
    ("CL list", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 5\r\n\r\nabcde"),
    ("negative CL", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"),
    ("CL with plus sign", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd"),
    ("TE not chunked last", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    ("TE unknown coding", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("TE with space before colon", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("obsolete line folding", "GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n"),
    ("bad chunk size", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ("chunk size overflow", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("NUL in header value", "GET / HTTP/1.1\r\nHost: t\r\nX-Bad: a\0b\r\n\r\n"),
    ("control byte in header name", "GET / HTTP/1.1\r\nHost: t\r\nX\x01Bad: a\r\n\r\n"),
    ("two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("no Host on HTTP/1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n"),
    ("absolute URI with other Host", "GET http://evil.example/ HTTP/1.1\r\nHost: t\r\n\r\n"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_vectors_get_400_and_reach_nothing() {
    let up = Upstream::named("svc").await;
    let yaml = format!(
        "listeners: [{{ name: public, listen: \"127.0.0.1:0\" }}]\naccess_log: {{ path: \"off\" }}\nroutes: [{{ name: all, match: {{ path_prefix: / }}, cluster: svc }}]\nclusters:\n{}",
        cluster("svc", up.addr())
    );
    let gw = start(&yaml).await;
    let mut failures = Vec::new();
    for (name, req) in VECTORS {
        let before = up.count();
        let r = raw(gw.addr, req.as_bytes()).await;
        let reached = up.count() - before;
        if !(r.status == 400 || r.status == 0) || reached != 0 {
            failures.push(format!(
                "{name}: status {} reached upstream {reached}x; head: {}",
                r.status,
                r.head.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "smuggling vectors not refused:\n{}",
        failures.join("\n")
    );
    // A clean request on a fresh connection still works.
    let r = raw(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}
