//! `apply`: a pure simulator of what the cloud looks like after a plan's steps have all run
//! (and the LB has settled to ACTIVE). Used by the `plan` command's dry run and by the
//! property tests (planning again after `apply` must yield nothing). Ids of created objects
//! are derived from their names, addresses from a documentation range, so results are
//! deterministic. Must not be mistaken for a cloud: it models only what plans touch.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::observed::*;
use crate::plan::{Plan, PortRef, Ref, Step};
use crate::spec::{ListenerSpec, MemberSpec, MonitorSpec, Timeouts};

/// `observed` after every step of `plan`.
pub fn apply(plan: &Plan, observed: &Observed) -> Observed {
    let mut sim = Sim {
        o: observed.clone(),
        named: BTreeMap::new(),
    };
    for s in &plan.steps {
        sim.step(&s.step);
    }
    if let Some(lb) = sim.o.load_balancer.as_mut() {
        if lb.provisioning_status.is_pending()
            && lb.provisioning_status != ProvisioningStatus::PendingDelete
        {
            lb.provisioning_status = ProvisioningStatus::Active;
        }
    }
    sim.o
}

struct Sim {
    o: Observed,
    /// Objects created during this plan, by name (monitors of v1 by key).
    named: BTreeMap<String, String>,
}

fn sim_id(kind: &str, name: &str) -> String {
    format!("sim-{kind}-{name}")
}

impl Sim {
    /// `sim-<kind>-<name>`, suffixed while an existing object has that id (a replaced
    /// listener keeps its name but gets a new id, as in a real cloud).
    fn fresh(&self, kind: &str, name: &str) -> String {
        let mut ids = std::collections::BTreeSet::new();
        if let Some(lb) = &self.o.load_balancer {
            ids.insert(lb.id.clone());
            for l in &lb.listeners {
                ids.insert(l.id.clone());
                if let Some(p) = &l.pool {
                    ids.insert(p.id.clone());
                    ids.extend(p.monitor.iter().map(|m| m.id.clone()));
                }
            }
        }
        let base = sim_id(kind, name);
        if !ids.contains(&base) {
            return base;
        }
        (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|id| !ids.contains(id))
            .unwrap_or(base)
    }

    fn resolve(&self, r: &Ref) -> String {
        match r {
            Ref::Id(id) => id.clone(),
            Ref::Named(n) => self.named.get(n).cloned().unwrap_or_else(|| n.clone()),
        }
    }

    fn port(&self, p: &PortRef) -> Option<String> {
        match p {
            PortRef::Id(id) => Some(id.clone()),
            PortRef::VipOf(lb) => {
                let id = self.resolve(lb);
                if let Some(lb) = self.o.load_balancer.as_ref().filter(|l| l.id == id) {
                    return lb.vip_port_id.clone();
                }
                self.o
                    .v1
                    .as_ref()
                    .and_then(|v| v.vip.as_ref())
                    .filter(|v| v.id == id)
                    .map(|v| v.port_id.clone())
            }
        }
    }

    fn lb_mut(&mut self) -> Option<&mut ObservedLoadBalancer> {
        self.o.load_balancer.as_mut()
    }

    fn listener_mut(&mut self, id: &str) -> Option<&mut ObservedListener> {
        self.lb_mut()?.listeners.iter_mut().find(|l| l.id == id)
    }

    fn pool_mut(&mut self, id: &str) -> Option<&mut ObservedPool> {
        self.lb_mut()?
            .listeners
            .iter_mut()
            .filter_map(|l| l.pool.as_mut())
            .find(|p| p.id == id)
    }

