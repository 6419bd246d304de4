//! The cloud under test of the conformance tier, read the same way by its three parts (client,
//! `doctor`, controller): credentials from a cloud.conf (`OLBC_CONFORMANCE_CLOUD_CONF`), a
//! clouds.yaml entry (`OS_CLOUD`) or the `OS_*` variables of an openrc, the subnet and floating
//! network to use, and the unique per-run prefix every object is named with. Also the sweep
//! that deletes what carries a prefix, and only that: on a real cloud nothing else may be
//! touched. Shared by path (`#[path]`) between the test crates; it must not know what a test
//! expects. docs/conformance.md documents every variable.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use model::config::{
    clouds_yaml_candidates, fill_from_clouds, CloudConfig, CloudsYaml, EndpointInterface,
    GlobalConfig, MetadataConfig, Secret,
};
use openstack::{LbaasV2, ListQuery, Neutron, Session, SessionOptions};

/// What every run must be told before it may create anything.
pub const HOW_TO: &str =
    "no conformance target: give credentials (OLBC_CONFORMANCE_CLOUD_CONF=cloud.conf, \
     or OS_CLOUD with a clouds.yaml, or the OS_* variables of an openrc) and \
     OLBC_CONFORMANCE_SUBNET_ID; see docs/conformance.md, or run scripts/conformance.sh --rig";

/// The cloud under test.
#[derive(Clone, Debug)]
pub struct Target {
    pub global: GlobalConfig,
    /// Where the credentials came from, for the test output (never the secret itself).
    pub source: String,
    /// Subnet of the VIPs and of the nodes' addresses.
    pub subnet_id: String,
    /// External network for floating IPs; `None` skips the floating-IP checks.
    pub floating_network_id: Option<String>,
    /// Every object of this run carries it in its name or description.
    pub prefix: String,
}

fn var(k: &str) -> Option<String> {
    std::env::var(k)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A prefix the sweep can match without touching anything else: long enough and made only of
/// characters that are valid in cluster names and Neutron names.
fn check_prefix(p: &str) -> Result<(), String> {
    let ok = p.len() >= 8
        && p.len() <= 40
        && p.starts_with("olbc")
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "OLBC_CONFORMANCE_PREFIX={p:?}: it must start with \"olbc\", be 8-40 characters of \
             a-z, 0-9 and '-'"
        ))
    }
}

/// One prefix per test process when none is given, so all tests of a run share it.
fn generated_prefix() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX
        .get_or_init(|| {
            // std's per-process random hasher keys, so no crate is needed where this is used.
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            format!("olbc-conf-{:08x}", h.finish() as u32)
        })
        .clone()
}

/// The `[Global]` of the `OS_*` variables an openrc exports.
fn global_from_os_env() -> GlobalConfig {
    let endpoint_interface = match var("OS_INTERFACE").or_else(|| var("OS_ENDPOINT_TYPE")) {
        Some(i) if i.starts_with("internal") => EndpointInterface::Internal,
        Some(i) if i.starts_with("admin") => EndpointInterface::Admin,
        _ => EndpointInterface::Public,
    };
    GlobalConfig {
        auth_url: var("OS_AUTH_URL"),
        username: var("OS_USERNAME"),
        user_id: var("OS_USER_ID"),
        password: var("OS_PASSWORD").map(Secret::new),
        project_id: var("OS_PROJECT_ID").or_else(|| var("OS_TENANT_ID")),
        project_name: var("OS_PROJECT_NAME").or_else(|| var("OS_TENANT_NAME")),
        project_domain_id: var("OS_PROJECT_DOMAIN_ID"),
        project_domain_name: var("OS_PROJECT_DOMAIN_NAME"),
        user_domain_id: var("OS_USER_DOMAIN_ID"),
        user_domain_name: var("OS_USER_DOMAIN_NAME"),
        region: var("OS_REGION_NAME"),
        ca_file: var("OS_CACERT"),
        cert_file: var("OS_CERT"),
        key_file: var("OS_KEY"),
        tls_insecure: var("OS_INSECURE").is_some_and(|v| v == "true" || v == "1"),
        endpoint_interface,
        application_credential_id: var("OS_APPLICATION_CREDENTIAL_ID"),
        application_credential_name: var("OS_APPLICATION_CREDENTIAL_NAME"),
        application_credential_secret: var("OS_APPLICATION_CREDENTIAL_SECRET").map(Secret::new),
        ..Default::default()
    }
}

