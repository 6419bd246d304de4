//! Pure checks behind `openstack-lb-controller doctor` (SPEC §6): facts in, verdicts out.
//! The caller gathers [`Facts`] from the cloud (authentication, catalog, extensions, Octavia
//! version document, providers, flavors, networks, subnets, quotas); [`evaluate`] turns them
//! and the configuration into an ordered list of [`Check`]s and the answer to "would a
//! LoadBalancer Service work?". It must not know how the facts were obtained (HTTP, clients,
//! files), so every verdict can be tested with hand-written facts.

use serde::Serialize;

use crate::config::{CloudConfig, ConfigWarning, EndpointInterface, LbMethod, LbaasGeneration};
use crate::features::{CloudFeatures, Generation};

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The mark printed in front of the check: ✓, ! or ✗.
    pub fn mark(&self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One line of the report. `fix` is set for every `Fail` and for warnings that have one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub status: Status,
    pub title: String,
    pub evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// True when no check failed: a LoadBalancer Service created now would get an address.
    pub would_work: bool,
    pub summary: String,
}

/// Why a probe of the cloud failed, reduced to what the advice depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeErrorKind {
    Unauthorized,
    Forbidden,
    NotFound,
    /// Connection refused, DNS failure, timeout.
    Unreachable,
    /// Certificate verification or handshake failure.
    Tls,
    /// 5xx or an answer that could not be understood.
    Server,
    /// The configuration could not even produce a request (unreadable ca-file, bad URL).
    Config,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeError {
    pub kind: ProbeErrorKind,
    /// The cloud's or the transport's message, secrets already removed by the client.
    pub message: String,
}

/// The result of asking the cloud one question.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Probe<T> {
    /// Not asked: not configured, not applicable, or an earlier step failed.
    #[default]
    Skipped,
    Failed(ProbeError),
    Got(T),
}

impl<T> Probe<T> {
    pub fn got(&self) -> Option<&T> {
        match self {
            Probe::Got(v) => Some(v),
            _ => None,
        }
    }
    pub fn failed(kind: ProbeErrorKind, message: impl Into<String>) -> Self {
        Probe::Failed(ProbeError {
            kind,
            message: message.into(),
        })
    }
}

/// One endpoint of a catalog entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub interface: EndpointInterface,
    pub region: Option<String>,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogService {
    pub service_type: String,
    pub name: String,
    pub endpoints: Vec<Endpoint>,
}

/// What a successful authentication told us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthFacts {
    pub user_id: String,
    pub user_name: Option<String>,
    /// None: the token is unscoped (no project), which no Neutron call accepts.
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub roles: Vec<String>,
    pub catalog: Vec<CatalogService>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubnetFacts {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub cidr: String,
    /// Free addresses (Neutron network-ip-availability); None when unknown (policy).
    pub free_ips: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkFacts {
    pub id: String,
    pub name: String,
    /// `router:external`.
    pub external: bool,
    pub subnets: Vec<SubnetFacts>,
    /// Free addresses over all subnets; None when unknown.
    pub free_ips: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderFacts {
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlavorFacts {
    pub id: String,
    pub name: String,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvailabilityZoneFacts {
    pub name: String,
    pub enabled: bool,
}

/// A quota: `limit` -1 = unlimited; `used` None = unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaFacts {
    /// API name: `load_balancer`/`loadbalancer`, `listener`, `pool`, `floatingip`, `port`, …
    pub resource: String,
    pub limit: i64,
    pub used: Option<u64>,
}

/// Where clouds.yaml values came from, for the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudsSource {
    pub path: String,
    pub cloud: String,
    pub filled: Vec<String>,
}

/// One id a `[LoadBalancerClass "name"]` refers to, looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassLookup {
    pub class: String,
    /// The cloud.conf key: `floating-network-id`, `floating-subnet-id`, `network-id`,
    /// `subnet-id` or `member-subnet-id`.
    pub key: String,
    pub id: String,
    /// The object's name and, for networks, whether it is external.
    pub found: Probe<(String, Option<bool>)>,
}

/// Everything `doctor` learned. Probes default to `Skipped`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub config_warnings: Vec<ConfigWarning>,
    pub clouds: Option<CloudsSource>,
    pub auth: Probe<AuthFacts>,
    /// Neutron extension aliases (also proves the network endpoint answers).
    pub network_extensions: Probe<Vec<String>>,
    /// Octavia API version `(major, minor)`: the highest CURRENT/SUPPORTED in GET `/`.
    pub octavia_version: Probe<(u32, u32)>,
    pub providers: Probe<Vec<ProviderFacts>>,
    pub flavors: Probe<Vec<FlavorFacts>>,
    pub availability_zones: Probe<Vec<AvailabilityZoneFacts>>,
    /// `[LoadBalancer] subnet-id`, looked up.
    pub vip_subnet: Probe<SubnetFacts>,
    /// `[LoadBalancer] network-id`, looked up.
    pub vip_network: Probe<NetworkFacts>,
    /// `[LoadBalancer] member-subnet-id`, looked up.
    pub member_subnet: Probe<SubnetFacts>,
    /// Every subnet the project can see (its own and shared ones), when no VIP placement is
    /// configured. Subnets of external networks are ignored by the checks.
    pub project_subnets: Probe<Vec<SubnetFacts>>,
    /// `[LoadBalancer] floating-network-id`, looked up.
    pub floating_network: Probe<NetworkFacts>,
    /// `[LoadBalancer] floating-subnet-id`, looked up.
    pub floating_subnet: Probe<SubnetFacts>,
    /// All `router:external` networks (for the default and for advice).
    pub external_networks: Probe<Vec<NetworkFacts>>,
    pub lb_quotas: Probe<Vec<QuotaFacts>>,
    pub network_quotas: Probe<Vec<QuotaFacts>>,
    /// The ids every load-balancer class names, looked up.
    pub class_lookups: Vec<ClassLookup>,
}

/// The generation the controller will use: forced by configuration or detected in the order
/// of SPEC §1.2 (Octavia in the catalog, then Neutron `lbaasv2`, then `lbaas`).
pub fn detect_generation(
    has_load_balancer_service: bool,
    network_extensions: &[String],
) -> Option<LbaasGeneration> {
    let has = |alias: &str| network_extensions.iter().any(|e| e == alias);
    if has_load_balancer_service {
        Some(LbaasGeneration::Octavia)
    } else if has("lbaasv2") {
        Some(LbaasGeneration::NeutronV2)
    } else if has("lbaas") {
        Some(LbaasGeneration::NeutronV1)
    } else {
        None
    }
}

fn generation_name(g: LbaasGeneration) -> &'static str {
    match g {
        LbaasGeneration::Octavia => "Octavia",
        LbaasGeneration::NeutronV2 => "Neutron LBaaS v2",
        LbaasGeneration::NeutronV1 => "Neutron LBaaS v1",
    }
}

fn interface_name(i: EndpointInterface) -> &'static str {
    match i {
        EndpointInterface::Public => "public",
        EndpointInterface::Internal => "internal",
        EndpointInterface::Admin => "admin",
    }
}

/// Builds the report. Checks that depend on a failed earlier step are left out rather than
/// repeated as failures, so the first ✗ is the one to fix.
pub fn evaluate(config: &CloudConfig, facts: &Facts) -> Report {
    let mut r = Builder::default();
    check_configuration(config, facts, &mut r);
    if check_access(config, facts, &mut r) {
        if let Some(generation) = check_cloud_services(config, facts, &mut r) {
            check_octavia_details(config, facts, generation, &mut r);
            check_vip_placement(config, facts, &mut r);
            check_floating(config, facts, &mut r);
            check_classes(config, facts, &mut r);
            check_quotas(config, facts, generation, &mut r);
            check_extras(config, facts, &mut r);
        }
    }
    r.finish(config, facts)
}

/// What the controller should assume about the cloud, derived from the same facts (for
/// `plan` and for the controller's start-up discovery).
pub fn features(config: &CloudConfig, facts: &Facts) -> Option<CloudFeatures> {
    let auth = facts.auth.got()?;
    let extensions = facts
        .network_extensions
        .got()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let has_lb = auth
        .catalog
        .iter()
        .any(|s| s.service_type == "load-balancer");
    let generation = config
        .load_balancer
        .lbaas
        .or_else(|| detect_generation(has_lb, extensions))?;
    let provider = effective_provider(config, facts);
    Some(match generation {
        LbaasGeneration::Octavia => {
            let (major, minor) = facts.octavia_version.got().copied().unwrap_or((2, 0));
            CloudFeatures::octavia(major, minor, provider.as_deref())
        }
        LbaasGeneration::NeutronV2 => CloudFeatures::neutron_v2(provider.as_deref()),
        LbaasGeneration::NeutronV1 => CloudFeatures::neutron_v1(),
    })
}

/// `lb-provider`, else the cloud's only provider, else unknown.
fn effective_provider(config: &CloudConfig, facts: &Facts) -> Option<String> {
    if let Some(p) = &config.load_balancer.lb_provider {
        return Some(p.to_ascii_lowercase());
    }
    match facts.providers.got() {
        Some(list) if list.len() == 1 => Some(list[0].name.to_ascii_lowercase()),
        _ => None,
    }
}

#[derive(Default)]
struct Builder {
    checks: Vec<Check>,
}

