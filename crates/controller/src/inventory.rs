//! Node-side facts that `model` needs from Neutron and that change only when Nodes change: the
//! Neutron port holding each node's InternalIP (`manage-security-groups`), and the subnet of the
//! second address family on the VIP network (dual-stack additional VIPs). They are found with a
//! constant number of list calls per node-set change (the nodes' network is listed once, not one
//! lookup per node), cached by the planner, and never looked up per reconcile. Also the one
//! batched read of the current state (security groups, `revision_number`) of the node ports a
//! Service's plan may touch. Must not decide anything about load balancers or Kubernetes.

use std::net::IpAddr;

use model::observed::ObservedPort;
use openstack::ListQuery;
use tracing::{info, warn};

use crate::cloud::{CloudError, CloudErrorKind, Inventory, Scan, ScanRequest};
use crate::openstack_cloud::OpenStackCloud;

/// Ports read per list call when reading ports by id: keeps the query string short.
const IDS_PER_CALL: usize = 50;
/// Nodes outside the listed network looked up one by one at most, per scan.
const MAX_SINGLE_LOOKUPS: usize = 20;

fn cloud_error(e: openstack::Error) -> CloudError {
    let kind = match &e {
        openstack::Error::Conflict { .. } | openstack::Error::PreconditionFailed { .. } => {
            CloudErrorKind::Conflict
        }
        openstack::Error::QuotaExceeded { .. } => CloudErrorKind::Quota,
        _ => CloudErrorKind::Other,
    };
    CloudError {
        kind,
        message: e.to_string(),
        source: Some(std::sync::Arc::new(e)),
    }
}

fn holds(port: &openstack::neutron::Port, ip: IpAddr) -> bool {
    port.fixed_ips
        .iter()
        .any(|f| f.ip_address.parse::<IpAddr>().ok() == Some(ip))
}

/// Of the subnets on the VIP network, the one of the other family than the primary: the one
/// holding a node address of that family if any, else the only candidate. Several candidates
/// and no node address to choose by: none (logged), rather than a guess Octavia may refuse.
pub fn pick_secondary(
    subnets: &[openstack::neutron::Subnet],
    primary_subnet: Option<&str>,
    node_fixed_subnets: &[String],
) -> Option<String> {
    let primary_version = primary_subnet
        .and_then(|id| subnets.iter().find(|s| s.id == id))
        .map(|s| s.ip_version)
        .unwrap_or(4);
    let candidates: Vec<&openstack::neutron::Subnet> = subnets
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

impl Inventory for OpenStackCloud {
    async fn scan(&self, req: &ScanRequest) -> Result<Scan, CloudError> {
        let mut scan = Scan::default();
        let mut network = None;
        let mut ports: Vec<openstack::neutron::Port> = Vec::new();
        let need_network = req.node_ports || (req.secondary_subnet && req.vip_network_id.is_none());
        if need_network {
            // One node's port tells the nodes' network; listing that network then finds every
            // node at once.
            if let Some(first) = req.nodes.first() {
                let found = self
                    .neutron
                    .list_ports(
                        &ListQuery::new().filter("fixed_ips", format!("ip_address={}", first.ip)),
                    )
                    .await
                    .map_err(cloud_error)?;
                network = found
                    .iter()
                    .find(|p| holds(p, first.ip))
                    .map(|p| p.network_id.clone());
            }
        }
        if req.node_ports {
            if let Some(net) = &network {
                ports = self
                    .neutron
                    .list_ports(&ListQuery::new().network_id(net.clone()))
                    .await
                    .map_err(cloud_error)?;
            }
            let mut misses = 0usize;
            for n in &req.nodes {
                if let Some(p) = ports.iter().find(|p| holds(p, n.ip)) {
                    scan.node_ports.insert(n.name.clone(), p.id.clone());
                    continue;
                }
                // A node on another network: found alone, but never more than a few per scan.
                misses += 1;
                if misses > MAX_SINGLE_LOOKUPS {
                    continue;
                }
                let found = self
                    .neutron
                    .list_ports(
                        &ListQuery::new().filter("fixed_ips", format!("ip_address={}", n.ip)),
                    )
                    .await
                    .map_err(cloud_error)?;
                if let Some(p) = found.into_iter().find(|p| holds(p, n.ip)) {
                    scan.node_ports.insert(n.name.clone(), p.id.clone());
                    ports.push(p);
                }
            }
            if misses > MAX_SINGLE_LOOKUPS {
                warn!(
                    misses,
                    "many nodes are not on the nodes' network; only the first were looked up"
                );
            }
            scan.port_groups = ports
                .iter()
                .map(|p| (p.id.clone(), p.security_groups.clone()))
                .collect();
        }
        if req.secondary_subnet {
            let vip_network = match (&req.vip_network_id, &req.vip_subnet_id) {
                (Some(n), _) => Some(n.clone()),
                (None, Some(s)) => Some(
                    self.neutron
                        .get_subnet(s)
                        .await
                        .map_err(cloud_error)?
                        .network_id,
                ),
                (None, None) => network.clone(),
            };
            if let Some(net) = vip_network {
                let subnets = self
                    .neutron
                    .list_subnets(&ListQuery::new().network_id(net.clone()))
                    .await
                    .map_err(cloud_error)?;
                let primary = req.vip_subnet_id.clone().or_else(|| {
                    // The nodes' own subnet is the VIP subnet when none is configured.
                    req.nodes.first().and_then(|n| {
                        ports.iter().find(|p| holds(p, n.ip)).and_then(|p| {
                            p.fixed_ips
                                .iter()
                                .find(|f| f.ip_address.parse::<IpAddr>().ok() == Some(n.ip))
                                .map(|f| f.subnet_id.clone())
                        })
                    })
                });
                let node_subnets: Vec<String> = scan
                    .node_ports
                    .values()
                    .filter_map(|id| ports.iter().find(|p| &p.id == id))
                    .flat_map(|p| p.fixed_ips.iter().map(|f| f.subnet_id.clone()))
                    .collect();
                scan.secondary_subnet_id =
                    pick_secondary(&subnets, primary.as_deref(), &node_subnets);
                info!(network = %net, secondary = ?scan.secondary_subnet_id, "second address family's subnet");
            }
        }
        scan.network_id = network;
        Ok(scan)
    }

    async fn ports(&self, ids: &[String]) -> Result<Vec<ObservedPort>, CloudError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut q = ListQuery::new();
            for id in chunk {
                q = q.id(id.clone());
            }
            for p in self.neutron.list_ports(&q).await.map_err(cloud_error)? {
                // Filtered again: an id filter a cloud ignored must not hand us other ports.
                if chunk.contains(&p.id) {
                    out.push(ObservedPort {
                        id: p.id,
                        security_groups: p.security_groups,
                        revision_number: p.revision_number.unwrap_or(0),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::neutron::Subnet;

    fn subnet(id: &str, v: u8) -> Subnet {
        Subnet {
            id: id.into(),
            ip_version: v,
            ..Default::default()
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
