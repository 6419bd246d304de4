//! Floating-IP calls: create (choosing the subnet by `floating-subnet` pattern or tags, since
//! Neutron has no server-side name patterns), associate, disassociate, delete, and the
//! cluster tag. Must not decide anything.

use std::net::IpAddr;

use model::Step;
use openstack::neutron::{CreateFloatingIp, TagResource};
use openstack::ListQuery;

use model::observed::ObservedFloatingIp;

use super::super::OpenStackCloud;
use super::{ignore_missing, misrouted, Created};
use crate::cloud::CloudError;

/// Whether a subnet's name matches `floating-subnet` (Neutron has no server-side name
/// patterns). The pattern language is the `glob` crate's, the one `model` validated the
/// setting with: `*`, `?`, `[…]` and `[!…]`. A pattern it cannot read (none that passed
/// validation) matches only its own text.
fn subnet_name_matches(pattern: &str, name: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches(name),
        Err(_) => pattern == name,
    }
}

impl OpenStackCloud {
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
        let subnets = self.neutron.list_subnets(&q).await?;
        let found = subnets.into_iter().find(|s| {
            glob.as_deref()
                .is_none_or(|g| subnet_name_matches(g, &s.name))
        });
        match found {
            Some(s) => Ok(Some(s.id)),
            None => Err(CloudError::other(format!(
                "no subnet of floating network {network_id} matches floating-subnet {glob:?} / floating-subnet-tags {tags:?}"
            ))),
        }
    }

    pub(super) async fn floating_ip_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
        match step {
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
                let fip = self.neutron.create_floating_ip(&req).await?;
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
                self.neutron.associate_floating_ip(fip, Some(&port)).await?;
            }
            Step::DisassociateFloatingIp { fip } => {
                self.neutron.associate_floating_ip(fip, None).await?;
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
            other_step => return Err(misrouted(other_step, "floating-IP")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(subnet_name_matches("public-*", "public-subnet-1"));
        assert!(subnet_name_matches("p?blic", "public"));
        assert!(subnet_name_matches("*", ""));
        assert!(!subnet_name_matches("public-*", "private-1"));
        assert!(subnet_name_matches("*-v4-*", "ext-v4-a"));
        // Character classes, as `model` validates them (the hand-written matcher before took
        // `[` literally).
        assert!(subnet_name_matches("ext-[ab]", "ext-a"));
        assert!(!subnet_name_matches("ext-[ab]", "ext-c"));
        assert!(subnet_name_matches("ext-[!ab]", "ext-c"));
    }
}
