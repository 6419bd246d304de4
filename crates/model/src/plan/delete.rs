//! `plan_delete` (SPEC §4 "Deletion"): release the FIP we created unless keep-floatingip
//! protects it or other Services' listeners still use the LB it points at, delete the LB if it is ours (cascade where available, else bottom-up) or only
//! our listeners on a shared one, delete our security group. A user's FIP or LB is never
//! deleted; an LB already gone, being deleted or in ERROR never blocks.

use k8s_openapi::api::core::v1::Service;
use serde::{Deserialize, Serialize};

use super::fip::is_our_fip;
use super::sg::{our_group, remove_group};
use super::*;
use crate::annotations;
use crate::config::CloudConfig;
use crate::environment::Environment;
use crate::features::{CloudFeatures, Generation};
use crate::invalid::InvalidReason;
use crate::naming;
use crate::observed::{Observed, ProvisioningStatus};
use crate::spec::{LoadBalancerSpec, ServiceRef};

/// What deletion needs to know about a Service: who it is and what is ours. Built from the
/// Service alone, so that a Service with invalid annotations can still be cleaned up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeleteIntent {
    pub service: ServiceRef,
    pub lb_name: String,
    pub description: String,
    pub cluster_tag: String,
    pub fip_description: String,
    pub keep_floating_ip: bool,
    pub cascade: bool,
    pub generation: Generation,
}

impl DeleteIntent {
    /// From the Service's metadata. An unreadable `keep-floatingip` counts as true: when in
    /// doubt, keep the address.
    pub fn for_service(
        service: &Service,
        config: &CloudConfig,
        features: &CloudFeatures,
        env: &Environment,
    ) -> Self {
        let namespace = service
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = service.metadata.name.clone().unwrap_or_default();
        let keep = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::KEEP_FLOATINGIP))
            .map(|v| {
                annotations::parse_bool(annotations::KEEP_FLOATINGIP, v.trim()).unwrap_or(true)
            })
            .unwrap_or(false);
        DeleteIntent {
            lb_name: naming::lb_name(&env.cluster_name, &namespace, &name),
            description: naming::lb_description(&env.cluster_name, &namespace, &name),
            cluster_tag: naming::cluster_tag(&env.cluster_uid),
            fip_description: naming::fip_description(&env.cluster_name, &namespace, &name),
            keep_floating_ip: keep,
            cascade: config.load_balancer.cascade_delete && features.cascade_delete,
            generation: features.generation,
            service: ServiceRef {
                namespace,
                name,
                uid: service.metadata.uid.clone().unwrap_or_default(),
            },
        }
    }
}

impl LoadBalancerSpec {
    pub fn delete_intent(&self) -> DeleteIntent {
        DeleteIntent {
            service: self.service.clone(),
            lb_name: self.name.clone(),
            description: self.description.clone(),
            cluster_tag: self.cluster_tag.clone(),
            fip_description: self.fip_description.clone(),
            keep_floating_ip: self.keep_floating_ip,
            cascade: self.cascade_delete,
            generation: self.features.generation,
        }
    }
}

