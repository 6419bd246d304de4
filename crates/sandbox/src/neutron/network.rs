//! Network create/update/delete.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::request::{admin_only, b, s, str_list};
use super::{new_id, not_found, Network, NeutronState, Std};
use crate::errors::ApiError;
use crate::state::AuthContext;

pub(super) fn create_network(
    n: &mut NeutronState,
    ctx: &AuthContext,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    admin_only(
        ctx,
        a,
        &[
            "router:external",
            "shared",
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ],
        "create_network",
    )?;
    let id = new_id();
    let external = b(a, "router:external").unwrap_or(false);
    let segmentation = n.networks.len() as u32 + 1000;
    n.networks.insert(
        id.clone(),
        Network {
            id: id.clone(),
            name: s(a, "name").unwrap_or_default(),
            admin_state_up: b(a, "admin_state_up").unwrap_or(true),
            status: "ACTIVE".to_string(),
            shared: b(a, "shared").unwrap_or(false),
            router_external: external,
            subnets: Vec::new(),
            mtu: a
                .get("mtu")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(1500),
            port_security_enabled: b(a, "port_security_enabled").unwrap_or(true),
            availability_zone_hints: str_list(a, "availability_zone_hints").unwrap_or_default(),
            availability_zones: vec!["nova".to_string()],
            ipv4_address_scope: None,
            ipv6_address_scope: None,
            is_default: b(a, "is_default").unwrap_or(false),
            l2_adjacency: true,
            network_type: "vxlan".to_string(),
            physical_network: None,
            segmentation_id: Some(segmentation),
            std: Std::new(project, &s(a, "description").unwrap_or_default()),
        },
    );
    Ok(id)
}

pub(super) fn update_network(
    n: &mut NeutronState,
    ctx: &AuthContext,
    id: &str,
    a: &Map<String, Value>,
) -> Result<(), ApiError> {
    admin_only(ctx, a, &["router:external", "shared"], "update_network")?;
    let net = n
        .networks
        .get_mut(id)
        .ok_or_else(|| not_found("network", id))?;
    if let Some(v) = s(a, "name") {
        net.name = v;
    }
    if let Some(v) = b(a, "admin_state_up") {
        net.admin_state_up = v;
    }
    if let Some(v) = b(a, "shared") {
        net.shared = v;
    }
    if let Some(v) = b(a, "router:external") {
        net.router_external = v;
    }
    if let Some(v) = b(a, "port_security_enabled") {
        net.port_security_enabled = v;
    }
    if let Some(v) = a
        .get("mtu")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
    {
        net.mtu = v;
    }
    Ok(())
}

pub(super) fn delete_network(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let in_use = n
        .ports
        .values()
        .any(|p| p.network_id == id && p.device_owner != "network:dhcp");
    if in_use {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "NetworkInUse",
            format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
        ));
    }
    n.ports.retain(|_, p| p.network_id != id);
    n.subnets.retain(|_, s| s.network_id != id);
    n.networks.remove(id);
    Ok(false)
}
