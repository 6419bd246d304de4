//! Facts about the cluster and the cloud that `desired` needs beyond the Service, the Nodes and
//! cloud.conf, discovered once by the controller (SPEC §4 "VIP placement", "Floating IP").
//! Must not know how they were discovered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The controller's context for one reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    /// `--cluster-name` (default `kubernetes`).
    pub cluster_name: String,
    /// UID of the `kube-system` namespace: the cluster identity.
    pub cluster_uid: String,
    /// The project the controller works in.
    pub project_id: Option<String>,
    /// VIP subnet derived from the Neutron port holding a node's InternalIP, used when neither
    /// the Service nor the configuration names one.
    pub node_subnet_id: Option<String>,
    /// Its network.
    pub node_network_id: Option<String>,
    /// Subnet of the nodes' second address family (dual-stack additional VIP).
    pub node_subnet_id_secondary: Option<String>,
    /// The only external network, when the configuration names none.
    pub discovered_floating_network_id: Option<String>,
    /// Where a proxying provider's (amphora's) traffic to the members comes from: the CIDRs of
    /// the VIP and member subnets. Security-group rules admit these, since behind such a
    /// provider the nodes never see the clients' addresses. Empty = unknown (rules then admit
    /// any source).
    pub lb_source_cidrs: Vec<ipnet::IpNet>,
    /// Node name → its Neutron port id (for `manage-security-groups`).
    pub node_port_ids: BTreeMap<String, String>,
}

impl Environment {
    pub fn new(cluster_name: impl Into<String>, cluster_uid: impl Into<String>) -> Self {
        Environment {
            cluster_name: cluster_name.into(),
            cluster_uid: cluster_uid.into(),
            ..Default::default()
        }
    }
}
