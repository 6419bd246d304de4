//! Resources as the Neutron API shows them, and who may see or change them: JSON views,
//! visibility and ownership, and the policy error.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::kind::Kind;
use super::{not_found, NeutronState, SecurityGroup, SecurityGroupRule, Std, Subnet};
use crate::errors::ApiError;
use crate::state::AuthContext;

pub(super) fn to_json<T: serde::Serialize>(x: &T) -> Value {
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

pub(super) fn one_json(n: &NeutronState, kind: Kind, id: &str) -> Option<Value> {
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

pub(super) fn all_json(n: &NeutronState, kind: Kind) -> Vec<Value> {
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

pub(super) fn std_mut<'a>(n: &'a mut NeutronState, kind: Kind, id: &str) -> Option<&'a mut Std> {
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

pub(super) fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether the caller may see a resource: admins see all; others their project's, shared
/// and external networks and those networks' subnets, and shared security groups.
pub(super) fn visible(n: &NeutronState, kind: Kind, v: &Value, ctx: &AuthContext) -> bool {
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
pub(super) fn owns(v: &Value, ctx: &AuthContext) -> bool {
    ctx.is_admin() || str_field(v, "project_id") == ctx.project_id
}

pub(super) fn policy_denied(action: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
        format!("({action}) is disallowed by policy"),
    )
}

/// Visible resource or the kind's 404.
pub(super) fn find_visible(
    n: &NeutronState,
    kind: Kind,
    id: &str,
    ctx: &AuthContext,
) -> Result<Value, ApiError> {
    one_json(n, kind, id)
        .filter(|v| visible(n, kind, v, ctx))
        .ok_or_else(|| not_found(kind.singular(), id))
}

pub(super) fn find_owned(
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
