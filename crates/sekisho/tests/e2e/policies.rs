//! Route policies through the gateway: concurrency locks and rate limits shared by two
//! `sekisho serve` processes over real memcached and Redis, and authentication (JWT from key
//! files and a JWKS, API keys, external auth, `default_auth` with `auth: public`).
//!
//! The helpers shared by the three modules are here.

mod auth;
mod locks;
mod rate_limits;

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

/// An upstream that counts purchases in progress and remembers the most seen at once. Each
/// purchase takes `hold`, or `x-hold-ms` when the request sends it; `x-reset: 1` closes the
/// connection without an answer (an upstream that dies mid-request).
struct Shop {
    addr: SocketAddr,
    inside: Arc<AtomicUsize>,
    max_inside: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// One purchase in progress; counted out however it ends (answered or dropped).
struct Inside(Arc<AtomicUsize>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reset by the test")
    }
}

impl std::error::Error for Reset {}

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
                                let header = |name: &str| {
                                    req.headers()
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_string)
                                };
                                let hold = header("x-hold-ms")
                                    .and_then(|v| v.parse().ok())
                                    .map_or(hold, Duration::from_millis);
                                let reset = header("x-reset").is_some();
                                let _ = req.into_body().collect().await;
                                let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                                let _inside = Inside(i.clone());
                                m.fetch_max(now, Ordering::SeqCst);
                                tokio::time::sleep(hold).await;
                                if reset {
                                    return Err(Reset);
                                }
                                s.fetch_add(1, Ordering::SeqCst);
                                Ok::<_, Reset>(http::Response::new(Full::new(Bytes::from(
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

/// Two gateway processes on one config; returns them with their listen and admin addresses.
async fn two_gateways(
    config: impl Fn(SocketAddr, SocketAddr) -> String,
) -> Vec<(Serve, SocketAddr, SocketAddr)> {
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
        out.push((serve, listen, admin));
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

/// `buy` with extra request headers (`x-hold-ms`, `x-reset` for the [`Shop`]).
fn buy_with(
    addr: SocketAddr,
    item: impl std::fmt::Display,
    headers: &[(&str, &str)],
) -> http::Request<Full<Bytes>> {
    let mut req = buy(addr, item);
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    req
}

fn buy(addr: SocketAddr, item: impl std::fmt::Display) -> http::Request<Full<Bytes>> {
    request(
        "POST",
        &format!("http://{addr}/buy"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("item_id={item}&qty=1"),
    )
}

fn data(file: &str) -> String {
    format!("{}/../policy/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// An RS256 token signed by `rsa1.pem` with kid `k1`.
fn token(claims: serde_json::Value) -> String {
    token_with(jsonwebtoken::Algorithm::RS256, "k1", "rsa1.pem", &claims)
}

/// The private key of a `tests/data` PEM file, for `alg`.
fn encoding_key(alg: jsonwebtoken::Algorithm, pem_file: &str) -> jsonwebtoken::EncodingKey {
    let pem = std::fs::read(data(pem_file)).unwrap();
    match alg {
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384 => {
            jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap()
        }
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    }
}

/// A token signed with `pem_file`'s key under `kid`.
fn token_with(
    alg: jsonwebtoken::Algorithm,
    kid: &str,
    pem_file: &str,
    claims: &serde_json::Value,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &encoding_key(alg, pem_file)).unwrap()
}

/// The public JWK of `pem_file`'s key under `kid`.
fn jwk(alg: jsonwebtoken::Algorithm, kid: &str, pem_file: &str) -> serde_json::Value {
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(alg, pem_file), alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The admin listener's `/metrics` text.
async fn metrics(admin: SocketAddr) -> String {
    HttpClient::http1()
        .send(get(&format!("http://{admin}/metrics"), &[]))
        .await
        .text()
}

/// The value of one series (`name{labels}` exactly as exported), if exported.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}
