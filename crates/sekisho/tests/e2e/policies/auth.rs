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
