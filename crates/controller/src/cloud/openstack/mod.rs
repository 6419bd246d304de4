//! The production adapter behind the ports of [`crate::cloud`]: [`OpenStackCloud`] over the
//! openstack crate, for Octavia, Neutron LBaaS v2 and Neutron LBaaS v1. Split by concern:
//! [`observe`] reads one Service's objects, `execute` turns each `model::Step` into one
//! request, [`v1`] does both for LBaaS v1, [`inventory`] is the node scan, [`snapshot`] the
//! resync listing, and [`error`] the one classification of client errors. Its fields are
//! private: the rest of the controller goes through the traits and the methods here. Must not
//! decide anything (every choice was made by `model::plan`) and must not know about
//! Kubernetes.

mod error;
mod execute;
mod inventory;
mod observe;
mod snapshot;
mod v1;

use std::collections::HashMap;

use model::{CloudFeatures, Observed, Step};
use openstack::lbaas::LbaasV1;
use openstack::{LbaasV2, Neutron};

use crate::backend::OwnedKind;
use crate::cloud::{Cloud, CloudError, Executed, Lookup, Tagged};
use crate::watcher::LbProgress;

/// The OpenStack implementation of [`Cloud`] for Octavia, Neutron LBaaS v2 and (with `v1`
/// set) Neutron LBaaS v1.
#[derive(Clone, Debug)]
pub struct OpenStackCloud {
    lb: LbaasV2,
    /// Set on clouds that offer only Neutron LBaaS v1 (then `features.generation` says so).
    v1: Option<LbaasV1>,
    neutron: Neutron,
    features: CloudFeatures,
}

impl OpenStackCloud {
    pub fn new(lb: LbaasV2, neutron: Neutron, features: CloudFeatures) -> Self {
        OpenStackCloud {
            lb,
            v1: None,
            neutron,
            features,
        }
    }

    /// A cloud that offers only Neutron LBaaS v1. `lb` is kept for the struct's shape but never
    /// called: the features say NeutronV1, so every plan holds v1 steps only.
    pub fn neutron_v1(lb: LbaasV2, v1: LbaasV1, neutron: Neutron) -> Self {
        OpenStackCloud {
            lb,
            v1: Some(v1),
            neutron,
            features: CloudFeatures::neutron_v1(),
        }
    }

    /// What the cloud was detected to offer; plans must be made for exactly these.
    pub fn features(&self) -> &CloudFeatures {
        &self.features
    }

    /// The v1 client when this cloud is driven through LBaaS v1.
    fn v1_client(&self) -> Option<&LbaasV1> {
        self.v1
            .as_ref()
            .filter(|_| self.features.generation == model::Generation::NeutronV1)
    }
}

impl Cloud for OpenStackCloud {
    async fn observe(&self, lookup: &Lookup) -> Result<Observed, CloudError> {
        self.observe_service(lookup).await
    }

    async fn observe_unless_locked(&self, lookup: &Lookup) -> Result<Observed, CloudError> {
        self.observe_service_unless_locked(lookup).await
    }

    async fn execute(&self, steps: &[Step]) -> Result<Executed, CloudError> {
        self.run_steps(steps).await
    }

    async fn lb_progress(
        &self,
        cluster_tag: &str,
        ids: &[String],
    ) -> Result<HashMap<String, LbProgress>, CloudError> {
        self.progress(cluster_tag, ids).await
    }

    async fn list_tagged(&self, cluster_tag: &str) -> Result<Vec<Tagged>, CloudError> {
        self.tagged(cluster_tag).await
    }

    async fn delete_tagged(&self, kind: OwnedKind, id: &str) -> Result<(), CloudError> {
        self.delete_owned(kind, id).await
    }
}
