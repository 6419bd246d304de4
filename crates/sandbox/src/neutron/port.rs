//! Port create/update/delete: fixed IPs, MAC addresses, security groups, address pairs.

use std::net::IpAddr;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::kind::Kind;
use super::request::{admin_only, b, s, str_list};
use super::view::{find_visible, str_field};
use super::{new_id, not_found, AddressPair, NeutronState, Port, Std};
use crate::errors::ApiError;
use crate::state::AuthContext;

fn fixed_ip_requests(a: &Map<String, Value>) -> Option<Vec<(Option<String>, Option<IpAddr>)>> {
    a.get("fixed_ips").and_then(Value::as_array).map(|l| {
        l.iter()
            .map(|f| {
                (
                    f.get("subnet_id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    f.get("ip_address")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok()),
                )
            })
            .collect()
    })
}

fn address_pairs(a: &Map<String, Value>, mac: &str) -> Option<Vec<AddressPair>> {
    a.get("allowed_address_pairs")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|p| AddressPair {
                    ip_address: str_field(p, "ip_address").to_string(),
                    mac_address: p
                        .get("mac_address")
                        .and_then(Value::as_str)
                        .unwrap_or(mac)
                        .to_string(),
                })
                .collect()
        })
}

fn check_security_groups(
    n: &NeutronState,
    ctx: &AuthContext,
    groups: &[String],
) -> Result<(), ApiError> {
    for g in groups {
        find_visible(n, Kind::SecurityGroup, g, ctx)?;
    }
    Ok(())
}

fn sg_requires_port_security() -> ApiError {
    ApiError::neutron_bad_request(
        "Port security must be enabled and port must have an IP address in order to use security groups.",
    )
}

fn pairs_require_port_security() -> ApiError {
    ApiError::neutron(
        StatusCode::CONFLICT,
        "AddressPairAndPortSecurityRequired",
        "Port Security must be enabled in order to have allowed address pairs on a port.",
    )
}

