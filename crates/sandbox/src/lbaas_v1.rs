//! Neutron LBaaS v1 (`/v2.0/lb/`): pools, vips, members and health monitors (with the
//! `POST /pools/{id}/health_monitors` association), each going PENDING_CREATE → ACTIVE after
//! the provisioning delay, in Neutron's request and error shapes. It must not know how
//! traffic is forwarded: the data plane asks it for front ends, backends and probe targets.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::dataplane::{
    Backend, FrontEnd, MonitorPool, MonitorSpec, PoolRef, ProbeTarget, Transport,
};
use crate::errors::ApiError;
use crate::neutron::{NeutronState, PortSpec};
use crate::octavia::model::Health;
use crate::state::{AppState, AuthContext, Shared};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum V1Kind {
    Pool,
    Vip,
    Member,
    HealthMonitor,
}

impl V1Kind {
    fn singular(self) -> &'static str {
        match self {
            V1Kind::Pool => "pool",
            V1Kind::Vip => "vip",
            V1Kind::Member => "member",
            V1Kind::HealthMonitor => "health_monitor",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            V1Kind::Pool => "pools",
            V1Kind::Vip => "vips",
            V1Kind::Member => "members",
            V1Kind::HealthMonitor => "health_monitors",
        }
    }
    /// Neutron's exception class and message for a missing object.
    fn not_found(self, id: &str) -> ApiError {
        let (kind, text) = match self {
            V1Kind::Pool => ("PoolNotFound", format!("Pool {id} could not be found")),
            V1Kind::Vip => ("VipNotFound", format!("Vip {id} could not be found")),
            V1Kind::Member => ("MemberNotFound", format!("Member {id} could not be found")),
            V1Kind::HealthMonitor => (
                "HealthMonitorNotFound",
                format!("Health_monitor {id} could not be found"),
            ),
        };
        ApiError::neutron(StatusCode::NOT_FOUND, kind, text)
    }
    fn quota_key(self) -> &'static str {
        match self {
            V1Kind::Pool => "pool",
            V1Kind::Vip => "vip",
            V1Kind::Member => "member",
            V1Kind::HealthMonitor => "health_monitor",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    Uuid,
    Ip,
    Bool,
    Int(i64, i64),
    Enum(&'static [&'static str]),
    Persistence,
}

