//! Keystone v3: the authentication request for each credential kind (password, application
//! credential, trust), the token answer with its catalog, and endpoint selection by service
//! type, interface and region. It builds and parses JSON only; sending, caching and re-auth
//! live in `session`.

use chrono::{DateTime, Utc};
use model::config::{EndpointInterface, GlobalConfig, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// How to authenticate; built once from `[Global]`. Secrets stay wrapped.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthMethod {
    Password {
        user: UserRef,
        password: Secret,
        scope: Scope,
    },
    ApplicationCredential {
        credential: AppCredRef,
        secret: Secret,
    },
    /// A trustee's password authentication scoped to a trust (Magnum's `user-id`, `password`,
    /// `trust-id`, or `trustee-id` / `trustee-password`).
    Trust {
        user: UserRef,
        password: Secret,
        trust_id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppCredRef {
    Id(String),
    Name { name: String, user: UserRef },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    ProjectId(String),
    ProjectName { name: String, domain: DomainRef },
    Domain(DomainRef),
    Unscoped,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn non_empty_secret(s: &Option<Secret>) -> Option<&Secret> {
    s.as_ref().filter(|s| !s.is_empty())
}

impl AuthMethod {
    /// Picks the credential kind the way OCCM does: an application credential wins, then a
    /// trust, then a password.
    pub fn from_config(g: &GlobalConfig) -> Result<AuthMethod> {
        let user_domain = non_empty(&g.user_domain_id)
            .map(|d| DomainRef::Id(d.into()))
            .or_else(|| non_empty(&g.user_domain_name).map(|d| DomainRef::Name(d.into())))
            .or_else(|| non_empty(&g.domain_id).map(|d| DomainRef::Id(d.into())))
            .or_else(|| non_empty(&g.domain_name).map(|d| DomainRef::Name(d.into())));
        let user = |id: Option<&str>| -> Option<UserRef> {
            if let Some(id) = id {
                return Some(UserRef::Id(id.into()));
            }
            non_empty(&g.username).map(|name| UserRef::Name {
                name: name.into(),
                domain: user_domain
                    .clone()
                    .unwrap_or(DomainRef::Id("default".into())),
            })
        };

        if let Some(secret) = non_empty_secret(&g.application_credential_secret) {
            let credential = if let Some(id) = non_empty(&g.application_credential_id) {
                AppCredRef::Id(id.into())
            } else if let Some(name) = non_empty(&g.application_credential_name) {
                let user = user(non_empty(&g.user_id)).ok_or_else(|| {
                    Error::Config(
                        "application-credential-name needs user-id or username (with user-domain-name/-id)".into(),
                    )
                })?;
                AppCredRef::Name {
                    name: name.into(),
                    user,
                }
            } else {
                return Err(Error::Config(
                    "application-credential-secret is set but neither application-credential-id nor application-credential-name".into(),
                ));
            };
            return Ok(AuthMethod::ApplicationCredential {
                credential,
                secret: secret.clone(),
            });
        }

        if let Some(trust_id) = non_empty(&g.trust_id) {
            let user =
                user(non_empty(&g.trustee_id).or(non_empty(&g.user_id))).ok_or_else(|| {
                    Error::Config("trust-id needs trustee-id or user-id (or username)".into())
                })?;
            let password = non_empty_secret(&g.trustee_password)
                .or(non_empty_secret(&g.password))
                .ok_or_else(|| {
                    Error::Config("trust-id needs trustee-password or password".into())
                })?;
            return Ok(AuthMethod::Trust {
                user,
                password: password.clone(),
                trust_id: trust_id.into(),
            });
        }

        let password = non_empty_secret(&g.password).ok_or_else(|| {
            Error::Config("no credentials: set password (with username or user-id) or an application credential".into())
        })?;
        let user = user(non_empty(&g.user_id)).ok_or_else(|| {
            Error::Config("password authentication needs username or user-id".into())
        })?;
        let project_domain = non_empty(&g.project_domain_id)
            .map(|d| DomainRef::Id(d.into()))
            .or_else(|| non_empty(&g.project_domain_name).map(|d| DomainRef::Name(d.into())))
            .or_else(|| non_empty(&g.domain_id).map(|d| DomainRef::Id(d.into())))
            .or_else(|| non_empty(&g.domain_name).map(|d| DomainRef::Name(d.into())))
            .or_else(|| user_domain.clone());
        let scope = if let Some(id) = non_empty(&g.project_id) {
            Scope::ProjectId(id.into())
        } else if let Some(name) = non_empty(&g.project_name) {
            Scope::ProjectName {
                name: name.into(),
                domain: project_domain.unwrap_or(DomainRef::Id("default".into())),
            }
        } else if let Some(d) = non_empty(&g.domain_id) {
            Scope::Domain(DomainRef::Id(d.into()))
        } else if let Some(d) = non_empty(&g.domain_name) {
            Scope::Domain(DomainRef::Name(d.into()))
        } else {
            Scope::Unscoped
        };
        Ok(AuthMethod::Password {
            user,
            password: password.clone(),
            scope,
        })
    }

    /// The secrets this method holds, for redaction of anything that might echo them.
    pub fn secrets(&self) -> Vec<Secret> {
        match self {
            AuthMethod::Password { password, .. } | AuthMethod::Trust { password, .. } => {
                vec![password.clone()]
            }
            AuthMethod::ApplicationCredential { secret, .. } => vec![secret.clone()],
        }
    }

    /// The body of `POST /v3/auth/tokens`. The only place a secret is exposed.
    pub fn request_body(&self) -> Value {
        match self {
            AuthMethod::Password {
                user,
                password,
                scope,
            } => {
                let mut auth = json!({
                    "identity": {
                        "methods": ["password"],
                        "password": { "user": user_json(user, Some(password)) }
                    }
                });
                if let Some(s) = scope_json(scope) {
                    auth["scope"] = s;
                }
                json!({ "auth": auth })
            }
            AuthMethod::ApplicationCredential { credential, secret } => {
                let ac = match credential {
                    AppCredRef::Id(id) => json!({ "id": id, "secret": secret.expose() }),
                    AppCredRef::Name { name, user } => {
                        json!({ "name": name, "secret": secret.expose(), "user": user_json(user, None) })
                    }
                };
                json!({ "auth": { "identity": { "methods": ["application_credential"], "application_credential": ac } } })
            }
            AuthMethod::Trust {
                user,
                password,
                trust_id,
            } => json!({
                "auth": {
                    "identity": { "methods": ["password"], "password": { "user": user_json(user, Some(password)) } },
                    "scope": { "OS-TRUST:trust": { "id": trust_id } }
                }
            }),
        }
    }
}

fn domain_json(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn user_json(u: &UserRef, password: Option<&Secret>) -> Value {
    let mut v = match u {
        UserRef::Id(id) => json!({ "id": id }),
        UserRef::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    };
    if let Some(p) = password {
        v["password"] = Value::String(p.expose().to_string());
    }
    v
}

fn scope_json(s: &Scope) -> Option<Value> {
    match s {
        Scope::ProjectId(id) => Some(json!({ "project": { "id": id } })),
        Scope::ProjectName { name, domain } => {
            Some(json!({ "project": { "name": name, "domain": domain_json(domain) } }))
        }
        Scope::Domain(d) => Some(json!({ "domain": domain_json(d) })),
        Scope::Unscoped => None,
    }
}

pub const TOKENS_PATH: &str = "/v3/auth/tokens";

/// `POST .../v3/auth/tokens` for any form of `auth-url` (`http://k:5000`, `.../v3`, `.../v3/`,
/// `.../v2.0`, `.../identity/v3`).
pub fn tokens_url(auth_url: &str) -> Result<String> {
    let trimmed = auth_url.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Error::Config("auth-url is empty".into()));
    }
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| Error::Config(format!("auth-url {trimmed:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "auth-url {trimmed:?}: scheme must be http or https"
        )));
    }
    let base = if let Some(b) = trimmed.strip_suffix("/v3") {
        b
    } else if let Some(b) = trimmed.strip_suffix("/v2.0") {
        b
    } else {
        trimmed
    };
    Ok(format!("{base}/v3/auth/tokens"))
}

