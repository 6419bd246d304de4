//! Member selection (SPEC §4 "Members"): which nodes back a Service and at which address,
//! and meltdown protection when none of them is Ready. Must not know about pools, ports or
//! the cloud.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;

use super::class::Placements;
use super::service::Ctx;
use super::Findings;
use crate::config::NetworkingConfig;
use crate::invalid::{Warning, WarningReason};

/// Label that keeps a node out of every load balancer.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// Taint the cluster autoscaler puts on a node it is about to delete.
pub const AUTOSCALER_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// Address family of the Service (its first `ipFamilies` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// A node that may back the Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub address: IpAddr,
    pub ready: bool,
}

/// The outcome of member selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Eligible nodes (Ready or not), sorted by name.
    pub eligible: Vec<Candidate>,
    /// Eligible by labels/taints but without an address of the Service's family.
    pub without_address: Vec<String>,
}

impl Selection {
    pub fn ready(&self) -> impl Iterator<Item = &Candidate> {
        self.eligible.iter().filter(|c| c.ready)
    }
}

/// Selects member nodes. Readiness is reported, not filtered, so the caller can apply
/// meltdown protection.
pub fn select(
    nodes: &[Node],
    selector: &[(String, Option<String>)],
    family: Family,
    net: &NetworkingConfig,
) -> Selection {
    let mut sel = Selection::default();
    for node in nodes {
        let Some(name) = node.metadata.name.clone() else {
            continue;
        };
        if node.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let labels = node.metadata.labels.clone().unwrap_or_default();
        if labels.contains_key(EXCLUDE_LABEL) {
            continue;
        }
        let spec = node.spec.as_ref();
        if spec.is_some_and(|s| s.taints.iter().flatten().any(|t| t.key == AUTOSCALER_TAINT)) {
            continue;
        }
        let matches = selector.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(actual), Some(want)) => actual == want,
            (Some(_), None) => true,
            (None, _) => false,
        });
        if !matches {
            continue;
        }
        let status = node.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        match node_address(node, family, net) {
            Some(address) => sel.eligible.push(Candidate {
                name,
                address,
                ready,
            }),
            None => sel.without_address.push(name),
        }
    }
    sel.eligible.sort_by(|a, b| a.name.cmp(&b.name));
    sel.without_address.sort();
    sel
}

/// The member address of a node: InternalIP before ExternalIP, of the Service's family; with
/// `address-sort-order`, the address in the earliest listed CIDR wins.
pub fn node_address(node: &Node, family: Family, net: &NetworkingConfig) -> Option<IpAddr> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    let mut candidates: Vec<(usize, usize, IpAddr)> = Vec::new();
    for (pos, a) in addresses.iter().enumerate() {
        let type_rank = match a.type_.as_str() {
            "InternalIP" => 0,
            "ExternalIP" => 1,
            _ => continue,
        };
        let Ok(ip) = a.address.trim().parse::<IpAddr>() else {
            continue;
        };
        if Family::of(&ip) != family {
            continue;
        }
        let order_rank = if net.address_sort_order.is_empty() {
            0
        } else {
            net.address_sort_order
                .iter()
                .position(|cidr| cidr.contains(&ip))
                .unwrap_or(usize::MAX)
        };
        candidates.push((order_rank, type_rank * 1000 + pos, ip));
    }
    candidates.sort();
    candidates.first().map(|c| c.2)
}

/// The members every pool of the Service gets.
pub(super) struct Chosen {
    pub nodes: Vec<Candidate>,
    /// Meltdown protection: pools keep what they have; `nodes` only fill a new pool.
    pub keep_last_known: bool,
    /// `member-subnet-id` (annotation > class > config).
    pub subnet_id: Option<String>,
}

pub(super) fn decide(
    cx: &Ctx,
    nodes: &[Node],
    family: Family,
    place: &Placements,
    f: &mut Findings,
) -> Chosen {
    let selector =
        cx.a.node_selector
            .clone()
            .unwrap_or_else(|| cx.lbc.node_selector.clone());
    let selection = select(nodes, &selector, family, &cx.config.networking);
    if !selection.without_address.is_empty() {
        f.warnings.push(Warning::new(
            WarningReason::NodeWithoutAddress,
            format!(
                "nodes without an {} address are not members: {}",
                if family == Family::V4 { "IPv4" } else { "IPv6" },
                selection.without_address.join(", ")
            ),
        ));
    }
    let subnet_id = place.pick(&cx.a.member_subnet_id, |p| &p.member_subnet_id);
    let (nodes, keep_last_known) =
        choose_members(&selection, nodes.len(), &selector, &mut f.warnings);
    Chosen {
        nodes,
        keep_last_known,
        subnet_id,
    }
}

/// Ready eligible nodes; if none is Ready although some are eligible, meltdown protection:
/// keep what the pools have (the NotReady nodes are only the fallback for a new pool). No
/// Node known at all (a cluster whose Node list is empty or not read yet) is the same case:
/// an empty list says nothing about where traffic can go. Nodes known but none eligible
/// (a node-selector that matches none, every node excluded) empties the pools as asked —
/// never silently.
fn choose_members(
    sel: &Selection,
    nodes_known: usize,
    selector: &[(String, Option<String>)],
    warnings: &mut Vec<Warning>,
) -> (Vec<Candidate>, bool) {
    if nodes_known == 0 {
        warnings.push(Warning::new(
            WarningReason::MeltdownProtection,
            "no Node is known; keeping the last known members instead of emptying the pools",
        ));
        return (Vec::new(), true);
    }
    if sel.eligible.is_empty() && sel.without_address.is_empty() {
        let why = if selector.is_empty() {
            format!("all {nodes_known} nodes are excluded (label node.kubernetes.io/exclude-from-external-load-balancers, being deleted, or tainted ToBeDeletedByClusterAutoscaler)")
        } else {
            let text = selector
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect::<Vec<_>>()
                .join(",");
            format!("node-selector {text:?} matches none of the {nodes_known} nodes")
        };
        warnings.push(Warning::new(WarningReason::NoEligibleNodes,
            format!("{why}: the load balancer has no members and sends traffic nowhere; fix the loadbalancer.openstack.org/node-selector annotation or [LoadBalancer] node-selector"),
        ));
    }
    let ready: Vec<Candidate> = sel.ready().cloned().collect();
    if ready.is_empty() && !sel.eligible.is_empty() {
        warnings.push(Warning::new(WarningReason::MeltdownProtection,
            format!(
                "all {} eligible nodes are NotReady; keeping the last known members instead of emptying the pools",
                sel.eligible.len()
            ),
        ));
        return (sel.eligible.clone(), true);
    }
    (ready, false)
}
