//! The resync round: one cluster-wide comparison of the cloud with every converged Service,
//! then orphan collection from the same listing. Uses [`super::orphans`] and the memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::ObjectRef;
use tracing::{info, warn};

use super::orphans::collect_orphans;
use super::Engine;
use crate::backend::{LoadBalancers, Owned};
use crate::status;

impl<B: LoadBalancers> Engine<B> {
    /// One resync round: compare the cloud with every converged Service's print through one
    /// cluster-wide listing and enqueue only those that drifted (plus invalid ones, which cost
    /// no cloud call; plus everything on a `full` round), then collect orphans from the same
    /// listing.
    pub(super) async fn resync(
        &self,
        services: &[Arc<Service>],
        full: bool,
        seen: &mut HashMap<Owned, Instant>,
        enqueue: &impl Fn(ObjectRef<Service>) -> bool,
    ) {
        let (prints, invalid) = self.memory.resync_inputs();
        let by_key: HashMap<String, &Arc<Service>> =
            services.iter().map(|s| (status::key(s), s)).collect();
        let mut wanted: Vec<String> = invalid;
        let mut owned = None;
        if full {
            info!(
                services = by_key.len(),
                "resync: full pass for every Service"
            );
            wanted.extend(by_key.keys().cloned());
        } else {
            match self.backend.resync(&prints).await {
                Ok(r) => {
                    info!(compared = prints.len(), drifted = r.drifted.len(), "resync");
                    for k in &r.drifted {
                        info!(service = %k, "cloud drifted from the converged state; enqueued");
                    }
                    wanted.extend(r.drifted);
                    owned = r.owned;
                }
                Err(e) => {
                    // Nothing could be compared: a full pass is the only safe answer.
                    warn!(error = %e.message, "resync listing failed; every Service gets a full pass");
                    wanted.extend(prints.into_iter().map(|(k, _)| k));
                }
            }
        }
        wanted.sort();
        wanted.dedup();
        for k in wanted {
            let Some(svc) = by_key.get(&k) else { continue };
            self.with_memory(&k, |m| m.forget_convergence());
            if !enqueue(ObjectRef::from_obj(svc.as_ref())) {
                return;
            }
        }
        if self.settings.gc_orphans {
            let owned = match owned {
                Some(o) => Ok(o),
                None => self.backend.owned().await,
            };
            match owned {
                Ok(owned) => {
                    collect_orphans(
                        &*self.backend,
                        owned,
                        services,
                        &self.settings,
                        &self.metrics,
                        seen,
                    )
                    .await
                }
                Err(e) => {
                    warn!(error = %e.message, "cannot list this cluster's cloud objects for orphan collection")
                }
            }
        }
    }
}
