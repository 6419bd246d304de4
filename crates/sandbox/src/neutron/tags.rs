//! The tags API (`/{collection}/{id}/tags[/{tag}]`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::attrs;
use super::kind::Kind;
use super::not_found;
use super::query::tags_of;
use super::request::{dedup_tags, invalid_input, parse_body};
use super::view::{find_owned, find_visible, std_mut};
use crate::errors::ApiError;
use crate::state::{AppState, AuthContext};

fn validate_tag(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.chars().count() > 255 {
        return Err(ApiError::neutron_bad_request(format!(
            "Invalid input for operation: '{tag}' is not a valid tag."
        )));
    }
    Ok(())
}

fn tags_of_owned(
    state: &AppState,
    ctx: &AuthContext,
    kind: Kind,
    id: &str,
) -> Result<Vec<String>, ApiError> {
    let world = state.inner.world.lock();
    let v = find_visible(&world.neutron, kind, id, ctx)?;
    Ok(tags_of(&v).into_iter().map(str::to_string).collect())
}

fn modify_tags(
    state: &AppState,
    ctx: &AuthContext,
    kind: Kind,
    id: &str,
    f: impl FnOnce(&mut Vec<String>) -> Result<(), ApiError>,
) -> Result<Vec<String>, ApiError> {
    let mut world = state.inner.world.lock();
    find_owned(&world.neutron, kind, id, ctx, "update")?;
    let std =
        std_mut(&mut world.neutron, kind, id).ok_or_else(|| not_found(kind.singular(), id))?;
    let before = std.tags.clone();
    f(&mut std.tags)?;
    if std.tags != before {
        std.touch();
    }
    Ok(std.tags.clone())
}

pub(super) async fn get_tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"tags": tags_of_owned(&state, &ctx, kind, &id)?}),
    ))
}

pub(super) async fn replace_tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    body: Bytes,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    let body = parse_body(&body)?;
    let tags = body.get("tags").and_then(Value::as_array).ok_or_else(|| {
        invalid_input(format!(
            "'{}' is not a list",
            attrs::py_str(body.get("tags").unwrap_or(&Value::Null))
        ))
    })?;
    let mut new = Vec::new();
    for t in tags {
        let t = t.as_str().ok_or_else(|| {
            ApiError::neutron_bad_request(format!(
                "Invalid input for operation: '{}' is not a valid tag.",
                attrs::py_str(t)
            ))
        })?;
        validate_tag(t)?;
        new.push(t.to_string());
    }
    let tags = modify_tags(&state, &ctx, kind, &id, |cur| {
        *cur = dedup_tags(new);
        Ok(())
    })?;
    Ok(Json(json!({"tags": tags})))
}

pub(super) async fn delete_all_tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path(id): Path<String>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    modify_tags(&state, &ctx, kind, &id, |cur| {
        cur.clear();
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

fn tag_not_found(tag: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::NOT_FOUND,
        "TagNotFound",
        format!("Tag {tag} could not be found."),
    )
}

pub(super) async fn check_tag(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    if tags_of_owned(&state, &ctx, kind, &id)?.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(tag_not_found(&tag))
    }
}

pub(super) async fn add_tag(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    validate_tag(&tag)?;
    modify_tags(&state, &ctx, kind, &id, |cur| {
        if !cur.contains(&tag) {
            cur.push(tag.clone());
        }
        Ok(())
    })?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn remove_tag(
    State(state): State<AppState>,
    Extension(ctx): Extension<AuthContext>,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    modify_tags(&state, &ctx, kind, &id, |cur| {
        let before = cur.len();
        cur.retain(|t| t != &tag);
        if cur.len() == before {
            return Err(tag_not_found(&tag));
        }
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}
