//! Leader election on a `coordination.k8s.io` Lease (through kube-lease-manager) with
//! fail-stop semantics: the work runs only while this replica holds the Lease, and losing it
//! (or losing the ability to renew it) ends the process with an error, so a replica that may
//! no longer be the leader never writes to the cloud. Must not know what the work is.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tracing::{info, warn};

use crate::engine::Health;

/// Lease timing: a new leader takes over at most `DURATION` seconds after the old one stopped
/// renewing; renewals start `GRACE` seconds before expiry.
const DURATION: u64 = 15;
const GRACE: u64 = 5;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica (pod name, or host + pid).
    pub identity: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election on Lease {namespace}/{name}: {source}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: LeaseManagerError,
    },
    #[error("leadership of Lease {namespace}/{name} was lost")]
    Lost { namespace: String, name: String },
}

/// Wait for leadership, then run `work` while holding it. Returns `Ok` when `work` finishes
/// (the Lease is then released), `Err(Lost)` as soon as leadership is lost. `health.standby`
/// is true while waiting.
pub async fn lead<F>(
    client: Client,
    cfg: LeaseConfig,
    health: Arc<Health>,
    work: F,
) -> Result<(), LeaderError>
where
    F: Future<Output = ()>,
{
    let lease_err = |source| LeaderError::Lease {
        namespace: cfg.namespace.clone(),
        name: cfg.name.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client, cfg.name.clone())
        .with_namespace(cfg.namespace.clone())
        .with_identity(cfg.identity.clone())
        .with_duration(DURATION)
        .with_grace(GRACE)
        .build()
        .await
        .map_err(lease_err)?;

    health.standby.store(true, Ordering::Relaxed);
    info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), identity = %cfg.identity, "waiting for leadership");
    loop {
        match manager.changed().await {
            Ok(true) => break,
            Ok(false) => continue,
            // Not leading yet: nothing is at risk, keep trying (the crate backs off itself).
            Err(err) => {
                warn!(error = %err, "leader election error while standing by");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
    health.standby.store(false, Ordering::Relaxed);
    info!(identity = %cfg.identity, "became leader");

    let keep = async {
        loop {
            match manager.changed().await {
                Ok(true) => continue,
                Ok(false) => {
                    return LeaderError::Lost {
                        namespace: cfg.namespace.clone(),
                        name: cfg.name.clone(),
                    };
                }
                Err(source) => {
                    // Could not renew: another replica may take over any moment. Stop writing.
                    return lease_err(source);
                }
            }
        }
    };
    tokio::select! {
        () = work => {
            if let Err(err) = manager.release().await {
                warn!(error = %err, "could not release the Lease; it expires on its own");
            }
            Ok(())
        }
        err = keep => Err(err),
    }
}
