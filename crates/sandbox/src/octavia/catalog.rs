//! The fixed parts of the load-balancer service: the API version document, providers,
//! flavors and flavor profiles, availability zones, and the quota API over the shared quota
//! table. It must not know load-balancer objects beyond counting them.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::api::{configured_minor, MAX_MINOR};
use super::error::LbError;
use super::{Flavor, Kind};
use crate::state::{AppState, AuthContext};

/// Provider drivers: (name, description).
pub const PROVIDERS: &[(&str, &str)] = &[
    ("amphora", "Amphora provider."),
    ("octavia", "Deprecated alias of the Amphora provider."),
    ("ovn", "Octavia OVN driver."),
];

/// A flavor offered to users.
#[derive(Clone, Copy, Debug)]
pub struct FlavorDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub profile_id: &'static str,
    pub profile_name: &'static str,
    pub provider: &'static str,
    pub data: &'static str,
}

pub const FLAVORS: &[FlavorDef] = &[
    FlavorDef {
        id: "5a0a0b6f-55d2-4d5c-9a3c-6c1a1d0b0001",
        name: "amphora-single",
        description: "One amphora per load balancer",
        profile_id: "6b1b1c70-66e3-4e6d-8b4d-7d2b2e1c0001",
        profile_name: "amphora-single-profile",
        provider: "amphora",
        data: "{\"loadbalancer_topology\": \"SINGLE\"}",
    },
    FlavorDef {
        id: "5a0a0b6f-55d2-4d5c-9a3c-6c1a1d0b0002",
        name: "amphora-ha",
        description: "Active/standby amphorae",
        profile_id: "6b1b1c70-66e3-4e6d-8b4d-7d2b2e1c0002",
        profile_name: "amphora-act-stdby-profile",
        provider: "amphora",
        data: "{\"loadbalancer_topology\": \"ACTIVE_STANDBY\"}",
    },
];

pub fn flavor(id_or_name: &str) -> Option<FlavorDef> {
    FLAVORS
        .iter()
        .copied()
        .find(|f| f.id == id_or_name || f.name == id_or_name)
}

/// Availability zones: (name, description).
pub const AVAILABILITY_ZONES: &[(&str, &str)] =
    &[("nova", "The default zone"), ("az2", "A second zone")];

pub fn availability_zone(name: &str) -> Option<(&'static str, &'static str)> {
    AVAILABILITY_ZONES.iter().copied().find(|(n, _)| *n == name)
}

/// Dates the versions appeared upstream (2.26 and 2.27 from the later releases' notes).
const VERSION_DATES: &[&str] = &[
    "2016-12-11T00:00:00Z",
    "2018-04-20T00:00:00Z",
    "2018-07-31T00:00:00Z",
    "2018-12-18T00:00:00Z",
    "2018-12-19T00:00:00Z",
    "2019-01-21T00:00:00Z",
    "2019-01-25T00:00:00Z",
    "2018-01-25T12:00:00Z",
    "2019-02-12T00:00:00Z",
    "2019-03-04T00:00:00Z",
    "2019-03-05T00:00:00Z",
    "2019-06-24T00:00:00Z",
    "2019-09-11T00:00:00Z",
    "2019-09-13T00:00:00Z",
    "2019-11-10T00:00:00Z",
    "2020-03-10T00:00:00Z",
    "2020-03-15T00:00:00Z",
    "2020-04-29T00:00:00Z",
    "2020-04-29T01:00:00Z",
    "2020-05-12T00:00:00Z",
    "2020-08-02T00:00:00Z",
    "2020-09-03T00:00:00Z",
    "2020-09-04T00:00:00Z",
    "2020-09-07T00:00:00Z",
    "2020-10-15T00:00:00Z",
    "2021-10-02T00:00:00Z",
    "2022-08-29T00:00:00Z",
    "2023-05-05T00:00:00Z",
];

fn versions(base: &str, max: u32) -> Vec<Value> {
    (0..=max.min(MAX_MINOR))
        .map(|minor| {
            let date = VERSION_DATES
                .get(minor as usize)
                .copied()
                .unwrap_or("2023-05-05T00:00:00Z");
            json!({
                "id": format!("v2.{minor}"),
                "status": if minor == max { "CURRENT" } else { "SUPPORTED" },
                "updated": date,
                "links": [{"href": format!("{}/v2", base.trim_end_matches('/')), "rel": "self"}],
            })
        })
        .collect()
}

