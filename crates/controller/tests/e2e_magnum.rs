//! End to end, as on a Magnum cluster (docs/magnum.md): the cloud.conf is the one Magnum's
//! templates write for OCCM (`/etc/kubernetes/cloud-config-occm`: the trustee's `user-id` and
//! `password` scoped to `trust-id`, `ca-file`, an https `auth-url`, Magnum's `[LoadBalancer]`
//! keys, and the `[BlockStorage]` / `[Networking]` sections meant for other components), the
//! cloud speaks TLS with a private CA, and `--cluster-name` is the cluster UUID.
//! `doctor` must pass on that file as it is; `run` must give a Service an IP through the trust,
//! name its load balancer and floating IP so that Magnum's cluster-delete hook finds them, and
//! warn at start-up about load balancers of this cluster named for another cluster name.
//! Own world: floating range 127.235.0.0/24, nodes 127.100.33.x.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, controller_bin, http_get, node_ports, sandbox_config, Env, LIMIT};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use model::naming;
use openstack::lbaas::CreateLoadBalancer;
use serde_json::json;

/// What `openstack coe cluster show -c uuid` prints for the cluster.
const CLUSTER_UUID: &str = "5c1e2f7a-3b9d-4e08-a6c4-91d0f2b7e353";
const NODES: [(&str, &str); 2] = [
    ("magnum-master-0", "127.100.33.11"),
    ("magnum-node-0", "127.100.33.12"),
];

