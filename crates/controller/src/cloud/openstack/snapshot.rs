//! The resync listing ([`Resync`]) over the OpenStack APIs: one round of list calls for the
//! whole cluster (LBs by the cluster tag, listeners, pools, monitors and floating IPs of the
//! project, tagged security groups, the nodes' ports), each object reduced to the facts of
//! [`crate::drift`] and recorded in its snapshot, plus the tagged objects orphan collection
//! needs. Must not decide what drifted (that is [`crate::drift::Snapshot::differs`]) and must
//! not know about Kubernetes.

use openstack::ListQuery;

use super::OpenStackCloud;
use crate::backend::OwnedKind;
use crate::cloud::{CloudError, Listing, Resync, SnapshotRequest, Tagged};
use crate::drift::Snapshot;

fn scoped(project_id: &Option<String>) -> ListQuery {
    match project_id {
        Some(p) => ListQuery::new().project_id(p.clone()),
        None => ListQuery::new(),
    }
}

/// API-type reductions, mirroring how [`super::observe`] fills `model::Observed` (absent
/// connection limit = -1, absent `max_retries_down` = 3, empty strings = none).
mod api {
    use openstack::lbaas::{HealthMonitor, Listener, LoadBalancer, Pool};
    use openstack::neutron::{FloatingIp, SecurityGroup};

    use crate::drift::{FipFacts, GroupFacts, LbFacts, ListenerFacts, MonitorFacts, PoolFacts};

    pub(super) fn lb(lb: &LoadBalancer) -> LbFacts<'_> {
        LbFacts {
            provisioning_status: &lb.provisioning_status,
            vip_port_id: (!lb.vip_port_id.is_empty()).then_some(lb.vip_port_id.as_str()),
            listeners: lb.listeners.iter().map(|r| r.id.as_str()).collect(),
        }
    }

    pub(super) fn listener(l: &Listener) -> ListenerFacts<'_> {
        ListenerFacts {
            port: l.protocol_port,
            connection_limit: l.connection_limit.unwrap_or(-1),
            allowed_cidrs: l
                .allowed_cidrs
                .iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            insert_headers: &l.insert_headers,
            timeouts: [
                l.timeout_client_data,
                l.timeout_member_connect,
                l.timeout_member_data,
                l.timeout_tcp_inspect,
            ],
            tls: l.default_tls_container_ref.as_deref(),
            default_pool: l.default_pool_id.as_deref(),
        }
    }

    pub(super) fn pool(p: &Pool) -> PoolFacts<'_> {
        PoolFacts {
            lb_algorithm: &p.lb_algorithm,
            persistence: p
                .session_persistence
                .as_ref()
                .map(|s| s.persistence_type.as_str()),
            members: p.members.iter().map(|r| r.id.as_str()).collect(),
            monitor: p.healthmonitor_id.as_deref(),
        }
    }

    pub(super) fn monitor(m: &HealthMonitor) -> MonitorFacts<'_> {
        MonitorFacts {
            delay: u64::from(u32::try_from(m.delay).unwrap_or(u32::MAX)),
            timeout: u64::from(u32::try_from(m.timeout).unwrap_or(u32::MAX)),
            max_retries: m.max_retries,
            max_retries_down: m.max_retries_down.unwrap_or(3),
            http_method: m.http_method.as_deref(),
            url_path: m.url_path.as_deref(),
            expected_codes: m.expected_codes.as_deref(),
        }
    }

    pub(super) fn fip(f: &FloatingIp) -> FipFacts<'_> {
        FipFacts {
            address: &f.floating_ip_address,
            port_id: f.port_id.as_deref(),
        }
    }

    pub(super) fn group(g: &SecurityGroup) -> GroupFacts {
        super::super::observe::port_rules(g)
            .map(|r| r.rule)
            .collect()
    }
}

/// Pools per page of the resync's listing: about 2 MB of answer on 200 nodes.
const SNAPSHOT_POOL_PAGE: u32 = 100;

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
        let lbs = self.lb.list_loadbalancers(&lb_query).await?;
        for lb in &lbs {
            snap.record(lb.id.clone(), &api::lb(lb));
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
        for l in self.lb.list_listeners(&scope).await? {
            snap.record(l.id.clone(), &api::listener(&l));
        }
        // Page by page: each pool lists all its member ids (400 per Service on 200 nodes), and
        // all of them at once cost more than the rest of the controller's memory.
        self.lb
            .for_each_pool_page(&scope.clone().limit(SNAPSHOT_POOL_PAGE), |page| {
                for p in page {
                    snap.record(p.id.clone(), &api::pool(&p));
                }
            })
            .await?;
        for m in self.lb.list_healthmonitors(&scope).await? {
            snap.record(m.id.clone(), &api::monitor(&m));
        }
        // All of the project's floating IPs: a user's FIP (spec.loadBalancerIP) carries no tag.
        for f in self.neutron.list_floating_ips(&scope).await? {
            snap.record(f.id.clone(), &api::fip(&f));
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
            snap.set_security_listed(true);
            for g in self
                .neutron
                .list_security_groups(&ListQuery::new().tags(std::slice::from_ref(&tag)))
                .await?
            {
                snap.record(g.id.clone(), &api::group(&g));
            }
            if let Some(net) = &req.node_network_id {
                for p in self
                    .neutron
                    .list_ports(&ListQuery::new().network_id(net.clone()))
                    .await?
                {
                    snap.record_port(p.id, p.security_groups);
                }
            } else {
                // Unknown network: port facts cannot be compared; not listing them is safer
                // than calling every port "changed".
                snap.set_security_listed(false);
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
    use crate::drift::{print, Kind};
    use model::config::LbMethod;
    use model::observed::{
        ObservedFloatingIp, ObservedListener, ObservedLoadBalancer, ObservedMonitor, ObservedPool,
        ObservedSecurityGroup,
    };
    use model::observed::{ObservedMember, ObservedPort, ObservedRule, ProvisioningStatus};
    use model::spec::SecurityGroupRule;
    use model::spec::{ListenerProtocol, MonitorType, Persistence, PoolProtocol};
    use model::Observed;
    use openstack::lbaas::{HealthMonitor, IdRef, Listener, LoadBalancer, Pool};
    use openstack::neutron::{FloatingIp, SecurityGroup};
    use std::collections::BTreeMap;

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
        let mut s = Snapshot::default();
        s.set_security_listed(true);
        s.record(lb.id.clone(), &api::lb(lb));
        s.record(l.id.clone(), &api::listener(l));
        s.record(p.id.clone(), &api::pool(p));
        s.record(m.id.clone(), &api::monitor(m));
        s.record(f.id.clone(), &api::fip(f));
        s.record(g.id.clone(), &api::group(g));
        for (port, groups) in ports {
            s.record_port(
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
        s.forget(Kind::LoadBalancer, "lb");
        assert!(s.differs(&print), "lb gone");
        let mut s = snapshot_of(&listed(), PORTS);
        s.forget(Kind::FloatingIp, "fip");
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
        s.set_security_listed(false);
        s.forget(Kind::SecurityGroup, "sg");
        assert!(!s.differs(&print));

        let req = SnapshotRequest::for_prints(TAG.into(), None, None, [&print].into_iter());
        assert!(req.security_groups && !req.all_load_balancers);
        let mut o = observed();
        o.load_balancer.as_mut().unwrap().tags.clear();
        o.security_group = None;
        let untagged = crate::drift::print(&o, TAG);
        let req = SnapshotRequest::for_prints(TAG.into(), None, None, [&untagged].into_iter());
        assert!(!req.security_groups && req.all_load_balancers);
    }
}
