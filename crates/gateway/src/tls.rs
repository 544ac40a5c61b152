//! Server TLS: certificates from PEM files, one chosen per handshake by the SNI name.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sekisho_config::{CertKey, ConfigError, ListenerTls};

/// Builds the rustls server config for a listener: ALPN `h2` then `http/1.1`.
pub fn server_config(tls: &ListenerTls) -> Result<Arc<rustls::ServerConfig>, Vec<ConfigError>> {
    let mut certs = Vec::new();
    let mut errors = Vec::new();
    for ck in &tls.certs {
        match load_cert_key(ck) {
            Ok(c) => certs.push(c),
            Err(message) => errors.push(ConfigError::at(&ck.at, message)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let provider = Arc::new(ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            vec![ConfigError::at(
                &Default::default(),
                format!("TLS setup: {e}"),
            )]
        })?;
    let mut config = builder
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

struct LoadedCert {
    key: Arc<CertifiedKey>,
}

fn load_cert_key(ck: &CertKey) -> Result<LoadedCert, String> {
    let chain = read_certs(&ck.cert)?;
    let key = PrivateKeyDer::from_pem_file(&ck.key)
        .map_err(|e| format!("reading private key {}: {e}", ck.key.display()))?;
    let signing = ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key {}: {e}", ck.key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "{} does not match {}: {e}",
            ck.key.display(),
            ck.cert.display()
        )
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
    })
}

/// Reads a PEM certificate chain; an empty file is an error.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading certificate {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("parsing certificate {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(chain)
}

/// Picks the first certificate valid for the SNI name; the first certificate when the
/// client sent no name or none matches (like nginx's default server).
#[derive(Debug)]
struct SniResolver {
    certs: Vec<LoadedCert>,
}

impl std::fmt::Debug for LoadedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadedCert")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let first = self.certs.first().map(|c| c.key.clone());
        let Some(name) = hello.server_name() else {
            return first;
        };
        let Ok(server_name) = ServerName::try_from(name) else {
            return first;
        };
        for cert in &self.certs {
            let Some(leaf) = cert.key.cert.first() else {
                continue;
            };
            let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
                continue;
            };
            if ee.verify_is_valid_for_subject_name(&server_name).is_ok() {
                return Some(cert.key.clone());
            }
        }
        first
    }
}
