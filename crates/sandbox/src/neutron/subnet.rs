//! Subnet create/update/delete, with Neutron's allocation-pool and gateway checks.

use std::net::IpAddr;

use axum::http::StatusCode;
use ipnet::IpNet;
use serde_json::{Map, Value};

use super::kind::Kind;
use super::request::{b, invalid_input, s, str_list};
use super::view::{owns, policy_denied, str_field, to_json, visible};
use super::{default_pools, new_id, not_found, AllocationPool, NeutronState, Std, Subnet};
use crate::errors::ApiError;
use crate::state::AuthContext;

fn parse_pools(a: &Map<String, Value>) -> Option<Vec<AllocationPool>> {
    a.get("allocation_pools")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|p| AllocationPool {
                    start: str_field(p, "start").to_string(),
                    end: str_field(p, "end").to_string(),
                })
                .collect()
        })
}

/// Neutron's allocation-pool checks: inside the CIDR, start ≤ end, no overlap, gateway outside.
fn check_pools(
    net: &IpNet,
    pools: &[AllocationPool],
    gateway: Option<IpAddr>,
) -> Result<(), ApiError> {
    let mut ranges: Vec<(IpAddr, IpAddr, String)> = Vec::new();
    for p in pools {
        let (Ok(start), Ok(end)) = (p.start.parse::<IpAddr>(), p.end.parse::<IpAddr>()) else {
            return Err(invalid_input(format!(
                "Invalid data format for IP pool: '{}-{}'",
                p.start, p.end
            )));
        };
        let label = format!("{}-{}", p.start, p.end);
        if !net.contains(&start)
            || !net.contains(&end)
            || start == net.network()
            || (net.addr().is_ipv4() && end == net.broadcast())
        {
            return Err(ApiError::neutron(
                StatusCode::BAD_REQUEST,
                "OutOfBoundsAllocationPool",
                format!("The allocation pool {label} spans beyond the subnet cidr {net}."),
            ));
        }
        if start > end {
            return Err(ApiError::neutron(
                StatusCode::BAD_REQUEST,
                "InvalidAllocationPool",
                format!("The allocation pool {label} is not valid."),
            ));
        }
        if let Some((_, _, other)) = ranges.iter().find(|(s, e, _)| start <= *e && *s <= end) {
            return Err(ApiError::neutron(
                StatusCode::BAD_REQUEST,
                "OverlappingAllocationPools",
                format!(
                    "Found overlapping allocation pools: {other} and {label} for subnet {net}."
                ),
            ));
        }
        if let Some(g) = gateway {
            if start <= g && g <= end {
                return Err(ApiError::neutron(
                    StatusCode::CONFLICT,
                    "GatewayConflictWithAllocationPools",
                    format!("Gateway ip {g} conflicts with allocation pool {label}"),
                ));
            }
        }
        ranges.push((start, end, label));
    }
    Ok(())
}