/// `GET /` without a token: keystoneauth discovers versions before authenticating.
pub async fn version_document_public(State(st): State<AppState>) -> Response {
    let minor = configured_minor(&st.inner);
    Json(json!({"versions": versions(&st.inner.endpoints.octavia, minor)})).into_response()
}

/// `GET /v2`: the current version alone.
pub async fn version_current(State(st): State<AppState>) -> Response {
    let minor = configured_minor(&st.inner);
    let all = versions(&st.inner.endpoints.octavia, minor);
    Json(json!({"version": all.last().cloned().unwrap_or(Value::Null)})).into_response()
}

pub async fn providers() -> Response {
    let list: Vec<Value> = PROVIDERS
        .iter()
        .map(|(n, d)| json!({"name": n, "description": d}))
        .collect();
    Json(json!({"providers": list})).into_response()
}

pub async fn provider_capabilities(Path(name): Path<String>) -> Response {
    if !PROVIDERS.iter().any(|(n, _)| *n == name) {
        return LbError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("Provider '{name}' was not found."),
        )
        .render(Flavor::Octavia);
    }
    let caps = if name == "ovn" {
        json!([])
    } else {
        json!([
            {"name": "loadbalancer_topology", "description": "The load balancer topology. One of: SINGLE - One amphora per load balancer. ACTIVE_STANDBY - Two amphora per load balancer."},
            {"name": "compute_flavor", "description": "The compute driver flavor ID."},
        ])
    };
    Json(json!({"flavor_capabilities": caps})).into_response()
}

fn flavor_json(f: &FlavorDef) -> Value {
    json!({"id": f.id, "name": f.name, "description": f.description, "enabled": true, "flavor_profile_id": f.profile_id})
}

fn profile_json(f: &FlavorDef) -> Value {
    json!({"id": f.profile_id, "name": f.profile_name, "provider_name": f.provider, "flavor_data": f.data})
}

/// Routes newer than the advertised version answer like an older Octavia: not found.
fn too_new(st: &AppState, since: u32) -> Option<Response> {
    (configured_minor(&st.inner) < since).then(|| {
        LbError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The resource could not be found.",
        )
        .render(Flavor::Octavia)
    })
}

pub async fn flavors(State(st): State<AppState>) -> Response {
    if let Some(r) = too_new(&st, 6) {
        return r;
    }
    let list: Vec<Value> = FLAVORS.iter().map(flavor_json).collect();
    Json(json!({"flavors": list, "flavors_links": []})).into_response()
}

pub async fn flavor_show(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if let Some(r) = too_new(&st, 6) {
        return r;
    }
    match flavor(&id) {
        Some(f) => Json(json!({"flavor": flavor_json(&f)})).into_response(),
        None => LbError::not_found("Flavor", &id).render(Flavor::Octavia),
    }
}

pub async fn flavor_profiles(State(st): State<AppState>) -> Response {
    if let Some(r) = too_new(&st, 6) {
        return r;
    }
    let list: Vec<Value> = FLAVORS.iter().map(profile_json).collect();
    Json(json!({"flavorprofiles": list, "flavorprofiles_links": []})).into_response()
}

pub async fn flavor_profile_show(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if let Some(r) = too_new(&st, 6) {
        return r;
    }
    match FLAVORS.iter().find(|f| f.profile_id == id) {
        Some(f) => Json(json!({"flavorprofile": profile_json(f)})).into_response(),
        None => LbError::not_found("Flavor profile", &id).render(Flavor::Octavia),
    }
}

fn az_json(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "enabled": true,
           "availability_zone_profile_id": format!("azp-{name}")})
}

pub async fn availability_zones(State(st): State<AppState>) -> Response {
    if let Some(r) = too_new(&st, 14) {
        return r;
    }
    let list: Vec<Value> = AVAILABILITY_ZONES
        .iter()
        .map(|(n, d)| az_json(n, d))
        .collect();
    Json(json!({"availability_zones": list, "availability_zones_links": []})).into_response()
}

