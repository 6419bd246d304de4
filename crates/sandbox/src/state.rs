//! Shared state of the sandbox: one `World` behind one lock, so that every API call sees a
//! consistent cloud (Octavia's VIP ports are Neutron ports; floating IPs drive the data plane).
//! Fault rules and the request log have their own locks so that the middlewares never wait
//! on the world. This module holds data only; it must not know HTTP routing.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::SandboxConfig;
use crate::faults::FaultState;
use crate::keystone::KeystoneState;
use crate::neutron::{NeutronState, PortSpec, SeedIds};

/// Who is calling: set by the authentication middleware from the X-Auth-Token header and
/// available to every handler as an `axum::Extension<AuthContext>`.
#[derive(Clone, Debug)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub project_id: String,
    pub roles: Vec<String>,
}

impl AuthContext {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// The services the sandbox serves, one listener each; also the `service` of fault rules and
/// the request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    Identity,
    Network,
    LoadBalancer,
    Admin,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Network => "network",
            Self::LoadBalancer => "load-balancer",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for ServiceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "identity" | "keystone" => Ok(Self::Identity),
            "network" | "neutron" => Ok(Self::Network),
            "load-balancer" | "octavia" => Ok(Self::LoadBalancer),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown service {other:?}; accepted: identity, network, load-balancer, admin"
            )),
        }
    }
}

/// Base URLs of the listeners (no trailing slash), known once they are bound.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub keystone: String,
    pub neutron: String,
    pub octavia: String,
    pub admin: String,
}

/// Cheap to clone; handed to every axum handler as `State<AppState>`.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Shared>,
}

pub struct Shared {
    pub config: SandboxConfig,
    pub endpoints: Endpoints,
    pub world: parking_lot::Mutex<World>,
    pub faults: parking_lot::Mutex<FaultState>,
    pub request_log: parking_lot::Mutex<Vec<RequestLogEntry>>,
    /// Cancelled by `SandboxHandle::shutdown`; background tasks (provisioning timers, data
    /// plane listeners, health probes) must stop when it fires.
    pub shutdown: CancellationToken,
    // engineer B: the forwarding data plane (listeners on floating IPs, health probes).
    pub dataplane: crate::dataplane::DataPlane,
}

/// One API call as seen by the request log (admin API `GET /requests`).
#[derive(Clone, Debug, Serialize)]
pub struct RequestLogEntry {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub service: ServiceKind,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// Name of the user owning the caller's token; None for unauthenticated calls.
    pub user: Option<String>,
}

/// Quota limits shared by Neutron and Octavia (both APIs read and set them): per-project
/// overrides over per-resource defaults; -1 means unlimited.
#[derive(Debug, Default)]
pub struct Quotas {
    pub defaults: HashMap<String, i64>,
    pub per_project: HashMap<String, HashMap<String, i64>>,
}

impl Quotas {
    /// The limit for `resource` in `project` (-1 = unlimited; unknown resources are unlimited).
    pub fn limit(&self, project: &str, resource: &str) -> i64 {
        self.per_project
            .get(project)
            .and_then(|m| m.get(resource))
            .or_else(|| self.defaults.get(resource))
            .copied()
            .unwrap_or(-1)
    }

    pub fn set(&mut self, project: Option<&str>, resource: &str, limit: i64) {
        match project {
            Some(p) => {
                self.per_project
                    .entry(p.to_string())
                    .or_default()
                    .insert(resource.to_string(), limit);
            }
            None => {
                self.defaults.insert(resource.to_string(), limit);
            }
        }
    }

    /// Forget a project's overrides (Neutron `DELETE /v2.0/quotas/{id}`, Octavia likewise).
    pub fn reset(&mut self, project: &str) {
        self.per_project.remove(project);
    }

    /// True if one more `resource` would exceed the limit given `used` existing ones.
    pub fn exceeded(&self, project: &str, resource: &str, used: usize) -> bool {
        let limit = self.limit(project, resource);
        limit >= 0 && i64::try_from(used).unwrap_or(i64::MAX) >= limit
    }
}

