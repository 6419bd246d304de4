//! Keystone v3 as far as clients and the controller need it: version discovery, token issue
//! (password, application_credential, token methods; project, domain and trust scope),
//! validation and revocation, and the service catalog. Users, roles and trusts are
//! pre-created and fixed; projects and application credentials can also be created and
//! deleted through the API (tests make a scratch project for quota cases, the client creates
//! application credentials). It must not know Neutron or Octavia resources; it only knows
//! their endpoints for the catalog.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use model::config::Secret;
use serde_json::{json, Map, Value};

use crate::config::{LbaasMode, SandboxConfig};
use crate::errors::ApiError;
use crate::neutron::attrs::py_repr;
use crate::state::{AppState, AuthContext, Endpoints};

pub const DEFAULT_DOMAIN_ID: &str = "default";
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub password: Secret,
    pub default_project_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub secret: Secret,
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Trust {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
    pub impersonation: bool,
}

/// The scope a token carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    Unscoped,
    Project(String),
    Domain(String),
    /// Project scope obtained through a trust: (trust id, project id).
    Trust(String, String),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub user_id: String,
    pub scope: Scope,
    /// Role ids.
    pub roles: Vec<String>,
    pub methods: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub audit_id: String,
    pub application_credential_id: Option<String>,
}

/// Identity data of the cloud. Role assignments are (user, project) → role ids.
pub struct KeystoneState {
    pub projects: Vec<Project>,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
    pub assignments: HashMap<(String, String), Vec<String>>,
    pub application_credentials: Vec<ApplicationCredential>,
    pub trusts: Vec<Trust>,
    /// Token id → token. Token ids are secrets; they are never logged.
    tokens: HashMap<String, Token>,
    token_lifetime: chrono::Duration,
    region: String,
}

