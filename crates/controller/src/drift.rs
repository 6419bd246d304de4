//! Drift detection at resync (SPEC §4 "Drift") with a constant number of list calls for the
//! whole cluster. After a full observation that found a Service converged, the planner reduces
//! what it saw to a [`CloudPrint`]: one hash per cloud object (load balancer, listeners, pools
//! with their member ids, health monitors, floating IPs, and with `manage-security-groups` the
//! group's rules and which node ports carry it). At every resync one [`Snapshot`] lists those
//! kinds once for the cluster (LBs by the cluster tag, listeners, pools, monitors, floating IPs
//! of the project, tagged security groups, the nodes' ports) and only the Services whose print
//! no longer matches are reconciled. Octavia has no member list across pools, so members are
//! compared through the member-id set every pool carries. Must not know about Kubernetes, and
//! must not decide repairs: a mismatch only says "observe this Service again".

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use model::observed::{
    ObservedFloatingIp, ObservedListener, ObservedLoadBalancer, ObservedMonitor, ObservedPool,
    ObservedSecurityGroup,
};
use model::spec::SecurityGroupRule;
use model::Observed;
use openstack::ListQuery;

use crate::backend::OwnedKind;
use crate::cloud::{CloudError, CloudErrorKind, Listing, Resync, SnapshotRequest, Tagged};
use crate::openstack_cloud::OpenStackCloud;

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

/// The canonical facts of each kind. Both the per-Service observation (model types) and the
/// cluster-wide lists (API types) are reduced to these, so equal clouds give equal hashes.
#[derive(Hash)]
struct LbFacts<'a> {
    provisioning_status: &'a str,
    vip_port_id: Option<&'a str>,
    listeners: Vec<&'a str>,
}

#[derive(Hash)]
struct ListenerFacts<'a> {
    port: u16,
    connection_limit: i64,
    allowed_cidrs: Vec<&'a str>,
    insert_headers: &'a BTreeMap<String, String>,
    timeouts: [Option<u64>; 4],
    tls: Option<&'a str>,
    default_pool: Option<&'a str>,
}

#[derive(Hash)]
struct PoolFacts<'a> {
    lb_algorithm: &'a str,
    persistence: Option<&'a str>,
    members: Vec<&'a str>,
    monitor: Option<&'a str>,
}

#[derive(Hash)]
struct MonitorFacts<'a> {
    delay: u64,
    timeout: u64,
    max_retries: u32,
    max_retries_down: u32,
    http_method: Option<&'a str>,
    url_path: Option<&'a str>,
    expected_codes: Option<&'a str>,
}

#[derive(Hash)]
struct FipFacts<'a> {
    address: &'a str,
    port_id: Option<&'a str>,
}

fn sorted<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = it.collect();
    v.sort_unstable();
    v
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn print_lb(lb: &ObservedLoadBalancer) -> u64 {
    hash_of(&LbFacts {
        provisioning_status: lb.provisioning_status.as_api(),
        vip_port_id: lb.vip_port_id.as_deref(),
        listeners: sorted(lb.listeners.iter().map(|l| l.id.as_str())),
    })
}

