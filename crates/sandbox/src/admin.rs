//! The sandbox's own admin HTTP API (plain JSON on loopback, no auth): change fault rules,
//! quotas and token lifetime at runtime, revoke or expire tokens, read and clear the request
//! log, register node ports, and add users (so the log can be split by caller). Tests and benchmarks use it mid-run. It must not change
//! load-balancer objects; it only flips switches they read — apart from `POST /state/lose`,
//! the cloud restarting with an empty database, which drops them all (`World::lose_state`).

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::faults::{FaultRule, FaultRuleSpec};
use crate::neutron::PortSpec;
use crate::state::{AppState, ServiceKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(info))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/faults/rules", post(add_rule))
        .route("/faults/lb-error-after-create", put(put_lb_error))
        .route("/tokens/revoke", post(revoke_tokens))
        .route("/tokens/expire", post(expire_tokens))
        .route("/tokens/lifetime", put(put_token_lifetime))
        .route("/quotas", get(get_quotas).put(put_quota))
        .route("/quotas/{project}", delete(reset_quota))
        .route("/requests", get(get_requests).delete(clear_requests))
        .route("/nodes", post(add_node))
        .route("/nodes/{port_id}", delete(remove_node))
        .route("/users", post(add_user))
        .route("/state/lose", post(lose_state))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ServiceKind::Admin, StatusCode::BAD_REQUEST, message)
}

/// Parses a JSON body with a readable 400 instead of axum's plain-text rejection.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid request body: {e}")))
}

async fn info(State(state): State<AppState>) -> Json<Value> {
    let shared = &state.inner;
    let world = shared.world.lock();
    let lbaas = match shared.config.lbaas {
        crate::config::LbaasMode::Octavia => "octavia",
        crate::config::LbaasMode::NeutronV2 => "neutron-v2",
        crate::config::LbaasMode::NeutronV1 => "neutron-v1",
    };
    Json(json!({
        "endpoints": {
            "identity": format!("{}/v3", shared.endpoints.keystone),
            "network": shared.endpoints.neutron,
            "load-balancer": shared.endpoints.octavia,
            "admin": shared.endpoints.admin,
        },
        "lbaas": lbaas,
        "region": shared.config.region,
        "floating_range": shared.config.floating_range.to_string(),
        "node_range": shared.config.node_range.to_string(),
        "networks": world.neutron.seed,
        "projects": world.keystone.projects.iter().map(|p| json!({"id": p.id, "name": p.name})).collect::<Vec<_>>(),
    }))
}

fn faults_body(state: &AppState) -> Value {
    let faults = state.inner.faults.lock();
    let rules: Vec<FaultRuleSpec> = faults.rules.iter().map(FaultRuleSpec::from).collect();
    json!({"rules": rules, "lb_error_after_create": faults.lb_error_after_create,
           "injected": faults.injected})
}