impl Builder {
    fn push(
        &mut self,
        status: Status,
        title: &str,
        evidence: impl Into<String>,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            status,
            title: title.to_string(),
            evidence: evidence.into(),
            fix,
        });
    }
    fn ok(&mut self, title: &str, evidence: impl Into<String>) {
        self.push(Status::Ok, title, evidence, None);
    }
    fn warn(&mut self, title: &str, evidence: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Warn, title, evidence, Some(fix.into()));
    }
    fn fail(&mut self, title: &str, evidence: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Fail, title, evidence, Some(fix.into()));
    }

    fn finish(self, config: &CloudConfig, facts: &Facts) -> Report {
        let failures = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let warnings = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        let would_work = failures == 0;
        let summary = if would_work {
            let how = features(config, facts)
                .map(|f| match f.generation {
                    Generation::Octavia => format!("Octavia API {}", f.version_text()),
                    Generation::NeutronV2 => "Neutron LBaaS v2".to_string(),
                    Generation::NeutronV1 => "Neutron LBaaS v1".to_string(),
                })
                .unwrap_or_else(|| "the detected load-balancer service".to_string());
            format!("a LoadBalancer Service would work ({how}; {warnings} warning(s))")
        } else {
            format!("a LoadBalancer Service would NOT work: {failures} problem(s) to fix, {warnings} warning(s)")
        };
        Report {
            checks: self.checks,
            would_work,
            summary,
        }
    }
}

fn check_configuration(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    r.ok(
        "cloud.conf",
        format!(
            "parsed; {} warning(s); {} load-balancer class(es)",
            facts.config_warnings.len(),
            config.classes.len()
        ),
    );
    for w in &facts.config_warnings {
        r.warn(
            "cloud.conf",
            w.to_string(),
            "remove or correct the line; unknown keys are ignored by the controller",
        );
    }
    if let Some(c) = &facts.clouds {
        let filled = if c.filled.is_empty() {
            "nothing (cloud.conf set everything)".to_string()
        } else {
            c.filled.join(", ")
        };
        r.ok(
            "clouds.yaml",
            format!("{} cloud {:?} filled: {filled}", c.path, c.cloud),
        );
    }
    let md = &config.metadata;
    if md.api_rate_limit == 0 {
        r.warn(
            "OpenStack API rate limit",
            "[Metadata] api-rate-limit = 0: no client-side limit; a burst of Services sends calls as fast as the cloud answers (429 and Retry-After are still honoured)",
            "set [Metadata] api-rate-limit (requests per second) if the cloud's API is shared or rate-limited",
        );
    } else {
        r.ok(
            "OpenStack API rate limit",
            format!(
                "{} requests/s, bursts of {} ([Metadata] api-rate-limit, api-rate-burst)",
                md.api_rate_limit, md.api_rate_burst
            ),
        );
    }
    if !config.load_balancer.enabled {
        r.fail(
            "load balancers enabled",
            "[LoadBalancer] enabled = false: the controller will create nothing and only record an Event per Service",
            "set [LoadBalancer] enabled = true once the checks below pass",
        );
    }
}

/// Credentials, TLS and authentication. Returns false when nothing else can be checked.
fn check_access(config: &CloudConfig, facts: &Facts, r: &mut Builder) -> bool {
    let g = &config.global;
    match g.credential_kind() {
        Ok(kind) => {
            let who = g
                .user_id
                .as_deref()
                .or(g.username.as_deref())
                .or(g.trustee_id.as_deref())
                .unwrap_or("-");
            let subject = match kind {
                crate::config::CredentialKind::ApplicationCredentialId => g
                    .application_credential_id
                    .as_deref()
                    .unwrap_or("-")
                    .to_string(),
                _ => who.to_string(),
            };
            r.ok(
                "credentials",
                format!(
                    "{} for {subject} at {}",
                    kind.describe(),
                    g.auth_url.as_deref().unwrap_or("-")
                ),
            );
        }
        Err(e) => {
            r.fail(
                "credentials",
                e.to_string(),
                "fill [Global] in cloud.conf (or use-clouds = true with a clouds.yaml); see docs/configuration.md",
            );
            return false;
        }
    }
    if g.tls_insecure {
        r.warn(
            "TLS",
            "tls-insecure = true: server certificates are NOT verified; anyone on the path can read the credentials",
            "set [Global] ca-file to the cloud's CA bundle and remove tls-insecure",
        );
    } else if let Some(ca) = &g.ca_file {
        r.ok(
            "TLS",
            format!("server certificates verified against ca-file {ca}"),
        );
    }
    let auth = match &facts.auth {
        Probe::Got(a) => a,
        Probe::Skipped => return false,
        Probe::Failed(e) => {
            let url = g.auth_url.as_deref().unwrap_or("-");
            let fix = match e.kind {
                ProbeErrorKind::Unauthorized => {
                    "Keystone rejected the credentials: check the password/secret, the user and its domain \
                     (user-domain-name), the project, and that an application credential or trust has not \
                     expired or been deleted"
                        .to_string()
                }
                ProbeErrorKind::Forbidden => "the user may not use this project: check project-id/-name and its domain, \
                     or the trust/application-credential roles"
                    .to_string(),
                ProbeErrorKind::NotFound => format!(
                    "{url} has no tokens API: auth-url must be Keystone's v3 root, e.g. https://keystone.example.com:5000/v3"
                ),
                ProbeErrorKind::Unreachable => {
                    format!("cannot reach {url}: check the URL, DNS, proxies and firewalls from where the controller runs")
                }
                ProbeErrorKind::Tls => "TLS failed: set ca-file to the CA that signed Keystone's certificate \
                     (or cert-file/key-file if client certificates are required)"
                    .to_string(),
                ProbeErrorKind::Config => {
                    "fix [Global] in cloud.conf as the message says (auth-url, ca-file, cert-file/key-file)".to_string()
                }
                ProbeErrorKind::Server | ProbeErrorKind::Other => {
                    "Keystone failed; retry later or ask the cloud operator".to_string()
                }
            };
            r.fail("authentication", format!("{url}: {}", e.message), fix);
            return false;
        }
    };
    let user = auth.user_name.as_deref().unwrap_or(&auth.user_id);
    match (&auth.project_id, &auth.project_name) {
        (Some(id), name) => r.ok(
            "authentication",
            format!(
                "token for user {user} in project {} ({id}); roles: {}",
                name.as_deref().unwrap_or("?"),
                if auth.roles.is_empty() {
                    "none".to_string()
                } else {
                    auth.roles.join(", ")
                }
            ),
        ),
        (None, _) => {
            r.fail(
                "authentication",
                format!("the token for {user} is not scoped to a project"),
                "set [Global] project-id (or project-name with project-domain-name)",
            );
            return false;
        }
    }
    true
}

fn pick_endpoint<'a>(
    service: &'a CatalogService,
    iface: EndpointInterface,
    region: Option<&str>,
) -> Option<&'a Endpoint> {
    service
        .endpoints
        .iter()
        .find(|e| e.interface == iface && region.is_none_or(|r| e.region.as_deref() == Some(r)))
}

