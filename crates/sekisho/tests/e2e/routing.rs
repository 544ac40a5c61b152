//! Route matching: host, path kinds, predicates, precedence, split, actions.

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::upstream::Upstream;

use crate::common::{cluster, get, start};

/// Every precedence rule of DESIGN.md, each request answered by the upstream named after
/// the route that should win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_host_path_predicates() {
    let names = [
        "exact_host",
        "wild_host",
        "deep_wild",
        "exact_path",
        "template",
        "template_literal",
        "long_prefix",
        "short_prefix",
        "post_only",
        "header_pred",
        "monolith",
    ];
    let mut ups = Vec::new();
    let mut clusters = String::new();
    for n in names {
        let u = Upstream::named(n).await;
        clusters.push_str(&cluster(n, u.addr()));
        ups.push(u);
    }
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - {{ name: r1, match: {{ host: api.example.com, path_prefix: /v1/ }}, cluster: exact_host }}
  - {{ name: r2, match: {{ host: "*.example.com", path_prefix: /v1/ }}, cluster: wild_host }}
  - {{ name: r3, match: {{ host: "*.b.example.com", path_prefix: /v1/ }}, cluster: deep_wild }}
  - {{ name: r4, match: {{ path: /v1/items/special }}, cluster: exact_path }}
  - {{ name: r5, match: {{ path_template: "/v1/items/{{id}}" }}, cluster: template }}
  - {{ name: r6, match: {{ path_template: "/v1/items/{{id}}/reviews" }}, cluster: template_literal }}
  - {{ name: r7, match: {{ path_prefix: /v1/items/ }}, cluster: long_prefix }}
  - {{ name: r8, match: {{ path_prefix: /v1/ }}, cluster: short_prefix }}
  - {{ name: r9, match: {{ path_prefix: /v1/, methods: [POST] }}, cluster: post_only }}
  - {{ name: r10, match: {{ path_prefix: /v1/, methods: [GET], headers: [{{ name: x-beta, value: "1" }}] }}, cluster: header_pred }}
  - {{ name: r11, match: {{ path_prefix: / }}, cluster: monolith }}
clusters:
{clusters}"#
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("GET", "/v1/x", &[("host", "api.example.com")], "exact_host"),
        (
            "GET",
            "/v1/x",
            &[("host", "API.Example.COM:8080")],
            "exact_host",
        ),
        ("GET", "/v1/x", &[("host", "a.example.com")], "wild_host"),
        ("GET", "/v1/x", &[("host", "x.b.example.com")], "deep_wild"),
        // Host tiers fall through: api.example.com has no route for /other, the catch-all does.
        ("GET", "/other", &[("host", "api.example.com")], "monolith"),
        ("GET", "/v1/items/special", &[], "exact_path"),
        ("GET", "/v1/items/42", &[], "template"),
        ("GET", "/v1/items/42/reviews", &[], "template_literal"),
        ("GET", "/v1/items/42/other", &[], "long_prefix"),
        ("GET", "/v1/users", &[], "short_prefix"),
        ("POST", "/v1/users", &[], "post_only"),
        ("GET", "/v1/users", &[("x-beta", "1")], "header_pred"),
        ("GET", "/v1/users", &[("x-beta", "2")], "short_prefix"),
        ("GET", "/", &[], "monolith"),
        ("GET", "/legacy/page.php", &[], "monolith"),
    ];
    for (method, path, headers, want) in cases {
        let mut req = crate::common::request(method, &gw.url(path), headers, "");
        if let Some((_, h)) = headers.iter().find(|(k, _)| *k == "host") {
            req.headers_mut().insert("host", h.parse().unwrap());
        }
        let resp = c.send(req).await;
        assert_eq!(
            resp.status,
            200,
            "{method} {path} {headers:?}: {}",
            resp.text()
        );
        assert_eq!(resp.text(), *want, "{method} {path} {headers:?}");
    }
    gw.stop().await;
}

/// Split shares are exact over a cycle (deterministic schedule), and the override header
/// forces a side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_exact_and_override() {
    let stable = Upstream::named("stable").await;
    let canary = Upstream::named("canary").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: items
    match: {{ path_prefix: / }}
    split: [{{ cluster: canary, weight: 5 }}, {{ cluster: stable, weight: 95 }}]
    split_header: x-canary
clusters:
{}{}"#,
        cluster("stable", stable.addr()),
        cluster("canary", canary.addr())
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let mut canary_hits = 0;
    for _ in 0..200 {
        if c.get(gw.addr, "/x").await.text() == "canary" {
            canary_hits += 1;
        }
    }
    assert_eq!(canary_hits, 10, "5% of 200 requests");
    for _ in 0..5 {
        let r = c.send(get(&gw.url("/x"), &[("x-canary", "canary")])).await;
        assert_eq!(r.text(), "canary");
    }
    // An unknown cluster name in the override is ignored (weights apply).
    let r = c.send(get(&gw.url("/x"), &[("x-canary", "nope")])).await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}

/// Prefix rewrite, header edits, direct responses and redirects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_rewrite_headers_direct_redirect() {
    let up = Upstream::named("svc").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - name: api
    match: {{ path_prefix: /api/v1/ }}
    cluster: svc
    rewrite: {{ prefix: /internal/ }}
    request_headers: {{ set: {{ x-env: test }}, add: {{ x-multi: b }}, remove: [x-secret] }}
    response_headers: {{ set: {{ x-served-by: sekisho }}, remove: [x-upstream] }}
  - name: teapot
    match: {{ path: /teapot }}
    direct_response: {{ status: 418, body: "short and stout", content_type: text/plain }}
  - name: moved
    match: {{ path_prefix: /old/ }}
    redirect: {{ location: "https://new.example.com", status: 308, preserve_path: true }}
  - name: gone
    match: {{ path: /gone }}
    redirect: {{ location: "https://example.com/elsewhere" }}
clusters:
{}"#,
        cluster("svc", up.addr())
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let r = c
        .send(get(
            &gw.url("/api/v1/items/7?q=1"),
            &[("x-secret", "s"), ("x-multi", "a")],
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-served-by"), "sekisho");
    assert_eq!(r.header("x-upstream"), "");
    let seen = up.seen();
    let s = seen.last().unwrap();
    assert_eq!(s.uri, "/internal/items/7?q=1");
    assert_eq!(s.headers["x-env"], "test");
    assert!(s.headers.get("x-secret").is_none());
    let multi: Vec<_> = s
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(multi, ["a", "b"]);

    let r = c.get(gw.addr, "/teapot").await;
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), "short and stout");
    assert_eq!(r.header("content-type"), "text/plain");

    let r = c.get(gw.addr, "/old/a/b?x=1").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), "https://new.example.com/old/a/b?x=1");
    let r = c.get(gw.addr, "/gone").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), "https://example.com/elsewhere");
    gw.stop().await;
}