async fn get_faults(State(state): State<AppState>) -> Json<Value> {
    Json(faults_body(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    #[serde(default)]
    rules: Vec<FaultRuleSpec>,
    #[serde(default)]
    lb_error_after_create: Option<bool>,
}

fn compile(specs: Vec<FaultRuleSpec>) -> Result<Vec<FaultRule>, ApiError> {
    specs
        .into_iter()
        .map(|s| FaultRule::try_from(s).map_err(bad_request))
        .collect()
}

/// Replaces all rules (and optionally the LB-ERROR switch).
async fn put_faults(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: FaultsBody = parse(&body)?;
    let rules = compile(body.rules)?;
    {
        let mut faults = state.inner.faults.lock();
        faults.rules = rules;
        if let Some(flag) = body.lb_error_after_create {
            faults.lb_error_after_create = flag;
        }
    }
    Ok(Json(faults_body(&state)))
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    let mut faults = state.inner.faults.lock();
    faults.rules.clear();
    faults.lb_error_after_create = false;
    StatusCode::NO_CONTENT
}

async fn add_rule(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: FaultRuleSpec = parse(&body)?;
    let rule = FaultRule::try_from(spec).map_err(bad_request)?;
    state.inner.faults.lock().rules.push(rule);
    Ok((StatusCode::CREATED, Json(faults_body(&state))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

async fn put_lb_error(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Enabled = parse(&body)?;
    state.inner.faults.lock().lb_error_after_create = body.enabled;
    Ok(Json(faults_body(&state)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    user: Option<String>,
}

/// Revokes the tokens of one user (name or id), or of everyone when no user is given.
async fn revoke_tokens(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RevokeBody = if body.is_empty() {
        RevokeBody::default()
    } else {
        parse(&body)?
    };
    let n = state
        .inner
        .world
        .lock()
        .keystone
        .revoke_tokens(body.user.as_deref());
    Ok(Json(json!({"revoked": n})))
}

/// Makes every live token expire now, so clients must re-authenticate.
async fn expire_tokens(State(state): State<AppState>) -> Json<Value> {
    let n = state
        .inner
        .world
        .lock()
        .keystone
        .expire_tokens(chrono::Utc::now());
    Json(json!({"expired": n}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lifetime {
    seconds: u32,
}

async fn put_token_lifetime(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Lifetime = parse(&body)?;
    state
        .inner
        .world
        .lock()
        .keystone
        .set_token_lifetime(chrono::Duration::seconds(i64::from(body.seconds)));
    Ok(Json(json!({"seconds": body.seconds})))
}

async fn get_quotas(State(state): State<AppState>) -> Json<Value> {
    let world = state.inner.world.lock();
    Json(json!({"defaults": world.quotas.defaults, "projects": world.quotas.per_project}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    #[serde(default)]
    project: Option<String>,
    resource: String,
    limit: i64,
}

/// Sets one limit: for a project (name or id) or, without `project`, the default.
async fn put_quota(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: QuotaBody = parse(&body)?;
    if body.limit < -1 {
        return Err(bad_request("limit must be -1 (unlimited) or greater"));
    }
    let mut world = state.inner.world.lock();
    let project = body
        .project
        .as_deref()
        .map(|p| world.keystone.project_id_by_name_or_id(p));
    world
        .quotas
        .set(project.as_deref(), &body.resource, body.limit);
    Ok(Json(
        json!({"defaults": world.quotas.defaults, "projects": world.quotas.per_project}),
    ))
}

async fn reset_quota(State(state): State<AppState>, Path(project): Path<String>) -> StatusCode {
    let mut world = state.inner.world.lock();
    let id = world.keystone.project_id_by_name_or_id(&project);
    world.quotas.reset(&id);
    StatusCode::NO_CONTENT
}

/// The request log, optionally only entries with `seq >= since`, of one `service`, `method`
/// or with a path starting with `path_prefix`.
async fn get_requests(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let since: u64 = match q.get("since") {
        Some(s) => s
            .parse()
            .map_err(|_| bad_request("since must be an integer"))?,
        None => 0,
    };
    let service: Option<ServiceKind> = match q.get("service") {
        Some(s) => Some(s.parse().map_err(bad_request)?),
        None => None,
    };
    let log = state.inner.request_log.lock();
    let entries: Vec<&crate::state::RequestLogEntry> = log
        .iter()
        .filter(|e| e.seq >= since)
        .filter(|e| service.is_none_or(|s| s == e.service))
        .filter(|e| {
            q.get("method")
                .is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
        })
        .filter(|e| {
            q.get("path_prefix")
                .is_none_or(|p| e.path.starts_with(p.as_str()))
        })
        .collect();
    let next = log.last().map(|e| e.seq + 1).unwrap_or(since);
    Ok(Json(json!({"requests": entries, "next_since": next})))
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.inner.request_log.lock().clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeBody {
    name: String,
    ip_address: IpAddr,
    /// Defaults to the pre-created `nodes` subnet.
    #[serde(default)]
    subnet_id: Option<String>,
    /// Project owning the port (name or id); defaults to admin.
    #[serde(default)]
    project: Option<String>,
}

/// Registers a node: a `compute:nova` port with the node's address, as Nova would have
/// created for a VM, so the controller can find the node's subnet from its InternalIP.
async fn add_node(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: NodeBody = parse(&body)?;
    let mut world = state.inner.world.lock();
    let subnet_id = body
        .subnet_id
        .unwrap_or_else(|| world.neutron.seed.nodes_subnet_id.clone());
    let network_id = world
        .neutron
        .subnet(&subnet_id)
        .map(|s| s.network_id.clone())
        .ok_or_else(|| bad_request(format!("subnet {subnet_id} does not exist")))?;
    let project = world
        .keystone
        .project_id_by_name_or_id(body.project.as_deref().unwrap_or("admin"));
    let port = world
        .neutron
        .create_port(PortSpec {
            network_id,
            subnet_id: Some(subnet_id),
            ip_address: Some(body.ip_address),
            name: body.name,
            device_owner: "compute:nova".to_string(),
            device_id: uuid::Uuid::new_v4().to_string(),
            project_id: project,
            admin_state_up: true,
            ..Default::default()
        })
        .map_err(|e| ApiError::new(ServiceKind::Admin, e.status, e.message))?;
    Ok((StatusCode::CREATED, Json(json!({"port": port}))).into_response())
}

async fn remove_node(
    State(state): State<AppState>,
    Path(port_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let changed = {
        let mut world = state.inner.world.lock();
        world
            .neutron
            .delete_port(&port_id)
            .map_err(|e| ApiError::new(ServiceKind::Admin, e.status, e.message))?
    };
    if changed {
        crate::dataplane::sync(&state.inner);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: String,
    password: String,
    /// Project (name or id) where the user gets admin's roles; defaults to admin.
    #[serde(default)]
    project: Option<String>,
}

/// Adds a user with the admin user's roles, e.g. one per controller in a benchmark, whose
/// calls then carry its name in the request log.
async fn add_user(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: UserBody = parse(&body)?;
    let project = body.project.as_deref().unwrap_or("admin");
    let user = state
        .inner
        .world
        .lock()
        .keystone
        .add_admin_like_user(&body.name, &body.password, project)
        .map_err(bad_request)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": {"id": user.id, "name": user.name, "default_project_id": user.default_project_id}})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LoseBody {
    #[serde(default)]
    keep_nodes: bool,
}

/// The cloud restarts with an empty database (see `SandboxHandle::lose_state`); answers the
/// new seed ids and what exists right after.
async fn lose_state(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: LoseBody = if body.is_empty() {
        LoseBody::default()
    } else {
        parse(&body)?
    };
    let lost = crate::server::lose_state(&state, body.keep_nodes);
    Ok(Json(json!({"lost": lost})))
}
