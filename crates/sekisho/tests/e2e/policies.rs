//! Route policies through the gateway: concurrency locks and rate limits shared by two
//! `sekisho serve` processes over real memcached and Redis, and authentication wiring (JWT
//! from key files, API keys, `default_auth` with `auth: public`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sekisho_test_support::client::HttpClient;
use sekisho_test_support::memcached::Memcached;
use sekisho_test_support::redis::Redis;
use sekisho_test_support::upstream::{Reply, Upstream};
use sekisho_test_support::{eventually, free_addr};

use crate::common::{get, request, start};
use crate::process::Serve;

/// An upstream that counts purchases in progress and remembers the most seen at once.
struct Shop {
    addr: SocketAddr,
    inside: Arc<AtomicUsize>,
    max_inside: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Shop {
    async fn start(hold: Duration) -> Shop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let (i, m, s) = (inside.clone(), max_inside.clone(), served.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (i, m, s) = (i.clone(), m.clone(), s.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let (i, m, s) = (i.clone(), m.clone(), s.clone());
                            async move {
                                let _ = req.into_body().collect().await;
                                let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                                m.fetch_max(now, Ordering::SeqCst);
                                tokio::time::sleep(hold).await;
                                i.fetch_sub(1, Ordering::SeqCst);
                                s.fetch_add(1, Ordering::SeqCst);
                                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                                    "bought",
                                ))))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Shop {
            addr,
            inside,
            max_inside,
            served,
            task,
        }
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two gateway processes on one config; returns them with their listen addresses.
async fn two_gateways(
    config: impl Fn(SocketAddr, SocketAddr) -> String,
) -> Vec<(Serve, SocketAddr)> {
    let mut out = Vec::new();
    for _ in 0..2 {
        let (listen, admin) = (free_addr(), free_addr());
        let serve = Serve::start(&config(listen, admin), &[]);
        let c = HttpClient::http1();
        let up = eventually(Duration::from_secs(15), || async {
            matches!(c.try_send(get(&format!("http://{admin}/readyz"), &[])).await, Ok(r) if r.status == 200)
        })
        .await;
        assert!(up, "gateway process ready");
        out.push((serve, listen));
    }
    out
}

fn lock_yaml(
    listen: SocketAddr,
    admin: SocketAddr,
    shop: SocketAddr,
    backend: &str,
    on_error: &str,
) -> String {
    format!(
        r#"
admin: {{ listen: "{admin}" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "{listen}" }}]
routes:
  - name: buy
    match: {{ path: /buy, methods: [POST] }}
    cluster: shop
    lock:
      key: "buy/{{form.item_id}}"
      backend: {backend}
      ttl: 10s
      wait: {{ attempts: 3, backoff: 20ms }}
      on_busy: {{ status: 503, retry_after: 1s }}
      on_error: {on_error}
      timeout: 300ms
clusters: [{{ name: shop, endpoints: ["{shop}"] }}]
"#
    )
}

