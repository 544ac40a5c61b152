//! Authentication through the gateway: JWT, API keys, external auth, `default_auth`.

use super::*;

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
    let log_path = keys_dir.path().join("access.log");
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
access_log: {{ path: "{log}" }}
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
        log = log_path.display(),
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
    let r = c.send(get(&gw.url("/me?as=nobody"), &[])).await;
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
            &gw.url("/me?as=user-1"),
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
    for i in 0..3 {
        acme.push(
            c.send(get(
                &gw.url(&format!("/partner/x?n={i}")),
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
        // default_auth's decisions are counted under the route that used it (regression:
        // they were all counted under route="default_auth").
        "sekisho_auth_failures_total{route=\"account\",reason=\"missing_credentials\"} 1",
        "sekisho_auth_failures_total{route=\"account\",reason=\"expired\"} 1",
        "sekisho_auth_allowed_total{route=\"account\"} 1",
        "sekisho_auth_failures_total{route=\"buy\",reason=\"missing_claim\"} 1",
        "sekisho_auth_failures_total{route=\"partner\",reason=\"invalid_api_key\"} 1",
        "sekisho_ratelimit_decisions_total{route=\"partner\",decision=\"limited\"} 1",
        // Per key name (the third acme request passed auth, then hit the rate limit).
        "sekisho_auth_api_key_requests_total{route=\"partner\",key=\"acme\"} 3",
        "sekisho_auth_api_key_requests_total{route=\"partner\",key=\"globex\"} 1",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}\n{metrics}");
    }
    assert!(
        !metrics.contains("sekisho_auth_failures_total{route=\"default_auth\""),
        "{metrics}"
    );
    assert!(
        !metrics.contains("sekisho_auth_failures_total{route=\"health\""),
        "a public route has no auth counters"
    );

    // The access log names who it was: the API key's name, the JWT subject.
    let lines = sekisho_test_support::eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("/partner/x?n=2")
    })
    .await;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(lines, "access log: {text}");
    let entry = |uri: &str| -> serde_json::Value {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["uri"] == uri)
            .unwrap_or_else(|| panic!("no line for {uri}: {text}"))
    };
    for (uri, status, auth, id) in [
        ("/partner/x?n=0", 200, Some("api_key"), Some("acme")),
        ("/partner/x?n=2", 429, Some("api_key"), Some("acme")),
        ("/me?as=user-1", 200, Some("jwt"), Some("user-1")),
        ("/me?as=nobody", 401, None, None),
        ("/health", 200, None, None),
    ] {
        let e = entry(uri);
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["auth"].as_str(), auth, "{e}");
        assert_eq!(e["auth_id"].as_str(), id, "{e}");
    }
    gw.stop().await;
}

