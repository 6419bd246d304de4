//! The plan: the smallest ordered list of API calls that turns what exists (`Observed`) into
//! what should exist (`LoadBalancerSpec`), respecting Octavia's one-mutation-at-a-time lock
//! (SPEC §4, §5). Each `Step` maps 1:1 onto one OpenStack request and carries everything the
//! request needs, plus the name it will be found by after a crash. Must not know HTTP, JSON
//! bodies or Kubernetes clients.

mod delete;
mod diff;
mod fip;
mod ip;
mod sg;
mod v1;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::LbMethod;
use crate::invalid::{Invalid, Warning, WarningReason};
use crate::spec::{
    ListenerProtocol, ListenerSpec, LoadBalancerStatus, MemberSpec, MonitorSpec, Persistence,
    PoolProtocol, SecurityGroupRule, Timeouts, VipPlacement,
};

pub use delete::{plan_delete, DeleteIntent};
pub use diff::plan;
pub use fip::is_our_fip;

/// An object a step acts on: one that exists (by id) or one an earlier step of the same plan
/// creates (by name; after a crash the client finds it by that name under the same LB, so a
/// retried plan adopts it instead of creating a duplicate).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ref {
    Id(String),
    Named(String),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Id(id) => write!(f, "{id}"),
            Ref::Named(name) => write!(f, "<{name}>"),
        }
    }
}

/// A Neutron port a floating IP is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortRef {
    Id(String),
    /// The VIP port of this load balancer (known once its create call has answered).
    VipOf(Ref),
}

/// When a step may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// May be issued as soon as the steps before it have answered.
    Now,
    /// Needs the load balancer ACTIVE: an earlier step (or the current state) holds the
    /// Octavia lock. The executor stops here, re-observes and re-plans.
    WhenActive,
    /// Bookkeeping the Service's status does not depend on (see [`Step::is_bookkeeping`]):
    /// runs once everything else is done and the status with the address is written, so it
    /// never delays the external IP. Always last in a plan.
    AfterPublish,
}

/// One step of a plan with its gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub gate: Gate,
    #[serde(flatten)]
    pub step: Step,
}

/// Changes to a listener; None = unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_headers: Option<BTreeMap<String, String>>,
    /// All four timeouts are sent together when any differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tls_container_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Changes to a pool; None = unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb_algorithm: Option<LbMethod>,
    /// `Some(None)` removes persistence (sent as JSON null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<Option<Persistence>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Changes to a monitor (its type is immutable: a type change replaces it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries_down: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_codes: Option<String>,
}