/// Token ids are bearer secrets: Debug shows how many tokens exist, never their ids.
impl std::fmt::Debug for KeystoneState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneState")
            .field("projects", &self.projects)
            .field("users", &self.users)
            .field("roles", &self.roles)
            .field("application_credentials", &self.application_credentials)
            .field("trusts", &self.trusts)
            .field("tokens", &self.tokens.len())
            .field("token_lifetime", &self.token_lifetime)
            .field("region", &self.region)
            .finish()
    }
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl KeystoneState {
    /// admin/secret (admin in project `admin`), demo/secret (member + load-balancer_member in
    /// project `demo`), a `service` project, an application credential for admin and a trust
    /// from admin to demo on project admin.
    pub fn seeded(config: &SandboxConfig) -> Self {
        let role = |name: &str| Role {
            id: random_hex(),
            name: name.to_string(),
        };
        let roles = vec![
            role("admin"),
            role("member"),
            role("reader"),
            role("load-balancer_member"),
            role("load-balancer_admin"),
        ];
        let role_id = |name: &str| {
            roles
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.id.clone())
                .unwrap_or_default()
        };
        let project = |name: &str| Project {
            id: random_hex(),
            name: name.to_string(),
            domain_id: DEFAULT_DOMAIN_ID.to_string(),
        };
        let projects = vec![project("admin"), project("demo"), project("service")];
        let admin_project = projects[0].id.clone();
        let demo_project = projects[1].id.clone();
        let user = |name: &str, project: &str| User {
            id: random_hex(),
            name: name.to_string(),
            domain_id: DEFAULT_DOMAIN_ID.to_string(),
            password: Secret::new("secret"),
            default_project_id: Some(project.to_string()),
        };
        let users = vec![user("admin", &admin_project), user("demo", &demo_project)];
        let admin_user = users[0].id.clone();
        let demo_user = users[1].id.clone();
        let mut assignments = HashMap::new();
        let admin_roles = vec![role_id("admin"), role_id("member"), role_id("reader")];
        assignments.insert(
            (admin_user.clone(), admin_project.clone()),
            admin_roles.clone(),
        );
        assignments.insert(
            (demo_user.clone(), demo_project.clone()),
            vec![
                role_id("member"),
                role_id("reader"),
                role_id("load-balancer_member"),
            ],
        );
        let application_credentials = vec![ApplicationCredential {
            id: random_hex(),
            name: "sandbox-admin".to_string(),
            secret: Secret::new(random_hex()),
            user_id: admin_user.clone(),
            project_id: admin_project.clone(),
            roles: admin_roles,
        }];
        let trusts = vec![Trust {
            id: random_hex(),
            trustor_user_id: admin_user,
            trustee_user_id: demo_user,
            project_id: admin_project,
            roles: vec![role_id("member"), role_id("load-balancer_member")],
            impersonation: false,
        }];
        let lifetime = chrono::Duration::from_std(config.token_lifetime)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
        Self {
            projects,
            users,
            roles,
            assignments,
            application_credentials,
            trusts,
            tokens: HashMap::new(),
            token_lifetime: lifetime,
            region: config.region.clone(),
        }
    }

    pub fn project(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    pub fn project_by_name(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// Accepts a project name or id (flags and the admin API take either).
    pub fn project_id_by_name_or_id(&self, name_or_id: &str) -> String {
        self.project_by_name(name_or_id)
            .map(|p| p.id.clone())
            .unwrap_or_else(|| name_or_id.to_string())
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Adds a password user with the admin user's roles (admin, member, reader) on `project`
    /// (name or id). The admin API's `POST /users`: several clients of one project can then
    /// be told apart in the request log, which records the caller's user name.
    pub fn add_admin_like_user(
        &mut self,
        name: &str,
        password: &str,
        project: &str,
    ) -> Result<User, String> {
        if name.trim().is_empty() || password.is_empty() {
            return Err("name and password must not be empty".to_string());
        }
        if self.user_by_name(name).is_some() {
            return Err(format!("user {name:?} already exists; pick another name"));
        }
        let project_id = self.project_id_by_name_or_id(project);
        if self.project(&project_id).is_none() {
            return Err(format!(
                "project {project:?} does not exist (use a name such as admin or demo, or an id)"
            ));
        }
        let roles: Vec<String> = ["admin", "member", "reader"]
            .iter()
            .filter_map(|n| self.roles.iter().find(|r| r.name == *n))
            .map(|r| r.id.clone())
            .collect();
        let user = User {
            id: random_hex(),
            name: name.to_string(),
            domain_id: DEFAULT_DOMAIN_ID.to_string(),
            password: Secret::new(password),
            default_project_id: Some(project_id.clone()),
        };
        self.assignments
            .insert((user.id.clone(), project_id), roles);
        self.users.push(user.clone());
        Ok(user)
    }

    fn role_name(&self, id: &str) -> Option<&str> {
        self.roles
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.as_str())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn set_token_lifetime(&mut self, lifetime: chrono::Duration) {
        self.token_lifetime = lifetime;
    }

    /// The caller behind a token, if the token exists and has not expired.
    pub fn authenticate(&self, token_id: &str, now: DateTime<Utc>) -> Option<AuthContext> {
        let token = self.tokens.get(token_id)?;
        if token.expires_at <= now {
            return None;
        }
        let user = self.user(&token.user_id)?;
        let project_id = match &token.scope {
            Scope::Project(p) | Scope::Trust(_, p) => p.clone(),
            Scope::Domain(_) | Scope::Unscoped => String::new(),
        };
        Some(AuthContext {
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            project_id,
            roles: token
                .roles
                .iter()
                .filter_map(|r| self.role_name(r).map(str::to_string))
                .collect(),
        })
    }

    /// Revokes every token of a user (by name or id), or all tokens when `user` is None.
    /// Returns how many were revoked.
    pub fn revoke_tokens(&mut self, user: Option<&str>) -> usize {
        let before = self.tokens.len();
        match user {
            None => self.tokens.clear(),
            Some(u) => {
                let id = self
                    .user_by_name(u)
                    .map(|x| x.id.clone())
                    .unwrap_or_else(|| u.to_string());
                self.tokens.retain(|_, t| t.user_id != id);
            }
        }
        before - self.tokens.len()
    }

    /// Makes every live token expire now (to test re-authentication on expiry).
    pub fn expire_tokens(&mut self, now: DateTime<Utc>) -> usize {
        let mut n = 0;
        for t in self.tokens.values_mut() {
            if t.expires_at > now {
                t.expires_at = now;
                n += 1;
            }
        }
        n
    }

    /// Issues a token for the user with the given scope; fails if the user has no role there.
    fn issue(
        &mut self,
        user_id: &str,
        scope: Scope,
        methods: Vec<String>,
        cap_expiry: Option<DateTime<Utc>>,
        app_cred: Option<&ApplicationCredential>,
    ) -> Result<(String, Token), ApiError> {
        let roles = match &scope {
            Scope::Unscoped => Vec::new(),
            Scope::Project(p) => {
                let roles = self
                    .assignments
                    .get(&(user_id.to_string(), p.clone()))
                    .cloned()
                    .unwrap_or_default();
                if roles.is_empty() {
                    return Err(unauthorized_scope());
                }
                match app_cred {
                    Some(ac) => roles.into_iter().filter(|r| ac.roles.contains(r)).collect(),
                    None => roles,
                }
            }
            Scope::Domain(d) => {
                // Domain roles: admins of any project in the default domain are domain admins.
                let is_admin = self.assignments.iter().any(|((u, _), rs)| {
                    u == user_id && rs.iter().any(|r| self.role_name(r) == Some("admin"))
                });
                if !is_admin || d != DEFAULT_DOMAIN_ID {
                    return Err(unauthorized_scope());
                }
                self.roles
                    .iter()
                    .filter(|r| r.name == "admin")
                    .map(|r| r.id.clone())
                    .collect()
            }
            Scope::Trust(trust_id, _) => self
                .trusts
                .iter()
                .find(|t| &t.id == trust_id)
                .map(|t| t.roles.clone())
                .unwrap_or_default(),
        };
        let now = Utc::now();
        let mut expires_at = now + self.token_lifetime;
        if let Some(cap) = cap_expiry {
            expires_at = expires_at.min(cap);
        }
        let token = Token {
            user_id: user_id.to_string(),
            scope,
            roles,
            methods,
            issued_at: now,
            expires_at,
            audit_id: random_hex()[..22].to_string(),
            application_credential_id: app_cred.map(|a| a.id.clone()),
        };
        let id = format!("gAAAAA{}{}", random_hex(), random_hex());
        self.tokens.insert(id.clone(), token.clone());
        // Expired tokens are dropped lazily so the table cannot grow without bound.
        self.tokens
            .retain(|_, t| t.expires_at > now - chrono::Duration::hours(1));
        Ok((id, token))
    }

    /// The `{"token": …}` body for a token.
    fn token_body(
        &self,
        token: &Token,
        endpoints: &Endpoints,
        lbaas: LbaasMode,
        catalog: bool,
    ) -> Value {
        let user = self.user(&token.user_id);
        let domain = json!({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME});
        let mut body = Map::new();
        body.insert("methods".into(), json!(token.methods));
        body.insert(
            "user".into(),
            json!({
                "domain": domain,
                "id": token.user_id,
                "name": user.map(|u| u.name.as_str()).unwrap_or(""),
                "password_expires_at": null,
            }),
        );
        body.insert("audit_ids".into(), json!([token.audit_id]));
        body.insert("expires_at".into(), json!(ts(token.expires_at)));
        body.insert("issued_at".into(), json!(ts(token.issued_at)));
        let roles: Vec<Value> = token
            .roles
            .iter()
            .map(|r| json!({"id": r, "name": self.role_name(r).unwrap_or("")}))
            .collect();
        match &token.scope {
            Scope::Unscoped => {}
            Scope::Project(p) | Scope::Trust(_, p) => {
                let name = self.project(p).map(|x| x.name.as_str()).unwrap_or("");
                body.insert(
                    "project".into(),
                    json!({"domain": domain, "id": p, "name": name}),
                );
                body.insert("is_domain".into(), json!(false));
                body.insert("roles".into(), json!(roles));
            }
            Scope::Domain(_) => {
                body.insert("domain".into(), domain.clone());
                body.insert("roles".into(), json!(roles));
            }
        }
        if let Scope::Trust(trust_id, _) = &token.scope {
            if let Some(t) = self.trusts.iter().find(|t| &t.id == trust_id) {
                body.insert(
                    "OS-TRUST:trust".into(),
                    json!({
                        "id": t.id,
                        "impersonation": t.impersonation,
                        "trustee_user": {"id": t.trustee_user_id},
                        "trustor_user": {"id": t.trustor_user_id},
                    }),
                );
            }
        }
        if let Some(ac_id) = &token.application_credential_id {
            if let Some(ac) = self.application_credentials.iter().find(|a| &a.id == ac_id) {
                body.insert(
                    "application_credential".into(),
                    json!({"id": ac.id, "name": ac.name, "restricted": true}),
                );
            }
        }
        if catalog && token.scope != Scope::Unscoped {
            body.insert("catalog".into(), self.catalog(endpoints, lbaas));
        }
        json!({"token": body})
    }

    /// identity, network and (in Octavia mode) load-balancer, each with public, internal and
    /// admin interfaces on the same listener.
    pub fn catalog(&self, endpoints: &Endpoints, lbaas: LbaasMode) -> Value {
        let mut services = vec![
            ("identity", "keystone", format!("{}/v3", endpoints.keystone)),
            ("network", "neutron", endpoints.neutron.clone()),
        ];
        if lbaas == LbaasMode::Octavia {
            services.push(("load-balancer", "octavia", endpoints.octavia.clone()));
        }
        let entries: Vec<Value> = services
            .into_iter()
            .map(|(kind, name, url)| {
                let endpoints: Vec<Value> = ["public", "internal", "admin"]
                    .iter()
                    .map(|interface| {
                        json!({
                            "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("{url}#{interface}").as_bytes()).simple().to_string(),
                            "interface": interface,
                            "region": self.region,
                            "region_id": self.region,
                            "url": url,
                        })
                    })
                    .collect();
                json!({
                    "endpoints": endpoints,
                    "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, kind.as_bytes()).simple().to_string(),
                    "type": kind,
                    "name": name,
                })
            })
            .collect();
        Value::Array(entries)
    }
}

fn unauthorized_scope() -> ApiError {
    ApiError::keystone(
        StatusCode::UNAUTHORIZED,
        "The request you have made requires authentication.",
    )
}

fn bad_credentials() -> ApiError {
    ApiError::keystone(
        StatusCode::UNAUTHORIZED,
        "The request you have made requires authentication.",
    )
}

/// Keystone's JSON-schema message; the field path is relative to `auth` and omitted at its root.
fn invalid(field: &str, reason: &str) -> ApiError {
    let message = if field.is_empty() {
        reason.to_string()
    } else {
        format!("Invalid input for field '{field}': {reason}")
    };
    ApiError::keystone(StatusCode::BAD_REQUEST, message)
}

const NOT_JSON: &str = "Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.";

fn not_json() -> ApiError {
    ApiError::keystone(StatusCode::BAD_REQUEST, NOT_JSON)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// Reads `obj[key]` as an object, with Keystone-style validation messages.
fn get_obj<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(invalid(
            &join(path, key),
            &format!("{} is not of type 'object'", py_repr(other)),
        )),
    }
}

fn get_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(invalid(
            &join(path, key),
            &format!("{} is not of type 'string'", py_repr(other)),
        )),
    }
}

