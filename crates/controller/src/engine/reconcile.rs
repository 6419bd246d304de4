//! One reconcile pass of a Service that is (or was) a LoadBalancer of ours: gates (class,
//! deletion, disabled, unchanged input, scheduled retry), the finalizer, one call into the
//! backend and what its answer means for memory, status, Events and the next pass.
//! Uses [`super::cleanup`], [`super::writes`], [`super::memory`] and [`super::backoff`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::Action;
use tracing::{debug, info, warn};

use super::backoff::{
    backoff, BUSY_BASE, BUSY_CAP, ERROR_BASE, ERROR_CAP, MAX_PROGRESS_STREAK, WOKEN_BASE, WOKEN_CAP,
};
use super::memory::{input_hash, Seen};
use super::writes::now;
use super::{Engine, EngineError};
use crate::backend::{Ensured, LoadBalancers, Stages};
use crate::metrics::LbState;
use crate::status::{self, Change, Outcome};

impl<B: LoadBalancers> Engine<B> {
    /// One reconcile pass for one Service.
    #[tracing::instrument(skip_all, fields(service = %status::key(&service)))]
    pub async fn reconcile(&self, service: Arc<Service>) -> Result<Action, EngineError> {
        let key = status::key(&service);
        let class = self.settings.class.as_deref();
        let is_lb = status::is_load_balancer(&service);
        if is_lb && !status::class_is_ours(&service, class) {
            // Another implementation's Service, deleting or not: no finalizer, no status, no
            // Event, no cleanup (SPEC §1.1).
            self.forget(&key);
            return Ok(Action::await_change());
        }
        let deleting = service.metadata.deletion_timestamp.is_some();
        if !is_lb || deleting {
            if status::has_finalizer(&service) {
                // A Service that stopped being a LoadBalancer carries no class any more, so a
                // classed instance cannot tell whether it was ever its own: it removes only
                // what is ours in the cloud and leaves the (shared, standard) finalizer to the
                // default implementation unless it deleted something itself.
                let finalizer_is_ours = is_lb || class.is_none();
                return self.cleanup(&service, &key, finalizer_is_ours).await;
            }
            self.forget(&key);
            return Ok(Action::await_change());
        }
        if let Some(why) = self.backend.disabled() {
            return self.disabled(&service, &key, why).await;
        }

        let waiting_for_ip = !status::has_ingress(&service);
        self.with_memory(&key, |m| m.waiting_for_ip(waiting_for_ip));
        let nodes = self.nodes.state();
        let fingerprint = self.backend.member_fingerprint(&service, &nodes);
        let seen = Seen::new(&service, fingerprint);
        let half_resync = self.settings.resync_period / 2;
        let unchanged = self.with_memory(&key, |m| {
            m.set_fingerprint(fingerprint);
            m.converged_for(seen, half_resync)
        });
        if unchanged {
            // Our own status/annotation writes come back as watch events; the cloud was just
            // found converged for exactly this input, so asking it again would be waste.
            debug!(service = %key, "unchanged since last converged pass");
            return Ok(Action::await_change());
        }
        let held = self.with_memory(&key, |m| m.held(seen, Instant::now()));
        if let Some(remaining) = held {
            debug!(service = %key, ?remaining, "waiting for the scheduled retry");
            return Ok(Action::requeue(remaining));
        }

        // The finalizer goes on before anything can exist in the cloud, so a deletion can
        // never outrun the cleanup.
        let starting = status::effects(&service, Outcome::Starting);
        if let Some(patch) = starting.finalizer_patch(&service) {
            self.patch_meta(&service, patch).await?;
            debug!(service = %key, "finalizer added");
        }

        let started = Instant::now();
        // A wake-up can only answer a wait registered during this pass: one that arrives
        // before the pass has set its retry must not be lost to that retry.
        self.with_memory(&key, |m| m.begin_pass());
        let result = self.backend.ensure(&service, &nodes).await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(Ensured::Ready {
                published,
                notices,
                stages,
                mut print,
                follow_up,
            }) => {
                self.metrics.reconciled("ensure", "ready", seconds);
                let effects = status::effects(
                    &service,
                    Outcome::Ready {
                        published: &published,
                        notices: &notices,
                        ended: self.with_memory(&key, |m| m.episode()),
                    },
                );
                self.send_events(&service, &effects, false).await;
                let mut seen_after = seen;
                if let Some(patch) = effects.annotations_patch(&service) {
                    self.patch_meta(&service, patch).await?;
                    // The write comes back as a watch event; remember the Service as it will
                    // look then, so that event is recognised as converged.
                    let mut after = (*service).clone();
                    let annotations = after
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default);
                    for (k, v) in &effects.annotations {
                        if let Some(v) = v {
                            annotations.insert(k.clone(), v.clone());
                        }
                    }
                    seen_after.input = input_hash(&after);
                }
                let mut written = status::has_ingress(&service);
                if let Some(patch) = effects.status_patch(&service, now()) {
                    self.patch_status(&service, patch).await?;
                    written = !published.ingress.is_empty();
                }
                self.record_stages(&service, stages, written);
                if follow_up {
                    match self.backend.after_publish(&service).await {
                        Ok(p) => print = p,
                        Err(failure) => {
                            // The IP is out and stays Ready; only the bookkeeping is retried.
                            let attempt = self.with_memory(&key, |m| m.failed());
                            let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
                            warn!(service = %key, error = %failure.message, ?delay, "bookkeeping after the IP failed; retrying");
                            return Ok(Action::requeue(delay));
                        }
                    }
                }
                let episode = self.with_memory(&key, |m| m.ready(seen_after, print));
                match episode {
                    Some(Change::Created) => {
                        let ips: Vec<String> = published
                            .ingress
                            .iter()
                            .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
                            .collect();
                        info!(service = %key, ingress = ?ips, "load balancer ensured");
                    }
                    Some(Change::Updated) => info!(service = %key, "load balancer updated"),
                    None => debug!(service = %key, "load balancer already matches"),
                }
                self.send_events(&service, &effects, true).await;
                self.metrics.set_state(&key, Some(LbState::Ready));
                // No periodic requeue: the resync compares the cloud for all Services at once
                // and enqueues only those that drifted.
                Ok(Action::await_change())
            }
            Ok(Ensured::Progressed {
                steps,
                created,
                notices,
                stages,
                woken,
            }) => {
                self.metrics.reconciled("ensure", "progressed", seconds);
                info!(service = %key, steps = ?steps, "executed");
                self.record_stages(&service, stages, false);
                let progress = self.with_memory(&key, |m| m.progressed(created));
                let streak = progress.streak;
                self.apply(
                    &service,
                    Outcome::Progressed {
                        notices: &notices,
                        first: progress.first,
                        creating: progress.creating,
                    },
                )
                .await?;
                self.metrics.set_state(&key, Some(LbState::Provisioning));
                if streak > MAX_PROGRESS_STREAK {
                    warn!(service = %key, streak, "plan keeps producing steps; slowing down");
                    return Ok(Action::requeue(backoff(
                        streak - MAX_PROGRESS_STREAK,
                        BUSY_BASE,
                        BUSY_CAP,
                    )));
                }
                if woken {
                    // The steps locked the LB: the next pass is useful only once it settles,
                    // and the backend says when. Our own condition write above comes back as
                    // a watch event; the hold keeps it from costing a pass.
                    let delay = backoff(0, WOKEN_BASE, WOKEN_CAP);
                    return Ok(self.wait_for_wake(&key, seen, delay));
                }
                Ok(Action::requeue(Duration::ZERO))
            }
            Ok(Ensured::Busy {
                status: lb_status,
                stages,
                woken,
            }) => {
                self.metrics.reconciled("ensure", "busy", seconds);
                self.record_stages(&service, stages, false);
                let attempt = self.with_memory(&key, |m| m.busy());
                let delay = if woken {
                    backoff(attempt, WOKEN_BASE, WOKEN_CAP)
                } else {
                    backoff(attempt, BUSY_BASE, BUSY_CAP)
                };
                let action = if woken {
                    self.wait_for_wake(&key, seen, delay)
                } else {
                    self.with_memory(&key, |m| m.hold_until(seen, Instant::now() + delay));
                    Action::requeue(delay)
                };
                debug!(service = %key, status = %lb_status, ?delay, "load balancer busy; rescheduled");
                let creating = self.with_memory(&key, |m| m.creating());
                self.apply(
                    &service,
                    Outcome::Busy {
                        lb_status: &lb_status,
                        creating,
                    },
                )
                .await?;
                self.metrics.set_state(&key, Some(LbState::Provisioning));
                Ok(action)
            }
            Ok(Ensured::Invalid { problems }) => {
                self.metrics.reconciled("ensure", "invalid", seconds);
                warn!(service = %key, problems = %problems.join("; "), "invalid configuration; nothing changed in the cloud");
                self.apply(
                    &service,
                    Outcome::Invalid {
                        problems: &problems,
                    },
                )
                .await?;
                self.with_memory(&key, |m| m.invalid());
                self.metrics.set_state(&key, Some(LbState::Invalid));
                // Fixing the Service is a watch event; the resync re-enqueues invalid Services
                // for cloud-side causes (they cost no cloud call).
                Ok(Action::await_change())
            }
            Err(failure) => {
                self.metrics.reconciled("ensure", "error", seconds);
                self.failure(&service, &key, failure, false).await
            }
        }
    }

    /// Wait for the backend's wake-up, with `delay` as the safety net — unless it came
    /// already, while the pass was finishing.
    fn wait_for_wake(&self, key: &str, seen: Seen, delay: Duration) -> Action {
        let woken = self.with_memory(key, |m| m.wait_for_wake(seen, Instant::now() + delay));
        if woken {
            Action::requeue(Duration::ZERO)
        } else {
            Action::requeue(delay)
        }
    }

    async fn disabled(
        &self,
        service: &Service,
        key: &str,
        why: String,
    ) -> Result<Action, EngineError> {
        // One Warning per Service, whatever else changes on it: per process, and across
        // restarts through the condition written with it.
        let first = self.with_memory(key, |m| m.first_disabled_warning());
        self.apply(service, Outcome::Disabled { why: &why, first })
            .await?;
        self.metrics.set_state(key, Some(LbState::Disabled));
        Ok(Action::await_change())
    }

    pub(super) fn error_policy(&self, service: &Service, error: &EngineError) -> Action {
        let key = status::key(service);
        let attempt = self.with_memory(&key, |m| m.next_error_attempt());
        self.metrics.failed("KubernetesAPI");
        let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
        warn!(service = %key, error = %error, ?delay, "reconcile failed");
        Action::requeue(delay)
    }

    /// Time-to-external-IP stages, measured from when this process first saw the Service
    /// without an address; a Service that already had one (a restart, a new leader) is not
    /// measured again, so every rollout does not re-record whole Service ages.
    fn record_stages(&self, service: &Service, stages: Stages, status_written: bool) {
        let key = status::key(service);
        let Some(since) = self.with_memory(&key, |m| m.waiting_for_ip_since()) else {
            return;
        };
        let age = since.elapsed().as_secs_f64();
        let reached = self.with_memory(&key, |m| m.reach(stages, status_written));
        if reached.lb_active {
            self.metrics.stage_reached("lb_active", age);
        }
        if reached.fip_attached {
            self.metrics.stage_reached("fip_attached", age);
        }
        if reached.status_written {
            self.metrics.stage_reached("status_written", age);
        }
    }
}
