//! End-to-end scenarios: a real kube-apiserver, the sandbox cloud in-process and the
//! controller binary as its own process, each test in its own world (control plane,
//! sandbox with its own floating range 127.2xx.0.0/24, namespace, node addresses
//! 127.100.<test>.x), so the tests may run in parallel. Every test asserts on the Kubernetes
//! side and on the sandbox's state, curls the floating IP where traffic should flow, and ends
//! with the leak audit. Covered: invalid annotation then fixed; Service deleted vs turned
//! ClusterIP with a user-owned floating IP; internal ↔ external; node churn through batch
//! member updates; disabled mode and missing credentials; adoption of an OCCM-created LB; the
//! controller SIGKILLed mid-create and mid-delete; ports and settings changed in place; two
//! replicas with leader take-over; externalTrafficPolicy Local; UDP and keep-floatingip.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, http_get, node_ports, sandbox_config, Env, LIMIT};
use kube::api::DeleteParams;
use openstack::lbaas::{CreateListener, CreateLoadBalancer, CreateMember, CreatePool};
use openstack::neutron::CreateFloatingIp;
use serde_json::{json, Value};

const CLEANUP: &str = "service.kubernetes.io/load-balancer-cleanup";
const FAST: Duration = Duration::from_millis(300);

fn lb_service(name: &str, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    })
}

async fn add_nodes(env: &Env, nodes: &[(&str, &str)]) {
    for (name, ip) in nodes {
        env.add_node(name, ip, true).await;
    }
}

/// Member addresses of the (single) pool of the LB named `lb_name`, sorted.
async fn member_addresses(env: &Env, lb_name: &str) -> Vec<String> {
    let lbs = env.lbs_named(lb_name).await;
    let Some(lb) = lbs.first() else {
        return Vec::new();
    };
    let Some(pool) = lb.pools.first() else {
        return Vec::new();
    };
    let mut out: Vec<String> = env
        .lbaas
        .list_members(&pool.id, &openstack::ListQuery::new())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.address)
        .collect();
    out.sort();
    out
}