fn require<T>(value: Option<T>, field: &str, path: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| invalid(path, &format!("'{field}' is a required property")))
}

/// `{"id": …}` or `{"name": …, "domain": {"id"|"name"}}` of a domain-scoped entity; returns
/// (id, name, domain id or name).
fn domain_matches(domain: Option<&Map<String, Value>>, path: &str) -> Result<bool, ApiError> {
    let Some(domain) = domain else {
        return Ok(true);
    };
    let id = get_str(domain, "id", path)?;
    let name = get_str(domain, "name", path)?;
    Ok(id.is_none_or(|i| i == DEFAULT_DOMAIN_ID) && name.is_none_or(|n| n == DEFAULT_DOMAIN_NAME))
}

impl KeystoneState {
    fn find_user(&self, user: &Map<String, Value>, path: &str) -> Result<Option<&User>, ApiError> {
        let domain = get_obj(user, "domain", path)?;
        if let Some(id) = get_str(user, "id", path)? {
            return Ok(self.user(id));
        }
        let name = require(get_str(user, "name", path)?, "name", path)?;
        if domain.is_none() {
            return Err(ApiError::keystone(
                StatusCode::BAD_REQUEST,
                "Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
            ));
        }
        if !domain_matches(domain, &format!("{path}/domain"))? {
            return Ok(None);
        }
        Ok(self.user_by_name(name))
    }

