//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/config`, `/clusters`, and
//! `POST /reload`.
//!
//! Kept apart from client listeners so it can be bound to a private address and never
//! competes with client traffic for connection limits.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sekisho_telemetry::metrics::MetricWriter;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::control::Control;
use crate::server::Shared;

/// Serves the admin endpoints until shutdown.
pub async fn serve(
    socket: TcpListener,
    control: Arc<Control>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10));
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = tokio::select! {
            r = socket.accept() => match r { Ok(p) => p, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let control = control.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let control = control.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&control, &req).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(control: &Control, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let shared = &*control.shared;
    if req.uri().path() == "/reload" {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST /reload\n");
        }
        return match control.reload_file().await {
            Ok(()) => json(&serde_json::json!({ "reloaded": true })),
            Err(errors) => {
                let mut resp = json(&serde_json::json!({
                    "reloaded": false,
                    "errors": errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                }));
                *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                resp
            }
        };
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if shared.draining.load(Ordering::Relaxed) {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        "/metrics" => {
            let mut out = String::with_capacity(16 * 1024);
            render_metrics(shared, &mut out);
            let mut resp = Response::new(Full::new(Bytes::from(out)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/config" => {
            let status = control.status();
            json(&serde_json::json!({
                "config": shared.plan.load().config.effective_json(),
                "reload": {
                    "reloads": status.reloads,
                    "failures": status.failures,
                    "last_error": status.last_error,
                    "applied_at": status.applied_at.map(httpdate::fmt_http_date),
                },
            }))
        }
        "/clusters" => json(&clusters_json(shared)),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz /readyz /metrics /config /clusters, POST /reload\n",
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn clusters_json(shared: &Shared) -> serde_json::Value {
    let plan = shared.plan.load();
    let mut names: Vec<&String> = plan.clusters.keys().collect();
    names.sort();
    let clusters: Vec<serde_json::Value> = names
        .into_iter()
        .filter_map(|n| plan.clusters.get(n))
        .map(|c| {
            let snap = c.snapshot();
            serde_json::json!({
                "name": c.name(),
                "endpoints": snap.endpoints.iter().map(|e| serde_json::json!({
                    "address": e.address.to_string(),
                    "host": e.host,
                    "weight": e.weight,
                    "active_connections": e.active_connections,
                    "idle_connections": e.idle_connections,
                    "connecting": e.connecting,
                    "pending_requests": e.pending,
                    "in_flight_requests": e.in_flight,
                    "connections_opened_total": e.connections_opened_total,
                    "connect_failures_total": e.connect_failures_total,
                    "health": e.health.as_str(),
                    "ejections_total": e.ejections_total,
                    "ejection_left_ms": e.ejection_left_ms,
                    "last_check": e.last_check,
                })).collect::<Vec<_>>(),
                "healthy_endpoints": snap.healthy_endpoints,
                "panic_mode": snap.panic_mode,
                "panic_routed_total": snap.panic_routed_total,
                "active_requests": snap.active_requests,
                "max_requests": snap.max_requests,
                "circuit_breaker_rejections_total": snap.circuit_breaker_rejections_total,
                "retries_total": snap.retries_total,
                "retry_budget_exhausted_total": snap.retry_budget_exhausted_total,
            })
        })
        .collect();
    let dns: Vec<serde_json::Value> = shared
        .dns
        .entries()
        .iter()
        .map(|e| {
            serde_json::json!({
                "host": e.host,
                "addresses": e.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "ttl_seconds": e.ttl.as_secs_f64(),
                "ttl_left_ms": e.ttl_left_ms,
                "refreshing": e.refreshing,
                "failures": e.failures,
                "last_error": e.last_error,
            })
        })
        .collect();
    serde_json::json!({ "clusters": clusters, "dns": dns })
}

fn render_metrics(shared: &Shared, out: &mut String) {
    shared.registry.render(out);
    let plan = shared.plan.load();
    let mut w = MetricWriter::new();
    plan.policies.write_metrics(&mut w);
    for (name, cluster) in plan.clusters.iter() {
        cluster
            .timings()
            .write(&mut w, "sekisho_upstream", &[("cluster", name.as_str())]);
        let snap = cluster.snapshot();
        for e in &snap.endpoints {
            let addr = e.address.to_string();
            let labels = [("cluster", name.as_str()), ("endpoint", addr.as_str())];
            w.gauge(
                "sekisho_upstream_connections_active",
                "Upstream connections in use.",
                &labels,
                e.active_connections as f64,
            );
            w.gauge(
                "sekisho_upstream_connections_idle",
                "Idle pooled upstream connections.",
                &labels,
                e.idle_connections as f64,
            );
            w.gauge(
                "sekisho_upstream_pending_requests",
                "Requests waiting for an upstream connection.",
                &labels,
                e.pending as f64,
            );
            w.gauge(
                "sekisho_upstream_requests_in_flight",
                "Requests in flight to the endpoint.",
                &labels,
                e.in_flight as f64,
            );
            w.counter(
                "sekisho_upstream_connections_opened_total",
                "Upstream connections opened.",
                &labels,
                e.connections_opened_total,
            );
            w.counter(
                "sekisho_upstream_connect_failures_total",
                "Failed upstream connection attempts.",
                &labels,
                e.connect_failures_total,
            );
            w.gauge(
                "sekisho_upstream_endpoint_healthy",
                "1 when the endpoint is in rotation (passing health checks, not ejected).",
                &labels,
                f64::from(u8::from(e.health == sekisho_proxy::HealthStatus::Healthy)),
            );
            w.gauge(
                "sekisho_upstream_endpoint_ejected",
                "1 while outlier detection has the endpoint ejected.",
                &labels,
                f64::from(u8::from(e.health == sekisho_proxy::HealthStatus::Ejected)),
            );
            w.counter(
                "sekisho_upstream_ejections_total",
                "Times outlier detection ejected the endpoint.",
                &labels,
                e.ejections_total,
            );
        }
        cluster_metrics(&mut w, name, &snap);
    }
    let dns = shared.dns.stats();
    w.counter(
        "sekisho_dns_cache_hits_total",
        "DNS answers served from the cache.",
        &[],
        dns.hits,
    );
    w.counter(
        "sekisho_dns_cache_misses_total",
        "DNS cache misses (lookups on the request path).",
        &[],
        dns.misses,
    );
    w.counter(
        "sekisho_dns_stale_served_total",
        "Expired DNS answers served because refresh failed.",
        &[],
        dns.stale_served,
    );
    w.counter(
        "sekisho_dns_lookups_total",
        "DNS lookups sent to the resolver.",
        &[],
        dns.lookups,
    );
    w.counter(
        "sekisho_dns_lookup_failures_total",
        "DNS lookups that failed or timed out.",
        &[],
        dns.lookup_failures,
    );
    w.gauge(
        "sekisho_dns_cache_entries",
        "Names in the DNS cache.",
        &[],
        dns.entries as f64,
    );
    w.finish(out);
}

/// Cluster-wide health, circuit-breaker and retry-budget series.
fn cluster_metrics(w: &mut MetricWriter, name: &str, snap: &sekisho_proxy::ClusterSnapshot) {
    let labels = [("cluster", name)];
    w.gauge(
        "sekisho_upstream_healthy_endpoints",
        "Endpoints in rotation (passing health checks, not ejected).",
        &labels,
        snap.healthy_endpoints as f64,
    );
    w.gauge(
        "sekisho_upstream_panic_mode",
        "1 while too few endpoints are healthy and requests go to all of them.",
        &labels,
        f64::from(u8::from(snap.panic_mode)),
    );
    w.counter(
        "sekisho_upstream_panic_routed_total",
        "Requests routed while the cluster was in panic mode.",
        &labels,
        snap.panic_routed_total,
    );
    w.gauge(
        "sekisho_upstream_requests_active",
        "Requests in flight to the cluster, counted against max_requests.",
        &labels,
        snap.active_requests as f64,
    );
    w.counter(
        "sekisho_upstream_circuit_breaker_rejections_total",
        "Requests refused at once because max_requests were in flight.",
        &labels,
        snap.circuit_breaker_rejections_total,
    );
    w.counter(
        "sekisho_upstream_retries_total",
        "Retries granted by the cluster's retry budget.",
        &labels,
        snap.retries_total,
    );
    w.counter(
        "sekisho_upstream_retry_budget_exhausted_total",
        "Retries refused because the cluster's retry budget was spent.",
        &labels,
        snap.retry_budget_exhausted_total,
    );
}
