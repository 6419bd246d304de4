//! Running plan steps: each `model::Step` becomes exactly one OpenStack request (plus a tag
//! PUT where Neutron cannot take tags on create), in order, each able to refer by name to
//! what an earlier step of the same call created. One file per resource holds its calls;
//! this one routes steps to them, remembers what was created, and deletes what orphan
//! collection hands over. Must not decide anything: every choice was made by `model::plan`.

mod floating_ip;
mod listener;
mod loadbalancer;
mod member;
mod monitor;
mod pool;
mod security_group;

use std::collections::{BTreeMap, HashMap};

use model::observed::{ObservedFloatingIp, ObservedLoadBalancer};
use model::plan::PortRef;
use model::{Ref, Step};

use super::error::ignore_missing;
use super::v1;
use super::OpenStackCloud;
use crate::backend::OwnedKind;
use crate::cloud::{describe, CloudError, CloudErrorKind, Executed};

fn opt_vec(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn opt_map(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then(|| m.clone())
}

/// A step handed to the file of another resource: a routing mistake here, not the cloud's.
fn misrouted(step: &Step, family: &str) -> CloudError {
    CloudError::other(format!("{} is not a {family} call", describe(step)))
}

/// Ids of objects created earlier in the same `execute` call, by name, and VIP ports by LB id
/// (LBaaS v1: by VIP name, since a v1 pool and its VIP share the Service's name).
#[derive(Default)]
pub(super) struct Created {
    pub(super) ids: HashMap<String, String>,
    pub(super) vip_ports: HashMap<String, String>,
    pub(super) v1_vip_ports: HashMap<String, String>,
    /// LBaaS v1 monitors disassociated by this call, with their pool.
    pub(super) v1_disassociated: HashMap<String, String>,
    /// The load balancer this call created, and its tree as the create answered it.
    pub(super) load_balancer: Option<String>,
    pub(super) tree: Option<ObservedLoadBalancer>,
    /// The floating IPs this call created, as their create (and tag) answered.
    pub(super) floating_ips: Vec<ObservedFloatingIp>,
}

impl Created {
    pub(super) fn resolve(&self, r: &Ref) -> Result<String, CloudError> {
        match r {
            Ref::Id(id) => Ok(id.clone()),
            Ref::Named(name) => self.ids.get(name).cloned().ok_or_else(|| {
                CloudError::other(format!("{name} was not created before it was needed"))
            }),
        }
    }
}

impl OpenStackCloud {
    /// [`crate::cloud::Cloud::execute`]: the steps in order, stopping at the first failure.
    pub(super) async fn run_steps(&self, steps: &[Step]) -> Result<Executed, CloudError> {
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

    /// [`crate::cloud::Cloud::delete_tagged`]: gone counts as done.
    pub(super) async fn delete_owned(&self, kind: OwnedKind, id: &str) -> Result<(), CloudError> {
        match kind {
            OwnedKind::LoadBalancer => ignore_missing(
                self.lb
                    .delete_loadbalancer(id, self.features.cascade_delete)
                    .await,
            ),
            OwnedKind::FloatingIp => ignore_missing(self.neutron.delete_floating_ip(id).await),
        }
    }

    /// The port a floating IP goes on: given, or the VIP port of a load balancer (LBaaS v1:
    /// of a VIP).
    async fn port(&self, p: &PortRef, created: &Created) -> Result<String, CloudError> {
        match (p, self.v1_client()) {
            (PortRef::Id(id), _) => Ok(id.clone()),
            (PortRef::VipOf(r), Some(v1)) => v1::vip_port(v1, r, created).await,
            (PortRef::VipOf(lb), None) => self.vip_port(lb, created).await,
        }
    }

    async fn step(&self, step: &Step, created: &mut Created) -> Result<(), CloudError> {
        match step {
            Step::CreateLoadBalancer { .. }
            | Step::UpdateLoadBalancer { .. }
            | Step::DeleteLoadBalancer { .. } => self.load_balancer_step(step, created).await,
            Step::CreateListener { .. }
            | Step::UpdateListener { .. }
            | Step::DeleteListener { .. } => self.listener_step(step, created).await,
            Step::CreatePool { .. } | Step::UpdatePool { .. } | Step::DeletePool { .. } => {
                self.pool_step(step, created).await
            }
            Step::BatchUpdateMembers { .. }
            | Step::CreateMember { .. }
            | Step::DeleteMember { .. } => self.member_step(step, created).await,
            Step::CreateMonitor { .. }
            | Step::UpdateMonitor { .. }
            | Step::DeleteMonitor { .. } => self.monitor_step(step, created).await,
            Step::CreateFloatingIp { .. }
            | Step::AssociateFloatingIp { .. }
            | Step::DisassociateFloatingIp { .. }
            | Step::DeleteFloatingIp { .. }
            | Step::TagFloatingIp { .. } => self.floating_ip_step(step, created).await,
            Step::CreateSecurityGroup { .. }
            | Step::CreateSecurityGroupRule { .. }
            | Step::DeleteSecurityGroupRule { .. }
            | Step::UpdatePortSecurityGroups { .. }
            | Step::DeleteSecurityGroup { .. } => self.security_group_step(step, created).await,
            v1_step => match self.v1_client() {
                Some(v1) => v1::step_run(v1, v1_step, created).await,
                None => Err(CloudError::other(format!(
                    "{} is an LBaaS v1 call, but this cloud was not detected as LBaaS v1",
                    describe(v1_step)
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use openstack::lbaas::{CreateListener, CreateLoadBalancer};
    use openstack::{LbaasV2, Neutron};

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
}
