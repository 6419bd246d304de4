//! Scenario harness for the end-to-end tests: one isolated world per test (its own
//! kube-apiserver through `common::ControlPlane`, its own in-process sandbox on ephemeral
//! ports with its own floating range, its own namespace and node addresses), the controller
//! binary as a child process that can be SIGKILLed and restarted, Node objects with loopback
//! InternalIPs, the sandbox's request log, and the leak audit every test ends with.
//! It must not know what a scenario expects: assertions about behaviour stay in the tests.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Namespace, Node, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use model::config::CloudConfig;
use openstack::lbaas::LoadBalancer;
use openstack::neutron::FloatingIp;
use openstack::{LbaasV2, ListQuery, Neutron, Session, SessionOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{repo_root, wait_for, ControlPlane};

/// Bound of every wait that involves the controller doing one thing.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The controller binary: $OLBC_CONTROLLER_BIN (the test script sets it), else built with
/// cargo into the shared target dir.
pub fn controller_bin() -> PathBuf {
    if let Ok(p) = std::env::var("OLBC_CONTROLLER_BIN") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args(["build", "-q", "-p", "openstack-lb-controller"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cannot build the controller binary");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    target.join("debug").join("openstack-lb-controller")
}

/// A free loopback port, so the test knows where `/readyz` is. The tiny window between
/// releasing it and the controller binding it is acceptable for tests.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A sandbox configuration whose floating IPs come from 127.<octet>.0.0/24, so sandboxes of
/// tests running at the same time never listen on the same floating address.
pub fn sandbox_config(floating_octet: u8, provisioning_delay: Duration) -> sandbox::SandboxConfig {
    sandbox::SandboxConfig {
        provisioning_delay,
        floating_range: sandbox::ipnet::Ipv4Net::new(Ipv4Addr::new(127, floating_octet, 0, 0), 24)
            .unwrap(),
        ..Default::default()
    }
}

/// The controller as its own process. Killed (SIGKILL) on drop; its log is printed when the
/// test is failing, or always with OLBC_SHOW_CONTROLLER_LOG.
pub struct ControllerProcess {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    pub log: PathBuf,
    pub health: SocketAddr,
}

impl ControllerProcess {
    /// Starts `run` against `kubeconfig` and `cloud_conf` with `extra` flags appended
    /// (`--resync-period` defaults to 1m unless `extra` sets it).
    pub fn start(kubeconfig: &Path, cloud_conf: &Path, log: &Path, extra: &[&str]) -> Self {
        let health = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut args: Vec<String> = vec![
            "run".into(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--cloud-config".into(),
            cloud_conf.display().to_string(),
            "--metrics-addr".into(),
            health.to_string(),
            "--health-addr".into(),
            health.to_string(),
        ];
        if !extra.contains(&"--resync-period") {
            args.extend(["--resync-period".into(), "1m".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut p = ControllerProcess {
            child: None,
            bin: controller_bin(),
            args,
            log: log.to_path_buf(),
            health,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .args(&self.args)
            .env("RUST_LOG", "info,controller=debug")
            .env_remove("OLBC_CLOUD_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the controller");
        self.child = Some(child);
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no chance to finish anything.
    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same command again (same health port, log appended).
    pub fn restart(&mut self) {
        self.sigkill();
        self.spawn();
    }

    /// The running process's id (for SIGSTOP/SIGCONT), if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive (it has not exited on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Whether `/readyz` answers 200 within `limit`, without failing the test: the process
    /// serves only after its start-up discovery, so a `true` means that discovery is behind it.
    pub async fn ready_within(&mut self, limit: Duration) -> bool {
        let url = format!("http://{}/readyz", self.health);
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline && self.is_running() {
            let ok = http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Waits until `/readyz` answers 200 (caches synced; the cloud was connected before).
    pub async fn wait_ready(&mut self, limit: Duration) {
        if self.ready_within(limit).await {
            return;
        }
        assert!(
            self.is_running(),
            "controller exited:\n{}",
            self.log_tail(40)
        );
        panic!(
            "controller not ready within {limit:?}:\n{}",
            self.log_tail(40)
        );
    }

    /// The last `lines` log lines that mention `needle` (a Service's key), to show what the
    /// controller last did about it when a check fails.
    pub fn log_about(&self, needle: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let about: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        about[about.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.sigkill();
        if std::thread::panicking() || std::env::var("OLBC_SHOW_CONTROLLER_LOG").is_ok() {
            eprintln!(
                "---- controller log ({}) ----\n{}",
                self.log.display(),
                self.log_tail(80)
            );
        }
    }
}

/// Counts of OpenStack API calls (Keystone apart) in a window of the sandbox's request log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    pub reads: usize,
    pub writes: usize,
    pub identity: usize,
}

/// One isolated world: control plane, sandbox, namespace, OpenStack clients for assertions.
pub struct Env {
    pub cp: ControlPlane,
    pub client: Client,
    pub sandbox: sandbox::SandboxHandle,
    pub conf_path: PathBuf,
    pub lbaas: LbaasV2,
    pub neutron: Neutron,
    pub namespace: String,
    http: reqwest::Client,
    /// Ports and security groups that are not ours (seeded, node ports): the audit's baseline.
    baseline_ports: Mutex<BTreeSet<String>>,
    baseline_groups: Mutex<BTreeSet<String>>,
}

impl Env {
    /// `None` when the control-plane binaries are not built (the test then skips).
    pub async fn start(tag: &str, namespace: &str, cfg: sandbox::SandboxConfig) -> Option<Env> {
        let cp = ControlPlane::start(tag)?;
        let client = cp.client().await;
        let sandbox = sandbox::start(cfg).await.expect("sandbox starts");
        let conf_path = cp.dir.join("cloud.conf");
        std::fs::write(&conf_path, sandbox.cloud_conf()).unwrap();
        let (config, _) = CloudConfig::parse(&sandbox.cloud_conf()).unwrap();
        let session = Session::new(&config.global, &config.metadata, SessionOptions::default())
            .await
            .unwrap();
        let lbaas = LbaasV2::octavia(&session).await.unwrap();
        let neutron = Neutron::new(&session).await.unwrap();
        let ports = neutron.list_ports(&ListQuery::new()).await.unwrap();
        let groups = neutron
            .list_security_groups(&ListQuery::new())
            .await
            .unwrap();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Some(Env {
            cp,
            client,
            sandbox,
            conf_path,
            lbaas,
            neutron,
            namespace: namespace.to_string(),
            http: reqwest::Client::new(),
            baseline_ports: Mutex::new(ports.into_iter().map(|p| p.id).collect()),
            baseline_groups: Mutex::new(groups.into_iter().map(|g| g.id).collect()),
        })
    }

    /// Writes another cloud.conf next to the default one (for disabled-mode variants).
    pub fn write_conf(&self, file: &str, text: &str) -> PathBuf {
        let p = self.cp.dir.join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The controller on this world's default cloud.conf.
    pub fn start_controller(&self, extra: &[&str]) -> ControllerProcess {
        ControllerProcess::start(
            &self.cp.kubeconfig,
            &self.conf_path,
            &self.cp.dir.join("controller.log"),
            extra,
        )
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// A node as the cloud and Kubernetes both see it: a `compute:nova` port holding `ip` in
    /// the sandbox, and a Node with that InternalIP and the given readiness.
    pub async fn add_node(&self, name: &str, ip: &str, ready: bool) {
        let r = self
            .http
            .post(format!("{}/nodes", self.sandbox.admin_url()))
            .json(&json!({"name": name, "ip_address": ip}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "register node port {name}");
        let body: Value = r.json().await.unwrap();
        if let Some(id) = body["port"]["id"].as_str() {
            self.baseline_ports.lock().unwrap().insert(id.to_string());
        }
        let n: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.nodes()
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
        self.patch_node_status(name, ip, ready).await;
    }

    /// Replaces the Node's addresses and Ready condition (status subresource).
    pub async fn patch_node_status(&self, name: &str, ip: &str, ready: bool) {
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                            "message": "set by the test",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }});
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    pub async fn label_node(&self, name: &str, key: &str, value: &str) {
        let patch = json!({"metadata": {"labels": {key: value}}});
        self.nodes()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Creates a Service in this world's namespace from a JSON manifest.
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

    /// The first ingress IP of a Service, if it has one.
    pub async fn ingress_ip(&self, name: &str) -> Option<String> {
        let s = self.services().get(name).await.ok()?;
        s.status?.load_balancer?.ingress?.first()?.ip.clone()
    }

    pub async fn wait_ingress_ip(&self, name: &str, limit: Duration) -> String {
        wait_for(&format!("external IP of {name}"), limit, || {
            self.ingress_ip(name)
        })
        .await
    }

    /// Waits until the Service's ingress is `ip` (after a switch between FIP and VIP).
    pub async fn wait_ingress_is(&self, name: &str, ip: &str, limit: Duration) {
        wait_for(&format!("ingress of {name} = {ip}"), limit, || async {
            (self.ingress_ip(name).await.as_deref() == Some(ip)).then_some(())
        })
        .await
    }

    pub async fn wait_service_gone(&self, name: &str, limit: Duration) {
        wait_for(&format!("Service {name} gone"), limit, || async {
            self.services()
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        })
        .await
    }

    /// The controller's `LoadBalancerReady` condition of a Service: (status, reason, message).
    pub async fn condition(&self, name: &str) -> Option<(String, String, String)> {
        let s = self.services().get(name).await.ok()?;
        let c = s
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "LoadBalancerReady")?;
        Some((c.status, c.reason, c.message))
    }

    /// Events recorded about a Service of this namespace (events.k8s.io Events show up in
    /// core/v1 too, with `note` as `message`).
    pub async fn events_for(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    /// Waits for an Event about `name` of type `type_` whose message contains every needle.
    pub async fn wait_event(&self, name: &str, type_: &str, needles: &[&str]) -> Event {
        wait_for(
            &format!("{type_} Event about {name} mentioning {needles:?}"),
            LIMIT,
            || async {
                self.events_for(name).await.into_iter().find(|e| {
                    e.type_.as_deref() == Some(type_)
                        && needles.iter().all(|n| {
                            e.message.as_deref().unwrap_or_default().contains(n)
                                || e.reason.as_deref().unwrap_or_default().contains(n)
                        })
                })
            },
        )
        .await
    }

    /// Load balancers of the sandbox that are not (being) gone.
    pub async fn live_lbs(&self) -> Vec<LoadBalancer> {
        let mut lbs = self
            .lbaas
            .list_loadbalancers(&ListQuery::new())
            .await
            .unwrap();
        lbs.retain(|l| {
            l.provisioning_status != "DELETED" && l.provisioning_status != "PENDING_DELETE"
        });
        lbs
    }

    pub async fn lbs_named(&self, name: &str) -> Vec<LoadBalancer> {
        let mut lbs = self.live_lbs().await;
        lbs.retain(|l| l.name == name);
        lbs
    }

    pub async fn fips(&self) -> Vec<FloatingIp> {
        self.neutron
            .list_floating_ips(&ListQuery::new())
            .await
            .unwrap()
    }

    /// Floating IPs attached to a port.
    pub async fn fips_on(&self, port_id: &str) -> Vec<FloatingIp> {
        self.neutron
            .list_floating_ips(&ListQuery::new().port_id(port_id.to_string()))
            .await
            .unwrap()
    }

    /// Sequence number the next request-log entry will get.
    pub async fn request_log_mark(&self) -> u64 {
        // `next_since` does not depend on the filter: ask for nothing, get the mark.
        // (An empty log echoes `since` back: that means 0.)
        let v = self.requests(u64::MAX, None).await;
        v["next_since"]
            .as_u64()
            .filter(|&n| n != u64::MAX)
            .unwrap_or(0)
    }

    /// The request log from `since` on (the admin API's JSON), optionally filtered by one
    /// query key (`method`, `service`, `path_prefix`).
    pub async fn requests(&self, since: u64, extra: Option<(&str, &str)>) -> Value {
        let mut q = vec![("since".to_string(), since.to_string())];
        if let Some((k, v)) = extra {
            q.push((k.to_string(), v.to_string()));
        }
        self.http
            .get(format!("{}/requests", self.sandbox.admin_url()))
            .query(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Neutron/Octavia reads and writes (and Keystone calls apart) logged in `[from, to)`.
    pub async fn call_counts(&self, from: u64, to: u64) -> CallCounts {
        let v = self.requests(from, None).await;
        let mut c = CallCounts::default();
        for r in v["requests"].as_array().into_iter().flatten() {
            if r["seq"].as_u64().is_none_or(|s| s >= to) {
                continue;
            }
            match r["service"].as_str() {
                Some("identity") => c.identity += 1,
                Some("network") | Some("load-balancer") => {
                    if r["method"].as_str() == Some("GET") {
                        c.reads += 1;
                    } else {
                        c.writes += 1;
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// Paths (and statuses) of the Neutron/Octavia requests with this method logged since
    /// `from`.
    pub async fn calls(&self, from: u64, method: &str) -> Vec<(String, u16)> {
        let v = self.requests(from, Some(("method", method))).await;
        v["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                matches!(
                    r["service"].as_str(),
                    Some("network") | Some("load-balancer")
                )
            })
            .filter_map(|r| {
                Some((
                    r["path"].as_str()?.to_string(),
                    r["status"].as_u64().unwrap_or(0) as u16,
                ))
            })
            .collect()
    }

    /// Adds a fault rule through the sandbox's admin API (FaultRuleSpec's JSON form).
    pub async fn add_fault(&self, rule: Value) {
        let r = self
            .http
            .post(format!("{}/faults/rules", self.sandbox.admin_url()))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "fault rule {rule} refused");
    }

    /// One admin API call (JSON body, JSON answer); panics unless it succeeds.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.sandbox.admin_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    /// Deletes every Service of the namespace and waits (bounded) until all are gone;
    /// returns how many there were.
    pub async fn delete_all_services(&self, limit: Duration) -> usize {
        let names: Vec<String> = self
            .services()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        for name in &names {
            self.services()
                .delete(name, &Default::default())
                .await
                .unwrap();
        }
        for name in &names {
            self.wait_service_gone(name, limit).await;
        }
        names.len()
    }

    pub async fn clear_faults(&self) {
        let r = self
            .http
            .delete(format!("{}/faults", self.sandbox.admin_url()))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "faults not cleared");
    }

    /// Counts the security groups another project has now (Neutron makes a project's
    /// `default` group on its first call) as not ours, for the leak audit.
    pub async fn baseline_groups_of(&self, project_id: &str) {
        let groups = self
            .neutron
            .list_security_groups(&ListQuery::new())
            .await
            .unwrap();
        self.baseline_groups.lock().unwrap().extend(
            groups
                .into_iter()
                .filter(|g| g.project_id == project_id)
                .map(|g| g.id),
        );
    }

    /// [`baseline_groups_of`](Self::baseline_groups_of) from the sandbox's state, without an
    /// API call (so no injected fault can fail it).
    pub fn baseline_groups_in_sandbox(&self, project_id: &str) {
        let world = self.sandbox.state().inner.world.lock();
        self.baseline_groups.lock().unwrap().extend(
            world
                .neutron
                .security_groups
                .values()
                .filter(|g| g.std.project_id == project_id)
                .map(|g| g.id.clone()),
        );
    }

    /// The leak audit every test ends with: once the controller has let go, no load balancer,
    /// no floating IP (except the user-owned ones in `keep`, with their ports), no port but the
    /// seeded and node ports, no security group but the seeded ones are left in the sandbox.
    pub async fn audit_leaks(&self, keep: &[&str]) {
        let baseline = self.baseline_ports.lock().unwrap().clone();
        let baseline_groups = self.baseline_groups.lock().unwrap().clone();
        let leaks = || async {
            let mut leaks = Vec::new();
            for lb in self
                .lbaas
                .list_loadbalancers(&ListQuery::new())
                .await
                .unwrap()
            {
                if lb.provisioning_status != "DELETED" {
                    leaks.push(format!(
                        "LB {} {} {}",
                        lb.id, lb.name, lb.provisioning_status
                    ));
                }
            }
            for f in self.fips().await {
                if !keep.contains(&f.id.as_str()) {
                    leaks.push(format!(
                        "FIP {} {} {:?}",
                        f.id, f.floating_ip_address, f.description
                    ));
                }
            }
            for p in self.neutron.list_ports(&ListQuery::new()).await.unwrap() {
                // A floating IP owns a port on the external network (as in Neutron); the
                // user's kept FIPs keep theirs.
                let kept_fip_port =
                    p.device_owner == "network:floatingip" && keep.contains(&p.device_id.as_str());
                if !baseline.contains(&p.id) && !kept_fip_port {
                    leaks.push(format!("port {} {} {}", p.id, p.name, p.device_owner));
                }
            }
            for g in self
                .neutron
                .list_security_groups(&ListQuery::new())
                .await
                .unwrap()
            {
                if !baseline_groups.contains(&g.id) {
                    leaks.push(format!("security group {} {}", g.id, g.name));
                }
            }
            leaks
        };
        // Octavia finishes a delete on its own after accepting it; give it a bounded while.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = leaks().await;
            if found.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "leak audit failed:\n{}",
                found.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The sandbox restarts with an empty database (`SandboxHandle::lose_state`), its nodes'
    /// ports made again in the same step, as an operator rebuilding the cloud would bring
    /// the machines back. What exists right after (the new seed's ports, the nodes' ports and
    /// their default security groups) becomes the leak audit's baseline: the old one names
    /// objects that are gone.
    pub fn lose_sandbox_state(&self) -> sandbox::state::StateLost {
        let lost = self.sandbox.lose_state(true);
        *self.baseline_ports.lock().unwrap() = lost.ports.iter().cloned().collect();
        *self.baseline_groups.lock().unwrap() = lost.security_groups.iter().cloned().collect();
        lost
    }

    /// Whether the Service still carries our finalizer.
    pub async fn has_finalizer(&self, name: &str) -> bool {
        self.services()
            .get(name)
            .await
            .ok()
            .and_then(|s| s.metadata.finalizers)
            .is_some_and(|f| {
                f.iter()
                    .any(|x| x == "service.kubernetes.io/load-balancer-cleanup")
            })
    }

    pub async fn finish(self) {
        self.sandbox.shutdown().await;
    }
}

/// A number from the environment (test sizes, seeds), else `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A LoadBalancer Service `name` with one TCP port `p<port>` per entry of `ports`.
pub fn lb_service(name: &str, ports: &[i32]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"name": format!("p{p}"), "port": p, "protocol": "TCP"}))
        .collect();
    json!({"metadata": {"name": name},
           "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": ports}})
}

/// A backend answering every HTTP request with `name`, on `ip:port`.
pub async fn backend(ip: &str, port: u16, name: String) -> tokio::task::JoinHandle<()> {
    http_responder(ip, port, "200 OK", name).await
}

/// An HTTP server on `ip:port` answering every request with `status` (e.g. "503 Service
/// Unavailable") and `body`: a NodePort backend, or a kube-proxy health check node port.
pub async fn http_responder(
    ip: &str,
    port: u16,
    status: &'static str,
    body: String,
) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    })
}

/// One HTTP GET with a 5 s bound; `None` on any failure.
pub async fn http_get(addr: &str, port: u16) -> Option<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((addr, port)).await.ok()?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
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
