//! Node-side facts as far as the cloud cares, decided without calling it: which address a
//! Node is reached at (its name and first InternalIP; the node scan of
//! [`crate::cloud::Inventory`] is keyed by these, so a change of the set triggers a new scan),
//! and which subnet of the VIP network is the second address family's. Pure: must not know
//! about the cloud's API types or make calls.

use std::borrow::Borrow;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use tracing::warn;

/// A node as far as the cloud cares: its name and InternalIP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddress {
    pub name: String,
    pub ip: IpAddr,
}

/// The first InternalIP of every Node that has one, sorted by name: the scan's cache key.
pub fn node_addresses<N: Borrow<Node>>(nodes: &[N]) -> Vec<NodeAddress> {
    let mut out: Vec<NodeAddress> = nodes
        .iter()
        .filter_map(|n| {
            let n: &Node = n.borrow();
            let name = n.metadata.name.clone()?;
            let ip = n
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .filter(|a| a.type_ == "InternalIP")
                .find_map(|a| a.address.parse::<IpAddr>().ok())?;
            Some(NodeAddress { name, ip })
        })
        .collect();
    out.sort();
    out
}

/// A subnet as far as choosing the second address family goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetFamily {
    pub id: String,
    /// 4 or 6.
    pub ip_version: u8,
}

/// Of the subnets on the VIP network, the one of the other family than the primary: the one
/// holding a node address of that family if any, else the only candidate. Several candidates
/// and no node address to choose by: none (logged), rather than a guess Octavia may refuse.
pub fn pick_secondary(
    subnets: &[SubnetFamily],
    primary_subnet: Option<&str>,
    node_fixed_subnets: &[String],
) -> Option<String> {
    let primary_version = primary_subnet
        .and_then(|id| subnets.iter().find(|s| s.id == id))
        .map(|s| s.ip_version)
        .unwrap_or(4);
    let candidates: Vec<&SubnetFamily> = subnets
        .iter()
        .filter(|s| s.ip_version != primary_version && (s.ip_version == 4 || s.ip_version == 6))
        .collect();
    if let Some(s) = candidates
        .iter()
        .find(|s| node_fixed_subnets.contains(&s.id))
    {
        return Some(s.id.clone());
    }
    match candidates.as_slice() {
        [one] => Some(one.id.clone()),
        [] => None,
        many => {
            warn!(
                candidates = ?many.iter().map(|s| &s.id).collect::<Vec<_>>(),
                "several subnets of the second address family on the VIP network and no node address on any; dual-stack Services get one family"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress as K8sAddress, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, addrs: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(NodeStatus {
                addresses: Some(
                    addrs
                        .iter()
                        .map(|(t, a)| K8sAddress {
                            type_: t.to_string(),
                            address: a.to_string(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn node_addresses_take_the_first_internal_ip_sorted_by_name() {
        let nodes = vec![
            node("b", &[("Hostname", "b"), ("InternalIP", "10.0.0.2")]),
            node(
                "a",
                &[("ExternalIP", "1.2.3.4"), ("InternalIP", "10.0.0.1")],
            ),
            node("c", &[("Hostname", "c")]),
            node(
                "d",
                &[("InternalIP", "not-an-ip"), ("InternalIP", "fd00::4")],
            ),
        ];
        let got = node_addresses(&nodes);
        let names: Vec<(&str, String)> = got
            .iter()
            .map(|n| (n.name.as_str(), n.ip.to_string()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a", "10.0.0.1".to_string()),
                ("b", "10.0.0.2".to_string()),
                ("d", "fd00::4".to_string())
            ]
        );
    }

    fn subnet(id: &str, v: u8) -> SubnetFamily {
        SubnetFamily {
            id: id.into(),
            ip_version: v,
        }
    }

    #[test]
    fn secondary_subnet_is_the_other_family() {
        let subnets = vec![subnet("v4", 4), subnet("v6", 6)];
        assert_eq!(
            pick_secondary(&subnets, Some("v4"), &[]).as_deref(),
            Some("v6")
        );
        assert_eq!(
            pick_secondary(&subnets, Some("v6"), &[]).as_deref(),
            Some("v4")
        );
        // No primary known: IPv4 is assumed primary.
        assert_eq!(pick_secondary(&subnets, None, &[]).as_deref(), Some("v6"));
        // Single-stack network: nothing.
        assert_eq!(pick_secondary(&[subnet("v4", 4)], Some("v4"), &[]), None);
        // Two candidates: the one holding node addresses wins; otherwise no guess.
        let two = vec![subnet("v4", 4), subnet("v6a", 6), subnet("v6b", 6)];
        assert_eq!(pick_secondary(&two, Some("v4"), &[]), None);
        assert_eq!(
            pick_secondary(&two, Some("v4"), &["v6b".to_string()]).as_deref(),
            Some("v6b")
        );
    }
}
