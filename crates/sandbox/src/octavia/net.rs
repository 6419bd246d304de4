//! The few Neutron operations the load-balancer side needs (VIP ports, subnets, floating IPs),
//! phrased as Octavia's validation would answer them. It must not know Neutron's HTTP API.

use std::net::{IpAddr, Ipv4Addr};

use crate::neutron::{NeutronState, PortSpec};

use super::error::LbError;

/// Where the caller wants the VIP.
#[derive(Debug, Default, Clone)]
pub struct VipRequest {
    pub port_id: Option<String>,
    pub network_id: Option<String>,
    pub subnet_id: Option<String>,
    pub address: Option<IpAddr>,
}

/// The VIP as placed; `owned` when we created the port (it goes with the load balancer).
#[derive(Debug, Clone)]
pub struct Vip {
    pub port_id: String,
    pub address: String,
    pub subnet_id: String,
    pub network_id: String,
    pub owned: bool,
}

/// Checks the request the way Octavia's `_validate_vip_request_object` does, without
/// allocating anything; returns the network and subnet to allocate on.
pub fn resolve_vip(
    neutron: &NeutronState,
    req: &VipRequest,
) -> Result<(String, Option<String>), LbError> {
    if let Some(port_id) = &req.port_id {
        let port = neutron
            .port(port_id)
            .ok_or_else(|| LbError::bad_request(format!("Port {port_id} not found.")))?;
        if !port.device_id.is_empty() || !port.device_owner.is_empty() {
            return Err(LbError::validation(format!(
                "Port {port_id} already in use by a device."
            )));
        }
        let subnet = match (&req.subnet_id, req.address) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(ip)) => Some(
                port.fixed_ips
                    .iter()
                    .find(|f| f.ip_address == ip.to_string())
                    .map(|f| f.subnet_id.clone())
                    .ok_or_else(|| {
                        LbError::validation("Specified VIP address not found on the specified VIP port.")
                    })?,
            ),
            (None, None) if port.fixed_ips.len() == 1 => Some(port.fixed_ips[0].subnet_id.clone()),
            (None, None) => {
                return Err(LbError::validation(
                    "VIP port's subnet could not be determined. Please specify either a VIP subnet or address.",
                ))
            }
        };
        return Ok((port.network_id.clone(), subnet));
    }
    if let Some(network_id) = &req.network_id {
        let network = neutron
            .network(network_id)
            .ok_or_else(|| LbError::bad_request(format!("Network {network_id} not found.")))?;
        if let Some(subnet_id) = &req.subnet_id {
            let subnet = neutron
                .subnet(subnet_id)
                .ok_or_else(|| LbError::bad_request(format!("Subnet {subnet_id} not found.")))?;
            if subnet.network_id != network.id {
                return Err(LbError::validation(format!(
                    "Network {network_id} does not contain subnet {subnet_id}."
                )));
            }
            return Ok((network_id.clone(), Some(subnet_id.clone())));
        }
        let subnet = match req.address {
            Some(ip) => Some(
                neutron
                    .subnet_for_ip(network_id, ip)
                    .map(|s| s.id.clone())
                    .ok_or_else(|| {
                        LbError::validation(
                            "Supplied network does not contain a subnet for VIP address specified.",
                        )
                    })?,
            ),
            None => {
                // Octavia takes the network's first IPv4 subnet, else its first subnet.
                let subnets: Vec<_> = network
                    .subnets
                    .iter()
                    .filter_map(|id| neutron.subnet(id))
                    .collect();
                let first = subnets
                    .iter()
                    .find(|s| s.net().is_some_and(|n| n.addr().is_ipv4()))
                    .or_else(|| subnets.first())
                    .ok_or_else(|| {
                        LbError::validation("Supplied network does not contain a subnet.")
                    })?;
                Some(first.id.clone())
            }
        };
        return Ok((network_id.clone(), subnet));
    }
    if let Some(subnet_id) = &req.subnet_id {
        let subnet = neutron
            .subnet(subnet_id)
            .ok_or_else(|| LbError::bad_request(format!("Subnet {subnet_id} not found.")))?;
        return Ok((subnet.network_id.clone(), Some(subnet_id.clone())));
    }
    Err(LbError::validation(
        "VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.",
    ))
}

/// Allocates (or adopts) the VIP port for load balancer `lb_id`.
pub fn allocate_vip(
    neutron: &mut NeutronState,
    req: &VipRequest,
    lb_id: &str,
    project_id: &str,
) -> Result<Vip, LbError> {
    let (network_id, subnet_id) = resolve_vip(neutron, req)?;
    if let Some(port_id) = &req.port_id {
        let port = neutron
            .port(port_id)
            .ok_or_else(|| LbError::bad_request(format!("Port {port_id} not found.")))?;
        let fixed = port
            .fixed_ips
            .iter()
            .find(|f| subnet_id.as_deref().is_none_or(|s| s == f.subnet_id))
            .or_else(|| port.fixed_ips.first())
            .cloned()
            .ok_or_else(|| LbError::validation(format!("Port {port_id} has no fixed IP.")))?;
        return Ok(Vip {
            port_id: port_id.clone(),
            address: fixed.ip_address,
            subnet_id: fixed.subnet_id,
            network_id,
            owned: false,
        });
    }
    let port = neutron
        .create_port(PortSpec {
            network_id: network_id.clone(),
            subnet_id: subnet_id.clone(),
            ip_address: req.address,
            name: format!("octavia-lb-{lb_id}"),
            device_owner: "Octavia".to_string(),
            device_id: format!("lb-{lb_id}"),
            project_id: project_id.to_string(),
            description: String::new(),
            security_groups: None,
            admin_state_up: false,
        })
        .map_err(|e| LbError::new(e.status, "IpAddressGenerationFailure", e.message))?;
    let fixed = port
        .fixed_ips
        .iter()
        .find(|f| subnet_id.as_deref().is_none_or(|s| s == f.subnet_id))
        .or_else(|| port.fixed_ips.first())
        .cloned()
        .ok_or_else(|| LbError::validation("No address could be allocated for the VIP."))?;
    Ok(Vip {
        port_id: port.id,
        address: fixed.ip_address,
        subnet_id: fixed.subnet_id,
        network_id,
        owned: true,
    })
}

/// Deletes a VIP port we created; true when a floating IP lost its association.
pub fn release_port(neutron: &mut NeutronState, port_id: &str) -> bool {
    neutron.delete_port(port_id).unwrap_or(false)
}

pub fn subnet_exists(neutron: &NeutronState, subnet_id: &str) -> bool {
    neutron.subnet(subnet_id).is_some()
}

/// The IPv4 floating address associated with a port (only those carry traffic here).
pub fn floating_ip_of_port(neutron: &NeutronState, port_id: &str) -> Option<Ipv4Addr> {
    neutron
        .floating_ip_for_port(port_id)
        .and_then(|f| f.floating_ip_address.parse().ok())
}