    fn resolve_project_scope(&self, project: &Map<String, Value>) -> Result<String, ApiError> {
        let path = "scope/project";
        if let Some(id) = get_str(project, "id", path)? {
            return self
                .project(id)
                .map(|p| p.id.clone())
                .ok_or_else(unauthorized_scope);
        }
        let name = require(get_str(project, "name", path)?, "name", path)?;
        let domain = get_obj(project, "domain", path)?;
        if domain.is_none() {
            return Err(ApiError::keystone(
                StatusCode::BAD_REQUEST,
                "Expecting to find domain in project. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
            ));
        }
        if !domain_matches(domain, "scope/project/domain")? {
            return Err(unauthorized_scope());
        }
        self.project_by_name(name)
            .map(|p| p.id.clone())
            .ok_or_else(unauthorized_scope)
    }

    /// POST /v3/auth/tokens: returns the new token id and its token.
    fn authenticate_request(&mut self, body: &Value) -> Result<(String, Token), ApiError> {
        let root = body.as_object().ok_or_else(not_json)?;
        let auth = require(get_obj(root, "auth", "")?, "auth", "")?;
        let identity = require(get_obj(auth, "identity", "")?, "identity", "")?;
        let methods: Vec<String> = match identity.get("methods") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|m| {
                    m.as_str().map(str::to_string).ok_or_else(|| {
                        invalid(
                            "identity/methods",
                            &format!("{} is not of type 'string'", py_repr(m)),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(invalid(
                    "identity/methods",
                    &format!("{} is not of type 'array'", py_repr(other)),
                ))
            }
            None => return Err(invalid("identity", "'methods' is a required property")),
        };
        let method = match methods.as_slice() {
            [m] => m.clone(),
            [] => return Err(invalid("identity/methods", "[] is too short")),
            _ => return Err(bad_credentials()),
        };
        // (user id, scope forced by the method, expiry cap, application credential)
        let (user_id, forced_scope, cap, app_cred) = match method.as_str() {
            "password" => {
                let pw = require(
                    get_obj(identity, "password", "identity")?,
                    "password",
                    "identity",
                )?;
                let user = require(
                    get_obj(pw, "user", "identity/password")?,
                    "user",
                    "identity/password",
                )?;
                let given = get_str(user, "password", "identity/password/user")?;
                let found = self.find_user(user, "identity/password/user")?;
                match (found, given) {
                    (Some(u), Some(p)) if u.password.expose() == p => {
                        (u.id.clone(), None, None, None)
                    }
                    _ => return Err(bad_credentials()),
                }
            }
            "application_credential" => {
                let path = "identity/application_credential";
                let ac = require(
                    get_obj(identity, "application_credential", "identity")?,
                    "application_credential",
                    "identity",
                )?;
                let secret = require(get_str(ac, "secret", path)?, "secret", path)?;
                let found = if let Some(id) = get_str(ac, "id", path)? {
                    self.application_credentials.iter().find(|a| a.id == id)
                } else {
                    let name = require(get_str(ac, "name", path)?, "name", path)?;
                    let user = require(get_obj(ac, "user", path)?, "user", path)?;
                    let owner = self
                        .find_user(user, &format!("{path}/user"))?
                        .map(|u| u.id.clone());
                    self.application_credentials
                        .iter()
                        .find(|a| a.name == name && Some(&a.user_id) == owner.as_ref())
                };
                match found {
                    Some(a) if a.secret.expose() == secret => (
                        a.user_id.clone(),
                        Some(Scope::Project(a.project_id.clone())),
                        None,
                        Some(a.clone()),
                    ),
                    _ => return Err(bad_credentials()),
                }
            }
            "token" => {
                let path = "identity/token";
                let t = require(get_obj(identity, "token", "identity")?, "token", "identity")?;
                let id = require(get_str(t, "id", path)?, "id", path)?;
                let now = Utc::now();
                match self.tokens.get(id) {
                    Some(t) if t.expires_at > now => {
                        // A token obtained from a token never outlives it.
                        (t.user_id.clone(), None, Some(t.expires_at), None)
                    }
                    _ => return Err(bad_credentials()),
                }
            }
            _ => return Err(bad_credentials()),
        };
        let requested = match get_obj(auth, "scope", "")? {
            Some(scope) => Some(self.parse_scope(scope, &user_id)?),
            None => None,
        };
        if let (Some(_), Some(_)) = (&forced_scope, &requested) {
            // Application credentials are bound to their project; asking for another scope is refused.
            return Err(unauthorized_scope());
        }
        let scope = forced_scope.or(requested).unwrap_or_else(|| {
            self.user(&user_id)
                .and_then(|u| u.default_project_id.clone())
                .map(Scope::Project)
                .unwrap_or(Scope::Unscoped)
        });
        self.issue(&user_id, scope, vec![method], cap, app_cred.as_ref())
    }

    fn parse_scope(&self, scope: &Map<String, Value>, user_id: &str) -> Result<Scope, ApiError> {
        if let Some(project) = get_obj(scope, "project", "scope")? {
            return Ok(Scope::Project(self.resolve_project_scope(project)?));
        }
        if let Some(domain) = get_obj(scope, "domain", "scope")? {
            let id = get_str(domain, "id", "scope/domain")?;
            let name = get_str(domain, "name", "scope/domain")?;
            if id.is_none() && name.is_none() {
                return Err(invalid("scope/domain", "'id' is a required property"));
            }
            if !domain_matches(Some(domain), "scope/domain")? {
                return Err(unauthorized_scope());
            }
            return Ok(Scope::Domain(DEFAULT_DOMAIN_ID.to_string()));
        }
        if let Some(trust) = get_obj(scope, "OS-TRUST:trust", "scope")? {
            let id = require(
                get_str(trust, "id", "scope/OS-TRUST:trust")?,
                "id",
                "scope/OS-TRUST:trust",
            )?;
            let t = self.trusts.iter().find(|t| t.id == id).ok_or_else(|| {
                ApiError::keystone(
                    StatusCode::NOT_FOUND,
                    format!("Could not find trust: {id}."),
                )
            })?;
            if t.trustee_user_id != user_id {
                return Err(ApiError::keystone(
                    StatusCode::FORBIDDEN,
                    "User is not a trustee.",
                ));
            }
            return Ok(Scope::Trust(t.id.clone(), t.project_id.clone()));
        }
        if scope.contains_key("system") {
            return Err(unauthorized_scope());
        }
        Err(invalid("scope", "Additional properties are not allowed"))
    }
}

/// Routes of the identity listener. `/v3/auth/tokens` handles its own authentication (the
/// auth middleware lets it through).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version_v3))
        .route("/v3/", get(version_v3))
        .route(
            "/v3/auth/tokens",
            get(validate_token)
                .head(check_token)
                .post(create_token)
                .delete(revoke_token),
        )
        .route("/v3/auth/catalog", get(get_catalog))
        .route("/v3/auth/projects", get(auth_projects))
        .route("/v3/projects", get(list_projects).post(create_project))
        .route(
            "/v3/projects/{id}",
            get(show_project).delete(delete_project),
        )
        .route(
            "/v3/users/{user_id}/application_credentials",
            post(create_application_credential),
        )
        .route(
            "/v3/users/{user_id}/application_credentials/{id}",
            delete(delete_application_credential),
        )
        .route("/v3/users", get(list_users))
        .route("/v3/regions", get(list_regions))
}

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(State(state): State<AppState>) -> Response {
    let doc = json!({"versions": {"values": [version_doc(&state.inner.endpoints.keystone)]}});
    (StatusCode::MULTIPLE_CHOICES, Json(doc)).into_response()
}

async fn version_v3(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"version": version_doc(&state.inner.endpoints.keystone)}))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| not_json())
}

