//! HTTP handlers of the load-balancer API, shared by the Octavia and Neutron LBaaS v2
//! flavors: body parsing, policy (own project unless admin), Octavia's semantic validation,
//! and the hand-off to the provisioning lifecycle. It must not know how traffic flows.

use std::collections::HashSet;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::error::LbError;
use super::model::{Obj, OctaviaState, PENDING_DELETE, PENDING_UPDATE};
use super::net::{self, VipRequest};
use super::query::ListQuery;
use super::schema::{self, invalid};
use super::{catalog, lifecycle, Flavor, Kind};
use crate::state::{AppState, AuthContext, Shared, World};

/// Newest API minor version the sandbox implements (2.27).
pub const MAX_MINOR: u32 = 30;

/// `"2.11"` / `"v2.11"` → 11.
pub fn parse_minor(version: &str) -> Option<u32> {
    let v = version.trim().trim_start_matches('v');
    let (major, minor) = v.split_once('.')?;
    (major == "2").then(|| minor.parse().ok()).flatten()
}

/// The API minor version this sandbox advertises (`--octavia-api-version`, capped).
pub fn configured_minor(shared: &Shared) -> u32 {
    shared
        .config
        .octavia_api_version
        .as_deref()
        .and_then(parse_minor)
        .map_or(MAX_MINOR, |m| m.min(MAX_MINOR))
}

/// Everything a handler needs about the call.
pub struct Call {
    pub st: AppState,
    pub auth: AuthContext,
    pub flavor: Flavor,
    pub minor: u32,
    pub path: String,
}

impl Call {
    pub fn new(st: AppState, auth: AuthContext, flavor: Flavor, uri: &OriginalUri) -> Self {
        let minor = configured_minor(&st.inner);
        Self {
            st,
            auth,
            flavor,
            minor,
            path: uri.0.path().to_string(),
        }
    }

    fn neutron(&self) -> bool {
        self.flavor == Flavor::NeutronV2
    }

    /// The collection URL for pagination links.
    fn base_url(&self) -> String {
        let endpoints = &self.st.inner.endpoints;
        let root = match self.flavor {
            Flavor::Octavia => &endpoints.octavia,
            Flavor::NeutronV2 => &endpoints.neutron,
        };
        format!("{}{}", root.trim_end_matches('/'), self.path)
    }

    fn may_see(&self, o: &Obj) -> bool {
        self.auth.is_admin() || o.project() == self.auth.project_id
    }

    fn check_access(&self, o: &Obj) -> Result<(), LbError> {
        if self.may_see(o) {
            Ok(())
        } else {
            Err(LbError::forbidden())
        }
    }

    /// The project a new object belongs to: the caller's, or (admins only) the body's.
    fn project(&self, extra: &Map<String, Value>) -> Result<String, LbError> {
        let asked = extra
            .get("project_id")
            .or_else(|| extra.get("tenant_id"))
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        match asked {
            Some(p) if p != self.auth.project_id && !self.auth.is_admin() => {
                Err(LbError::forbidden())
            }
            Some(p) => Ok(p.to_string()),
            None => Ok(self.auth.project_id.clone()),
        }
    }

    fn quota_check(
        &self,
        world: &World,
        kind: Kind,
        project: &str,
        adding: usize,
    ) -> Result<(), LbError> {
        let key = kind.quota_key(self.flavor);
        let used = world.octavia.count(kind, project) + adding.saturating_sub(1);
        if world.quotas.exceeded(project, key, used) {
            return Err(LbError::quota(kind.display()));
        }
        Ok(())
    }

    fn render(&self, world: &World, o: &Obj) -> Value {
        world.octavia.render(o, self.minor, self.neutron())
    }
}

/// Octavia's JSON body: `{"<root>": {...}}` and nothing else.
pub fn parse_body(bytes: &Bytes, kind: Kind) -> Result<Value, LbError> {
    let root = kind.singular();
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|_| LbError::bad_request("Request is not in valid JSON format"))?;
    let Some(obj) = body.as_object() else {
        return Err(invalid(root, &body, "Value should be a dictionary"));
    };
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| *k != root)
        .collect();
    if !unknown.is_empty() {
        return Err(LbError::bad_request(format!(
            "Unknown attribute for argument {}: {}",
            kind.argument(),
            unknown.join(", ")
        )));
    }
    obj.get(root)
        .cloned()
        .ok_or_else(|| invalid(root, &Value::from("Unset"), "Mandatory field missing."))
}

fn respond(flavor: Flavor, result: Result<(StatusCode, Value), LbError>) -> Response {
    match result {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((StatusCode::ACCEPTED, Value::Null)) => StatusCode::ACCEPTED.into_response(),
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.render(flavor),
    }
}

// ---------------------------------------------------------------------------------------
// Generic read handlers.

type Params = Query<Vec<(String, String)>>;

pub async fn list(
    kind: Kind,
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    respond(flavor, list_in(&call, kind, None, &params))
}

fn list_in(
    call: &Call,
    kind: Kind,
    pool: Option<&str>,
    params: &[(String, String)],
) -> Result<(StatusCode, Value), LbError> {
    let q = ListQuery::parse(params)?;
    // Listeners and pools render their load balancer only as `loadbalancers: [{id}]`, so
    // the generic attribute filter cannot see `loadbalancer_id`; Octavia maps it to the
    // owning load balancer, and OCCM lists a load balancer's listeners and pools with it.
    let lb_filter = match kind {
        Kind::Listener | Kind::Pool => q.filter("loadbalancer_id"),
        _ => None,
    };
    let items: Vec<Value> = {
        let world = call.st.inner.world.lock();
        if let Some(pool_id) = pool {
            let p = world.octavia.find(Kind::Pool, pool_id)?;
            call.check_access(p)?;
        }
        world
            .octavia
            .all(kind)
            .into_iter()
            .filter(|o| call.may_see(o))
            .filter(|o| pool.is_none_or(|p| o.pool_id.as_deref() == Some(p)))
            .filter(|o| lb_filter.is_none_or(|lb| o.lb_id == lb))
            .map(|o| call.render(&world, o))
            .collect()
    };
    let (page, links) = q.apply(items, &call.base_url())?;
    let plural = kind.plural();
    let mut body = Map::new();
    body.insert(plural.to_string(), Value::Array(page));
    if call.flavor == Flavor::Octavia || !links.is_empty() {
        body.insert(format!("{plural}_links"), Value::Array(links));
    }
    Ok((StatusCode::OK, Value::Object(body)))
}

