//! Neutron v2.0: the networking objects of the cloud (networks, subnets, ports, floating IPs,
//! routers, security groups) with IP allocation, and the internal functions the load-balancer
//! side calls under the world lock (VIP ports, floating-IP lookup). The HTTP API lives in
//! `api` and its sibling modules, request validation in `attrs`. It must not know
//! load-balancer objects: the LBaaS routes are mounted by the server, and the data plane is
//! told about floating-IP changes through `dataplane::sync`.

pub mod api;
pub mod attrs;
mod floating_ip;
mod generic;
mod kind;
mod network;
mod port;
mod query;
mod quota;
mod request;
mod router;
mod security_group;
mod subnet;
mod tags;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, SecondsFormat, Utc};
use http::StatusCode;
use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;
use serde_json::{json, Value};

use crate::address_claim::{self, AddressClaim};
use crate::config::SandboxConfig;
use crate::errors::ApiError;
use crate::keystone::KeystoneState;

/// Neutron's default quotas (neutron.conf `[quotas]`).
pub const DEFAULT_QUOTAS: &[(&str, i64)] = &[
    ("network", 100),
    ("subnet", 100),
    ("port", 500),
    ("router", 10),
    ("router_route", 30),
    ("floatingip", 50),
    ("security_group", 10),
    ("security_group_rule", 100),
    ("subnetpool", -1),
    ("rbac_policy", 10),
];

/// Attributes every Neutron resource with standard attributes carries.
#[derive(Clone, Debug, Serialize)]
pub struct Std {
    pub description: String,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: u64,
    pub project_id: String,
    pub tenant_id: String,
    /// Neutron's row id in its standard-attributes table; only security group rules embedded
    /// in a security group show it.
    #[serde(skip)]
    pub standard_attr_id: u64,
}

/// Source of `standard_attr_id`s (one table for every resource kind, as in Neutron).
static STANDARD_ATTR_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Std {
    pub fn new(project_id: &str, description: &str) -> Self {
        let now = now_ts();
        Self {
            standard_attr_id: STANDARD_ATTR_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            description: description.to_string(),
            tags: Vec::new(),
            created_at: now.clone(),
            updated_at: now,
            revision_number: 0,
            project_id: project_id.to_string(),
            tenant_id: project_id.to_string(),
        }
    }

    /// Every change of a resource bumps its revision (and its timestamp), as Neutron does.
    pub fn touch(&mut self) {
        self.revision_number += 1;
        self.updated_at = now_ts();
    }
}

