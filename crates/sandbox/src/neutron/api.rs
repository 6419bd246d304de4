//! The Neutron v2.0 HTTP API over `NeutronState`: CRUD of networks, subnets, ports, floating
//! IPs, routers (with interfaces), security groups and rules; list filters, `fields`,
//! pagination and sorting; the tags API; revision_number with If-Match; extensions; quotas.
//! Policy is simplified to "admin sees all, others see their project plus shared/external
//! networks". It must not know load-balancer objects (their routes are mounted by `server`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::attrs::{self, Attr};
use super::{
    conflict, default_pools, new_id, not_found, AddressPair, AllocationPool, FloatingIp, Network,
    NeutronState, Port, PortSpec, Router as NRouter, SecurityGroup, SecurityGroupRule, Std, Subnet,
};
use crate::config::LbaasMode;
use crate::errors::ApiError;
use crate::state::{AppState, AuthContext};

/// The resource collections served under /v2.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Network,
    Subnet,
    Port,
    FloatingIp,
    Router,
    SecurityGroup,
    SecurityGroupRule,
}

const KINDS: [Kind; 7] = [
    Kind::Network,
    Kind::Subnet,
    Kind::Port,
    Kind::FloatingIp,
    Kind::Router,
    Kind::SecurityGroup,
    Kind::SecurityGroupRule,
];

impl Kind {
    fn url(self) -> &'static str {
        match self {
            Kind::Network => "networks",
            Kind::Subnet => "subnets",
            Kind::Port => "ports",
            Kind::FloatingIp => "floatingips",
            Kind::Router => "routers",
            Kind::SecurityGroup => "security-groups",
            Kind::SecurityGroupRule => "security-group-rules",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Kind::SecurityGroup => "security_groups",
            Kind::SecurityGroupRule => "security_group_rules",
            other => other.url(),
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
            Kind::FloatingIp => "floatingip",
            Kind::Router => "router",
            Kind::SecurityGroup => "security_group",
            Kind::SecurityGroupRule => "security_group_rule",
        }
    }
    fn attrs(self) -> &'static [Attr] {
        match self {
            Kind::Network => attrs::NETWORK,
            Kind::Subnet => attrs::SUBNET,
            Kind::Port => attrs::PORT,
            Kind::FloatingIp => attrs::FLOATINGIP,
            Kind::Router => attrs::ROUTER,
            Kind::SecurityGroup => attrs::SECURITY_GROUP,
            Kind::SecurityGroupRule => attrs::SECURITY_GROUP_RULE,
        }
    }
    fn taggable(self) -> bool {
        self != Kind::SecurityGroupRule
    }
}

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

// ---------------------------------------------------------------------------------------
// Helpers: JSON views, visibility, query parsing.

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|_| ApiError::neutron_bad_request("Body contains invalid data"))
}

fn to_json<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

/// A rule as the security-group-rules API shows it: rules are not taggable there, and the
/// implicit default rules have a null description.
fn rule_json(r: &SecurityGroupRule) -> Value {
    let mut v = to_json(r);
    if let Some(m) = v.as_object_mut() {
        m.remove("tags");
        if r.implicit {
            m.insert("description".into(), Value::Null);
        }
    }
    v
}

/// A security group with its rules embedded the way Neutron 2024+ embeds them: with `tags`
/// and `standard_attr_id`, and (in lists only, `in_list`) a null `belongs_to_default_sg`.
fn sg_json_in(n: &NeutronState, sg: &SecurityGroup, in_list: bool) -> Value {
    let mut v = to_json(sg);
    let rules: Vec<Value> = n
        .security_group_rules
        .values()
        .filter(|r| r.security_group_id == sg.id)
        .map(|r| {
            let mut v = to_json(r);
            if let Some(m) = v.as_object_mut() {
                m.insert("standard_attr_id".into(), json!(r.std.standard_attr_id));
                if r.implicit {
                    m.insert("description".into(), Value::Null);
                }
                if in_list {
                    m.insert("belongs_to_default_sg".into(), Value::Null);
                }
            }
            v
        })
        .collect();
    if let Some(m) = v.as_object_mut() {
        m.insert("security_group_rules".into(), Value::Array(rules));
    }
    v
}

fn sg_json(n: &NeutronState, sg: &SecurityGroup) -> Value {
    sg_json_in(n, sg, false)
}

/// Neutron shows each subnet with its network's `router:external`.
fn subnet_json(n: &NeutronState, subnet: &Subnet) -> Value {
    let mut v = to_json(subnet);
    let external = n
        .networks
        .get(&subnet.network_id)
        .is_some_and(|net| net.router_external);
    if let Some(m) = v.as_object_mut() {
        m.insert("router:external".into(), Value::Bool(external));
    }
    v
}

fn one_json(n: &NeutronState, kind: Kind, id: &str) -> Option<Value> {
    match kind {
        Kind::Network => n.networks.get(id).map(to_json),
        Kind::Subnet => n.subnets.get(id).map(|x| subnet_json(n, x)),
        Kind::Port => n.ports.get(id).map(to_json),
        Kind::FloatingIp => n.floating_ips.get(id).map(to_json),
        Kind::Router => n.routers.get(id).map(to_json),
        Kind::SecurityGroup => n.security_groups.get(id).map(|g| sg_json(n, g)),
        Kind::SecurityGroupRule => n.security_group_rules.get(id).map(rule_json),
    }
}