/// (name, type, required on create, updatable, default)
type FieldDef = (&'static str, Ty, bool, bool, Option<fn() -> Value>);

fn empty_str() -> Value {
    Value::from("")
}
fn yes() -> Value {
    Value::Bool(true)
}
fn null() -> Value {
    Value::Null
}
fn minus_one() -> Value {
    Value::from(-1)
}
fn one() -> Value {
    Value::from(1)
}
fn get_method() -> Value {
    Value::from("GET")
}
fn slash() -> Value {
    Value::from("/")
}
fn code200() -> Value {
    Value::from("200")
}

const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP"];

const POOL: &[FieldDef] = &[
    ("name", Ty::Str, false, true, Some(empty_str)),
    ("description", Ty::Str, false, true, Some(empty_str)),
    ("subnet_id", Ty::Uuid, true, false, None),
    ("protocol", Ty::Enum(PROTOCOLS), true, false, None),
    (
        "lb_method",
        Ty::Enum(&["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]),
        true,
        true,
        None,
    ),
    ("admin_state_up", Ty::Bool, false, true, Some(yes)),
    ("provider", Ty::Str, false, false, Some(null)),
    ("tenant_id", Ty::Str, false, false, None),
];
const VIP: &[FieldDef] = &[
    ("name", Ty::Str, false, true, Some(empty_str)),
    ("description", Ty::Str, false, true, Some(empty_str)),
    ("subnet_id", Ty::Uuid, true, false, None),
    ("address", Ty::Ip, false, false, Some(null)),
    ("protocol_port", Ty::Int(0, 65535), true, false, None),
    ("protocol", Ty::Enum(PROTOCOLS), true, false, None),
    ("pool_id", Ty::Uuid, true, true, None),
    (
        "session_persistence",
        Ty::Persistence,
        false,
        true,
        Some(null),
    ),
    (
        "connection_limit",
        Ty::Int(-1, 2_147_483_647),
        false,
        true,
        Some(minus_one),
    ),
    ("admin_state_up", Ty::Bool, false, true, Some(yes)),
    ("tenant_id", Ty::Str, false, false, None),
];
const MEMBER: &[FieldDef] = &[
    ("pool_id", Ty::Uuid, true, true, None),
    ("address", Ty::Ip, true, false, None),
    ("protocol_port", Ty::Int(0, 65535), true, false, None),
    ("weight", Ty::Int(0, 256), false, true, Some(one)),
    ("admin_state_up", Ty::Bool, false, true, Some(yes)),
    ("tenant_id", Ty::Str, false, false, None),
];
const MONITOR: &[FieldDef] = &[
    (
        "type",
        Ty::Enum(&["PING", "TCP", "HTTP", "HTTPS"]),
        true,
        false,
        None,
    ),
    ("delay", Ty::Int(0, 2_147_483_647), true, true, None),
    ("timeout", Ty::Int(0, 2_147_483_647), true, true, None),
    ("max_retries", Ty::Int(1, 10), true, true, None),
    ("http_method", Ty::Str, false, true, Some(get_method)),
    ("url_path", Ty::Str, false, true, Some(slash)),
    ("expected_codes", Ty::Str, false, true, Some(code200)),
    ("admin_state_up", Ty::Bool, false, true, Some(yes)),
    ("tenant_id", Ty::Str, false, false, None),
];

fn table(kind: V1Kind) -> &'static [FieldDef] {
    match kind {
        V1Kind::Pool => POOL,
        V1Kind::Vip => VIP,
        V1Kind::Member => MEMBER,
        V1Kind::HealthMonitor => MONITOR,
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::neutron_bad_request(msg)
}

fn invalid(name: &str, reason: String) -> ApiError {
    bad(format!("Invalid input for {name}. Reason: {reason}."))
}

fn check(name: &str, ty: Ty, v: &Value) -> Result<Value, ApiError> {
    let shown = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    match ty {
        Ty::Str => v
            .as_str()
            .filter(|s| s.len() <= 255)
            .map(|_| v.clone())
            .ok_or_else(|| invalid(name, format!("{shown} is not a valid string"))),
        Ty::Uuid => v
            .as_str()
            .filter(|s| uuid::Uuid::parse_str(s).is_ok())
            .map(|_| v.clone())
            .ok_or_else(|| invalid(name, format!("{shown} is not a valid UUID"))),
        Ty::Ip => match v {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.parse::<IpAddr>().is_ok() => Ok(v.clone()),
            _ => Err(invalid(name, format!("{shown} is not a valid IP address"))),
        },
        Ty::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(invalid(
                name,
                format!("{shown} cannot be converted to boolean"),
            )),
        },
        Ty::Int(min, max) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| invalid(name, format!("{shown} is not an integer")))?;
            if n < min || n > max {
                return Err(invalid(
                    name,
                    format!("{n} is not in range {min} through {max}"),
                ));
            }
            Ok(Value::from(n))
        }
        Ty::Enum(values) => v
            .as_str()
            .filter(|s| values.contains(s))
            .map(|_| v.clone())
            .ok_or_else(|| invalid(name, format!("{shown} is not in {values:?}"))),
        Ty::Persistence => match v {
            Value::Null => Ok(Value::Null),
            Value::Object(o)
                if o.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| ["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"].contains(&t)) =>
            {
                Ok(v.clone())
            }
            _ => Err(invalid(
                name,
                format!("{shown} is not a valid session persistence"),
            )),
        },
    }
}