pub async fn members_list(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(pool_id): Path<String>,
    Query(params): Params,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    respond(
        flavor,
        list_in(&call, Kind::Member, Some(&pool_id), &params),
    )
}

pub async fn show(
    kind: Kind,
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    respond(flavor, show_in(&call, kind, &id, None, &params))
}

pub async fn member_show(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path((pool_id, id)): Path<(String, String)>,
    Query(params): Params,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    respond(
        flavor,
        show_in(&call, Kind::Member, &id, Some(&pool_id), &params),
    )
}

fn show_in(
    call: &Call,
    kind: Kind,
    id: &str,
    pool: Option<&str>,
    params: &[(String, String)],
) -> Result<(StatusCode, Value), LbError> {
    let q = ListQuery::parse(params)?;
    let world = call.st.inner.world.lock();
    if let Some(pool_id) = pool {
        world.octavia.find(Kind::Pool, pool_id)?;
    }
    let o = world.octavia.find(kind, id)?;
    if pool.is_some_and(|p| o.pool_id.as_deref() != Some(p)) {
        return Err(LbError::not_found(kind.display(), id));
    }
    call.check_access(o)?;
    let body = q.trim(call.render(&world, o));
    Ok((StatusCode::OK, json!({ kind.singular(): body })))
}

pub async fn lb_status(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = (|| {
        let world = call.st.inner.world.lock();
        let lb = world.octavia.find(Kind::LoadBalancer, &id)?;
        call.check_access(lb)?;
        Ok((StatusCode::OK, world.octavia.status_tree(lb)))
    })();
    respond(flavor, result)
}

pub async fn stats(
    kind: Kind,
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = (|| {
        let world = call.st.inner.world.lock();
        let o = world.octavia.find(kind, &id)?;
        call.check_access(o)?;
        Ok((
            StatusCode::OK,
            json!({"stats": world.octavia.stats_of(o).to_json()}),
        ))
    })();
    respond(flavor, result)
}

// ---------------------------------------------------------------------------------------
// Semantic validation shared by single and fully-populated creates.

fn provider_of(lb: &Obj) -> String {
    lb.str("provider").unwrap_or("amphora").to_string()
}

fn l4(protocol: &str) -> &'static str {
    match protocol {
        "UDP" => "UDP",
        "SCTP" => "SCTP",
        _ => "TCP",
    }
}

/// Another listener on the same load balancer already holds the port (TCP-based protocols
/// share one port space; UDP and SCTP have their own).
fn check_port_clash(taken: &[(String, i64)], protocol: &str, port: i64) -> Result<(), LbError> {
    // The message names the protocol of the listener already there.
    if let Some((existing, _)) = taken
        .iter()
        .find(|(p, n)| *n == port && l4(p) == l4(protocol))
    {
        return Err(LbError::conflict(format!(
            "Another Listener on this Load Balancer is already using protocol {existing} and protocol_port {port}"
        )));
    }
    Ok(())
}

fn check_listener(
    provider: &str,
    vip: Option<&str>,
    attrs: &Map<String, Value>,
) -> Result<(), LbError> {
    let protocol = attrs
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if provider == "ovn" && !matches!(protocol, "TCP" | "UDP" | "SCTP") {
        return Err(LbError::provider_unsupported(
            provider,
            format!("OVN provider does not support {protocol} protocol"),
        ));
    }
    if protocol == "TERMINATED_HTTPS"
        && attrs
            .get("default_tls_container_ref")
            .is_none_or(Value::is_null)
        && attrs
            .get("sni_container_refs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        return Err(LbError::validation(
            "An SNI or default certificate container reference must be provided for TERMINATED_HTTPS listeners.",
        ));
    }
    check_cidrs(vip, attrs)?;
    Ok(())
}

fn check_cidrs(vip: Option<&str>, attrs: &Map<String, Value>) -> Result<(), LbError> {
    let Some(cidrs) = attrs.get("allowed_cidrs").and_then(Value::as_array) else {
        return Ok(());
    };
    let vip: Option<IpAddr> = vip.and_then(|v| v.parse().ok());
    for c in cidrs.iter().filter_map(Value::as_str) {
        if let (Ok(net), Some(vip)) = (c.parse::<ipnet::IpNet>(), vip) {
            if net.addr().is_ipv4() != vip.is_ipv4() {
                return Err(LbError::validation(format!(
                    "CIDR {c} IP version incompatible with VIP {vip} IP version."
                )));
            }
        }
    }
    Ok(())
}

/// Which pool protocols a listener protocol can forward to (Octavia's
/// VALID_LISTENER_POOL_PROTOCOL_MAP).
fn pool_protocol_ok(listener: &str, pool: &str) -> bool {
    let ok: &[&str] = match listener {
        "TCP" => &["HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"],
        "HTTP" | "TERMINATED_HTTPS" => &["HTTP", "PROXY", "PROXYV2"],
        "HTTPS" => &["HTTPS", "PROXY", "PROXYV2", "TCP"],
        "UDP" => &["UDP"],
        "SCTP" => &["SCTP"],
        _ => &[],
    };
    ok.contains(&pool)
}

fn check_pool_for_listener(listener_protocol: &str, pool_protocol: &str) -> Result<(), LbError> {
    if !pool_protocol_ok(listener_protocol, pool_protocol) {
        return Err(LbError::validation(format!(
            "The pool protocol '{pool_protocol}' is invalid while the listener protocol is '{listener_protocol}'."
        )));
    }
    Ok(())
}