fn all_json(n: &NeutronState, kind: Kind) -> Vec<Value> {
    match kind {
        Kind::Network => n.networks.values().map(to_json).collect(),
        Kind::Subnet => n.subnets.values().map(|x| subnet_json(n, x)).collect(),
        Kind::Port => n.ports.values().map(to_json).collect(),
        Kind::FloatingIp => n.floating_ips.values().map(to_json).collect(),
        Kind::Router => n.routers.values().map(to_json).collect(),
        Kind::SecurityGroup => n
            .security_groups
            .values()
            .map(|g| sg_json_in(n, g, true))
            .collect(),
        Kind::SecurityGroupRule => n.security_group_rules.values().map(rule_json).collect(),
    }
}

fn std_mut<'a>(n: &'a mut NeutronState, kind: Kind, id: &str) -> Option<&'a mut Std> {
    match kind {
        Kind::Network => n.networks.get_mut(id).map(|x| &mut x.std),
        Kind::Subnet => n.subnets.get_mut(id).map(|x| &mut x.std),
        Kind::Port => n.ports.get_mut(id).map(|x| &mut x.std),
        Kind::FloatingIp => n.floating_ips.get_mut(id).map(|x| &mut x.std),
        Kind::Router => n.routers.get_mut(id).map(|x| &mut x.std),
        Kind::SecurityGroup => n.security_groups.get_mut(id).map(|x| &mut x.std),
        Kind::SecurityGroupRule => n.security_group_rules.get_mut(id).map(|x| &mut x.std),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether the caller may see a resource: admins see all; others their project's, shared
/// and external networks and those networks' subnets, and shared security groups.
fn visible(n: &NeutronState, kind: Kind, v: &Value, ctx: &AuthContext) -> bool {
    if ctx.is_admin() || str_field(v, "project_id") == ctx.project_id {
        return true;
    }
    let open_net = |id: &str| {
        n.networks
            .get(id)
            .is_some_and(|net| net.shared || net.router_external)
    };
    match kind {
        Kind::Network => open_net(str_field(v, "id")),
        Kind::Subnet => open_net(str_field(v, "network_id")),
        Kind::SecurityGroup => v.get("shared").and_then(Value::as_bool) == Some(true),
        _ => false,
    }
}

/// Whether the caller may change a resource it can see.
fn owns(v: &Value, ctx: &AuthContext) -> bool {
    ctx.is_admin() || str_field(v, "project_id") == ctx.project_id
}

fn policy_denied(action: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
        format!("({action}) is disallowed by policy"),
    )
}

/// Visible resource or the kind's 404.
fn find_visible(
    n: &NeutronState,
    kind: Kind,
    id: &str,
    ctx: &AuthContext,
) -> Result<Value, ApiError> {
    one_json(n, kind, id)
        .filter(|v| visible(n, kind, v, ctx))
        .ok_or_else(|| not_found(kind.singular(), id))
}