async fn create_token(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let value = parse_json(&body)?;
    let shared = &state.inner;
    let mut world = shared.world.lock();
    let (id, token) = world.keystone.authenticate_request(&value)?;
    let catalog = !query.contains_key("nocatalog");
    let body = world
        .keystone
        .token_body(&token, &shared.endpoints, shared.config.lbaas, catalog);
    drop(world);
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("X-Subject-Token", v);
    }
    Ok(response)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Shared by GET and HEAD: the caller's token must be valid and the subject token must exist.
fn subject_token(state: &AppState, headers: &HeaderMap) -> Result<(String, Token), ApiError> {
    let world = state.inner.world.lock();
    let now = Utc::now();
    let caller = header(headers, "X-Auth-Token").ok_or_else(ApiError::unauthorized)?;
    world
        .keystone
        .authenticate(caller, now)
        .ok_or_else(ApiError::unauthorized)?;
    let subject = header(headers, "X-Subject-Token").ok_or_else(|| {
        ApiError::keystone(StatusCode::NOT_FOUND, "Could not recognize Fernet token")
    })?;
    match world.keystone.tokens.get(subject) {
        Some(t) if t.expires_at > now => Ok((subject.to_string(), t.clone())),
        _ => Err(ApiError::keystone(
            StatusCode::NOT_FOUND,
            "Could not recognize Fernet token",
        )),
    }
}