/// Validates a body the way Neutron's attribute layer does.
fn parse(kind: V1Kind, bytes: &Bytes, update: bool) -> Result<Map<String, Value>, ApiError> {
    let body: Value = serde_json::from_slice(bytes).map_err(|_| bad("Malformed request body"))?;
    let inner = body
        .get(kind.singular())
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad(format!(
                "Resource body required: '{}' missing",
                kind.singular()
            ))
        })?;
    let fields = table(kind);
    let unknown: Vec<String> = inner
        .keys()
        .filter(|k| !fields.iter().any(|f| f.0 == k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if !unknown.is_empty() {
        return Err(bad(format!(
            "Unrecognized attribute(s) {}",
            unknown.join(", ")
        )));
    }
    let mut out = Map::new();
    for (name, ty, required, updatable, default) in fields {
        match inner.get(*name) {
            Some(_) if update && !updatable => {
                return Err(bad(format!("Cannot update read-only attribute {name}")));
            }
            Some(v) => {
                out.insert((*name).to_string(), check(name, *ty, v)?);
            }
            None if update => {}
            None if *required => {
                return Err(bad(format!(
                    "Failed to parse request. Required attribute '{name}' not specified"
                )));
            }
            None => {
                if let Some(d) = default {
                    out.insert((*name).to_string(), d());
                }
            }
        }
    }
    Ok(out)
}

/// One LBaaS v1 object.
#[derive(Clone, Debug)]
pub struct V1Obj {
    pub kind: V1Kind,
    pub id: String,
    pub seq: u64,
    pub attrs: Map<String, Value>,
}

impl V1Obj {
    fn str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }
    fn status(&self) -> &str {
        self.str("status").unwrap_or("ACTIVE")
    }
    fn admin_up(&self) -> bool {
        self.attrs
            .get("admin_state_up")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
}

/// All LBaaS v1 objects of the cloud.
#[derive(Debug, Default)]
pub struct LbaasV1State {
    objs: HashMap<String, V1Obj>,
    next_seq: u64,
    /// (pool id, monitor id) associations.
    associations: Vec<(String, String)>,
    /// Member id → latest health verdict.
    health: HashMap<String, Health>,
    /// Pool id → round-robin cursor of the data plane.
    pub cursors: HashMap<String, usize>,
}

impl LbaasV1State {
    fn all(&self, kind: V1Kind) -> Vec<&V1Obj> {
        let mut v: Vec<&V1Obj> = self.objs.values().filter(|o| o.kind == kind).collect();
        v.sort_by_key(|o| o.seq);
        v
    }

    fn find(&self, kind: V1Kind, id: &str) -> Result<&V1Obj, ApiError> {
        self.objs
            .get(id)
            .filter(|o| o.kind == kind)
            .ok_or_else(|| kind.not_found(id))
    }

    fn render(&self, o: &V1Obj) -> Value {
        let mut out = o.attrs.clone();
        match o.kind {
            V1Kind::Pool => {
                let members: Vec<Value> = self
                    .all(V1Kind::Member)
                    .into_iter()
                    .filter(|m| m.str("pool_id") == Some(o.id.as_str()))
                    .map(|m| Value::from(m.id.clone()))
                    .collect();
                out.insert("members".into(), Value::Array(members));
                let monitors: Vec<&String> = self
                    .associations
                    .iter()
                    .filter(|(p, _)| *p == o.id)
                    .map(|(_, m)| m)
                    .collect();
                out.insert("health_monitors".into(), json!(monitors));
                let status: Vec<Value> = monitors
                    .iter()
                    .map(|m| json!({"monitor_id": m, "status": "ACTIVE", "status_description": null}))
                    .collect();
                out.insert("health_monitors_status".into(), Value::Array(status));
                let vip = self
                    .all(V1Kind::Vip)
                    .into_iter()
                    .find(|v| v.str("pool_id") == Some(o.id.as_str()));
                out.insert("vip_id".into(), json!(vip.map(|v| v.id.clone())));
            }
            V1Kind::HealthMonitor => {
                let pools: Vec<Value> = self
                    .associations
                    .iter()
                    .filter(|(_, m)| *m == o.id)
                    .map(|(p, _)| json!({"pool_id": p, "status": "ACTIVE", "status_description": null}))
                    .collect();
                out.insert("pools".into(), Value::Array(pools));
            }
            _ => {}
        }
        Value::Object(out)
    }

    /// Completes pending objects (PENDING_CREATE/UPDATE → ACTIVE, PENDING_DELETE → gone).
    /// Returns VIP ports to delete.
    fn finalize(&mut self, ids: &[String]) -> Vec<String> {
        let mut ports = Vec::new();
        for id in ids {
            let Some(o) = self.objs.get_mut(id) else {
                continue;
            };
            match o.status() {
                "PENDING_DELETE" => {
                    if let Some(o) = self.objs.remove(id) {
                        if o.kind == V1Kind::Vip {
                            ports.extend(o.str("port_id").map(str::to_string));
                        }
                        self.associations.retain(|(p, m)| p != id && m != id);
                        self.health.remove(id);
                    }
                }
                s if s.starts_with("PENDING_") => {
                    o.attrs.insert("status".into(), Value::from("ACTIVE"));
                }
                _ => {}
            }
        }
        self.refresh_members();
        ports
    }

    /// Members take INACTIVE while their pool's monitor reports them down.
    fn refresh_members(&mut self) {
        let monitored: Vec<String> = self.associations.iter().map(|(p, _)| p.clone()).collect();
        for m in self.objs.values_mut().filter(|o| o.kind == V1Kind::Member) {
            if m.status().starts_with("PENDING_") {
                continue;
            }
            let pool = m.str("pool_id").unwrap_or_default().to_string();
            let status = match (monitored.contains(&pool), self.health.get(&m.id)) {
                (true, Some(Health::Error)) => "INACTIVE",
                _ => "ACTIVE",
            };
            m.attrs.insert("status".into(), Value::from(status));
        }
    }

    /// Front ends and monitors for the data plane: each ACTIVE vip with a floating IP.
    pub fn dataplane_wants(
        &self,
        neutron: &NeutronState,
    ) -> (Vec<FrontEnd>, Vec<(String, MonitorSpec)>) {
        let mut fronts = Vec::new();
        for vip in self
            .all(V1Kind::Vip)
            .into_iter()
            .filter(|v| v.status() == "ACTIVE" && v.admin_up())
        {
            let Some(fip) = vip
                .str("port_id")
                .and_then(|p| neutron.floating_ip_for_port(p))
                .and_then(|f| f.floating_ip_address.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let (Some(pool), Some(port)) = (
                vip.str("pool_id"),
                vip.attrs
                    .get("protocol_port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            fronts.push(FrontEnd {
                addr: SocketAddr::new(fip, port),
                transport: Transport::Tcp,
                target: PoolRef::V1 {
                    pool_id: pool.to_string(),
                },
            });
        }
        let mut monitors = Vec::new();
        for (pool, mid) in &self.associations {
            let Some(m) = self
                .objs
                .get(mid)
                .filter(|m| m.admin_up() && m.status() == "ACTIVE")
            else {
                continue;
            };
            let secs =
                |k: &str| Duration::from_secs(m.attrs.get(k).and_then(Value::as_u64).unwrap_or(1));
            let retries = m
                .attrs
                .get("max_retries")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let retries = u32::try_from(retries).unwrap_or(1).max(1);
            monitors.push((
                format!("{mid}/{pool}"),
                MonitorSpec {
                    kind: m.str("type").unwrap_or("TCP").to_string(),
                    delay: secs("delay"),
                    timeout: secs("timeout"),
                    rise: retries,
                    fall: retries,
                    http_method: m.str("http_method").unwrap_or("GET").to_string(),
                    url_path: m.str("url_path").unwrap_or("/").to_string(),
                    expected_codes: m.str("expected_codes").unwrap_or("200").to_string(),
                    domain_name: None,
                    pool: MonitorPool::V1(pool.clone()),
                },
            ));
        }
        (fronts, monitors)
    }

    /// Members of a pool that may take traffic.
    pub fn backends(&self, pool_id: &str) -> Vec<Backend> {
        if !self.objs.get(pool_id).is_some_and(V1Obj::admin_up) {
            return Vec::new();
        }
        self.all(V1Kind::Member)
            .into_iter()
            .filter(|m| m.str("pool_id") == Some(pool_id) && m.admin_up() && m.status() == "ACTIVE")
            .filter(|m| m.attrs.get("weight").and_then(Value::as_i64).unwrap_or(1) > 0)
            .filter_map(|m| {
                let ip: IpAddr = m.str("address")?.parse().ok()?;
                let port = u16::try_from(m.attrs.get("protocol_port")?.as_u64()?).ok()?;
                Some(Backend {
                    addr: SocketAddr::new(ip, port),
                    proxy: None,
                    insert_headers: Vec::new(),
                })
            })
            .collect()
    }

    pub fn probe_targets(&self, pool_id: &str) -> Vec<ProbeTarget> {
        self.all(V1Kind::Member)
            .into_iter()
            .filter(|m| m.str("pool_id") == Some(pool_id) && m.admin_up())
            .filter_map(|m| {
                let ip: IpAddr = m.str("address")?.parse().ok()?;
                let port = u16::try_from(m.attrs.get("protocol_port")?.as_u64()?).ok()?;
                Some(ProbeTarget {
                    member_id: m.id.clone(),
                    addr: SocketAddr::new(ip, port),
                })
            })
            .collect()
    }

    pub fn record_health(&mut self, verdicts: &[(String, Health)]) {
        for (m, h) in verdicts {
            if self.objs.contains_key(m) {
                self.health.insert(m.clone(), *h);
            }
        }
        self.refresh_members();
    }
}

fn may_see(auth: &AuthContext, o: &V1Obj) -> bool {
    auth.is_admin() || o.str("tenant_id") == Some(auth.project_id.as_str())
}

fn forbidden(kind: V1Kind, id: &str) -> ApiError {
    // Neutron hides other projects' objects behind a 404.
    kind.not_found(id)
}

/// After the provisioning delay, completes `ids` and tells the data plane.
fn schedule(shared: &Arc<Shared>, ids: Vec<String>) {
    let complete = |shared: &Arc<Shared>, ids: &[String]| {
        {
            let mut world = shared.world.lock();
            for port in world.lbaas_v1.finalize(ids) {
                let _ = world.neutron.delete_port(&port);
            }
        }
        crate::dataplane::sync(shared);
    };
    let delay = shared.config.draw_provisioning_delay();
    if delay.is_zero() {
        complete(shared, &ids);
        return;
    }
    let weak = Arc::downgrade(shared);
    let token = shared.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = tokio::time::sleep(delay) => {
                if let Some(shared) = weak.upgrade() {
                    complete(&shared, &ids);
                }
            }
        }
    });
}

