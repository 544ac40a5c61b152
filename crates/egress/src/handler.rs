//! One request's way through the egress proxy:
//!
//! ```text
//! id (X-Chocon-Id: reuse or new) ─► local endpoints (/.api/http-stats, /.api/metrics)
//!   ─► loop check (X-Chocon-Ver present: 508)
//!   ─► destination: fixed upstream, or the Host convention (400 if it does not parse)
//!   ─► policy: name, then every resolved address (403)
//!   ─► pool of (scheme, host, port) ─► hop-by-hop headers out, id and version in
//!   ─► send, response head within --proxy-read-timeout (504) ─► relay, id returned
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{HeaderValue, HOST, USER_AGENT};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sekisho_proxy::{BoxError, InFlightGuard};
use sekisho_telemetry::metrics::CONTENT_TYPE;
use sekisho_telemetry::request_id::RequestId;

use crate::body::{Finish, Inner, Tracked, CLIENT_CLOSED};
use crate::headers::{strip_hop_by_hop, ID_HEADER, VERSION, VERSION_HEADER};
use crate::host::{parse_host, HostError};
use crate::pools::PoolEntry;
use crate::respond::{self, Reject};
use crate::server::Shared;

/// Serves one request; never fails (errors are responses).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Tracked>, Infallible> {
    let deadline = tokio::time::Instant::now() + shared.write_timeout;
    let id = RequestId::from_header_or_new(req.headers().get(ID_HEADER).map(|v| v.as_bytes()));
    let header_str = |v: Option<&HeaderValue>| {
        v.and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let host = match req.headers().get(HOST) {
        Some(h) => header_str(Some(h)),
        None => req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    let mut finish = Finish {
        shared: shared.clone(),
        started: Instant::now(),
        time: SystemTime::now(),
        remote,
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        ua: header_str(req.headers().get(USER_AGENT)),
        host: host.clone(),
        id: id.as_str().to_owned(),
        // Until a response exists: if this future is dropped, the client went away.
        status: CLIENT_CLOSED,
        size: 0,
        metrics: None,
    };
    let (mut resp, in_flight) = match local(&shared, &req) {
        Some(r) => (r, None),
        None => match proxy(&shared, req, &host, &id, &mut finish).await {
            Ok((r, g)) => (r, Some(g)),
            Err(reject) => {
                tracing::debug!(%remote, %host, id = id.as_str(), error = %reject, "request rejected");
                (reject.into_response(), None)
            }
        },
    };
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        resp.headers_mut().insert(ID_HEADER, v);
    }
    finish.status = resp.status().as_u16();
    Ok(resp.map(|b| Tracked::new(b, finish, deadline, in_flight)))
}

/// chocon's stats endpoint, and Prometheus metrics, on any host.
fn local(shared: &Shared, req: &Request<Incoming>) -> Option<Response<Inner>> {
    let path = req.uri().path();
    if path.starts_with("/.api/http-stats") {
        let body = shared.stats.to_json().to_string();
        return Some(respond::with_type(body, "application/json"));
    }
    if path.starts_with("/.api/metrics") {
        let mut out = String::new();
        shared.registry.render(&mut out);
        return Some(respond::with_type(out, CONTENT_TYPE));
    }
    None
}

async fn proxy(
    shared: &Shared,
    req: Request<Incoming>,
    host: &str,
    id: &RequestId,
    finish: &mut Finish,
) -> Result<(Response<Inner>, InFlightGuard), Reject> {
    if req.headers().contains_key(VERSION_HEADER) {
        return Err(Reject::Loop);
    }
    let (mut parts, body) = req.into_parts();
    let entry = match &shared.fixed {
        Some(up) => {
            // Fixed upstream: the client's Host goes along unchanged.
            if host.is_empty() {
                return Err(HostError::Missing.into());
            }
            pool(shared, up.scheme, &up.host, up.port)?
        }
        None => {
            let dest = parse_host(host)?;
            admit(shared, &dest.host).await?;
            let entry = pool(shared, dest.scheme, &dest.host, dest.port)?;
            let host_header = HeaderValue::from_str(&dest.host_header)
                .map_err(|_| HostError::InvalidHost(host.to_owned()))?;
            parts.headers.insert(HOST, host_header);
            // Marks the request as proxied: another egress proxy will refuse it (508).
            parts
                .headers
                .insert(VERSION_HEADER, HeaderValue::from_static(VERSION));
            entry
        }
    };
    finish.metrics = Some(entry.metrics.clone());
    strip_hop_by_hop(&mut parts.headers);
    if !parts.headers.contains_key(HOST) {
        if let Ok(v) = HeaderValue::from_str(host) {
            parts.headers.insert(HOST, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        parts.headers.insert(ID_HEADER, v);
    }
    // Path and query unchanged; the cluster puts the URI in its protocol's form.
    parts.uri = Uri::from(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    let body = crate::body::ReadDeadline::new(body, shared.read_timeout).boxed_unsync();
    let upstream_req = Request::from_parts(parts, body);

    let sent = tokio::time::timeout(shared.proxy_read_timeout, entry.cluster.send(upstream_req))
        .await
        .map_err(|_| Reject::Timeout(shared.proxy_read_timeout))??;
    let (mut parts, body) = sent.response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(ID_HEADER);
    let body = body.map_err(|e| Box::new(e) as BoxError).boxed_unsync();
    Ok((Response::from_parts(parts, body), sent.in_flight))
}

fn pool(
    shared: &Shared,
    scheme: crate::host::Scheme,
    host: &str,
    port: u16,
) -> Result<Arc<PoolEntry>, Reject> {
    shared
        .pools
        .get(scheme, host, port)
        .map_err(|e| Reject::Pool(e.to_string()))
}

/// Checks the destination against the policy: its name, then every address it resolves
/// to (a name pointing at a metadata address is refused, not just the literal).
async fn admit(shared: &Shared, host: &str) -> Result<(), Reject> {
    let name_ok = shared.policy.check_name(host)?;
    let is_literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    if is_literal {
        return Ok(());
    }
    let ips = shared
        .dns
        .resolve(host)
        .await
        .map_err(|e| Reject::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })?;
    for ip in ips.iter() {
        shared.policy.check_ip(*ip, name_ok)?;
    }
    Ok(())
}
