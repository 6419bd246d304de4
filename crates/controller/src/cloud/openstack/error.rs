//! The one translation of an openstack-client error into the ports' [`CloudError`]: which
//! answers the planner treats as "locked, come back later" (409 and 412), as a quota problem,
//! as the provider refusing an option (501), or as an id that does not exist (404, and
//! Octavia's 400 naming a missing subnet, network or port). Every call of the adapter goes through it, so
//! observation, execution, the node scan and the resync agree. Must not decide what to do
//! about an error; only classify it.

use std::sync::Arc;

use crate::cloud::{CloudError, CloudErrorKind};

impl From<openstack::Error> for CloudError {
    fn from(e: openstack::Error) -> Self {
        let kind = match &e {
            openstack::Error::Conflict { .. } | openstack::Error::PreconditionFailed { .. } => {
                CloudErrorKind::Conflict
            }
            openstack::Error::QuotaExceeded { .. } => CloudErrorKind::Quota,
            // Octavia's "Provider '…' does not support a requested option": not transient.
            openstack::Error::Server { status: 501, .. } => CloudErrorKind::ProviderRefused,
            _ if e.is_not_found() => CloudErrorKind::NotFound,
            openstack::Error::BadRequest { message, .. } if names_a_missing_id(message) => {
                CloudErrorKind::NotFound
            }
            _ => CloudErrorKind::Other,
        };
        CloudError {
            kind,
            message: e.to_string(),
            source: Some(Arc::new(e)),
        }
    }
}

/// Octavia answers a request naming a subnet, network or port that does not exist with 400
/// "Subnet <id> not found." (its InvalidSubresource), not 404. For the planner it is the same
/// news as a 404 — an id it sent is gone, perhaps one discovery found in a cloud rebuilt
/// since — and without it a load balancer create on a vanished subnet would never make the
/// planner look again (issue 14: rediscovery).
fn names_a_missing_id(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["subnet ", "network ", "port "]
        .iter()
        .any(|what| m.starts_with(what))
        && (m.contains(" not found") || m.contains("could not be found"))
}

/// A 404 on a delete (or on tagging an object that has gone since) means the object is
/// already gone: the goal is reached.
pub(super) fn ignore_missing(r: openstack::Result<()>) -> Result<(), CloudError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_request(message: &str) -> openstack::Error {
        openstack::Error::BadRequest {
            op: openstack::error::Op {
                method: "POST".into(),
                service: "load-balancer".into(),
                path: "/v2/lbaas/loadbalancers".into(),
            },
            message: message.into(),
        }
    }

    #[test]
    fn octavias_missing_subresource_counts_as_not_found() {
        for message in [
            "Subnet 0b5c9a43-5d0b-4a59-a1b7-3c0d6f0bd7c4 not found.",
            "Network 8f7e6d5c-0000-4000-8000-000000000000 not found.",
            "Port p-1 not found.",
        ] {
            assert_eq!(
                CloudError::from(bad_request(message)).kind,
                CloudErrorKind::NotFound,
                "{message}"
            );
        }
        for message in [
            "Invalid input for field/attribute protocol_port.",
            "Listener protocol_port 80 is already in use; not found elsewhere",
            "Flavor f-1 not found.",
        ] {
            assert_eq!(
                CloudError::from(bad_request(message)).kind,
                CloudErrorKind::Other,
                "{message}"
            );
        }
    }
}
