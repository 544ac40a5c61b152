//! The full example config parses with the expected values; defaults apply.

use std::path::PathBuf;
use std::time::Duration;

use super::{ok, FULL, MINIMAL};
use crate::model::*;

#[test]
fn full_config_values() {
    let c = ok(FULL);
    let admin = c.admin.as_ref().map(|a| a.listen.to_string());
    assert_eq!(admin.as_deref(), Some("127.0.0.1:9901"));
    assert_eq!(
        c.access_log.target,
        LogTarget::File(PathBuf::from("/etc/sekisho/logs/access.log"))
    );
    assert_eq!(c.dns.resolvers, vec!["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(c.dns.max_stale, Duration::from_secs(3600));

    assert_eq!(c.listeners.len(), 2);
    let public = &c.listeners[0];
    assert_eq!(public.name, "public");
    assert_eq!(public.at.path, "listeners[0]");
    assert_eq!(public.at.line, 6);
    let tls = public.tls.as_ref().unwrap();
    assert_eq!(tls.certs[0].cert, PathBuf::from("/etc/sekisho/tls/api.pem"));
    assert_eq!(tls.certs[0].key, PathBuf::from("/etc/sekisho/tls/api.key"));
    assert_eq!(tls.certs[0].at.path, "listeners[0].tls.certs[0]");
    assert_eq!(public.limits.max_header_bytes, 65536);
    assert_eq!(public.limits.max_concurrent_streams, 100);
    assert!(c.listeners[1].tls.is_none());

    let r = &c.routes[0];
    assert_eq!(r.name, "payments");
    assert_eq!(r.at.line, 13);
    assert_eq!(r.matcher.host.as_deref(), Some("api.example.com"));
    assert_eq!(r.matcher.path, PathMatch::Prefix("/v1/payments/".into()));
    assert_eq!(r.matcher.methods, vec!["GET", "POST"]);
    assert_eq!(
        r.matcher.headers,
        vec![
            HeaderMatch {
                name: "x-env".into(),
                value: Some("prod".into())
            },
            HeaderMatch {
                name: "x-trace".into(),
                value: None
            },
        ]
    );
    assert_eq!(r.action, RouteAction::Cluster("payment".into()));
    assert_eq!(r.timeout, Duration::from_secs(3));
    assert_eq!(r.buffer_request, Some(BufferRequest { max_bytes: 1 << 20 }));
    assert_eq!(
        r.rewrite,
        Some(Rewrite {
            prefix: "/payments/".into()
        })
    );
    assert_eq!(
        r.request_headers,
        HeaderOps {
            set: vec![("x-from".into(), "gw".into())],
            add: vec![("x-extra".into(), "a".into())],
            remove: vec!["x-internal".into()],
        }
    );
    assert_eq!(
        r.response_headers.set,
        vec![("cache-control".into(), "no-store".into())]
    );

    let items = &c.routes[1];
    assert_eq!(
        items.matcher.path,
        PathMatch::Template("/v1/items/{id}".into())
    );
    assert_eq!(
        items.action,
        RouteAction::Split(Split {
            targets: vec![
                WeightedCluster {
                    cluster: "items-v2".into(),
                    weight: 5
                },
                WeightedCluster {
                    cluster: "items".into(),
                    weight: 95
                },
            ],
            override_header: "x-canary".into(),
        })
    );
    assert_eq!(items.timeout, Duration::from_secs(15));
    assert!(c.routes[2].allow_encoded_slashes);
    assert_eq!(c.routes[2].matcher.host.as_deref(), Some("*.example.com"));
    assert_eq!(
        c.routes[3].action,
        RouteAction::Direct(DirectResponse {
            status: 403,
            body: "forbidden".into(),
            content_type: "text/plain; charset=utf-8".into(),
        })
    );
    assert_eq!(
        c.routes[4].action,
        RouteAction::Redirect(Redirect {
            location: "https://new.example.com/".into(),
            status: 308,
            preserve_path: true,
        })
    );
    assert_eq!(c.routes[4].matcher.path, PathMatch::Exact("/old".into()));

    let payment = &c.clusters[0];
    assert_eq!(payment.protocol, Protocol::H2c);
    assert_eq!(payment.lb, LbPolicy::LeastRequest);
    assert_eq!(
        payment.endpoints[0].host,
        "payment.payment.svc.cluster.local"
    );
    assert_eq!(payment.endpoints[0].port, 8080);
    assert_eq!(c.clusters[2].endpoints[0].host, "::1");
    assert_eq!(c.clusters[2].lb, LbPolicy::RoundRobin);
    let mono = &c.clusters[3];
    assert_eq!(mono.protocol, Protocol::Auto);
    assert_eq!(mono.endpoints[1].weight, 2);
    assert_eq!(mono.endpoints[1].at.path, "clusters[3].endpoints[1]");
    assert_eq!(mono.endpoints[1].at.line, 51);
    let tls = mono.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("monolith.internal"));
    assert_eq!(tls.ca, Some(PathBuf::from("/etc/sekisho/tls/ca.pem")));
    assert_eq!(
        tls.client_cert,
        Some((
            PathBuf::from("/etc/sekisho/tls/client.pem"),
            PathBuf::from("/etc/sekisho/tls/client.key")
        ))
    );
    assert!(c.secret_paths.is_empty());
}

#[test]
fn defaults_apply() {
    let c = ok(MINIMAL);
    assert!(c.admin.is_none());
    assert_eq!(c.access_log.target, LogTarget::Stdout);
    assert!(c.dns.resolvers.is_empty());
    assert_eq!(c.dns.min_ttl, Duration::from_secs(1));
    assert_eq!(c.dns.max_ttl, Duration::from_secs(300));
    assert_eq!(c.dns.timeout, Duration::from_secs(2));
    let l = &c.listeners[0].limits;
    assert_eq!(l.max_header_bytes, 64 * 1024);
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.idle_timeout, Duration::from_secs(60));
    assert_eq!(l.max_connections, 10_000);
    assert_eq!(l.max_concurrent_streams, 100);
    assert!(
        c.listeners[0].http1_fast_path,
        "the fast path is on by default"
    );
    let r = &c.routes[0];
    assert_eq!(r.matcher.path, PathMatch::Prefix("/".into()));
    assert_eq!(r.matcher.host, None);
    assert_eq!(r.timeout, Duration::from_secs(15));
    assert!(!r.allow_encoded_slashes);
    assert_eq!(r.request_headers, HeaderOps::default());
    let cl = &c.clusters[0];
    assert_eq!(cl.protocol, Protocol::Http1);
    assert_eq!(cl.lb, LbPolicy::LeastRequest);
    assert_eq!(cl.connect_timeout, Duration::from_secs(1));
    assert_eq!(cl.endpoints[0].weight, 1);
    assert_eq!(cl.pool.max_connections, 256);
    assert_eq!(cl.pool.max_idle, 64);
    assert_eq!(cl.pool.max_pending, 1024);
    assert_eq!(cl.pool.pending_timeout, Duration::from_secs(5));
    let split = ok(&MINIMAL.replace(
        "cluster: backend\n",
        "split: [{ cluster: backend, weight: 1 }]\n",
    ));
    let RouteAction::Split(s) = &split.routes[0].action else {
        panic!("not a split")
    };
    assert_eq!(s.override_header, "x-sekisho-cluster");
    let redirect = ok(&MINIMAL.replace("cluster: backend\n", "redirect: { location: /x }\n"));
    let RouteAction::Redirect(r) = &redirect.routes[0].action else {
        panic!("not a redirect")
    };
    assert_eq!((r.status, r.preserve_path), (301, false));
}

