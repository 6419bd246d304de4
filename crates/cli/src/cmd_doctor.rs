//! `openstack-lb-controller doctor`: reads cloud.conf (and clouds.yaml), asks the cloud the
//! questions of SPEC §6 through the `openstack` clients, hands the answers to the pure
//! `model::doctor::evaluate` and prints its report. This module gathers facts and prints; it
//! must not decide anything itself (every verdict lives in `model::doctor`).

use std::path::PathBuf;
use std::process::ExitCode;

use model::config::{CloudConfig, EndpointInterface};
use model::doctor::{
    self, AuthFacts, AvailabilityZoneFacts, CatalogService, ClassLookup, CloudsSource, Endpoint,
    Facts, FlavorFacts, NetworkFacts, Probe, ProbeErrorKind, ProviderFacts, QuotaFacts,
    SubnetFacts,
};
use openstack::lbaas::LbaasV2;
use openstack::{ListQuery, Neutron, RetryPolicy, Session, SessionOptions};

const LB_SERVICE: &str = doctor::LOAD_BALANCER_SERVICE;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// cloud.conf to check (OCCM / in-tree / Magnum format).
    #[arg(long, value_name = "FILE")]
    pub cloud_config: PathBuf,
    /// Cloud of clouds.yaml that fills what cloud.conf leaves empty (implies use-clouds).
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Exit codes: 0 a LoadBalancer Service would work, 1 it would not, 2 the configuration is
/// unusable before any check could run.
const EXIT_BROKEN: u8 = 1;
const EXIT_BAD_CONFIG: u8 = 2;

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (config, facts) = match load_config(&args) {
        Ok(v) => v,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let facts = gather(&config, facts).await;
    let report = doctor::evaluate(&config, &facts);
    match args.output {
        Output::Text => print!("{}", crate::doctor_render::render_text(&report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.would_work {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BROKEN)
    })
}

/// Reads and parses cloud.conf, then fills `[Global]` from clouds.yaml when asked to. Errors
/// are messages for the operator (exit code 2).
fn load_config(args: &Args) -> Result<(CloudConfig, Facts), String> {
    let loaded = crate::cloud_config::load(&args.cloud_config, args.cloud.as_deref())?;
    let facts = Facts {
        config_warnings: loaded.warnings,
        clouds: loaded.clouds.map(|c| CloudsSource {
            path: c.path.display().to_string(),
            cloud: c.cloud,
            filled: c.filled,
        }),
        ..Facts::default()
    };
    Ok((loaded.config, facts))
}

/// Reduces a client error to what the advice depends on. The text keeps the operation
/// (`GET network /v2.0/...`) and the cloud's message; the client never puts secrets in either.
fn probe_error<T>(e: &openstack::Error) -> Probe<T> {
    use openstack::Error as E;
    let kind = match e {
        E::Unauthorized { .. } => ProbeErrorKind::Unauthorized,
        E::Forbidden { .. } => ProbeErrorKind::Forbidden,
        E::NotFound { .. } | E::EndpointNotFound { .. } => ProbeErrorKind::NotFound,
        E::Transport { message, .. } => {
            let lower = message.to_ascii_lowercase();
            if ["certificate", "tls", "handshake", "ssl"]
                .iter()
                .any(|w| lower.contains(w))
            {
                ProbeErrorKind::Tls
            } else {
                ProbeErrorKind::Unreachable
            }
        }
        E::Timeout { .. } => ProbeErrorKind::Unreachable,
        E::Server { .. } | E::Decode { .. } | E::RateLimited { .. } => ProbeErrorKind::Server,
        E::Config(_) => ProbeErrorKind::Config,
        _ => ProbeErrorKind::Other,
    };
    Probe::failed(kind, e.to_string())
}

fn probe<T>(r: Result<T, openstack::Error>) -> Probe<T> {
    match r {
        Ok(v) => Probe::Got(v),
        Err(e) => probe_error(&e),
    }
}

fn parse_interface(s: &str) -> Option<EndpointInterface> {
    match s.to_ascii_lowercase().as_str() {
        "public" => Some(EndpointInterface::Public),
        "internal" => Some(EndpointInterface::Internal),
        "admin" => Some(EndpointInterface::Admin),
        _ => None,
    }
}

/// Asks the cloud everything `doctor` needs, in dependency order; a failed step leaves the
/// probes that depend on it `Skipped`.
async fn gather(config: &CloudConfig, mut facts: Facts) -> Facts {
    if config.global.credential_kind().is_err() {
        return facts;
    }
    // Doctor answers quickly rather than patiently: one retry, short backoff.
    let options = SessionOptions {
        retry: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        ..SessionOptions::default()
    };
    let session = match Session::new(&config.global, &config.metadata, options).await {
        Ok(s) => s,
        Err(e) => {
            facts.auth = probe_error(&e);
            return facts;
        }
    };
    let token = match session.token_info().await {
        Ok(t) => t,
        Err(e) => {
            facts.auth = probe_error(&e);
            return facts;
        }
    };
    let catalog: Vec<CatalogService> = token
        .catalog
        .services
        .iter()
        .map(|s| CatalogService {
            service_type: s.service_type.clone(),
            name: s.name.clone(),
            endpoints: s
                .endpoints
                .iter()
                .filter_map(|e| {
                    Some(Endpoint {
                        interface: parse_interface(&e.interface)?,
                        region: e.region_id.clone().or_else(|| e.region.clone()),
                        url: e.url.clone(),
                    })
                })
                .collect(),
        })
        .collect();
    let project_id = token.project.as_ref().map(|p| p.id.clone());
    facts.auth = Probe::Got(AuthFacts {
        user_id: token
            .user
            .as_ref()
            .map(|u| u.id.clone())
            .unwrap_or_default(),
        user_name: token
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .filter(|n| !n.is_empty()),
        project_id: project_id.clone(),
        project_name: token
            .project
            .as_ref()
            .map(|p| p.name.clone())
            .filter(|n| !n.is_empty()),
        roles: token.roles.clone(),
        catalog,
    });
    let Some(project_id) = project_id else {
        return facts;
    };

    let neutron = match Neutron::new(&session).await {
        Ok(n) => n,
        Err(e) => {
            facts.network_extensions = probe_error(&e);
            return facts;
        }
    };
    facts.network_extensions = probe(
        neutron
            .list_extensions()
            .await
            .map(|v| v.into_iter().map(|e| e.alias).collect()),
    );
    if facts.network_extensions.got().is_none() {
        return facts;
    }
    gather_octavia(config, &session, &project_id, &mut facts).await;
    gather_networks(config, &neutron, &mut facts).await;
    facts.network_quotas = probe(neutron.quota(&project_id).await.map(|q| {
        q.into_iter()
            .map(|(resource, u)| QuotaFacts {
                resource,
                limit: u.limit,
                used: u.used.and_then(|n| u64::try_from(n).ok()),
            })
            .collect()
    }));
    facts
}

/// Free addresses from Neutron's IP availability (admin-only by default: None when refused).
async fn free_ips(neutron: &Neutron, network_id: &str) -> (Option<u64>, Vec<(String, u64)>) {
    match neutron.network_ip_availability(network_id).await {
        Ok(a) => {
            let free = |total: f64, used: f64| (total - used).max(0.0).min(u64::MAX as f64) as u64;
            let per_subnet = a
                .subnet_ip_availability
                .iter()
                .map(|s| (s.subnet_id.clone(), free(s.total_ips, s.used_ips)))
                .collect();
            (Some(free(a.total_ips, a.used_ips)), per_subnet)
        }
        Err(_) => (None, Vec::new()),
    }
}

fn subnet_facts(s: &openstack::neutron::Subnet, free: &[(String, u64)]) -> SubnetFacts {
    SubnetFacts {
        id: s.id.clone(),
        name: s.name.clone(),
        network_id: s.network_id.clone(),
        cidr: s.cidr.clone(),
        free_ips: free.iter().find(|(id, _)| id == &s.id).map(|(_, n)| *n),
    }
}

async fn network_facts(neutron: &Neutron, n: openstack::neutron::Network) -> NetworkFacts {
    let (free, per_subnet) = free_ips(neutron, &n.id).await;
    let subnets = neutron
        .list_subnets(&ListQuery::new().network_id(n.id.clone()))
        .await
        .map(|list| list.iter().map(|s| subnet_facts(s, &per_subnet)).collect())
        .unwrap_or_default();
    NetworkFacts {
        id: n.id,
        name: n.name,
        external: n.router_external,
        subnets,
        free_ips: free,
    }
}

async fn subnet_lookup(neutron: &Neutron, id: &str) -> Probe<SubnetFacts> {
    match neutron.get_subnet(id).await {
        Ok(s) => {
            let (_, per_subnet) = free_ips(neutron, &s.network_id).await;
            Probe::Got(subnet_facts(&s, &per_subnet))
        }
        Err(e) => probe_error(&e),
    }
}

async fn network_lookup(neutron: &Neutron, id: &str) -> Probe<NetworkFacts> {
    match neutron.get_network(id).await {
        Ok(n) => Probe::Got(network_facts(neutron, n).await),
        Err(e) => probe_error(&e),
    }
}

async fn gather_networks(config: &CloudConfig, neutron: &Neutron, facts: &mut Facts) {
    let p = &config.load_balancer.placement;
    if let Some(id) = &p.subnet_id {
        facts.vip_subnet = subnet_lookup(neutron, id).await;
    } else if let Some(id) = &p.network_id {
        facts.vip_network = network_lookup(neutron, id).await;
    } else {
        // Every visible subnet, shared ones included: nodes may sit on another project's network.
        facts.project_subnets = probe(
            neutron
                .list_subnets(&ListQuery::new())
                .await
                .map(|list| list.iter().map(|s| subnet_facts(s, &[])).collect()),
        );
    }
    if let Some(id) = &p.member_subnet_id {
        facts.member_subnet = subnet_lookup(neutron, id).await;
    }
    if let Some(id) = &p.floating_network_id {
        facts.floating_network = network_lookup(neutron, id).await;
    }
    if let Some(id) = &p.floating_subnet_id {
        facts.floating_subnet = subnet_lookup(neutron, id).await;
    }
    for class in &config.classes {
        let p = &class.placement;
        let ids = [
            ("floating-network-id", &p.floating_network_id, true),
            ("network-id", &p.network_id, true),
            ("floating-subnet-id", &p.floating_subnet_id, false),
            ("subnet-id", &p.subnet_id, false),
            ("member-subnet-id", &p.member_subnet_id, false),
        ];
        for (key, id, is_network) in ids {
            let Some(id) = id else { continue };
            let found = if is_network {
                probe(
                    neutron
                        .get_network(id)
                        .await
                        .map(|n| (n.name, Some(n.router_external))),
                )
            } else {
                probe(neutron.get_subnet(id).await.map(|s| (s.name, None)))
            };
            facts.class_lookups.push(ClassLookup {
                class: class.name.clone(),
                key: key.to_string(),
                id: id.clone(),
                found,
            });
        }
    }
    facts.external_networks = match neutron
        .list_networks(&ListQuery::new().router_external(true))
        .await
    {
        Ok(list) => {
            let mut out = Vec::new();
            // Bounded by the cloud's external networks, a handful in practice.
            for n in list.into_iter().take(50) {
                out.push(network_facts(neutron, n).await);
            }
            Probe::Got(out)
        }
        Err(e) => probe_error(&e),
    };
}

async fn gather_octavia(
    config: &CloudConfig,
    session: &Session,
    project_id: &str,
    facts: &mut Facts,
) {
    let has_lb = facts
        .auth
        .got()
        .is_some_and(|a| a.catalog.iter().any(|s| s.service_type == LB_SERVICE));
    if !has_lb {
        return;
    }
    let octavia = match LbaasV2::octavia(session).await {
        Ok(c) => c,
        Err(e) => {
            facts.octavia_version = probe_error(&e);
            return;
        }
    };
    facts.octavia_version = probe(octavia.max_version().await.map(|v| (v.major, v.minor)));
    if facts.octavia_version.got().is_none() {
        return;
    }
    facts.providers = probe(octavia.providers().await.map(|list| {
        list.into_iter()
            .map(|p| ProviderFacts {
                name: p.name,
                description: p.description,
            })
            .collect()
    }));
    facts.flavors = probe(octavia.flavors().await.map(|list| {
        list.into_iter()
            .map(|f| FlavorFacts {
                id: f.id,
                name: f.name,
                enabled: f.enabled,
            })
            .collect()
    }));
    if config.load_balancer.availability_zone.is_some() {
        facts.availability_zones = probe(octavia.availability_zones().await.map(|list| {
            list.into_iter()
                .map(|z| AvailabilityZoneFacts {
                    name: z.name,
                    enabled: z.enabled,
                })
                .collect()
        }));
    }
    facts.lb_quotas = match octavia.quota(project_id).await {
        Ok(limits) => {
            let used = octavia
                .list_loadbalancers(&ListQuery::new().project_id(project_id).fields(&["id"]))
                .await
                .ok()
                .map(|lbs| lbs.len() as u64);
            let quotas = limits
                .load_balancer
                .map(|limit| QuotaFacts {
                    resource: "load_balancer".into(),
                    limit,
                    used,
                })
                .into_iter()
                .collect();
            Probe::Got(quotas)
        }
        Err(e) => probe_error(&e),
    };
}