fn project_of(auth: &AuthContext, attrs: &Map<String, Value>) -> Result<String, ApiError> {
    match attrs.get("tenant_id").and_then(Value::as_str) {
        Some(t) if t != auth.project_id && !auth.is_admin() => Err(ApiError::neutron(
            StatusCode::FORBIDDEN,
            "HTTPForbidden",
            "Specifying 'tenant_id' other than the authenticated tenant in request requires admin privileges",
        )),
        Some(t) => Ok(t.to_string()),
        None => Ok(auth.project_id.clone()),
    }
}

fn pending_conflict(o: &V1Obj) -> Result<(), ApiError> {
    if o.status().starts_with("PENDING_") {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "StateInvalid",
            format!(
                "Invalid state {} of loadbalancer resource {}",
                o.status(),
                o.id
            ),
        ));
    }
    Ok(())
}

type Res = Result<Response, ApiError>;

async fn list(kind: V1Kind, st: AppState, auth: AuthContext, params: Vec<(String, String)>) -> Res {
    let world = st.inner.world.lock();
    let fields: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "fields")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let items: Vec<Value> = world
        .lbaas_v1
        .all(kind)
        .into_iter()
        .filter(|o| may_see(&auth, o))
        .map(|o| world.lbaas_v1.render(o))
        .filter(|v| {
            params
                .iter()
                .filter(|(k, _)| k != "fields")
                .all(|(k, want)| match v.get(k) {
                    Some(Value::String(s)) => s == want,
                    Some(Value::Bool(b)) => {
                        want.eq_ignore_ascii_case(if *b { "true" } else { "false" })
                    }
                    Some(Value::Number(n)) => n.to_string() == *want,
                    _ => true,
                })
        })
        .map(|v| match v {
            Value::Object(o) if !fields.is_empty() => Value::Object(
                o.into_iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .collect(),
            ),
            other => other,
        })
        .collect();
    Ok(Json(json!({ kind.plural(): items })).into_response())
}

