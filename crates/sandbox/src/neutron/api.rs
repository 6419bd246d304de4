//! The Neutron v2.0 HTTP API over `NeutronState`: CRUD of networks, subnets, ports, floating
//! IPs, routers (with interfaces), security groups and rules; list filters, `fields`,
//! pagination and sorting; the tags API; revision_number with If-Match; extensions; quotas.
//! Policy is simplified to "admin sees all, others see their project plus shared/external
//! networks". It must not know load-balancer objects (their routes are mounted by `server`).
//!
//! This module holds the router and the version, extension, service-provider and
//! IP-availability handlers. The rest lives beside it: `kind` (the collections), `generic`
//! (list/show/create/update/delete), `query` (filters, `fields`, sorting), `view` (JSON views,
//! visibility), `request` (body, If-Match, quota check), `tags`, `quota`, and one module per
//! resource family (`network`, `subnet`, `port`, `floating_ip`, `router`, `security_group`).

use std::net::IpAddr;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use ipnet::IpNet;
use serde_json::{json, Value};

use super::generic::{create, delete, list, show, update};
use super::kind::KINDS;
use super::query::{parse_query, values_of};
use super::quota::{
    default_quota, list_quotas, quota_details, reset_quota, show_quota, update_quota,
};
use super::router::{add_interface, remove_interface};
use super::tags::{add_tag, check_tag, delete_all_tags, get_tags, remove_tag, replace_tags};
use super::view::str_field;
use super::{not_found, Network, NeutronState};
use crate::config::LbaasMode;
use crate::errors::ApiError;
use crate::state::{AppState, AuthContext};