/// A named reference as Keystone returns it (`{"id", "name", "domain"}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Box<NamedRef>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEndpoint {
    #[serde(default)]
    pub id: String,
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogService {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// The service catalog of the current token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub services: Vec<CatalogService>,
}

pub fn interface_name(i: EndpointInterface) -> &'static str {
    match i {
        EndpointInterface::Public => "public",
        EndpointInterface::Internal => "internal",
        EndpointInterface::Admin => "admin",
    }
}

impl Catalog {
    pub fn has_service(&self, service_type: &str) -> bool {
        self.services
            .iter()
            .any(|s| s.service_type == service_type && !s.endpoints.is_empty())
    }

    /// The endpoint URL for `service_type` at `interface`, in `region` when one is configured.
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: EndpointInterface,
        region: Option<&str>,
    ) -> Result<String> {
        let iface = interface_name(interface);
        let region = region.map(str::trim).filter(|r| !r.is_empty());
        self.services
            .iter()
            .filter(|s| s.service_type == service_type)
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.interface.eq_ignore_ascii_case(iface))
            .find(|e| match region {
                None => true,
                Some(r) => e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r),
            })
            .map(|e| e.url.trim_end_matches('/').to_string())
            .ok_or_else(|| Error::EndpointNotFound {
                service_type: service_type.to_string(),
                interface: iface.to_string(),
                region: region.map(str::to_string),
            })
    }
}