/// The file Magnum writes for OCCM, key for key in Magnum's order, with this sandbox's values.
fn magnum_cloud_config(env: &Env, trustee_user_id: &str) -> String {
    let (trust_id, trustee) = env.sandbox.trust();
    let seed = env.sandbox.seed();
    let ca = env.sandbox.ca_pem_path().expect("the sandbox serves TLS");
    format!(
        "[Global]\nauth-url={auth}\nuser-id={trustee_user_id}\npassword={password}\n\
         trust-id={trust_id}\nca-file={ca}\nregion={region}\n\
         [LoadBalancer]\nuse-octavia=True\nsubnet-id={subnet}\nfloating-network-id={public}\n\
         lb-provider=amphora\nlb-method=ROUND_ROBIN\ncreate-monitor=True\nmonitor-delay=1m\n\
         monitor-timeout=30s\nmonitor-max-retries=3\n\
         [BlockStorage]\nbs-version=v2\n\
         [Networking]\ninternal-network-name=private\n",
        auth = env.sandbox.auth_url(),
        password = trustee.password.expose(),
        ca = ca.display(),
        region = env.sandbox.region(),
        subnet = seed.nodes_subnet_id,
        public = seed.public_network_id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnum_cloud_config_with_trust_and_ca_passes_doctor_and_serves_a_service() {
    let mut cfg = sandbox_config(235, Duration::from_millis(300));
    cfg.tls = true;
    let Some(env) = Env::start("e2e-magnum", "magnum", cfg).await else {
        eprintln!("skipped: control-plane binaries not built (hack/build-control-plane.sh)");
        return;
    };
    assert!(env.sandbox.auth_url().starts_with("https://"));
    let (trustee_user_id, trustor_project, trustee_project) = {
        let world = env.sandbox.state().inner.world.lock();
        let ks = &world.keystone;
        let (trust_id, trustee) = env.sandbox.trust();
        let trust = ks.trusts.iter().find(|t| t.id == trust_id).unwrap();
        let user = ks.user_by_name(&trustee.username).unwrap();
        (
            user.id.clone(),
            trust.project_id.clone(),
            user.default_project_id.clone().unwrap(),
        )
    };
    // The trustee's own project is not the cluster's: only the trust reaches the cluster's.
    assert_ne!(trustor_project, trustee_project);
    let conf = env.write_conf(
        "cloud-config-occm",
        &magnum_cloud_config(&env, &trustee_user_id),
    );

    // doctor on Magnum's file as it is: exit 0, trust-scoped, over the private CA.
    let doctor = tokio::process::Command::new(controller_bin())
        .arg("doctor")
        .arg("--cloud-config")
        .arg(&conf)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), doctor)
        .await
        .expect("doctor finishes in time")
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- doctor on Magnum's cloud-config-occm ---\n{report}");
    assert_eq!(out.status.code(), Some(0), "doctor failed:\n{report}");
    assert!(report.contains("trust"), "{report}");
    assert!(
        !report.contains(env.sandbox.trust().1.password.expose()),
        "the trustee password reached doctor's output"
    );

    // A load balancer of this cluster (its identity tag) named for the default cluster name,
    // as a controller started without --cluster-name would have left it.
    let uid = Api::<Namespace>::all(env.client.clone())
        .get("kube-system")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let stray_name = naming::lb_name("kubernetes", "magnum", "web");
    let stray = env
        .lbaas
        .create_loadbalancer(&CreateLoadBalancer {
            name: Some(stray_name.clone()),
            vip_subnet_id: Some(env.sandbox.seed().nodes_subnet_id.clone()),
            tags: Some(vec![stray_name.clone(), naming::cluster_tag(&uid)]),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut backends = Vec::new();
    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    let mut ctl = harness::ControllerProcess::start(
        &env.cp.kubeconfig,
        &conf,
        &env.cp.dir.join("controller.log"),
        &["--cluster-name", CLUSTER_UUID],
    );
    ctl.wait_ready(LIMIT).await;

    let svc = env
        .create_service(json!({
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .await;
    let node_port = node_ports(&svc)[0];
    for (name, ip) in NODES {
        backends.push(backend(ip, node_port, name.to_string()).await);
    }
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    println!("Service magnum/web got {ip} over TLS with trust auth");

    // Named for the cluster UUID, in the trustor's project (the trust's scope).
    let lb_name = naming::lb_name(CLUSTER_UUID, "magnum", "web");
    let lbs = env.lbs_named(&lb_name).await;
    assert_eq!(lbs.len(), 1, "one load balancer {lb_name}");
    let lb = &lbs[0];
    assert_eq!(lb.project_id, trustor_project);
    // What Magnum's pre-delete hook matches: the LB description
    // `Kubernetes <anything> from cluster <uuid>` and, on the FIP of its VIP port,
    // `Floating IP for Kubernetes <anything> from cluster <uuid>` at the end.
    assert!(
        lb.description.starts_with("Kubernetes ")
            && lb
                .description
                .contains(&format!(" from cluster {CLUSTER_UUID}")),
        "LB description {:?}",
        lb.description
    );
    let fips = env.fips_on(&lb.vip_port_id).await;
    assert_eq!(fips.len(), 1);
    assert_eq!(fips[0].floating_ip_address, ip);
    let fip_description = fips[0].description.clone();
    assert!(
        fip_description.starts_with("Floating IP for Kubernetes ")
            && fip_description.ends_with(&format!(" from cluster {CLUSTER_UUID}")),
        "FIP description {fip_description:?}"
    );

    // Traffic through the floating IP reaches a node (bounded retries: the data plane starts
    // forwarding once the listener is ACTIVE).
    let answer = wait_for("HTTP through the floating IP", LIMIT, || async {
        http_get(&ip, 80)
            .await
            .filter(|r| NODES.iter().any(|(n, _)| r.contains(n)))
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The start-up warning about the stray: both names, the tag and the fix, once.
    let log = std::fs::read_to_string(&ctl.log).unwrap();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("named for cluster name"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let w = warnings[0];
    assert!(w.contains("WARN"), "{w}");
    assert!(w.contains(&stray_name), "{w}");
    assert!(w.contains(&format!("--cluster-name={CLUSTER_UUID}")), "{w}");
    assert!(w.contains("restart with --cluster-name=kubernetes"), "{w}");
    assert!(w.contains(&naming::cluster_tag(&uid)), "{w}");
    // The stray is left alone (never adopted, never collected).
    assert_eq!(env.lbs_named(&stray_name).await.len(), 1);

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    wait_for("the stray becomes ACTIVE", LIMIT, || async {
        env.lbs_named(&stray_name)
            .await
            .iter()
            .any(|l| l.provisioning_status == "ACTIVE")
            .then_some(())
    })
    .await;
    env.lbaas
        .delete_loadbalancer(&stray.id, true)
        .await
        .unwrap();
    env.audit_leaks(&[]).await;
    drop(ctl);
    for b in backends {
        b.abort();
    }
    env.finish().await;
}
