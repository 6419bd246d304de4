//! Reading one Service's cloud objects into `model::Observed`: its load balancer (by recorded
//! id, else by name) with listeners, pools, members and monitors, its floating IPs (ours by
//! description, the one on the VIP port, the one asked for by address) and its security
//! group; also the cluster-wide reads of the watcher (provisioning states) and of orphan
//! collection (what carries the cluster tag). Must not decide anything and must not write.

use std::collections::HashMap;

use model::observed::{
    ObservedFloatingIp, ObservedListener, ObservedLoadBalancer, ObservedMember, ObservedMonitor,
    ObservedPool, ObservedRule, ObservedSecurityGroup, ProvisioningStatus,
};
use model::spec::{Persistence, SecurityGroupRule};
use model::Observed;
use openstack::ListQuery;

use super::OpenStackCloud;
use crate::backend::OwnedKind;
use crate::cloud::{CloudError, Lookup, Tagged};
use crate::watcher::LbProgress;

fn parse<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T, CloudError> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| CloudError::other(format!("the cloud reported an unknown {what} {value:?}")))
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

/// A group's ingress rules on a port, with their ids: the only kind of rule a plan makes or
/// compares (egress and port-less rules are someone else's).
pub(super) fn port_rules(
    g: &openstack::neutron::SecurityGroup,
) -> impl Iterator<Item = ObservedRule> + '_ {
    g.security_group_rules
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
}

/// The load balancer a fully-populated create answered with, as an observation: `None` when
/// the answer did not inline the whole tree.
pub(super) fn observed_tree(
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
    async fn find_lb(
        &self,
        lookup: &Lookup,
    ) -> Result<Option<openstack::lbaas::LoadBalancer>, CloudError> {
        if let Some(id) = &lookup.lb_id {
            match self.lb.get_loadbalancer(id).await {
                Ok(lb) => return Ok(Some(lb)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut found = self
            .lb
            .list_loadbalancers(&ListQuery::new().name(lookup.lb_name.clone()))
            .await?;
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
            let all_listeners = self.lb.list_listeners(&q).await?;
            let pools = if pool_ids.is_empty() {
                Vec::new()
            } else {
                self.lb.list_pools(&q).await?
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
            self.lb.list_members(&p.id, &ListQuery::new()).await?
        };
        let monitor = match &p.healthmonitor_id {
            Some(id) => match self.lb.get_healthmonitor(id).await {
                Ok(m) => Some(m),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        observed_pool(p, members, monitor)
    }

    pub(super) async fn observe_fips(
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
            for f in self.neutron.list_floating_ips(&q).await? {
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

    pub(super) async fn observe_security_group(
        &self,
        name: &str,
    ) -> Result<Option<ObservedSecurityGroup>, CloudError> {
        let groups = self
            .neutron
            .list_security_groups(&ListQuery::new().name(name.to_string()))
            .await?;
        let Some(g) = groups.into_iter().find(|g| g.name == name) else {
            return Ok(None);
        };
        let rules = port_rules(&g).collect();
        Ok(Some(ObservedSecurityGroup {
            id: g.id,
            name: g.name,
            description: g.description,
            tags: g.tags,
            revision_number: g.revision_number.unwrap_or(0),
            rules,
        }))
    }

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

    /// [`crate::cloud::Cloud::observe`].
    pub(super) async fn observe_service(&self, lookup: &Lookup) -> Result<Observed, CloudError> {
        if let Some(v1) = self.v1_client() {
            return self.observe_v1(v1, lookup).await;
        }
        let lb = self.find_lb(lookup).await?;
        self.observe_found(lookup, lb).await
    }

    /// [`crate::cloud::Cloud::observe_unless_locked`].
    pub(super) async fn observe_service_unless_locked(
        &self,
        lookup: &Lookup,
    ) -> Result<Observed, CloudError> {
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

    /// [`crate::cloud::Cloud::list_tagged`].
    pub(super) async fn tagged(&self, cluster_tag: &str) -> Result<Vec<Tagged>, CloudError> {
        let tags = [cluster_tag.to_string()];
        let mut out = Vec::new();
        if self.features.tags {
            let lbs = self
                .lb
                .list_loadbalancers(&ListQuery::new().tags(&tags))
                .await?;
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
            .await?;
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

    /// [`crate::cloud::Cloud::lb_progress`].
    pub(super) async fn progress(
        &self,
        cluster_tag: &str,
        ids: &[String],
    ) -> Result<HashMap<String, LbProgress>, CloudError> {
        if self.v1_client().is_some() {
            return Err(CloudError::other("LBaaS v1 has no load balancer to watch"));
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
            .await?
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
                Err(e) => return Err(e.into()),
            };
            out.insert(id.clone(), state);
        }
        Ok(out)
    }
}