/// A JWKS on a test HTTP server: the key set rotates (a token with the new kid is accepted
/// after the gateway refetches), then the server goes away and tokens signed by the keys it
/// served keep working. `cache_size: 0` and fresh tokens: every request is verified against
/// the key store, never answered by the verified-token cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_from_a_jwks_rotation_and_outage_through_the_gateway() {
    use jsonwebtoken::Algorithm::{ES256, RS256};
    let doc = Arc::new(std::sync::Mutex::new(
        serde_json::json!({ "keys": [jwk(RS256, "k1", "rsa1.pem")] }).to_string(),
    ));
    let served = doc.clone();
    let idp = Upstream::start("idp", move |_| {
        Reply::text(served.lock().unwrap().clone()).header("content-type", "application/json")
    })
    .await;
    let up = Upstream::start("svc", |_| Reply::text("ok")).await;
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
routes:
  - name: api
    match: {{ path_prefix: / }}
    cluster: svc
    auth:
      jwt:
        algorithms: [RS256, ES256]
        issuers: [https://id.test/]
        audiences: [shop]
        # Refreshes are left to the unknown-kid refetch, which is not rate-limited here.
        keys: {{ jwks: {{ url: "http://{idp}/.well-known/jwks.json", refresh: 1h, min_refetch: 0s, timeout: 500ms }} }}
        forward_claims: {{ sub: x-user-id }}
        cache_size: 0
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#,
        idp = idp.addr(),
        up = up.addr(),
    );
    let gw = start(&yaml).await;
    let admin = gw.admin.unwrap();
    let c = HttpClient::http1();
    let mut n = 0;
    let mut fresh = |alg, kid: &str, pem: &str| {
        n += 1;
        let claims = serde_json::json!({
            "sub": format!("user-{n}"), "iss": "https://id.test/", "aud": "shop",
            "exp": now() + 300, "jti": format!("t{n}"),
        });
        (token_with(alg, kid, pem, &claims), format!("user-{n}"))
    };
    let call = |t: String| {
        let c = c.clone();
        let url = gw.url("/orders");
        async move {
            c.send(get(&url, &[("authorization", &format!("Bearer {t}"))]))
                .await
        }
    };

    let (t, sub) = fresh(RS256, "k1", "rsa1.pem");
    let r = call(t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.seen().last().unwrap().headers["x-user-id"], sub.as_str());
    let fetched_at_start = idp.count();
    assert!(fetched_at_start >= 1);

    // Before the rotation k2 is unknown (the refetch finds the old set): 401.
    let (t, _) = fresh(ES256, "k2", "ec1.pem");
    let r = call(t).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (401, Some("unknown_kid"))
    );
    // The identity provider rotates in k2: the first k2 token refetches and passes.
    *doc.lock().unwrap() = serde_json::json!({
        "keys": [jwk(RS256, "k1", "rsa1.pem"), jwk(ES256, "k2", "ec1.pem")]
    })
    .to_string();
    let before = idp.count();
    let (t, sub) = fresh(ES256, "k2", "ec1.pem");
    let r = call(t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.seen().last().unwrap().headers["x-user-id"], sub.as_str());
    assert_eq!(idp.count(), before + 1, "one refetch");
    // Known kids cost no fetch.
    let before = idp.count();
    for _ in 0..3 {
        let (t, _) = fresh(RS256, "k1", "rsa1.pem");
        assert_eq!(call(t).await.status, 200);
    }
    assert_eq!(idp.count(), before);

    // The JWKS server goes away. An unknown kid's refetch now fails (counted), and new
    // tokens signed by both known keys are still verified with the keys served before.
    idp.stop();
    let (t, _) = fresh(RS256, "k3", "rsa2.pem");
    assert_eq!(call(t).await.status, 401);
    let m = metrics(admin).await;
    assert_eq!(
        sample(
            &m,
            r#"sekisho_auth_jwks_fetches_total{route="api",result="error"}"#
        ),
        Some(1.0),
        "{m}"
    );
    for (alg, kid, pem) in [(RS256, "k1", "rsa1.pem"), (ES256, "k2", "ec1.pem")] {
        for _ in 0..2 {
            let (t, sub) = fresh(alg, kid, pem);
            let r = call(t).await;
            assert_eq!(r.status, 200, "{kid} during the outage: {}", r.text());
            assert_eq!(up.seen().last().unwrap().headers["x-user-id"], sub.as_str());
        }
    }
    let m = metrics(admin).await;
    assert_eq!(
        sample(&m, r#"sekisho_auth_jwt_cache_hits_total{route="api"}"#),
        Some(0.0),
        "{m}"
    );
    gw.stop().await;
}

/// External auth through the gateway against a test auth service: a 2xx allows and its
/// chosen headers reach the upstream (client copies replaced, others not copied); its 401 and
/// 403 answers go back to the client as sent; decisions are cached for the TTL per caller;
/// a service slower than the timeout is a 503 (fail closed, the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_auth_through_the_gateway() {
    let authz = Upstream::start("authz", |s| {
        let who = s
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match who {
            "Bearer alice" | "Bearer bob" => {
                let user = who.trim_start_matches("Bearer ");
                Reply::text("")
                    .header("x-user-id", user)
                    .header("x-internal", "not for upstreams")
            }
            "Bearer banned" => Reply::text(r#"{"error":"suspended"}"#)
                .status(403)
                .header("content-type", "application/json")
                .header("x-reason", "suspended"),
            "Bearer slow" => Reply::text("").delay(Duration::from_secs(3)),
            _ => Reply::text("log in first")
                .status(401)
                .header("www-authenticate", "Bearer realm=\"authz\""),
        }
    })
    .await;
    let up = Upstream::start("svc", |_| Reply::text("ok")).await;
    let yaml = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "127.0.0.1:0" }}]
