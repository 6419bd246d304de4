//! A local OpenStack-compatible cloud for tests, the demo and operators without a cloud:
//! Keystone v3, Neutron v2.0 and Octavia v2 (or Neutron LBaaS v2 / v1) on 127.0.0.1, with a
//! loopback data plane so traffic really flows through floating IPs to members.
//! It must not know about Kubernetes or the controller.
//!
//! Module ownership (two authors work here in parallel; keep to your files):
//! - `server`, `state`, `keystone`, `neutron`, `admin`, `faults`, `errors`, `tls`, `config`:
//!   the server skeleton, identity, networking, fault injection and request log.
//! - `octavia`, `lbaas_v1`, `dataplane`: load balancers in all three LBaaS generations and the
//!   forwarding data plane.

pub mod address_claim;
pub mod admin;
pub mod config;
pub mod dataplane;
pub mod errors;
pub mod faults;
pub mod keystone;
pub mod lbaas_v1;
pub mod neutron;
pub mod octavia;
pub mod server;
pub mod state;
pub mod tls;

pub use config::{LbaasMode, Ports, QuotaOverride, SandboxConfig};
pub use errors::{ApiError, SandboxError};
pub use faults::{FaultRule, FaultRuleSpec};
pub use server::{start, Credentials, SandboxHandle};

/// Re-exported so callers can build `SandboxConfig` ranges without their own dependency.
pub use ipnet;
