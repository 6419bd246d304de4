//! The one translation of an openstack-client error into the ports' [`CloudError`]: which
//! answers the planner treats as "locked, come back later" (409 and 412), as a quota problem,
//! as the provider refusing an option (501), or as an id that does not exist (404). Every call of the adapter goes through it, so
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
            _ => CloudErrorKind::Other,
        };
        CloudError {
            kind,
            message: e.to_string(),
            source: Some(Arc::new(e)),
        }
    }
}

/// A 404 on a delete (or on tagging an object that has gone since) means the object is
/// already gone: the goal is reached.
pub(super) fn ignore_missing(r: openstack::Result<()>) -> Result<(), CloudError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => Ok(other?),
    }
}
