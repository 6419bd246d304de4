//! Router create/update/delete and the add/remove_router_interface actions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::attrs;
use super::kind::Kind;
use super::request::{b, bad_request_typed, parse_body, s, str_list};
use super::view::{find_owned, find_visible, str_field};
use super::{new_id, not_found, NeutronState, Port, Router as NRouter, Std};
use crate::errors::ApiError;
use crate::state::{AppState, AuthContext};

fn gateway_network(a: &Map<String, Value>) -> Result<Option<Option<String>>, ApiError> {
    match a.get("external_gateway_info") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Object(m)) if m.is_empty() => Ok(Some(None)),
        Some(Value::Object(m)) => match m.get("network_id").and_then(Value::as_str) {
            Some(id) => Ok(Some(Some(id.to_string()))),
            None => Err(ApiError::neutron_bad_request(
                "Invalid input for external_gateway_info. Reason: Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: set().",
            )),
        },
        Some(_) => Err(ApiError::neutron_bad_request("Invalid input for external_gateway_info.")),
    }
}

pub(super) fn create_router(
    n: &mut NeutronState,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    let gateway = gateway_network(a)?;
    if let Some(Some(net)) = &gateway {
        n.network(net).ok_or_else(|| not_found("network", net))?;
    }
    let id = new_id();
    n.routers.insert(
        id.clone(),
        NRouter {
            id: id.clone(),
            name: s(a, "name").unwrap_or_default(),
            admin_state_up: b(a, "admin_state_up").unwrap_or(true),
            status: "ACTIVE".to_string(),
            external_gateway_info: None,
            routes: Vec::new(),
            distributed: b(a, "distributed").unwrap_or(false),
            ha: b(a, "ha").unwrap_or(false),
            flavor_id: s(a, "flavor_id"),
            availability_zone_hints: str_list(a, "availability_zone_hints").unwrap_or_default(),
            availability_zones: vec!["nova".to_string()],
            std: Std::new(project, &s(a, "description").unwrap_or_default()),
        },
    );
    if let Some(Some(net)) = gateway {
        if let Err(e) = n.set_router_gateway(&id, Some(&net)) {
            n.routers.remove(&id);
            return Err(e);
        }
    }
    Ok(id)
}

pub(super) fn update_router(
    n: &mut NeutronState,
    id: &str,
    a: &Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(gw) = gateway_network(a)? {
        n.set_router_gateway(id, gw.as_deref())?;
    }
    let router = n
        .routers
        .get_mut(id)
        .ok_or_else(|| not_found("router", id))?;
    if let Some(v) = s(a, "name") {
        router.name = v;
    }
    if let Some(v) = b(a, "admin_state_up") {
        router.admin_state_up = v;
    }
    if let Some(v) = a.get("routes").and_then(Value::as_array) {
        router.routes = v.clone();
    }
    Ok(())
}

pub(super) fn delete_router(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let busy = n
        .ports
        .values()
        .any(|p| p.device_id == id && p.device_owner == "network:router_interface");
    if busy {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "RouterInUse",
            format!("Router {id} still has ports"),
        ));
    }
    n.ports
        .retain(|_, p| !(p.device_id == id && p.device_owner == "network:router_gateway"));
    n.routers.remove(id);
    Ok(false)
}

fn interface_info(router: &str, project: &str, port: &Port) -> Value {
    let subnets: Vec<&str> = port
        .fixed_ips
        .iter()
        .map(|f| f.subnet_id.as_str())
        .collect();
    json!({
        "id": router, "tenant_id": project, "project_id": project, "port_id": port.id,
        "network_id": port.network_id, "subnet_id": subnets.first().copied().unwrap_or(""),
        "subnet_ids": subnets,
    })
}

fn interface_body(body: &Bytes) -> Result<(Option<String>, Option<String>), ApiError> {
    let v = parse_body(body)?;
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::neutron_bad_request("Body contains invalid data"))?;
    let get = |k: &str| -> Result<Option<String>, ApiError> {
        match m.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::neutron_bad_request(format!(
                "Invalid input for {k}. Reason: '{}' is not a valid UUID.",
                attrs::py_str(other)
            ))),
        }
    };
    let subnet = get("subnet_id")?;
    let port = get("port_id")?;
    match (&subnet, &port) {
        (Some(_), Some(_)) => Err(bad_request_typed(
            "Bad router request: Cannot specify both subnet-id and port-id.",
        )),
        (None, None) => Err(bad_request_typed(
            "Bad router request: Either subnet_id or port_id must be specified.",
        )),
        _ => Ok((subnet, port)),
    }
}

