//! The attribute tables of Octavia's request bodies and their validation, in the wording of
//! the real API (wsme's "Invalid input for field/attribute …" messages). Attributes newer than
//! the advertised API version are unknown, exactly as an older Octavia would treat them.
//! It must not know where objects are stored.

use serde_json::{Map, Value};

use super::error::LbError;
use super::Kind;

/// The value type of one attribute.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Str(usize),
    /// A string that may also be null.
    NullStr(usize),
    Bool,
    Int(i64, i64),
    /// An integer that may also be null.
    NullInt(i64, i64),
    /// Allowed values, each with the API minor version that introduced it.
    Enum(&'static [(&'static str, u32)]),
    NullEnum(&'static [(&'static str, u32)]),
    Uuid,
    Ip,
    StrList,
    Cidrs,
    SessionPersistence,
    /// A JSON object stored as given (insert_headers).
    Object,
    /// A JSON list stored as given (l7policies, additional_vips).
    List,
    /// A JSON number or null (http_version).
    NullNumber,
    /// Fully-populated children: handled by the caller, never stored.
    Children,
    Child,
}

/// Default of an attribute on create.
#[derive(Clone, Copy, Debug)]
pub enum Def {
    Null,
    Str(&'static str),
    Int(i64),
    Bool(bool),
    EmptyList,
    EmptyObject,
    /// Not stored at all (children, references resolved by the caller).
    Skip,
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// Minor version of API 2.x that introduced it.
    pub since: u32,
    pub required: bool,
    pub updatable: bool,
    pub def: Def,
}

const fn f(name: &'static str, ty: Ty, def: Def) -> Field {
    Field {
        name,
        ty,
        since: 0,
        required: false,
        updatable: true,
        def,
    }
}
const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        since: 0,
        required: true,
        updatable: false,
        def: Def::Null,
    }
}
const fn fixed(name: &'static str, ty: Ty, def: Def) -> Field {
    Field {
        name,
        ty,
        since: 0,
        required: false,
        updatable: false,
        def,
    }
}
const fn since(mut field: Field, minor: u32) -> Field {
    field.since = minor;
    field
}
const fn updatable(mut field: Field) -> Field {
    field.updatable = true;
    field
}

pub const LISTENER_PROTOCOLS: &[(&str, u32)] = &[
    ("HTTP", 0),
    ("HTTPS", 0),
    ("TCP", 0),
    ("TERMINATED_HTTPS", 0),
    ("UDP", 0),
    ("SCTP", 23),
    ("PROMETHEUS", 25),
];
pub const POOL_PROTOCOLS: &[(&str, u32)] = &[
    ("HTTP", 0),
    ("HTTPS", 0),
    ("PROXY", 0),
    ("TCP", 0),
    ("UDP", 0),
    ("PROXYV2", 22),
    ("SCTP", 23),
];
pub const LB_ALGORITHMS: &[(&str, u32)] = &[
    ("ROUND_ROBIN", 0),
    ("LEAST_CONNECTIONS", 0),
    ("SOURCE_IP", 0),
    ("SOURCE_IP_PORT", 13),
];
pub const MONITOR_TYPES: &[(&str, u32)] = &[
    ("HTTP", 0),
    ("HTTPS", 0),
    ("PING", 0),
    ("TCP", 0),
    ("TLS-HELLO", 0),
    ("UDP-CONNECT", 0),
    ("SCTP", 23),
];
const HTTP_METHODS: &[(&str, u32)] = &[
    ("CONNECT", 0),
    ("DELETE", 0),
    ("GET", 0),
    ("HEAD", 0),
    ("OPTIONS", 0),
    ("PATCH", 0),
    ("POST", 0),
    ("PUT", 0),
    ("TRACE", 0),
];
const CLIENT_AUTH: &[(&str, u32)] = &[("NONE", 0), ("OPTIONAL", 0), ("MANDATORY", 0)];
pub const PERSISTENCE_TYPES: &[&str] = &["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"];

const TIMEOUT: Ty = Ty::NullInt(0, 31_536_000_000);