async fn validate_token(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, token) = subject_token(&state, &headers)?;
    let shared = &state.inner;
    let body = shared.world.lock().keystone.token_body(
        &token,
        &shared.endpoints,
        shared.config.lbaas,
        !query.contains_key("nocatalog"),
    );
    let mut response = Json(body).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("X-Subject-Token", v);
    }
    Ok(response)
}

async fn check_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    subject_token(&state, &headers)?;
    Ok(StatusCode::OK)
}

async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (id, _) = subject_token(&state, &headers)?;
    state.inner.world.lock().keystone.tokens.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

fn caller(state: &AppState, headers: &HeaderMap) -> Result<AuthContext, ApiError> {
    let token = header(headers, "X-Auth-Token").ok_or_else(ApiError::unauthorized)?;
    state
        .inner
        .world
        .lock()
        .keystone
        .authenticate(token, Utc::now())
        .ok_or_else(ApiError::unauthorized)
}

async fn get_catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers)?;
    let shared = &state.inner;
    let catalog = shared
        .world
        .lock()
        .keystone
        .catalog(&shared.endpoints, shared.config.lbaas);
    Ok(Json(
        // Unlike the collection APIs, the catalog has no previous/next links.
        json!({"catalog": catalog, "links": {"self": format!("{}/v3/auth/catalog", shared.endpoints.keystone)}}),
    ))
}

