//! The generic list/show/create/update/delete handlers of every collection, dispatching to
//! the per-resource logic.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::attrs;
use super::floating_ip::{create_floating_ip, delete_floating_ip, update_floating_ip};
use super::kind::Kind;
use super::network::{create_network, delete_network, update_network};
use super::port::{create_port, delete_port, update_port};
use super::query::{compare, filter, parse_query, policy_view, select_fields, values_of};
use super::request::{
    bad_request_typed, check_quota, dedup_tags, if_match, owner_of, parse_body, s, str_list,
};
use super::router::{create_router, delete_router, update_router};
use super::security_group::{
    create_rule, create_security_group, delete_rule, delete_security_group, update_security_group,
};
use super::subnet::{create_subnet, delete_subnet, update_subnet};
use super::view::{all_json, find_owned, find_visible, one_json, std_mut, str_field, visible};
use crate::errors::ApiError;
use crate::state::{AppState, AuthContext};

pub(super) async fn list(
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

pub(super) async fn show(
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

pub(super) async fn create(
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

pub(super) async fn update(
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

pub(super) async fn delete(
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