routes:
  - name: orders
    match: {{ path_prefix: /orders }}
    cluster: svc
    auth:
      ext_auth:
        url: "http://{authz}/check"
        timeout: 200ms
        upstream_headers: [x-user-id]
        cache: {{ ttl: 2s }}
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#,
        authz = authz.addr(),
        up = up.addr(),
    );
    let gw = start(&yaml).await;
    let c = HttpClient::http1();
    let calls_for = |who: &str| {
        authz
            .seen()
            .iter()
            .filter(|s| s.headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(who))
            .count()
    };
    let as_user = |who: Option<&'static str>| {
        let mut h = vec![("x-user-id", "forged")];
        if let Some(w) = who {
            h.push(("authorization", w));
        }
        get(&gw.url("/orders/7?page=2"), &h)
    };

    // Allowed: the service's x-user-id replaces the client's, x-internal stays behind.
    let first_alice = Instant::now();
    let r = c.send(as_user(Some("Bearer alice"))).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    let seen = up.seen();
    let last = seen.last().unwrap();
    assert_eq!(
        last.headers.get_all("x-user-id").iter().collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(last.headers.get("x-internal").is_none());
    let asked = authz.seen();
    assert_eq!(asked[0].uri, "/check/orders/7?page=2");
    assert_eq!(asked[0].method, http::Method::GET);
    // Repeats within the TTL come from the cache: one call for five requests.
    for _ in 0..4 {
        let r = c.send(as_user(Some("Bearer alice"))).await;
        assert_eq!(r.status, 200);
        assert_eq!(up.seen().last().unwrap().headers["x-user-id"], "alice");
    }
    assert_eq!(calls_for("Bearer alice"), 1);
    // Another credential is asked about separately and gets its own identity.
    let r = c.send(as_user(Some("Bearer bob"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.seen().last().unwrap().headers["x-user-id"], "bob");
    assert_eq!(calls_for("Bearer bob"), 1);
    // No credential: the service is asked (never alice's cached allow) and its 401 is
    // returned as sent.
    let r = c.send(as_user(None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), "log in first");
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"authz\"");
    assert!(!r.header("x-request-id").is_empty());
    let anonymous_calls = authz.count() - 2;
    assert_eq!(anonymous_calls, 1);
    // A 403 from the service reaches the client with its body and headers.
    let r = c.send(as_user(Some("Bearer banned"))).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "suspended");
    assert_eq!(r.header("x-reason"), "suspended");
    assert_eq!(up.count(), 6, "refused requests never reached the upstream");
    // A service slower than the 200 ms timeout: 503 with the JSON error, fast.
    let t = Instant::now();
    let r = c.send(as_user(Some("Bearer slow"))).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "ext_auth_unavailable");
    assert_eq!(body["request_id"].as_str(), Some(r.header("x-request-id")));
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );

    // After the TTL alice's decision is asked for again (never before it).
    let asked_again = eventually(Duration::from_secs(10), || async {
        let _ = c.send(as_user(Some("Bearer alice"))).await;
        calls_for("Bearer alice") == 2
    })
    .await;
    assert!(asked_again, "the cached decision expires");
    assert!(first_alice.elapsed() >= Duration::from_secs(2));
    let m = metrics(gw.admin.unwrap()).await;
    for (series, want) in [
        (
            r#"sekisho_auth_failures_total{route="orders",reason="ext_auth_unavailable"}"#,
            1.0,
        ),
        (
            r#"sekisho_auth_failures_total{route="orders",reason="ext_auth_denied"}"#,
            2.0,
        ),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}\n{m}");
    }
    gw.stop().await;
}
