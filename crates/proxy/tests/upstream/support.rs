//! Test upstreams on 127.0.0.1:0 that count connections, and cluster config helpers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sekisho_config::{Cluster, Endpoint, LbPolicy, Location, Pool, Protocol};
use sekisho_proxy::{BoxError, UpstreamBody};
use tokio::net::TcpListener;

pub type TestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
        + Send
        + Sync,
>;

/// Connection counters of a test server.
#[derive(Default)]
pub struct Counts {
    pub accepted: AtomicUsize,
    pub open: AtomicUsize,
    pub max_open: AtomicUsize,
    pub closed: AtomicUsize,
}

impl Counts {
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn opened(&self) {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_open.fetch_max(now, Ordering::SeqCst);
    }

    pub fn ended(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Which HTTP the test server speaks on plaintext connections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    H1,
    H2,
}

pub struct Server {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

/// Starts a plaintext server.
pub async fn server(serve: Serve, handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            c.opened();
            let c = c.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                serve_conn(TokioIo::new(tcp), serve, handler).await;
                c.ended();
            });
        }
    });
    Server { addr, counts }
}

/// Serves one connection until it ends.
pub async fn serve_conn<I>(io: I, serve: Serve, handler: Handler)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let h = handler.clone();
        async move { Ok::<_, Infallible>(h(req).await) }
    });
    let _ = match serve {
        Serve::H1 => {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .with_upgrades()
                .await
        }
        Serve::H2 => {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, svc)
                .await
        }
    };
}

pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// Answers `ok`, after `x-delay-ms` milliseconds if the request asks.
pub fn ok_handler() -> Handler {
    handler(|req: Request<Incoming>| async move {
        let delay = req
            .headers()
            .get("x-delay-ms")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Response::new(text("ok"))
    })
}

pub fn text(s: &'static str) -> TestBody {
    Full::new(Bytes::from_static(s.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> UpstreamBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn get(path: &str) -> Request<UpstreamBody> {
    Request::builder()
        .uri(path)
        .header(http::header::HOST, "upstream.test")
        .body(empty())
        .expect("request")
}

pub fn endpoint(addr: SocketAddr, weight: u32) -> Endpoint {
    Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
        weight,
        at: Location::default(),
    }
}

pub fn cluster(endpoints: Vec<Endpoint>, protocol: Protocol) -> Cluster {
    Cluster {
        name: "test".into(),
        endpoints,
        protocol,
        lb: LbPolicy::LeastRequest,
        connect_timeout: Duration::from_secs(1),
        tls: None,
        pool: Pool {
            max_connections: 256,
            max_idle: 64,
            idle_timeout: Duration::from_secs(60),
            max_pending: 1024,
            pending_timeout: Duration::from_secs(5),
        },
        resilience: Default::default(),
        at: Location::default(),
    }
}

/// Reads a response body to the end.
pub async fn body_string(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// Polls `cond` every 10 ms for up to 5 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
