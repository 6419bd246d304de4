//! The production [`LoadBalancers`]: observe the cloud → `model::desired` → `model::plan` →
//! execute the steps that may run now, one round per pass (DESIGN.md "The reconcile loop").
//! The cloud is reached only through the ports of [`crate::cloud`] (observe / execute, node
//! scan, resync listing), so this logic is tested against a simulated cloud;
//! [`crate::cloud::openstack`] implements them over the openstack crate. Must not know about HTTP or Kubernetes writes.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use model::config::CloudConfig;
use model::observed::ProvisioningStatus;
use model::plan::Wait;
use model::spec::{FipIntent, IpMode};
use model::{naming, CloudFeatures, DeleteIntent, Environment, Observed, Plan, Step};

use tracing::{debug, info, warn};

use crate::backend::{
    CloudPrint, Deleted, Ensured, Failure, FailureKind, Ingress, LoadBalancers, Notice, Owned,
    OwnedKind, Published, Resynced, Stages,
};
use crate::cloud::{
    describe, Cloud, CloudError, CloudErrorKind, Executed, Inventory, Lookup, Resync, Scan,
    ScanRequest, SnapshotRequest, Tagged,
};
use crate::drift;
use crate::nodes::{self, NodeAddress};
use crate::status::{self, ANN_LB_ID};
use crate::watcher::{LbProgress, ProgressSource, Watcher};

/// Steps that ran in one pass.
struct Ran {
    names: Vec<String>,
    steps: Vec<Step>,
    executed: Executed,
    /// The load balancer they left locked.
    locked: Option<String>,
}

/// The watcher's view of the cloud, through [`Cloud::lb_progress`].
struct CloudProgress<C>(Arc<C>);

impl<C: Cloud> ProgressSource for CloudProgress<C> {
    async fn lb_progress(
        &self,
        cluster_tag: &str,
        ids: &[String],
    ) -> Result<HashMap<String, LbProgress>, String> {
        self.0
            .lb_progress(cluster_tag, ids)
            .await
            .map_err(|e| e.message)
    }
}

/// Shared, read-mostly context of every plan.
#[derive(Clone, Debug)]
pub struct Context {
    pub config: CloudConfig,
    pub features: CloudFeatures,
    pub env: Environment,
}

/// The last node scan ([`Inventory::scan`]) and what it was for.
#[derive(Debug, Default)]
struct NodeScan {
    /// The nodes (name, InternalIP) scanned for; a change of this set triggers a new scan.
    nodes: Option<Vec<NodeAddress>>,
    /// The last scan failed: the next resync tries again.
    failed: bool,
    scan: Scan,
}

pub struct Planner<C: Cloud + Inventory + Resync> {
    pub(crate) cloud: Arc<C>,
    pub(crate) ctx: RwLock<Arc<Context>>,
    scan: Mutex<NodeScan>,
    /// Serialises scans, so two Node batches never scan at once.
    scanning: tokio::sync::Mutex<()>,
    /// Wakes Services whose locked LB settled; one shared poller instead of one per Service.
    watcher: Arc<Watcher>,
    watch_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Per Service key: the state its last writes built (see [`Known`]).
    known: Mutex<HashMap<String, Known>>,
    /// Per Service key: the bookkeeping (the FIP's cluster tag) that waits until the engine
    /// has written the status with the IP, on the state it was planned on.
    deferred: Mutex<HashMap<String, (Observed, Vec<Step>)>>,
    /// When the discovered ids were last looked for, and the node address to look from (see
    /// [`rediscover`]).
    discovery: Mutex<rediscover::Discovery>,
}

