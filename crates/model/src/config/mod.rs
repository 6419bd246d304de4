//! The controller's configuration: cloud.conf (OCCM-compatible INI, SPEC §2.1) and clouds.yaml
//! (SPEC §2.2), parsed into typed, validated values. Pure: the caller reads the files; this
//! module only sees their text. It must not know about HTTP, Kubernetes clients or OpenStack
//! clients.

use std::fmt;
use std::time::Duration;

mod cloudconf;
mod clouds;
mod ini;
pub mod values;

pub use clouds::{clouds_yaml_candidates, fill_from_clouds, CloudAuth, CloudEntry, CloudsYaml};

/// Why a configuration cannot be used. Values of secret keys are shown as `***`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cloud.conf line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error(
        "cloud.conf line {line}: [{section}] {key} = {value:?} is invalid; accepted: {accepted}"
    )]
    InvalidValue {
        line: usize,
        section: String,
        key: String,
        value: String,
        accepted: String,
    },
    #[error("cloud.conf [{section}]: {message}")]
    Conflict {
        line: usize,
        section: String,
        message: String,
    },
    #[error("clouds.yaml: {0}")]
    Clouds(String),
    #[error("no usable credentials: {0}")]
    NoCredentials(String),
}

/// Something in cloud.conf that is ignored or suspicious but does not stop the controller.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConfigWarning {
    pub line: usize,
    pub section: String,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "cloud.conf line {}: [{}] {}: {}",
                self.line, self.section, key, self.message
            ),
            None => write!(
                f,
                "cloud.conf line {}: [{}]: {}",
                self.line, self.section, self.message
            ),
        }
    }
}

/// A secret string (password, application-credential secret, token). Its Debug and Display
/// print `***` so that it can never reach a log line, an Event or an error by accident.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The only way to read the value: call sites are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which interface of the catalog to use (`os-endpoint-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EndpointInterface {
    #[default]
    Public,
    Internal,
    Admin,
}

/// How the controller will authenticate, derived from `[Global]` (after clouds.yaml filled it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// username/user-id + password, scoped to a project.
    Password,
    /// user-id/username + password, scoped to `trust-id` (Magnum's layout).
    PasswordTrust,
    /// trustee-id + trustee-password, scoped to `trust-id`.
    Trustee,
    ApplicationCredentialId,
    /// application-credential-name + its owner (username or user-id).
    ApplicationCredentialName,
}

impl CredentialKind {
    pub fn describe(&self) -> &'static str {
        match self {
            CredentialKind::Password => "password",
            CredentialKind::PasswordTrust => "password scoped to a trust",
            CredentialKind::Trustee => "trustee password scoped to a trust",
            CredentialKind::ApplicationCredentialId => "application credential (by id)",
            CredentialKind::ApplicationCredentialName => {
                "application credential (by name and user)"
            }
        }
    }
}

impl GlobalConfig {
    /// Which credentials are usable, in Keystone's order of precedence; an error says what is
    /// missing (the controller then disables itself with an Event, SPEC §1.1).
    pub fn credential_kind(&self) -> Result<CredentialKind, ConfigError> {
        let missing = |what: &str| Err(ConfigError::NoCredentials(what.to_string()));
        if self.auth_url.is_none() {
            return missing("[Global] auth-url (the Keystone URL, e.g. https://keystone.example.com:5000/v3) is not set");
        }
        let has_user = self.username.is_some() || self.user_id.is_some();
        let secret_set = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.is_empty());
        if secret_set(&self.application_credential_secret) {
            if self.application_credential_id.is_some() {
                return Ok(CredentialKind::ApplicationCredentialId);
            }
            if self.application_credential_name.is_some() {
                if has_user {
                    return Ok(CredentialKind::ApplicationCredentialName);
                }
                return missing(
                    "application-credential-name needs username (with user-domain-name) or user-id",
                );
            }
            return missing(
                "application-credential-secret is set without application-credential-id or -name",
            );
        }
        if self.trust_id.is_some()
            && self.trustee_id.is_some()
            && secret_set(&self.trustee_password)
        {
            return Ok(CredentialKind::Trustee);
        }
        if secret_set(&self.password) {
            if !has_user {
                return missing("password is set but neither username nor user-id");
            }
            if self.trust_id.is_some() {
                return Ok(CredentialKind::PasswordTrust);
            }
            return Ok(CredentialKind::Password);
        }
        missing("set username/user-id + password, application-credential-id/-name + application-credential-secret, or trust-id with trustee-id/trustee-password")
    }
}

/// `[Global]`: where and how to authenticate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalConfig {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<Secret>,
    /// `tenant-id` or `project-id`.
    pub project_id: Option<String>,
    /// `tenant-name` or `project-name`.
    pub project_name: Option<String>,
    /// `tenant-domain-id` (project domain).
    pub project_domain_id: Option<String>,
    /// `tenant-domain-name` (project domain).
    pub project_domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub region: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub tls_insecure: bool,
    pub endpoint_interface: EndpointInterface,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<Secret>,
    pub trust_id: Option<String>,
    pub trustee_id: Option<String>,
    pub trustee_password: Option<Secret>,
    pub use_clouds: bool,
    pub clouds_file: Option<String>,
    pub cloud: Option<String>,
}

/// `lb-version` / `use-octavia`: force an LBaaS generation instead of detecting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbaasGeneration {
    Octavia,
    NeutronV2,
    NeutronV1,
}

/// Pool algorithm (`lb-method` and the `lb-method` annotation).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbMethod {
    #[default]
    RoundRobin,
    LeastConnections,
    SourceIp,
    SourceIpPort,
}

