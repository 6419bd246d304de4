//! The planner against a simulated cloud (`SimCloud`): every decision of a pass, without
//! HTTP.

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
    /// Rediscoveries, with the node address each was asked to look from.
    rediscovered: Mutex<Vec<Option<std::net::IpAddr>>>,
    /// Rediscoveries still to fail as a cloud that answers 503 would.
    rediscover_failures: Mutex<u32>,
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

    /// A cloud rebuilt with a new nodes' subnet.
    async fn rediscover(
        &self,
        _config: &CloudConfig,
        node_ip: Option<std::net::IpAddr>,
        env: &mut Environment,
    ) -> Result<(), CloudError> {
        self.rediscovered.lock().unwrap().push(node_ip);
        let mut failures = self.rediscover_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(CloudError::new(CloudErrorKind::Other, "503 from Neutron"));
        }
        env.node_subnet_id = Some("subnet-rebuilt".into());
        Ok(())
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
    async fn snapshot(&self, _req: &SnapshotRequest) -> Result<crate::cloud::Listing, CloudError> {
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
async fn converge(p: &Planner<SimCloud>, svc: &Service, nodes: &[Arc<Node>]) -> (Published, u32) {
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
    *cloud.fail_next.lock().unwrap() = Some(CloudError::new(CloudErrorKind::Conflict, "locked"));
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

/// Pretend the last lookup of the discovered ids was `by` ago.
fn age_discovery(p: &Planner<SimCloud>, by: Duration) {
    p.discovery(|d| d.at = Instant::now().checked_sub(by).expect("uptime"));
}

/// The next call answers as a cloud that lost the nodes' subnet.
fn next_call_not_found(cloud: &SimCloud) {
    *cloud.fail_next.lock().unwrap() = Some(CloudError::new(
        CloudErrorKind::NotFound,
        "Subnet 11111111-1111-1111-1111-111111111111 could not be found",
    ));
}

#[tokio::test]
async fn discovered_ids_are_looked_for_again_after_a_not_found_and_periodically() {
    use super::rediscover::{MIN_GAP, PERIOD};
    let cloud = Arc::new(SimCloud::default());
    let p = planner(cloud.clone());
    let nodes = vec![node("n1", "127.0.1.1")];
    let svc = service(&[]);
    p.nodes_changed(&nodes).await;
    let age = |by: Duration| age_discovery(&p, by);
    let not_found = || next_call_not_found(&cloud);
    // Start-up discovery just ran: a "not found" right away looks for nothing.
    not_found();
    assert!(p.ensure(&svc, &nodes).await.is_err());
    assert!(cloud.rediscovered.lock().unwrap().is_empty());

    let mut woken = p.watcher.subscribe();
    age(MIN_GAP);
    not_found();
    // The ids changed: no error backoff, the Service plans again soon on the new ones, and
    // the Services that met a "not found" meanwhile are woken.
    assert!(p.ensure(&svc, &nodes).await.is_ok());
    assert_eq!(woken.try_recv().ok(), Some(status::key(&svc)));
    assert_eq!(
        *cloud.rediscovered.lock().unwrap(),
        vec![Some("127.0.1.1".parse().unwrap())]
    );
    assert_eq!(
        p.context().env.node_subnet_id.as_deref(),
        Some("subnet-rebuilt")
    );
    // A run of "not found" answers costs one lookup.
    not_found();
    assert!(p.ensure(&svc, &nodes).await.is_err());
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 1);

    // Resyncs look again only once the period has passed.
    p.resync(&[]).await.unwrap();
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 1);
    age(PERIOD);
    p.resync(&[]).await.unwrap();
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_lookup_the_cloud_failed_is_tried_again_after_the_short_gap() {
    use super::rediscover::{FAILED_GAP, MIN_GAP};
    let cloud = Arc::new(SimCloud::default());
    *cloud.rediscover_failures.lock().unwrap() = 1;
    let p = planner(cloud.clone());
    let nodes = vec![node("n1", "127.0.1.1")];
    let svc = service(&[]);
    p.nodes_changed(&nodes).await;
    let age = |by: Duration| age_discovery(&p, by);
    let not_found = || next_call_not_found(&cloud);
    age(MIN_GAP);
    not_found();
    assert!(p.ensure(&svc, &nodes).await.is_err(), "the lookup failed");
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 1);
    // Not at once: a cloud that is down is not asked once per "not found".
    not_found();
    assert!(p.ensure(&svc, &nodes).await.is_err());
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 1);
    // After the short gap, not a whole MIN_GAP, it looks again and finds the new ids.
    assert!(FAILED_GAP < MIN_GAP);
    age(FAILED_GAP);
    not_found();
    assert!(p.ensure(&svc, &nodes).await.is_ok());
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 2);
    assert_eq!(
        p.context().env.node_subnet_id.as_deref(),
        Some("subnet-rebuilt")
    );
    // A lookup that succeeded brings the long gap back.
    age(FAILED_GAP);
    not_found();
    assert!(p.ensure(&svc, &nodes).await.is_err());
    assert_eq!(cloud.rediscovered.lock().unwrap().len(), 2);
}

