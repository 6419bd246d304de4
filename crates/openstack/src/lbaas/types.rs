//! Plain serde types of the load-balancer v2 model shared by Octavia and Neutron LBaaS v2
//! (load balancers, listeners, pools, members, health monitors, status tree, stats, providers,
//! flavors, availability zones, quotas), named exactly as the API names its fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `{"id": ...}` references inside objects (`listeners`, `pools`, `members`, ...). Extra fields
/// (fully-populated answers embed whole objects) are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdditionalVip {
    pub subnet_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadBalancer {
    pub id: String,
    pub name: String,
    pub description: String,
    /// ACTIVE, PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE, DELETED, ERROR.
    pub provisioning_status: String,
    pub operating_status: String,
    pub admin_state_up: bool,
    pub project_id: String,
    pub vip_address: String,
    pub vip_port_id: String,
    pub vip_subnet_id: String,
    pub vip_network_id: String,
    pub vip_qos_policy_id: Option<String>,
    pub listeners: Vec<IdRef>,
    pub pools: Vec<IdRef>,
    pub provider: Option<String>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub tags: Vec<String>,
    pub additional_vips: Vec<AdditionalVip>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl LoadBalancer {
    /// PENDING_*: Octavia refuses further changes (409) until it is ACTIVE again.
    pub fn is_locked(&self) -> bool {
        self.provisioning_status.starts_with("PENDING_")
    }
}

/// What a fully-populated create answers: the load balancer with its listeners and pools
/// (members and health monitor inline) as whole objects, so the caller knows the tree it just
/// built without reading it back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadBalancerTree {
    pub load_balancer: LoadBalancer,
    /// `None` when the answer did not inline the whole tree (a cloud that answers with ids
    /// only): the caller must read it.
    pub tree: Option<Tree>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    pub listeners: Vec<Listener>,
    pub pools: Vec<PoolTree>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolTree {
    pub pool: Pool,
    pub members: Vec<Member>,
    pub healthmonitor: Option<HealthMonitor>,
}

impl LoadBalancerTree {
    /// Reads the answer's `loadbalancer` object in place (no copy of a large member list); the tree only when every listener, pool,
    /// member and monitor the load balancer names is there whole.
    pub fn from_answer(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        let load_balancer: LoadBalancer = LoadBalancer::deserialize(v)?;
        Ok(LoadBalancerTree {
            tree: Tree::from_answer(v, &load_balancer),
            load_balancer,
        })
    }
}

impl Tree {
    fn from_answer(v: &serde_json::Value, lb: &LoadBalancer) -> Option<Tree> {
        let whole = |o: &serde_json::Value, field: &str| o.get(field).is_some();
        let listeners: Vec<Listener> = v
            .get("listeners")?
            .as_array()?
            .iter()
            .map(|l| {
                whole(l, "protocol")
                    .then(|| Listener::deserialize(l).ok())
                    .flatten()
            })
            .collect::<Option<_>>()?;
        let mut pools = Vec::new();
        for p in v.get("pools")?.as_array()? {
            if !whole(p, "lb_algorithm") {
                return None;
            }
            let pool: Pool = Pool::deserialize(p).ok()?;
            let members: Vec<Member> = match p.get("members") {
                Some(serde_json::Value::Array(ms)) => ms
                    .iter()
                    .map(|m| {
                        whole(m, "address")
                            .then(|| Member::deserialize(m).ok())
                            .flatten()
                    })
                    .collect::<Option<_>>()?,
                _ => Vec::new(),
            };
            let healthmonitor = match p.get("healthmonitor") {
                Some(m) if m.is_object() => {
                    if !whole(m, "type") {
                        return None;
                    }
                    Some(HealthMonitor::deserialize(m).ok()?)
                }
                _ => None,
            };
            pools.push(PoolTree {
                pool,
                members,
                healthmonitor,
            });
        }
        let complete = lb.listeners.len() == listeners.len() && lb.pools.len() == pools.len();
        complete.then_some(Tree { listeners, pools })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Listener {
    pub id: String,
    pub name: String,
    pub description: String,
    pub protocol: String,
    pub protocol_port: u16,
    pub connection_limit: Option<i64>,
    pub default_pool_id: Option<String>,
    pub default_tls_container_ref: Option<String>,
    pub sni_container_refs: Vec<String>,
    pub insert_headers: BTreeMap<String, String>,
    pub admin_state_up: bool,
    pub provisioning_status: String,
    pub operating_status: String,
    pub loadbalancers: Vec<IdRef>,
    pub timeout_client_data: Option<u64>,
    pub timeout_member_connect: Option<u64>,
    pub timeout_member_data: Option<u64>,
    pub timeout_tcp_inspect: Option<u64>,
    pub allowed_cidrs: Option<Vec<String>>,
    pub tags: Vec<String>,
    pub project_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionPersistence {
    /// SOURCE_IP, HTTP_COOKIE, APP_COOKIE.
    #[serde(rename = "type")]
    pub persistence_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_granularity: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub description: String,
    pub protocol: String,
    pub lb_algorithm: String,
    pub session_persistence: Option<SessionPersistence>,
    pub loadbalancers: Vec<IdRef>,
    pub listeners: Vec<IdRef>,
    pub members: Vec<IdRef>,
    pub healthmonitor_id: Option<String>,
    pub admin_state_up: bool,
    pub provisioning_status: String,
    pub operating_status: String,
    pub tags: Vec<String>,
    pub project_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub address: String,
    pub protocol_port: u16,
    pub subnet_id: Option<String>,
    pub weight: Option<u32>,
    pub backup: Option<bool>,
    pub monitor_address: Option<String>,
    pub monitor_port: Option<u16>,
    pub admin_state_up: bool,
    pub provisioning_status: String,
    pub operating_status: String,
    pub tags: Vec<String>,
    pub project_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthMonitor {
    pub id: String,
    pub name: String,
    /// HTTP, HTTPS, PING, TCP, TLS-HELLO, UDP-CONNECT, SCTP.
    #[serde(rename = "type")]
    pub monitor_type: String,
    pub delay: u64,
    pub timeout: u64,
    pub max_retries: u32,
    pub max_retries_down: Option<u32>,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub admin_state_up: bool,
    pub pools: Vec<IdRef>,
    pub provisioning_status: String,
    pub operating_status: String,
    pub tags: Vec<String>,
    pub project_id: String,
}

/// A health monitor to create, on its own (`pool_id`) or nested in a pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateHealthMonitor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    #[serde(rename = "type")]
    pub monitor_type: String,
    pub delay: u64,
    pub timeout: u64,
    pub max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries_down: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_codes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateHealthMonitor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries_down: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_codes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A member to create: alone (`POST /pools/{id}/members`), nested in a pool, or as one entry of
/// a batch update (`PUT /pools/{id}/members`, matched by address + port).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateMember {
    pub address: String,
    pub protocol_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateMember {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A pool to create: alone (with `loadbalancer_id` or `listener_id`), or nested (a listener's
/// `default_pool`, or a load balancer's `pools`) with its members and monitor inside.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreatePool {
    pub protocol: String,
    pub lb_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadbalancer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<SessionPersistence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<CreateMember>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthmonitor: Option<CreateHealthMonitor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdatePool {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb_algorithm: Option<String>,
    /// `Some(None)` clears it (sends `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<Option<SessionPersistence>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateListener {
    pub protocol: String,
    pub protocol_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadbalancer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pool_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pool: Option<CreatePool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tls_container_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni_container_refs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_client_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_member_connect: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_member_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_tcp_inspect: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateListener {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i64>,
    /// `Some(None)` detaches the default pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pool_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tls_container_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_client_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_member_connect: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_member_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_tcp_inspect: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `POST /loadbalancers`; with `listeners` (each with a `default_pool` holding members and a
/// `healthmonitor`) it is Octavia's fully-populated create: one call, one PENDING_CREATE.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateLoadBalancer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_network_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_port_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_qos_policy_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_vips: Option<Vec<AdditionalVip>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<CreateListener>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: Option<Vec<CreatePool>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateLoadBalancer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_qos_policy_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `GET /loadbalancers/{id}/status` (Octavia) or `/statuses` (Neutron LBaaS v2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusTree {
    pub loadbalancer: LoadBalancerStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadBalancerStatus {
    pub id: String,
    pub name: String,
    pub provisioning_status: String,
    pub operating_status: String,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListenerStatus {
    pub id: String,
    pub name: String,
    pub provisioning_status: String,
    pub operating_status: String,
    pub pools: Vec<PoolStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolStatus {
    pub id: String,
    pub name: String,
    pub provisioning_status: String,
    pub operating_status: String,
    pub members: Vec<MemberStatus>,
    pub healthmonitor: Option<ObjectStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberStatus {
    pub id: String,
    pub name: String,
    pub address: String,
    pub protocol_port: u16,
    pub provisioning_status: String,
    pub operating_status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectStatus {
    pub id: String,
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    pub provisioning_status: String,
    pub operating_status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub active_connections: u64,
    pub total_connections: u64,
    pub request_errors: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provider {
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub flavor_profile_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AvailabilityZone {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub availability_zone_profile_id: Option<String>,
}

/// Load-balancer quotas; `None` = not reported, -1 = unlimited. Octavia answers both the new
/// (`load_balancer`, `health_monitor`) and the deprecated (`loadbalancer`, `healthmonitor`)
/// names in one object, so this is built by [`LbQuota::from_value`], not derived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LbQuota {
    pub load_balancer: Option<i64>,
    pub listener: Option<i64>,
    pub pool: Option<i64>,
    pub member: Option<i64>,
    pub health_monitor: Option<i64>,
}

impl LbQuota {
    pub fn from_value(v: &serde_json::Value) -> LbQuota {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| v.get(*n).and_then(serde_json::Value::as_i64))
        };
        LbQuota {
            load_balancer: get(&["load_balancer", "loadbalancer"]),
            listener: get(&["listener"]),
            pool: get(&["pool"]),
            member: get(&["member"]),
            health_monitor: get(&["health_monitor", "healthmonitor"]),
        }
    }
}

/// An API (micro)version such as Octavia's `v2.27`; ordered, so `v >= ApiVersion::new(2, 12)`
/// gates a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }
    /// Parses `v2.27`, `2.27`, `v2.0`, `v2`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let mut it = s.splitn(2, '.');
        let major = it.next()?.parse().ok()?;
        let minor = match it.next() {
            Some(m) => m.parse().ok()?,
            None => 0,
        };
        Some(ApiVersion { major, minor })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}
