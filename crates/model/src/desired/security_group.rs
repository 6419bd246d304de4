//! The Service's security group (SPEC §4 "Security groups", `manage-security-groups`): on
//! the member nodes' ports, a rule for each NodePort (and the healthCheckNodePort) from the
//! allowed sources. Only a provider that keeps client addresses (ovn) lets the rules enforce
//! source ranges; behind amphora the nodes see the load balancer's own addresses.

use std::collections::BTreeSet;

use super::members::{Candidate, Family};
use super::monitor::TrafficPolicy;
use super::service::Ctx;
use super::source_ranges::SourceRanges;
use crate::environment::Environment;
use crate::naming;
use crate::spec::{
    ListenerProtocol, ListenerSpec, SecurityGroupRule, SecurityGroupSpec, ServiceRef,
};

/// None unless the controller manages security groups.
pub(super) fn spec(
    cx: &Ctx,
    listeners: &[ListenerSpec],
    traffic: &TrafficPolicy,
    ranges: &SourceRanges,
    family: Family,
    member_nodes: &[Candidate],
) -> Option<SecurityGroupSpec> {
    cx.lbc.manage_security_groups.then(|| {
        group(
            &cx.svc,
            &cx.lb_name,
            cx.env,
            listeners,
            traffic.local_health_port(),
            &ranges.ranges,
            family,
            member_nodes,
            cx.ovn,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn group(
    svc: &ServiceRef,
    lb_name: &str,
    env: &Environment,
    listeners: &[ListenerSpec],
    health_check_node_port: Option<u16>,
    ranges: &Option<Vec<ipnet::IpNet>>,
    family: Family,
    member_nodes: &[Candidate],
    keeps_client_address: bool,
) -> SecurityGroupSpec {
    let sources: Vec<ipnet::IpNet> = match ranges {
        Some(r) if keeps_client_address => r.clone(),
        _ if !keeps_client_address && !env.lb_source_cidrs.is_empty() => {
            env.lb_source_cidrs.clone()
        }
        _ if family == Family::V4 => vec![ipnet::IpNet::V4(ipnet::Ipv4Net::default())],
        _ => vec![ipnet::IpNet::V6(ipnet::Ipv6Net::default())],
    };
    let mut rules = BTreeSet::new();
    for l in listeners {
        let protocol = match l.protocol {
            ListenerProtocol::Udp => "udp",
            ListenerProtocol::Sctp => "sctp",
            _ => "tcp",
        };
        for port in std::iter::once(l.node_port).chain(health_check_node_port) {
            for src in &sources {
                let proto = if Some(port) == health_check_node_port {
                    "tcp"
                } else {
                    protocol
                };
                rules.insert(SecurityGroupRule {
                    ethertype: if src.addr().is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
                    protocol: proto.to_string(),
                    port,
                    remote_ip_prefix: src.to_string(),
                });
            }
        }
    }
    let mut port_ids: Vec<String> = member_nodes
        .iter()
        .filter_map(|c| env.node_port_ids.get(&c.name).cloned())
        .collect();
    port_ids.sort();
    port_ids.dedup();
    SecurityGroupSpec {
        name: naming::security_group_name(lb_name),
        description: format!(
            "Security group for Kubernetes service {svc} from cluster {}",
            env.cluster_name
        ),
        tags: vec![naming::cluster_tag(&env.cluster_uid)],
        rules: rules.into_iter().collect(),
        port_ids,
    }
}
