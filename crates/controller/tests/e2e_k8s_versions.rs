//! End to end, the smoke that proves one end of the supported Kubernetes range (README
//! "Supported Kubernetes versions"): create, update and delete one LoadBalancer Service against
//! the kube-apiserver of OLBC_K8S_VERSION (default: hack/k8s-versions.env's default), with
//! everything the controller relies on from that apiserver checked on the way: the status
//! subresource keeps `ingress[].ipMode` (beta and on by default since 1.30, GA in 1.32) and
//! the `LoadBalancerReady` condition, the finalizer is added and
//! removed through merge patches, Events land through events.k8s.io/v1, and leader election
//! holds a coordination.k8s.io/v1 Lease written by server-side apply.
//! tests/k8s-versions/run.sh runs it on the oldest and the newest supported version. Own
//! world: floating range 127.227.0.0/24, nodes 127.100.27.x.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, http_get, node_ports, sandbox_config, Env, LIMIT};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const NS: &str = "versions";
const NODES: [(&str, &str); 2] = [("ver-1", "127.100.27.11"), ("ver-2", "127.100.27.12")];
const LB_NAME: &str = "kube_service_kubernetes_versions_web";
const IDENTITY: &str = "olbc-version-smoke";

/// The minor of a Kubernetes 1.x gitVersion such as "v1.30.14".
fn minor_of(git_version: &str) -> Option<u32> {
    let rest = git_version.strip_prefix("v1.")?;
    rest.split('.').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_service_is_created_updated_and_deleted_on_this_apiserver_version() {
    let Some(env) = Env::start(
        "e2e-k8sver",
        NS,
        sandbox_config(227, Duration::from_millis(300)),
    )
    .await
    else {
        eprintln!("skipped: control-plane binaries not built (hack/build-control-plane.sh)");
        return;
    };

    // The apiserver is the version asked for, not whatever the cache held.
    let info = env.client.apiserver_version().await.unwrap();
    eprintln!("kube-apiserver {}", info.git_version);
    if let Ok(wanted) = std::env::var("OLBC_K8S_VERSION") {
        assert_eq!(
            info.git_version, wanted,
            "the control plane runs another version"
        );
    }
    let minor = minor_of(&info.git_version)
        .unwrap_or_else(|| panic!("unexpected gitVersion {:?}", info.git_version));
    assert!(
        minor >= 30,
        "{} is below the supported range (1.30+): ipMode would be dropped",
        info.git_version
    );

    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    let mut controller = env.start_controller(&[
        "--leader-elect",
        "--leader-elect-namespace",
        NS,
        "--leader-elect-identity",
        IDENTITY,
    ]);
    controller.wait_ready(LIMIT).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
    wait_for("the controller holds its Lease", LIMIT, || async {
        let holder = leases
            .get("openstack-lb-controller")
            .await
            .ok()?
            .spec?
            .holder_identity?;
        (holder == IDENTITY).then_some(())
    })
    .await;

    // Create.
    let created = env
        .create_service(json!({
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .await;
    let mut backends = Vec::new();
    for (node, ip) in NODES {
        for port in node_ports(&created) {
            backends.push(backend(ip, port, format!("web@{node}")).await);
        }
    }
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    wait_for(&format!("{ip}:80 answering"), LIMIT, || async {
        http_get(&ip, 80).await.filter(|b| b.contains("web@"))
    })
    .await;
    let svc = env.services().get("web").await.unwrap();
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.clone())
        .unwrap_or_default();
    assert_eq!(ingress.len(), 1, "{ingress:?}");
    // The apiserver kept the field the controller wrote: kube-proxy reads it to decide
    // whether in-cluster traffic to the IP may short-cut the load balancer.
    assert_eq!(ingress[0].ip_mode.as_deref(), Some("VIP"), "{ingress:?}");
    assert!(env.has_finalizer("web").await, "finalizer not added");
    let generation = svc.metadata.generation;
    wait_for("LoadBalancerReady=True", LIMIT, || async {
        let s = env.services().get("web").await.ok()?;
        let c = s
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "LoadBalancerReady")?;
        (c.status == "True" && c.observed_generation == generation).then_some(())
    })
    .await;
    env.wait_event("web", "Normal", &["EnsuredLoadBalancer"])
        .await;
    assert_eq!(env.lbs_named(LB_NAME).await.len(), 1);

    // Update: a second port. The apiserver allocates its NodePort; the controller adds a
    // listener, and the new port answers on the same IP.
    let updated = env
        .patch_service(
            "web",
            json!({"spec": {"ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "alt", "port": 8080, "protocol": "TCP"}
            ]}}),
        )
        .await;
    let ports = node_ports(&updated);
    assert_eq!(ports.len(), 2, "{ports:?}");
    for (node, node_ip) in NODES {
        backends.push(backend(node_ip, ports[1], format!("alt@{node}")).await);
    }
    wait_for("a second listener", LIMIT, || async {
        let lbs = env.lbs_named(LB_NAME).await;
        (lbs.len() == 1 && lbs[0].listeners.len() == 2).then_some(())
    })
    .await;
    wait_for(&format!("{ip}:8080 answering"), LIMIT, || async {
        http_get(&ip, 8080).await.filter(|b| b.contains("alt@"))
    })
    .await;
    assert_eq!(env.ingress_ip("web").await.as_deref(), Some(ip.as_str()));
    // Services carry no metadata.generation on any version so far; the condition mirrors
    // whatever the apiserver reports.
    let new_generation = updated.metadata.generation;
    wait_for("LoadBalancerReady=True after the update", LIMIT, || async {
        let s = env.services().get("web").await.ok()?;
        let c = s
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "LoadBalancerReady")?;
        (c.status == "True" && c.observed_generation == new_generation).then_some(())
    })
    .await;
    env.wait_event("web", "Normal", &["UpdatedLoadBalancer"])
        .await;

    // Delete: the Service only goes once the controller removed its finalizer, and that only
    // after the load balancer and the floating IP are gone.
    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.wait_event("web", "Normal", &["DeletedLoadBalancer"])
        .await;
    assert!(env.lbs_named(LB_NAME).await.is_empty());
    env.audit_leaks(&[]).await;
    assert!(controller.is_running(), "{}", controller.log_tail(40));

    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}

#[test]
fn minor_is_read_from_a_git_version() {
    assert_eq!(minor_of("v1.30.14"), Some(30));
    assert_eq!(minor_of("v1.37.2"), Some(37));
    assert_eq!(minor_of("v2.0.0"), None);
    assert_eq!(minor_of("v1.x.0"), None);
}