/// The steps that remove what a deleted Service left in the cloud. `status` is the empty
/// status to write once the plan is done.
pub fn plan_delete(intent: &DeleteIntent, observed: &Observed) -> Plan {
    let mut plan = Plan {
        status: Some(LoadBalancerStatus::default()),
        ..Plan::default()
    };
    let mut neutron = Vec::new();
    let mut octavia = Vec::new();

    // A FIP attached to another cluster's LB is that LB's, whatever its description says.
    let foreign_port = observed
        .load_balancer
        .as_ref()
        .filter(|lb| {
            naming::cluster_uid_of(&lb.tags)
                .is_some_and(|uid| naming::cluster_tag(uid) != intent.cluster_tag)
        })
        .and_then(|lb| lb.vip_port_id.clone());
    // An LB that other Services' listeners keep alive (we shared it, or it was ours and others
    // joined) keeps its address: releasing the FIP on its VIP would cut their traffic. Orphan
    // collection takes that FIP with the LB once nobody uses it any more.
    // A locked LB may have been observed without its tree (its listeners are not worth reading
    // while nothing can change them), so who else uses it is unknown: keep the address until
    // it is ACTIVE again. One being deleted keeps nobody.
    let kept_port = observed
        .load_balancer
        .as_ref()
        .filter(|lb| {
            let unknown = lb.provisioning_status.is_pending()
                && lb.provisioning_status != ProvisioningStatus::PendingDelete
                && lb.listeners.is_empty();
            unknown
                || lb
                    .listeners
                    .iter()
                    .any(|l| naming::child_index("listener", &l.name, &intent.lb_name).is_none())
        })
        .and_then(|lb| lb.vip_port_id.clone());
    if !intent.keep_floating_ip {
        let releasable = |f: &&crate::observed::ObservedFloatingIp| {
            is_our_fip(&intent.fip_description, &intent.cluster_tag, f)
                && (foreign_port.is_none() || f.port_id != foreign_port)
                && (kept_port.is_none() || f.port_id != kept_port)
        };
        for f in observed.floating_ips.iter().filter(releasable) {
            neutron.push(Step::DeleteFloatingIp { fip: f.id.clone() });
        }
    }
    if let Some(g) = our_group(
        &naming::security_group_name(&intent.lb_name),
        &intent.cluster_tag,
        observed,
    ) {
        remove_group(g, observed, &mut neutron);
    }

    if intent.generation == Generation::NeutronV1 {
        v1_delete(intent, observed, &mut neutron);
    } else if let Some(lb) = observed.load_balancer.as_ref() {
        let gone = matches!(
            lb.provisioning_status,
            ProvisioningStatus::Deleted | ProvisioningStatus::PendingDelete
        );
        let foreign = naming::cluster_uid_of(&lb.tags)
            .is_some_and(|uid| naming::cluster_tag(uid) != intent.cluster_tag);
        let other_project =
            matches!((&observed.project_id, &lb.project_id), (Some(a), Some(b)) if a != b);
        if foreign {
            plan.invalid.push(Invalid {
                field: "load balancer".to_string(),
                value: lb.id.clone(),
                accepted: format!("tagged {}", intent.cluster_tag),
                reason: InvalidReason::ForeignCluster,
            });
        } else if lb.provisioning_status == ProvisioningStatus::PendingDelete
            && !other_project
            && lb.name == intent.lb_name
        {
            // Our LB on its way out: the Service (and its finalizer) stays until it is gone,
            // because cluster-deletion flows (Magnum, Terraform) delete the network as soon as
            // the Services are gone and would then fail on the LB's VIP port.
            plan.wait = Some(Wait::LoadBalancerBusy {
                status: lb.provisioning_status.as_api().to_string(),
            });
        } else if !gone && !other_project {
            let ours: Vec<_> = lb
                .listeners
                .iter()
                .filter(|l| naming::child_index("listener", &l.name, &intent.lb_name).is_some())
                .collect();
            let others = lb.listeners.len() - ours.len();
            let dedicated = lb.name == intent.lb_name;
            if lb.provisioning_status.is_pending() {
                plan.wait = Some(Wait::LoadBalancerBusy {
                    status: lb.provisioning_status.as_api().to_string(),
                });
            }
            if dedicated && others == 0 {
                if intent.cascade {
                    octavia.push(Step::DeleteLoadBalancer {
                        lb: lb.id.clone(),
                        cascade: true,
                    });
                } else {
                    for l in &ours {
                        if let Some(p) = &l.pool {
                            if let Some(m) = &p.monitor {
                                octavia.push(Step::DeleteMonitor {
                                    monitor: m.id.clone(),
                                });
                            }
                            octavia.push(Step::DeletePool { pool: p.id.clone() });
                        }
                        octavia.push(Step::DeleteListener {
                            listener: l.id.clone(),
                        });
                    }
                    octavia.push(Step::DeleteLoadBalancer {
                        lb: lb.id.clone(),
                        cascade: false,
                    });
                }
            } else {
                // Shared: remove only our listeners and our name tag; the LB stays for the others
                // (or for its owner, if a user pointed us at it).
                for l in &ours {
                    if let Some(p) = &l.pool {
                        octavia.push(Step::DeletePool { pool: p.id.clone() });
                    }
                    octavia.push(Step::DeleteListener {
                        listener: l.id.clone(),
                    });
                }
                if lb.tags.contains(&intent.lb_name) {
                    let tags = lb
                        .tags
                        .iter()
                        .filter(|t| **t != intent.lb_name)
                        .cloned()
                        .collect();
                    octavia.push(Step::UpdateLoadBalancer {
                        lb: lb.id.clone(),
                        name: None,
                        description: None,
                        tags: Some(tags),
                    });
                }
            }
        }
    }
    if !plan.invalid.is_empty() {
        // Our FIP and group are still ours to release; the foreign LB is not touched.
        octavia.clear();
    }
    // An LB in ERROR accepts DELETE; nothing waits for ACTIVE.
    let in_error = observed
        .load_balancer
        .as_ref()
        .is_some_and(|l| l.provisioning_status == ProvisioningStatus::Error);
    let mut locked = plan.wait.is_some();
    plan.steps = neutron
        .into_iter()
        .map(|step| PlannedStep {
            gate: Gate::Now,
            step,
        })
        .collect();
    for step in octavia {
        let gate = if locked && !in_error {
            Gate::WhenActive
        } else {
            Gate::Now
        };
        plan.steps.push(PlannedStep { gate, step });
        locked = true;
    }
    plan
}

fn v1_delete(intent: &DeleteIntent, observed: &Observed, out: &mut Vec<Step>) {
    let Some(v1) = &observed.v1 else { return };
    if let Some(v) = v1
        .vip
        .as_ref()
        .filter(|v| v.name == intent.lb_name && v.description == intent.description)
    {
        out.push(Step::DeleteV1Vip { vip: v.id.clone() });
    }
    if let Some(p) = v1
        .pool
        .as_ref()
        .filter(|p| p.name == intent.lb_name && p.description == intent.description)
    {
        for m in v1.members.iter().filter(|m| m.pool_id == p.id) {
            out.push(Step::DeleteV1Member {
                member: m.id.clone(),
            });
        }
        for m in &p.health_monitors {
            out.push(Step::DisassociateV1Monitor {
                pool: p.id.clone(),
                monitor: m.clone(),
            });
            out.push(Step::DeleteV1Monitor { monitor: m.clone() });
        }
        out.push(Step::DeleteV1Pool { pool: p.id.clone() });
    }
}
