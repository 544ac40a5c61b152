//! Starting a gateway from YAML for a test.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sekisho_gateway::Gateway;

/// A gateway started from a YAML config, with its bound addresses.
pub struct Gw {
    pub gateway: Option<Gateway>,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub _dir: tempfile::TempDir,
}

impl Gw {
    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Drains and stops the gateway.
    pub async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown(Duration::from_secs(5), Duration::ZERO).await;
        }
    }
}

/// Starts a gateway on `yaml` (relative paths resolve in a temp dir). The listener named
/// `public` gives `addr`.
pub async fn start(yaml: &str) -> Gw {
    let dir = tempfile::tempdir().unwrap();
    let config = sekisho_config::parse_str(yaml, dir.path())
        .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n---\n{yaml}"));
    let gateway = Gateway::start(config)
        .await
        .unwrap_or_else(|e| panic!("gateway start: {e}"));
    let addr = gateway.listener_addr("public").expect("listener `public`");
    let admin = gateway.admin_addr();
    Gw {
        gateway: Some(gateway),
        addr,
        admin,
        _dir: dir,
    }
}

/// A GET with extra headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::default()).unwrap()
}

/// A request with a method, headers and body.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.into())).unwrap()
}

/// A one-endpoint cluster block.
pub fn cluster(name: &str, addr: SocketAddr) -> String {
    format!("  - name: {name}\n    endpoints: [\"{addr}\"]\n")
}
