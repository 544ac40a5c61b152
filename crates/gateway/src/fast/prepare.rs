//! From a parsed head to what to do: fall back, answer, or proxy (with the upstream's head
//! written into the connection's head buffer).

use std::io::Write as _;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use http::Method;
use sekisho_h1::{BodyKind, Header, RequestHead, TargetForm};
use sekisho_router::{normalize_path, HeaderLookup};
use sekisho_telemetry::request_id::{new_request_id, RequestId};
use sekisho_telemetry::trace_context::propagate;

use super::{Client, BODY_MAX};
use crate::body::ResponseBody;
use crate::pipeline::{local_answer, upstream_path};
use crate::plan::{Action, Plan, RouteEntry};
use crate::respond::GatewayError;
use crate::server::Shared;

/// The next step for the request at the start of the client buffer.
pub(crate) enum Step {
    /// The head is not complete yet.
    Incomplete,
    /// The general pipeline must serve it (and the connection from here on).
    Fallback,
    /// The gateway answers itself.
    Reply(Reply),
    /// Proxy it; the upstream's head is in the connection's head buffer.
    Proxy(Forward),
}

/// An answer the gateway gives (error, direct response, redirect).
pub(crate) struct Reply {
    pub(crate) response: http::Response<ResponseBody>,
    /// The route it was given on, if one matched.
    pub(crate) route: Option<Arc<RouteEntry>>,
    /// Bytes of the request in the client buffer (head + body) to consume first; `None`
    /// when the request's end is unknown: the connection closes after the answer.
    pub(crate) consumed: Option<usize>,
    /// The client asked to close, or the gateway is draining.
    pub(crate) close: bool,
    /// A HEAD request: the answer has no body.
    pub(crate) head_request: bool,
}

/// A request to proxy.
pub(crate) struct Forward {
    pub(crate) route: Arc<RouteEntry>,
    /// Index of the target in the route's split (0 for a single cluster).
    pub(crate) target: usize,
    pub(crate) head_len: usize,
    pub(crate) body_len: usize,
    /// Keep the client connection after the response.
    pub(crate) keep_alive: bool,
    pub(crate) head_request: bool,
    /// Safe to send twice (a reused upstream connection that closed without answering).
    pub(crate) idempotent: bool,
    pub(crate) method: Method,
}

/// The request's strings the access log needs once the head is gone, in one reused buffer.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    text: String,
    method: Range<usize>,
    target: Range<usize>,
    host: Range<usize>,
    ua: Option<Range<usize>>,
    request_id: Range<usize>,
    /// `Content-Length` of the request.
    pub(crate) request_bytes: u64,
}

impl Meta {
    fn get(&self, r: &Range<usize>) -> &str {
        self.text.get(r.clone()).unwrap_or("")
    }

    fn push(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// The method as sent.
    pub(crate) fn method(&self) -> &str {
        self.get(&self.method)
    }

    /// The request target as sent.
    pub(crate) fn target(&self) -> &str {
        self.get(&self.target)
    }

    /// The `Host` value.
    pub(crate) fn host(&self) -> &str {
        self.get(&self.host)
    }

    /// The `User-Agent` value, if it is visible ASCII.
    pub(crate) fn user_agent(&self) -> Option<&str> {
        self.ua.as_ref().map(|r| self.get(r))
    }

    /// The request id (the client's, or a new one).
    pub(crate) fn request_id(&self) -> &str {
        self.get(&self.request_id)
    }
}

/// A parsed head's fields, for the router's header predicates and the split override.
struct RawHeaders<'h, 'b>(&'h [Header<'b>]);

impl HeaderLookup for RawHeaders<'_, '_> {
    fn first_value(&self, name: &http::HeaderName) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    }
}

