//! JWT authentication against keys from files, an HS256 secret and a JWKS served by a real
//! HTTP server on loopback (rotation, outage).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Answer, Req, TestServer};
use http::StatusCode;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sekisho_policy::config::{
    AuthConfig, ClaimRequirement, JwksConfig, JwtAlgorithm, JwtConfig, JwtKeysConfig,
    KeyFileConfig, TokenSource,
};
use sekisho_policy::Authenticator;
use serde_json::json;

const RSA1: &[u8] = include_bytes!("data/rsa1.pem");
const RSA2: &[u8] = include_bytes!("data/rsa2.pem");
const EC1: &[u8] = include_bytes!("data/ec1.pem");
const ED1: &[u8] = include_bytes!("data/ed1.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"sub": "alice", "iss": "https://id.test/", "aud": "shop", "exp": now() + 300, "scope": "read purchase"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn sign(alg: Algorithm, kid: Option<&str>, pem: &[u8], claims: &serde_json::Value) -> String {
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem).unwrap(),
    };
    let mut h = Header::new(alg);
    h.kid = kid.map(String::from);
    encode(&h, claims, &key).unwrap()
}

fn jwks(keys: &[(&str, &[u8], Algorithm)]) -> String {
    let set = JwkSet {
        keys: keys
            .iter()
            .map(|(kid, pem, alg)| {
                let enc = match alg {
                    Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
                    Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).unwrap(),
                    _ => EncodingKey::from_rsa_pem(pem).unwrap(),
                };
                let mut jwk = Jwk::from_encoding_key(&enc, *alg).unwrap();
                jwk.common.key_id = Some(kid.to_string());
                jwk
            })
            .collect(),
    };
    serde_json::to_string(&set).unwrap()
}

fn jwt_config(jwks_url: Option<String>) -> JwtConfig {
    let mut keys = JwtKeysConfig::default();
    if let Some(url) = jwks_url {
        let mut j = JwksConfig::new(url);
        j.min_refetch = Duration::from_millis(200);
        j.refresh = Duration::from_millis(300);
        j.timeout = Duration::from_millis(500);
        keys.jwks = Some(j);
    }
    let mut cfg = JwtConfig::new(
        vec![
            JwtAlgorithm::RS256,
            JwtAlgorithm::PS256,
            JwtAlgorithm::ES256,
            JwtAlgorithm::EdDSA,
        ],
        keys,
    );
    cfg.issuers = vec!["https://id.test/".into()];
    cfg.audiences = vec!["shop".into()];
    cfg.leeway = Duration::from_secs(5);
    cfg
}

async fn auth(cfg: JwtConfig) -> Authenticator {
    Authenticator::new(&AuthConfig {
        jwt: Some(cfg),
        ..AuthConfig::default()
    })
    .await
    .unwrap()
}

fn bearer(token: &str) -> Req {
    Req::get("/v1/items").header("authorization", &format!("Bearer {token}"))
}

