//! The cleanup of a Service that is being deleted or stopped being a LoadBalancer: delete
//! what is ours in the cloud, then clear the status and drop the finalizer.
//! Uses [`super::writes`], [`super::memory`] and [`super::backoff`].

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::Action;
use tracing::{debug, info};

use super::backoff::{backoff, BUSY_BASE, BUSY_CAP, MAX_PROGRESS_STREAK, WOKEN_BASE, WOKEN_CAP};
use super::{Engine, EngineError};
use crate::backend::{Deleted, LoadBalancers};
use crate::metrics::LbState;
use crate::status::Outcome;

impl<B: LoadBalancers> Engine<B> {
    #[tracing::instrument(skip_all, fields(service = %key))]
    pub(super) async fn cleanup(
        &self,
        service: &Service,
        key: &str,
        finalizer_is_ours: bool,
    ) -> Result<Action, EngineError> {
        let gone_from_k8s = service.metadata.deletion_timestamp.is_some();
        if let Some(why) = self.backend.disabled() {
            // Without the cloud nothing can be deleted; holding the finalizer would only block
            // the Service (and its namespace) forever. Orphan GC cleans up once re-enabled.
            self.apply(service, Outcome::CleanupDisabled { why: &why })
                .await?;
            self.forget(key);
            return Ok(Action::await_change());
        }
        let first = self.with_memory(key, |m| m.begin_deletion());
        if first {
            info!(service = %key, "deleting load balancer");
        }
        self.apply(service, Outcome::Deleting { first }).await?;
        self.metrics.set_state(key, Some(LbState::Deleting));
        self.metrics
            .set_oldest_pending_deletion(self.memory.oldest_deletion());
        let started = Instant::now();
        self.with_memory(key, |m| m.begin_pass());
        let result = self.backend.delete(service).await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(Deleted::Gone) => {
                self.metrics.reconciled("delete", "gone", seconds);
                let deleted_here = self.with_memory(key, |m| m.cleanup_progressed());
                if !finalizer_is_ours && !deleted_here {
                    debug!(service = %key, "nothing of ours in the cloud; finalizer left to the default implementation");
                    self.forget(key);
                    return Ok(Action::await_change());
                }
                info!(service = %key, "load balancer deleted; finalizer removed");
                self.apply(
                    service,
                    Outcome::Deleted {
                        // A Service whose type changed stays: its status must stop
                        // advertising an IP.
                        service_stays: !gone_from_k8s,
                    },
                )
                .await?;
                self.forget(key);
                Ok(Action::await_change())
            }
            Ok(Deleted::Progressed { steps, woken }) => {
                self.metrics.reconciled("delete", "progressed", seconds);
                info!(service = %key, steps = ?steps, "executed");
                let streak = self.with_memory(key, |m| m.deletion_progressed());
                if streak > MAX_PROGRESS_STREAK {
                    return Ok(Action::requeue(backoff(
                        streak - MAX_PROGRESS_STREAK,
                        BUSY_BASE,
                        BUSY_CAP,
                    )));
                }
                if woken {
                    return Ok(Action::requeue(backoff(0, WOKEN_BASE, WOKEN_CAP)));
                }
                Ok(Action::requeue(Duration::ZERO))
            }
            Ok(Deleted::Busy {
                status: lb_status,
                woken,
            }) => {
                self.metrics.reconciled("delete", "busy", seconds);
                let attempt = self.with_memory(key, |m| m.next_busy_attempt());
                debug!(service = %key, status = %lb_status, woken, "load balancer busy; deletion rescheduled");
                Ok(Action::requeue(if woken {
                    backoff(attempt, WOKEN_BASE, WOKEN_CAP)
                } else {
                    backoff(attempt, BUSY_BASE, BUSY_CAP)
                }))
            }
            Err(failure) => {
                self.metrics.reconciled("delete", "error", seconds);
                self.failure(service, key, failure, true).await
            }
        }
    }
}
