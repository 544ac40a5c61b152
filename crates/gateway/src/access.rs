//! Per-request accounting: the access log line and request metrics, written once when the
//! response body has been sent, or with status 499 when the client left first.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use sekisho_proxy::InFlightGuard;
use sekisho_telemetry::access_log::AccessLogEntry;
use sekisho_telemetry::metrics::RequestMetrics;

use crate::body::ResponseBody;
use crate::conn_io::InFlight;
use crate::pipeline::ConnInfo;
use crate::plan::{RouteEntry, Target};
use crate::server::Shared;
use crate::BoxError;

/// nginx's code for "client closed the connection before the response was sent".
const CLIENT_CLOSED: u16 = 499;

/// What one request's log line and metrics need, gathered along the way.
pub struct RequestLog {
    shared: Arc<Shared>,
    start: Instant,
    remote: SocketAddr,
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    request_id: HeaderValue,
    request_bytes: u64,
    route: Option<Arc<RouteEntry>>,
    cluster: Option<Arc<str>>,
    metrics: Option<Arc<RequestMetrics>>,
    upstream_addr: Option<SocketAddr>,
    upstream_time: Option<Duration>,
    status: u16,
    response_bytes: u64,
    /// Ends the connection's "busy" state when the record is written and dropped.
    _in_flight: InFlight,
    /// Counts the request against its upstream endpoint (least-request balancing) until
    /// the response body is done.
    upstream_in_flight: Option<InFlightGuard>,
    /// The route's lock, held until the record is written (response done or client gone).
    lock: Option<sekisho_policy::LockGuard>,
    /// How the request was authenticated, and who (API key name or JWT `sub`).
    auth: Option<(&'static str, Option<String>)>,
}

impl RequestLog {
    /// Starts the record for a request that just arrived.
    pub fn start<B>(
        shared: &Arc<Shared>,
        conn: &ConnInfo,
        req: &Request<B>,
        request_id: HeaderValue,
        start: Instant,
    ) -> Self {
        let request_bytes = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        RequestLog {
            shared: shared.clone(),
            start,
            remote: conn.remote,
            method: req.method().clone(),
            uri: req.uri().clone(),
            host: req.headers().get(http::header::HOST).cloned().or_else(|| {
                req.uri()
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            }),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
            request_id,
            request_bytes,
            route: None,
            cluster: None,
            metrics: None,
            upstream_addr: None,
            upstream_time: None,
            status: 0,
            response_bytes: 0,
            _in_flight: conn.activity.begin(),
            upstream_in_flight: None,
            lock: None,
            auth: None,
        }
    }

    fn emit(&mut self) {
        let latency = self.start.elapsed();
        let metrics = self
            .metrics
            .as_ref()
            .or(self.route.as_ref().map(|r| &r.local_metrics))
            .unwrap_or(&self.shared.unrouted_metrics);
        metrics.record(
            self.status,
            latency,
            self.request_bytes,
            self.response_bytes,
        );
        if let Some(log) = &self.shared.access_log {
            let uri = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            log.log(&AccessLogEntry {
                remote_addr: self.remote,
                method: self.method.as_str(),
                uri,
                status: self.status,
                size: self.response_bytes,
                time: std::time::SystemTime::now(),
                ua: self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
                ptime: latency,
                host: header_str(self.host.as_ref()),
                request_id: header_str(Some(&self.request_id)),
                route: self.route.as_ref().map(|r| &*r.name).unwrap_or(""),
                cluster: self.cluster.as_deref().unwrap_or(""),
                upstream_addr: self.upstream_addr,
                upstream_time: self.upstream_time,
                auth: self.auth.as_ref().map(|(method, _)| *method),
                auth_id: self.auth.as_ref().and_then(|(_, id)| id.as_deref()),
            });
        }
    }
}

fn header_str(v: Option<&HeaderValue>) -> &str {
    v.and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Holds the record while the request is served; if the client goes away first (the
/// request future is dropped), the record is written with status 499.
pub struct LogGuard(Option<Box<RequestLog>>);

impl LogGuard {
    /// Guards a new record.
    pub fn new(log: RequestLog) -> Self {
        LogGuard(Some(Box::new(log)))
    }

    fn with(&mut self, f: impl FnOnce(&mut RequestLog)) {
        if let Some(log) = self.0.as_deref_mut() {
            f(log);
        }
    }

    /// The route that matched.
    pub fn set_route(&mut self, route: &Arc<RouteEntry>) {
        self.with(|l| l.route = Some(route.clone()));
    }

    /// The cluster chosen.
    pub fn set_target(&mut self, target: &Target) {
        self.with(|l| {
            l.cluster = Some(target.name.clone());
            l.metrics = Some(target.metrics.clone());
        });
    }

    /// The upstream address that answered, and its in-flight mark, held until the body ends.
    pub fn set_upstream(&mut self, addr: SocketAddr, in_flight: InFlightGuard) {
        self.with(|l| {
            l.upstream_addr = Some(addr);
            l.upstream_in_flight = Some(in_flight);
        });
    }

    /// The identity the route's authentication found (nothing when it let the request
    /// through without one, failing open).
    pub fn set_auth(&mut self, allow: &sekisho_policy::AuthAllow) {
        if let Some(id) = &allow.identity {
            self.with(|l| l.auth = Some((id.method.as_str(), id.id().map(str::to_string))));
        }
    }

    /// Keeps the route's lock until the record is written.
    pub fn hold_lock(&mut self, guard: sekisho_policy::LockGuard) {
        self.with(|l| l.lock = Some(guard));
    }

    /// Time from sending to the upstream until its response head arrived (or it failed).
    pub fn set_upstream_time(&mut self, d: Duration) {
        self.with(|l| l.upstream_time = Some(d));
    }

    /// Hands the record to the response body, which writes it when the body ends.
    pub fn finish(mut self, response: Response<ResponseBody>) -> Response<LoggedBody> {
        let mut log = self.0.take();
        if let Some(l) = log.as_deref_mut() {
            l.status = response.status().as_u16();
        }
        response.map(|inner| {
            let mut body = LoggedBody { inner, log };
            if body.inner.is_end_stream() {
                body.done();
            }
            body
        })
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(mut log) = self.0.take() {
            log.status = CLIENT_CLOSED;
            log.emit();
        }
    }
}

/// The response body as sent to the client: counts bytes and writes the record at the end.
pub struct LoggedBody {
    inner: ResponseBody,
    log: Option<Box<RequestLog>>,
}

impl LoggedBody {
    fn done(&mut self) {
        if let Some(mut log) = self.log.take() {
            log.emit();
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // Dropped before the end: the client left during the body (hyper drops it), or an
        // upstream body error ended the stream. The status was already sent; keep it.
        self.done();
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(log)) = (frame.data_ref(), this.log.as_deref_mut()) {
                    log.response_bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.done();
                }
            }
            Poll::Ready(Some(Err(_))) => this.done(),
            Poll::Ready(None) => this.done(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