#[tokio::test]
async fn valid_expired_wrong_audience_and_issuer() {
    let server = TestServer::start(Answer::ok(jwks(&[("k1", RSA1, Algorithm::RS256)]))).await;
    let mut cfg = jwt_config(Some(format!("http://{}/jwks.json", server.addr)));
    cfg.forward_claims = vec![("sub".into(), "x-user-id".into())];
    let a = auth(cfg).await;

    let ok = a
        .check(
            &bearer(&sign(
                Algorithm::RS256,
                Some("k1"),
                RSA1,
                &claims(json!({})),
            ))
            .view(),
        )
        .await
        .unwrap();
    let id = ok.identity.clone().unwrap();
    assert_eq!(id.subject.as_deref(), Some("alice"));
    // A spoofed x-user-id from the client is replaced by the verified claim.
    let mut upstream = http::HeaderMap::new();
    upstream.insert("x-user-id", "mallory".parse().unwrap());
    ok.apply(&mut upstream);
    assert_eq!(
        upstream.get_all("x-user-id").iter().collect::<Vec<_>>(),
        vec!["alice"]
    );

    let cases = [
        (json!({"exp": now() - 60}), "expired"),
        (json!({"nbf": now() + 600}), "not_yet_valid"),
        (json!({"aud": "other"}), "wrong_audience"),
        (json!({"iss": "https://evil.test/"}), "wrong_issuer"),
    ];
    for (extra, reason) in cases {
        let token = sign(Algorithm::RS256, Some("k1"), RSA1, &claims(extra));
        let r = a.check(&bearer(&token).view()).await.unwrap_err();
        assert_eq!((r.status, r.reason), (StatusCode::UNAUTHORIZED, reason));
        let challenge = r.headers.get("www-authenticate").unwrap().to_str().unwrap();
        assert!(
            challenge.contains("invalid_token") && challenge.contains(reason),
            "{challenge}"
        );
        assert_eq!(a.failures_for(reason), 1);
    }
    // Within the leeway an expired token still passes.
    let token = sign(
        Algorithm::RS256,
        Some("k1"),
        RSA1,
        &claims(json!({"exp": now() - 2})),
    );
    assert!(a.check(&bearer(&token).view()).await.is_ok());
    // The same token again comes from the verified-token cache, with the same identity;
    // an expired one never does.
    let hits = a.jwt_cache_hits();
    let again = bearer(&token);
    assert!(a.check(&again.view()).await.is_ok());
    assert_eq!(a.jwt_cache_hits(), hits + 1);
    let expired = sign(
        Algorithm::RS256,
        Some("k1"),
        RSA1,
        &claims(json!({"exp": now() - 60})),
    );
    for _ in 0..2 {
        let r = a.check(&bearer(&expired).view()).await.unwrap_err();
        assert_eq!(r.reason, "expired");
    }
    assert_eq!(a.jwt_cache_hits(), hits + 1);
    // Signed by another key under a known kid.
    let forged = sign(Algorithm::RS256, Some("k1"), RSA2, &claims(json!({})));
    assert_eq!(
        a.check(&bearer(&forged).view()).await.unwrap_err().reason,
        "bad_signature"
    );
    // No credential: 401 with a bare challenge; garbage: malformed.
    let r = a.check(&Req::get("/").view()).await.unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::UNAUTHORIZED, "missing_credentials")
    );
    assert_eq!(
        a.check(&bearer("not.a.jwt").view())
            .await
            .unwrap_err()
            .reason,
        "malformed"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_rotated_jwks_and_outage_serves_stale() {
    let server = TestServer::start(Answer::ok(jwks(&[("k1", RSA1, Algorithm::RS256)]))).await;
    let mut cfg = jwt_config(Some(format!("http://{}/jwks.json", server.addr)));
    // Every token is verified against the key store: the verified-token cache must not be
    // what answers once the JWKS server is gone.
    cfg.cache_size = 0;
    let a = auth(cfg).await;
    let t1 = sign(Algorithm::RS256, Some("k1"), RSA1, &claims(json!({})));
    assert!(a.check(&bearer(&t1).view()).await.is_ok());

    // The identity provider rotates: k2 (ES256) appears; a token with k2 triggers a refetch.
    server.set(Answer::ok(jwks(&[
        ("k1", RSA1, Algorithm::RS256),
        ("k2", EC1, Algorithm::ES256),
    ])));
    let t2 = sign(Algorithm::ES256, Some("k2"), EC1, &claims(json!({})));
    let ok = sekisho_test_support::eventually(Duration::from_secs(5), || async {
        a.check(&bearer(&t2).view()).await.is_ok()
    })
    .await;
    assert!(ok, "rotated key accepted after refetch");

    // A kid nobody knows: refetches are rate-limited, so a flood costs at most a few fetches.
    let before = server.hits();
    let t3 = sign(Algorithm::RS256, Some("nope"), RSA2, &claims(json!({})));
    for _ in 0..50 {
        assert_eq!(
            a.check(&bearer(&t3).view()).await.unwrap_err().reason,
            "unknown_kid"
        );
    }
    assert!(
        server.hits() - before <= 3,
        "{} fetches for 50 unknown-kid tokens",
        server.hits() - before
    );

    // The JWKS server goes away: background refreshes fail, known keys keep working.
    server.stop();
    let failed = sekisho_test_support::eventually(Duration::from_secs(10), || async {
        a.jwks_counters().failed >= 2
    })
    .await;
    assert!(failed, "refreshes failed: {:?}", a.jwks_counters());
    // Tokens never seen before, signed by both known keys, still verify: the keys fetched
    // before the outage are served stale.
    for (alg, kid, pem) in [
        (Algorithm::RS256, "k1", RSA1),
        (Algorithm::ES256, "k2", EC1),
    ] {
        let fresh = sign(
            alg,
            Some(kid),
            pem,
            &claims(json!({"jti": format!("after-{kid}")})),
        );
        assert!(a.check(&bearer(&fresh).view()).await.is_ok(), "{kid}");
    }
    assert!(a.check(&bearer(&t1).view()).await.is_ok());
    assert!(a.check(&bearer(&t2).view()).await.is_ok());
    assert_eq!(a.jwt_cache_hits(), 0, "no answer came from the token cache");
    // An unknown kid still fails (the refetch fails; nothing is invented).
    let t4 = sign(Algorithm::RS256, Some("k9"), RSA2, &claims(json!({})));
    assert_eq!(
        a.check(&bearer(&t4).view()).await.unwrap_err().reason,
        "unknown_kid"
    );
}

#[tokio::test]
async fn keys_from_files_claims_cookie_and_strip() {
    let dir = tempfile::tempdir().unwrap();
    let ed_pub = dir.path().join("ed.pub.pem");
    std::fs::write(&ed_pub, include_bytes!("data/ed1.pub.pem")).unwrap();
    let rsa_pub = dir.path().join("rsa.pub.pem");
    std::fs::write(&rsa_pub, include_bytes!("data/rsa1.pub.pem")).unwrap();
    let mut cfg = jwt_config(None);
    cfg.keys.files = vec![
        KeyFileConfig {
            path: ed_pub,
            kid: Some("ed".into()),
        },
        KeyFileConfig {
            path: rsa_pub,
            kid: None,
        },
    ];
    cfg.from = vec![
        TokenSource::Header("x-token".into()),
        TokenSource::Cookie("session".into()),
    ];
    cfg.required_claims = vec![ClaimRequirement {
        claim: "scope".into(),
        any_of: vec!["purchase".into()],
    }];
    cfg.strip_token = true;
    let a = auth(cfg).await;

    let ed = sign(Algorithm::EdDSA, Some("ed"), ED1, &claims(json!({})));
    let ok = a
        .check(&Req::get("/").header("x-token", &ed).view())
        .await
        .unwrap();
    assert!(ok.remove_headers.iter().any(|h| h == "x-token"));

    // PS256 with the kid-less RSA file key, from a cookie; the cookie is stripped, others kept.
    let ps = sign(Algorithm::PS256, None, RSA1, &claims(json!({})));
    let req = Req::get("/").header("cookie", &format!("theme=dark; session={ps}"));
    let ok = a.check(&req.view()).await.unwrap();
    let mut upstream = req.headers.clone();
    ok.apply(&mut upstream);
    assert_eq!(upstream.get("cookie").unwrap(), "theme=dark");

    // Valid identity without the required scope: 403.
    let t = sign(
        Algorithm::EdDSA,
        Some("ed"),
        ED1,
        &claims(json!({"scope": "read"})),
    );
    let r = a
        .check(&Req::get("/").header("x-token", &t).view())
        .await
        .unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::FORBIDDEN, "missing_claim")
    );
    // An algorithm not configured (HS256) is refused before any key is tried.
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(b"x"),
    )
    .unwrap();
    assert_eq!(
        a.check(&Req::get("/").header("x-token", &hs).view())
            .await
            .unwrap_err()
            .reason,
        "bad_algorithm"
    );
}