/// One API call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// POST /v2/lbaas/loadbalancers, fully populated when the cloud allows (`listeners` then
    /// carry pools, members and monitors); found again by `name` after a crash.
    CreateLoadBalancer {
        name: String,
        description: String,
        tags: Vec<String>,
        vip: VipPlacement,
        provider: Option<String>,
        flavor_id: Option<String>,
        availability_zone: Option<String>,
        listeners: Vec<ListenerSpec>,
    },
    /// PUT /v2/lbaas/loadbalancers/{id}: name, description and/or the full tag list.
    UpdateLoadBalancer {
        lb: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
    },
    /// DELETE /v2/lbaas/loadbalancers/{id}[?cascade=true].
    DeleteLoadBalancer {
        lb: String,
        cascade: bool,
    },
    /// POST /v2/lbaas/listeners (without pool: the pool is created by the next steps).
    CreateListener {
        lb: Ref,
        name: String,
        protocol: ListenerProtocol,
        port: u16,
        connection_limit: i64,
        allowed_cidrs: Vec<String>,
        insert_headers: BTreeMap<String, String>,
        timeouts: Timeouts,
        default_tls_container_ref: Option<String>,
        tags: Vec<String>,
    },
    UpdateListener {
        listener: String,
        changes: ListenerUpdate,
    },
    DeleteListener {
        listener: String,
    },
    /// POST /v2/lbaas/pools as the listener's default pool.
    CreatePool {
        lb: Ref,
        listener: Ref,
        name: String,
        protocol: PoolProtocol,
        lb_algorithm: LbMethod,
        session_persistence: Option<Persistence>,
        tags: Vec<String>,
    },
    UpdatePool {
        pool: String,
        changes: PoolUpdate,
    },
    /// DELETE /v2/lbaas/pools/{id} (its members and monitor go with it).
    DeletePool {
        pool: String,
    },
    /// PUT /v2/lbaas/pools/{id}/members: the whole member set in one call.
    BatchUpdateMembers {
        pool: Ref,
        members: Vec<MemberSpec>,
    },
    /// POST /v2/lbaas/pools/{id}/members (clouds without batch update).
    CreateMember {
        pool: Ref,
        member: MemberSpec,
    },
    DeleteMember {
        pool: String,
        member: String,
    },
    CreateMonitor {
        pool: Ref,
        monitor: MonitorSpec,
    },
    UpdateMonitor {
        monitor: String,
        changes: MonitorUpdate,
    },
    DeleteMonitor {
        monitor: String,
    },
    /// POST /v2.0/floatingips, attached at once when `port` is given. `address` asks for a
    /// specific address. Neutron refuses `tags` in this body, so the cluster tag follows as a
    /// [`Step::TagFloatingIp`] after the IP is published; until then the FIP is found again by
    /// its `description`.
    CreateFloatingIp {
        network_id: String,
        subnet_id: Option<String>,
        subnet_name_glob: Option<String>,
        subnet_tags: Vec<String>,
        address: Option<IpAddr>,
        port: Option<PortRef>,
        description: String,
    },
    /// PUT /v2.0/floatingips/{id} with port_id (and our description/tags when we adopt it
    /// as ours, None for a user's FIP).
    AssociateFloatingIp {
        fip: String,
        port: PortRef,
    },
    /// PUT /v2.0/floatingips/{id} with port_id null.
    DisassociateFloatingIp {
        fip: String,
    },
    DeleteFloatingIp {
        fip: String,
    },
    /// PUT /v2.0/floatingips/{fip}/tags/{tag}: adds our cluster tag to a FIP of ours that stays
    /// on the VIP port but lacks it, keeping any other tag; no Octavia lock. Every FIP we
    /// create needs it (Neutron takes no tags in the POST), and so does one adopted from OCCM:
    /// without the tag, orphan collection (which lists by tag) could never find the FIP.
    TagFloatingIp {
        fip: String,
        tag: String,
    },
    /// POST /v2.0/security-groups (then PUT /tags for `tags`).
    CreateSecurityGroup {
        name: String,
        description: String,
        tags: Vec<String>,
    },
    CreateSecurityGroupRule {
        group: Ref,
        rule: SecurityGroupRule,
    },
    DeleteSecurityGroupRule {
        rule: String,
    },
    /// PUT /v2.0/ports/{id} with the full `security_groups` list, guarded by
    /// `If-Match: revision_number=N`.
    UpdatePortSecurityGroups {
        port: String,
        security_groups: Vec<Ref>,
        revision_number: u64,
    },
    DeleteSecurityGroup {
        group: String,
    },
    /// LBaaS v1: POST /v2.0/lb/pools.
    CreateV1Pool {
        name: String,
        description: String,
        subnet_id: String,
        protocol: String,
        lb_method: String,
    },
    UpdateV1Pool {
        pool: String,
        lb_method: String,
    },
    DeleteV1Pool {
        pool: String,
    },
    CreateV1Member {
        pool: Ref,
        address: IpAddr,
        protocol_port: u16,
    },
    DeleteV1Member {
        member: String,
    },
    /// POST /v2.0/lb/health_monitors; v1 monitors have no name, `key` names it within the plan.
    CreateV1Monitor {
        key: String,
        kind: String,
        delay: u32,
        timeout: u32,
        max_retries: u32,
    },
    AssociateV1Monitor {
        pool: Ref,
        monitor: Ref,
    },
    DisassociateV1Monitor {
        pool: String,
        monitor: String,
    },
    DeleteV1Monitor {
        monitor: String,
    },
    CreateV1Vip {
        name: String,
        description: String,
        pool: Ref,
        subnet_id: String,
        address: Option<IpAddr>,
        protocol: String,
        protocol_port: u16,
        session_persistence: Option<String>,
        connection_limit: i64,
    },
    UpdateV1Vip {
        vip: String,
        session_persistence: Option<String>,
        connection_limit: i64,
    },
    DeleteV1Vip {
        vip: String,
    },
}

impl Step {
    /// Whether this call mutates an Octavia/LBaaS v2 load balancer and therefore takes its lock.
    pub fn takes_lb_lock(&self) -> bool {
        matches!(
            self,
            Step::CreateLoadBalancer { .. }
                | Step::UpdateLoadBalancer { .. }
                | Step::DeleteLoadBalancer { .. }
                | Step::CreateListener { .. }
                | Step::UpdateListener { .. }
                | Step::DeleteListener { .. }
                | Step::CreatePool { .. }
                | Step::UpdatePool { .. }
                | Step::DeletePool { .. }
                | Step::BatchUpdateMembers { .. }
                | Step::CreateMember { .. }
                | Step::DeleteMember { .. }
                | Step::CreateMonitor { .. }
                | Step::UpdateMonitor { .. }
                | Step::DeleteMonitor { .. }
        )
    }

