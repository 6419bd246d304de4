//! `plan`: desired vs observed for a Service that should have a load balancer. Ownership is
//! checked first (another cluster's LB, a full or clashing shared LB → `Invalid`, nothing
//! touched); then Neutron steps (security group, floating IP) that do not need the Octavia
//! lock, then Octavia steps, each gated on the LB being ACTIVE.

use std::collections::{BTreeMap, BTreeSet};

use super::fip::fip_steps;
use super::ip::normalize_ip;
use super::*;
use crate::features::Generation;
use crate::invalid::InvalidReason;
use crate::naming;
use crate::observed::{
    Observed, ObservedListener, ObservedLoadBalancer, ObservedPool, ProvisioningStatus,
};
use crate::spec::{Ingress, IngressSource, LoadBalancerSpec, Members, PoolSpec};

/// The steps that take `observed` to `spec`. Deterministic; empty when nothing differs.
pub fn plan(spec: &LoadBalancerSpec, observed: &Observed) -> Plan {
    if spec.features.generation == Generation::NeutronV1 {
        return super::v1::plan_v1(spec, observed);
    }
    let mut b = Builder::new(spec);
    let lb = observed
        .load_balancer
        .as_ref()
        .filter(|lb| lb.provisioning_status != ProvisioningStatus::Deleted);

    if let Some(lb) = lb {
        if let Some(invalid) = ownership_problem(spec, lb, observed) {
            b.plan.invalid.push(invalid);
            return b.finish(observed, None);
        }
    } else if let Some(id) = &spec.existing_lb_id {
        b.plan.warnings.push(Warning::new(
            WarningReason::LoadBalancerMissing,
            format!(
                "load balancer {id} named by load-balancer-id does not exist; creating a new one"
            ),
        ));
    }
    let shared = lb.is_some_and(|lb| lb.name != spec.name);

    // Neutron first: no Octavia lock needed.
    super::sg::sg_steps(spec, observed, &mut b.neutron);

    match lb {
        None => b.create(observed, false),
        Some(lb) if lb.provisioning_status == ProvisioningStatus::Error && !shared => {
            b.plan.warnings.push(Warning::new(
                WarningReason::LoadBalancerError,
                format!(
                    "load balancer {} is in ERROR; deleting and recreating it",
                    lb.id
                ),
            ));
            b.octavia.push(Step::DeleteLoadBalancer {
                lb: lb.id.clone(),
                cascade: spec.cascade_delete,
            });
            b.create(observed, true);
        }
        Some(lb) => {
            if lb.provisioning_status.is_pending() {
                b.plan.wait = Some(Wait::LoadBalancerBusy {
                    status: lb.provisioning_status.as_api().to_string(),
                });
            }
            let immutable = if shared {
                Vec::new()
            } else {
                immutable_changes(spec, lb)
            };
            if !immutable.is_empty() && spec.recreate_on_immutable_change {
                b.plan.warnings.push(Warning::new(
                    WarningReason::RecreatingLoadBalancer,
                    format!(
                        "recreating load balancer {} to change {}",
                        lb.id,
                        immutable
                            .iter()
                            .map(|r| r.field.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                b.octavia.push(Step::DeleteLoadBalancer {
                    lb: lb.id.clone(),
                    cascade: spec.cascade_delete,
                });
                b.create(observed, true);
            } else {
                b.plan.refusals.extend(immutable);
                b.plan.load_balancer_id = Some(lb.id.clone());
                if !shared {
                    let port = lb.vip_port_id.clone().map(PortRef::Id);
                    fip_steps(
                        spec,
                        observed,
                        port,
                        lb.vip_port_id.as_deref(),
                        &mut b.neutron,
                        &mut b.plan.invalid,
                    );
                }
                b.update(lb, shared);
            }
        }
    }
    let lb_for_status = if b.recreating { None } else { lb };
    b.finish(observed, lb_for_status)
}

struct Builder<'a> {
    spec: &'a LoadBalancerSpec,
    plan: Plan,
    neutron: Vec<Step>,
    octavia: Vec<Step>,
    /// Neutron steps that need the LB created by `octavia` (FIP on its VIP port).
    after_create: Vec<Step>,
    recreating: bool,
}

impl<'a> Builder<'a> {
    fn new(spec: &'a LoadBalancerSpec) -> Self {
        Builder {
            spec,
            plan: Plan {
                warnings: spec.warnings.clone(),
                ..Plan::default()
            },
            neutron: Vec::new(),
            octavia: Vec::new(),
            after_create: Vec::new(),
            recreating: false,
        }
    }

    /// A new LB: one fully-populated POST where the cloud allows, then its floating IP on the
    /// VIP port (known as soon as the POST answers).
    fn create(&mut self, observed: &Observed, replacing: bool) {
        let spec = self.spec;
        self.recreating = true;
        let full = spec.features.fully_populated_create;
        let listeners = if full {
            spec.listeners.clone()
        } else {
            Vec::new()
        };
        self.octavia.push(Step::CreateLoadBalancer {
            name: spec.name.clone(),
            description: spec.description.clone(),
            tags: spec.tags.clone(),
            vip: spec.vip.clone(),
            provider: spec.provider.clone(),
            flavor_id: spec.flavor_id.clone(),
            availability_zone: spec.availability_zone.clone(),
            listeners,
        });
        let lb_ref = Ref::Named(spec.name.clone());
        // The old VIP port (if replacing) goes with the old LB: its FIPs become free.
        let mut obs = observed.clone();
        if replacing {
            if let Some(port) = observed
                .load_balancer
                .as_ref()
                .and_then(|l| l.vip_port_id.clone())
            {
                for f in obs
                    .floating_ips
                    .iter_mut()
                    .filter(|f| f.port_id.as_deref() == Some(&port))
                {
                    f.port_id = None;
                }
            }
        }
        fip_steps(
            spec,
            &obs,
            Some(PortRef::VipOf(lb_ref.clone())),
            None,
            &mut self.after_create,
            &mut self.plan.invalid,
        );
        if !full {
            for l in &spec.listeners {
                self.create_listener(&lb_ref, l);
            }
        }
    }

    fn create_listener(&mut self, lb: &Ref, l: &ListenerSpec) {
        self.octavia.push(Step::CreateListener {
            lb: lb.clone(),
            name: l.name.clone(),
            protocol: l.protocol,
            port: l.port,
            connection_limit: l.connection_limit,
            allowed_cidrs: l.allowed_cidrs.clone(),
            insert_headers: l.insert_headers.clone(),
            timeouts: l.timeouts,
            default_tls_container_ref: l.default_tls_container_ref.clone(),
            tags: l.tags.clone(),
        });
        self.create_pool(lb, &Ref::Named(l.name.clone()), &l.pool);
    }

    fn create_pool(&mut self, lb: &Ref, listener: &Ref, p: &PoolSpec) {
        self.octavia.push(Step::CreatePool {
            lb: lb.clone(),
            listener: listener.clone(),
            name: p.name.clone(),
            protocol: p.protocol,
            lb_algorithm: p.lb_algorithm,
            session_persistence: p.session_persistence.clone(),
            tags: p.tags.clone(),
        });
        let pool = Ref::Named(p.name.clone());
        let members = p.members.initial().to_vec();
        if !members.is_empty() {
            if self.spec.features.batch_member_update {
                self.octavia.push(Step::BatchUpdateMembers {
                    pool: pool.clone(),
                    members,
                });
            } else {
                for m in members {
                    self.octavia.push(Step::CreateMember {
                        pool: pool.clone(),
                        member: m,
                    });
                }
            }
        }
        if let Some(m) = &p.monitor {
            self.octavia.push(Step::CreateMonitor {
                pool,
                monitor: m.clone(),
            });
        }
    }

    /// In-place changes to an existing LB.
    fn update(&mut self, lb: &ObservedLoadBalancer, shared: bool) {
        let spec = self.spec;
        // LB attributes. On a shared LB only our name tag is ours to add.
        let wanted_tags: Vec<String> = if shared {
            if spec.features.tags {
                vec![spec.name.clone()]
            } else {
                Vec::new()
            }
        } else {
            spec.tags.clone()
        };
        let missing: Vec<&String> = wanted_tags
            .iter()
            .filter(|t| !lb.tags.contains(t))
            .collect();
        // Consent withdrawn from the owner's `shared-with`: its tag goes (on our own LB only;
        // on a shared one the consent is the owner's to give).
        let withdrawn = |t: &String| {
            !shared && t.starts_with(naming::SHARED_WITH_TAG_PREFIX) && !wanted_tags.contains(t)
        };
        let tags = (!missing.is_empty() || lb.tags.iter().any(withdrawn)).then(|| {
            let mut all: Vec<String> = lb.tags.iter().filter(|t| !withdrawn(t)).cloned().collect();
            all.extend(missing.into_iter().cloned());
            all
        });
        let description =
            (!shared && lb.description != spec.description).then(|| spec.description.clone());
        if tags.is_some() || description.is_some() {
            self.octavia.push(Step::UpdateLoadBalancer {
                lb: lb.id.clone(),
                name: None,
                description,
                tags,
            });
        }

        // Listeners: ours are recognised by name; matched to the desired ones by port and L4
        // protocol, because a listener's protocol and port cannot change in place.
        let lb_ref = Ref::Id(lb.id.clone());
        let ours: Vec<&ObservedListener> = lb
            .listeners
            .iter()
            .filter(|l| naming::child_index("listener", &l.name, &spec.name).is_some())
            .collect();
        let mut used = BTreeSet::new();
        let mut pairs = Vec::new();
        for want in &spec.listeners {
            let found = ours.iter().copied().find(|l| {
                l.protocol_port == want.port
                    && l4(l.protocol) == l4(want.protocol)
                    && !used.contains(&l.id)
            });
            if let Some(have) = found {
                used.insert(have.id.clone());
            }
            pairs.push((want, found));
        }
        // Deletions first: they free ports and names before anything new takes them.
        for have in ours.iter().filter(|l| !used.contains(&l.id)) {
            self.delete_listener(have);
        }
        for (want, found) in pairs {
            match found {
                None => self.create_listener(&lb_ref, want),
                Some(have) if have.protocol != want.protocol => {
                    self.delete_listener(have);
                    self.create_listener(&lb_ref, want);
                }
                Some(have) => self.update_listener(&lb_ref, have, want),
            }
        }
    }

    fn delete_listener(&mut self, l: &ObservedListener) {
        if let Some(p) = &l.pool {
            self.octavia.push(Step::DeletePool { pool: p.id.clone() });
        }
        self.octavia.push(Step::DeleteListener {
            listener: l.id.clone(),
        });
    }

    fn update_listener(&mut self, lb: &Ref, have: &ObservedListener, want: &ListenerSpec) {
        let f = &self.spec.features;
        let mut c = ListenerUpdate::default();
        if have.name != want.name {
            c.name = Some(want.name.clone());
        }
        if have.connection_limit != want.connection_limit {
            c.connection_limit = Some(want.connection_limit);
        }
        if f.allowed_cidrs && !same_sources(&have.allowed_cidrs, &want.allowed_cidrs) {
            c.allowed_cidrs = Some(want.allowed_cidrs.clone());
        }
        if have.insert_headers != want.insert_headers {
            c.insert_headers = Some(want.insert_headers.clone());
        }
        if f.timeouts && want.timeouts != Timeouts::default() {
            use crate::desired::{
                DEFAULT_TIMEOUT_CLIENT_DATA as CD, DEFAULT_TIMEOUT_MEMBER_CONNECT as MC,
                DEFAULT_TIMEOUT_MEMBER_DATA as MD, DEFAULT_TIMEOUT_TCP_INSPECT as TI,
            };
            // A cloud that leaves a timeout out of its answer applies the default.
            let same = |h: Option<u64>, w: Option<u64>, default: u64| {
                w.is_none() || h.unwrap_or(default) == w.unwrap_or(default)
            };
            let w = want.timeouts;
            if !(same(have.timeout_client_data, w.client_data, CD)
                && same(have.timeout_member_connect, w.member_connect, MC)
                && same(have.timeout_member_data, w.member_data, MD)
                && same(have.timeout_tcp_inspect, w.tcp_inspect, TI))
            {
                c.timeouts = Some(want.timeouts);
            }
        }
        if want.default_tls_container_ref.is_some()
            && have.default_tls_container_ref != want.default_tls_container_ref
        {
            c.default_tls_container_ref = want.default_tls_container_ref.clone();
        }
        if f.tags && want.tags.iter().any(|t| !have.tags.contains(t)) {
            let mut all = have.tags.clone();
            all.extend(want.tags.iter().filter(|t| !have.tags.contains(t)).cloned());
            c.tags = Some(all);
        }
        if c != ListenerUpdate::default() {
            self.octavia.push(Step::UpdateListener {
                listener: have.id.clone(),
                changes: c,
            });
        }
        match &have.pool {
            None => self.create_pool(lb, &Ref::Id(have.id.clone()), &want.pool),
            Some(p) if p.protocol != want.pool.protocol => {
                self.octavia.push(Step::DeletePool { pool: p.id.clone() });
                self.create_pool(lb, &Ref::Id(have.id.clone()), &want.pool);
            }
            Some(p) => self.update_pool(p, &want.pool),
        }
    }

    fn update_pool(&mut self, have: &ObservedPool, want: &PoolSpec) {
        let mut c = PoolUpdate::default();
        if have.name != want.name {
            c.name = Some(want.name.clone());
        }
        if have.lb_algorithm != want.lb_algorithm {
            c.lb_algorithm = Some(want.lb_algorithm);
        }
        let kind = |p: &Option<Persistence>| p.as_ref().map(|p| p.kind.clone());
        if kind(&have.session_persistence) != kind(&want.session_persistence) {
            c.session_persistence = Some(want.session_persistence.clone());
        }
        if c != PoolUpdate::default() {
            self.octavia.push(Step::UpdatePool {
                pool: have.id.clone(),
                changes: c,
            });
        }
        self.update_members(have, want);
        self.update_monitor(have, want);
    }

    fn update_members(&mut self, have: &ObservedPool, want: &PoolSpec) {
        let target: &[MemberSpec] = match &want.members {
            Members::Exact(m) => m,
            // Meltdown protection: whatever the pool has stays.
            Members::KeepLastKnown { .. } if !have.members.is_empty() => return,
            Members::KeepLastKnown { fallback } => fallback,
        };
        let key = |addr: &str, port: u16| (normalize_ip(addr), port);
        let have_by_key: BTreeMap<_, _> = have
            .members
            .iter()
            .map(|m| (key(&m.address, m.protocol_port), m))
            .collect();
        let want_by_key: BTreeMap<_, _> = target
            .iter()
            .map(|m| (key(&m.address.to_string(), m.protocol_port), m))
            .collect();
        let same = |h: &crate::observed::ObservedMember, w: &MemberSpec| {
            h.name == w.name
                && (w.subnet_id.is_none() || h.subnet_id == w.subnet_id)
                && h.monitor_port == w.monitor_port
        };
        let changed = have_by_key.len() != want_by_key.len()
            || want_by_key
                .iter()
                .any(|(k, w)| have_by_key.get(k).is_none_or(|h| !same(h, w)));
        if !changed {
            return;
        }
        let pool = Ref::Id(have.id.clone());
        if self.spec.features.batch_member_update {
            self.octavia.push(Step::BatchUpdateMembers {
                pool,
                members: target.to_vec(),
            });
            return;
        }
        for (k, h) in &have_by_key {
            if want_by_key.get(k).is_none_or(|w| !same(h, w)) {
                self.octavia.push(Step::DeleteMember {
                    pool: have.id.clone(),
                    member: h.id.clone(),
                });
            }
        }
        for (k, w) in &want_by_key {
            if have_by_key.get(k).is_none_or(|h| !same(h, w)) {
                self.octavia.push(Step::CreateMember {
                    pool: pool.clone(),
                    member: (*w).clone(),
                });
            }
        }
    }

    fn update_monitor(&mut self, have: &ObservedPool, want: &PoolSpec) {
        let pool = Ref::Id(have.id.clone());
        match (&have.monitor, &want.monitor) {
            (None, None) => {}
            (Some(h), None) => self.octavia.push(Step::DeleteMonitor {
                monitor: h.id.clone(),
            }),
            (None, Some(w)) => self.octavia.push(Step::CreateMonitor {
                pool,
                monitor: w.clone(),
            }),
            (Some(h), Some(w)) if h.kind != w.kind => {
                self.octavia.push(Step::DeleteMonitor {
                    monitor: h.id.clone(),
                });
                self.octavia.push(Step::CreateMonitor {
                    pool,
                    monitor: w.clone(),
                });
            }
            (Some(h), Some(w)) => {
                let changed = |h: &Option<String>, w: &Option<String>| {
                    w.as_ref().filter(|w| h.as_ref() != Some(*w)).cloned()
                };
                let c = MonitorUpdate {
                    name: (h.name != w.name).then(|| w.name.clone()),
                    delay: (h.delay != w.delay).then_some(w.delay),
                    timeout: (h.timeout != w.timeout).then_some(w.timeout),
                    max_retries: (h.max_retries != w.max_retries).then_some(w.max_retries),
                    max_retries_down: (h.max_retries_down != w.max_retries_down)
                        .then_some(w.max_retries_down),
                    http_method: changed(&h.http_method, &w.http_method),
                    url_path: changed(&h.url_path, &w.url_path),
                    expected_codes: changed(&h.expected_codes, &w.expected_codes),
                };
                if c != MonitorUpdate::default() {
                    self.octavia.push(Step::UpdateMonitor {
                        monitor: h.id.clone(),
                        changes: c,
                    });
                }
            }
        }
    }

    /// Orders and gates the steps and computes the status.
    fn finish(mut self, observed: &Observed, lb: Option<&ObservedLoadBalancer>) -> Plan {
        let pending = observed
            .load_balancer
            .as_ref()
            .is_some_and(|l| l.provisioning_status.is_pending());
        if !self.plan.invalid.is_empty() {
            self.plan.status = None;
            return self.plan;
        }
        let mut locked = pending;
        let mut steps = Vec::new();
        let (bookkeeping, neutron): (Vec<Step>, Vec<Step>) =
            self.neutron.drain(..).partition(Step::is_bookkeeping);
        for step in neutron {
            steps.push(PlannedStep {
                gate: Gate::Now,
                step,
            });
        }
        let mut after_create = std::mem::take(&mut self.after_create);
        for step in self.octavia.drain(..) {
            let is_create = matches!(step, Step::CreateLoadBalancer { .. });
            let gate = if locked { Gate::WhenActive } else { Gate::Now };
            steps.push(PlannedStep { gate, step });
            // Every Octavia mutation takes the lock (after a delete: the create must wait
            // until the old LB is gone).
            locked = true;
            if is_create {
                for s in after_create.drain(..) {
                    steps.push(PlannedStep {
                        gate: Gate::Now,
                        step: s,
                    });
                }
            }
        }
        steps.extend(bookkeeping.into_iter().map(|step| PlannedStep {
            gate: Gate::AfterPublish,
            step,
        }));
        self.plan.steps = steps;
        self.plan.status = lb.and_then(|lb| status(self.spec, observed, lb));
        self.plan
    }
}

/// Why this LB must not be touched for this Service, if so.
fn ownership_problem(
    spec: &LoadBalancerSpec,
    lb: &ObservedLoadBalancer,
    observed: &Observed,
) -> Option<Invalid> {
    let field = if spec.existing_lb_id.is_some() {
        crate::annotations::LOAD_BALANCER_ID
    } else {
        "load balancer"
    };
    if let Some(uid) = naming::cluster_uid_of(&lb.tags) {
        if naming::cluster_tag(uid) != spec.cluster_tag {
            return Some(Invalid {
                field: field.to_string(),
                value: lb.id.clone(),
                accepted: format!("tagged {}{uid}", naming::CLUSTER_TAG_PREFIX),
                reason: InvalidReason::ForeignCluster,
            });
        }
    }
    if let (Some(mine), Some(theirs)) = (&observed.project_id, &lb.project_id) {
        if mine != theirs {
            return Some(Invalid::conflict(
                field,
                lb.id.clone(),
                format!("a load balancer of project {mine} (it is in {theirs})"),
            ));
        }
    }
    if lb.name == spec.name {
        return None;
    }
    // Joining needs the owner's consent (its Service's `shared-with`, or the tag put by hand on
    // a load balancer made outside Kubernetes): otherwise any namespace could attach listeners
    // to any load balancer of the project.
    if !naming::allows_joining(&lb.tags, &spec.service.namespace) {
        return Some(Invalid::conflict(
            crate::annotations::LOAD_BALANCER_ID,
            lb.id.clone(),
            format!(
                "a load balancer whose owner lets namespace {ns:?} join: the Service that owns it \
                 needs the annotation {key}: \"{ns}\" (or \"*\"); on a load balancer made outside \
                 Kubernetes, the tag {tag}",
                ns = spec.service.namespace,
                key = crate::annotations::SHARED_WITH,
                tag = naming::shared_with_tag(&spec.service.namespace),
            ),
        ));
    }
    // A shared LB: room for us, and no port of ours already taken by someone else's listener.
    let sharing: BTreeSet<&str> = lb
        .tags
        .iter()
        .filter(|t| t.starts_with(naming::LB_NAME_PREFIX))
        .map(String::as_str)
        .chain(std::iter::once(lb.name.as_str()).filter(|n| n.starts_with(naming::LB_NAME_PREFIX)))
        .collect();
    if !sharing.contains(spec.name.as_str()) && sharing.len() as u32 >= spec.max_shared_lb {
        return Some(Invalid::conflict(
            crate::annotations::LOAD_BALANCER_ID,
            lb.id.clone(),
            format!(
                "a load balancer shared by fewer than {} Services ([LoadBalancer] max-shared-lb)",
                spec.max_shared_lb
            ),
        ));
    }
    for want in &spec.listeners {
        if let Some(other) = lb.listeners.iter().find(|l| {
            naming::child_index("listener", &l.name, &spec.name).is_none()
                && l.protocol_port == want.port
                && l4(l.protocol) == l4(want.protocol)
        }) {
            return Some(Invalid::conflict(
                format!("spec.ports[{}].port", want.index),
                want.port.to_string(),
                format!(
                    "a port not used on shared load balancer {} (listener {} has it)",
                    lb.id, other.name
                ),
            ));
        }
    }
    None
}

/// Settings Octavia cannot change in place (SPEC §3): flavor, AZ, VIP network/subnet/port.
fn immutable_changes(spec: &LoadBalancerSpec, lb: &ObservedLoadBalancer) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut check = |field: &str, want: &Option<String>, have: &Option<String>| {
        if let Some(w) = want {
            if have.as_ref() != Some(w) {
                out.push(Refusal {
                    field: field.to_string(),
                    observed: have.clone().unwrap_or_default(),
                    desired: w.clone(),
                });
            }
        }
    };
    check("VIP port", &spec.vip.port_id, &lb.vip_port_id);
    check("VIP subnet", &spec.vip.subnet_id, &lb.vip_subnet_id);
    if spec.vip.subnet_id.is_none() {
        check("VIP network", &spec.vip.network_id, &lb.vip_network_id);
    }
    check("flavor", &spec.flavor_id, &lb.flavor_id);
    check(
        "availability zone",
        &spec.availability_zone,
        &lb.availability_zone,
    );
    if let Some(addr) = spec.vip.address {
        check(
            "VIP address",
            &Some(addr.to_string()),
            &lb.vip_address.as_deref().map(normalize_ip),
        );
    }
    let want_extra: BTreeSet<&String> = spec.vip.additional_subnet_ids.iter().collect();
    let have_extra: BTreeSet<&String> = lb.additional_vips.iter().map(|v| &v.subnet_id).collect();
    if !want_extra.is_empty() && want_extra != have_extra {
        out.push(Refusal {
            field: "additional VIPs".to_string(),
            observed: have_extra
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
            desired: want_extra
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        });
    }
    out
}

/// `status.loadBalancer.ingress` from what exists; None while an address is missing.
fn status(
    spec: &LoadBalancerSpec,
    observed: &Observed,
    lb: &ObservedLoadBalancer,
) -> Option<LoadBalancerStatus> {
    let mode = Some(spec.status.ip_mode);
    let fip = lb.vip_port_id.as_ref().and_then(|port| {
        observed
            .floating_ips
            .iter()
            .find(|f| f.port_id.as_ref() == Some(port))
            .map(|f| f.floating_ip_address.clone())
    });
    let vips = || -> Vec<String> {
        lb.vip_address
            .iter()
            .cloned()
            .chain(
                lb.additional_vips
                    .iter()
                    .filter_map(|v| v.ip_address.clone()),
            )
            .collect()
    };
    let ingress = match &spec.status.source {
        // Floating IPs are IPv4 only: a dual-stack Service also reports its IPv6 VIPs, which
        // are reachable directly.
        IngressSource::FloatingIp => std::iter::once(fip?)
            .chain(
                lb.additional_vips
                    .iter()
                    .filter_map(|v| v.ip_address.clone())
                    .filter(|ip| ip.contains(':')),
            )
            .map(|ip| Ingress {
                ip: Some(ip),
                hostname: None,
                ip_mode: mode,
            })
            .collect(),
        IngressSource::Vip => {
            let v = vips();
            if v.is_empty() {
                return None;
            }
            v.into_iter()
                .map(|ip| Ingress {
                    ip: Some(ip),
                    hostname: None,
                    ip_mode: mode,
                })
                .collect()
        }
        IngressSource::Hostname(h) => vec![Ingress {
            ip: None,
            hostname: Some(h.clone()),
            ip_mode: None,
        }],
        IngressSource::AddressHostname { suffix, from_fip } => {
            let ip = if *from_fip {
                fip?
            } else {
                lb.vip_address.clone()?
            };
            vec![Ingress {
                ip: None,
                hostname: Some(format!("{ip}.{suffix}")),
                ip_mode: None,
            }]
        }
    };
    Some(LoadBalancerStatus { ingress })
}

/// Which listeners may share a port: Octavia allows one TCP-family and one UDP listener per port.
fn l4(p: ListenerProtocol) -> u8 {
    match p {
        ListenerProtocol::Udp => 1,
        ListenerProtocol::Sctp => 2,
        _ => 0,
    }
}

/// Whether two `allowed_cidrs` lists admit the same clients. Every list that admits
/// everyone is the same: `[]` (no restriction), OCCM's `["0.0.0.0/0"]`, `["::/0"]` — so an
/// LB adopted from OCCM is not rewritten (and locked) for nothing.
fn same_sources(have: &[String], want: &[String]) -> bool {
    let admits_all = |v: &[String]| {
        v.is_empty()
            || v.iter().any(|c| {
                c.trim()
                    .parse::<ipnet::IpNet>()
                    .is_ok_and(|n| n.prefix_len() == 0)
            })
    };
    let canonical = |v: &[String]| {
        let mut out: Vec<String> = v
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<ipnet::IpNet>()
                    .map(|n| n.trunc().to_string())
                    .unwrap_or_else(|_| c.trim().to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    };
    (admits_all(have) && admits_all(want)) || canonical(have) == canonical(want)
}
