//! TLS to upstreams: private CA, SNI, ALPN (`auto`), client certificates.

use std::path::PathBuf;
use std::sync::Arc;

use http::Version;
use parking_lot::Mutex;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sekisho_config::{Protocol, UpstreamTls};
use sekisho_proxy::{Cluster, NoResolver, UpstreamErrorKind};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::*;

struct Pki {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");

        let server_key = KeyPair::generate().expect("key");
        let server_cert = CertificateParams::new(vec!["upstream.test".to_string()])
            .expect("params")
            .signed_by(&server_key, &*ca)
            .expect("server cert");

        let client_key = KeyPair::generate().expect("key");
        let client_cert = CertificateParams::new(vec!["client.test".to_string()])
            .expect("params")
            .signed_by(&client_key, &*ca)
            .expect("client cert");

        std::fs::write(dir.path().join("ca.pem"), ca.as_ref().pem()).expect("write");
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).expect("write");
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).expect("write");
        Self {
            ca_der: ca.as_ref().der().clone(),
            server_chain: vec![server_cert.der().clone()],
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What the TLS server saw of a client.
#[derive(Default, Debug)]
struct Seen {
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    client_cert: bool,
}

/// A TLS server offering `alpn`, requiring a client certificate from the CA, and
/// speaking whatever ALPN picked.
async fn tls_server(pki: &Pki, alpn: &[&[u8]]) -> (std::net::SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone()).expect("ca");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("verifier");
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .expect("server config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let conn = tls.get_ref().1;
                let s = Seen {
                    sni: conn.server_name().map(str::to_owned),
                    alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                    client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                };
                let h2 = s.alpn.as_deref() == Some(b"h2");
                seen.lock().push(s);
                let serve = if h2 { Serve::H2 } else { Serve::H1 };
                serve_conn(hyper_util::rt::TokioIo::new(tls), serve, ok_handler()).await;
            });
        }
    });
    (addr, seen)
}

fn tls_cluster(
    pki: &Pki,
    addr: std::net::SocketAddr,
    protocol: Protocol,
    sni: &str,
) -> sekisho_config::Cluster {
    let mut cfg = cluster(vec![endpoint(addr, 1)], protocol);
    cfg.tls = Some(UpstreamTls {
        sni: Some(sni.into()),
        ca: Some(pki.path("ca.pem")),
        extra_ca: None,
        system_roots: false,
        client_cert: Some((pki.path("client.pem"), pki.path("client.key"))),
    });
    cfg
}

#[tokio::test]
async fn auto_picks_h2_with_sni_and_client_cert() {
    let pki = Pki::new();
    let (addr, seen) = tls_server(&pki, &[b"h2", b"http/1.1"]).await;
    let cluster = Cluster::new(
        &tls_cluster(&pki, addr, Protocol::Auto, "upstream.test"),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    for _ in 0..3 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_eq!(resp.response.version(), Version::HTTP_2);
        assert_eq!(body_string(resp.response).await, "ok");
    }
    let seen = seen.lock();
    assert_eq!(seen.len(), 1, "one shared h2 connection: {seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some("upstream.test"));
    assert_eq!(seen[0].alpn.as_deref(), Some(&b"h2"[..]));
    assert!(seen[0].client_cert, "client certificate presented");
}

#[tokio::test]
async fn auto_falls_back_to_http1() {
    let pki = Pki::new();
    let (addr, seen) = tls_server(&pki, &[b"http/1.1"]).await;
    let cluster = Cluster::new(
        &tls_cluster(&pki, addr, Protocol::Auto, "upstream.test"),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    for _ in 0..3 {
        let resp = cluster.send(get("/")).await.expect("send");
        assert_eq!(resp.response.version(), Version::HTTP_11);
        assert_eq!(body_string(resp.response).await, "ok");
    }
    assert_eq!(seen.lock().len(), 1, "the HTTP/1.1 connection is reused");
}

#[tokio::test]
async fn wrong_server_name_is_a_tls_error() {
    let pki = Pki::new();
    let (addr, _seen) = tls_server(&pki, &[b"h2"]).await;
    let cluster = Cluster::new(
        &tls_cluster(&pki, addr, Protocol::H2, "other.test"),
        Arc::new(NoResolver),
    )
    .expect("cluster");
    let err = cluster.send(get("/")).await.expect_err("must fail");
    assert_eq!(err.kind(), UpstreamErrorKind::Tls, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn unreadable_client_key_names_the_file() {
    let pki = Pki::new();
    let mut cfg = tls_cluster(
        &pki,
        "127.0.0.1:1".parse().expect("addr"),
        Protocol::H2,
        "upstream.test",
    );
    if let Some(t) = cfg.tls.as_mut() {
        t.client_cert = Some((pki.path("client.pem"), pki.path("missing.key")));
    }
    let err = Cluster::new(&cfg, Arc::new(NoResolver)).expect_err("must fail");
    assert!(err.to_string().contains("missing.key"), "{err}");
}
