//! Neutron v2.0: networks, subnets, ports, floating IPs, security groups and rules, extensions,
//! quotas, IP availability and tags; plain serde types mirroring the API's field names. It must
//! not know about load balancers or Kubernetes.

use std::collections::BTreeMap;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::{list_all, seg, ListQuery};
use crate::session::{Request, RetryMode, Session};

pub const SERVICE: &str = "network";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub admin_state_up: bool,
    pub shared: bool,
    #[serde(rename = "router:external")]
    pub router_external: bool,
    pub subnets: Vec<String>,
    pub tags: Vec<String>,
    pub project_id: String,
    pub mtu: Option<u32>,
    pub revision_number: Option<u64>,
    pub availability_zones: Vec<String>,
    #[serde(
        rename = "provider:network_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub description: String,
    pub network_id: String,
    pub cidr: String,
    pub ip_version: u8,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<AllocationPool>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub subnetpool_id: Option<String>,
    pub tags: Vec<String>,
    pub project_id: String,
    pub revision_number: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllowedAddressPair {
    pub ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub description: String,
    pub network_id: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    pub status: String,
    pub admin_state_up: bool,
    pub port_security_enabled: Option<bool>,
    pub tags: Vec<String>,
    pub project_id: String,
    pub revision_number: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreatePort {
    pub network_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ips: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdatePort {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_address_pairs: Option<Vec<AllowedAddressPair>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    pub floating_network_id: String,
    pub fixed_ip_address: Option<String>,
    pub port_id: Option<String>,
    pub router_id: Option<String>,
    pub status: String,
    pub description: String,
    pub tags: Vec<String>,
    pub project_id: String,
    pub revision_number: Option<u64>,
}

/// `POST /v2.0/floatingips`: on a network, optionally a subnet of it, a fixed address, and a
/// port to attach to at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateFloatingIp {
    pub floating_network_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floating_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// `PUT /v2.0/floatingips/{id}`. `port_id: Some(None)` detaches (sends `null`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateFloatingIp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: Option<String>,
    pub project_id: String,
    pub revision_number: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateSecurityGroupRule {
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range_min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range_max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub security_group_rules: Vec<SecurityGroupRule>,
    pub tags: Vec<String>,
    pub project_id: String,
    pub stateful: Option<bool>,
    pub revision_number: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateSecurityGroup {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateSecurityGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Extension {
    pub alias: String,
    pub name: String,
    pub description: String,
    pub updated: String,
}

/// One quota line; `used`/`reserved` are known only when the cloud has the details call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// -1 = unlimited.
    pub limit: i64,
    pub used: Option<i64>,
    pub reserved: Option<i64>,
}

impl QuotaUsage {
    /// Free units, `None` if unlimited or usage unknown.
    pub fn free(&self) -> Option<i64> {
        if self.limit < 0 {
            return None;
        }
        Some(self.limit - self.used? - self.reserved.unwrap_or(0))
    }
}

/// Resource name (`floatingip`, `port`, `security_group`, ...) → usage.
pub type Quota = BTreeMap<String, QuotaUsage>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetIpAvailability {
    pub subnet_id: String,
    pub subnet_name: String,
    pub cidr: String,
    pub ip_version: u8,
    pub total_ips: f64,
    pub used_ips: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkIpAvailability {
    pub network_id: String,
    pub network_name: String,
    pub total_ips: f64,
    pub used_ips: f64,
    pub subnet_ip_availability: Vec<SubnetIpAvailability>,
}

/// Resources that carry Neutron tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagResource {
    Networks,
    Subnets,
    Ports,
    FloatingIps,
    SecurityGroups,
    Routers,
}

impl TagResource {
    fn path(self) -> &'static str {
        match self {
            TagResource::Networks => "networks",
            TagResource::Subnets => "subnets",
            TagResource::Ports => "ports",
            TagResource::FloatingIps => "floatingips",
            TagResource::SecurityGroups => "security-groups",
            TagResource::Routers => "routers",
        }
    }
}

/// The Neutron client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Neutron {
    session: Session,
    base: String,
}

/// Catalog URLs come with and without the version; we always add it ourselves.
pub(crate) fn strip_version(url: &str, versions: &[&str]) -> String {
    let mut u = url.trim_end_matches('/');
    for v in versions {
        if let Some(b) = u.strip_suffix(v) {
            u = b.trim_end_matches('/');
            break;
        }
    }
    u.to_string()
}

fn if_match(rev: Option<u64>) -> Option<(HeaderName, HeaderValue)> {
    let rev = rev?;
    HeaderValue::from_str(&format!("revision_number={rev}"))
        .ok()
        .map(|v| (HeaderName::from_static("if-match"), v))
}

impl Neutron {
    /// The network endpoint of the session (override or catalog).
    pub async fn new(session: &Session) -> Result<Neutron> {
        let url = session.endpoint(SERVICE).await?;
        Ok(Neutron {
            session: session.clone(),
            base: strip_version(&url, &["/v2.0"]),
        })
    }

    /// The endpoint root, without `/v2.0`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    fn req(&self, method: Method, path: String) -> Request {
        Request::new(SERVICE, method, &self.base, format!("/v2.0{path}"))
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        collection: &str,
        q: &ListQuery,
    ) -> Result<Vec<T>> {
        list_all(
            &self.session,
            SERVICE,
            &self.base,
            &format!("/v2.0{path}"),
            collection,
            q,
        )
        .await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: String, key: &str) -> Result<T> {
        let resp = self.session.send(self.req(Method::GET, path)).await?;
        resp.take(key)
    }

    async fn post<T: serde::de::DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: String,
        key: &str,
        body: &B,
    ) -> Result<T> {
        let resp = self
            .session
            .send(self.req(Method::POST, path).json_under(key, body)?)
            .await?;
        resp.take(key)
    }

    async fn put<T: serde::de::DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: String,
        key: &str,
        body: &B,
        rev: Option<u64>,
    ) -> Result<T> {
        let mut r = self.req(Method::PUT, path).json_under(key, body)?;
        if let Some((k, v)) = if_match(rev) {
            r = r.header(k, v);
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

    // --- networks and subnets -------------------------------------------------------------

    pub async fn list_networks(&self, q: &ListQuery) -> Result<Vec<Network>> {
        self.list("/networks", "networks", q).await
    }
    pub async fn get_network(&self, id: &str) -> Result<Network> {
        self.get(format!("/networks/{}", seg(id)), "network").await
    }
    pub async fn list_subnets(&self, q: &ListQuery) -> Result<Vec<Subnet>> {
        self.list("/subnets", "subnets", q).await
    }
    pub async fn get_subnet(&self, id: &str) -> Result<Subnet> {
        self.get(format!("/subnets/{}", seg(id)), "subnet").await
    }
    /// Free addresses per subnet (admin-only in default policy).
    pub async fn network_ip_availability(&self, network_id: &str) -> Result<NetworkIpAvailability> {
        self.get(
            format!("/network-ip-availabilities/{}", seg(network_id)),
            "network_ip_availability",
        )
        .await
    }

    // --- ports ----------------------------------------------------------------------------

    pub async fn list_ports(&self, q: &ListQuery) -> Result<Vec<Port>> {
        self.list("/ports", "ports", q).await
    }
    pub async fn get_port(&self, id: &str) -> Result<Port> {
        self.get(format!("/ports/{}", seg(id)), "port").await
    }
    pub async fn create_port(&self, p: &CreatePort) -> Result<Port> {
        self.post("/ports".into(), "port", p).await
    }
    /// `if_revision`: send `If-Match: revision_number=N`; a concurrent change gives
    /// [`Error::PreconditionFailed`].
    pub async fn update_port(
        &self,
        id: &str,
        u: &UpdatePort,
        if_revision: Option<u64>,
    ) -> Result<Port> {
        self.put(format!("/ports/{}", seg(id)), "port", u, if_revision)
            .await
    }
    pub async fn delete_port(&self, id: &str) -> Result<()> {
        self.delete(format!("/ports/{}", seg(id))).await
    }

    // --- floating IPs ---------------------------------------------------------------------

    pub async fn list_floating_ips(&self, q: &ListQuery) -> Result<Vec<FloatingIp>> {
        self.list("/floatingips", "floatingips", q).await
    }
    pub async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.get(format!("/floatingips/{}", seg(id)), "floatingip")
            .await
    }
    /// One POST, never repeated (see [`Neutron::ensure_floating_ip`]).
    pub async fn create_floating_ip(&self, f: &CreateFloatingIp) -> Result<FloatingIp> {
        self.post("/floatingips".into(), "floatingip", f).await
    }
    /// Creates a floating IP safely under retries: `lookup` (e.g. description + tag) is listed
    /// first and before each repetition; a single match is returned instead of creating another.
    pub async fn ensure_floating_ip(
        &self,
        f: &CreateFloatingIp,
        lookup: &ListQuery,
    ) -> Result<FloatingIp> {
        self.session
            .create_idempotent(
                SERVICE,
                || async {
                    let mut found = self.list_floating_ips(lookup).await?;
                    Ok(if found.len() == 1 { found.pop() } else { None })
                },
                || self.create_floating_ip(f),
            )
            .await
    }
    pub async fn update_floating_ip(
        &self,
        id: &str,
        u: &UpdateFloatingIp,
        if_revision: Option<u64>,
    ) -> Result<FloatingIp> {
        self.put(
            format!("/floatingips/{}", seg(id)),
            "floatingip",
            u,
            if_revision,
        )
        .await
    }
    /// Attaches to `port_id` (or detaches with `None`).
    pub async fn associate_floating_ip(
        &self,
        id: &str,
        port_id: Option<&str>,
    ) -> Result<FloatingIp> {
        let u = UpdateFloatingIp {
            port_id: Some(port_id.map(str::to_string)),
            ..Default::default()
        };
        self.update_floating_ip(id, &u, None).await
    }
    pub async fn delete_floating_ip(&self, id: &str) -> Result<()> {
        self.delete(format!("/floatingips/{}", seg(id))).await
    }

    // --- security groups ------------------------------------------------------------------

    pub async fn list_security_groups(&self, q: &ListQuery) -> Result<Vec<SecurityGroup>> {
        self.list("/security-groups", "security_groups", q).await
    }
    pub async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.get(format!("/security-groups/{}", seg(id)), "security_group")
            .await
    }
    pub async fn create_security_group(&self, g: &CreateSecurityGroup) -> Result<SecurityGroup> {
        self.post("/security-groups".into(), "security_group", g)
            .await
    }
    pub async fn update_security_group(
        &self,
        id: &str,
        u: &UpdateSecurityGroup,
        if_revision: Option<u64>,
    ) -> Result<SecurityGroup> {
        self.put(
            format!("/security-groups/{}", seg(id)),
            "security_group",
            u,
            if_revision,
        )
        .await
    }
    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.delete(format!("/security-groups/{}", seg(id))).await
    }
    pub async fn list_security_group_rules(&self, q: &ListQuery) -> Result<Vec<SecurityGroupRule>> {
        self.list("/security-group-rules", "security_group_rules", q)
            .await
    }
    pub async fn create_security_group_rule(
        &self,
        r: &CreateSecurityGroupRule,
    ) -> Result<SecurityGroupRule> {
        self.post("/security-group-rules".into(), "security_group_rule", r)
            .await
    }
    pub async fn delete_security_group_rule(&self, id: &str) -> Result<()> {
        self.delete(format!("/security-group-rules/{}", seg(id)))
            .await
    }

    // --- extensions, quotas ---------------------------------------------------------------

    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        let resp = self
            .session
            .send(self.req(Method::GET, "/extensions".into()))
            .await?;
        resp.take("extensions")
    }

    /// Limits with usage from `GET /v2.0/quotas/{project}/details` where the cloud has it,
    /// otherwise limits only.
    pub async fn quota(&self, project_id: &str) -> Result<Quota> {
        match self
            .get::<BTreeMap<String, Value>>(format!("/quotas/{}/details", seg(project_id)), "quota")
            .await
        {
            Ok(details) => Ok(details
                .into_iter()
                .filter_map(|(k, v)| {
                    let limit = v.get("limit")?.as_i64()?;
                    let used = v.get("used").and_then(Value::as_i64);
                    let reserved = v.get("reserved").and_then(Value::as_i64);
                    Some((
                        k,
                        QuotaUsage {
                            limit,
                            used,
                            reserved,
                        },
                    ))
                })
                .collect()),
            Err(Error::NotFound { .. }) | Err(Error::BadRequest { .. }) => {
                let plain: BTreeMap<String, Value> = self
                    .get(format!("/quotas/{}", seg(project_id)), "quota")
                    .await?;
                Ok(plain
                    .into_iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k,
                            QuotaUsage {
                                limit: v.as_i64()?,
                                used: None,
                                reserved: None,
                            },
                        ))
                    })
                    .collect())
            }
            Err(e) => Err(e),
        }
    }

    // --- tags -----------------------------------------------------------------------------

    pub async fn get_tags(&self, resource: TagResource, id: &str) -> Result<Vec<String>> {
        let resp = self
            .session
            .send(self.req(
                Method::GET,
                format!("/{}/{}/tags", resource.path(), seg(id)),
            ))
            .await?;
        resp.take("tags")
    }
    /// `PUT /v2.0/{resource}/{id}/tags/{tag}`: adds one tag (repeating is harmless).
    pub async fn add_tag(&self, resource: TagResource, id: &str, tag: &str) -> Result<()> {
        let r = self
            .req(
                Method::PUT,
                format!("/{}/{}/tags/{}", resource.path(), seg(id), seg(tag)),
            )
            .retry(RetryMode::Idempotent);
        self.session.send(r).await.map(|_| ())
    }
    /// `PUT /v2.0/{resource}/{id}/tags`: replaces all tags.
    pub async fn replace_tags(
        &self,
        resource: TagResource,
        id: &str,
        tags: &[String],
    ) -> Result<Vec<String>> {
        let r = self
            .req(
                Method::PUT,
                format!("/{}/{}/tags", resource.path(), seg(id)),
            )
            .json_under("tags", tags)?
            .retry(RetryMode::Idempotent);
        let resp = self.session.send(r).await?;
        resp.take("tags")
    }
    pub async fn remove_tag(&self, resource: TagResource, id: &str, tag: &str) -> Result<()> {
        self.delete(format!(
            "/{}/{}/tags/{}",
            resource.path(),
            seg(id),
            seg(tag)
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_suffix_is_stripped_once() {
        assert_eq!(
            strip_version("http://n:9696/v2.0/", &["/v2.0"]),
            "http://n:9696"
        );
        assert_eq!(strip_version("http://n:9696", &["/v2.0"]), "http://n:9696");
        assert_eq!(
            strip_version("https://c/load-balancer/v2", &["/v2.0", "/v2"]),
            "https://c/load-balancer"
        );
    }

    #[test]
    fn floating_ip_detach_sends_null() {
        let u = UpdateFloatingIp {
            port_id: Some(None),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({ "port_id": null })
        );
    }
}
