//! Which address a Node is reached at, as far as the cloud cares: its name and first
//! InternalIP. The node scan ([`crate::cloud::Inventory`]) is keyed by these, so a change of
//! the set is what triggers a new scan. Pure: must not know about the cloud or its API types.

use std::borrow::Borrow;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;

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
}
