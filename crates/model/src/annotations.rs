//! Service annotations (SPEC §3): their names and value syntax, parsed into typed settings.
//! Every bad value becomes an `Invalid` naming the annotation, the value and the accepted
//! forms; nothing is silently defaulted. Must not know what the settings are used for.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::config::LbMethod;
use crate::invalid::Invalid;

const P: &str = "loadbalancer.openstack.org/";

pub const INTERNAL: &str = "service.beta.kubernetes.io/openstack-internal-load-balancer";
pub const SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
pub const FLOATING_NETWORK_ID: &str = "loadbalancer.openstack.org/floating-network-id";
pub const FLOATING_SUBNET_ID: &str = "loadbalancer.openstack.org/floating-subnet-id";
pub const FLOATING_SUBNET: &str = "loadbalancer.openstack.org/floating-subnet";
pub const FLOATING_SUBNET_TAGS: &str = "loadbalancer.openstack.org/floating-subnet-tags";
pub const CLASS: &str = "loadbalancer.openstack.org/class";
pub const SUBNET_ID: &str = "loadbalancer.openstack.org/subnet-id";
pub const NETWORK_ID: &str = "loadbalancer.openstack.org/network-id";
pub const PORT_ID: &str = "loadbalancer.openstack.org/port-id";
pub const MEMBER_SUBNET_ID: &str = "loadbalancer.openstack.org/member-subnet-id";
pub const KEEP_FLOATINGIP: &str = "loadbalancer.openstack.org/keep-floatingip";
pub const CONNECTION_LIMIT: &str = "loadbalancer.openstack.org/connection-limit";
pub const LB_METHOD: &str = "loadbalancer.openstack.org/lb-method";
pub const PROXY_PROTOCOL: &str = "loadbalancer.openstack.org/proxy-protocol";
pub const X_FORWARDED_FOR: &str = "loadbalancer.openstack.org/x-forwarded-for";
pub const TIMEOUT_CLIENT_DATA: &str = "loadbalancer.openstack.org/timeout-client-data";
pub const TIMEOUT_MEMBER_CONNECT: &str = "loadbalancer.openstack.org/timeout-member-connect";
pub const TIMEOUT_MEMBER_DATA: &str = "loadbalancer.openstack.org/timeout-member-data";
pub const TIMEOUT_TCP_INSPECT: &str = "loadbalancer.openstack.org/timeout-tcp-inspect";
pub const ENABLE_HEALTH_MONITOR: &str = "loadbalancer.openstack.org/enable-health-monitor";
pub const HEALTH_MONITOR_DELAY: &str = "loadbalancer.openstack.org/health-monitor-delay";
pub const HEALTH_MONITOR_TIMEOUT: &str = "loadbalancer.openstack.org/health-monitor-timeout";
pub const HEALTH_MONITOR_MAX_RETRIES: &str =
    "loadbalancer.openstack.org/health-monitor-max-retries";
pub const HEALTH_MONITOR_MAX_RETRIES_DOWN: &str =
    "loadbalancer.openstack.org/health-monitor-max-retries-down";
pub const FLAVOR_ID: &str = "loadbalancer.openstack.org/flavor-id";
pub const AVAILABILITY_ZONE: &str = "loadbalancer.openstack.org/availability-zone";
pub const DEFAULT_TLS_CONTAINER_REF: &str = "loadbalancer.openstack.org/default-tls-container-ref";
pub const LOAD_BALANCER_ID: &str = "loadbalancer.openstack.org/load-balancer-id";
pub const LOAD_BALANCER_ADDRESS: &str = "loadbalancer.openstack.org/load-balancer-address";
pub const HOSTNAME: &str = "loadbalancer.openstack.org/hostname";
pub const NODE_SELECTOR: &str = "loadbalancer.openstack.org/node-selector";
pub const RECREATE_ON_IMMUTABLE_CHANGE: &str =
    "loadbalancer.openstack.org/recreate-on-immutable-change";
/// On the Service that owns a load balancer: the namespaces whose Services may join it with
/// `load-balancer-id` (`*`: any). Ours, not OCCM's: OCCM lets anyone join.
pub const SHARED_WITH: &str = "loadbalancer.openstack.org/shared-with";

/// Octavia's upper bound for listener timeouts (one year, in ms).
const MAX_TIMEOUT_MS: u64 = 31_536_000_000;

/// `proxy-protocol` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyProtocol {
    V1,
    V2,
}

