//! [`Cloud`] over the openstack crate: reads one Service's load balancer tree and floating IPs
//! into `model::Observed`, and turns each `model::Step` into exactly one OpenStack request
//! (plus a tag PUT where Neutron cannot take tags on create). Startup discovery (generation,
//! API version, project, external network, node subnet) lives here too. Must not decide
//! anything: every choice was made by `model::plan`; must not know about Kubernetes writes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use model::observed::{
    ObservedFloatingIp, ObservedListener, ObservedLoadBalancer, ObservedMember, ObservedMonitor,
    ObservedPool, ObservedRule, ObservedSecurityGroup, ObservedV1, ObservedV1Member,
    ObservedV1Monitor, ObservedV1Pool, ObservedV1Vip, ProvisioningStatus,
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
use crate::cloud::{describe, Cloud, CloudError, CloudErrorKind, Executed, Lookup, Tagged};
use crate::watcher::LbProgress;

fn cloud_error(e: openstack::Error) -> CloudError {
    let kind = match &e {
        openstack::Error::Conflict { .. } | openstack::Error::PreconditionFailed { .. } => {
            CloudErrorKind::Conflict
        }
        openstack::Error::QuotaExceeded { .. } => CloudErrorKind::Quota,
        // Octavia's "Provider '…' does not support a requested option": not transient.
        openstack::Error::Server { status: 501, .. } => CloudErrorKind::ProviderRefused,
        _ => CloudErrorKind::Other,
    };
    CloudError {
        kind,
        message: e.to_string(),
        source: Some(std::sync::Arc::new(e)),
    }
}

fn other(message: impl Into<String>) -> CloudError {
    CloudError::other(message)
}

/// A 404 on a delete (or on tagging an object that has gone since) means the object is
/// already gone: the goal is reached.
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

/// The OpenStack implementation of [`Cloud`] for Octavia, Neutron LBaaS v2 and (with `v1`
/// set) Neutron LBaaS v1.
#[derive(Clone, Debug)]
pub struct OpenStackCloud {
    pub(crate) lb: LbaasV2,
    /// Set on clouds that offer only Neutron LBaaS v1 (then `features.generation` says so).
    pub(crate) v1: Option<openstack::lbaas::LbaasV1>,
    pub(crate) neutron: Neutron,
    pub(crate) features: CloudFeatures,
}