/// Decides what to do with the request at the start of `c.rbuf`.
pub(crate) fn prepare(c: &mut Client, plan: &Plan, shared: &Shared) -> Step {
    let Client {
        rbuf,
        wbuf,
        meta,
        limits,
        remote,
        ..
    } = c;
    let mut headers = [sekisho_h1::EMPTY_HEADER; sekisho_h1::MAX_HEADERS];
    let head = match sekisho_h1::parse_request(rbuf, &mut headers) {
        Ok(Some(head)) if head.len <= limits.max_head => head,
        Ok(None) if rbuf.len() < limits.max_head => return Step::Incomplete,
        Ok(_) => return refuse(meta, GatewayError::HeadersTooLarge),
        Err(e) => {
            let err = match e {
                sekisho_h1::HeadError::Malformed(m) => GatewayError::BadRequest(m),
                sekisho_h1::HeadError::Ambiguous(m) => GatewayError::Ambiguous(m),
                sekisho_h1::HeadError::MissingHost => GatewayError::BadHost,
                sekisho_h1::HeadError::TooManyHeaders => GatewayError::HeadersTooLarge,
            };
            return refuse(meta, err);
        }
    };
    let body_len = match head.body {
        BodyKind::None => 0,
        BodyKind::Length(n) if n <= BODY_MAX => n as usize,
        // Streamed bodies (large or chunked) and their retries belong to the general path.
        BodyKind::Length(_) | BodyKind::Chunked | BodyKind::CodedChunked => return Step::Fallback,
    };
    if head.minor_version == 0
        || head.form == TargetForm::Other
        || head.upgrade
        || head.expect
        || needs_pipeline(&head)
    {
        return Step::Fallback;
    }

    // What the general pipeline does first: the request id (a sane one of the client's is
    // kept), then the strings the access log keeps.
    record_meta(meta, &head, body_len as u64);
    let close = !head.keep_alive() || shared.draining.load(std::sync::atomic::Ordering::Relaxed);
    let head_request = head.method == "HEAD";
    let reply = |meta: &Meta, route: Option<Arc<RouteEntry>>, result| {
        let response = match result {
            Ok(r) => r,
            Err(e) => GatewayError::to_response(&e, meta.request_id(), None),
        };
        Step::Reply(Reply {
            response,
            route,
            consumed: Some(head.len + body_len),
            close,
            head_request,
        })
    };
    let normalized = match normalize_path(head.path()) {
        Ok(n) => n,
        Err(e) => return reply(meta, None, Err(GatewayError::BadPath(e))),
    };
    let Some(host) = head
        .host
        .filter(|h| h.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .and_then(|h| std::str::from_utf8(h).ok())
    else {
        return reply(meta, None, Err(GatewayError::BadHost));
    };
    let Ok(method) = Method::from_bytes(head.method.as_bytes()) else {
        return reply(meta, None, Err(GatewayError::BadRequest("invalid method")));
    };
    let raw = RawHeaders(head.headers);
    let Some(found) = plan.router.find(host, &normalized.path, &method, &raw) else {
        return reply(meta, None, Err(GatewayError::NoRoute));
    };
    let route = found.value.clone();
    if !route.fast {
        return Step::Fallback;
    }
    if normalized.encoded_separator && !route.allow_encoded_slashes {
        return reply(meta, Some(route), Err(GatewayError::EncodedSeparator));
    }
    let target = match &route.action {
        Action::Upstream(_) => 0,
        Action::Split(split) => match split.pick(&raw) {
            Some(t) => split
                .targets
                .iter()
                .position(|x| std::ptr::eq(x, t))
                .unwrap_or(0),
            None => {
                let err = GatewayError::Internal("split without targets".into());
                return reply(meta, Some(route), Err(err));
            }
        },
        Action::Direct { .. } | Action::Redirect { .. } => {
            let answer = local_answer(&route, &normalized.path, head.query());
            return reply(meta, Some(route), answer);
        }
    };
    if let Some(limit) = route.buffer_max {
        if body_len as u64 > limit {
            let mut step = reply(
                meta,
                Some(route),
                Err(GatewayError::PayloadTooLarge { limit }),
            );
            if let Step::Reply(r) = &mut step {
                // Not read: close instead of reading a body nobody wants.
                r.consumed = None;
            }
            return step;
        }
    }
    let path = upstream_path(&route, &normalized.path, found.prefix_len);
    upstream_head(
        wbuf,
        &head,
        &path,
        &route,
        meta.request_id().as_bytes(),
        remote.ip(),
        host.as_bytes(),
    );
    Step::Proxy(Forward {
        target,
        head_len: head.len,
        body_len,
        keep_alive: !close,
        head_request,
        idempotent: matches!(
            method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        ),
        method,
        route,
    })
}

/// Requests whose answers the general pipeline shapes: CORS preflights (routed by the
/// method they announce) and gRPC clients (errors as gRPC statuses).
fn needs_pipeline(head: &RequestHead<'_, '_>) -> bool {
    let preflight = head.method == "OPTIONS"
        && head.header("origin").is_some()
        && head.header("access-control-request-method").is_some();
    preflight
        || head
            .header("content-type")
            .is_some_and(|ct| ct.len() >= 16 && ct[..16].eq_ignore_ascii_case(b"application/grpc"))
}

/// An answer to a head that could not be read: the connection closes after it.
fn refuse(meta: &mut Meta, err: GatewayError) -> Step {
    meta.text.clear();
    let id = new_request_id();
    meta.request_id = meta.push(id.as_str());
    meta.method = 0..0;
    meta.target = 0..0;
    meta.host = 0..0;
    meta.ua = None;
    meta.request_bytes = 0;
    Step::Reply(Reply {
        response: err.to_response(meta.request_id(), None),
        route: None,
        consumed: None,
        close: true,
        head_request: false,
    })
}

fn record_meta(meta: &mut Meta, head: &RequestHead<'_, '_>, body_len: u64) {
    meta.text.clear();
    meta.method = meta.push(head.method);
    meta.target = meta.push(head.target);
    let host = head
        .host
        .and_then(|h| std::str::from_utf8(h).ok())
        .unwrap_or("");
    meta.host = meta.push(host);
    meta.ua = head
        .header("user-agent")
        .filter(|v| v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|ua| meta.push(ua));
    meta.request_id = match head.header("x-request-id") {
        Some(v) if RequestId::from_client(v).is_ok() => {
            meta.push(std::str::from_utf8(v).unwrap_or("-"))
        }
        _ => {
            let id = new_request_id();
            meta.push(id.as_str())
        }
    };
    meta.request_bytes = body_len;
}

/// Writes the head sent upstream: the request line with the normalized (and rewritten)
/// path, the client's fields minus hop-by-hop ones and those the gateway sets, then the
/// gateway's (`X-Request-Id`, `traceparent`, `X-Forwarded-*`), then the route's edits,
/// which apply to all of them as in the general pipeline.
fn upstream_head(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    path: &str,
    route: &RouteEntry,
    request_id: &[u8],
    client: IpAddr,
    host: &[u8],
) {
    use sekisho_h1::write::header;
    out.clear();
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    if let Some(q) = head.query() {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let edits = &route.request_headers;
    let kept = |name: &str| edits.is_empty() || !edits.drops(name);
    let listed = |name: &str| head.connection.listed_in(head.headers, name);
    let incoming_trace = head.header("traceparent");
    let hop = propagate(incoming_trace, None);
    let mut forwarded_for: Option<&[u8]> = None;
    let mut te_trailers = false;
    for h in head.headers {
        let name = h.name;
        let n = name.as_bytes();
        if n.len() == 2 && n.eq_ignore_ascii_case(b"te") {
            // `TE: trailers` is kept (gRPC needs it); the rest of TE is hop-by-hop.
            te_trailers |= h
                .value
                .split(|&b| b == b',')
                .any(|t| sekisho_h1::trim_ows(t).eq_ignore_ascii_case(b"trailers"));
            continue;
        }
        if sekisho_h1::is_hop_by_hop(name) || listed(name) {
            continue;
        }
        let gateway_set = match n.len() {
            10 => n.eq_ignore_ascii_case(b"tracestate") && hop.incoming.is_none(),
            11 => n.eq_ignore_ascii_case(b"traceparent"),
            12 => n.eq_ignore_ascii_case(b"x-request-id"),
            15 if n.eq_ignore_ascii_case(b"x-forwarded-for") => {
                forwarded_for = forwarded_for.or(Some(h.value));
                true
            }
            16 => n.eq_ignore_ascii_case(b"x-forwarded-host"),
            17 => n.eq_ignore_ascii_case(b"x-forwarded-proto"),
            _ => false,
        };
        if gateway_set || !kept(name) {
            continue;
        }
        header(out, n, h.value);
    }
    if te_trailers && kept("te") {
        header(out, b"te", b"trailers");
    }
    if kept("x-request-id") {
        header(out, b"x-request-id", request_id);
    }
    if kept("traceparent") {
        header(out, b"traceparent", hop.outgoing.encode().as_bytes());
    }
    if kept("x-forwarded-for") {
        out.extend_from_slice(b"x-forwarded-for: ");
        if let Some(prev) = forwarded_for.filter(|p| !p.is_empty()) {
            out.extend_from_slice(prev);
            out.extend_from_slice(b", ");
        }
        let _ = write!(out, "{client}");
        out.extend_from_slice(b"\r\n");
    }
    if kept("x-forwarded-proto") {
        header(out, b"x-forwarded-proto", b"http");
    }
    if kept("x-forwarded-host") {
        header(out, b"x-forwarded-host", host);
    }
    edits.write_added(out);
    out.extend_from_slice(b"\r\n");
}