async fn show(kind: V1Kind, st: AppState, auth: AuthContext, id: String) -> Res {
    let world = st.inner.world.lock();
    let o = world.lbaas_v1.find(kind, &id)?;
    if !may_see(&auth, o) {
        return Err(forbidden(kind, &id));
    }
    Ok(Json(json!({ kind.singular(): world.lbaas_v1.render(o) })).into_response())
}

async fn create(kind: V1Kind, st: AppState, auth: AuthContext, body: Bytes) -> Res {
    let mut attrs = parse(kind, &body, false)?;
    let project = project_of(&auth, &attrs)?;
    let id = uuid::Uuid::new_v4().to_string();
    let rendered = {
        let mut world = st.inner.world.lock();
        let world = &mut *world;
        let used = world
            .lbaas_v1
            .objs
            .values()
            .filter(|o| o.kind == kind && o.str("tenant_id") == Some(project.as_str()))
            .count();
        if world.quotas.exceeded(&project, kind.quota_key(), used) {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "OverQuota",
                format!("Quota exceeded for resources: ['{}'].", kind.quota_key()),
            ));
        }
        match kind {
            V1Kind::Pool => {
                let subnet = attrs
                    .get("subnet_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if world.neutron.subnet(subnet).is_none() {
                    return Err(ApiError::neutron(
                        StatusCode::NOT_FOUND,
                        "SubnetNotFound",
                        format!("Subnet {subnet} could not be found."),
                    ));
                }
            }
            V1Kind::Member => {
                let pool_id = attrs
                    .get("pool_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let pool = world.lbaas_v1.find(V1Kind::Pool, &pool_id)?;
                if !may_see(&auth, pool) {
                    return Err(forbidden(V1Kind::Pool, &pool_id));
                }
                let address = attrs.get("address").cloned();
                let port = attrs.get("protocol_port").cloned();
                let clash = world.lbaas_v1.all(V1Kind::Member).into_iter().any(|m| {
                    m.str("pool_id") == Some(pool_id.as_str())
                        && m.attrs.get("address") == address.as_ref()
                        && m.attrs.get("protocol_port") == port.as_ref()
                });
                if clash {
                    return Err(ApiError::neutron(
                        StatusCode::CONFLICT,
                        "MemberExists",
                        format!(
                            "Member with address {} and port {} already present in pool {pool_id}",
                            address.as_ref().and_then(Value::as_str).unwrap_or_default(),
                            port.unwrap_or_default()
                        ),
                    ));
                }
            }
            V1Kind::Vip => {
                let pool_id = attrs
                    .get("pool_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let pool = world.lbaas_v1.find(V1Kind::Pool, &pool_id)?;
                if !may_see(&auth, pool) {
                    return Err(forbidden(V1Kind::Pool, &pool_id));
                }
                if pool.str("protocol") != attrs.get("protocol").and_then(Value::as_str) {
                    return Err(ApiError::neutron(
                        StatusCode::BAD_REQUEST,
                        "ProtocolMismatch",
                        format!(
                            "Protocol {} does not match pool protocol {}",
                            attrs
                                .get("protocol")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                            pool.str("protocol").unwrap_or_default()
                        ),
                    ));
                }
                if world
                    .lbaas_v1
                    .all(V1Kind::Vip)
                    .into_iter()
                    .any(|v| v.str("pool_id") == Some(pool_id.as_str()))
                {
                    return Err(ApiError::neutron(
                        StatusCode::CONFLICT,
                        "VipExists",
                        format!("Another Vip already exists for pool {pool_id}"),
                    ));
                }
                let subnet_id = attrs
                    .get("subnet_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let network_id = world
                    .neutron
                    .subnet(&subnet_id)
                    .map(|s| s.network_id.clone())
                    .ok_or_else(|| {
                        ApiError::neutron(
                            StatusCode::NOT_FOUND,
                            "SubnetNotFound",
                            format!("Subnet {subnet_id} could not be found."),
                        )
                    })?;
                let address = attrs
                    .get("address")
                    .and_then(Value::as_str)
                    .and_then(|a| a.parse().ok());
                let port = world.neutron.create_port(PortSpec {
                    network_id,
                    subnet_id: Some(subnet_id.clone()),
                    ip_address: address,
                    name: format!("vip-{id}"),
                    device_owner: "neutron:LOADBALANCER".to_string(),
                    device_id: id.clone(),
                    project_id: project.clone(),
                    admin_state_up: true,
                    ..Default::default()
                })?;
                let ip = port
                    .fixed_ips
                    .iter()
                    .find(|f| f.subnet_id == subnet_id)
                    .map(|f| f.ip_address.clone())
                    .unwrap_or_default();
                attrs.insert("address".into(), Value::from(ip));
                attrs.insert("port_id".into(), Value::from(port.id));
            }
            V1Kind::HealthMonitor => {
                let delay = attrs.get("delay").and_then(Value::as_i64).unwrap_or(0);
                let timeout = attrs.get("timeout").and_then(Value::as_i64).unwrap_or(0);
                if delay < timeout {
                    return Err(ApiError::neutron(
                        StatusCode::BAD_REQUEST,
                        "DelayOrTimeoutInvalid",
                        "Delay must be greater than or equal to timeout",
                    ));
                }
            }
        }
        attrs.insert("id".into(), Value::from(id.clone()));
        attrs.insert("tenant_id".into(), Value::from(project));
        attrs.insert("status".into(), Value::from("PENDING_CREATE"));
        attrs.insert("status_description".into(), Value::Null);
        world.lbaas_v1.next_seq += 1;
        let obj = V1Obj {
            kind,
            id: id.clone(),
            seq: world.lbaas_v1.next_seq,
            attrs,
        };
        let rendered = world.lbaas_v1.render(&obj);
        world.lbaas_v1.objs.insert(id.clone(), obj);
        rendered
    };
    schedule(&st.inner, vec![id]);
    Ok((
        StatusCode::CREATED,
        Json(json!({ kind.singular(): rendered })),
    )
        .into_response())
}

async fn update(kind: V1Kind, st: AppState, auth: AuthContext, id: String, body: Bytes) -> Res {
    let attrs = parse(kind, &body, true)?;
    let rendered = {
        let mut world = st.inner.world.lock();
        let o = world.lbaas_v1.find(kind, &id)?;
        if !may_see(&auth, o) {
            return Err(forbidden(kind, &id));
        }
        pending_conflict(o)?;
        if let Some(pool_id) = attrs.get("pool_id").and_then(Value::as_str) {
            world.lbaas_v1.find(V1Kind::Pool, pool_id)?;
        }
        let Some(o) = world.lbaas_v1.objs.get_mut(&id) else {
            return Err(kind.not_found(&id));
        };
        o.attrs.extend(attrs);
        o.attrs
            .insert("status".into(), Value::from("PENDING_UPDATE"));
        let o = o.clone();
        world.lbaas_v1.render(&o)
    };
    schedule(&st.inner, vec![id]);
    Ok(Json(json!({ kind.singular(): rendered })).into_response())
}

async fn remove(kind: V1Kind, st: AppState, auth: AuthContext, id: String) -> Res {
    let mut ids = vec![id.clone()];
    {
        let mut world = st.inner.world.lock();
        let o = world.lbaas_v1.find(kind, &id)?;
        if !may_see(&auth, o) {
            return Err(forbidden(kind, &id));
        }
        pending_conflict(o)?;
        if kind == V1Kind::Pool {
            if let Some(vip) = world
                .lbaas_v1
                .all(V1Kind::Vip)
                .into_iter()
                .find(|v| v.str("pool_id") == Some(id.as_str()))
            {
                return Err(ApiError::neutron(
                    StatusCode::CONFLICT,
                    "PoolInUse",
                    format!("Pool {id} is still in use by vip {}", vip.id),
                ));
            }
            // Members go with their pool.
            ids.extend(
                world
                    .lbaas_v1
                    .all(V1Kind::Member)
                    .into_iter()
                    .filter(|m| m.str("pool_id") == Some(id.as_str()))
                    .map(|m| m.id.clone()),
            );
        }
        if kind == V1Kind::HealthMonitor
            && world.lbaas_v1.associations.iter().any(|(_, m)| *m == id)
        {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "HealthMonitorInUse",
                format!("Health monitor {id} still associated with pools"),
            ));
        }
        for i in &ids {
            if let Some(o) = world.lbaas_v1.objs.get_mut(i) {
                o.attrs
                    .insert("status".into(), Value::from("PENDING_DELETE"));
            }
        }
    }
    schedule(&st.inner, ids);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn associate(st: AppState, auth: AuthContext, pool_id: String, body: Bytes) -> Res {
    let body: Value = serde_json::from_slice(&body).map_err(|_| bad("Malformed request body"))?;
    let mid = body
        .pointer("/health_monitor/id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Failed to parse request. Required attribute 'id' not specified"))?
        .to_string();
    {
        let mut world = st.inner.world.lock();
        let pool = world.lbaas_v1.find(V1Kind::Pool, &pool_id)?;
        if !may_see(&auth, pool) {
            return Err(forbidden(V1Kind::Pool, &pool_id));
        }
        world.lbaas_v1.find(V1Kind::HealthMonitor, &mid)?;
        if world
            .lbaas_v1
            .associations
            .iter()
            .any(|(p, m)| *p == pool_id && *m == mid)
        {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "PoolMonitorAssociationExists",
                format!("health_monitor {mid} is already associated with pool {pool_id}"),
            ));
        }
        world.lbaas_v1.associations.push((pool_id, mid));
        world.lbaas_v1.refresh_members();
    }
    crate::dataplane::sync(&st.inner);
    Ok((StatusCode::CREATED, Json(json!({"health_monitor": {}}))).into_response())
}

