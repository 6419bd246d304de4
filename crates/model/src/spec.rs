//! The desired load balancer of one Service (`LoadBalancerSpec`): what `desired` decides and
//! `plan` drives the cloud towards. Plain data in OpenStack's vocabulary (field values are the
//! API's), so a reader can compare it with an `openstack loadbalancer show`. Must not know how
//! it is computed nor how it is applied.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::LbMethod;
use crate::features::CloudFeatures;
use crate::invalid::Warning;

/// Who the load balancer is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`; empty when unknown (dry runs).
    #[serde(default)]
    pub uid: String,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The desired state of one Service's load balancer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub service: ServiceRef,
    /// `kube_service_<cluster>_<ns>_<name>`.
    pub name: String,
    pub description: String,
    /// Tags the LB must carry: the name tag and the cluster-identity tag (empty when the cloud
    /// has no tags; ownership then rests on name and description).
    pub tags: Vec<String>,
    /// The cluster-identity tag; a load balancer carrying another one is never touched.
    pub cluster_tag: String,
    pub vip: VipPlacement,
    pub provider: Option<String>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    /// Use / share this existing LB (`load-balancer-id`) instead of one named after the Service.
    pub existing_lb_id: Option<String>,
    /// `max-shared-lb`: how many Services may share one LB.
    pub max_shared_lb: u32,
    /// Listeners, one per Service port, in Service port order.
    pub listeners: Vec<ListenerSpec>,
    pub floating_ip: FipIntent,
    /// Description of a floating IP we create; with the cluster tag it proves ownership.
    pub fip_description: String,
    /// `keep-floatingip`: the FIP survives the LB.
    pub keep_floating_ip: bool,
    pub security_group: Option<SecurityGroupSpec>,
    /// What `status.loadBalancer.ingress` should say, once addresses are known.
    pub status: StatusIntent,
    /// `recreate-on-immutable-change`.
    pub recreate_on_immutable_change: bool,
    /// Delete with cascade (`cascade-delete`, and the cloud offers it).
    pub cascade_delete: bool,
    /// What the cloud can do; `plan` needs it to choose API calls.
    pub features: CloudFeatures,
    /// Skipped or adapted features, to be emitted as Warning Events.
    pub warnings: Vec<Warning>,
}

/// Where the VIP goes (immutable once created).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipPlacement {
    pub port_id: Option<String>,
    pub subnet_id: Option<String>,
    pub network_id: Option<String>,
    /// A fixed VIP address (internal Services with `loadBalancerIP`).
    pub address: Option<IpAddr>,
    /// Dual-stack: additional VIPs (Octavia ≥ 2.26), by subnet.
    pub additional_subnet_ids: Vec<String>,
}

/// Listener protocol, as Octavia spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ListenerProtocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "TERMINATED_HTTPS")]
    TerminatedHttps,
}

/// Pool protocol, as Octavia spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PoolProtocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "PROXY")]
    Proxy,
    #[serde(rename = "PROXYV2")]
    ProxyV2,
}

/// Health-monitor type, as Octavia spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MonitorType {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "UDP-CONNECT")]
    UdpConnect,
    #[serde(rename = "SCTP")]
    Sctp,
}

macro_rules! api_str {
    ($t:ty) => {
        impl $t {
            /// The API's spelling.
            pub fn as_api(&self) -> String {
                serde_json::to_value(self)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.as_api())
            }
        }
    };
}
api_str!(ListenerProtocol);
api_str!(PoolProtocol);
api_str!(MonitorType);

/// Listener timeouts in milliseconds (Octavia ≥ 2.1). None = leave the cloud's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub client_data: Option<u64>,
    pub member_connect: Option<u64>,
    pub member_data: Option<u64>,
    pub tcp_inspect: Option<u64>,
}