pub const LOADBALANCER: &[Field] = &[
    f("name", Ty::NullStr(255), Def::Str("")),
    f("description", Ty::NullStr(255), Def::Str("")),
    f("admin_state_up", Ty::Bool, Def::Bool(true)),
    fixed("project_id", Ty::Str(36), Def::Skip),
    fixed("tenant_id", Ty::Str(36), Def::Skip),
    fixed("vip_address", Ty::Ip, Def::Null),
    fixed("vip_port_id", Ty::Uuid, Def::Null),
    fixed("vip_subnet_id", Ty::Uuid, Def::Null),
    fixed("vip_network_id", Ty::Uuid, Def::Null),
    f("vip_qos_policy_id", Ty::Uuid, Def::Null),
    fixed("provider", Ty::NullStr(64), Def::Null),
    since(fixed("flavor_id", Ty::Uuid, Def::Null), 6),
    since(fixed("availability_zone", Ty::NullStr(255), Def::Null), 14),
    since(f("tags", Ty::StrList, Def::EmptyList), 5),
    since(fixed("additional_vips", Ty::List, Def::EmptyList), 26),
    // Shown by the API; set by Octavia (SR-IOV VIPs), not by the caller.
    since(fixed("vip_vnic_type", Ty::Str(64), Def::Str("normal")), 28),
    since(f("vip_sg_ids", Ty::StrList, Def::EmptyList), 30),
    fixed("listeners", Ty::Children, Def::Skip),
    fixed("pools", Ty::Children, Def::Skip),
];

pub const LISTENER: &[Field] = &[
    f("name", Ty::NullStr(255), Def::Str("")),
    f("description", Ty::NullStr(255), Def::Str("")),
    f("admin_state_up", Ty::Bool, Def::Bool(true)),
    req("protocol", Ty::Enum(LISTENER_PROTOCOLS)),
    req("protocol_port", Ty::Int(1, 65535)),
    fixed("loadbalancer_id", Ty::Uuid, Def::Skip),
    fixed("project_id", Ty::Str(36), Def::Skip),
    fixed("tenant_id", Ty::Str(36), Def::Skip),
    f("connection_limit", Ty::Int(-1, 2_147_483_647), Def::Int(-1)),
    f("default_tls_container_ref", Ty::NullStr(255), Def::Null),
    f("sni_container_refs", Ty::StrList, Def::EmptyList),
    f("default_pool_id", Ty::Uuid, Def::Null),
    fixed("default_pool", Ty::Child, Def::Skip),
    f("insert_headers", Ty::Object, Def::EmptyObject),
    fixed("l7policies", Ty::List, Def::Skip),
    since(f("timeout_client_data", TIMEOUT, Def::Int(50_000)), 1),
    since(f("timeout_member_connect", TIMEOUT, Def::Int(5_000)), 1),
    since(f("timeout_member_data", TIMEOUT, Def::Int(50_000)), 1),
    since(f("timeout_tcp_inspect", TIMEOUT, Def::Int(0)), 1),
    since(
        f("client_ca_tls_container_ref", Ty::NullStr(255), Def::Null),
        8,
    ),
    since(
        f(
            "client_authentication",
            Ty::Enum(CLIENT_AUTH),
            Def::Str("NONE"),
        ),
        8,
    ),
    since(
        f("client_crl_container_ref", Ty::NullStr(255), Def::Null),
        8,
    ),
    since(f("allowed_cidrs", Ty::Cidrs, Def::Null), 12),
    since(f("tls_ciphers", Ty::NullStr(2048), Def::Null), 15),
    since(f("tls_versions", Ty::StrList, Def::Null), 17),
    since(f("alpn_protocols", Ty::StrList, Def::Null), 20),
    since(
        f("hsts_max_age", Ty::NullInt(0, 2_147_483_647), Def::Null),
        27,
    ),
    since(f("hsts_include_subdomains", Ty::Bool, Def::Bool(false)), 27),
    since(f("hsts_preload", Ty::Bool, Def::Bool(false)), 27),
    since(f("tags", Ty::StrList, Def::EmptyList), 5),
];