async fn wait_lb_active(env: &Env, lb_name: &str) {
    wait_for(&format!("{lb_name} ACTIVE"), LIMIT, || async {
        env.lbs_named(lb_name)
            .await
            .first()
            .is_some_and(|l| l.provisioning_status == "ACTIVE")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_annotation_warns_and_creates_nothing_until_fixed() {
    let Some(env) = Env::start("invalid", "bad", sandbox_config(212, FAST)).await else {
        return;
    };
    add_nodes(
        &env,
        &[("inv-1", "127.100.12.11"), ("inv-2", "127.100.12.12")],
    )
    .await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;

    let from = env.request_log_mark().await;
    env.create_service(lb_service(
        "web",
        json!({"loadbalancer.openstack.org/lb-method": "FASTEST"}),
    ))
    .await;
    let ev = env
        .wait_event("web", "Warning", &["lb-method", "FASTEST"])
        .await;
    println!(
        "invalid: Warning {}: {}",
        ev.reason.unwrap_or_default(),
        ev.message.unwrap_or_default()
    );
    // Nothing in the cloud: no LB, no FIP, and not a single write was attempted.
    assert!(env.live_lbs().await.is_empty());
    assert!(env.fips().await.is_empty());
    for method in ["POST", "PUT", "DELETE"] {
        let calls = env.calls(from, method).await;
        assert_eq!(calls.len(), 0, "{method} while invalid: {calls:?}");
    }
    assert_eq!(env.ingress_ip("web").await, None);
    let (status, reason, message) = wait_for("InvalidAnnotation condition", LIMIT, || {
        env.condition("web")
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidAnnotation")
    );
    assert!(message.contains("FASTEST"), "{message}");

    // Once per spec across restarts (and leader changes): the new process finds the
    // condition that went with the Warning and sends no second one.
    let seen = std::fs::read_to_string(&controller.log)
        .unwrap_or_default()
        .len();
    controller.sigkill();
    controller.restart();
    controller.wait_ready(LIMIT).await;
    wait_for(
        "the restarted controller judges web again",
        LIMIT,
        || async {
            let log = std::fs::read_to_string(&controller.log).unwrap_or_default();
            log.get(seen..)?
                .contains("invalid configuration; nothing changed in the cloud")
                .then_some(())
        },
    )
    .await;
    // The Event, if one were sent, follows that log line within the same pass.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warnings = env
        .events_for("web")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidLoadBalancerConfiguration"))
        .count();
    assert_eq!(warnings, 1, "one Warning for one spec, across the restart");

    env.patch_service(
        "web",
        json!({"metadata": {"annotations": {"loadbalancer.openstack.org/lb-method": "LEAST_CONNECTIONS"}}}),
    )
    .await;
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    assert!(ip.starts_with("127.212.0."), "{ip}");
    let lbs = env.lbs_named("kube_service_kubernetes_bad_web").await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    let pool = env.lbaas.get_pool(&lbs[0].pools[0].id).await.unwrap();
    assert_eq!(pool.lb_algorithm, "LEAST_CONNECTIONS");

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_or_turned_cluster_ip_leaves_nothing_of_ours_but_keeps_the_users_fip() {
    let Some(env) = Env::start("removal", "gone", sandbox_config(213, FAST)).await else {
        return;
    };
    add_nodes(
        &env,
        &[("rm-1", "127.100.13.11"), ("rm-2", "127.100.13.12")],
    )
    .await;
    // The user's own floating IP, allocated before the Service exists.
    let user_fip = env
        .neutron
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: env.sandbox.seed().public_network_id.clone(),
            description: Some("reserved by the user".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;

    env.create_service(lb_service("deleted", json!({}))).await;
    env.create_service(lb_service("retyped", json!({}))).await;
    let mut byo = lb_service("byo", json!({}));
    byo["spec"]["loadBalancerIP"] = json!(user_fip.floating_ip_address);
    env.create_service(byo).await;

    for name in ["deleted", "retyped", "byo"] {
        env.wait_ingress_ip(name, LIMIT).await;
        assert!(env.has_finalizer(name).await, "{name} carries {CLEANUP}");
    }
    assert_eq!(
        env.ingress_ip("byo").await.as_deref(),
        Some(user_fip.floating_ip_address.as_str())
    );
    let byo_lb = env.lbs_named("kube_service_kubernetes_gone_byo").await;
    assert_eq!(byo_lb.len(), 1);
    let attached = env.neutron.get_floating_ip(&user_fip.id).await.unwrap();
    assert_eq!(
        attached.port_id.as_deref(),
        Some(byo_lb[0].vip_port_id.as_str())
    );
    assert_eq!(env.fips().await.len(), 3);

    // Type changed to ClusterIP: the Service stays, without status, finalizer or LB.
    env.patch_service("retyped", json!({"spec": {"type": "ClusterIP"}}))
        .await;
    wait_for("retyped released", LIMIT, || async {
        let s = env.services().get("retyped").await.ok()?;
        let no_finalizer = !s
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == CLEANUP);
        let no_ingress = s
            .status
            .and_then(|st| st.load_balancer)
            .and_then(|l| l.ingress)
            .is_none_or(|i| i.is_empty());
        (no_finalizer && no_ingress).then_some(())
    })
    .await;
    wait_for("retyped's LB gone", LIMIT, || async {
        env.lbs_named("kube_service_kubernetes_gone_retyped")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    for reason in [
        "EnsuringLoadBalancer",
        "EnsuredLoadBalancer",
        "DeletingLoadBalancer",
        "DeletedLoadBalancer",
    ] {
        env.wait_event("retyped", "Normal", &[reason]).await;
    }
    let svc = env.services().get("retyped").await.unwrap();
    let ann = svc.metadata.annotations.unwrap_or_default();
    assert!(
        !ann.contains_key("loadbalancer.openstack.org/load-balancer-address"),
        "{ann:?}"
    );

    // Deleted: gone from Kubernetes only after its cloud objects.
    let services = env.services();
    for name in ["deleted", "byo"] {
        services
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["deleted", "byo"] {
        env.wait_service_gone(name, LIMIT).await;
    }

    env.audit_leaks(&[&user_fip.id]).await;
    let kept = env.neutron.get_floating_ip(&user_fip.id).await.unwrap();
    assert_eq!(kept.floating_ip_address, user_fip.floating_ip_address);
    assert_eq!(
        kept.port_id, None,
        "the user's FIP is detached, not deleted"
    );
    assert!(env.services().get("retyped").await.is_ok());
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_service_switches_to_external_and_back() {
    let Some(env) = Env::start("internal", "inner", sandbox_config(214, FAST)).await else {
        return;
    };
    let nodes = [("int-1", "127.100.14.11"), ("int-2", "127.100.14.12")];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;

    const INTERNAL: &str = "service.beta.kubernetes.io/openstack-internal-load-balancer";
    let created = env
        .create_service(lb_service("web", json!({INTERNAL: "true"})))
        .await;
    let np = node_ports(&created)[0];
    let mut backends = Vec::new();
    for (name, ip) in nodes {
        backends.push(backend(ip, np, format!("{name}:{np}")).await);
    }
    let lb_name = "kube_service_kubernetes_inner_web";

    let vip_ingress = env.wait_ingress_ip("web", LIMIT).await;
    let lb = env.lbs_named(lb_name).await.remove(0);
    assert_eq!(vip_ingress, lb.vip_address, "internal: status is the VIP");
    assert!(env.fips().await.is_empty(), "internal: no FIP");

    env.patch_service(
        "web",
        json!({"metadata": {"annotations": {INTERNAL: "false"}}}),
    )
    .await;
    let fip = wait_for("a floating IP in the status", LIMIT, || async {
        env.ingress_ip("web")
            .await
            .filter(|ip| ip.starts_with("127.214.0."))
    })
    .await;
    let on_vip = env.fips_on(&lb.vip_port_id).await;
    assert_eq!(on_vip.len(), 1);
    assert_eq!(on_vip[0].floating_ip_address, fip);
    let answer = wait_for("traffic through the floating IP", LIMIT, || async {
        http_get(&fip, 80).await.filter(|a| a.contains(" 200 "))
    })
    .await;
    assert!(answer.contains(&format!(":{np}")), "{answer}");
    let same = env.lbs_named(lb_name).await;
    assert_eq!(same.len(), 1);
    assert_eq!(same[0].id, lb.id, "switching never recreates the LB");

    env.patch_service(
        "web",
        json!({"metadata": {"annotations": {INTERNAL: "true"}}}),
    )
    .await;
    env.wait_ingress_is("web", &lb.vip_address, LIMIT).await;
    wait_for("our FIP released", LIMIT, || async {
        env.fips().await.is_empty().then_some(())
    })
    .await;

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_churn_moves_members_with_one_batch_put_per_change() {
    let Some(env) = Env::start("churn", "churn", sandbox_config(215, FAST)).await else {
        return;
    };
    let (n1, n2, n3) = (
        ("churn-1", "127.100.15.11"),
        ("churn-2", "127.100.15.12"),
        ("churn-3", "127.100.15.13"),
    );
    add_nodes(&env, &[n1, n2]).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    env.create_service(lb_service("web", json!({}))).await;
    env.wait_ingress_ip("web", LIMIT).await;
    let lb_name = "kube_service_kubernetes_churn_web";
    wait_lb_active(&env, lb_name).await;
    assert_eq!(member_addresses(&env, lb_name).await, vec![n1.1, n2.1]);

    // Each change: wait for the members to follow and the LB to settle, then count the
    // member writes the change cost.
    let steps: [(&str, Vec<&str>); 3] = [
        ("node added", vec![n1.1, n2.1, n3.1]),
        ("node excluded by label", vec![n2.1, n3.1]),
        ("node NotReady", vec![n3.1]),
    ];
    for (i, (what, want)) in steps.into_iter().enumerate() {
        let from = env.request_log_mark().await;
        match i {
            0 => env.add_node(n3.0, n3.1, true).await,
            1 => {
                env.label_node(
                    n1.0,
                    "node.kubernetes.io/exclude-from-external-load-balancers",
                    "true",
                )
                .await
            }
            _ => env.patch_node_status(n2.0, n2.1, false).await,
        }
        wait_for(&format!("members after {what}"), LIMIT, || async {
            (member_addresses(&env, lb_name).await == want).then_some(())
        })
        .await;
        wait_lb_active(&env, lb_name).await;
        let puts = env.calls(from, "PUT").await;
        let batch: Vec<_> = puts
            .iter()
            .filter(|(p, _)| p.ends_with("/members"))
            .collect();
        let member_posts = env
            .calls(from, "POST")
            .await
            .into_iter()
            .filter(|(p, _)| p.contains("/members"))
            .count();
        let member_deletes = env
            .calls(from, "DELETE")
            .await
            .into_iter()
            .filter(|(p, _)| p.contains("/members"))
            .count();
        println!(
            "churn: {what}: {} batch member PUT, {} member POST, {} member DELETE, {} PUT in all",
            batch.len(),
            member_posts,
            member_deletes,
            puts.len()
        );
        assert_eq!(batch.len(), 1, "{what}: one batch PUT: {puts:?}");
        assert_eq!(puts.len(), 1, "{what}: no other update: {puts:?}");
        assert_eq!(member_posts + member_deletes, 0, "{what}");
    }

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_mode_and_missing_credentials_accept_services_and_warn() {
    let Some(env) = Env::start("disabled", "off", sandbox_config(216, FAST)).await else {
        return;
    };
    add_nodes(&env, &[("off-1", "127.100.16.11")]).await;
    let conf = env.sandbox.cloud_conf();
    assert!(conf.contains("enabled = true"));
    let disabled = env.write_conf(
        "disabled.conf",
        &conf.replace("enabled = true", "enabled = false"),
    );
    let no_creds = env.write_conf(
        "no-credentials.conf",
        &format!(
            "[Global]\nauth-url = {}\nregion = {}\n\n[LoadBalancer]\nenabled = true\n",
            env.sandbox.auth_url(),
            env.sandbox.region()
        ),
    );

    for (variant, conf, needle) in [
        ("disabled", &disabled, "enabled = false"),
        ("no-credentials", &no_creds, "credentials"),
    ] {
        let mut controller = harness::ControllerProcess::start(
            &env.cp.kubeconfig,
            conf,
            &env.cp.dir.join(format!("controller-{variant}.log")),
            &[],
        );
        controller.wait_ready(LIMIT).await;
        let from = env.request_log_mark().await;
        let created = env.create_service(lb_service(variant, json!({}))).await;
        assert!(
            !node_ports(&created).is_empty(),
            "{variant}: accepted as a NodePort-backed Service"
        );
        let ev = env
            .wait_event(variant, "Warning", &["LoadBalancerDisabled", needle])
            .await;
        println!(
            "disabled: {variant}: Warning {}: {}",
            ev.reason.unwrap_or_default(),
            ev.message.unwrap_or_default()
        );
        // Stays up and keeps out of the cloud.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(controller.is_running(), "{variant}: controller exited");
        // Counted before the test's own look into the cloud below.
        let calls = env.call_counts(from, u64::MAX).await;
        assert_eq!(calls.reads + calls.writes, 0, "{variant}: {calls:?}");
        assert_eq!(env.ingress_ip(variant).await, None);
        let condition = env.condition(variant).await;
        assert!(
            condition
                .as_ref()
                .is_some_and(|(status, reason, _)| status == "False" && reason == "Disabled"),
            "{variant}: {condition:?}"
        );
        assert!(env.live_lbs().await.is_empty());
        let warnings = env
            .events_for(variant)
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("LoadBalancerDisabled"))
            .count();
        assert_eq!(warnings, 1, "{variant}: one Warning per Service");
        env.services()
            .delete(variant, &DeleteParams::default())
            .await
            .unwrap();
        env.wait_service_gone(variant, LIMIT).await;
        drop(controller);
    }
    env.audit_leaks(&[]).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occm_created_load_balancer_is_adopted_in_place() {
    let Some(env) = Env::start("adopt", "occm", sandbox_config(217, FAST)).await else {
        return;
    };
    let nodes = [("occm-1", "127.100.17.11"), ("occm-2", "127.100.17.12")];
    add_nodes(&env, &nodes).await;
    // What OCCM left behind for occm/web: its names, no cluster-identity tag, members on the
    // Service's NodePort (fixed here so the LB can exist before the Service), and a FIP with
    // OCCM's description on the VIP port.
    const NODE_PORT: u16 = 31717;
    let lb_name = "kube_service_kubernetes_occm_web";
    let members = nodes
        .iter()
        .map(|(name, ip)| CreateMember {
            address: ip.to_string(),
            protocol_port: NODE_PORT,
            name: Some(name.to_string()),
            subnet_id: Some(env.sandbox.seed().nodes_subnet_id.clone()),
            ..Default::default()
        })
        .collect();
    let lb = env
        .lbaas
        .create_loadbalancer(&CreateLoadBalancer {
            name: Some(lb_name.into()),
            description: Some(
                "Kubernetes external service occm/web from cluster kubernetes".into(),
            ),
            vip_subnet_id: Some(env.sandbox.seed().nodes_subnet_id.clone()),
            listeners: Some(vec![CreateListener {
                protocol: "TCP".into(),
                protocol_port: 80,
                name: Some(format!("listener_0_{lb_name}")),
                default_pool: Some(CreatePool {
                    protocol: "TCP".into(),
                    lb_algorithm: "ROUND_ROBIN".into(),
                    name: Some(format!("pool_0_{lb_name}")),
                    members: Some(members),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_lb_active(&env, lb_name).await;
    let lb = env.lbaas.get_loadbalancer(&lb.id).await.unwrap();
    let listener_ids: Vec<String> = lb.listeners.iter().map(|l| l.id.clone()).collect();
    let occm_fip = env
        .neutron
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: env.sandbox.seed().public_network_id.clone(),
            port_id: Some(lb.vip_port_id.clone()),
            description: Some(
                "Floating IP for Kubernetes external service occm/web from cluster kubernetes"
                    .into(),
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!lb.tags.iter().any(|t| t.starts_with("kube-cluster-uid=")));

    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let from = env.request_log_mark().await;
    let mut svc = lb_service("web", json!({}));
    svc["spec"]["ports"][0]["nodePort"] = json!(NODE_PORT);
    env.create_service(svc).await;
    let mut backends = Vec::new();
    for (name, ip) in nodes {
        backends.push(backend(ip, NODE_PORT, format!("{name}:{NODE_PORT}")).await);
    }

    env.wait_ingress_is("web", &occm_fip.floating_ip_address, LIMIT)
        .await;
    wait_for("our cluster tag on the adopted LB", LIMIT, || async {
        let l = env.lbaas.get_loadbalancer(&lb.id).await.ok()?;
        l.tags
            .iter()
            .any(|t| t.starts_with("kube-cluster-uid="))
            .then_some(l)
    })
    .await;
    let live = env.lbs_named(lb_name).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].id, lb.id, "the same LB, not a new one");
    let now: Vec<String> = live[0].listeners.iter().map(|l| l.id.clone()).collect();
    assert_eq!(now, listener_ids, "listeners kept");
    let lb_posts: Vec<_> = env
        .calls(from, "POST")
        .await
        .into_iter()
        .filter(|(p, _)| p.contains("/loadbalancers") || p.contains("/floatingips"))
        .collect();
    assert!(lb_posts.is_empty(), "nothing recreated: {lb_posts:?}");
    let svc = env.services().get("web").await.unwrap();
    assert_eq!(
        svc.metadata
            .annotations
            .unwrap_or_default()
            .get("loadbalancer.openstack.org/load-balancer-id"),
        Some(&lb.id)
    );
    let answer = wait_for("traffic through the adopted LB", LIMIT, || async {
        http_get(&occm_fip.floating_ip_address, 80)
            .await
            .filter(|a| a.contains(" 200 "))
    })
    .await;
    assert!(answer.contains(&format!(":{NODE_PORT}")), "{answer}");

    // Adopted means ours: deleting the Service removes the LB and OCCM's FIP.
    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_create_and_mid_delete_leaves_no_duplicate_and_no_leak() {
    // A slow cloud keeps the LB PENDING_CREATE long enough for the kill to land mid-create.
    let Some(env) = Env::start(
        "sigkill",
        "crash",
        sandbox_config(218, Duration::from_secs(2)),
    )
    .await
    else {
        return;
    };
    add_nodes(
        &env,
        &[("kill-1", "127.100.18.11"), ("kill-2", "127.100.18.12")],
    )
    .await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let lb_name = "kube_service_kubernetes_crash_web";

    // Mid-create: killed as soon as the LB POST was answered.
    let from = env.request_log_mark().await;
    env.create_service(lb_service("web", json!({}))).await;
    wait_for("the LB POST", LIMIT, || async {
        env.calls(from, "POST")
            .await
            .iter()
            .any(|(p, _)| p.ends_with("/loadbalancers"))
            .then_some(())
    })
    .await;
    controller.sigkill();
    let mid = env.live_lbs().await;
    println!(
        "sigkill: killed mid-create; LB {:?}, {} FIP(s)",
        mid.iter()
            .map(|l| l.provisioning_status.clone())
            .collect::<Vec<_>>(),
        env.fips().await.len()
    );
    controller.restart();
    controller.wait_ready(LIMIT).await;
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    let lbs = env.lbs_named(lb_name).await;
    assert_eq!(lbs.len(), 1, "exactly one LB: {lbs:?}");
    assert_eq!(env.live_lbs().await.len(), 1);
    let fips = env.fips().await;
    assert_eq!(fips.len(), 1, "exactly one FIP: {fips:?}");
    assert_eq!(fips[0].floating_ip_address, ip);
    assert_eq!(
        fips[0].port_id.as_deref(),
        Some(lbs[0].vip_port_id.as_str())
    );

    // Mid-delete: the cloud refuses the LB DELETE, so the controller is caught after it
    // began cleaning up and before it could finish; it is killed there.
    wait_lb_active(&env, lb_name).await;
    env.add_fault(json!({"service": "load-balancer", "method": "DELETE",
                         "path": "/loadbalancers/", "status": 500}))
        .await;
    let from = env.request_log_mark().await;
    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the refused LB DELETE", LIMIT, || async {
        env.calls(from, "DELETE")
            .await
            .iter()
            .any(|(p, _)| p.contains("/loadbalancers/"))
            .then_some(())
    })
    .await;
    controller.sigkill();
    println!(
        "sigkill: killed mid-delete after {:?}",
        env.calls(from, "DELETE").await
    );
    env.clear_faults().await;
    assert!(env.has_finalizer("web").await, "finalizer still held");
    controller.restart();
    controller.wait_ready(LIMIT).await;
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    drop(controller);
    env.finish().await;
}

/// Listeners (by port) and their pools of the LB `lb_id`.
async fn listeners_and_pools(
    env: &Env,
    lb_id: &str,
) -> Vec<(openstack::lbaas::Listener, openstack::lbaas::Pool)> {
    let lb = env.lbaas.get_loadbalancer(lb_id).await.unwrap();
    let mut out = Vec::new();
    for r in &lb.listeners {
        // A listener deleted a moment ago may still be named by its LB.
        let Ok(l) = env.lbaas.get_listener(&r.id).await else {
            continue;
        };
        let Some(pool_id) = l.default_pool_id.clone() else {
            continue;
        };
        // A pool deleted a moment ago may still be named by its listener.
        if let Ok(p) = env.lbaas.get_pool(&pool_id).await {
            out.push((l, p));
        }
    }
    out.sort_by_key(|(l, _)| l.protocol_port);
    out
}

/// Successful Neutron/Octavia writes since `from`, as "METHOD path".
async fn successful_writes(env: &Env, from: u64) -> Vec<String> {
    let mut out = Vec::new();
    for method in ["POST", "PUT", "DELETE"] {
        for (path, status) in env.calls(from, method).await {
            if (200..300).contains(&status) {
                out.push(format!("{method} {path}"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_and_settings_change_in_place_with_minimal_writes() {
    let Some(env) = Env::start("inplace", "edit", sandbox_config(219, FAST)).await else {
        return;
    };
    let nodes = [("edit-1", "127.100.19.11"), ("edit-2", "127.100.19.12")];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let lb_name = "kube_service_kubernetes_edit_web";
    env.create_service(lb_service("web", json!({}))).await;
    let fip = env.wait_ingress_ip("web", LIMIT).await;
    wait_lb_active(&env, lb_name).await;
    let lb_id = env.lbs_named(lb_name).await.remove(0).id;

    // A port added: one more listener (with its pool and members) on the same LB.
    let from = env.request_log_mark().await;
    env.patch_service(
        "web",
        json!({"spec": {"ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "alt", "port": 8080, "protocol": "TCP"}]}}),
    )
    .await;
    wait_for("a second listener", LIMIT, || async {
        let lp = listeners_and_pools(&env, &lb_id).await;
        (lp.len() == 2 && lp.iter().all(|(_, p)| p.members.len() == nodes.len())).then_some(())
    })
    .await;
    wait_lb_active(&env, lb_name).await;
    let added = successful_writes(&env, from).await;
    println!("in-place: port added: {} writes {added:?}", added.len());
    assert!(
        added.iter().all(|w| !w.contains("/loadbalancers")),
        "the LB itself is neither recreated nor deleted: {added:?}"
    );

    // Settings Octavia can change in place are changed in place.
    let from = env.request_log_mark().await;
    env.patch_service(
        "web",
        json!({
            "metadata": {"annotations": {
                "loadbalancer.openstack.org/timeout-client-data": "12345",
                "loadbalancer.openstack.org/connection-limit": "100",
                "loadbalancer.openstack.org/lb-method": "SOURCE_IP"}},
            "spec": {"sessionAffinity": "ClientIP", "loadBalancerSourceRanges": ["127.0.0.0/8"]}
        }),
    )
    .await;
    wait_for("listeners and pools updated", LIMIT, || async {
        let lp = listeners_and_pools(&env, &lb_id).await;
        (lp.len() == 2
            && lp.iter().all(|(l, p)| {
                l.timeout_client_data == Some(12345)
                    && l.connection_limit == Some(100)
                    && l.allowed_cidrs.as_deref() == Some(&["127.0.0.0/8".to_string()][..])
                    && p.lb_algorithm == "SOURCE_IP"
                    && p.session_persistence
                        .as_ref()
                        .is_some_and(|s| s.persistence_type == "SOURCE_IP")
            }))
        .then_some(())
    })
    .await;
    wait_lb_active(&env, lb_name).await;
    let updated = successful_writes(&env, from).await;
    println!(
        "in-place: settings changed: {} writes {updated:?}",
        updated.len()
    );
    assert!(
        updated.iter().all(|w| w.starts_with("PUT ")),
        "only in-place updates: {updated:?}"
    );
    assert_eq!(
        updated.len(),
        4,
        "one PUT per listener and per pool: {updated:?}"
    );

    // A port removed: its listener and pool go, the other keeps serving.
    let from = env.request_log_mark().await;
    env.patch_service(
        "web",
        json!({"spec": {"ports": [{"name": "alt", "port": 8080, "protocol": "TCP"}]}}),
    )
    .await;
    wait_for("only the 8080 listener and its pool", LIMIT, || async {
        let lb = env.lbaas.get_loadbalancer(&lb_id).await.ok()?;
        let lp = listeners_and_pools(&env, &lb_id).await;
        (lb.listeners.len() == 1
            && lb.pools.len() == 1
            && lp.len() == 1
            && lp[0].0.protocol_port == 8080)
            .then_some(())
    })
    .await;
    wait_lb_active(&env, lb_name).await;
    let removed = successful_writes(&env, from).await;
    println!(
        "in-place: port removed: {} writes {removed:?}",
        removed.len()
    );
    assert!(
        removed.iter().all(|w| !w.contains("/loadbalancers")),
        "the LB itself is neither recreated nor deleted: {removed:?}"
    );
    let live = env.lbs_named(lb_name).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, lb_id, "same LB throughout");
    assert_eq!(env.ingress_ip("web").await.as_deref(), Some(fip.as_str()));

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leads_and_the_other_takes_over_after_sigkill() {
    let Some(env) = Env::start("replicas", "ha", sandbox_config(220, FAST)).await else {
        return;
    };
    add_nodes(
        &env,
        &[("ha-1", "127.100.20.11"), ("ha-2", "127.100.20.12")],
    )
    .await;
    let replica = |id: &str| {
        harness::ControllerProcess::start(
            &env.cp.kubeconfig,
            &env.conf_path,
            &env.cp.dir.join(format!("controller-{id}.log")),
            &["--leader-elect", "--leader-elect-identity", id],
        )
    };
    let mut a = replica("replica-a");
    let mut b = replica("replica-b");
    a.wait_ready(LIMIT).await;
    b.wait_ready(LIMIT).await;

    env.create_service(lb_service("one", json!({}))).await;
    env.wait_ingress_ip("one", LIMIT).await;
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(env.client.clone(), "kube-system");
    let holder = || async {
        leases
            .get("openstack-lb-controller")
            .await
            .ok()?
            .spec?
            .holder_identity
    };
    let first = wait_for("a leader", LIMIT, holder).await;
    println!("replicas: {first} leads");
    let (leader, standby, next) = match first.as_str() {
        "replica-a" => (&mut a, &mut b, "replica-b"),
        "replica-b" => (&mut b, &mut a, "replica-a"),
        other => panic!("unexpected holder {other}"),
    };

    // The leader dies without releasing the Lease; the standby must take over and finish
    // the work that arrives meanwhile.
    leader.sigkill();
    env.create_service(lb_service("two", json!({}))).await;
    env.wait_ingress_ip("two", LIMIT).await;
    wait_for("the standby holds the Lease", LIMIT, || async {
        (holder().await.as_deref() == Some(next)).then_some(())
    })
    .await;
    assert!(standby.is_running(), "the new leader keeps running");
    for name in ["one", "two"] {
        let lbs = env
            .lbs_named(&format!("kube_service_kubernetes_ha_{name}"))
            .await;
        assert_eq!(lbs.len(), 1, "{name}: exactly one LB");
    }
    assert_eq!(env.fips().await.len(), 2);

    let services = env.services();
    for name in ["one", "two"] {
        services
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["one", "two"] {
        env.wait_service_gone(name, LIMIT).await;
    }
    env.audit_leaks(&[]).await;
    drop(a);
    drop(b);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_traffic_policy_local_sends_traffic_only_to_nodes_with_endpoints() {
    let Some(env) = Env::start("local", "local", sandbox_config(221, FAST)).await else {
        return;
    };
    let nodes = [
        ("local-1", "127.100.21.11"),
        ("local-2", "127.100.21.12"),
        ("local-3", "127.100.21.13"),
    ];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let mut svc = lb_service(
        "web",
        json!({"loadbalancer.openstack.org/health-monitor-delay": "1",
               "loadbalancer.openstack.org/health-monitor-timeout": "1"}),
    );
    svc["spec"]["externalTrafficPolicy"] = json!("Local");
    let created = env.create_service(svc).await;
    let np = node_ports(&created)[0];
    let hc = created
        .spec
        .as_ref()
        .and_then(|s| s.health_check_node_port)
        .expect("a healthCheckNodePort for Local") as u16;
    // kube-proxy's health check answers 200 only where the Service has local endpoints:
    // here on the first two nodes, 503 on the third.
    let mut servers = Vec::new();
    for (i, (name, ip)) in nodes.iter().enumerate() {
        servers.push(backend(ip, np, format!("{name}:{np}")).await);
        let status = if i < 2 {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        servers.push(harness::http_responder(ip, hc, status, "{}".into()).await);
    }
    let fip = env.wait_ingress_ip("web", LIMIT).await;
    let lb_name = "kube_service_kubernetes_local_web";
    let lb = env.lbs_named(lb_name).await.remove(0);
    let pool_id = lb.pools[0].id.clone();
    let pool = env.lbaas.get_pool(&pool_id).await.unwrap();
    let monitor_id = pool.healthmonitor_id.expect("Local always gets a monitor");
    let monitor = env.lbaas.get_healthmonitor(&monitor_id).await.unwrap();
    assert_eq!(monitor.monitor_type, "HTTP");
    assert_eq!(monitor.url_path.as_deref(), Some("/healthz"));
    let members = env
        .lbaas
        .list_members(&pool_id, &openstack::ListQuery::new())
        .await
        .unwrap();
    assert_eq!(members.len(), 3);
    assert!(
        members.iter().all(|m| m.monitor_port == Some(hc)),
        "{members:?}"
    );

    // Once the probes have judged, only nodes with endpoints take traffic.
    wait_for("the third node judged down", LIMIT, || async {
        let ms = env
            .lbaas
            .list_members(&pool_id, &openstack::ListQuery::new())
            .await
            .ok()?;
        let down: Vec<&str> = ms
            .iter()
            .filter(|m| m.operating_status == "ERROR")
            .map(|m| m.address.as_str())
            .collect();
        let up = ms.iter().filter(|m| m.operating_status == "ONLINE").count();
        (down == [nodes[2].1] && up == 2).then_some(())
    })
    .await;
    let mut answered_by = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let a = wait_for("an answer through the FIP", LIMIT, || async {
            http_get(&fip, 80).await.filter(|a| a.contains(" 200 "))
        })
        .await;
        let node = nodes
            .iter()
            .find(|(name, _)| a.contains(&format!("{name}:")))
            .map(|(name, _)| *name)
            .unwrap_or("?");
        answered_by.insert(node);
    }
    println!("local: answered by {answered_by:?}");
    assert!(!answered_by.contains(nodes[2].0), "{answered_by:?}");
    assert!(!answered_by.contains("?"), "{answered_by:?}");

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    for s in servers {
        s.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_service_forwards_datagrams_and_keep_floatingip_outlives_the_service() {
    let Some(env) = Env::start("udp", "udp", sandbox_config(222, FAST)).await else {
        return;
    };
    let nodes = [("udp-1", "127.100.22.11"), ("udp-2", "127.100.22.12")];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let created = env
        .create_service(json!({
            "metadata": {"name": "dns", "annotations": {"loadbalancer.openstack.org/keep-floatingip": "true"}},
            "spec": {"type": "LoadBalancer", "selector": {"app": "dns"},
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .await;
    let np = node_ports(&created)[0];
    // UDP echo servers on the NodePort that prefix their node's name.
    let mut echoes = Vec::new();
    for (name, ip) in nodes {
        let sock = tokio::net::UdpSocket::bind((ip, np)).await.unwrap();
        echoes.push(tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let mut answer = format!("{name}:").into_bytes();
                answer.extend_from_slice(&buf[..n]);
                let _ = sock.send_to(&answer, from).await;
            }
        }));
    }
    let fip = env.wait_ingress_ip("dns", LIMIT).await;
    let lb = env
        .lbs_named("kube_service_kubernetes_udp_dns")
        .await
        .remove(0);
    let listener = env.lbaas.get_listener(&lb.listeners[0].id).await.unwrap();
    assert_eq!(
        (listener.protocol.as_str(), listener.protocol_port),
        ("UDP", 53)
    );
    let pool = env
        .lbaas
        .get_pool(listener.default_pool_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(pool.protocol, "UDP");

    let client = tokio::net::UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
    let answer = wait_for("a UDP answer through the floating IP", LIMIT, || async {
        client.send_to(b"ping", (fip.as_str(), 53)).await.ok()?;
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    })
    .await;
    assert!(
        answer.ends_with(":ping") && answer.starts_with("udp-"),
        "{answer}"
    );

    // keep-floatingip: the LB goes with the Service, the FIP stays (detached).
    let kept = env.fips().await.remove(0);
    assert_eq!(kept.floating_ip_address, fip);
    env.services()
        .delete("dns", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("dns", LIMIT).await;
    env.audit_leaks(&[&kept.id]).await;
    let after = env.neutron.get_floating_ip(&kept.id).await.unwrap();
    assert_eq!(after.floating_ip_address, fip);
    assert_eq!(after.port_id, None);
    for e in echoes {
        e.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_floating_ip_survives_orphan_collection() {
    let Some(env) = Env::start("keepgc", "keep", sandbox_config(223, FAST)).await else {
        return;
    };
    add_nodes(&env, &[("keep-1", "127.100.23.11")]).await;
    // Orphan collection runs every resync period; short ones so it runs during the test.
    let mut controller = env.start_controller(&["--resync-period", "2s", "--orphan-grace", "1s"]);
    controller.wait_ready(LIMIT).await;
    env.create_service(lb_service(
        "web",
        json!({"loadbalancer.openstack.org/keep-floatingip": "true"}),
    ))
    .await;
    let fip = env.wait_ingress_ip("web", LIMIT).await;
    let kept = env.fips().await.remove(0);
    assert_eq!(kept.floating_ip_address, fip);
    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    // Several collection rounds (each longer than the grace period) later.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = env.neutron.get_floating_ip(&kept.id).await;
    assert!(
        after.as_ref().is_ok_and(|f| f.floating_ip_address == fip),
        "keep-floatingip: the address must outlive orphan collection: {after:?}"
    );
    env.audit_leaks(&[&kept.id]).await;
    drop(controller);
    env.finish().await;
}
