//! cloud.conf semantics (SPEC §2.1): maps the raw gcfg items onto `CloudConfig`, key by key,
//! with OCCM's names, defaults and repetition rules (single-valued keys: the last one wins;
//! multi-valued keys accumulate and a bare key resets them), then checks the combinations.
//! Pure; it must not know about files, clouds.yaml or the network.

use std::collections::HashMap;

use super::ini::{self, Item, RawEntry};
use super::values::{self, BOOL_ACCEPTED, DURATION_ACCEPTED, SELECTOR_ACCEPTED};
use super::{
    CloudConfig, ConfigError, ConfigWarning, EndpointInterface, LbMethod, LbaasGeneration,
    LoadBalancerClass, Placement, Secret,
};

/// Which section an entry belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Section {
    Global,
    LoadBalancer,
    Class(String),
    Networking,
    Metadata,
    /// Sections other cloud-provider components read (`[BlockStorage]`, `[Route]`).
    Foreign(String),
    Unknown(String),
}

impl Section {
    fn label(&self) -> String {
        match self {
            Section::Global => "Global".into(),
            Section::LoadBalancer => "LoadBalancer".into(),
            Section::Class(name) => format!("LoadBalancerClass {name:?}"),
            Section::Networking => "Networking".into(),
            Section::Metadata => "Metadata".into(),
            Section::Foreign(n) | Section::Unknown(n) => n.clone(),
        }
    }
}

/// Keys whose values are secrets: never echoed in errors or warnings.
const SECRET_KEYS: &[&str] = &[
    "password",
    "application-credential-secret",
    "trustee-password",
];

/// One entry being applied, with what an error about it needs.
struct Val<'a> {
    section: String,
    key: &'a str,
    raw: Option<&'a str>,
    line: usize,
}

