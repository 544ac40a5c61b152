//! Writing answers to the client: the gateway's own (errors, direct responses, redirects)
//! and the upstream's response head with the gateway's edits; the `Date` field; the
//! access log record.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sekisho_h1::write::{decimal, header, status_line};
use sekisho_h1::{ResponseBody as Framing, ResponseHead};
use sekisho_telemetry::access_log::AccessLogEntry;
use sekisho_telemetry::metrics::RequestMetrics;

use super::prepare::Meta;
use crate::body::ResponseBody;
use crate::plan::RouteEntry;
use crate::server::Shared;

/// How the body after the head written by [`client_head`] goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relay {
    /// No body.
    None,
    /// `n` bytes, as the upstream framed them.
    Length(u64),
    /// Chunked, passed through as it is (the end found by scanning).
    Chunked,
    /// Until the upstream closes; sent to the client chunked.
    Rechunk,
}

/// Appends the gateway's own answer (a complete body in memory), with `Date` and, when
/// closing, `Connection: close`; `head_request`: the head only.
pub(crate) fn encode_reply(
    out: &mut Vec<u8>,
    response: &http::Response<ResponseBody>,
    close: bool,
    head_request: bool,
) {
    let body: &[u8] = match response.body() {
        ResponseBody::Full(Some(b)) => b,
        _ => &[],
    };
    let status = response.status();
    status_line(
        out,
        status.as_u16(),
        status.canonical_reason().unwrap_or("").as_bytes(),
    );
    for (name, value) in response.headers() {
        if name != http::header::CONTENT_LENGTH {
            header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let bodiless = status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    if !bodiless {
        out.extend_from_slice(b"content-length: ");
        decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    if !response.headers().contains_key(http::header::DATE) {
        date_header(out);
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_request && !bodiless {
        out.extend_from_slice(body);
    }
}

/// Writes the client's response head from the upstream's: hop-by-hop fields removed (and
/// those `Connection` lists), the route's edits, `X-Request-Id` and `Date` when the
/// upstream sent none, the framing for this hop, `Connection: close` when closing.
pub(crate) fn client_head(
    out: &mut Vec<u8>,
    resp: &ResponseHead<'_, '_>,
    route: &RouteEntry,
    request_id: &[u8],
    close: bool,
) -> Relay {
    out.clear();
    status_line(out, resp.code, resp.reason.as_bytes());
    let edits = &route.response_headers;
    let listed = |name: &str| resp.connection.listed_in(resp.headers, name);
    let mut has_id = false;
    let mut has_date = false;
    let mut codings: Option<&[u8]> = None;
    for h in resp.headers {
        let name = h.name;
        let n = name.as_bytes();
        if n.len() == 17 && n.eq_ignore_ascii_case(b"transfer-encoding") {
            codings = Some(h.value);
            continue;
        }
        if sekisho_h1::is_hop_by_hop(name) || listed(name) {
            continue;
        }
        if !edits.is_empty() && edits.drops(name) {
            continue;
        }
        match n.len() {
            4 => has_date |= n.eq_ignore_ascii_case(b"date"),
            12 => has_id |= n.eq_ignore_ascii_case(b"x-request-id"),
            _ => {}
        }
        header(out, n, h.value);
    }
    let relay = match resp.body {
        Framing::None => Relay::None,
        Framing::Length(n) => Relay::Length(n),
        Framing::Chunked => Relay::Chunked,
        Framing::UntilClose => Relay::Rechunk,
    };
    match relay {
        // Other codings (`gzip, chunked`) stay on the message; only chunked framing is
        // this hop's.
        Relay::Chunked if resp.coded => match codings {
            Some(v) => header(out, b"transfer-encoding", v),
            None => header(out, b"transfer-encoding", b"chunked"),
        },
        Relay::Chunked => header(out, b"transfer-encoding", b"chunked"),
        Relay::Rechunk if resp.coded => {
            out.extend_from_slice(b"transfer-encoding: ");
            out.extend_from_slice(codings.unwrap_or_default());
            out.extend_from_slice(b", chunked\r\n");
        }
        Relay::Rechunk => header(out, b"transfer-encoding", b"chunked"),
        Relay::None | Relay::Length(_) => {}
    }
    if !has_id {
        header(out, b"x-request-id", request_id);
    }
    if !has_date {
        date_header(out);
    }
    edits.write_added(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    relay
}

thread_local! {
    /// `Date` changes once a second: format it once per second per thread.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends `date: <IMF-fixdate>\r\n` for now.
fn date_header(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.0 = secs;
            cached.1.clear();
            cached
                .1
                .extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
        }
        header(out, b"date", &cached.1);
    });
}

/// What one request's access log line and metrics need beyond [`Meta`].
pub(crate) struct Outcome<'a> {
    pub(crate) status: u16,
    pub(crate) response_bytes: u64,
    pub(crate) route: Option<&'a RouteEntry>,
    pub(crate) cluster: &'a str,
    pub(crate) metrics: Option<&'a RequestMetrics>,
    pub(crate) upstream_addr: Option<SocketAddr>,
    pub(crate) upstream_time: Option<Duration>,
}

/// Writes the request's access log line and records its metrics, like the general
/// pipeline's `RequestLog`.
pub(crate) fn record(
    shared: &Shared,
    remote: SocketAddr,
    meta: &Meta,
    started: Instant,
    o: &Outcome<'_>,
) {
    let latency = started.elapsed();
    let metrics = o
        .metrics
        .or(o.route.map(|r| &*r.local_metrics))
        .unwrap_or(&shared.unrouted_metrics);
    metrics.record(o.status, latency, meta.request_bytes, o.response_bytes);
    if let Some(log) = &shared.access_log {
        log.log(&AccessLogEntry {
            remote_addr: remote,
            method: meta.method(),
            uri: meta.target(),
            status: o.status,
            size: o.response_bytes,
            time: SystemTime::now(),
            ua: meta.user_agent(),
            ptime: latency,
            host: meta.host(),
            request_id: meta.request_id(),
            route: o.route.map(|r| &*r.name).unwrap_or(""),
            cluster: o.cluster,
            upstream_addr: o.upstream_addr,
            upstream_time: o.upstream_time,
            // Routes with auth never take the fast path.
            auth: None,
            auth_id: None,
        });
    }
}