fn find_owned(
    n: &NeutronState,
    kind: Kind,
    id: &str,
    ctx: &AuthContext,
    action: &str,
) -> Result<Value, ApiError> {
    let v = find_visible(n, kind, id, ctx)?;
    if !owns(&v, ctx) {
        return Err(policy_denied(&format!("rule:{action}_{}", kind.singular())));
    }
    Ok(v)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query string as ordered (key, value) pairs; keys may repeat.
fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn values_of<'a>(q: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    q.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether a JSON attribute equals a query value, with Neutron's conversions
/// (booleans in any case, numbers, None for null).
fn value_matches(v: &Value, q: &str) -> bool {
    match v {
        Value::String(s) => s == q,
        Value::Bool(b) => attrs::to_bool(&Value::String(q.to_string())) == Some(*b),
        Value::Number(n) => n.to_string() == q,
        Value::Null => q.is_empty() || q == "None",
        _ => false,
    }
}

fn tags_of(v: &Value) -> Vec<&str> {
    v.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

const CONTROL_PARAMS: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "fixed_ips",
    "ip_address_substr",
];

/// Applies list filters; unknown filter names are a 400, as with Neutron's filter validation.
fn filter(kind: Kind, items: Vec<Value>, q: &[(String, String)]) -> Result<Vec<Value>, ApiError> {
    let known: std::collections::BTreeSet<&str> = kind
        .attrs()
        .iter()
        .map(|a| a.name)
        .chain([
            "id",
            "project_id",
            "tenant_id",
            "description",
            "status",
            "created_at",
            "updated_at",
            "revision_number",
        ])
        .collect();
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut invalid: Vec<String> = Vec::new();
    for (k, _) in q {
        if CONTROL_PARAMS.contains(&k.as_str()) || filters.iter().any(|(f, _)| f == k) {
            continue;
        }
        let shown = items.first().is_some_and(|i| i.get(k.as_str()).is_some());
        if !known.contains(k.as_str()) && !shown {
            if !invalid.contains(&format!("'{k}'")) {
                invalid.push(format!("'{k}'"));
            }
            continue;
        }
        filters.push((k.as_str(), values_of(q, k)));
    }
    if !invalid.is_empty() {
        return Err(ApiError::neutron_bad_request(format!(
            "[{}] is invalid attribute for filtering",
            invalid.join(", ")
        )));
    }
    let split = |key: &str| -> Vec<String> {
        values_of(q, key)
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    let tags_all = split("tags");
    let tags_any = split("tags-any");
    let not_tags = split("not-tags");
    let not_tags_any = split("not-tags-any");
    // fixed_ips=ip_address=X / fixed_ips=subnet_id=Y (ports only).
    let fixed: Vec<(String, String)> = values_of(q, "fixed_ips")
        .iter()
        .filter_map(|v| {
            v.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    Ok(items
        .into_iter()
        .filter(|item| {
            filters.iter().all(|(k, vals)| {
                let v = item.get(*k).unwrap_or(&Value::Null);
                vals.iter().any(|q| value_matches(v, q))
            })
        })
        .filter(|item| {
            let tags = tags_of(item);
            tags_all.iter().all(|t| tags.contains(&t.as_str()))
                && (tags_any.is_empty() || tags_any.iter().any(|t| tags.contains(&t.as_str())))
                && (not_tags.is_empty() || !not_tags.iter().all(|t| tags.contains(&t.as_str())))
                && !not_tags_any.iter().any(|t| tags.contains(&t.as_str()))
        })
        .filter(|item| {
            if fixed.is_empty() {
                return true;
            }
            let ips = item
                .get("fixed_ips")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // As Neutron's SQL: values of one key are alternatives (IN), different keys must
            // all hold for the same allocation (checked against the real Neutron 29).
            let matches = |ip: &Value, key: &str, want: &str| match key {
                "ip_address_substr" => str_field(ip, "ip_address").contains(want),
                k => str_field(ip, k) == want,
            };
            ips.iter().any(|ip| {
                let mut keys: Vec<&str> = fixed.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                keys.iter().all(|key| {
                    fixed
                        .iter()
                        .filter(|(k, _)| k == key)
                        .any(|(k, want)| matches(ip, k, want))
                })
            })
        })
        .collect())
}

/// Attributes Neutron's default policy shows to admins only.
fn admin_only_attributes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Network => &[
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ],
        Kind::Port => &[
            "binding:host_id",
            "binding:profile",
            "binding:vif_type",
            "binding:vif_details",
        ],
        Kind::Router => &["distributed", "ha"],
        _ => &[],
    }
}

/// What `ctx` may see of a resource: admins see everything, others not the admin-only keys.
fn policy_view(kind: Kind, mut v: Value, ctx: &AuthContext) -> Value {
    if !ctx.is_admin() {
        if let Some(m) = v.as_object_mut() {
            for k in admin_only_attributes(kind) {
                m.remove(*k);
            }
        }
    }
    v
}

/// Keeps only the requested `fields` (all when none are requested).
fn select_fields(v: Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return v;
    }
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

fn if_match(headers: &HeaderMap, current: u64) -> Result<(), ApiError> {
    let Some(raw) = headers
        .get(http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    for part in raw.split(',') {
        if let Some(n) = part.trim().strip_prefix("revision_number=") {
            let wanted: u64 = n.trim().parse().map_err(|_| {
                ApiError::neutron_bad_request(format!(
                    "Invalid input for operation: If-Match header {raw} is invalid."
                ))
            })?;
            if wanted != current {
                return Err(ApiError::neutron(
                    StatusCode::PRECONDITION_FAILED,
                    "RevisionNumberConstraintFailed",
                    format!("Constrained to {wanted}, but current revision is {current}"),
                ));
            }
        }
    }
    Ok(())
}

fn over_quota(resource: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::CONFLICT,
        "OverQuota",
        format!("Quota exceeded for resources: ['{resource}']."),
    )
}

fn check_quota(state: &crate::state::World, project: &str, resource: &str) -> Result<(), ApiError> {
    if state
        .quotas
        .exceeded(project, resource, state.neutron.usage(project, resource))
    {
        return Err(over_quota(resource));
    }
    Ok(())
}

/// The project a new resource belongs to: the caller's, or (for admins) the one asked for.
fn owner_of(ctx: &AuthContext, a: &Map<String, Value>) -> Result<String, ApiError> {
    let asked = a
        .get("project_id")
        .or_else(|| a.get("tenant_id"))
        .and_then(Value::as_str);
    match asked {
        Some(p) if p != ctx.project_id && !ctx.is_admin() => Err(ApiError::neutron_bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
        Some(p) => Ok(p.to_string()),
        None => Ok(ctx.project_id.clone()),
    }
}

fn s(a: &Map<String, Value>, key: &str) -> Option<String> {
    a.get(key).and_then(Value::as_str).map(str::to_string)
}

fn b(a: &Map<String, Value>, key: &str) -> Option<bool> {
    a.get(key).and_then(Value::as_bool)
}

fn str_list(a: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    a.get(key).and_then(Value::as_array).map(|l| {
        l.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

fn dedup_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Generic handlers.

async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    RawQuery(raw): RawQuery,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    let q = parse_query(raw.as_deref());
    let mut world = state.inner.world.lock();
    if kind == Kind::SecurityGroup && !ctx.project_id.is_empty() {
        // Neutron creates a project's default group the first time the project looks.
        world.neutron.default_security_group(&ctx.project_id);
    }
    let n = &world.neutron;
    let items: Vec<Value> = all_json(n, kind)
        .into_iter()
        .filter(|v| visible(n, kind, v, &ctx))
        .collect();
    drop(world);
    let mut items = filter(kind, items, &q)?;
    let sort_key = values_of(&q, "sort_key").first().map(|s| s.to_string());
    let desc = values_of(&q, "sort_dir")
        .first()
        .is_some_and(|d| *d == "desc");
    if let Some(key) = &sort_key {
        items.sort_by(|x, y| {
            compare(
                x.get(key.as_str()).unwrap_or(&Value::Null),
                y.get(key.as_str()).unwrap_or(&Value::Null),
            )
            .then_with(|| str_field(x, "id").cmp(str_field(y, "id")))
        });
    }
    if desc {
        items.reverse();
    }
    if let Some(marker) = values_of(&q, "marker").first() {
        if let Some(pos) = items.iter().position(|i| str_field(i, "id") == *marker) {
            items.drain(..=pos);
        }
    }
    let limit: Option<usize> = match values_of(&q, "limit").first() {
        Some(l) => Some(l.parse().map_err(|_| {
            bad_request_typed(format!(
                "Bad limit request: Limit must be an integer 0 or greater and not '{l}'."
            ))
        })?),
        None => None,
    };
    let mut links = Vec::new();
    if let Some(limit) = limit.filter(|l| *l > 0) {
        if items.len() > limit {
            items.truncate(limit);
            let last = items
                .last()
                .map(|i| str_field(i, "id").to_string())
                .unwrap_or_default();
            let kept: Vec<String> = q
                .iter()
                .filter(|(k, _)| k != "marker" && k != "limit")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let extra = if kept.is_empty() {
                String::new()
            } else {
                format!("&{}", kept.join("&"))
            };
            links.push(json!({"rel": "next", "href": format!(
                "{}/v2.0/{}?limit={limit}&marker={last}{extra}", state.inner.endpoints.neutron, kind.url())}));
        }
    }
    let fields = values_of(&q, "fields");
    let items: Vec<Value> = items
        .into_iter()
        .map(|v| select_fields(policy_view(kind, v, &ctx), &fields))
        .collect();
    let mut body = Map::new();
    body.insert(kind.plural().to_string(), Value::Array(items));
    if !links.is_empty() {
        body.insert(format!("{}_links", kind.plural()), Value::Array(links));
    }
    Ok(Json(Value::Object(body)))
}

async fn show(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    let q = parse_query(raw.as_deref());
    let world = state.inner.world.lock();
    let v = policy_view(kind, find_visible(&world.neutron, kind, &id, &ctx)?, &ctx);
    Ok(Json(
        json!({kind.singular(): select_fields(v, &values_of(&q, "fields"))}),
    ))
}

async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    body: Bytes,
    kind: Kind,
) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let a = attrs::validate(kind.singular(), kind.attrs(), &body, true)?;
    let project = owner_of(&ctx, &a)?;
    let (value, fip_changed) = {
        let mut world = state.inner.world.lock();
        check_quota(&world, &project, kind.singular())?;
        let n = &mut world.neutron;
        let id = match kind {
            Kind::Network => create_network(n, &ctx, &project, &a)?,
            Kind::Subnet => create_subnet(n, &ctx, &project, &a)?,
            Kind::Port => create_port(n, &ctx, &project, &a)?,
            Kind::FloatingIp => create_floating_ip(n, &ctx, &project, &a)?,
            Kind::Router => create_router(n, &project, &a)?,
            Kind::SecurityGroup => create_security_group(n, &project, &a)?,
            Kind::SecurityGroupRule => create_rule(n, &ctx, &project, &a)?,
        };
        if let Some(tags) = str_list(&a, "tags") {
            if let Some(std) = std_mut(n, kind, &id) {
                std.tags = dedup_tags(tags);
            }
        }
        (
            one_json(n, kind, &id).unwrap_or(Value::Null),
            kind == Kind::FloatingIp,
        )
    };
    if fip_changed {
        crate::dataplane::sync(&state.inner);
    }
    let value = policy_view(kind, value, &ctx);
    Ok((StatusCode::CREATED, Json(json!({kind.singular(): value}))).into_response())
}

async fn update(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    let body = parse_body(&body)?;
    let value = {
        let mut world = state.inner.world.lock();
        let current = find_owned(&world.neutron, kind, &id, &ctx, "update")?;
        if_match(
            &headers,
            current
                .get("revision_number")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        )?;
        let a = attrs::validate(kind.singular(), kind.attrs(), &body, false)?;
        let n = &mut world.neutron;
        match kind {
            Kind::Network => update_network(n, &ctx, &id, &a)?,
            Kind::Subnet => update_subnet(n, &id, &a)?,
            Kind::Port => update_port(n, &ctx, &id, &a)?,
            Kind::FloatingIp => update_floating_ip(n, &ctx, &id, &a)?,
            Kind::Router => update_router(n, &id, &a)?,
            Kind::SecurityGroup => update_security_group(n, &id, &a)?,
            Kind::SecurityGroupRule => {}
        }
        if let Some(d) = s(&a, "description") {
            if let Some(std) = std_mut(n, kind, &id) {
                std.description = d;
            }
        }
        if let Some(std) = std_mut(n, kind, &id) {
            std.touch();
        }
        one_json(n, kind, &id).unwrap_or(Value::Null)
    };
    if kind == Kind::FloatingIp {
        crate::dataplane::sync(&state.inner);
    }
    let value = policy_view(kind, value, &ctx);
    Ok(Json(json!({kind.singular(): value})))
}

async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    headers: HeaderMap,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    let fip_changed = {
        let mut world = state.inner.world.lock();
        let current = find_owned(&world.neutron, kind, &id, &ctx, "delete")?;
        if_match(
            &headers,
            current
                .get("revision_number")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        )?;
        let n = &mut world.neutron;
        match kind {
            Kind::Network => delete_network(n, &id)?,
            Kind::Subnet => delete_subnet(n, &id)?,
            Kind::Port => delete_port(n, &ctx, &id)?,
            Kind::FloatingIp => delete_floating_ip(n, &id)?,
            Kind::Router => delete_router(n, &id)?,
            Kind::SecurityGroup => delete_security_group(n, &ctx, &id)?,
            Kind::SecurityGroupRule => delete_rule(n, &id)?,
        }
    };
    if fip_changed {
        crate::dataplane::sync(&state.inner);
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Tags.

fn validate_tag(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.chars().count() > 255 {
        return Err(ApiError::neutron_bad_request(format!(
            "Invalid input for operation: '{tag}' is not a valid tag."
        )));
    }
    Ok(())
}

fn tags_of_owned(
    state: &AppState,
    ctx: &AuthContext,
    kind: Kind,
    id: &str,
) -> Result<Vec<String>, ApiError> {
    let world = state.inner.world.lock();
    let v = find_visible(&world.neutron, kind, id, ctx)?;
    Ok(tags_of(&v).into_iter().map(str::to_string).collect())
}

fn modify_tags(
    state: &AppState,
    ctx: &AuthContext,
    kind: Kind,
    id: &str,
    f: impl FnOnce(&mut Vec<String>) -> Result<(), ApiError>,
) -> Result<Vec<String>, ApiError> {
    let mut world = state.inner.world.lock();
    find_owned(&world.neutron, kind, id, ctx, "update")?;
    let std =
        std_mut(&mut world.neutron, kind, id).ok_or_else(|| not_found(kind.singular(), id))?;
    let before = std.tags.clone();
    f(&mut std.tags)?;
    if std.tags != before {
        std.touch();
    }
    Ok(std.tags.clone())
}

async fn get_tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"tags": tags_of_owned(&state, &ctx, kind, &id)?}),
    ))
}