/// Everything the cloud holds. Fields are added by the module that owns them.
pub struct World {
    pub keystone: KeystoneState,
    pub neutron: NeutronState,
    pub quotas: Quotas,
    // engineer B: Octavia / Neutron LBaaS v2 objects.
    pub octavia: crate::octavia::OctaviaState,
    // engineer B: Neutron LBaaS v1 objects.
    pub lbaas_v1: crate::lbaas_v1::LbaasV1State,
}

impl World {
    /// The pre-created cloud: users, projects, networks; quotas from defaults and overrides.
    pub fn new(config: &SandboxConfig) -> Self {
        let keystone = KeystoneState::seeded(config);
        let neutron = NeutronState::seeded(config, &keystone);
        let mut quotas = Quotas::default();
        for (resource, limit) in crate::neutron::DEFAULT_QUOTAS {
            quotas.set(None, resource, *limit);
        }
        for o in &config.quota_overrides {
            let project = o
                .project
                .as_deref()
                .map(|p| keystone.project_id_by_name_or_id(p));
            quotas.set(project.as_deref(), &o.resource, o.limit);
        }
        Self {
            keystone,
            neutron,
            quotas,
            // engineer B:
            octavia: Default::default(),
            // engineer B:
            lbaas_v1: Default::default(),
        }
    }

    /// The cloud restarted on an empty database: every network, subnet, port, router,
    /// floating IP, security group and load balancer is gone, and the seed is made again with
    /// new ids. Keystone (users, projects, credentials, tokens) and the quotas are the
    /// operator's configuration, not the cloud's data, and stay. With `keep_nodes` the nodes'
    /// `compute:nova` ports on the seeded `nodes` subnet come back at once with their
    /// addresses (new ids), as an operator who rebuilt the cloud would bring its machines back;
    /// done in the same step so that nobody can look for a node's port in between.
    pub fn lose_state(&mut self, config: &SandboxConfig, keep_nodes: bool) -> StateLost {
        let old_nodes_subnet = self.neutron.seed.nodes_subnet_id.clone();
        let nodes: Vec<PortSpec> = if keep_nodes {
            self.neutron
                .ports
                .values()
                .filter(|p| p.device_owner.starts_with("compute:"))
                .filter_map(|p| {
                    let fixed = p
                        .fixed_ips
                        .iter()
                        .find(|f| f.subnet_id == old_nodes_subnet)?;
                    Some(PortSpec {
                        ip_address: fixed.ip_address.parse().ok(),
                        name: p.name.clone(),
                        device_owner: p.device_owner.clone(),
                        device_id: p.device_id.clone(),
                        project_id: p.std.project_id.clone(),
                        description: p.std.description.clone(),
                        admin_state_up: p.admin_state_up,
                        ..Default::default()
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        // The old state is dropped whole, so its floating addresses' claims are released.
        self.neutron = NeutronState::seeded(config, &self.keystone);
        self.octavia = Default::default();
        self.lbaas_v1 = Default::default();
        let nodes_subnet = self.neutron.seed.nodes_subnet_id.clone();
        let nodes_network = self
            .neutron
            .subnet(&nodes_subnet)
            .map(|s| s.network_id.clone())
            .unwrap_or_default();
        let mut node_ports = Vec::new();
        for mut spec in nodes {
            spec.network_id = nodes_network.clone();
            spec.subnet_id = Some(nodes_subnet.clone());
            // The addresses were unique on the old subnet, which had the same range.
            if let Ok(port) = self.neutron.create_port(spec) {
                node_ports.push(port.id);
            }
        }
        StateLost {
            networks: self.neutron.seed.clone(),
            node_ports,
            ports: self.neutron.ports.keys().cloned().collect(),
            security_groups: self.neutron.security_groups.keys().cloned().collect(),
        }
    }
}

/// What exists right after `World::lose_state`, so a caller can tell the seed from what is
/// made later.
#[derive(Clone, Debug, Serialize)]
pub struct StateLost {
    /// The seed's new ids.
    pub networks: SeedIds,
    /// The nodes' ports made again (`keep_nodes`).
    pub node_ports: Vec<String>,
    /// Every port: the router's and the nodes'.
    pub ports: Vec<String>,
    /// Every security group (the default groups the node ports needed).
    pub security_groups: Vec<String>,
}
