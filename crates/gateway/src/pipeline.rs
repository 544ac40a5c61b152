//! The request's way through the gateway, in order:
//!
//! ```text
//! request id ─► normalize path ─► route ─► CORS preflight ─► auth ─► rate limit
//!   ─► (direct | redirect | proxy)
//! proxy: pick cluster (split) ─► upstream request (rewrite, headers)
//!        ─► transcode / gRPC-Web route: lock (key without the body) ─► serve
//!        ─► else buffer body if asked or the lock key reads it ─► lock
//!        ─► cluster.send under the route timeout ─► response headers ─► client
//! every request ─► access log line + metrics when the response body ends (or the client
//! leaves); the lock guard rides in the log record and is released then
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use sekisho_router::normalize_path;
use sekisho_telemetry::request_id::RequestId;
use sekisho_telemetry::trace_context::propagate;

use crate::access::{LogGuard, RequestLog};
use crate::body::ResponseBody;
use crate::cors::CorsPolicy;
use crate::forward::{self, RequestBody, REPLAY_LIMIT};
use crate::headers::{is_upgrade_request, set_forwarded, strip_hop_by_hop};
use crate::plan::{Action, Plan, RouteEntry, Target};
use crate::policy_stage;
use crate::respond::{GatewayError, GrpcClient};
use crate::server::Shared;
use crate::upgrade;

/// What the gateway knows about the client connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// Whether the connection is TLS (for `X-Forwarded-Proto`).
    pub tls: bool,
    /// Requests in flight on the connection (drives its idle timeout).
    pub activity: Arc<crate::conn_io::Activity>,
}

static X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");
static TRACEPARENT: header::HeaderName = header::HeaderName::from_static("traceparent");
static TRACESTATE: header::HeaderName = header::HeaderName::from_static("tracestate");

/// Serves one request. Never fails: errors become responses here.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    mut req: Request<Incoming>,
) -> Result<Response<crate::access::LoggedBody>, std::convert::Infallible> {
    let start = Instant::now();
    // A client's id is kept when it is sane, so one id follows the request across systems.
    let request_id = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if RequestId::from_client(v.as_bytes()).is_ok() => v.clone(),
        _ => {
            let id = sekisho_telemetry::request_id::new_request_id();
            let v = HeaderValue::from_bytes(id.as_bytes())
                .unwrap_or_else(|_| HeaderValue::from_static("-"));
            req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
            v
        }
    };
    let plan = shared.plan.load_full();
    let http1 = req.version() < Version::HTTP_2;
    let grpc = GrpcClient::of(req.headers());
    let mut guard = LogGuard::new(RequestLog::start(
        &shared,
        &conn,
        &req,
        request_id.clone(),
        start,
    ));
    // Kept for CORS: the answer, the gateway's errors included, is decorated at the end.
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut cors = None;
    let result = proxy(&plan, &conn, req, &mut guard, &mut cors).await;
    let mut response = match result {
        Ok(resp) => resp,
        Err(err) => {
            if err.status().is_server_error() {
                tracing::debug!(error = %err, "request failed");
            }
            err.to_response(request_id.to_str().unwrap_or("-"), grpc)
        }
    };
    if let Some(cors) = cors {
        cors.decorate(origin.as_ref(), response.headers_mut());
    }
    if !response.headers().contains_key(&X_REQUEST_ID) {
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id);
    }
    if http1 && shared.draining.load(std::sync::atomic::Ordering::Relaxed) {
        // Draining: the client learns from this response to open its next connection
        // elsewhere, instead of reusing one that is about to close.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(guard.finish(response))
}

