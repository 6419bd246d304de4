//! What exists in the cloud for one Service (`Observed`), as the controller read it: the load
//! balancer tree, the floating IPs on its VIP port or bearing our description, the security
//! group, or the LBaaS v1 objects. Plain data with the API's field values; `Default` is "nothing
//! exists". Must not know how it was fetched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::LbMethod;
use crate::spec::{ListenerProtocol, MonitorType, Persistence, PoolProtocol, SecurityGroupRule};

/// Everything relevant to one Service that exists in the cloud.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Observed {
    /// The LB named after the Service, or the one `load-balancer-id` points at.
    pub load_balancer: Option<ObservedLoadBalancer>,
    /// FIPs on the VIP port, or with our description, or with the requested address.
    pub floating_ips: Vec<ObservedFloatingIp>,
    pub security_group: Option<ObservedSecurityGroup>,
    /// Neutron ports of the member nodes, with their security groups (only read when
    /// `manage-security-groups` is on).
    pub node_ports: Vec<ObservedPort>,
    /// LBaaS v1 objects, on v1 clouds.
    pub v1: Option<ObservedV1>,
    /// The project the controller works in; an LB elsewhere is never adopted.
    pub project_id: Option<String>,
}

/// Octavia's `provisioning_status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProvisioningStatus {
    #[default]
    Active,
    PendingCreate,
    PendingUpdate,
    PendingDelete,
    Error,
    Deleted,
}

impl ProvisioningStatus {
    /// Octavia rejects mutations (409) in these states.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            ProvisioningStatus::PendingCreate
                | ProvisioningStatus::PendingUpdate
                | ProvisioningStatus::PendingDelete
        )
    }

    /// The API's spelling.
    pub fn as_api(&self) -> &'static str {
        match self {
            ProvisioningStatus::Active => "ACTIVE",
            ProvisioningStatus::PendingCreate => "PENDING_CREATE",
            ProvisioningStatus::PendingUpdate => "PENDING_UPDATE",
            ProvisioningStatus::PendingDelete => "PENDING_DELETE",
            ProvisioningStatus::Error => "ERROR",
            ProvisioningStatus::Deleted => "DELETED",
        }
    }

    /// Parses the API's spelling; unknown values count as ERROR (never as ACTIVE).
    pub fn from_api(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "ACTIVE" => ProvisioningStatus::Active,
            "PENDING_CREATE" => ProvisioningStatus::PendingCreate,
            "PENDING_UPDATE" => ProvisioningStatus::PendingUpdate,
            "PENDING_DELETE" => ProvisioningStatus::PendingDelete,
            "DELETED" => ProvisioningStatus::Deleted,
            _ => ProvisioningStatus::Error,
        }
    }
}

/// A load balancer and its tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedLoadBalancer {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub project_id: Option<String>,
    pub provisioning_status: ProvisioningStatus,
    pub operating_status: String,
    pub vip_address: Option<String>,
    pub vip_port_id: Option<String>,
    pub vip_subnet_id: Option<String>,
    pub vip_network_id: Option<String>,
    pub additional_vips: Vec<ObservedAdditionalVip>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub provider: Option<String>,
    pub listeners: Vec<ObservedListener>,
}

/// One of `additional_vips`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedAdditionalVip {
    pub subnet_id: String,
    pub ip_address: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedListener {
    pub id: String,
    pub name: String,
    pub protocol: ListenerProtocol,
    pub protocol_port: u16,
    #[serde(default = "unlimited")]
    pub connection_limit: i64,
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    #[serde(default)]
    pub insert_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout_client_data: Option<u64>,
    #[serde(default)]
    pub timeout_member_connect: Option<u64>,
    #[serde(default)]
    pub timeout_member_data: Option<u64>,
    #[serde(default)]
    pub timeout_tcp_inspect: Option<u64>,
    #[serde(default)]
    pub default_tls_container_ref: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The default pool.
    #[serde(default)]
    pub pool: Option<ObservedPool>,
}

fn unlimited() -> i64 {
    -1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedPool {
    pub id: String,
    pub name: String,
    pub protocol: PoolProtocol,
    pub lb_algorithm: LbMethod,
    #[serde(default)]
    pub session_persistence: Option<Persistence>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub members: Vec<ObservedMember>,
    #[serde(default)]
    pub monitor: Option<ObservedMonitor>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedMember {
    pub id: String,
    pub name: String,
    pub address: String,
    pub protocol_port: u16,
    pub subnet_id: Option<String>,
    pub monitor_port: Option<u16>,
    pub operating_status: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedMonitor {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MonitorType,
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u32,
    #[serde(default)]
    pub max_retries_down: u32,
    #[serde(default)]
    pub http_method: Option<String>,
    #[serde(default)]
    pub url_path: Option<String>,
    #[serde(default)]
    pub expected_codes: Option<String>,
}

/// A Neutron floating IP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedFloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    pub floating_network_id: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub description: String,
    pub tags: Vec<String>,
}

/// The per-Service security group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedSecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub revision_number: u64,
    pub rules: Vec<ObservedRule>,
}

/// A security-group rule with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRule {
    pub id: String,
    #[serde(flatten)]
    pub rule: SecurityGroupRule,
}

/// A node's Neutron port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedPort {
    pub id: String,
    pub security_groups: Vec<String>,
    pub revision_number: u64,
}

/// LBaaS v1: one pool, its members and monitor, one VIP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedV1 {
    pub pool: Option<ObservedV1Pool>,
    pub vip: Option<ObservedV1Vip>,
    pub members: Vec<ObservedV1Member>,
    pub monitors: Vec<ObservedV1Monitor>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedV1Pool {
    pub id: String,
    pub name: String,
    pub description: String,
    pub subnet_id: String,
    pub protocol: String,
    pub lb_method: String,
    pub status: String,
    /// Monitor ids associated with the pool.
    pub health_monitors: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedV1Vip {
    pub id: String,
    pub name: String,
    pub description: String,
    pub address: String,
    pub subnet_id: String,
    pub port_id: String,
    pub protocol_port: u16,
    pub protocol: String,
    pub pool_id: String,
    pub session_persistence: Option<String>,
    pub connection_limit: i64,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedV1Member {
    pub id: String,
    pub pool_id: String,
    pub address: String,
    pub protocol_port: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedV1Monitor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u32,
}
