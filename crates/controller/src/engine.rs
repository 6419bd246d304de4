//! The reconcile engine: a kube-runtime `Controller` on Services (per-key dedup, never two
//! workers on one key, `--concurrency` workers), a Node reflector that re-enqueues only the
//! Services whose member set changed, the finalizer, status/annotation writes, Events and the
//! per-Service backoffs. One pass = one call into [`LoadBalancers`]; a busy load balancer is
//! rescheduled, never waited on. Must not know about OpenStack or `model`: everything
//! cloud-facing goes through the [`LoadBalancers`] trait.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{Future, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use rand::Rng;
use tracing::{debug, info, warn};

use crate::backend::{
    CloudPrint, Deleted, Ensured, Failure, FailureKind, LoadBalancers, Notice, Owned, OwnedKind,
    Stages,
};
use crate::metrics::{LbState, Metrics};
use crate::status::{self, Reason, WantedCondition};

/// Event reasons of the in-tree service controller, so dashboards and habits keep working.
pub mod reasons {
    pub const ENSURING: &str = "EnsuringLoadBalancer";
    pub const ENSURED: &str = "EnsuredLoadBalancer";
    pub const UPDATED: &str = "UpdatedLoadBalancer";
    pub const SYNC_FAILED: &str = "SyncLoadBalancerFailed";
    pub const DELETING: &str = "DeletingLoadBalancer";
    pub const DELETED: &str = "DeletedLoadBalancer";
    pub const DELETE_FAILED: &str = "DeleteLoadBalancerFailed";
    /// Ours: an annotation or field has an invalid value; nothing was changed in the cloud.
    pub const INVALID: &str = "InvalidLoadBalancerConfiguration";
    /// Ours: the feature is switched off or credentials are unusable (SPEC §1.1).
    pub const DISABLED: &str = "LoadBalancerDisabled";
}

/// What the engine needs to know from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--load-balancer-class`: `None` handles only Services without a class.
    pub class: Option<String>,
    pub concurrency: u16,
    pub resync_period: Duration,
    /// Reporting controller name in Events.
    pub controller_name: String,
    /// Reporting instance (pod name / identity) in Events.
    pub instance: Option<String>,
    /// Collect orphans (`--gc-orphans`): cloud objects of this cluster that no Service owns.
    pub gc_orphans: bool,
    /// How long an orphan must stay orphaned before it is deleted.
    pub orphan_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            class: None,
            concurrency: 16,
            resync_period: Duration::from_secs(300),
            controller_name: "openstack-lb-controller".into(),
            instance: None,
            gc_orphans: true,
            orphan_grace: Duration::from_secs(600),
        }
    }
}

/// Capped, jittered exponential backoff. `attempt` starts at 0.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(cap);
    // ±20% jitter spreads the retries of many Services that went busy at the same moment.
    let factor = rand::thread_rng().gen_range(0.8..=1.2);
    capped.mul_f64(factor)
}

const BUSY_BASE: Duration = Duration::from_millis(500);
const BUSY_CAP: Duration = Duration::from_secs(20);
/// When the backend will wake the Service as its LB settles, the retry is only a safety net
/// (a wake-up lost with a failed listing): far apart, so waiting costs no calls of its own.
const WOKEN_BASE: Duration = Duration::from_secs(10);
const WOKEN_CAP: Duration = Duration::from_secs(60);
const ERROR_BASE: Duration = Duration::from_secs(1);
const ERROR_CAP: Duration = Duration::from_secs(300);
/// Consecutive passes that executed steps without converging before the engine stops asking
/// again at once: protects the cloud from a plan that never converges.
const MAX_PROGRESS_STREAK: u32 = 40;
/// How long Node events are gathered before member sets are recomputed.
const NODE_DEBOUNCE: Duration = Duration::from_millis(200);
/// Every this many resyncs (and never more often than [`FULL_PASS_MIN`]), every managed
/// Service gets a full pass anyway: the safety net for what no cluster-wide list shows (a
/// member's weight or admin state edited in place, since pools list only member ids).
const FULL_PASS_EVERY: u32 = 12;
const FULL_PASS_MIN: Duration = Duration::from_secs(30 * 60);

/// Errors of one reconcile pass that the engine cannot turn into a condition (Kubernetes API).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Per-Service memory; lost on restart on purpose (the cloud and the API are the state).
#[derive(Debug, Default)]
struct Memory {
    busy_attempts: u32,
    error_attempts: u32,
    progress_streak: u32,
    /// Set while a change is being carried out: (created a new LB?).
    episode: Option<bool>,
    deleting_since: Option<Instant>,
    fingerprint: Option<u64>,
    /// Hash of the Service's spec and annotations when it was last found converged.
    converged: Option<(u64, u64, Instant)>,
    /// (input hash, fingerprint, until): a busy or failed pass scheduled the next attempt for
    /// `until`; wake-ups before it for the same input (our own status writes) skip the cloud.
    hold: Option<(u64, u64, Instant)>,
    /// (input hash, reason, message) of Events already sent, to send each once per input.
    sent: HashSet<(u64, String, String)>,
    stages: (bool, bool, bool),
    disabled_warned: bool,
    /// What the last converged pass saw in the cloud; compared at resync.
    print: Option<CloudPrint>,
    /// The last pass found the Service invalid (rechecked at resync: it costs no cloud call).
    invalid: bool,
    /// This process deleted something of the Service's in the cloud during its cleanup.
    cleanup_progressed: bool,
    /// The backend woke the Service since its current pass began.
    woken_meanwhile: bool,
    /// When this process first saw the Service without an external address (the start of
    /// the time-to-external-IP histogram); `None` for one that had its address already.
    waiting_for_ip_since: Option<Instant>,
}

