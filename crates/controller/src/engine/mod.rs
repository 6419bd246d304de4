//! The reconcile engine: a kube-runtime `Controller` on Services (per-key dedup, never two
//! workers on one key, `--concurrency` workers), a Node reflector that re-enqueues only the
//! Services whose member set changed, the finalizer, status/annotation writes, Events and the
//! per-Service backoffs. One pass = one call into [`LoadBalancers`]; a busy load balancer is
//! rescheduled, never waited on. Must not know about OpenStack or `model`: everything
//! cloud-facing goes through the [`LoadBalancers`] trait.
//!
//! This file only wires the parts together (settings, the [`Engine`] and [`run`]). The parts,
//! each using only those listed after it, never one before it (no import circle):
//! - [`reconcile`]: one pass of a LoadBalancer Service; hands deletions to `cleanup`.
//! - [`cleanup`]: deleting what is ours in the cloud, then the finalizer.
//! - [`resync`]: the periodic drift comparison; uses `orphans`.
//! - [`writes`]: patches, Events and failure reports to the Kubernetes API.
//! - [`queue`]: queue depth and the Node-driven enqueue decision.
//! - [`orphans`], [`memory`], [`backoff`]: leaves, using no sibling.
//!
//! All of them may use this file's items ([`Engine`], [`Settings`], [`EngineError`],
//! [`reasons`]).

mod backoff;
mod cleanup;
mod memory;
mod orphans;
mod queue;
mod reconcile;
mod resync;
mod writes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{Future, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use tracing::{debug, info, warn};

pub use backoff::backoff;
pub use orphans::find_orphans;
pub use queue::QueueTracker;

use crate::backend::LoadBalancers;
use crate::metrics::Metrics;
use crate::status;
use memory::{Memories, Memory};
use queue::key_of;

/// Event reasons, decided in [`crate::status`]; re-exported where they always were.
pub use crate::status::reasons;

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
    memory: Memories,
    queue: QueueTracker,
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
            memory: Memories::default(),
            queue: QueueTracker::default(),
        }
    }

    fn queue_depth(&self, depth: usize) {
        self.metrics
            .set_queue_depth(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    fn with_memory<T>(&self, key: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        self.memory.with(key, f)
    }

    /// Drop everything remembered about `key` (its Service is gone or not ours).
    fn forget(&self, key: &str) {
        self.metrics
            .set_oldest_pending_deletion(self.memory.forget(key));
        self.metrics.set_state(key, None);
    }
}

/// Drops what the controller never reads of a Node before it enters the cache: at scale the
/// field-manager history and the image and volume lists are most of a Node's size. Members
/// are chosen from the name, deletion, labels, taints, conditions and addresses only.
fn strip_node(node: &mut Node) {
    node.metadata.managed_fields = None;
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.volumes_attached = None;
        status.volumes_in_use = None;
    }
}

/// Drops the field-manager history of a Service before it enters the cache (never read;
/// every write is a merge patch, never a replace of the cached object).
fn strip_service(service: &mut Service) {
    service.metadata.managed_fields = None;
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
        .modify(strip_node)
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
        .modify(strip_service)
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
            let depth = engine.queue.scheduled(&key_of(&r));
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
                info!(service = %key_of(&r), "member set changed; enqueued");
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
                // Only a Service the engine knows: a wake-up for one deleted meanwhile must
                // not leave memory behind.
                wake_engine.memory.with_known(&key, |m| m.woken());
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeAddress, NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn stripping_a_node_keeps_what_members_are_chosen_from() {
        let mut node = Node::default();
        node.metadata.name = Some("n1".into());
        node.metadata.labels = Some([("zone".to_string(), "a".to_string())].into());
        node.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        node.status = Some(NodeStatus {
            addresses: Some(vec![NodeAddress {
                address: "10.0.0.1".into(),
                type_: "InternalIP".into(),
            }]),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            images: Some(vec![ContainerImage::default()]),
            volumes_in_use: Some(vec!["v".into()]),
            ..Default::default()
        });
        let mut stripped = node.clone();
        strip_node(&mut stripped);
        assert_eq!(stripped.metadata.managed_fields, None);
        let status = stripped.status.as_ref().unwrap();
        assert_eq!(status.images, None);
        assert_eq!(status.volumes_in_use, None);
        let before = node.status.as_ref().unwrap();
        assert_eq!(status.addresses, before.addresses);
        assert_eq!(status.conditions, before.conditions);
        assert_eq!(stripped.metadata.labels, node.metadata.labels);
        let mut service = Service::default();
        service.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        strip_service(&mut service);
        assert_eq!(service.metadata.managed_fields, None);
    }
}
