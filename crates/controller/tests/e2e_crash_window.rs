//! End to end: the controller SIGKILLed EXACTLY between an OpenStack write and its answer.
//! The sandbox runs the handler (the load balancer, floating IP or cascade delete is
//! committed in the cloud) and then holds the answer back (`hold_response_ms`, `times: 1`);
//! the test sees the object in the sandbox, checks that the controller has not learned of it
//! (no status, no follow-up call naming it), kills the process and restarts it. The restarted
//! controller must adopt what exists: one LB, one FIP (given the cluster tag it missed), no
//! repeated POST (counted from the request log), traffic through the FIP, and after deletion a
//! clean leak audit. Each test has
//! its own world (control plane, sandbox with floating range 127.24x.0.0/24, namespace, node
//! addresses 127.100.4x.x), so they may run in parallel.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, http_get, node_ports, sandbox_config, Env, LIMIT};
use kube::api::DeleteParams;
use serde_json::{json, Value};

const FAST: Duration = Duration::from_millis(300);
/// Long enough that the held answer never arrives before the kill; short enough that a
/// sandbox that did not drop the dead caller's request frees it soon after the test.
const HOLD_MS: u64 = 30_000;
const LB_ID_ANNOTATION: &str = "loadbalancer.openstack.org/load-balancer-id";

fn two_port_service(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                           {"name": "alt", "port": 8080, "protocol": "TCP"}]}
    })
}

/// Nodes plus an HTTP backend on each node address at each of the Service's NodePorts.
async fn nodes_with_backends(
    nodes: &[(&str, &str)],
    svc: &k8s_openapi::api::core::v1::Service,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for (name, ip) in nodes {
        for port in node_ports(svc) {
            out.push(backend(ip, port, format!("{name}:{port}")).await);
        }
    }
    out
}

async fn add_nodes(env: &Env, nodes: &[(&str, &str)]) {
    for (name, ip) in nodes {
        env.add_node(name, ip, true).await;
    }
}

/// The fault rules as the admin API reports them (with what is left of each `times`).
async fn fault_rules(env: &Env) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/faults", env.sandbox.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["rules"].as_array().cloned().unwrap_or_default()
}

/// Waits until the one-shot hold rule has been used (the request reached the sandbox).
async fn wait_hold_used(env: &Env) {
    wait_for("the held request", LIMIT, || async {
        let rules = fault_rules(env).await;
        (rules.len() == 1 && rules[0]["times"] == 0).then_some(())
    })
    .await;
}

/// Requests with this method whose path ends with `suffix`, logged since `from`.
async fn count(env: &Env, from: u64, method: &str, suffix: &str) -> usize {
    env.calls(from, method)
        .await
        .iter()
        .filter(|(p, _)| p.ends_with(suffix))
        .count()
}

/// Both ports answer through the floating IP, each from a node backend on its NodePort.
async fn assert_traffic(ip: &str, svc: &k8s_openapi::api::core::v1::Service) {
    for (port, node_port) in [80u16, 8080].into_iter().zip(node_ports(svc)) {
        let body = wait_for(&format!("{ip}:{port} answers"), LIMIT, || async {
            http_get(ip, port).await.filter(|b| b.contains("200 OK"))
        })
        .await;
        assert!(
            body.contains(&format!(":{node_port}")),
            "{ip}:{port} reached NodePort {node_port}: {body}"
        );
    }
}