fn print_listener(l: &ObservedListener) -> u64 {
    hash_of(&ListenerFacts {
        port: l.protocol_port,
        connection_limit: l.connection_limit,
        allowed_cidrs: sorted(l.allowed_cidrs.iter().map(String::as_str)),
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
        members: sorted(p.members.iter().map(|m| m.id.as_str())),
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

fn print_rules(rules: &mut [SecurityGroupRule]) -> u64 {
    rules.sort();
    hash_of(&rules)
}

fn print_group(g: &ObservedSecurityGroup) -> u64 {
    let mut rules: Vec<SecurityGroupRule> = g.rules.iter().map(|r| r.rule.clone()).collect();
    print_rules(&mut rules)
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

fn cloud_error(e: openstack::Error) -> CloudError {
    CloudError {
        kind: if matches!(e, openstack::Error::QuotaExceeded { .. }) {
            CloudErrorKind::Quota
        } else {
            CloudErrorKind::Other
        },
        message: e.to_string(),
        source: Some(std::sync::Arc::new(e)),
    }
}

fn scoped(project_id: &Option<String>) -> ListQuery {
    match project_id {
        Some(p) => ListQuery::new().project_id(p.clone()),
        None => ListQuery::new(),
    }
}

/// API-type reductions, mirroring how [`crate::openstack_cloud`] fills `model::Observed`
/// (absent connection limit = -1, absent `max_retries_down` = 3, empty strings = none).
mod api {
    use super::*;
    use openstack::lbaas::{HealthMonitor, Listener, LoadBalancer, Pool};
    use openstack::neutron::{FloatingIp, SecurityGroup};

    pub(super) fn lb(lb: &LoadBalancer) -> u64 {
        hash_of(&LbFacts {
            provisioning_status: &lb.provisioning_status,
            vip_port_id: non_empty(&lb.vip_port_id),
            listeners: sorted(lb.listeners.iter().map(|r| r.id.as_str())),
        })
    }

    pub(super) fn listener(l: &Listener) -> u64 {
        hash_of(&ListenerFacts {
            port: l.protocol_port,
            connection_limit: l.connection_limit.unwrap_or(-1),
            allowed_cidrs: sorted(l.allowed_cidrs.iter().flatten().map(String::as_str)),
            insert_headers: &l.insert_headers,
            timeouts: [
                l.timeout_client_data,
                l.timeout_member_connect,
                l.timeout_member_data,
                l.timeout_tcp_inspect,
            ],
            tls: l.default_tls_container_ref.as_deref(),
            default_pool: l.default_pool_id.as_deref(),
        })
    }

    pub(super) fn pool(p: &Pool) -> u64 {
        hash_of(&PoolFacts {
            lb_algorithm: &p.lb_algorithm,
            persistence: p
                .session_persistence
                .as_ref()
                .map(|s| s.persistence_type.as_str()),
            members: sorted(p.members.iter().map(|r| r.id.as_str())),
            monitor: p.healthmonitor_id.as_deref(),
        })
    }

    pub(super) fn monitor(m: &HealthMonitor) -> u64 {
        hash_of(&MonitorFacts {
            delay: u64::from(u32::try_from(m.delay).unwrap_or(u32::MAX)),
            timeout: u64::from(u32::try_from(m.timeout).unwrap_or(u32::MAX)),
            max_retries: m.max_retries,
            max_retries_down: m.max_retries_down.unwrap_or(3),
            http_method: m.http_method.as_deref(),
            url_path: m.url_path.as_deref(),
            expected_codes: m.expected_codes.as_deref(),
        })
    }

    pub(super) fn fip(f: &FloatingIp) -> u64 {
        hash_of(&FipFacts {
            address: &f.floating_ip_address,
            port_id: f.port_id.as_deref(),
        })
    }

    pub(super) fn group(g: &SecurityGroup) -> u64 {
        let mut rules: Vec<SecurityGroupRule> = g
            .security_group_rules
            .iter()
            .filter(|r| r.direction == "ingress" && r.port_range_min.is_some())
            .map(|r| SecurityGroupRule {
                ethertype: r.ethertype.clone(),
                protocol: r.protocol.clone().unwrap_or_default(),
                port: r
                    .port_range_min
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                remote_ip_prefix: r.remote_ip_prefix.clone().unwrap_or_default(),
            })
            .collect();
        print_rules(&mut rules)
    }
}

impl Resync for OpenStackCloud {
    async fn snapshot(&self, req: &SnapshotRequest) -> Result<Listing, CloudError> {
        let mut snap = Snapshot::default();
        let mut tagged = Vec::new();
        let tag = req.cluster_tag.clone();
        let lb_query = if self.features.tags && !req.all_load_balancers {
            ListQuery::new().tags(std::slice::from_ref(&tag))
        } else {
            scoped(&req.project_id)
        };
        let lbs = self
            .lb
            .list_loadbalancers(&lb_query)
            .await
            .map_err(cloud_error)?;
        for lb in &lbs {
            snap.entries
                .insert((Kind::LoadBalancer, lb.id.clone()), api::lb(lb));
            if lb.tags.contains(&tag) && lb.provisioning_status != "DELETED" {
                tagged.push(Tagged {
                    kind: OwnedKind::LoadBalancer,
                    id: lb.id.clone(),
                    name_or_description: lb.name.clone(),
                    label: lb.name.clone(),
                });
            }
        }
        // Children carry no reliable tag (OCCM-created ones have none): listed by project.
        let scope = scoped(&req.project_id);
        for l in self.lb.list_listeners(&scope).await.map_err(cloud_error)? {
            snap.entries
                .insert((Kind::Listener, l.id.clone()), api::listener(&l));
        }
        for p in self.lb.list_pools(&scope).await.map_err(cloud_error)? {
            snap.entries
                .insert((Kind::Pool, p.id.clone()), api::pool(&p));
        }
        for m in self
            .lb
            .list_healthmonitors(&scope)
            .await
            .map_err(cloud_error)?
        {
            snap.entries
                .insert((Kind::Monitor, m.id.clone()), api::monitor(&m));
        }
        // All of the project's floating IPs: a user's FIP (spec.loadBalancerIP) carries no tag.
        for f in self
            .neutron
            .list_floating_ips(&scope)
            .await
            .map_err(cloud_error)?
        {
            snap.entries
                .insert((Kind::FloatingIp, f.id.clone()), api::fip(&f));
            if f.tags.contains(&tag) {
                tagged.push(Tagged {
                    kind: OwnedKind::FloatingIp,
                    id: f.id.clone(),
                    name_or_description: f.description.clone(),
                    label: f.floating_ip_address.clone(),
                });
            }
        }
        if req.security_groups {
            snap.security = true;
            for g in self
                .neutron
                .list_security_groups(&ListQuery::new().tags(std::slice::from_ref(&tag)))
                .await
                .map_err(cloud_error)?
            {
                snap.entries
                    .insert((Kind::SecurityGroup, g.id.clone()), api::group(&g));
            }
            if let Some(net) = &req.node_network_id {
                for p in self
                    .neutron
                    .list_ports(&ListQuery::new().network_id(net.clone()))
                    .await
                    .map_err(cloud_error)?
                {
                    snap.ports.insert(p.id, p.security_groups);
                }
            } else {
                // Unknown network: port facts cannot be compared; not listing them is safer
                // than calling every port "changed".
                snap.security = false;
            }
        }
        Ok(Listing {
            snapshot: snap,
            tagged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::config::LbMethod;
    use model::observed::{ObservedMember, ObservedPort, ObservedRule, ProvisioningStatus};
    use model::spec::{ListenerProtocol, MonitorType, Persistence, PoolProtocol};
    use openstack::lbaas::{HealthMonitor, IdRef, Listener, LoadBalancer, Pool};
    use openstack::neutron::{FloatingIp, SecurityGroup};

    const TAG: &str = "kube_cluster_uid-1";

    fn observed() -> Observed {
        let members = ["m1", "m2", "m3"]
            .iter()
            .map(|id| ObservedMember {
                id: id.to_string(),
                address: "10.0.0.1".into(),
                protocol_port: 30080,
                ..Default::default()
            })
            .collect();
        Observed {
            load_balancer: Some(ObservedLoadBalancer {
                id: "lb".into(),
                tags: vec![TAG.into()],
                provisioning_status: ProvisioningStatus::Active,
                vip_port_id: Some("vip".into()),
                listeners: vec![ObservedListener {
                    id: "l1".into(),
                    name: "listener_0".into(),
                    protocol: ListenerProtocol::Tcp,
                    protocol_port: 80,
                    connection_limit: -1,
                    allowed_cidrs: vec!["10.0.0.0/8".into(), "0.0.0.0/0".into()],
                    insert_headers: BTreeMap::new(),
                    timeout_client_data: Some(50000),
                    timeout_member_connect: None,
                    timeout_member_data: None,
                    timeout_tcp_inspect: None,
                    default_tls_container_ref: None,
                    tags: vec![],
                    pool: Some(ObservedPool {
                        id: "p1".into(),
                        name: "pool_0".into(),
                        protocol: PoolProtocol::Tcp,
                        lb_algorithm: LbMethod::RoundRobin,
                        session_persistence: Some(Persistence {
                            kind: "SOURCE_IP".into(),
                        }),
                        tags: vec![],
                        members,
                        monitor: Some(ObservedMonitor {
                            id: "hm1".into(),
                            name: "monitor_0".into(),
                            kind: MonitorType::Tcp,
                            delay: 5,
                            timeout: 3,
                            max_retries: 1,
                            max_retries_down: 3,
                            http_method: None,
                            url_path: None,
                            expected_codes: None,
                        }),
                    }),
                }],
                ..Default::default()
            }),
            floating_ips: vec![ObservedFloatingIp {
                id: "fip".into(),
                floating_ip_address: "127.200.0.5".into(),
                port_id: Some("vip".into()),
                ..Default::default()
            }],
            security_group: Some(ObservedSecurityGroup {
                id: "sg".into(),
                rules: vec![ObservedRule {
                    id: "r1".into(),
                    rule: SecurityGroupRule {
                        ethertype: "IPv4".into(),
                        protocol: "tcp".into(),
                        port: 30080,
                        remote_ip_prefix: "0.0.0.0/0".into(),
                    },
                }],
                ..Default::default()
            }),
            node_ports: vec![
                ObservedPort {
                    id: "port-a".into(),
                    security_groups: vec!["default".into(), "sg".into()],
                    revision_number: 4,
                },
                ObservedPort {
                    id: "port-b".into(),
                    security_groups: vec!["default".into()],
                    revision_number: 2,
                },
            ],
            ..Default::default()
        }
    }

    fn idref(id: &str) -> IdRef {
        serde_json::from_value(serde_json::json!({ "id": id })).unwrap()
    }

    /// One object of each kind, as the API lists them.
    type Listed = (
        LoadBalancer,
        Listener,
        Pool,
        HealthMonitor,
        FloatingIp,
        SecurityGroup,
    );

    /// The same cloud as the API lists it.
    fn listed() -> Listed {
        let lb = LoadBalancer {
            id: "lb".into(),
            tags: vec![TAG.into()],
            provisioning_status: "ACTIVE".into(),
            vip_port_id: "vip".into(),
            listeners: vec![idref("l1")],
            pools: vec![idref("p1")],
            ..Default::default()
        };
        let listener = Listener {
            id: "l1".into(),
            protocol: "TCP".into(),
            protocol_port: 80,
            connection_limit: None,
            allowed_cidrs: Some(vec!["0.0.0.0/0".into(), "10.0.0.0/8".into()]),
            timeout_client_data: Some(50000),
            default_pool_id: Some("p1".into()),
            ..Default::default()
        };
        let pool = Pool {
            id: "p1".into(),
            lb_algorithm: "ROUND_ROBIN".into(),
            session_persistence: Some(openstack::lbaas::SessionPersistence {
                persistence_type: "SOURCE_IP".into(),
                ..Default::default()
            }),
            members: vec![idref("m3"), idref("m1"), idref("m2")],
            healthmonitor_id: Some("hm1".into()),
            ..Default::default()
        };
        let hm = HealthMonitor {
            id: "hm1".into(),
            monitor_type: "TCP".into(),
            delay: 5,
            timeout: 3,
            max_retries: 1,
            max_retries_down: None,
            ..Default::default()
        };
        let fip = FloatingIp {
            id: "fip".into(),
            floating_ip_address: "127.200.0.5".into(),
            port_id: Some("vip".into()),
            ..Default::default()
        };
        let group: SecurityGroup = serde_json::from_value(serde_json::json!({
            "id": "sg", "name": "x", "security_group_rules": [
                {"id": "r1", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                 "port_range_min": 30080, "port_range_max": 30080, "remote_ip_prefix": "0.0.0.0/0"},
                {"id": "r2", "direction": "egress", "ethertype": "IPv4"}
            ]
        }))
        .unwrap();
        (lb, listener, pool, hm, fip, group)
    }

    fn snapshot_of(parts: &Listed, ports: &[(&str, &[&str])]) -> Snapshot {
        let (lb, l, p, m, f, g) = parts;
        let mut s = Snapshot {
            security: true,
            ..Default::default()
        };
        s.entries
            .insert((Kind::LoadBalancer, lb.id.clone()), api::lb(lb));
        s.entries
            .insert((Kind::Listener, l.id.clone()), api::listener(l));
        s.entries.insert((Kind::Pool, p.id.clone()), api::pool(p));
        s.entries
            .insert((Kind::Monitor, m.id.clone()), api::monitor(m));
        s.entries
            .insert((Kind::FloatingIp, f.id.clone()), api::fip(f));
        s.entries
            .insert((Kind::SecurityGroup, g.id.clone()), api::group(g));
        for (port, groups) in ports {
            s.ports.insert(
                port.to_string(),
                groups.iter().map(|g| g.to_string()).collect(),
            );
        }
        s
    }

    const PORTS: &[(&str, &[&str])] = &[("port-a", &["default", "sg"]), ("port-b", &["default"])];

    #[test]
    fn an_unchanged_cloud_matches_its_print() {
        let print = print(&observed(), TAG);
        assert_eq!(print.len(), 8, "{print:?}");
        assert!(!snapshot_of(&listed(), PORTS).differs(&print));
        // A user's change to other groups of a node port is not our drift.
        let other = &[
            ("port-a", &["default", "sg", "users"][..]),
            ("port-b", &["users"][..]),
        ];
        assert!(!snapshot_of(&listed(), other).differs(&print));
    }

    #[test]
    fn each_kind_of_drift_is_seen() {
        let print = print(&observed(), TAG);
        type Change = Box<dyn Fn(&mut Listed)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "member deleted",
                Box::new(|c| {
                    c.2.members.pop();
                }),
            ),
            (
                "pool algorithm changed",
                Box::new(|c| c.2.lb_algorithm = "LEAST_CONNECTIONS".into()),
            ),
            (
                "monitor detached",
                Box::new(|c| c.2.healthmonitor_id = None),
            ),
            ("monitor delay changed", Box::new(|c| c.3.delay = 10)),
            ("fip detached", Box::new(|c| c.4.port_id = None)),
            (
                "listener limit changed",
                Box::new(|c| c.1.connection_limit = Some(10)),
            ),
            (
                "listener cidrs changed",
                Box::new(|c| c.1.allowed_cidrs = None),
            ),
            (
                "lb locked",
                Box::new(|c| c.0.provisioning_status = "PENDING_UPDATE".into()),
            ),
            (
                "listener removed from lb",
                Box::new(|c| c.0.listeners.clear()),
            ),
            (
                "rule removed",
                Box::new(|c| c.5.security_group_rules.clear()),
            ),
        ];
        for (what, change) in cases {
            let mut parts = listed();
            change(&mut parts);
            assert!(snapshot_of(&parts, PORTS).differs(&print), "{what}");
        }
        // Gone objects.
        let mut s = snapshot_of(&listed(), PORTS);
        s.entries.remove(&(Kind::LoadBalancer, "lb".into()));
        assert!(s.differs(&print), "lb gone");
        let mut s = snapshot_of(&listed(), PORTS);
        s.entries.remove(&(Kind::FloatingIp, "fip".into()));
        assert!(s.differs(&print), "fip gone");
        // Our group taken off a node port, or put on one that should not carry it.
        let off = &[("port-a", &["default"][..]), ("port-b", &["default"][..])];
        assert!(
            snapshot_of(&listed(), off).differs(&print),
            "group detached"
        );
        let on = &[
            ("port-a", &["default", "sg"][..]),
            ("port-b", &["default", "sg"][..]),
        ];
        assert!(snapshot_of(&listed(), on).differs(&print), "group attached");
    }

    #[test]
    fn security_facts_are_skipped_when_not_listed_and_untagged_lbs_widen_the_listing() {
        let print = print(&observed(), TAG);
        let mut s = snapshot_of(&listed(), &[]);
        s.security = false;
        s.entries.remove(&(Kind::SecurityGroup, "sg".into()));
        assert!(!s.differs(&print));

        let req = SnapshotRequest::for_prints(TAG.into(), None, None, [&print].into_iter());
        assert!(req.security_groups && !req.all_load_balancers);
        let mut o = observed();
        o.load_balancer.as_mut().unwrap().tags.clear();
        o.security_group = None;
        let untagged = super::print(&o, TAG);
        let req = SnapshotRequest::for_prints(TAG.into(), None, None, [&untagged].into_iter());
        assert!(!req.security_groups && req.all_load_balancers);
    }
}
