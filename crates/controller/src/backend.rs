//! The boundary between the Kubernetes engine and whatever builds load balancers.
//!
//! The engine (queue, finalizer, status, Events, metrics) only sees this trait and its result
//! types; it must not know about OpenStack, `model::plan` or HTTP. The production
//! implementation is [`crate::planner::Planner`] (observe → desired → plan → execute one step);
//! [`Disabled`] is the implementation used when the feature is switched off (SPEC §1.1); tests
//! use fakes.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};

pub use crate::drift::CloudPrint;

/// One entry of `status.loadBalancer.ingress`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ingress {
    pub ip: Option<String>,
    pub hostname: Option<String>,
    /// `VIP` or `Proxy` (proxy-protocol Services), only meaningful with `ip`.
    pub ip_mode: Option<String>,
}

/// What the Service should show once its load balancer is complete.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Published {
    pub ingress: Vec<Ingress>,
    /// Written to `loadbalancer.openstack.org/load-balancer-id`.
    pub load_balancer_id: Option<String>,
    /// Written to `loadbalancer.openstack.org/load-balancer-address`.
    pub load_balancer_address: Option<String>,
}

/// Something worth a Warning Event that does not stop the load balancer from working: a
/// feature the cloud lacks, a refused immutable change, meltdown protection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// PascalCase Event reason.
    pub reason: String,
    pub message: String,
}

/// How far a Service's load balancer got; feeds the time-to-external-IP histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stages {
    pub lb_active: bool,
    pub fip_attached: bool,
}

/// The result of one `ensure` pass. Exactly one round of cloud work happened (or none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// Nothing left to do: the cloud matches the desired state.
    Ready {
        published: Published,
        notices: Vec<Notice>,
        stages: Stages,
        /// What this full observation saw, for drift detection at resync (`None`: the backend
        /// cannot compare, so the Service is only rechecked by the periodic safety net).
        print: Option<CloudPrint>,
        /// The backend holds bookkeeping (the floating IP's cluster tag) that waits until the
        /// status with the IP is written: the engine calls [`LoadBalancers::after_publish`]
        /// right after writing it, and takes the print from there.
        follow_up: bool,
    },
    /// Steps were executed; the engine asks again at once, or, when `woken`, once the backend
    /// wakes the Service (the steps locked the load balancer).
    Progressed {
        steps: Vec<String>,
        created: bool,
        notices: Vec<Notice>,
        stages: Stages,
        woken: bool,
    },
    /// The load balancer is locked (PENDING_*): ask again after a backoff, do not wait. With
    /// `woken`, the backend wakes the Service when the LB settles (see
    /// [`LoadBalancers::subscribe`]) and the backoff is only a safety net.
    Busy {
        status: String,
        stages: Stages,
        woken: bool,
    },
    /// The Service's annotations/spec are invalid; nothing in the cloud was changed.
    Invalid { problems: Vec<String> },
}

/// The result of one `delete` pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// Nothing of ours is left in the cloud for this Service.
    Gone,
    /// Steps were executed; ask again at once, or once woken (`woken`).
    Progressed { steps: Vec<String>, woken: bool },
    /// Locked: ask again after a backoff, or once woken (`woken`).
    Busy { status: String, woken: bool },
}

/// Why a cloud pass failed; decides the condition reason and whether to back off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Quota exhausted (load balancers, floating IPs, ports...).
    Quota,
    /// Anything else the cloud or the transport reported.
    Cloud,
}

/// A failed cloud pass. `message` carries OpenStack's own error text (never secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn cloud(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Cloud,
            message: message.into(),
        }
    }
    pub fn quota(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Quota,
            message: message.into(),
        }
    }
}

/// What a cloud resource carrying this cluster's identity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnedKind {
    LoadBalancer,
    FloatingIp,
}

impl OwnedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedKind::LoadBalancer => "loadbalancer",
            OwnedKind::FloatingIp => "floatingip",
        }
    }
}

/// A cloud resource that carries this cluster's identity, for orphan collection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owned {
    pub kind: OwnedKind,
    pub id: String,
    /// `namespace/name` of the Service it was made for, when its name/description says so.
    pub service: Option<String>,
    /// For logs: name or address.
    pub label: String,
}

