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

/// Redis counts exactly across two processes; once Redis is frozen, answers stay fast (the
/// 50 ms timeout, then the open breaker), the per-instance fallback applies and the breaker
/// shows in the metrics.
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

    let before = metrics(gws[0].2).await;
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
    let after = metrics(gws[0].2).await;
    redis.resume();
    assert!(
        worst < Duration::from_millis(500),
        "a frozen Redis costs at most the timeout: worst {worst:?}"
    );
    assert_eq!(
        allowed, 10,
        "the local fallback applies the same limit per instance"
    );
    assert_breaker_opened(&before, &after, 20);
}

/// The fallback took `requests` decisions between the two scrapes, after exactly the
/// breaker's 2 failures (then it skipped Redis), and the breaker is open.
fn assert_breaker_opened(before: &str, after: &str, requests: u32) {
    let delta = |series: &str| {
        sample(after, series).unwrap_or_else(|| panic!("{series} missing:\n{after}"))
            - sample(before, series).unwrap_or(0.0)
    };
    assert_eq!(
        delta(r#"sekisho_ratelimit_backend_errors_total{route="api"}"#),
        2.0,
        "{after}"
    );
    assert_eq!(
        delta(r#"sekisho_ratelimit_fallbacks_total{route="api"}"#),
        f64::from(requests),
        "{after}"
    );
    assert_eq!(
        sample(after, r#"sekisho_ratelimit_breaker_open{route="api"}"#),
        Some(1.0),
        "{after}"
    );
}

/// Redis killed (connections refused): each `on_backend_error` applies at once (`local`: the
/// limit per instance, `allow`: everything, `deny`: 429), every answer is fast, and the
/// breaker opens after 2 failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_redis_killed_falls_back_per_config() {
    let mut redis = Redis::start();
    let up = Upstream::start("svc", |_| Reply::text("ok")).await;
    let mut gws = Vec::new();
    for fallback in ["local", "allow", "deny"] {
        let yaml = rate_yaml(free_addr(), free_addr(), up.addr(), &redis.url(), fallback);
        gws.push((fallback, start(&yaml).await));
    }
    let c = HttpClient::http1();
    let mut before = Vec::new();
    // The three share one Redis bucket per tenant (same route name): proof that Redis counts.
    for (i, (_, gw)) in gws.iter().enumerate() {
        let r = c.send(get(&gw.url("/x"), &[("x-tenant", "warm")])).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-remaining"), (9 - i).to_string());
        before.push(metrics(gw.admin.unwrap()).await);
    }
    redis.stop();
    for ((fallback, gw), before) in gws.iter().zip(&before) {
        let mut statuses = Vec::new();
        let mut worst = Duration::ZERO;
        for _ in 0..15 {
            let t = Instant::now();
            let r = c.send(get(&gw.url("/x"), &[("x-tenant", "acme")])).await;
            worst = worst.max(t.elapsed());
            match (*fallback, r.status.as_u16()) {
                ("local" | "allow", 200) => {}
                ("local", 429) => assert_eq!(r.json()["error"], "rate_limited"),
                ("deny", 429) => {
                    assert_eq!(r.json()["error"], "rate_limit_unavailable");
                    assert_eq!(r.header("retry-after"), "1");
                }
                (f, s) => panic!("{f}: unexpected {s}: {}", r.text()),
            }
            statuses.push(r.status.as_u16());
        }
        assert!(
            worst < Duration::from_millis(500),
            "{fallback}: a dead Redis must not slow answers: worst {worst:?}"
        );
        let allowed = statuses.iter().filter(|s| **s == 200).count();
        let want = match *fallback {
            "local" => 10,
            "allow" => 15,
            _ => 0,
        };
        assert_eq!(allowed, want, "{fallback}: {statuses:?}");
        let after = metrics(gw.admin.unwrap()).await;
        assert_breaker_opened(before, &after, 15);
    }
    for (_, gw) in gws {
        gw.stop().await;
    }
}

/// A rate limit keyed by a JWT claim: two users of one tenant share its bucket, another
/// tenant has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_keyed_by_a_jwt_claim() {
    let up = Upstream::start("svc", |_| Reply::text("ok")).await;
    let yaml = format!(
        r#"
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
routes:
  - name: api
    match: {{ path_prefix: / }}
    cluster: svc
    auth:
      jwt:
        algorithms: [RS256]
        keys: {{ files: [{{ path: "{key}", kid: k1 }}] }}
    rate_limit: {{ key: {{ claim: tenant }}, limit: 2, period: 60s }}
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#,
        key = data("rsa1.pub.pem"),
        up = up.addr(),
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let call = |sub: &str, tenant: &str| {
        let t = token(serde_json::json!({"sub": sub, "tenant": tenant, "exp": now() + 300}));
        get(&gw.url("/x"), &[("authorization", &format!("Bearer {t}"))])
    };
    let mut acme = Vec::new();
    for sub in ["u1", "u2", "u1"] {
        acme.push(c.send(call(sub, "acme")).await.status.as_u16());
    }
    assert_eq!(acme, [200, 200, 429], "one bucket for the tenant");
    let r = c.send(call("u3", "globex")).await;
    assert_eq!(r.status, 200, "another tenant, another bucket");
    assert_eq!(r.header("ratelimit-remaining"), "1");
    let r = c.send(call("u1", "acme")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"], "rate_limited");
    assert!(!r.header("retry-after").is_empty());
    gw.stop().await;
}
