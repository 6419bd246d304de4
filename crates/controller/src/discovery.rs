//! Discovery of what cloud.conf leaves open and `model` needs from the cloud and the cluster:
//! the only external network, the nodes' subnet (from the Neutron port holding a node's
//! InternalIP) — and, for `run`, a start-up check that no load balancer of this cluster is
//! named for another cluster name. Shared by `run` and `plan` so both see the same cloud.
//! Must not decide anything: it fills `model::Environment` and logs what `model` found.

use k8s_openapi::api::core::v1::Node;
use model::config::CloudConfig;
use model::{naming, Environment};
use openstack::lbaas::LbaasV2;
use openstack::{ListQuery, Neutron};
use tracing::{info, warn};

/// Fill what cloud.conf left open: the only external network, and the subnet of the Neutron
/// port holding a node's InternalIP. Shared by `run` and `plan` so both see the same cloud.
/// Every lookup is tried; the failures come back so the caller decides: the controller logs
/// them (`desired` then reports what is missing), `plan` stops on them.
pub async fn discover(
    config: &CloudConfig,
    neutron: &Neutron,
    nodes: &[Node],
    env: &mut Environment,
) -> Vec<(&'static str, openstack::Error)> {
    let ip = nodes.iter().find_map(|n| {
        n.status
            .as_ref()?
            .addresses
            .as_ref()?
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address.clone())
    });
    discover_at(config, neutron, ip.as_deref(), env).await
}

/// [`discover`] with the node's InternalIP already picked: also how the planner looks again
/// when the cloud may have changed under it (SPEC issue 14: rediscovery).
pub async fn discover_at(
    config: &CloudConfig,
    neutron: &Neutron,
    node_ip: Option<&str>,
    env: &mut Environment,
) -> Vec<(&'static str, openstack::Error)> {
    let mut failures = Vec::new();
    let placement = &config.load_balancer.placement;
    if placement.floating_network_id.is_none() {
        match neutron
            .list_networks(&ListQuery::new().router_external(true))
            .await
        {
            Ok(nets) if nets.len() == 1 => {
                env.discovered_floating_network_id = nets.first().map(|n| n.id.clone())
            }
            Ok(nets) => info!(
                count = nets.len(),
                "no single external network to default to"
            ),
            Err(e) => failures.push(("cannot list external networks", e)),
        }
    }
    if placement.subnet_id.is_some() || placement.network_id.is_some() {
        return failures;
    }
    let Some(ip) = node_ip else { return failures };
    match neutron
        .list_ports(&ListQuery::new().filter("fixed_ips", format!("ip_address={ip}")))
        .await
    {
        Ok(ports) => {
            if let Some((port, fixed)) = ports.iter().find_map(|p| {
                p.fixed_ips
                    .iter()
                    .find(|f| f.ip_address == ip)
                    .map(|f| (p, f))
            }) {
                env.node_subnet_id = Some(fixed.subnet_id.clone());
                env.node_network_id = Some(port.network_id.clone());
            }
        }
        Err(e) => failures.push(("cannot find the node subnet from its port", e)),
    }
    failures
}

/// Warns once per other cluster name when load balancers that carry this cluster's identity
/// tag are named for another `--cluster-name` (typically: Magnum's OCCM ran with the cluster
/// UUID and this controller with the default `kubernetes`, or the other way round). Such load
/// balancers are invisible to this process: it neither adopts nor collects them. One list call;
/// a failure is logged and changes nothing. `None` (LBaaS v1: no load-balancer objects with
/// names and tags) checks nothing.
pub async fn warn_other_cluster_names(lb: Option<&LbaasV2>, cluster_name: &str, cluster_uid: &str) {
    let Some(lb) = lb.filter(|_| !cluster_uid.is_empty()) else {
        return;
    };
    let tag = naming::cluster_tag(cluster_uid);
    match lb
        .list_loadbalancers(&ListQuery::new().tags(&[tag.as_str()]))
        .await
    {
        Ok(lbs) => {
            let lbs = lbs.iter().map(|l| (l.name.as_str(), l.tags.as_slice()));
            for other in naming::other_cluster_names(lbs, cluster_name, cluster_uid) {
                warn!(
                    cluster_name,
                    other_cluster_name = %other.cluster_name,
                    "{}",
                    other.warning(cluster_name, cluster_uid)
                );
            }
        }
        Err(e) => {
            warn!(error = %e, "cannot check for load balancers named for another cluster name")
        }
    }
}