#[test]
fn effective_json_has_defaults_in_user_shape() {
    let c = ok(FULL);
    let v = c.effective_json();
    assert_eq!(v["admin"]["listen"], "127.0.0.1:9901");
    assert_eq!(v["dns"]["max_stale"], "1h");
    assert_eq!(v["listeners"][1]["limits"]["max_header_bytes"], "64KiB");
    assert_eq!(v["routes"][0]["match"]["path_prefix"], "/v1/payments/");
    assert_eq!(v["routes"][0]["match"]["methods"][1], "POST");
    assert_eq!(v["routes"][0]["match"]["headers"][1]["present"], true);
    assert_eq!(v["routes"][0]["request_headers"]["set"]["x-from"], "gw");
    assert_eq!(v["routes"][1]["split"][0]["weight"], 5);
    assert_eq!(v["routes"][1]["split_header"], "x-canary");
    assert_eq!(v["routes"][1]["timeout"], "15s");
    assert_eq!(v["routes"][3]["direct_response"]["status"], 403);
    assert_eq!(v["routes"][4]["redirect"]["status"], 308);
    assert_eq!(v["clusters"][0]["protocol"], "h2c");
    assert_eq!(v["clusters"][1]["pool"]["pending_timeout"], "5s");
    assert_eq!(v["clusters"][2]["endpoints"][0], "[::1]:9102");
    assert_eq!(v["clusters"][3]["endpoints"][1]["weight"], 2);
    assert_eq!(v["clusters"][3]["tls"]["sni"], "monolith.internal");
}

