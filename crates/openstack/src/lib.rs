//! Typed async clients for the OpenStack APIs the controller uses: Keystone v3 (through a
//! shared [`Session`]), Neutron, Octavia / Neutron LBaaS v2 behind one interface, and LBaaS v1.
//! One error type, retries where safe, a shared rate limiter and request metrics. It must not
//! know about Kubernetes or the controller's decisions.

pub mod error;
pub mod keystone;
pub mod lbaas;
pub mod metrics;
pub mod neutron;
pub mod query;
pub mod ratelimit;
pub mod session;
mod tls;

pub use error::{Error, Op, Result};
pub use keystone::{AuthMethod, Catalog};
pub use lbaas::{ApiVersion, LbaasV1, LbaasV2, LoadBalancerApi};
pub use metrics::Metrics;
pub use neutron::Neutron;
pub use query::ListQuery;
pub use ratelimit::RateLimit;
pub use session::{Request, Response, RetryMode, RetryPolicy, Session, SessionOptions, TokenInfo};
