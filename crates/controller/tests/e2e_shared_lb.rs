//! End to end: two Services on one load balancer through `loadbalancer.openstack.org/
//! load-balancer-id` (SPEC §4 "Shared LBs", docs/annotations.md "Sharing and adopting load
//! balancers"). Service A gets its own LB; Service B points at it and gets only its own
//! listener and pool there, the same external IP, and traffic on its port; a third Service is
//! refused by `max-shared-lb` (default 2) and a port clash is refused with a Warning naming
//! it, both without a single write; deleting B removes only B's listener and pool; deleting A
//! while B still uses the LB keeps the LB for B; at the end nothing is left (the LB named
//! after A, once nobody uses it, is collected as an orphan). A second test holds what B
//! keeps when A goes first: its external IP (the floating IP on the shared VIP port stays
//! until the last user is gone) and its traffic. Own worlds: floating ranges 127.244.0.0/24 and
//! 127.246.0.0/24, nodes 127.100.44.x and 127.100.46.x.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, http_get, node_ports, sandbox_config, Env, LIMIT};
use k8s_openapi::api::core::v1::Service;
use kube::api::DeleteParams;
use serde_json::{json, Value};

const FAST: Duration = Duration::from_millis(300);
const LB_ID: &str = "loadbalancer.openstack.org/load-balancer-id";
/// The owner's consent to be joined (the Services here all live in the test namespace).
const SHARED_WITH: &str = "loadbalancer.openstack.org/shared-with";
type Nodes = [(&'static str, &'static str); 2];
const NODES: Nodes = [("sh-1", "127.100.44.11"), ("sh-2", "127.100.44.12")];
const LB_A: &str = "kube_service_kubernetes_share_a";
const LB_B: &str = "kube_service_kubernetes_share_b";

fn service(name: &str, port: u16, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}]}
    })
}

/// A backend on every node at the Service's NodePort, answering with the Service's name.
async fn backends_for(
    svc: &Service,
    nodes: &Nodes,
    name: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for (node, ip) in nodes {
        for port in node_ports(svc) {
            out.push(backend(ip, port, format!("{name}@{node}")).await);
        }
    }
    out
}