pub const POOL: &[Field] = &[
    f("name", Ty::NullStr(255), Def::Str("")),
    f("description", Ty::NullStr(255), Def::Str("")),
    f("admin_state_up", Ty::Bool, Def::Bool(true)),
    req("protocol", Ty::Enum(POOL_PROTOCOLS)),
    updatable(req("lb_algorithm", Ty::Enum(LB_ALGORITHMS))),
    fixed("loadbalancer_id", Ty::Uuid, Def::Skip),
    fixed("listener_id", Ty::Uuid, Def::Skip),
    fixed("project_id", Ty::Str(36), Def::Skip),
    fixed("tenant_id", Ty::Str(36), Def::Skip),
    f("session_persistence", Ty::SessionPersistence, Def::Null),
    fixed("healthmonitor", Ty::Child, Def::Skip),
    fixed("members", Ty::Children, Def::Skip),
    since(f("tls_enabled", Ty::Bool, Def::Bool(false)), 8),
    since(f("tls_container_ref", Ty::NullStr(255), Def::Null), 8),
    since(f("ca_tls_container_ref", Ty::NullStr(255), Def::Null), 8),
    since(f("crl_container_ref", Ty::NullStr(255), Def::Null), 8),
    since(f("tls_ciphers", Ty::NullStr(2048), Def::Null), 15),
    since(f("tls_versions", Ty::StrList, Def::Null), 18),
    since(f("alpn_protocols", Ty::StrList, Def::Null), 24),
    since(f("tags", Ty::StrList, Def::EmptyList), 5),
];

pub const MEMBER: &[Field] = &[
    f("name", Ty::NullStr(255), Def::Str("")),
    f("admin_state_up", Ty::Bool, Def::Bool(true)),
    req("address", Ty::Ip),
    req("protocol_port", Ty::Int(1, 65535)),
    f("weight", Ty::Int(0, 256), Def::Int(1)),
    since(f("backup", Ty::Bool, Def::Bool(false)), 1),
    fixed("subnet_id", Ty::Uuid, Def::Null),
    // Shown by the API; "direct" only for SR-IOV members, which the sandbox has none of.
    since(fixed("vnic_type", Ty::Str(64), Def::Str("normal")), 29),
    f("monitor_address", Ty::Ip, Def::Null),
    f("monitor_port", Ty::NullInt(1, 65535), Def::Null),
    fixed("project_id", Ty::Str(36), Def::Skip),
    fixed("tenant_id", Ty::Str(36), Def::Skip),
    since(f("tags", Ty::StrList, Def::EmptyList), 5),
];

pub const HEALTHMONITOR: &[Field] = &[
    f("name", Ty::NullStr(255), Def::Str("")),
    f("admin_state_up", Ty::Bool, Def::Bool(true)),
    req("type", Ty::Enum(MONITOR_TYPES)),
    updatable(req("delay", Ty::Int(0, 2_147_483_647))),
    updatable(req("timeout", Ty::Int(0, 2_147_483_647))),
    updatable(req("max_retries", Ty::Int(1, 10))),
    f("max_retries_down", Ty::Int(1, 10), Def::Int(3)),
    f("http_method", Ty::NullEnum(HTTP_METHODS), Def::Null),
    f("url_path", Ty::NullStr(2048), Def::Null),
    f("expected_codes", Ty::NullStr(64), Def::Null),
    since(f("http_version", Ty::NullNumber, Def::Null), 10),
    since(f("domain_name", Ty::NullStr(255), Def::Null), 10),
    fixed("pool_id", Ty::Uuid, Def::Skip),
    fixed("project_id", Ty::Str(36), Def::Skip),
    fixed("tenant_id", Ty::Str(36), Def::Skip),
    since(f("tags", Ty::StrList, Def::EmptyList), 5),
];

pub fn fields(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::LoadBalancer => LOADBALANCER,
        Kind::Listener => LISTENER,
        Kind::Pool => POOL,
        Kind::Member => MEMBER,
        Kind::HealthMonitor => HEALTHMONITOR,
    }
}

/// Name of the body argument in wsme messages.
fn argument_name(kind: Kind) -> &'static str {
    match kind {
        Kind::LoadBalancer => "load_balancer",
        Kind::Listener => "listener_",
        Kind::Pool => "pool_",
        Kind::Member => "member_",
        Kind::HealthMonitor => "health_monitor_",
    }
}