fn now_ts() -> String {
    // Neutron prints seconds-precision UTC with a Z.
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Clone, Debug, Serialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub admin_state_up: bool,
    pub status: String,
    pub shared: bool,
    #[serde(rename = "router:external")]
    pub router_external: bool,
    pub subnets: Vec<String>,
    pub mtu: u32,
    pub port_security_enabled: bool,
    pub availability_zone_hints: Vec<String>,
    pub availability_zones: Vec<String>,
    pub ipv4_address_scope: Option<String>,
    pub ipv6_address_scope: Option<String>,
    pub is_default: bool,
    /// `l2_adjacency` extension: not loaded by the Neutron the sandbox impersonates.
    #[serde(skip)]
    pub l2_adjacency: bool,
    #[serde(rename = "provider:network_type")]
    pub network_type: String,
    #[serde(rename = "provider:physical_network")]
    pub physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    pub segmentation_id: Option<u32>,
    #[serde(flatten)]
    pub std: Std,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AllocationPool {
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub cidr: String,
    pub ip_version: u8,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<AllocationPool>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<Value>,
    pub subnetpool_id: Option<String>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub service_types: Vec<String>,
    /// `segment` and `subnet-dns-publish-fixed-ip` extensions: not loaded (see `l2_adjacency`).
    #[serde(skip)]
    pub segment_id: Option<String>,
    #[serde(skip)]
    pub dns_publish_fixed_ip: bool,
    #[serde(flatten)]
    pub std: Std,
}

impl Subnet {
    pub fn net(&self) -> Option<IpNet> {
        self.cidr.parse().ok()
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AddressPair {
    pub ip_address: String,
    pub mac_address: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub mac_address: String,
    pub admin_state_up: bool,
    pub status: String,
    pub device_id: String,
    pub device_owner: String,
    pub fixed_ips: Vec<FixedIp>,
    pub security_groups: Vec<String>,
    pub port_security_enabled: bool,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<Value>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: String,
    #[serde(rename = "binding:host_id")]
    pub host_id: String,
    #[serde(rename = "binding:profile")]
    pub binding_profile: Value,
    #[serde(rename = "binding:vif_type")]
    pub vif_type: String,
    #[serde(rename = "binding:vif_details")]
    pub vif_details: Value,
    /// `dns-integration` and `uplink-status-propagation` extensions: not loaded (a stock ML2
    /// Neutron without a DNS driver, like openstack-rig's, shows none of these keys).
    #[serde(skip)]
    pub dns_name: String,
    #[serde(skip)]
    pub dns_assignment: Vec<Value>,
    #[serde(skip)]
    pub propagate_uplink_status: bool,
    #[serde(flatten)]
    pub std: Std,
}

impl Port {
    /// The first IPv4 fixed address (what a floating IP maps to by default).
    pub fn first_ipv4(&self) -> Option<&FixedIp> {
        self.fixed_ips
            .iter()
            .find(|f| f.ip_address.parse::<Ipv4Addr>().is_ok())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    pub floating_network_id: String,
    pub router_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub status: String,
    pub port_details: Option<Value>,
    /// `floating-ip-port-forwarding` and `qos-fip` extensions: not loaded.
    #[serde(skip)]
    pub port_forwardings: Vec<Value>,
    #[serde(skip)]
    pub qos_policy_id: Option<String>,
    #[serde(flatten)]
    pub std: Std,
    /// The hidden port Neutron creates on the external network to hold the address.
    #[serde(skip)]
    pub backing_port_id: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Router {
    pub id: String,
    pub name: String,
    pub admin_state_up: bool,
    pub status: String,
    pub external_gateway_info: Option<Value>,
    pub routes: Vec<Value>,
    pub distributed: bool,
    pub ha: bool,
    pub flavor_id: Option<String>,
    pub availability_zone_hints: Vec<String>,
    pub availability_zones: Vec<String>,
    #[serde(flatten)]
    pub std: Std,
}

#[derive(Clone, Debug, Serialize)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub normalized_cidr: Option<String>,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
    pub belongs_to_default_sg: bool,
    #[serde(flatten)]
    pub std: Std,
    /// Created with its group (the default egress rules): Neutron leaves their description null.
    #[serde(skip)]
    pub implicit: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub stateful: bool,
    pub shared: bool,
    #[serde(flatten)]
    pub std: Std,
}

/// What the load-balancer side (and the admin API's node registration) asks for when it
/// creates a port directly, bypassing the HTTP API and its quota.
#[derive(Clone, Debug, Default)]
pub struct PortSpec {
    pub network_id: String,
    /// Allocate on this subnet (else the network's first subnet with free addresses).
    pub subnet_id: Option<String>,
    /// A specific address (must lie in the subnet's CIDR and be free).
    pub ip_address: Option<IpAddr>,
    pub name: String,
    pub device_owner: String,
    pub device_id: String,
    pub project_id: String,
    pub description: String,
    /// None = the project's default security group (Neutron's behaviour).
    pub security_groups: Option<Vec<String>>,
    pub admin_state_up: bool,
}

/// Ids of the pre-created networking objects.
#[derive(Clone, Debug, Serialize)]
pub struct SeedIds {
    pub public_network_id: String,
    pub public_subnet_id: String,
    pub private_network_id: String,
    pub private_subnet_id: String,
    pub nodes_subnet_id: String,
    pub router_id: String,
}

/// All networking objects, keyed by id (ordered, as Neutron lists by id by default).
#[derive(Debug)]
pub struct NeutronState {
    pub networks: BTreeMap<String, Network>,
    pub subnets: BTreeMap<String, Subnet>,
    pub ports: BTreeMap<String, Port>,
    pub floating_ips: BTreeMap<String, FloatingIp>,
    pub routers: BTreeMap<String, Router>,
    pub security_groups: BTreeMap<String, SecurityGroup>,
    pub security_group_rules: BTreeMap<String, SecurityGroupRule>,
    pub seed: SeedIds,
    mac_counter: u32,
    /// The machine-wide claims on the addresses of this cloud's floating IPs (see
    /// `address_claim`), released when the floating IP goes.
    fip_claims: HashMap<IpAddr, AddressClaim>,
}

pub fn not_found(kind: &str, id: &str) -> ApiError {
    let (class, message) = match kind {
        "network" => (
            "NetworkNotFound",
            format!("Network {id} could not be found."),
        ),
        "subnet" => ("SubnetNotFound", format!("Subnet {id} could not be found.")),
        "port" => ("PortNotFound", format!("Port {id} could not be found.")),
        "floatingip" => (
            "FloatingIPNotFound",
            format!("Floating IP {id} could not be found"),
        ),
        "router" => ("RouterNotFound", format!("Router {id} could not be found")),
        "security_group" => (
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        ),
        "security_group_rule" => (
            "SecurityGroupRuleNotFound",
            format!("Security group rule {id} does not exist"),
        ),
        _ => (
            "HTTPNotFound",
            "The resource could not be found.".to_string(),
        ),
    };
    ApiError::neutron(StatusCode::NOT_FOUND, class, message)
}

pub(crate) fn conflict(class: &str, message: impl Into<String>) -> ApiError {
    ApiError::neutron(StatusCode::CONFLICT, class, message)
}

impl NeutronState {
    /// `public` (external, shared-for-FIPs) with the floating range, `private` with
    /// 10.0.0.0/24 and the loopback `nodes` subnet, and `router1` joining them.
    pub fn seeded(config: &SandboxConfig, keystone: &KeystoneState) -> Self {
        let admin_project = keystone
            .project_by_name("admin")
            .map(|p| p.id.clone())
            .unwrap_or_default();
        let mut state = Self {
            networks: BTreeMap::new(),
            subnets: BTreeMap::new(),
            ports: BTreeMap::new(),
            floating_ips: BTreeMap::new(),
            routers: BTreeMap::new(),
            security_groups: BTreeMap::new(),
            security_group_rules: BTreeMap::new(),
            seed: SeedIds {
                public_network_id: String::new(),
                public_subnet_id: String::new(),
                private_network_id: String::new(),
                private_subnet_id: String::new(),
                nodes_subnet_id: String::new(),
                router_id: String::new(),
            },
            mac_counter: 0,
            fip_claims: HashMap::new(),
        };
        let public = state.insert_network("public", &admin_project, true, false);
        let public_subnet = state.insert_subnet(
            &public,
            "public-subnet",
            &admin_project,
            config.floating_range,
        );
        // The private network is shared so that every project (admin and demo) can put load
        // balancers and node ports on it, as a provider network would be.
        let private = state.insert_network("private", &admin_project, false, true);
        let private_net = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 24).unwrap_or_default();
        let private_subnet =
            state.insert_subnet(&private, "private-subnet", &admin_project, private_net);
        let nodes_subnet =
            state.insert_subnet(&private, "nodes", &admin_project, config.node_range);
        let router = state.insert_router("router1", &admin_project);
        // Seeding cannot fail: the subnets are new and have free gateway addresses.
        let _ = state.set_router_gateway(&router, Some(&public));
        let _ = state.add_router_interface(&router, &private_subnet);
        let _ = state.add_router_interface(&router, &nodes_subnet);
        state.seed = SeedIds {
            public_network_id: public,
            public_subnet_id: public_subnet,
            private_network_id: private,
            private_subnet_id: private_subnet,
            nodes_subnet_id: nodes_subnet,
            router_id: router,
        };
        state
    }

    fn insert_network(
        &mut self,
        name: &str,
        project: &str,
        external: bool,
        shared: bool,
    ) -> String {
        let id = new_id();
        self.networks.insert(
            id.clone(),
            Network {
                id: id.clone(),
                name: name.to_string(),
                admin_state_up: true,
                status: "ACTIVE".to_string(),
                shared,
                router_external: external,
                subnets: Vec::new(),
                mtu: 1500,
                port_security_enabled: true,
                availability_zone_hints: Vec::new(),
                // Filled by the DHCP agents hosting the network; the sandbox has none (nor does
                // openstack-rig), so the list stays empty as on a real agentless Neutron.
                availability_zones: Vec::new(),
                ipv4_address_scope: None,
                ipv6_address_scope: None,
                is_default: false,
                l2_adjacency: true,
                network_type: if external { "flat" } else { "vxlan" }.to_string(),
                physical_network: external.then(|| "public".to_string()),
                segmentation_id: (!external).then_some(1000 + self.networks.len() as u32),
                std: Std::new(project, ""),
            },
        );
        id
    }

    fn insert_subnet(
        &mut self,
        network_id: &str,
        name: &str,
        project: &str,
        net: Ipv4Net,
    ) -> String {
        let net = IpNet::V4(net.trunc());
        let gateway = net.hosts().next();
        let pools = default_pools(&net, gateway);
        let id = new_id();
        self.subnets.insert(
            id.clone(),
            Subnet {
                id: id.clone(),
                name: name.to_string(),
                network_id: network_id.to_string(),
                cidr: net.to_string(),
                ip_version: 4,
                gateway_ip: gateway.map(|g| g.to_string()),
                allocation_pools: pools,
                enable_dhcp: true,
                dns_nameservers: Vec::new(),
                host_routes: Vec::new(),
                subnetpool_id: None,
                ipv6_ra_mode: None,
                ipv6_address_mode: None,
                service_types: Vec::new(),
                segment_id: None,
                dns_publish_fixed_ip: false,
                std: Std::new(project, ""),
            },
        );
        if let Some(n) = self.networks.get_mut(network_id) {
            n.subnets.push(id.clone());
        }
        id
    }

    fn insert_router(&mut self, name: &str, project: &str) -> String {
        let id = new_id();
        self.routers.insert(
            id.clone(),
            Router {
                id: id.clone(),
                name: name.to_string(),
                admin_state_up: true,
                status: "ACTIVE".to_string(),
                external_gateway_info: None,
                routes: Vec::new(),
                distributed: false,
                ha: false,
                flavor_id: None,
                availability_zone_hints: Vec::new(),
                availability_zones: vec!["nova".to_string()],
                std: Std::new(project, ""),
            },
        );
        id
    }

    pub fn network(&self, id: &str) -> Option<&Network> {
        self.networks.get(id)
    }

    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.subnets.get(id)
    }

    pub fn port(&self, id: &str) -> Option<&Port> {
        self.ports.get(id)
    }

    pub fn floating_ip(&self, id: &str) -> Option<&FloatingIp> {
        self.floating_ips.get(id)
    }

    /// The floating IP associated with a port, if any.
    pub fn floating_ip_for_port(&self, port_id: &str) -> Option<&FloatingIp> {
        self.floating_ips
            .values()
            .find(|f| f.port_id.as_deref() == Some(port_id))
    }

    /// The subnet of `network_id` whose CIDR contains `ip`.
    pub fn subnet_for_ip(&self, network_id: &str, ip: IpAddr) -> Option<&Subnet> {
        self.subnets
            .values()
            .filter(|s| s.network_id == network_id)
            .find(|s| s.net().is_some_and(|n| n.contains(&ip)))
    }

    /// Every address in use on a subnet (ports' fixed IPs and the gateway).
    fn used_ips(&self, subnet_id: &str) -> BTreeSet<IpAddr> {
        let mut used: BTreeSet<IpAddr> = self
            .ports
            .values()
            .flat_map(|p| p.fixed_ips.iter())
            .filter(|f| f.subnet_id == subnet_id)
            .filter_map(|f| f.ip_address.parse().ok())
            .collect();
        if let Some(gw) = self
            .subnets
            .get(subnet_id)
            .and_then(|s| s.gateway_ip.as_ref())
        {
            if let Ok(ip) = gw.parse() {
                used.insert(ip);
            }
        }
        used
    }

    /// The first free address of the subnet's allocation pools.
    fn allocate_ip(&self, subnet: &Subnet) -> Option<IpAddr> {
        self.allocate_ip_where(subnet, |_| true)
    }

    /// The first free address of the subnet's allocation pools that `accept` takes.
    fn allocate_ip_where(
        &self,
        subnet: &Subnet,
        mut accept: impl FnMut(IpAddr) -> bool,
    ) -> Option<IpAddr> {
        let used = self.used_ips(&subnet.id);
        for pool in &subnet.allocation_pools {
            let (Ok(start), Ok(end)) = (pool.start.parse::<IpAddr>(), pool.end.parse::<IpAddr>())
            else {
                continue;
            };
            let mut cur = start;
            // Bounded by the pool size; each step moves one address forward.
            loop {
                if !used.contains(&cur) && accept(cur) {
                    return Some(cur);
                }
                if cur >= end {
                    break;
                }
                match next_ip(cur) {
                    Some(n) => cur = n,
                    None => break,
                }
            }
        }
        None
    }

    /// The address for a new floating IP on `network_id` (on `subnet_id` if given): the
    /// first free one that no socket on this machine listens on and that no other sandbox
    /// holds, claimed for this cloud until `release_floating_address`. None when the range
    /// has no such address left.
    pub fn claim_floating_address(
        &mut self,
        network_id: &str,
        subnet_id: Option<&str>,
    ) -> Option<(String, IpAddr)> {
        let listened = address_claim::listened_addresses();
        let mut claimed = None;
        let found = self
            .subnets
            .values()
            .filter(|s| s.network_id == network_id)
            .filter(|s| subnet_id.is_none_or(|id| s.id == id))
            .find_map(|s| {
                // Each refused address costs one bind; bounded by the pool size.
                let ip = self.allocate_ip_where(s, |ip| {
                    if listened.contains(&ip) {
                        return false;
                    }
                    match address_claim::claim(ip) {
                        Some(c) => {
                            claimed = Some(c);
                            true
                        }
                        None => false,
                    }
                })?;
                Some((s.id.clone(), ip))
            });
        if let (Some((_, ip)), Some(c)) = (&found, claimed) {
            self.fip_claims.insert(*ip, c);
        }
        found
    }

    /// Claims an address the client chose; another sandbox holding it is only logged,
    /// because Neutron hands out any free address of its own range that is asked for.
    pub fn claim_requested_floating_address(&mut self, ip: IpAddr) {
        match address_claim::claim(ip) {
            Some(c) => {
                self.fip_claims.insert(ip, c);
            }
            None => tracing::warn!(
                %ip,
                "floating IP address requested explicitly is held by another sandbox on this machine: its data plane may not be able to serve it"
            ),
        }
    }

    /// Lets other sandboxes use `ip` again (its floating IP is gone).
    pub fn release_floating_address(&mut self, ip: &str) {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            self.fip_claims.remove(&ip);
        }
    }

    /// Resolves the requested fixed IPs (Neutron's `fixed_ips` request form) into allocated
    /// addresses on the network.
    pub fn allocate_fixed_ips(
        &self,
        network_id: &str,
        requests: &[(Option<String>, Option<IpAddr>)],
    ) -> Result<Vec<FixedIp>, ApiError> {
        let subnets: Vec<&Subnet> = self
            .subnets
            .values()
            .filter(|s| s.network_id == network_id)
            .collect();
        if requests.is_empty() {
            // Neutron allocates one address from the first IPv4 subnet with room.
            for s in &subnets {
                if let Some(ip) = self.allocate_ip(s) {
                    return Ok(vec![FixedIp {
                        subnet_id: s.id.clone(),
                        ip_address: ip.to_string(),
                    }]);
                }
            }
            if subnets.is_empty() {
                return Ok(Vec::new());
            }
            return Err(conflict(
                "IpAddressGenerationFailure",
                format!("No more IP addresses available on network {network_id}."),
            ));
        }
        let mut out: Vec<FixedIp> = Vec::new();
        for (subnet_id, ip) in requests {
            let subnet = match (subnet_id, ip) {
                (Some(sid), _) => {
                    let s = self.subnets.get(sid).ok_or_else(|| not_found("subnet", sid))?;
                    if s.network_id != network_id {
                        return Err(ApiError::neutron(StatusCode::BAD_REQUEST, "InvalidInput", format!(
                            "Invalid input for operation: Failed to create port on network {network_id}, because fixed_ips included invalid subnet {sid}."
                        )));
                    }
                    s
                }
                (None, Some(addr)) => self.subnet_for_ip(network_id, *addr).ok_or_else(|| {
                    ApiError::neutron(StatusCode::BAD_REQUEST, "InvalidInput", format!(
                        "Invalid input for operation: IP address {addr} is not a valid IP for the specified subnet."
                    ))
                })?,
                (None, None) => {
                    return Err(ApiError::neutron(StatusCode::BAD_REQUEST, "InvalidInput", 
                        "Invalid input for operation: IP allocation requires subnet_id or ip_address.",
                    ))
                }
            };
            let address = match ip {
                Some(addr) => {
                    if !subnet.net().is_some_and(|n| n.contains(addr)) {
                        return Err(ApiError::neutron(StatusCode::BAD_REQUEST, "InvalidInput", format!(
                            "Invalid input for operation: IP address {addr} is not a valid IP for the specified subnet."
                        )));
                    }
                    let taken = self.used_ips(&subnet.id).contains(addr)
                        || out.iter().any(|f| f.ip_address == addr.to_string());
                    if taken {
                        return Err(conflict(
                            "IpAddressAlreadyAllocated",
                            format!(
                                "IP address {addr} already allocated in subnet {}",
                                subnet.id
                            ),
                        ));
                    }
                    *addr
                }
                None => {
                    let mut used = self.used_ips(&subnet.id);
                    used.extend(
                        out.iter()
                            .filter_map(|f| f.ip_address.parse::<IpAddr>().ok()),
                    );
                    let free = subnet
                        .allocation_pools
                        .iter()
                        .find_map(|p| first_free(&p.start, &p.end, &used));
                    free.ok_or_else(|| {
                        conflict(
                            "IpAddressGenerationFailure",
                            format!("No more IP addresses available on network {network_id}."),
                        )
                    })?
                }
            };
            out.push(FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: address.to_string(),
            });
        }
        Ok(out)
    }

    pub(crate) fn next_mac(&mut self) -> String {
        self.mac_counter = self.mac_counter.wrapping_add(1);
        let n = self.mac_counter;
        format!(
            "fa:16:3e:{:02x}:{:02x}:{:02x}",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        )
    }

    /// The project's `default` security group, created on first use as Neutron does.
    pub fn default_security_group(&mut self, project_id: &str) -> String {
        if let Some(sg) = self
            .security_groups
            .values()
            .find(|g| g.name == "default" && g.std.project_id == project_id)
        {
            return sg.id.clone();
        }
        let id = new_id();
        self.security_groups.insert(
            id.clone(),
            SecurityGroup {
                id: id.clone(),
                name: "default".to_string(),
                stateful: true,
                shared: false,
                std: Std::new(project_id, "Default security group"),
            },
        );
        for (direction, ethertype, remote_group) in [
            ("egress", "IPv4", None),
            ("egress", "IPv6", None),
            ("ingress", "IPv4", Some(id.clone())),
            ("ingress", "IPv6", Some(id.clone())),
        ] {
            let rule_id = new_id();
            self.security_group_rules.insert(
                rule_id.clone(),
                SecurityGroupRule {
                    id: rule_id,
                    security_group_id: id.clone(),
                    direction: direction.to_string(),
                    ethertype: ethertype.to_string(),
                    protocol: None,
                    port_range_min: None,
                    port_range_max: None,
                    remote_ip_prefix: None,
                    normalized_cidr: None,
                    remote_group_id: remote_group,
                    remote_address_group_id: None,
                    belongs_to_default_sg: true,
                    std: Std::new(project_id, ""),
                    implicit: true,
                },
            );
        }
        id
    }

    /// Creates a port without going through the HTTP API (no policy, no quota): used for VIP
    /// ports by the load-balancer side and for node ports by the admin API.
    pub fn create_port(&mut self, spec: PortSpec) -> Result<Port, ApiError> {
        if !self.networks.contains_key(&spec.network_id) {
            return Err(not_found("network", &spec.network_id));
        }
        let requests = match (&spec.subnet_id, spec.ip_address) {
            (None, None) => Vec::new(),
            (s, ip) => vec![(s.clone(), ip)],
        };
        let fixed_ips = self.allocate_fixed_ips(&spec.network_id, &requests)?;
        let security_groups = match spec.security_groups {
            Some(g) => g,
            None if spec.device_owner.starts_with("network:") => Vec::new(),
            None => vec![self.default_security_group(&spec.project_id)],
        };
        let port = Port {
            id: new_id(),
            name: spec.name,
            network_id: spec.network_id,
            mac_address: self.next_mac(),
            admin_state_up: spec.admin_state_up,
            status: port_status(&spec.device_owner),
            device_id: spec.device_id,
            device_owner: spec.device_owner,
            fixed_ips,
            security_groups,
            port_security_enabled: true,
            allowed_address_pairs: Vec::new(),
            extra_dhcp_opts: Vec::new(),
            vnic_type: "normal".to_string(),
            host_id: String::new(),
            binding_profile: json!({}),
            vif_type: "unbound".to_string(),
            vif_details: json!({}),
            dns_name: String::new(),
            dns_assignment: Vec::new(),
            propagate_uplink_status: false,
            std: Std::new(&spec.project_id, &spec.description),
        };
        self.ports.insert(port.id.clone(), port.clone());
        Ok(port)
    }

    /// Deletes a port; a floating IP associated with it is disassociated (not deleted), as in
    /// Neutron. Returns whether a floating IP changed, so the caller can tell the data plane.
    pub fn delete_port(&mut self, port_id: &str) -> Result<bool, ApiError> {
        if self.ports.remove(port_id).is_none() {
            return Err(not_found("port", port_id));
        }
        let mut fip_changed = false;
        for fip in self.floating_ips.values_mut() {
            if fip.port_id.as_deref() == Some(port_id) {
                fip.port_id = None;
                fip.fixed_ip_address = None;
                fip.router_id = None;
                fip.port_details = None;
                fip.status = "DOWN".to_string();
                fip.std.touch();
                fip_changed = true;
            }
        }
        Ok(fip_changed)
    }

    /// Sets (or clears) a router's gateway on an external network, allocating its gateway port.
    pub fn set_router_gateway(
        &mut self,
        router_id: &str,
        network_id: Option<&str>,
    ) -> Result<(), ApiError> {
        if !self.routers.contains_key(router_id) {
            return Err(not_found("router", router_id));
        }
        // Drop the old gateway port first.
        let old: Vec<String> = self
            .ports
            .values()
            .filter(|p| p.device_id == router_id && p.device_owner == "network:router_gateway")
            .map(|p| p.id.clone())
            .collect();
        for id in old {
            self.ports.remove(&id);
        }
        let info = match network_id {
            None => None,
            Some(net) => {
                let network = self
                    .networks
                    .get(net)
                    .ok_or_else(|| not_found("network", net))?;
                if !network.router_external {
                    return Err(ApiError::neutron(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("Bad router request: Network {net} is not an external network."),
                    ));
                }
                let port = self.create_port(PortSpec {
                    network_id: net.to_string(),
                    device_owner: "network:router_gateway".to_string(),
                    device_id: router_id.to_string(),
                    project_id: String::new(),
                    admin_state_up: true,
                    security_groups: Some(Vec::new()),
                    ..Default::default()
                })?;
                let fixed: Vec<Value> = port
                    .fixed_ips
                    .iter()
                    .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
                    .collect();
                Some(json!({"network_id": net, "enable_snat": true, "external_fixed_ips": fixed}))
            }
        };
        if let Some(r) = self.routers.get_mut(router_id) {
            r.external_gateway_info = info;
            r.std.touch();
        }
        Ok(())
    }

    /// Attaches a subnet to a router through a port holding the subnet's gateway address.
    /// Returns the interface port.
    pub fn add_router_interface(
        &mut self,
        router_id: &str,
        subnet_id: &str,
    ) -> Result<Port, ApiError> {
        let project = self
            .routers
            .get(router_id)
            .map(|r| r.std.project_id.clone())
            .ok_or_else(|| not_found("router", router_id))?;
        let subnet = self
            .subnets
            .get(subnet_id)
            .ok_or_else(|| not_found("subnet", subnet_id))?
            .clone();
        let already = self.ports.values().any(|p| {
            p.device_id == router_id
                && p.device_owner == "network:router_interface"
                && p.fixed_ips.iter().any(|f| f.subnet_id == subnet_id)
        });
        if already {
            return Err(ApiError::neutron(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Bad router request: Router already has a port on subnet {subnet_id}."),
            ));
        }
        let gateway = subnet
            .gateway_ip
            .as_ref()
            .and_then(|g| g.parse::<IpAddr>().ok());
        let spec_ip = gateway.filter(|g| {
            // The gateway is reserved (counted as used) unless a port holds it already.
            !self
                .ports
                .values()
                .flat_map(|p| &p.fixed_ips)
                .any(|f| f.ip_address == g.to_string() && f.subnet_id == subnet_id)
        });
        let mut port = Port {
            id: new_id(),
            name: String::new(),
            network_id: subnet.network_id.clone(),
            mac_address: self.next_mac(),
            admin_state_up: true,
            status: "ACTIVE".to_string(),
            device_id: router_id.to_string(),
            device_owner: "network:router_interface".to_string(),
            fixed_ips: Vec::new(),
            security_groups: Vec::new(),
            port_security_enabled: false,
            allowed_address_pairs: Vec::new(),
            extra_dhcp_opts: Vec::new(),
            vnic_type: "normal".to_string(),
            host_id: String::new(),
            binding_profile: json!({}),
            vif_type: "ovs".to_string(),
            vif_details: json!({}),
            dns_name: String::new(),
            dns_assignment: Vec::new(),
            propagate_uplink_status: false,
            std: Std::new(&project, ""),
        };
        port.fixed_ips = match spec_ip {
            Some(ip) => vec![FixedIp {
                subnet_id: subnet_id.to_string(),
                ip_address: ip.to_string(),
            }],
            None => {
                self.allocate_fixed_ips(&subnet.network_id, &[(Some(subnet_id.to_string()), None)])?
            }
        };
        self.ports.insert(port.id.clone(), port.clone());
        if let Some(r) = self.routers.get_mut(router_id) {
            r.std.touch();
        }
        Ok(port)
    }

    /// The router that connects `subnet_id` to external network `floating_network_id`, which
    /// Neutron requires before a floating IP can be associated with a port on that subnet.
    pub fn router_between(&self, subnet_id: &str, floating_network_id: &str) -> Option<String> {
        self.routers
            .values()
            .filter(|r| {
                r.external_gateway_info
                    .as_ref()
                    .and_then(|g| g.get("network_id"))
                    .and_then(Value::as_str)
                    == Some(floating_network_id)
            })
            .find(|r| {
                self.ports.values().any(|p| {
                    p.device_id == r.id
                        && p.device_owner == "network:router_interface"
                        && p.fixed_ips.iter().any(|f| f.subnet_id == subnet_id)
                })
            })
            .map(|r| r.id.clone())
    }

    /// Associates a floating IP with a port (or disassociates with `port_id` None). Checks what
    /// Neutron checks: the port exists, the fixed IP belongs to it, a router joins its subnet
    /// to the floating network, and no other floating IP maps to that fixed IP.
    pub fn associate_floating_ip(
        &mut self,
        fip_id: &str,
        port_id: Option<&str>,
        fixed_ip: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let fip = self
            .floating_ips
            .get(fip_id)
            .ok_or_else(|| not_found("floatingip", fip_id))?;
        let Some(port_id) = port_id else {
            if let Some(f) = self.floating_ips.get_mut(fip_id) {
                if f.port_id.is_some() {
                    f.port_id = None;
                    f.fixed_ip_address = None;
                    f.router_id = None;
                    f.port_details = None;
                    f.status = "DOWN".to_string();
                }
            }
            return Ok(());
        };
        let port = self
            .ports
            .get(port_id)
            .ok_or_else(|| not_found("port", port_id))?;
        let fixed = match fixed_ip {
            Some(ip) => port
                .fixed_ips
                .iter()
                .find(|f| f.ip_address == ip.to_string())
                .cloned()
                .ok_or_else(|| {
                    ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", format!(
                        "Bad floatingip request: Port {port_id} does not have fixed ip {ip}."
                    ))
                })?,
            None => port.first_ipv4().cloned().ok_or_else(|| {
                ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", format!(
                    "Bad floatingip request: Port {port_id} does not have any IPv4 address. Unable to associate a floating IP with it."
                ))
            })?,
        };
        let router_id = self.router_between(&fixed.subnet_id, &fip.floating_network_id).ok_or_else(|| {
            ApiError::neutron(
                StatusCode::NOT_FOUND,
                "ExternalGatewayForFloatingIPNotFound",
                format!(
                    "External network {} is not reachable from subnet {}.  Therefore, cannot associate Port {} with a Floating IP.",
                    fip.floating_network_id, fixed.subnet_id, port_id
                ),
            )
        })?;
        if let Some(other) = self.floating_ips.values().find(|f| {
            f.id != fip_id
                && f.port_id.as_deref() == Some(port_id)
                && f.fixed_ip_address.as_deref() == Some(fixed.ip_address.as_str())
        }) {
            return Err(conflict(
                "FloatingIPPortAlreadyAssociated",
                format!(
                    "Cannot associate floating IP {} ({}) with port {} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                    fip.floating_ip_address, fip_id, port_id, fixed.ip_address, other.floating_network_id
                ),
            ));
        }
        let details = json!({
            "name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up, "status": port.status,
            "device_id": port.device_id, "device_owner": port.device_owner,
        });
        if let Some(f) = self.floating_ips.get_mut(fip_id) {
            f.port_id = Some(port_id.to_string());
            f.fixed_ip_address = Some(fixed.ip_address);
            f.router_id = Some(router_id);
            f.port_details = Some(details);
            f.status = "ACTIVE".to_string();
        }
        Ok(())
    }

    /// Number of resources of a quota kind a project owns.
    pub fn usage(&self, project_id: &str, resource: &str) -> usize {
        let owned = |p: &str| p == project_id;
        match resource {
            "network" => self
                .networks
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            "subnet" => self
                .subnets
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            "port" => self
                .ports
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            "router" => self
                .routers
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            "floatingip" => self
                .floating_ips
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            "security_group" => self
                .security_groups
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            "security_group_rule" => self
                .security_group_rules
                .values()
                .filter(|x| owned(&x.std.project_id))
                .count(),
            _ => 0,
        }
    }
}

