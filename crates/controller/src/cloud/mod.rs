//! The ports through which the controller reaches a cloud: [`Cloud`] (observe one Service's
//! objects, execute plan steps, watch and collect what the cluster owns), [`Inventory`] (the
//! node scan) and [`Resync`] (one cluster-wide listing for drift detection), with the one
//! [`CloudError`] they all answer with and the request and answer types they take. The planner
//! is written against these traits only, so it is tested against a simulated cloud;
//! [`openstack`] is the production adapter. Must not know about the planner, about
//! Kubernetes, or (outside [`openstack`]) about HTTP and the OpenStack API types.

pub mod openstack;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use model::config::CloudConfig;
use model::observed::{ObservedFloatingIp, ObservedLoadBalancer, ObservedPort};
use model::{Environment, Observed, Step};

use crate::backend::OwnedKind;
use crate::drift::{CloudPrint, Snapshot};
use crate::nodes::NodeAddress;
use crate::watcher::LbProgress;

/// What to look up for one Service: enough to find its LB, its FIPs and its security group
/// in one to three GETs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Lookup {
    /// `kube_service_<cluster>_<ns>_<name>`.
    pub lb_name: String,
    /// `load-balancer-id` (ours written back, or the user's pointer to a shared LB).
    pub lb_id: Option<String>,
    /// Description our floating IPs carry.
    pub fip_description: String,
    /// A floating IP the Service asks for by address.
    pub fip_address: Option<String>,
    /// The per-Service security group's name, when security groups are managed.
    pub security_group: Option<String>,
}

/// Why a cloud call failed, as far as the planner cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudErrorKind {
    /// 409: the load balancer is locked (PENDING_*) or changed under us; try again later.
    Conflict,
    Quota,
    /// 501: the provider does not support something the request asks for.
    ProviderRefused,
    /// 404: an id the request named does not exist (any more).
    NotFound,
    Other,
}

/// A failed cloud call: its kind (what the planner decides on), the message shown to users,
/// and the error of the client underneath when there was one (for logs that walk the chain).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct CloudError {
    pub kind: CloudErrorKind,
    pub message: String,
    /// Shared so the error stays `Clone` (a planner test hands one out more than once).
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl CloudError {
    pub fn new(kind: CloudErrorKind, message: impl Into<String>) -> Self {
        CloudError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A failure the planner has no special handling for.
    pub fn other(message: impl Into<String>) -> Self {
        CloudError::new(CloudErrorKind::Other, message)
    }
}

/// The cloud as the planner needs it.
pub trait Cloud: Send + Sync + 'static {
    /// What exists for this Service.
    fn observe(&self, lookup: &Lookup)
        -> impl Future<Output = Result<Observed, CloudError>> + Send;

    /// Like `observe`, but may stop after the LB when it is locked (PENDING_*): a caller that
    /// will only wait needs neither the tree nor the floating IPs. Never used when deleting,
    /// which must see our floating IPs even while the LB goes.
    fn observe_unless_locked(
        &self,
        lookup: &Lookup,
    ) -> impl Future<Output = Result<Observed, CloudError>> + Send {
        self.observe(lookup)
    }
    /// Run `steps` in order; each may refer by name to objects created by an earlier one.
    fn execute(&self, steps: &[Step]) -> impl Future<Output = Result<Executed, CloudError>> + Send;

    /// The provisioning state of the load balancers `ids` for the shared watcher
    /// ([`crate::watcher`]): one list call of the LBs tagged `cluster_tag` where the cloud can
    /// list by tag. The default cannot tell, so nothing is watched and Services poll alone.
    fn lb_progress(
        &self,
        cluster_tag: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, LbProgress>, CloudError>> + Send {
        let _ = (cluster_tag, ids);
        async { Err(CloudError::other("this cloud cannot be watched")) }
    }

    /// Load balancers and floating IPs tagged `cluster_tag` (one list call each).
    fn list_tagged(
        &self,
        cluster_tag: &str,
    ) -> impl Future<Output = Result<Vec<Tagged>, CloudError>> + Send {
        let _ = cluster_tag;
        async { Ok(Vec::new()) }
    }

    /// Delete a load balancer (cascade) or a floating IP; gone counts as done.
    fn delete_tagged(
        &self,
        kind: OwnedKind,
        id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send {
        let _ = (kind, id);
        async { Ok(()) }
    }
}

/// What one `execute` call brought into existence that later passes need to know about.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Executed {
    /// The id of the load balancer a `CreateLoadBalancer` step created.
    pub load_balancer_id: Option<String>,
    /// Its whole tree as the fully-populated create answered it (`None`: not inlined).
    pub load_balancer: Option<ObservedLoadBalancer>,
    /// The floating IPs created, as their answers (and tag answers) said.
    pub floating_ips: Vec<ObservedFloatingIp>,
}

/// A cloud object carrying a cluster-identity tag: its kind, id, and the name (LB) or
/// description (FIP) that says which Service it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub kind: OwnedKind,
    pub id: String,
    pub name_or_description: String,
    pub label: String,
}

