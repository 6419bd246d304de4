//! clouds.yaml: parsing, filling only what cloud.conf left empty, auth types, and the search
//! order of candidate paths.

use std::path::{Path, PathBuf};

use model::config::{
    clouds_yaml_candidates, fill_from_clouds, CloudConfig, CloudsYaml, ConfigError, CredentialKind,
    EndpointInterface, Secret,
};

fn clouds() -> CloudsYaml {
    CloudsYaml::parse(include_str!("fixtures/clouds/clouds.yaml")).unwrap()
}

#[test]
fn password_cloud_fills_an_empty_global() {
    let (mut cfg, _) =
        CloudConfig::parse("[Global]\nuse-clouds = true\ncloud = openstack\n").unwrap();
    let filled = fill_from_clouds(&mut cfg.global, &clouds(), "openstack").unwrap();
    let g = &cfg.global;
    assert_eq!(
        g.auth_url.as_deref(),
        Some("https://keystone.example.com:5000/v3")
    );
    assert_eq!(g.username.as_deref(), Some("demo"));
    assert_eq!(g.password.as_ref().map(Secret::expose), Some("clouds-pa55"));
    assert_eq!(g.project_name.as_deref(), Some("demo"));
    assert_eq!(g.project_domain_name.as_deref(), Some("Default"));
    assert_eq!(g.user_domain_name.as_deref(), Some("Default"));
    assert_eq!(g.region.as_deref(), Some("RegionOne"));
    assert_eq!(g.credential_kind(), Ok(CredentialKind::Password));
    assert!(
        filled.contains(&"password") && filled.contains(&"region"),
        "{filled:?}"
    );
    assert!(
        !filled.contains(&"os-endpoint-type"),
        "public is the default; nothing changes"
    );
}

#[test]
fn cloud_conf_values_win() {
    let (mut cfg, _) = CloudConfig::parse(
        "[Global]\nuse-clouds = true\nregion = Mine\nusername = me\npassword = mine\nos-endpoint-type = admin\n",
    )
    .unwrap();
    let filled = fill_from_clouds(&mut cfg.global, &clouds(), "openstack").unwrap();
    assert_eq!(cfg.global.region.as_deref(), Some("Mine"));
    assert_eq!(cfg.global.username.as_deref(), Some("me"));
    assert_eq!(
        cfg.global.password.as_ref().map(Secret::expose),
        Some("mine")
    );
    assert_eq!(cfg.global.endpoint_interface, EndpointInterface::Admin);
    assert!(
        !filled.contains(&"region") && !filled.contains(&"password"),
        "{filled:?}"
    );
    assert!(filled.contains(&"auth-url"));
}

#[test]
fn application_credential_by_id_with_interface_and_cacert() {
    let (mut cfg, _) = CloudConfig::parse("").unwrap();
    fill_from_clouds(&mut cfg.global, &clouds(), "appcred").unwrap();
    let g = &cfg.global;
    assert_eq!(
        g.application_credential_id.as_deref(),
        Some("21bd3a1f0b8c4e0e9d2f7c6b5a493827")
    );
    assert_eq!(
        g.application_credential_secret.as_ref().map(Secret::expose),
        Some("appcred-s3cret")
    );
    assert_eq!(g.endpoint_interface, EndpointInterface::Internal);
    assert_eq!(g.region.as_deref(), Some("RegionTwo"));
    assert_eq!(g.ca_file.as_deref(), Some("/etc/ssl/cloud-ca.pem"));
    assert!(!g.tls_insecure);
    assert_eq!(
        g.credential_kind(),
        Ok(CredentialKind::ApplicationCredentialId)
    );
}

#[test]
fn application_credential_by_name_uses_regions_list() {
    let (mut cfg, _) = CloudConfig::parse("").unwrap();
    fill_from_clouds(&mut cfg.global, &clouds(), "appcred-by-name").unwrap();
    let g = &cfg.global;
    assert_eq!(g.application_credential_name.as_deref(), Some("k8s-lb"));
    assert_eq!(g.username.as_deref(), Some("demo"));
    assert_eq!(g.region.as_deref(), Some("RegionThree"));
    assert_eq!(
        g.credential_kind(),
        Ok(CredentialKind::ApplicationCredentialName)
    );
}

#[test]
fn v3password_verify_false_and_client_cert() {
    let (mut cfg, _) = CloudConfig::parse("").unwrap();
    let filled = fill_from_clouds(&mut cfg.global, &clouds(), "insecure").unwrap();
    let g = &cfg.global;
    assert!(g.tls_insecure);
    assert!(filled.contains(&"tls-insecure"));
    assert_eq!(
        g.user_id.as_deref(),
        Some("0f1e2d3c4b5a49687766554433221100")
    );
    assert_eq!(
        g.project_id.as_deref(),
        Some("00112233445566778899aabbccddeeff")
    );
    assert_eq!(g.cert_file.as_deref(), Some("/etc/ssl/client.pem"));
    assert_eq!(g.key_file.as_deref(), Some("/etc/ssl/client.key"));
    assert_eq!(g.credential_kind(), Ok(CredentialKind::Password));
}

#[test]
fn unsupported_auth_type_and_unknown_cloud_are_errors() {
    let (mut cfg, _) = CloudConfig::parse("").unwrap();
    let err = fill_from_clouds(&mut cfg.global, &clouds(), "token").unwrap_err();
    assert!(err.to_string().contains("v3token"), "{err}");
    let err = fill_from_clouds(&mut cfg.global, &clouds(), "nope").unwrap_err();
    assert!(matches!(err, ConfigError::Clouds(_)));
    let text = err.to_string();
    assert!(
        text.contains("appcred, appcred-by-name, insecure, openstack, token"),
        "{text}"
    );
    let bad = CloudsYaml::parse("clouds:\n  x:\n    interface: sideways\n").unwrap();
    assert!(fill_from_clouds(&mut cfg.global, &bad, "x")
        .unwrap_err()
        .to_string()
        .contains("sideways"));
    assert!(CloudsYaml::parse("clouds: [").is_err());
}

#[test]
fn secrets_stay_hidden_in_debug() {
    let debug = format!("{:?}", clouds());
    assert!(
        !debug.contains("clouds-pa55") && !debug.contains("appcred-s3cret"),
        "{debug}"
    );
}

#[test]
fn search_order() {
    let home = Path::new("/home/op");
    assert_eq!(
        clouds_yaml_candidates(
            Some("/etc/kubernetes/clouds.yaml"),
            Some("/tmp/c.yaml"),
            Some(home)
        ),
        vec![
            PathBuf::from("/etc/kubernetes/clouds.yaml"),
            PathBuf::from("/tmp/c.yaml"),
            PathBuf::from("clouds.yaml"),
            PathBuf::from("/home/op/.config/openstack/clouds.yaml"),
            PathBuf::from("/etc/openstack/clouds.yaml"),
        ]
    );
    assert_eq!(
        clouds_yaml_candidates(None, Some(""), None),
        vec![
            PathBuf::from("clouds.yaml"),
            PathBuf::from("/etc/openstack/clouds.yaml")
        ]
    );
}