/// What one resync found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resynced {
    /// Keys (`namespace/name`) of the Services whose cloud state no longer matches their print.
    pub drifted: Vec<String>,
    /// This cluster's cloud objects, when the same listing found them (saves orphan
    /// collection its own calls); `None`: ask [`LoadBalancers::owned`].
    pub owned: Option<Vec<Owned>>,
}

/// The load-balancer side as the engine sees it. Implementations must never sleep waiting on
/// the cloud: a busy load balancer is reported as `Busy`, and the engine reschedules.
pub trait LoadBalancers: Send + Sync + 'static {
    /// `Some(why)` when the controller must not touch the cloud at all (SPEC §1.1). `why` says
    /// what is wrong and how to enable the feature.
    fn disabled(&self) -> Option<String> {
        None
    }

    /// A value that changes whenever the node-dependent part of the Service's load balancer
    /// (the member set and addresses) changes. Pure and cheap: called for every Service on every
    /// Node change.
    fn member_fingerprint(&self, service: &Service, nodes: &[Arc<Node>]) -> u64;

    /// The Nodes changed (or are first known): refresh whatever the backend derives from them
    /// (node ports, subnets). Called before member fingerprints are recomputed; must cost no
    /// cloud call when nothing the backend cares about changed.
    fn nodes_changed(&self, nodes: &[Arc<Node>]) -> impl Future<Output = ()> + Send {
        let _ = nodes;
        async {}
    }

    /// Compare the cloud with the prints of converged Services using a constant number of
    /// list calls. The default (a backend that cannot compare) calls every Service drifted.
    fn resync(
        &self,
        prints: &[(String, CloudPrint)],
    ) -> impl Future<Output = Result<Resynced, Failure>> + Send {
        let drifted = prints.iter().map(|(k, _)| k.clone()).collect();
        async move {
            Ok(Resynced {
                drifted,
                owned: None,
            })
        }
    }

    /// Where the backend sends the keys (`namespace/name`) of Services to pass again because
    /// the load balancer they waited on settled: the results that say `woken` rely on it.
    /// `None` (the default): nothing is ever woken, every wait is a backoff.
    fn subscribe(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        None
    }

    /// One pass toward the desired load balancer.
    fn ensure(
        &self,
        service: &Service,
        nodes: &[Arc<Node>],
    ) -> impl Future<Output = Result<Ensured, Failure>> + Send;

    /// Run the bookkeeping a `Ready { follow_up: true }` left for after the status was
    /// written; returns the print of the state after it (see `Ready::print`).
    fn after_publish(
        &self,
        service: &Service,
    ) -> impl Future<Output = Result<Option<CloudPrint>, Failure>> + Send {
        let _ = service;
        async { Ok(None) }
    }

    /// One pass toward removing everything this Service owns in the cloud.
    fn delete(&self, service: &Service) -> impl Future<Output = Result<Deleted, Failure>> + Send;

    /// Everything in the cloud that carries this cluster's identity, found with a constant
    /// number of list calls. The default (no cloud) owns nothing.
    fn owned(&self) -> impl Future<Output = Result<Vec<Owned>, Failure>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Delete one orphan (cascade for load balancers). Gone already counts as done.
    fn delete_owned(&self, owned: &Owned) -> impl Future<Output = Result<(), Failure>> + Send {
        let _ = owned;
        async { Ok(()) }
    }
}

/// The implementation used when the feature is off or no credentials are usable: it never
/// calls the cloud.
#[derive(Clone, Debug)]
pub struct Disabled {
    pub why: String,
}

impl LoadBalancers for Disabled {
    fn disabled(&self) -> Option<String> {
        Some(self.why.clone())
    }

    fn member_fingerprint(&self, _service: &Service, _nodes: &[Arc<Node>]) -> u64 {
        0
    }

    async fn ensure(&self, _service: &Service, _nodes: &[Arc<Node>]) -> Result<Ensured, Failure> {
        Err(Failure::cloud(self.why.clone()))
    }

    async fn delete(&self, _service: &Service) -> Result<Deleted, Failure> {
        Err(Failure::cloud(self.why.clone()))
    }
}