/// (listener name, port, pool name) of every listener of the LB, sorted by port.
async fn listeners(env: &Env, lb_id: &str) -> Vec<(String, u16, String)> {
    let lb = env.lbaas.get_loadbalancer(lb_id).await.unwrap();
    let mut out = Vec::new();
    for r in &lb.listeners {
        let l = env.lbaas.get_listener(&r.id).await.unwrap();
        let pool = match &l.default_pool_id {
            Some(id) => env
                .lbaas
                .get_pool(id)
                .await
                .map(|p| p.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        out.push((l.name, l.protocol_port, pool));
    }
    out.sort_by_key(|(_, port, _)| *port);
    out
}

async fn wait_active(env: &Env, lb_id: &str) {
    wait_for(&format!("{lb_id} ACTIVE"), LIMIT, || async {
        let lb = env.lbaas.get_loadbalancer(lb_id).await.ok()?;
        (lb.provisioning_status == "ACTIVE").then_some(())
    })
    .await;
}

/// Successful Neutron/Octavia writes since `from`, as "METHOD path".
async fn writes(env: &Env, from: u64) -> Vec<String> {
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

/// All write attempts since `from`, whatever their answer.
async fn attempted_writes(env: &Env, from: u64) -> usize {
    let mut n = 0;
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        n += env.calls(from, method).await.len();
    }
    n
}

/// Waits until the body of a GET to `ip:port` contains `needle`.
async fn wait_answer(ip: &str, port: u16, needle: &str) {
    wait_for(
        &format!("{ip}:{port} answering {needle}"),
        LIMIT,
        || async { http_get(ip, port).await.filter(|b| b.contains(needle)) },
    )
    .await;
}

async fn wait_ready_condition(env: &Env, name: &str) {
    wait_for(&format!("{name} Ready"), LIMIT, || async {
        let (status, _, _) = env.condition(name).await?;
        (status == "True").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_share_one_load_balancer_by_load_balancer_id() {
    let Some(env) = Env::start("shared", "share", sandbox_config(244, FAST)).await else {
        return;
    };
    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    // A short resync and orphan grace, so that the LB left behind by A (see the end) is
    // collected within the test instead of after the default 10 minutes.
    let mut controller = env.start_controller(&["--resync-period", "2s", "--orphan-grace", "1s"]);
    controller.wait_ready(LIMIT).await;

    // A: a LB of its own.
    let a = env
        .create_service(service("a", 80, json!({SHARED_WITH: env.namespace})))
        .await;
    let mut backends = backends_for(&a, &NODES, "svc-a").await;
    let ip = env.wait_ingress_ip("a", LIMIT).await;
    let lb_id = wait_for("A's load-balancer-id", LIMIT, || async {
        let s = env.services().get("a").await.ok()?;
        s.metadata.annotations?.get(LB_ID).cloned()
    })
    .await;
    wait_active(&env, &lb_id).await;
    let fip_a = env.fips().await;
    assert_eq!(fip_a.len(), 1);

    // B: its listener and pool on A's LB, the same IP, traffic on its own port.
    let from = env.request_log_mark().await;
    let b = env
        .create_service(service("b", 8080, json!({LB_ID: lb_id})))
        .await;
    // B's backends stop when B goes: the B created again later may get the same NodePort.
    let b_backends = backends_for(&b, &NODES, "svc-b").await;
    env.wait_ingress_is("b", &ip, LIMIT).await;
    wait_for("B's listener with members", LIMIT, || async {
        let l = listeners(&env, &lb_id).await;
        (l.len() == 2).then_some(())
    })
    .await;
    wait_active(&env, &lb_id).await;
    let lb = env.lbaas.get_loadbalancer(&lb_id).await.unwrap();
    assert!(
        lb.tags.iter().any(|t| t == LB_B),
        "B's name tag: {:?}",
        lb.tags
    );
    assert_eq!(lb.name, LB_A, "the LB keeps its owner's name");
    assert_eq!(
        listeners(&env, &lb_id).await,
        vec![
            (format!("listener_0_{LB_A}"), 80, format!("pool_0_{LB_A}")),
            (format!("listener_0_{LB_B}"), 8080, format!("pool_0_{LB_B}")),
        ]
    );
    let shared_writes = writes(&env, from).await;
    println!(
        "shared: B joined with {} writes {shared_writes:?}",
        shared_writes.len()
    );
    assert!(
        shared_writes
            .iter()
            .all(|w| !w.ends_with("/loadbalancers") && !w.ends_with("/floatingips")),
        "no LB and no FIP created for B: {shared_writes:?}"
    );
    assert_eq!(env.live_lbs().await.len(), 1);
    assert_eq!(env.fips().await.len(), 1, "B uses A's floating IP");
    wait_answer(&ip, 80, "svc-a@").await;
    wait_answer(&ip, 8080, "svc-b@").await;

    // C: a third Service on a LB that already has max-shared-lb (2) users → refused, nothing
    // written; deleting C touches nothing either.
    let from = env.request_log_mark().await;
    env.create_service(service("c", 9090, json!({LB_ID: lb_id})))
        .await;
    let ev = env
        .wait_event("c", "Warning", &["load-balancer-id", "max-shared-lb"])
        .await;
    println!("shared: C refused: {}", ev.message.unwrap_or_default());
    assert_eq!(attempted_writes(&env, from).await, 0);
    assert_eq!(env.ingress_ip("c").await, None);
    env.services()
        .delete("c", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("c", LIMIT).await;
    assert_eq!(attempted_writes(&env, from).await, 0, "deleting C wrote");
    assert_eq!(listeners(&env, &lb_id).await.len(), 2);

    // A port clash: B asks for A's port 80 → Warning naming the port and A's listener;
    // nothing changes, and B's 8080 keeps serving. Back to 8080 → still nothing to write.
    let b_node_port = node_ports(&b)[0];
    let from = env.request_log_mark().await;
    env.patch_service(
        "b",
        json!({"spec": {"ports": [{"name": "tcp", "port": 80, "protocol": "TCP",
                                   "nodePort": b_node_port}]}}),
    )
    .await;
    let ev = env
        .wait_event(
            "b",
            "Warning",
            &["spec.ports[0].port", "80", &format!("listener_0_{LB_A}")],
        )
        .await;
    println!("shared: clash refused: {}", ev.message.unwrap_or_default());
    wait_for("B InvalidAnnotation", LIMIT, || async {
        let (status, reason, _) = env.condition("b").await?;
        (status == "False" && reason == "InvalidAnnotation").then_some(())
    })
    .await;
    assert_eq!(
        attempted_writes(&env, from).await,
        0,
        "a clash writes nothing"
    );
    assert_eq!(listeners(&env, &lb_id).await.len(), 2);
    wait_answer(&ip, 8080, "svc-b@").await;
    env.patch_service(
        "b",
        json!({"spec": {"ports": [{"name": "tcp", "port": 8080, "protocol": "TCP",
                                   "nodePort": b_node_port}]}}),
    )
    .await;
    wait_ready_condition(&env, "b").await;
    assert_eq!(
        attempted_writes(&env, from).await,
        0,
        "clash and its fix changed nothing in the cloud"
    );

    // B deleted: only B's listener and pool go, and B's name tag; A keeps serving.
    let from = env.request_log_mark().await;
    env.services()
        .delete("b", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("b", LIMIT).await;
    wait_active(&env, &lb_id).await;
    assert_eq!(
        listeners(&env, &lb_id).await,
        vec![(format!("listener_0_{LB_A}"), 80, format!("pool_0_{LB_A}"))]
    );
    let lb = env.lbaas.get_loadbalancer(&lb_id).await.unwrap();
    assert!(!lb.tags.iter().any(|t| t == LB_B), "{:?}", lb.tags);
    let removed = writes(&env, from).await;
    println!(
        "shared: B removed with {} writes {removed:?}",
        removed.len()
    );
    assert_eq!(removed.len(), 3, "pool, listener, LB tags: {removed:?}");
    assert_eq!(env.fips().await.len(), 1);
    wait_answer(&ip, 80, "svc-a@").await;

    // B again, then A deleted while B still uses the LB. The old B's backends are closed
    // first (awaited, so their sockets are gone): the apiserver may reuse B's NodePort.
    for h in b_backends {
        h.abort();
        let _ = h.await;
    }
    let b = env
        .create_service(service("b", 8080, json!({LB_ID: lb_id})))
        .await;
    backends.extend(backends_for(&b, &NODES, "svc-b2").await);
    env.wait_ingress_is("b", &ip, LIMIT).await;
    wait_answer(&ip, 8080, "svc-b2@").await;
    let from = env.request_log_mark().await;
    env.services()
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("a", LIMIT).await;
    wait_active(&env, &lb_id).await;
    // The model (plan_delete): an LB that still carries another Service's listeners is not
    // deleted; A removes only its listener, its pool and its name tag.
    let lb = env.lbaas.get_loadbalancer(&lb_id).await.unwrap();
    assert_eq!(lb.provisioning_status, "ACTIVE");
    assert!(!lb.tags.iter().any(|t| t == LB_A), "{:?}", lb.tags);
    assert!(lb.tags.iter().any(|t| t == LB_B), "{:?}", lb.tags);
    assert_eq!(
        listeners(&env, &lb_id).await,
        vec![(format!("listener_0_{LB_B}"), 8080, format!("pool_0_{LB_B}"))]
    );
    let octavia_writes: Vec<String> = writes(&env, from)
        .await
        .into_iter()
        .filter(|w| w.contains("/lbaas/"))
        .collect();
    println!(
        "shared: A deleted while B uses the LB: Octavia writes {octavia_writes:?}; all writes {:?}; FIPs left {}; B ingress {:?}",
        writes(&env, from).await,
        env.fips().await.len(),
        env.ingress_ip("b").await
    );
    assert_eq!(
        octavia_writes.len(),
        3,
        "pool, listener, LB tags: {octavia_writes:?}"
    );
    assert!(
        octavia_writes
            .iter()
            .all(|w| !w.starts_with("DELETE /v2/lbaas/loadbalancers/")),
        "{octavia_writes:?}"
    );

    // B deleted last: nothing of ours may stay.
    env.services()
        .delete("b", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("b", LIMIT).await;
    env.audit_leaks(&[]).await;
    for h in backends {
        h.abort();
    }
    drop(controller);
    env.finish().await;
}

/// What B needs when A, the LB's owner, is deleted first: the LB stays for B (the model
/// decides that), and so must the address B's clients use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_owner_first_keeps_the_shared_load_balancer_reachable() {
    const OTHER: Nodes = [("so-1", "127.100.46.11"), ("so-2", "127.100.46.12")];
    let Some(env) = Env::start("sharedowner", "share", sandbox_config(246, FAST)).await else {
        return;
    };
    for (name, ip) in OTHER {
        env.add_node(name, ip, true).await;
    }
    let mut controller = env.start_controller(&["--resync-period", "2s", "--orphan-grace", "1s"]);
    controller.wait_ready(LIMIT).await;
    let a = env
        .create_service(service("a", 80, json!({SHARED_WITH: env.namespace})))
        .await;
    let mut backends = backends_for(&a, &OTHER, "svc-a").await;
    let ip = env.wait_ingress_ip("a", LIMIT).await;
    let lb_id = wait_for("A's load-balancer-id", LIMIT, || async {
        let s = env.services().get("a").await.ok()?;
        s.metadata.annotations?.get(LB_ID).cloned()
    })
    .await;
    let b = env
        .create_service(service("b", 8080, json!({LB_ID: lb_id})))
        .await;
    backends.extend(backends_for(&b, &OTHER, "svc-b").await);
    env.wait_ingress_is("b", &ip, LIMIT).await;
    wait_answer(&ip, 8080, "svc-b@").await;

    env.services()
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("a", LIMIT).await;
    wait_active(&env, &lb_id).await;
    // B still answers on its address, and its status still says so.
    wait_answer(&ip, 8080, "svc-b@").await;
    assert_eq!(env.ingress_ip("b").await.as_deref(), Some(ip.as_str()));
    let fips = env.fips().await;
    assert_eq!(fips.len(), 1, "{fips:?}");
    let lb = env.lbaas.get_loadbalancer(&lb_id).await.unwrap();
    assert_eq!(fips[0].port_id.as_deref(), Some(lb.vip_port_id.as_str()));

    // The last user gone, nothing of ours stays (orphan collection takes the LB and FIP).
    env.services()
        .delete("b", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("b", LIMIT).await;
    env.audit_leaks(&[]).await;
    for h in backends {
        h.abort();
    }
    drop(controller);
    env.finish().await;
}