fn buy(addr: SocketAddr, item: u32) -> http::Request<Full<Bytes>> {
    request(
        "POST",
        &format!("http://{addr}/buy"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("item_id={item}&qty=1"),
    )
}

/// 100 concurrent purchases of one item through two processes: the shop never sees two at
/// once, every answer is the shop's or the busy 503, and the lock is free afterwards.
async fn one_purchase_at_a_time(backend: &str) {
    let shop = Shop::start(Duration::from_millis(30)).await;
    let gws = two_gateways(|l, a| lock_yaml(l, a, shop.addr, backend, "closed")).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let addr = gws[i % 2].1;
        tasks.spawn(async move { HttpClient::http1().try_send(buy(addr, 42)).await });
    }
    let (mut ok, mut busy) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap().expect("every request gets an answer");
        match r.status.as_u16() {
            200 => {
                assert_eq!(r.text(), "bought");
                ok += 1;
            }
            503 => {
                let body = r.json();
                assert_eq!(body["error"], "lock_busy", "{body}");
                assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
                assert_eq!(r.header("retry-after"), "1");
                busy += 1;
            }
            other => panic!("unexpected status {other}: {}", r.text()),
        }
    }
    assert_eq!(ok + busy, 100);
    assert!(ok >= 1, "someone bought it");
    assert_eq!(
        shop.max_inside.load(Ordering::SeqCst),
        1,
        "never two purchases at once"
    );
    assert_eq!(shop.served.load(Ordering::SeqCst), ok);
    // Released after each response: another item and the same item both go through now.
    for addr in [gws[0].1, gws[1].1] {
        let r = HttpClient::http1().send(buy(addr, 42)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A request without the key field is 400 and never reaches the shop.
    let r = HttpClient::http1()
        .send(request(
            "POST",
            &format!("http://{}/buy", gws[0].1),
            &[("content-type", "application/x-www-form-urlencoded")],
            "qty=1",
        ))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (400, Some("lock_key_missing"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_two_processes_memcached() {
    let mc = Memcached::start();
    one_purchase_at_a_time(&format!("{{ memcached: \"{}\" }}", mc.addr())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_two_processes_redis() {
    let redis = Redis::start();
    one_purchase_at_a_time(&format!("{{ redis: \"{}\" }}", redis.url())).await;
}

/// A client that gives up mid-purchase frees the lock (it does not wait for the ttl).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_released_when_the_client_aborts() {
    let mc = Memcached::start();
    let shop = Shop::start(Duration::from_millis(1500)).await;
    let backend = format!("{{ memcached: \"{}\" }}", mc.addr());
    let gws = two_gateways(|l, a| lock_yaml(l, a, shop.addr, &backend, "closed")).await;
    let addr = gws[0].1;
    let abandoned = tokio::spawn(async move { HttpClient::http1().try_send(buy(addr, 7)).await });
    assert!(
        eventually(Duration::from_secs(5), || async {
            shop.inside.load(Ordering::SeqCst) == 1
        })
        .await
    );
    // Held: the other process answers busy.
    let r = HttpClient::http1().send(buy(gws[1].1, 7)).await;
    assert_eq!(r.status, 503);
    abandoned.abort();
    let _ = abandoned.await;
    let start = Instant::now();
    let freed = eventually(Duration::from_secs(3), || async {
        HttpClient::http1()
            .try_send(buy(gws[1].1, 7))
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(
        freed,
        "lock released after the client left (well before the 10 s ttl)"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// The lock server dies: `closed` answers 503 quickly, `open` lets purchases through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_server_killed_fails_per_config() {
    let mut mc = Memcached::start();
    let shop = Shop::start(Duration::from_millis(5)).await;
    let backend = format!("{{ memcached: \"{}\" }}", mc.addr());
    let closed = two_gateways(|l, a| lock_yaml(l, a, shop.addr, &backend, "closed")).await;
    let open = two_gateways(|l, a| lock_yaml(l, a, shop.addr, &backend, "open")).await;
    let r = HttpClient::http1().send(buy(closed[0].1, 1)).await;
    assert_eq!(r.status, 200);
    mc.stop();
    for _ in 0..5 {
        let t = Instant::now();
        let r = HttpClient::http1().send(buy(closed[0].1, 1)).await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.json()["error"], "lock_unavailable");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "decided within the bound: {:?}",
            t.elapsed()
        );
        let r = HttpClient::http1().send(buy(open[1].1, 1)).await;
        assert_eq!(r.status, 200, "fail open proceeds unlocked");
    }
}

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

fn data(file: &str) -> String {
    format!("{}/../policy/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn token(claims: serde_json::Value) -> String {
    let pem = std::fs::read(data("rsa1.pem")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `default_auth` (JWT from a key file) on every route, a public health route, required
/// claims, forwarded claims, an API-key route with a rate limit by key, and metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_jwt_and_api_keys_through_the_gateway() {
    let up = Upstream::start("svc", |_| Reply::text("ok")).await;
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.txt");
    std::fs::write(
        &key_file,
        "# partners\nacme: sk-acme-0123456789\nglobex: sk-globex-9876543210\n",
    )
    .unwrap();
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
default_auth:
  jwt:
    algorithms: [RS256]
    issuers: [https://id.test/]
    audiences: [shop]
    keys: {{ files: [{{ path: "{pub_key}", kid: k1 }}] }}
    forward_claims: {{ sub: x-user-id }}
    strip_token: true
routes:
  - name: health
    match: {{ path: /health }}
    direct_response: {{ status: 200, body: up }}
    auth: public
  - name: buy
    match: {{ path_prefix: /buy }}
    cluster: svc
    auth:
      jwt:
        algorithms: [RS256]
        issuers: [https://id.test/]
        audiences: [shop]
        keys: {{ files: [{{ path: "{pub_key}", kid: k1 }}] }}
        required_claims: [{{ claim: scope, any_of: [purchase] }}]
        forward_claims: {{ sub: x-user-id }}
  - name: partner
    match: {{ path_prefix: /partner }}
    cluster: svc
    auth: {{ api_keys: {{ file: "{key_file}" }} }}
    rate_limit: {{ key: api_key, limit: 2, period: 60s }}
  - name: account
    match: {{ path_prefix: / }}
    cluster: svc
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#,
        pub_key = data("rsa1.pub.pem"),
        key_file = key_file.display(),
        up = up.addr(),
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let claims = |extra: serde_json::Value| {
        let mut c = serde_json::json!({
            "sub": "user-1", "iss": "https://id.test/", "aud": "shop", "exp": now() + 300,
        });
        if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        c
    };
    let bearer = |t: &str| format!("Bearer {t}");

    // Public, no token.
    let r = c.send(get(&gw.url("/health"), &[])).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "up"));
    // default_auth: no token is 401 with WWW-Authenticate and the JSON body.
    let r = c.send(get(&gw.url("/me"), &[])).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate").starts_with("Bearer"),
        "{:?}",
        r.header("www-authenticate")
    );
    let body = r.json();
    assert_eq!(body["error"], "missing_credentials");
    assert_eq!(body["request_id"].as_str(), Some(r.header("x-request-id")));
    // A valid token passes; the upstream sees the subject, a client-sent x-user-id is
    // replaced, and the token itself is stripped.
    let t = token(claims(serde_json::json!({})));
    let r = c
        .send(get(
            &gw.url("/me"),
            &[("authorization", &bearer(&t)), ("x-user-id", "forged")],
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.seen();
    let last = seen.last().unwrap();
    assert_eq!(
        last.headers.get_all("x-user-id").iter().collect::<Vec<_>>(),
        ["user-1"]
    );
    assert!(last.headers.get("authorization").is_none(), "strip_token");
    // Expired and wrong audience: 401 with the reason.
    let r = c
        .send(get(
            &gw.url("/me"),
            &[(
                "authorization",
                &bearer(&token(claims(serde_json::json!({"exp": now() - 3600})))),
            )],
        ))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (401, Some("expired"))
    );
    let r = c
        .send(get(
            &gw.url("/me"),
            &[(
                "authorization",
                &bearer(&token(claims(serde_json::json!({"aud": "other"})))),
            )],
        ))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (401, Some("wrong_audience"))
    );
    // The route's own policy: a valid token lacking the scope is 403; with it, 200.
    let r = c
        .send(get(&gw.url("/buy"), &[("authorization", &bearer(&t))]))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (403, Some("missing_claim"))
    );
    let scoped = token(claims(serde_json::json!({"scope": "read purchase"})));
    let r = c
        .send(get(&gw.url("/buy"), &[("authorization", &bearer(&scoped))]))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        up.seen()
            .last()
            .unwrap()
            .headers
            .get("authorization")
            .is_some(),
        "not stripped here"
    );

    // API keys: unknown key 401, known keys each get 2 requests a minute.
    let r = c
        .send(get(&gw.url("/partner/x"), &[("x-api-key", "sk-nope")]))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let mut acme = Vec::new();
    for _ in 0..3 {
        acme.push(
            c.send(get(
                &gw.url("/partner/x"),
                &[("x-api-key", "sk-acme-0123456789")],
            ))
            .await
            .status
            .as_u16(),
        );
    }
    assert_eq!(acme, [200, 200, 429]);
    let r = c
        .send(get(
            &gw.url("/partner/x"),
            &[("x-api-key", "sk-globex-9876543210")],
        ))
        .await;
    assert_eq!(r.status, 200, "another key, another bucket");
    assert_eq!(r.header("ratelimit-remaining"), "1");

    let metrics = c
        .send(get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]))
        .await
        .text();
    for line in [
        "sekisho_auth_failures_total{route=\"default_auth\",reason=\"missing_credentials\"} 1",
        "sekisho_auth_failures_total{route=\"buy\",reason=\"missing_claim\"} 1",
        "sekisho_auth_failures_total{route=\"partner\",reason=\"invalid_api_key\"} 1",
        "sekisho_ratelimit_decisions_total{route=\"partner\",decision=\"limited\"} 1",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}");
    }
    gw.stop().await;
}