    /// Whether this call is bookkeeping that no address depends on, so it waits until the
    /// Service's status is published ([`Gate::AfterPublish`]).
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, Step::TagFloatingIp { .. })
    }

    /// Whether this call writes a floating IP.
    pub fn is_fip_write(&self) -> bool {
        matches!(
            self,
            Step::CreateFloatingIp { .. }
                | Step::AssociateFloatingIp { .. }
                | Step::DisassociateFloatingIp { .. }
                | Step::DeleteFloatingIp { .. }
                | Step::TagFloatingIp { .. }
        )
    }

    /// The Service fields and cloud.conf keys a call's content comes from: what to change when
    /// the provider refuses it (an Octavia 501 "Provider '…' does not support …").
    pub fn shaped_by(&self) -> &'static str {
        match self {
            Step::CreateLoadBalancer { .. } | Step::UpdateLoadBalancer { .. } => {
                "[LoadBalancer] lb-provider, flavor-id, availability-zone (or the flavor-id / availability-zone annotations), and every port, lb-method, proxy-protocol and health-monitor setting of the Service"
            }
            Step::CreateListener { .. } | Step::UpdateListener { .. } => {
                "spec.ports[].protocol, loadbalancer.openstack.org/x-forwarded-for, default-tls-container-ref, connection-limit, timeout-* and spec.loadBalancerSourceRanges"
            }
            Step::CreatePool { .. } | Step::UpdatePool { .. } => {
                "loadbalancer.openstack.org/lb-method (or [LoadBalancer] lb-method), proxy-protocol and spec.sessionAffinity"
            }
            Step::BatchUpdateMembers { .. } | Step::CreateMember { .. } => {
                "the nodes' addresses and families (spec.ipFamilies, [Networking]) and loadbalancer.openstack.org/member-subnet-id"
            }
            Step::CreateMonitor { .. } | Step::UpdateMonitor { .. } => {
                "loadbalancer.openstack.org/enable-health-monitor, health-monitor-* and spec.externalTrafficPolicy"
            }
            _ => "the Service's settings",
        }
    }

    /// Whether this call brings the Service's load balancer into existence (Octavia/LBaaS v2:
    /// the LB; LBaaS v1: the pool, which stands for it).
    pub fn creates_load_balancer(&self) -> bool {
        matches!(
            self,
            Step::CreateLoadBalancer { .. } | Step::CreateV1Pool { .. }
        )
    }
}

/// A change the plan will not make: the setting cannot be changed in place and the Service did
/// not opt into recreation (SPEC §3). Emitted as a Warning Event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// `flavor-id`, `availability-zone`, `vip subnet`, ...
    pub field: String,
    pub observed: String,
    pub desired: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cannot be changed on an existing load balancer ({:?} → {:?}); set \
             loadbalancer.openstack.org/recreate-on-immutable-change: \"true\" to recreate it",
            self.field, self.observed, self.desired
        )
    }
}

/// Why nothing (Octavia-side) can be done right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// The LB is PENDING_*: re-check after a backoff.
    LoadBalancerBusy { status: String },
}

/// The result of planning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// In execution order.
    pub steps: Vec<PlannedStep>,
    /// Immutable changes not made.
    pub refusals: Vec<Refusal>,
    /// Problems only visible against the cloud (another cluster's LB, port clash on a shared
    /// LB, ...). When non-empty, `steps` is empty: nothing is touched.
    pub invalid: Vec<Invalid>,
    pub wait: Option<Wait>,
    /// The Service status to write; None = not known yet (keep what is there).
    pub status: Option<LoadBalancerStatus>,
    /// The LB id to write back as `load-balancer-id`, when it exists.
    pub load_balancer_id: Option<String>,
    /// Warning Events: the spec's, plus decisions taken while planning.
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// No API call to make.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The leading steps that may run now (up to, not including, the first step gated
    /// `WhenActive` or `AfterPublish`).
    pub fn runnable(&self) -> &[PlannedStep] {
        let end = self
            .steps
            .iter()
            .position(|s| s.gate != Gate::Now)
            .unwrap_or(self.steps.len());
        &self.steps[..end]
    }

    /// The status can be published now: nothing but bookkeeping is left (or nothing at all)
    /// and the load balancer is not busy.
    pub fn publishable(&self) -> bool {
        self.invalid.is_empty()
            && self.wait.is_none()
            && self.steps.iter().all(|s| s.gate == Gate::AfterPublish)
    }

    /// The bookkeeping steps that run once the status is published.
    pub fn after_publish(&self) -> Vec<Step> {
        self.steps
            .iter()
            .filter(|s| s.gate == Gate::AfterPublish)
            .map(|s| s.step.clone())
            .collect()
    }
}
