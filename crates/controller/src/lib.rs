//! The Kubernetes side of openstack-lb-controller: watches Services and Nodes and keeps one
//! OpenStack load balancer per LoadBalancer Service, through the pure decisions of `model` and
//! the clients of `openstack`. The engine ([`engine`]) only talks to a [`backend::LoadBalancers`]
//! implementation, so it can be exercised against a fake cloud.

pub mod backend;
pub mod cloud;
pub mod connect;
pub mod discovery;
pub mod drift;
pub mod engine;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod planner;
pub mod runner;
pub mod server;
pub mod status;
pub mod watcher;

pub use backend::{
    CloudPrint, Deleted, Disabled, Ensured, Failure, FailureKind, Ingress, LoadBalancers, Notice,
    Published, Resynced, Stages,
};
pub use engine::{Health, Settings};
pub use metrics::Metrics;

/// Re-exported so the CLI can build clients without its own kube dependency.
pub use kube;
