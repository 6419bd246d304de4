//! The node scan ([`Inventory`]) over Neutron: the port holding each node's InternalIP
//! (`manage-security-groups`) and the subnet of the second address family on the VIP network
//! (dual-stack additional VIPs), found with a constant number of list calls per node-set
//! change (the nodes' network is listed once, not one lookup per node); also the one batched
//! read of the current state (security groups, `revision_number`) of the node ports a
//! Service's plan may touch. Must not decide anything about load balancers or Kubernetes:
//! which subnet is the second family's is [`crate::nodes::pick_secondary`]'s call.

use std::net::IpAddr;

use model::observed::ObservedPort;
use openstack::ListQuery;
use tracing::{info, warn};

use super::OpenStackCloud;
use model::config::CloudConfig;
use model::Environment;

use crate::cloud::{CloudError, Inventory, Scan, ScanRequest};
use crate::nodes::{pick_secondary, SubnetFamily};

/// Ports read per list call when reading ports by id: keeps the query string short.
const IDS_PER_CALL: usize = 50;
/// Nodes outside the listed network looked up one by one at most, per scan.
const MAX_SINGLE_LOOKUPS: usize = 20;

fn holds(port: &openstack::neutron::Port, ip: IpAddr) -> bool {
    port.fixed_ips
        .iter()
        .any(|f| f.ip_address.parse::<IpAddr>().ok() == Some(ip))
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
                    .await?;
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
                    .await?;
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
                    .await?;
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
                (None, Some(s)) => Some(self.neutron.get_subnet(s).await?.network_id),
                (None, None) => network.clone(),
            };
            if let Some(net) = vip_network {
                let subnets = self
                    .neutron
                    .list_subnets(&ListQuery::new().network_id(net.clone()))
                    .await?;
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
                let families: Vec<SubnetFamily> = subnets
                    .into_iter()
                    .map(|s| SubnetFamily {
                        id: s.id,
                        ip_version: s.ip_version,
                    })
                    .collect();
                scan.secondary_subnet_id =
                    pick_secondary(&families, primary.as_deref(), &node_subnets);
                info!(network = %net, secondary = ?scan.secondary_subnet_id, "second address family's subnet");
            }
        }
        scan.network_id = network;
        Ok(scan)
    }

    async fn rediscover(
        &self,
        config: &CloudConfig,
        node_ip: Option<IpAddr>,
        env: &mut Environment,
    ) -> Result<(), CloudError> {
        // From nothing, as at start-up: an id that is gone must not survive a lookup that
        // finds nothing in its place.
        let mut fresh = env.clone();
        fresh.discovered_floating_network_id = None;
        fresh.node_subnet_id = None;
        fresh.node_network_id = None;
        let ip = node_ip.map(|ip| ip.to_string());
        let failures =
            crate::discovery::discover_at(config, &self.neutron, ip.as_deref(), &mut fresh).await;
        if let Some((what, e)) = failures.into_iter().next() {
            let mut err = CloudError::from(e);
            err.message = format!("{what}: {}", err.message);
            return Err(err);
        }
        *env = fresh;
        Ok(())
    }

    async fn ports(&self, ids: &[String]) -> Result<Vec<ObservedPort>, CloudError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut q = ListQuery::new();
            for id in chunk {
                q = q.id(id.clone());
            }
            for p in self.neutron.list_ports(&q).await? {
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