impl LbMethod {
    pub fn as_api(&self) -> &'static str {
        match self {
            LbMethod::RoundRobin => "ROUND_ROBIN",
            LbMethod::LeastConnections => "LEAST_CONNECTIONS",
            LbMethod::SourceIp => "SOURCE_IP",
            LbMethod::SourceIpPort => "SOURCE_IP_PORT",
        }
    }
}

/// Where floating IPs and VIPs come from; shared by `[LoadBalancer]` and each
/// `[LoadBalancerClass "name"]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    pub floating_network_id: Option<String>,
    pub floating_subnet_id: Option<String>,
    /// A glob on the subnet name (`floating-subnet`).
    pub floating_subnet: Option<String>,
    /// Comma-separated Neutron tags (`floating-subnet-tags`).
    pub floating_subnet_tags: Vec<String>,
    pub network_id: Option<String>,
    pub subnet_id: Option<String>,
    pub member_subnet_id: Option<String>,
}

/// `[LoadBalancer]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadBalancerConfig {
    pub enabled: bool,
    /// Forced generation (`lb-version = v1`, `use-octavia = true|false`); None = detect.
    pub lbaas: Option<LbaasGeneration>,
    /// `lb-version = v2` without `use-octavia`: detect Octavia or Neutron LBaaS v2, never v1.
    pub lbaas_exclude_v1: bool,
    pub placement: Placement,
    pub lb_method: LbMethod,
    /// `lb-provider`, e.g. `amphora` or `ovn`; None = the cloud's default.
    pub lb_provider: Option<String>,
    pub manage_security_groups: bool,
    pub node_security_group: Option<String>,
    pub create_monitor: bool,
    pub monitor_delay: Duration,
    pub monitor_timeout: Duration,
    pub monitor_max_retries: u32,
    pub monitor_max_retries_down: u32,
    pub internal_lb: bool,
    /// `node-selector`: `k=v,k2` (k2 = key must exist).
    pub node_selector: Vec<(String, Option<String>)>,
    pub cascade_delete: bool,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub enable_ingress_hostname: bool,
    pub ingress_hostname_suffix: String,
    pub default_tls_container_ref: Option<String>,
    pub container_store: Option<String>,
    pub max_shared_lb: u32,
    pub provider_requires_serial_api_calls: bool,
}

impl Default for LoadBalancerConfig {
    /// OCCM's defaults (SPEC §2.1).
    fn default() -> Self {
        LoadBalancerConfig {
            enabled: true,
            lbaas: None,
            lbaas_exclude_v1: false,
            placement: Placement::default(),
            lb_method: LbMethod::RoundRobin,
            lb_provider: None,
            manage_security_groups: false,
            node_security_group: None,
            create_monitor: false,
            monitor_delay: Duration::from_secs(5),
            monitor_timeout: Duration::from_secs(3),
            monitor_max_retries: 1,
            monitor_max_retries_down: 3,
            internal_lb: false,
            node_selector: Vec::new(),
            cascade_delete: true,
            flavor_id: None,
            availability_zone: None,
            enable_ingress_hostname: false,
            ingress_hostname_suffix: "nip.io".to_string(),
            default_tls_container_ref: None,
            container_store: None,
            max_shared_lb: 2,
            provider_requires_serial_api_calls: false,
        }
    }
}

/// `[LoadBalancerClass "name"]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadBalancerClass {
    pub name: String,
    pub placement: Placement,
}

/// Which node address becomes the member address (`address-sort-order`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkingConfig {
    pub ipv6_support_disabled: bool,
    pub public_network_name: Vec<String>,
    pub internal_network_name: Vec<String>,
    /// CIDRs in order of preference, e.g. `10.0.0.0/8, 192.168.0.0/16`.
    pub address_sort_order: Vec<ipnet::IpNet>,
}

/// `[Metadata]`: how the controller's OpenStack client behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct MetadataConfig {
    pub request_timeout: Duration,
    /// `api-rate-limit`: OpenStack API requests per second across all Services (0: no
    /// client-side limit). 429 and Retry-After are honoured either way.
    pub api_rate_limit: u32,
    /// `api-rate-burst`: how many requests may go at once after a quiet period.
    pub api_rate_burst: u32,
}

/// Chosen from the benchmark (bench/REPORT.md, 100 Services, D = 5 s): at 50/s with a burst
/// of 300, 100 Services created at once got their IPs after 9.4 s and a node added under them
/// took 26.7 s, bound by the client; at 200/s with a burst of 1,000 they took 5.9 s and
/// 11.1 s, within 0.2 s of no limit at all. A runaway loop still cannot send more than
/// 200 calls a second to the cloud's APIs.
pub const DEFAULT_API_RATE_LIMIT: u32 = 200;
pub const DEFAULT_API_RATE_BURST: u32 = 1000;

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            request_timeout: Duration::from_secs(60),
            api_rate_limit: DEFAULT_API_RATE_LIMIT,
            api_rate_burst: DEFAULT_API_RATE_BURST,
        }
    }
}

/// The whole cloud.conf.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CloudConfig {
    pub global: GlobalConfig,
    pub load_balancer: LoadBalancerConfig,
    pub classes: Vec<LoadBalancerClass>,
    pub networking: NetworkingConfig,
    pub metadata: MetadataConfig,
}

impl CloudConfig {
    /// Parse cloud.conf text (gcfg syntax, OCCM/in-tree/Magnum keys). Unknown sections and keys
    /// come back as warnings; invalid values and contradictions are errors naming section, key,
    /// value and the accepted forms.
    pub fn parse(text: &str) -> Result<(CloudConfig, Vec<ConfigWarning>), ConfigError> {
        cloudconf::parse(text)
    }

    pub fn class(&self, name: &str) -> Option<&LoadBalancerClass> {
        self.classes
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}
