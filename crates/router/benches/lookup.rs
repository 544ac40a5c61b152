//! Route lookup cost over 10 and 10,000 routes (mixed exact, template and
//! prefix routes over several hosts): it should not grow with the route count.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};
use sekisho_router::{normalize_path, HostMatch, PathMatch, RouteSpec, Router, RouterBuilder};

const HOSTS: usize = 8;

/// `n` routes in four kinds, plus a host-less catch-all.
fn router(n: usize) -> Router<usize> {
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
fn requests(n: usize) -> Vec<(&'static str, String, String)> {
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

fn lookup(c: &mut Criterion) {
    let headers = HeaderMap::new();
    for n in [10, 10_000] {
        let r = router(n);
        let mut group = c.benchmark_group(format!("lookup/{n}"));
        for (name, host, path) in requests(n) {
            assert!(
                r.find(&host, &path, &Method::GET, &headers).is_some(),
                "{name} misses"
            );
            group.bench_function(name, |b| {
                b.iter(|| {
                    let m = r.find(black_box(&host), black_box(&path), &Method::GET, &headers);
                    black_box(m.map(|m| m.index))
                })
            });
        }
        group.finish();
    }
}

fn normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize");
    for (name, path) in [
        ("clean", "/api/v1/items/42/parts"),
        ("dirty", "/api/v1//x/../items/%34%32/./parts"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| normalize_path(black_box(path)).map(|n| n.path.len()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = lookup, normalize
}
criterion_main!(benches);