async fn replace_tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    body: Bytes,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    let body = parse_body(&body)?;
    let tags = body.get("tags").and_then(Value::as_array).ok_or_else(|| {
        invalid_input(format!(
            "'{}' is not a list",
            attrs::py_str(body.get("tags").unwrap_or(&Value::Null))
        ))
    })?;
    let mut new = Vec::new();
    for t in tags {
        let t = t.as_str().ok_or_else(|| {
            ApiError::neutron_bad_request(format!(
                "Invalid input for operation: '{}' is not a valid tag.",
                attrs::py_str(t)
            ))
        })?;
        validate_tag(t)?;
        new.push(t.to_string());
    }
    let tags = modify_tags(&state, &ctx, kind, &id, |cur| {
        *cur = dedup_tags(new);
        Ok(())
    })?;
    Ok(Json(json!({"tags": tags})))
}

async fn delete_all_tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    modify_tags(&state, &ctx, kind, &id, |cur| {
        cur.clear();
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

fn tag_not_found(tag: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::NOT_FOUND,
        "TagNotFound",
        format!("Tag {tag} could not be found."),
    )
}

async fn check_tag(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    if tags_of_owned(&state, &ctx, kind, &id)?.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(tag_not_found(&tag))
    }
}

async fn add_tag(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    validate_tag(&tag)?;
    modify_tags(&state, &ctx, kind, &id, |cur| {
        if !cur.contains(&tag) {
            cur.push(tag.clone());
        }
        Ok(())
    })?;
    Ok(StatusCode::CREATED)
}