/// The token body's parts we use.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenBody {
    pub token: TokenDetails,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenDetails {
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub catalog: Vec<CatalogService>,
    #[serde(default)]
    pub project: Option<NamedRef>,
    #[serde(default)]
    pub domain: Option<NamedRef>,
    #[serde(default)]
    pub user: Option<NamedRef>,
    #[serde(default)]
    pub roles: Vec<NamedRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_url_forms() {
        for (u, want) in [
            ("http://k:5000", "http://k:5000/v3/auth/tokens"),
            ("http://k:5000/", "http://k:5000/v3/auth/tokens"),
            ("http://k:5000/v3", "http://k:5000/v3/auth/tokens"),
            ("http://k:5000/v3/", "http://k:5000/v3/auth/tokens"),
            ("http://k/identity/v3", "http://k/identity/v3/auth/tokens"),
            ("http://k:5000/v2.0", "http://k:5000/v3/auth/tokens"),
        ] {
            assert_eq!(tokens_url(u).unwrap(), want, "{u}");
        }
        assert!(tokens_url("").is_err());
        assert!(tokens_url("ftp://x").is_err());
    }

    #[test]
    fn password_by_name_with_project_scope() {
        let g = GlobalConfig {
            username: Some("admin".into()),
            password: Some(Secret::new("pw")),
            project_name: Some("admin".into()),
            user_domain_name: Some("Default".into()),
            project_domain_id: Some("default".into()),
            ..Default::default()
        };
        let m = AuthMethod::from_config(&g).unwrap();
        let b = m.request_body();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["identity"]["password"]["user"]["password"], "pw");
        assert_eq!(b["auth"]["scope"]["project"]["domain"]["id"], "default");
        assert!(!format!("{m:?}").contains("pw\""));
    }

    #[test]
    fn app_credential_by_name_and_trust() {
        let g = GlobalConfig {
            application_credential_name: Some("ac".into()),
            application_credential_secret: Some(Secret::new("s")),
            user_id: Some("u1".into()),
            ..Default::default()
        };
        let b = AuthMethod::from_config(&g).unwrap().request_body();
        assert_eq!(
            b["auth"]["identity"]["application_credential"]["user"]["id"],
            "u1"
        );
        assert!(b["auth"].get("scope").is_none());

        let g = GlobalConfig {
            user_id: Some("trustee".into()),
            password: Some(Secret::new("p")),
            trust_id: Some("t1".into()),
            ..Default::default()
        };
        let b = AuthMethod::from_config(&g).unwrap().request_body();
        assert_eq!(b["auth"]["scope"]["OS-TRUST:trust"]["id"], "t1");
        assert_eq!(b["auth"]["identity"]["password"]["user"]["id"], "trustee");
    }

    #[test]
    fn no_credentials_is_config_error() {
        assert!(matches!(
            AuthMethod::from_config(&GlobalConfig::default()),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn endpoint_selection() {
        let c = Catalog {
            services: vec![CatalogService {
                id: "1".into(),
                service_type: "network".into(),
                name: "neutron".into(),
                endpoints: vec![
                    CatalogEndpoint {
                        id: "a".into(),
                        interface: "public".into(),
                        region: Some("R1".into()),
                        region_id: Some("R1".into()),
                        url: "http://pub1/".into(),
                    },
                    CatalogEndpoint {
                        id: "b".into(),
                        interface: "public".into(),
                        region: Some("R2".into()),
                        region_id: Some("R2".into()),
                        url: "http://pub2".into(),
                    },
                    CatalogEndpoint {
                        id: "c".into(),
                        interface: "internal".into(),
                        region: Some("R2".into()),
                        region_id: Some("R2".into()),
                        url: "http://int2".into(),
                    },
                ],
            }],
        };
        assert_eq!(
            c.endpoint("network", EndpointInterface::Public, Some("R2"))
                .unwrap(),
            "http://pub2"
        );
        assert_eq!(
            c.endpoint("network", EndpointInterface::Public, None)
                .unwrap(),
            "http://pub1"
        );
        assert_eq!(
            c.endpoint("network", EndpointInterface::Internal, Some("R2"))
                .unwrap(),
            "http://int2"
        );
        assert!(c
            .endpoint("network", EndpointInterface::Admin, None)
            .is_err());
        assert!(c
            .endpoint("load-balancer", EndpointInterface::Public, None)
            .is_err());
    }
}
