//! The controller part of the conformance tier: one world per scenario against the REAL target
//! cloud (its own kube-apiserver through `common::ControlPlane`, the controller binary as its
//! own process with `--cluster-name <run prefix>-<scenario>`, Nodes whose InternalIPs are
//! addresses reserved in the target subnet by Neutron ports named with that tag), the leak
//! audit limited to that tag, and the sweep that removes everything with it even when the
//! scenario panicked. It must not know what a scenario expects.

#![allow(dead_code)]

pub mod target;

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use openstack::lbaas::LoadBalancer;
use openstack::neutron::{CreatePort, FloatingIp};
use openstack::{LbaasV2, ListQuery, LoadBalancerApi, Neutron};
use serde_json::{json, Value};

use crate::common::ControlPlane;
use crate::harness::ControllerProcess;
pub use target::{sweep, Target};

/// Bound of one wait on the real cloud: a create → ACTIVE takes seconds on an idle cloud and
/// much longer on a loaded one.
pub const CLOUD_LIMIT: Duration = Duration::from_secs(240);

/// Polls `f` every `every` until it returns `Some`, at most `limit` (fails the test after).
pub async fn poll<T, F, Fut>(what: &str, limit: Duration, every: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Cloud reads are polled once a second: the target is shared and real.
pub async fn poll_cloud<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(what, CLOUD_LIMIT, Duration::from_secs(1), f).await
}

pub struct World {
    pub target: Target,
    /// `<run prefix>-<scenario>`: the controller's cluster name, so every name carries it.
    pub tag: String,
    pub cp: ControlPlane,
    pub client: Client,
    pub namespace: String,
    pub lbaas: LbaasV2,
    pub neutron: Neutron,
    pub conf_path: PathBuf,
    /// Ids of every load balancer of this world seen so far: the audit checks that their VIP
    /// ports and Octavia security groups (named after the id, not the tag) are gone too.
    seen_lbs: Mutex<BTreeSet<String>>,
}