/// Every annotation of SPEC §3, typed. None = not set (config or built-in default applies).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    pub internal: Option<bool>,
    pub source_ranges: Option<Vec<ipnet::IpNet>>,
    pub floating_network_id: Option<String>,
    pub floating_subnet_id: Option<String>,
    pub floating_subnet: Option<String>,
    pub floating_subnet_tags: Option<Vec<String>>,
    pub class: Option<String>,
    pub subnet_id: Option<String>,
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub member_subnet_id: Option<String>,
    pub keep_floatingip: Option<bool>,
    pub connection_limit: Option<i64>,
    pub lb_method: Option<LbMethod>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub x_forwarded_for: Option<bool>,
    pub timeout_client_data: Option<u64>,
    pub timeout_member_connect: Option<u64>,
    pub timeout_member_data: Option<u64>,
    pub timeout_tcp_inspect: Option<u64>,
    pub enable_health_monitor: Option<bool>,
    pub health_monitor_delay: Option<u32>,
    pub health_monitor_timeout: Option<u32>,
    pub health_monitor_max_retries: Option<u32>,
    pub health_monitor_max_retries_down: Option<u32>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub default_tls_container_ref: Option<String>,
    pub load_balancer_id: Option<String>,
    pub load_balancer_address: Option<IpAddr>,
    pub hostname: Option<String>,
    pub node_selector: Option<Vec<(String, Option<String>)>>,
    pub recreate_on_immutable_change: Option<bool>,
    pub shared_with: Option<Vec<String>>,
}

impl Annotations {
    /// Parses every known annotation; collects all errors rather than stopping at the first, so
    /// one Event can list everything to fix.
    pub fn parse(map: &BTreeMap<String, String>) -> Result<Annotations, Vec<Invalid>> {
        let mut errs = Vec::new();
        let mut a = Annotations::default();
        let get = |k: &str| map.get(k).map(|v| v.trim());
        macro_rules! field {
            ($key:expr, $parser:expr) => {
                match get($key) {
                    None => None,
                    Some(v) => match $parser($key, v) {
                        Ok(x) => Some(x),
                        Err(e) => {
                            errs.push(e);
                            None
                        }
                    },
                }
            };
        }
        a.internal = field!(INTERNAL, parse_bool);
        a.source_ranges = field!(SOURCE_RANGES, parse_cidrs);
        a.floating_network_id = field!(FLOATING_NETWORK_ID, parse_id);
        a.floating_subnet_id = field!(FLOATING_SUBNET_ID, parse_id);
        a.floating_subnet = field!(FLOATING_SUBNET, parse_glob);
        a.floating_subnet_tags = field!(FLOATING_SUBNET_TAGS, parse_tags);
        a.class = field!(CLASS, parse_name);
        a.subnet_id = field!(SUBNET_ID, parse_id);
        a.network_id = field!(NETWORK_ID, parse_id);
        a.port_id = field!(PORT_ID, parse_id);
        a.member_subnet_id = field!(MEMBER_SUBNET_ID, parse_id);
        a.keep_floatingip = field!(KEEP_FLOATINGIP, parse_bool);
        a.connection_limit = field!(CONNECTION_LIMIT, parse_connection_limit);
        a.lb_method = field!(LB_METHOD, parse_lb_method);
        a.proxy_protocol = field!(PROXY_PROTOCOL, parse_proxy);
        a.x_forwarded_for = field!(X_FORWARDED_FOR, parse_bool);
        a.timeout_client_data = field!(TIMEOUT_CLIENT_DATA, parse_timeout);
        a.timeout_member_connect = field!(TIMEOUT_MEMBER_CONNECT, parse_timeout);
        a.timeout_member_data = field!(TIMEOUT_MEMBER_DATA, parse_timeout);
        a.timeout_tcp_inspect = field!(TIMEOUT_TCP_INSPECT, parse_timeout);
        a.enable_health_monitor = field!(ENABLE_HEALTH_MONITOR, parse_bool);
        a.health_monitor_delay = field!(HEALTH_MONITOR_DELAY, parse_seconds);
        a.health_monitor_timeout = field!(HEALTH_MONITOR_TIMEOUT, parse_seconds);
        a.health_monitor_max_retries = field!(HEALTH_MONITOR_MAX_RETRIES, parse_retries);
        a.health_monitor_max_retries_down = field!(HEALTH_MONITOR_MAX_RETRIES_DOWN, parse_retries);
        a.flavor_id = field!(FLAVOR_ID, parse_id);
        a.availability_zone = field!(AVAILABILITY_ZONE, parse_name);
        a.default_tls_container_ref = field!(DEFAULT_TLS_CONTAINER_REF, parse_name);
        a.load_balancer_id = field!(LOAD_BALANCER_ID, parse_id);
        a.load_balancer_address = field!(LOAD_BALANCER_ADDRESS, parse_ip);
        a.hostname = field!(HOSTNAME, parse_hostname);
        a.node_selector = field!(NODE_SELECTOR, parse_selector);
        a.recreate_on_immutable_change = field!(RECREATE_ON_IMMUTABLE_CHANGE, parse_bool);
        a.shared_with = field!(SHARED_WITH, parse_namespaces);
        if errs.is_empty() {
            Ok(a)
        } else {
            Err(errs)
        }
    }
}

