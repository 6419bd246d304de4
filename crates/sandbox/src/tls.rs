//! HTTPS for the sandbox: a CA generated at start (its PEM written to disk so clients can
//! trust it through `ca-file` / `OS_CACERT`) and a server certificate for 127.0.0.1 and
//! localhost signed by it. It must not know what is served over the connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::errors::SandboxError;

/// The generated CA (on disk) and the rustls configuration that serves with its leaf cert.
pub struct TlsMaterial {
    pub ca_pem_path: PathBuf,
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn tls_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Tls(e.to_string())
}

/// Generates the CA and the server certificate and writes `ca.pem` into `dir`.
pub fn generate(dir: &Path) -> Result<TlsMaterial, SandboxError> {
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "openstack-lb-controller sandbox CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(tls_err)?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(tls_err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(tls_err)?;

    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let ca_pem = ca_cert.pem();
    let ca_pem_path = dir.join("ca.pem");
    std::fs::write(&ca_pem_path, &ca_pem).map_err(|source| SandboxError::Io {
        path: ca_pem_path.display().to_string(),
        source,
    })?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem_path,
        ca_pem,
        server_config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_ca_file_and_server_config() {
        let dir = std::env::temp_dir().join(format!("sandbox-tls-{}", uuid::Uuid::new_v4()));
        let m = generate(&dir).unwrap();
        assert!(m.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(std::fs::read_to_string(&m.ca_pem_path).unwrap(), m.ca_pem);
        let _ = std::fs::remove_dir_all(dir);
    }
}