impl<C: Cloud + Inventory + Resync> Drop for Planner<C> {
    fn drop(&mut self) {
        if let Some(task) = self
            .watch_task
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

fn failure(e: CloudError) -> Failure {
    Failure {
        kind: if e.kind == CloudErrorKind::Quota {
            FailureKind::Quota
        } else {
            FailureKind::Cloud
        },
        message: e.message,
    }
}

/// Whether the runnable head of `plan` creates the load balancer: Octavia's LB POST, or on
/// LBaaS v1 the pool POST (the v1 object every other one hangs off).
pub(crate) fn creates_lb(plan: &Plan) -> bool {
    plan.runnable()
        .iter()
        .any(|s| s.step.creates_load_balancer())
}

fn stages(observed: &Observed) -> Stages {
    let fip_on = |port: &str| {
        observed
            .floating_ips
            .iter()
            .any(|f| f.port_id.as_deref() == Some(port))
    };
    if let Some(lb) = observed.load_balancer.as_ref() {
        return Stages {
            lb_active: lb.provisioning_status == ProvisioningStatus::Active,
            fip_attached: lb.vip_port_id.as_deref().is_some_and(fip_on),
        };
    }
    // LBaaS v1 has no load balancer object: the pool and its VIP stand for it, each with its
    // own status ("ACTIVE" once the driver has deployed it).
    let Some(v1) = observed.v1.as_ref() else {
        return Stages::default();
    };
    let active = |status: &str| status.eq_ignore_ascii_case("ACTIVE");
    let vip = v1.vip.as_ref();
    Stages {
        lb_active: v1.pool.as_ref().is_some_and(|p| active(&p.status))
            && vip.is_some_and(|v| active(&v.status)),
        fip_attached: vip.is_some_and(|v| !v.port_id.is_empty() && fip_on(&v.port_id)),
    }
}

/// The Warning Events of an ensure pass: the spec's warnings, the plan's, and one per refused
/// immutable change, sorted and without repeats. `plan` previews them with this same function.
pub fn notices(spec_warnings: &[model::Warning], plan: &Plan) -> Vec<Notice> {
    let mut out: Vec<Notice> = spec_warnings
        .iter()
        .chain(plan.warnings.iter())
        .map(|w| Notice {
            reason: w.reason.to_string(),
            message: w.message.clone(),
        })
        .collect();
    out.extend(plan.refusals.iter().map(|r| Notice {
        reason: "ImmutableChange".into(),
        message: r.to_string(),
    }));
    out.sort_by(|a, b| (&a.reason, &a.message).cmp(&(&b.reason, &b.message)));
    out.dedup();
    out
}

/// What the Service shows once the plan is complete: its ingress, LB id, and first IP as the
/// address annotation. Shared with `plan`'s preview.
pub fn published(plan: &Plan) -> Published {
    let ingress: Vec<Ingress> = plan
        .status
        .as_ref()
        .map(|s| {
            s.ingress
                .iter()
                .map(|i| Ingress {
                    ip: i.ip.clone(),
                    hostname: i.hostname.clone(),
                    ip_mode: i.ip_mode.as_ref().map(|m| match m {
                        IpMode::Vip => "VIP".to_string(),
                        IpMode::Proxy => "Proxy".to_string(),
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let address = ingress.iter().find_map(|i| i.ip.clone());
    Published {
        ingress,
        load_balancer_id: plan.load_balancer_id.clone(),
        load_balancer_address: address,
    }
}

fn lb_id_annotation(service: &Service) -> Option<String> {
    service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_LB_ID))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl<C: Cloud + Inventory + Resync> Planner<C> {
    pub fn new(cloud: Arc<C>, ctx: Context) -> Self {
        Planner {
            cloud,
            ctx: RwLock::new(Arc::new(ctx)),
            scan: Mutex::new(NodeScan::default()),
            scanning: tokio::sync::Mutex::new(()),
            watcher: Arc::new(Watcher::new(crate::watcher::DEFAULT_TICK)),
            watch_task: Mutex::new(None),
            known: Mutex::new(HashMap::new()),
            deferred: Mutex::new(HashMap::new()),
            discovery: Mutex::new(rediscover::Discovery::new()),
        }
    }

    /// Register `service` as waiting for `lb_id` to settle; whether it will be woken.
    fn wait_for(&self, lb_id: Option<&str>, service: &Service) -> bool {
        match lb_id.filter(|id| !id.is_empty()) {
            Some(id) => self.watcher.wait_for(id, &status::key(service)),
            None => false,
        }
    }

    fn scan_state<T>(&self, f: impl FnOnce(&mut NodeScan) -> T) -> T {
        f(&mut self.scan.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Find the node ports (`manage-security-groups`) and the second family's subnet
    /// (additional VIPs) for this node set, unless it was already scanned. Costs a constant
    /// number of list calls per change of the set of (node, InternalIP), none otherwise.
    pub async fn refresh_nodes<N: std::borrow::Borrow<Node> + Sync>(&self, nodes: &[N]) {
        let addresses = nodes::node_addresses(nodes);
        self.remember_node(addresses.first().map(|a| a.ip));
        self.scan_nodes(addresses, false).await;
    }

    async fn scan_nodes(&self, addresses: Vec<NodeAddress>, force: bool) {
        let ctx = self.context();
        let req = ScanRequest {
            nodes: addresses.clone(),
            node_ports: ctx.config.load_balancer.manage_security_groups,
            secondary_subnet: ctx.features.additional_vips,
            vip_subnet_id: ctx.config.load_balancer.placement.subnet_id.clone(),
            vip_network_id: ctx.config.load_balancer.placement.network_id.clone(),
        };
        if !req.node_ports && !req.secondary_subnet {
            return;
        }
        let _one_at_a_time = self.scanning.lock().await;
        let fresh =
            self.scan_state(|s| !force && !s.failed && s.nodes.as_ref() == Some(&addresses));
        if fresh {
            return;
        }
        match self.cloud.scan(&req).await {
            Ok(scan) => {
                info!(
                    nodes = addresses.len(),
                    node_ports = scan.node_ports.len(),
                    secondary_subnet = ?scan.secondary_subnet_id,
                    "node scan"
                );
                let mut next = (*self.context()).clone();
                if req.node_ports {
                    next.env.node_port_ids = scan.node_ports.clone();
                }
                if req.secondary_subnet {
                    next.env.node_subnet_id_secondary = scan.secondary_subnet_id.clone();
                }
                self.set_context(next);
                self.scan_state(|s| {
                    s.nodes = Some(addresses);
                    s.failed = false;
                    s.scan = scan;
                });
            }
            Err(e) => {
                warn!(error = %e, "cannot scan the nodes' ports and subnets; tried again at the next resync");
                self.scan_state(|s| {
                    s.nodes = Some(addresses);
                    s.failed = true;
                });
            }
        }
    }

    /// The node ports whose security groups a plan about group `group` may change: every
    /// known node's port, and any other port of the nodes' network seen carrying the group
    /// (a node that left the cluster).
    fn ports_to_read(&self, group: Option<&str>) -> Vec<String> {
        let ctx = self.context();
        let mut ids: BTreeSet<String> = ctx.env.node_port_ids.values().cloned().collect();
        if let Some(g) = group {
            self.scan_state(|s| {
                for (port, groups) in &s.scan.port_groups {
                    if groups.iter().any(|x| x == g) {
                        ids.insert(port.clone());
                    }
                }
            });
        }
        ids.into_iter().collect()
    }

    async fn read_node_ports(&self, observed: &mut Observed, wanted: bool) -> Result<(), Failure> {
        let group = observed.security_group.as_ref().map(|g| g.id.clone());
        if !wanted && group.is_none() {
            return Ok(());
        }
        let ids = self.ports_to_read(group.as_deref());
        if ids.is_empty() {
            return Ok(());
        }
        observed.node_ports = self.cloud.ports(&ids).await.map_err(failure)?;
        Ok(())
    }

    pub fn context(&self) -> Arc<Context> {
        self.ctx.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace the context (e.g. after rediscovering the node subnet).
    pub fn set_context(&self, ctx: Context) {
        *self.ctx.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ctx);
    }

    fn desired(
        &self,
        service: &Service,
        nodes: &[Arc<Node>],
    ) -> Result<model::LoadBalancerSpec, Vec<model::Invalid>> {
        let ctx = self.context();
        let nodes: Vec<Node> = nodes.iter().map(|n| n.as_ref().clone()).collect();
        model::desired(service, &nodes, &ctx.config, &ctx.features, &ctx.env)
    }

    /// Execute the runnable head of `plan`; a 409 means the LB got locked in between (`None`).
    async fn run_steps(
        &self,
        key: &str,
        generation: u64,
        plan: &Plan,
        observed: &Observed,
    ) -> Result<Option<Ran>, Failure> {
        let steps: Vec<Step> = plan.runnable().iter().map(|s| s.step.clone()).collect();
        if steps.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = steps.iter().map(describe).collect();
        match self.cloud.execute(&steps).await {
            Ok(executed) => {
                // The LB that is now PENDING_*, when a step took its lock.
                let locked = steps
                    .iter()
                    .any(|s| s.takes_lb_lock())
                    .then(|| {
                        executed
                            .load_balancer_id
                            .clone()
                            .or_else(|| observed_lb_id(observed))
                    })
                    .flatten();
                Ok(Some(Ran {
                    names,
                    steps,
                    executed,
                    locked,
                }))
            }
            Err(e) if e.kind == CloudErrorKind::Conflict => Ok(None),
            Err(e) => {
                if e.kind == CloudErrorKind::NotFound {
                    // Possibly an id discovery found that the cloud has lost since.
                    self.discovery(|d| d.missing.insert(key.to_string()));
                    let changed = self.rediscover(rediscover::Why::NotFound).await;
                    // Also when another pass's look changed them while this one ran.
                    if changed || self.discovery(|d| d.generation) != generation {
                        // Planned on ids that are gone: plan again soon on the new ones, as
                        // after a 409, instead of the error backoff.
                        return Ok(None);
                    }
                }
                Err(failure(e))
            }
        }
    }
}

/// A Service's cloud state as this process's own last writes built it (the create answers,
/// the member sets it sent), waiting for its load balancer to settle.
#[derive(Clone, Debug)]
struct Known {
    observed: Observed,
    /// Every id in it is real (from answers), so it can stand for an observation in the drift
    /// print; member updates leave invented member ids.
    exact: bool,
    lb_id: String,
    at: Instant,
    /// Members in all its pools: what it costs to hold.
    members: usize,
}

/// A known state is trusted only this long; the usual wait is a few seconds to a minute.
const KNOWN_TTL: Duration = Duration::from_secs(300);

/// Known states hold whole member lists: a pool per port and a member per node, so 400 for
/// two ports on 200 nodes, about 130 kB. Past this many members in all, a Service reads its
/// tree on the next pass instead (one more GET), so memory stays bounded at any scale: the
/// budget is about 5 MB, 40 such Services or 160 on 50 nodes.
const KNOWN_MEMBER_BUDGET: usize = 16_384;

fn members_in(observed: &Observed) -> usize {
    observed
        .load_balancer
        .iter()
        .flat_map(|lb| &lb.listeners)
        .filter_map(|l| l.pool.as_ref())
        .map(|p| p.members.len())
        .sum()
}

/// Keeps `state` as `key`'s known state when the budget allows (its older one is replaced);
/// states past their TTL are dropped first. Whether it was kept.
fn remember(known: &mut HashMap<String, Known>, key: String, state: Known) -> bool {
    known.remove(&key);
    known.retain(|_, k| k.at.elapsed() <= KNOWN_TTL);
    let held: usize = known.values().map(|k| k.members).sum();
    if held + state.members > KNOWN_MEMBER_BUDGET {
        return false;
    }
    known.insert(key, state);
    true
}

/// The state after `steps` ran on `observed`, when every step's effect is known from its
/// answer (creates) or its request (member sets, tags); `None` otherwise.
fn state_after(observed: Observed, steps: &[Step], executed: Executed) -> Option<Known> {
    let Executed {
        mut load_balancer,
        floating_ips,
        ..
    } = executed;
    let mut after = observed;
    let mut exact = true;
    for step in steps {
        match step {
            Step::CreateLoadBalancer { .. } => {
                after.load_balancer = Some(load_balancer.take()?);
            }
            Step::CreateFloatingIp { .. } => {}
            Step::TagFloatingIp { fip, tag } => {
                let f = after.floating_ips.iter_mut().find(|f| &f.id == fip)?;
                if !f.tags.contains(tag) {
                    f.tags.push(tag.clone());
                }
            }
            Step::BatchUpdateMembers { .. } => {
                let one = Plan {
                    steps: vec![model::PlannedStep {
                        gate: model::Gate::Now,
                        step: step.clone(),
                    }],
                    ..Plan::default()
                };
                after = model::apply(&one, &after);
                exact = false;
            }
            _ => return None,
        }
    }
    after.floating_ips.extend(floating_ips);
    let lb_id = after.load_balancer.as_ref()?.id.clone();
    Some(Known {
        members: members_in(&after),
        observed: after,
        exact,
        lb_id,
        at: Instant::now(),
    })
}

impl<C: Cloud + Inventory + Resync> Planner<C> {
    /// The Service's known state, once the watcher saw its LB become ACTIVE after the writes
    /// that built it. Taken: it serves one pass at most.
    fn known_state(&self, key: &str, spec: &model::LoadBalancerSpec) -> Option<Known> {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)?;
        // Node ports are read per pass when security groups are managed: not known here.
        if spec.security_group.is_some() || known.at.elapsed() > KNOWN_TTL {
            return None;
        }
        let settled = self.watcher.settled(&known.lb_id)?;
        if settled.status != "ACTIVE" || settled.at < known.at {
            return None;
        }
        let lb = known.observed.load_balancer.as_mut()?;
        lb.provisioning_status = ProvisioningStatus::Active;
        Some(known)
    }

    /// The rest of a pass once the plan is made: report, or run the steps that may run now.
    async fn conclude(
        &self,
        generation: u64,
        service: &Service,
        spec: &model::LoadBalancerSpec,
        observed: Observed,
        plan: Plan,
    ) -> Result<Ensured, Failure> {
        if !plan.invalid.is_empty() {
            return Ok(Ensured::Invalid {
                problems: plan.invalid.iter().map(|i| i.to_string()).collect(),
            });
        }
        let notices = notices(&spec.warnings, &plan);
        let stages = stages(&observed);
        if plan.is_empty() && plan.wait.is_some() {
            return Ok(Ensured::Busy {
                status: busy_status(&plan, &observed),
                stages,
                woken: self.wait_for(observed_lb_id(&observed).as_deref(), service),
            });
        }
        if plan.publishable() {
            // Only bookkeeping left (or nothing): the IP is published first, the bookkeeping
            // follows in `after_publish`, and the print is taken from the state after it.
            let bookkeeping = plan.after_publish();
            let print = if bookkeeping.is_empty() {
                Some(drift::print(&observed, &spec.cluster_tag))
            } else {
                self.deferred
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(status::key(service), (observed, bookkeeping));
                None
            };
            return Ok(Ensured::Ready {
                published: published(&plan),
                notices,
                stages,
                follow_up: print.is_none(),
                print,
            });
        }
        let created = creates_lb(&plan);
        match self
            .run_steps(&status::key(service), generation, &plan, &observed)
            .await?
        {
            Some(ran) => {
                let woken = self.wait_for(ran.locked.as_deref(), service);
                let key = status::key(service);
                let names = ran.names;
                let next = woken
                    .then(|| state_after(observed, &ran.steps, ran.executed))
                    .flatten();
                let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                match next {
                    Some(k) => {
                        if !remember(&mut known, key, k) {
                            debug!(
                                "known states are at their budget: the next pass reads the tree"
                            );
                        }
                    }
                    None => {
                        known.remove(&key);
                    }
                };
                drop(known);
                Ok(Ensured::Progressed {
                    steps: names,
                    created,
                    notices,
                    stages,
                    woken,
                })
            }
            None => Ok(Ensured::Busy {
                status: busy_status(&plan, &observed),
                stages,
                woken: self.wait_for(observed_lb_id(&observed).as_deref(), service),
            }),
        }
    }
}

impl<C: Cloud + Inventory + Resync> Planner<C> {
    fn owned_from(&self, tagged: Vec<Tagged>) -> Vec<Owned> {
        let ctx = self.context();
        tagged
            .into_iter()
            .map(|t| Owned {
                service: match t.kind {
                    OwnedKind::LoadBalancer => {
                        naming::service_of_lb_name(&ctx.env.cluster_name, &t.name_or_description)
                    }
                    OwnedKind::FloatingIp => naming::service_of_fip_description(
                        &ctx.env.cluster_name,
                        &t.name_or_description,
                    ),
                },
                kind: t.kind,
                id: t.id,
                label: t.label,
            })
            .collect()
    }
}

fn observed_lb_id(observed: &Observed) -> Option<String> {
    observed.load_balancer.as_ref().map(|lb| lb.id.clone())
}

fn busy_status(plan: &Plan, observed: &Observed) -> String {
    match &plan.wait {
        Some(Wait::LoadBalancerBusy { status }) => status.clone(),
        None => observed
            .load_balancer
            .as_ref()
            .map(|lb| format!("{:?}", lb.provisioning_status))
            .unwrap_or_else(|| "busy".to_string()),
    }
}

impl<C: Cloud + Inventory + Resync> LoadBalancers for Planner<C> {
    fn member_fingerprint(&self, service: &Service, nodes: &[Arc<Node>]) -> u64 {
        let mut h = DefaultHasher::new();
        match self.desired(service, nodes) {
            Ok(spec) => {
                serde_json::to_string(&spec.listeners)
                    .unwrap_or_default()
                    .hash(&mut h);
                // The node ports carrying the Service's group follow the member nodes too.
                spec.security_group.map(|g| g.port_ids).hash(&mut h);
            }
            Err(invalid) => invalid
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .hash(&mut h),
        }
        h.finish()
    }

    async fn ensure(&self, service: &Service, nodes: &[Arc<Node>]) -> Result<Ensured, Failure> {
        // The discovered ids the spec is made of.
        let generation = self.discovery(|d| d.generation);
        let spec = match self.desired(service, nodes) {
            Ok(spec) => spec,
            Err(invalid) => {
                return Ok(Ensured::Invalid {
                    problems: invalid.iter().map(|i| i.to_string()).collect(),
                });
            }
        };
        let key = status::key(service);
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(known) = self.known_state(&key, &spec) {
            let plan = model::plan(&spec, &known.observed);
            // Only a plan that needs nothing but what this state is sure of: converged (with
            // real ids for the drift print), or the next pool's member update. Anything else
            // is decided on a fresh observation.
            let conclusive = plan.invalid.is_empty()
                && plan.wait.is_none()
                && if plan.publishable() {
                    known.exact
                } else {
                    plan.runnable()
                        .iter()
                        .all(|s| matches!(s.step, Step::BatchUpdateMembers { .. }))
                };
            if conclusive {
                debug!(service = %key, "planned on the state its own writes built; no read");
                return self
                    .conclude(generation, service, &spec, known.observed, plan)
                    .await;
            }
        }
        let lookup = Lookup {
            lb_name: spec.name.clone(),
            lb_id: spec
                .existing_lb_id
                .clone()
                .or_else(|| lb_id_annotation(service)),
            fip_description: spec.fip_description.clone(),
            fip_address: match &spec.floating_ip {
                FipIntent::ByAddress { address, .. } => Some(address.to_string()),
                _ => None,
            },
            security_group: spec.security_group.as_ref().map(|g| g.name.clone()),
        };
        let mut observed = self
            .cloud
            .observe_unless_locked(&lookup)
            .await
            .map_err(failure)?;
        // The project this controller works in (from its token): an LB of another project,
        // even one its credentials can see, is never adopted or shared.
        observed.project_id = self.context().env.project_id.clone();
        if let Some(lb) = observed
            .load_balancer
            .as_ref()
            .filter(|lb| lb.provisioning_status.is_pending())
        {
            // Possibly observed in part (see `Cloud::observe_unless_locked`): planning on it
            // could mistake unread floating IPs for missing ones. Just come back later.
            return Ok(Ensured::Busy {
                status: lb.provisioning_status.as_api().to_string(),
                stages: stages(&observed),
                woken: self.wait_for(Some(&lb.id), service),
            });
        }
        self.read_node_ports(&mut observed, spec.security_group.is_some())
            .await?;
        let plan = model::plan(&spec, &observed);
        self.conclude(generation, service, &spec, observed, plan)
            .await
    }

    async fn nodes_changed(&self, nodes: &[Arc<Node>]) {
        self.refresh_nodes(nodes).await;
    }

    fn subscribe(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        let ctx = self.context();
        // LBaaS v1 has no load balancer object to watch: its Services poll alone.
        if ctx.features.generation == model::Generation::NeutronV1 {
            return None;
        }
        let rx = self.watcher.subscribe();
        let mut task = self.watch_task.lock().unwrap_or_else(|e| e.into_inner());
        if task.as_ref().is_none_or(|t| t.is_finished()) {
            let tag = model::naming::cluster_tag(&ctx.env.cluster_uid);
            let source = Arc::new(CloudProgress(self.cloud.clone()));
            *task = Some(tokio::spawn(self.watcher.clone().run(source, tag)));
        }
        Some(rx)
    }

    async fn resync(&self, prints: &[(String, CloudPrint)]) -> Result<Resynced, Failure> {
        let retry = self.scan_state(|s| s.failed.then(|| s.nodes.clone().unwrap_or_default()));
        if let Some(nodes) = retry {
            self.scan_nodes(nodes, true).await;
        }
        self.rediscover(rediscover::Why::Periodic).await;
        let ctx = self.context();
        if ctx.features.generation == model::Generation::NeutronV1 {
            // No print is ever taken there (v1 objects are not listed here); nothing to compare.
            return Ok(Resynced {
                drifted: prints.iter().map(|(k, _)| k.clone()).collect(),
                owned: None,
            });
        }
        let tag = model::naming::cluster_tag(&ctx.env.cluster_uid);
        let network = self.scan_state(|s| s.scan.network_id.clone());
        let req = SnapshotRequest::for_prints(
            tag,
            ctx.env.project_id.clone(),
            network,
            prints.iter().map(|(_, p)| p),
        );
        let listing = self.cloud.snapshot(&req).await.map_err(failure)?;
        let drifted = prints
            .iter()
            .filter(|(_, p)| listing.snapshot.differs(p))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(Resynced {
            drifted,
            owned: Some(self.owned_from(listing.tagged)),
        })
    }

    async fn owned(&self) -> Result<Vec<Owned>, Failure> {
        let ctx = self.context();
        let tag = model::naming::cluster_tag(&ctx.env.cluster_uid);
        let tagged = self.cloud.list_tagged(&tag).await.map_err(failure)?;
        Ok(self.owned_from(tagged))
    }

    async fn delete_owned(&self, owned: &Owned) -> Result<(), Failure> {
        self.cloud
            .delete_tagged(owned.kind, &owned.id)
            .await
            .map_err(failure)
    }

    async fn after_publish(&self, service: &Service) -> Result<Option<CloudPrint>, Failure> {
        let key = status::key(service);
        let Some((observed, steps)) = self
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
        else {
            return Ok(None);
        };
        self.cloud.execute(&steps).await.map_err(failure)?;
        debug!(service = %key, steps = ?steps.iter().map(describe).collect::<Vec<_>>(), "bookkeeping after the IP was published");
        // Tags are exactly what the request said: the state after them needs no read.
        let done = Plan {
            steps: steps
                .into_iter()
                .map(|step| model::PlannedStep {
                    gate: model::Gate::AfterPublish,
                    step,
                })
                .collect(),
            ..Plan::default()
        };
        let tag = model::naming::cluster_tag(&self.context().env.cluster_uid);
        Ok(Some(drift::print(&model::apply(&done, &observed), &tag)))
    }

    async fn delete(&self, service: &Service) -> Result<Deleted, Failure> {
        let generation = self.discovery(|d| d.generation);
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&status::key(service));
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&status::key(service));
        let ctx = self.context();
        let intent = DeleteIntent::for_service(service, &ctx.config, &ctx.features, &ctx.env);
        let lookup = Lookup {
            lb_name: intent.lb_name.clone(),
            lb_id: lb_id_annotation(service),
            fip_description: intent.fip_description.clone(),
            fip_address: None,
            security_group: ctx
                .config
                .load_balancer
                .manage_security_groups
                .then(|| model::naming::security_group_name(&intent.lb_name)),
        };
        let mut observed = self.cloud.observe(&lookup).await.map_err(failure)?;
        observed.project_id = ctx.env.project_id.clone();
        self.read_node_ports(&mut observed, false).await?;
        let plan = model::plan_delete(&intent, &observed);
        if plan.is_empty() {
            if plan.wait.is_some() {
                return Ok(Deleted::Busy {
                    status: busy_status(&plan, &observed),
                    woken: self.wait_for(observed_lb_id(&observed).as_deref(), service),
                });
            }
            return Ok(Deleted::Gone);
        }
        match self
            .run_steps(&status::key(service), generation, &plan, &observed)
            .await?
        {
            Some(ran) => Ok(Deleted::Progressed {
                steps: ran.names,
                woken: self.wait_for(ran.locked.as_deref(), service),
            }),
            None => Ok(Deleted::Busy {
                status: busy_status(&plan, &observed),
                woken: self.wait_for(observed_lb_id(&observed).as_deref(), service),
            }),
        }
    }
}

mod rediscover;
#[cfg(test)]
mod tests;