fn port_status(device_owner: &str) -> String {
    // Ports bound to something (routers, compute, DHCP) are ACTIVE; free-standing ones (VIPs,
    // ports created for later use) stay DOWN, as with an unbound port in ML2.
    if device_owner.starts_with("network:router")
        || device_owner.starts_with("compute:")
        || device_owner == "network:dhcp"
    {
        "ACTIVE".to_string()
    } else {
        "DOWN".to_string()
    }
}

fn next_ip(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(v6) => u128::from(v6).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

fn first_free(start: &str, end: &str, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let (Ok(mut cur), Ok(end)) = (start.parse::<IpAddr>(), end.parse::<IpAddr>()) else {
        return None;
    };
    // Bounded: stops at `end`, and every iteration advances by one address.
    loop {
        if !used.contains(&cur) {
            return Some(cur);
        }
        if cur >= end {
            return None;
        }
        cur = next_ip(cur)?;
    }
}

/// Neutron's default pool: every host address except the gateway (and, for IPv4, network and
/// broadcast addresses).
pub fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let first = net.hosts().next();
    let last = match net {
        IpNet::V4(n) => {
            if n.prefix_len() >= 31 {
                Some(IpAddr::V4(n.broadcast()))
            } else {
                Some(IpAddr::V4((u32::from(n.broadcast()) - 1).into()))
            }
        }
        IpNet::V6(n) => Some(IpAddr::V6(n.broadcast())),
    };
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    match gateway {
        Some(g) if g == first => match next_ip(first) {
            Some(start) if start <= last => {
                vec![AllocationPool {
                    start: start.to_string(),
                    end: last.to_string(),
                }]
            }
            _ => Vec::new(),
        },
        Some(g) if g > first && g <= last => {
            let mut pools = Vec::new();
            let before = match g {
                IpAddr::V4(v) => IpAddr::V4((u32::from(v) - 1).into()),
                IpAddr::V6(v) => IpAddr::V6((u128::from(v) - 1).into()),
            };
            pools.push(AllocationPool {
                start: first.to_string(),
                end: before.to_string(),
            });
            if let Some(after) = next_ip(g).filter(|a| *a <= last) {
                pools.push(AllocationPool {
                    start: after.to_string(),
                    end: last.to_string(),
                });
            }
            pools
        }
        _ => vec![AllocationPool {
            start: first.to_string(),
            end: last.to_string(),
        }],
    }
}

