//! Route lookup cost over 10 and 10,000 routes (mixed exact, template and
//! prefix routes over several hosts): it should not grow with the route count.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};
use sekisho_router::normalize_path;

mod common;
use common::{requests, router};

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
