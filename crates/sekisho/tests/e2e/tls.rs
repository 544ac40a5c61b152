//! TLS: listener certificates chosen by SNI, ALPN h2/http1.1, and TLS to upstreams.

use sekisho_test_support::client::{tls_get, HttpClient};
use sekisho_test_support::tls::TestCa;
use sekisho_test_support::upstream::Upstream;

use crate::common::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_certificate_and_alpn_negotiates() {
    let ca = TestCa::new();
    let a = ca.leaf("a", &["a.test"]);
    let b = ca.leaf("b", &["b.test", "*.b.test"]);
    let up = Upstream::named("svc").await;
    let yaml = format!(
        r#"
listeners:
  - name: public
    listen: "127.0.0.1:0"
    tls:
      certs:
        - {{ cert: "{}", key: "{}" }}
        - {{ cert: "{}", key: "{}" }}
access_log: {{ path: "off" }}
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: svc }}]
clusters: [{{ name: svc, endpoints: ["{}"] }}]
"#,
        a.cert.display(),
        a.key.display(),
        b.cert.display(),
        b.key.display(),
        up.addr()
    );
    let gw = start(&yaml).await;
    // The client verifies the certificate against the SNI name: success proves the choice.
    for (sni, alpn, want) in [
        ("a.test", &[&b"h2"[..], b"http/1.1"][..], &b"h2"[..]),
        ("b.test", &[&b"http/1.1"[..]][..], &b"http/1.1"[..]),
        ("x.b.test", &[&b"h2"[..]][..], &b"h2"[..]),
    ] {
        let (resp, negotiated) = tls_get(gw.addr, ca.client_config(alpn), sni, "/hello")
            .await
            .unwrap_or_else(|e| panic!("{sni}: {e}"));
        assert_eq!(resp.status, 200, "{sni}");
        assert_eq!(resp.text(), "svc");
        assert_eq!(negotiated.as_deref(), Some(want), "{sni}");
    }
    let seen = up.seen();
    assert_eq!(seen[0].headers["x-forwarded-proto"], "https");
    // An unknown name gets the default (first) certificate, which does not verify for it.
    assert!(tls_get(gw.addr, ca.client_config(&[b"h2"]), "c.test", "/")
        .await
        .is_err());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_upstream_with_custom_ca_and_sni() {
    let ca = TestCa::new();
    let leaf = ca.leaf("up", &["upstream.internal"]);
    let h1 = Upstream::start_with_tls("h1", Some(ca.server_config(&leaf)), |_| {
        sekisho_test_support::upstream::Reply::text("tls-upstream")
    })
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes:
  - {{ name: a, match: {{ path_prefix: /a }}, cluster: h1 }}
  - {{ name: b, match: {{ path_prefix: /b }}, cluster: auto }}
  - {{ name: c, match: {{ path_prefix: /c }}, cluster: wrong-name }}
  - {{ name: d, match: {{ path_prefix: /d }}, cluster: extra }}
clusters:
  - {{ name: h1, endpoints: ["{addr}"], tls: {{ sni: upstream.internal, ca: "{ca}" }} }}
  - {{ name: auto, endpoints: ["{addr}"], protocol: auto, tls: {{ sni: upstream.internal, ca: "{ca}" }} }}
  - {{ name: wrong-name, endpoints: ["{addr}"], tls: {{ sni: other.internal, ca: "{ca}" }} }}
  - {{ name: extra, endpoints: ["{addr}"], tls: {{ sni: upstream.internal, extra_ca: "{ca}" }} }}
"#,
        addr = h1.addr(),
        ca = ca.ca_path().display(),
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let r = c.get(gw.addr, "/a").await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "tls-upstream")
    );
    let r = c.get(gw.addr, "/b").await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "tls-upstream")
    );
    assert!(
        h1.seen().iter().any(|s| s.version == http::Version::HTTP_2),
        "auto picked h2 by ALPN"
    );
    // The test CA in addition to the web PKI roots.
    let r = c.get(gw.addr, "/d").await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "tls-upstream")
    );
    let r = c.get(gw.addr, "/c").await;
    assert_eq!(
        r.status,
        502,
        "certificate not valid for the SNI name: {}",
        r.text()
    );
    gw.stop().await;
}

/// HTTP/2 over TLS to a real nginx: the host travels only in `:authority` (nginx before 1.25
/// rejects a request carrying both it and a Host header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_to_a_real_nginx_origin() {
    let ca = TestCa::new();
    let leaf = ca.leaf("nginx", &["origin.internal"]);
    let nginx = sekisho_test_support::nginx::Nginx::start_tls(
        &leaf.cert,
        &leaf.key,
        "    location / { return 200 \"$server_protocol $host\\n\"; }",
    )
    .await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
access_log: {{ path: "off" }}
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: nginx }}]
clusters:
  - {{ name: nginx, protocol: h2, endpoints: ["{}"], tls: {{ sni: origin.internal, ca: "{}" }} }}
"#,
        nginx.addr(),
        ca.ca_path().display()
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    for _ in 0..3 {
        let r = c
            .send(crate::common::get(
                &gw.url("/x"),
                &[("host", "api.example.com")],
            ))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.text().as_str()),
            (200, "HTTP/2.0 api.example.com\n")
        );
    }
    gw.stop().await;
}