    fn next_fip_address(&self) -> String {
        let used: Vec<&String> = self
            .o
            .floating_ips
            .iter()
            .map(|f| &f.floating_ip_address)
            .collect();
        (10..250)
            .map(|n| format!("203.0.113.{n}"))
            .find(|a| !used.contains(&a))
            .unwrap_or_else(|| "203.0.113.250".to_string())
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::CreateLoadBalancer {
                name,
                description,
                tags,
                vip,
                provider,
                flavor_id,
                availability_zone,
                listeners,
            } => {
                let id = sim_id("lb", name);
                self.named.insert(name.clone(), id.clone());
                let address = vip
                    .address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "10.0.0.100".to_string());
                let mut lb = ObservedLoadBalancer {
                    id: id.clone(),
                    name: name.clone(),
                    description: description.clone(),
                    tags: tags.clone(),
                    project_id: self.o.project_id.clone(),
                    provisioning_status: ProvisioningStatus::Active,
                    operating_status: "ONLINE".to_string(),
                    vip_address: Some(address),
                    vip_port_id: Some(vip.port_id.clone().unwrap_or_else(|| sim_id("port", name))),
                    vip_subnet_id: vip
                        .subnet_id
                        .clone()
                        .or_else(|| Some("sim-subnet".to_string())),
                    vip_network_id: vip
                        .network_id
                        .clone()
                        .or_else(|| Some("sim-network".to_string())),
                    additional_vips: vip
                        .additional_subnet_ids
                        .iter()
                        .map(|s| ObservedAdditionalVip {
                            subnet_id: s.clone(),
                            ip_address: Some("fd00::100".to_string()),
                        })
                        .collect(),
                    flavor_id: flavor_id.clone(),
                    availability_zone: availability_zone.clone(),
                    provider: provider.clone(),
                    listeners: Vec::new(),
                };
                lb.listeners = listeners
                    .iter()
                    .map(|l| full_listener(l, &mut self.named))
                    .collect();
                self.o.load_balancer = Some(lb);
            }
            Step::UpdateLoadBalancer {
                lb,
                name,
                description,
                tags,
            } => {
                if let Some(l) = self.lb_mut().filter(|l| &l.id == lb) {
                    if let Some(n) = name {
                        l.name = n.clone();
                    }
                    if let Some(d) = description {
                        l.description = d.clone();
                    }
                    if let Some(t) = tags {
                        l.tags = t.clone();
                    }
                }
            }
            Step::DeleteLoadBalancer { lb, .. } => {
                if self.o.load_balancer.as_ref().is_some_and(|l| &l.id == lb) {
                    let port = self
                        .o
                        .load_balancer
                        .as_ref()
                        .and_then(|l| l.vip_port_id.clone());
                    self.o.load_balancer = None;
                    // Neutron detaches FIPs from a deleted port.
                    for f in self
                        .o
                        .floating_ips
                        .iter_mut()
                        .filter(|f| f.port_id.is_some() && f.port_id == port)
                    {
                        f.port_id = None;
                        f.fixed_ip_address = None;
                    }
                }
            }
            Step::CreateListener {
                lb,
                name,
                protocol,
                port,
                connection_limit,
                allowed_cidrs,
                insert_headers,
                timeouts,
                default_tls_container_ref,
                tags,
            } => {
                let lb_id = self.resolve(lb);
                let id = self.fresh("listener", name);
                self.named.insert(name.clone(), id.clone());
                if let Some(l) = self.lb_mut().filter(|l| l.id == lb_id) {
                    l.listeners.push(ObservedListener {
                        id,
                        name: name.clone(),
                        protocol: *protocol,
                        protocol_port: *port,
                        connection_limit: *connection_limit,
                        allowed_cidrs: allowed_cidrs.clone(),
                        insert_headers: insert_headers.clone(),
                        timeout_client_data: timeouts.client_data,
                        timeout_member_connect: timeouts.member_connect,
                        timeout_member_data: timeouts.member_data,
                        timeout_tcp_inspect: timeouts.tcp_inspect,
                        default_tls_container_ref: default_tls_container_ref.clone(),
                        tags: tags.clone(),
                        pool: None,
                    });
                }
            }
            Step::UpdateListener { listener, changes } => {
                if let Some(l) = self.listener_mut(listener) {
                    if let Some(v) = &changes.name {
                        l.name = v.clone();
                    }
                    if let Some(v) = changes.connection_limit {
                        l.connection_limit = v;
                    }
                    if let Some(v) = &changes.allowed_cidrs {
                        l.allowed_cidrs = v.clone();
                    }
                    if let Some(v) = &changes.insert_headers {
                        l.insert_headers = v.clone();
                    }
                    if let Some(t) = changes.timeouts {
                        set_timeouts(l, t);
                    }
                    if let Some(v) = &changes.default_tls_container_ref {
                        l.default_tls_container_ref = Some(v.clone());
                    }
                    if let Some(v) = &changes.tags {
                        l.tags = v.clone();
                    }
                }
            }
            Step::DeleteListener { listener } => {
                if let Some(lb) = self.lb_mut() {
                    lb.listeners.retain(|l| &l.id != listener);
                }
            }
            Step::CreatePool {
                listener,
                name,
                protocol,
                lb_algorithm,
                session_persistence,
                tags,
                ..
            } => {
                let listener_id = self.resolve(listener);
                let id = self.fresh("pool", name);
                self.named.insert(name.clone(), id.clone());
                if let Some(l) = self.listener_mut(&listener_id) {
                    l.pool = Some(ObservedPool {
                        id,
                        name: name.clone(),
                        protocol: *protocol,
                        lb_algorithm: *lb_algorithm,
                        session_persistence: session_persistence.clone(),
                        tags: tags.clone(),
                        members: Vec::new(),
                        monitor: None,
                    });
                }
            }
            Step::UpdatePool { pool, changes } => {
                if let Some(p) = self.pool_mut(pool) {
                    if let Some(v) = &changes.name {
                        p.name = v.clone();
                    }
                    if let Some(v) = changes.lb_algorithm {
                        p.lb_algorithm = v;
                    }
                    if let Some(v) = &changes.session_persistence {
                        p.session_persistence = v.clone();
                    }
                    if let Some(v) = &changes.tags {
                        p.tags = v.clone();
                    }
                }
            }
            Step::DeletePool { pool } => {
                if let Some(lb) = self.lb_mut() {
                    for l in lb.listeners.iter_mut() {
                        if l.pool.as_ref().is_some_and(|p| &p.id == pool) {
                            l.pool = None;
                        }
                    }
                }
            }
            Step::BatchUpdateMembers { pool, members } => {
                let id = self.resolve(pool);
                let pool_id = id.clone();
                if let Some(p) = self.pool_mut(&id) {
                    p.members = members.iter().map(|m| member(&pool_id, m)).collect();
                }
            }
            Step::CreateMember { pool, member: m } => {
                let id = self.resolve(pool);
                let pool_id = id.clone();
                if let Some(p) = self.pool_mut(&id) {
                    p.members.push(member(&pool_id, m));
                }
            }
            Step::DeleteMember { pool, member } => {
                if let Some(p) = self.pool_mut(pool) {
                    p.members.retain(|m| &m.id != member);
                }
            }
            Step::CreateMonitor { pool, monitor } => {
                let id = self.resolve(pool);
                let mid = self.fresh("monitor", &monitor.name);
                if let Some(p) = self.pool_mut(&id) {
                    let mut m = observed_monitor(monitor);
                    m.id = mid;
                    p.monitor = Some(m);
                }
            }
            Step::UpdateMonitor { monitor, changes } => {
                if let Some(lb) = self.lb_mut() {
                    let mons = lb
                        .listeners
                        .iter_mut()
                        .filter_map(|l| l.pool.as_mut())
                        .filter_map(|p| p.monitor.as_mut());
                    for m in mons.filter(|m| &m.id == monitor) {
                        if let Some(v) = &changes.name {
                            m.name = v.clone();
                        }
                        if let Some(v) = changes.delay {
                            m.delay = v;
                        }
                        if let Some(v) = changes.timeout {
                            m.timeout = v;
                        }
                        if let Some(v) = changes.max_retries {
                            m.max_retries = v;
                        }
                        if let Some(v) = changes.max_retries_down {
                            m.max_retries_down = v;
                        }
                        if let Some(v) = &changes.http_method {
                            m.http_method = Some(v.clone());
                        }
                        if let Some(v) = &changes.url_path {
                            m.url_path = Some(v.clone());
                        }
                        if let Some(v) = &changes.expected_codes {
                            m.expected_codes = Some(v.clone());
                        }
                    }
                }
            }
            Step::DeleteMonitor { monitor } => {
                if let Some(lb) = self.lb_mut() {
                    for p in lb.listeners.iter_mut().filter_map(|l| l.pool.as_mut()) {
                        if p.monitor.as_ref().is_some_and(|m| &m.id == monitor) {
                            p.monitor = None;
                        }
                    }
                }
            }
            Step::CreateFloatingIp {
                network_id,
                address,
                port,
                description,
                ..
            } => {
                let addr = address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| self.next_fip_address());
                let port_id = port.as_ref().and_then(|p| self.port(p));
                self.o.floating_ips.push(ObservedFloatingIp {
                    id: sim_id("fip", &addr),
                    floating_ip_address: addr,
                    floating_network_id: network_id.clone(),
                    port_id,
                    fixed_ip_address: None,
                    description: description.clone(),
                    tags: Vec::new(),
                });
            }
            Step::AssociateFloatingIp { fip, port } => {
                let port_id = self.port(port);
                if let Some(f) = self.o.floating_ips.iter_mut().find(|f| &f.id == fip) {
                    f.port_id = port_id;
                }
            }
            Step::DisassociateFloatingIp { fip } => {
                if let Some(f) = self.o.floating_ips.iter_mut().find(|f| &f.id == fip) {
                    f.port_id = None;
                    f.fixed_ip_address = None;
                }
            }
            Step::DeleteFloatingIp { fip } => self.o.floating_ips.retain(|f| &f.id != fip),
            Step::TagFloatingIp { fip, tag } => {
                // Neutron's tag PUT adds one tag and keeps the others; a second one is a no-op.
                if let Some(f) = self.o.floating_ips.iter_mut().find(|f| &f.id == fip) {
                    if !f.tags.contains(tag) {
                        f.tags.push(tag.clone());
                    }
                }
            }
            Step::CreateSecurityGroup {
                name,
                description,
                tags,
            } => {
                let id = sim_id("sg", name);
                self.named.insert(name.clone(), id.clone());
                self.o.security_group = Some(ObservedSecurityGroup {
                    id,
                    name: name.clone(),
                    description: description.clone(),
                    tags: tags.clone(),
                    revision_number: 1,
                    rules: Vec::new(),
                });
            }
            Step::CreateSecurityGroupRule { group, rule } => {
                let id = self.resolve(group);
                if let Some(g) = self.o.security_group.as_mut().filter(|g| g.id == id) {
                    let rid = format!(
                        "sim-rule-{}-{}-{}-{}",
                        rule.protocol,
                        rule.port,
                        rule.remote_ip_prefix,
                        g.rules.len()
                    );
                    g.rules.push(ObservedRule {
                        id: rid,
                        rule: rule.clone(),
                    });
                    g.revision_number += 1;
                }
            }
            Step::DeleteSecurityGroupRule { rule } => {
                if let Some(g) = self.o.security_group.as_mut() {
                    g.rules.retain(|r| &r.id != rule);
                }
            }
            Step::UpdatePortSecurityGroups {
                port,
                security_groups,
                revision_number,
            } => {
                let groups: Vec<String> = security_groups.iter().map(|g| self.resolve(g)).collect();
                if let Some(p) = self
                    .o
                    .node_ports
                    .iter_mut()
                    .find(|p| &p.id == port && p.revision_number == *revision_number)
                {
                    p.security_groups = groups;
                    p.revision_number += 1;
                }
            }
            Step::DeleteSecurityGroup { group } => {
                if self
                    .o
                    .security_group
                    .as_ref()
                    .is_some_and(|g| &g.id == group)
                {
                    self.o.security_group = None;
                }
            }
            Step::CreateV1Pool {
                name,
                description,
                subnet_id,
                protocol,
                lb_method,
            } => {
                let id = sim_id("v1pool", name);
                self.named.insert(name.clone(), id.clone());
                let v1 = self.o.v1.get_or_insert_with(ObservedV1::default);
                v1.pool = Some(ObservedV1Pool {
                    id,
                    name: name.clone(),
                    description: description.clone(),
                    subnet_id: subnet_id.clone(),
                    protocol: protocol.clone(),
                    lb_method: lb_method.clone(),
                    status: "ACTIVE".to_string(),
                    health_monitors: Vec::new(),
                });
            }
            Step::UpdateV1Pool { pool, lb_method } => {
                if let Some(p) = self
                    .o
                    .v1
                    .as_mut()
                    .and_then(|v| v.pool.as_mut())
                    .filter(|p| &p.id == pool)
                {
                    p.lb_method = lb_method.clone();
                }
            }
            Step::DeleteV1Pool { pool } => {
                if let Some(v1) = self.o.v1.as_mut() {
                    if v1.pool.as_ref().is_some_and(|p| &p.id == pool) {
                        v1.pool = None;
                        v1.members.retain(|m| &m.pool_id != pool);
                    }
                }
            }
            Step::CreateV1Member {
                pool,
                address,
                protocol_port,
            } => {
                let pool_id = self.resolve(pool);
                let v1 = self.o.v1.get_or_insert_with(ObservedV1::default);
                v1.members.push(ObservedV1Member {
                    id: sim_id("v1member", &format!("{address}-{protocol_port}")),
                    pool_id,
                    address: address.to_string(),
                    protocol_port: *protocol_port,
                });
            }
            Step::DeleteV1Member { member } => {
                if let Some(v1) = self.o.v1.as_mut() {
                    v1.members.retain(|m| &m.id != member);
                }
            }
            Step::CreateV1Monitor {
                key,
                kind,
                delay,
                timeout,
                max_retries,
            } => {
                let id = sim_id("v1monitor", key);
                self.named.insert(key.clone(), id.clone());
                let v1 = self.o.v1.get_or_insert_with(ObservedV1::default);
                v1.monitors.push(ObservedV1Monitor {
                    id,
                    kind: kind.clone(),
                    delay: *delay,
                    timeout: *timeout,
                    max_retries: *max_retries,
                });
            }
            Step::AssociateV1Monitor { pool, monitor } => {
                let (pool, monitor) = (self.resolve(pool), self.resolve(monitor));
                if let Some(p) = self
                    .o
                    .v1
                    .as_mut()
                    .and_then(|v| v.pool.as_mut())
                    .filter(|p| p.id == pool)
                {
                    p.health_monitors.push(monitor);
                }
            }
            Step::DisassociateV1Monitor { pool, monitor } => {
                if let Some(p) = self
                    .o
                    .v1
                    .as_mut()
                    .and_then(|v| v.pool.as_mut())
                    .filter(|p| &p.id == pool)
                {
                    p.health_monitors.retain(|m| m != monitor);
                }
            }
            Step::DeleteV1Monitor { monitor } => {
                if let Some(v1) = self.o.v1.as_mut() {
                    v1.monitors.retain(|m| &m.id != monitor);
                }
            }
            Step::CreateV1Vip {
                name,
                description,
                pool,
                subnet_id,
                address,
                protocol,
                protocol_port,
                session_persistence,
                connection_limit,
            } => {
                let pool_id = self.resolve(pool);
                let id = sim_id("v1vip", name);
                self.named.insert(name.clone(), id.clone());
                let v1 = self.o.v1.get_or_insert_with(ObservedV1::default);
                v1.vip = Some(ObservedV1Vip {
                    id,
                    name: name.clone(),
                    description: description.clone(),
                    address: address
                        .map(|a: IpAddr| a.to_string())
                        .unwrap_or_else(|| "10.0.0.100".to_string()),
                    subnet_id: subnet_id.clone(),
                    port_id: sim_id("port", name),
                    protocol_port: *protocol_port,
                    protocol: protocol.clone(),
                    pool_id,
                    session_persistence: session_persistence.clone(),
                    connection_limit: *connection_limit,
                    status: "ACTIVE".to_string(),
                });
            }
            Step::UpdateV1Vip {
                vip,
                session_persistence,
                connection_limit,
            } => {
                if let Some(v) = self
                    .o
                    .v1
                    .as_mut()
                    .and_then(|v| v.vip.as_mut())
                    .filter(|v| &v.id == vip)
                {
                    v.session_persistence = session_persistence.clone();
                    v.connection_limit = *connection_limit;
                }
            }
            Step::DeleteV1Vip { vip } => {
                if let Some(v1) = self.o.v1.as_mut() {
                    if let Some(port) = v1
                        .vip
                        .as_ref()
                        .filter(|v| &v.id == vip)
                        .map(|v| v.port_id.clone())
                    {
                        v1.vip = None;
                        for f in self
                            .o
                            .floating_ips
                            .iter_mut()
                            .filter(|f| f.port_id.as_deref() == Some(port.as_str()))
                        {
                            f.port_id = None;
                        }
                    }
                }
            }
        }
    }
}

