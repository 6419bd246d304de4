//! [`Cloud`] over the openstack crate: reads one Service's load balancer tree and floating IPs
//! into `model::Observed`, and turns each `model::Step` into exactly one OpenStack request
//! (plus a tag PUT where Neutron cannot take tags on create). Startup discovery (generation,
//! API version, project, external network, node subnet) lives here too. Must not decide
//! anything: every choice was made by `model::plan`; must not know about Kubernetes writes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use model::observed::{
    ObservedFloatingIp, ObservedListener, ObservedLoadBalancer, ObservedMember, ObservedMonitor,
    ObservedPool, ObservedRule, ObservedSecurityGroup, ProvisioningStatus,
};
use model::plan::{ListenerUpdate, MonitorUpdate, PoolUpdate, PortRef};
use model::spec::{ListenerSpec, MemberSpec, MonitorSpec, Persistence, SecurityGroupRule};
use model::{CloudFeatures, Observed, Ref, Step};
use openstack::lbaas::{
    CreateHealthMonitor, CreateListener, CreateLoadBalancer, CreateMember, CreatePool,
    SessionPersistence, UpdateHealthMonitor, UpdateListener, UpdateLoadBalancer, UpdatePool,
};
use openstack::neutron::{
    CreateFloatingIp, CreateSecurityGroup, CreateSecurityGroupRule, TagResource, UpdatePort,
};
use openstack::{LbaasV2, ListQuery, Neutron};

use crate::backend::OwnedKind;
use crate::planner::{Cloud, CloudError, CloudErrorKind, Lookup, Tagged};

fn cloud_error(e: openstack::Error) -> CloudError {
    let kind = match &e {
        openstack::Error::Conflict { .. } | openstack::Error::PreconditionFailed { .. } => {
            CloudErrorKind::Conflict
        }
        openstack::Error::QuotaExceeded { .. } => CloudErrorKind::Quota,
        _ => CloudErrorKind::Other,
    };
    CloudError {
        kind,
        message: e.to_string(),
    }
}

fn other(message: impl Into<String>) -> CloudError {
    CloudError {
        kind: CloudErrorKind::Other,
        message: message.into(),
    }
}

/// A 404 on a delete means the object is already gone: the goal is reached.
fn ignore_missing(r: openstack::Result<()>) -> Result<(), CloudError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map_err(cloud_error),
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T, CloudError> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| other(format!("the cloud reported an unknown {what} {value:?}")))
}

fn persistence_to_api(p: &Option<Persistence>) -> Option<SessionPersistence> {
    p.as_ref().map(|p| SessionPersistence {
        persistence_type: p.kind.clone(),
        ..Default::default()
    })
}

fn member_to_api(m: &MemberSpec) -> CreateMember {
    CreateMember {
        address: m.address.to_string(),
        protocol_port: m.protocol_port,
        name: Some(m.name.clone()),
        subnet_id: m.subnet_id.clone(),
        monitor_port: m.monitor_port,
        ..Default::default()
    }
}

fn monitor_to_api(m: &MonitorSpec, pool_id: Option<String>) -> CreateHealthMonitor {
    CreateHealthMonitor {
        pool_id,
        monitor_type: m.kind.as_api(),
        delay: u64::from(m.delay),
        timeout: u64::from(m.timeout),
        max_retries: m.max_retries,
        max_retries_down: Some(m.max_retries_down),
        name: Some(m.name.clone()),
        http_method: m.http_method.clone(),
        url_path: m.url_path.clone(),
        expected_codes: m.expected_codes.clone(),
        ..Default::default()
    }
}

