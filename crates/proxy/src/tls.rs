//! Upstream TLS: one rustls `ClientConfig` per cluster, built from its `tls` section.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sekisho_config::{Protocol, UpstreamTls};

use crate::error::ClusterError;

/// Builds the client config: roots from `tls.ca` (else the bundled web PKI roots),
/// the optional client certificate, and the ALPN list `protocol` asks for.
/// Uses the ring provider explicitly, so no process-wide provider has to be installed.
pub(crate) fn client_config(
    cluster: &str,
    tls: &UpstreamTls,
    protocol: Protocol,
) -> Result<Arc<ClientConfig>, ClusterError> {
    let tls_err = |context: String| {
        move |source| ClusterError::Tls {
            cluster: cluster.to_owned(),
            context,
            source,
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err("protocol versions".into()))?;

    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for cert in load_certs(cluster, "CA certificates", ca)? {
                roots
                    .add(cert)
                    .map_err(tls_err(format!("CA certificate in {}", ca.display())))?;
            }
        }
        None if tls.system_roots => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _unparsable) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(ClusterError::NoCertificates {
                    cluster: cluster.to_owned(),
                    path: std::path::PathBuf::from("the operating system's certificate store"),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    if let Some(extra) = &tls.extra_ca {
        for cert in load_certs(cluster, "extra CA certificates", extra)? {
            roots
                .add(cert)
                .map_err(tls_err(format!("CA certificate in {}", extra.display())))?;
        }
    }
    let builder = builder.with_root_certificates(roots);

    let mut config = match &tls.client_cert {
        Some((cert, key)) => {
            let chain = load_certs(cluster, "client certificate", cert)?;
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|source| ClusterError::Pem {
                    cluster: cluster.to_owned(),
                    what: "client key",
                    path: key.clone(),
                    source,
                })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(tls_err(format!(
                    "client certificate {} with key {}",
                    cert.display(),
                    key.display()
                )))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn(protocol);
    Ok(Arc::new(config))
}

/// ALPN protocols to offer: `auto` lets the server choose, `h2` insists, http1 says so.
fn alpn(protocol: Protocol) -> Vec<Vec<u8>> {
    match protocol {
        Protocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Protocol::H2 | Protocol::H2c => vec![b"h2".to_vec()],
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
    }
}

/// All certificates in a PEM file; an empty file is an error.
fn load_certs(
    cluster: &str,
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClusterError> {
    let pem_err = |source| ClusterError::Pem {
        cluster: cluster.to_owned(),
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(ClusterError::NoCertificates {
            cluster: cluster.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The name sent in SNI and verified against the certificate: `tls.sni`, else the
/// endpoint's host (an IP literal becomes an IP-address server name).
pub(crate) fn server_name(
    cluster: &str,
    tls: &UpstreamTls,
    host: &str,
) -> Result<ServerName<'static>, ClusterError> {
    let name = tls.sni.as_deref().unwrap_or(host);
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| ClusterError::ServerName {
        cluster: cluster.to_owned(),
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tls(ca: Option<PathBuf>) -> UpstreamTls {
        UpstreamTls {
            sni: None,
            ca,
            extra_ca: None,
            system_roots: false,
            client_cert: None,
        }
    }

    #[test]
    fn missing_ca_file_is_named() {
        let err = client_config("c", &tls(Some("/nonexistent/ca.pem".into())), Protocol::H2)
            .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn empty_ca_file_is_an_error() {
        let f = tempfile::NamedTempFile::new().expect("tempfile");
        let err = client_config("c", &tls(Some(f.path().into())), Protocol::H2).expect_err("empty");
        assert!(matches!(err, ClusterError::NoCertificates { .. }), "{err}");
    }

    #[test]
    fn web_pki_roots_and_alpn() {
        let cfg = client_config("c", &tls(None), Protocol::Auto).expect("config");
        assert_eq!(cfg.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn server_names() {
        let t = tls(None);
        assert!(matches!(
            server_name("c", &t, "127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("c", &t, "[::1]"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("c", &t, "api.internal"),
            Ok(ServerName::DnsName(_))
        ));
        let t = UpstreamTls {
            sni: Some("bad name!".into()),
            ..tls(None)
        };
        assert!(server_name("c", &t, "127.0.0.1").is_err());
    }

    #[test]
    fn system_roots_load_from_the_os_store() {
        let t = UpstreamTls {
            system_roots: true,
            ..tls(None)
        };
        // scripts/test.sh installs Debian's ca-certificates: the store is never empty here.
        assert!(client_config("c", &t, Protocol::Auto).is_ok());
    }
}
