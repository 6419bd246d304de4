//! Neutron LBaaS v1 (`/v2.0/lb/{pools,vips,members,health_monitors}`): one pool with members,
//! a health monitor associated to the pool, and one VIP. Plain serde types with the API's
//! field names. It must not know about the v2 model.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::Result;
use crate::lbaas::types::SessionPersistence;
use crate::neutron::strip_version;
use crate::query::{list_all, seg, ListQuery};
use crate::session::{Request, Session};

const SERVICE: &str = "network";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct V1Pool {
    pub id: String,
    pub name: String,
    pub description: String,
    pub subnet_id: String,
    pub protocol: String,
    pub lb_method: String,
    pub provider: Option<String>,
    pub vip_id: Option<String>,
    pub members: Vec<String>,
    pub health_monitors: Vec<String>,
    pub admin_state_up: bool,
    pub status: String,
    pub tenant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct V1CreatePool {
    pub name: String,
    pub subnet_id: String,
    /// TCP, HTTP, HTTPS.
    pub protocol: String,
    /// ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP.
    pub lb_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct V1UpdatePool {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct V1Vip {
    pub id: String,
    pub name: String,
    pub description: String,
    pub subnet_id: String,
    pub address: String,
    pub protocol: String,
    pub protocol_port: u16,
    pub pool_id: String,
    pub port_id: String,
    pub connection_limit: Option<i64>,
    pub session_persistence: Option<SessionPersistence>,
    pub admin_state_up: bool,
    pub status: String,
    pub tenant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct V1CreateVip {
    pub name: String,
    pub subnet_id: String,
    pub protocol: String,
    pub protocol_port: u16,
    pub pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<SessionPersistence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct V1UpdateVip {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i64>,
    /// `Some(None)` clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<Option<SessionPersistence>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct V1Member {
    pub id: String,
    pub pool_id: String,
    pub address: String,
    pub protocol_port: u16,
    pub weight: Option<u32>,
    pub admin_state_up: bool,
    pub status: String,
    pub tenant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct V1CreateMember {
    pub pool_id: String,
    pub address: String,
    pub protocol_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct V1HealthMonitor {
    pub id: String,
    /// PING, TCP, HTTP, HTTPS.
    #[serde(rename = "type")]
    pub monitor_type: String,
    pub delay: u64,
    pub timeout: u64,
    pub max_retries: u32,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub admin_state_up: bool,
    pub pools: Vec<Value>,
    pub tenant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct V1CreateHealthMonitor {
    #[serde(rename = "type")]
    pub monitor_type: String,
    pub delay: u64,
    pub timeout: u64,
    pub max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_codes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

/// The LBaaS v1 client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LbaasV1 {
    session: Session,
    root: String,
}

impl LbaasV1 {
    pub async fn new(session: &Session) -> Result<LbaasV1> {
        let url = session.endpoint(SERVICE).await?;
        Ok(LbaasV1 {
            session: session.clone(),
            root: strip_version(&url, &["/v2.0"]),
        })
    }

    fn req(&self, method: Method, path: String) -> Request {
        Request::new(SERVICE, method, &self.root, format!("/v2.0/lb{path}"))
    }

    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        collection: &str,
        q: &ListQuery,
    ) -> Result<Vec<T>> {
        list_all(
            &self.session,
            SERVICE,
            &self.root,
            &format!("/v2.0/lb{path}"),
            collection,
            q,
        )
        .await
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: String,
        key: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json_under(key, b)?;
        }
        let resp = self.session.send(r).await?;
        resp.take(key)
    }

    async fn delete(&self, path: String) -> Result<()> {
        self.session
            .send(self.req(Method::DELETE, path))
            .await
            .map(|_| ())
    }

    pub async fn list_pools(&self, q: &ListQuery) -> Result<Vec<V1Pool>> {
        self.list("/pools", "pools", q).await
    }
    pub async fn get_pool(&self, id: &str) -> Result<V1Pool> {
        self.call(
            Method::GET,
            format!("/pools/{}", seg(id)),
            "pool",
            None::<&()>,
        )
        .await
    }
    pub async fn create_pool(&self, p: &V1CreatePool) -> Result<V1Pool> {
        self.call(Method::POST, "/pools".into(), "pool", Some(p))
            .await
    }
    pub async fn update_pool(&self, id: &str, u: &V1UpdatePool) -> Result<V1Pool> {
        self.call(Method::PUT, format!("/pools/{}", seg(id)), "pool", Some(u))
            .await
    }
    pub async fn delete_pool(&self, id: &str) -> Result<()> {
        self.delete(format!("/pools/{}", seg(id))).await
    }

    pub async fn list_vips(&self, q: &ListQuery) -> Result<Vec<V1Vip>> {
        self.list("/vips", "vips", q).await
    }
    pub async fn get_vip(&self, id: &str) -> Result<V1Vip> {
        self.call(
            Method::GET,
            format!("/vips/{}", seg(id)),
            "vip",
            None::<&()>,
        )
        .await
    }
    pub async fn create_vip(&self, v: &V1CreateVip) -> Result<V1Vip> {
        self.call(Method::POST, "/vips".into(), "vip", Some(v))
            .await
    }
    pub async fn update_vip(&self, id: &str, u: &V1UpdateVip) -> Result<V1Vip> {
        self.call(Method::PUT, format!("/vips/{}", seg(id)), "vip", Some(u))
            .await
    }
    pub async fn delete_vip(&self, id: &str) -> Result<()> {
        self.delete(format!("/vips/{}", seg(id))).await
    }

    pub async fn list_members(&self, q: &ListQuery) -> Result<Vec<V1Member>> {
        self.list("/members", "members", q).await
    }
    pub async fn create_member(&self, m: &V1CreateMember) -> Result<V1Member> {
        self.call(Method::POST, "/members".into(), "member", Some(m))
            .await
    }
    pub async fn delete_member(&self, id: &str) -> Result<()> {
        self.delete(format!("/members/{}", seg(id))).await
    }

    pub async fn list_health_monitors(&self, q: &ListQuery) -> Result<Vec<V1HealthMonitor>> {
        self.list("/health_monitors", "health_monitors", q).await
    }
    pub async fn create_health_monitor(
        &self,
        h: &V1CreateHealthMonitor,
    ) -> Result<V1HealthMonitor> {
        self.call(
            Method::POST,
            "/health_monitors".into(),
            "health_monitor",
            Some(h),
        )
        .await
    }
    pub async fn get_health_monitor(&self, id: &str) -> Result<V1HealthMonitor> {
        self.call(
            Method::GET,
            format!("/health_monitors/{}", seg(id)),
            "health_monitor",
            None::<&()>,
        )
        .await
    }
    pub async fn delete_health_monitor(&self, id: &str) -> Result<()> {
        self.delete(format!("/health_monitors/{}", seg(id))).await
    }
    /// `POST /v2.0/lb/pools/{pool}/health_monitors` with `{"health_monitor": {"id": ...}}`.
    pub async fn associate_health_monitor(&self, pool_id: &str, monitor_id: &str) -> Result<()> {
        let r = self
            .req(
                Method::POST,
                format!("/pools/{}/health_monitors", seg(pool_id)),
            )
            .json(&json!({ "health_monitor": { "id": monitor_id } }))?;
        self.session.send(r).await.map(|_| ())
    }
    pub async fn disassociate_health_monitor(&self, pool_id: &str, monitor_id: &str) -> Result<()> {
        self.delete(format!(
            "/pools/{}/health_monitors/{}",
            seg(pool_id),
            seg(monitor_id)
        ))
        .await
    }
}