async fn delete_and_audit(env: &Env, name: &str) {
    env.services()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone(name, LIMIT).await;
    env.audit_leaks(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_lb_post_answer_is_held_the_restart_adopts_the_one_lb() {
    let Some(env) = Env::start("holdlb", "holdlb", sandbox_config(241, FAST)).await else {
        return;
    };
    let nodes = [("hl-1", "127.100.41.11"), ("hl-2", "127.100.41.12")];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let lb_name = "kube_service_kubernetes_holdlb_web";

    env.add_fault(json!({"service": "load-balancer", "method": "POST",
                         "path": "/loadbalancers$", "hold_response_ms": HOLD_MS, "times": 1}))
        .await;
    let before = env.request_log_mark().await;
    let svc = env.create_service(two_port_service("web")).await;
    let backends = nodes_with_backends(&nodes, &svc).await;
    wait_hold_used(&env).await;
    // The POST's handler ran: the LB exists in the cloud, fully populated.
    let held = wait_for("the LB in the sandbox", LIMIT, || async {
        env.lbs_named(lb_name).await.pop()
    })
    .await;
    assert_eq!(held.listeners.len(), 2, "fully-populated create: {held:?}");
    // ... and the controller has not seen the answer: no status, no id written back, and
    // nothing that needs the LB's answer (its VIP port for the FIP) was attempted.
    assert_eq!(env.ingress_ip("web").await, None);
    let annotations = env
        .services()
        .get("web")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(annotations.get(LB_ID_ANNOTATION), None);
    assert_eq!(count(&env, before, "POST", "/floatingips").await, 0);
    assert!(env.fips().await.is_empty());
    assert_eq!(
        count(&env, before, "POST", "/loadbalancers").await,
        0,
        "the held POST has not been answered"
    );

    controller.sigkill();
    env.clear_faults().await;
    let restart = env.request_log_mark().await;
    controller.restart();
    controller.wait_ready(LIMIT).await;
    let ip = env.wait_ingress_ip("web", LIMIT).await;

    let lbs = env.live_lbs().await;
    assert_eq!(lbs.len(), 1, "exactly one LB in the cloud: {lbs:?}");
    assert_eq!(
        lbs[0].id, held.id,
        "the LB created before the kill, adopted"
    );
    assert_eq!(
        count(&env, restart, "POST", "/loadbalancers").await,
        0,
        "no second LB POST after the restart"
    );
    let fips = env.fips().await;
    assert_eq!(fips.len(), 1, "exactly one FIP: {fips:?}");
    assert_eq!(fips[0].floating_ip_address, ip);
    assert_eq!(fips[0].port_id.as_deref(), Some(held.vip_port_id.as_str()));
    assert_eq!(count(&env, restart, "POST", "/floatingips").await, 1);
    let annotations = env
        .services()
        .get("web")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(annotations.get(LB_ID_ANNOTATION), Some(&held.id));
    let after = env.call_counts(restart, u64::MAX).await;
    println!(
        "hold LB POST: 1 LB {} adopted, FIP {ip}; calls after restart: {after:?}",
        held.id
    );
    // All that was left to do: the FIP (POST, then its tag PUT). The LB is not touched.
    let puts = env.calls(restart, "PUT").await;
    assert_eq!(after.writes, 2, "FIP POST + tag PUT only; PUTs {puts:?}");
    assert!(
        puts.iter().all(|(p, _)| p.contains("/floatingips/")),
        "{puts:?}"
    );
    assert_traffic(&ip, &svc).await;

    delete_and_audit(&env, "web").await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_fip_post_answer_is_held_the_restart_reuses_that_fip() {
    let Some(env) = Env::start("holdfip", "holdfip", sandbox_config(242, FAST)).await else {
        return;
    };
    let nodes = [("hf-1", "127.100.42.11"), ("hf-2", "127.100.42.12")];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let lb_name = "kube_service_kubernetes_holdfip_web";

    env.add_fault(json!({"service": "network", "method": "POST",
                         "path": "^/v2.0/floatingips$", "hold_response_ms": HOLD_MS, "times": 1}))
        .await;
    let before = env.request_log_mark().await;
    let svc = env.create_service(two_port_service("web")).await;
    let backends = nodes_with_backends(&nodes, &svc).await;
    wait_hold_used(&env).await;
    let held = wait_for("the FIP in the sandbox", LIMIT, || async {
        env.fips().await.pop()
    })
    .await;
    let lb = env.lbs_named(lb_name).await.remove(0);
    assert_eq!(
        held.port_id.as_deref(),
        Some(lb.vip_port_id.as_str()),
        "the FIP was created attached to the VIP port"
    );
    // The controller never learned the FIP's id: no status, and no call names the FIP (its
    // tags are set by a follow-up PUT that needs the id).
    assert_eq!(env.ingress_ip("web").await, None);
    for method in ["PUT", "DELETE", "GET"] {
        let naming: Vec<_> = env
            .calls(before, method)
            .await
            .into_iter()
            .filter(|(p, _)| p.contains(&held.id))
            .collect();
        assert!(
            naming.is_empty(),
            "{method} naming the held FIP: {naming:?}"
        );
    }
    assert_eq!(count(&env, before, "POST", "/loadbalancers").await, 1);

    controller.sigkill();
    env.clear_faults().await;
    let restart = env.request_log_mark().await;
    controller.restart();
    controller.wait_ready(LIMIT).await;
    env.wait_ingress_is("web", &held.floating_ip_address, LIMIT)
        .await;

    let fips = env.fips().await;
    assert_eq!(fips.len(), 1, "found and reused, not duplicated: {fips:?}");
    assert_eq!(fips[0].id, held.id);
    assert_eq!(fips[0].port_id.as_deref(), Some(lb.vip_port_id.as_str()));
    assert_eq!(
        count(&env, restart, "POST", "/floatingips").await,
        0,
        "no second FIP POST after the restart"
    );
    assert_eq!(count(&env, restart, "POST", "/loadbalancers").await, 0);
    let lbs = env.live_lbs().await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    assert_eq!(lbs[0].id, lb.id);
    let after = env.call_counts(restart, u64::MAX).await;
    println!(
        "hold FIP POST: FIP {} {} reused (tags after restart {:?}); calls after restart: {after:?}",
        held.id, held.floating_ip_address, fips[0].tags
    );
    // The tag PUT that the kill cut off is made up for, so that orphan collection (which
    // lists by the cluster tag) can find this FIP; it is the only write.
    let cluster_tag = lb
        .tags
        .iter()
        .find(|t| t.starts_with("kube-cluster-uid="))
        .cloned()
        .expect("the LB carries the cluster tag");
    assert!(
        !held.tags.contains(&cluster_tag),
        "the kill came before the tag PUT: {:?}",
        held.tags
    );
    assert!(
        fips[0].tags.contains(&cluster_tag),
        "tagged after the restart: {:?}",
        fips[0].tags
    );
    let puts = env.calls(restart, "PUT").await;
    assert_eq!(
        after.writes, 1,
        "everything else already existed: only the tag PUT; PUTs {puts:?}"
    );
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(
        puts[0]
            .0
            .contains(&format!("/floatingips/{}/tags/", held.id)),
        "{puts:?}"
    );
    assert_traffic(&held.floating_ip_address, &svc).await;

    // Not leaked: the Service's deletion releases it like any FIP of ours.
    delete_and_audit(&env, "web").await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_cascade_delete_answer_is_held_the_restart_drops_the_finalizer() {
    let Some(env) = Env::start("holddel", "holddel", sandbox_config(243, FAST)).await else {
        return;
    };
    let nodes = [("hd-1", "127.100.43.11"), ("hd-2", "127.100.43.12")];
    add_nodes(&env, &nodes).await;
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let lb_name = "kube_service_kubernetes_holddel_web";

    let svc = env.create_service(two_port_service("web")).await;
    let backends = nodes_with_backends(&nodes, &svc).await;
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    assert_traffic(&ip, &svc).await;
    wait_for("LB ACTIVE", LIMIT, || async {
        env.lbs_named(lb_name)
            .await
            .first()
            .is_some_and(|l| l.provisioning_status == "ACTIVE")
            .then_some(())
    })
    .await;
    let lb = env.lbs_named(lb_name).await.remove(0);

    env.add_fault(json!({"service": "load-balancer", "method": "DELETE",
                         "path": "/loadbalancers/", "hold_response_ms": HOLD_MS, "times": 1}))
        .await;
    let before = env.request_log_mark().await;
    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_hold_used(&env).await;
    // The DELETE's handler ran: the LB is being deleted (or gone) in the cloud.
    wait_for("the LB leaving the sandbox", LIMIT, || async {
        env.lbs_named(lb_name).await.is_empty().then_some(())
    })
    .await;
    // The controller has not seen the answer: the Service is still held by the finalizer.
    assert!(env.has_finalizer("web").await, "finalizer still held");
    assert_eq!(
        count(&env, before, "DELETE", &lb.id).await,
        0,
        "not answered"
    );
    // One cascade DELETE took the whole tree: no child was deleted on its own before it. The
    // FIP was released first (Neutron steps come before Octavia's).
    let deletes = env.calls(before, "DELETE").await;
    assert!(
        deletes
            .iter()
            .all(|(p, _)| !p.contains("/listeners/") && !p.contains("/pools/")),
        "{deletes:?}"
    );
    assert!(env.fips().await.is_empty());

    controller.sigkill();
    env.clear_faults().await;
    let restart = env.request_log_mark().await;
    controller.restart();
    controller.wait_ready(LIMIT).await;
    env.wait_service_gone("web", LIMIT).await;
    assert_eq!(
        count(&env, restart, "DELETE", &lb.id).await,
        0,
        "a LB already being deleted is not deleted again"
    );
    let after = env.call_counts(restart, u64::MAX).await;
    println!(
        "hold cascade DELETE: LB {} gone, finalizer removed after restart; calls after restart: {after:?}",
        lb.id
    );
    assert_eq!(
        after.writes, 0,
        "the FIP went before the LB DELETE; nothing left to write"
    );
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}
