//! Drives the transcoder against the Python grpcio bookstore over h2c, as the gateway will.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sekisho_test_support::grpc_server::{build_descriptor_set, GrpcServer};
use sekisho_transcode::metadata::{self, AllowList};
use sekisho_transcode::{BodyFormat, Options, Transcoder};

pub fn grpc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc")
}

/// The bookstore descriptor set, built once per test binary with protoc.
pub fn descriptors() -> &'static [u8] {
    static SET: OnceLock<Vec<u8>> = OnceLock::new();
    SET.get_or_init(|| build_descriptor_set(&grpc_dir(), "bookstore.proto"))
}

pub struct Harness {
    pub t: Transcoder,
    send: SendRequest<Full<Bytes>>,
    server: GrpcServer,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> Harness {
        let t = Transcoder::new(descriptors(), &["bookstore.v1.Bookstore".to_string()], opts)
            .expect("transcoder");
        let server = GrpcServer::start(&grpc_dir().join("server.py")).await;
        let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        Harness { t, send, server }
    }

    pub async fn get(&mut self, uri: &str) -> Reply {
        self.call("GET", uri, &[], "").await
    }

    pub async fn json(&mut self, method: &str, uri: &str, body: &str) -> Reply {
        self.call(
            method,
            uri,
            &[("content-type", "application/json")],
            body.to_owned(),
        )
        .await
    }

    /// What the gateway does for a transcoded route.
    pub async fn call(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut incoming = HeaderMap::new();
        for (k, v) in headers {
            incoming.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let header = |name: &str| incoming.get(name).and_then(|v| v.to_str().ok());
        let (ct, accept) = (header("content-type"), header("accept"));
        let Some(m) = self.t.route(&method, path, query) else {
            return Reply {
                status: StatusCode::NOT_FOUND,
                content_type: String::new(),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            };
        };
        let req = match m.encode_request(ct, body.into()) {
            Ok(r) => r,
            Err(e) => {
                return Reply {
                    status: e.http_status(),
                    content_type: "application/json".into(),
                    headers: HeaderMap::new(),
                    body: serde_json::to_vec(
                        &serde_json::json!({"code": 3, "message": e.to_string()}),
                    )
                    .unwrap()
                    .into(),
                }
            }
        };
        let allow = AllowList {
            names: vec![HeaderName::from_static("x-user-id")],
            prefixes: Vec::new(),
        };
        let hdrs = metadata::grpc_request_headers(
            &incoming,
            &allow,
            &method,
            uri,
            Some(Duration::from_secs(10)),
        );
        let mut r = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}{}", self.server.addr(), m.grpc_path()))
            .body(Full::new(req.body))
            .unwrap();
        *r.headers_mut() = hdrs;
        let resp = self.send.send_request(r).await.unwrap();
        let (parts, mut body) = resp.into_parts();
        assert_eq!(parts.status, 200, "gRPC responses are HTTP 200");
        let mut rt = m.response(BodyFormat::for_response(ct, accept));
        let mut out = Vec::new();
        let mut trailers = None;
        let mut started = false;
        while let Some(frame) = body.frame().await {
            match frame.unwrap().into_data() {
                Ok(d) => {
                    // Feed in small pieces: frames split across chunks must decode.
                    for piece in d.chunks(7) {
                        if let Some(b) = rt.push(Bytes::copy_from_slice(piece)).unwrap() {
                            started = true;
                            out.extend_from_slice(&b);
                        }
                    }
                }
                Err(f) => trailers = f.into_trailers().ok(),
            }
        }
        let fin = rt.finish(&parts.headers, trailers.as_ref()).unwrap();
        out.extend_from_slice(&fin.body);
        let mut headers = HeaderMap::new();
        metadata::response_headers(&parts.headers, trailers.as_ref(), &mut headers);
        Reply {
            status: if started { StatusCode::OK } else { fin.status },
            content_type: if started {
                rt.content_type().to_owned()
            } else {
                fin.content_type
            },
            headers,
            body: out.into(),
        }
    }
}