fn project_json(p: &Project, base: &str) -> Value {
    json!({
        "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": "",
        "enabled": true, "is_domain": false, "parent_id": p.domain_id, "tags": [], "options": {},
        "links": {"self": format!("{base}/v3/projects/{}", p.id)},
    })
}

async fn auth_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers)?;
    let base = &state.inner.endpoints.keystone;
    let world = state.inner.world.lock();
    let projects: Vec<Value> = world
        .keystone
        .projects
        .iter()
        .filter(|p| {
            world
                .keystone
                .assignments
                .contains_key(&(who.user_id.clone(), p.id.clone()))
        })
        .map(|p| project_json(p, base))
        .collect();
    Ok(Json(
        json!({"projects": projects, "links": {"self": format!("{base}/v3/auth/projects"), "previous": null, "next": null}}),
    ))
}

fn forbidden() -> ApiError {
    ApiError::keystone(
        StatusCode::FORBIDDEN,
        "You are not authorized to perform the requested action.",
    )
}

async fn list_projects(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers)?;
    if !who.is_admin() {
        return Err(forbidden());
    }
    let base = &state.inner.endpoints.keystone;
    let world = state.inner.world.lock();
    let projects: Vec<Value> = world
        .keystone
        .projects
        .iter()
        .filter(|p| query.get("name").is_none_or(|n| n == &p.name))
        .map(|p| project_json(p, base))
        .collect();
    Ok(Json(
        json!({"projects": projects, "links": {"self": format!("{base}/v3/projects"), "previous": null, "next": null}}),
    ))
}

async fn list_users(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers)?;
    if !who.is_admin() {
        return Err(forbidden());
    }
    let base = &state.inner.endpoints.keystone;
    let world = state.inner.world.lock();
    let users: Vec<Value> = world
        .keystone
        .users
        .iter()
        .filter(|u| query.get("name").is_none_or(|n| n == &u.name))
        .map(|u| {
            json!({
                "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": true,
                "default_project_id": u.default_project_id, "password_expires_at": null, "options": {},
                "links": {"self": format!("{base}/v3/users/{}", u.id)},
            })
        })
        .collect();
    Ok(Json(
        json!({"users": users, "links": {"self": format!("{base}/v3/users"), "previous": null, "next": null}}),
    ))
}

async fn list_regions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers)?;
    let base = &state.inner.endpoints.keystone;
    let region = state.inner.world.lock().keystone.region.clone();
    Ok(Json(
        json!({"regions": [{"id": region, "description": "", "parent_region_id": null,
        "links": {"self": format!("{base}/v3/regions/{region}")}}],
        "links": {"self": format!("{base}/v3/regions"), "previous": null, "next": null}}),
    ))
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::keystone(StatusCode::CONFLICT, message)
}

fn keystone_not_found(message: impl Into<String>) -> ApiError {
    ApiError::keystone(StatusCode::NOT_FOUND, message)
}

/// `POST /v3/projects` (admin): a project in the default domain.
async fn create_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let who = caller(&state, &headers)?;
    if !who.is_admin() {
        return Err(forbidden());
    }
    let value = parse_json(&body)?;
    let value = value.as_object().ok_or_else(not_json)?;
    let project = get_obj(value, "project", "")?;
    let project = require(project, "project", "")?;
    let name = require(get_str(project, "name", "project")?, "name", "project")?.to_string();
    let domain_id = get_str(project, "domain_id", "project")?
        .unwrap_or(DEFAULT_DOMAIN_ID)
        .to_string();
    if domain_id != DEFAULT_DOMAIN_ID {
        return Err(ApiError::keystone(
            StatusCode::BAD_REQUEST,
            format!("Could not find domain: {domain_id}."),
        ));
    }
    let base = state.inner.endpoints.keystone.clone();
    let mut world = state.inner.world.lock();
    let ks = &mut world.keystone;
    if ks.project_by_name(&name).is_some() {
        return Err(conflict(format!(
            "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {name}."
        )));
    }
    let p = Project {
        id: random_hex(),
        name,
        domain_id,
    };
    let body = json!({"project": project_json(&p, &base)});
    ks.projects.push(p);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /v3/projects/{id}`: for admins and members of the project; 404 otherwise (clients
/// such as the openstack CLI then look the name up through the list).
async fn show_project(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers)?;
    let base = &state.inner.endpoints.keystone;
    let world = state.inner.world.lock();
    let ks = &world.keystone;
    let visible = who.is_admin()
        || ks
            .assignments
            .contains_key(&(who.user_id.clone(), id.clone()));
    match ks.project(&id) {
        Some(p) if visible => Ok(Json(json!({"project": project_json(p, base)}))),
        Some(_) => Err(forbidden()),
        None => Err(keystone_not_found(format!("Could not find project: {id}."))),
    }
}

/// `DELETE /v3/projects/{id}` (admin); its role assignments go with it.
async fn delete_project(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let who = caller(&state, &headers)?;
    if !who.is_admin() {
        return Err(forbidden());
    }
    let mut world = state.inner.world.lock();
    let ks = &mut world.keystone;
    let before = ks.projects.len();
    ks.projects.retain(|p| p.id != id);
    if ks.projects.len() == before {
        return Err(keystone_not_found(format!("Could not find project: {id}.")));
    }
    ks.assignments.retain(|(_, project), _| *project != id);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{user_id}/application_credentials`: only for oneself, with the roles of