#[tokio::test]
async fn hs256_secret_from_env_and_optional_route() {
    let secret = "0123456789abcdef0123456789abcdef-test";
    // SAFETY-free: set_var is safe in edition 2021; this test binary reads it only here.
    std::env::set_var("SEKISHO_TEST_JWT_SECRET", secret);
    let mut cfg = jwt_config(None);
    cfg.algorithms = vec![JwtAlgorithm::HS256];
    cfg.keys.secret_env = Some("SEKISHO_TEST_JWT_SECRET".into());
    let a = Authenticator::new(&AuthConfig {
        jwt: Some(cfg.clone()),
        optional: true,
        ..AuthConfig::default()
    })
    .await
    .unwrap();
    let t = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert!(a.check(&bearer(&t).view()).await.is_ok());
    let anon = a.check(&Req::get("/").view()).await.unwrap();
    assert_eq!(
        anon.identity.unwrap().method,
        sekisho_policy::auth::AuthMethod::Anonymous
    );
    // A bad token is still rejected on an optional route.
    let bad = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(b"wrong-secret-wrong-secret-wrong!"),
    )
    .unwrap();
    assert!(a.check(&bearer(&bad).view()).await.is_err());

    cfg.keys.secret_env = Some("SEKISHO_TEST_UNSET_VARIABLE".into());
    let err = Authenticator::new(&AuthConfig {
        jwt: Some(cfg),
        ..AuthConfig::default()
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("SEKISHO_TEST_UNSET_VARIABLE"),
        "{err}"
    );
}