pub(super) fn create_port(
    n: &mut NeutronState,
    ctx: &AuthContext,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    let network_id = s(a, "network_id").unwrap_or_default();
    let network = find_visible(n, Kind::Network, &network_id, ctx)?;
    admin_only(
        ctx,
        a,
        &["binding:host_id", "binding:profile"],
        "create_port",
    )?;
    let mac = match s(a, "mac_address") {
        Some(m) => {
            if n.ports
                .values()
                .any(|p| p.network_id == network_id && p.mac_address == m)
            {
                return Err(ApiError::neutron(
                    StatusCode::CONFLICT,
                    "MacAddressInUse",
                    format!("Unable to complete operation for network {network_id}. The mac address {m} is in use."),
                ));
            }
            m
        }
        None => n.next_mac(),
    };
    let fixed_ips = n.allocate_fixed_ips(&network_id, &fixed_ip_requests(a).unwrap_or_default())?;
    let port_security = b(a, "port_security_enabled").unwrap_or_else(|| {
        network
            .get("port_security_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    });
    let device_owner = s(a, "device_owner").unwrap_or_default();
    let security_groups = match str_list(a, "security_groups") {
        Some(g) => {
            if !g.is_empty() && !port_security {
                return Err(sg_requires_port_security());
            }
            check_security_groups(n, ctx, &g)?;
            g
        }
        None if port_security && !device_owner.starts_with("network:") => {
            vec![n.default_security_group(project)]
        }
        None => Vec::new(),
    };
    let pairs = address_pairs(a, &mac).unwrap_or_default();
    if !pairs.is_empty() && !port_security {
        return Err(pairs_require_port_security());
    }
    let host_id = s(a, "binding:host_id").unwrap_or_default();
    let status = if !host_id.is_empty() || device_owner.starts_with("compute:") {
        "ACTIVE"
    } else {
        "DOWN"
    };
    let port = Port {
        id: new_id(),
        name: s(a, "name").unwrap_or_default(),
        network_id,
        mac_address: mac,
        admin_state_up: b(a, "admin_state_up").unwrap_or(true),
        status: status.to_string(),
        device_id: s(a, "device_id").unwrap_or_default(),
        device_owner,
        fixed_ips,
        security_groups,
        port_security_enabled: port_security,
        allowed_address_pairs: pairs,
        extra_dhcp_opts: a
            .get("extra_dhcp_opts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        vnic_type: s(a, "binding:vnic_type").unwrap_or_else(|| "normal".to_string()),
        vif_type: if host_id.is_empty() { "unbound" } else { "ovs" }.to_string(),
        host_id,
        binding_profile: a
            .get("binding:profile")
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| json!({})),
        vif_details: json!({}),
        dns_name: s(a, "dns_name").unwrap_or_default(),
        dns_assignment: Vec::new(),
        propagate_uplink_status: b(a, "propagate_uplink_status").unwrap_or(false),
        std: Std::new(project, &s(a, "description").unwrap_or_default()),
    };
    let id = port.id.clone();
    n.ports.insert(id.clone(), port);
    Ok(id)
}

pub(super) fn update_port(
    n: &mut NeutronState,
    ctx: &AuthContext,
    id: &str,
    a: &Map<String, Value>,
) -> Result<(), ApiError> {
    admin_only(
        ctx,
        a,
        &["binding:host_id", "binding:profile"],
        "update_port",
    )?;
    let mut port = n
        .ports
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("port", id))?;
    if let Some(requests) = fixed_ip_requests(a) {
        // Re-allocate with this port's own addresses released, so it may keep them.
        let old = n.ports.remove(id);
        let result = n.allocate_fixed_ips(&port.network_id, &requests);
        if let Some(old) = old {
            n.ports.insert(id.to_string(), old);
        }
        port.fixed_ips = result?;
    }
    if let Some(m) = s(a, "mac_address") {
        if n.ports
            .values()
            .any(|p| p.id != id && p.network_id == port.network_id && p.mac_address == m)
        {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "MacAddressInUse",
                format!(
                    "Unable to complete operation for network {}. The mac address {m} is in use.",
                    port.network_id
                ),
            ));
        }
        port.mac_address = m;
    }
    if let Some(v) = b(a, "port_security_enabled") {
        port.port_security_enabled = v;
    }
    if let Some(g) = str_list(a, "security_groups") {
        check_security_groups(n, ctx, &g)?;
        port.security_groups = g;
    }
    if let Some(p) = address_pairs(a, &port.mac_address) {
        port.allowed_address_pairs = p;
    }
    if !port.port_security_enabled {
        if !port.security_groups.is_empty() {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            ));
        }
        if !port.allowed_address_pairs.is_empty() {
            return Err(pairs_require_port_security());
        }
    }
    if let Some(v) = s(a, "name") {
        port.name = v;
    }
    if let Some(v) = b(a, "admin_state_up") {
        port.admin_state_up = v;
    }
    if let Some(v) = s(a, "device_id") {
        port.device_id = v;
    }
    if let Some(v) = s(a, "device_owner") {
        port.device_owner = v;
    }
    if let Some(v) = s(a, "binding:host_id") {
        port.vif_type = if v.is_empty() { "unbound" } else { "ovs" }.to_string();
        if !v.is_empty() {
            port.status = "ACTIVE".to_string();
        }
        port.host_id = v;
    }
    if let Some(v) = s(a, "binding:vnic_type") {
        port.vnic_type = v;
    }
    if let Some(v) = a.get("binding:profile") {
        port.binding_profile = if v.is_null() { json!({}) } else { v.clone() };
    }
    if let Some(v) = a.get("extra_dhcp_opts").and_then(Value::as_array) {
        port.extra_dhcp_opts = v.clone();
    }
    if let Some(v) = s(a, "dns_name") {
        port.dns_name = v;
    }
    if let Some(v) = b(a, "propagate_uplink_status") {
        port.propagate_uplink_status = v;
    }
    n.ports.insert(id.to_string(), port);
    Ok(())
}

pub(super) fn delete_port(
    n: &mut NeutronState,
    ctx: &AuthContext,
    id: &str,
) -> Result<bool, ApiError> {
    let port = n.ports.get(id).ok_or_else(|| not_found("port", id))?;
    let owner = port.device_owner.as_str();
    if matches!(
        owner,
        "network:router_interface"
            | "network:router_gateway"
            | "network:floatingip"
            | "network:router_interface_distributed"
    ) && !ctx.is_admin()
    {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "ServicePortInUse",
            format!(
                "Port {id} cannot be deleted directly via the port API: has device owner {owner}."
            ),
        ));
    }
    n.delete_port(id)
}