/// Extension aliases every mode advertises (what a stock ML2/OVS Neutron lists, trimmed).
const EXTENSIONS: &[(&str, &str)] = &[
    ("allowed-address-pairs", "Allowed Address Pairs"),
    ("availability_zone", "Availability Zone"),
    ("binding", "Port Binding"),
    ("default-subnetpools", "Default Subnetpools"),
    ("external-net", "Neutron external network"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options"),
    ("extraroute", "Neutron Extra Route"),
    ("fip-port-details", "Floating IP Port Details Extension"),
    ("filter-validation", "Filter parameters validation"),
    ("ip-substring-filtering", "IP address substring filtering"),
    ("multi-provider", "Multi Provider Network"),
    ("net-mtu", "Network MTU"),
    ("network-ip-availability", "Network IP Availability"),
    (
        "network-ip-availability-details",
        "Network IP Availability details",
    ),
    ("pagination", "Pagination support"),
    ("port-security", "Port Security"),
    ("project-id", "project_id field enabled"),
    ("provider", "Provider Network"),
    ("quota-check-limit", "Quota engine limit check"),
    ("quotas", "Quota management support"),
    ("quota_details", "Quota details management support"),
    ("rbac-policies", "RBAC Policies"),
    ("revision-if-match", "If-Match constraints based on revision_number"),
    ("router", "Neutron L3 Router"),
    ("security-group", "security-group"),
    ("sorting", "Sorting support"),
    ("standard-attr-description", "standard-attr-description"),
    ("standard-attr-revisions", "Resource revision numbers"),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip"),
    ("standard-attr-timestamp", "Resource timestamps"),
    ("stateful-security-group", "Stateful security group"),
    ("subnet_allocation", "Subnet Allocation"),
    ("tag-creation", "Tag support for resources during creation"),
];

fn extensions(mode: LbaasMode) -> Vec<Value> {
    let mut list: Vec<(&str, &str)> = EXTENSIONS.to_vec();
    match mode {
        LbaasMode::Octavia => {}
        LbaasMode::NeutronV2 => list.push(("lbaasv2", "LoadBalancing service v2")),
        LbaasMode::NeutronV1 => list.push(("lbaas", "LoadBalancing service")),
    }
    list.sort_unstable();
    list.into_iter()
        .map(|(alias, name)| {
            json!({"alias": alias, "name": name, "description": name,
                   "updated": "2013-01-01T10:00:00-00:00", "links": []})
        })
        .collect()
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/", get(resources))
        .route("/v2.0/extensions", get(list_extensions))
        .route("/v2.0/extensions/{alias}", get(show_extension))
        .route("/v2.0/service-providers", get(service_providers))
        .route("/v2.0/network-ip-availabilities", get(list_ip_availability))
        .route(
            "/v2.0/network-ip-availabilities/{id}",
            get(show_ip_availability),
        )
        .route("/v2.0/quotas", get(list_quotas))
        .route(
            "/v2.0/quotas/{project}",
            get(show_quota).put(update_quota).delete(reset_quota),
        )
        .route("/v2.0/quotas/{project}/default", get(default_quota))
        .route("/v2.0/quotas/{project}/details", get(quota_details))
        .route("/v2.0/quotas/{project}/details.json", get(quota_details))
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(add_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            put(remove_interface),
        );
    for kind in KINDS {
        let base = format!("/v2.0/{}", kind.url());
        r = r.route(
            &base,
            get(move |s, c, q| list(s, c, q, kind)).post(move |s, c, b| create(s, c, b, kind)),
        );
        let item = format!("{base}/{{id}}");
        r = r.route(
            &item,
            get(move |s, c, p, q| show(s, c, p, q, kind))
                .put(move |s, c, p, h, b| update(s, c, p, h, b, kind))
                .delete(move |s, c, p, h| delete(s, c, p, h, kind)),
        );
        if kind.taggable() {
            r = r.route(
                &format!("{item}/tags"),
                get(move |s, c, p| get_tags(s, c, p, kind))
                    .put(move |s, c, p, b| replace_tags(s, c, p, b, kind))
                    .delete(move |s, c, p| delete_all_tags(s, c, p, kind)),
            );
            r = r.route(
                &format!("{item}/tags/{{tag}}"),
                get(move |s, c, p| check_tag(s, c, p, kind))
                    .put(move |s, c, p| add_tag(s, c, p, kind))
                    .delete(move |s, c, p| remove_tag(s, c, p, kind)),
            );
        }
    }
    r
}

async fn versions(State(state): State<AppState>) -> Json<Value> {
    let base = &state.inner.endpoints.neutron;
    Json(json!({"versions": [{"status": "CURRENT", "id": "v2.0",
        "links": [{"href": format!("{base}/v2.0/"), "rel": "self"}]}]}))
}

async fn resources(State(state): State<AppState>) -> Json<Value> {
    let base = &state.inner.endpoints.neutron;
    let list: Vec<Value> = KINDS
        .iter()
        .map(|k| {
            json!({"name": k.singular(), "collection": k.url(),
                   "links": [{"href": format!("{base}/v2.0/{}", k.url()), "rel": "self"}]})
        })
        .collect();
    Json(json!({"resources": list}))
}

async fn list_extensions(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"extensions": extensions(state.inner.config.lbaas)}))
}

