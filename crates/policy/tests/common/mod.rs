//! Helpers shared by the policy integration tests: a tiny hyper server whose answer the test
//! controls, and request views.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

/// What the test server answers: status, headers, body, and an optional delay.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn ok(body: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// A loopback HTTP/1.1 server answering every request with the current [`Answer`].
pub struct TestServer {
    pub addr: SocketAddr,
    pub answer: Arc<Mutex<Answer>>,
    pub hits: Arc<AtomicUsize>,
    /// Request lines and headers seen, as `METHOD PATH` plus the request headers.
    pub seen: Arc<Mutex<Vec<(String, http::HeaderMap)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (a, h, s) = (answer.clone(), hits.clone(), seen.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (a, h, s) = (a.clone(), h.clone(), s.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (a, h, s) = (a.clone(), h.clone(), s.clone());
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            s.lock().unwrap().push((
                                format!("{} {}", req.method(), req.uri()),
                                req.headers().clone(),
                            ));
                            let ans = a.lock().unwrap().clone();
                            tokio::time::sleep(ans.delay).await;
                            let mut resp = Response::new(Full::new(Bytes::from(ans.body)));
                            *resp.status_mut() = ans.status;
                            for (k, v) in ans.headers {
                                resp.headers_mut().insert(k, v.parse().unwrap());
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            answer,
            hits,
            seen,
            task,
        }
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every connection (dropping the task drops them all).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Owned request parts a test builds a [`sekisho_policy::RequestView`] from.
pub struct Req {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub ip: IpAddr,
}

impl Req {
    pub fn get(uri: &str) -> Self {
        Self {
            method: http::Method::GET,
            uri: uri.parse().unwrap(),
            headers: http::HeaderMap::new(),
            ip: LOCAL,
        }
    }

    pub fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.append(k, v.parse().unwrap());
        self
    }

    pub fn view(&self) -> sekisho_policy::RequestView<'_> {
        sekisho_policy::RequestView::new(&self.method, &self.uri, &self.headers, self.ip)
    }
}
