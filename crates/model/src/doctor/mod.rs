//! Pure checks behind `openstack-lb-controller doctor` (SPEC §6): facts in, verdicts out.
//! The caller gathers [`Facts`] from the cloud (authentication, catalog, extensions, Octavia
//! version document, providers, flavors, networks, subnets, quotas); [`evaluate`] turns them
//! and the configuration into an ordered list of [`Check`]s and the answer to "would a
//! LoadBalancer Service work?". It must not know how the facts were obtained (HTTP, clients,
//! files), so every verdict can be tested with hand-written facts.
//!
//! One module a check group, in the order [`evaluate`] runs them; `detect` says which LBaaS
//! generation a cloud offers. How a report is printed is the CLI's business.

mod access;
mod classes;
mod configuration;
mod detect;
mod extras;
#[cfg(test)]
mod fixtures;
mod floating;
mod octavia;
mod quotas;
mod services;
mod v1;
mod vip;

use serde::Serialize;

use crate::config::{CloudConfig, ConfigWarning, EndpointInterface, LbMethod, LbaasGeneration};
use crate::features::{CloudFeatures, Generation};

use access::check_access;
use classes::check_classes;
use configuration::check_configuration;
use detect::generation_name;
pub use detect::{detect_generation, LOAD_BALANCER_SERVICE};
use extras::check_extras;
use floating::check_floating;
use octavia::check_octavia_details;
use quotas::check_quotas;
use services::check_cloud_services;
use v1::check_v1_limits;
use vip::check_vip_placement;

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
        .any(|s| s.service_type == LOAD_BALANCER_SERVICE);
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
                    other => other.label().to_string(),
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

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn healthy_cloud_works_without_warnings() {
        let report = evaluate(&conf(""), &healthy());
        let text = shown(&report);
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

    #[test]
    fn text_and_json_forms() {
        // The text form is the CLI's (crates/cli/src/doctor_render.rs); the JSON form is the
        // report's own serialisation.
        let mut facts = healthy();
        facts.external_networks = Probe::Got(vec![]);
        let report = evaluate(&conf(""), &facts);
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
}
