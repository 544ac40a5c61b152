//! Rate limits through the gateway: local, and exact across processes through Redis.

use super::*;

fn rate_yaml(
    listen: SocketAddr,
    admin: SocketAddr,
    up: SocketAddr,
    redis: &str,
    fallback: &str,
) -> String {
    format!(
        r#"
admin: {{ listen: "{admin}" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "{listen}" }}]
routes:
  - name: api
    match: {{ path_prefix: / }}
    cluster: svc
    rate_limit:
      key: {{ header: x-tenant }}
      limit: 10
      period: 60s
      backend: {{ redis: "{redis}" }}
      timeout: 50ms
      on_backend_error: {fallback}
      breaker: {{ failures: 2, cooldown: 30s }}
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#
    )
}

/// Redis counts exactly across two processes; once Redis is frozen, answers stay fast and
/// the per-instance fallback applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_exact_across_two_processes_and_bounded_without_redis() {
    let redis = Redis::start();
    let up = Upstream::start("svc", |_| Reply::text("ok")).await;
    let gws = two_gateways(|l, a| rate_yaml(l, a, up.addr(), &redis.url(), "local")).await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        let r = HttpClient::http1()
            .send(get(
                &format!("http://{}/x", gws[i % 2].1),
                &[("x-tenant", "acme")],
            ))
            .await;
        if r.status == 200 {
            assert_eq!(r.header("ratelimit-limit"), "10");
        } else {
            assert_eq!(r.status, 429);
            assert_eq!(r.json()["error"], "rate_limited");
            assert!(!r.header("retry-after").is_empty());
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        10,
        "{statuses:?}"
    );
    // Another tenant has its own bucket.
    let r = HttpClient::http1()
        .send(get(
            &format!("http://{}/x", gws[0].1),
            &[("x-tenant", "other")],
        ))
        .await;
    assert_eq!(r.status, 200);

    redis.pause();
    let mut worst = Duration::ZERO;
    let mut allowed = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let r = HttpClient::http1()
            .send(get(
                &format!("http://{}/x", gws[0].1),
                &[("x-tenant", "fresh")],
            ))
            .await;
        worst = worst.max(t.elapsed());
        if r.status == 200 {
            allowed += 1;
        }
    }
    redis.resume();
    assert!(
        worst < Duration::from_secs(1),
        "a frozen Redis costs at most the timeout: worst {worst:?}"
    );
    assert_eq!(
        allowed, 10,
        "the local fallback applies the same limit per instance"
    );
}