pub(super) async fn add_interface(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (subnet_id, port_id) = interface_body(&body)?;
    let mut world = state.inner.world.lock();
    let n = &mut world.neutron;
    let router = find_owned(n, Kind::Router, &id, &ctx, "add_router_interface")?;
    let project = str_field(&router, "project_id").to_string();
    let port = match (subnet_id, port_id) {
        (Some(sid), _) => {
            find_visible(n, Kind::Subnet, &sid, &ctx)?;
            n.add_router_interface(&id, &sid)?
        }
        (None, Some(pid)) => {
            let p = find_visible(n, Kind::Port, &pid, &ctx)?;
            if !str_field(&p, "device_owner").is_empty() || !str_field(&p, "device_id").is_empty() {
                return Err(ApiError::neutron(
                    StatusCode::CONFLICT,
                    "PortInUse",
                    format!("Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.", str_field(&p, "network_id"), str_field(&p, "device_id")),
                ));
            }
            let port = n
                .ports
                .get_mut(&pid)
                .ok_or_else(|| not_found("port", &pid))?;
            port.device_owner = "network:router_interface".to_string();
            port.device_id = id.clone();
            port.status = "ACTIVE".to_string();
            port.std.touch();
            port.clone()
        }
        (None, None) => {
            return Err(bad_request_typed(
                "Bad router request: Either subnet_id or port_id must be specified.",
            ))
        }
    };
    if let Some(r) = n.routers.get_mut(&id) {
        r.std.touch();
    }
    Ok(Json(interface_info(&id, &project, &port)))
}

pub(super) async fn remove_interface(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (subnet_id, port_id) = interface_body(&body)?;
    let mut world = state.inner.world.lock();
    let n = &mut world.neutron;
    let router = find_owned(n, Kind::Router, &id, &ctx, "remove_router_interface")?;
    let project = str_field(&router, "project_id").to_string();
    let is_iface = |p: &Port| p.device_id == id && p.device_owner == "network:router_interface";
    let port = match (&subnet_id, &port_id) {
        (Some(sid), _) => n
            .ports
            .values()
            .find(|p| is_iface(p) && p.fixed_ips.iter().any(|f| &f.subnet_id == sid))
            .cloned()
            .ok_or_else(|| {
                ApiError::neutron(
                    StatusCode::NOT_FOUND,
                    "RouterInterfaceNotFoundForSubnet",
                    format!("Router {id} has no interface on subnet {sid}"),
                )
            })?,
        (None, Some(pid)) => n
            .ports
            .get(pid)
            .filter(|p| is_iface(p))
            .cloned()
            .ok_or_else(|| {
                ApiError::neutron(
                    StatusCode::NOT_FOUND,
                    "RouterInterfaceNotFound",
                    format!("Router {id} does not have an interface with id {pid}"),
                )
            })?,
        (None, None) => {
            return Err(bad_request_typed(
                "Bad router request: Either subnet_id or port_id must be specified.",
            ))
        }
    };
    let in_use = n.floating_ips.values().any(|f| {
        f.router_id.as_deref() == Some(id.as_str())
            && f.port_id
                .as_ref()
                .and_then(|p| n.ports.get(p))
                .is_some_and(|p| {
                    p.fixed_ips
                        .iter()
                        .any(|fi| port.fixed_ips.iter().any(|x| x.subnet_id == fi.subnet_id))
                })
    });
    if in_use {
        let sid = port
            .fixed_ips
            .first()
            .map(|f| f.subnet_id.clone())
            .unwrap_or_default();
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "RouterInterfaceInUseByFloatingIP",
            format!("Router interface for subnet {sid} on router {id} cannot be deleted, as it is required by one or more floating IPs."),
        ));
    }
    n.ports.remove(&port.id);
    if let Some(r) = n.routers.get_mut(&id) {
        r.std.touch();
    }
    Ok(Json(interface_info(&id, &project, &port)))
}