/// What the body contained, split into stored attributes and the parts the caller resolves.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Attributes to store (defaults filled on create; only the given ones on update).
    pub attrs: Map<String, Value>,
    /// Attributes with `Def::Skip` that were given (references, children, project_id).
    pub extra: Map<String, Value>,
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => pyrepr(other),
    };
    text.chars().take(400).collect()
}

/// Python's repr of a JSON value, as wsme prints request bodies in its messages.
pub fn pyrepr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(pyrepr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", pyrepr(&Value::from(k.as_str())), pyrepr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Why a value was refused: wsme blames the field for most errors, but the whole body
/// argument for conversion failures of ints and booleans.
fn invalid_f(name: &str, value: &Value, reason: &str) -> Bad {
    Bad::Field(invalid(name, value, reason))
}

enum Bad {
    Field(LbError),
    Body(String),
}

impl From<LbError> for Bad {
    fn from(e: LbError) -> Self {
        Bad::Field(e)
    }
}

pub fn invalid(name: &str, value: &Value, reason: &str) -> LbError {
    LbError::bad_request(format!(
        "Invalid input for field/attribute {name}. Value: '{}'. {reason}",
        short(value)
    ))
}

fn allowed(values: &'static [(&'static str, u32)], minor: u32) -> Vec<&'static str> {
    values
        .iter()
        .filter(|(_, v)| *v <= minor)
        .map(|(n, _)| *n)
        .collect()
}