fn check_pool(
    provider: &str,
    attrs: &Map<String, Value>,
    existing_protocol: Option<&str>,
) -> Result<(), LbError> {
    let protocol = attrs
        .get("protocol")
        .and_then(Value::as_str)
        .or(existing_protocol)
        .unwrap_or_default();
    if let Some(alg) = attrs.get("lb_algorithm").and_then(Value::as_str) {
        if provider == "ovn" && alg != "SOURCE_IP_PORT" {
            return Err(LbError::provider_unsupported(
                provider,
                format!("OVN provider does not support {alg} algorithm"),
            ));
        }
    }
    if attrs.contains_key("protocol")
        && provider == "ovn"
        && !matches!(protocol, "TCP" | "UDP" | "SCTP")
    {
        return Err(LbError::provider_unsupported(
            provider,
            format!("OVN provider does not support {protocol} protocol"),
        ));
    }
    if let Some(sp) = attrs.get("session_persistence").and_then(Value::as_object) {
        let kind = sp.get("type").and_then(Value::as_str).unwrap_or_default();
        if matches!(protocol, "UDP" | "SCTP") && kind != "SOURCE_IP" {
            return Err(LbError::validation(format!(
                "Session persistence of type {kind} is not supported for {protocol} protocol pools."
            )));
        }
    }
    Ok(())
}

/// The amphora driver (also under its alias `octavia`).
fn is_amphora(provider: &str) -> bool {
    matches!(provider, "amphora" | "octavia" | "amphorav2")
}

/// What the amphora driver refuses in a single pool create or update (its
/// `_validate_pool_algorithm`): haproxy has no SOURCE_IP_PORT. A fully-populated create never
/// reaches that check (the driver's `loadbalancer_create` validates nothing), so the real
/// API accepts the algorithm there, found against Octavia 19.
fn check_amphora_pool(
    call: &Call,
    provider: &str,
    attrs: &Map<String, Value>,
) -> Result<(), LbError> {
    if call.flavor != Flavor::Octavia || !is_amphora(provider) {
        return Ok(());
    }
    match attrs.get("lb_algorithm").and_then(Value::as_str) {
        Some(alg) if !matches!(alg, "ROUND_ROBIN" | "SOURCE_IP" | "LEAST_CONNECTIONS") => {
            Err(LbError::provider_unsupported(
                provider,
                format!("Amphora provider does not support {alg} algorithm."),
            ))
        }
        _ => Ok(()),
    }
}

/// The amphora driver's `_validate_members`: a UDP or SCTP pool (LVS inside the amphora)
/// cannot forward from a VIP of one family to a member of the other.
fn check_amphora_member_family(
    call: &Call,
    provider: &str,
    lb: &Obj,
    pool_protocol: &str,
    addresses: &[&str],
) -> Result<(), LbError> {
    if call.flavor != Flavor::Octavia
        || !is_amphora(provider)
        || !matches!(pool_protocol, "UDP" | "SCTP")
    {
        return Ok(());
    }
    let mut vip_families: Vec<bool> = lb
        .str("vip_address")
        .and_then(|v| v.parse::<IpAddr>().ok())
        .map(|ip| ip.is_ipv6())
        .into_iter()
        .collect();
    if let Some(extra) = lb.attrs.get("additional_vips").and_then(Value::as_array) {
        vip_families.extend(
            extra
                .iter()
                .filter_map(|v| v.get("ip_address").and_then(Value::as_str))
                .filter_map(|v| v.parse::<IpAddr>().ok())
                .map(|ip| ip.is_ipv6()),
        );
    }
    let mixed = addresses
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .any(|ip| !vip_families.contains(&ip.is_ipv6()));
    if mixed {
        return Err(LbError::provider_unsupported(
            provider,
            format!("This provider doesn't support mixing IPv4 and IPv6 addresses for its VIP and members in {pool_protocol} load balancers."),
        ));
    }
    Ok(())
}

/// Type/pool compatibility and the HTTP defaults Octavia fills in.
fn check_monitor(
    provider: &str,
    pool_protocol: &str,
    attrs: &mut Map<String, Value>,
) -> Result<(), LbError> {
    let kind = attrs
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let l4_only = matches!(kind.as_str(), "UDP-CONNECT" | "SCTP");
    if l4_only && !matches!(pool_protocol, "UDP" | "SCTP") {
        return Err(LbError::validation(format!(
            "The {kind} type is only supported for pools of type UDP/SCTP."
        )));
    }
    if matches!(pool_protocol, "UDP" | "SCTP")
        && !matches!(kind.as_str(), "UDP-CONNECT" | "SCTP" | "HTTP" | "TCP")
    {
        return Err(LbError::validation(format!(
            "The associated pool protocol is {pool_protocol}, so only a UDP-CONNECT, SCTP, HTTP, TCP health monitor is supported."
        )));
    }
    if provider == "ovn" && !matches!(kind.as_str(), "TCP" | "UDP-CONNECT" | "SCTP") {
        return Err(LbError::provider_unsupported(
            provider,
            format!("OVN provider does not support {kind} health monitor type. Supported types: TCP, UDP-CONNECT, SCTP"),
        ));
    }
    let http = matches!(kind.as_str(), "HTTP" | "HTTPS");
    if http {
        for (key, def) in [
            ("http_method", "GET"),
            ("url_path", "/"),
            ("expected_codes", "200"),
        ] {
            if attrs.get(key).is_none_or(Value::is_null) {
                attrs.insert(key.into(), Value::from(def));
            }
        }
        if let Some(path) = attrs.get("url_path").and_then(Value::as_str) {
            if !path.starts_with('/') {
                return Err(LbError::bad_request(format!("Not a valid URLPath: {path}")));
            }
        }
        if let Some(codes) = attrs.get("expected_codes").and_then(Value::as_str) {
            if super::codes::parse(codes).is_none() {
                return Err(invalid(
                    "expected_codes",
                    &Value::from(codes),
                    "Value should match the pattern ^(\\d{3}(\\s*,\\s*\\d{3})*)$|^(\\d{3}-\\d{3})$",
                ));
            }
        }
    } else {
        for key in ["http_method", "url_path", "expected_codes"] {
            if attrs.get(key).is_some_and(|v| !v.is_null()) {
                return Err(LbError::bad_request(format!(
                    "{key} is not a valid option for health monitors of type {kind}"
                )));
            }
        }
    }
    Ok(())
}

fn str_of<'a>(attrs: &'a Map<String, Value>, key: &str) -> &'a str {
    attrs.get(key).and_then(Value::as_str).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Creates.

