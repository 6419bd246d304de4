//! Floating IP create/update/delete.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::kind::Kind;
use super::request::{bad_request_typed, s};
use super::view::{find_visible, owns};
use super::{conflict, new_id, not_found, FloatingIp, NeutronState, PortSpec, Std};
use crate::errors::ApiError;
use crate::state::AuthContext;

pub(super) fn create_floating_ip(
    n: &mut NeutronState,
    ctx: &AuthContext,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    let network_id = s(a, "floating_network_id").unwrap_or_default();
    let network = n
        .network(&network_id)
        .ok_or_else(|| not_found("network", &network_id))?;
    if !network.router_external {
        return Err(bad_request_typed(format!(
            "Bad floatingip request: Network {network_id} is not a valid external network."
        )));
    }
    let subnet_id = s(a, "subnet_id");
    if let Some(sid) = &subnet_id {
        let subnet = n.subnet(sid).ok_or_else(|| not_found("subnet", sid))?;
        if subnet.network_id != network_id {
            return Err(bad_request_typed(format!(
                "Bad floatingip request: Subnet {sid} does not belong to network {network_id}."
            )));
        }
    }
    let requested: Option<IpAddr> = s(a, "floating_ip_address").and_then(|x| x.parse().ok());
    let port_id = s(a, "port_id");
    if let Some(pid) = &port_id {
        let p = find_visible(n, Kind::Port, pid, ctx)?;
        if !owns(&p, ctx) {
            return Err(not_found("port", pid));
        }
    }
    // The address is chosen here rather than by the port's IPAM: it must also be one the
    // data plane can serve, i.e. no other sandbox on this machine uses it.
    let (subnet_id, address) = match requested {
        Some(ip) => (subnet_id, Some(ip)),
        None => match n.claim_floating_address(&network_id, subnet_id.as_deref()) {
            Some((sid, ip)) => (Some(sid), Some(ip)),
            None => {
                return Err(conflict(
                    "IpAddressGenerationFailure",
                    format!("No more IP addresses available on network {network_id}."),
                ))
            }
        },
    };
    let fip_id = new_id();
    let backing = match n.create_port(PortSpec {
        network_id: network_id.clone(),
        subnet_id: subnet_id.clone(),
        ip_address: address,
        name: String::new(),
        device_owner: "network:floatingip".to_string(),
        device_id: fip_id.clone(),
        project_id: String::new(),
        description: String::new(),
        security_groups: Some(Vec::new()),
        admin_state_up: true,
    }) {
        Ok(p) => p,
        Err(e) => {
            if requested.is_none() {
                if let Some(ip) = address {
                    n.release_floating_address(&ip.to_string());
                }
            }
            return Err(e);
        }
    };
    if let Some(ip) = requested {
        n.claim_requested_floating_address(ip);
    }
    let ip = backing
        .fixed_ips
        .first()
        .map(|f| f.ip_address.clone())
        .unwrap_or_default();
    n.floating_ips.insert(
        fip_id.clone(),
        FloatingIp {
            id: fip_id.clone(),
            floating_ip_address: ip.clone(),
            floating_network_id: network_id,
            router_id: None,
            port_id: None,
            fixed_ip_address: None,
            status: "DOWN".to_string(),
            port_details: None,
            port_forwardings: Vec::new(),
            qos_policy_id: s(a, "qos_policy_id"),
            std: Std::new(project, &s(a, "description").unwrap_or_default()),
            backing_port_id: backing.id.clone(),
        },
    );
    if let Some(pid) = port_id {
        let fixed: Option<IpAddr> = s(a, "fixed_ip_address").and_then(|x| x.parse().ok());
        if let Err(e) = n.associate_floating_ip(&fip_id, Some(&pid), fixed) {
            // Roll back: a failed create leaves nothing behind.
            n.floating_ips.remove(&fip_id);
            n.ports.remove(&backing.id);
            n.release_floating_address(&ip);
            return Err(e);
        }
    }
    Ok(fip_id)
}

pub(super) fn update_floating_ip(
    n: &mut NeutronState,
    ctx: &AuthContext,
    id: &str,
    a: &Map<String, Value>,
) -> Result<(), ApiError> {
    let fixed: Option<IpAddr> = s(a, "fixed_ip_address").and_then(|x| x.parse().ok());
    if a.contains_key("port_id") {
        let port_id = s(a, "port_id");
        if let Some(pid) = &port_id {
            let p = find_visible(n, Kind::Port, pid, ctx)?;
            if !owns(&p, ctx) {
                return Err(not_found("port", pid));
            }
        }
        n.associate_floating_ip(id, port_id.as_deref(), fixed)?;
    } else if fixed.is_some() {
        let current = n.floating_ip(id).and_then(|f| f.port_id.clone());
        match current {
            Some(pid) => n.associate_floating_ip(id, Some(&pid), fixed)?,
            None => return Err(bad_request_typed(
                "Bad floatingip request: fixed_ip_address cannot be specified without a port_id.",
            )),
        }
    }
    if let Some(f) = n.floating_ips.get_mut(id) {
        if a.contains_key("qos_policy_id") {
            f.qos_policy_id = s(a, "qos_policy_id");
        }
    }
    Ok(())
}

pub(super) fn delete_floating_ip(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let fip = n
        .floating_ips
        .remove(id)
        .ok_or_else(|| not_found("floatingip", id))?;
    n.ports.remove(&fip.backing_port_id);
    n.release_floating_address(&fip.floating_ip_address);
    Ok(true)
}
