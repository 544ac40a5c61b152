//! Test upstreams: hyper servers (HTTP/1.1 and h2c on one port, optionally TLS) that record
//! every request and answer with a reply chosen by the test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: Method,
    /// Path and query as sent on the wire.
    pub uri: String,
    /// HTTP version.
    pub version: http::Version,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The connection number (0-based, in accept order).
    pub conn: usize,
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
    /// Trailers (sent after the body; HTTP/2 or chunked HTTP/1.1).
    pub trailers: Option<HeaderMap>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// 200 with a text body.
    pub fn text(body: impl Into<String>) -> Self {
        Reply {
            status: StatusCode::OK,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from(body.into()),
            trailers: None,
            delay: Duration::ZERO,
        }
    }

    /// With another status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self
    }

    /// With a delay before answering.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// With a header (replacing any earlier value of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    /// With trailers.
    pub fn trailers(mut self, t: HeaderMap) -> Self {
        self.trailers = Some(t);
        self
    }
}

fn named_reply(name: &str) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let n = name.to_string();
    move |_| Reply::text(n.clone()).header("x-upstream", &n)
}

/// Requests kept for inspection (and counted by [`Upstream::count`]); a bound for long runs.
const MAX_RECORDED: usize = 100_000;

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running test upstream; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    name: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
    conn_tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    /// Set by [`Upstream::stop`]: aborting tasks is asynchronous (one may be mid-poll on
    /// another worker thread), so requests check this before they count.
    stopped: Arc<AtomicBool>,
}

impl Upstream {
    /// An upstream answering `200` with `name` as the body, plus an `x-upstream: name` header.
    pub async fn named(name: &str) -> Upstream {
        Self::start(name, named_reply(name)).await
    }

    /// Like [`Upstream::named`], bound to `bind`.
    pub async fn named_at(bind: SocketAddr, name: &str) -> Upstream {
        Self::start_at(bind, name, None, named_reply(name)).await
    }

    /// An upstream answering with `handler`'s reply.
    pub async fn start(
        name: &str,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Upstream {
        Self::start_with_tls(name, None, handler).await
    }

    /// Like [`Upstream::start`], serving TLS (ALPN h2 and http/1.1) with the given config.
    pub async fn start_with_tls(
        name: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Upstream {
        Self::start_at("127.0.0.1:0".parse().expect("addr"), name, tls, handler).await
    }

    /// The most general form: bind `bind` (e.g. `127.0.0.2:PORT` for DNS tests).
    pub async fn start_at(
        bind: SocketAddr,
        name: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Upstream {
        let listener = TcpListener::bind(bind).await.expect("bind test upstream");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Handler = Arc::new(handler);
        let conn_tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let task = {
            let conn_tasks = conn_tasks.clone();
            let stopped = stopped.clone();
            let seen = seen.clone();
            let connections = connections.clone();
            let tls = tls.map(tokio_rustls::TlsAcceptor::from);
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let conn = connections.fetch_add(1, Ordering::SeqCst);
                    let (seen, handler, tls) = (seen.clone(), handler.clone(), tls.clone());
                    let conn_stopped = stopped.clone();
                    let conn_task = tokio::spawn(async move {
                        let service =
                            service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                let (seen, handler) = (seen.clone(), handler.clone());
                                let stopped = conn_stopped.clone();
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    let s = Seen {
                                        method: parts.method,
                                        uri: parts.uri.to_string(),
                                        version: parts.version,
                                        headers: parts.headers,
                                        body,
                                        conn,
                                    };
                                    let reply = handler(&s);
                                    {
                                        let mut seen = seen.lock().expect("lock");
                                        if stopped.load(Ordering::SeqCst) {
                                            // Dead: the connection closes unanswered.
                                            return Err(Stopped);
                                        }
                                        // Bounded for long runs (fuzzing); tests stay far below.
                                        if seen.len() < MAX_RECORDED {
                                            seen.push(s);
                                        }
                                    }
                                    if !reply.delay.is_zero() {
                                        tokio::time::sleep(reply.delay).await;
                                    }
                                    Ok::<_, Stopped>(to_response(reply))
                                }
                            });
                        let builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        match tls {
                            Some(acceptor) => {
                                if let Ok(s) = acceptor.accept(stream).await {
                                    let _ = builder
                                        .serve_connection_with_upgrades(TokioIo::new(s), service)
                                        .await;
                                }
                            }
                            None => {
                                let _ = builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    });
                    // Only live connections are kept: a handle keeps its task's memory alive.
                    let mut tasks = conn_tasks.lock().expect("lock");
                    if stopped.load(Ordering::SeqCst) {
                        conn_task.abort();
                        return;
                    }
                    tasks.retain(|t| !t.is_finished());
                    tasks.push(conn_task.abort_handle());
                }
            })
        };
        Upstream {
            addr,
            name: name.to_string(),
            seen,
            connections,
            task,
            conn_tasks,
            stopped,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Number of requests received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Dies like a killed process: stops accepting and closes every open connection.
    pub fn stop(&self) {
        self.task.abort();
        let mut tasks = self.conn_tasks.lock().expect("lock");
        // Under the seen lock: a request counted after this returns would be a lie.
        {
            let _seen = self.seen.lock().expect("lock");
            self.stopped.store(true, Ordering::SeqCst);
        }
        for t in tasks.drain(..) {
            t.abort();
        }
    }
}

/// A stopped upstream's answer to a request that raced with [`Upstream::stop`].
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream stopped")
    }
}

impl std::error::Error for Stopped {}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

type ReplyBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

fn to_response(reply: Reply) -> Response<ReplyBody> {
    let body: ReplyBody = match reply.trailers {
        Some(t) => Full::new(reply.body)
            .with_trailers(async move { Some(Ok(t)) })
            .boxed(),
        None => Full::new(reply.body).boxed(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = reply.status;
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}
