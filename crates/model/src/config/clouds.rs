//! clouds.yaml (SPEC §2.2): the openstacksdk/OSC file format, the candidate paths in search
//! order, and filling the gaps cloud.conf left in `[Global]`. Pure: the caller reads the
//! file and checks which candidate exists; this module must not touch the filesystem or the
//! environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cloudconf::parse_interface;
use super::{ConfigError, GlobalConfig, Secret};

/// The whole file: `clouds: {name: {...}}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CloudsYaml {
    #[serde(default)]
    pub clouds: BTreeMap<String, CloudEntry>,
}

/// One cloud. Fields openstacksdk knows but the controller does not need are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CloudEntry {
    #[serde(default)]
    pub auth: CloudAuth,
    pub auth_type: Option<String>,
    pub region_name: Option<String>,
    /// Older files list regions instead; the first one is used when region_name is absent.
    #[serde(default)]
    pub regions: Vec<RegionEntry>,
    pub interface: Option<String>,
    /// The pre-`interface` spelling some files still carry.
    pub endpoint_type: Option<String>,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub verify: Option<bool>,
}

/// `regions:` entries are either a name or `{name: ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RegionEntry {
    Name(String),
    Map { name: String },
}

/// `auth:` of a cloud. Secrets are `Secret`, so the whole struct is safe to Debug.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CloudAuth {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<Secret>,
    #[serde(alias = "tenant_id")]
    pub project_id: Option<String>,
    #[serde(alias = "tenant_name")]
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<Secret>,
    pub trust_id: Option<String>,
}

impl CloudsYaml {
    pub fn parse(text: &str) -> Result<CloudsYaml, ConfigError> {
        // serde_yaml's messages quote only positions and field names, never values, so a
        // malformed password cannot leak through the error.
        serde_yaml::from_str(text)
            .map_err(|e| ConfigError::Clouds(format!("not a valid clouds.yaml: {e}")))
    }
}

/// Where clouds.yaml is looked for, in order (SPEC §2.2): `clouds-file`,
/// `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`, `~/.config/openstack/clouds.yaml`,
/// `/etc/openstack/clouds.yaml`. The caller uses the first that exists.
pub fn clouds_yaml_candidates(
    clouds_file: Option<&str>,
    os_client_config_file: Option<&str>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in [clouds_file, os_client_config_file].into_iter().flatten() {
        if !p.is_empty() {
            out.push(PathBuf::from(p));
        }
    }
    out.push(PathBuf::from("clouds.yaml"));
    if let Some(home) = home {
        out.push(home.join(".config").join("openstack").join("clouds.yaml"));
    }
    out.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    out
}

