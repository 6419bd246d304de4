//! Drift detection at resync (SPEC §4 "Drift") with a constant number of list calls for the
//! whole cluster. After a full observation that found a Service converged, the planner reduces
//! what it saw to a [`CloudPrint`]: one hash per cloud object (load balancer, listeners, pools
//! with their member ids, health monitors, floating IPs, and with `manage-security-groups` the
//! group's rules and which node ports carry it). At every resync one [`Snapshot`] lists those
//! kinds once for the cluster (LBs by the cluster tag, listeners, pools, monitors, floating IPs
//! of the project, tagged security groups, the nodes' ports) and only the Services whose print
//! no longer matches are reconciled. Octavia has no member list across pools, so members are
//! compared through the member-id set every pool carries. Pure: the cloud adapter reduces
//! its listings to the same [`Facts`] and records them in the snapshot. Must not know about
//! Kubernetes or the cloud's API types, and must not decide repairs: a mismatch only says
//! "observe this Service again".

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use model::observed::{
    ObservedFloatingIp, ObservedListener, ObservedLoadBalancer, ObservedMonitor, ObservedPool,
    ObservedSecurityGroup,
};
use model::spec::SecurityGroupRule;
use model::Observed;

/// The kinds of cloud object a print can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    LoadBalancer,
    Listener,
    Pool,
    Monitor,
    FloatingIp,
    SecurityGroup,
    /// `port/group`: whether that port carries that group.
    PortGroup,
}

/// What one Service's last full observation saw, compactly. Opaque to the engine, which only
/// keeps it and hands it back at resync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloudPrint {
    entries: BTreeMap<(Kind, String), u64>,
    /// The LB lacks this cluster's tag (a user's LB shared through `load-balancer-id`, or a
    /// cloud without tags): the resync must list load balancers without the tag filter.
    untagged_lb: bool,
    /// The print names security-group facts: the resync must list groups and node ports.
    security: bool,
}

impl CloudPrint {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The LB lacks the cluster tag: a resync must list load balancers without that filter.
    pub fn names_untagged_lb(&self) -> bool {
        self.untagged_lb
    }
    /// The print names security-group facts: a resync must list groups and node ports.
    pub fn names_security(&self) -> bool {
        self.security
    }
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The canonical facts of one kind of object. Both the per-Service observation (model types)
/// and the cluster-wide lists (API types) are reduced to these, so equal clouds give equal
/// hashes.
pub trait Facts: Hash {
    const KIND: Kind;
}

/// Ids or values whose order the cloud does not keep: sorted when collected, so the facts
/// never depend on it.
#[derive(Clone, Debug, Default, Hash)]
pub struct Sorted<'a>(Vec<&'a str>);

impl<'a> FromIterator<&'a str> for Sorted<'a> {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut v: Vec<&str> = iter.into_iter().collect();
        v.sort_unstable();
        Sorted(v)
    }
}

#[derive(Hash)]
pub struct LbFacts<'a> {
    pub provisioning_status: &'a str,
    pub vip_port_id: Option<&'a str>,
    pub listeners: Sorted<'a>,
}

impl Facts for LbFacts<'_> {
    const KIND: Kind = Kind::LoadBalancer;
}

#[derive(Hash)]
pub struct ListenerFacts<'a> {
    pub port: u16,
    pub connection_limit: i64,
    pub allowed_cidrs: Sorted<'a>,
    pub insert_headers: &'a BTreeMap<String, String>,
    /// client data, member connect, member data, TCP inspect.
    pub timeouts: [Option<u64>; 4],
    pub tls: Option<&'a str>,
    pub default_pool: Option<&'a str>,
}

impl Facts for ListenerFacts<'_> {
    const KIND: Kind = Kind::Listener;
}

#[derive(Hash)]
pub struct PoolFacts<'a> {
    pub lb_algorithm: &'a str,
    pub persistence: Option<&'a str>,
    pub members: Sorted<'a>,
    pub monitor: Option<&'a str>,
}

impl Facts for PoolFacts<'_> {
    const KIND: Kind = Kind::Pool;
}

#[derive(Hash)]
pub struct MonitorFacts<'a> {
    pub delay: u64,
    pub timeout: u64,
    pub max_retries: u32,
    pub max_retries_down: u32,
    pub http_method: Option<&'a str>,
    pub url_path: Option<&'a str>,
    pub expected_codes: Option<&'a str>,
}

impl Facts for MonitorFacts<'_> {
    const KIND: Kind = Kind::Monitor;
}

#[derive(Hash)]
pub struct FipFacts<'a> {
    pub address: &'a str,
    pub port_id: Option<&'a str>,
}

impl Facts for FipFacts<'_> {
    const KIND: Kind = Kind::FloatingIp;
}

/// A security group's ingress port rules, sorted when collected.
#[derive(Hash)]
pub struct GroupFacts(Vec<SecurityGroupRule>);

impl FromIterator<SecurityGroupRule> for GroupFacts {
    fn from_iter<I: IntoIterator<Item = SecurityGroupRule>>(iter: I) -> Self {
        let mut rules: Vec<SecurityGroupRule> = iter.into_iter().collect();
        rules.sort();
        GroupFacts(rules)
    }
}

impl Facts for GroupFacts {
    const KIND: Kind = Kind::SecurityGroup;
}

fn print_lb(lb: &ObservedLoadBalancer) -> u64 {
    hash_of(&LbFacts {
        provisioning_status: lb.provisioning_status.as_api(),
        vip_port_id: lb.vip_port_id.as_deref(),
        listeners: lb.listeners.iter().map(|l| l.id.as_str()).collect(),
    })
}