fn describe_endpoints(service: &CatalogService) -> String {
    service
        .endpoints
        .iter()
        .map(|e| {
            format!(
                "{}@{}",
                interface_name(e.interface),
                e.region.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Catalog, endpoints, Neutron and the LBaaS generation. Returns the generation to use.
fn check_cloud_services(
    config: &CloudConfig,
    facts: &Facts,
    r: &mut Builder,
) -> Option<LbaasGeneration> {
    let auth = facts.auth.got()?;
    let g = &config.global;
    let iface = g.endpoint_interface;
    let region = g.region.as_deref();
    let types: Vec<&str> = auth
        .catalog
        .iter()
        .map(|s| s.service_type.as_str())
        .collect();
    r.ok(
        "catalog",
        format!("{} service(s): {}", types.len(), types.join(", ")),
    );

    let mut endpoints_ok = true;
    for wanted in ["network", "load-balancer"] {
        let Some(service) = auth.catalog.iter().find(|s| s.service_type == wanted) else {
            if wanted == "network" {
                r.fail(
                    "endpoint network",
                    "the catalog has no network (Neutron) service",
                    "the credentials must belong to a project of a cloud with Neutron; check auth-url and region",
                );
                endpoints_ok = false;
            }
            continue;
        };
        match pick_endpoint(service, iface, region) {
            Some(e) => r.ok(
                &format!("endpoint {wanted}"),
                format!(
                    "{} ({}, region {})",
                    e.url,
                    interface_name(iface),
                    region.unwrap_or("any")
                ),
            ),
            None => {
                r.fail(
                    &format!("endpoint {wanted}"),
                    format!(
                        "no {} endpoint in region {}; the catalog offers: {}",
                        interface_name(iface),
                        region.unwrap_or("any"),
                        describe_endpoints(service)
                    ),
                    "set [Global] os-endpoint-type and region to one of the offered interface@region pairs",
                );
                endpoints_ok = false;
            }
        }
    }
    if !endpoints_ok {
        return None;
    }

    let extensions = match &facts.network_extensions {
        Probe::Got(ext) => {
            r.ok("Neutron", format!("answers; {} extension(s)", ext.len()));
            ext.as_slice()
        }
        Probe::Failed(e) => {
            r.fail(
                "Neutron",
                format!("the network endpoint failed: {}", e.message),
                "check that the network endpoint in the catalog is reachable from the controller (os-endpoint-type may need to be internal)",
            );
            return None;
        }
        Probe::Skipped => return None,
    };

    let has_lb = auth
        .catalog
        .iter()
        .any(|s| s.service_type == "load-balancer");
    let detected = detect_generation(has_lb, extensions);
    let offered: Vec<&str> = [
        has_lb.then_some("Octavia"),
        extensions
            .iter()
            .any(|e| e == "lbaasv2")
            .then_some("Neutron LBaaS v2"),
        extensions
            .iter()
            .any(|e| e == "lbaas")
            .then_some("Neutron LBaaS v1"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let offered_text = if offered.is_empty() {
        "nothing".to_string()
    } else {
        offered.join(", ")
    };
    let lb = &config.load_balancer;
    let generation = match (lb.lbaas, detected) {
        (_, None) => {
            r.fail(
                "load-balancer service",
                "the cloud offers no load balancing: no load-balancer (Octavia) service in the catalog and no \
                 lbaasv2/lbaas Neutron extension",
                "ask the cloud operator to deploy Octavia; until then LoadBalancer Services stay pending \
                 (they still work inside the cluster as ClusterIP/NodePort)",
            );
            return None;
        }
        (Some(forced), _) => {
            let available = match forced {
                LbaasGeneration::Octavia => has_lb,
                LbaasGeneration::NeutronV2 => extensions.iter().any(|e| e == "lbaasv2"),
                LbaasGeneration::NeutronV1 => extensions.iter().any(|e| e == "lbaas"),
            };
            if !available {
                r.fail(
                    "load-balancer service",
                    format!("cloud.conf forces {} (use-octavia/lb-version) but the cloud offers {offered_text}", generation_name(forced)),
                    "remove use-octavia and lb-version from [LoadBalancer] to use what the cloud offers",
                );
                return None;
            }
            r.ok(
                "load-balancer service",
                format!(
                    "{} (forced by cloud.conf; the cloud offers {offered_text})",
                    generation_name(forced)
                ),
            );
            forced
        }
        (None, Some(LbaasGeneration::NeutronV1)) if lb.lbaas_exclude_v1 => {
            r.fail(
                "load-balancer service",
                "lb-version = v2 but the cloud offers only Neutron LBaaS v1",
                "set lb-version = v1 (one TCP port per Service) or ask for Octavia",
            );
            return None;
        }
        (None, Some(g)) => {
            r.ok(
                "load-balancer service",
                format!(
                    "{} (detected; the cloud offers {offered_text})",
                    generation_name(g)
                ),
            );
            g
        }
    };
    match generation {
        LbaasGeneration::NeutronV1 => check_v1_limits(config, r),
        LbaasGeneration::NeutronV2 => r.warn(
            "Neutron LBaaS v2",
            "deprecated API without cascade delete, batch member update, tags or timeouts: changes take more \
             calls and ownership is proven by names only",
            "ask the cloud operator for Octavia",
        ),
        LbaasGeneration::Octavia => {}
    }
    Some(generation)
}

/// What the controller does on a cloud that offers only LBaaS v1 (`model::plan` v1 and
/// `model::desired`): said as warnings, so that an admin knows which Services will be refused
/// and which settings ignored; configuration that would make every Service fail is a ✗.
fn check_v1_limits(config: &CloudConfig, r: &mut Builder) {
    const TITLE: &str = "LBaaS v1";
    let lb = &config.load_balancer;
    let method = lb.lb_method.as_api();
    if !crate::features::V1_LB_METHODS.contains(&method) {
        r.fail(
            TITLE,
            format!("[LoadBalancer] lb-method = {method}, which LBaaS v1 does not offer: every Service would be refused"),
            format!("set lb-method to one of {}", crate::features::V1_LB_METHODS.join(", ")),
        );
    }
    if lb.placement.subnet_id.is_none() && lb.placement.network_id.is_some() {
        r.fail(
            TITLE,
            "LBaaS v1 places each VIP on a subnet, but [LoadBalancer] names only a network (network-id) for it: every Service would be refused",
            "set [LoadBalancer] subnet-id to the subnet the VIPs should take their address from",
        );
    }
    r.warn(
        TITLE,
        "one pool and one VIP per Service: a Service must have exactly one TCP port; Services with more ports, \
         UDP or SCTP, or the proxy-protocol, x-forwarded-for or default-tls-container-ref annotations are refused \
         with a Warning Event and get no load balancer; lb-method SOURCE_IP_PORT is refused; a pool is never shared \
         between Services (load-balancer-id)",
        "keep one TCP port per LoadBalancer Service (split the others), or ask the cloud operator for Octavia",
    );
    r.warn(
        TITLE,
        "ignored with a FeatureUnsupported Warning Event: listener timeouts, loadBalancerSourceRanges, flavor-id, \
         availability-zone, dual-stack and manage-security-groups",
        "restrict client addresses with security groups on the nodes instead of loadBalancerSourceRanges",
    );
    r.warn(
        TITLE,
        "health monitors (create-monitor or the enable-health-monitor annotation, always for externalTrafficPolicy: \
         Local) are TCP checks of the NodePort: v1 cannot probe kube-proxy's healthCheckNodePort, and \
         max-retries-down is not applied",
        "nothing to do; a node without endpoints of a Local Service refuses the NodePort and is marked down",
    );
    r.warn(
        TITLE,
        "no tags in LBaaS v1: pools and VIPs are recognised by their name and description only, and orphan \
         collection does not look for them",
        "do not rename or re-describe the pools and VIPs the controller created",
    );
}

fn check_octavia_details(
    config: &CloudConfig,
    facts: &Facts,
    generation: LbaasGeneration,
    r: &mut Builder,
) {
    if generation != LbaasGeneration::Octavia {
        return;
    }
    let lb = &config.load_balancer;
    let version = match &facts.octavia_version {
        Probe::Got(v) => *v,
        Probe::Failed(e) => {
            r.fail(
                "Octavia API",
                format!("the load-balancer endpoint failed: {}", e.message),
                "check that the load-balancer endpoint in the catalog is reachable from the controller",
            );
            return;
        }
        Probe::Skipped => return,
    };
    let f = CloudFeatures::octavia(
        version.0,
        version.1,
        effective_provider(config, facts).as_deref(),
    );
    let missing: Vec<&str> = [
        (!f.timeouts).then_some("timeouts (2.1)"),
        (!f.tags).then_some("tags (2.5)"),
        (!f.flavors).then_some("flavors (2.6)"),
        (!f.allowed_cidrs).then_some("allowed_cidrs (2.12)"),
        (!f.availability_zones).then_some("availability zones (2.14)"),
        (!f.proxy_v2).then_some("PROXYV2 (2.22)"),
        (!f.sctp).then_some("SCTP (2.23)"),
        (!f.additional_vips).then_some("additional VIPs/dual-stack (2.26)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    r.ok(
        "Octavia API version",
        if missing.is_empty() {
            format!(
                "{} (every optional feature the controller uses)",
                f.version_text()
            )
        } else {
            format!("{}; lacks {}", f.version_text(), missing.join(", "))
        },
    );
    if !f.allowed_cidrs {
        if lb.manage_security_groups {
            r.warn(
                "source ranges",
                format!("API {} < 2.12 has no listener allowed_cidrs: loadBalancerSourceRanges are enforced through the nodes' security groups", f.version_text()),
                "nothing to do; upgrade Octavia to enforce them on the load balancer itself",
            );
        } else {
            r.warn(
                "source ranges",
                format!("API {} < 2.12 has no listener allowed_cidrs: loadBalancerSourceRanges cannot be enforced (each such Service gets a Warning Event)", f.version_text()),
                "set [LoadBalancer] manage-security-groups = true to enforce them with security groups",
            );
        }
    }
    if !f.tags {
        r.warn(
            "tags",
            format!(
                "API {} < 2.5 has no tags: load balancers are recognised by name only",
                f.version_text()
            ),
            "do not reuse cluster names within one project",
        );
    }
    if let Some(az) = &lb.availability_zone {
        if !f.availability_zones {
            r.warn(
                "availability-zone",
                format!("availability-zone = {az} but API {} < 2.14 has no availability zones: it is not sent", f.version_text()),
                "remove availability-zone, or upgrade Octavia",
            );
        } else if let Some(zones) = facts.availability_zones.got() {
            match zones.iter().find(|z| &z.name == az) {
                Some(z) if z.enabled => {
                    r.ok("availability-zone", format!("{az} exists and is enabled"))
                }
                Some(_) => r.fail(
                    "availability-zone",
                    format!("availability zone {az} is disabled"),
                    "pick an enabled zone: openstack loadbalancer availabilityzone list",
                ),
                None => r.fail(
                    "availability-zone",
                    format!(
                        "availability zone {az} does not exist; the cloud has: {}",
                        list_or_none(zones.iter().map(|z| z.name.as_str()))
                    ),
                    "set availability-zone to one of the listed zones or remove it",
                ),
            }
        }
    }

    match &facts.providers {
        Probe::Got(providers) => {
            let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            match &lb.lb_provider {
                Some(wanted) if !names.iter().any(|n| n.eq_ignore_ascii_case(wanted)) => r.fail(
                    "provider",
                    format!("lb-provider = {wanted} is not offered; the cloud has: {}", list_or_none(names.iter().copied())),
                    "set [LoadBalancer] lb-provider to one of the offered providers, or remove it for the cloud's default",
                ),
                Some(wanted) => r.ok("provider", format!("{wanted} (offered: {})", names.join(", "))),
                None => r.ok("provider", format!("cloud default (offered: {})", list_or_none(names.iter().copied()))),
            }
        }
        Probe::Failed(e) => r.warn(
            "provider",
            format!("cannot list providers: {}", e.message),
            "nothing to do unless lb-provider is set; the cloud's policy hides the provider list",
        ),
        Probe::Skipped => {}
    }
    if f.provider_refuses_lb_method(lb.lb_method) {
        let offered: Vec<&str> = facts
            .providers
            .got()
            .map(|list| list.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        let ovn = offered.iter().find(|n| n.eq_ignore_ascii_case("ovn"));
        let which = match &lb.lb_provider {
            Some(p) => format!("lb-provider = {p}"),
            None => "the cloud's default provider (amphora unless lb-provider says otherwise)"
                .to_string(),
        };
        r.fail(
            "lb-method",
            format!(
                "[LoadBalancer] lb-method = {} but {which} refuses it (Octavia: \"Amphora provider does not support {} algorithm.\", 501): every Service without a lb-method annotation would be refused",
                lb.lb_method.as_api(),
                lb.lb_method.as_api()
            ),
            match ovn {
                Some(o) => format!("set [LoadBalancer] lb-method to ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP, or lb-provider = {o} (offered here), which balances by SOURCE_IP_PORT"),
                None => "set [LoadBalancer] lb-method to ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP".to_string(),
            },
        );
    }
    if f.is_ovn() && lb.lb_method != LbMethod::SourceIpPort {
        r.warn(
            "lb-method",
            format!("the ovn provider only balances by SOURCE_IP_PORT; lb-method = {} cannot be honoured", lb.lb_method.as_api()),
            "set [LoadBalancer] lb-method = SOURCE_IP_PORT",
        );
    }

    if let Some(flavor) = &lb.flavor_id {
        if !f.flavors {
            r.warn(
                "flavor",
                format!(
                    "flavor-id = {flavor} but API {} < 2.6 has no flavors: it is not sent",
                    f.version_text()
                ),
                "remove flavor-id, or upgrade Octavia",
            );
        } else {
            match &facts.flavors {
                Probe::Got(flavors) => match flavors.iter().find(|x| &x.id == flavor || &x.name == flavor) {
                    Some(x) if x.enabled => r.ok("flavor", format!("{} ({}) exists and is enabled", x.name, x.id)),
                    Some(x) => r.fail(
                        "flavor",
                        format!("flavor {} ({}) is disabled: Octavia rejects load balancers with it", x.name, x.id),
                        "pick an enabled flavor: openstack loadbalancer flavor list",
                    ),
                    None => r.fail(
                        "flavor",
                        format!(
                            "flavor-id = {flavor} not found: Octavia rejects load balancers with it; flavors: {}",
                            list_or_none(flavors.iter().map(|x| x.name.as_str()))
                        ),
                        "set [LoadBalancer] flavor-id to the id of a listed flavor, or remove it",
                    ),
                },
                Probe::Failed(e) => r.warn(
                    "flavor",
                    format!("cannot list flavors to verify flavor-id = {flavor}: {}", e.message),
                    "verify with: openstack loadbalancer flavor show <id>",
                ),
                Probe::Skipped => {}
            }
        }
    } else if let Some(flavors) = facts.flavors.got() {
        r.ok(
            "flavor",
            format!(
                "none configured (cloud default); available: {}",
                list_or_none(
                    flavors
                        .iter()
                        .filter(|x| x.enabled)
                        .map(|x| x.name.as_str())
                )
            ),
        );
    }
}

fn list_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn subnet_text(s: &SubnetFacts) -> String {
    let free = match s.free_ips {
        Some(n) => format!("{n} free address(es)"),
        None => "free addresses unknown".to_string(),
    };
    let name = if s.name.is_empty() {
        String::new()
    } else {
        format!("{} ", s.name)
    };
    format!(
        "{name}{} ({}) on network {}, {free}",
        s.cidr, s.id, s.network_id
    )
}

fn lookup_failure(
    r: &mut Builder,
    title: &str,
    key: &str,
    id: &str,
    e: &ProbeError,
    fix_list: &str,
) {
    match e.kind {
        ProbeErrorKind::NotFound => r.fail(
            title,
            format!("{key} = {id} does not exist or is not visible to this project"),
            format!("set [LoadBalancer] {key} to an existing one ({fix_list})"),
        ),
        _ => r.fail(
            title,
            format!("looking up {key} = {id} failed: {}", e.message),
            format!("check the id ({fix_list})"),
        ),
    }
}

fn check_vip_placement(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    let p = &config.load_balancer.placement;
    const TITLE: &str = "VIP subnet";
    if let Some(id) = &p.subnet_id {
        match &facts.vip_subnet {
            Probe::Got(s) if s.free_ips == Some(0) => r.fail(
                TITLE,
                format!("subnet-id: {}", subnet_text(s)),
                "the VIP subnet is full: free addresses (delete unused ports) or configure another subnet-id",
            ),
            Probe::Got(s) => {
                if let Some(net) = &p.network_id {
                    if &s.network_id != net {
                        r.fail(
                            TITLE,
                            format!("subnet-id {id} is on network {}, not on network-id {net}", s.network_id),
                            "make subnet-id and network-id agree, or set only one of them",
                        );
                        return;
                    }
                }
                r.ok(TITLE, format!("subnet-id: {}", subnet_text(s)));
            }
            Probe::Failed(e) => lookup_failure(r, TITLE, "subnet-id", id, e, "openstack subnet list"),
            Probe::Skipped => {}
        }
    } else if let Some(id) = &p.network_id {
        match &facts.vip_network {
            Probe::Got(n) if n.subnets.is_empty() => r.fail(
                TITLE,
                format!("network-id {} ({id}) has no subnet for a VIP", n.name),
                "create a subnet on it or point network-id/subnet-id at the nodes' network",
            ),
            Probe::Got(n) if n.free_ips == Some(0) => r.fail(
                TITLE,
                format!("network-id {} ({id}) has no free addresses", n.name),
                "free addresses on the network or configure another one",
            ),
            Probe::Got(n) => r.ok(
                TITLE,
                format!(
                    "network-id {} ({id}); subnets: {}",
                    n.name,
                    n.subnets
                        .iter()
                        .map(|s| s.cidr.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Probe::Failed(e) => {
                lookup_failure(r, TITLE, "network-id", id, e, "openstack network list")
            }
            Probe::Skipped => {}
        }
    } else {
        let external: Vec<&str> = facts
            .external_networks
            .got()
            .map(|n| n.iter().map(|n| n.id.as_str()).collect())
            .unwrap_or_default();
        let internal_subnets = facts.project_subnets.got().map(|all| {
            all.iter()
                .filter(|s| !external.contains(&s.network_id.as_str()))
                .cloned()
                .collect::<Vec<_>>()
        });
        let project_subnets = match (&facts.project_subnets, internal_subnets) {
            (_, Some(list)) => Probe::Got(list),
            (other, None) => other.clone(),
        };
        match &project_subnets {
            Probe::Got(subnets) if subnets.is_empty() => r.fail(
                TITLE,
                "subnet-id is not set and the project sees no (non-external) subnet the VIP could be derived from",
                "set [LoadBalancer] subnet-id to the nodes' subnet",
            ),
            Probe::Got(subnets) => r.ok(
                TITLE,
                format!(
                    "not configured: each VIP goes on the subnet of its nodes' ports; visible subnets: {}",
                    subnets.iter().map(|s| format!("{} {}", s.name, s.cidr)).collect::<Vec<_>>().join(", ")
                ),
            ),
            Probe::Failed(e) => r.warn(
                TITLE,
                format!("not configured and the project's subnets could not be listed: {}", e.message),
                "set [LoadBalancer] subnet-id to the nodes' subnet",
            ),
            Probe::Skipped => {}
        }
    }
    if let Some(id) = &p.member_subnet_id {
        match &facts.member_subnet {
            Probe::Got(s) => r.ok(
                "member subnet",
                format!("member-subnet-id: {}", subnet_text(s)),
            ),
            Probe::Failed(e) => lookup_failure(
                r,
                "member subnet",
                "member-subnet-id",
                id,
                e,
                "openstack subnet list",
            ),
            Probe::Skipped => {}
        }
    }
}

fn check_floating(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    let lb = &config.load_balancer;
    let p = &lb.placement;
    const TITLE: &str = "floating network";
    let externals = facts.external_networks.got();
    let external_list = || {
        externals
            .map(|nets| list_or_none(nets.iter().map(|n| n.name.as_str())))
            .unwrap_or_else(|| "unknown".to_string())
    };
    if lb.internal_lb && p.floating_network_id.is_none() {
        r.ok(
            TITLE,
            "internal-lb = true: Services get no floating IP unless they ask for one",
        );
        return;
    }
    let network = if let Some(id) = &p.floating_network_id {
        match &facts.floating_network {
            Probe::Got(n) => n.clone(),
            Probe::Failed(e) => {
                let fix = format!("external networks: {}", external_list());
                lookup_failure(r, TITLE, "floating-network-id", id, e, &fix);
                return;
            }
            Probe::Skipped => return,
        }
    } else {
        match &facts.external_networks {
            Probe::Got(nets) if nets.len() == 1 => nets[0].clone(),
            Probe::Got(nets) if nets.is_empty() => {
                r.fail(
                    TITLE,
                    "floating-network-id is not set and the cloud has no external network",
                    "ask the cloud operator for an external (provider) network, or set internal-lb = true for VIP-only Services",
                );
                return;
            }
            Probe::Got(nets) => {
                r.fail(
                    TITLE,
                    format!(
                        "floating-network-id is not set and there are {} external networks: {}",
                        nets.len(),
                        nets.iter()
                            .map(|n| format!("{} ({})", n.name, n.id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "set [LoadBalancer] floating-network-id to one of them",
                );
                return;
            }
            Probe::Failed(e) => {
                r.fail(
                    TITLE,
                    format!("floating-network-id is not set and external networks could not be listed: {}", e.message),
                    "set [LoadBalancer] floating-network-id",
                );
                return;
            }
            Probe::Skipped => return,
        }
    };
    let how = if p.floating_network_id.is_some() {
        "floating-network-id"
    } else {
        "the only external network"
    };
    if !network.external {
        r.fail(
            TITLE,
            format!("{how} {} ({}) is not external (router:external is false): floating IPs cannot come from it", network.name, network.id),
            format!("set floating-network-id to an external network: {}", external_list()),
        );
        return;
    }
    match network.free_ips {
        Some(0) => r.fail(
            TITLE,
            format!("{how} {} ({}) has no free addresses", network.name, network.id),
            "release unused floating IPs (openstack floating ip list --status DOWN) or ask for a bigger range",
        ),
        Some(n) => r.ok(TITLE, format!("{how} {} ({}), {n} free address(es)", network.name, network.id)),
        None => r.ok(TITLE, format!("{how} {} ({}); free addresses unknown (needs admin)", network.name, network.id)),
    }
    if let Some(id) = &p.floating_subnet_id {
        match &facts.floating_subnet {
            Probe::Got(s) if s.network_id != network.id => r.fail(
                "floating subnet",
                format!(
                    "floating-subnet-id {id} is on network {}, not on the floating network {}",
                    s.network_id, network.id
                ),
                "use a subnet of the floating network",
            ),
            Probe::Got(s) if s.free_ips == Some(0) => r.fail(
                "floating subnet",
                format!("floating-subnet-id: {}", subnet_text(s)),
                "release floating IPs or pick another floating subnet",
            ),
            Probe::Got(s) => r.ok(
                "floating subnet",
                format!("floating-subnet-id: {}", subnet_text(s)),
            ),
            Probe::Failed(e) => lookup_failure(
                r,
                "floating subnet",
                "floating-subnet-id",
                id,
                e,
                "openstack subnet list --network <floating network>",
            ),
            Probe::Skipped => {}
        }
    }
}

/// A broken class only breaks the Services that ask for it, so its problems are warnings.
fn check_classes(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    for class in &config.classes {
        let title = format!("class {}", class.name);
        let lookups: Vec<&ClassLookup> = facts
            .class_lookups
            .iter()
            .filter(|l| l.class == class.name)
            .collect();
        let mut good = Vec::new();
        let mut problems = Vec::new();
        for l in &lookups {
            match &l.found {
                Probe::Got((name, external)) => {
                    if l.key == "floating-network-id" && *external == Some(false) {
                        problems.push(format!(
                            "{} = {} ({name}) is not an external network",
                            l.key, l.id
                        ));
                    } else {
                        good.push(format!("{} {name}", l.key));
                    }
                }
                Probe::Failed(e) if e.kind == ProbeErrorKind::NotFound => {
                    problems.push(format!("{} = {} does not exist", l.key, l.id));
                }
                Probe::Failed(e) => problems.push(format!("{} = {}: {}", l.key, l.id, e.message)),
                Probe::Skipped => {}
            }
        }
        if problems.is_empty() {
            let what = if good.is_empty() {
                "no ids to check".to_string()
            } else {
                good.join(", ")
            };
            r.ok(&title, what);
        } else {
            r.warn(
                &title,
                format!(
                    "{}: Services with loadbalancer.openstack.org/class: {} will fail",
                    problems.join("; "),
                    class.name
                ),
                format!("fix [LoadBalancerClass \"{}\"] in cloud.conf", class.name),
            );
        }
    }
}

/// Quotas that a new LoadBalancer Service consumes, per generation.
fn check_quotas(config: &CloudConfig, facts: &Facts, generation: LbaasGeneration, r: &mut Builder) {
    let lb = &config.load_balancer;
    let mut lines = Vec::new();
    let mut evaluate_one = |q: &QuotaFacts, r: &mut Builder, what: &str| {
        let Some(used) = q.used else { return };
        if q.limit < 0 {
            lines.push(format!("{what} {used}/unlimited"));
            return;
        }
        let limit = q.limit as u64;
        lines.push(format!("{what} {used}/{limit}"));
        if used >= limit {
            r.fail(
                "quota",
                format!("{what} quota exhausted: {used} of {limit} used"),
                format!(
                    "delete unused {what}s or ask the cloud operator to raise the {} quota",
                    q.resource
                ),
            );
        } else if limit - used <= (limit / 10).max(1) {
            r.warn(
                "quota",
                format!("{what} quota nearly exhausted: {used} of {limit} used"),
                format!(
                    "ask the cloud operator to raise the {} quota before adding Services",
                    q.resource
                ),
            );
        }
    };
    match &facts.lb_quotas {
        Probe::Got(quotas) => {
            for q in quotas {
                let what = match q.resource.as_str() {
                    "load_balancer" | "loadbalancer" | "vip" => "load balancer",
                    "listener" => "listener",
                    "pool" => "pool",
                    "member" => "member",
                    "health_monitor" | "healthmonitor" => {
                        if !lb.create_monitor {
                            continue;
                        }
                        "health monitor"
                    }
                    _ => continue,
                };
                evaluate_one(q, r, what);
            }
        }
        Probe::Failed(e) => r.warn(
            "quota",
            format!(
                "cannot read the {} quota: {}",
                generation_name(generation),
                e.message
            ),
            "check with: openstack loadbalancer quota show <project>",
        ),
        Probe::Skipped => {}
    }
    match &facts.network_quotas {
        Probe::Got(quotas) => {
            for q in quotas {
                let what = match q.resource.as_str() {
                    "floatingip" => {
                        if lb.internal_lb {
                            continue;
                        }
                        "floating IP"
                    }
                    "port" => "port",
                    "security_group" | "security_group_rule" if !lb.manage_security_groups => {
                        continue
                    }
                    "security_group" => "security group",
                    "security_group_rule" => "security group rule",
                    // Neutron LBaaS counts its objects in the network quota.
                    "loadbalancer" | "listener" | "pool" | "vip"
                        if generation != LbaasGeneration::Octavia =>
                    {
                        "load balancer"
                    }
                    _ => continue,
                };
                evaluate_one(q, r, what);
            }
        }
        Probe::Failed(e) => r.warn(
            "quota",
            format!("cannot read the network quota: {}", e.message),
            "check with: openstack quota show --usage",
        ),
        Probe::Skipped => {}
    }
    if !lines.is_empty() {
        r.ok("quota", lines.join(", "));
    }
}

fn check_extras(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    let lb = &config.load_balancer;
    let extensions = facts
        .network_extensions
        .got()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let has = |alias: &str| extensions.iter().any(|e| e == alias);
    if lb.manage_security_groups && !has("security-group") {
        r.fail(
            "security groups",
            "manage-security-groups = true but Neutron has no security-group extension",
            "set [LoadBalancer] manage-security-groups = false",
        );
    }
    if !has("standard-attr-tag") && !has("tag") {
        r.warn(
            "floating IP tags",
            "Neutron has no tag extension: floating IPs the controller creates are recognised by description only",
            "nothing to do; avoid editing the descriptions of floating IPs the controller created",
        );
    }
    if lb.default_tls_container_ref.is_some() && lb.container_store.as_deref() != Some("external") {
        let has_barbican = facts
            .auth
            .got()
            .is_some_and(|a| a.catalog.iter().any(|s| s.service_type == "key-manager"));
        if !has_barbican {
            r.warn(
                "TLS containers",
                "default-tls-container-ref is set but the catalog has no key-manager (Barbican) service",
                "set container-store = external if the reference is not a Barbican container, or remove it",
            );
        }
    }
}

/// Plain-text rendering: one line per check with its mark and evidence; each ✗ is followed by
/// an indented `fix:` line (warnings keep their advice in the JSON form); the verdict last.
pub fn render_text(report: &Report) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        out.push_str(&format!(
            "{} {:<width$}  {}\n",
            c.status.mark(),
            c.title,
            c.evidence
        ));
        if let Some(fix) = &c.fix {
            if c.status == Status::Fail {
                out.push_str(&format!("  {:<width$}  fix: {fix}\n", ""));
            }
        }
    }
    out.push_str(&format!(
        "\n{} {}\n",
        if report.would_work { "✓" } else { "✗" },
        report.summary
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CloudConfig;

    const BASE_CONF: &str =
        "[Global]\nauth-url = https://keystone.example.com/v3\nuser-id = u1\npassword = pw\n\
                             project-id = p1\nregion = RegionOne\n";

    fn conf(extra: &str) -> CloudConfig {
        CloudConfig::parse(&format!("{BASE_CONF}{extra}"))
            .unwrap()
            .0
    }

    fn endpoint(url: &str) -> Endpoint {
        Endpoint {
            interface: EndpointInterface::Public,
            region: Some("RegionOne".into()),
            url: url.into(),
        }
    }

    fn service(t: &str, name: &str, url: &str) -> CatalogService {
        CatalogService {
            service_type: t.into(),
            name: name.into(),
            endpoints: vec![endpoint(url)],
        }
    }

    fn subnet(id: &str, network: &str, free: Option<u64>) -> SubnetFacts {
        SubnetFacts {
            id: id.into(),
            name: format!("{id}-name"),
            network_id: network.into(),
            cidr: "10.0.0.0/24".into(),
            free_ips: free,
        }
    }

    fn external(id: &str, free: Option<u64>) -> NetworkFacts {
        NetworkFacts {
            id: id.into(),
            name: format!("{id}-name"),
            external: true,
            subnets: vec![subnet(&format!("{id}-subnet"), id, free)],
            free_ips: free,
        }
    }

    fn quota(resource: &str, limit: i64, used: u64) -> QuotaFacts {
        QuotaFacts {
            resource: resource.into(),
            limit,
            used: Some(used),
        }
    }

    /// A cloud where everything is in order: Octavia 2.27 with amphora, one external network.
    fn healthy() -> Facts {
        Facts {
            auth: Probe::Got(AuthFacts {
                user_id: "u1".into(),
                user_name: Some("k8s".into()),
                project_id: Some("p1".into()),
                project_name: Some("demo".into()),
                roles: vec!["member".into(), "load-balancer_member".into()],
                catalog: vec![
                    service("identity", "keystone", "http://127.0.0.1:5000/v3"),
                    service("network", "neutron", "http://127.0.0.1:9696"),
                    service("load-balancer", "octavia", "http://127.0.0.1:9876"),
                ],
            }),
            network_extensions: Probe::Got(
                [
                    "security-group",
                    "standard-attr-tag",
                    "router",
                    "external-net",
                ]
                .map(String::from)
                .to_vec(),
            ),
            octavia_version: Probe::Got((2, 27)),
            providers: Probe::Got(vec![ProviderFacts {
                name: "amphora".into(),
                description: "Amphora".into(),
            }]),
            flavors: Probe::Got(vec![FlavorFacts {
                id: "f1".into(),
                name: "small".into(),
                enabled: true,
            }]),
            availability_zones: Probe::Got(vec![AvailabilityZoneFacts {
                name: "az1".into(),
                enabled: true,
            }]),
            project_subnets: Probe::Got(vec![subnet("nodes", "private", Some(200))]),
            external_networks: Probe::Got(vec![external("public", Some(100))]),
            lb_quotas: Probe::Got(vec![
                quota("load_balancer", 10, 1),
                quota("listener", -1, 3),
            ]),
            network_quotas: Probe::Got(vec![quota("floatingip", 50, 2), quota("port", 500, 10)]),
            ..Facts::default()
        }
    }

    fn statuses(report: &Report, title: &str) -> Vec<Status> {
        report
            .checks
            .iter()
            .filter(|c| c.title == title)
            .map(|c| c.status)
            .collect()
    }

    fn only_failure(report: &Report) -> &Check {
        let fails: Vec<&Check> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        assert_eq!(fails.len(), 1, "{}", render_text(report));
        assert!(!report.would_work);
        fails[0]
    }

    #[test]
    fn the_rate_limit_in_effect_is_shown_and_switching_it_off_is_a_warning() {
        let report = evaluate(
            &conf("[Metadata]\napi-rate-limit = 20\napi-rate-burst = 60\n"),
            &healthy(),
        );
        let line = report
            .checks
            .iter()
            .find(|c| c.title == "OpenStack API rate limit")
            .unwrap();
        assert_eq!(line.status, Status::Ok);
        assert!(
            line.evidence.contains("20 requests/s, bursts of 60"),
            "{line:?}"
        );
        let report = evaluate(&conf("[Metadata]\napi-rate-limit = 0\n"), &healthy());
        let line = report
            .checks
            .iter()
            .find(|c| c.title == "OpenStack API rate limit")
            .unwrap();
        assert_eq!(line.status, Status::Warn);
        assert!(line.fix.as_deref().unwrap_or("").contains("api-rate-limit"));
        assert!(report.would_work, "no limit is a choice, not a failure");
    }

    #[test]
    fn healthy_cloud_works_without_warnings() {
        let report = evaluate(&conf(""), &healthy());
        let text = render_text(&report);
        assert!(report.would_work, "{text}");
        assert!(
            report.checks.iter().all(|c| c.status == Status::Ok),
            "{text}"
        );
        let titles: Vec<&str> = report.checks.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(
            titles,
            vec![
                "cloud.conf",
                "OpenStack API rate limit",
                "credentials",
                "authentication",
                "catalog",
                "endpoint network",
                "endpoint load-balancer",
                "Neutron",
                "load-balancer service",
                "Octavia API version",
                "provider",
                "flavor",
                "VIP subnet",
                "floating network",
                "quota",
            ]
        );
        assert!(
            report.summary.contains("would work (Octavia API 2.27"),
            "{}",
            report.summary
        );
        assert!(text.contains("✓ floating network"), "{text}");
        assert!(
            text.contains("the only external network public-name (public), 100 free"),
            "{text}"
        );
        assert!(
            text.contains(
                "load balancer 1/10, listener 3/unlimited, floating IP 2/50, port 10/500"
            ),
            "{text}"
        );
    }

    #[test]
    fn wrong_password_stops_after_authentication() {
        let mut facts = healthy();
        facts.auth = Probe::failed(
            ProbeErrorKind::Unauthorized,
            "The request you have made requires authentication.",
        );
        let report = evaluate(&conf(""), &facts);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "authentication");
        assert!(
            fail.fix.as_deref().unwrap().contains("password"),
            "{fail:?}"
        );
        assert!(
            statuses(&report, "catalog").is_empty(),
            "nothing after a failed authentication"
        );
    }

    #[test]
    fn authentication_failures_get_specific_fixes() {
        for (kind, needle) in [
            (
                ProbeErrorKind::Unreachable,
                "cannot reach https://keystone.example.com/v3",
            ),
            (ProbeErrorKind::Tls, "ca-file"),
            (ProbeErrorKind::NotFound, "Keystone's v3 root"),
            (ProbeErrorKind::Forbidden, "project-id"),
            (ProbeErrorKind::Server, "retry later"),
        ] {
            let mut facts = healthy();
            facts.auth = Probe::failed(kind, "boom");
            let report = evaluate(&conf(""), &facts);
            let fail = only_failure(&report);
            assert!(
                fail.fix.as_deref().unwrap().contains(needle),
                "{kind:?}: {fail:?}"
            );
            assert!(fail.evidence.contains("boom"));
        }
    }

    #[test]
    fn missing_credentials_fail_before_any_call() {
        let cfg = CloudConfig::parse("[Global]\nauth-url = https://k/v3\n")
            .unwrap()
            .0;
        let report = evaluate(&cfg, &Facts::default());
        let fail = only_failure(&report);
        assert_eq!(fail.title, "credentials");
        assert!(fail.evidence.contains("no usable credentials"), "{fail:?}");
    }

    #[test]
    fn unscoped_token_fails() {
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.project_id = None;
        }
        let fail_title = only_failure(&evaluate(&conf(""), &facts)).title.clone();
        assert_eq!(fail_title, "authentication");
    }

    #[test]
    fn disabled_feature_switch_fails_but_still_checks_the_cloud() {
        let report = evaluate(&conf("[LoadBalancer]\nenabled = false\n"), &healthy());
        assert_eq!(only_failure(&report).title, "load balancers enabled");
        assert_eq!(statuses(&report, "floating network"), vec![Status::Ok]);
    }

    #[test]
    fn no_load_balancer_service() {
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.catalog.retain(|s| s.service_type != "load-balancer");
        }
        let report = evaluate(&conf(""), &facts);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "load-balancer service");
        assert!(fail.fix.as_deref().unwrap().contains("Octavia"));
        assert!(statuses(&report, "floating network").is_empty());
    }

    #[test]
    fn neutron_lbaas_generations() {
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.catalog.retain(|s| s.service_type != "load-balancer");
        }
        let mut v2 = facts.clone();
        if let Probe::Got(ext) = &mut v2.network_extensions {
            ext.push("lbaasv2".into());
        }
        let report = evaluate(&conf(""), &v2);
        assert!(report.would_work, "{}", render_text(&report));
        assert_eq!(statuses(&report, "Neutron LBaaS v2"), vec![Status::Warn]);
        assert!(statuses(&report, "Octavia API version").is_empty());

        let mut v1 = facts.clone();
        if let Probe::Got(ext) = &mut v1.network_extensions {
            ext.push("lbaas".into());
        }
        let report = evaluate(&conf(""), &v1);
        assert!(report.would_work, "{}", render_text(&report));
        assert!(
            report.summary.contains("Neutron LBaaS v1; 4 warning(s)"),
            "{}",
            report.summary
        );
        assert_eq!(statuses(&report, "LBaaS v1"), vec![Status::Warn; 4]);
        let text = render_text(&report);
        for said in [
            "exactly one TCP port",
            "SOURCE_IP_PORT is refused",
            "listener timeouts, loadBalancerSourceRanges",
            "manage-security-groups",
            "TCP checks of the NodePort",
            "name and description only",
        ] {
            assert!(text.contains(said), "{said:?} missing from:\n{text}");
        }
        assert_eq!(
            features(&conf(""), &v1).map(|f| f.generation),
            Some(Generation::NeutronV1)
        );

        let report = evaluate(&conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n"), &v1);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "LBaaS v1");
        assert!(
            fail.evidence.contains("lb-method = SOURCE_IP_PORT"),
            "{fail:?}"
        );
        assert!(
            fail.fix.as_deref().unwrap().contains("ROUND_ROBIN"),
            "{fail:?}"
        );
        // The same setting is fine where the cloud has Octavia-style algorithms.
        assert!(evaluate(&conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n"), &v2).would_work);

        let mut net_only = v1.clone();
        net_only.vip_network = Probe::Got(NetworkFacts {
            id: "n1".into(),
            name: "nodes".into(),
            subnets: vec![SubnetFacts {
                id: "s1".into(),
                name: "nodes".into(),
                cidr: "10.0.0.0/24".into(),
                network_id: "n1".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let report = evaluate(&conf("[LoadBalancer]\nnetwork-id = n1\n"), &net_only);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "LBaaS v1");
        assert!(
            fail.fix.as_deref().unwrap().contains("subnet-id"),
            "{fail:?}"
        );

        let report = evaluate(&conf("[LoadBalancer]\nlb-version = v2\n"), &v1);
        assert_eq!(only_failure(&report).title, "load-balancer service");

        let report = evaluate(&conf("[LoadBalancer]\nuse-octavia = true\n"), &v2);
        let fail = only_failure(&report);
        assert!(fail.evidence.contains("forces Octavia"), "{fail:?}");
        assert!(
            fail.evidence.contains("the cloud offers Neutron LBaaS v2"),
            "{fail:?}"
        );
    }

    #[test]
    fn endpoint_interface_and_region_must_exist() {
        let report = evaluate(&conf("os-endpoint-type = internal\n"), &healthy());
        let fails: Vec<&Check> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        assert_eq!(
            fails.len(),
            2,
            "network and load-balancer: {}",
            render_text(&report)
        );
        assert!(fails[0]
            .evidence
            .contains("no internal endpoint in region RegionOne"));
        assert!(fails[0].evidence.contains("public@RegionOne"));
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.catalog.retain(|s| s.service_type != "network");
        }
        assert_eq!(
            only_failure(&evaluate(&conf(""), &facts)).title,
            "endpoint network"
        );
    }

    #[test]
    fn neutron_down_fails() {
        let mut facts = healthy();
        facts.network_extensions = Probe::failed(ProbeErrorKind::Unreachable, "connection refused");
        let fail = only_failure(&evaluate(&conf(""), &facts)).clone();
        assert_eq!(fail.title, "Neutron");
        assert!(fail.evidence.contains("connection refused"));
    }

    #[test]
    fn octavia_down_fails() {
        let mut facts = healthy();
        facts.octavia_version = Probe::failed(ProbeErrorKind::Server, "503 Service Unavailable");
        assert_eq!(
            only_failure(&evaluate(&conf(""), &facts)).title,
            "Octavia API"
        );
    }

    #[test]
    fn floating_network_problems() {
        let mut none = healthy();
        none.external_networks = Probe::Got(vec![]);
        let fail = only_failure(&evaluate(&conf(""), &none)).clone();
        assert!(fail.evidence.contains("no external network"), "{fail:?}");
        assert!(fail.fix.as_deref().unwrap().contains("internal-lb"));
        let report = evaluate(&conf("[LoadBalancer]\ninternal-lb = true\n"), &none);
        assert!(
            report.would_work,
            "internal-only Services need no floating network"
        );

        let mut two = healthy();
        two.external_networks = Probe::Got(vec![external("a", Some(5)), external("b", Some(5))]);
        let fail = only_failure(&evaluate(&conf(""), &two)).clone();
        assert!(fail.evidence.contains("2 external networks"), "{fail:?}");

        let mut missing = healthy();
        missing.floating_network =
            Probe::failed(ProbeErrorKind::NotFound, "Network x could not be found.");
        let fail = only_failure(&evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = x\n"),
            &missing,
        ))
        .clone();
        assert!(
            fail.evidence
                .contains("floating-network-id = x does not exist"),
            "{fail:?}"
        );
        assert!(
            fail.fix.as_deref().unwrap().contains("public-name"),
            "lists the external networks: {fail:?}"
        );

        let mut internal = healthy();
        internal.floating_network = Probe::Got(NetworkFacts {
            external: false,
            ..external("priv", Some(5))
        });
        let fail = only_failure(&evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = priv\n"),
            &internal,
        ))
        .clone();
        assert!(fail.evidence.contains("not external"), "{fail:?}");

        let mut full = healthy();
        full.floating_network = Probe::Got(external("public", Some(0)));
        let fail = only_failure(&evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = public\n"),
            &full,
        ))
        .clone();
        assert!(fail.evidence.contains("no free addresses"), "{fail:?}");

        let mut unknown = healthy();
        unknown.floating_network = Probe::Got(external("public", None));
        let report = evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = public\n"),
            &unknown,
        );
        assert!(report.would_work);
    }

    #[test]
    fn floating_subnet_must_belong_to_the_floating_network() {
        let mut facts = healthy();
        facts.floating_network = Probe::Got(external("public", Some(9)));
        facts.floating_subnet = Probe::Got(subnet("fs", "elsewhere", Some(3)));
        let cfg = conf("[LoadBalancer]\nfloating-network-id = public\nfloating-subnet-id = fs\n");
        assert_eq!(
            only_failure(&evaluate(&cfg, &facts)).title,
            "floating subnet"
        );
        facts.floating_subnet = Probe::Got(subnet("fs", "public", Some(3)));
        assert!(evaluate(&cfg, &facts).would_work);
    }

    #[test]
    fn vip_subnet_problems() {
        let cfg = conf("[LoadBalancer]\nsubnet-id = s1\n");
        let mut facts = healthy();
        facts.vip_subnet = Probe::failed(ProbeErrorKind::NotFound, "Subnet s1 could not be found.");
        let fail = only_failure(&evaluate(&cfg, &facts)).clone();
        assert!(
            fail.evidence.contains("subnet-id = s1 does not exist"),
            "{fail:?}"
        );
        facts.vip_subnet = Probe::Got(subnet("s1", "net", Some(0)));
        assert!(only_failure(&evaluate(&cfg, &facts))
            .evidence
            .contains("0 free"));
        facts.vip_subnet = Probe::Got(subnet("s1", "net", Some(7)));
        assert!(evaluate(&cfg, &facts).would_work);
        let both = conf("[LoadBalancer]\nsubnet-id = s1\nnetwork-id = other\n");
        assert!(only_failure(&evaluate(&both, &facts))
            .evidence
            .contains("not on network-id other"));

        let mut empty = healthy();
        empty.project_subnets = Probe::Got(vec![]);
        assert_eq!(
            only_failure(&evaluate(&conf(""), &empty)).title,
            "VIP subnet"
        );
        // The external network's subnet is visible to everyone but cannot hold a VIP for nodes.
        empty.project_subnets = Probe::Got(vec![subnet("public-subnet", "public", Some(9))]);
        assert_eq!(
            only_failure(&evaluate(&conf(""), &empty)).title,
            "VIP subnet"
        );

        let net = conf("[LoadBalancer]\nnetwork-id = n1\n");
        let mut facts = healthy();
        facts.vip_network = Probe::Got(NetworkFacts {
            id: "n1".into(),
            name: "nodes".into(),
            ..NetworkFacts::default()
        });
        assert!(only_failure(&evaluate(&net, &facts))
            .evidence
            .contains("has no subnet"));

        let member = conf("[LoadBalancer]\nmember-subnet-id = m1\n");
        let mut facts = healthy();
        facts.member_subnet = Probe::failed(ProbeErrorKind::NotFound, "nope");
        assert_eq!(
            only_failure(&evaluate(&member, &facts)).title,
            "member subnet"
        );
    }

    #[test]
    fn old_octavia_warns_about_what_it_cannot_honour() {
        let mut facts = healthy();
        facts.octavia_version = Probe::Got((2, 10));
        let report = evaluate(&conf("[LoadBalancer]\navailability-zone = az1\n"), &facts);
        assert!(report.would_work, "{}", render_text(&report));
        assert_eq!(statuses(&report, "availability-zone"), vec![Status::Warn]);
        let ranges: Vec<&Check> = report
            .checks
            .iter()
            .filter(|c| c.title == "source ranges")
            .collect();
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("manage-security-groups = true"));
        assert!(report.checks.iter().any(|c| c
            .evidence
            .contains("lacks allowed_cidrs (2.12), availability zones (2.14)")));

        let report = evaluate(
            &conf("[LoadBalancer]\nmanage-security-groups = true\n"),
            &facts,
        );
        let ranges = report
            .checks
            .iter()
            .find(|c| c.title == "source ranges")
            .unwrap();
        assert!(ranges
            .evidence
            .contains("enforced through the nodes' security groups"));

        facts.octavia_version = Probe::Got((2, 4));
        let report = evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &facts);
        assert_eq!(statuses(&report, "tags"), vec![Status::Warn]);
        assert_eq!(statuses(&report, "flavor"), vec![Status::Warn]);
    }

    #[test]
    fn availability_zone_must_exist_on_new_apis() {
        let report = evaluate(
            &conf("[LoadBalancer]\navailability-zone = az9\n"),
            &healthy(),
        );
        let fail = only_failure(&report);
        assert!(
            fail.evidence
                .contains("az9 does not exist; the cloud has: az1"),
            "{fail:?}"
        );
        assert_eq!(
            statuses(
                &evaluate(
                    &conf("[LoadBalancer]\navailability-zone = az1\n"),
                    &healthy()
                ),
                "availability-zone"
            ),
            vec![Status::Ok]
        );
    }

    #[test]
    fn ovn_with_round_robin_warns() {
        let mut facts = healthy();
        facts.providers = Probe::Got(vec![
            ProviderFacts {
                name: "amphora".into(),
                description: String::new(),
            },
            ProviderFacts {
                name: "ovn".into(),
                description: String::new(),
            },
        ]);
        let report = evaluate(&conf("[LoadBalancer]\nlb-provider = ovn\n"), &facts);
        let check = report
            .checks
            .iter()
            .find(|c| c.title == "lb-method")
            .unwrap();
        assert_eq!(check.status, Status::Warn);
        assert!(check.evidence.contains("ROUND_ROBIN"));
        let report = evaluate(
            &conf("[LoadBalancer]\nlb-provider = ovn\nlb-method = SOURCE_IP_PORT\n"),
            &facts,
        );
        assert!(statuses(&report, "lb-method").is_empty());
        // The only provider is the default one.
        facts.providers = Probe::Got(vec![ProviderFacts {
            name: "OVN".into(),
            description: String::new(),
        }]);
        assert_eq!(
            statuses(&evaluate(&conf(""), &facts), "lb-method"),
            vec![Status::Warn]
        );
    }

    #[test]
    fn source_ip_port_with_amphora_fails() {
        let mut facts = healthy();
        facts.providers = Probe::Got(vec![
            ProviderFacts {
                name: "amphora".into(),
                description: String::new(),
            },
            ProviderFacts {
                name: "octavia".into(),
                description: String::new(),
            },
        ]);
        // The cloud's default (unknown here: two providers) and an explicit amphora.
        for text in [
            "[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n",
            "[LoadBalancer]\nlb-method = SOURCE_IP_PORT\nlb-provider = amphora\n",
        ] {
            let report = evaluate(&conf(text), &facts);
            let check = report
                .checks
                .iter()
                .find(|c| c.title == "lb-method")
                .unwrap_or_else(|| panic!("no lb-method check for {text:?}"));
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert!(
                check.evidence.contains("lb-method = SOURCE_IP_PORT")
                    && check
                        .evidence
                        .contains("Amphora provider does not support SOURCE_IP_PORT"),
                "{check:?}"
            );
            let fix = check.fix.as_deref().unwrap_or_default();
            assert!(fix.contains("ROUND_ROBIN"), "{fix}");
        }
        // With ovn offered the fix names it; with lb-provider = ovn nothing is wrong.
        facts.providers = Probe::Got(vec![
            ProviderFacts {
                name: "amphora".into(),
                description: String::new(),
            },
            ProviderFacts {
                name: "ovn".into(),
                description: String::new(),
            },
        ]);
        let report = evaluate(
            &conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n"),
            &facts,
        );
        let check = report
            .checks
            .iter()
            .find(|c| c.title == "lb-method")
            .unwrap();
        assert!(
            check
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("lb-provider = ovn"),
            "{check:?}"
        );
        assert!(statuses(
            &evaluate(
                &conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\nlb-provider = ovn\n"),
                &facts
            ),
            "lb-method"
        )
        .is_empty());
        // Other algorithms are fine with amphora.
        assert!(statuses(
            &evaluate(&conf("[LoadBalancer]\nlb-method = SOURCE_IP\n"), &facts),
            "lb-method"
        )
        .is_empty());
    }

    #[test]
    fn unknown_provider_fails() {
        let report = evaluate(&conf("[LoadBalancer]\nlb-provider = f5\n"), &healthy());
        let fail = only_failure(&report);
        assert!(
            fail.evidence
                .contains("f5 is not offered; the cloud has: amphora"),
            "{fail:?}"
        );
    }

    #[test]
    fn flavor_checks() {
        assert_eq!(
            statuses(
                &evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &healthy()),
                "flavor"
            ),
            vec![Status::Ok]
        );
        let report = evaluate(&conf("[LoadBalancer]\nflavor-id = nope\n"), &healthy());
        assert!(only_failure(&report)
            .evidence
            .contains("flavor-id = nope not found"));
        let mut facts = healthy();
        facts.flavors = Probe::Got(vec![FlavorFacts {
            id: "f1".into(),
            name: "small".into(),
            enabled: false,
        }]);
        assert!(
            only_failure(&evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &facts))
                .evidence
                .contains("disabled")
        );
        facts.flavors = Probe::failed(ProbeErrorKind::Forbidden, "policy");
        assert_eq!(
            statuses(
                &evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &facts),
                "flavor"
            ),
            vec![Status::Warn]
        );
    }

    #[test]
    fn quotas() {
        let mut facts = healthy();
        facts.lb_quotas = Probe::Got(vec![quota("load_balancer", 3, 3)]);
        let fail = only_failure(&evaluate(&conf(""), &facts)).clone();
        assert!(
            fail.evidence
                .contains("load balancer quota exhausted: 3 of 3"),
            "{fail:?}"
        );

        let mut facts = healthy();
        facts.network_quotas = Probe::Got(vec![quota("floatingip", 50, 49)]);
        let report = evaluate(&conf(""), &facts);
        assert!(report.would_work);
        assert!(report.checks.iter().any(|c| c.status == Status::Warn
            && c.evidence.contains("floating IP quota nearly exhausted")));

        let mut facts = healthy();
        facts.network_quotas = Probe::Got(vec![quota("floatingip", 0, 0)]);
        assert!(!evaluate(&conf(""), &facts).would_work);
        assert!(
            evaluate(&conf("[LoadBalancer]\ninternal-lb = true\n"), &facts).would_work,
            "internal LBs need no FIP"
        );

        let mut facts = healthy();
        facts.network_quotas = Probe::Got(vec![quota("security_group", 10, 10)]);
        assert!(
            evaluate(&conf(""), &facts).would_work,
            "security groups only count when managed"
        );
        assert!(
            !evaluate(
                &conf("[LoadBalancer]\nmanage-security-groups = true\n"),
                &facts
            )
            .would_work
        );

        let mut facts = healthy();
        facts.lb_quotas = Probe::failed(ProbeErrorKind::Forbidden, "policy does not allow");
        let report = evaluate(&conf(""), &facts);
        assert!(report.would_work);
        assert_eq!(statuses(&report, "quota"), vec![Status::Warn, Status::Ok]);
    }

    #[test]
    fn tls_insecure_and_config_warnings_are_warnings() {
        let (cfg, warnings) = CloudConfig::parse(&format!(
            "{BASE_CONF}tls-insecure = true\nauth_url = x\n[BlockStorage]\nbs-version = v3\n"
        ))
        .unwrap();
        let facts = Facts {
            config_warnings: warnings,
            ..healthy()
        };
        let report = evaluate(&cfg, &facts);
        assert!(report.would_work);
        assert_eq!(statuses(&report, "TLS"), vec![Status::Warn]);
        assert_eq!(
            statuses(&report, "cloud.conf"),
            vec![Status::Ok, Status::Warn, Status::Warn]
        );
    }

    #[test]
    fn extension_dependent_checks() {
        let mut facts = healthy();
        facts.network_extensions = Probe::Got(vec!["router".into()]);
        let report = evaluate(
            &conf("[LoadBalancer]\nmanage-security-groups = true\n"),
            &facts,
        );
        assert_eq!(only_failure(&report).title, "security groups");
        assert_eq!(statuses(&report, "floating IP tags"), vec![Status::Warn]);
        let report = evaluate(
            &conf("[LoadBalancer]\ndefault-tls-container-ref = https://b/x\n"),
            &healthy(),
        );
        assert_eq!(statuses(&report, "TLS containers"), vec![Status::Warn]);
    }

    #[test]
    fn classes_are_checked_as_warnings() {
        let cfg = conf("[LoadBalancerClass \"dmz\"]\nfloating-network-id = pub\nsubnet-id = gone\n[LoadBalancerClass \"ok\"]\nsubnet-id = s\n");
        let lookup = |class: &str, key: &str, id: &str, found| ClassLookup {
            class: class.into(),
            key: key.into(),
            id: id.into(),
            found,
        };
        let facts = Facts {
            class_lookups: vec![
                lookup(
                    "dmz",
                    "floating-network-id",
                    "pub",
                    Probe::Got(("private".to_string(), Some(false))),
                ),
                lookup(
                    "dmz",
                    "subnet-id",
                    "gone",
                    Probe::failed(ProbeErrorKind::NotFound, "404"),
                ),
                lookup(
                    "ok",
                    "subnet-id",
                    "s",
                    Probe::Got(("nodes".to_string(), None)),
                ),
            ],
            ..healthy()
        };
        let report = evaluate(&cfg, &facts);
        assert!(
            report.would_work,
            "a broken class breaks only its own Services"
        );
        let dmz = report
            .checks
            .iter()
            .find(|c| c.title == "class dmz")
            .unwrap();
        assert_eq!(dmz.status, Status::Warn);
        assert!(
            dmz.evidence
                .contains("floating-network-id = pub (private) is not an external network"),
            "{dmz:?}"
        );
        assert!(
            dmz.evidence.contains("subnet-id = gone does not exist"),
            "{dmz:?}"
        );
        assert_eq!(statuses(&report, "class ok"), vec![Status::Ok]);
    }

    #[test]
    fn clouds_yaml_source_is_reported() {
        let facts = Facts {
            clouds: Some(CloudsSource {
                path: "/etc/openstack/clouds.yaml".into(),
                cloud: "prod".into(),
                filled: vec!["password".into()],
            }),
            ..healthy()
        };
        let report = evaluate(&conf(""), &facts);
        let c = report
            .checks
            .iter()
            .find(|c| c.title == "clouds.yaml")
            .unwrap();
        assert!(c
            .evidence
            .contains("/etc/openstack/clouds.yaml cloud \"prod\" filled: password"));
    }

    #[test]
    fn text_and_json_forms() {
        let mut facts = healthy();
        facts.external_networks = Probe::Got(vec![]);
        let report = evaluate(&conf(""), &facts);
        let text = render_text(&report);
        assert!(
            text.lines().any(|l| l.starts_with("✗ floating network")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("fix: ask the cloud operator")),
            "{text}"
        );
        assert!(
            text.trim_end()
                .ends_with("1 problem(s) to fix, 0 warning(s)"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["would_work"], false);
        assert_eq!(json["checks"][0]["status"], "ok");
        assert!(json["checks"][0].get("fix").is_none());
        let failed = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "fail")
            .unwrap();
        assert!(failed["fix"].is_string());
    }

    #[test]
    fn features_follow_the_facts() {
        let f = features(&conf(""), &healthy()).unwrap();
        assert_eq!(f.generation, Generation::Octavia);
        assert_eq!(f.api_version, (2, 27));
        assert_eq!(f.provider.as_deref(), Some("amphora"));
        assert!(features(&conf(""), &Facts::default()).is_none());
        assert_eq!(
            detect_generation(false, &["lbaas".to_string()]),
            Some(LbaasGeneration::NeutronV1)
        );
        assert_eq!(detect_generation(false, &[]), None);
    }
}
