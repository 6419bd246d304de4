//! Validation of Neutron request bodies against per-resource attribute tables (the sandbox's
//! version of Neutron's RESOURCE_ATTRIBUTE_MAP), with Neutron's own 400 messages: unknown
//! attributes, read-only attributes, wrong types, missing required ones. Values are returned
//! normalised (e.g. "true" → true). It must not know where resources are stored.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// The value type of an attribute.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Str(usize),
    /// String or null.
    NullStr(usize),
    Bool,
    Uuid,
    NullUuid,
    Int,
    NullInt,
    Ip,
    NullIp,
    Cidr,
    NullCidr,
    Mac,
    UuidList,
    StrList,
    FixedIps,
    AddressPairs,
    Pools,
    /// A list whose items are objects (host_routes, routes, extra_dhcp_opts).
    DictList,
    Dict,
    NullDict,
    Values(&'static [&'static str]),
    NullValues(&'static [&'static str]),
    /// ip_version: 4 or 6.
    IpVersion,
    /// Anything (provider attributes, protocol checked by the caller).
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Post {
    No,
    Allowed,
    Required,
}

#[derive(Clone, Copy, Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub post: Post,
    pub put: bool,
}

const fn a(name: &'static str, ty: Ty, post: Post, put: bool) -> Attr {
    Attr {
        name,
        ty,
        post,
        put,
    }
}

/// Read-only attributes every resource shows (refused in POST and PUT).
const READ_ONLY: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "revision_number",
    "status",
    "tags",
];

const COMMON: &[Attr] = &[
    a("description", Ty::Str(255), Post::Allowed, true),
    a("project_id", Ty::Str(255), Post::Allowed, false),
    a("tenant_id", Ty::Str(255), Post::Allowed, false),
];

// Attributes of extensions the impersonated Neutron does not load (dns-integration, qos,
// segment, uplink-status-propagation, …) are absent, so they are rejected as unrecognized.
pub const NETWORK: &[Attr] = &[
    a("name", Ty::Str(255), Post::Allowed, true),
    a("admin_state_up", Ty::Bool, Post::Allowed, true),
    a("shared", Ty::Bool, Post::Allowed, true),
    a("router:external", Ty::Bool, Post::Allowed, true),
    a("port_security_enabled", Ty::Bool, Post::Allowed, true),
    a("mtu", Ty::Int, Post::Allowed, true),
    a("availability_zone_hints", Ty::StrList, Post::Allowed, false),
    a("provider:network_type", Ty::Any, Post::Allowed, false),
    a("provider:physical_network", Ty::Any, Post::Allowed, false),
    a("provider:segmentation_id", Ty::Any, Post::Allowed, false),
    a("is_default", Ty::Bool, Post::Allowed, true),
    a("subnets", Ty::UuidList, Post::No, false),
    a("tags", Ty::StrList, Post::Allowed, false),
];

