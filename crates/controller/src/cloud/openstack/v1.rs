//! Neutron LBaaS v1: observing and driving a Service's objects where the cloud offers only
//! the v1 API. v1 has no tags and no load-balancer object: the pool and the VIP carry the
//! Service's LB name and our description, members and monitors hang off the pool. Must not
//! decide anything: the plan (model::plan, `plan/v1.rs`) chose every call.

use model::observed::{
    ObservedV1, ObservedV1Member, ObservedV1Monitor, ObservedV1Pool, ObservedV1Vip,
};
use model::{Observed, Ref, Step};
use openstack::lbaas::SessionPersistence;
use openstack::ListQuery;

use super::error::ignore_missing;
use super::execute::Created;
use super::OpenStackCloud;
use crate::cloud::{describe, CloudError, Lookup};

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
            Err(e) => return Err(e.into()),
        }
    }
    let mut found = v1
        .list_pools(&ListQuery::new().name(lookup.lb_name.clone()))
        .await?;
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
            Err(e) => Err(e.into()),
        };
    }
    let found = v1
        .list_vips(&ListQuery::new().name(name.to_string()))
        .await?;
    Ok(found
        .into_iter()
        .find(|v| v.name == name && v.pool_id == pool.id))
}

/// The VIP port a floating IP goes on: the VIP created earlier in this call, else the VIP
/// found by name (a retried plan after a crash) or through its pool.
pub(super) async fn vip_port(
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
                .await?
                .into_iter()
                .find(|v| &v.name == name)
        }
        Ref::Id(pool_id) => {
            let pool = v1.get_pool(pool_id).await?;
            v1_find_vip(v1, &pool, &pool.name).await?
        }
    };
    match vip {
        Some(v) if !v.port_id.is_empty() => Ok(v.port_id),
        _ => Err(CloudError::other(format!(
            "the LBaaS v1 VIP of {r} has no port yet"
        ))),
    }
}

pub(super) async fn step_run(
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
            let p = v1.create_pool(&req).await?;
            created.ids.insert(name.clone(), p.id);
        }
        Step::UpdateV1Pool { pool, lb_method } => {
            let u = V1UpdatePool {
                lb_method: Some(lb_method.clone()),
                ..Default::default()
            };
            v1.update_pool(pool, &u).await?;
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
            v1.create_member(&req).await?;
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
            let m = v1.create_health_monitor(&req).await?;
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
                return Err(e.into());
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
            let v = v1.create_vip(&req).await?;
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
            v1.update_vip(vip, &u).await?;
        }
        Step::DeleteV1Vip { vip } => ignore_missing(v1.delete_vip(vip).await)?,
        other_step => {
            return Err(CloudError::other(format!(
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
    pub(super) async fn observe_v1(
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
                    .await?
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
                    Err(e) => return Err(e.into()),
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
    use crate::cloud::{Cloud, CloudErrorKind};
    use model::plan::PortRef;
    use openstack::{LbaasV2, Neutron};

    /// A v1 cloud over a sandbox whose objects stay PENDING_* for `delay`.
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
