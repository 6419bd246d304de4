//! End to end: two controllers side by side on one cluster and one cloud, OCCM-style (SPEC §1.1,
//! docs/configuration.md "--load-balancer-class"). One runs without a class and owns exactly
//! the class-less Services; the other runs with `--load-balancer-class` and owns exactly the
//! Services of that class — never the class-less ones. Each gets only its own Services' LBs,
//! neither acts on the other's Service even while the other controller is stopped, and
//! deleting both leaves nothing behind. Own world: floating range 127.232.0.0/24, nodes
//! 127.100.32.x.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, http_get, node_ports, sandbox_config, ControllerProcess, Env, LIMIT};
use kube::api::DeleteParams;
use serde_json::{json, Value};

const CLASS: &str = "example.org/olbc-classed";
const NODES: [(&str, &str); 2] = [("cls-1", "127.100.32.11"), ("cls-2", "127.100.32.12")];
const LB_PLAIN: &str = "kube_service_kubernetes_classes_plain";
const LB_CLASSED: &str = "kube_service_kubernetes_classes_classed";

fn service(name: &str, class: Option<&str>) -> Value {
    let mut spec = json!({"type": "LoadBalancer", "selector": {"app": name},
                          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]});
    if let Some(c) = class {
        spec["loadBalancerClass"] = json!(c);
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

fn two_ports() -> Value {
    json!({"spec": {"ports": [
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "alt", "port": 8080, "protocol": "TCP"}
    ]}})
}

async fn listener_count(env: &Env, lb_name: &str) -> Option<usize> {
    let lbs = env.lbs_named(lb_name).await;
    (lbs.len() == 1).then(|| lbs[0].listeners.len())
}

async fn wait_listeners(env: &Env, lb_name: &str, n: usize) {
    wait_for(&format!("{lb_name} with {n} listeners"), LIMIT, || async {
        (listener_count(env, lb_name).await? == n).then_some(())
    })
    .await;
}

fn log_of(p: &ControllerProcess) -> String {
    std::fs::read_to_string(&p.log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classed_and_a_default_controller_each_touch_only_their_own_services() {
    let Some(env) = Env::start(
        "e2e-class",
        "classes",
        sandbox_config(232, Duration::from_millis(300)),
    )
    .await
    else {
        eprintln!("skipped: control-plane binaries not built (hack/build-control-plane.sh)");
        return;
    };
    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    let default_log = env.cp.dir.join("controller-default.log");
    let classed_log = env.cp.dir.join("controller-classed.log");
    let mut default_ctl =
        ControllerProcess::start(&env.cp.kubeconfig, &env.conf_path, &default_log, &[]);
    let mut classed_ctl = ControllerProcess::start(
        &env.cp.kubeconfig,
        &env.conf_path,
        &classed_log,
        &["--load-balancer-class", CLASS],
    );
    default_ctl.wait_ready(LIMIT).await;
    classed_ctl.wait_ready(LIMIT).await;

    let plain = env.create_service(service("plain", None)).await;
    let classed = env.create_service(service("classed", Some(CLASS))).await;
    let mut backends = Vec::new();
    for (svc, name) in [(&plain, "plain"), (&classed, "classed")] {
        for (node, ip) in NODES {
            for port in node_ports(svc) {
                backends.push(backend(ip, port, format!("{name}@{node}")).await);
            }
        }
    }
    let plain_ip = env.wait_ingress_ip("plain", LIMIT).await;
    let classed_ip = env.wait_ingress_ip("classed", LIMIT).await;
    assert_ne!(plain_ip, classed_ip);
    for (ip, needle) in [(&plain_ip, "plain@"), (&classed_ip, "classed@")] {
        wait_for(&format!("{ip} answering"), LIMIT, || async {
            http_get(ip, 80).await.filter(|b| b.contains(needle))
        })
        .await;
    }
    assert_eq!(env.lbs_named(LB_PLAIN).await.len(), 1);
    assert_eq!(env.lbs_named(LB_CLASSED).await.len(), 1);
    // Each controller's log names only its own Service.
    let (d, c) = (log_of(&default_ctl), log_of(&classed_ctl));
    assert!(
        d.contains("classes/plain") && !d.contains("classes/classed"),
        "default controller:\n{d}"
    );
    assert!(
        c.contains("classes/classed") && !c.contains("classes/plain"),
        "classed controller:\n{c}"
    );

    // With the classed controller stopped, the default one still leaves its Service alone:
    // a change to both is carried out for the class-less one only. One watch delivers the
    // events in order, so once the later change is done the earlier one was seen too.
    drop(classed_ctl);
    env.patch_service("classed", two_ports()).await;
    env.patch_service("plain", two_ports()).await;
    wait_listeners(&env, LB_PLAIN, 2).await;
    assert_eq!(listener_count(&env, LB_CLASSED).await, Some(1));
    assert!(!log_of(&default_ctl).contains("classes/classed"));

    // Back, the classed controller catches up on its own Service.
    let classed_ctl = ControllerProcess::start(
        &env.cp.kubeconfig,
        &env.conf_path,
        &classed_log,
        &["--load-balancer-class", CLASS],
    );
    wait_listeners(&env, LB_CLASSED, 2).await;

    for name in ["plain", "classed"] {
        env.services()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["plain", "classed"] {
        env.wait_service_gone(name, LIMIT).await;
    }
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(classed_ctl);
    drop(default_ctl);
    env.finish().await;
}
