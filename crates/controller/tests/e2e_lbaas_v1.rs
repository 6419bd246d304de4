//! End to end on a cloud that offers only Neutron LBaaS v1: a real kube-apiserver, the sandbox
//! in `neutron-v1` mode (no Octavia in the catalog, `/v2.0/lb/` under Neutron) and the
//! controller binary. A one-port Service must get a pool, members, a VIP and a floating IP on
//! the VIP port, and traffic through that floating IP must reach the NodePort backends; node
//! churn and annotation changes must be followed in place; a restarted controller must adopt
//! what exists; the v1 limits must show up as Warning Events; deleting the Service must leave
//! no v1 object, floating IP or port behind (audited against the v1 API and Neutron).
//! The shared `harness::Env` builds an Octavia client, so this file keeps its own small world
//! and uses only the harness's process, backend and HTTP helpers.

mod common;
mod harness;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use common::{wait_for, ControlPlane};
use harness::{backend, http_get, node_ports, sandbox_config, ControllerProcess, LIMIT};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use model::annotations as ann;
use model::config::CloudConfig;
use openstack::lbaas::v1::{V1Member, V1Pool, V1Vip};
use openstack::lbaas::LbaasV1;
use openstack::{ListQuery, Neutron, Session, SessionOptions};
use serde_json::{json, Value};

const NS: &str = "v1shop";
const NODES: [(&str, &str); 3] = [
    ("v1-node-1", "127.100.41.11"),
    ("v1-node-2", "127.100.41.12"),
    ("v1-node-3", "127.100.41.13"),
];
const NEW_NODE: (&str, &str) = ("v1-node-4", "127.100.41.14");

/// One isolated v1 world.
struct World {
    cp: ControlPlane,
    client: Client,
    sandbox: sandbox::SandboxHandle,
    v1: LbaasV1,
    neutron: Neutron,
    http: reqwest::Client,
    /// Seeded and node ports: everything else left at the end is a leak.
    baseline_ports: Mutex<BTreeSet<String>>,
}

impl World {
    async fn start() -> Option<World> {
        let cp = ControlPlane::start("e2e-v1")?;
        let client = cp.client().await;
        let sandbox = sandbox::start(sandbox::SandboxConfig {
            lbaas: sandbox::LbaasMode::NeutronV1,
            ..sandbox_config(231, Duration::from_millis(300))
        })
        .await
        .expect("sandbox starts");
        let (config, _) = CloudConfig::parse(&sandbox.cloud_conf()).unwrap();
        let session = Session::new(&config.global, &config.metadata, SessionOptions::default())
            .await
            .unwrap();
        let v1 = LbaasV1::new(&session).await.unwrap();
        let neutron = Neutron::new(&session).await.unwrap();
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let w = World {
            cp,
            client,
            sandbox,
            v1,
            neutron,
            http: reqwest::Client::new(),
            baseline_ports: Mutex::new(BTreeSet::new()),
        };
        let seeded = w.neutron.list_ports(&ListQuery::new()).await.unwrap();
        w.baseline_ports
            .lock()
            .unwrap()
            .extend(seeded.into_iter().map(|p| p.id));
        for (name, ip) in NODES {
            w.add_node(name, ip).await;
        }
        Some(w)
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// A `compute:nova` port holding `ip` in the sandbox and a Ready Node with that InternalIP.
    async fn add_node(&self, name: &str, ip: &str) {
        let r = self
            .http
            .post(format!("{}/nodes", self.sandbox.admin_url()))
            .json(&json!({"name": name, "ip_address": ip}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "register node port {name}");
        let body: Value = r.json().await.unwrap();
        let port = body["port"]["id"].as_str().expect("node port id");
        self.baseline_ports.lock().unwrap().insert(port.to_string());
        let n: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.nodes()
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "set by the test",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }});
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    async fn pools(&self) -> Vec<V1Pool> {
        self.v1.list_pools(&ListQuery::new()).await.unwrap()
    }

    async fn vips(&self) -> Vec<V1Vip> {
        self.v1.list_vips(&ListQuery::new()).await.unwrap()
    }

    async fn members_of(&self, pool: &str) -> Vec<V1Member> {
        let mut m = self.v1.list_members(&ListQuery::new()).await.unwrap();
        m.retain(|m| m.pool_id == pool && m.status != "PENDING_DELETE");
        m
    }

    /// The only pool named for Service `name`; panics on a duplicate.
    async fn pool_of(&self, name: &str) -> Option<V1Pool> {
        let suffix = format!("_{NS}_{name}");
        let mut pools = self.pools().await;
        pools.retain(|p| p.name.ends_with(&suffix) && p.status != "PENDING_DELETE");
        assert!(pools.len() <= 1, "duplicate pools for {name}: {pools:?}");
        pools.pop()
    }

