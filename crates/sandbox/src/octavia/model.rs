//! The load-balancer object store: objects as attribute maps plus their links, the PENDING_*
//! lock, provisioning completion and operating-status roll-up. It must not know HTTP nor
//! Neutron (VIP ports are handled by the caller).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::error::LbError;
use super::schema;
use super::Kind;

pub const ACTIVE: &str = "ACTIVE";
pub const ERROR: &str = "ERROR";
pub const PENDING_CREATE: &str = "PENDING_CREATE";
pub const PENDING_UPDATE: &str = "PENDING_UPDATE";
pub const PENDING_DELETE: &str = "PENDING_DELETE";

pub const ONLINE: &str = "ONLINE";
pub const OFFLINE: &str = "OFFLINE";
pub const DEGRADED: &str = "DEGRADED";
pub const NO_MONITOR: &str = "NO_MONITOR";

/// One load-balancer object. `attrs` holds every stored API attribute (including `id`,
/// statuses and timestamps); links to other objects are kept beside them and rendered as the
/// API's `[{"id": …}]` lists.
#[derive(Clone, Debug)]
pub struct Obj {
    pub kind: Kind,
    pub id: String,
    /// Creation order: the default sort of lists.
    pub seq: u64,
    /// The load balancer this object belongs to (itself for a load balancer).
    pub lb_id: String,
    /// The pool of a member or health monitor.
    pub pool_id: Option<String>,
    /// Whether the VIP port was created by us and goes with the load balancer.
    pub owns_vip_port: bool,
    pub attrs: Map<String, Value>,
}

impl Obj {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }
    pub fn provisioning(&self) -> &str {
        self.str("provisioning_status").unwrap_or(ACTIVE)
    }
    pub fn project(&self) -> &str {
        self.str("project_id").unwrap_or_default()
    }
    pub fn admin_up(&self) -> bool {
        self.attrs
            .get("admin_state_up")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
    pub fn is_pending(&self) -> bool {
        self.provisioning().starts_with("PENDING_")
    }
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.attrs.insert(key.to_string(), value.into());
    }
}

/// What a health monitor last concluded about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Online,
    Error,
}

/// Traffic counters of one listener, fed by the data plane.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub active_connections: u64,
    pub total_connections: u64,
    pub request_errors: u64,
}

impl Stats {
    pub fn to_json(self) -> Value {
        json!({
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "active_connections": self.active_connections,
            "total_connections": self.total_connections,
            "request_errors": self.request_errors,
        })
    }
    fn add(&mut self, other: Stats) {
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.active_connections += other.active_connections;
        self.total_connections += other.total_connections;
        self.request_errors += other.request_errors;
    }
}

/// A VIP port that must be deleted because its load balancer is gone.
#[derive(Debug, Clone)]
pub struct ReleasedPort(pub String);

/// All load-balancer objects of the cloud (Octavia or Neutron LBaaS v2 — one model).
#[derive(Debug, Default)]
pub struct OctaviaState {
    objs: HashMap<String, Obj>,
    next_seq: u64,
    /// Member id → latest health-monitor verdict.
    pub health: HashMap<String, Health>,
    /// Listener id → counters.
    pub stats: HashMap<String, Stats>,
    /// Pool id → round-robin cursor of the data plane.
    pub cursors: HashMap<String, usize>,
}

pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl OctaviaState {
    pub fn get(&self, id: &str) -> Option<&Obj> {
        self.objs.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Obj> {
        self.objs.get_mut(id)
    }

    /// The object `id` of `kind`, or Octavia's 404.
    pub fn find(&self, kind: Kind, id: &str) -> Result<&Obj, LbError> {
        self.objs
            .get(id)
            .filter(|o| o.kind == kind)
            .ok_or_else(|| LbError::not_found(kind.display(), id))
    }

    /// All objects of `kind` in creation order.
    pub fn all(&self, kind: Kind) -> Vec<&Obj> {
        let mut v: Vec<&Obj> = self.objs.values().filter(|o| o.kind == kind).collect();
        v.sort_by_key(|o| o.seq);
        v
    }

    pub fn listeners_of(&self, lb_id: &str) -> Vec<&Obj> {
        self.all(Kind::Listener)
            .into_iter()
            .filter(|o| o.lb_id == lb_id)
            .collect()
    }
    pub fn pools_of(&self, lb_id: &str) -> Vec<&Obj> {
        self.all(Kind::Pool)
            .into_iter()
            .filter(|o| o.lb_id == lb_id)
            .collect()
    }
    pub fn members_of(&self, pool_id: &str) -> Vec<&Obj> {
        self.all(Kind::Member)
            .into_iter()
            .filter(|o| o.pool_id.as_deref() == Some(pool_id))
            .collect()
    }
    pub fn monitor_of(&self, pool_id: &str) -> Option<&Obj> {
        self.objs
            .values()
            .find(|o| o.kind == Kind::HealthMonitor && o.pool_id.as_deref() == Some(pool_id))
    }

    /// A pool and the listeners using it as their default pool: what a member or monitor
    /// change puts into PENDING_UPDATE besides the load balancer, as Octavia does.
    pub fn pool_chain(&self, pool_id: &str) -> Vec<String> {
        let mut chain = vec![pool_id.to_string()];
        if let Some(pool) = self.objs.get(pool_id) {
            chain.extend(
                self.listeners_of(&pool.lb_id)
                    .into_iter()
                    .filter(|l| l.str("default_pool_id") == Some(pool_id))
                    .map(|l| l.id.clone()),
            );
        }
        chain
    }

    /// Number of objects of `kind` a project holds (quota accounting).
    pub fn count(&self, kind: Kind, project: &str) -> usize {
        self.objs
            .values()
            .filter(|o| o.kind == kind && o.project() == project)
            .count()
    }

    /// Stores a new object in PENDING_CREATE / OFFLINE (a member of an unmonitored pool:
    /// NO_MONITOR).
    pub fn insert(
        &mut self,
        kind: Kind,
        id: String,
        lb_id: String,
        pool_id: Option<String>,
        project: &str,
        mut attrs: Map<String, Value>,
    ) -> &Obj {
        self.next_seq += 1;
        let now = now();
        attrs.insert("id".into(), Value::from(id.clone()));
        attrs.insert("project_id".into(), Value::from(project));
        attrs.insert("provisioning_status".into(), Value::from(PENDING_CREATE));
        // Octavia answers a new member of a pool without health monitor NO_MONITOR at once
        // (single, batch and fully-populated creates alike); everything else starts OFFLINE.
        let unmonitored = kind == Kind::Member
            && pool_id
                .as_deref()
                .is_some_and(|p| self.monitor_of(p).is_none());
        let initial = if unmonitored { NO_MONITOR } else { OFFLINE };
        attrs.insert("operating_status".into(), Value::from(initial));
        attrs.insert("created_at".into(), Value::from(now));
        attrs.insert("updated_at".into(), Value::Null);
        let obj = Obj {
            kind,
            id: id.clone(),
            seq: self.next_seq,
            lb_id,
            pool_id,
            owns_vip_port: false,
            attrs,
        };
        self.objs.insert(id.clone(), obj);
        &self.objs[&id]
    }

    /// Octavia's lock for child mutations: the parent load balancer must be ACTIVE.
    pub fn check_child_mutable(&self, lb_id: &str) -> Result<(), LbError> {
        let lb = self.find(Kind::LoadBalancer, lb_id)?;
        if lb.provisioning() != ACTIVE {
            return Err(LbError::immutable(Kind::LoadBalancer.display(), lb_id));
        }
        Ok(())
    }

    /// Octavia's lock for mutations of the load balancer itself; deleting an ERROR one is
    /// allowed so that broken load balancers can be cleaned up.
    pub fn check_lb_mutable(&self, lb_id: &str, deleting: bool) -> Result<(), LbError> {
        let lb = self.find(Kind::LoadBalancer, lb_id)?;
        let state = lb.provisioning();
        if state == ACTIVE || (deleting && state == ERROR) {
            Ok(())
        } else {
            Err(LbError::pending_state(state, lb_id))
        }
    }

    /// Puts `id` into `status` and stamps `updated_at` (creates keep it null).
    pub fn mark(&mut self, id: &str, status: &str) {
        if let Some(o) = self.objs.get_mut(id) {
            o.set("provisioning_status", status);
            if status != PENDING_CREATE {
                o.set("updated_at", now());
            }
        }
    }

    /// Completes every PENDING_* object of a load balancer, as Octavia's worker would:
    /// creates and updates become ACTIVE (or ERROR when `fail_create` and the load balancer
    /// itself was being created), deletes disappear. Returns the VIP ports to release.
    pub fn finalize(&mut self, lb_id: &str, fail_create: bool) -> Vec<ReleasedPort> {
        let mut released = Vec::new();
        let lb_creating = self
            .objs
            .get(lb_id)
            .is_some_and(|lb| lb.provisioning() == PENDING_CREATE);
        let lb_deleting = self
            .objs
            .get(lb_id)
            .is_some_and(|lb| lb.provisioning() == PENDING_DELETE);
        if lb_deleting {
            let ids: Vec<String> = self
                .objs
                .values()
                .filter(|o| o.lb_id == lb_id)
                .map(|o| o.id.clone())
                .collect();
            for id in ids {
                if let Some(o) = self.remove(&id) {
                    if o.kind == Kind::LoadBalancer && o.owns_vip_port {
                        if let Some(port) = o.str("vip_port_id") {
                            released.push(ReleasedPort(port.to_string()));
                        }
                    }
                }
            }
            return released;
        }
        let ids: Vec<String> = self
            .objs
            .values()
            .filter(|o| o.lb_id == lb_id && o.is_pending())
            .map(|o| o.id.clone())
            .collect();
        let mut deleted = Vec::new();
        for id in ids {
            let Some(o) = self.objs.get_mut(&id) else {
                continue;
            };
            match o.provisioning() {
                PENDING_DELETE => deleted.push(id),
                _ if lb_creating && fail_create => o.set("provisioning_status", ERROR),
                _ => o.set("provisioning_status", ACTIVE),
            }
            // The worker's status change is a database update: Octavia stamps updated_at.
            if o.provisioning() != PENDING_DELETE {
                o.set("updated_at", now());
            }
        }
        for id in deleted {
            self.delete_tree(&id);
        }
        self.refresh_operating(lb_id);
        released
    }

    fn remove(&mut self, id: &str) -> Option<Obj> {
        let o = self.objs.remove(id)?;
        self.health.remove(id);
        self.stats.remove(id);
        self.cursors.remove(id);
        Some(o)
    }

    /// Removes an object with what cannot live without it: a pool takes its members and
    /// monitor and is unset as listeners' default pool; a listener's pool stays.
    fn delete_tree(&mut self, id: &str) {
        let Some(o) = self.remove(id) else { return };
        if o.kind == Kind::Pool {
            let children: Vec<String> = self
                .objs
                .values()
                .filter(|c| c.pool_id.as_deref() == Some(id))
                .map(|c| c.id.clone())
                .collect();
            for c in children {
                self.remove(&c);
            }
            for l in self.objs.values_mut().filter(|l| l.kind == Kind::Listener) {
                if l.str("default_pool_id") == Some(id) {
                    l.set("default_pool_id", Value::Null);
                }
            }
        }
    }

    /// Recomputes operating_status bottom-up for one load balancer from admin states and
    /// the health monitors' verdicts.
    pub fn refresh_operating(&mut self, lb_id: &str) {
        let Some(lb) = self.objs.get(lb_id) else {
            return;
        };
        let lb_admin = lb.admin_up();
        let lb_live = !matches!(lb.provisioning(), PENDING_CREATE | ERROR);
        let mut member_status: Vec<(String, &'static str)> = Vec::new();
        let mut pool_status: BTreeMap<String, &'static str> = BTreeMap::new();
        for pool in self.pools_of(lb_id) {
            let monitor = self
                .monitor_of(&pool.id)
                .filter(|m| m.admin_up() && !m.is_pending());
            let members = self.members_of(&pool.id);
            let mut online = 0;
            let mut errored = 0;
            for m in &members {
                let status = if !m.admin_up() || !lb_live || m.provisioning() == PENDING_CREATE {
                    OFFLINE
                } else if monitor.is_some() {
                    match self.health.get(&m.id) {
                        Some(Health::Online) => ONLINE,
                        Some(Health::Error) => ERROR,
                        None => OFFLINE,
                    }
                } else {
                    NO_MONITOR
                };
                match status {
                    ONLINE | NO_MONITOR => online += 1,
                    ERROR => errored += 1,
                    _ => {}
                }
                member_status.push((m.id.clone(), status));
            }
            let status = if !pool.admin_up() || !lb_live || pool.provisioning() == PENDING_CREATE {
                OFFLINE
            } else if errored > 0 && online == 0 {
                ERROR
            } else if errored > 0 {
                DEGRADED
            } else {
                ONLINE
            };
            pool_status.insert(pool.id.clone(), status);
        }
        let mut listener_status = Vec::new();
        let mut degraded = pool_status.values().any(|s| matches!(*s, ERROR | DEGRADED));
        for l in self.listeners_of(lb_id) {
            let pool = l
                .str("default_pool_id")
                .and_then(|p| pool_status.get(p))
                .copied();
            let status = if !l.admin_up() || !lb_live || l.provisioning() == PENDING_CREATE {
                OFFLINE
            } else if matches!(pool, Some(ERROR) | Some(DEGRADED)) {
                degraded = true;
                DEGRADED
            } else {
                ONLINE
            };
            listener_status.push((l.id.clone(), status));
        }
        let monitors: Vec<(String, &'static str)> = self
            .objs
            .values()
            .filter(|o| o.kind == Kind::HealthMonitor && o.lb_id == lb_id)
            .map(|m| {
                (
                    m.id.clone(),
                    if m.admin_up() && lb_live {
                        ONLINE
                    } else {
                        OFFLINE
                    },
                )
            })
            .collect();
        let lb_status = if !lb_admin || !lb_live {
            OFFLINE
        } else if degraded {
            DEGRADED
        } else {
            ONLINE
        };
        let updates = member_status
            .into_iter()
            .chain(pool_status)
            .chain(listener_status)
            .chain(monitors)
            .chain(std::iter::once((lb_id.to_string(), lb_status)));
        for (id, status) in updates {
            if let Some(o) = self.objs.get_mut(&id) {
                o.set("operating_status", status);
            }
        }
    }

    /// The API representation of `o` at API minor `minor`, with links to related objects.
    pub fn render(&self, o: &Obj, minor: u32, neutron: bool) -> Value {
        let mut out = Map::new();
        for (k, v) in &o.attrs {
            if schema::visible(o.kind, k, minor) {
                out.insert(k.clone(), v.clone());
            }
        }
        let ids = |v: Vec<&Obj>| -> Value { v.into_iter().map(|c| json!({"id": c.id})).collect() };
        match o.kind {
            Kind::LoadBalancer => {
                out.insert("listeners".into(), ids(self.listeners_of(&o.id)));
                out.insert("pools".into(), ids(self.pools_of(&o.id)));
            }
            Kind::Listener => {
                out.insert("loadbalancers".into(), json!([{"id": o.lb_id}]));
                out.insert("l7policies".into(), json!([]));
            }
            Kind::Pool => {
                out.insert("loadbalancers".into(), json!([{"id": o.lb_id}]));
                let listeners: Vec<&Obj> = self
                    .listeners_of(&o.lb_id)
                    .into_iter()
                    .filter(|l| l.str("default_pool_id") == Some(o.id.as_str()))
                    .collect();
                out.insert("listeners".into(), ids(listeners));
                out.insert("members".into(), ids(self.members_of(&o.id)));
                // Octavia leaves the key out while the pool has no monitor; Neutron LBaaS v2
                // shows null.
                match self.monitor_of(&o.id) {
                    Some(m) => {
                        out.insert("healthmonitor_id".into(), Value::from(m.id.clone()));
                    }
                    None if neutron => {
                        out.insert("healthmonitor_id".into(), Value::Null);
                    }
                    None => {}
                }
            }
            Kind::Member => {
                if neutron {
                    out.insert("pool_id".into(), json!(o.pool_id));
                }
            }
            Kind::HealthMonitor => {
                out.insert("pools".into(), json!([{"id": o.pool_id}]));
            }
        }
        // Octavia still returns the deprecated tenant_id beside project_id.
        out.insert("tenant_id".into(), Value::from(o.project()));
        Value::Object(out)
    }

    /// The `GET /loadbalancers/{id}/status` tree.
    pub fn status_tree(&self, lb: &Obj) -> Value {
        let brief = |o: &Obj| -> Map<String, Value> {
            let mut m = Map::new();
            for k in ["id", "name", "provisioning_status", "operating_status"] {
                m.insert(k.into(), o.attrs.get(k).cloned().unwrap_or(Value::Null));
            }
            m
        };
        let mut listeners = Vec::new();
        for l in self.listeners_of(&lb.id) {
            let mut lm = brief(l);
            let mut pools = Vec::new();
            if let Some(pool) = l.str("default_pool_id").and_then(|p| self.get(p)) {
                let mut pm = brief(pool);
                // Octavia shows the key with null for a pool without monitor.
                let hm = self.monitor_of(&pool.id).map(|hm| {
                    let mut hmm = brief(hm);
                    hmm.insert(
                        "type".into(),
                        hm.attrs.get("type").cloned().unwrap_or(Value::Null),
                    );
                    Value::Object(hmm)
                });
                pm.insert("health_monitor".into(), hm.unwrap_or(Value::Null));
                let members: Vec<Value> = self
                    .members_of(&pool.id)
                    .into_iter()
                    .map(|m| {
                        let mut mm = brief(m);
                        for k in ["address", "protocol_port"] {
                            mm.insert(k.into(), m.attrs.get(k).cloned().unwrap_or(Value::Null));
                        }
                        Value::Object(mm)
                    })
                    .collect();
                pm.insert("members".into(), Value::Array(members));
                pools.push(Value::Object(pm));
            }
            lm.insert("pools".into(), Value::Array(pools));
            listeners.push(Value::Object(lm));
        }
        let mut lbm = brief(lb);
        lbm.insert("listeners".into(), Value::Array(listeners));
        json!({"statuses": {"loadbalancer": lbm}})
    }

    /// Counters of a listener, or the sum over a load balancer's listeners.
    pub fn stats_of(&self, o: &Obj) -> Stats {
        match o.kind {
            Kind::Listener => self.stats.get(&o.id).copied().unwrap_or_default(),
            _ => {
                let mut total = Stats::default();
                for l in self.listeners_of(&o.id) {
                    total.add(self.stats.get(&l.id).copied().unwrap_or_default());
                }
                total
            }
        }
    }

    /// Ids of all load balancers (data plane and monitors iterate over them).
    pub fn lb_ids(&self) -> Vec<String> {
        self.all(Kind::LoadBalancer)
            .into_iter()
            .map(|o| o.id.clone())
            .collect()
    }
}