async fn show_extension(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<Json<Value>, ApiError> {
    extensions(state.inner.config.lbaas)
        .into_iter()
        .find(|e| e["alias"] == alias.as_str())
        .map(|e| Json(json!({"extension": e})))
        .ok_or_else(|| {
            ApiError::neutron(
                StatusCode::NOT_FOUND,
                "HTTPNotFound",
                format!("Extension with alias {alias} does not exist"),
            )
        })
}

/// The LBaaS drivers of the Neutron LBaaS modes (none in Octavia mode).
async fn service_providers(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Json<Value> {
    let q = parse_query(raw.as_deref());
    let all: Vec<Value> = match state.inner.config.lbaas {
        LbaasMode::Octavia => Vec::new(),
        LbaasMode::NeutronV2 => {
            vec![json!({"service_type": "LOADBALANCERV2", "name": "octavia", "default": true})]
        }
        LbaasMode::NeutronV1 => {
            vec![json!({"service_type": "LOADBALANCER", "name": "haproxy", "default": true})]
        }
    };
    let list: Vec<Value> = all
        .into_iter()
        .filter(|p| {
            ["service_type", "name"].iter().all(|k| {
                let wanted = values_of(&q, k);
                wanted.is_empty() || wanted.contains(&str_field(p, k))
            })
        })
        .collect();
    Json(json!({"service_providers": list}))
}

/// Per-subnet address usage of one network (admin only, as in Neutron's default policy).
fn ip_availability(n: &NeutronState, net: &Network) -> Value {
    let mut total_all: u128 = 0;
    let mut used_all: u128 = 0;
    // The `network-ip-availability-details` split: whole subnet vs allocation pools.
    let mut details_all = [0u128; 4];
    let subnets: Vec<Value> = net
        .subnets
        .iter()
        .filter_map(|id| n.subnets.get(id))
        .map(|s| {
            let total: u128 = s
                .allocation_pools
                .iter()
                .filter_map(|p| {
                    let start: IpAddr = p.start.parse().ok()?;
                    let end: IpAddr = p.end.parse().ok()?;
                    Some(ip_to_u128(end).saturating_sub(ip_to_u128(start)) + 1)
                })
                .sum();
            let addresses: Vec<u128> = n
                .ports
                .values()
                .flat_map(|p| p.fixed_ips.iter())
                .filter(|f| f.subnet_id == s.id)
                .filter_map(|f| f.ip_address.parse::<IpAddr>().ok().map(ip_to_u128))
                .collect();
            let used = addresses.len() as u128;
            let in_pools = addresses
                .iter()
                .filter(|a| {
                    s.allocation_pools.iter().any(|p| {
                        let start = p.start.parse::<IpAddr>().map(ip_to_u128);
                        let end = p.end.parse::<IpAddr>().map(ip_to_u128);
                        matches!((start, end), (Ok(lo), Ok(hi)) if lo <= **a && **a <= hi)
                    })
                })
                .count() as u128;
            // Neutron counts an IPv4 subnet without its network and broadcast addresses.
            let in_subnet = s.net().map_or(0, |net| match net {
                IpNet::V4(v4) => (1u128 << (32 - u32::from(v4.prefix_len()))).saturating_sub(2),
                IpNet::V6(v6) => 1u128
                    .checked_shl(128 - u32::from(v6.prefix_len()))
                    .unwrap_or(u128::MAX),
            });
            total_all += total;
            used_all += used;
            let details = [in_subnet, total, used, in_pools];
            for (sum, d) in details_all.iter_mut().zip(details) {
                *sum += d;
            }
            json!({"subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr,
                   "ip_version": s.ip_version, "total_ips": count(total), "used_ips": count(used),
                   "ip_availability_details": details_json(details)})
        })
        .collect();
    json!({"network_id": net.id, "network_name": net.name, "project_id": net.std.project_id,
           "tenant_id": net.std.project_id, "total_ips": count(total_all), "used_ips": count(used_all),
           "subnet_ip_availability": subnets, "ip_availability_details": details_json(details_all)})
}

fn details_json([in_subnet, in_pools, used_in_subnet, used_in_pools]: [u128; 4]) -> Value {
    json!({"total_ips_in_subnet": count(in_subnet), "total_ips_in_allocation_pool": count(in_pools),
           "used_ips_in_subnet": count(used_in_subnet), "used_ips_in_allocation_pool": count(used_in_pools)})
}

/// An address count as a JSON number: IPv6 sizes exceed what JSON numbers carry here, so
/// they saturate instead of failing the serialisation.
fn count(n: u128) -> Value {
    Value::from(u64::try_from(n).unwrap_or(u64::MAX))
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

async fn list_ip_availability(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
) -> Result<Json<Value>, ApiError> {
    // Real Neutron filters by policy instead of refusing: a non-admin gets an empty list.
    if !ctx.is_admin() {
        return Ok(Json(json!({"network_ip_availabilities": []})));
    }
    let world = state.inner.world.lock();
    let n = &world.neutron;
    let list: Vec<Value> = n
        .networks
        .values()
        .map(|net| ip_availability(n, net))
        .collect();
    Ok(Json(json!({"network_ip_availabilities": list})))
}

async fn show_ip_availability(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // ... and hides the object's existence with a plain 404 (checked on Neutron 29).
    if !ctx.is_admin() {
        return Err(ApiError::neutron(
            StatusCode::NOT_FOUND,
            "HTTPNotFound",
            "The resource could not be found.",
        ));
    }
    let world = state.inner.world.lock();
    let n = &world.neutron;
    let net = n
        .networks
        .get(&id)
        .ok_or_else(|| not_found("network", &id))?;
    Ok(Json(
        json!({"network_ip_availability": ip_availability(n, net)}),
    ))
}