impl Val<'_> {
    fn invalid(&self, accepted: &str) -> ConfigError {
        let value = if SECRET_KEYS.contains(&self.key) {
            "***".to_string()
        } else {
            crate::invalid::shown(self.raw.unwrap_or(""))
        };
        ConfigError::InvalidValue {
            line: self.line,
            section: self.section.clone(),
            key: self.key.to_string(),
            value,
            accepted: accepted.to_string(),
        }
    }

    /// A value is required for all but booleans and multi-valued keys.
    fn text(&self) -> Result<Option<String>, ConfigError> {
        match self.raw {
            None => Err(self.invalid("a value after '='")),
            Some("") => Ok(None),
            Some(s) => Ok(Some(s.to_string())),
        }
    }

    fn secret(&self) -> Result<Option<Secret>, ConfigError> {
        Ok(self.text()?.map(Secret::new))
    }

    /// `None` = the key was written with an empty value: keep the default.
    fn boolean(&self) -> Result<Option<bool>, ConfigError> {
        match self.raw {
            None => Ok(Some(true)),
            Some("") => Ok(None),
            Some(s) => values::parse_bool(s)
                .map(Some)
                .ok_or_else(|| self.invalid(BOOL_ACCEPTED)),
        }
    }

    fn duration(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        match self.text()? {
            None => Ok(None),
            Some(s) => values::parse_duration(&s)
                .map(Some)
                .ok_or_else(|| self.invalid(DURATION_ACCEPTED)),
        }
    }

    fn count(&self, min: u32, max: u32) -> Result<Option<u32>, ConfigError> {
        let accepted = format!("an integer from {min} to {max}");
        match self.text()? {
            None => Ok(None),
            Some(s) => match values::parse_u32(&s) {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.invalid(&accepted)),
            },
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_opt<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

const LB_METHOD_ACCEPTED: &str = "ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT";

pub(crate) fn parse_lb_method(s: &str) -> Option<LbMethod> {
    match s.trim().to_ascii_uppercase().as_str() {
        "ROUND_ROBIN" => Some(LbMethod::RoundRobin),
        "LEAST_CONNECTIONS" => Some(LbMethod::LeastConnections),
        "SOURCE_IP" => Some(LbMethod::SourceIp),
        "SOURCE_IP_PORT" => Some(LbMethod::SourceIpPort),
        _ => None,
    }
}

/// Raw `lb-version`/`use-octavia`, resolved into `LoadBalancerConfig::lbaas` at the end.
#[derive(Default)]
struct GenerationKeys {
    lb_version: Option<(String, usize)>,
    use_octavia: Option<bool>,
}

/// Parse a whole cloud.conf text. Errors stop at the first problem; warnings collect.
pub(crate) fn parse(text: &str) -> Result<(CloudConfig, Vec<ConfigWarning>), ConfigError> {
    let items = ini::parse(text)?;
    let mut cfg = CloudConfig::default();
    let mut warnings = Vec::new();
    let mut section = Section::Unknown(String::new());
    let mut generation = GenerationKeys::default();
    // (section, canonical key) → (line, value) of the last assignment, to report overrides.
    let mut seen: HashMap<(Section, &'static str), (usize, Option<String>)> = HashMap::new();
    for item in &items {
        match item {
            Item::Section {
                name,
                subsection,
                line,
            } => {
                section = classify_section(name, subsection.as_deref(), *line)?;
                match &section {
                    Section::Class(class) if cfg.class(class).is_none() => {
                        cfg.classes.push(LoadBalancerClass {
                            name: class.clone(),
                            placement: Placement::default(),
                        });
                    }
                    Section::Foreign(n) => warnings.push(ConfigWarning {
                        line: *line,
                        section: n.clone(),
                        key: None,
                        message:
                            "this section is read by other OpenStack cloud-provider components \
                                  (Cinder, routes), not by the load-balancer controller; ignored"
                                .into(),
                    }),
                    Section::Unknown(n) => warnings.push(ConfigWarning {
                        line: *line,
                        section: n.clone(),
                        key: None,
                        message: "unknown section, ignored; known sections: Global, LoadBalancer, \
                                  LoadBalancerClass \"name\", Networking, Metadata"
                            .into(),
                    }),
                    _ => {}
                }
            }
            Item::Entry(entry) => {
                let key_lower = entry.key.to_ascii_lowercase();
                let val = Val {
                    section: section.label(),
                    key: &key_lower,
                    raw: entry.value.as_deref(),
                    line: entry.line,
                };
                let canonical = match &section {
                    Section::Global => apply_global(&mut cfg, &val)?,
                    Section::LoadBalancer => apply_load_balancer(&mut cfg, &val, &mut generation)?,
                    Section::Class(name) => {
                        let class = cfg
                            .classes
                            .iter_mut()
                            .find(|c| c.name.eq_ignore_ascii_case(name));
                        match class {
                            Some(c) => apply_placement(&mut c.placement, &val)?,
                            None => None,
                        }
                    }
                    Section::Networking => apply_networking(&mut cfg, &val)?,
                    Section::Metadata => apply_metadata(&mut cfg, &val, &mut warnings)?,
                    Section::Foreign(_) | Section::Unknown(_) => Some(""),
                };
                let Some(canonical) = canonical else {
                    warnings.push(ConfigWarning {
                        line: entry.line,
                        section: section.label(),
                        key: Some(entry.key.clone()),
                        message: format!(
                            "unknown key, ignored{}",
                            suggestion(&section, &key_lower)
                        ),
                    });
                    continue;
                };
                if canonical.is_empty() {
                    continue;
                }
                note_glued_comment(entry, &section, &mut warnings);
                if !MULTI_VALUED.contains(&canonical) {
                    let shown = if SECRET_KEYS.contains(&canonical) {
                        None
                    } else {
                        entry.value.clone()
                    };
                    if let Some((first_line, previous)) =
                        seen.insert((section.clone(), canonical), (entry.line, shown.clone()))
                    {
                        if previous != shown || shown.is_none() {
                            warnings.push(ConfigWarning {
                                line: entry.line,
                                section: section.label(),
                                key: Some(entry.key.clone()),
                                message: format!(
                                    "also set on line {first_line}; the last value wins (as in OCCM)"
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    resolve_generation(&mut cfg, generation)?;
    check_semantics(&cfg)?;
    Ok((cfg, warnings))
}

const MULTI_VALUED: &[&str] = &["public-network-name", "internal-network-name"];

fn classify_section(
    name: &str,
    subsection: Option<&str>,
    line: usize,
) -> Result<Section, ConfigError> {
    let lower = name.to_ascii_lowercase();
    let section = match lower.as_str() {
        "global" => Section::Global,
        "loadbalancer" => Section::LoadBalancer,
        "loadbalancerclass" => {
            return match subsection {
                Some(class) => Ok(Section::Class(class.to_string())),
                None => Err(ConfigError::Syntax {
                    line,
                    message: "[LoadBalancerClass] needs a name: [LoadBalancerClass \"name\"]"
                        .into(),
                }),
            }
        }
        "networking" => Section::Networking,
        "metadata" => Section::Metadata,
        "blockstorage" | "route" => Section::Foreign(name.to_string()),
        _ => return Ok(Section::Unknown(render_header(name, subsection))),
    };
    if let Some(sub) = subsection {
        return Err(ConfigError::Syntax {
            line,
            message: format!("[{name}] takes no subsection, found [{name} {sub:?}]"),
        });
    }
    Ok(section)
}

fn render_header(name: &str, subsection: Option<&str>) -> String {
    match subsection {
        Some(s) => format!("{name} {s:?}"),
        None => name.to_string(),
    }
}

fn note_glued_comment(entry: &RawEntry, section: &Section, warnings: &mut Vec<ConfigWarning>) {
    if entry.glued_comment_char {
        warnings.push(ConfigWarning {
            line: entry.line,
            section: section.label(),
            key: Some(entry.key.clone()),
            message: "the value contains '#' or ';'; OCCM's parser would cut the value there — \
                      put the value in double quotes so that every component reads the same value"
                .into(),
        });
    }
}

/// A near-miss hint for unknown keys (`auth_url` → `auth-url`, `tenant-name` typos).
fn suggestion(section: &Section, key: &str) -> String {
    let known: &[&str] = match section {
        Section::Global => GLOBAL_KEYS,
        Section::LoadBalancer => LOAD_BALANCER_KEYS,
        Section::Class(_) => PLACEMENT_KEYS,
        Section::Networking => NETWORKING_KEYS,
        Section::Metadata => &["request-timeout", "api-rate-limit", "api-rate-burst"],
        _ => &[],
    };
    let normalized = key.replace(['_', '.'], "-");
    if let Some(k) = known.iter().find(|k| **k == normalized) {
        return format!("; did you mean {k:?}?");
    }
    format!("; known keys here: {}", known.join(", "))
}

const GLOBAL_KEYS: &[&str] = &[
    "auth-url",
    "username",
    "user-id",
    "password",
    "tenant-id",
    "project-id",
    "tenant-name",
    "project-name",
    "tenant-domain-id",
    "tenant-domain-name",
    "project-domain-id",
    "project-domain-name",
    "domain-id",
    "domain-name",
    "user-domain-id",
    "user-domain-name",
    "region",
    "ca-file",
    "cert-file",
    "key-file",
    "tls-insecure",
    "os-endpoint-type",
    "application-credential-id",
    "application-credential-name",
    "application-credential-secret",
    "trust-id",
    "trustee-id",
    "trustee-password",
    "use-clouds",
    "clouds-file",
    "cloud",
];

const PLACEMENT_KEYS: &[&str] = &[
    "floating-network-id",
    "floating-subnet-id",
    "floating-subnet",
    "floating-subnet-tags",
    "network-id",
    "subnet-id",
    "member-subnet-id",
];

const LOAD_BALANCER_KEYS: &[&str] = &[
    "enabled",
    "use-octavia",
    "lb-version",
    "floating-network-id",
    "floating-subnet-id",
    "floating-subnet",
    "floating-subnet-tags",
    "lb-method",
    "lb-provider",
    "network-id",
    "subnet-id",
    "member-subnet-id",
    "manage-security-groups",
    "node-security-group",
    "create-monitor",
    "monitor-delay",
    "monitor-timeout",
    "monitor-max-retries",
    "monitor-max-retries-down",
    "internal-lb",
    "node-selector",
    "cascade-delete",
    "flavor-id",
    "availability-zone",
    "enable-ingress-hostname",
    "ingress-hostname-suffix",
    "default-tls-container-ref",
    "container-store",
    "max-shared-lb",
    "provider-requires-serial-api-calls",
];

const NETWORKING_KEYS: &[&str] = &[
    "ipv6-support-disabled",
    "public-network-name",
    "internal-network-name",
    "address-sort-order",
];

/// Returns the canonical key name if the key is known here.
fn apply_global(cfg: &mut CloudConfig, v: &Val<'_>) -> Result<Option<&'static str>, ConfigError> {
    let g = &mut cfg.global;
    let canonical = match v.key {
        "auth-url" => {
            set_opt(&mut g.auth_url, v.text()?);
            "auth-url"
        }
        "username" | "user-name" => {
            set_opt(&mut g.username, v.text()?);
            "username"
        }
        "user-id" => {
            set_opt(&mut g.user_id, v.text()?);
            "user-id"
        }
        "password" => {
            set_opt(&mut g.password, v.secret()?);
            "password"
        }
        "tenant-id" | "project-id" => {
            set_opt(&mut g.project_id, v.text()?);
            "project-id"
        }
        "tenant-name" | "project-name" => {
            set_opt(&mut g.project_name, v.text()?);
            "project-name"
        }
        "tenant-domain-id" | "project-domain-id" => {
            set_opt(&mut g.project_domain_id, v.text()?);
            "project-domain-id"
        }
        "tenant-domain-name" | "project-domain-name" => {
            set_opt(&mut g.project_domain_name, v.text()?);
            "project-domain-name"
        }
        "domain-id" => {
            set_opt(&mut g.domain_id, v.text()?);
            "domain-id"
        }
        "domain-name" => {
            set_opt(&mut g.domain_name, v.text()?);
            "domain-name"
        }
        "user-domain-id" => {
            set_opt(&mut g.user_domain_id, v.text()?);
            "user-domain-id"
        }
        "user-domain-name" => {
            set_opt(&mut g.user_domain_name, v.text()?);
            "user-domain-name"
        }
        "region" => {
            set_opt(&mut g.region, v.text()?);
            "region"
        }
        "ca-file" => {
            set_opt(&mut g.ca_file, v.text()?);
            "ca-file"
        }
        "cert-file" => {
            set_opt(&mut g.cert_file, v.text()?);
            "cert-file"
        }
        "key-file" => {
            set_opt(&mut g.key_file, v.text()?);
            "key-file"
        }
        "tls-insecure" => {
            set(&mut g.tls_insecure, v.boolean()?);
            "tls-insecure"
        }
        "os-endpoint-type" => {
            if let Some(s) = v.text()? {
                g.endpoint_interface =
                    parse_interface(&s).ok_or_else(|| v.invalid("public, internal or admin"))?;
            }
            "os-endpoint-type"
        }
        "application-credential-id" => {
            set_opt(&mut g.application_credential_id, v.text()?);
            "application-credential-id"
        }
        "application-credential-name" => {
            set_opt(&mut g.application_credential_name, v.text()?);
            "application-credential-name"
        }
        "application-credential-secret" => {
            set_opt(&mut g.application_credential_secret, v.secret()?);
            "application-credential-secret"
        }
        "trust-id" => {
            set_opt(&mut g.trust_id, v.text()?);
            "trust-id"
        }
        "trustee-id" => {
            set_opt(&mut g.trustee_id, v.text()?);
            "trustee-id"
        }
        "trustee-password" => {
            set_opt(&mut g.trustee_password, v.secret()?);
            "trustee-password"
        }
        "use-clouds" => {
            set(&mut g.use_clouds, v.boolean()?);
            "use-clouds"
        }
        "clouds-file" => {
            set_opt(&mut g.clouds_file, v.text()?);
            "clouds-file"
        }
        "cloud" => {
            set_opt(&mut g.cloud, v.text()?);
            "cloud"
        }
        _ => return Ok(None),
    };
    Ok(Some(canonical))
}

/// `os-endpoint-type` and clouds.yaml `interface`; Keystone v2 spellings are accepted too.
pub(crate) fn parse_interface(s: &str) -> Option<EndpointInterface> {
    match s.trim().to_ascii_lowercase().as_str() {
        "public" | "publicurl" => Some(EndpointInterface::Public),
        "internal" | "internalurl" => Some(EndpointInterface::Internal),
        "admin" | "adminurl" => Some(EndpointInterface::Admin),
        _ => None,
    }
}

fn apply_placement(p: &mut Placement, v: &Val<'_>) -> Result<Option<&'static str>, ConfigError> {
    let canonical = match v.key {
        "floating-network-id" => {
            set_opt(&mut p.floating_network_id, v.text()?);
            "floating-network-id"
        }
        "floating-subnet-id" => {
            set_opt(&mut p.floating_subnet_id, v.text()?);
            "floating-subnet-id"
        }
        "floating-subnet" => {
            if let Some(pattern) = v.text()? {
                glob::Pattern::new(&pattern)
                    .map_err(|e| v.invalid(&format!("a glob on the subnet name (here: {e})")))?;
                p.floating_subnet = Some(pattern);
            }
            "floating-subnet"
        }
        "floating-subnet-tags" => {
            if let Some(tags) = v.text()? {
                p.floating_subnet_tags = values::comma_list(&tags);
            }
            "floating-subnet-tags"
        }
        "network-id" => {
            set_opt(&mut p.network_id, v.text()?);
            "network-id"
        }
        "subnet-id" => {
            set_opt(&mut p.subnet_id, v.text()?);
            "subnet-id"
        }
        "member-subnet-id" => {
            set_opt(&mut p.member_subnet_id, v.text()?);
            "member-subnet-id"
        }
        _ => return Ok(None),
    };
    Ok(Some(canonical))
}

fn apply_load_balancer(
    cfg: &mut CloudConfig,
    v: &Val<'_>,
    generation: &mut GenerationKeys,
) -> Result<Option<&'static str>, ConfigError> {
    let lb = &mut cfg.load_balancer;
    if let Some(canonical) = apply_placement(&mut lb.placement, v)? {
        return Ok(Some(canonical));
    }
    let canonical = match v.key {
        "enabled" => {
            set(&mut lb.enabled, v.boolean()?);
            "enabled"
        }
        "use-octavia" => {
            set_opt(&mut generation.use_octavia, v.boolean()?);
            "use-octavia"
        }
        "lb-version" => {
            if let Some(s) = v.text()? {
                let lower = s.to_ascii_lowercase();
                if lower != "v1" && lower != "v2" {
                    return Err(v.invalid("v1 or v2"));
                }
                generation.lb_version = Some((lower, v.line));
            }
            "lb-version"
        }
        "lb-method" => {
            if let Some(s) = v.text()? {
                lb.lb_method = parse_lb_method(&s).ok_or_else(|| v.invalid(LB_METHOD_ACCEPTED))?;
            }
            "lb-method"
        }
        "lb-provider" => {
            set_opt(&mut lb.lb_provider, v.text()?);
            "lb-provider"
        }
        "manage-security-groups" => {
            set(&mut lb.manage_security_groups, v.boolean()?);
            "manage-security-groups"
        }
        "node-security-group" => {
            set_opt(&mut lb.node_security_group, v.text()?);
            "node-security-group"
        }
        "create-monitor" => {
            set(&mut lb.create_monitor, v.boolean()?);
            "create-monitor"
        }
        "monitor-delay" => {
            set(&mut lb.monitor_delay, whole_seconds(v)?);
            "monitor-delay"
        }
        "monitor-timeout" => {
            set(&mut lb.monitor_timeout, whole_seconds(v)?);
            "monitor-timeout"
        }
        "monitor-max-retries" => {
            set(&mut lb.monitor_max_retries, v.count(1, 10)?);
            "monitor-max-retries"
        }
        "monitor-max-retries-down" => {
            set(&mut lb.monitor_max_retries_down, v.count(1, 10)?);
            "monitor-max-retries-down"
        }
        "internal-lb" => {
            set(&mut lb.internal_lb, v.boolean()?);
            "internal-lb"
        }
        "node-selector" => {
            if let Some(s) = v.text()? {
                lb.node_selector = values::parse_node_selector(&s)
                    .map_err(|why| v.invalid(&format!("{SELECTOR_ACCEPTED} ({why})")))?;
            }
            "node-selector"
        }
        "cascade-delete" => {
            set(&mut lb.cascade_delete, v.boolean()?);
            "cascade-delete"
        }
        "flavor-id" => {
            set_opt(&mut lb.flavor_id, v.text()?);
            "flavor-id"
        }
        "availability-zone" => {
            set_opt(&mut lb.availability_zone, v.text()?);
            "availability-zone"
        }
        "enable-ingress-hostname" => {
            set(&mut lb.enable_ingress_hostname, v.boolean()?);
            "enable-ingress-hostname"
        }
        "ingress-hostname-suffix" => {
            if let Some(s) = v.text()? {
                let ok = s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !ok {
                    return Err(v.invalid("a DNS suffix such as nip.io"));
                }
                lb.ingress_hostname_suffix = s;
            }
            "ingress-hostname-suffix"
        }
        "default-tls-container-ref" => {
            set_opt(&mut lb.default_tls_container_ref, v.text()?);
            "default-tls-container-ref"
        }
        "container-store" => {
            if let Some(s) = v.text()? {
                let lower = s.to_ascii_lowercase();
                if lower != "barbican" && lower != "external" {
                    return Err(v.invalid("barbican or external"));
                }
                lb.container_store = Some(lower);
            }
            "container-store"
        }
        "max-shared-lb" => {
            set(&mut lb.max_shared_lb, v.count(1, 1000)?);
            "max-shared-lb"
        }
        "provider-requires-serial-api-calls" => {
            set(&mut lb.provider_requires_serial_api_calls, v.boolean()?);
            "provider-requires-serial-api-calls"
        }
        _ => return Ok(None),
    };
    Ok(Some(canonical))
}

/// Octavia health-monitor timings are whole seconds of at least 1.
fn whole_seconds(v: &Val<'_>) -> Result<Option<std::time::Duration>, ConfigError> {
    match v.duration()? {
        None => Ok(None),
        Some(d) if d.subsec_nanos() == 0 && d.as_secs() >= 1 && d.as_secs() <= i32::MAX as u64 => Ok(Some(d)),
        Some(_) => Err(v.invalid(&format!(
            "a whole number of seconds of at least 1 (Octavia's health monitors count in seconds): {DURATION_ACCEPTED}"
        ))),
    }
}

fn apply_networking(
    cfg: &mut CloudConfig,
    v: &Val<'_>,
) -> Result<Option<&'static str>, ConfigError> {
    let n = &mut cfg.networking;
    let canonical = match v.key {
        "ipv6-support-disabled" => {
            set(&mut n.ipv6_support_disabled, v.boolean()?);
            "ipv6-support-disabled"
        }
        "public-network-name" => {
            push_multi(&mut n.public_network_name, v.raw);
            "public-network-name"
        }
        "internal-network-name" => {
            push_multi(&mut n.internal_network_name, v.raw);
            "internal-network-name"
        }
        "address-sort-order" => {
            if let Some(s) = v.text()? {
                let mut nets = Vec::new();
                for part in values::comma_list(&s) {
                    let net = part
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            v.invalid(&format!(
                                "comma-separated CIDRs such as 10.0.0.0/8, fd00::/8 ({part:?} is not one)"
                            ))
                        })?;
                    nets.push(net);
                }
                n.address_sort_order = nets;
            }
            "address-sort-order"
        }
        _ => return Ok(None),
    };
    Ok(Some(canonical))
}

/// gcfg multi-valued semantics: each value is appended; a bare key (no `=`) clears the list.
fn push_multi(list: &mut Vec<String>, raw: Option<&str>) {
    match raw {
        None => list.clear(),
        Some("") => {}
        Some(s) => list.push(s.to_string()),
    }
}

fn apply_metadata(
    cfg: &mut CloudConfig,
    v: &Val<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Option<&'static str>, ConfigError> {
    match v.key {
        "request-timeout" => {
            if let Some(d) = v.duration()? {
                if d.is_zero() {
                    return Err(v.invalid(&format!("a positive duration: {DURATION_ACCEPTED}")));
                }
                cfg.metadata.request_timeout = d;
            }
            Ok(Some("request-timeout"))
        }
        "api-rate-limit" => {
            set(&mut cfg.metadata.api_rate_limit, v.count(0, 100_000)?);
            Ok(Some("api-rate-limit"))
        }
        "api-rate-burst" => {
            set(&mut cfg.metadata.api_rate_burst, v.count(1, 100_000)?);
            Ok(Some("api-rate-burst"))
        }
        "search-order" => {
            warnings.push(ConfigWarning {
                line: v.line,
                section: v.section.clone(),
                key: Some(v.key.to_string()),
                message: "read by OCCM's instance metadata lookup, not by the load-balancer controller; ignored"
                    .into(),
            });
            Ok(Some(""))
        }
        _ => Ok(None),
    }
}

fn resolve_generation(cfg: &mut CloudConfig, keys: GenerationKeys) -> Result<(), ConfigError> {
    let lb = &mut cfg.load_balancer;
    match (keys.lb_version, keys.use_octavia) {
        (Some((v, line)), Some(true)) if v == "v1" => {
            return Err(ConfigError::Conflict {
                line,
                section: "LoadBalancer".into(),
                message: "lb-version = v1 contradicts use-octavia = true (Octavia is a v2 API); \
                          remove one of them"
                    .into(),
            })
        }
        (Some((v, _)), _) if v == "v1" => lb.lbaas = Some(LbaasGeneration::NeutronV1),
        (_, Some(true)) => lb.lbaas = Some(LbaasGeneration::Octavia),
        // The in-tree provider's meaning: the v2 API served by Neutron itself.
        (_, Some(false)) => lb.lbaas = Some(LbaasGeneration::NeutronV2),
        (Some(_), None) => {
            // `lb-version = v2` is what OCCM files say; both Octavia and Neutron LBaaS v2 speak it.
            lb.lbaas = None;
            lb.lbaas_exclude_v1 = true;
        }
        (None, None) => lb.lbaas = None,
    }
    Ok(())
}

/// Combinations that no cloud would accept; credential completeness is checked later
/// (`GlobalConfig::credential_kind`) because clouds.yaml may still fill gaps.
fn check_semantics(cfg: &CloudConfig) -> Result<(), ConfigError> {
    let g = &cfg.global;
    let conflict = |section: &str, message: String| ConfigError::Conflict {
        line: 0,
        section: section.to_string(),
        message,
    };
    if !g.use_clouds {
        if g.password.is_some() && g.username.is_none() && g.user_id.is_none() {
            return Err(conflict(
                "Global",
                "password is set but neither username nor user-id says whose it is".into(),
            ));
        }
        if g.application_credential_name.is_some() && g.username.is_none() && g.user_id.is_none() {
            return Err(conflict(
                "Global",
                "application-credential-name needs the owning user: set username (with \
                 user-domain-name) or user-id, or use application-credential-id instead"
                    .into(),
            ));
        }
        let has_app_cred =
            g.application_credential_id.is_some() || g.application_credential_name.is_some();
        if has_app_cred && g.application_credential_secret.is_none() {
            return Err(conflict(
                "Global",
                "application-credential-id/-name is set but application-credential-secret is missing".into(),
            ));
        }
        if !has_app_cred && g.application_credential_secret.is_some() {
            return Err(conflict(
                "Global",
                "application-credential-secret is set but neither application-credential-id nor \
                 application-credential-name"
                    .into(),
            ));
        }
        if g.trustee_id.is_some() != g.trustee_password.is_some() {
            return Err(conflict(
                "Global",
                "trustee-id and trustee-password must be set together".into(),
            ));
        }
    }
    if g.cert_file.is_some() != g.key_file.is_some() {
        return Err(conflict(
            "Global",
            "cert-file and key-file must be set together (client TLS certificate)".into(),
        ));
    }
    let lb = &cfg.load_balancer;
    if lb.monitor_timeout > lb.monitor_delay {
        return Err(conflict(
            "LoadBalancer",
            format!(
                "monitor-timeout ({}s) must not exceed monitor-delay ({}s); Octavia rejects such monitors",
                lb.monitor_timeout.as_secs(),
                lb.monitor_delay.as_secs()
            ),
        ));
    }
    Ok(())
}
