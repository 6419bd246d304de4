//! Request helpers shared by the handlers: body parsing and attribute access, If-Match,
//! quota checks, the owner of a new resource and the common 400 errors.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::view::policy_denied;
use crate::errors::ApiError;
use crate::state::AuthContext;

pub(super) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|_| ApiError::neutron_bad_request("Body contains invalid data"))
}

pub(super) fn if_match(headers: &HeaderMap, current: u64) -> Result<(), ApiError> {
    let Some(raw) = headers
        .get(http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    for part in raw.split(',') {
        if let Some(n) = part.trim().strip_prefix("revision_number=") {
            let wanted: u64 = n.trim().parse().map_err(|_| {
                ApiError::neutron_bad_request(format!(
                    "Invalid input for operation: If-Match header {raw} is invalid."
                ))
            })?;
            if wanted != current {
                return Err(ApiError::neutron(
                    StatusCode::PRECONDITION_FAILED,
                    "RevisionNumberConstraintFailed",
                    format!("Constrained to {wanted}, but current revision is {current}"),
                ));
            }
        }
    }
    Ok(())
}

fn over_quota(resource: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::CONFLICT,
        "OverQuota",
        format!("Quota exceeded for resources: ['{resource}']."),
    )
}

pub(super) fn check_quota(
    state: &crate::state::World,
    project: &str,
    resource: &str,
) -> Result<(), ApiError> {
    if state
        .quotas
        .exceeded(project, resource, state.neutron.usage(project, resource))
    {
        return Err(over_quota(resource));
    }
    Ok(())
}

/// The project a new resource belongs to: the caller's, or (for admins) the one asked for.
pub(super) fn owner_of(ctx: &AuthContext, a: &Map<String, Value>) -> Result<String, ApiError> {
    let asked = a
        .get("project_id")
        .or_else(|| a.get("tenant_id"))
        .and_then(Value::as_str);
    match asked {
        Some(p) if p != ctx.project_id && !ctx.is_admin() => Err(ApiError::neutron_bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
        Some(p) => Ok(p.to_string()),
        None => Ok(ctx.project_id.clone()),
    }
}

pub(super) fn s(a: &Map<String, Value>, key: &str) -> Option<String> {
    a.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(super) fn b(a: &Map<String, Value>, key: &str) -> Option<bool> {
    a.get(key).and_then(Value::as_bool)
}

pub(super) fn str_list(a: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    a.get(key).and_then(Value::as_array).map(|l| {
        l.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

pub(super) fn dedup_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

pub(super) fn admin_only(
    ctx: &AuthContext,
    a: &Map<String, Value>,
    keys: &[&str],
    action: &str,
) -> Result<(), ApiError> {
    if ctx.is_admin() {
        return Ok(());
    }
    for k in keys {
        if a.contains_key(*k) {
            return Err(policy_denied(&format!("rule:{action}:{k}")));
        }
    }
    Ok(())
}

pub(super) fn invalid_input(message: impl std::fmt::Display) -> ApiError {
    ApiError::neutron(
        StatusCode::BAD_REQUEST,
        "InvalidInput",
        format!("Invalid input for operation: {message}."),
    )
}

/// Neutron's `BadRequest` exception class (as opposed to webob's HTTPBadRequest).
pub(super) fn bad_request_typed(message: impl Into<String>) -> ApiError {
    ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_revisions() {
        let mut h = HeaderMap::new();
        assert!(if_match(&h, 3).is_ok());
        h.insert(http::header::IF_MATCH, "revision_number=3".parse().unwrap());
        assert!(if_match(&h, 3).is_ok());
        let e = if_match(&h, 4).unwrap_err();
        assert_eq!(e.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(e.message, "Constrained to 3, but current revision is 4");
    }
}
