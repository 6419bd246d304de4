//! Member calls: the batch replace of a pool's members, single creates and deletes. Must not
//! decide anything.

use model::spec::MemberSpec;
use model::Step;
use openstack::lbaas::CreateMember;

use super::super::OpenStackCloud;
use super::{ignore_missing, misrouted, Created};
use crate::cloud::CloudError;

pub(super) fn member_to_api(m: &MemberSpec) -> CreateMember {
    CreateMember {
        address: m.address.to_string(),
        protocol_port: m.protocol_port,
        name: Some(m.name.clone()),
        subnet_id: m.subnet_id.clone(),
        monitor_port: m.monitor_port,
        ..Default::default()
    }
}

impl OpenStackCloud {
    pub(super) async fn member_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
        match step {
            Step::BatchUpdateMembers { pool, members } => {
                let pool = created.resolve(pool)?;
                let members: Vec<CreateMember> = members.iter().map(member_to_api).collect();
                self.lb.replace_members(&pool, &members).await?;
            }
            Step::CreateMember { pool, member } => {
                let pool = created.resolve(pool)?;
                self.lb.create_member(&pool, &member_to_api(member)).await?;
            }
            Step::DeleteMember { pool, member } => {
                ignore_missing(self.lb.delete_member(pool, member).await)?
            }
            other_step => return Err(misrouted(other_step, "member")),
        }
        Ok(())
    }
}