/// Seconds-precision timestamp for a `DateTime` (used by tests and the API).
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> NeutronState {
        let cfg = SandboxConfig::default();
        let ks = KeystoneState::seeded(&cfg);
        NeutronState::seeded(&cfg, &ks)
    }

    #[test]
    fn seeded_world_has_public_private_nodes_and_router() {
        let n = world();
        let public = n.network(&n.seed.public_network_id).unwrap();
        assert!(public.router_external);
        let nodes = n.subnet(&n.seed.nodes_subnet_id).unwrap();
        assert_eq!(nodes.cidr, "127.100.0.0/16");
        assert_eq!(nodes.gateway_ip.as_deref(), Some("127.100.0.1"));
        assert_eq!(
            nodes.allocation_pools,
            vec![AllocationPool {
                start: "127.100.0.2".into(),
                end: "127.100.255.254".into()
            }]
        );
        assert!(n
            .router_between(&n.seed.nodes_subnet_id, &n.seed.public_network_id)
            .is_some());
        assert!(n
            .router_between(&n.seed.private_subnet_id, &n.seed.public_network_id)
            .is_some());
    }

    #[test]
    fn ports_get_distinct_addresses_and_fixed_ones_conflict() {
        let mut n = world();
        let net = n.seed.private_network_id.clone();
        let sub = n.seed.nodes_subnet_id.clone();
        let spec = |ip: Option<IpAddr>| PortSpec {
            network_id: net.clone(),
            subnet_id: Some(sub.clone()),
            ip_address: ip,
            project_id: "p".into(),
            admin_state_up: true,
            ..Default::default()
        };
        let a = n.create_port(spec(None)).unwrap();
        let b = n.create_port(spec(None)).unwrap();
        assert_ne!(a.fixed_ips[0].ip_address, b.fixed_ips[0].ip_address);
        let fixed: IpAddr = "127.100.9.9".parse().unwrap();
        n.create_port(spec(Some(fixed))).unwrap();
        let err = n.create_port(spec(Some(fixed))).unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
        let outside: IpAddr = "10.9.9.9".parse().unwrap();
        assert_eq!(
            n.create_port(spec(Some(outside))).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn default_pools_skip_gateway_network_and_broadcast() {
        let net: IpNet = "10.0.0.0/24".parse().unwrap();
        let pools = default_pools(&net, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            pools,
            vec![AllocationPool {
                start: "10.0.0.2".into(),
                end: "10.0.0.254".into()
            }]
        );
        let pools = default_pools(&net, Some("10.0.0.100".parse().unwrap()));
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].end, "10.0.0.99");
        assert_eq!(pools[1].start, "10.0.0.101");
    }
}
