//! The load balancer's own calls: the fully-populated create (its whole tree in one POST, the
//! answer kept as the first observation), updates, the cascade delete, and the VIP port a
//! floating IP goes on. Must not decide anything: the plan chose every call.

use model::{Ref, Step};
use openstack::lbaas::{CreateLoadBalancer, UpdateLoadBalancer};

use super::super::observe::observed_tree;
use super::super::OpenStackCloud;
use super::{ignore_missing, misrouted, opt_vec, Created};
use crate::cloud::CloudError;

impl OpenStackCloud {
    pub(super) async fn vip_port(&self, lb: &Ref, created: &Created) -> Result<String, CloudError> {
        let id = created.resolve(lb)?;
        if let Some(port) = created.vip_ports.get(&id) {
            return Ok(port.clone());
        }
        let lb = self.lb.get_loadbalancer(&id).await?;
        if lb.vip_port_id.is_empty() {
            return Err(CloudError::other(format!(
                "load balancer {id} has no VIP port yet"
            )));
        }
        Ok(lb.vip_port_id)
    }

    pub(super) async fn load_balancer_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
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
                let answer = self.lb.create_loadbalancer_tree(&req).await?;
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
                self.lb.update_loadbalancer(lb, &u).await?;
            }
            Step::DeleteLoadBalancer { lb, cascade } => {
                ignore_missing(self.lb.delete_loadbalancer(lb, *cascade).await)?
            }
            other_step => return Err(misrouted(other_step, "load-balancer")),
        }
        Ok(())
    }
}
