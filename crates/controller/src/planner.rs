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
use model::{CloudFeatures, DeleteIntent, Environment, Observed, Plan, Step};

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

/// `namespace/name` from an LB name `kube_service_<cluster>_<ns>_<name>` (namespaces and
/// Service names are DNS labels: they hold no `_`).
pub fn service_of_lb_name(cluster: &str, name: &str) -> Option<String> {
    let rest = name.strip_prefix(&format!("kube_service_{cluster}_"))?;
    let (ns, svc) = rest.split_once('_')?;
    (!ns.is_empty() && !svc.is_empty() && !svc.contains('_')).then(|| format!("{ns}/{svc}"))
}

/// `namespace/name` from our FIP description.
pub fn service_of_fip_description(cluster: &str, description: &str) -> Option<String> {
    let rest = description.strip_prefix("Floating IP for Kubernetes external service ")?;
    let key = rest.strip_suffix(&format!(" from cluster {cluster}"))?;
    key.contains('/').then(|| key.to_string())
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

fn notices(spec_warnings: &[model::Warning], plan: &Plan) -> Vec<Notice> {
    let mut out: Vec<Notice> = spec_warnings
        .iter()
        .chain(plan.warnings.iter())
        .map(|w| Notice {
            reason: w.reason.clone(),
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

fn published(plan: &Plan) -> Published {
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
    async fn run_steps(&self, plan: &Plan, observed: &Observed) -> Result<Option<Ran>, Failure> {
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
            Err(e) => Err(failure(e)),
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
}

/// A known state is trusted only this long; the usual wait is a few seconds to a minute.
const KNOWN_TTL: Duration = Duration::from_secs(300);

/// The state after `steps` ran on `observed`, when every step's effect is known from its
/// answer (creates) or its request (member sets, tags); `None` otherwise.
fn state_after(observed: &Observed, steps: &[Step], executed: &Executed) -> Option<Known> {
    let mut after = observed.clone();
    let mut exact = true;
    for step in steps {
        match step {
            Step::CreateLoadBalancer { .. } => {
                after.load_balancer = Some(executed.load_balancer.clone()?);
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
    after
        .floating_ips
        .extend(executed.floating_ips.iter().cloned());
    let lb_id = after.load_balancer.as_ref()?.id.clone();
    Some(Known {
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
        match self.run_steps(&plan, &observed).await? {
            Some(ran) => {
                let woken = self.wait_for(ran.locked.as_deref(), service);
                let key = status::key(service);
                let next = woken
                    .then(|| state_after(&observed, &ran.steps, &ran.executed))
                    .flatten();
                let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                match next {
                    Some(k) => known.insert(key, k),
                    None => known.remove(&key),
                };
                drop(known);
                Ok(Ensured::Progressed {
                    steps: ran.names,
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
                        service_of_lb_name(&ctx.env.cluster_name, &t.name_or_description)
                    }
                    OwnedKind::FloatingIp => {
                        service_of_fip_description(&ctx.env.cluster_name, &t.name_or_description)
                    }
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
                return self.conclude(service, &spec, known.observed, plan).await;
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
        self.conclude(service, &spec, observed, plan).await
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
        match self.run_steps(&plan, &observed).await? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use k8s_openapi::api::core::v1::{
        NodeAddress, NodeCondition, NodeSpec, NodeStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use model::observed::{ObservedFloatingIp, ObservedPort};
    use model::{Gate, PlannedStep};

    /// A cloud simulated with `model::apply`; after each mutation the LB stays locked for
    /// `lock_passes` observations, like Octavia's PENDING_* states.
    #[derive(Default)]
    struct SimCloud {
        state: Mutex<Observed>,
        lock_passes: u32,
        locked_for: Mutex<u32>,
        executed: Mutex<Vec<Step>>,
        observes: Mutex<u32>,
        fail_next: Mutex<Option<CloudError>>,
        scan: Mutex<Scan>,
        scans: Mutex<u32>,
        port_reads: Mutex<u32>,
        snapshots: Mutex<u32>,
        /// Answer `execute` like a fully-populated create does: with the whole tree.
        answers_tree: bool,
    }

    impl Inventory for SimCloud {
        async fn scan(&self, req: &ScanRequest) -> Result<Scan, CloudError> {
            *self.scans.lock().unwrap() += 1;
            let mut scan = self.scan.lock().unwrap().clone();
            // Only nodes that exist get a port, as in a cloud.
            scan.node_ports
                .retain(|name, _| req.nodes.iter().any(|n| &n.name == name));
            Ok(scan)
        }

        async fn ports(&self, ids: &[String]) -> Result<Vec<ObservedPort>, CloudError> {
            *self.port_reads.lock().unwrap() += 1;
            Ok(self
                .state
                .lock()
                .unwrap()
                .node_ports
                .iter()
                .filter(|p| ids.contains(&p.id))
                .cloned()
                .collect())
        }
    }

    impl Resync for SimCloud {
        async fn snapshot(
            &self,
            _req: &SnapshotRequest,
        ) -> Result<crate::cloud::Listing, CloudError> {
            *self.snapshots.lock().unwrap() += 1;
            let state = self.state.lock().unwrap().clone();
            Ok(crate::cloud::Listing {
                snapshot: crate::drift::Snapshot::of_observed(&[&state]),
                tagged: Vec::new(),
            })
        }
    }

    impl Cloud for SimCloud {
        async fn observe(&self, _lookup: &Lookup) -> Result<Observed, CloudError> {
            *self.observes.lock().unwrap() += 1;
            let mut o = self.state.lock().unwrap().clone();
            let mut locked = self.locked_for.lock().unwrap();
            if *locked > 0 {
                *locked -= 1;
                if let Some(lb) = o.load_balancer.as_mut() {
                    lb.provisioning_status = ProvisioningStatus::PendingUpdate;
                }
            }
            Ok(o)
        }

        async fn execute(&self, steps: &[Step]) -> Result<Executed, CloudError> {
            if let Some(e) = self.fail_next.lock().unwrap().take() {
                return Err(e);
            }
            if *self.locked_for.lock().unwrap() > 0 && steps.iter().any(|s| s.takes_lb_lock()) {
                return Err(CloudError::new(CloudErrorKind::Conflict, "locked"));
            }
            let plan = Plan {
                steps: steps
                    .iter()
                    .map(|s| PlannedStep {
                        gate: Gate::Now,
                        step: s.clone(),
                    })
                    .collect(),
                ..Plan::default()
            };
            let mut state = self.state.lock().unwrap();
            let before: Vec<String> = state.floating_ips.iter().map(|f| f.id.clone()).collect();
            *state = model::apply(&plan, &state);
            // `apply` attaches FIPs by port; give a created LB a VIP port like a cloud does.
            self.executed.lock().unwrap().extend(steps.iter().cloned());
            if steps.iter().any(|s| s.takes_lb_lock()) {
                *self.locked_for.lock().unwrap() = self.lock_passes;
            }
            let created_lb = steps.iter().any(|s| s.creates_load_balancer());
            Ok(Executed {
                load_balancer_id: state.load_balancer.as_ref().map(|lb| lb.id.clone()),
                load_balancer: (self.answers_tree && created_lb)
                    .then(|| state.load_balancer.clone())
                    .flatten(),
                floating_ips: state
                    .floating_ips
                    .iter()
                    .filter(|f| self.answers_tree && !before.contains(&f.id))
                    .cloned()
                    .collect(),
            })
        }

        async fn lb_progress(
            &self,
            _cluster_tag: &str,
            ids: &[String],
        ) -> Result<HashMap<String, LbProgress>, CloudError> {
            let state = self.state.lock().unwrap();
            let locked = *self.locked_for.lock().unwrap() > 0;
            Ok(ids
                .iter()
                .map(|id| {
                    let progress = match &state.load_balancer {
                        Some(lb) if &lb.id == id && locked => {
                            LbProgress::Pending("PENDING_UPDATE".into())
                        }
                        Some(lb) if &lb.id == id => LbProgress::Settled("ACTIVE".into()),
                        _ => LbProgress::Gone,
                    };
                    (id.clone(), progress)
                })
                .collect())
        }
    }

    fn config() -> CloudConfig {
        let text = "[Global]\nauth-url=http://127.0.0.1:5000/v3\nusername=u\npassword=p\nproject-name=p\ndomain-name=Default\n\
                    [LoadBalancer]\nsubnet-id=11111111-1111-1111-1111-111111111111\n\
                    floating-network-id=22222222-2222-2222-2222-222222222222\n";
        CloudConfig::parse(text).unwrap().0
    }

    fn planner(cloud: Arc<SimCloud>) -> Planner<SimCloud> {
        Planner::new(
            cloud,
            Context {
                config: config(),
                features: CloudFeatures::octavia(2, 26, Some("amphora")),
                env: Environment::new("kubernetes", "uid-1"),
            },
        )
    }

    fn node(name: &str, ip: &str) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.into(),
                }]),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn service(annotations: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ports: Some(vec![
                    ServicePort {
                        name: Some("http".into()),
                        port: 80,
                        node_port: Some(30080),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    },
                    ServicePort {
                        name: Some("alt".into()),
                        port: 8080,
                        node_port: Some(30081),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// Drive passes until Ready, like the engine does, counting the passes.
    async fn converge(
        p: &Planner<SimCloud>,
        svc: &Service,
        nodes: &[Arc<Node>],
    ) -> (Published, u32) {
        for pass in 1..=30 {
            match p.ensure(svc, nodes).await.unwrap() {
                Ensured::Ready {
                    published,
                    follow_up,
                    ..
                } => {
                    if follow_up {
                        p.after_publish(svc).await.unwrap();
                    }
                    return (published, pass);
                }
                Ensured::Invalid { problems } => panic!("invalid: {problems:?}"),
                _ => {}
            }
        }
        panic!("did not converge in 30 passes");
    }

    fn give_vip_ports(cloud: &SimCloud) {
        let mut s = cloud.state.lock().unwrap();
        if let Some(lb) = s.load_balancer.as_mut() {
            if lb.vip_port_id.is_none() {
                lb.vip_port_id = Some(format!("port-of-{}", lb.id));
            }
        }
    }

    #[tokio::test]
    async fn creates_then_converges_and_publishes_the_fip() {
        let cloud = Arc::new(SimCloud {
            lock_passes: 2,
            ..Default::default()
        });
        let p = planner(cloud.clone());
        let nodes = vec![
            node("n1", "127.0.1.1"),
            node("n2", "127.0.1.2"),
            node("n3", "127.0.1.3"),
        ];
        let svc = service(&[]);

        let first = p.ensure(&svc, &nodes).await.unwrap();
        let Ensured::Progressed { created, steps, .. } = first else {
            panic!("{first:?}")
        };
        assert!(created, "{steps:?}");
        let creates = cloud
            .executed
            .lock()
            .unwrap()
            .iter()
            .filter(|s| matches!(s, Step::CreateLoadBalancer { .. }))
            .count();
        assert_eq!(creates, 1, "one fully-populated create");
        give_vip_ports(&cloud);
        // Locked passes come back as Busy, never as a wait inside the call.
        let second = p.ensure(&svc, &nodes).await.unwrap();
        assert!(matches!(second, Ensured::Busy { .. }), "{second:?}");
        let (published, _) = converge(&p, &svc, &nodes).await;
        assert_eq!(published.ingress.len(), 1, "{published:?}");
        assert!(published.ingress[0].ip.is_some());
        assert_eq!(published.ingress[0].ip_mode.as_deref(), Some("VIP"));
        assert!(published.load_balancer_id.is_some());
        assert_eq!(published.load_balancer_address, published.ingress[0].ip);
        let state = cloud.state.lock().unwrap().clone();
        let lb = state.load_balancer.unwrap();
        assert_eq!(lb.listeners.len(), 2);
        for l in &lb.listeners {
            assert_eq!(l.pool.as_ref().unwrap().members.len(), 3);
        }
        // A converged pass executes nothing.
        let before = cloud.executed.lock().unwrap().len();
        assert!(matches!(
            p.ensure(&svc, &nodes).await.unwrap(),
            Ensured::Ready { .. }
        ));
        assert_eq!(cloud.executed.lock().unwrap().len(), before);
    }

    #[tokio::test]
    async fn the_state_its_own_create_built_is_published_without_reading_it_back() {
        let cloud = Arc::new(SimCloud {
            answers_tree: true,
            ..Default::default()
        });
        let p = planner(cloud.clone());
        // A listener for wake-ups (the engine's part), without the ticking task: the test
        // ticks by hand.
        let mut wakeups = p.watcher.subscribe();
        let nodes = vec![node("n1", "127.0.1.1"), node("n2", "127.0.1.2")];
        let svc = service(&[]);
        let first = p.ensure(&svc, &nodes).await.unwrap();
        let Ensured::Progressed { created, woken, .. } = first else {
            panic!("{first:?}")
        };
        assert!(
            created && woken,
            "the create locked the LB: the watcher wakes the Service"
        );
        let reads = *cloud.observes.lock().unwrap();
        let source = CloudProgress(cloud.clone());
        assert_eq!(p.watcher.tick(&source, "tag").await.len(), 1);
        assert_eq!(wakeups.try_recv().ok(), Some(status::key(&svc)));
        let tags = || {
            cloud
                .executed
                .lock()
                .unwrap()
                .iter()
                .filter(|s| matches!(s, Step::TagFloatingIp { .. }))
                .count()
        };
        let Ensured::Ready {
            published,
            print,
            follow_up,
            ..
        } = p.ensure(&svc, &nodes).await.unwrap()
        else {
            panic!("converged on the known state")
        };
        assert!(published.ingress[0].ip.is_some(), "{published:?}");
        assert!(
            follow_up && print.is_none() && tags() == 0,
            "the FIP's tag waits until the IP is published"
        );
        let print = p.after_publish(&svc).await.unwrap();
        assert!(print.is_some(), "real ids: the drift print is taken");
        assert_eq!(tags(), 1);
        assert_eq!(*cloud.observes.lock().unwrap(), reads, "no read");
        assert_eq!(p.after_publish(&svc).await.unwrap(), None, "done once");
        // The known state serves one pass: the next one (a resync's) observes again.
        assert!(matches!(
            p.ensure(&svc, &nodes).await.unwrap(),
            Ensured::Ready { .. }
        ));
        assert_eq!(*cloud.observes.lock().unwrap(), reads + 1);
    }

    #[tokio::test]
    async fn an_lb_of_another_project_is_never_adopted_even_when_visible() {
        // An admin-ish credential sees other projects' LBs; the project the controller works
        // in is its token's, not the LB's own.
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let mut ctx = (*p.context()).clone();
        ctx.env.project_id = Some("project-mine".into());
        p.set_context(ctx);
        let nodes = vec![node("n1", "127.0.1.1")];
        // Their LB, built the way a Service of theirs would have it.
        let theirs = service(&[]);
        converge(&p, &theirs, &nodes).await;
        let lb_id = {
            let mut state = cloud.state.lock().unwrap();
            let lb = state.load_balancer.as_mut().unwrap();
            lb.project_id = Some("project-demo".into());
            lb.name = "their-own-lb".into();
            lb.tags.clear();
            lb.id = "5d3c0a4e-8f1b-4c2d-9e6f-0a1b2c3d4e5f".into();
            lb.id.clone()
        };
        let before = cloud.executed.lock().unwrap().len();
        let mut pointing = service(&[(ANN_LB_ID, lb_id.as_str())]);
        pointing.metadata.name = Some("intruder".into());
        let Ensured::Invalid { problems } = p.ensure(&pointing, &nodes).await.unwrap() else {
            panic!("must be refused")
        };
        assert!(
            problems
                .iter()
                .any(|m| m.contains("project-mine") && m.contains("project-demo")),
            "{problems:?}"
        );
        assert_eq!(
            cloud.executed.lock().unwrap().len(),
            before,
            "nothing written"
        );
    }

    #[tokio::test]
    async fn without_a_settled_report_or_a_whole_answer_the_cloud_is_read() {
        // No tree in the create answer: nothing is known, the next pass reads.
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let _wakeups = p.watcher.subscribe();
        let nodes = vec![node("n1", "127.0.1.1")];
        let svc = service(&[]);
        p.ensure(&svc, &nodes).await.unwrap();
        p.watcher.tick(&CloudProgress(cloud.clone()), "tag").await;
        let reads = *cloud.observes.lock().unwrap();
        p.ensure(&svc, &nodes).await.unwrap();
        assert_eq!(*cloud.observes.lock().unwrap(), reads + 1);
        // A whole answer, but the watcher has not seen the LB settle: read.
        let cloud = Arc::new(SimCloud {
            answers_tree: true,
            ..Default::default()
        });
        let p = planner(cloud.clone());
        let _wakeups = p.watcher.subscribe();
        p.ensure(&svc, &nodes).await.unwrap();
        let reads = *cloud.observes.lock().unwrap();
        p.ensure(&svc, &nodes).await.unwrap();
        assert_eq!(*cloud.observes.lock().unwrap(), reads + 1);
    }

    #[tokio::test]
    async fn node_change_moves_fingerprint_and_updates_members_in_one_batch() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let three = vec![
            node("n1", "127.0.1.1"),
            node("n2", "127.0.1.2"),
            node("n3", "127.0.1.3"),
        ];
        let svc = service(&[]);
        p.ensure(&svc, &three).await.unwrap();
        give_vip_ports(&cloud);
        converge(&p, &svc, &three).await;
        let two = vec![three[0].clone(), three[1].clone()];
        assert_ne!(
            p.member_fingerprint(&svc, &three),
            p.member_fingerprint(&svc, &two)
        );
        // A node change that does not touch membership (a label) keeps the fingerprint.
        let mut relabelled = three[2].as_ref().clone();
        relabelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        let same = vec![three[0].clone(), three[1].clone(), Arc::new(relabelled)];
        assert_eq!(
            p.member_fingerprint(&svc, &three),
            p.member_fingerprint(&svc, &same)
        );

        let before = cloud.executed.lock().unwrap().len();
        converge(&p, &svc, &two).await;
        let new: Vec<Step> = cloud.executed.lock().unwrap()[before..].to_vec();
        assert!(
            new.iter()
                .all(|s| matches!(s, Step::BatchUpdateMembers { .. })),
            "{new:?}"
        );
        assert_eq!(new.len(), 2, "one batch update per pool");
    }

    #[tokio::test]
    async fn invalid_annotation_changes_nothing() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let svc = service(&[("loadbalancer.openstack.org/connection-limit", "lots")]);
        let r = p.ensure(&svc, &[node("n1", "127.0.1.1")]).await.unwrap();
        let Ensured::Invalid { problems } = r else {
            panic!("{r:?}")
        };
        assert!(
            problems.iter().any(|m| m.contains("connection-limit")),
            "{problems:?}"
        );
        assert!(cloud.executed.lock().unwrap().is_empty());
        assert_eq!(
            *cloud.observes.lock().unwrap(),
            0,
            "an invalid Service costs no cloud call"
        );
    }

    #[tokio::test]
    async fn quota_and_conflict_errors_are_classified() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let nodes = vec![node("n1", "127.0.1.1")];
        let svc = service(&[]);
        *cloud.fail_next.lock().unwrap() = Some(CloudError::new(
            CloudErrorKind::Quota,
            "Quota exceeded for resources: ['loadbalancer']",
        ));
        let err = p.ensure(&svc, &nodes).await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Quota);
        assert!(err.message.contains("Quota exceeded"));
        *cloud.fail_next.lock().unwrap() =
            Some(CloudError::new(CloudErrorKind::Conflict, "locked"));
        assert!(matches!(
            p.ensure(&svc, &nodes).await.unwrap(),
            Ensured::Busy { .. }
        ));
    }

    #[tokio::test]
    async fn delete_removes_lb_and_our_fip_but_keeps_a_users_fip() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let nodes = vec![node("n1", "127.0.1.1")];
        let svc = service(&[]);
        p.ensure(&svc, &nodes).await.unwrap();
        give_vip_ports(&cloud);
        converge(&p, &svc, &nodes).await;
        cloud
            .state
            .lock()
            .unwrap()
            .floating_ips
            .push(ObservedFloatingIp {
                id: "users-fip".into(),
                floating_ip_address: "127.200.9.9".into(),
                floating_network_id: "22222222-2222-2222-2222-222222222222".into(),
                description: "mine".into(),
                ..Default::default()
            });
        let mut passes = 0;
        loop {
            passes += 1;
            assert!(passes < 20, "delete did not finish");
            match p.delete(&svc).await.unwrap() {
                Deleted::Gone => break,
                Deleted::Progressed { .. } | Deleted::Busy { .. } => {}
            }
        }
        let state = cloud.state.lock().unwrap().clone();
        assert!(
            state.load_balancer.is_none()
                || state.load_balancer.unwrap().provisioning_status == ProvisioningStatus::Deleted
        );
        assert_eq!(state.floating_ips.len(), 1);
        assert_eq!(state.floating_ips[0].id, "users-fip");
    }

    fn sg_planner(cloud: Arc<SimCloud>) -> Planner<SimCloud> {
        let text = "[Global]\nauth-url=http://127.0.0.1:5000/v3\nusername=u\npassword=p\nproject-name=p\ndomain-name=Default\n\
                    [LoadBalancer]\nsubnet-id=11111111-1111-1111-1111-111111111111\n\
                    floating-network-id=22222222-2222-2222-2222-222222222222\nmanage-security-groups=true\n";
        Planner::new(
            cloud,
            Context {
                config: CloudConfig::parse(text).unwrap().0,
                features: CloudFeatures::octavia(2, 26, Some("amphora")),
                env: Environment::new("kubernetes", "uid-1"),
            },
        )
    }

    fn port(id: &str, groups: &[&str], rev: u64) -> ObservedPort {
        ObservedPort {
            id: id.into(),
            security_groups: groups.iter().map(|g| g.to_string()).collect(),
            revision_number: rev,
        }
    }

    fn sg_cloud() -> Arc<SimCloud> {
        let cloud = SimCloud::default();
        *cloud.scan.lock().unwrap() = Scan {
            node_ports: [("n1", "port-1"), ("n2", "port-2"), ("n3", "port-3")]
                .iter()
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .collect(),
            ..Scan::default()
        };
        cloud.state.lock().unwrap().node_ports = vec![
            port("port-1", &["users-1"], 3),
            port("port-2", &[], 1),
            port("port-3", &["users-3"], 7),
        ];
        Arc::new(cloud)
    }

    fn groups_of(cloud: &SimCloud, port: &str) -> Vec<String> {
        let state = cloud.state.lock().unwrap();
        let p = state.node_ports.iter().find(|p| p.id == port).unwrap();
        p.security_groups.clone()
    }

    #[tokio::test]
    async fn security_group_follows_member_nodes_and_keeps_users_groups() {
        let cloud = sg_cloud();
        let p = sg_planner(cloud.clone());
        let three = vec![
            node("n1", "127.0.1.1"),
            node("n2", "127.0.1.2"),
            node("n3", "127.0.1.3"),
        ];
        p.refresh_nodes(&three).await;
        // The same node set again costs no scan.
        p.refresh_nodes(&three).await;
        assert_eq!(*cloud.scans.lock().unwrap(), 1);
        assert_eq!(p.context().env.node_port_ids.len(), 3);

        let svc = service(&[]);
        p.ensure(&svc, &three).await.unwrap();
        give_vip_ports(&cloud);
        converge(&p, &svc, &three).await;
        let group = cloud
            .state
            .lock()
            .unwrap()
            .security_group
            .clone()
            .unwrap()
            .id;
        assert_eq!(
            groups_of(&cloud, "port-1"),
            vec!["users-1".to_string(), group.clone()]
        );
        assert_eq!(groups_of(&cloud, "port-2"), vec![group.clone()]);
        assert_eq!(
            groups_of(&cloud, "port-3"),
            vec!["users-3".to_string(), group.clone()]
        );
        let reads = *cloud.port_reads.lock().unwrap();
        let passes = *cloud.observes.lock().unwrap();
        assert!(
            reads <= passes,
            "one batched port read per pass at most ({reads} > {passes})"
        );

        // The user edits a node port behind our back (new group, new revision): the next
        // change is planned on a fresh read of the port, so their edit survives it.
        {
            let mut state = cloud.state.lock().unwrap();
            let p3 = state
                .node_ports
                .iter_mut()
                .find(|p| p.id == "port-3")
                .unwrap();
            p3.security_groups.insert(0, "users-new".into());
            p3.revision_number += 1;
        }
        // n3 becomes NotReady: our group leaves its port, the user's stay.
        let mut not_ready = three[2].as_ref().clone();
        not_ready
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .status = "False".into();
        let changed = vec![three[0].clone(), three[1].clone(), Arc::new(not_ready)];
        assert_ne!(
            p.member_fingerprint(&svc, &three),
            p.member_fingerprint(&svc, &changed),
            "the port set is part of the member fingerprint"
        );
        converge(&p, &svc, &changed).await;
        assert_eq!(
            groups_of(&cloud, "port-3"),
            vec!["users-new".to_string(), "users-3".to_string()]
        );

        // n2 is deleted from the cluster while its VM (port) lives: the last scan saw the port
        // carrying our group, so it is still cleaned.
        cloud.scan.lock().unwrap().port_groups = [
            ("port-1".to_string(), groups_of(&cloud, "port-1")),
            ("port-2".to_string(), groups_of(&cloud, "port-2")),
        ]
        .into_iter()
        .collect();
        let one = vec![three[0].clone()];
        p.refresh_nodes(&one).await;
        converge(&p, &svc, &one).await;
        assert!(groups_of(&cloud, "port-2").is_empty());

        // Deleting the Service detaches the group everywhere and deletes it.
        for _ in 0..20 {
            if matches!(p.delete(&svc).await.unwrap(), Deleted::Gone) {
                break;
            }
        }
        assert!(cloud.state.lock().unwrap().security_group.is_none());
        assert_eq!(groups_of(&cloud, "port-1"), vec!["users-1".to_string()]);
        assert_eq!(
            groups_of(&cloud, "port-3"),
            vec!["users-new".to_string(), "users-3".to_string()]
        );
    }

    #[tokio::test]
    async fn dual_stack_uses_the_scanned_second_subnet() {
        let cloud = Arc::new(SimCloud::default());
        cloud.scan.lock().unwrap().secondary_subnet_id = Some("v6-subnet".into());
        let p = planner(cloud.clone());
        let nodes = vec![node("n1", "127.0.1.1")];
        p.refresh_nodes(&nodes).await;
        assert_eq!(
            p.context().env.node_subnet_id_secondary.as_deref(),
            Some("v6-subnet")
        );
        let mut svc = service(&[]);
        svc.spec.as_mut().unwrap().ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
        p.ensure(&svc, &nodes).await.unwrap();
        let executed = cloud.executed.lock().unwrap().clone();
        let vip = executed
            .iter()
            .find_map(|s| match s {
                Step::CreateLoadBalancer { vip, .. } => Some(vip.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(vip.additional_subnet_ids, vec!["v6-subnet".to_string()]);
    }

    #[tokio::test]
    async fn resync_reports_only_drifted_services_with_one_listing() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let nodes = vec![node("n1", "127.0.1.1"), node("n2", "127.0.1.2")];
        let svc = service(&[]);
        p.ensure(&svc, &nodes).await.unwrap();
        give_vip_ports(&cloud);
        converge(&p, &svc, &nodes).await;
        let Ensured::Ready {
            print: Some(print), ..
        } = p.ensure(&svc, &nodes).await.unwrap()
        else {
            panic!("converged pass without a print")
        };
        // Another converged Service whose objects are not in this simulated cloud at all.
        let gone = crate::drift::print(
            &Observed {
                load_balancer: Some(model::observed::ObservedLoadBalancer {
                    id: "elsewhere".into(),
                    ..Default::default()
                }),
                ..Observed::default()
            },
            "",
        );
        let prints = vec![
            ("default/web".to_string(), print.clone()),
            ("default/other".to_string(), gone),
        ];
        let observes = *cloud.observes.lock().unwrap();
        let r = p.resync(&prints).await.unwrap();
        assert_eq!(r.drifted, vec!["default/other".to_string()]);
        assert_eq!(*cloud.snapshots.lock().unwrap(), 1);
        assert_eq!(
            *cloud.observes.lock().unwrap(),
            observes,
            "no per-Service call"
        );

        // A member deleted behind our back.
        {
            let mut state = cloud.state.lock().unwrap();
            let lb = state.load_balancer.as_mut().unwrap();
            lb.listeners[0].pool.as_mut().unwrap().members.pop();
        }
        let r = p.resync(&prints[..1]).await.unwrap();
        assert_eq!(r.drifted, vec!["default/web".to_string()]);
        // Repaired by the next pass, and the new print matches again.
        let (_, _) = converge(&p, &svc, &nodes).await;
        let Ensured::Ready {
            print: Some(repaired),
            ..
        } = p.ensure(&svc, &nodes).await.unwrap()
        else {
            panic!("no print")
        };
        let r = p
            .resync(&[("default/web".to_string(), repaired)])
            .await
            .unwrap();
        assert!(r.drifted.is_empty());
    }

    #[test]
    fn orphans_are_mapped_back_to_services() {
        assert_eq!(
            service_of_lb_name("kubernetes", "kube_service_kubernetes_shop_web").as_deref(),
            Some("shop/web")
        );
        assert_eq!(
            service_of_lb_name("my_cluster", "kube_service_my_cluster_shop_web").as_deref(),
            Some("shop/web")
        );
        assert_eq!(
            service_of_lb_name("kubernetes", "kube_service_other_shop_web"),
            None
        );
        assert_eq!(service_of_lb_name("kubernetes", "something-else"), None);
        let d = model::naming::fip_description("kubernetes", "shop", "web");
        assert_eq!(
            service_of_fip_description("kubernetes", &d).as_deref(),
            Some("shop/web")
        );
        assert_eq!(service_of_fip_description("other", &d), None);
    }

    #[tokio::test]
    async fn a_fip_of_ours_that_lost_its_tag_is_tagged_once() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let nodes = vec![node("n1", "127.0.1.1")];
        let svc = service(&[]);
        p.ensure(&svc, &nodes).await.unwrap();
        give_vip_ports(&cloud);
        let (published, _) = converge(&p, &svc, &nodes).await;
        // As left by a controller killed between the FIP POST and its tag PUT.
        let fip = {
            let mut s = cloud.state.lock().unwrap();
            s.floating_ips[0].tags.clear();
            s.floating_ips[0].id.clone()
        };
        let executed = cloud.executed.lock().unwrap().len();
        let tag = model::naming::cluster_tag("uid-1");
        // Bookkeeping: the (unchanged) status is published first, the tag follows.
        match p.ensure(&svc, &nodes).await.unwrap() {
            Ensured::Ready {
                published: now,
                follow_up,
                ..
            } => {
                assert!(follow_up);
                assert_eq!(now, published);
                assert_eq!(cloud.executed.lock().unwrap().len(), executed);
                assert!(p.after_publish(&svc).await.unwrap().is_some());
            }
            other => panic!("{other:?}"),
        }
        let tag_step = Step::TagFloatingIp {
            fip: fip.clone(),
            tag: tag.clone(),
        };
        assert_eq!(
            cloud.executed.lock().unwrap()[executed..],
            *std::slice::from_ref(&tag_step)
        );
        let (again, _) = converge(&p, &svc, &nodes).await;
        assert_eq!(again, published, "same address, nothing else changed");
        assert_eq!(
            cloud.executed.lock().unwrap()[executed..],
            [tag_step],
            "tagged once, nothing else written"
        );
        assert_eq!(cloud.state.lock().unwrap().floating_ips[0].tags, vec![tag]);
    }

    #[tokio::test]
    async fn a_users_fip_is_never_tagged() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let nodes = vec![node("n1", "127.0.1.1")];
        let mut svc = service(&[]);
        svc.spec.as_mut().unwrap().load_balancer_ip = Some("203.0.113.77".into());
        cloud
            .state
            .lock()
            .unwrap()
            .floating_ips
            .push(ObservedFloatingIp {
                id: "users-fip".into(),
                floating_ip_address: "203.0.113.77".into(),
                floating_network_id: "22222222-2222-2222-2222-222222222222".into(),
                description: "the shop's address".into(),
                ..Default::default()
            });
        p.ensure(&svc, &nodes).await.unwrap();
        give_vip_ports(&cloud);
        let (published, _) = converge(&p, &svc, &nodes).await;
        assert_eq!(published.ingress[0].ip.as_deref(), Some("203.0.113.77"));
        let state = cloud.state.lock().unwrap().clone();
        assert!(state.floating_ips[0].port_id.is_some(), "attached");
        assert!(state.floating_ips[0].tags.is_empty());
        assert!(!cloud
            .executed
            .lock()
            .unwrap()
            .iter()
            .any(|s| matches!(s, Step::TagFloatingIp { .. })));
    }

    fn v1_observed(pool: &str, vip: Option<&str>, fip_on_vip: bool) -> Observed {
        use model::observed::{ObservedV1, ObservedV1Pool, ObservedV1Vip};
        Observed {
            v1: Some(ObservedV1 {
                pool: Some(ObservedV1Pool {
                    id: "pool-1".into(),
                    status: pool.into(),
                    ..Default::default()
                }),
                vip: vip.map(|status| ObservedV1Vip {
                    id: "vip-1".into(),
                    port_id: "vip-port".into(),
                    status: status.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            floating_ips: vec![ObservedFloatingIp {
                id: "f1".into(),
                port_id: fip_on_vip.then(|| "vip-port".to_string()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn v1_stages_come_from_the_pool_and_the_vip() {
        let s = |lb_active, fip_attached| Stages {
            lb_active,
            fip_attached,
        };
        assert_eq!(stages(&Observed::default()), s(false, false));
        assert_eq!(stages(&v1_observed("ACTIVE", None, false)), s(false, false));
        assert_eq!(
            stages(&v1_observed("PENDING_CREATE", Some("ACTIVE"), false)),
            s(false, false)
        );
        assert_eq!(
            stages(&v1_observed("ACTIVE", Some("PENDING_CREATE"), true)),
            s(false, true)
        );
        assert_eq!(
            stages(&v1_observed("ACTIVE", Some("ACTIVE"), false)),
            s(true, false)
        );
        assert_eq!(
            stages(&v1_observed("ACTIVE", Some("ACTIVE"), true)),
            s(true, true)
        );
    }

    #[tokio::test]
    async fn v1_pool_create_counts_as_creating_the_load_balancer() {
        let cloud = Arc::new(SimCloud::default());
        let p = planner(cloud.clone());
        let mut ctx = (*p.context()).clone();
        ctx.features = CloudFeatures::neutron_v1();
        p.set_context(ctx);
        // v1 VIPs carry one TCP port.
        let mut svc = service(&[]);
        svc.spec
            .as_mut()
            .unwrap()
            .ports
            .as_mut()
            .unwrap()
            .truncate(1);
        let first = p.ensure(&svc, &[node("n1", "127.0.1.1")]).await.unwrap();
        let Ensured::Progressed { created, steps, .. } = first else {
            panic!("{first:?}")
        };
        assert!(created, "{steps:?}");
        assert!(
            steps.iter().any(|s| s.starts_with("create_v1_pool")),
            "{steps:?}"
        );
        // An update of an existing v1 pool is not a create.
        let plan = |step| Plan {
            steps: vec![PlannedStep {
                gate: Gate::Now,
                step,
            }],
            ..Plan::default()
        };
        assert!(!creates_lb(&plan(Step::UpdateV1Pool {
            pool: "pool-1".into(),
            lb_method: "ROUND_ROBIN".into(),
        })));
    }

    #[test]
    fn steps_are_described_for_logs() {
        assert_eq!(
            describe(&Step::DeleteLoadBalancer {
                lb: "lb-1".into(),
                cascade: true
            }),
            "delete_load_balancer lb-1"
        );
        assert_eq!(
            describe(&Step::DeleteFloatingIp { fip: "f-1".into() }),
            "delete_floating_ip f-1"
        );
        assert_eq!(
            describe(&Step::TagFloatingIp {
                fip: "f-1".into(),
                tag: "kube-cluster-uid=u".into()
            }),
            "tag_floating_ip f-1"
        );
    }
}
