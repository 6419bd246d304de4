//! TLS: a custom root from `ca-file` (test CA generated with rcgen), a wrong CA, `tls-insecure`,
//! client certificates (`cert-file` / `key-file`) and unusable files.

mod common;

use std::io::Write;

use common::{fast_options, make_pki, start_tls};
use model::config::MetadataConfig;
use openstack::{Error, ListQuery, Neutron, Session};
use serde_json::json;

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(content.as_bytes()).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test]
async fn ca_file_trusts_the_test_ca() {
    let pki = make_pki();
    let m = start_tls(&pki, false).await;
    m.default_reply(
        "GET /v2.0/networks",
        common::Reply::json(200, json!({"networks": [{"id": "n"}]})),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut g = m.global();
    g.ca_file = Some(write(&dir, "ca.pem", &pki.ca_pem));
    let s = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap();
    let nets = Neutron::new(&s)
        .await
        .unwrap()
        .list_networks(&ListQuery::new())
        .await
        .unwrap();
    assert_eq!(nets.len(), 1);
}

#[tokio::test]
async fn wrong_ca_is_rejected_with_a_certificate_error() {
    let pki = make_pki();
    let other = make_pki();
    let m = start_tls(&pki, false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut g = m.global();
    g.ca_file = Some(write(&dir, "other-ca.pem", &other.ca_pem));
    let err = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Without ca-file the built-in roots do not know the test CA either.
    let err = Session::new(&m.global(), &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn tls_insecure_skips_verification() {
    let pki = make_pki();
    let m = start_tls(&pki, false).await;
    let mut g = m.global();
    g.tls_insecure = true;
    Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap();
}

#[tokio::test]
async fn client_certificate_from_cert_and_key_files() {
    let pki = make_pki();
    let m = start_tls(&pki, true).await;
    let dir = tempfile::tempdir().unwrap();
    let mut g = m.global();
    g.ca_file = Some(write(&dir, "ca.pem", &pki.ca_pem));
    let err = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. }),
        "no client certificate: {err:?}"
    );

    g.cert_file = Some(write(&dir, "client.pem", &pki.client_cert_pem));
    g.key_file = Some(write(&dir, "client.key", &pki.client_key_pem));
    Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap();
}

#[tokio::test]
async fn unusable_tls_files_are_configuration_errors() {
    let pki = make_pki();
    let m = start_tls(&pki, false).await;
    let dir = tempfile::tempdir().unwrap();

    let mut g = m.global();
    g.ca_file = Some(write(&dir, "garbage.pem", "not a certificate"));
    let e = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("ca-file")),
        "{e:?}"
    );

    let mut g = m.global();
    g.ca_file = Some(
        dir.path()
            .join("missing.pem")
            .to_string_lossy()
            .into_owned(),
    );
    let e = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("cannot read")),
        "{e:?}"
    );

    let mut g = m.global();
    g.cert_file = Some(write(&dir, "c.pem", &pki.client_cert_pem));
    let e = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("together")),
        "{e:?}"
    );

    let mut g = m.global();
    g.cert_file = Some(write(&dir, "c2.pem", &pki.client_cert_pem));
    g.key_file = Some(write(&dir, "k2.pem", &pki.client_cert_pem));
    let e = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("key-file")),
        "{e:?}"
    );
}