#[test]
fn effective_json_reparses_to_the_same_config() {
    let c = ok(FULL);
    let text = c.effective_json().to_string();
    // JSON is YAML: the effective form is itself a valid config.
    let again = ok(&text);
    let shape = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.listen, l.limits.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&again), shape(&c));
    assert_eq!(again.routes.len(), c.routes.len());
    for (a, b) in again.routes.iter().zip(&c.routes) {
        assert_eq!(
            (&a.matcher, &a.action, a.timeout),
            (&b.matcher, &b.action, b.timeout)
        );
    }
    assert_eq!(again.clusters.len(), c.clusters.len());
    assert_eq!(again.dns, c.dns);
}

#[test]
fn reference_docs_name_every_key_and_show_the_full_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/config.md")).expect("docs/config.md");
    // The README's reference names keys inside backticked paths (`routes[].match.host`).
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let readme_words: std::collections::HashSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    for (section, keys) in crate::keys::ALL {
        for key in *keys {
            assert!(
                doc.contains(&format!("`{key}`")),
                "docs/config.md lacks `{key}` ({section})"
            );
            assert!(
                readme_words.contains(key),
                "README.md's configuration reference lacks `{key}` ({section})"
            );
        }
    }
    assert!(
        doc.contains(FULL),
        "docs/config.md's example differs from testdata/full.yaml"
    );
}

#[test]
fn readme_edge_policies_example_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme
        .split("## Edge policies: auth, rate limits, locks")
        .nth(1)
        .expect("README.md has the edge policies section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a YAML block in the edge policies section");
    let c = crate::parse_str(yaml, std::path::Path::new("/etc/sekisho"))
        .unwrap_or_else(|e| panic!("README edge policies example:\n{e}"));
    assert!(c.default_auth.is_some());
    let names: Vec<&str> = c.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["health", "buy", "cart", "partners", "account"]);
    let buy = &c.routes[1];
    assert!(buy.rate_limit.is_some() && buy.lock.is_some());
}

#[test]
fn http1_fast_path_switch() {
    let off = MINIMAL.replace(
        "    listen: 127.0.0.1:8080\n",
        "    listen: 127.0.0.1:8080\n    http1_fast_path: false\n",
    );
    assert!(!ok(&off).listeners[0].http1_fast_path);
    let bad = MINIMAL.replace(
        "    listen: 127.0.0.1:8080\n",
        "    listen: 127.0.0.1:8080\n    http1_fast_path: sometimes\n",
    );
    crate::tests::one_error(&bad, "listeners[0].http1_fast_path", 4, "");
}