/// The exact queue depth: Services scheduled for a pass (by a watch event, a Node-driven or
/// resync trigger, or a requeue of unfinished work) or in one now. Converged Services are not
/// scheduled at all (no periodic requeue), so they never count.
#[derive(Debug, Default)]
pub struct QueueTracker {
    inner: Mutex<(HashSet<String>, HashSet<String>)>,
}

impl QueueTracker {
    fn with<T>(&self, f: impl FnOnce(&mut HashSet<String>, &mut HashSet<String>) -> T) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (pending, running) = &mut *g;
        f(pending, running);
        pending.union(running).count()
    }
    /// A pass was asked for; returns the new depth.
    pub fn scheduled(&self, key: &str) -> usize {
        self.with(|p, _| p.insert(key.to_string()))
    }
    /// A pass started (the scheduler hands a key over exactly once per run).
    pub fn started(&self, key: &str) -> usize {
        self.with(|p, r| {
            p.remove(key);
            r.insert(key.to_string())
        })
    }
    /// A pass ended; `requeued`: it asked to run again (now or after a backoff).
    pub fn finished(&self, key: &str, requeued: bool) -> usize {
        self.with(|p, r| {
            r.remove(key);
            if requeued {
                p.insert(key.to_string());
            }
        })
    }
    /// A scheduled key will never run (its object left the cache first).
    pub fn dropped(&self, key: &str) -> usize {
        self.with(|p, _| p.remove(key))
    }
    pub fn depth(&self) -> usize {
        self.with(|_, _| ())
    }
}

/// Readiness as `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Health {
    pub caches_synced: AtomicBool,
    /// Electing and not leading: ready (a standby is healthy), but does no work.
    pub standby: AtomicBool,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.caches_synced.load(Ordering::Relaxed) || self.standby.load(Ordering::Relaxed)
    }
}

pub struct Engine<B: LoadBalancers> {
    client: Client,
    backend: Arc<B>,
    settings: Settings,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    nodes: Store<Node>,
    memory: Mutex<HashMap<String, Memory>>,
    queue: QueueTracker,
}

