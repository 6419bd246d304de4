//! Listener calls, and the listener (with its default pool, members and monitor) as it goes
//! into a fully-populated load-balancer create. Must not decide anything.

use model::plan::ListenerUpdate;
use model::spec::ListenerSpec;
use model::Step;
use openstack::lbaas::{CreateListener, CreateMember, CreatePool, UpdateListener};

use super::super::OpenStackCloud;
use super::member::member_to_api;
use super::monitor::monitor_to_api;
use super::pool::persistence_to_api;
use super::{ignore_missing, misrouted, opt_map, opt_vec, Created};
use crate::cloud::CloudError;

impl OpenStackCloud {
    pub(super) fn listener_to_api(&self, l: &ListenerSpec) -> CreateListener {
        let pool = &l.pool;
        let members: Vec<CreateMember> = pool.members.initial().iter().map(member_to_api).collect();
        CreateListener {
            protocol: l.protocol.as_api(),
            protocol_port: l.port,
            name: Some(l.name.clone()),
            connection_limit: Some(l.connection_limit),
            default_tls_container_ref: l.default_tls_container_ref.clone(),
            insert_headers: opt_map(&l.insert_headers),
            timeout_client_data: l.timeouts.client_data,
            timeout_member_connect: l.timeouts.member_connect,
            timeout_member_data: l.timeouts.member_data,
            timeout_tcp_inspect: l.timeouts.tcp_inspect,
            allowed_cidrs: opt_vec(&l.allowed_cidrs),
            tags: opt_vec(&l.tags),
            default_pool: Some(CreatePool {
                protocol: pool.protocol.as_api(),
                lb_algorithm: pool.lb_algorithm.as_api().to_string(),
                name: Some(pool.name.clone()),
                session_persistence: persistence_to_api(&pool.session_persistence),
                members: Some(members),
                healthmonitor: pool.monitor.as_ref().map(|m| monitor_to_api(m, None)),
                tags: opt_vec(&pool.tags),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(super) async fn listener_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
        match step {
            Step::CreateListener {
                lb,
                name,
                protocol,
                port,
                connection_limit,
                allowed_cidrs,
                insert_headers,
                timeouts,
                default_tls_container_ref,
                tags,
            } => {
                let req = CreateListener {
                    protocol: protocol.as_api(),
                    protocol_port: *port,
                    loadbalancer_id: Some(created.resolve(lb)?),
                    name: Some(name.clone()),
                    connection_limit: Some(*connection_limit),
                    default_tls_container_ref: default_tls_container_ref.clone(),
                    insert_headers: opt_map(insert_headers),
                    timeout_client_data: timeouts.client_data,
                    timeout_member_connect: timeouts.member_connect,
                    timeout_member_data: timeouts.member_data,
                    timeout_tcp_inspect: timeouts.tcp_inspect,
                    allowed_cidrs: opt_vec(allowed_cidrs),
                    tags: opt_vec(tags),
                    ..Default::default()
                };
                let l = self.lb.create_listener(&req).await?;
                created.ids.insert(name.clone(), l.id);
            }
            Step::UpdateListener { listener, changes } => {
                let ListenerUpdate {
                    name,
                    connection_limit,
                    allowed_cidrs,
                    insert_headers,
                    timeouts,
                    default_tls_container_ref,
                    tags,
                } = changes.clone();
                let u = UpdateListener {
                    name,
                    connection_limit,
                    allowed_cidrs,
                    insert_headers,
                    timeout_client_data: timeouts.and_then(|t| t.client_data),
                    timeout_member_connect: timeouts.and_then(|t| t.member_connect),
                    timeout_member_data: timeouts.and_then(|t| t.member_data),
                    timeout_tcp_inspect: timeouts.and_then(|t| t.tcp_inspect),
                    default_tls_container_ref,
                    tags,
                    ..Default::default()
                };
                self.lb.update_listener(listener, &u).await?;
            }
            Step::DeleteListener { listener } => {
                ignore_missing(self.lb.delete_listener(listener).await)?
            }
            other_step => return Err(misrouted(other_step, "listener")),
        }
        Ok(())
    }
}