async fn proxy(
    plan: &Plan,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    log: &mut LogGuard,
    cors: &mut Option<Arc<CorsPolicy>>,
) -> Result<Response<ResponseBody>, GatewayError> {
    if conn.activity.take_ambiguous_framing() {
        return Err(GatewayError::Ambiguous(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    check_framing(&req)?;
    let normalized = normalize_path(req.uri().path())?;
    let host = request_host(&req).ok_or(GatewayError::BadHost)?;
    let host_str = host.to_str().map_err(|_| GatewayError::BadHost)?;
    // A CORS preflight is routed with the method it announces, so it finds the route the
    // actual request will take; a route without `cors` sees it as a plain OPTIONS.
    let preflight = crate::cors::preflight_method(req.method(), req.headers());
    let found = preflight
        .as_ref()
        .and_then(|m| {
            plan.router
                .find(host_str, &normalized.path, m, req.headers())
                .filter(|f| f.value.cors.is_some())
        })
        .or_else(|| {
            plan.router
                .find(host_str, &normalized.path, req.method(), req.headers())
        })
        .ok_or(GatewayError::NoRoute)?;
    let route = found.value.clone();
    log.set_route(&route);
    if normalized.encoded_separator && !route.allow_encoded_slashes {
        return Err(GatewayError::EncodedSeparator);
    }
    if let Some(policy) = &route.cors {
        // Before auth: browsers send preflights without credentials.
        if preflight.is_some() {
            return policy.preflight(req.headers());
        }
        *cors = Some(policy.clone());
    }
    // Route policies: only routes that have one pay for copying the path parameters
    // (copied because the request is taken apart below while the policies still need them).
    let owned_params: Vec<(&str, String)> = if route.policies.is_empty() {
        Vec::new()
    } else {
        found
            .params
            .iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    };
    let params: Vec<(&str, &str)> = owned_params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let admitted = if route.policies.auth.is_some() || route.policies.rate_limit.is_some() {
        let seen = policy_stage::Seen {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            client_ip: conn.remote.ip(),
            params: &params,
        };
        policy_stage::admit(&route.policies, &seen, log).await?
    } else {
        policy_stage::Admitted::default()
    };
    let rate_headers = admitted.rate_headers.as_ref();
    let target: &Target = match &route.action {
        Action::Upstream(t) => t,
        Action::Split(split) => split
            .pick(req.headers())
            .ok_or_else(|| GatewayError::Internal("split without targets".into()))?,
        Action::Direct { .. } | Action::Redirect { .. } => {
            let mut resp = local_answer(&route, &normalized.path, req.uri().query())?;
            policy_stage::add_headers(resp.headers_mut(), rate_headers);
            return Ok(resp);
        }
    };
    log.set_target(target);

    // The upstream sees the normalized path: what the gateway checked is what it serves.
    let path = upstream_path(&route, &normalized.path, found.prefix_len);
    let uri = upstream_uri(&path, req.uri().query())?;

    let upgrade = is_upgrade_request(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if !parts.headers.contains_key(header::HOST) {
        parts.headers.insert(header::HOST, host.clone());
    }
    set_forwarded(&mut parts.headers, conn.remote.ip(), conn.tls, Some(&host));
    let hop = propagate(parts.headers.get(&TRACEPARENT).map(|v| v.as_bytes()), None);
    if let Ok(v) = HeaderValue::from_bytes(hop.outgoing.encode().as_bytes()) {
        parts.headers.insert(TRACEPARENT.clone(), v);
    }
    if hop.incoming.is_none() {
        // A restarted trace must not carry the old trace's vendor state.
        parts.headers.remove(&TRACESTATE);
    }
    if !route.request_headers.is_empty() {
        route.request_headers.apply(&mut parts.headers);
    }
    // After the route's edits: the identity headers auth vouches for always win.
    if let Some(auth) = &admitted.auth {
        auth.apply(&mut parts.headers);
    }

    if let Some(tc) = &route.transcode {
        // gRPC-Web is checked first: its content type also starts with `application/grpc`.
        let web = crate::grpc_web::mode(&parts.headers);
        if web.is_some() || !crate::transcoding::is_grpc(&parts.headers) {
            // Transcoded and gRPC-Web requests take locks keyed without the body (the config
            // checks it); the guard rides in the log record as on the other paths.
            if let Some(l) = &route.policies.lock {
                let seen = seen_parts(&parts, conn, &params);
                if let Some(guard) = policy_stage::lock(l, &seen, None).await? {
                    log.hold_lock(guard);
                }
            }
            let mut resp = match web {
                Some(mode) => {
                    let limit = tc.max_request_bytes();
                    crate::grpc_web::serve(mode, limit, &route, target, parts, body, log).await?
                }
                None => crate::transcoding::serve(tc, &route, target, parts, body, log).await?,
            };
            policy_stage::add_headers(resp.headers_mut(), rate_headers);
            return Ok(resp);
        }
    }

    // Keep the body when the route buffers, or when a retry or mirror needs to send it
    // again and it is small; otherwise stream it through.
    let replay = (route.retry.is_some() || route.mirror.is_some())
        && (body.is_end_stream()
            || declared_length(&parts.headers).is_some_and(|n| n <= REPLAY_LIMIT));
    let lock_reads_body = route.policies.lock.as_ref().is_some_and(|l| l.needs_body());
    let body = match route.buffer_max {
        Some(limit) => {
            let (bytes, trailers) = read_body(&parts.headers, body, limit).await?;
            RequestBody::Kept(bytes, trailers)
        }
        None if lock_reads_body => {
            let (bytes, trailers) =
                read_body(&parts.headers, body, policy_stage::LOCK_BODY_LIMIT).await?;
            RequestBody::Kept(bytes, trailers)
        }
        None if replay => {
            let (bytes, trailers) = read_body(&parts.headers, body, REPLAY_LIMIT).await?;
            RequestBody::Kept(bytes, trailers)
        }
        None => RequestBody::Streamed(
            body.map_err(|e| Box::new(e) as crate::BoxError)
                .boxed_unsync(),
        ),
    };
    if let Some(l) = &route.policies.lock {
        let kept = match &body {
            RequestBody::Kept(bytes, _) => Some(&bytes[..]),
            RequestBody::Streamed(_) => None,
        };
        let seen = seen_parts(&parts, conn, &params);
        // The guard rides in the log record: released when the response ends, the
        // client leaves or the upstream fails.
        if let Some(guard) = policy_stage::lock(l, &seen, kept).await? {
            log.hold_lock(guard);
        }
    }
    if let Some(mirror) = &route.mirror {
        mirror.maybe_send(&parts, &body, route.timeout);
    }

    let upstream_start = Instant::now();
    let sent = forward::send(
        &target.cluster,
        parts,
        body,
        route.retry.as_ref(),
        route.timeout,
        route.per_try_timeout,
    )
    .await;
    log.set_upstream_time(upstream_start.elapsed());
    let upstream = sent?;
    log.set_upstream(upstream.endpoint, upstream.in_flight);
    let mut resp = upstream.response;
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        if let Some(client_upgrade) = client_upgrade {
            conn.activity.set_upgraded();
            upgrade::splice(client_upgrade, hyper::upgrade::on(&mut resp));
        }
    }
    strip_hop_by_hop(resp.headers_mut(), switching);
    if !route.response_headers.is_empty() {
        route.response_headers.apply(resp.headers_mut());
    }
    policy_stage::add_headers(resp.headers_mut(), rate_headers);
    Ok(resp.map(ResponseBody::Upstream))
}

/// The answer of a `direct_response` or `redirect` route (`None` for proxying routes),
/// with the route's response header edits.
pub(crate) fn local_answer(
    route: &RouteEntry,
    path: &str,
    query: Option<&str>,
) -> Result<Response<ResponseBody>, GatewayError> {
    let mut resp = match &route.action {
        Action::Direct {
            status,
            body,
            content_type,
        } => {
            let mut resp = Response::new(ResponseBody::full(body.clone()));
            *resp.status_mut() = *status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
            resp
        }
        Action::Redirect {
            status,
            location,
            preserve_path,
        } => {
            let mut loc = location.clone();
            if *preserve_path {
                let base = loc.trim_end_matches('/').len();
                loc.truncate(base);
                loc.push_str(path);
                if let Some(q) = query {
                    loc.push('?');
                    loc.push_str(q);
                }
            }
            let mut resp = Response::new(ResponseBody::empty());
            *resp.status_mut() = *status;
            let value = HeaderValue::from_str(&loc).map_err(|_| {
                GatewayError::Internal("redirect location is not a valid header".into())
            })?;
            resp.headers_mut().insert(header::LOCATION, value);
            resp
        }
        Action::Upstream(_) | Action::Split(_) => {
            return Err(GatewayError::Internal("not a local answer".into()))
        }
    };
    route.response_headers.apply(resp.headers_mut());
    Ok(resp)
}

/// The path the upstream receives: the normalized one, with the route's prefix rewrite.
pub(crate) fn upstream_path<'p>(
    route: &RouteEntry,
    normalized: &std::borrow::Cow<'p, str>,
    prefix_len: usize,
) -> std::borrow::Cow<'p, str> {
    let Some(prefix) = &route.rewrite_prefix else {
        return normalized.clone();
    };
    let rest = normalized.get(prefix_len..).unwrap_or("");
    let mut p = String::with_capacity(prefix.len() + rest.len());
    p.push_str(prefix);
    // `/api/` + `/x` or `/api` + `x`: keep exactly one slash at the joint.
    if p.ends_with('/') && rest.starts_with('/') {
        p.push_str(rest.get(1..).unwrap_or(""));
    } else if !p.ends_with('/') && !rest.is_empty() && !rest.starts_with('/') {
        p.push('/');
        p.push_str(rest);
    } else {
        p.push_str(rest);
    }
    if p.is_empty() {
        p.push('/');
    }
    p.into()
}

fn seen_parts<'a>(
    parts: &'a http::request::Parts,
    conn: &ConnInfo,
    params: &'a [(&'a str, &'a str)],
) -> policy_stage::Seen<'a> {
    policy_stage::Seen {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        client_ip: conn.remote.ip(),
        params,
    }
}