/// Copy from clouds.yaml's `cloud_name` whatever `[Global]` left empty; returns the cloud.conf
/// key names that were filled (for `doctor`'s evidence). `os-endpoint-type` counts as empty
/// while it is `public` (its default) and `tls-insecure` while it is false.
pub fn fill_from_clouds(
    global: &mut GlobalConfig,
    clouds: &CloudsYaml,
    cloud_name: &str,
) -> Result<Vec<&'static str>, ConfigError> {
    let Some(cloud) = clouds.clouds.get(cloud_name) else {
        let known: Vec<&str> = clouds.clouds.keys().map(String::as_str).collect();
        return Err(ConfigError::Clouds(format!(
            "no cloud named {cloud_name:?}; the file defines: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let auth_type = cloud
        .auth_type
        .as_deref()
        .unwrap_or("password")
        .to_ascii_lowercase();
    let use_password = match auth_type.as_str() {
        "password" | "v3password" => true,
        "v3applicationcredential" | "applicationcredential" => false,
        other => {
            return Err(ConfigError::Clouds(format!(
                "cloud {cloud_name:?}: auth_type {other:?} is not supported; accepted: password, \
                 v3password, v3applicationcredential"
            )))
        }
    };
    let mut filled = Vec::new();
    let a = &cloud.auth;
    fill(&mut global.auth_url, &a.auth_url, "auth-url", &mut filled);
    if use_password {
        fill(&mut global.username, &a.username, "username", &mut filled);
        fill(&mut global.user_id, &a.user_id, "user-id", &mut filled);
        fill(&mut global.password, &a.password, "password", &mut filled);
        fill(&mut global.trust_id, &a.trust_id, "trust-id", &mut filled);
        fill(
            &mut global.project_id,
            &a.project_id,
            "project-id",
            &mut filled,
        );
        fill(
            &mut global.project_name,
            &a.project_name,
            "project-name",
            &mut filled,
        );
        fill(
            &mut global.project_domain_id,
            &a.project_domain_id,
            "project-domain-id",
            &mut filled,
        );
        fill(
            &mut global.project_domain_name,
            &a.project_domain_name,
            "project-domain-name",
            &mut filled,
        );
        fill(
            &mut global.domain_id,
            &a.domain_id,
            "domain-id",
            &mut filled,
        );
        fill(
            &mut global.domain_name,
            &a.domain_name,
            "domain-name",
            &mut filled,
        );
    } else {
        if a.application_credential_id.is_none() && a.application_credential_name.is_none() {
            return Err(ConfigError::Clouds(format!(
                "cloud {cloud_name:?}: auth_type v3applicationcredential needs auth.application_credential_id \
                 or auth.application_credential_name"
            )));
        }
        fill(
            &mut global.application_credential_id,
            &a.application_credential_id,
            "application-credential-id",
            &mut filled,
        );
        fill(
            &mut global.application_credential_name,
            &a.application_credential_name,
            "application-credential-name",
            &mut filled,
        );
        fill(
            &mut global.application_credential_secret,
            &a.application_credential_secret,
            "application-credential-secret",
            &mut filled,
        );
        // A credential named (not by id) is looked up under its owner.
        fill(&mut global.username, &a.username, "username", &mut filled);
        fill(&mut global.user_id, &a.user_id, "user-id", &mut filled);
    }
    fill(
        &mut global.user_domain_id,
        &a.user_domain_id,
        "user-domain-id",
        &mut filled,
    );
    fill(
        &mut global.user_domain_name,
        &a.user_domain_name,
        "user-domain-name",
        &mut filled,
    );
    let region = cloud.region_name.clone().or_else(|| {
        cloud.regions.first().map(|r| match r {
            RegionEntry::Name(n) | RegionEntry::Map { name: n } => n.clone(),
        })
    });
    fill(&mut global.region, &region, "region", &mut filled);
    fill(&mut global.ca_file, &cloud.cacert, "ca-file", &mut filled);
    if global.cert_file.is_none() && global.key_file.is_none() {
        fill(&mut global.cert_file, &cloud.cert, "cert-file", &mut filled);
        fill(&mut global.key_file, &cloud.key, "key-file", &mut filled);
    }
    if global.endpoint_interface == super::EndpointInterface::Public {
        if let Some(iface) = cloud
            .interface
            .as_deref()
            .or(cloud.endpoint_type.as_deref())
        {
            let parsed = parse_interface(iface).ok_or_else(|| {
                ConfigError::Clouds(format!(
                    "cloud {cloud_name:?}: interface {iface:?} is invalid; accepted: public, internal, admin"
                ))
            })?;
            if parsed != super::EndpointInterface::Public {
                global.endpoint_interface = parsed;
                filled.push("os-endpoint-type");
            }
        }
    }
    if !global.tls_insecure && cloud.verify == Some(false) {
        global.tls_insecure = true;
        filled.push("tls-insecure");
    }
    Ok(filled)
}

fn fill<T: Clone>(
    slot: &mut Option<T>,
    from: &Option<T>,
    key: &'static str,
    filled: &mut Vec<&'static str>,
) {
    if slot.is_none() {
        if let Some(v) = from {
            *slot = Some(v.clone());
            filled.push(key);
        }
    }
}
