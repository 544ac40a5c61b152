//! Path normalization before routing: no spelling of a path reaches a route it should not,
//! and the upstream sees the normalized path.

use sekisho_test_support::client::raw_get;
use sekisho_test_support::upstream::Upstream;

use crate::common::{cluster, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_attempts_cannot_reach_guarded_route() {
    let up = Upstream::named("app").await;
    let files = Upstream::named("files").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: admin-guard
    match: {{ path_prefix: /admin/ }}
    direct_response: {{ status: 403, body: "forbidden" }}
  - name: files
    match: {{ path_prefix: /files/ }}
    cluster: files
    allow_encoded_slashes: true
  - name: app
    match: {{ path_prefix: / }}
    cluster: app
clusters:
{}{}"#,
        cluster("app", up.addr()),
        cluster("files", files.addr())
    );
    let gw = start(&yaml).await;
    // (request target, expected status, expected path at the upstream if proxied)
    let cases: &[(&str, u16, Option<&str>)] = &[
        ("/admin/users", 403, None),
        ("//admin/users", 403, None),
        ("///admin//users", 403, None),
        ("/public/../admin/users", 403, None),
        ("/public/%2e%2e/admin/users", 403, None),
        ("/%2E%2E/admin/users", 403, None),
        ("/./admin/users", 403, None),
        ("/%61dmin/users", 403, None),
        ("/admin/..%2fusers", 400, None),
        ("/x/..%2fadmin/users", 400, None),
        ("/x/..%5cadmin/users", 400, None),
        ("/admin%2fusers", 400, None),
        ("/x/%00/y", 400, None),
        ("/x/..;/admin/users", 400, None),
        ("/x/.;/admin/users", 400, None),
        ("/../../../etc/passwd", 200, Some("/etc/passwd")),
        ("/public/./a//b/../c?q=%2F", 200, Some("/public/a/c?q=%2F")),
        ("/caf%C3%A9", 200, Some("/caf%C3%A9")),
        // An allowing route keeps encoded separators encoded: never a separator upstream.
        ("/files/a%2fb", 200, Some("/files/a%2Fb")),
    ];
    for (target, status, upstream_path) in cases {
        let before = up.count() + files.count();
        let r = raw_get(gw.addr, target).await;
        assert_eq!(r.status, *status, "{target}: {}", r.head);
        match upstream_path {
            Some(p) => {
                let mut seen = up.seen();
                seen.extend(files.seen());
                assert!(
                    seen.iter().any(|s| s.uri == *p),
                    "{target}: upstream saw {:?}",
                    seen.iter().map(|s| &s.uri).collect::<Vec<_>>()
                );
            }
            None => assert_eq!(
                up.count() + files.count(),
                before,
                "{target} reached an upstream"
            ),
        }
        if *status == 400 {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            assert!(
                body["request_id"].is_string(),
                "{target}: JSON error body: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    gw.stop().await;
}