/// Refuses requests that two HTTP implementations could read differently. hyper already
/// refuses most (conflicting `Content-Length`, bad chunk sizes, obsolete folding, invalid
/// bytes); these pass its parser but are ambiguous for a proxy (RFC 9112 §6.1, §3.2).
fn check_framing(req: &Request<Incoming>) -> Result<(), GatewayError> {
    let h = req.headers();
    if h.contains_key(header::TRANSFER_ENCODING) && h.contains_key(header::CONTENT_LENGTH) {
        return Err(GatewayError::Ambiguous(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    let mut hosts = h.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(GatewayError::Ambiguous("more than one Host header"));
    }
    if let (Some(host), Some(authority)) = (host, req.uri().authority()) {
        if !host
            .as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes())
        {
            return Err(GatewayError::Ambiguous(
                "the request target's authority differs from Host",
            ));
        }
    }
    if host.is_none() && req.uri().authority().is_none() && req.version() == Version::HTTP_11 {
        return Err(GatewayError::BadHost);
    }
    Ok(())
}

/// The host the client asked for: `Host` (HTTP/1.1) or the URI authority (HTTP/2).
fn request_host(req: &Request<Incoming>) -> Option<HeaderValue> {
    if let Some(h) = req.headers().get(header::HOST) {
        return Some(h.clone());
    }
    let authority = req.uri().authority()?;
    HeaderValue::from_str(authority.as_str()).ok()
}

fn upstream_uri(path: &str, query: Option<&str>) -> Result<Uri, GatewayError> {
    let built = match query {
        Some(q) => {
            let mut s = String::with_capacity(path.len() + 1 + q.len());
            s.push_str(path);
            s.push('?');
            s.push_str(q);
            Uri::try_from(s)
        }
        None => Uri::try_from(path),
    };
    built.map_err(|_| GatewayError::Internal("normalized path is not a valid URI".into()))
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads the whole request body (bounded) so a slow client never holds an upstream
/// connection; past `limit` bytes the answer is 413.
pub(crate) async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<(Bytes, Option<http::HeaderMap>), GatewayError> {
    if declared_length(headers).is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let collected = Limited::new(body, max).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            GatewayError::PayloadTooLarge { limit }
        } else {
            GatewayError::ClientBody(e.to_string())
        }
    })?;
    // Trailers are rare on buffered routes; keep them rather than drop them silently.
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes(), trailers))
}
