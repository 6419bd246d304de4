//! `openstack-lb-controller plan` as an operator runs it: the real binary against an
//! in-process sandbox. A new Service plans one fully-populated create; an invalid annotation
//! exits 2 naming it; JSON output parses; a converged Service plans nothing and an annotation
//! change plans an in-place update. The sandbox's request log proves that `plan` never sends a
//! mutating request. Every run is bounded by a timeout; each test has its own sandbox on
//! ephemeral ports and its own temporary directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use model::config::CloudConfig;
use model::{CloudFeatures, Environment};
use openstack::{LbaasV2, Neutron, Session, SessionOptions};
use sandbox::state::ServiceKind;
use sandbox::{SandboxConfig, SandboxHandle};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const CLUSTER_UID: &str = "6d1f3c1e-0d55-4d4a-9a77-000000000001";

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("olbc-plan-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sandbox() -> SandboxHandle {
    sandbox::start(SandboxConfig {
        provisioning_delay: Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// A two-port Service (the classic nginx example plus 443), with `annotations` as YAML lines.
fn service_yaml(annotations: &str) -> String {
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n{annotations}\
         spec:\n  type: LoadBalancer\n  selector:\n    app: web\n  ports:\n\
         \x20 - name: http\n    port: 80\n    targetPort: 8080\n    nodePort: 30080\n    protocol: TCP\n\
         \x20 - name: https\n    port: 443\n    targetPort: 8443\n    nodePort: 30443\n    protocol: TCP\n"
    )
}

/// Two Ready nodes on the sandbox's loopback node range, as `kubectl get nodes -o yaml` lists.
const NODES: &str = "apiVersion: v1\nkind: List\nitems:\n\
- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-a\n  status:\n    addresses:\n    - type: InternalIP\n      address: 127.100.0.11\n    conditions:\n    - type: Ready\n      status: \"True\"\n\
- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-b\n  status:\n    addresses:\n    - type: InternalIP\n      address: 127.100.0.12\n    conditions:\n    - type: Ready\n      status: \"True\"\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn plan(dir: &TempDir, sb: &SandboxHandle, service: &str, extra: &[&str]) -> Run {
    let conf = dir.write("cloud.conf", &sb.cloud_conf());
    let svc = dir.write("service.yaml", service);
    let nodes = dir.write("nodes.yaml", NODES);
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_openstack-lb-controller"))
        .arg("plan")
        .arg("-f")
        .arg(&svc)
        .arg("--cloud-config")
        .arg(&conf)
        .arg("--nodes")
        .arg(&nodes)
        .args(["--cluster-id", CLUSTER_UID])
        .args(extra)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("plan finishes in time")
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    println!(
        "--- plan {extra:?} (exit {}) ---\n{}{}",
        r.code, r.stdout, r.stderr
    );
    r
}

/// Requests other than reads and token issues that reached the sandbox since `from`.
fn mutations(sb: &SandboxHandle, from: usize) -> Vec<String> {
    sb.state().inner.request_log.lock()[from..]
        .iter()
        .filter(|e| e.method != "GET" && e.method != "HEAD")
        .filter(|e| !(e.service == ServiceKind::Identity && e.path.ends_with("/auth/tokens")))
        .map(|e| format!("{} {}", e.method, e.path))
        .collect()
}

fn log_len(sb: &SandboxHandle) -> usize {
    sb.state().inner.request_log.lock().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_two_port_service_is_one_fully_populated_create() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let before = log_len(&sb);
    let r = plan(&dir, &sb, &service_yaml(""), &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert_eq!(
        out.matches("create load balancer").count(),
        1,
        "one create: {out}"
    );
    assert!(
        out.contains("1. create load balancer kube_service_kubernetes_shop_web [now]"),
        "{out}"
    );
    assert!(out.contains("POST /v2/lbaas/loadbalancers"), "{out}");
    assert!(
        !out.contains("create listener") && !out.contains("POST /v2/lbaas/listeners"),
        "listeners travel inside the create: {out}"
    );
    assert!(
        out.contains("listener listener_0_kube_service_kubernetes_shop_web TCP:80"),
        "{out}"
    );
    assert!(
        out.contains("listener listener_1_kube_service_kubernetes_shop_web TCP:443"),
        "{out}"
    );
    assert!(out.contains("member node-a 127.100.0.11:30080"), "{out}");
    assert!(out.contains("member node-b 127.100.0.12:30443"), "{out}");
    assert!(
        out.contains(&format!("kube-cluster-uid={CLUSTER_UID}")),
        "the cluster tag is shown: {out}"
    );
    assert!(
        out.contains("POST /v2.0/floatingips"),
        "the floating IP follows the create: {out}"
    );
    assert!(out.contains("no load balancer for this Service"), "{out}");
    assert!(
        out.contains(
            "condition LoadBalancerReady=False reason Provisioning: creating the load balancer"
        ),
        "{out}"
    );
    assert!(out.contains("Nothing was changed in the cloud."), "{out}");
    assert_eq!(mutations(&sb, before), Vec::<String>::new());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_annotation_exits_two_naming_it() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let bad = service_yaml(
        "    loadbalancer.openstack.org/connection-limit: \"lots\"\n    loadbalancer.openstack.org/lb-method: RANDOM\n",
    );
    let r = plan(&dir, &sb, &bad, &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(
        out.contains("✗ loadbalancer.openstack.org/connection-limit = \"lots\""),
        "{out}"
    );
    assert!(
        out.contains("accepted: an integer, -1 for unlimited"),
        "{out}"
    );
    assert!(
        out.contains("✗ loadbalancer.openstack.org/lb-method = \"RANDOM\""),
        "every problem is listed: {out}"
    );
    assert!(out.contains("reason InvalidAnnotation"), "{out}");
    assert!(
        out.contains("Event Warning InvalidLoadBalancerConfiguration"),
        "{out}"
    );

    // A problem only the full decision finds (a port without nodePort) exits 2 as well.
    let no_node_port = service_yaml("").replacen("    nodePort: 30443\n", "", 1);
    let r = plan(&dir, &sb, &no_node_port, &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("✗ spec.ports[1].nodePort: missing"),
        "{}",
        r.stdout
    );

    // Not a Service at all.
    let r = plan(&dir, &sb, "kind: ConfigMap\nmetadata:\n  name: x\n", &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no Service in the file"), "{}", r.stdout);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    let r = plan(&dir, &sb, &service_yaml(""), &["--output", "json"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["service"], "shop/web");
    assert_eq!(v["load_balancer_name"], "kube_service_kubernetes_shop_web");
    assert_eq!(v["outcome"]["kind"], "ensure");
    assert_eq!(v["cloud"]["generation"], "Octavia");
    assert_eq!(v["changed_nothing"], true);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps[0]["request"]["method"], "POST");
    assert_eq!(steps[0]["request"]["path"], "/v2/lbaas/loadbalancers");
    assert_eq!(steps[0]["step"]["op"], "create_load_balancer");
    assert_eq!(steps[0]["gate"], "now");
    assert_eq!(steps[0]["step"]["listeners"].as_array().unwrap().len(), 2);
    assert_eq!(
        steps
            .iter()
            .filter(|s| s["step"]["op"] == "create_load_balancer")
            .count(),
        1
    );
    assert_eq!(v["would_write"]["condition"]["reason"], "Provisioning");

    let bad = service_yaml("    loadbalancer.openstack.org/keep-floatingip: \"maybe\"\n");
    let r = plan(&dir, &sb, &bad, &["--output", "json"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"]["kind"], "invalid");
    let problem = &v["outcome"]["problems"][0];
    assert_eq!(
        problem["field"],
        "loadbalancer.openstack.org/keep-floatingip"
    );
    assert_eq!(problem["value"], "maybe");
    assert!(problem["accepted"]
        .as_str()
        .unwrap()
        .contains("true or false"));
    sb.shutdown().await;
}

/// Builds the Service's load balancer in the sandbox the way the controller does (observe →
/// plan → execute the runnable steps), bounded in passes.
async fn converge(sb: &SandboxHandle, service_yaml: &str) {
    use controller::cloud::openstack::OpenStackCloud;
    use controller::cloud::{Cloud, Lookup};

    let (config, _) = CloudConfig::parse(&sb.cloud_conf()).unwrap();
    let session = Session::new(&config.global, &config.metadata, SessionOptions::default())
        .await
        .unwrap();
    let lb = LbaasV2::octavia(&session).await.unwrap();
    let v = lb.max_version().await.unwrap();
    let features = CloudFeatures::octavia(v.major, v.minor, None);
    let neutron = Neutron::new(&session).await.unwrap();
    let cloud = OpenStackCloud::new(lb, neutron, features.clone());
    let service: Service = serde_yaml::from_str(service_yaml).unwrap();
    let list: serde_yaml::Value = serde_yaml::from_str(NODES).unwrap();
    let nodes: Vec<Node> = serde_yaml::from_value(list["items"].clone()).unwrap();
    let mut env = Environment::new("kubernetes", CLUSTER_UID);
    env.project_id = session
        .token_info()
        .await
        .unwrap()
        .project
        .as_ref()
        .map(|p| p.id.clone());
    let spec = model::desired(&service, &nodes, &config, &features, &env).unwrap();
    let lookup = Lookup {
        lb_name: spec.name.clone(),
        fip_description: spec.fip_description.clone(),
        ..Lookup::default()
    };
    for _ in 0..100 {
        let observed = cloud.observe(&lookup).await.unwrap();
        let plan = model::plan(&spec, &observed);
        assert!(plan.invalid.is_empty(), "{:?}", plan.invalid);
        if plan.is_empty() && plan.wait.is_none() {
            return;
        }
        // As the controller: the bookkeeping once nothing else is left.
        let steps: Vec<_> = if plan.publishable() {
            plan.after_publish()
        } else {
            plan.runnable().iter().map(|s| s.step.clone()).collect()
        };
        if steps.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        // A 409 only means the LB got locked in between: observe again.
        let _ = cloud.execute(&steps).await;
    }
    panic!("the load balancer did not converge in 100 passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_service_plans_nothing_and_an_annotation_change_updates_in_place() {
    let sb = sandbox().await;
    let dir = TempDir::new();
    converge(&sb, &service_yaml("")).await;

    let before = log_len(&sb);
    let r = plan(&dir, &sb, &service_yaml(""), &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(
        out.contains("No change: the cloud matches the Service."),
        "{out}"
    );
    assert!(out.contains("ACTIVE"), "{out}");
    assert!(
        out.contains("condition LoadBalancerReady=True reason Ready"),
        "{out}"
    );
    assert!(
        out.contains("status.loadBalancer.ingress: [127.200."),
        "the floating IP is the status: {out}"
    );
    assert!(
        out.contains("annotation loadbalancer.openstack.org/load-balancer-id: "),
        "{out}"
    );

    let changed = service_yaml("    loadbalancer.openstack.org/connection-limit: \"100\"\n");
    let r = plan(&dir, &sb, &changed, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert_eq!(
        out.matches("PUT /v2/lbaas/listeners/").count(),
        2,
        "one update per listener: {out}"
    );
    assert!(out.contains("connection_limit: 100"), "{out}");
    assert!(!out.contains("create load balancer"), "{out}");

    // Deleting the Service: the LB (cascade) and our floating IP go.
    let r = plan(&dir, &sb, &service_yaml(""), &["--delete"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("?cascade=true"), "{}", r.stdout);
    assert!(
        r.stdout.contains("DELETE /v2.0/floatingips/"),
        "{}",
        r.stdout
    );
    assert_eq!(mutations(&sb, before), Vec::<String>::new());
    sb.shutdown().await;
}

/// Prebuilt kube-apiserver + etcd (hack/build-control-plane.sh), if any.
fn control_plane_bins() -> Option<PathBuf> {
    let has_bins =
        |p: &std::path::Path| p.join("kube-apiserver").exists() && p.join("etcd").exists();
    if let Ok(dir) = std::env::var("OLBC_BIN_DIR") {
        let p = PathBuf::from(dir);
        if has_bins(&p) {
            return Some(p);
        }
    }
    // The pinned version (hack/k8s-versions.env), not whichever cached one sorts highest.
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../hack/build-control-plane.sh");
    let out = std::process::Command::new(script)
        .arg("--print-bin-dir")
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && has_bins(&dir)).then_some(dir)
}

/// A control plane in `dir`, stopped on drop.
struct ControlPlane(PathBuf);

impl ControlPlane {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../hack/control-plane.sh")
    }

    fn start(dir: PathBuf, bins: &std::path::Path) -> ControlPlane {
        let out = std::process::Command::new(Self::script())
            .args(["start", "--dir"])
            .arg(&dir)
            .env("OLBC_BIN_DIR", bins)
            .output()
            .unwrap();
        let cp = ControlPlane(dir);
        assert!(
            out.status.success(),
            "control plane did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cp
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .args(["stop", "--dir"])
            .arg(&self.0)
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_supplies_nodes_cluster_identity_and_the_vip_subnet() {
    use controller::kube::api::{Api, Patch, PatchParams, PostParams};
    use controller::kube::config::{KubeConfigOptions, Kubeconfig};
    use k8s_openapi::api::core::v1::Namespace;
    use serde_json::json;

    let Some(bins) = control_plane_bins() else {
        eprintln!("SKIPPED: kube-apiserver/etcd not built; run hack/build-control-plane.sh (CI does) to enable this test");
        return;
    };
    let dir = TempDir::new();
    let cp = ControlPlane::start(dir.0.join("cp"), &bins);
    let kubeconfig = cp.0.join("kubeconfig");
    let kc = Kubeconfig::read_from(&kubeconfig).unwrap();
    let cfg = controller::kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = controller::kube::Client::try_from(cfg).unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, ip) in [("node-a", "127.100.0.11"), ("node-b", "127.100.0.12")] {
        let n: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        nodes.create(&PostParams::default(), &n).await.unwrap();
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let uid = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();

    // A cloud.conf without subnet-id/network-id: the VIP goes to the subnet of the Neutron
    // port holding a node's InternalIP, as the controller finds it.
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    for (name, ip) in [("node-a", "127.100.0.11"), ("node-b", "127.100.0.12")] {
        let r = http
            .post(format!("{}/nodes", sb.admin_url()))
            .json(&json!({"name": name, "ip_address": ip}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let conf: String = sb
        .cloud_conf()
        .lines()
        .filter(|l| !l.starts_with("subnet-id") && !l.starts_with("network-id"))
        .map(|l| format!("{l}\n"))
        .collect();
    let conf_path = dir.write("cloud.conf", &conf);
    let svc = dir.write("service.yaml", &service_yaml(""));
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_openstack-lb-controller"))
        .arg("plan")
        .arg("-f")
        .arg(&svc)
        .arg("--cloud-config")
        .arg(&conf_path)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("plan finishes in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains(&format!("kube-cluster-uid={uid}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("member node-a 127.100.0.11:30080"),
        "{stdout}"
    );
    assert!(
        stdout.contains("member node-b 127.100.0.12:30443"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("vip_subnet_id: {}", sb.seed().nodes_subnet_id)),
        "{stdout}"
    );
    sb.shutdown().await;
    drop(cp);
}

fn one_port_yaml(annotations: &str) -> String {
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n{annotations}\
         spec:\n  type: LoadBalancer\n  selector:\n    app: web\n  ports:\n\
         \x20 - name: http\n    port: 80\n    targetPort: 8080\n    nodePort: 30080\n    protocol: TCP\n"
    )
}

/// Like `converge`, on a cloud that offers only LBaaS v1 (no lock: each pass runs all steps).
async fn converge_v1(sb: &SandboxHandle, service_yaml: &str) {
    use controller::cloud::openstack::OpenStackCloud;
    use controller::cloud::{Cloud, Lookup};

    let (config, _) = CloudConfig::parse(&sb.cloud_conf()).unwrap();
    let session = Session::new(&config.global, &config.metadata, SessionOptions::default())
        .await
        .unwrap();
    let v2 = LbaasV2::neutron(&session).await.unwrap();
    let v1 = openstack::lbaas::LbaasV1::new(&session).await.unwrap();
    let neutron = Neutron::new(&session).await.unwrap();
    let cloud = OpenStackCloud::neutron_v1(v2, v1, neutron);
    let features = CloudFeatures::neutron_v1();
    let service: Service = serde_yaml::from_str(service_yaml).unwrap();
    let list: serde_yaml::Value = serde_yaml::from_str(NODES).unwrap();
    let nodes: Vec<Node> = serde_yaml::from_value(list["items"].clone()).unwrap();
    let env = Environment::new("kubernetes", CLUSTER_UID);
    let spec = model::desired(&service, &nodes, &config, &features, &env).unwrap();
    let lookup = Lookup {
        lb_name: spec.name.clone(),
        fip_description: spec.fip_description.clone(),
        ..Lookup::default()
    };
    for _ in 0..100 {
        let observed = cloud.observe(&lookup).await.unwrap();
        let plan = model::plan(&spec, &observed);
        assert!(plan.invalid.is_empty(), "{:?}", plan.invalid);
        if plan.is_empty() && plan.wait.is_none() {
            return;
        }
        // As the controller: the bookkeeping once nothing else is left.
        let steps: Vec<_> = if plan.publishable() {
            plan.after_publish()
        } else {
            plan.runnable().iter().map(|s| s.step.clone()).collect()
        };
        // A 409 means a v1 object is still PENDING_*: observe again a little later.
        if steps.is_empty() || cloud.execute(&steps).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("the LBaaS v1 objects did not converge in 100 passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lbaas_v1_cloud_plans_pool_members_vip_and_floating_ip() {
    let sb = sandbox::start(SandboxConfig {
        lbaas: sandbox::LbaasMode::NeutronV1,
        provisioning_delay: Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = TempDir::new();
    let before = log_len(&sb);

    let r = plan(&dir, &sb, &one_port_yaml(""), &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(out.contains("Neutron LBaaS v1"), "{out}");
    assert!(
        out.contains("create v1 pool kube_service_kubernetes_shop_web"),
        "{out}"
    );
    assert!(out.contains("POST /v2.0/lb/pools"), "{out}");
    assert_eq!(out.matches("POST /v2.0/lb/members").count(), 2, "{out}");
    assert!(out.contains("create v1 member 127.100.0.11:30080"), "{out}");
    assert!(out.contains("POST /v2.0/lb/vips"), "{out}");
    assert!(out.contains("protocol_port: 80"), "{out}");
    assert!(out.contains("POST /v2.0/floatingips"), "{out}");
    assert!(!out.contains("/v2/lbaas"), "no Octavia call on v1: {out}");

    // A second port is a v1 limit: refused, naming the field.
    let r = plan(&dir, &sb, &service_yaml(""), &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("spec.ports"), "{}", r.stdout);
    assert!(r.stdout.contains("exactly one TCP port"), "{}", r.stdout);
    assert_eq!(mutations(&sb, before), Vec::<String>::new());

    converge_v1(&sb, &one_port_yaml("")).await;
    let before = log_len(&sb);
    let r = plan(&dir, &sb, &one_port_yaml(""), &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(
        out.contains("No change: the cloud matches the Service."),
        "{out}"
    );
    assert!(out.contains("LBaaS v1 pool "), "{out}");
    assert!(out.contains("ACTIVE TCP ROUND_ROBIN"), "{out}");
    assert!(out.contains("LBaaS v1 VIP "), "{out}");
    assert!(
        out.contains("status.loadBalancer.ingress: [127.200."),
        "the floating IP on the VIP port is the status: {out}"
    );

    let changed = one_port_yaml("    loadbalancer.openstack.org/connection-limit: \"100\"\n");
    let r = plan(&dir, &sb, &changed, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.matches("PUT /v2.0/lb/vips/").count(),
        1,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("connection_limit: 100"), "{}", r.stdout);
    assert!(!r.stdout.contains("POST /v2.0/lb/"), "{}", r.stdout);

    let r = plan(&dir, &sb, &one_port_yaml(""), &["--delete"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    let order: Vec<usize> = [
        "DELETE /v2.0/floatingips/",
        "DELETE /v2.0/lb/vips/",
        "DELETE /v2.0/lb/members/",
        "DELETE /v2.0/lb/pools/",
    ]
    .iter()
    .map(|c| out.find(c).unwrap_or_else(|| panic!("{c} missing: {out}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "bottom-up: {out}");
    assert_eq!(mutations(&sb, before), Vec::<String>::new());
    sb.shutdown().await;
}
