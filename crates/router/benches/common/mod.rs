//! The route tables and requests shared by the lookup benchmarks: `n` routes of four
//! kinds (exact, template, wildcard-host prefix, catch-all template) over several hosts,
//! and requests that hit each kind near the end of the table.

use http::Method;
use sekisho_router::{HostMatch, PathMatch, RouteSpec, Router, RouterBuilder};

const HOSTS: usize = 8;

/// `n` routes in four kinds, plus a host-less catch-all.
pub fn router(n: usize) -> Router<usize> {
    let mut b = RouterBuilder::new();
    for i in 0..n {
        let exact_host = HostMatch::Exact(format!("svc{}.example.com", i % HOSTS));
        let spec = match i % 4 {
            0 => RouteSpec {
                host: exact_host,
                ..RouteSpec::new(PathMatch::Exact(format!("/api/v{}/r{i}/status", i % 3)))
            },
            1 => RouteSpec::new(PathMatch::Template(format!("/api/r{i}/items/{{id}}"))),
            2 => RouteSpec {
                host: HostMatch::Wildcard(".example.com".into()),
                ..RouteSpec::new(PathMatch::Prefix(format!("/static/r{i}/")))
            },
            _ => RouteSpec {
                host: exact_host,
                methods: vec![Method::GET],
                ..RouteSpec::new(PathMatch::Template(format!("/api/r{i}/{{*rest}}")))
            },
        };
        b.add(spec, i);
    }
    b.add(RouteSpec::new(PathMatch::Prefix("/".into())), n);
    match b.build() {
        Ok(r) => r,
        Err(e) => panic!("bench routes do not build: {e:?}"),
    }
}

/// Requests hitting each kind of route near the end of the table.
pub fn requests(n: usize) -> Vec<(&'static str, String, String)> {
    let i = |kind: usize| n - 4 + kind;
    vec![
        (
            "exact",
            format!("svc{}.example.com", i(0) % HOSTS),
            format!("/api/v{}/r{}/status", i(0) % 3, i(0)),
        ),
        (
            "template",
            "api.other.org".into(),
            format!("/api/r{}/items/42", i(1)),
        ),
        (
            "wildcard_prefix",
            "cdn.example.com".into(),
            format!("/static/r{}/app/main.js", i(2)),
        ),
        (
            "catch_all_template",
            format!("svc{}.example.com:443", i(3) % HOSTS),
            format!("/api/r{}/a/b/c", i(3)),
        ),
        (
            "fallthrough",
            "SVC1.Example.com".into(),
            "/legacy/page".into(),
        ),
    ]
}
