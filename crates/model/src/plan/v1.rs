//! Plans for Neutron LBaaS v1 (SPEC §1.2): one pool (named like the LB), its members, one
//! health monitor and one VIP (also named like the LB) for a single TCP port. v1 has no tags:
//! ownership is the name plus our description. No Octavia-style lock, so every step may run in
//! order.

use std::collections::BTreeSet;

use super::fip::fip_steps;
use super::ip::normalize_ip;
use super::*;
use crate::features::{V1_LB_METHODS, V1_MONITOR_TYPE};
use crate::observed::{Observed, ObservedV1};
use crate::spec::{Ingress, IngressSource, LoadBalancerSpec, Members};

pub(super) fn plan_v1(spec: &LoadBalancerSpec, observed: &Observed) -> Plan {
    let mut plan = Plan {
        warnings: spec.warnings.clone(),
        ..Plan::default()
    };
    if spec.security_group.is_some() {
        // A v1 VIP port is Neutron's own (haproxy namespace or vendor driver): no group of ours
        // is put on it or on the nodes, so the setting is said to be ignored rather than faked.
        plan.warnings.push(Warning::unsupported(
            "manage-security-groups",
            "Octavia or Neutron LBaaS v2",
            "Neutron LBaaS v1",
        ));
    }
    let Some(listener) = spec.listeners.first() else {
        return plan;
    };
    let Some(subnet_id) = spec.vip.subnet_id.clone() else {
        plan.invalid.push(Invalid::missing(
            "VIP subnet",
            "a subnet-id: Neutron LBaaS v1 places VIPs on a subnet",
        ));
        return plan;
    };
    let empty = ObservedV1::default();
    let v1 = observed.v1.as_ref().unwrap_or(&empty);
    let pool = v1.pool.as_ref().filter(|p| p.name == spec.name);
    if let Some(p) = v1
        .pool
        .as_ref()
        .filter(|p| p.name == spec.name && p.description != spec.description)
    {
        plan.invalid.push(Invalid::conflict(
            "load balancer",
            p.id.clone(),
            format!(
                "a LBaaS v1 pool described {:?} (this one is not ours)",
                spec.description
            ),
        ));
        return plan;
    }
    // load-balancer-id: ours (written back) names this pool; anything else would be sharing,
    // which v1 cannot do (one VIP, one port per pool).
    match (&spec.existing_lb_id, pool) {
        (Some(id), Some(p)) if *id != p.id => plan.warnings.push(Warning::unsupported(
            &format!("load-balancer-id {id} (sharing a load balancer)"),
            "Octavia or Neutron LBaaS v2",
            "Neutron LBaaS v1; the Service keeps its own pool",
        )),
        (Some(id), None) => plan.warnings.push(Warning::new(WarningReason::LoadBalancerMissing,
            format!("LBaaS v1 pool {id} named by load-balancer-id is not this Service's; creating its own"),
        )),
        _ => {}
    }
    let vip = v1.vip.as_ref().filter(|v| v.name == spec.name);
    let persistence = listener
        .pool
        .session_persistence
        .as_ref()
        .map(|p| p.kind.clone());
    let mut steps = Vec::new();
    let lb_method = listener.pool.lb_algorithm.as_api().to_string();
    if !V1_LB_METHODS.contains(&lb_method.as_str()) {
        plan.invalid.push(Invalid::unsupported(
            crate::annotations::LB_METHOD,
            lb_method,
            format!(
                "one of {}: the algorithms of Neutron LBaaS v1",
                V1_LB_METHODS.join(", ")
            ),
        ));
        return plan;
    }
    let monitor_key = listener
        .pool
        .monitor
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let v1_monitor = |m: &crate::spec::MonitorSpec| Step::CreateV1Monitor {
        key: m.name.clone(),
        kind: V1_MONITOR_TYPE.to_string(),
        delay: m.delay,
        timeout: m.timeout,
        max_retries: m.max_retries,
    };
    let pool_ref = match pool {
        None => {
            steps.push(Step::CreateV1Pool {
                name: spec.name.clone(),
                description: spec.description.clone(),
                subnet_id: subnet_id.clone(),
                protocol: "TCP".to_string(),
                lb_method,
            });
            let r = Ref::Named(spec.name.clone());
            for m in listener.pool.members.initial() {
                steps.push(Step::CreateV1Member {
                    pool: r.clone(),
                    address: m.address,
                    protocol_port: m.protocol_port,
                });
            }
            if let Some(m) = &listener.pool.monitor {
                steps.push(v1_monitor(m));
                steps.push(Step::AssociateV1Monitor {
                    pool: r.clone(),
                    monitor: Ref::Named(monitor_key.clone()),
                });
            }
            r
        }
        Some(p) => {
            if p.lb_method != lb_method {
                steps.push(Step::UpdateV1Pool {
                    pool: p.id.clone(),
                    lb_method,
                });
            }
            let have: Vec<_> = v1.members.iter().filter(|m| m.pool_id == p.id).collect();
            let target = match &listener.pool.members {
                Members::Exact(m) => Some(m.as_slice()),
                Members::KeepLastKnown { .. } if !have.is_empty() => None,
                Members::KeepLastKnown { fallback } => Some(fallback.as_slice()),
            };
            if let Some(target) = target {
                let key = |a: &str, port: u16| (normalize_ip(a), port);
                let want: BTreeSet<_> = target
                    .iter()
                    .map(|m| key(&m.address.to_string(), m.protocol_port))
                    .collect();
                let got: BTreeSet<_> = have
                    .iter()
                    .map(|m| key(&m.address, m.protocol_port))
                    .collect();
                for m in have
                    .iter()
                    .filter(|m| !want.contains(&key(&m.address, m.protocol_port)))
                {
                    steps.push(Step::DeleteV1Member {
                        member: m.id.clone(),
                    });
                }
                for m in target
                    .iter()
                    .filter(|m| !got.contains(&key(&m.address.to_string(), m.protocol_port)))
                {
                    steps.push(Step::CreateV1Member {
                        pool: Ref::Id(p.id.clone()),
                        address: m.address,
                        protocol_port: m.protocol_port,
                    });
                }
            }
            let monitors: Vec<_> = v1
                .monitors
                .iter()
                .filter(|m| p.health_monitors.contains(&m.id))
                .collect();
            let matches = |m: &crate::observed::ObservedV1Monitor, w: &crate::spec::MonitorSpec| {
                m.kind == V1_MONITOR_TYPE
                    && m.delay == w.delay
                    && m.timeout == w.timeout
                    && m.max_retries == w.max_retries
            };
            let keep = listener
                .pool
                .monitor
                .as_ref()
                .and_then(|w| monitors.iter().find(|m| matches(m, w)));
            for m in monitors
                .iter()
                .filter(|m| Some(&m.id) != keep.map(|k| &k.id))
            {
                steps.push(Step::DisassociateV1Monitor {
                    pool: p.id.clone(),
                    monitor: m.id.clone(),
                });
                steps.push(Step::DeleteV1Monitor {
                    monitor: m.id.clone(),
                });
            }
            if let (Some(w), None) = (&listener.pool.monitor, keep) {
                steps.push(v1_monitor(w));
                steps.push(Step::AssociateV1Monitor {
                    pool: Ref::Id(p.id.clone()),
                    monitor: Ref::Named(monitor_key.clone()),
                });
            }
            Ref::Id(p.id.clone())
        }
    };
    let create_vip = |steps: &mut Vec<Step>| {
        steps.push(Step::CreateV1Vip {
            name: spec.name.clone(),
            description: spec.description.clone(),
            pool: pool_ref.clone(),
            subnet_id: subnet_id.clone(),
            address: spec.vip.address,
            protocol: "TCP".to_string(),
            protocol_port: listener.port,
            session_persistence: persistence.clone(),
            connection_limit: listener.connection_limit,
        });
    };
    let mut fip_obs = observed.clone();
    let vip_port = match vip {
        None => {
            create_vip(&mut steps);
            None
        }
        Some(v)
            if v.protocol_port != listener.port
                || (!v.subnet_id.is_empty() && v.subnet_id != subnet_id) =>
        {
            // A v1 VIP cannot change port or subnet: replace it (its FIP comes free).
            steps.push(Step::DeleteV1Vip { vip: v.id.clone() });
            create_vip(&mut steps);
            for f in fip_obs
                .floating_ips
                .iter_mut()
                .filter(|f| f.port_id.as_deref() == Some(v.port_id.as_str()))
            {
                f.port_id = None;
            }
            None
        }
        Some(v) => {
            if v.session_persistence != persistence
                || v.connection_limit != listener.connection_limit
            {
                steps.push(Step::UpdateV1Vip {
                    vip: v.id.clone(),
                    session_persistence: persistence.clone(),
                    connection_limit: listener.connection_limit,
                });
            }
            Some(v.port_id.clone())
        }
    };
    let port_ref = match &vip_port {
        Some(p) => PortRef::Id(p.clone()),
        None => PortRef::VipOf(Ref::Named(spec.name.clone())),
    };
    fip_steps(
        spec,
        &fip_obs,
        Some(port_ref),
        vip_port.as_deref(),
        &mut steps,
        &mut plan.invalid,
    );
    if !plan.invalid.is_empty() {
        return plan;
    }
    // The FIP's cluster tag waits until the address is published (as with Octavia).
    let (bookkeeping, now): (Vec<Step>, Vec<Step>) =
        steps.into_iter().partition(Step::is_bookkeeping);
    plan.steps = now
        .into_iter()
        .map(|step| PlannedStep {
            gate: Gate::Now,
            step,
        })
        .chain(bookkeeping.into_iter().map(|step| PlannedStep {
            gate: Gate::AfterPublish,
            step,
        }))
        .collect();
    plan.load_balancer_id = pool.map(|p| p.id.clone());
    // Nothing left to call but the pool or VIP still PENDING_*: the address does not carry
    // traffic yet, so it is published only once both are ACTIVE (as Octavia's ACTIVE gate).
    let pending = [
        pool.map(|p| p.status.as_str()),
        vip.map(|v| v.status.as_str()),
    ]
    .into_iter()
    .flatten()
    .find(|s| s.starts_with("PENDING_"));
    if let (true, Some(status)) = (plan.steps.is_empty(), pending) {
        plan.wait = Some(Wait::LoadBalancerBusy {
            status: status.to_string(),
        });
        return plan;
    }
    if let Some(v) = vip.filter(|_| vip_port.is_some()) {
        let fip = observed
            .floating_ips
            .iter()
            .find(|f| f.port_id.as_deref() == Some(v.port_id.as_str()));
        let mode = Some(spec.status.ip_mode);
        plan.status = match &spec.status.source {
            IngressSource::FloatingIp => fip.map(|f| {
                vec![Ingress {
                    ip: Some(f.floating_ip_address.clone()),
                    hostname: None,
                    ip_mode: mode,
                }]
            }),
            IngressSource::Vip => Some(vec![Ingress {
                ip: Some(v.address.clone()),
                hostname: None,
                ip_mode: mode,
            }]),
            IngressSource::Hostname(h) => Some(vec![Ingress {
                ip: None,
                hostname: Some(h.clone()),
                ip_mode: None,
            }]),
            IngressSource::AddressHostname { suffix, from_fip } => {
                let ip = if *from_fip {
                    fip.map(|f| f.floating_ip_address.clone())
                } else {
                    Some(v.address.clone())
                };
                ip.map(|ip| {
                    vec![Ingress {
                        ip: None,
                        hostname: Some(format!("{ip}.{suffix}")),
                        ip_mode: None,
                    }]
                })
            }
        }
        .map(|ingress| LoadBalancerStatus { ingress });
    }
    plan
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Node, Service};
    use serde_json::json;

    use crate::annotations as ann;
    use crate::config::CloudConfig;
    use crate::{
        apply, desired, plan, plan_delete, CloudFeatures, Environment, Observed, WarningReason,
    };

    fn env() -> Environment {
        let mut e = Environment::new("kubernetes", "0b9d3c3e-7f6a-4d51-9a63-2d8f1c0e4a11");
        e.node_subnet_id = Some("5e6f7a8b-0000-4000-8000-000000005b01".into());
        e.node_network_id = Some("5e6f7a8b-0000-4000-8000-00000000be70".into());
        e.discovered_floating_network_id = Some("a1b2c3d4-0000-4000-8000-00000000f10a".into());
        e
    }

    fn nodes(n: usize) -> Vec<Node> {
        (1..=n)
            .map(|i| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("node-{i}")},
                    "status": {
                        "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{i}")}],
                        "conditions": [{"type": "Ready", "status": "True"}]
                    }
                }))
                .unwrap()
            })
            .collect()
    }

    fn service(annotations: serde_json::Value, etp: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": etp, "healthCheckNodePort": 32000,
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}
        }))
        .unwrap()
    }

    fn ops(p: &crate::Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| {
                serde_json::to_value(&s.step).unwrap()["op"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn spec(annotations: serde_json::Value, etp: &str) -> crate::LoadBalancerSpec {
        desired(
            &service(annotations, etp),
            &nodes(3),
            &CloudConfig::default(),
            &CloudFeatures::neutron_v1(),
            &env(),
        )
        .expect("valid on v1")
    }

    /// `observed` after the bookkeeping that follows the published IP.
    fn settled(s: &crate::spec::LoadBalancerSpec, observed: Observed) -> Observed {
        let follow_up = plan(s, &observed);
        assert!(follow_up.publishable(), "{:?}", ops(&follow_up));
        apply(&follow_up, &observed)
    }

    #[test]
    fn creates_bottom_up_then_nothing_then_deletes_everything() {
        let s = spec(json!({}), "Cluster");
        let p = plan(&s, &Observed::default());
        assert_eq!(
            ops(&p),
            [
                "create_v1_pool",
                "create_v1_member",
                "create_v1_member",
                "create_v1_member",
                "create_v1_vip",
                "create_floating_ip"
            ]
        );
        let mut after = apply(&p, &Observed::default());
        let again = plan(&s, &after);
        assert_eq!(ops(&again), ["tag_floating_ip"]);
        assert!(
            again.publishable() && again.status.is_some(),
            "the FIP on the VIP port is published before it is tagged"
        );
        after = apply(&again, &after);
        assert!(plan(&s, &after).steps.is_empty());
        // While the VIP is still being provisioned the address carries no traffic: wait.
        after.v1.as_mut().unwrap().vip.as_mut().unwrap().status = "PENDING_CREATE".into();
        let busy = plan(&s, &after);
        assert!(busy.steps.is_empty() && busy.status.is_none());
        assert!(matches!(
            &busy.wait,
            Some(crate::plan::Wait::LoadBalancerBusy { status }) if status == "PENDING_CREATE"
        ));
        after.v1.as_mut().unwrap().vip.as_mut().unwrap().status = "ACTIVE".into();
        let gone = plan_delete(&s.delete_intent(), &after);
        let gone_ops = ops(&gone);
        assert_eq!(
            gone_ops.first().map(String::as_str),
            Some("delete_floating_ip")
        );
        assert_eq!(gone_ops.last().map(String::as_str), Some("delete_v1_pool"));
        let empty = apply(&gone, &after);
        assert!(plan_delete(&s.delete_intent(), &empty).steps.is_empty());
    }

    #[test]
    fn local_traffic_gets_a_tcp_monitor_of_the_node_port() {
        // v1 monitors probe the member port: an HTTP check there would hit the application.
        let s = spec(json!({}), "Local");
        let p = plan(&s, &Observed::default());
        let monitor = p
            .steps
            .iter()
            .find_map(|s| match &s.step {
                crate::Step::CreateV1Monitor { kind, .. } => Some(kind.clone()),
                _ => None,
            })
            .expect("a monitor for externalTrafficPolicy: Local");
        assert_eq!(monitor, "TCP");
        let after = settled(&s, apply(&p, &Observed::default()));
        assert!(plan(&s, &after).steps.is_empty(), "the TCP monitor is kept");
    }

    #[test]
    fn a_pool_cannot_be_shared() {
        let own = spec(json!({}), "Cluster");
        let mut ours = settled(
            &own,
            apply(&plan(&own, &Observed::default()), &Observed::default()),
        );
        let pool_id = "6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f60";
        let v1 = ours.v1.as_mut().unwrap();
        v1.pool.as_mut().unwrap().id = pool_id.into();
        v1.vip.as_mut().unwrap().pool_id = pool_id.into();
        for m in &mut v1.members {
            m.pool_id = pool_id.into();
        }
        let same = spec(json!({ann::LOAD_BALANCER_ID: pool_id}), "Cluster");
        let p = plan(&same, &ours);
        assert!(
            p.steps.is_empty() && p.warnings.is_empty(),
            "our own id: {p:?}"
        );
        let other = "0a0b0c0d-0000-4000-8000-000000000001";
        let shared = spec(json!({ann::LOAD_BALANCER_ID: other}), "Cluster");
        let p = plan(&shared, &ours);
        assert!(p.steps.is_empty(), "{:?}", ops(&p));
        assert!(p
            .warnings
            .iter()
            .any(|w| w.reason == WarningReason::FeatureUnsupported && w.message.contains(other)));
    }

    #[test]
    fn source_ip_port_is_refused_by_name() {
        let s = spec(json!({ann::LB_METHOD: "SOURCE_IP_PORT"}), "Cluster");
        let p = plan(&s, &Observed::default());
        assert!(p.steps.is_empty());
        assert_eq!(p.invalid.len(), 1);
        let text = p.invalid[0].to_string();
        assert!(text.contains(ann::LB_METHOD), "{text}");
        assert!(text.contains("ROUND_ROBIN"), "{text}");
    }

    #[test]
    fn managed_security_groups_are_reported_as_ignored() {
        let mut config = CloudConfig::default();
        config.load_balancer.manage_security_groups = true;
        let s = desired(
            &service(json!({}), "Cluster"),
            &nodes(1),
            &config,
            &CloudFeatures::neutron_v1(),
            &env(),
        )
        .expect("valid");
        let p = plan(&s, &Observed::default());
        assert!(p
            .warnings
            .iter()
            .any(|w| w.reason == WarningReason::FeatureUnsupported
                && w.message.contains("manage-security-groups")));
        assert!(!ops(&p).iter().any(|o| o.contains("security_group")));
    }
}
