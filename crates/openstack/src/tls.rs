//! The reqwest client with the TLS settings of `[Global]`: a custom root (`ca-file`), a client
//! certificate (`cert-file` + `key-file`), `tls-insecure` (with a loud warning), and the
//! per-request timeout. It must not know about Keystone or any API.

use std::time::Duration;

use model::config::GlobalConfig;

use crate::error::{Error, Result};

fn set(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn read(key: &str, path: &str) -> Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .map_err(|e| Error::Config(format!("[Global] {key} = {path:?}: cannot read: {e}")))
}

pub async fn build_client(
    g: &GlobalConfig,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client> {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(60)
    } else {
        timeout
    };
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(user_agent);

    if let Some(path) = set(&g.ca_file) {
        let pem = read("ca-file", path).await?;
        let certs = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Config(format!("[Global] ca-file = {path:?}: not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "[Global] ca-file = {path:?}: no CERTIFICATE block found"
            )));
        }
        // Like OCCM: a configured CA replaces the built-in roots instead of adding to them.
        b = b.tls_built_in_root_certs(false);
        for der in certs {
            let cert = reqwest::Certificate::from_der(der.as_ref())
                .map_err(|e| Error::Config(format!("[Global] ca-file = {path:?}: {e}")))?;
            b = b.add_root_certificate(cert);
        }
    }

    match (set(&g.cert_file), set(&g.key_file)) {
        (Some(cert), Some(key)) => {
            let cert_pem = read("cert-file", cert).await?;
            let key_pem = read("key-file", key).await?;
            let has_key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| Error::Config(format!("[Global] key-file = {key:?}: not PEM: {e}")))?
                .is_some();
            if !has_key {
                return Err(Error::Config(format!(
                    "[Global] key-file = {key:?}: no private key found"
                )));
            }
            let mut both = key_pem;
            both.push(b'\n');
            both.extend_from_slice(&cert_pem);
            let id = reqwest::Identity::from_pem(&both).map_err(|e| {
                Error::Config(format!(
                    "[Global] cert-file/key-file: unusable client certificate: {e}"
                ))
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "[Global] cert-file and key-file must be set together".into(),
            ))
        }
    }

    if g.tls_insecure {
        tracing::warn!(
            "[Global] tls-insecure = true: server certificates of OpenStack endpoints are NOT verified; \
             anyone on the path can impersonate the cloud and read the credentials. Use ca-file instead."
        );
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}