pub const SUBNET: &[Attr] = &[
    a("name", Ty::Str(255), Post::Allowed, true),
    a("network_id", Ty::Uuid, Post::Required, false),
    a("cidr", Ty::Cidr, Post::Allowed, false),
    a("ip_version", Ty::IpVersion, Post::Required, false),
    a("gateway_ip", Ty::NullIp, Post::Allowed, true),
    a("allocation_pools", Ty::Pools, Post::Allowed, true),
    a("enable_dhcp", Ty::Bool, Post::Allowed, true),
    a("dns_nameservers", Ty::StrList, Post::Allowed, true),
    a("host_routes", Ty::DictList, Post::Allowed, true),
    a(
        "ipv6_ra_mode",
        Ty::NullValues(&["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]),
        Post::Allowed,
        false,
    ),
    a(
        "ipv6_address_mode",
        Ty::NullValues(&["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]),
        Post::Allowed,
        false,
    ),
    a("subnetpool_id", Ty::NullUuid, Post::Allowed, false),
    a("prefixlen", Ty::Int, Post::Allowed, false),
    a("use_default_subnetpool", Ty::Bool, Post::Allowed, false),
    a("service_types", Ty::StrList, Post::Allowed, true),
    a("tags", Ty::StrList, Post::Allowed, false),
];

pub const PORT: &[Attr] = &[
    a("name", Ty::Str(255), Post::Allowed, true),
    a("network_id", Ty::Uuid, Post::Required, false),
    a("admin_state_up", Ty::Bool, Post::Allowed, true),
    a("mac_address", Ty::Mac, Post::Allowed, true),
    a("fixed_ips", Ty::FixedIps, Post::Allowed, true),
    a("device_id", Ty::Str(255), Post::Allowed, true),
    a("device_owner", Ty::Str(255), Post::Allowed, true),
    a("security_groups", Ty::UuidList, Post::Allowed, true),
    a("port_security_enabled", Ty::Bool, Post::Allowed, true),
    a(
        "allowed_address_pairs",
        Ty::AddressPairs,
        Post::Allowed,
        true,
    ),
    a("extra_dhcp_opts", Ty::DictList, Post::Allowed, true),
    a("binding:host_id", Ty::Str(255), Post::Allowed, true),
    a("binding:profile", Ty::NullDict, Post::Allowed, true),
    a(
        "binding:vnic_type",
        Ty::Values(&[
            "normal",
            "direct",
            "macvtap",
            "baremetal",
            "direct-physical",
            "virtio-forwarder",
            "smart-nic",
            "remote-managed",
            "vdpa",
        ]),
        Post::Allowed,
        true,
    ),
    a("binding:vif_type", Ty::Any, Post::No, false),
    a("binding:vif_details", Ty::Any, Post::No, false),
    a("tags", Ty::StrList, Post::Allowed, false),
];

pub const FLOATINGIP: &[Attr] = &[
    a("floating_network_id", Ty::Uuid, Post::Required, false),
    a("floating_ip_address", Ty::NullIp, Post::Allowed, false),
    a("subnet_id", Ty::NullUuid, Post::Allowed, false),
    a("port_id", Ty::NullUuid, Post::Allowed, true),
    a("fixed_ip_address", Ty::NullIp, Post::Allowed, true),
    a("router_id", Ty::NullUuid, Post::No, false),
    a("tags", Ty::StrList, Post::Allowed, false),
];

pub const ROUTER: &[Attr] = &[
    a("name", Ty::Str(255), Post::Allowed, true),
    a("admin_state_up", Ty::Bool, Post::Allowed, true),
    a("external_gateway_info", Ty::NullDict, Post::Allowed, true),
    a("distributed", Ty::Bool, Post::Allowed, true),
    a("ha", Ty::Bool, Post::Allowed, true),
    a("availability_zone_hints", Ty::StrList, Post::Allowed, false),
    a("flavor_id", Ty::NullUuid, Post::Allowed, false),
    a("routes", Ty::DictList, Post::No, true),
    a("tags", Ty::StrList, Post::Allowed, false),
];

pub const SECURITY_GROUP: &[Attr] = &[
    a("name", Ty::Str(255), Post::Allowed, true),
    a("stateful", Ty::Bool, Post::Allowed, true),
    a("shared", Ty::Bool, Post::No, false),
    a("security_group_rules", Ty::Any, Post::No, false),
    a("tags", Ty::StrList, Post::Allowed, false),
];

pub const SECURITY_GROUP_RULE: &[Attr] = &[
    a("security_group_id", Ty::Uuid, Post::Required, false),
    a(
        "direction",
        Ty::Values(&["ingress", "egress"]),
        Post::Required,
        false,
    ),
    a(
        "ethertype",
        Ty::Values(&["IPv4", "IPv6"]),
        Post::Allowed,
        false,
    ),
    a("protocol", Ty::Any, Post::Allowed, false),
    a("port_range_min", Ty::NullInt, Post::Allowed, false),
    a("port_range_max", Ty::NullInt, Post::Allowed, false),
    a("remote_ip_prefix", Ty::NullCidr, Post::Allowed, false),
    a("remote_group_id", Ty::NullUuid, Post::Allowed, false),
    a(
        "remote_address_group_id",
        Ty::NullUuid,
        Post::Allowed,
        false,
    ),
    a("normalized_cidr", Ty::Any, Post::No, false),
    a("belongs_to_default_sg", Ty::Any, Post::No, false),
];

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::neutron_bad_request(message)
}

/// Python's `str()` of a JSON value, as Neutron's messages print the offending data.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr()` of a JSON value (strings quoted with ').
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => py_str(other),
    }
}

/// A failed `convert_to` (before validation): Neutron's InvalidInput.
fn conversion(reason: String) -> ApiError {
    ApiError::neutron(
        http::StatusCode::BAD_REQUEST,
        "InvalidInput",
        format!("Invalid input for operation: {reason}."),
    )
}

fn invalid(name: &str, reason: String) -> ApiError {
    bad(format!("Invalid input for {name}. Reason: {reason}."))
}

/// Neutron's `convert_to_boolean`: booleans, "true"/"false" in any case, 0/1.
pub fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn check_str(name: &str, v: &Value, max: usize) -> Result<Value, ApiError> {
    match v {
        Value::String(s) if s.chars().count() > max => Err(invalid(
            name,
            format!("'{s}' exceeds maximum length of {max}"),
        )),
        Value::String(_) => Ok(v.clone()),
        other => Err(invalid(
            name,
            format!("'{}' is not a valid string", py_str(other)),
        )),
    }
}

fn check_ip(name: &str, v: &Value) -> Result<Value, ApiError> {
    match v.as_str().map(|s| s.parse::<IpAddr>()) {
        Some(Ok(ip)) => Ok(Value::String(ip.to_string())),
        _ => Err(invalid(
            name,
            format!("'{}' is not a valid IP address", py_str(v)),
        )),
    }
}

fn check_cidr(name: &str, v: &Value) -> Result<Value, ApiError> {
    let s = v.as_str();
    let parsed = s.and_then(|s| {
        s.parse::<IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
    });
    match parsed {
        Some(_) => Ok(v.clone()),
        // A rule's prefix goes through Neutron's convert_ip_prefix_to_cidr, which raises its
        // own exception type rather than the generic invalid-input one.
        None if name == "remote_ip_prefix" => Err(ApiError::neutron(
            http::StatusCode::BAD_REQUEST,
            "InvalidCIDR",
            format!("Invalid CIDR {} given as IP prefix.", py_str(v)),
        )),
        None => Err(invalid(
            name,
            format!("'{}' is not a valid IP subnet", py_str(v)),
        )),
    }
}

fn check_list<'a>(name: &str, v: &'a Value) -> Result<&'a Vec<Value>, ApiError> {
    v.as_array()
        .ok_or_else(|| invalid(name, format!("'{}' is not a list", py_str(v))))
}

