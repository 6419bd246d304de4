//! End to end: a real kube-apiserver (hack/control-plane.sh), the sandbox cloud (in-process),
//! and the controller binary as its own process. Three Nodes with loopback InternalIPs and
//! tiny HTTP backends on their NodePorts; a 2-port TCP Service must get an external IP that
//! answers on both ports, the sandbox must hold the expected LB, and deleting the Service must
//! leave nothing of ours behind (leak audit) and no finalizer.

mod common;
mod harness;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_for, ControlPlane};
use harness::{backend, controller_bin, http_get};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use model::config::CloudConfig;
use openstack::{LbaasV2, ListQuery, Neutron, Session, SessionOptions};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);
const NODES: [(&str, &str); 3] = [
    ("node-1", "127.100.1.11"),
    ("node-2", "127.100.1.12"),
    ("node-3", "127.100.1.13"),
];

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_controller(bin: &Path, kubeconfig: &Path, cloud_conf: &Path, log: &Path) -> Controller {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(bin)
        .args(["run", "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--cloud-config")
        .arg(cloud_conf)
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--resync-period",
            "1m",
        ])
        .env("RUST_LOG", "info,controller=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the controller");
    Controller(child)
}

/// The text logger colours its output even into a file.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_port_service_gets_a_working_ip_and_is_cleaned_up() {
    let Some(cp) = ControlPlane::start("e2e") else {
        return;
    };
    let client = cp.client().await;

    let sandbox = sandbox::start(sandbox::SandboxConfig {
        provisioning_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .expect("sandbox starts");
    let conf_path = cp.dir.join("cloud.conf");
    std::fs::write(&conf_path, sandbox.cloud_conf()).unwrap();
    let http = reqwest::Client::new();
    for (name, ip) in NODES {
        let r = http
            .post(format!("{}/nodes", sandbox.admin_url()))
            .json(&json!({"name": name, "ip_address": ip}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "register node port: {}",
            r.text().await.unwrap_or_default()
        );
    }

    // Nodes: created, then given addresses and a Ready condition through the status subresource.
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, ip) in NODES {
        let n: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        nodes.create(&PostParams::default(), &n).await.unwrap();
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    let bin = controller_bin();
    let log = cp.dir.join("controller.log");
    let controller = start_controller(&bin, &cp.kubeconfig, &conf_path, &log);

    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "shop");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "alt", "port": 8080, "protocol": "TCP"}
        ]}
    }))
    .unwrap();
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let node_ports: Vec<(u16, u16)> = created
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.port as u16, p.node_port.unwrap() as u16))
        .collect();
    let mut backends = Vec::new();
    for (name, ip) in NODES {
        for (_, np) in &node_ports {
            backends.push(backend(ip, *np, format!("{name}:{np}")).await);
        }
    }

    let fip = wait_for("external IP", LIMIT, || {
        let api = services.clone();
        async move {
            let s = api.get("web").await.ok()?;
            s.status?.load_balancer?.ingress?.first()?.ip.clone()
        }
    })
    .await;
    assert!(fip.starts_with("127.200."), "{fip}");

    // Both ports answer through the floating IP, from the nodes' backends.
    for (port, np) in &node_ports {
        let answer = wait_for("traffic through the floating IP", LIMIT, || {
            let fip = fip.clone();
            async move { http_get(&fip, *port).await.filter(|a| a.contains(" 200 ")) }
        })
        .await;
        assert!(
            answer.contains(&format!(":{np}")),
            "port {port} answered {answer:?}"
        );
    }

    // The sandbox holds exactly the expected LB.
    let (config, _) = CloudConfig::parse(&sandbox.cloud_conf()).unwrap();
    let session = Session::new(&config.global, &config.metadata, SessionOptions::default())
        .await
        .unwrap();
    let lbaas = LbaasV2::octavia(&session).await.unwrap();
    let neutron = Neutron::new(&session).await.unwrap();
    let lb_name = "kube_service_kubernetes_shop_web";
    let lbs = lbaas
        .list_loadbalancers(&ListQuery::new().name(lb_name))
        .await
        .unwrap();
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    let lb = &lbs[0];
    assert_eq!(lb.provisioning_status, "ACTIVE");
    assert!(
        lb.tags.iter().any(|t| t.starts_with("kube-cluster-uid=")),
        "{:?}",
        lb.tags
    );
    let listeners = lbaas.list_listeners(&ListQuery::new()).await.unwrap();
    let ours: Vec<_> = listeners
        .iter()
        .filter(|l| lb.listeners.iter().any(|r| r.id == l.id))
        .collect();
    let mut ports: Vec<u16> = ours.iter().map(|l| l.protocol_port).collect();
    ports.sort();
    assert_eq!(ports, vec![80, 8080]);
    for l in &ours {
        let pool = l.default_pool_id.clone().expect("listener has a pool");
        let members = lbaas.list_members(&pool, &ListQuery::new()).await.unwrap();
        let mut addrs: Vec<String> = members.iter().map(|m| m.address.clone()).collect();
        addrs.sort();
        assert_eq!(
            addrs,
            NODES
                .iter()
                .map(|(_, ip)| ip.to_string())
                .collect::<Vec<_>>()
        );
    }
    let fips = neutron
        .list_floating_ips(&ListQuery::new().port_id(lb.vip_port_id.clone()))
        .await
        .unwrap();
    assert_eq!(fips.len(), 1);
    assert_eq!(fips[0].floating_ip_address, fip);
    let svc = services.get("web").await.unwrap();
    let ann = svc.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("loadbalancer.openstack.org/load-balancer-id"),
        Some(&lb.id)
    );

    // The process serves its metrics (including the OpenStack client's) and is ready.
    let logged = strip_ansi(&std::fs::read_to_string(&log).unwrap_or_default());
    let addr = logged
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| l.split("addr=").nth(1))
        .map(|a| a.trim().to_string())
        .expect("the controller logs its metrics address");
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "olbc_time_to_external_ip_seconds_count{stage=\"status_written\"} 1",
        "olbc_managed_load_balancers{state=\"ready\"} 1",
        "olbc_reconciles_total{operation=\"ensure\",outcome=\"ready\"}",
        "openstack_requests_total{",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }

    // Delete: everything of ours goes, then the finalizer, then the Service.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("Service gone", LIMIT, || {
        let api = services.clone();
        async move {
            api.get_opt("web")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await;
    // Leak audit: no LB, no FIP, no VIP port of ours — already when the Service is gone: the
    // finalizer stays until the LB has left PENDING_DELETE (cluster-deletion flows delete the
    // network right after the Services).
    let left = lbaas.list_loadbalancers(&ListQuery::new()).await.unwrap();
    assert!(
        left.iter()
            .all(|l| l.name != lb_name || l.provisioning_status == "DELETED"),
        "the Service went before its LB: {left:?}"
    );
    let fips = neutron.list_floating_ips(&ListQuery::new()).await.unwrap();
    assert!(
        fips.iter().all(|f| !f.description.contains("shop/web")),
        "{fips:?}"
    );
    let ports = neutron.list_ports(&ListQuery::new()).await.unwrap();
    assert!(
        ports.iter().all(|p| p.id != lb.vip_port_id),
        "VIP port leaked"
    );

    drop(controller);
    for b in backends {
        b.abort();
    }
    sandbox.shutdown().await;
    if std::env::var("OLBC_SHOW_CONTROLLER_LOG").is_ok() {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
}