/// One listener with its default pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerSpec {
    /// Index of the Service port; part of the OCCM names.
    pub index: usize,
    pub name: String,
    pub protocol: ListenerProtocol,
    pub port: u16,
    /// The Service's NodePort behind this listener (members' `protocol_port`).
    pub node_port: u16,
    /// -1 = unlimited (Octavia's default).
    pub connection_limit: i64,
    /// Empty = all sources.
    pub allowed_cidrs: Vec<String>,
    pub insert_headers: BTreeMap<String, String>,
    pub timeouts: Timeouts,
    pub default_tls_container_ref: Option<String>,
    pub tags: Vec<String>,
    pub pool: PoolSpec,
}

/// Session persistence of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    /// `SOURCE_IP` for `sessionAffinity: ClientIP`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A listener's default pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: String,
    pub protocol: PoolProtocol,
    pub lb_algorithm: LbMethod,
    pub session_persistence: Option<Persistence>,
    pub members: Members,
    pub monitor: Option<MonitorSpec>,
    pub tags: Vec<String>,
}

/// The members a pool should have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Members {
    /// Exactly these (sorted by name, address).
    Exact(Vec<MemberSpec>),
    /// Meltdown protection: every eligible node is NotReady. Keep the members the pool has;
    /// use `fallback` (the NotReady nodes) only if it has none yet.
    KeepLastKnown { fallback: Vec<MemberSpec> },
}

impl Members {
    /// The list a new pool is created with.
    pub fn initial(&self) -> &[MemberSpec] {
        match self {
            Members::Exact(m) => m,
            Members::KeepLastKnown { fallback } => fallback,
        }
    }
}

/// One backend: a node at its NodePort.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberSpec {
    /// The node name.
    pub name: String,
    pub address: IpAddr,
    pub protocol_port: u16,
    pub subnet_id: Option<String>,
    /// healthCheckNodePort for `externalTrafficPolicy: Local`.
    pub monitor_port: Option<u16>,
}

/// A pool's health monitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MonitorType,
    /// Seconds.
    pub delay: u32,
    /// Seconds.
    pub timeout: u32,
    pub max_retries: u32,
    pub max_retries_down: u32,
    /// HTTP monitors only.
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
}

/// Where the floating IP comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FipIntent {
    /// Internal Service: no floating IP; one we created is released.
    None,
    /// A new floating IP from this network (subnet selection is the client's to resolve).
    New(FipSource),
    /// `spec.loadBalancerIP` / `load-balancer-address`: the project's FIP with this address,
    /// or a new one asking for it.
    ByAddress { address: IpAddr, source: FipSource },
}

/// Network and optional subnet selection of a floating IP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FipSource {
    pub network_id: String,
    pub subnet_id: Option<String>,
    /// Glob on subnet names (`floating-subnet`).
    pub subnet_name_glob: Option<String>,
    pub subnet_tags: Vec<String>,
}

/// The per-Service security group (`manage-security-groups`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Sorted, deduplicated.
    pub rules: Vec<SecurityGroupRule>,
    /// Neutron ports (of member nodes) that must carry the group.
    pub port_ids: Vec<String>,
}

/// One ingress rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub port: u16,
    pub remote_ip_prefix: String,
}

/// How `status.loadBalancer.ingress` is derived once the addresses exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIntent {
    pub source: IngressSource,
    pub ip_mode: IpMode,
}

/// What the ingress entry shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngressSource {
    /// The floating IP (external Services).
    FloatingIp,
    /// The VIP(s) (internal Services).
    Vip,
    /// The `hostname` annotation.
    Hostname(String),
    /// `<address>.<suffix>` (`enable-ingress-hostname`), address = FIP or VIP.
    AddressHostname { suffix: String, from_fip: bool },
}

/// `status.loadBalancer.ingress[].ipMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpMode {
    #[serde(rename = "VIP")]
    Vip,
    /// The load balancer speaks PROXY protocol: kube-proxy must not short-circuit.
    Proxy,
}

/// The status to write, computed by `plan` from the observed addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerStatus {
    pub ingress: Vec<Ingress>,
}

/// One `status.loadBalancer.ingress` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingress {
    pub ip: Option<String>,
    pub hostname: Option<String>,
    pub ip_mode: Option<IpMode>,
}
