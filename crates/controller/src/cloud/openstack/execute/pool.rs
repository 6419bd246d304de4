//! Pool calls (create under a listener, update, delete). Must not decide anything.

use model::plan::PoolUpdate;
use model::spec::Persistence;
use model::Step;
use openstack::lbaas::{CreatePool, SessionPersistence, UpdatePool};

use super::super::OpenStackCloud;
use super::{ignore_missing, misrouted, opt_vec, Created};
use crate::cloud::CloudError;

pub(super) fn persistence_to_api(p: &Option<Persistence>) -> Option<SessionPersistence> {
    p.as_ref().map(|p| SessionPersistence {
        persistence_type: p.kind.clone(),
        ..Default::default()
    })
}

impl OpenStackCloud {
    pub(super) async fn pool_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
        match step {
            Step::CreatePool {
                lb: _,
                listener,
                name,
                protocol,
                lb_algorithm,
                session_persistence,
                tags,
            } => {
                let req = CreatePool {
                    protocol: protocol.as_api(),
                    lb_algorithm: lb_algorithm.as_api().to_string(),
                    name: Some(name.clone()),
                    listener_id: Some(created.resolve(listener)?),
                    session_persistence: persistence_to_api(session_persistence),
                    tags: opt_vec(tags),
                    ..Default::default()
                };
                let p = self.lb.create_pool(&req).await?;
                created.ids.insert(name.clone(), p.id);
            }
            Step::UpdatePool { pool, changes } => {
                let PoolUpdate {
                    name,
                    lb_algorithm,
                    session_persistence,
                    tags,
                } = changes.clone();
                let u = UpdatePool {
                    name,
                    lb_algorithm: lb_algorithm.map(|m| m.as_api().to_string()),
                    session_persistence: session_persistence.map(|p| persistence_to_api(&p)),
                    tags,
                    ..Default::default()
                };
                self.lb.update_pool(pool, &u).await?;
            }
            Step::DeletePool { pool } => ignore_missing(self.lb.delete_pool(pool).await)?,
            other_step => return Err(misrouted(other_step, "pool")),
        }
        Ok(())
    }
}