/// the calling token on its project; the secret is shown once, in this answer.
async fn create_application_credential(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let who = caller(&state, &headers)?;
    if who.user_id != user_id {
        return Err(forbidden());
    }
    let value = parse_json(&body)?;
    let value = value.as_object().ok_or_else(not_json)?;
    let ac = require(
        get_obj(value, "application_credential", "")?,
        "application_credential",
        "",
    )?;
    let name = require(
        get_str(ac, "name", "application_credential")?,
        "name",
        "application_credential",
    )?
    .to_string();
    let description = get_str(ac, "description", "application_credential")?.map(str::to_string);
    let base = state.inner.endpoints.keystone.clone();
    let mut world = state.inner.world.lock();
    let ks = &mut world.keystone;
    if ks
        .application_credentials
        .iter()
        .any(|a| a.user_id == user_id && a.name == name)
    {
        return Err(conflict(format!(
            "Conflict occurred attempting to store application_credential - Duplicate entry found with name {name}."
        )));
    }
    let roles: Vec<&Role> = ks
        .roles
        .iter()
        .filter(|r| who.roles.contains(&r.name))
        .collect();
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
    let roles_json: Vec<Value> = roles
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": null, "description": null, "options": {"immutable": true}}))
        .collect();
    let secret = Secret::new(random_hex());
    let id = random_hex();
    let body = json!({"application_credential": {
        "id": id, "name": name, "description": description, "user_id": user_id,
        "project_id": who.project_id, "roles": roles_json, "expires_at": null,
        "unrestricted": null, "system": null, "secret": secret.expose(),
        "links": {"self": format!("{base}/v3/application_credentials/{id}")},
    }});
    ks.application_credentials.push(ApplicationCredential {
        id,
        name,
        secret,
        user_id,
        project_id: who.project_id,
        roles: role_ids,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /v3/users/{user_id}/application_credentials/{id}`.
async fn delete_application_credential(
    State(state): State<AppState>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let who = caller(&state, &headers)?;
    if who.user_id != user_id && !who.is_admin() {
        return Err(forbidden());
    }
    let mut world = state.inner.world.lock();
    let ks = &mut world.keystone;
    let before = ks.application_credentials.len();
    ks.application_credentials
        .retain(|a| !(a.id == id && a.user_id == user_id));
    if ks.application_credentials.len() == before {
        return Err(keystone_not_found(format!(
            "Could not find Application Credential: {id}."
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_passwords_secrets_and_token_ids() {
        let mut ks = KeystoneState::seeded(&SandboxConfig::default());
        let admin = ks.user_by_name("admin").map(|u| u.id.clone()).unwrap();
        let project = ks.project_by_name("admin").map(|p| p.id.clone()).unwrap();
        let (token, _) = ks
            .issue(
                &admin,
                Scope::Project(project),
                vec!["password".into()],
                None,
                None,
            )
            .unwrap();
        let secret = ks.application_credentials[0].secret.expose().to_string();
        let debug = format!("{ks:?}");
        assert!(!debug.contains(&token));
        assert!(!debug.contains(&secret));
        assert!(!debug.contains("\"secret\""));
        assert!(ks.authenticate(&token, Utc::now()).is_some());
        assert!(ks
            .authenticate(&token, Utc::now() + chrono::Duration::hours(2))
            .is_none());
    }
}
