//! Per-request cost of the policies on their hot paths: JWT verification with a cached key
//! (RS256, ES256) and a local GCRA rate-limit check.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sekisho_policy::config::{
    AuthConfig, JwtAlgorithm, JwtConfig, JwtKeysConfig, KeyFileConfig, RateKey, RateLimitConfig,
};
use sekisho_policy::{Authenticator, RateLimiter, RequestView};

fn token(alg: Algorithm, pem: &[u8]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({"sub": "alice", "exp": exp});
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem).unwrap(),
    };
    encode(&Header::new(alg), &claims, &key).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rsa = dir.path().join("rsa.pub.pem");
    std::fs::write(&rsa, include_bytes!("../tests/data/rsa1.pub.pem")).unwrap();
    let ec = dir.path().join("ec.pub.pem");
    std::fs::write(&ec, include_bytes!("../tests/data/ec1.pub.pem")).unwrap();
    let keys = JwtKeysConfig {
        files: vec![
            KeyFileConfig {
                path: rsa,
                kid: None,
            },
            KeyFileConfig {
                path: ec,
                kid: None,
            },
        ],
        ..JwtKeysConfig::default()
    };
    let cfg = AuthConfig {
        jwt: Some(JwtConfig::new(
            vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256],
            keys,
        )),
        ..AuthConfig::default()
    };
    let auth = rt.block_on(Authenticator::new(&cfg)).unwrap();
    let method = http::Method::GET;
    let uri: http::Uri = "/v1/items".parse().unwrap();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for (name, alg, pem) in [
        (
            "jwt_rs256",
            Algorithm::RS256,
            &include_bytes!("../tests/data/rsa1.pem")[..],
        ),
        (
            "jwt_es256",
            Algorithm::ES256,
            &include_bytes!("../tests/data/ec1.pem")[..],
        ),
    ] {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "authorization",
            format!("Bearer {}", token(alg, pem)).parse().unwrap(),
        );
        let view = RequestView::new(&method, &uri, &headers, ip);
        assert!(rt.block_on(auth.check(&view)).is_ok());
        c.bench_function(name, |b| {
            b.iter(|| rt.block_on(auth.check(black_box(&view))).is_ok())
        });
    }

    let limiter = RateLimiter::new(
        "bench",
        &RateLimitConfig::new(RateKey::ClientIp, u32::MAX, Duration::from_secs(1)),
    )
    .unwrap();
    let headers = http::HeaderMap::new();
    let view = RequestView::new(&method, &uri, &headers, ip);
    c.bench_function("ratelimit_local", |b| {
        b.iter(|| rt.block_on(limiter.check(black_box(&view), None)).is_ok())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = bench
}
criterion_main!(benches);