fn set_timeouts(l: &mut ObservedListener, t: Timeouts) {
    l.timeout_client_data = t.client_data;
    l.timeout_member_connect = t.member_connect;
    l.timeout_member_data = t.member_data;
    l.timeout_tcp_inspect = t.tcp_inspect;
}

fn full_listener(l: &ListenerSpec, named: &mut BTreeMap<String, String>) -> ObservedListener {
    let id = sim_id("listener", &l.name);
    let pool_id = sim_id("pool", &l.pool.name);
    named.insert(l.name.clone(), id.clone());
    named.insert(l.pool.name.clone(), pool_id.clone());
    let mut out = ObservedListener {
        id,
        name: l.name.clone(),
        protocol: l.protocol,
        protocol_port: l.port,
        connection_limit: l.connection_limit,
        allowed_cidrs: l.allowed_cidrs.clone(),
        insert_headers: l.insert_headers.clone(),
        timeout_client_data: None,
        timeout_member_connect: None,
        timeout_member_data: None,
        timeout_tcp_inspect: None,
        default_tls_container_ref: l.default_tls_container_ref.clone(),
        tags: l.tags.clone(),
        pool: Some(ObservedPool {
            members: l
                .pool
                .members
                .initial()
                .iter()
                .map(|m| member(&pool_id, m))
                .collect(),
            id: pool_id,
            name: l.pool.name.clone(),
            protocol: l.pool.protocol,
            lb_algorithm: l.pool.lb_algorithm,
            session_persistence: l.pool.session_persistence.clone(),
            tags: l.pool.tags.clone(),
            monitor: l.pool.monitor.as_ref().map(observed_monitor),
        }),
    };
    set_timeouts(&mut out, l.timeouts);
    out
}

fn member(pool_id: &str, m: &MemberSpec) -> ObservedMember {
    ObservedMember {
        id: sim_id(
            "member",
            &format!("{pool_id}-{}-{}", m.address, m.protocol_port),
        ),
        name: m.name.clone(),
        address: m.address.to_string(),
        protocol_port: m.protocol_port,
        subnet_id: m.subnet_id.clone(),
        monitor_port: m.monitor_port,
        operating_status: Some("ONLINE".to_string()),
    }
}

fn observed_monitor(m: &MonitorSpec) -> ObservedMonitor {
    ObservedMonitor {
        id: sim_id("monitor", &m.name),
        name: m.name.clone(),
        kind: m.kind,
        delay: m.delay,
        timeout: m.timeout,
        max_retries: m.max_retries,
        max_retries_down: m.max_retries_down,
        http_method: m.http_method.clone(),
        url_path: m.url_path.clone(),
        expected_codes: m.expected_codes.clone(),
    }
}