fn opt_vec(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn opt_map(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then(|| m.clone())
}

/// The OpenStack implementation of [`Cloud`] for Octavia and Neutron LBaaS v2.
#[derive(Clone, Debug)]
pub struct OpenStackCloud {
    pub(crate) lb: LbaasV2,
    /// Set on clouds that offer only Neutron LBaaS v1 (then `features.generation` says so).
    pub(crate) v1: Option<openstack::lbaas::LbaasV1>,
    pub(crate) neutron: Neutron,
    pub(crate) features: CloudFeatures,
}

/// Ids of objects created earlier in the same `execute` call, by name, and VIP ports by LB id.
#[derive(Default)]
struct Created {
    ids: HashMap<String, String>,
    vip_ports: HashMap<String, String>,
}

impl Created {
    fn resolve(&self, r: &Ref) -> Result<String, CloudError> {
        match r {
            Ref::Id(id) => Ok(id.clone()),
            Ref::Named(name) => self
                .ids
                .get(name)
                .cloned()
                .ok_or_else(|| other(format!("{name} was not created before it was needed"))),
        }
    }
}

impl OpenStackCloud {
    pub fn new(lb: LbaasV2, neutron: Neutron, features: CloudFeatures) -> Self {
        OpenStackCloud {
            lb,
            v1: None,
            neutron,
            features,
        }
    }

    async fn find_lb(
        &self,
        lookup: &Lookup,
    ) -> Result<Option<openstack::lbaas::LoadBalancer>, CloudError> {
        if let Some(id) = &lookup.lb_id {
            match self.lb.get_loadbalancer(id).await {
                Ok(lb) => return Ok(Some(lb)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(cloud_error(e)),
            }
        }
        let mut found = self
            .lb
            .list_loadbalancers(&ListQuery::new().name(lookup.lb_name.clone()))
            .await
            .map_err(cloud_error)?;
        found.retain(|l| l.name == lookup.lb_name && l.provisioning_status != "DELETED");
        // Two with our name (another cluster of the same name, or an old leak): prefer the one
        // the plan can judge by tags; the plan refuses foreign ones itself.
        found.sort_by_key(|l| std::cmp::Reverse(l.tags.len()));
        Ok(found.into_iter().next())
    }

    async fn observe_tree(
        &self,
        lb: openstack::lbaas::LoadBalancer,
    ) -> Result<ObservedLoadBalancer, CloudError> {
        let mut listeners = Vec::new();
        // A locked LB (PENDING_*) accepts no change to its tree, so the plan can only wait or
        // touch floating IPs: reading listeners, pools and members now would be wasted calls.
        if !lb.listeners.is_empty() && !lb.is_locked() {
            let ids: Vec<String> = lb.listeners.iter().map(|r| r.id.clone()).collect();
            let pool_ids: Vec<String> = lb.pools.iter().map(|r| r.id.clone()).collect();
            // The filter narrows the answer on clouds that honour it; the id check keeps it
            // correct on those that do not.
            let q = ListQuery::new().filter("loadbalancer_id", lb.id.clone());
            let all_listeners = self.lb.list_listeners(&q).await.map_err(cloud_error)?;
            let pools = if pool_ids.is_empty() {
                Vec::new()
            } else {
                self.lb.list_pools(&q).await.map_err(cloud_error)?
            };
            let pools: HashMap<String, openstack::lbaas::Pool> = pools
                .into_iter()
                .filter(|p| pool_ids.contains(&p.id))
                .map(|p| (p.id.clone(), p))
                .collect();
            for l in all_listeners.into_iter().filter(|l| ids.contains(&l.id)) {
                let pool = match l.default_pool_id.as_ref().and_then(|id| pools.get(id)) {
                    Some(p) => Some(self.observe_pool(p).await?),
                    None => None,
                };
                listeners.push(ObservedListener {
                    protocol: parse(&l.protocol, "listener protocol")?,
                    id: l.id,
                    name: l.name,
                    protocol_port: l.protocol_port,
                    connection_limit: l.connection_limit.unwrap_or(-1),
                    allowed_cidrs: l.allowed_cidrs.unwrap_or_default(),
                    insert_headers: l.insert_headers,
                    timeout_client_data: l.timeout_client_data,
                    timeout_member_connect: l.timeout_member_connect,
                    timeout_member_data: l.timeout_member_data,
                    timeout_tcp_inspect: l.timeout_tcp_inspect,
                    default_tls_container_ref: l.default_tls_container_ref,
                    tags: l.tags,
                    pool,
                });
            }
        }
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        Ok(ObservedLoadBalancer {
            provisioning_status: ProvisioningStatus::from_api(&lb.provisioning_status),
            id: lb.id,
            name: lb.name,
            description: lb.description,
            tags: lb.tags,
            project_id: non_empty(lb.project_id),
            operating_status: lb.operating_status,
            vip_address: non_empty(lb.vip_address),
            vip_port_id: non_empty(lb.vip_port_id),
            vip_subnet_id: non_empty(lb.vip_subnet_id),
            vip_network_id: non_empty(lb.vip_network_id),
            additional_vips: lb
                .additional_vips
                .into_iter()
                .map(|v| model::observed::ObservedAdditionalVip {
                    subnet_id: v.subnet_id,
                    ip_address: v.ip_address,
                })
                .collect(),
            flavor_id: lb.flavor_id,
            availability_zone: lb.availability_zone,
            provider: lb.provider,
            listeners,
        })
    }

    async fn observe_pool(&self, p: &openstack::lbaas::Pool) -> Result<ObservedPool, CloudError> {
        let members = if p.members.is_empty() {
            Vec::new()
        } else {
            self.lb
                .list_members(&p.id, &ListQuery::new())
                .await
                .map_err(cloud_error)?
        };
        let monitor = match &p.healthmonitor_id {
            Some(id) => match self.lb.get_healthmonitor(id).await {
                Ok(m) => Some(ObservedMonitor {
                    kind: parse(&m.monitor_type, "monitor type")?,
                    id: m.id,
                    name: m.name,
                    delay: u32::try_from(m.delay).unwrap_or(u32::MAX),
                    timeout: u32::try_from(m.timeout).unwrap_or(u32::MAX),
                    max_retries: m.max_retries,
                    max_retries_down: m.max_retries_down.unwrap_or(3),
                    http_method: m.http_method,
                    url_path: m.url_path,
                    expected_codes: m.expected_codes,
                }),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(cloud_error(e)),
            },
            None => None,
        };
        Ok(ObservedPool {
            id: p.id.clone(),
            name: p.name.clone(),
            protocol: parse(&p.protocol, "pool protocol")?,
            lb_algorithm: parse(&p.lb_algorithm, "lb_algorithm")?,
            session_persistence: p.session_persistence.as_ref().map(|s| Persistence {
                kind: s.persistence_type.clone(),
            }),
            tags: p.tags.clone(),
            members: members
                .into_iter()
                .map(|m| ObservedMember {
                    id: m.id,
                    name: m.name,
                    address: m.address,
                    protocol_port: m.protocol_port,
                    subnet_id: m.subnet_id,
                    monitor_port: m.monitor_port,
                    operating_status: Some(m.operating_status),
                })
                .collect(),
            monitor,
        })
    }

    async fn observe_fips(
        &self,
        lookup: &Lookup,
        vip_port: Option<&str>,
    ) -> Result<Vec<ObservedFloatingIp>, CloudError> {
        let mut queries = vec![ListQuery::new().description(lookup.fip_description.clone())];
        if let Some(port) = vip_port {
            queries.push(ListQuery::new().port_id(port.to_string()));
        }
        if let Some(addr) = &lookup.fip_address {
            queries.push(ListQuery::new().filter("floating_ip_address", addr.clone()));
        }
        let mut out: Vec<ObservedFloatingIp> = Vec::new();
        for q in queries {
            for f in self
                .neutron
                .list_floating_ips(&q)
                .await
                .map_err(cloud_error)?
            {
                if out.iter().any(|o| o.id == f.id) {
                    continue;
                }
                out.push(ObservedFloatingIp {
                    id: f.id,
                    floating_ip_address: f.floating_ip_address,
                    floating_network_id: f.floating_network_id,
                    port_id: f.port_id,
                    fixed_ip_address: f.fixed_ip_address,
                    description: f.description,
                    tags: f.tags,
                });
            }
        }
        Ok(out)
    }

    async fn observe_security_group(
        &self,
        name: &str,
    ) -> Result<Option<ObservedSecurityGroup>, CloudError> {
        let groups = self
            .neutron
            .list_security_groups(&ListQuery::new().name(name.to_string()))
            .await
            .map_err(cloud_error)?;
        let Some(g) = groups.into_iter().find(|g| g.name == name) else {
            return Ok(None);
        };
        let rules = g
            .security_group_rules
            .iter()
            .filter(|r| r.direction == "ingress" && r.port_range_min.is_some())
            .map(|r| ObservedRule {
                id: r.id.clone(),
                rule: SecurityGroupRule {
                    ethertype: r.ethertype.clone(),
                    protocol: r.protocol.clone().unwrap_or_default(),
                    port: r
                        .port_range_min
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(0),
                    remote_ip_prefix: r.remote_ip_prefix.clone().unwrap_or_default(),
                },
            })
            .collect();
        Ok(Some(ObservedSecurityGroup {
            id: g.id,
            name: g.name,
            description: g.description,
            tags: g.tags,
            revision_number: g.revision_number.unwrap_or(0),
            rules,
        }))
    }

    fn listener_to_api(&self, l: &ListenerSpec) -> CreateListener {
        let pool = &l.pool;
        let members: Vec<CreateMember> = pool.members.initial().iter().map(member_to_api).collect();
        CreateListener {
            protocol: l.protocol.as_api(),
            protocol_port: l.port,
            name: Some(l.name.clone()),
            connection_limit: Some(l.connection_limit),
            default_tls_container_ref: l.default_tls_container_ref.clone(),
            insert_headers: opt_map(&l.insert_headers),
            timeout_client_data: l.timeouts.client_data,
            timeout_member_connect: l.timeouts.member_connect,
            timeout_member_data: l.timeouts.member_data,
            timeout_tcp_inspect: l.timeouts.tcp_inspect,
            allowed_cidrs: opt_vec(&l.allowed_cidrs),
            tags: opt_vec(&l.tags),
            default_pool: Some(CreatePool {
                protocol: pool.protocol.as_api(),
                lb_algorithm: pool.lb_algorithm.as_api().to_string(),
                name: Some(pool.name.clone()),
                session_persistence: persistence_to_api(&pool.session_persistence),
                members: Some(members),
                healthmonitor: pool.monitor.as_ref().map(|m| monitor_to_api(m, None)),
                tags: opt_vec(&pool.tags),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn vip_port(&self, lb: &Ref, created: &Created) -> Result<String, CloudError> {
        let id = created.resolve(lb)?;
        if let Some(port) = created.vip_ports.get(&id) {
            return Ok(port.clone());
        }
        let lb = self.lb.get_loadbalancer(&id).await.map_err(cloud_error)?;
        if lb.vip_port_id.is_empty() {
            return Err(other(format!("load balancer {id} has no VIP port yet")));
        }
        Ok(lb.vip_port_id)
    }

    async fn port(&self, p: &PortRef, created: &Created) -> Result<String, CloudError> {
        match p {
            PortRef::Id(id) => Ok(id.clone()),
            PortRef::VipOf(lb) => self.vip_port(lb, created).await,
        }
    }

    async fn fip_subnet(
        &self,
        network_id: &str,
        subnet_id: &Option<String>,
        glob: &Option<String>,
        tags: &[String],
    ) -> Result<Option<String>, CloudError> {
        if subnet_id.is_some() || (glob.is_none() && tags.is_empty()) {
            return Ok(subnet_id.clone());
        }
        let mut q = ListQuery::new().network_id(network_id.to_string());
        if !tags.is_empty() {
            q = q.tags(tags);
        }
        let subnets = self.neutron.list_subnets(&q).await.map_err(cloud_error)?;
        let found = subnets
            .into_iter()
            .find(|s| glob.as_deref().is_none_or(|g| glob_match(g, &s.name)));
        match found {
            Some(s) => Ok(Some(s.id)),
            None => Err(other(format!(
                "no subnet of floating network {network_id} matches floating-subnet {glob:?} / floating-subnet-tags {tags:?}"
            ))),
        }
    }

    async fn step(&self, step: &Step, created: &mut Created) -> Result<(), CloudError> {
        match step {
            Step::CreateLoadBalancer {
                name,
                description,
                tags,
                vip,
                provider,
                flavor_id,
                availability_zone,
                listeners,
            } => {
                let req = CreateLoadBalancer {
                    name: Some(name.clone()),
                    description: Some(description.clone()),
                    vip_subnet_id: vip.subnet_id.clone(),
                    vip_network_id: vip.network_id.clone(),
                    vip_port_id: vip.port_id.clone(),
                    vip_address: vip.address.map(|a| a.to_string()),
                    additional_vips: (!vip.additional_subnet_ids.is_empty()).then(|| {
                        vip.additional_subnet_ids
                            .iter()
                            .map(|s| openstack::lbaas::AdditionalVip {
                                subnet_id: s.clone(),
                                ip_address: None,
                            })
                            .collect()
                    }),
                    provider: provider.clone(),
                    flavor_id: flavor_id.clone(),
                    availability_zone: availability_zone.clone(),
                    tags: opt_vec(tags),
                    listeners: (!listeners.is_empty())
                        .then(|| listeners.iter().map(|l| self.listener_to_api(l)).collect()),
                    ..Default::default()
                };
                let lb = self
                    .lb
                    .create_loadbalancer(&req)
                    .await
                    .map_err(cloud_error)?;
                if !lb.vip_port_id.is_empty() {
                    created
                        .vip_ports
                        .insert(lb.id.clone(), lb.vip_port_id.clone());
                }
                created.ids.insert(name.clone(), lb.id);
            }
            Step::UpdateLoadBalancer {
                lb,
                name,
                description,
                tags,
            } => {
                let u = UpdateLoadBalancer {
                    name: name.clone(),
                    description: description.clone(),
                    tags: tags.clone(),
                    ..Default::default()
                };
                self.lb
                    .update_loadbalancer(lb, &u)
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteLoadBalancer { lb, cascade } => {
                ignore_missing(self.lb.delete_loadbalancer(lb, *cascade).await)?
            }
            Step::CreateListener {
                lb,
                name,
                protocol,
                port,
                connection_limit,
                allowed_cidrs,
                insert_headers,
                timeouts,
                default_tls_container_ref,
                tags,
            } => {
                let req = CreateListener {
                    protocol: protocol.as_api(),
                    protocol_port: *port,
                    loadbalancer_id: Some(created.resolve(lb)?),
                    name: Some(name.clone()),
                    connection_limit: Some(*connection_limit),
                    default_tls_container_ref: default_tls_container_ref.clone(),
                    insert_headers: opt_map(insert_headers),
                    timeout_client_data: timeouts.client_data,
                    timeout_member_connect: timeouts.member_connect,
                    timeout_member_data: timeouts.member_data,
                    timeout_tcp_inspect: timeouts.tcp_inspect,
                    allowed_cidrs: opt_vec(allowed_cidrs),
                    tags: opt_vec(tags),
                    ..Default::default()
                };
                let l = self.lb.create_listener(&req).await.map_err(cloud_error)?;
                created.ids.insert(name.clone(), l.id);
            }
            Step::UpdateListener { listener, changes } => {
                let ListenerUpdate {
                    name,
                    connection_limit,
                    allowed_cidrs,
                    insert_headers,
                    timeouts,
                    default_tls_container_ref,
                    tags,
                } = changes.clone();
                let u = UpdateListener {
                    name,
                    connection_limit,
                    allowed_cidrs,
                    insert_headers,
                    timeout_client_data: timeouts.and_then(|t| t.client_data),
                    timeout_member_connect: timeouts.and_then(|t| t.member_connect),
                    timeout_member_data: timeouts.and_then(|t| t.member_data),
                    timeout_tcp_inspect: timeouts.and_then(|t| t.tcp_inspect),
                    default_tls_container_ref,
                    tags,
                    ..Default::default()
                };
                self.lb
                    .update_listener(listener, &u)
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteListener { listener } => {
                ignore_missing(self.lb.delete_listener(listener).await)?
            }
            Step::CreatePool {
                lb: _,
                listener,
                name,
                protocol,
                lb_algorithm,
                session_persistence,
                tags,
            } => {
                let req = CreatePool {
                    protocol: protocol.as_api(),
                    lb_algorithm: lb_algorithm.as_api().to_string(),
                    name: Some(name.clone()),
                    listener_id: Some(created.resolve(listener)?),
                    session_persistence: persistence_to_api(session_persistence),
                    tags: opt_vec(tags),
                    ..Default::default()
                };
                let p = self.lb.create_pool(&req).await.map_err(cloud_error)?;
                created.ids.insert(name.clone(), p.id);
            }
            Step::UpdatePool { pool, changes } => {
                let PoolUpdate {
                    name,
                    lb_algorithm,
                    session_persistence,
                    tags,
                } = changes.clone();
                let u = UpdatePool {
                    name,
                    lb_algorithm: lb_algorithm.map(|m| m.as_api().to_string()),
                    session_persistence: session_persistence.map(|p| persistence_to_api(&p)),
                    tags,
                    ..Default::default()
                };
                self.lb.update_pool(pool, &u).await.map_err(cloud_error)?;
            }
            Step::DeletePool { pool } => ignore_missing(self.lb.delete_pool(pool).await)?,
            Step::BatchUpdateMembers { pool, members } => {
                let pool = created.resolve(pool)?;
                let members: Vec<CreateMember> = members.iter().map(member_to_api).collect();
                self.lb
                    .replace_members(&pool, &members)
                    .await
                    .map_err(cloud_error)?;
            }
            Step::CreateMember { pool, member } => {
                let pool = created.resolve(pool)?;
                self.lb
                    .create_member(&pool, &member_to_api(member))
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteMember { pool, member } => {
                ignore_missing(self.lb.delete_member(pool, member).await)?
            }
            Step::CreateMonitor { pool, monitor } => {
                let pool = created.resolve(pool)?;
                let m = self
                    .lb
                    .create_healthmonitor(&monitor_to_api(monitor, Some(pool)))
                    .await
                    .map_err(cloud_error)?;
                created.ids.insert(monitor.name.clone(), m.id);
            }
            Step::UpdateMonitor { monitor, changes } => {
                let MonitorUpdate {
                    name,
                    delay,
                    timeout,
                    max_retries,
                    max_retries_down,
                    http_method,
                    url_path,
                    expected_codes,
                } = changes.clone();
                let u = UpdateHealthMonitor {
                    name,
                    delay: delay.map(u64::from),
                    timeout: timeout.map(u64::from),
                    max_retries,
                    max_retries_down,
                    http_method,
                    url_path,
                    expected_codes,
                    ..Default::default()
                };
                self.lb
                    .update_healthmonitor(monitor, &u)
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteMonitor { monitor } => {
                ignore_missing(self.lb.delete_healthmonitor(monitor).await)?
            }
            Step::CreateFloatingIp {
                network_id,
                subnet_id,
                subnet_name_glob,
                subnet_tags,
                address,
                port,
                description,
                tags,
            } => {
                let subnet_id = self
                    .fip_subnet(network_id, subnet_id, subnet_name_glob, subnet_tags)
                    .await?;
                let port_id = match port {
                    Some(p) => Some(self.port(p, created).await?),
                    None => None,
                };
                let req = CreateFloatingIp {
                    floating_network_id: network_id.clone(),
                    subnet_id,
                    floating_ip_address: address.map(|a: IpAddr| a.to_string()),
                    port_id,
                    description: Some(description.clone()),
                    ..Default::default()
                };
                // Not retried: a lost answer is found again by description on the next pass.
                let fip = self
                    .neutron
                    .create_floating_ip(&req)
                    .await
                    .map_err(cloud_error)?;
                if !tags.is_empty() {
                    self.neutron
                        .replace_tags(TagResource::FloatingIps, &fip.id, tags)
                        .await
                        .map_err(cloud_error)?;
                }
            }
            Step::AssociateFloatingIp { fip, port } => {
                let port = self.port(port, created).await?;
                self.neutron
                    .associate_floating_ip(fip, Some(&port))
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DisassociateFloatingIp { fip } => {
                self.neutron
                    .associate_floating_ip(fip, None)
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteFloatingIp { fip } => {
                ignore_missing(self.neutron.delete_floating_ip(fip).await)?
            }
            Step::CreateSecurityGroup {
                name,
                description,
                tags,
            } => {
                let g = self
                    .neutron
                    .create_security_group(&CreateSecurityGroup {
                        name: name.clone(),
                        description: Some(description.clone()),
                    })
                    .await
                    .map_err(cloud_error)?;
                if !tags.is_empty() {
                    self.neutron
                        .replace_tags(TagResource::SecurityGroups, &g.id, tags)
                        .await
                        .map_err(cloud_error)?;
                }
                created.ids.insert(name.clone(), g.id);
            }
            Step::CreateSecurityGroupRule { group, rule } => {
                let req = CreateSecurityGroupRule {
                    security_group_id: created.resolve(group)?,
                    direction: "ingress".into(),
                    ethertype: rule.ethertype.clone(),
                    protocol: Some(rule.protocol.clone()),
                    port_range_min: Some(u32::from(rule.port)),
                    port_range_max: Some(u32::from(rule.port)),
                    remote_ip_prefix: Some(rule.remote_ip_prefix.clone()),
                    ..Default::default()
                };
                self.neutron
                    .create_security_group_rule(&req)
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteSecurityGroupRule { rule } => {
                ignore_missing(self.neutron.delete_security_group_rule(rule).await)?
            }
            Step::UpdatePortSecurityGroups {
                port,
                security_groups,
                revision_number,
            } => {
                let groups = security_groups
                    .iter()
                    .map(|g| created.resolve(g))
                    .collect::<Result<Vec<_>, _>>()?;
                let u = UpdatePort {
                    security_groups: Some(groups),
                    ..Default::default()
                };
                self.neutron
                    .update_port(port, &u, Some(*revision_number))
                    .await
                    .map_err(cloud_error)?;
            }
            Step::DeleteSecurityGroup { group } => {
                ignore_missing(self.neutron.delete_security_group(group).await)?
            }
            v1 => {
                return Err(other(format!(
                    "{} is an LBaaS v1 call; this controller build drives Octavia and Neutron LBaaS v2 only",
                    crate::planner::describe(v1)
                )));
            }
        }
        Ok(())
    }
}

/// `*` and `?` globbing for `floating-subnet` (Neutron has no server-side name patterns).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl OpenStackCloud {
    /// Everything else, once the LB (if any) has been found.
    async fn observe_found(
        &self,
        lookup: &Lookup,
        lb: Option<openstack::lbaas::LoadBalancer>,
    ) -> Result<Observed, CloudError> {
        let lb = match lb {
            Some(lb) => Some(self.observe_tree(lb).await?),
            None => None,
        };
        let vip_port = lb.as_ref().and_then(|l| l.vip_port_id.clone());
        let floating_ips = self.observe_fips(lookup, vip_port.as_deref()).await?;
        let security_group = match &lookup.security_group {
            Some(name) => self.observe_security_group(name).await?,
            None => None,
        };
        Ok(Observed {
            project_id: lb.as_ref().and_then(|l| l.project_id.clone()),
            load_balancer: lb,
            floating_ips,
            security_group,
            node_ports: Vec::new(),
            v1: None,
        })
    }
}

impl Cloud for OpenStackCloud {
    async fn observe(&self, lookup: &Lookup) -> Result<Observed, CloudError> {
        let lb = self.find_lb(lookup).await?;
        self.observe_found(lookup, lb).await
    }

    async fn observe_unless_locked(&self, lookup: &Lookup) -> Result<Observed, CloudError> {
        match self.find_lb(lookup).await? {
            Some(lb) if lb.is_locked() => Ok(Observed {
                project_id: (!lb.project_id.is_empty()).then(|| lb.project_id.clone()),
                load_balancer: Some(self.observe_tree(lb).await?),
                ..Observed::default()
            }),
            lb => self.observe_found(lookup, lb).await,
        }
    }

    async fn list_tagged(&self, cluster_tag: &str) -> Result<Vec<Tagged>, CloudError> {
        let tags = [cluster_tag.to_string()];
        let mut out = Vec::new();
        if self.features.tags {
            let lbs = self
                .lb
                .list_loadbalancers(&ListQuery::new().tags(&tags))
                .await
                .map_err(cloud_error)?;
            // Filtered again here: a cloud that ignores the filter must not make us delete others'.
            for lb in lbs
                .into_iter()
                .filter(|l| l.tags.iter().any(|t| t == cluster_tag))
            {
                out.push(Tagged {
                    kind: OwnedKind::LoadBalancer,
                    id: lb.id,
                    label: lb.name.clone(),
                    name_or_description: lb.name,
                });
            }
        }
        let fips = self
            .neutron
            .list_floating_ips(&ListQuery::new().tags(&tags))
            .await
            .map_err(cloud_error)?;
        for f in fips
            .into_iter()
            .filter(|f| f.tags.iter().any(|t| t == cluster_tag))
        {
            out.push(Tagged {
                kind: OwnedKind::FloatingIp,
                id: f.id,
                label: f.floating_ip_address,
                name_or_description: f.description,
            });
        }
        Ok(out)
    }

    async fn delete_tagged(&self, kind: OwnedKind, id: &str) -> Result<(), CloudError> {
        match kind {
            OwnedKind::LoadBalancer => ignore_missing(
                self.lb
                    .delete_loadbalancer(id, self.features.cascade_delete)
                    .await,
            ),
            OwnedKind::FloatingIp => ignore_missing(self.neutron.delete_floating_ip(id).await),
        }
    }

    async fn execute(&self, steps: &[Step]) -> Result<(), CloudError> {
        let mut created = Created::default();
        for step in steps {
            self.step(step, &mut created).await?;
        }
        Ok(())
    }
}

impl OpenStackCloud {
    pub fn features(&self) -> &CloudFeatures {
        &self.features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match("public-*", "public-subnet-1"));
        assert!(glob_match("p?blic", "public"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("public-*", "private-1"));
        assert!(glob_match("*-v4-*", "ext-v4-a"));
    }
}