/// Whether a key looks like one of ours but is not known: a typo would otherwise be ignored.
pub fn unknown_keys(map: &BTreeMap<String, String>) -> Vec<String> {
    const KNOWN: &[&str] = &[
        FLOATING_NETWORK_ID,
        FLOATING_SUBNET_ID,
        FLOATING_SUBNET,
        FLOATING_SUBNET_TAGS,
        CLASS,
        SUBNET_ID,
        NETWORK_ID,
        PORT_ID,
        MEMBER_SUBNET_ID,
        KEEP_FLOATINGIP,
        CONNECTION_LIMIT,
        LB_METHOD,
        PROXY_PROTOCOL,
        X_FORWARDED_FOR,
        TIMEOUT_CLIENT_DATA,
        TIMEOUT_MEMBER_CONNECT,
        TIMEOUT_MEMBER_DATA,
        TIMEOUT_TCP_INSPECT,
        ENABLE_HEALTH_MONITOR,
        HEALTH_MONITOR_DELAY,
        HEALTH_MONITOR_TIMEOUT,
        HEALTH_MONITOR_MAX_RETRIES,
        HEALTH_MONITOR_MAX_RETRIES_DOWN,
        FLAVOR_ID,
        AVAILABILITY_ZONE,
        DEFAULT_TLS_CONTAINER_REF,
        LOAD_BALANCER_ID,
        LOAD_BALANCER_ADDRESS,
        HOSTNAME,
        NODE_SELECTOR,
        RECREATE_ON_IMMUTABLE_CHANGE,
        SHARED_WITH,
    ];
    map.keys()
        .filter(|k| k.starts_with(P) && !KNOWN.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Go's `strconv.ParseBool`, which OCCM uses: same accepted spellings.
pub fn parse_bool(key: &str, v: &str) -> Result<bool, Invalid> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Invalid::bad_value(
            key,
            v,
            "true or false (also 1/0, t/f, TRUE/FALSE)",
        )),
    }
}

/// OpenStack ids: a UUID, with or without dashes.
pub fn parse_id(key: &str, v: &str) -> Result<String, Invalid> {
    let hex = v.chars().filter(|c| *c != '-').collect::<String>();
    let dashed_ok = !v.contains('-')
        || (v.len() == 36 && [8, 13, 18, 23].iter().all(|&i| v.as_bytes()[i] == b'-'));
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && dashed_ok {
        Ok(v.to_string())
    } else {
        Err(Invalid::bad_value(
            key,
            v,
            "an OpenStack UUID such as 6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f60",
        ))
    }
}

fn parse_name(key: &str, v: &str) -> Result<String, Invalid> {
    if v.is_empty() {
        Err(Invalid::bad_value(key, v, "a non-empty name"))
    } else {
        Ok(v.to_string())
    }
}

/// Comma-separated namespace names (DNS-1123 labels) or `*`.
fn parse_namespaces(key: &str, v: &str) -> Result<Vec<String>, Invalid> {
    let label = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.starts_with('-')
            && !n.ends_with('-')
    };
    let names: Vec<String> = v.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().all(|n| n == "*" || label(n)) {
        Ok(names)
    } else {
        Err(Invalid::bad_value(
            key,
            v,
            "comma-separated namespace names such as shop,web, or * for every namespace",
        ))
    }
}

fn parse_glob(key: &str, v: &str) -> Result<String, Invalid> {
    match glob::Pattern::new(v) {
        Ok(_) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(Invalid::bad_value(
            key,
            v,
            "a subnet name or glob pattern such as public-*",
        )),
    }
}

fn parse_tags(key: &str, v: &str) -> Result<Vec<String>, Invalid> {
    let tags: Vec<String> = v.split(',').map(|t| t.trim().to_string()).collect();
    if tags.iter().any(|t| t.is_empty()) {
        Err(Invalid::bad_value(
            key,
            v,
            "comma-separated non-empty Neutron tags, e.g. public,ipv4",
        ))
    } else {
        Ok(tags)
    }
}