/// RS384, RS512, PS384 and PS512 with an RSA key file, ES384 with a P-384 key generated here
/// and served in a JWKS; a token signed by another P-384 key and an algorithm left out of the
/// config are refused.
#[tokio::test]
async fn rs384_rs512_ps384_ps512_and_es384_verify() {
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let p384_private = p384.serialize_pem();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .unwrap()
        .serialize_pem();
    let mut es384 = Jwk::from_encoding_key(
        &EncodingKey::from_ec_pem(p384_private.as_bytes()).unwrap(),
        Algorithm::ES384,
    )
    .unwrap();
    es384.common.key_id = Some("ec384".into());
    let server = TestServer::start(Answer::ok(
        serde_json::to_string(&JwkSet { keys: vec![es384] }).unwrap(),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rsa_pub = dir.path().join("rsa.pub.pem");
    std::fs::write(&rsa_pub, include_bytes!("data/rsa1.pub.pem")).unwrap();
    let mut cfg = jwt_config(Some(format!("http://{}/jwks.json", server.addr)));
    cfg.algorithms = vec![
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
        JwtAlgorithm::ES384,
    ];
    cfg.keys.files = vec![KeyFileConfig {
        path: rsa_pub,
        kid: Some("rsa".into()),
    }];
    cfg.cache_size = 0;
    let a = auth(cfg).await;

    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let t = sign(alg, Some("rsa"), RSA1, &claims(json!({})));
        let ok = a.check(&bearer(&t).view()).await;
        assert!(ok.is_ok(), "{alg:?}: {:?}", ok.err());
        // Signed by another RSA key under the same kid: a bad signature, not a pass.
        let forged = sign(alg, Some("rsa"), RSA2, &claims(json!({})));
        assert_eq!(
            a.check(&bearer(&forged).view()).await.unwrap_err().reason,
            "bad_signature",
            "{alg:?}"
        );
    }
    let t = sign(
        Algorithm::ES384,
        Some("ec384"),
        p384_private.as_bytes(),
        &claims(json!({})),
    );
    let ok = a.check(&bearer(&t).view()).await.unwrap();
    assert_eq!(ok.identity.unwrap().subject.as_deref(), Some("alice"));
    let forged = sign(
        Algorithm::ES384,
        Some("ec384"),
        other.as_bytes(),
        &claims(json!({})),
    );
    assert_eq!(
        a.check(&bearer(&forged).view()).await.unwrap_err().reason,
        "bad_signature"
    );
    // RS256 is not in this route's list.
    let rs256 = sign(Algorithm::RS256, Some("rsa"), RSA1, &claims(json!({})));
    assert_eq!(
        a.check(&bearer(&rs256).view()).await.unwrap_err().reason,
        "bad_algorithm"
    );
}