fn print_listener(l: &ObservedListener) -> u64 {
    hash_of(&ListenerFacts {
        port: l.protocol_port,
        connection_limit: l.connection_limit,
        allowed_cidrs: l.allowed_cidrs.iter().map(String::as_str).collect(),
        insert_headers: &l.insert_headers,
        timeouts: [
            l.timeout_client_data,
            l.timeout_member_connect,
            l.timeout_member_data,
            l.timeout_tcp_inspect,
        ],
        tls: l.default_tls_container_ref.as_deref(),
        default_pool: l.pool.as_ref().map(|p| p.id.as_str()),
    })
}

fn print_pool(p: &ObservedPool) -> u64 {
    hash_of(&PoolFacts {
        lb_algorithm: p.lb_algorithm.as_api(),
        persistence: p.session_persistence.as_ref().map(|s| s.kind.as_str()),
        members: p.members.iter().map(|m| m.id.as_str()).collect(),
        monitor: p.monitor.as_ref().map(|m| m.id.as_str()),
    })
}

fn print_monitor(m: &ObservedMonitor) -> u64 {
    hash_of(&MonitorFacts {
        delay: u64::from(m.delay),
        timeout: u64::from(m.timeout),
        max_retries: m.max_retries,
        max_retries_down: m.max_retries_down,
        http_method: m.http_method.as_deref(),
        url_path: m.url_path.as_deref(),
        expected_codes: m.expected_codes.as_deref(),
    })
}

fn print_fip(f: &ObservedFloatingIp) -> u64 {
    hash_of(&FipFacts {
        address: &f.floating_ip_address,
        port_id: f.port_id.as_deref(),
    })
}

fn print_group(g: &ObservedSecurityGroup) -> u64 {
    hash_of(
        &g.rules
            .iter()
            .map(|r| r.rule.clone())
            .collect::<GroupFacts>(),
    )
}

/// The print of a converged Service's full observation. `port_ids` are the node ports whose
/// carrying (or not) of the Service's security group is part of the converged state.
pub fn print(observed: &Observed, cluster_tag: &str) -> CloudPrint {
    let mut p = CloudPrint::default();
    if let Some(lb) = &observed.load_balancer {
        p.untagged_lb = !lb.tags.iter().any(|t| t == cluster_tag);
        p.entries
            .insert((Kind::LoadBalancer, lb.id.clone()), print_lb(lb));
        for l in &lb.listeners {
            p.entries
                .insert((Kind::Listener, l.id.clone()), print_listener(l));
            if let Some(pool) = &l.pool {
                p.entries
                    .insert((Kind::Pool, pool.id.clone()), print_pool(pool));
                if let Some(m) = &pool.monitor {
                    p.entries
                        .insert((Kind::Monitor, m.id.clone()), print_monitor(m));
                }
            }
        }
    }
    for f in &observed.floating_ips {
        p.entries
            .insert((Kind::FloatingIp, f.id.clone()), print_fip(f));
    }
    if let Some(g) = &observed.security_group {
        p.security = true;
        p.entries
            .insert((Kind::SecurityGroup, g.id.clone()), print_group(g));
        for port in &observed.node_ports {
            p.entries.insert(
                (Kind::PortGroup, format!("{}/{}", port.id, g.id)),
                hash_of(&port.security_groups.contains(&g.id)),
            );
        }
    }
    p
}

/// One cluster-wide listing, reduced to the same hashes.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    entries: HashMap<(Kind, String), u64>,
    /// Port id → its security groups.
    ports: HashMap<String, Vec<String>>,
    /// Whether groups and ports were listed (else their entries are not compared).
    security: bool,
}

impl Snapshot {
    /// Whether what the Service saw at its last full observation is no longer what exists.
    pub fn differs(&self, print: &CloudPrint) -> bool {
        print.entries.iter().any(|((kind, id), hash)| match kind {
            Kind::PortGroup => {
                if !self.security {
                    return false;
                }
                let Some((port, group)) = id.split_once('/') else {
                    return true;
                };
                match self.ports.get(port) {
                    Some(groups) => hash_of(&groups.iter().any(|g| g == group)) != *hash,
                    // Not on the listed network (a node elsewhere), or gone with its VM:
                    // nothing this listing can judge, and calling it drift would repeat forever.
                    None => false,
                }
            }
            Kind::SecurityGroup if !self.security => false,
            _ => self.entries.get(&(*kind, id.clone())) != Some(hash),
        })
    }

    /// One listed object of the kind its facts say.
    pub fn record<F: Facts>(&mut self, id: String, facts: &F) {
        self.entries.insert((F::KIND, id), hash_of(facts));
    }

    /// One listed node-network port and the groups it carries.
    pub fn record_port(&mut self, id: String, groups: Vec<String>) {
        self.ports.insert(id, groups);
    }

    /// Whether security groups and node ports were listed: when not, their facts are not
    /// compared (not listing them is safer than calling every port "changed").
    pub fn set_security_listed(&mut self, listed: bool) {
        self.security = listed;
    }

    /// Drop one listed object, as if it had gone (tests of the comparison).
    #[cfg(test)]
    pub(crate) fn forget(&mut self, kind: Kind, id: &str) {
        self.entries.remove(&(kind, id.to_string()));
    }
}

impl Snapshot {
    /// A snapshot of simulated clouds (`model::Observed`), for tests of the callers.
    #[cfg(test)]
    pub(crate) fn of_observed(clouds: &[&Observed]) -> Snapshot {
        let mut s = Snapshot {
            security: true,
            ..Default::default()
        };
        for o in clouds {
            let p = print(o, "");
            s.entries.extend(
                p.entries
                    .into_iter()
                    .filter(|((k, _), _)| *k != Kind::PortGroup),
            );
            for port in &o.node_ports {
                s.ports
                    .insert(port.id.clone(), port.security_groups.clone());
            }
        }
        s
    }
}