/// Checks one value against its type; returns the value to store.
fn check(field: &Field, value: &Value, minor: u32) -> Result<Value, Bad> {
    let name = field.name;
    let nullable = matches!(
        field.ty,
        Ty::NullStr(_)
            | Ty::NullInt(..)
            | Ty::NullEnum(_)
            | Ty::Uuid
            | Ty::Ip
            | Ty::Cidrs
            | Ty::SessionPersistence
            | Ty::NullNumber
            | Ty::Child
            | Ty::StrList
    );
    if value.is_null() {
        return if nullable {
            Ok(Value::Null)
        } else {
            Err(invalid_f(name, value, "Mandatory field missing."))
        };
    }
    match field.ty {
        Ty::Str(max) | Ty::NullStr(max) => match value.as_str() {
            Some(s) if s.chars().count() <= max => Ok(value.clone()),
            Some(_) => Err(invalid_f(
                name,
                value,
                &format!("Value should have a maximum character requirement of {max}"),
            )),
            None => Err(invalid_f(
                name,
                value,
                &format!(
                    "Wrong type. Expected '<class 'str'>', got '<class '{}'>'",
                    json_type(value)
                ),
            )),
        },
        Ty::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            // wsme accepts the usual string spellings of booleans.
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "y" | "t" => Ok(Value::Bool(true)),
                "false" | "0" | "no" | "off" | "n" | "f" => Ok(Value::Bool(false)),
                _ => Err(Bad::Body(format!("Value not an unambiguous boolean: {s}"))),
            },
            other => Err(Bad::Body(format!(
                "Value not an unambiguous boolean: {}",
                pyrepr(other)
            ))),
        },
        Ty::Int(min, max) | Ty::NullInt(min, max) => {
            let n = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let Some(n) = n else {
                return Err(Bad::Body(format!(
                    "invalid literal for int() with base 10: {}",
                    pyrepr(value)
                )));
            };
            if n < min {
                return Err(invalid_f(
                    name,
                    value,
                    &format!("Value should be greater or equal to {min}"),
                ));
            }
            if n > max {
                return Err(invalid_f(
                    name,
                    value,
                    &format!("Value should be lower or equal to {max}"),
                ));
            }
            Ok(Value::from(n))
        }
        Ty::Enum(values) | Ty::NullEnum(values) => {
            let ok = allowed(values, minor);
            match value.as_str() {
                Some(s) if ok.contains(&s) => Ok(value.clone()),
                _ => Err(invalid_f(
                    name,
                    value,
                    &format!("Value should be one of: {}", ok.join(", ")),
                )),
            }
        }
        Ty::Uuid => match value.as_str() {
            Some(s) if uuid::Uuid::parse_str(s).is_ok() => Ok(value.clone()),
            _ => Err(invalid_f(name, value, "Value should be UUID format")),
        },
        Ty::Ip => match value.as_str().map(|s| s.parse::<std::net::IpAddr>()) {
            Some(Ok(_)) => Ok(value.clone()),
            _ => Err(invalid_f(
                name,
                value,
                "Value should be IPv4 or IPv6 format",
            )),
        },
        Ty::StrList => match value.as_array() {
            Some(items) if items.iter().all(Value::is_string) => Ok(value.clone()),
            _ => Err(invalid_f(name, value, "Value should be a list of strings")),
        },
        Ty::Cidrs => match value.as_array() {
            Some(items) => {
                for item in items {
                    let parsed = item.as_str().map(|s| s.parse::<ipnet::IpNet>());
                    if !matches!(parsed, Some(Ok(_))) {
                        return Err(invalid_f(
                            name,
                            value,
                            "Value should be IPv4 or IPv6 CIDR format",
                        ));
                    }
                }
                Ok(value.clone())
            }
            None => Err(invalid_f(name, value, "Value should be a list of CIDRs")),
        },
        Ty::SessionPersistence => Ok(check_persistence(value)?),
        Ty::Object => match value {
            Value::Object(_) => Ok(value.clone()),
            _ => Err(invalid_f(name, value, "Value should be a dictionary")),
        },
        Ty::List | Ty::Children => match value {
            Value::Array(_) => Ok(value.clone()),
            _ => Err(invalid_f(name, value, "Value should be a list")),
        },
        Ty::Child => match value {
            Value::Object(_) => Ok(value.clone()),
            _ => Err(invalid_f(name, value, "Value should be a dictionary")),
        },
        Ty::NullNumber => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(invalid_f(name, value, "Value should be a number")),
        },
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn check_persistence(value: &Value) -> Result<Value, LbError> {
    let name = "session_persistence";
    let Some(obj) = value.as_object() else {
        return Err(invalid(name, value, "Value should be a dictionary"));
    };
    let mut out = Map::new();
    for key in obj.keys() {
        if ![
            "type",
            "cookie_name",
            "persistence_timeout",
            "persistence_granularity",
        ]
        .contains(&key.as_str())
        {
            return Err(LbError::bad_request(format!(
                "Unknown attribute for argument session_persistence: {key}"
            )));
        }
    }
    let kind = obj.get("type").and_then(Value::as_str);
    match kind {
        Some(k) if PERSISTENCE_TYPES.contains(&k) => {
            out.insert("type".into(), Value::from(k));
        }
        _ => {
            return Err(invalid(
                "type",
                obj.get("type").unwrap_or(&Value::Null),
                &format!("Value should be one of: {}", PERSISTENCE_TYPES.join(", ")),
            ))
        }
    }
    let cookie = obj.get("cookie_name").cloned().unwrap_or(Value::Null);
    if !(cookie.is_null() || cookie.is_string()) {
        return Err(invalid("cookie_name", &cookie, "Value should be a string"));
    }
    if kind == Some("APP_COOKIE") && cookie.is_null() {
        return Err(LbError::validation(
            "Field \"cookie_name\" must be specified when using the \"APP_COOKIE\" session persistence type.",
        ));
    }
    if kind != Some("APP_COOKIE") && !cookie.is_null() {
        return Err(LbError::bad_request(format!(
            "Validation failure: Field cookie_name is only valid with session persistence type \
             APP_COOKIE, not {}.",
            kind.unwrap_or_default()
        )));
    }
    out.insert("cookie_name".into(), cookie);
    for key in ["persistence_timeout", "persistence_granularity"] {
        out.insert(key.into(), obj.get(key).cloned().unwrap_or(Value::Null));
    }
    Ok(Value::Object(out))
}

