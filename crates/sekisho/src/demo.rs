//! `sekisho demo`: the gateway on an embedded config, in front of built-in demo services
//! (an items service in two versions for the canary split, a payments service, and a
//! "legacy monolith" catch-all), so a first look needs nothing but the binary.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The embedded config; `{{name}}` marks are replaced with the demo services' ports.
pub const CONFIG: &str = r#"# sekisho demo config: three services and a legacy monolith behind one endpoint.
admin:
  listen: "{{admin}}"
access_log:
  path: stdout
listeners:
  - name: public
    listen: "{{listen}}"
routes:
  # Canary: 10% of item reads go to items-v2; `x-canary: items-v2` forces it.
  - name: items
    match: { path_template: "/v1/items/{id}", methods: [GET, HEAD] }
    split:
      - { cluster: items-v2, weight: 10 }
      - { cluster: items, weight: 90 }
    split_header: x-canary
    response_headers: { set: { x-served-by: sekisho } }
  # Payments: bodies are buffered (a slow client never holds the service), 2 s budget.
  - name: payments
    match: { path_prefix: /v1/payments/, methods: [GET, POST] }
    cluster: payments
    timeout: 2s
    buffer_request: { max_bytes: 64KiB }
    rewrite: { prefix: /payments/ }
  # The admin area is never exposed, whatever the path spelling (/admin/, //admin, /x/../admin/).
  - name: admin-block
    match: { path_prefix: /admin/ }
    direct_response: { status: 403, body: "{\"error\":\"forbidden\"}", content_type: application/json }
  - name: old-docs
    match: { path_prefix: /docs/ }
    redirect: { location: "https://docs.example.com", status: 301, preserve_path: true }
  # Everything else still goes to the legacy monolith.
  - name: monolith
    match: { path_prefix: / }
    cluster: monolith
clusters:
  - name: items
    endpoints: ["{{items}}"]
  - name: items-v2
    endpoints: ["{{items_v2}}"]
  - name: payments
    endpoints: ["{{payments}}"]
    protocol: h2c
  - name: monolith
    lb: round_robin
    endpoints: ["{{monolith_a}}", { address: "{{monolith_b}}", weight: 2 }]
"#;

/// Starts the demo services and the gateway, prints what to try, serves until Ctrl-C.
pub async fn run(listen: SocketAddr, admin: SocketAddr) -> anyhow::Result<ExitCode> {
    let mut yaml = CONFIG.replace("{{listen}}", &listen.to_string());
    yaml = yaml.replace("{{admin}}", &admin.to_string());
    for name in ["items", "items_v2", "payments", "monolith_a", "monolith_b"] {
        let addr = start_service(name).await?;
        yaml = yaml.replace(&format!("{{{{{name}}}}}"), &addr.to_string());
    }
    let config = match sekisho_config::parse_str(&yaml, std::path::Path::new(".")) {
        Ok(c) => c,
        Err(e) => anyhow::bail!("the embedded demo config is invalid (a bug):\n{e}"),
    };
    let gateway = sekisho_gateway::Gateway::start(config)
        .await
        .context("starting the demo gateway")?;
    let public = gateway.listener_addr("public").unwrap_or(listen);
    let admin = gateway.admin_addr().unwrap_or(admin);
    eprintln!(
        r#"
sekisho demo: gateway on http://{public}, admin on http://{admin}
Access log lines (JSON) go to stdout. Try:

  curl -s http://{public}/v1/items/42                       # items (10% go to items-v2)
  curl -s -H 'x-canary: items-v2' http://{public}/v1/items/42   # force the canary
  curl -s -X POST -d '{{"amount":100}}' http://{public}/v1/payments/charge   # buffered, rewritten, h2c upstream
  curl -s http://{public}/anything/else                     # the legacy monolith catch-all
  curl -si http://{public}/admin/users                      # 403, direct response
  curl -si --path-as-is 'http://{public}/x/..%2fadmin/users' # 400: encoded slash refused
  curl -si --path-as-is http://{public}//admin/users        # 403: normalized before routing
  curl -si --path-as-is http://{public}/x/../admin/users    # 403: dot-segments resolved first
  curl -si http://{public}/docs/intro                       # 301 redirect
  curl -s http://{admin}/metrics | grep sekisho_requests_total
  curl -s http://{admin}/clusters
  curl -s http://{admin}/config

Ctrl-C drains and exits.
"#
    );
    crate::run_until_signal(gateway, Duration::from_secs(5), Duration::ZERO).await?;
    Ok(ExitCode::SUCCESS)
}

/// A demo service: answers every request with JSON describing what it received.
async fn start_service(name: &'static str) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a demo service")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let header = |n: &str| {
                            parts
                                .headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let reply = serde_json::json!({
                            "service": name,
                            "method": parts.method.as_str(),
                            "path": parts.uri.path(),
                            "query": parts.uri.query(),
                            "request_id": header("x-request-id"),
                            "x_forwarded_for": header("x-forwarded-for"),
                            "body_bytes": body.len(),
                        });
                        let mut resp =
                            hyper::Response::new(Full::new(Bytes::from(reply.to_string() + "\n")));
                        resp.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