/// A step as one short line for logs and error messages: its operation and the id or name
/// it is about.
pub fn describe(step: &Step) -> String {
    // The serde tag is the operation name; ids follow it for the log line.
    let value = serde_json::to_value(step).unwrap_or_default();
    let op = value
        .get("op")
        .and_then(|v| v.as_str())
        .unwrap_or("step")
        .to_string();
    let target = [
        "lb", "listener", "pool", "monitor", "fip", "name", "group", "port", "member",
    ]
    .iter()
    .find_map(|k| {
        value
            .get(*k)
            .filter(|v| !v.is_object())
            .map(|v| v.to_string().trim_matches('"').to_string())
    });
    match target {
        Some(t) => format!("{op} {t}"),
        None => op,
    }
}

/// What to scan for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRequest {
    pub nodes: Vec<NodeAddress>,
    /// Find each node's port (`manage-security-groups`).
    pub node_ports: bool,
    /// Find the second family's subnet (dual-stack, the cloud has additional VIPs).
    pub secondary_subnet: bool,
    /// Where the primary VIP lives when configured (`subnet-id` / `network-id`); else the
    /// nodes' own subnet and network are used.
    pub vip_subnet_id: Option<String>,
    pub vip_network_id: Option<String>,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Node name → the id of the Neutron port holding its InternalIP.
    pub node_ports: BTreeMap<String, String>,
    /// Every port on the nodes' network with its security groups: how a port of a node that
    /// left the cluster is still found carrying a Service's group.
    pub port_groups: BTreeMap<String, Vec<String>>,
    /// The nodes' network.
    pub network_id: Option<String>,
    /// The subnet of the second address family on the VIP network.
    pub secondary_subnet_id: Option<String>,
}

/// The cloud as the node scan needs it: node-side facts that change only when Nodes change
/// (the Neutron port holding each node's InternalIP, the second family's VIP subnet), found
/// with a constant number of list calls per node-set change and cached by the planner.
pub trait Inventory: Send + Sync + 'static {
    /// Find node ports and/or the secondary subnet with a constant number of list calls.
    fn scan(&self, req: &ScanRequest) -> impl Future<Output = Result<Scan, CloudError>> + Send;

    /// The current security groups and revision of these ports (gone ones are left out), in
    /// a few batched list calls.
    fn ports(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<ObservedPort>, CloudError>> + Send;

    /// Look again for what start-up discovery found and cloud.conf left open (the only
    /// external network, the nodes' subnet and network, from the port holding `node_ip`):
    /// the cloud may have been rebuilt with new ids. `env` holds the discovered values as
    /// they are; on success it holds what the cloud says now, on failure it is unchanged.
    /// The default cannot look: nothing changes.
    fn rediscover(
        &self,
        config: &CloudConfig,
        node_ip: Option<IpAddr>,
        env: &mut Environment,
    ) -> impl Future<Output = Result<(), CloudError>> + Send {
        let _ = (config, node_ip, env);
        async { Ok(()) }
    }
}

/// What one resync listing must cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub cluster_tag: String,
    pub project_id: Option<String>,
    /// List load balancers without the tag filter (some print names an untagged one).
    pub all_load_balancers: bool,
    /// List tagged security groups and the node ports.
    pub security_groups: bool,
    /// The nodes' network, for the node-port listing.
    pub node_network_id: Option<String>,
}

impl SnapshotRequest {
    /// What the given prints need listed.
    pub fn for_prints<'a>(
        cluster_tag: String,
        project_id: Option<String>,
        node_network_id: Option<String>,
        prints: impl Iterator<Item = &'a CloudPrint>,
    ) -> Self {
        let mut req = SnapshotRequest {
            cluster_tag,
            project_id,
            node_network_id,
            ..Default::default()
        };
        for p in prints {
            req.all_load_balancers |= p.names_untagged_lb();
            req.security_groups |= p.names_security();
        }
        req
    }
}

/// One resync listing: the drift snapshot, and the tagged objects orphan collection needs
/// (so both share the same calls).
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub snapshot: Snapshot,
    pub tagged: Vec<Tagged>,
}

/// The cloud as the resync needs it: one round of list calls.
pub trait Resync: Send + Sync + 'static {
    fn snapshot(
        &self,
        req: &SnapshotRequest,
    ) -> impl Future<Output = Result<Listing, CloudError>> + Send;
}
