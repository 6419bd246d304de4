//! Property tests (proptest) over generated Services, nodes, clouds and cloud states:
//! (a) applying a plan and planning again yields no step;
//! (b) no plan touches foreign or user-owned resources;
//! (c) plans for unchanged input are empty;
//! (d) a create is exactly one LB write and at most one FIP write.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::{Node, Service};
use model::annotations as a;
use model::naming;
use model::observed::{ObservedFloatingIp, ObservedListener, ProvisioningStatus};
use model::spec::ListenerProtocol;
use model::{apply, desired, plan, plan_delete, CloudFeatures, DeleteIntent, Observed, Plan, Step};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct SvcDef {
    ports: Vec<(u16, &'static str)>,
    anns: Vec<(&'static str, &'static str)>,
    affinity: bool,
    local: bool,
    lb_ip: bool,
    families: u8,
}

fn svc_def() -> impl Strategy<Value = SvcDef> {
    let port = (
        prop_oneof![Just(80u16), Just(443), Just(53), Just(8080), Just(9100)],
        prop_oneof![Just("TCP"), Just("TCP"), Just("UDP")],
    );
    let ann = prop_oneof![
        Just((a::INTERNAL, "true")),
        Just((a::KEEP_FLOATINGIP, "true")),
        Just((a::LB_METHOD, "LEAST_CONNECTIONS")),
        Just((a::LB_METHOD, "SOURCE_IP_PORT")),
        Just((a::CONNECTION_LIMIT, "500")),
        Just((a::ENABLE_HEALTH_MONITOR, "true")),
        Just((a::HEALTH_MONITOR_DELAY, "9")),
        Just((a::TIMEOUT_CLIENT_DATA, "120000")),
        Just((a::SOURCE_RANGES, "10.0.0.0/8")),
        Just((a::PROXY_PROTOCOL, "true")),
        Just((a::X_FORWARDED_FOR, "true")),
        Just((a::MEMBER_SUBNET_ID, "9a9a9a9a-0000-4000-8000-000000009a9a")),
        Just((a::HOSTNAME, "app.example.com")),
    ];
    (
        proptest::collection::vec(port, 1..4),
        proptest::collection::vec(ann, 0..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        1u8..3,
    )
        .prop_map(|(mut ports, anns, affinity, local, lb_ip, families)| {
            ports.sort();
            ports.dedup();
            SvcDef {
                ports,
                anns,
                affinity,
                local,
                lb_ip,
                families,
            }
        })
}

fn build(d: &SvcDef) -> Service {
    let mut s = svc_with(&d.anns);
    let spec = s.spec.as_mut().expect("spec");
    spec.ports = Some(
        d.ports
            .iter()
            .enumerate()
            .map(|(i, (p, proto))| {
                serde_json::from_value(serde_json::json!({
                    "port": p, "protocol": proto, "nodePort": 30000 + i as i32 * 7 + *p as i32 % 7
                }))
                .expect("port")
            })
            .collect(),
    );
    if d.affinity {
        spec.session_affinity = Some("ClientIP".into());
    }
    if d.local {
        spec.external_traffic_policy = Some("Local".into());
        spec.health_check_node_port = Some(31999);
    }
    if d.lb_ip {
        spec.load_balancer_ip = Some("198.51.100.7".into());
    }
    spec.ip_families = Some(if d.families == 2 {
        vec!["IPv4".into(), "IPv6".into()]
    } else {
        vec!["IPv4".into()]
    });
    s
}

fn node_set() -> impl Strategy<Value = Vec<(bool, bool)>> {
    // (ready, excluded) per node.
    proptest::collection::vec(
        (
            prop_oneof![Just(true), Just(true), Just(false)],
            prop_oneof![Just(false), Just(false), Just(true)],
        ),
        0..6,
    )
}

fn build_nodes(set: &[(bool, bool)]) -> Vec<Node> {
    set.iter()
        .enumerate()
        .map(|(i, (ready, excluded))| {
            let mut labels = BTreeMap::new();
            if *excluded {
                labels.insert(
                    "node.kubernetes.io/exclude-from-external-load-balancers".to_string(),
                    String::new(),
                );
            }
            node(&NodeDef {
                name: format!("node-{}", i + 1),
                ready: *ready,
                addresses: vec![format!("10.0.0.{}", 11 + i), format!("fd00::{}", 11 + i)],
                labels,
                ..NodeDef::default()
            })
        })
        .collect()
}

fn cloud() -> impl Strategy<Value = CloudFeatures> {
    prop_oneof![
        Just(CloudFeatures::octavia(2, 27, Some("amphora"))),
        Just(CloudFeatures::octavia(2, 13, None)),
        Just(CloudFeatures::octavia(2, 4, None)),
        Just(CloudFeatures::octavia(2, 0, None)),
        Just(CloudFeatures::neutron_v2(None)),
    ]
}

fn cfg() -> impl Strategy<Value = model::config::CloudConfig> {
    (any::<bool>(), any::<bool>()).prop_map(|(sg, monitor)| {
        let mut c = config();
        c.load_balancer.manage_security_groups = sg;
        c.load_balancer.create_monitor = monitor;
        c
    })
}

/// Things in the cloud that are not ours: a user's FIP, another cluster's FIP with our
/// description, a user's listener on the LB.
fn add_foreign(o: &mut Observed) {
    o.floating_ips.push(ObservedFloatingIp {
        id: "user-fip".into(),
        floating_ip_address: "198.51.100.99".into(),
        floating_network_id: FLOATING_NET.into(),
        description: "the user's".into(),
        ..Default::default()
    });
    o.floating_ips.push(ObservedFloatingIp {
        id: "other-cluster-fip".into(),
        floating_ip_address: "198.51.100.98".into(),
        floating_network_id: FLOATING_NET.into(),
        description: naming::fip_description("kubernetes", "shop", "web"),
        tags: vec![naming::cluster_tag(OTHER_CLUSTER_UID)],
        ..Default::default()
    });
    if let Some(lb) = o.load_balancer.as_mut() {
        lb.listeners.push(ObservedListener {
            id: "user-listener".into(),
            name: "mine-do-not-touch".into(),
            protocol: ListenerProtocol::Tcp,
            protocol_port: 1,
            connection_limit: -1,
            allowed_cidrs: vec![],
            insert_headers: BTreeMap::new(),
            timeout_client_data: None,
            timeout_member_connect: None,
            timeout_member_data: None,
            timeout_tcp_inspect: None,
            default_tls_container_ref: None,
            tags: vec![],
            pool: None,
        });
    }
}

fn touches(plan: &Plan, ids: &[&str]) -> Option<String> {
    plan.steps.iter().find_map(|s| {
        let target = match &s.step {
            Step::DeleteFloatingIp { fip }
            | Step::DisassociateFloatingIp { fip }
            | Step::AssociateFloatingIp { fip, .. }
            | Step::TagFloatingIp { fip, .. } => fip.clone(),
            Step::DeleteListener { listener } | Step::UpdateListener { listener, .. } => {
                listener.clone()
            }
            Step::DeleteLoadBalancer { lb, .. } | Step::UpdateLoadBalancer { lb, .. } => lb.clone(),
            _ => return None,
        };
        ids.contains(&target.as_str())
            .then(|| format!("{:?}", s.step))
    })
}

fn base() -> Observed {
    Observed {
        project_id: Some(PROJECT.into()),
        node_ports: node_ports(6),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// (a) From any earlier state of the same Service (other settings, other nodes, drift, a
    /// FIP that lost its cluster tag), one plan reaches the desired state but for the
    /// bookkeeping that follows the published IP; that round settles it: planning again yields
    /// nothing.
    #[test]
    fn apply_then_replan_is_empty(
        before in svc_def(), now in svc_def(), nodes_before in node_set(), nodes_now in node_set(),
        features in cloud(), config in cfg(), drift in 0u8..6,
    ) {
        let e = env();
        let Ok(old) = desired(&build(&before), &build_nodes(&nodes_before), &config, &features, &e) else { return Ok(()) };
        let mut observed = apply(&plan(&old, &base()), &base());
        match (drift, observed.load_balancer.as_mut()) {
            (1, Some(lb)) => lb.tags.retain(|t| !t.starts_with(naming::CLUSTER_TAG_PREFIX)),
            (2, Some(lb)) => lb.provisioning_status = ProvisioningStatus::PendingUpdate,
            (3, Some(lb)) => lb.provisioning_status = ProvisioningStatus::Error,
            (4, _) => observed.floating_ips.iter_mut().for_each(|f| f.port_id = None),
            // Killed between the FIP POST and its tag PUT.
            (5, _) => observed.floating_ips.iter_mut().for_each(|f| f.tags.clear()),
            _ => {}
        }
        let Ok(new) = desired(&build(&now), &build_nodes(&nodes_now), &config, &features, &e) else { return Ok(()) };
        let p = plan(&new, &observed);
        prop_assume!(p.invalid.is_empty());
        let after = apply(&p, &observed);
        let again = plan(&new, &after);
        prop_assert!(again.publishable(), "more than bookkeeping left: {:#?}", again.steps);
        let after = apply(&again, &after);
        let settled = plan(&new, &after);
        prop_assert!(settled.steps.is_empty(), "third plan not empty: {:#?}", settled.steps);
        // Deletion converges too.
        let intent = new.delete_intent();
        let gone = apply(&plan_delete(&intent, &after), &after);
        prop_assert!(plan_delete(&intent, &gone).steps.is_empty());
        prop_assert!(gone.load_balancer.is_none());
    }

    /// (b) Neither ensure nor delete plans touch a user's FIP, another cluster's FIP or LB,
    /// or a listener that is not ours.
    #[test]
    fn foreign_and_user_resources_are_never_touched(
        d in svc_def(), ns in node_set(), features in cloud(), config in cfg(), foreign_lb in any::<bool>(),
    ) {
        let e = env();
        let Ok(spec) = desired(&build(&d), &build_nodes(&ns), &config, &features, &e) else { return Ok(()) };
        let mut observed = apply(&plan(&spec, &base()), &base());
        add_foreign(&mut observed);
        let mut protected = vec!["user-fip", "other-cluster-fip", "user-listener"];
        let lb_id = observed.load_balancer.as_ref().map(|l| l.id.clone()).unwrap_or_default();
        if foreign_lb {
            if let Some(lb) = observed.load_balancer.as_mut() {
                lb.tags = vec![lb.name.clone(), naming::cluster_tag(OTHER_CLUSTER_UID)];
            }
            protected.push(&lb_id);
        }
        let p = plan(&spec, &observed);
        prop_assert_eq!(touches(&p, &protected), None);
        if foreign_lb {
            prop_assert!(p.steps.is_empty() && !p.invalid.is_empty());
        }
        let pd = plan_delete(&spec.delete_intent(), &observed);
        prop_assert_eq!(touches(&pd, &protected), None);
        // A Service whose annotations are broken can still be deleted, just as safely.
        let intent = DeleteIntent::for_service(&build(&d), &config, &features, &e);
        prop_assert_eq!(touches(&plan_delete(&intent, &observed), &protected), None);
    }

    /// (c) Unchanged input against what it created: nothing to do, and deterministic.
    #[test]
    fn unchanged_input_plans_nothing(d in svc_def(), ns in node_set(), features in cloud(), config in cfg()) {
        let e = env();
        let svc = build(&d);
        let nodes = build_nodes(&ns);
        let Ok(spec) = desired(&svc, &nodes, &config, &features, &e) else { return Ok(()) };
        prop_assert_eq!(desired(&svc, &nodes, &config, &features, &e).ok(), Some(spec.clone()));
        let observed = settle(&spec, apply(&plan(&spec, &base()), &base()));
        let again = desired(&svc, &nodes, &config, &features, &e).expect("same input");
        let p = plan(&again, &observed);
        prop_assert!(p.steps.is_empty(), "{:#?}", p.steps);
        prop_assert!(p.status.is_some(), "the status is known once everything exists");
    }

    /// (d) A new Service on Octavia: exactly one LB write (the fully-populated POST) and at
    /// most one FIP write, whatever the Service looks like.
    #[test]
    fn create_is_one_lb_write_and_at_most_one_fip_write(d in svc_def(), ns in node_set(), minor in 0u32..30) {
        let features = CloudFeatures::octavia(2, minor, Some("amphora"));
        let Ok(spec) = desired(&build(&d), &build_nodes(&ns), &config(), &features, &env()) else { return Ok(()) };
        let p = plan(&spec, &base());
        let lb_writes = p.steps.iter().filter(|s| s.step.takes_lb_lock()).count();
        let creates = p.steps.iter().filter(|s| matches!(s.step, Step::CreateLoadBalancer { .. })).count();
        let fip_writes = p.steps.iter().filter(|s| s.step.is_fip_write()).count();
        prop_assert_eq!((lb_writes, creates), (1, 1));
        prop_assert!(fip_writes <= 1);
        prop_assert!(p.runnable().len() == p.steps.len(), "a create runs at once");
    }
}