/// Ids of objects created earlier in the same `execute` call, by name, and VIP ports by LB id
/// (LBaaS v1: by VIP name, since a v1 pool and its VIP share the Service's name).
#[derive(Default)]
struct Created {
    ids: HashMap<String, String>,
    vip_ports: HashMap<String, String>,
    v1_vip_ports: HashMap<String, String>,
    /// LBaaS v1 monitors disassociated by this call, with their pool.
    v1_disassociated: HashMap<String, String>,
    /// The load balancer this call created, and its tree as the create answered it.
    load_balancer: Option<String>,
    tree: Option<ObservedLoadBalancer>,
    /// The floating IPs this call created, as their create (and tag) answered.
    floating_ips: Vec<ObservedFloatingIp>,
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

fn observed_listener(
    l: openstack::lbaas::Listener,
    pool: Option<ObservedPool>,
) -> Result<ObservedListener, CloudError> {
    Ok(ObservedListener {
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
    })
}

fn observed_pool(
    p: &openstack::lbaas::Pool,
    members: Vec<openstack::lbaas::Member>,
    monitor: Option<openstack::lbaas::HealthMonitor>,
) -> Result<ObservedPool, CloudError> {
    let monitor = match monitor {
        Some(m) => Some(ObservedMonitor {
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

fn observed_lb(
    lb: openstack::lbaas::LoadBalancer,
    listeners: Vec<ObservedListener>,
) -> ObservedLoadBalancer {
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    ObservedLoadBalancer {
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
    }
}

/// The load balancer a fully-populated create answered with, as an observation: `None` when
/// the answer did not inline the whole tree.
fn observed_tree(
    answer: openstack::lbaas::LoadBalancerTree,
) -> Result<Option<ObservedLoadBalancer>, CloudError> {
    let Some(tree) = answer.tree else {
        return Ok(None);
    };
    let mut pools: HashMap<String, ObservedPool> = HashMap::new();
    for p in tree.pools {
        let observed = observed_pool(&p.pool, p.members, p.healthmonitor)?;
        pools.insert(observed.id.clone(), observed);
    }
    let mut listeners = Vec::new();
    for l in tree.listeners {
        let pool = l.default_pool_id.as_ref().and_then(|id| pools.remove(id));
        listeners.push(observed_listener(l, pool)?);
    }
    Ok(Some(observed_lb(answer.load_balancer, listeners)))
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

    /// A cloud that offers only Neutron LBaaS v1. `lb` is kept for the struct's shape but never
    /// called: the features say NeutronV1, so every plan holds v1 steps only.
    pub fn neutron_v1(lb: LbaasV2, v1: openstack::lbaas::LbaasV1, neutron: Neutron) -> Self {
        OpenStackCloud {
            lb,
            v1: Some(v1),
            neutron,
            features: CloudFeatures::neutron_v1(),
        }
    }

    /// The v1 client when this cloud is driven through LBaaS v1.
    fn v1_client(&self) -> Option<&openstack::lbaas::LbaasV1> {
        self.v1
            .as_ref()
            .filter(|_| self.features.generation == model::Generation::NeutronV1)
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
                listeners.push(observed_listener(l, pool)?);
            }
        }
        Ok(observed_lb(lb, listeners))
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
                Ok(m) => Some(m),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(cloud_error(e)),
            },
            None => None,
        };
        observed_pool(p, members, monitor)
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
        match (p, self.v1_client()) {
            (PortRef::Id(id), _) => Ok(id.clone()),
            (PortRef::VipOf(r), Some(v1)) => v1_vip_port(v1, r, created).await,
            (PortRef::VipOf(lb), None) => self.vip_port(lb, created).await,
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
                let answer = self
                    .lb
                    .create_loadbalancer_tree(&req)
                    .await
                    .map_err(cloud_error)?;
                let lb = answer.load_balancer.clone();
                if !lb.vip_port_id.is_empty() {
                    created
                        .vip_ports
                        .insert(lb.id.clone(), lb.vip_port_id.clone());
                }
                created.load_balancer = Some(lb.id.clone());
                created.tree = observed_tree(answer)?;
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
                created.floating_ips.push(ObservedFloatingIp {
                    id: fip.id,
                    floating_ip_address: fip.floating_ip_address,
                    floating_network_id: fip.floating_network_id,
                    port_id: fip.port_id,
                    fixed_ip_address: fip.fixed_ip_address,
                    description: fip.description,
                    tags: fip.tags,
                });
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
            // A FIP gone meanwhile needs no tag: orphan collection has nothing left to find.
            Step::TagFloatingIp { fip, tag } => ignore_missing(
                self.neutron
                    .add_tag(TagResource::FloatingIps, fip, tag)
                    .await,
            )?,
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
            v1_step => match self.v1_client() {
                Some(v1) => v1_step_run(v1, v1_step, created).await?,
                None => {
                    return Err(other(format!(
                        "{} is an LBaaS v1 call, but this cloud was not detected as LBaaS v1",
                        describe(v1_step)
                    )));
                }
            },
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
            // The controller's own project is not the cloud's to say: the planner sets it.
            project_id: None,
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
        if let Some(v1) = self.v1_client() {
            return self.observe_v1(v1, lookup).await;
        }
        let lb = self.find_lb(lookup).await?;
        self.observe_found(lookup, lb).await
    }

    async fn observe_unless_locked(&self, lookup: &Lookup) -> Result<Observed, CloudError> {
        // LBaaS v1 has no load-balancer-wide lock: a busy object answers 409 and is retried.
        if let Some(v1) = self.v1_client() {
            return self.observe_v1(v1, lookup).await;
        }
        match self.find_lb(lookup).await? {
            Some(lb) if lb.is_locked() => Ok(Observed {
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

    async fn execute(&self, steps: &[Step]) -> Result<Executed, CloudError> {
        let mut created = Created::default();
        for step in steps {
            if let Err(mut e) = self.step(step, &mut created).await {
                if e.kind == CloudErrorKind::ProviderRefused {
                    // The provider's own words, and which settings made the call what it is.
                    e.message = format!(
                        "the load-balancer provider refused {}: {}; it comes from {}: choose a value this provider supports",
                        describe(step),
                        e.message,
                        step.shaped_by()
                    );
                }
                return Err(e);
            }
        }
        Ok(Executed {
            load_balancer_id: created.load_balancer,
            load_balancer: created.tree,
            floating_ips: created.floating_ips,
        })
    }

    async fn lb_progress(
        &self,
        cluster_tag: &str,
        ids: &[String],
    ) -> Result<HashMap<String, LbProgress>, CloudError> {
        if self.v1_client().is_some() {
            return Err(other("LBaaS v1 has no load balancer to watch"));
        }
        let progress = |status: &str| {
            if status.starts_with("PENDING_") {
                LbProgress::Pending(status.to_string())
            } else if status == "DELETED" {
                LbProgress::Gone
            } else {
                LbProgress::Settled(status.to_string())
            }
        };
        // One call for the whole cluster: every LB we create carries the cluster tag. Only
        // the two fields the answer is read for, so the call stays small at hundreds of LBs.
        let mut q = ListQuery::new().fields(&["id", "provisioning_status"]);
        if self.features.tags {
            q = q.tags(&[cluster_tag]);
        }
        let mut out: HashMap<String, LbProgress> = self
            .lb
            .list_loadbalancers(&q)
            .await
            .map_err(cloud_error)?
            .into_iter()
            .filter(|lb| ids.contains(&lb.id))
            .map(|lb| (lb.id, progress(&lb.provisioning_status)))
            .collect();
        // Not in the list: gone, or an LB that does not carry our tag (yet), e.g. a user's
        // shared LB. Asked one by one; there are rarely any.
        let unlisted: Vec<&String> = ids.iter().filter(|id| !out.contains_key(*id)).collect();
        for id in unlisted {
            let state = match self.lb.get_loadbalancer(id).await {
                Ok(lb) => progress(&lb.provisioning_status),
                Err(e) if e.is_not_found() => LbProgress::Gone,
                Err(e) => return Err(cloud_error(e)),
            };
            out.insert(id.clone(), state);
        }
        Ok(out)
    }
}

impl OpenStackCloud {
    pub fn features(&self) -> &CloudFeatures {
        &self.features
    }
}

// ---- Neutron LBaaS v1 -------------------------------------------------------------------
//
// v1 has no tags and no load-balancer object: the pool and the VIP carry the Service's LB name
// and our description, members and monitors hang off the pool. Nothing here decides; the
// plan (model::plan, `plan/v1.rs`) chose every call.

fn v1_member(m: openstack::lbaas::v1::V1Member) -> ObservedV1Member {
    ObservedV1Member {
        id: m.id,
        pool_id: m.pool_id,
        address: m.address,
        protocol_port: m.protocol_port,
    }
}

fn v1_monitor(m: openstack::lbaas::v1::V1HealthMonitor) -> ObservedV1Monitor {
    ObservedV1Monitor {
        id: m.id,
        kind: m.monitor_type,
        delay: u32::try_from(m.delay).unwrap_or(u32::MAX),
        timeout: u32::try_from(m.timeout).unwrap_or(u32::MAX),
        max_retries: m.max_retries,
    }
}

fn v1_pool(p: &openstack::lbaas::v1::V1Pool) -> ObservedV1Pool {
    ObservedV1Pool {
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        subnet_id: p.subnet_id.clone(),
        protocol: p.protocol.clone(),
        lb_method: p.lb_method.clone(),
        status: p.status.clone(),
        health_monitors: p.health_monitors.clone(),
    }
}

fn v1_vip(v: openstack::lbaas::v1::V1Vip) -> ObservedV1Vip {
    ObservedV1Vip {
        id: v.id,
        name: v.name,
        description: v.description,
        address: v.address,
        subnet_id: v.subnet_id,
        port_id: v.port_id,
        protocol_port: v.protocol_port,
        protocol: v.protocol,
        pool_id: v.pool_id,
        session_persistence: v.session_persistence.map(|p| p.persistence_type),
        connection_limit: v.connection_limit.unwrap_or(-1),
        status: v.status,
    }
}

/// Our LB description, recovered from our FIP description (both name the same Service and
/// cluster): used only to prefer our pool when several carry the Service's name.
fn v1_description_hint(lookup: &Lookup) -> Option<&str> {
    lookup.fip_description.strip_prefix("Floating IP for ")
}

/// The pool the Service's objects hang off: by the id we recorded, else by name. A pool by
/// id with another name is not this Service's (v1 cannot share one between Services).
async fn v1_find_pool(
    v1: &openstack::lbaas::LbaasV1,
    lookup: &Lookup,
) -> Result<Option<openstack::lbaas::v1::V1Pool>, CloudError> {
    if let Some(id) = &lookup.lb_id {
        match v1.get_pool(id).await {
            Ok(p) if p.name == lookup.lb_name => return Ok(Some(p)),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(cloud_error(e)),
        }
    }
    let mut found = v1
        .list_pools(&ListQuery::new().name(lookup.lb_name.clone()))
        .await
        .map_err(cloud_error)?;
    // The filter narrows the answer on clouds that honour it; the name check keeps it correct.
    found.retain(|p| p.name == lookup.lb_name);
    let hint = v1_description_hint(lookup);
    found.sort_by_key(|p| Some(p.description.as_str()) != hint);
    Ok(found.into_iter().next())
}

/// The pool's VIP: by the pool's `vip_id`, else by name on clouds that do not report it.
async fn v1_find_vip(
    v1: &openstack::lbaas::LbaasV1,
    pool: &openstack::lbaas::v1::V1Pool,
    name: &str,
) -> Result<Option<openstack::lbaas::v1::V1Vip>, CloudError> {
    if let Some(id) = pool.vip_id.as_deref().filter(|id| !id.is_empty()) {
        return match v1.get_vip(id).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(cloud_error(e)),
        };
    }
    let found = v1
        .list_vips(&ListQuery::new().name(name.to_string()))
        .await
        .map_err(cloud_error)?;
    Ok(found
        .into_iter()
        .find(|v| v.name == name && v.pool_id == pool.id))
}

/// The VIP port a floating IP goes on: the VIP created earlier in this call, else the VIP
/// found by name (a retried plan after a crash) or through its pool.
async fn v1_vip_port(
    v1: &openstack::lbaas::LbaasV1,
    r: &Ref,
    created: &Created,
) -> Result<String, CloudError> {
    let vip = match r {
        Ref::Named(name) => {
            if let Some(port) = created.v1_vip_ports.get(name) {
                return Ok(port.clone());
            }
            v1.list_vips(&ListQuery::new().name(name.clone()))
                .await
                .map_err(cloud_error)?
                .into_iter()
                .find(|v| &v.name == name)
        }
        Ref::Id(pool_id) => {
            let pool = v1.get_pool(pool_id).await.map_err(cloud_error)?;
            v1_find_vip(v1, &pool, &pool.name).await?
        }
    };
    match vip {
        Some(v) if !v.port_id.is_empty() => Ok(v.port_id),
        _ => Err(other(format!("the LBaaS v1 VIP of {r} has no port yet"))),
    }
}

async fn v1_step_run(
    v1: &openstack::lbaas::LbaasV1,
    step: &Step,
    created: &mut Created,
) -> Result<(), CloudError> {
    use openstack::lbaas::v1::{
        V1CreateHealthMonitor, V1CreateMember, V1CreatePool, V1CreateVip, V1UpdatePool, V1UpdateVip,
    };
    let persistence = |p: &Option<String>| {
        p.as_ref().map(|kind| SessionPersistence {
            persistence_type: kind.clone(),
            ..Default::default()
        })
    };
    match step {
        Step::CreateV1Pool {
            name,
            description,
            subnet_id,
            protocol,
            lb_method,
        } => {
            let req = V1CreatePool {
                name: name.clone(),
                subnet_id: subnet_id.clone(),
                protocol: protocol.clone(),
                lb_method: lb_method.clone(),
                description: Some(description.clone()),
                ..Default::default()
            };
            let p = v1.create_pool(&req).await.map_err(cloud_error)?;
            created.ids.insert(name.clone(), p.id);
        }
        Step::UpdateV1Pool { pool, lb_method } => {
            let u = V1UpdatePool {
                lb_method: Some(lb_method.clone()),
                ..Default::default()
            };
            v1.update_pool(pool, &u).await.map_err(cloud_error)?;
        }
        Step::DeleteV1Pool { pool } => ignore_missing(v1.delete_pool(pool).await)?,
        Step::CreateV1Member {
            pool,
            address,
            protocol_port,
        } => {
            let req = V1CreateMember {
                pool_id: created.resolve(pool)?,
                address: address.to_string(),
                protocol_port: *protocol_port,
                ..Default::default()
            };
            v1.create_member(&req).await.map_err(cloud_error)?;
        }
        Step::DeleteV1Member { member } => ignore_missing(v1.delete_member(member).await)?,
        Step::CreateV1Monitor {
            key,
            kind,
            delay,
            timeout,
            max_retries,
        } => {
            let req = V1CreateHealthMonitor {
                monitor_type: kind.clone(),
                delay: u64::from(*delay),
                timeout: u64::from(*timeout),
                max_retries: *max_retries,
                ..Default::default()
            };
            let m = v1.create_health_monitor(&req).await.map_err(cloud_error)?;
            created.ids.insert(key.clone(), m.id);
        }
        Step::AssociateV1Monitor { pool, monitor } => {
            let pool = created.resolve(pool)?;
            let monitor_id = created.resolve(monitor)?;
            if let Err(e) = v1.associate_health_monitor(&pool, &monitor_id).await {
                // v1 monitors carry no name: one created by this call and left unassociated
                // could never be found again, so it goes now (best effort).
                if matches!(monitor, Ref::Named(_)) {
                    let _ = v1.delete_health_monitor(&monitor_id).await;
                }
                return Err(cloud_error(e));
            }
        }
        Step::DisassociateV1Monitor { pool, monitor } => {
            ignore_missing(v1.disassociate_health_monitor(pool, monitor).await)?;
            created
                .v1_disassociated
                .insert(monitor.clone(), pool.clone());
        }
        Step::DeleteV1Monitor { monitor } => {
            if let Err(e) = ignore_missing(v1.delete_health_monitor(monitor).await) {
                // A v1 monitor is found only through its pool. One just disassociated that
                // refuses deletion (e.g. still PENDING_CREATE: 409) would be lost for good, so
                // it goes back on its pool and the next pass tries both calls again.
                if let Some(pool) = created.v1_disassociated.remove(monitor) {
                    let _ = v1.associate_health_monitor(&pool, monitor).await;
                }
                return Err(e);
            }
        }
        Step::CreateV1Vip {
            name,
            description,
            pool,
            subnet_id,
            address,
            protocol,
            protocol_port,
            session_persistence,
            connection_limit,
        } => {
            let req = V1CreateVip {
                name: name.clone(),
                subnet_id: subnet_id.clone(),
                protocol: protocol.clone(),
                protocol_port: *protocol_port,
                pool_id: created.resolve(pool)?,
                address: address.map(|a| a.to_string()),
                description: Some(description.clone()),
                connection_limit: Some(*connection_limit),
                session_persistence: persistence(session_persistence),
                ..Default::default()
            };
            let v = v1.create_vip(&req).await.map_err(cloud_error)?;
            if !v.port_id.is_empty() {
                created.v1_vip_ports.insert(name.clone(), v.port_id);
            }
        }
        Step::UpdateV1Vip {
            vip,
            session_persistence,
            connection_limit,
        } => {
            let u = V1UpdateVip {
                connection_limit: Some(*connection_limit),
                session_persistence: Some(persistence(session_persistence)),
                ..Default::default()
            };
            v1.update_vip(vip, &u).await.map_err(cloud_error)?;
        }
        Step::DeleteV1Vip { vip } => ignore_missing(v1.delete_vip(vip).await)?,
        other_step => {
            return Err(other(format!(
                "{} is not an LBaaS v1 call",
                describe(other_step)
            )));
        }
    }
    Ok(())
}

impl OpenStackCloud {
    /// Everything of one Service on a v1 cloud: pool (by recorded id, else name), VIP, members,
    /// associated monitors, then floating IPs (ours by description, and the one on the VIP
    /// port) and the security group.
    async fn observe_v1(
        &self,
        v1: &openstack::lbaas::LbaasV1,
        lookup: &Lookup,
    ) -> Result<Observed, CloudError> {
        let mut out = ObservedV1::default();
        if let Some(pool) = v1_find_pool(v1, lookup).await? {
            out.vip = v1_find_vip(v1, &pool, &lookup.lb_name).await?.map(v1_vip);
            if !pool.members.is_empty() {
                let q = ListQuery::new().filter("pool_id", pool.id.clone());
                out.members = v1
                    .list_members(&q)
                    .await
                    .map_err(cloud_error)?
                    .into_iter()
                    // A member being deleted is gone as far as the plan is concerned: planning
                    // its deletion again would only earn a 409 per pass until it disappears.
                    .filter(|m| m.pool_id == pool.id && m.status != "PENDING_DELETE")
                    .map(v1_member)
                    .collect();
            }
            for id in &pool.health_monitors {
                match v1.get_health_monitor(id).await {
                    Ok(m) => out.monitors.push(v1_monitor(m)),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(cloud_error(e)),
                }
            }
            out.pool = Some(v1_pool(&pool));
        }
        let vip_port = out.vip.as_ref().map(|v| v.port_id.clone());
        let floating_ips = self
            .observe_fips(lookup, vip_port.as_deref().filter(|p| !p.is_empty()))
            .await?;
        let security_group = match &lookup.security_group {
            Some(name) => self.observe_security_group(name).await?,
            None => None,
        };
        Ok(Observed {
            project_id: None,
            load_balancer: None,
            floating_ips,
            security_group,
            node_ports: Vec::new(),
            v1: Some(out),
        })
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

    /// A v1 cloud over a sandbox whose objects stay PENDING_* for `delay`.
    #[tokio::test]
    async fn a_provider_refusal_quotes_octavia_and_names_the_setting() {
        let sb = sandbox::start(sandbox::SandboxConfig::default())
            .await
            .unwrap();
        let (config, _) = model::config::CloudConfig::parse(&sb.cloud_conf()).unwrap();
        let session = openstack::Session::new(
            &config.global,
            &config.metadata,
            openstack::SessionOptions::default(),
        )
        .await
        .unwrap();
        let lb = LbaasV2::octavia(&session).await.unwrap();
        let created = lb
            .create_loadbalancer(&CreateLoadBalancer {
                name: Some("refusal".into()),
                vip_subnet_id: Some(sb.seed().nodes_subnet_id.clone()),
                listeners: Some(vec![CreateListener {
                    protocol: "TCP".into(),
                    protocol_port: 80,
                    name: Some("listener_0_refusal".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .await
            .unwrap();
        for _ in 0..100 {
            let now = lb.get_loadbalancer(&created.id).await.unwrap();
            if now.provisioning_status == "ACTIVE" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let cloud = OpenStackCloud::new(
            lb,
            Neutron::new(&session).await.unwrap(),
            model::CloudFeatures::octavia(2, 30, Some("amphora")),
        );
        let err = cloud
            .execute(&[Step::CreatePool {
                lb: model::Ref::Id(created.id.clone()),
                listener: model::Ref::Id(created.listeners[0].id.clone()),
                name: "pool_0_refusal".into(),
                protocol: model::spec::PoolProtocol::Tcp,
                lb_algorithm: model::config::LbMethod::SourceIpPort,
                session_persistence: None,
                tags: Vec::new(),
            }])
            .await
            .unwrap_err();
        assert_eq!(err.kind, CloudErrorKind::ProviderRefused);
        for needle in [
            "Amphora provider does not support SOURCE_IP_PORT algorithm",
            "loadbalancer.openstack.org/lb-method",
            "[LoadBalancer] lb-method",
        ] {
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
        sb.shutdown().await;
    }

    async fn v1_cloud(delay: std::time::Duration) -> (sandbox::SandboxHandle, OpenStackCloud) {
        let sb = sandbox::start(sandbox::SandboxConfig {
            lbaas: sandbox::LbaasMode::NeutronV1,
            provisioning_delay: delay,
            ..Default::default()
        })
        .await
        .unwrap();
        let (config, _) = model::config::CloudConfig::parse(&sb.cloud_conf()).unwrap();
        let session = openstack::Session::new(
            &config.global,
            &config.metadata,
            openstack::SessionOptions::default(),
        )
        .await
        .unwrap();
        let cloud = OpenStackCloud::neutron_v1(
            LbaasV2::neutron(&session).await.unwrap(),
            openstack::lbaas::LbaasV1::new(&session).await.unwrap(),
            Neutron::new(&session).await.unwrap(),
        );
        (sb, cloud)
    }

    fn v1_lookup() -> Lookup {
        Lookup {
            lb_name: "kube_service_k_ns_web".into(),
            fip_description: "Floating IP for Kubernetes external service ns/web from cluster k"
                .into(),
            ..Lookup::default()
        }
    }

    #[tokio::test]
    async fn v1_objects_are_observed_by_name_after_a_restart() {
        let (sb, cloud) = v1_cloud(std::time::Duration::ZERO).await;
        let subnet = sb.seed().nodes_subnet_id.clone();
        let name = v1_lookup().lb_name;
        cloud
            .execute(&[
                Step::CreateV1Pool {
                    name: name.clone(),
                    description: "Kubernetes external service ns/web from cluster k".into(),
                    subnet_id: subnet.clone(),
                    protocol: "TCP".into(),
                    lb_method: "ROUND_ROBIN".into(),
                },
                Step::CreateV1Member {
                    pool: Ref::Named(name.clone()),
                    address: "127.100.0.11".parse().unwrap(),
                    protocol_port: 30080,
                },
                Step::CreateV1Monitor {
                    key: "monitor_0".into(),
                    kind: "TCP".into(),
                    delay: 5,
                    timeout: 3,
                    max_retries: 2,
                },
                Step::AssociateV1Monitor {
                    pool: Ref::Named(name.clone()),
                    monitor: Ref::Named("monitor_0".into()),
                },
                Step::CreateV1Vip {
                    name: name.clone(),
                    description: "Kubernetes external service ns/web from cluster k".into(),
                    pool: Ref::Named(name.clone()),
                    subnet_id: subnet,
                    address: None,
                    protocol: "TCP".into(),
                    protocol_port: 80,
                    session_persistence: Some("SOURCE_IP".into()),
                    connection_limit: 100,
                },
            ])
            .await
            .unwrap();
        // A fresh process knows nothing but the Service: everything is found again.
        let o = cloud.observe(&v1_lookup()).await.unwrap();
        assert!(o.load_balancer.is_none());
        let v1 = o.v1.expect("v1 objects");
        let pool = v1.pool.expect("pool by name");
        assert_eq!(pool.lb_method, "ROUND_ROBIN");
        assert_eq!(v1.members.len(), 1);
        assert_eq!(v1.members[0].protocol_port, 30080);
        assert_eq!(v1.monitors.len(), 1);
        assert_eq!(
            (v1.monitors[0].kind.as_str(), v1.monitors[0].max_retries),
            ("TCP", 2)
        );
        let vip = v1.vip.expect("VIP through its pool");
        assert_eq!((vip.protocol_port, vip.connection_limit), (80, 100));
        assert_eq!(vip.session_persistence.as_deref(), Some("SOURCE_IP"));
        assert!(!vip.port_id.is_empty());
        // The floating IP goes on the VIP port found by name, in a later call.
        let net = sb.seed().public_network_id.clone();
        cloud
            .execute(&[Step::CreateFloatingIp {
                network_id: net,
                subnet_id: None,
                subnet_name_glob: None,
                subnet_tags: Vec::new(),
                address: None,
                port: Some(PortRef::VipOf(Ref::Named(name))),
                description: v1_lookup().fip_description,
            }])
            .await
            .unwrap();
        let o = cloud.observe(&v1_lookup()).await.unwrap();
        assert_eq!(o.floating_ips.len(), 1);
        assert_eq!(
            o.floating_ips[0].port_id.as_deref(),
            Some(vip.port_id.as_str())
        );
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn tagging_a_fip_adds_one_tag_keeps_the_others_and_a_gone_fip_is_no_error() {
        let (sb, cloud) = v1_cloud(std::time::Duration::ZERO).await;
        cloud
            .execute(&[Step::CreateFloatingIp {
                network_id: sb.seed().public_network_id.clone(),
                subnet_id: None,
                subnet_name_glob: None,
                subnet_tags: Vec::new(),
                address: None,
                port: None,
                description: v1_lookup().fip_description,
            }])
            .await
            .unwrap();
        let fip = cloud.observe(&v1_lookup()).await.unwrap().floating_ips[0]
            .id
            .clone();
        // A tag some other tool put on it.
        cloud
            .execute(&[Step::TagFloatingIp {
                fip: fip.clone(),
                tag: "owner=ops".into(),
            }])
            .await
            .unwrap();
        let tag = Step::TagFloatingIp {
            fip: fip.clone(),
            tag: "kube-cluster-uid=u-1".into(),
        };
        // Twice: the second PUT of the same tag changes nothing.
        cloud.execute(std::slice::from_ref(&tag)).await.unwrap();
        cloud.execute(&[tag]).await.unwrap();
        let o = cloud.observe(&v1_lookup()).await.unwrap();
        let mut tags = o.floating_ips[0].tags.clone();
        tags.sort();
        assert_eq!(tags, vec!["kube-cluster-uid=u-1", "owner=ops"]);
        cloud
            .execute(&[Step::TagFloatingIp {
                fip: "00000000-0000-0000-0000-00000000dead".into(),
                tag: "kube-cluster-uid=u-1".into(),
            }])
            .await
            .expect("a FIP deleted meanwhile needs no tag");
        cloud
            .execute(&[Step::DeleteFloatingIp { fip }])
            .await
            .unwrap();
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn a_v1_monitor_that_refuses_deletion_goes_back_on_its_pool() {
        // Long enough that the monitor is still PENDING_CREATE when its deletion is tried.
        let (sb, cloud) = v1_cloud(std::time::Duration::from_secs(30)).await;
        let name = v1_lookup().lb_name;
        cloud
            .execute(&[
                Step::CreateV1Pool {
                    name: name.clone(),
                    description: "d".into(),
                    subnet_id: sb.seed().nodes_subnet_id.clone(),
                    protocol: "TCP".into(),
                    lb_method: "ROUND_ROBIN".into(),
                },
                Step::CreateV1Monitor {
                    key: "m".into(),
                    kind: "TCP".into(),
                    delay: 5,
                    timeout: 3,
                    max_retries: 1,
                },
                Step::AssociateV1Monitor {
                    pool: Ref::Named(name),
                    monitor: Ref::Named("m".into()),
                },
            ])
            .await
            .unwrap();
        let v1 = cloud.observe(&v1_lookup()).await.unwrap().v1.unwrap();
        let pool = v1.pool.unwrap().id;
        let monitor = v1.monitors[0].id.clone();
        let err = cloud
            .execute(&[
                Step::DisassociateV1Monitor {
                    pool: pool.clone(),
                    monitor: monitor.clone(),
                },
                Step::DeleteV1Monitor {
                    monitor: monitor.clone(),
                },
            ])
            .await
            .expect_err("a PENDING_CREATE monitor cannot be deleted");
        assert_eq!(err.kind, CloudErrorKind::Conflict, "{err:?}");
        let v1 = cloud.observe(&v1_lookup()).await.unwrap().v1.unwrap();
        assert_eq!(
            v1.pool.unwrap().health_monitors,
            vec![monitor],
            "still findable through its pool"
        );
        sb.shutdown().await;
    }
}