fn known_of(members: usize, at: Instant) -> Known {
    Known {
        observed: Observed::default(),
        exact: true,
        lb_id: "lb".into(),
        at,
        members,
    }
}

#[test]
fn known_states_stay_within_their_member_budget() {
    let now = Instant::now();
    let mut known = HashMap::new();
    let half = KNOWN_MEMBER_BUDGET / 2;
    assert!(remember(&mut known, "a/one".into(), known_of(half, now)));
    assert!(remember(&mut known, "a/two".into(), known_of(half, now)));
    // Full: a third is not kept, and the two held are untouched.
    assert!(!remember(&mut known, "a/three".into(), known_of(1, now)));
    assert_eq!(known.len(), 2);
    // A Service's new state replaces its old one, whose cost is freed first.
    assert!(remember(&mut known, "a/two".into(), known_of(half, now)));
    assert_eq!(known.len(), 2);
    // One larger than the whole budget is never kept.
    known.clear();
    assert!(!remember(
        &mut known,
        "a/huge".into(),
        known_of(KNOWN_MEMBER_BUDGET + 1, now)
    ));
    assert!(known.is_empty());
}

#[test]
fn an_expired_known_state_frees_its_budget() {
    let Some(old) = Instant::now().checked_sub(KNOWN_TTL + Duration::from_secs(1)) else {
        return; // a machine up for less than the TTL cannot hold an expired state
    };
    let mut known = HashMap::new();
    known.insert("a/stale".to_string(), known_of(KNOWN_MEMBER_BUDGET, old));
    assert!(remember(
        &mut known,
        "a/fresh".into(),
        known_of(10, Instant::now())
    ));
    assert!(!known.contains_key("a/stale"));
}

#[test]
fn a_known_state_costs_the_members_of_all_its_pools() {
    let listener = |port: u16, members: usize| {
        let members: Vec<serde_json::Value> = (0..members)
            .map(|i| serde_json::json!({"id": format!("m{i}"), "address": format!("10.0.0.{i}"), "protocol_port": 30080}))
            .collect();
        serde_json::json!({
            "id": format!("l{port}"), "name": "l", "protocol": "TCP", "protocol_port": port,
            "pool": {"id": format!("p{port}"), "name": "p", "protocol": "TCP",
                     "lb_algorithm": "ROUND_ROBIN", "members": members},
        })
    };
    let bare = serde_json::json!({"id": "l9", "name": "l", "protocol": "TCP", "protocol_port": 9});
    let observed: Observed = serde_json::from_value(serde_json::json!({
        "load_balancer": {"id": "lb", "listeners": [listener(80, 3), listener(443, 5), bare]},
        "floating_ips": [],
    }))
    .expect("an observed tree");
    assert_eq!(members_in(&observed), 8);
    assert_eq!(members_in(&Observed::default()), 0);
}
