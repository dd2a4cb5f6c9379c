//! TLS on the listener (rustls): the certificate and key come from files and are reloaded on
//! SIGHUP without dropping connections; a failed reload keeps the old pair. With a client CA,
//! a verified client certificate identifies a `Keyward::Service` by its subject CN.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use keyward_api::auth::ClientCertificate;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the listener's certificate and key live.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates for client certificates (mutual TLS); a verified client
    /// certificate's subject CN names a `Keyward::Service` principal.
    pub client_ca_file: Option<PathBuf>,
}

/// Serves the current certificate; [`CertStore::reload`] swaps it.
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads the pair; an unreadable or mismatched pair refuses to start.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = certified_key(&files, &provider)?;
        Ok(Arc::new(Self { files, provider, current: RwLock::new(Arc::new(current)) }))
    }

    /// Re-reads the files; on error the old pair stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = certified_key(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    /// The rustls configuration for the listener.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, String> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.files.client_ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for ca in read_certs(path)? {
                    roots.add(ca).map_err(|e| format!("client CA `{}`: {e}", path.display()))?;
                }
                // Bearer tokens still work: a client certificate is optional, but verified
                // when presented.
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("client CA `{}`: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs = read_certs(&files.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| format!("TLS key `{}`: {e}", files.key_file.display()))?;
    let certified = CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("TLS certificate and key do not form a pair: {e}"))?;
    Ok(certified)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("TLS certificate `{}`: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS certificate `{}`: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("TLS certificate `{}` holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Records the service named by a verified client certificate on the connection.
pub fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() else { return };
    let (_, session) = tls.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(<[_]>::first) else { return };
    match common_name(leaf.as_ref()) {
        Some(service) => {
            ext.insert(ClientCertificate { service });
        }
        None => tracing::warn!("client certificate without a usable subject CN; ignored"),
    }
}

/// The subject CN of a DER certificate, when it is 1-256 printable characters.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_owned();
    let usable = !cn.is_empty() && cn.len() <= 256 && cn.chars().all(|c| !c.is_control() && c != '"' && c != '\\');
    usable.then_some(cn)
}
