//! Pure decisions of openstack-lb-controller: configuration, the desired load balancer for a
//! Service, the observed cloud state and the minimal plan between them. No I/O, no async, no
//! clocks: everything here is a function of its inputs, so it can be tested exhaustively.
//!
//! Entry points: [`desired`] (Service + Nodes + config → [`LoadBalancerSpec`] or [`Invalid`]s),
//! [`plan`] / [`plan_delete`] ([`Observed`] → [`Plan`]), [`apply`] (what the cloud looks like
//! after a plan ran; used by dry runs and property tests).

pub mod annotations;
pub mod apply;
pub mod config;
pub mod desired;
pub mod doctor;
pub mod environment;
pub mod features;
pub mod invalid;
pub mod naming;
pub mod observed;
pub mod plan;
pub mod spec;

pub use apply::apply;
pub use desired::desired;
pub use environment::Environment;
pub use features::{CloudFeatures, Generation};
pub use invalid::{Invalid, InvalidReason, Warning, WarningReason};
pub use observed::Observed;
pub use plan::{plan, plan_delete, DeleteIntent, Gate, Plan, PlannedStep, Ref, Refusal, Step};
pub use spec::LoadBalancerSpec;