impl World {
    /// A world for one scenario. Fails (does not skip) without a target or without the
    /// control-plane binaries: the tier was asked for explicitly.
    pub async fn start(scenario: &str) -> World {
        let target = Target::require();
        let tag = target.tagged(scenario);
        let cp = ControlPlane::start(&format!("conf-{scenario}")).unwrap_or_else(|| {
            panic!(
                "the conformance tier needs kube-apiserver/etcd: run hack/build-control-plane.sh"
            )
        });
        let client = cp.client().await;
        let session = target.session().await;
        let neutron = Neutron::new(&session).await.unwrap();
        let api = LoadBalancerApi::detect(&session, None).await.unwrap();
        let lbaas = api.v2().expect("the tier needs Octavia").clone();
        let conf_path = cp.dir.join("cloud.conf");
        std::fs::write(&conf_path, target.cloud_conf("")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&conf_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let namespace = scenario.to_string();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        World {
            target,
            tag,
            cp,
            client,
            namespace,
            lbaas,
            neutron,
            conf_path,
            seen_lbs: Mutex::new(BTreeSet::new()),
        }
    }

    /// Runs one scenario body (which borrows this world) and catches its panic, so that
    /// [`World::finish`] can clean up before the test fails.
    pub async fn catch<F: Future<Output = ()>>(body: F) -> std::thread::Result<()> {
        AssertUnwindSafe(body).catch_unwind().await
    }

    /// Removes everything tagged with this world's tag whatever happened, then fails the
    /// test if the scenario did. A scenario that passed must have left nothing but its node
    /// ports.
    pub async fn finish(self, result: std::thread::Result<()>, started: std::time::Instant) {
        let swept = sweep(&self.lbaas, &self.neutron, &self.tag).await;
        let leftovers: Vec<&String> = swept
            .iter()
            .filter(|s| !s.contains(&format!("{}-node-", self.tag)))
            .collect();
        println!(
            "scenario {} took {:.1} s; swept {} node port(s)",
            self.namespace,
            started.elapsed().as_secs_f64(),
            swept.len() - leftovers.len()
        );
        if result.is_err() || !leftovers.is_empty() {
            // The controller process is gone by now; its log is the evidence.
            let log =
                std::fs::read_to_string(self.cp.dir.join("controller.log")).unwrap_or_default();
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| {
                    l.contains("executed")
                        || l.contains("WARN")
                        || l.contains("ERROR")
                        || l.contains("deleted")
                })
                .collect();
            eprintln!(
                "---- controller log of {} (writes, warnings, deletions) ----\n{}",
                self.namespace,
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
        if let Err(panic) = result {
            eprintln!("cleaned up after the failure: {swept:?}");
            std::panic::resume_unwind(panic);
        }
        assert!(
            leftovers.is_empty(),
            "left behind by the scenario: {leftovers:?}"
        );
    }

    /// The controller on this world's cloud.conf with `--cluster-name <tag>`.
    pub fn start_controller(&self, extra: &[&str]) -> ControllerProcess {
        let mut args = vec!["--cluster-name", self.tag.as_str()];
        args.extend_from_slice(extra);
        ControllerProcess::start(
            &self.cp.kubeconfig,
            &self.conf_path,
            &self.cp.dir.join("controller.log"),
            &args,
        )
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Reserves an address in the target subnet (a Neutron port named `<tag>-node-<name>`)
    /// and registers a Ready Node with it as InternalIP. Returns the address.
    pub async fn add_node(&self, name: &str) -> String {
        let subnet = self
            .neutron
            .get_subnet(&self.target.subnet_id)
            .await
            .unwrap();
        let port = self
            .neutron
            .create_port(&CreatePort {
                network_id: subnet.network_id.clone(),
                name: Some(format!("{}-node-{name}", self.tag)),
                fixed_ips: Some(vec![json!({"subnet_id": subnet.id})]),
                ..Default::default()
            })
            .await
            .unwrap();
        let ip = port.fixed_ips[0].ip_address.clone();
        let n: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.nodes()
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
        self.set_node_ready(name, &ip, true).await;
        ip
    }

    pub async fn set_node_ready(&self, name: &str, ip: &str, ready: bool) {
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                            "message": "set by the conformance tier",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }});
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    pub async fn delete_node(&self, name: &str) {
        self.nodes()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    pub async fn create_service(&self, manifest: Value) -> Service {
        let svc: Service = serde_json::from_value(manifest).unwrap();
        self.services()
            .create(&PostParams::default(), &svc)
            .await
            .unwrap()
    }

    pub async fn patch_service(&self, name: &str, patch: Value) -> Service {
        self.services()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap()
    }

    pub async fn delete_service(&self, name: &str) {
        self.services()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    pub async fn wait_service_gone(&self, name: &str) {
        poll(
            &format!("Service {name} gone"),
            CLOUD_LIMIT,
            Duration::from_millis(250),
            || async {
                self.services()
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                    .then_some(())
            },
        )
        .await
    }

    pub async fn ingress_ip(&self, name: &str) -> Option<String> {
        let s = self.services().get(name).await.ok()?;
        s.status?.load_balancer?.ingress?.first()?.ip.clone()
    }

    pub async fn wait_ingress_ip(&self, name: &str) -> String {
        poll(
            &format!("external IP of {name}"),
            CLOUD_LIMIT,
            Duration::from_millis(250),
            || self.ingress_ip(name),
        )
        .await
    }

    pub async fn wait_ingress_is(&self, name: &str, ip: &str) {
        poll(
            &format!("ingress of {name} = {ip}"),
            CLOUD_LIMIT,
            Duration::from_millis(250),
            || async { (self.ingress_ip(name).await.as_deref() == Some(ip)).then_some(()) },
        )
        .await
    }

    pub async fn annotation(&self, name: &str, key: &str) -> Option<String> {
        let s = self.services().get(name).await.ok()?;
        s.metadata.annotations?.get(key).cloned()
    }

    /// The load-balancer name the controller gives Service `name` of this world.
    pub fn lb_name(&self, service: &str) -> String {
        format!("kube_service_{}_{}_{service}", self.tag, self.namespace)
    }

    /// This world's load balancers that are not (being) deleted.
    pub async fn lbs(&self) -> Vec<LoadBalancer> {
        let mut lbs = self.lbs_existing().await;
        lbs.retain(|l| l.provisioning_status != "PENDING_DELETE");
        lbs
    }

    /// This world's load balancers that still exist, PENDING_DELETE included: Octavia removes
    /// the VIP port before the load balancer itself, so only this tells "really gone".
    pub async fn lbs_existing(&self) -> Vec<LoadBalancer> {
        let prefix = format!("kube_service_{}_", self.tag);
        let mut lbs = self
            .lbaas
            .list_loadbalancers(&ListQuery::new())
            .await
            .unwrap();
        lbs.retain(|l| l.name.starts_with(&prefix));
        let mut seen = self.seen_lbs.lock().unwrap();
        seen.extend(lbs.iter().map(|l| l.id.clone()));
        lbs.retain(|l| l.provisioning_status != "DELETED");
        lbs
    }

    pub async fn lbs_named(&self, service: &str) -> Vec<LoadBalancer> {
        let name = self.lb_name(service);
        let mut lbs = self.lbs().await;
        lbs.retain(|l| l.name == name);
        lbs
    }

    /// Waits until exactly one LB of `service` exists and is ACTIVE; returns it.
    pub async fn wait_lb_active(&self, service: &str) -> LoadBalancer {
        poll_cloud(&format!("LB of {service} ACTIVE"), || async {
            let lbs = self.lbs_named(service).await;
            (lbs.len() == 1 && lbs[0].provisioning_status == "ACTIVE").then(|| lbs[0].clone())
        })
        .await
    }

    /// Waits until the LB `id` is ACTIVE and `check` holds for it.
    pub async fn wait_lb<F: Fn(&LoadBalancer) -> bool>(
        &self,
        what: &str,
        id: &str,
        check: F,
    ) -> LoadBalancer {
        self.seen_lbs.lock().unwrap().insert(id.to_string());
        poll_cloud(what, || async {
            let lb = self.lbaas.get_loadbalancer(id).await.ok()?;
            (lb.provisioning_status == "ACTIVE" && check(&lb)).then_some(lb)
        })
        .await
    }

    /// (protocol port, listener name, pool algorithm, member "address:port"s sorted) of each
    /// listener of the LB `id`, sorted by port.
    pub async fn listeners(&self, id: &str) -> Vec<(u16, String, String, Vec<String>)> {
        let lb = self.lbaas.get_loadbalancer(id).await.unwrap();
        let mut out = Vec::new();
        for r in &lb.listeners {
            let l = self.lbaas.get_listener(&r.id).await.unwrap();
            let (alg, mut members) = match &l.default_pool_id {
                Some(p) => {
                    let pool = self.lbaas.get_pool(p).await.unwrap();
                    let members = self
                        .lbaas
                        .list_members(p, &ListQuery::new())
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|m| format!("{}:{}", m.address, m.protocol_port))
                        .collect();
                    (pool.lb_algorithm, members)
                }
                None => (String::new(), Vec::new()),
            };
            members.sort();
            out.push((l.protocol_port, l.name, alg, members));
        }
        out.sort();
        out
    }

    /// Floating IPs whose description carries this world's tag (the controller's, OCCM's
    /// and the scenario's own).
    pub async fn fips(&self) -> Vec<FloatingIp> {
        let mut f = self
            .neutron
            .list_floating_ips(&ListQuery::new())
            .await
            .unwrap();
        f.retain(|f| f.description.contains(&self.tag));
        f
    }

    /// The leak audit each scenario ends with, limited to this world's tag: no load balancer,
    /// no floating IP (except `keep`), no port or security group named with the tag (node
    /// ports apart), and no VIP port or Octavia security group of any LB this world saw.
    pub async fn audit_leaks(&self, keep: &[&str]) {
        let seen: Vec<String> = self.seen_lbs.lock().unwrap().iter().cloned().collect();
        let node_ports = format!("{}-node-", self.tag);
        poll_cloud("no leak", || async {
            let mut leaks = Vec::new();
            for lb in self.lbs_existing().await {
                leaks.push(format!(
                    "LB {} {} {}",
                    lb.id, lb.name, lb.provisioning_status
                ));
            }
            for f in self.fips().await {
                if !keep.contains(&f.id.as_str()) {
                    leaks.push(format!("FIP {} {}", f.id, f.description));
                }
            }
            for p in self.neutron.list_ports(&ListQuery::new()).await.ok()? {
                let of_seen = seen
                    .iter()
                    .any(|id| p.name.contains(id.as_str()) || p.device_id.contains(id.as_str()));
                if (p.name.contains(&self.tag) && !p.name.starts_with(&node_ports)) || of_seen {
                    leaks.push(format!("port {} {} {}", p.id, p.name, p.device_owner));
                }
            }
            for g in self
                .neutron
                .list_security_groups(&ListQuery::new())
                .await
                .ok()?
            {
                let of_seen = seen.iter().any(|id| g.name == format!("lb-{id}"));
                if g.name.contains(&self.tag) || of_seen {
                    leaks.push(format!("security group {} {}", g.id, g.name));
                }
            }
            if leaks.is_empty() {
                Some(())
            } else {
                println!("audit {}: waiting for {leaks:?}", self.namespace);
                None
            }
        })
        .await;
        println!(
            "audit {}: nothing left of {} load balancer(s)",
            self.namespace,
            seen.len()
        );
    }
}

/// A LoadBalancer Service manifest with TCP `ports` (name, port).
pub fn lb_service(name: &str, ports: &[(&str, u16)], annotations: Value) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"}))
        .collect();
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": ports}
    })
}

/// NodePorts of a created Service, in port order.
pub fn node_ports(svc: &Service) -> Vec<u16> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.node_port.map(|n| n as u16))
                .collect()
        })
        .unwrap_or_default()
}