fn global_from_clouds(cloud: &str) -> Result<(GlobalConfig, String), String> {
    let env_file = var("OS_CLIENT_CONFIG_FILE");
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates = clouds_yaml_candidates(None, env_file.as_deref(), home.as_deref());
    let file = candidates
        .iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("OS_CLOUD={cloud} but no clouds.yaml in {candidates:?}"))?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let yaml = CloudsYaml::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut global = GlobalConfig::default();
    fill_from_clouds(&mut global, &yaml, cloud).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((
        global,
        format!("clouds.yaml {} cloud {cloud}", file.display()),
    ))
}

impl Target {
    /// The target described by the environment; `Err` says what is missing.
    pub fn from_env() -> Result<Target, String> {
        let mut subnet_id = var("OLBC_CONFORMANCE_SUBNET_ID");
        let mut floating_network_id = var("OLBC_CONFORMANCE_FLOATING_NETWORK_ID");
        let (global, source) = if let Some(path) = var("OLBC_CONFORMANCE_CLOUD_CONF") {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            let (config, _) = CloudConfig::parse(&text).map_err(|e| format!("{path}: {e}"))?;
            let mut global = config.global;
            if global.use_clouds || global.cloud.is_some() {
                let cloud = global
                    .cloud
                    .clone()
                    .or_else(|| var("OS_CLOUD"))
                    .ok_or(format!("{path}: use-clouds without a cloud name"))?;
                let (filled, _) = global_from_clouds(&cloud)?;
                global = GlobalConfig {
                    use_clouds: false,
                    cloud: None,
                    ..filled
                };
            }
            let placement = &config.load_balancer.placement;
            subnet_id = subnet_id.or_else(|| placement.subnet_id.clone());
            floating_network_id =
                floating_network_id.or_else(|| placement.floating_network_id.clone());
            (global, format!("cloud.conf {path}"))
        } else if let Some(cloud) = var("OS_CLOUD") {
            global_from_clouds(&cloud)?
        } else if var("OS_AUTH_URL").is_some() {
            (global_from_os_env(), "OS_* environment".to_string())
        } else {
            return Err(HOW_TO.to_string());
        };
        let subnet_id = subnet_id.ok_or_else(|| {
            format!("{HOW_TO} (credentials found in {source}, but no OLBC_CONFORMANCE_SUBNET_ID)")
        })?;
        let prefix = var("OLBC_CONFORMANCE_PREFIX").unwrap_or_else(generated_prefix);
        check_prefix(&prefix)?;
        Ok(Target {
            global,
            source,
            subnet_id,
            floating_network_id,
            prefix,
        })
    }

