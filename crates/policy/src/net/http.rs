//! HTTP for the policies: a one-shot `GET` (JWKS over `http://` or `https://`), and a pooled
//! plain-HTTP client for the external auth service. Every call is bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::error::BackendError;

/// `GET url` on a fresh connection; the status and at most `max_body` bytes of body.
pub async fn get(
    url: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<(StatusCode, Bytes), BackendError> {
    match tokio::time::timeout(timeout, get_inner(url, max_body)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout(timeout)),
    }
}

async fn get_inner(url: &str, max_body: usize) -> Result<(StatusCode, Bytes), BackendError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| BackendError::Http(format!("bad url {url}: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| BackendError::Http(format!("no host in {url}")))?
        .to_string();
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(BackendError::Http(format!(
                "{url}: scheme must be http or https"
            )))
        }
    };
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let req = Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| BackendError::Http(e.to_string()))?;

    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let resp = if tls {
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| BackendError::Http(format!("server name {host}: {e}")))?;
        let stream = connector.connect(name, tcp).await?;
        send(TokioIo::new(stream), req).await?
    } else {
        send(TokioIo::new(tcp), req).await?
    };
    let status = resp.status();
    let body = Limited::new(resp.into_body(), max_body)
        .collect()
        .await
        .map_err(|e| BackendError::Http(format!("reading body: {e}")))?
        .to_bytes();
    Ok((status, body))
}

async fn send<T>(
    io: T,
    req: Request<Empty<Bytes>>,
) -> Result<Response<hyper::body::Incoming>, BackendError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| BackendError::Http(format!("handshake: {e}")))?;
    // The connection task ends with the exchange (the sender is dropped after the body).
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "http connection ended");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| BackendError::Http(e.to_string()))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, BackendError> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| BackendError::Http(format!("tls config: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// A pooled plain-HTTP client (the external auth service is usually a sidecar or in-cluster).
#[derive(Debug, Clone)]
pub struct PooledClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for PooledClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PooledClient {
    /// A client keeping idle connections for 30 s.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { client }
    }

    /// Sends `req` and reads at most `max_body` bytes of the answer, all within `timeout`.
    pub async fn request(
        &self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response<Bytes>, BackendError> {
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| BackendError::Http(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| BackendError::Http(format!("reading body: {e}")))?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::Timeout(timeout)),
        }
    }
}