fn input_hash(service: &Service) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(&service.spec)
        .unwrap_or_default()
        .hash(&mut h);
    serde_json::to_string(&service.metadata.annotations)
        .unwrap_or_default()
        .hash(&mut h);
    service.metadata.uid.hash(&mut h);
    h.finish()
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn has_ingress(service: &Service) -> bool {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

impl<B: LoadBalancers> Engine<B> {
    pub fn new(
        client: Client,
        backend: Arc<B>,
        settings: Settings,
        metrics: Arc<Metrics>,
        nodes: Store<Node>,
    ) -> Self {
        let reporter = Reporter {
            controller: settings.controller_name.clone(),
            instance: settings.instance.clone(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Engine {
            client,
            backend,
            settings,
            metrics,
            recorder,
            nodes,
            memory: Mutex::new(HashMap::new()),
            queue: QueueTracker::default(),
        }
    }

    fn queue_depth(&self, depth: usize) {
        self.metrics
            .set_queue_depth(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    fn key_of(r: &ObjectRef<Service>) -> String {
        format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name)
    }

    /// The prints of converged Services, and the keys of invalid ones, for a resync.
    fn resync_inputs(&self) -> (Vec<(String, CloudPrint)>, Vec<String>) {
        let map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let prints = map
            .iter()
            .filter_map(|(k, m)| m.print.clone().map(|p| (k.clone(), p)))
            .collect();
        let invalid = map
            .iter()
            .filter(|(_, m)| m.invalid)
            .map(|(k, _)| k.clone())
            .collect();
        (prints, invalid)
    }

    /// Make the next pass of `key` a full one (observe the cloud again).
    fn forget_convergence(&self, key: &str) {
        self.with_memory(key, |m| {
            m.converged = None;
            m.print = None;
        });
    }

    fn with_memory<T>(&self, key: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        // A poisoned lock only means another worker panicked mid-update; the memory is a cache.
        let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(key.to_string()).or_default())
    }

    fn forget(&self, key: &str) {
        let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
        self.update_oldest_deletion(&map);
        self.metrics.set_state(key, None);
    }

    fn update_oldest_deletion(&self, map: &HashMap<String, Memory>) {
        let oldest = map
            .values()
            .filter_map(|m| m.deleting_since)
            .map(|t| t.elapsed().as_secs_f64())
            .fold(0.0, f64::max);
        self.metrics.set_oldest_pending_deletion(oldest);
    }

    fn api(&self, service: &Service) -> Api<Service> {
        Api::namespaced(
            self.client.clone(),
            service.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    /// Send an Event unless the same (reason, message) was already sent for this input.
    async fn event(
        &self,
        service: &Service,
        type_: EventType,
        reason: &str,
        message: String,
        once: bool,
    ) {
        let key = status::key(service);
        let message = status::truncate(message);
        if once {
            let input = input_hash(service);
            let fresh = self.with_memory(&key, |m| {
                m.sent.insert((input, reason.to_string(), message.clone()))
            });
            if !fresh {
                return;
            }
        }
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(message),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&ev, &service.object_ref(&())).await {
            warn!(service = %key, %reason, error = %err, "cannot record Event");
        }
    }

    async fn notices(&self, service: &Service, notices: &[Notice]) {
        for n in notices {
            if n.reason == model::WarningReason::MeltdownProtection.as_str() {
                self.metrics.meltdown();
            }
            self.event(
                service,
                EventType::Warning,
                &n.reason,
                n.message.clone(),
                true,
            )
            .await;
        }
    }

    async fn patch_status(
        &self,
        service: &Service,
        patch: serde_json::Value,
    ) -> Result<(), EngineError> {
        let name = service.name_any();
        self.api(service)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn patch_meta(
        &self,
        service: &Service,
        patch: serde_json::Value,
    ) -> Result<(), EngineError> {
        let name = service.name_any();
        self.api(service)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn set_condition(
        &self,
        service: &Service,
        condition: WantedCondition,
    ) -> Result<(), EngineError> {
        if let Some(patch) = status::status_patch(service, None, Some(&condition), now()) {
            self.patch_status(service, patch).await?;
        }
        Ok(())
    }

    /// Time-to-external-IP stages, measured from when this process first saw the Service
    /// without an address; a Service that already had one (a restart, a new leader) is not
    /// measured again, so every rollout does not re-record whole Service ages.
    fn record_stages(&self, service: &Service, stages: Stages, status_written: bool) {
        let key = status::key(service);
        let Some(since) = self.with_memory(&key, |m| m.waiting_for_ip_since) else {
            return;
        };
        let age = since.elapsed().as_secs_f64();
        let (active, fip, written) = self.with_memory(&key, |m| {
            let before = m.stages;
            m.stages.0 |= stages.lb_active;
            m.stages.1 |= stages.fip_attached;
            m.stages.2 |= status_written;
            (
                m.stages.0 && !before.0,
                m.stages.1 && !before.1,
                m.stages.2 && !before.2,
            )
        });
        if active {
            self.metrics.stage_reached("lb_active", age);
        }
        if fip {
            self.metrics.stage_reached("fip_attached", age);
        }
        if written {
            self.metrics.stage_reached("status_written", age);
        }
    }

    /// Enqueue decision for Node changes: the keys whose member fingerprint moved.
    fn changed_member_sets(&self, services: &[Arc<Service>]) -> Vec<ObjectRef<Service>> {
        let nodes = self.nodes.state();
        let mut out = Vec::new();
        for svc in services {
            if !status::is_managed(svc, self.settings.class.as_deref())
                || svc.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let fp = self.backend.member_fingerprint(svc, &nodes);
            let key = status::key(svc);
            let changed = self.with_memory(&key, |m| {
                let changed = m.fingerprint.is_some_and(|old| old != fp);
                if m.fingerprint.is_none() || changed {
                    m.fingerprint = Some(fp);
                }
                changed
            });
            if changed {
                out.push(ObjectRef::from_obj(svc.as_ref()));
            }
        }
        out
    }

    /// One reconcile pass for one Service.
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

        let waiting_for_ip = !has_ingress(&service);
        self.with_memory(&key, |m| {
            if waiting_for_ip && m.waiting_for_ip_since.is_none() && !m.stages.2 {
                m.waiting_for_ip_since = Some(Instant::now());
            }
        });
        let nodes = self.nodes.state();
        let fingerprint = self.backend.member_fingerprint(&service, &nodes);
        let input = input_hash(&service);
        let half_resync = self.settings.resync_period / 2;
        let unchanged = self.with_memory(&key, |m| {
            m.fingerprint = Some(fingerprint);
            matches!(m.converged, Some((i, f, at)) if i == input && f == fingerprint && at.elapsed() < half_resync)
        });
        if unchanged {
            // Our own status/annotation writes come back as watch events; the cloud was just
            // found converged for exactly this input, so asking it again would be waste.
            debug!(service = %key, "unchanged since last converged pass");
            return Ok(Action::await_change());
        }
        let held = self.with_memory(&key, |m| match m.hold {
            Some((i, f, until)) if i == input && f == fingerprint && Instant::now() < until => {
                Some(until - Instant::now())
            }
            _ => {
                m.hold = None;
                None
            }
        });
        if let Some(remaining) = held {
            debug!(service = %key, ?remaining, "waiting for the scheduled retry");
            return Ok(Action::requeue(remaining));
        }

        // The finalizer goes on before anything can exist in the cloud, so a deletion can
        // never outrun the cleanup.
        if let Some(patch) = status::add_finalizer_patch(&service) {
            self.patch_meta(&service, patch).await?;
            debug!(service = %key, "finalizer added");
        }

        let started = Instant::now();
        // A wake-up can only answer a wait registered during this pass: one that arrives
        // before the pass has set its retry must not be lost to that retry.
        self.with_memory(&key, |m| m.woken_meanwhile = false);
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
                self.notices(&service, &notices).await;
                let mut input_after = input;
                if let Some(patch) = status::annotations_patch(&service, &published) {
                    self.patch_meta(&service, patch).await?;
                    // The write comes back as a watch event; remember the Service as it will
                    // look then, so that event is recognised as converged.
                    let mut after = (*service).clone();
                    let annotations = after
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default);
                    for (k, v) in [
                        (status::ANN_LB_ID, &published.load_balancer_id),
                        (status::ANN_LB_ADDRESS, &published.load_balancer_address),
                    ] {
                        if let Some(v) = v {
                            annotations.insert(k.to_string(), v.clone());
                        }
                    }
                    input_after = input_hash(&after);
                }
                let ready = WantedCondition::new(
                    Reason::Ready,
                    match &published.load_balancer_id {
                        Some(id) => format!("load balancer {id} is ACTIVE"),
                        None => "load balancer is ACTIVE".to_string(),
                    },
                );
                let mut written = has_ingress(&service);
                if let Some(patch) =
                    status::status_patch(&service, Some(&published.ingress), Some(&ready), now())
                {
                    self.patch_status(&service, patch).await?;
                    written = !published.ingress.is_empty();
                }
                self.record_stages(&service, stages, written);
                if follow_up {
                    match self.backend.after_publish(&service).await {
                        Ok(p) => print = p,
                        Err(failure) => {
                            // The IP is out and stays Ready; only the bookkeeping is retried.
                            let attempt = self.with_memory(&key, |m| {
                                m.converged = None;
                                m.print = None;
                                m.error_attempts += 1;
                                m.error_attempts - 1
                            });
                            let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
                            warn!(service = %key, error = %failure.message, ?delay, "bookkeeping after the IP failed; retrying");
                            return Ok(Action::requeue(delay));
                        }
                    }
                }
                let episode = self.with_memory(&key, |m| {
                    m.busy_attempts = 0;
                    m.error_attempts = 0;
                    m.progress_streak = 0;
                    m.converged = Some((input_after, fingerprint, Instant::now()));
                    m.hold = None;
                    m.print = print;
                    m.invalid = false;
                    m.episode.take()
                });
                match episode {
                    Some(true) => {
                        let ips: Vec<String> = published
                            .ingress
                            .iter()
                            .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
                            .collect();
                        info!(service = %key, ingress = ?ips, "load balancer ensured");
                        self.event(
                            &service,
                            EventType::Normal,
                            reasons::ENSURED,
                            "Ensured load balancer".into(),
                            false,
                        )
                        .await;
                    }
                    Some(false) => {
                        info!(service = %key, "load balancer updated");
                        self.event(
                            &service,
                            EventType::Normal,
                            reasons::UPDATED,
                            "Updated load balancer".into(),
                            false,
                        )
                        .await;
                    }
                    None => debug!(service = %key, "load balancer already matches"),
                }
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
                self.notices(&service, &notices).await;
                self.record_stages(&service, stages, false);
                let (first, streak) = self.with_memory(&key, |m| {
                    m.busy_attempts = 0;
                    m.error_attempts = 0;
                    m.progress_streak += 1;
                    m.converged = None;
                    m.print = None;
                    m.invalid = false;
                    m.hold = None;
                    let first = m.episode.is_none();
                    if first {
                        m.episode = Some(created);
                    } else if created {
                        m.episode = Some(true);
                    }
                    (first, m.progress_streak)
                });
                let creating = self.with_memory(&key, |m| m.episode == Some(true));
                if first {
                    self.event(
                        &service,
                        EventType::Normal,
                        reasons::ENSURING,
                        "Ensuring load balancer".into(),
                        false,
                    )
                    .await;
                }
                let message = if creating {
                    "creating the load balancer"
                } else {
                    "updating the load balancer"
                };
                self.set_condition(
                    &service,
                    WantedCondition::new(Reason::Provisioning, message),
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
                    return Ok(self.wait_for_wake(&key, input, fingerprint, delay));
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
                let attempt = self.with_memory(&key, |m| {
                    m.converged = None;
                    m.print = None;
                    m.busy_attempts += 1;
                    m.busy_attempts - 1
                });
                let delay = if woken {
                    backoff(attempt, WOKEN_BASE, WOKEN_CAP)
                } else {
                    backoff(attempt, BUSY_BASE, BUSY_CAP)
                };
                let action = if woken {
                    self.wait_for_wake(&key, input, fingerprint, delay)
                } else {
                    self.with_memory(&key, |m| {
                        m.hold = Some((input, fingerprint, Instant::now() + delay))
                    });
                    Action::requeue(delay)
                };
                debug!(service = %key, status = %lb_status, ?delay, "load balancer busy; rescheduled");
                let creating = self.with_memory(&key, |m| m.episode == Some(true));
                let message = if creating {
                    format!("creating the load balancer ({lb_status})")
                } else {
                    format!("load balancer is {lb_status}")
                };
                self.set_condition(
                    &service,
                    WantedCondition::new(Reason::Provisioning, message),
                )
                .await?;
                self.metrics.set_state(&key, Some(LbState::Provisioning));
                Ok(action)
            }
            Ok(Ensured::Invalid { problems }) => {
                self.metrics.reconciled("ensure", "invalid", seconds);
                let message = problems.join("; ");
                warn!(service = %key, problems = %message, "invalid configuration; nothing changed in the cloud");
                let condition = WantedCondition::new(Reason::InvalidAnnotation, message.clone());
                // Once per spec across restarts and leader changes: the condition written
                // with the Event is what says it was sent.
                if !status::condition_already_says(&service, &condition) {
                    self.event(
                        &service,
                        EventType::Warning,
                        reasons::INVALID,
                        message,
                        true,
                    )
                    .await;
                }
                self.set_condition(&service, condition).await?;
                self.with_memory(&key, |m| {
                    m.converged = None;
                    m.print = None;
                    m.invalid = true;
                    m.episode = None;
                });
                self.metrics.set_state(&key, Some(LbState::Invalid));
                // Fixing the Service is a watch event; the resync re-enqueues invalid Services
                // for cloud-side causes (they cost no cloud call).
                Ok(Action::await_change())
            }
            Err(failure) => {
                self.metrics.reconciled("ensure", "error", seconds);
                self.failure(&service, &key, failure, reasons::SYNC_FAILED)
                    .await
            }
        }
    }

    /// Wait for the backend's wake-up, with `delay` as the safety net — unless it came
    /// already, while the pass was finishing.
    fn wait_for_wake(&self, key: &str, input: u64, fingerprint: u64, delay: Duration) -> Action {
        let woken = self.with_memory(key, |m| {
            if m.woken_meanwhile {
                m.hold = None;
            } else {
                m.hold = Some((input, fingerprint, Instant::now() + delay));
            }
            m.woken_meanwhile
        });
        if woken {
            Action::requeue(Duration::ZERO)
        } else {
            Action::requeue(delay)
        }
    }

    async fn failure(
        &self,
        service: &Service,
        key: &str,
        failure: Failure,
        reason: &str,
    ) -> Result<Action, EngineError> {
        let code = match failure.kind {
            FailureKind::Quota => Reason::QuotaExceeded,
            FailureKind::Cloud => Reason::CloudError,
        };
        self.metrics.failed(code.as_str());
        let input = input_hash(service);
        let attempt = self.with_memory(key, |m| {
            m.converged = None;
            m.print = None;
            m.error_attempts += 1;
            m.error_attempts - 1
        });
        let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
        self.with_memory(key, |m| {
            if let Some(f) = m.fingerprint {
                m.hold = Some((input, f, Instant::now() + delay));
            }
        });
        warn!(service = %key, error = %failure.message, ?delay, "cloud pass failed");
        self.event(
            service,
            EventType::Warning,
            reason,
            format!("Error syncing load balancer: {}", failure.message),
            false,
        )
        .await;
        if service.metadata.deletion_timestamp.is_none() {
            self.set_condition(service, WantedCondition::new(code, failure.message))
                .await?;
        }
        self.metrics.set_state(key, Some(LbState::Error));
        Ok(Action::requeue(delay))
    }

    async fn cleanup(
        &self,
        service: &Service,
        key: &str,
        finalizer_is_ours: bool,
    ) -> Result<Action, EngineError> {
        let gone_from_k8s = service.metadata.deletion_timestamp.is_some();
        if let Some(why) = self.backend.disabled() {
            // Without the cloud nothing can be deleted; holding the finalizer would only block
            // the Service (and its namespace) forever. Orphan GC cleans up once re-enabled.
            self.event(
                service,
                EventType::Warning,
                reasons::DISABLED,
                format!("cannot delete the load balancer: {why}; anything left in the cloud is removed by orphan collection once enabled"),
                true,
            )
            .await;
            if let Some(patch) = status::remove_finalizer_patch(service) {
                self.patch_meta(service, patch).await?;
            }
            self.forget(key);
            return Ok(Action::await_change());
        }
        let first = self.with_memory(key, |m| {
            m.converged = None;
            let first = m.deleting_since.is_none();
            if first {
                m.deleting_since = Some(Instant::now());
            }
            first
        });
        if first {
            info!(service = %key, "deleting load balancer");
            self.event(
                service,
                EventType::Normal,
                reasons::DELETING,
                "Deleting load balancer".into(),
                false,
            )
            .await;
        }
        self.metrics.set_state(key, Some(LbState::Deleting));
        {
            let map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            self.update_oldest_deletion(&map);
        }
        let started = Instant::now();
        self.with_memory(key, |m| m.woken_meanwhile = false);
        let result = self.backend.delete(service).await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(Deleted::Gone) => {
                self.metrics.reconciled("delete", "gone", seconds);
                let deleted_here = self.with_memory(key, |m| m.cleanup_progressed);
                if !finalizer_is_ours && !deleted_here {
                    debug!(service = %key, "nothing of ours in the cloud; finalizer left to the default implementation");
                    self.forget(key);
                    return Ok(Action::await_change());
                }
                if !gone_from_k8s {
                    // The Service stays (type changed): its status must stop advertising an IP.
                    if let Some(patch) = status::status_patch(service, Some(&[]), None, now()) {
                        self.patch_status(service, patch).await?;
                    }
                    if let Some(patch) = status::clear_address_patch(service) {
                        self.patch_meta(service, patch).await?;
                    }
                }
                if let Some(patch) = status::remove_finalizer_patch(service) {
                    self.patch_meta(service, patch).await?;
                }
                info!(service = %key, "load balancer deleted; finalizer removed");
                self.event(
                    service,
                    EventType::Normal,
                    reasons::DELETED,
                    "Deleted load balancer".into(),
                    false,
                )
                .await;
                self.forget(key);
                Ok(Action::await_change())
            }
            Ok(Deleted::Progressed { steps, woken }) => {
                self.metrics.reconciled("delete", "progressed", seconds);
                info!(service = %key, steps = ?steps, "executed");
                let streak = self.with_memory(key, |m| {
                    m.busy_attempts = 0;
                    m.error_attempts = 0;
                    m.progress_streak += 1;
                    m.cleanup_progressed = true;
                    m.progress_streak
                });
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
                let attempt = self.with_memory(key, |m| {
                    m.busy_attempts += 1;
                    m.busy_attempts - 1
                });
                debug!(service = %key, status = %lb_status, woken, "load balancer busy; deletion rescheduled");
                Ok(Action::requeue(if woken {
                    backoff(attempt, WOKEN_BASE, WOKEN_CAP)
                } else {
                    backoff(attempt, BUSY_BASE, BUSY_CAP)
                }))
            }
            Err(failure) => {
                self.metrics.reconciled("delete", "error", seconds);
                self.failure(service, key, failure, reasons::DELETE_FAILED)
                    .await
            }
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
        let condition = WantedCondition::new(Reason::Disabled, why.clone());
        let first = self.with_memory(key, |m| !std::mem::replace(&mut m.disabled_warned, true));
        if first && !status::condition_already_says(service, &condition) {
            self.event(
                service,
                EventType::Warning,
                reasons::DISABLED,
                why.clone(),
                false,
            )
            .await;
        }
        self.set_condition(service, condition).await?;
        self.metrics.set_state(key, Some(LbState::Disabled));
        Ok(Action::await_change())
    }

    fn error_policy(&self, service: &Service, error: &EngineError) -> Action {
        let key = status::key(service);
        let attempt = self.with_memory(&key, |m| {
            m.error_attempts += 1;
            m.error_attempts - 1
        });
        self.metrics.failed("KubernetesAPI");
        let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
        warn!(service = %key, error = %error, ?delay, "reconcile failed");
        Action::requeue(delay)
    }
}

/// Run the engine until `shutdown` resolves or the watches end. Sets `health.caches_synced`
/// once both the Service and the Node caches have their first full list.
pub async fn run<B: LoadBalancers>(
    client: Client,
    backend: Arc<B>,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (node_reader, node_writer) = reflector::store::<Node>();
    let nodes_api: Api<Node> = Api::all(client.clone());
    // Cache sync is learnt from each watch's InitDone, not from `Store::wait_until_ready`:
    // that future wakes only one waiter, and the Controller already waits on the Service store.
    let (synced_tx, synced_rx) = tokio::sync::watch::channel((false, false));
    let synced_tx = Arc::new(synced_tx);
    let nodes_synced = synced_tx.clone();
    let node_stream = watcher(nodes_api, watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .inspect(move |e| {
            if matches!(e, Ok(watcher::Event::InitDone)) {
                nodes_synced.send_modify(|s| s.0 = true);
            }
        })
        .touched_objects();

    let engine = Arc::new(Engine::new(
        client.clone(),
        backend,
        settings,
        metrics,
        node_reader.clone(),
    ));
    let services: Api<Service> = Api::all(client);
    let (service_reader, service_writer) = reflector::store::<Service>();
    let services_synced = synced_tx.clone();
    let watch_engine = engine.clone();
    let service_stream = watcher(services, watcher::Config::default())
        .default_backoff()
        .reflect(service_writer)
        .inspect(move |e| {
            if matches!(e, Ok(watcher::Event::InitDone)) {
                services_synced.send_modify(|s| s.1 = true);
            }
        })
        .applied_objects()
        .inspect(move |r| {
            // Every applied object schedules a pass of its key.
            if let Ok(svc) = r {
                let depth = watch_engine.queue.scheduled(&status::key(svc));
                watch_engine.queue_depth(depth);
            }
        });
    let (trigger_tx, trigger_rx) = mpsc::unbounded::<ObjectRef<Service>>();
    let concurrency = engine.settings.concurrency.max(1);
    let controller = Controller::for_stream(service_stream, service_reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .reconcile_on(trigger_rx)
        .graceful_shutdown_on(shutdown);
    let service_store = controller.store();
    let enqueue = {
        let engine = engine.clone();
        let tx = trigger_tx.clone();
        move |r: ObjectRef<Service>| {
            let depth = engine.queue.scheduled(&Engine::<B>::key_of(&r));
            engine.queue_depth(depth);
            tx.unbounded_send(r).is_ok()
        }
    };

    // Node side: gather events briefly, let the backend refresh what it derives from Nodes,
    // then re-enqueue only Services whose set moved.
    let node_engine = engine.clone();
    let node_services = service_store.clone();
    let node_enqueue = enqueue.clone();
    let node_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(node_stream.ready_chunks(1024));
        while let Some(batch) = stream.next().await {
            for item in &batch {
                if let Err(err) = item {
                    warn!(error = %err, "node watch error");
                }
            }
            tokio::time::sleep(NODE_DEBOUNCE).await;
            node_engine
                .backend
                .nodes_changed(&node_engine.nodes.state())
                .await;
            let changed = node_engine.changed_member_sets(&node_services.state());
            for r in changed {
                info!(service = %Engine::<B>::key_of(&r), "member set changed; enqueued");
                if !node_enqueue(r) {
                    return;
                }
            }
        }
    });

    // The backend's wake-ups (a load balancer a Service waited on settled): drop the Service's
    // scheduled retry and pass it now.
    let wake_task = engine.backend.subscribe().map(|mut woken| {
        let wake_engine = engine.clone();
        let wake_enqueue = enqueue.clone();
        tokio::spawn(async move {
            while let Some(key) = woken.recv().await {
                let Some((namespace, name)) = key.split_once('/') else {
                    continue;
                };
                {
                    // Only a Service the engine knows: a wake-up for one deleted meanwhile
                    // must not leave memory behind.
                    let mut map = wake_engine.memory.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(m) = map.get_mut(&key) {
                        m.hold = None;
                        m.woken_meanwhile = true;
                    }
                }
                debug!(service = %key, "load balancer settled; woken");
                if !wake_enqueue(ObjectRef::new(name).within(namespace)) {
                    return;
                }
            }
        })
    });

    let sync_health = health.clone();
    let mut sync_rx = synced_rx.clone();
    let sync_task = tokio::spawn(async move {
        if sync_rx.wait_for(|(n, s)| *n && *s).await.is_ok() {
            sync_health.caches_synced.store(true, Ordering::Relaxed);
            info!("caches synced");
        }
    });

    let resync_task = if engine.backend.disabled().is_none() {
        let resync_engine = engine.clone();
        let resync_services = service_store.clone();
        let resync_enqueue = enqueue.clone();
        let mut synced = synced_rx.clone();
        Some(tokio::spawn(async move {
            if synced.wait_for(|(n, s)| *n && *s).await.is_err() {
                return;
            }
            let period = resync_engine
                .settings
                .resync_period
                .max(Duration::from_secs(1));
            let full_every = (period * FULL_PASS_EVERY).max(FULL_PASS_MIN);
            let mut last_full = Instant::now();
            let mut seen = HashMap::new();
            loop {
                tokio::time::sleep(period).await;
                let full = last_full.elapsed() >= full_every;
                if full {
                    last_full = Instant::now();
                }
                resync_engine
                    .resync(&resync_services.state(), full, &mut seen, &resync_enqueue)
                    .await;
            }
        }))
    } else {
        None
    };

    let reconcile_engine = engine.clone();
    let policy_engine = engine.clone();
    let result_engine = engine.clone();
    let nodes_listed = synced_rx.clone();
    controller
        .run(
            move |svc, _ctx: Arc<()>| {
                let engine = reconcile_engine.clone();
                let mut nodes_listed = nodes_listed.clone();
                async move {
                    // No member set is ever computed from a Node cache that has not had its
                    // first full list: at start-up it is empty, and planning on it would
                    // empty every pool (an outage on every restart).
                    let _ = nodes_listed.wait_for(|(nodes, _)| *nodes).await;
                    let key = status::key(&svc);
                    engine.queue_depth(engine.queue.started(&key));
                    engine.metrics.in_flight().inc();
                    let r = engine.reconcile(svc).await;
                    engine.metrics.in_flight().dec();
                    // An error always gets a requeue from the error policy.
                    let requeued = r.as_ref().map_or(true, |a| *a != Action::await_change());
                    engine.queue_depth(engine.queue.finished(&key, requeued));
                    r
                }
            },
            move |svc, err, _ctx| policy_engine.error_policy(&svc, err),
            Arc::new(()),
        )
        .for_each(|res| {
            let engine = result_engine.clone();
            async move {
                match res {
                    Err(kube::runtime::controller::Error::ObjectNotFound(r)) => {
                        let key =
                            format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name);
                        let depth = engine.queue.dropped(&key);
                        engine.queue_depth(depth);
                    }
                    Err(err) => debug!(error = %err, "controller event"),
                    Ok(_) => {}
                }
            }
        })
        .await;
    node_task.abort();
    sync_task.abort();
    if let Some(t) = wake_task {
        t.abort();
    }
    if let Some(t) = resync_task {
        t.abort();
    }
}

impl<B: LoadBalancers> Engine<B> {
    /// One resync round: compare the cloud with every converged Service's print through one
    /// cluster-wide listing and enqueue only those that drifted (plus invalid ones, which cost
    /// no cloud call; plus everything on a `full` round), then collect orphans from the same
    /// listing.
    async fn resync(
        &self,
        services: &[Arc<Service>],
        full: bool,
        seen: &mut HashMap<Owned, Instant>,
        enqueue: &impl Fn(ObjectRef<Service>) -> bool,
    ) {
        let (prints, invalid) = self.resync_inputs();
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
            self.forget_convergence(&k);
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

/// The owned cloud objects no Service accounts for: not named after a Service this controller
/// manages (or is cleaning up), and not pointed at by any Service's `load-balancer-id`.
/// A floating IP is collected only together with an orphaned load balancer of the same
/// Service: alone, it may be one that `keep-floatingip` kept on purpose, and a kept address
/// looks exactly like a leaked one (our description, our tag). Floating IPs come first, so
/// an address is released before the LB it points at.
pub fn find_orphans(owned: &[Owned], services: &[Arc<Service>]) -> Vec<Owned> {
    // Any LoadBalancer Service, whatever its class: two instances of this controller (one
    // with a class, one without) tag their LBs with the same cluster identity, and one must
    // never collect the other's.
    let live: HashSet<String> = services
        .iter()
        .filter(|s| status::is_load_balancer(s) || status::has_finalizer(s))
        .map(|s| status::key(s))
        .collect();
    let referenced: HashSet<String> = services
        .iter()
        .filter_map(|s| {
            s.metadata
                .annotations
                .as_ref()?
                .get(status::ANN_LB_ID)
                .cloned()
        })
        .collect();
    let lbs: Vec<Owned> = owned
        .iter()
        .filter(|o| o.kind == OwnedKind::LoadBalancer)
        // Only LBs named after a Service: one with another name was brought by a user
        // (load-balancer-id) and is theirs even if it carries our tag.
        .filter(|o| o.service.as_ref().is_some_and(|k| !live.contains(k)))
        .filter(|o| !referenced.contains(&o.id))
        .cloned()
        .collect();
    let orphaned_services: HashSet<&String> =
        lbs.iter().filter_map(|o| o.service.as_ref()).collect();
    let mut out: Vec<Owned> = owned
        .iter()
        .filter(|o| o.kind == OwnedKind::FloatingIp)
        .filter(|o| {
            o.service
                .as_ref()
                .is_some_and(|k| orphaned_services.contains(k))
        })
        .cloned()
        .collect();
    out.extend(lbs);
    out
}

/// One orphan-collection round; `seen` remembers when each orphan was first noticed.
async fn collect_orphans<B: LoadBalancers>(
    backend: &B,
    owned: Vec<Owned>,
    services: &[Arc<Service>],
    settings: &Settings,
    metrics: &Metrics,
    seen: &mut HashMap<Owned, Instant>,
) {
    let orphans = find_orphans(&owned, services);
    for kind in [OwnedKind::LoadBalancer, OwnedKind::FloatingIp] {
        metrics.set_orphans(
            kind.as_str(),
            orphans.iter().filter(|o| o.kind == kind).count() as i64,
        );
    }
    seen.retain(|o, _| orphans.contains(o));
    for o in orphans {
        let first = *seen.entry(o.clone()).or_insert_with(Instant::now);
        if first.elapsed() < settings.orphan_grace {
            warn!(kind = o.kind.as_str(), id = %o.id, label = %o.label, service = ?o.service,
                  grace = ?settings.orphan_grace, "orphan found; deleted if still orphaned after the grace period");
            continue;
        }
        match backend.delete_owned(&o).await {
            Ok(()) => {
                info!(kind = o.kind.as_str(), id = %o.id, label = %o.label, service = ?o.service, "orphan deleted");
                seen.remove(&o);
            }
            Err(e) => {
                warn!(kind = o.kind.as_str(), id = %o.id, error = %e.message, "cannot delete orphan")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(ns: &str, name: &str, type_: &str, annotations: &[(&str, &str)]) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                ..Default::default()
            }),
            status: None,
        })
    }

    fn owned(kind: OwnedKind, id: &str, service: Option<&str>) -> Owned {
        Owned {
            kind,
            id: id.into(),
            service: service.map(String::from),
            label: id.into(),
        }
    }

    #[test]
    fn orphans_are_those_no_service_accounts_for() {
        let services = vec![
            svc("shop", "web", "LoadBalancer", &[]),
            svc("shop", "was-lb", "ClusterIP", &[]),
            svc(
                "shop",
                "shares",
                "LoadBalancer",
                &[(status::ANN_LB_ID, "lb-shared")],
            ),
        ];
        let all = vec![
            owned(OwnedKind::LoadBalancer, "lb-web", Some("shop/web")),
            owned(OwnedKind::FloatingIp, "fip-web", Some("shop/web")),
            owned(OwnedKind::LoadBalancer, "lb-gone", Some("shop/gone")),
            owned(OwnedKind::FloatingIp, "fip-gone", Some("shop/gone")),
            owned(OwnedKind::LoadBalancer, "lb-was", Some("shop/was-lb")),
            owned(OwnedKind::LoadBalancer, "lb-shared", Some("old/first")),
            owned(OwnedKind::LoadBalancer, "lb-unnamed", None),
        ];
        let ids: Vec<String> = find_orphans(&all, &services)
            .into_iter()
            .map(|o| o.id)
            .collect();
        // The FIP goes first, and only because its LB is orphaned too.
        assert_eq!(ids, vec!["fip-gone", "lb-gone", "lb-was"]);
        // A kept floating IP (its Service and LB gone) is never collected.
        let kept = vec![owned(OwnedKind::FloatingIp, "fip-kept", Some("shop/kept"))];
        assert!(find_orphans(&kept, &services).is_empty());
    }

    #[derive(Default)]
    struct Owning {
        owned: Vec<Owned>,
        deleted: Mutex<Vec<String>>,
    }

    impl LoadBalancers for Owning {
        fn member_fingerprint(&self, _: &Service, _: &[Arc<Node>]) -> u64 {
            0
        }
        async fn ensure(&self, _: &Service, _: &[Arc<Node>]) -> Result<Ensured, Failure> {
            Err(Failure::cloud("unused"))
        }
        async fn delete(&self, _: &Service) -> Result<Deleted, Failure> {
            Ok(Deleted::Gone)
        }
        async fn owned(&self) -> Result<Vec<Owned>, Failure> {
            Ok(self.owned.clone())
        }
        async fn delete_owned(&self, o: &Owned) -> Result<(), Failure> {
            self.deleted.lock().unwrap().push(o.id.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn orphans_are_deleted_only_after_the_grace_period() {
        let backend = Owning {
            owned: vec![owned(OwnedKind::LoadBalancer, "lb-gone", Some("shop/gone"))],
            ..Default::default()
        };
        let metrics = Metrics::new();
        let mut settings = Settings {
            orphan_grace: Duration::from_secs(3600),
            ..Settings::default()
        };
        let mut seen = HashMap::new();
        collect_orphans(
            &backend,
            backend.owned.clone(),
            &[],
            &settings,
            &metrics,
            &mut seen,
        )
        .await;
        assert!(
            backend.deleted.lock().unwrap().is_empty(),
            "first sighting only reports"
        );
        assert!(metrics
            .encode()
            .contains("olbc_orphans{kind=\"loadbalancer\"} 1"));
        settings.orphan_grace = Duration::ZERO;
        collect_orphans(
            &backend,
            backend.owned.clone(),
            &[],
            &settings,
            &metrics,
            &mut seen,
        )
        .await;
        assert_eq!(
            *backend.deleted.lock().unwrap(),
            vec!["lb-gone".to_string()]
        );
        // A Service that appears in the meantime protects it.
        let mut seen = HashMap::new();
        collect_orphans(
            &backend,
            backend.owned.clone(),
            &[svc("shop", "gone", "LoadBalancer", &[])],
            &settings,
            &metrics,
            &mut seen,
        )
        .await;
        assert_eq!(backend.deleted.lock().unwrap().len(), 1);
    }

    #[test]
    fn queue_depth_counts_scheduled_and_running_keys_once() {
        let q = QueueTracker::default();
        assert_eq!(q.scheduled("a/x"), 1);
        assert_eq!(q.scheduled("a/x"), 1, "deduplicated like the scheduler");
        assert_eq!(q.scheduled("a/y"), 2);
        assert_eq!(q.started("a/x"), 2);
        // An event while running: counted once, and still queued after the run.
        assert_eq!(q.scheduled("a/x"), 2);
        assert_eq!(q.finished("a/x", false), 2);
        assert_eq!(q.started("a/x"), 2);
        assert_eq!(q.finished("a/x", false), 1);
        // A busy LB: requeued after a backoff, so still queued.
        assert_eq!(q.started("a/y"), 1);
        assert_eq!(q.finished("a/y", true), 1);
        assert_eq!(q.started("a/y"), 1);
        assert_eq!(q.finished("a/y", false), 0);
        // A key whose object vanished before its turn.
        assert_eq!(q.scheduled("a/z"), 1);
        assert_eq!(q.dropped("a/z"), 0);
        assert_eq!(q.depth(), 0);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        for attempt in 0..40 {
            let d = backoff(attempt, BUSY_BASE, BUSY_CAP);
            assert!(
                d <= BUSY_CAP.mul_f64(1.2) + Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
            assert!(
                d >= BUSY_BASE.mul_f64(0.8) - Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
        }
        assert!(backoff(0, ERROR_BASE, ERROR_CAP) <= Duration::from_millis(1200));
        assert!(backoff(30, ERROR_BASE, ERROR_CAP) >= Duration::from_secs(240));
    }
}