/// An object validated and ready to be stored.
struct NewObj {
    kind: Kind,
    id: String,
    lb_id: String,
    pool_id: Option<String>,
    attrs: Map<String, Value>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Plans a pool (with its members and monitor) from a fully-populated body.
fn plan_pool(
    call: &Call,
    body: &Value,
    lb_id: &str,
    provider: &str,
    listener_protocol: Option<&str>,
    out: &mut Vec<NewObj>,
) -> Result<String, LbError> {
    let parsed = schema::parse(Kind::Pool, body, false, call.minor)?;
    // Octavia refuses a graph with an unnamed pool (found against the real API).
    let unnamed = parsed
        .attrs
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if call.flavor == Flavor::Octavia && unnamed {
        return Err(LbError::validation(
            "Pools must be named when creating a fully populated loadbalancer.",
        ));
    }
    let protocol = str_of(&parsed.attrs, "protocol").to_string();
    if let Some(lp) = listener_protocol {
        check_pool_for_listener(lp, &protocol)?;
    }
    check_pool(provider, &parsed.attrs, None)?;
    let pool_id = new_id();
    out.push(NewObj {
        kind: Kind::Pool,
        id: pool_id.clone(),
        lb_id: lb_id.into(),
        pool_id: None,
        attrs: parsed.attrs,
    });
    let mut seen = HashSet::new();
    if let Some(members) = parsed.extra.get("members").and_then(Value::as_array) {
        for m in members {
            let pm = schema::parse(Kind::Member, m, false, call.minor)?;
            let key = (
                str_of(&pm.attrs, "address").to_string(),
                pm.attrs.get("protocol_port").cloned(),
            );
            if !seen.insert(key.clone()) {
                return Err(LbError::conflict(format!(
                    "Another member on this pool is already using ip {} on protocol_port {}",
                    key.0,
                    key.1.unwrap_or_default()
                )));
            }
            out.push(NewObj {
                kind: Kind::Member,
                id: new_id(),
                lb_id: lb_id.into(),
                pool_id: Some(pool_id.clone()),
                attrs: pm.attrs,
            });
        }
    }
    if let Some(hm) = parsed.extra.get("healthmonitor").filter(|v| !v.is_null()) {
        let mut ph = schema::parse(Kind::HealthMonitor, hm, false, call.minor)?;
        check_monitor(provider, &protocol, &mut ph.attrs)?;
        out.push(NewObj {
            kind: Kind::HealthMonitor,
            id: new_id(),
            lb_id: lb_id.into(),
            pool_id: Some(pool_id.clone()),
            attrs: ph.attrs,
        });
    }
    Ok(pool_id)
}

fn commit(world: &mut World, project: &str, mut objs: Vec<NewObj>) {
    // Members last, as Octavia's graph create does: a member's initial operating_status
    // depends on whether its pool has a monitor.
    objs.sort_by_key(|n| n.kind == Kind::Member);
    for n in objs {
        world
            .octavia
            .insert(n.kind, n.id, n.lb_id, n.pool_id, project, n.attrs);
    }
}

fn check_quotas(call: &Call, world: &World, project: &str, objs: &[NewObj]) -> Result<(), LbError> {
    for kind in [
        Kind::LoadBalancer,
        Kind::Listener,
        Kind::Pool,
        Kind::HealthMonitor,
        Kind::Member,
    ] {
        let n = objs.iter().filter(|o| o.kind == kind).count();
        if n > 0 {
            call.quota_check(world, kind, project, n)?;
        }
    }
    Ok(())
}

fn provider_name(given: Option<&str>) -> Result<String, LbError> {
    match given {
        None => Ok("amphora".into()),
        Some(p) if catalog::PROVIDERS.iter().any(|(n, _)| *n == p) => Ok(p.to_string()),
        Some(p) => Err(LbError::bad_request(format!(
            "Provider '{p}' is not enabled."
        ))),
    }
}

pub async fn lb_create(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = lb_create_in(&call, &body);
    if let Ok((_, v)) = &result {
        if let Some(id) = v.pointer("/loadbalancer/id").and_then(Value::as_str) {
            lifecycle::schedule(&call.st.inner, id.to_string());
        }
    }
    respond(flavor, result)
}

fn lb_create_in(call: &Call, bytes: &Bytes) -> Result<(StatusCode, Value), LbError> {
    let body = parse_body(bytes, Kind::LoadBalancer)?;
    let parsed = schema::parse(Kind::LoadBalancer, &body, false, call.minor)?;
    let project = call.project(&parsed.extra)?;
    let mut attrs = parsed.attrs;
    let flavor_provider = match attrs.get("flavor_id").and_then(Value::as_str) {
        Some(fid) => Some(
            catalog::flavor(fid)
                .map(|f| f.provider)
                .ok_or_else(|| LbError::validation("Invalid flavor_id."))?,
        ),
        None => None,
    };
    let given_provider = attrs
        .get("provider")
        .and_then(Value::as_str)
        .map(str::to_string);
    let provider = match (given_provider.as_deref(), flavor_provider) {
        (Some(p), Some(fp)) if p != fp => {
            return Err(LbError::bad_request(format!(
                "Flavor '{}' is not compatible with provider '{p}'",
                str_of(&attrs, "flavor_id")
            )))
        }
        (None, Some(fp)) => fp.to_string(),
        (given, _) => provider_name(given)?,
    };
    attrs.insert("provider".into(), Value::from(provider.clone()));
    if let Some(az) = attrs.get("availability_zone").and_then(Value::as_str) {
        if catalog::availability_zone(az).is_none() {
            return Err(LbError::validation("Invalid availability zone."));
        }
    }
    let vip_req = VipRequest {
        port_id: attrs
            .get("vip_port_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        network_id: attrs
            .get("vip_network_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        subnet_id: attrs
            .get("vip_subnet_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        address: attrs
            .get("vip_address")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
    };
    let lb_id = new_id();
    let mut plan = vec![];
    // The graph: listeners (each with an optional default pool) and top-level pools that
    // listeners may reference by name.
    let mut named_pools: Vec<(String, String, String)> = Vec::new(); // (name, id, protocol)
    if let Some(pools) = parsed.extra.get("pools").and_then(Value::as_array) {
        for p in pools {
            let id = plan_pool(call, p, &lb_id, &provider, None, &mut plan)?;
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            named_pools.push((name, id, protocol));
        }
    }
    let mut taken: Vec<(String, i64)> = Vec::new();
    let mut used_pools: HashSet<String> = HashSet::new();
    if let Some(listeners) = parsed.extra.get("listeners").and_then(Value::as_array) {
        for l in listeners {
            let pl = schema::parse(Kind::Listener, l, false, call.minor)?;
            let mut lattrs = pl.attrs;
            let protocol = str_of(&lattrs, "protocol").to_string();
            let port = lattrs
                .get("protocol_port")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            check_port_clash(&taken, &protocol, port)?;
            taken.push((protocol.clone(), port));
            check_listener(
                &provider,
                vip_req.address.map(|a| a.to_string()).as_deref(),
                &lattrs,
            )?;
            if let Some(dp) = pl.extra.get("default_pool").filter(|v| !v.is_null()) {
                let by_name = dp
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .and_then(|o| o.get("name"))
                    .and_then(Value::as_str);
                let pool_id =
                    match by_name.and_then(|n| named_pools.iter().find(|(pn, _, _)| pn == n)) {
                        Some((_, id, pproto)) => {
                            check_pool_for_listener(&protocol, pproto)?;
                            id.clone()
                        }
                        None => plan_pool(call, dp, &lb_id, &provider, Some(&protocol), &mut plan)?,
                    };
                if !used_pools.insert(pool_id.clone()) {
                    return Err(LbError::conflict(
                        "This listener already has a default pool",
                    ));
                }
                lattrs.insert("default_pool_id".into(), Value::from(pool_id));
            }
            plan.push(NewObj {
                kind: Kind::Listener,
                id: new_id(),
                lb_id: lb_id.clone(),
                pool_id: None,
                attrs: lattrs,
            });
        }
    }
    let mut world = call.st.inner.world.lock();
    call.quota_check(&world, Kind::LoadBalancer, &project, 1)?;
    check_quotas(call, &world, &project, &plan)?;
    let vip = net::allocate_vip(&mut world.neutron, &vip_req, &lb_id, &project)?;
    attrs.insert("vip_port_id".into(), Value::from(vip.port_id.clone()));
    attrs.insert("vip_address".into(), Value::from(vip.address.clone()));
    attrs.insert("vip_subnet_id".into(), Value::from(vip.subnet_id.clone()));
    attrs.insert("vip_network_id".into(), Value::from(vip.network_id.clone()));
    // allowed_cidrs on graph listeners must match the VIP family now that it is known.
    for n in plan.iter().filter(|n| n.kind == Kind::Listener) {
        check_cidrs(Some(&vip.address), &n.attrs)?;
    }
    world.octavia.insert(
        Kind::LoadBalancer,
        lb_id.clone(),
        lb_id.clone(),
        None,
        &project,
        attrs,
    );
    if let Some(lb) = world.octavia.get_mut(&lb_id) {
        lb.owns_vip_port = vip.owned;
    }
    commit(&mut world, &project, plan);
    let lb = world.octavia.find(Kind::LoadBalancer, &lb_id)?;
    let mut rendered = call.render(&world, lb);
    // The create response of a fully-populated load balancer shows the full graph.
    if let Some(obj) = rendered.as_object_mut() {
        // Octavia's *FullResponse types drop the back-references (`loadbalancers`, a
        // monitor's `pools`) and replace a pool's `healthmonitor_id` by the object itself.
        let drop_keys = |mut v: Value, keys: &[&str]| {
            if let Some(o) = v.as_object_mut() {
                for k in keys {
                    o.remove(*k);
                }
            }
            v
        };
        let listeners: Vec<Value> = world
            .octavia
            .listeners_of(&lb_id)
            .into_iter()
            .map(|l| drop_keys(call.render(&world, l), &["loadbalancers"]))
            .collect();
        let pools: Vec<Value> = world
            .octavia
            .pools_of(&lb_id)
            .into_iter()
            .map(|p| {
                let mut v = drop_keys(
                    call.render(&world, p),
                    &["loadbalancers", "healthmonitor_id"],
                );
                if let Some(o) = v.as_object_mut() {
                    let members: Vec<Value> = world
                        .octavia
                        .members_of(&p.id)
                        .into_iter()
                        .map(|m| call.render(&world, m))
                        .collect();
                    o.insert("members".into(), Value::Array(members));
                    let hm = world
                        .octavia
                        .monitor_of(&p.id)
                        .map(|h| drop_keys(call.render(&world, h), &["pools"]));
                    o.insert("healthmonitor".into(), hm.unwrap_or(Value::Null));
                }
                v
            })
            .collect();
        if !listeners.is_empty() || !pools.is_empty() {
            obj.insert("listeners".into(), Value::Array(listeners));
            obj.insert("pools".into(), Value::Array(pools));
        }
    }
    Ok((StatusCode::CREATED, json!({ "loadbalancer": rendered })))
}

/// Single creates of children: returns (response, lb to schedule).
pub async fn child_create(
    kind: Kind,
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = child_create_in(&call, kind, None, &body);
    finish(&call, result)
}

pub async fn member_create(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(pool_id): Path<String>,
    body: Bytes,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = child_create_in(&call, Kind::Member, Some(&pool_id), &body);
    finish(&call, result)
}

fn finish(call: &Call, result: Result<(StatusCode, Value, String), LbError>) -> Response {
    match result {
        Ok((status, body, lb_id)) => {
            lifecycle::schedule(&call.st.inner, lb_id);
            respond(call.flavor, Ok((status, body)))
        }
        Err(e) => e.render(call.flavor),
    }
}

/// The parent chain of a new child: its load balancer (checked mutable) and what to mark
/// PENDING_UPDATE besides it.
fn child_create_in(
    call: &Call,
    kind: Kind,
    path_pool: Option<&str>,
    bytes: &Bytes,
) -> Result<(StatusCode, Value, String), LbError> {
    let body = parse_body(bytes, kind)?;
    let parsed = schema::parse(kind, &body, false, call.minor)?;
    let project = call.project(&parsed.extra)?;
    let mut attrs = parsed.attrs;
    let mut world = call.st.inner.world.lock();
    let oct = &world.octavia;
    let ref_id = |key: &str| {
        parsed
            .extra
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let missing = |key: &str| invalid(key, &Value::from("Unset"), "Mandatory field missing.");
    let (lb_id, pool_id, parents): (String, Option<String>, Vec<String>) = match kind {
        Kind::Listener => {
            let lb_id = ref_id("loadbalancer_id").ok_or_else(|| missing("loadbalancer_id"))?;
            let lb = oct
                .find(Kind::LoadBalancer, &lb_id)
                .map_err(|_| LbError::not_found("Load Balancer", &lb_id))?;
            call.check_access(lb)?;
            oct.check_child_mutable(&lb_id)?;
            let provider = provider_of(lb);
            check_listener(&provider, lb.str("vip_address"), &attrs)?;
            let taken: Vec<(String, i64)> = oct
                .listeners_of(&lb_id)
                .into_iter()
                .map(|l| {
                    (
                        l.str("protocol").unwrap_or_default().to_string(),
                        l.attrs
                            .get("protocol_port")
                            .and_then(Value::as_i64)
                            .unwrap_or(0),
                    )
                })
                .collect();
            let protocol = str_of(&attrs, "protocol").to_string();
            let port = attrs
                .get("protocol_port")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            check_port_clash(&taken, &protocol, port)?;
            if let Some(pid) = attrs.get("default_pool_id").and_then(Value::as_str) {
                check_default_pool(oct, &lb_id, None, pid, &protocol)?;
            }
            (lb_id, None, vec![])
        }
        Kind::Pool => {
            let listener_id = ref_id("listener_id");
            let (lb_id, listener) = match (&listener_id, ref_id("loadbalancer_id")) {
                (Some(l), lb) => {
                    let listener = oct
                        .find(Kind::Listener, l)
                        .map_err(|_| LbError::not_found("Listener", l))?;
                    if lb.as_deref().is_some_and(|lb| lb != listener.lb_id) {
                        return Err(LbError::validation(
                            "The listener and load balancer must be on the same load balancer.",
                        ));
                    }
                    (listener.lb_id.clone(), Some(listener))
                }
                (None, Some(lb)) => (lb, None),
                (None, None) => {
                    return Err(LbError::validation(
                        "Must provide at least one of: loadbalancer_id, listener_id",
                    ))
                }
            };
            let lb = oct
                .find(Kind::LoadBalancer, &lb_id)
                .map_err(|_| LbError::not_found("Load Balancer", &lb_id))?;
            call.check_access(lb)?;
            oct.check_child_mutable(&lb_id)?;
            check_pool(&provider_of(lb), &attrs, None)?;
            check_amphora_pool(call, &provider_of(lb), &attrs)?;
            let mut parents = vec![];
            if let Some(l) = listener {
                if l.attrs.get("default_pool_id").is_some_and(|v| !v.is_null()) {
                    return Err(LbError::conflict(
                        "This listener already has a default pool",
                    ));
                }
                check_pool_for_listener(
                    l.str("protocol").unwrap_or_default(),
                    str_of(&attrs, "protocol"),
                )?;
                parents.push(l.id.clone());
            }
            (lb_id, None, parents)
        }
        Kind::Member => {
            let pool_id = path_pool
                .map(str::to_string)
                .ok_or_else(|| missing("pool_id"))?;
            let pool = oct.find(Kind::Pool, &pool_id)?;
            call.check_access(pool)?;
            oct.check_child_mutable(&pool.lb_id)?;
            let address = str_of(&attrs, "address").to_string();
            let port = attrs
                .get("protocol_port")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            check_member_clash(oct, &pool_id, &address, port)?;
            let lb = oct.find(Kind::LoadBalancer, &pool.lb_id)?;
            check_amphora_member_family(
                call,
                &provider_of(lb),
                lb,
                pool.str("protocol").unwrap_or_default(),
                &[address.as_str()],
            )?;
            if let Some(subnet) = attrs.get("subnet_id").and_then(Value::as_str) {
                if !net::subnet_exists(&world.neutron, subnet) {
                    return Err(LbError::bad_request(format!("Subnet {subnet} not found.")));
                }
            }
            (
                pool.lb_id.clone(),
                Some(pool_id.clone()),
                oct.pool_chain(&pool_id),
            )
        }
        Kind::HealthMonitor => {
            let pool_id = ref_id("pool_id").ok_or_else(|| missing("pool_id"))?;
            let pool = oct
                .find(Kind::Pool, &pool_id)
                .map_err(|_| LbError::not_found("Pool", &pool_id))?;
            call.check_access(pool)?;
            oct.check_child_mutable(&pool.lb_id)?;
            if oct.monitor_of(&pool_id).is_some() {
                return Err(LbError::conflict("This pool already has a health monitor"));
            }
            let lb = oct.find(Kind::LoadBalancer, &pool.lb_id)?;
            check_monitor(
                &provider_of(lb),
                pool.str("protocol").unwrap_or_default(),
                &mut attrs,
            )?;
            (
                pool.lb_id.clone(),
                Some(pool_id.clone()),
                oct.pool_chain(&pool_id),
            )
        }
        Kind::LoadBalancer => return Err(LbError::bad_request("use the load balancer create")),
    };
    call.quota_check(&world, kind, &project, 1)?;
    let id = new_id();
    let listener_id = parsed
        .extra
        .get("listener_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    world
        .octavia
        .insert(kind, id.clone(), lb_id.clone(), pool_id, &project, attrs);
    if kind == Kind::Pool {
        if let Some(l) = listener_id.and_then(|l| world.octavia.get_mut(&l)) {
            l.set("default_pool_id", id.clone());
        }
    }
    for p in parents.iter().chain(std::iter::once(&lb_id)) {
        world.octavia.mark(p, PENDING_UPDATE);
    }
    let o = world.octavia.find(kind, &id)?;
    let body = json!({ kind.singular(): call.render(&world, o) });
    Ok((StatusCode::CREATED, body, lb_id))
}

fn check_member_clash(
    oct: &OctaviaState,
    pool_id: &str,
    address: &str,
    port: i64,
) -> Result<(), LbError> {
    let clash = oct.members_of(pool_id).into_iter().any(|m| {
        m.str("address") == Some(address)
            && m.attrs.get("protocol_port").and_then(Value::as_i64) == Some(port)
    });
    if clash {
        return Err(LbError::conflict(format!(
            "Another member on this pool is already using ip {address} on protocol_port {port}"
        )));
    }
    Ok(())
}

fn check_default_pool(
    oct: &OctaviaState,
    lb_id: &str,
    listener_id: Option<&str>,
    pool_id: &str,
    listener_protocol: &str,
) -> Result<(), LbError> {
    let pool = oct
        .find(Kind::Pool, pool_id)
        .map_err(|_| LbError::bad_request(format!("Pool {pool_id} not found.")))?;
    if pool.lb_id != lb_id {
        return Err(LbError::bad_request(format!("Pool {pool_id} not found.")));
    }
    check_pool_for_listener(listener_protocol, pool.str("protocol").unwrap_or_default())?;
    let shared = oct
        .listeners_of(lb_id)
        .into_iter()
        .any(|l| Some(l.id.as_str()) != listener_id && l.str("default_pool_id") == Some(pool_id));
    if shared {
        return Err(LbError::conflict(format!(
            "Pool {pool_id} is already in use by another listener."
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Updates.

pub async fn update(
    kind: Kind,
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = update_in(&call, kind, &id, None, &body);
    finish(&call, result)
}

pub async fn member_update(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path((pool_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = update_in(&call, Kind::Member, &id, Some(&pool_id), &body);
    finish(&call, result)
}

fn update_in(
    call: &Call,
    kind: Kind,
    id: &str,
    path_pool: Option<&str>,
    bytes: &Bytes,
) -> Result<(StatusCode, Value, String), LbError> {
    let body = parse_body(bytes, kind)?;
    let mut world = call.st.inner.world.lock();
    if let Some(p) = path_pool {
        world.octavia.find(Kind::Pool, p)?;
    }
    let o = world.octavia.find(kind, id)?;
    if path_pool.is_some_and(|p| o.pool_id.as_deref() != Some(p)) {
        return Err(LbError::not_found(kind.display(), id));
    }
    call.check_access(o)?;
    let parsed = schema::parse(kind, &body, true, call.minor)?;
    let mut attrs = parsed.attrs;
    let lb_id = o.lb_id.clone();
    let oct = &world.octavia;
    if kind == Kind::LoadBalancer {
        oct.check_lb_mutable(id, false)?;
    } else {
        oct.check_child_mutable(&lb_id)?;
    }
    let lb = oct.find(Kind::LoadBalancer, &lb_id)?;
    let provider = provider_of(lb);
    let mut parents = Vec::new();
    match kind {
        Kind::Listener => {
            check_cidrs(lb.str("vip_address"), &attrs)?;
            if let Some(pid) = attrs.get("default_pool_id").and_then(Value::as_str) {
                check_default_pool(
                    oct,
                    &lb_id,
                    Some(id),
                    pid,
                    o.str("protocol").unwrap_or_default(),
                )?;
            }
        }
        Kind::Pool => {
            check_pool(&provider, &attrs, o.str("protocol"))?;
            check_amphora_pool(call, &provider, &attrs)?;
            parents.extend(
                oct.listeners_of(&lb_id)
                    .into_iter()
                    .filter(|l| l.str("default_pool_id") == Some(id))
                    .map(|l| l.id.clone()),
            );
        }
        Kind::HealthMonitor => {
            let mut merged = o.attrs.clone();
            merged.extend(attrs.clone());
            let pool_protocol = o
                .pool_id
                .as_deref()
                .and_then(|p| oct.get(p))
                .and_then(|p| p.str("protocol"))
                .unwrap_or_default()
                .to_string();
            check_monitor(&provider, &pool_protocol, &mut merged)?;
            for key in ["http_method", "url_path", "expected_codes"] {
                if let Some(v) = merged.get(key) {
                    if attrs.contains_key(key) {
                        attrs.insert(key.into(), v.clone());
                    }
                }
            }
            parents.extend(o.pool_id.iter().flat_map(|p| oct.pool_chain(p)));
        }
        Kind::Member => parents.extend(o.pool_id.iter().flat_map(|p| oct.pool_chain(p))),
        Kind::LoadBalancer => {}
    }
    if let Some(obj) = world.octavia.get_mut(id) {
        for (k, v) in attrs {
            obj.attrs.insert(k, v);
        }
    }
    world.octavia.mark(id, PENDING_UPDATE);
    for p in parents.iter().chain(std::iter::once(&lb_id)) {
        world.octavia.mark(p, PENDING_UPDATE);
    }
    let o = world.octavia.find(kind, id)?;
    let body = json!({ kind.singular(): call.render(&world, o) });
    Ok((StatusCode::OK, body, lb_id))
}

/// `PUT /pools/{id}/members`: the given list becomes the pool's member set (matched by
/// address and port); `additive_only=true` (2.11) keeps members not listed.
pub async fn members_batch(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(pool_id): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = members_batch_in(&call, &pool_id, &params, &body);
    finish(&call, result)
}

fn members_batch_in(
    call: &Call,
    pool_id: &str,
    params: &[(String, String)],
    bytes: &Bytes,
) -> Result<(StatusCode, Value, String), LbError> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|_| LbError::bad_request("Request is not in valid JSON format"))?;
    let list = body
        .as_object()
        .and_then(|o| o.get("members"))
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("members", &body, "Mandatory field missing."))?;
    if let Some(extra) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "members"))
    {
        return Err(LbError::bad_request(format!(
            "Unknown attribute for argument members_: {extra}"
        )));
    }
    let additive = params.iter().any(|(k, v)| {
        k == "additive_only" && matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
    });
    if additive && call.minor < 11 {
        return Err(LbError::bad_request(
            "additive_only is not supported by this API version.",
        ));
    }
    let mut parsed = Vec::new();
    let mut seen = HashSet::new();
    for m in list {
        let p = schema::parse(Kind::Member, m, false, call.minor).map_err(|mut e| {
            // The batch body's argument is `members_`, not a single member's.
            e.message = e
                .message
                .replace("argument member_.member:", "argument members_.members:");
            e
        })?;
        let key = (
            str_of(&p.attrs, "address").to_string(),
            p.attrs
                .get("protocol_port")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        );
        if !seen.insert(key.clone()) {
            return Err(LbError::conflict(format!(
                "Another member on this pool is already using ip {} on protocol_port {}",
                key.0, key.1
            )));
        }
        let given: HashSet<String> = m
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        parsed.push((key, p, given));
    }
    let mut world = call.st.inner.world.lock();
    let pool = world.octavia.find(Kind::Pool, pool_id)?;
    call.check_access(pool)?;
    let lb_id = pool.lb_id.clone();
    let project = pool.project().to_string();
    world.octavia.check_child_mutable(&lb_id)?;
    {
        let lb = world.octavia.find(Kind::LoadBalancer, &lb_id)?;
        let addresses: Vec<&str> = parsed.iter().map(|(k, _, _)| k.0.as_str()).collect();
        check_amphora_member_family(
            call,
            &provider_of(lb),
            lb,
            pool.str("protocol").unwrap_or_default(),
            &addresses,
        )?;
    }
    let existing: Vec<(String, (String, i64))> = world
        .octavia
        .members_of(pool_id)
        .into_iter()
        .map(|m| {
            (
                m.id.clone(),
                (
                    m.str("address").unwrap_or_default().to_string(),
                    m.attrs
                        .get("protocol_port")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                ),
            )
        })
        .collect();
    let new_count = parsed
        .iter()
        .filter(|(k, _, _)| !existing.iter().any(|(_, e)| e == k))
        .count();
    if new_count > 0 {
        call.quota_check(&world, Kind::Member, &project, new_count)?;
    }
    for (key, p, given) in parsed {
        match existing.iter().find(|(_, e)| *e == key) {
            Some((id, _)) => {
                let updatable: Vec<&str> = schema::MEMBER
                    .iter()
                    .filter(|f| f.updatable)
                    .map(|f| f.name)
                    .collect();
                let mut changed = false;
                if let Some(obj) = world.octavia.get_mut(id) {
                    for (k, v) in p.attrs {
                        // Only what the caller gave is changed; the rest keeps its value.
                        if updatable.contains(&k.as_str())
                            && given.contains(&k)
                            && obj.attrs.get(&k) != Some(&v)
                        {
                            obj.attrs.insert(k, v);
                            changed = true;
                        }
                    }
                }
                if changed {
                    world.octavia.mark(id, PENDING_UPDATE);
                }
            }
            None => {
                world.octavia.insert(
                    Kind::Member,
                    new_id(),
                    lb_id.clone(),
                    Some(pool_id.to_string()),
                    &project,
                    p.attrs,
                );
            }
        }
    }
    if !additive {
        for (id, key) in &existing {
            if !seen.contains(key) {
                world.octavia.mark(id, PENDING_DELETE);
            }
        }
    }
    for parent in world.octavia.pool_chain(pool_id) {
        world.octavia.mark(&parent, PENDING_UPDATE);
    }
    world.octavia.mark(&lb_id, PENDING_UPDATE);
    Ok((StatusCode::ACCEPTED, Value::Null, lb_id))
}

// ---------------------------------------------------------------------------------------
// Deletes.

pub async fn delete(
    kind: Kind,
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = delete_in(&call, kind, &id, None, &params);
    finish(&call, result)
}

pub async fn member_delete(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path((pool_id, id)): Path<(String, String)>,
    Query(params): Params,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = delete_in(&call, Kind::Member, &id, Some(&pool_id), &params);
    finish(&call, result)
}

fn delete_in(
    call: &Call,
    kind: Kind,
    id: &str,
    path_pool: Option<&str>,
    params: &[(String, String)],
) -> Result<(StatusCode, Value, String), LbError> {
    let mut world = call.st.inner.world.lock();
    if let Some(p) = path_pool {
        world.octavia.find(Kind::Pool, p)?;
    }
    let o = world.octavia.find(kind, id)?;
    if path_pool.is_some_and(|p| o.pool_id.as_deref() != Some(p)) {
        return Err(LbError::not_found(kind.display(), id));
    }
    call.check_access(o)?;
    let lb_id = o.lb_id.clone();
    let pool_id = o.pool_id.clone();
    if kind == Kind::LoadBalancer {
        let cascade = params.iter().any(|(k, v)| {
            k == "cascade" && matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
        });
        let has_children =
            !world.octavia.listeners_of(id).is_empty() || !world.octavia.pools_of(id).is_empty();
        if has_children && !cascade {
            return Err(LbError::validation(format!(
                "Cannot delete Load Balancer {id} - it has children"
            )));
        }
        world.octavia.check_lb_mutable(id, true)?;
        world.octavia.mark(id, PENDING_DELETE);
        let children: Vec<String> = [
            Kind::Listener,
            Kind::Pool,
            Kind::Member,
            Kind::HealthMonitor,
        ]
        .into_iter()
        .flat_map(|k| {
            world
                .octavia
                .all(k)
                .into_iter()
                .filter(|o| o.lb_id == id)
                .map(|o| o.id.clone())
                .collect::<Vec<_>>()
        })
        .collect();
        for c in children {
            world.octavia.mark(&c, PENDING_DELETE);
        }
    } else {
        world.octavia.check_child_mutable(&lb_id)?;
        if kind == Kind::Pool {
            let listeners: Vec<String> = world
                .octavia
                .listeners_of(&lb_id)
                .into_iter()
                .filter(|l| l.str("default_pool_id") == Some(id))
                .map(|l| l.id.clone())
                .collect();
            for l in listeners {
                world.octavia.mark(&l, PENDING_UPDATE);
            }
        }
        world.octavia.mark(id, PENDING_DELETE);
        if let Some(p) = pool_id {
            for parent in world.octavia.pool_chain(&p) {
                world.octavia.mark(&parent, PENDING_UPDATE);
            }
        }
        world.octavia.mark(&lb_id, PENDING_UPDATE);
    }
    Ok((StatusCode::NO_CONTENT, Value::Null, lb_id))
}

/// `PUT /loadbalancers/{id}/failover`: the load balancer goes through PENDING_UPDATE.
pub async fn lb_failover(
    flavor: Flavor,
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    uri: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(st, auth, flavor, &uri);
    let result = (|| {
        let mut world = call.st.inner.world.lock();
        let lb = world.octavia.find(Kind::LoadBalancer, &id)?;
        call.check_access(lb)?;
        if !call.auth.is_admin() {
            return Err(LbError::forbidden());
        }
        world.octavia.check_lb_mutable(&id, false)?;
        world.octavia.mark(&id, PENDING_UPDATE);
        Ok((StatusCode::ACCEPTED, Value::Null, id.clone()))
    })();
    finish(&call, result)
}