/// Comma- or space-separated CIDRs (the Kubernetes annotation's syntax). Host bits must be
/// zero, as Kubernetes' own validation of `loadBalancerSourceRanges` requires.
pub fn parse_cidrs(key: &str, v: &str) -> Result<Vec<ipnet::IpNet>, Invalid> {
    let accepted = "comma-separated CIDRs such as 10.0.0.0/8,192.168.1.0/24";
    let mut out = Vec::new();
    for part in v.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        let net: ipnet::IpNet = part
            .parse()
            .map_err(|_| Invalid::bad_value(key, part, accepted))?;
        if net.trunc() != net {
            return Err(Invalid::bad_value(
                key,
                part,
                format!("{accepted} (host bits must be zero: {})", net.trunc()),
            ));
        }
        out.push(net);
    }
    if out.is_empty() {
        return Err(Invalid::bad_value(key, v, accepted));
    }
    Ok(out)
}

fn parse_connection_limit(key: &str, v: &str) -> Result<i64, Invalid> {
    match v.parse::<i64>() {
        Ok(n) if n >= -1 && n <= i64::from(i32::MAX) => Ok(n),
        _ => Err(Invalid::bad_value(
            key,
            v,
            "an integer, -1 for unlimited, up to 2147483647",
        )),
    }
}

pub fn parse_lb_method(key: &str, v: &str) -> Result<LbMethod, Invalid> {
    match v.to_ascii_uppercase().as_str() {
        "ROUND_ROBIN" => Ok(LbMethod::RoundRobin),
        "LEAST_CONNECTIONS" => Ok(LbMethod::LeastConnections),
        "SOURCE_IP" => Ok(LbMethod::SourceIp),
        "SOURCE_IP_PORT" => Ok(LbMethod::SourceIpPort),
        _ => Err(Invalid::bad_value(
            key,
            v,
            "ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP or SOURCE_IP_PORT",
        )),
    }
}

fn parse_proxy(key: &str, v: &str) -> Result<ProxyProtocol, Invalid> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "v1" => Ok(ProxyProtocol::V1),
        "v2" => Ok(ProxyProtocol::V2),
        _ => Err(Invalid::bad_value(
            key,
            v,
            "true, v1 or v2 (remove the annotation to disable)",
        )),
    }
}

fn parse_timeout(key: &str, v: &str) -> Result<u64, Invalid> {
    match v.parse::<u64>() {
        Ok(n) if n <= MAX_TIMEOUT_MS => Ok(n),
        _ => Err(Invalid::bad_value(
            key,
            v,
            "milliseconds, an integer from 0 to 31536000000",
        )),
    }
}

/// Seconds: a bare integer (OCCM's syntax) or a Go-style `10s`/`1m`.
fn parse_seconds(key: &str, v: &str) -> Result<u32, Invalid> {
    let accepted = "seconds, an integer from 1 to 86400 (or a duration such as 10s or 1m)";
    let n = if let Some(m) = v.strip_suffix('m') {
        m.parse::<u32>().ok().and_then(|m| m.checked_mul(60))
    } else {
        v.strip_suffix('s').unwrap_or(v).parse::<u32>().ok()
    };
    match n {
        Some(n) if (1..=86_400).contains(&n) => Ok(n),
        _ => Err(Invalid::bad_value(key, v, accepted)),
    }
}

fn parse_retries(key: &str, v: &str) -> Result<u32, Invalid> {
    match v.parse::<u32>() {
        Ok(n) if (1..=10).contains(&n) => Ok(n),
        _ => Err(Invalid::bad_value(key, v, "an integer from 1 to 10")),
    }
}

fn parse_ip(key: &str, v: &str) -> Result<IpAddr, Invalid> {
    v.parse()
        .map_err(|_| Invalid::bad_value(key, v, "an IPv4 or IPv6 address"))
}

/// A DNS name (RFC 1123 labels).
fn parse_hostname(key: &str, v: &str) -> Result<String, Invalid> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !v.is_empty() && v.len() <= 253 && v.split('.').all(label_ok) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(Invalid::bad_value(
            key,
            v,
            "a DNS name such as app.example.com",
        ))
    }
}

/// `k=v,k2`: label `k` equal to `v`, label `k2` present.
pub fn parse_selector(key: &str, v: &str) -> Result<Vec<(String, Option<String>)>, Invalid> {
    let accepted = "comma-separated key=value or key terms, e.g. role=lb,zone";
    let mut out = Vec::new();
    for term in v.split(',').map(str::trim) {
        let (k, val) = match term.split_once('=') {
            Some((k, val)) => (k.trim(), Some(val.trim().to_string())),
            None => (term, None),
        };
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(Invalid::bad_value(key, v, accepted));
        }
        out.push((k.to_string(), val));
    }
    Ok(out)
}
