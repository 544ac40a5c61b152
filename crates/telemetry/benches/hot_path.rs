//! Per-request telemetry costs: metrics record, access log line, ids.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use sekisho_telemetry::access_log::{AccessLog, AccessLogEntry, AccessLogOptions};
use sekisho_telemetry::metrics::Registry;
use sekisho_telemetry::request_id::new_request_id;
use sekisho_telemetry::trace_context::propagate;

fn entry() -> AccessLogEntry<'static> {
    AccessLogEntry {
        time: SystemTime::now(),
        remote_addr: "127.0.0.1:51234".parse().unwrap(),
        method: "GET",
        uri: "/v1/items/42?fields=name,price",
        status: 200,
        size: 1234,
        ua: Some("Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
        ptime: Duration::from_micros(2_500),
        host: "api.example.com",
        request_id: "0123456789abcdef0123456789abcdef",
        route: "items",
        cluster: "items-v2",
        upstream_addr: Some("127.0.0.1:9102".parse().unwrap()),
        upstream_time: Some(Duration::from_micros(1_800)),
        auth: None,
        auth_id: None,
    }
}

fn metrics(c: &mut Criterion) {
    let registry = Registry::new();
    let m = registry.request_metrics("items", "items-v2");
    c.bench_function("RequestMetrics::record 200", |b| {
        b.iter(|| {
            m.record(
                black_box(200),
                black_box(Duration::from_micros(2_500)),
                0,
                1234,
            )
        })
    });
    c.bench_function("RequestMetrics::record 418 (rare code)", |b| {
        b.iter(|| {
            m.record(
                black_box(418),
                black_box(Duration::from_micros(2_500)),
                0,
                1234,
            )
        })
    });
}

fn access_log(c: &mut Criterion) {
    let e = entry();
    let mut buf = Vec::with_capacity(512);
    c.bench_function("AccessLogEntry::write_json", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&e).write_json(&mut buf);
            black_box(&buf);
        })
    });
    let log = AccessLog::to_writer(Box::new(std::io::sink()), AccessLogOptions::default()).unwrap();
    c.bench_function("AccessLog::log (format + enqueue)", |b| {
        b.iter(|| log.log(black_box(&e)))
    });
    log.flush().unwrap();
    eprintln!("access log lines dropped during bench: {}", log.dropped());
}

fn ids(c: &mut Criterion) {
    c.bench_function("new_request_id", |b| b.iter(|| black_box(new_request_id())));
    let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    c.bench_function("trace_context::propagate + encode", |b| {
        b.iter(|| {
            let hop = propagate(Some(black_box(&tp[..])), None);
            black_box(hop.outgoing.encode());
        })
    });
}

criterion_group!(benches, metrics, access_log, ids);
criterion_main!(benches);