async fn disassociate(st: AppState, auth: AuthContext, pool_id: String, mid: String) -> Res {
    {
        let mut world = st.inner.world.lock();
        let pool = world.lbaas_v1.find(V1Kind::Pool, &pool_id)?;
        if !may_see(&auth, pool) {
            return Err(forbidden(V1Kind::Pool, &pool_id));
        }
        let before = world.lbaas_v1.associations.len();
        world
            .lbaas_v1
            .associations
            .retain(|(p, m)| !(*p == pool_id && *m == mid));
        if world.lbaas_v1.associations.len() == before {
            return Err(ApiError::neutron(
                StatusCode::NOT_FOUND,
                "PoolMonitorAssociationNotFound",
                format!("Monitor {mid} is not associated with Pool {pool_id}"),
            ));
        }
        world.lbaas_v1.refresh_members();
    }
    crate::dataplane::sync(&st.inner);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn respond(r: Res) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

type S = State<AppState>;
type A = Extension<AuthContext>;
type Q = Query<Vec<(String, String)>>;
type P = Path<String>;

/// The HTTP routes, to be nested under `/v2.0/lb`.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for kind in [
        V1Kind::Pool,
        V1Kind::Vip,
        V1Kind::Member,
        V1Kind::HealthMonitor,
    ] {
        r = r
            .route(
                &format!("/{}", kind.plural()),
                get(
                    move |State(s): S, Extension(a): A, Query(q): Q| async move {
                        respond(list(kind, s, a, q).await)
                    },
                )
                .post(move |State(s): S, Extension(a): A, b: Bytes| async move {
                    respond(create(kind, s, a, b).await)
                }),
            )
            .route(
                &format!("/{}/{{id}}", kind.plural()),
                get(
                    move |State(s): S, Extension(a): A, Path(id): P| async move {
                        respond(show(kind, s, a, id).await)
                    },
                )
                .put(
                    move |State(s): S, Extension(a): A, Path(id): P, b: Bytes| async move {
                        respond(update(kind, s, a, id, b).await)
                    },
                )
                .delete(
                    move |State(s): S, Extension(a): A, Path(id): P| async move {
                        respond(remove(kind, s, a, id).await)
                    },
                ),
            );
    }
    r.route(
        "/pools/{id}/health_monitors",
        post(
            |State(s): S, Extension(a): A, Path(id): P, b: Bytes| async move {
                respond(associate(s, a, id, b).await)
            },
        ),
    )
    .route(
        "/pools/{id}/health_monitors/{monitor_id}",
        delete(
            |State(s): S, Extension(a): A, Path((p, m)): Path<(String, String)>| async move {
                respond(disassociate(s, a, p, m).await)
            },
        ),
    )
}