async fn remove_tag(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    modify_tags(&state, &ctx, kind, &id, |cur| {
        let before = cur.len();
        cur.retain(|t| t != &tag);
        if cur.len() == before {
            return Err(tag_not_found(&tag));
        }
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Networks.

fn admin_only(
    ctx: &AuthContext,
    a: &Map<String, Value>,
    keys: &[&str],
    action: &str,
) -> Result<(), ApiError> {
    if ctx.is_admin() {
        return Ok(());
    }
    for k in keys {
        if a.contains_key(*k) {
            return Err(policy_denied(&format!("rule:{action}:{k}")));
        }
    }
    Ok(())
}

fn create_network(
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

fn update_network(
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

fn delete_network(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
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

// ---------------------------------------------------------------------------------------
// Subnets.

fn invalid_input(message: impl std::fmt::Display) -> ApiError {
    ApiError::neutron(
        StatusCode::BAD_REQUEST,
        "InvalidInput",
        format!("Invalid input for operation: {message}."),
    )
}

/// Neutron's `BadRequest` exception class (as opposed to webob's HTTPBadRequest).
fn bad_request_typed(message: impl Into<String>) -> ApiError {
    ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", message)
}

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

fn create_subnet(
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

fn update_subnet(n: &mut NeutronState, id: &str, a: &Map<String, Value>) -> Result<(), ApiError> {
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

fn delete_subnet(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
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

// ---------------------------------------------------------------------------------------
// Ports.

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

fn create_port(
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

fn update_port(
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

fn delete_port(n: &mut NeutronState, ctx: &AuthContext, id: &str) -> Result<bool, ApiError> {
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

// ---------------------------------------------------------------------------------------
// Floating IPs.

fn create_floating_ip(
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

fn update_floating_ip(
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

fn delete_floating_ip(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let fip = n
        .floating_ips
        .remove(id)
        .ok_or_else(|| not_found("floatingip", id))?;
    n.ports.remove(&fip.backing_port_id);
    n.release_floating_address(&fip.floating_ip_address);
    Ok(true)
}

// ---------------------------------------------------------------------------------------
// Routers.

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

fn create_router(
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

fn update_router(n: &mut NeutronState, id: &str, a: &Map<String, Value>) -> Result<(), ApiError> {
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

fn delete_router(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
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

async fn add_interface(
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

async fn remove_interface(
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

// ---------------------------------------------------------------------------------------
// Security groups and rules.

fn new_rule(group: &str, project: &str, direction: &str, ethertype: &str) -> SecurityGroupRule {
    SecurityGroupRule {
        id: new_id(),
        security_group_id: group.to_string(),
        direction: direction.to_string(),
        ethertype: ethertype.to_string(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        normalized_cidr: None,
        remote_group_id: None,
        remote_address_group_id: None,
        belongs_to_default_sg: false,
        std: Std::new(project, ""),
        implicit: false,
    }
}

fn create_security_group(
    n: &mut NeutronState,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    let name = s(a, "name").unwrap_or_default();
    if name == "default" {
        let exists = n
            .security_groups
            .values()
            .any(|g| g.name == "default" && g.std.project_id == project);
        if exists {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
    }
    let id = new_id();
    n.security_groups.insert(
        id.clone(),
        SecurityGroup {
            id: id.clone(),
            name,
            stateful: b(a, "stateful").unwrap_or(true),
            shared: false,
            std: Std::new(project, &s(a, "description").unwrap_or_default()),
        },
    );
    for ethertype in ["IPv4", "IPv6"] {
        let mut rule = new_rule(&id, project, "egress", ethertype);
        rule.implicit = true;
        n.security_group_rules.insert(rule.id.clone(), rule);
    }
    Ok(id)
}

fn update_security_group(
    n: &mut NeutronState,
    id: &str,
    a: &Map<String, Value>,
) -> Result<(), ApiError> {
    let group = n
        .security_groups
        .get_mut(id)
        .ok_or_else(|| not_found("security_group", id))?;
    if let Some(v) = s(a, "name") {
        if group.name == "default" && v != "default" {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group not allowed.",
            ));
        }
        group.name = v;
    }
    if let Some(v) = b(a, "stateful") {
        group.stateful = v;
    }
    Ok(())
}

fn delete_security_group(
    n: &mut NeutronState,
    ctx: &AuthContext,
    id: &str,
) -> Result<bool, ApiError> {
    let group = n
        .security_groups
        .get(id)
        .ok_or_else(|| not_found("security_group", id))?;
    if group.name == "default" && !ctx.is_admin() {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        ));
    }
    if n.ports
        .values()
        .any(|p| p.security_groups.iter().any(|g| g == id))
    {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "SecurityGroupInUse",
            format!("Security Group {id} in use."),
        ));
    }
    n.security_groups.remove(id);
    n.security_group_rules
        .retain(|_, r| r.security_group_id != id);
    Ok(false)
}

const PROTOCOL_NAMES: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Normalises a rule protocol: a known name, or a number 0-255 (as a string); None for any.
fn parse_protocol(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() || s.eq_ignore_ascii_case("any") => return Ok(None),
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    };
    if PROTOCOL_NAMES.iter().any(|(n, _)| *n == text) {
        return Ok(Some(text));
    }
    match text.parse::<u16>() {
        Ok(n) if n <= 255 => Ok(Some(text)),
        _ => {
            let names: Vec<String> = PROTOCOL_NAMES
                .iter()
                .map(|(n, _)| format!("'{n}'"))
                .collect();
            Err(ApiError::neutron_bad_request(format!(
                "Security group rule protocol {text} not supported. Only protocol values [None, {}] and integer representations [0 to 255] are supported.",
                names.join(", ")
            )))
        }
    }
}

fn uses_ports(protocol: &Option<String>) -> bool {
    matches!(
        protocol.as_deref(),
        Some("tcp" | "udp" | "dccp" | "sctp" | "udplite" | "6" | "17" | "33" | "132" | "136")
    )
}

fn create_rule(
    n: &mut NeutronState,
    ctx: &AuthContext,
    project: &str,
    a: &Map<String, Value>,
) -> Result<String, ApiError> {
    let group_id = s(a, "security_group_id").unwrap_or_default();
    let group = find_owned(
        n,
        Kind::SecurityGroup,
        &group_id,
        ctx,
        "create_security_group_rule",
    )?;
    let direction = s(a, "direction").unwrap_or_default();
    let ethertype = s(a, "ethertype").unwrap_or_else(|| "IPv4".to_string());
    let protocol = parse_protocol(a.get("protocol"))?;
    let min = a.get("port_range_min").and_then(Value::as_i64);
    let max = a.get("port_range_max").and_then(Value::as_i64);
    if protocol.is_none() && (min.is_some() || max.is_some()) {
        return Err(ApiError::neutron(
            StatusCode::BAD_REQUEST,
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ));
    }
    if uses_ports(&protocol) {
        for p in [min, max].into_iter().flatten() {
            if !(1..=65535).contains(&p) {
                return Err(ApiError::neutron(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupInvalidPortValue",
                    format!("Invalid value for port {p}."),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(ApiError::neutron(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                ));
            }
        }
        if min.is_none() && max.is_some() {
            return Err(ApiError::neutron(
                StatusCode::BAD_REQUEST,
                "SecurityGroupInvalidPortRange",
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            ));
        }
    }
    let remote_prefix = s(a, "remote_ip_prefix");
    let remote_group = s(a, "remote_group_id");
    if remote_prefix.is_some() && remote_group.is_some() {
        return Err(ApiError::neutron(
            StatusCode::BAD_REQUEST,
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    let normalized = match &remote_prefix {
        Some(p) => {
            let net: IpNet = p
                .parse()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    // Neutron's own exception for a malformed prefix, not the generic 400.
                    ApiError::neutron(
                        StatusCode::BAD_REQUEST,
                        "InvalidCIDR",
                        format!("Invalid CIDR {p} given as IP prefix."),
                    )
                })?;
            if (ethertype == "IPv4") != net.addr().is_ipv4() {
                return Err(ApiError::neutron(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupRuleParameterConflict",
                    format!("Conflicting value ethertype {ethertype} for CIDR {p}"),
                ));
            }
            Some(net.trunc().to_string())
        }
        None => None,
    };
    if let Some(g) = &remote_group {
        find_visible(n, Kind::SecurityGroup, g, ctx)?;
    }
    let mut rule = new_rule(&group_id, project, &direction, &ethertype);
    rule.protocol = protocol;
    rule.port_range_min = min;
    rule.port_range_max = if min.is_some() && max.is_none() && uses_ports(&rule.protocol) {
        min
    } else {
        max
    };
    rule.remote_ip_prefix = normalized.clone();
    rule.normalized_cidr = normalized;
    rule.remote_group_id = remote_group;
    rule.remote_address_group_id = s(a, "remote_address_group_id");
    rule.belongs_to_default_sg = str_field(&group, "name") == "default";
    rule.std.description = s(a, "description").unwrap_or_default();
    if let Some(dup) = n.security_group_rules.values().find(|r| {
        r.security_group_id == rule.security_group_id
            && r.direction == rule.direction
            && r.ethertype == rule.ethertype
            && r.protocol == rule.protocol
            && r.port_range_min == rule.port_range_min
            && r.port_range_max == rule.port_range_max
            && r.remote_ip_prefix == rule.remote_ip_prefix
            && r.remote_group_id == rule.remote_group_id
    }) {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {}.", dup.id),
        ));
    }
    let id = rule.id.clone();
    n.security_group_rules.insert(id.clone(), rule);
    if let Some(g) = n.security_groups.get_mut(&group_id) {
        g.std.touch();
    }
    Ok(id)
}

fn delete_rule(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let rule = n
        .security_group_rules
        .remove(id)
        .ok_or_else(|| not_found("security_group_rule", id))?;
    if let Some(g) = n.security_groups.get_mut(&rule.security_group_id) {
        g.std.touch();
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------------
// Quotas.

const QUOTA_RESOURCES: &[&str] = &[
    "network",
    "subnet",
    "port",
    "router",
    "router_route",
    "floatingip",
    "security_group",
    "security_group_rule",
    "subnetpool",
    "rbac_policy",
];

fn quota_map(world: &crate::state::World, project: &str) -> Map<String, Value> {
    QUOTA_RESOURCES
        .iter()
        .map(|r| (r.to_string(), Value::from(world.quotas.limit(project, r))))
        .collect()
}

fn may_see_quota(ctx: &AuthContext, project: &str) -> Result<(), ApiError> {
    if ctx.is_admin() || ctx.project_id == project {
        Ok(())
    } else {
        Err(policy_denied("rule:get_quota"))
    }
}

async fn list_quotas(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
) -> Json<Value> {
    let world = state.inner.world.lock();
    let quotas: Vec<Value> = world
        .quotas
        .per_project
        .keys()
        .filter(|p| ctx.is_admin() || **p == ctx.project_id)
        .map(|p| {
            let mut m = quota_map(&world, p);
            m.insert("project_id".into(), json!(p));
            m.insert("tenant_id".into(), json!(p));
            Value::Object(m)
        })
        .collect();
    Json(json!({"quotas": quotas}))
}

async fn show_quota(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if project == "tenant" {
        return Ok(Json(json!({"tenant": {"tenant_id": ctx.project_id}})));
    }
    may_see_quota(&ctx, &project)?;
    let world = state.inner.world.lock();
    Ok(Json(json!({"quota": quota_map(&world, &project)})))
}

async fn default_quota(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    may_see_quota(&ctx, &project)?;
    let world = state.inner.world.lock();
    let m: Map<String, Value> = QUOTA_RESOURCES
        .iter()
        .map(|r| {
            (
                r.to_string(),
                Value::from(world.quotas.defaults.get(*r).copied().unwrap_or(-1)),
            )
        })
        .collect();
    Ok(Json(json!({"quota": m})))
}

async fn quota_details(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    may_see_quota(&ctx, &project)?;
    let world = state.inner.world.lock();
    let m: Map<String, Value> = QUOTA_RESOURCES
        .iter()
        .map(|r| {
            (r.to_string(), json!({"limit": world.quotas.limit(&project, r), "used": world.neutron.usage(&project, r), "reserved": 0}))
        })
        .collect();
    Ok(Json(json!({"quota": m})))
}

async fn update_quota(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !ctx.is_admin() {
        return Err(policy_denied("rule:update_quota"));
    }
    let v = parse_body(&body)?;
    let m = v
        .get("quota")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::neutron_bad_request("Unable to find 'quota' in request body"))?;
    let mut limits: HashMap<String, i64> = HashMap::new();
    // `check_limit` (quota-check-limit extension): refuse limits below current usage.
    let check_limit = match m.get("check_limit") {
        None | Some(Value::Null) => false,
        Some(v) => attrs::to_bool(v).ok_or_else(|| {
            ApiError::neutron_bad_request(format!(
                "Invalid input for check_limit. Reason: '{}' is not a valid boolean value.",
                attrs::py_str(v)
            ))
        })?,
    };
    for (k, val) in m {
        if k == "check_limit" {
            continue;
        }
        if !QUOTA_RESOURCES.contains(&k.as_str()) {
            return Err(ApiError::neutron_bad_request(format!(
                "Unrecognized attribute(s) '{k}'"
            )));
        }
        let limit = match val {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .filter(|l| *l >= -1)
        .ok_or_else(|| {
            ApiError::neutron_bad_request(format!(
                "Invalid input for {k}. Reason: '{}' is not a valid quota limit.",
                attrs::py_str(val)
            ))
        })?;
        limits.insert(k.clone(), limit);
    }
    let mut world = state.inner.world.lock();
    if check_limit {
        for (k, l) in &limits {
            let used = world.neutron.usage(&project, k);
            if *l >= 0 && i64::try_from(used).unwrap_or(i64::MAX) > *l {
                return Err(ApiError::neutron_bad_request(format!(
                    "Invalid input for operation: Quota limit {l} for {k} must be greater than or equal to already used and reserved {used}."
                )));
            }
        }
    }
    for (k, l) in limits {
        world.quotas.set(Some(&project), &k, l);
    }
    Ok(Json(json!({"quota": quota_map(&world, &project)})))
}

async fn reset_quota(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !ctx.is_admin() {
        return Err(policy_denied("rule:delete_quota"));
    }
    state.inner.world.lock().quotas.reset(&project);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes_and_keeps_repeats() {
        let q = parse_query(Some(
            "fields=id&fields=name&name=a%20b&tags=x,y&router%3Aexternal=True",
        ));
        assert_eq!(values_of(&q, "fields"), vec!["id", "name"]);
        assert_eq!(values_of(&q, "name"), vec!["a b"]);
        assert_eq!(values_of(&q, "router:external"), vec!["True"]);
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }

    #[test]
    fn filters_tags_and_unknown_keys() {
        let items = vec![
            json!({"id": "1", "name": "a", "tags": ["x", "y"], "shared": true}),
            json!({"id": "2", "name": "b", "tags": ["y"], "shared": false}),
        ];
        let run = |q: &str| {
            filter(Kind::Network, items.clone(), &parse_query(Some(q))).map(|v| {
                v.iter()
                    .map(|i| str_field(i, "id").to_string())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(run("tags=x,y").unwrap(), vec!["1"]);
        assert_eq!(run("tags-any=x&tags-any=y").unwrap(), vec!["1", "2"]);
        assert_eq!(run("not-tags=x").unwrap(), vec!["2"]);
        assert_eq!(run("not-tags-any=y").unwrap(), Vec::<String>::new());
        assert_eq!(run("shared=TRUE").unwrap(), vec!["1"]);
        assert_eq!(run("name=a&name=b").unwrap(), vec!["1", "2"]);
        assert!(run("colour=red").is_err());
    }

    #[test]
    fn if_match_compares_revisions() {
        let mut h = HeaderMap::new();
        assert!(if_match(&h, 3).is_ok());
        h.insert(http::header::IF_MATCH, "revision_number=3".parse().unwrap());
        assert!(if_match(&h, 3).is_ok());
        let e = if_match(&h, 4).unwrap_err();
        assert_eq!(e.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(e.message, "Constrained to 3, but current revision is 4");
    }
}
