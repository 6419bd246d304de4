//! The quotas API.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::attrs;
use super::request::parse_body;
use super::view::policy_denied;
use crate::errors::ApiError;
use crate::state::{AppState, AuthContext};

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

pub(super) async fn list_quotas(
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

pub(super) async fn show_quota(
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

pub(super) async fn default_quota(
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

pub(super) async fn quota_details(
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

pub(super) async fn update_quota(
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

pub(super) async fn reset_quota(
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
