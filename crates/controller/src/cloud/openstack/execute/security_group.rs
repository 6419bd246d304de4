//! Security-group calls (`manage-security-groups`): the group with its tags, its rules, and
//! the node ports' group lists (with the revision they were read at). Must not decide
//! anything.

use model::Step;
use openstack::neutron::{CreateSecurityGroup, CreateSecurityGroupRule, TagResource, UpdatePort};

use super::super::OpenStackCloud;
use super::{ignore_missing, misrouted, Created};
use crate::cloud::CloudError;

impl OpenStackCloud {
    pub(super) async fn security_group_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
        match step {
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
                    .await?;
                if !tags.is_empty() {
                    self.neutron
                        .replace_tags(TagResource::SecurityGroups, &g.id, tags)
                        .await?;
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
                self.neutron.create_security_group_rule(&req).await?;
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
                    .await?;
            }
            Step::DeleteSecurityGroup { group } => {
                ignore_missing(self.neutron.delete_security_group(group).await)?
            }
            other_step => return Err(misrouted(other_step, "security-group")),
        }
        Ok(())
    }
}