pub(super) fn create_subnet(
    n: &mut NeutronState,
    ctx: &AuthContext,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    let network_id = s(a, "network_id").unwrap_or_default();
    let network = n
        .network(&network_id)
        .ok_or_else(|| not_found("network", &network_id))?;
    let net_json = to_json(network);
    if !visible(n, Kind::Network, &net_json, ctx) {
        return Err(not_found("network", &network_id));
    }
    if !owns(&net_json, ctx) {
        return Err(policy_denied("rule:create_subnet"));
    }
    let Some(cidr_text) = s(a, "cidr") else {
        return Err(ApiError::neutron_bad_request(
            "Bad request: a subnetpool must be specified in the absence of a cidr",
        ));
    };
    let cidr: IpNet = cidr_text.parse().map_err(|_| {
        ApiError::neutron_bad_request(format!(
            "Invalid input for cidr. Reason: '{cidr_text}' is not a valid IP subnet."
        ))
    })?;
    // Neutron accepts host bits and stores the network address.
    let cidr = cidr.trunc();
    let version = a.get("ip_version").and_then(Value::as_i64).unwrap_or(4);
    if (version == 4) != cidr.addr().is_ipv4() {
        return Err(invalid_input(format!(
            "cidr '{cidr_text}' does not match the ip_version '{version}'"
        )));
    }
    if n.subnets.values().any(|s| {
        s.network_id == network_id
            && s.net()
                .is_some_and(|o| o.contains(&cidr.network()) || cidr.contains(&o.network()))
    }) {
        return Err(invalid_input(format!(
            "Requested subnet with cidr: {cidr} for network: {network_id} overlaps with another subnet"
        )));
    }
    let gateway: Option<IpAddr> = match a.get("gateway_ip") {
        None => cidr.hosts().next(),
        Some(Value::Null) => None,
        Some(v) => {
            let ip: IpAddr = v
                .as_str()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| invalid_input("Gateway is not valid on subnet."))?;
            if !cidr.contains(&ip)
                || ip == cidr.network()
                || (cidr.addr().is_ipv4() && ip == cidr.broadcast())
            {
                return Err(invalid_input(format!(
                    "Gateway is not valid on subnet. ({ip})"
                )));
            }
            Some(ip)
        }
    };
    let pools = match parse_pools(a) {
        Some(p) => {
            check_pools(&cidr, &p, gateway)?;
            p
        }
        None => default_pools(&cidr, gateway),
    };
    let id = new_id();
    n.subnets.insert(
        id.clone(),
        Subnet {
            id: id.clone(),
            name: s(a, "name").unwrap_or_default(),
            network_id: network_id.clone(),
            cidr: cidr.to_string(),
            ip_version: if version == 6 { 6 } else { 4 },
            gateway_ip: gateway.map(|g| g.to_string()),
            allocation_pools: pools,
            enable_dhcp: b(a, "enable_dhcp").unwrap_or(true),
            dns_nameservers: str_list(a, "dns_nameservers").unwrap_or_default(),
            host_routes: a
                .get("host_routes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            subnetpool_id: None,
            ipv6_ra_mode: s(a, "ipv6_ra_mode"),
            ipv6_address_mode: s(a, "ipv6_address_mode"),
            service_types: str_list(a, "service_types").unwrap_or_default(),
            segment_id: s(a, "segment_id"),
            dns_publish_fixed_ip: b(a, "dns_publish_fixed_ip").unwrap_or(false),
            std: Std::new(project, &s(a, "description").unwrap_or_default()),
        },
    );
    if let Some(net) = n.networks.get_mut(&network_id) {
        net.subnets.push(id.clone());
        net.std.touch();
    }
    Ok(id)
}

pub(super) fn update_subnet(
    n: &mut NeutronState,
    id: &str,
    a: &Map<String, Value>,
) -> Result<(), ApiError> {
    let subnet = n.subnets.get(id).ok_or_else(|| not_found("subnet", id))?;
    let cidr = subnet.net().ok_or_else(|| not_found("subnet", id))?;
    let gateway: Option<IpAddr> = match a.get("gateway_ip") {
        None => subnet.gateway_ip.as_ref().and_then(|g| g.parse().ok()),
        Some(Value::Null) => None,
        Some(v) => {
            let ip: IpAddr = v
                .as_str()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| invalid_input("Gateway is not valid on subnet."))?;
            if !cidr.contains(&ip) {
                return Err(invalid_input("Gateway is not valid on subnet."));
            }
            Some(ip)
        }
    };
    let pools = parse_pools(a);
    check_pools(
        &cidr,
        pools.as_deref().unwrap_or(&subnet.allocation_pools),
        gateway,
    )?;
    let subnet = n
        .subnets
        .get_mut(id)
        .ok_or_else(|| not_found("subnet", id))?;
    if let Some(v) = s(a, "name") {
        subnet.name = v;
    }
    if a.contains_key("gateway_ip") {
        subnet.gateway_ip = gateway.map(|g| g.to_string());
    }
    if let Some(p) = pools {
        subnet.allocation_pools = p;
    }
    if let Some(v) = b(a, "enable_dhcp") {
        subnet.enable_dhcp = v;
    }
    if let Some(v) = str_list(a, "dns_nameservers") {
        subnet.dns_nameservers = v;
    }
    if let Some(v) = a.get("host_routes").and_then(Value::as_array) {
        subnet.host_routes = v.clone();
    }
    if let Some(v) = str_list(a, "service_types") {
        subnet.service_types = v;
    }
    Ok(())
}

pub(super) fn delete_subnet(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let in_use = n
        .ports
        .values()
        .any(|p| p.device_owner != "network:dhcp" && p.fixed_ips.iter().any(|f| f.subnet_id == id));
    if in_use {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "SubnetInUse",
            format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
        ));
    }
    let net_id = n.subnets.remove(id).map(|s| s.network_id);
    if let Some(net) = net_id.and_then(|nid| n.networks.get_mut(&nid)) {
        net.subnets.retain(|s| s != id);
        net.std.touch();
    }
    Ok(false)
}
