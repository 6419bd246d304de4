//! Plans for Neutron LBaaS v1 (SPEC §1.2): one pool (named like the LB), its members, one
//! health monitor and one VIP (also named like the LB) for a single TCP port. v1 has no tags:
//! ownership is the name plus our description. No Octavia-style lock, so every step may run in
//! order.

use std::collections::BTreeSet;

use super::fip::fip_steps;
use super::*;
use crate::observed::{Observed, ObservedV1};
use crate::spec::{Ingress, IngressSource, LoadBalancerSpec, Members, MonitorType};

pub(super) fn plan_v1(spec: &LoadBalancerSpec, observed: &Observed) -> Plan {
    let mut plan = Plan {
        warnings: spec.warnings.clone(),
        ..Plan::default()
    };
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
    let vip = v1.vip.as_ref().filter(|v| v.name == spec.name);
    let persistence = listener
        .pool
        .session_persistence
        .as_ref()
        .map(|p| p.kind.clone());
    let mut steps = Vec::new();
    let lb_method = listener.pool.lb_algorithm.as_api().to_string();
    let monitor_key = listener
        .pool
        .monitor
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let v1_monitor = |m: &crate::spec::MonitorSpec| Step::CreateV1Monitor {
        key: m.name.clone(),
        kind: if m.kind == MonitorType::Http {
            "HTTP"
        } else {
            "TCP"
        }
        .to_string(),
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
                let key = |a: &str, port: u16| (diff::normalize_ip(a), port);
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
                let kind = if w.kind == MonitorType::Http {
                    "HTTP"
                } else {
                    "TCP"
                };
                m.kind == kind
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
    plan.steps = steps
        .into_iter()
        .map(|step| PlannedStep {
            gate: Gate::Now,
            step,
        })
        .collect();
    plan.load_balancer_id = pool.map(|p| p.id.clone());
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