/// Validates a create (`update == false`) or update body of `kind` at API minor `minor`.
pub fn parse(kind: Kind, body: &Value, update: bool, minor: u32) -> Result<Parsed, LbError> {
    let Some(obj) = body.as_object() else {
        return Err(invalid(
            kind.singular(),
            body,
            "Value should be a dictionary",
        ));
    };
    let table = fields(kind);
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|key| {
            !table
                .iter()
                .any(|fl| fl.name == *key && fl.since <= minor && (!update || fl.updatable))
        })
        .collect();
    if !unknown.is_empty() {
        let plural = if unknown.len() > 1 { "s" } else { "" };
        return Err(LbError::bad_request(format!(
            "Unknown attribute{plural} for argument {}.{}: {}",
            argument_name(kind),
            kind.singular(),
            unknown.join(", ")
        )));
    }
    let mut parsed = Parsed::default();
    for field in table.iter().filter(|fl| fl.since <= minor) {
        match obj.get(field.name) {
            Some(value) => {
                let checked = match check(field, value, minor) {
                    Ok(v) => v,
                    Err(Bad::Field(e)) => return Err(e),
                    Err(Bad::Body(reason)) => {
                        let whole = serde_json::json!({ kind.singular(): body });
                        return Err(invalid(argument_name(kind), &whole, &reason));
                    }
                };
                if matches!(field.def, Def::Skip) {
                    parsed.extra.insert(field.name.into(), checked);
                } else if checked.is_null() && !matches!(field.def, Def::Null) && !update {
                    parsed
                        .attrs
                        .insert(field.name.into(), default_value(field.def));
                } else {
                    parsed.attrs.insert(field.name.into(), checked);
                }
            }
            None if update => {}
            None if field.required => {
                return Err(invalid(
                    field.name,
                    &Value::Null,
                    "Mandatory field missing.",
                ))
            }
            None => {
                if !matches!(field.def, Def::Skip) {
                    parsed
                        .attrs
                        .insert(field.name.into(), default_value(field.def));
                }
            }
        }
    }
    Ok(parsed)
}

fn default_value(def: Def) -> Value {
    match def {
        Def::Null | Def::Skip => Value::Null,
        Def::Str(s) => Value::from(s),
        Def::Int(n) => Value::from(n),
        Def::Bool(b) => Value::Bool(b),
        Def::EmptyList => Value::Array(Vec::new()),
        Def::EmptyObject => Value::Object(Map::new()),
    }
}

/// The attributes the response of `kind` shows at API minor `minor` (those introduced later
/// are hidden, as an older Octavia would not know them).
pub fn visible(kind: Kind, name: &str, minor: u32) -> bool {
    fields(kind)
        .iter()
        .find(|fl| fl.name == name)
        .is_none_or(|fl| fl.since <= minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_fills_defaults_and_rejects_unknown_and_new_fields() {
        let p = parse(
            Kind::Listener,
            &json!({"protocol": "TCP", "protocol_port": 80}),
            false,
            27,
        )
        .unwrap();
        assert_eq!(p.attrs["connection_limit"], json!(-1));
        assert_eq!(p.attrs["timeout_client_data"], json!(50000));
        let e = parse(
            Kind::Listener,
            &json!({"protocol": "TCP", "protocol_port": 80, "x": 1}),
            false,
            27,
        )
        .unwrap_err();
        assert!(e.message.contains("Unknown attribute"), "{}", e.message);
        let e = parse(
            Kind::Listener,
            &json!({"protocol": "TCP", "protocol_port": 80, "allowed_cidrs": ["10.0.0.0/8"]}),
            false,
            11,
        )
        .unwrap_err();
        assert!(e.message.contains("allowed_cidrs"), "{}", e.message);
    }

    #[test]
    fn types_required_and_enums() {
        let e = parse(Kind::Listener, &json!({"protocol": "TCP"}), false, 27).unwrap_err();
        assert!(e.message.contains("protocol_port") && e.message.contains("Mandatory"));
        let e = parse(
            Kind::Listener,
            &json!({"protocol": "TCP", "protocol_port": "x"}),
            false,
            27,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Invalid input for field/attribute listener_. Value: '{'listener': {'protocol': 'TCP', \
             'protocol_port': 'x'}}'. invalid literal for int() with base 10: 'x'"
        );
        let e = parse(
            Kind::Pool,
            &json!({"protocol": "SCTP", "lb_algorithm": "ROUND_ROBIN"}),
            false,
            22,
        )
        .unwrap_err();
        assert!(e.message.contains("Value should be one of"));
        let e = parse(
            Kind::Listener,
            &json!({"allowed_cidrs": ["nope"]}),
            true,
            27,
        )
        .unwrap_err();
        assert!(e.message.contains("CIDR"));
        let e = parse(Kind::Listener, &json!({"protocol_port": 81}), true, 27).unwrap_err();
        assert!(e.message.contains("protocol_port"));
    }
}