    /// The target, or a failing test that says how to configure one. Tests of the tier are
    /// `#[ignore]`d, so this runs only when someone asked for the tier with `--ignored`.
    pub fn require() -> Target {
        match Target::from_env() {
            Ok(t) => {
                println!(
                    "conformance target: {} (subnet {}, floating network {}, prefix {})",
                    t.source,
                    t.subnet_id,
                    t.floating_network_id.as_deref().unwrap_or("none"),
                    t.prefix
                );
                t
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// A name for one test's objects: the run prefix plus a short tag.
    pub fn tagged(&self, tag: &str) -> String {
        format!("{}-{tag}", self.prefix)
    }

    pub async fn session(&self) -> Session {
        Session::new(
            &self.global,
            &MetadataConfig::default(),
            SessionOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot authenticate to the target ({}): {e}", self.source))
    }

    /// `[Global]` in cloud.conf syntax, every value quoted (gcfg escapes), so the product reads
    /// exactly the credentials the tests use.
    pub fn global_section(&self) -> String {
        render_global(&self.global)
    }

    /// A complete cloud.conf for the product: `[Global]`, then `[LoadBalancer]` with the
    /// target's subnet and floating network and the `extra` lines.
    pub fn cloud_conf(&self, extra: &str) -> String {
        let mut lb = format!("[LoadBalancer]\nsubnet-id = {}\n", quote(&self.subnet_id));
        if let Some(f) = &self.floating_network_id {
            lb.push_str(&format!("floating-network-id = {}\n", quote(f)));
        }
        lb.push_str(extra);
        format!("{}\n{lb}", self.global_section())
    }

    /// The same target with a secret that cannot be right (for the broken-credentials checks).
    pub fn with_wrong_secret(&self) -> Target {
        let mut t = self.clone();
        if t.global.application_credential_secret.is_some() {
            t.global.application_credential_secret = Some(Secret::new("olbc-not-the-secret"));
        } else {
            t.global.password = Some(Secret::new("olbc-not-the-password"));
        }
        t
    }

    /// The secrets that must never appear in any output. Short ones are left out: a test
    /// cloud's password may be an ordinary word ("secret" on the rig) that the output contains
    /// legitimately; [`Target::with_wrong_secret`]'s long, unique secret still checks for leaks.
    pub fn secrets(&self) -> Vec<String> {
        [
            self.global.password.as_ref(),
            self.global.application_credential_secret.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().to_string())
        .filter(|s| s.len() >= 10)
        .collect()
    }
}

fn quote(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render_global(g: &GlobalConfig) -> String {
    let mut out = String::from("[Global]\n");
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            out.push_str(&format!("{k} = {}\n", quote(v)));
        }
    };
    put("auth-url", g.auth_url.as_deref());
    put("username", g.username.as_deref());
    put("user-id", g.user_id.as_deref());
    put("password", g.password.as_ref().map(Secret::expose));
    put("project-id", g.project_id.as_deref());
    put("project-name", g.project_name.as_deref());
    put("project-domain-id", g.project_domain_id.as_deref());
    put("project-domain-name", g.project_domain_name.as_deref());
    put("domain-id", g.domain_id.as_deref());
    put("domain-name", g.domain_name.as_deref());
    put("user-domain-id", g.user_domain_id.as_deref());
    put("user-domain-name", g.user_domain_name.as_deref());
    put("region", g.region.as_deref());
    put("ca-file", g.ca_file.as_deref());
    put("cert-file", g.cert_file.as_deref());
    put("key-file", g.key_file.as_deref());
    put(
        "application-credential-id",
        g.application_credential_id.as_deref(),
    );
    put(
        "application-credential-name",
        g.application_credential_name.as_deref(),
    );
    put(
        "application-credential-secret",
        g.application_credential_secret.as_ref().map(Secret::expose),
    );
    put("trust-id", g.trust_id.as_deref());
    let interface = match g.endpoint_interface {
        EndpointInterface::Public => None,
        EndpointInterface::Internal => Some("internal"),
        EndpointInterface::Admin => Some("admin"),
    };
    put("os-endpoint-type", interface);
    if g.tls_insecure {
        out.push_str("tls-insecure = true\n");
    }
    out
}

/// Deletes every load balancer (cascade), floating IP, port and security group whose name or
/// description contains `marker`, and waits (bounded) until the load balancers are gone. Returns
/// what it deleted, for the test output. `marker` is a run prefix or one test's tag, so nothing
/// of anybody else matches.
pub async fn sweep(lbaas: &LbaasV2, neutron: &Neutron, marker: &str) -> Vec<String> {
    assert!(marker.starts_with("olbc") && marker.len() >= 8, "{marker}");
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for lb in lbaas
        .list_loadbalancers(&ListQuery::new())
        .await
        .unwrap_or_default()
    {
        if (lb.name.contains(marker) || lb.description.contains(marker))
            && lb.provisioning_status != "DELETED"
        {
            // A locked LB refuses the delete; it is retried below until it is unlocked.
            let _ = lbaas.delete_loadbalancer(&lb.id, true).await;
            done.push(format!("LB {} {}", lb.id, lb.name));
            pending.push(lb.id);
        }
    }
    for _ in 0..180 {
        if pending.is_empty() {
            break;
        }
        let mut still = Vec::new();
        for id in pending {
            match lbaas.get_loadbalancer(&id).await {
                Err(e) if e.is_not_found() => {}
                Ok(lb) if lb.provisioning_status == "DELETED" => {}
                Ok(lb) => {
                    if !lb.is_locked() {
                        let _ = lbaas.delete_loadbalancer(&id, true).await;
                    }
                    still.push(id);
                }
                Err(_) => still.push(id),
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for f in neutron
        .list_floating_ips(&ListQuery::new())
        .await
        .unwrap_or_default()
    {
        if f.description.contains(marker) {
            let _ = neutron.delete_floating_ip(&f.id).await;
            done.push(format!("FIP {} {}", f.id, f.floating_ip_address));
        }
    }
    for p in neutron
        .list_ports(&ListQuery::new())
        .await
        .unwrap_or_default()
    {
        if p.name.contains(marker) {
            let _ = neutron.delete_port(&p.id).await;
            done.push(format!("port {} {}", p.id, p.name));
        }
    }
    for g in neutron
        .list_security_groups(&ListQuery::new())
        .await
        .unwrap_or_default()
    {
        if g.name.contains(marker) {
            let _ = neutron.delete_security_group(&g.id).await;
            done.push(format!("security group {} {}", g.id, g.name));
        }
    }
    done
}
