//! Test clients: a pooled HTTP/1.1 or h2c client, a TLS client with ALPN, and a raw socket
//! client for bytes no well-behaved client would send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete response.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Trailers, if any.
    pub trailers: Option<HeaderMap>,
    /// HTTP version of the response.
    pub version: http::Version,
}

impl TestResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A header as text ("" if absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A pooled client (keep-alive), HTTP/1.1 or h2c prior knowledge.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    /// An HTTP/1.1 client.
    pub fn http1() -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// An h2c (HTTP/2 prior knowledge) client.
    pub fn h2c() -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        }
    }

    /// `GET http://addr{path}` with an optional Host header.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> TestResponse {
        self.send(
            Request::get(format!("http://{addr}{path}"))
                .body(Full::default())
                .expect("request"),
        )
        .await
    }

    /// Sends a request; the URI must be absolute (`http://addr/path`). Times out after 10 s.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> TestResponse {
        let fut = async {
            let resp = self.inner.request(req).await.expect("request failed");
            collect(resp).await
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("request timed out")
    }

    /// Like [`HttpClient::send`], returning the error instead of panicking.
    pub async fn try_send(&self, req: Request<Full<Bytes>>) -> Result<TestResponse, String> {
        let fut = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok(collect(resp).await)
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .map_err(|_| "timed out".to_string())?
    }
}

async fn collect(resp: http::Response<hyper::body::Incoming>) -> TestResponse {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.expect("response body");
    let trailers = collected.trailers().cloned();
    TestResponse {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
        version: parts.version,
    }
}

/// One request over a fresh TLS connection with the given SNI name and ALPN; returns the
/// response and the negotiated ALPN protocol.
pub async fn tls_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
    path: &str,
) -> Result<(TestResponse, Option<Vec<u8>>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name =
        rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
    let io = TokioIo::new(tls);
    let req = Request::get(format!("https://{sni}{path}"))
        .body(Full::<Bytes>::default())
        .map_err(|e| e.to_string())?;
    let resp = if alpn.as_deref() == Some(b"h2") {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let (mut parts, body) = req.into_parts();
        parts.uri = path
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?;
        parts.headers.insert(
            http::header::HOST,
            sni.parse().map_err(|_| "host".to_string())?,
        );
        send.send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| e.to_string())?
    };
    Ok((collect(resp).await, alpn))
}

/// A response read off a raw socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code (0 if the peer closed without a status line).
    pub status: u16,
    /// The head as text.
    pub head: String,
    /// Everything after the head.
    pub body: Vec<u8>,
}

/// Writes `request` as is, then reads until the peer closes (or 5 s pass). Send
/// `Connection: close` in the request so the server closes after answering.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    parse_raw(&buf)
}

fn parse_raw(buf: &[u8]) -> RawResponse {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (&buf[..i], &buf[i + 4..]),
        None => (buf, &[][..]),
    };
    let head = String::from_utf8_lossy(head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head,
        body: body.to_vec(),
    }
}

/// A `GET` with the given raw request target, `Connection: close`.
pub async fn raw_get(addr: SocketAddr, target: &str) -> RawResponse {
    raw(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

/// A raw keep-alive HTTP/1.1 connection: writes requests as given and reads one framed
/// response at a time (`Content-Length`, chunked, or until close), so tests can check what
/// happens across requests on one connection.
pub struct KeepAlive {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One response read by [`KeepAlive::read`].
#[derive(Debug, Clone)]
pub struct FramedResponse {
    pub status: u16,
    /// Header fields, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The body was chunked.
    pub chunked: bool,
}

impl FramedResponse {
    /// The first value of a header ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl KeepAlive {
    pub async fn connect(addr: SocketAddr) -> KeepAlive {
        KeepAlive {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Writes `request` and reads its response (`head_request`: no body expected).
    pub async fn send(&mut self, request: &[u8], head_request: bool) -> FramedResponse {
        self.write(request).await;
        self.read(head_request).await.expect("a response")
    }

    /// Reads the next response; `None` when the server closed first (5 s bound).
    pub async fn read(&mut self, head_request: bool) -> Option<FramedResponse> {
        tokio::time::timeout(Duration::from_secs(5), self.read_inner(head_request))
            .await
            .expect("response within 5 s")
    }

    /// True when the server has closed the connection (EOF within `within`).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(within, self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn exactly(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    async fn read_inner(&mut self, head_request: bool) -> Option<FramedResponse> {
        let status_line = self.line().await?;
        let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let mut body = Vec::new();
        let bodiless = head_request || status == 204 || status == 304 || status < 200;
        if bodiless {
        } else if chunked {
            loop {
                let size_line = self.line().await?;
                let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
                if size == 0 {
                    // Trailers, then the empty line.
                    while !self.line().await?.is_empty() {}
                    break;
                }
                body.extend(self.exactly(size).await?);
                self.exactly(2).await?;
            }
        } else if let Some(len) = get("content-length") {
            body = self.exactly(len.parse().ok()?).await?;
        } else {
            while self.fill().await {}
            body = std::mem::take(&mut self.buf);
        }
        Some(FramedResponse {
            status,
            headers,
            body,
            chunked,
        })
    }
}