    async fn ingress_ip(&self, name: &str) -> Option<String> {
        let s = self.services().get(name).await.ok()?;
        s.status?.load_balancer?.ingress?.first()?.ip.clone()
    }

    async fn events_for(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    async fn wait_warning(&self, name: &str, needles: &[&str]) -> Event {
        wait_for(
            &format!("Warning Event about {name} mentioning {needles:?}"),
            LIMIT,
            || async {
                self.events_for(name).await.into_iter().find(|e| {
                    let text = format!(
                        "{} {}",
                        e.reason.as_deref().unwrap_or_default(),
                        e.message.as_deref().unwrap_or_default()
                    );
                    e.type_.as_deref() == Some("Warning")
                        && needles.iter().all(|n| text.contains(n))
                })
            },
        )
        .await
    }

    /// Waits until the pool of `name` has exactly these member addresses at `port`.
    async fn wait_members(&self, pool: &str, ips: &[&str], port: u16) {
        let want: BTreeSet<(String, u16)> = ips.iter().map(|ip| (ip.to_string(), port)).collect();
        wait_for(&format!("members {want:?}"), LIMIT, || async {
            let got: BTreeSet<(String, u16)> = self
                .members_of(pool)
                .await
                .into_iter()
                .map(|m| (m.address, m.protocol_port))
                .collect();
            (got == want).then_some(())
        })
        .await
    }

    async fn patch_annotations(&self, name: &str, annotations: Value) {
        self.services()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"annotations": annotations}})),
            )
            .await
            .unwrap();
    }

    /// Nothing of ours left: no v1 object at all (this sandbox serves only this test), no
    /// floating IP, no port beyond the seeded and node ones.
    async fn audit_leaks(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut leaks = Vec::new();
            for p in self.pools().await {
                leaks.push(format!("pool {} {} {}", p.id, p.name, p.status));
            }
            for v in self.vips().await {
                leaks.push(format!("vip {} {} {}", v.id, v.name, v.status));
            }
            for m in self.v1.list_members(&ListQuery::new()).await.unwrap() {
                leaks.push(format!("member {} {}:{}", m.id, m.address, m.protocol_port));
            }
            for m in self
                .v1
                .list_health_monitors(&ListQuery::new())
                .await
                .unwrap()
            {
                leaks.push(format!("health monitor {} {}", m.id, m.monitor_type));
            }
            for f in self
                .neutron
                .list_floating_ips(&ListQuery::new())
                .await
                .unwrap()
            {
                leaks.push(format!("FIP {} {}", f.id, f.floating_ip_address));
            }
            let baseline = self.baseline_ports.lock().unwrap().clone();
            for p in self.neutron.list_ports(&ListQuery::new()).await.unwrap() {
                if !baseline.contains(&p.id) {
                    leaks.push(format!("port {} {} {}", p.id, p.name, p.device_owner));
                }
            }
            if leaks.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "leak audit failed:\n{}",
                leaks.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// GETs through `ip:port` until every backend in `want` has answered (bounded).
async fn wait_traffic_reaches(ip: &str, port: u16, want: &[String]) {
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    for _ in 0..600 {
        if let Some(body) = http_get(ip, port).await {
            if let Some(b) = want.iter().find(|b| body.ends_with(**b)) {
                seen.insert(*b);
            }
            if seen == want {
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("traffic through {ip}:{port} reached {seen:?}, expected {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lbaas_v1_service_lifecycle() {
    let Some(w) = World::start().await else {
        return;
    };
    let conf = w.cp.dir.join("cloud.conf");
    std::fs::write(&conf, w.sandbox.cloud_conf()).unwrap();
    let mut controller = ControllerProcess::start(
        &w.cp.kubeconfig,
        &conf,
        &w.cp.dir.join("controller.log"),
        &[],
    );
    controller.wait_ready(LIMIT).await;

    // Create: pool + members + VIP + FIP on the VIP port.
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .unwrap();
    let svc = w
        .services()
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let node_port = node_ports(&svc)[0];
    let mut backends = Vec::new();
    for (name, ip) in NODES.iter().chain([&NEW_NODE]) {
        backends.push(backend(ip, node_port, format!("hello from {name}")).await);
    }
    let ip = wait_for("external IP of web", LIMIT, || w.ingress_ip("web")).await;
    let pool = w.pool_of("web").await.expect("a pool for web");
    assert_eq!(pool.protocol, "TCP");
    assert_eq!(pool.lb_method, "ROUND_ROBIN");
    assert!(pool.description.contains(&format!("{NS}/web")));
    let vip = w
        .vips()
        .await
        .into_iter()
        .find(|v| v.pool_id == pool.id)
        .expect("a VIP on the pool");
    assert_eq!(
        (vip.name.as_str(), vip.protocol_port),
        (pool.name.as_str(), 80)
    );
    let on_vip = w
        .neutron
        .list_floating_ips(&ListQuery::new().port_id(vip.port_id.clone()))
        .await
        .unwrap();
    assert_eq!(on_vip.len(), 1, "one FIP on the VIP port");
    assert_eq!(on_vip[0].floating_ip_address, ip);
    w.wait_members(&pool.id, &NODES.map(|n| n.1), node_port)
        .await;
    let svc = w.services().get("web").await.unwrap();
    assert_eq!(
        svc.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ann::LOAD_BALANCER_ID)),
        Some(&pool.id),
        "load-balancer-id names the v1 pool"
    );
    let ready = w
        .services()
        .get("web")
        .await
        .unwrap()
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "LoadBalancerReady"))
        .expect("LoadBalancerReady condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Ready")
    );
    let names: Vec<String> = NODES
        .iter()
        .map(|n| format!("hello from {}", n.0))
        .collect();
    wait_traffic_reaches(&ip, 80, &names).await;

    // Node churn: one node goes, another comes; the members follow, the pool stays.
    w.nodes()
        .delete(NODES[2].0, &DeleteParams::default())
        .await
        .unwrap();
    w.add_node(NEW_NODE.0, NEW_NODE.1).await;
    w.wait_members(&pool.id, &[NODES[0].1, NODES[1].1, NEW_NODE.1], node_port)
        .await;
    let names: Vec<String> = [NODES[0].0, NODES[1].0, NEW_NODE.0]
        .iter()
        .map(|n| format!("hello from {n}"))
        .collect();
    wait_traffic_reaches(&ip, 80, &names).await;

    // Updates in place: lb-method on the pool, session affinity and connection limit on the
    // VIP, a TCP monitor associated, and a v1 limit (listener timeouts) as a Warning Event.
    w.patch_annotations(
        "web",
        json!({
            ann::LB_METHOD: "LEAST_CONNECTIONS",
            ann::CONNECTION_LIMIT: "500",
            ann::ENABLE_HEALTH_MONITOR: "true",
            ann::TIMEOUT_CLIENT_DATA: "60000",
        }),
    )
    .await;
    w.services()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"sessionAffinity": "ClientIP"}})),
        )
        .await
        .unwrap();
    wait_for("pool, VIP and monitor updated", LIMIT, || async {
        let p = w.pool_of("web").await?;
        let v = w.v1.get_vip(&vip.id).await.ok()?;
        let ok = p.id == pool.id
            && p.lb_method == "LEAST_CONNECTIONS"
            && p.health_monitors.len() == 1
            && v.connection_limit == Some(500)
            && v.session_persistence
                .as_ref()
                .map(|s| s.persistence_type.as_str())
                == Some("SOURCE_IP");
        ok.then_some(())
    })
    .await;
    let monitors = w.v1.list_health_monitors(&ListQuery::new()).await.unwrap();
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0].monitor_type, "TCP");
    w.wait_warning("web", &["FeatureUnsupported", "listener timeouts"])
        .await;
    assert_eq!(w.ingress_ip("web").await.as_deref(), Some(ip.as_str()));

    // Monitor off again: disassociated and deleted, not left behind.
    w.patch_annotations("web", json!({ann::ENABLE_HEALTH_MONITOR: "false"}))
        .await;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let p = w.pool_of("web").await.expect("pool");
        let left = w.v1.list_health_monitors(&ListQuery::new()).await.unwrap();
        if p.health_monitors.is_empty() && left.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let log: Value = w
                .http
                .get(format!("{}/requests", w.sandbox.admin_url()))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let writes: Vec<String> = log["requests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["method"] != "GET")
                .map(|r| format!("{} {} {}", r["method"], r["path"], r["status"]))
                .collect();
            panic!(
                "monitor not removed: pool {:?}, monitors {:?}\n{}",
                p.health_monitors,
                left,
                writes.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // v1 limits that make a Service invalid: Warning Event naming the field, nothing created.
    let multi: Service = serde_json::from_value(json!({
        "metadata": {"name": "multi"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "multi"}, "ports": [
            {"name": "a", "port": 80, "protocol": "TCP"},
            {"name": "b", "port": 53, "protocol": "UDP"}
        ]}
    }))
    .unwrap();
    w.services()
        .create(&PostParams::default(), &multi)
        .await
        .unwrap();
    let e = w.wait_warning("multi", &["spec.ports", "LBaaS v1"]).await;
    assert!(e
        .message
        .unwrap_or_default()
        .contains("exactly one TCP port"));
    let method: Service = serde_json::from_value(json!({
        "metadata": {"name": "method", "annotations": {ann::LB_METHOD: "SOURCE_IP_PORT"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "method"},
                 "ports": [{"name": "a", "port": 81, "protocol": "TCP"}]}
    }))
    .unwrap();
    w.services()
        .create(&PostParams::default(), &method)
        .await
        .unwrap();
    w.wait_warning("method", &[ann::LB_METHOD, "SOURCE_IP_PORT"])
        .await;
    assert!(w.pool_of("multi").await.is_none());
    assert!(w.pool_of("method").await.is_none());

    // Restart: the new process adopts the pool and VIP (same ids, no duplicates) and still
    // follows changes.
    controller.sigkill();
    w.patch_annotations("web", json!({ann::CONNECTION_LIMIT: "700"}))
        .await;
    controller.restart();
    controller.wait_ready(LIMIT).await;
    wait_for("VIP updated after restart", LIMIT, || async {
        let v = w.v1.get_vip(&vip.id).await.ok()?;
        (v.connection_limit == Some(700)).then_some(())
    })
    .await;
    assert_eq!(w.pool_of("web").await.map(|p| p.id), Some(pool.id.clone()));
    assert_eq!(w.vips().await.len(), 1, "no second VIP");
    assert_eq!(
        w.neutron
            .list_floating_ips(&ListQuery::new())
            .await
            .unwrap()
            .len(),
        1,
        "no second floating IP"
    );
    assert_eq!(w.ingress_ip("web").await.as_deref(), Some(ip.as_str()));

    // A new Service port cannot be set on a v1 VIP: the VIP is replaced, the floating IP
    // stays and moves to the new VIP port, and traffic follows.
    w.services()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"ports": [
                {"name": "http", "port": 8080, "protocol": "TCP", "nodePort": node_port}
            ]}})),
        )
        .await
        .unwrap();
    let new_vip = wait_for("VIP replaced on port 8080", LIMIT, || async {
        let v = w.vips().await.into_iter().find(|v| v.pool_id == pool.id)?;
        (v.protocol_port == 8080 && v.status == "ACTIVE").then_some(v)
    })
    .await;
    assert_ne!(new_vip.id, vip.id);
    wait_for("the FIP on the new VIP port", LIMIT, || async {
        let on = w
            .neutron
            .list_floating_ips(&ListQuery::new().port_id(new_vip.port_id.clone()))
            .await
            .ok()?;
        (on.len() == 1 && on[0].floating_ip_address == ip).then_some(())
    })
    .await;
    wait_traffic_reaches(&ip, 8080, &names).await;

    // Killed between the VIP POST being committed and its answer: the restarted controller
    // finds the VIP through its pool, puts the floating IP on it, and creates no second one.
    let r = w
        .http
        .post(format!("{}/faults/rules", w.sandbox.admin_url()))
        .json(
            &json!({"service": "network", "method": "POST", "path": "^/v2.0/lb/vips$",
                      "hold_response_ms": 20000, "times": 1}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "fault rule accepted");
    let api: Service = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "api"},
                 "ports": [{"name": "a", "port": 82, "protocol": "TCP"}]}
    }))
    .unwrap();
    w.services()
        .create(&PostParams::default(), &api)
        .await
        .unwrap();
    let api_pool = wait_for("the held VIP of api committed", LIMIT, || async {
        let p = w.pool_of("api").await?;
        w.vips()
            .await
            .iter()
            .any(|v| v.pool_id == p.id)
            .then_some(p)
    })
    .await;
    controller.sigkill();
    controller.restart();
    let api_ip = wait_for("external IP of api", LIMIT, || w.ingress_ip("api")).await;
    assert_eq!(
        w.pool_of("api").await.map(|p| p.id),
        Some(api_pool.id.clone())
    );
    let api_vips: Vec<V1Vip> = w
        .vips()
        .await
        .into_iter()
        .filter(|v| v.pool_id == api_pool.id)
        .collect();
    assert_eq!(api_vips.len(), 1, "one VIP after the crash: {api_vips:?}");
    let on_api_vip = w
        .neutron
        .list_floating_ips(&ListQuery::new().port_id(api_vips[0].port_id.clone()))
        .await
        .unwrap();
    assert_eq!(on_api_vip.len(), 1);
    assert_eq!(on_api_vip[0].floating_ip_address, api_ip);

    // Delete: everything goes, bottom-up, and the finalizer with it.
    for name in ["web", "multi", "method", "api"] {
        w.services()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["web", "multi", "method", "api"] {
        wait_for(&format!("Service {name} gone"), LIMIT, || async {
            w.services()
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        })
        .await;
    }
    w.audit_leaks().await;
    assert!(
        http_get(&ip, 8080).await.is_none(),
        "the floating IP no longer forwards"
    );
    for b in backends {
        b.abort();
    }
    drop(controller);
    w.sandbox.shutdown().await;
}