pub async fn availability_zone_show(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Response {
    if let Some(r) = too_new(&st, 14) {
        return r;
    }
    match availability_zone(&name) {
        Some((n, d)) => Json(json!({"availability_zone": az_json(n, d)})).into_response(),
        None => LbError::not_found("Availability Zone", &name).render(Flavor::Octavia),
    }
}

/// Octavia quota names; the deprecated spellings are accepted on input and shown on output.
const QUOTA_KEYS: &[(&str, Option<Kind>)] = &[
    ("load_balancer", Some(Kind::LoadBalancer)),
    ("listener", Some(Kind::Listener)),
    ("pool", Some(Kind::Pool)),
    ("health_monitor", Some(Kind::HealthMonitor)),
    ("member", Some(Kind::Member)),
    ("l7policy", None),
    ("l7rule", None),
];

fn canonical(key: &str) -> Option<&'static str> {
    match key {
        "loadbalancer" => Some("load_balancer"),
        "healthmonitor" => Some("health_monitor"),
        other => QUOTA_KEYS.iter().map(|(k, _)| *k).find(|k| *k == other),
    }
}

fn quota_json(project: &str, limit: impl Fn(&str) -> i64) -> Value {
    let mut m = Map::new();
    m.insert("project_id".into(), Value::from(project));
    m.insert("tenant_id".into(), Value::from(project));
    for (k, _) in QUOTA_KEYS {
        m.insert((*k).to_string(), Value::from(limit(k)));
    }
    m.insert("loadbalancer".into(), Value::from(limit("load_balancer")));
    m.insert("healthmonitor".into(), Value::from(limit("health_monitor")));
    Value::Object(m)
}

pub async fn quotas_list(
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
) -> Response {
    let world = st.inner.world.lock();
    let mut projects: Vec<String> = world.quotas.per_project.keys().cloned().collect();
    if !auth.is_admin() {
        projects.retain(|p| *p == auth.project_id);
    }
    projects.sort();
    let list: Vec<Value> = projects
        .iter()
        .map(|p| quota_json(p, |k| world.quotas.limit(p, k)))
        .collect();
    Json(json!({"quotas": list, "quotas_links": []})).into_response()
}

pub async fn quotas_defaults(State(st): State<AppState>) -> Response {
    let world = st.inner.world.lock();
    let q = quota_json("defaults", |k| {
        world.quotas.defaults.get(k).copied().unwrap_or(-1)
    });
    Json(json!({"quota": q})).into_response()
}

pub async fn quota_show(
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    Path(project): Path<String>,
) -> Response {
    if !auth.is_admin() && project != auth.project_id {
        return LbError::forbidden().render(Flavor::Octavia);
    }
    let world = st.inner.world.lock();
    let q = quota_json(&project, |k| world.quotas.limit(&project, k));
    Json(json!({"quota": q})).into_response()
}

pub async fn quota_update(
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        if !auth.is_admin() {
            return Err(LbError::forbidden());
        }
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| LbError::bad_request("Request is not in valid JSON format"))?;
        let quota = body
            .get("quota")
            .and_then(Value::as_object)
            .ok_or_else(|| super::schema::invalid("quota", &body, "Mandatory field missing."))?;
        let mut updates = Vec::new();
        for (k, v) in quota {
            let key = canonical(k).ok_or_else(|| {
                LbError::bad_request(format!("Unknown attribute for argument quotas.quota: {k}"))
            })?;
            let n = match v {
                Value::Null => None,
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            match (v.is_null(), n) {
                (true, _) => updates.push((key, None)),
                (false, Some(n)) if (-1..=i64::from(i32::MAX)).contains(&n) => {
                    updates.push((key, Some(n)))
                }
                _ => {
                    return Err(super::schema::invalid(
                        k,
                        v,
                        "Value should be greater or equal to -1",
                    ))
                }
            }
        }
        let mut world = st.inner.world.lock();
        for (key, limit) in updates {
            match limit {
                Some(n) => world.quotas.set(Some(&project), key, n),
                None => {
                    if let Some(p) = world.quotas.per_project.get_mut(&project) {
                        p.remove(key);
                    }
                }
            }
        }
        Ok(quota_json(&project, |k| world.quotas.limit(&project, k)))
    })();
    match result {
        Ok(q) => (StatusCode::ACCEPTED, Json(json!({"quota": q}))).into_response(),
        Err(e) => e.render(Flavor::Octavia),
    }
}

pub async fn quota_reset(
    State(st): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    Path(project): Path<String>,
) -> Response {
    if !auth.is_admin() {
        return LbError::forbidden().render(Flavor::Octavia);
    }
    st.inner.world.lock().quotas.reset(&project);
    StatusCode::ACCEPTED.into_response()
}

/// Empty collections the CLI may ask for (L7 policies, amphorae): not modelled.
pub async fn empty(key: &'static str) -> Response {
    Json(json!({ key: [], format!("{key}_links"): [] })).into_response()
}
