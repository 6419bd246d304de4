//! Security group and rule create/update/delete, with rule protocol and port checks.

use std::net::IpAddr;

use axum::http::StatusCode;
use ipnet::IpNet;
use serde_json::{Map, Value};

use super::kind::Kind;
use super::request::{b, s};
use super::view::{find_owned, find_visible, str_field};
use super::{new_id, not_found, NeutronState, SecurityGroup, SecurityGroupRule, Std};
use crate::errors::ApiError;
use crate::state::AuthContext;

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

pub(super) fn create_security_group(
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

pub(super) fn update_security_group(
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

pub(super) fn delete_security_group(
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

pub(super) fn create_rule(
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

pub(super) fn delete_rule(n: &mut NeutronState, id: &str) -> Result<bool, ApiError> {
    let rule = n
        .security_group_rules
        .remove(id)
        .ok_or_else(|| not_found("security_group_rule", id))?;
    if let Some(g) = n.security_groups.get_mut(&rule.security_group_id) {
        g.std.touch();
    }
    Ok(false)
}