fn check_dict<'a>(name: &str, v: &'a Value) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| invalid(name, format!("'{}' is not a dictionary", py_str(v))))
}

fn check_mac(name: &str, v: &Value) -> Result<Value, ApiError> {
    let ok = v.as_str().is_some_and(|s| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
    });
    if ok {
        Ok(Value::String(
            v.as_str().unwrap_or_default().to_ascii_lowercase(),
        ))
    } else {
        Err(invalid(
            name,
            format!("'{}' is not a valid MAC address", py_str(v)),
        ))
    }
}

fn check(attr: &Attr, v: &Value) -> Result<Value, ApiError> {
    let name = attr.name;
    match attr.ty {
        Ty::Any => Ok(v.clone()),
        Ty::Str(max) => check_str(name, v, max),
        Ty::NullStr(_)
        | Ty::NullUuid
        | Ty::NullInt
        | Ty::NullIp
        | Ty::NullCidr
        | Ty::NullDict
        | Ty::NullValues(_)
            if v.is_null() =>
        {
            Ok(Value::Null)
        }
        Ty::NullStr(max) => check_str(name, v, max),
        // Conversions run before validation in Neutron and fail as InvalidInput.
        Ty::Bool => to_bool(v)
            .map(Value::Bool)
            .ok_or_else(|| conversion(format!("'{}' cannot be converted to boolean", py_str(v)))),
        Ty::Uuid | Ty::NullUuid => match v.as_str() {
            Some(s) if is_uuid(s) => Ok(v.clone()),
            _ => Err(invalid(
                name,
                format!("'{}' is not a valid UUID", py_str(v)),
            )),
        },
        Ty::Int | Ty::NullInt => to_int(v)
            .map(Value::from)
            .ok_or_else(|| conversion(format!("'{}' is not an integer", py_str(v)))),
        Ty::IpVersion => match to_int(v) {
            Some(n @ (4 | 6)) => Ok(Value::from(n)),
            Some(n) => Err(invalid(name, format!("{n} is not in valid_values"))),
            None => Err(conversion(format!("'{}' is not an integer", py_str(v)))),
        },
        Ty::Ip | Ty::NullIp => check_ip(name, v),
        Ty::Cidr | Ty::NullCidr => check_cidr(name, v),
        Ty::Mac => check_mac(name, v),
        Ty::Values(allowed) | Ty::NullValues(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(v.clone()),
            _ => Err(invalid(
                name,
                format!("{} is not in valid_values", py_str(v)),
            )),
        },
        Ty::Dict | Ty::NullDict => check_dict(name, v).map(|m| Value::Object(m.clone())),
        Ty::StrList => {
            let items = check_list(name, v)?;
            for item in items {
                check_str(name, item, 255)?;
            }
            Ok(v.clone())
        }
        Ty::UuidList => {
            let items = check_list(name, v)?;
            for item in items {
                if !item.as_str().is_some_and(is_uuid) {
                    return Err(invalid(
                        name,
                        format!("'{}' is not a valid UUID", py_str(item)),
                    ));
                }
            }
            Ok(v.clone())
        }
        Ty::DictList => {
            let items = check_list(name, v)?;
            for item in items {
                check_dict(name, item)?;
            }
            Ok(v.clone())
        }
        Ty::FixedIps => {
            let items = check_list(name, v)?;
            let mut out = Vec::new();
            for item in items {
                let m = check_dict(name, item)?;
                let mut norm = Map::new();
                for (k, val) in m {
                    match k.as_str() {
                        "subnet_id" => match val.as_str() {
                            Some(s) if is_uuid(s) => {
                                norm.insert(k.clone(), val.clone());
                            }
                            _ => {
                                return Err(invalid(
                                    name,
                                    format!("'{}' is not a valid UUID", py_str(val)),
                                ))
                            }
                        },
                        "ip_address" => {
                            norm.insert(k.clone(), check_ip(name, val)?);
                        }
                        other => {
                            return Err(invalid(
                                name,
                                format!("Unrecognized attribute(s) '{other}'"),
                            ))
                        }
                    }
                }
                out.push(Value::Object(norm));
            }
            Ok(Value::Array(out))
        }
        Ty::AddressPairs => {
            let items = check_list(name, v)?;
            for item in items {
                let m = check_dict(name, item)?;
                match m.get("ip_address") {
                    None => {
                        return Err(bad(
                            "Allowed address pairs must contain ip_address".to_string()
                        ))
                    }
                    Some(ip) => {
                        check_cidr(name, ip)?;
                    }
                }
                if let Some(mac) = m.get("mac_address") {
                    check_mac(name, mac)?;
                }
                if let Some(k) = m.keys().find(|k| *k != "ip_address" && *k != "mac_address") {
                    return Err(bad(format!("Unrecognized attribute(s) '{k}'")));
                }
            }
            Ok(v.clone())
        }
        Ty::Pools => {
            let items = check_list(name, v)?;
            for item in items {
                let m = check_dict(name, item)?;
                for key in ["start", "end"] {
                    match m.get(key) {
                        Some(ip) => {
                            check_ip(name, ip)?;
                        }
                        None => {
                            return Err(invalid(
                                name,
                                format!("Invalid data format for IP pool: '{}'", py_str(item)),
                            ))
                        }
                    }
                }
                if m.len() != 2 {
                    return Err(invalid(
                        name,
                        format!("Invalid data format for IP pool: '{}'", py_str(item)),
                    ));
                }
            }
            Ok(v.clone())
        }
    }
}

/// Validates `{"<singular>": {...}}` for POST (`create` true) or PUT and returns the inner
/// attributes, normalised.
pub fn validate(
    singular: &str,
    attrs: &[Attr],
    body: &Value,
    create: bool,
) -> Result<Map<String, Value>, ApiError> {
    let root = body
        .as_object()
        .ok_or_else(|| bad("Body contains invalid data"))?;
    let inner = match root.get(singular) {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("Body contains invalid data")),
        None => return Err(bad(format!("Unable to find '{singular}' in request body"))),
    };
    let find = |k: &str| attrs.iter().chain(COMMON.iter()).find(|a| a.name == k);
    let mut unknown: Vec<&str> = inner
        .keys()
        .filter(|k| find(k).is_none() && !READ_ONLY.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(bad(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )));
    }
    let mut out = Map::new();
    for (key, value) in inner {
        let Some(attr) = find(key).filter(|a| !(READ_ONLY.contains(&a.name) && a.name != "tags"))
        else {
            // Read-only standard attributes.
            return Err(if create {
                bad(format!("Attribute '{key}' not allowed in POST"))
            } else {
                bad(format!("Cannot update read-only attribute {key}"))
            });
        };
        if create && attr.post == Post::No {
            return Err(bad(format!("Attribute '{key}' not allowed in POST")));
        }
        if !create && !attr.put {
            return Err(bad(format!("Cannot update read-only attribute {key}")));
        }
        out.insert(key.clone(), check(attr, value)?);
    }
    if create {
        for attr in attrs.iter().filter(|a| a.post == Post::Required) {
            if !out.contains_key(attr.name) {
                return Err(bad(format!(
                    "Failed to parse request. Required attribute '{}' not specified",
                    attr.name
                )));
            }
        }
    }
    if let (Some(p), Some(t)) = (out.get("project_id"), out.get("tenant_id")) {
        if p != t {
            return Err(bad("'project_id' and 'tenant_id' do not match"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(e: ApiError) -> String {
        e.message
    }

    #[test]
    fn unknown_readonly_wrong_type_and_missing() {
        let e = validate("network", NETWORK, &json!({"network": {"colour": 1}}), true).unwrap_err();
        assert_eq!(msg(e), "Unrecognized attribute(s) 'colour'");
        let e = validate(
            "network",
            NETWORK,
            &json!({"network": {"status": "x"}}),
            true,
        )
        .unwrap_err();
        assert_eq!(msg(e), "Attribute 'status' not allowed in POST");
        let e = validate(
            "network",
            NETWORK,
            &json!({"network": {"admin_state_up": "maybe"}}),
            true,
        )
        .unwrap_err();
        assert_eq!(
            msg(e),
            "Invalid input for operation: 'maybe' cannot be converted to boolean."
        );
        let e = validate("port", PORT, &json!({"port": {"name": "a"}}), true).unwrap_err();
        assert_eq!(
            msg(e),
            "Failed to parse request. Required attribute 'network_id' not specified"
        );
        let e = validate("port", PORT, &json!({"port": {"network_id": "x"}}), false).unwrap_err();
        assert_eq!(msg(e), "Cannot update read-only attribute network_id");
        let e = validate("port", PORT, &json!({"ports": {}}), true).unwrap_err();
        assert_eq!(msg(e), "Unable to find 'port' in request body");
    }

    #[test]
    fn values_are_normalised() {
        let m = validate(
            "network",
            NETWORK,
            &json!({"network": {"admin_state_up": "True", "mtu": "1400"}}),
            true,
        )
        .unwrap();
        assert_eq!(m["admin_state_up"], json!(true));
        assert_eq!(m["mtu"], json!(1400));
    }
}
