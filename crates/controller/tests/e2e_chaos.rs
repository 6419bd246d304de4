//! Chaos, seeded: ~40 Services churn (create, change ports, change an annotation, delete)
//! while nodes come and go, the sandbox injects faults on ~10 % of the OpenStack calls (500,
//! 503, 504, answers later than the client's timeout, 409 on writes, 429 with Retry-After,
//! latency spikes), tokens are revoked, load balancers created during one window end in
//! ERROR, the controller is SIGKILLed and restarted at random moments and the kube-apiserver
//! is restarted once. Once, at a seeded moment, the sandbox loses its state as a cloud
//! restarted on an empty database would (`SandboxHandle::lose_state`): every network, port,
//! floating IP and load balancer gone, the seed made again with new ids, the same endpoints
//! and users. Afterwards, with the faults off: every live Service has exactly one
//! correct load balancer (its ports, its nodes as members, its floating IP on the VIP, its
//! status showing that IP) and answers through its IP; no pool of a live Service was ever
//! seen empty after it had members (the sandbox's state is sampled every 200 ms during the
//! whole run); after deleting everything, nothing of ours is left, while a user's floating IP,
//! another project's load balancer and another cluster's load balancer were never written to.
//!
//! The state loss, and what the test does about it:
//! * The controller's cloud.conf pins no network or subnet id: discovery finds them (the only
//!   external network; the nodes' subnet from the port holding a node's address), and the
//!   controller looks for them again after a "not found" (planner/rediscover.rs, at most once
//!   a minute after its start or its last look).
//! * The nodes' ports come back in the same step as the loss, as an operator rebuilding the
//!   cloud would bring its machines back; without them, a look in between would find no
//!   nodes' subnet.
//! * From the loss until every Service live at the loss has an ACTIVE load balancer again, the
//!   script's SIGKILLs are held back (counted), so the running controller has to follow the
//!   new ids, not a fresh start; the controller must have logged that it did.
//! * The pools that had members went with the cloud: the empty-pool watch starts over at the
//!   loss (it still checks that no pool was seen empty after it had members again).
//! * The user's FIP and the other project's and cluster's LBs went too: they are checked
//!   untouched just before the loss and made again right after it (new baseline); every id
//!   they ever had counts for the "never written to" check of the request log. The leak
//!   audit's baseline becomes what existed right after the loss.
//! * Figures of a passing run (seed 3822811865, docs/reliability.md): the state lost after op
//!   63, 23 s into the churn; every Service live then had an ACTIVE LB again 61.5 s later
//!   (rediscovery waits at least a minute after the controller's start or its last look).
//!
//! Reproducible: the operations, their timing, the kills, the apiserver restart and the
//! state loss follow `OLBC_CHAOS_SEED` (printed; random when unset). The sandbox's fault dice
//! and the thread interleaving are not seeded, so a seed replays the same script, not the
//! same calls (nor which kills fall while rebuilding, and are held back).
//! Size: `OLBC_CHAOS_SERVICES` (default 40), `OLBC_CHAOS_OPS` (default 250),
//! `OLBC_CHAOS_SECONDS` (churn bound, default 100). Every loop is bounded in count and time.

mod common;
mod harness;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{backend, env_u64, http_get, lb_service, sandbox_config, Env, LIMIT};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, ListParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sandbox::octavia::Kind;
use serde_json::{json, Value};

const NS: &str = "chaos";
const LB_PREFIX: &str = "kube_service_kubernetes_chaos_";
const FLOATING_OCTET: u8 = 247;
const PORT_CHOICES: [i32; 3] = [80, 8080, 8443];
const MIN_NODES: usize = 2;
const MAX_NODES: usize = 5;
/// Bound of the convergence once the faults are off (functional, not a timing goal).
const CONVERGE_LIMIT: Duration = Duration::from_secs(150);
/// The controller's OpenStack request timeout in this test; the "timeout" fault waits longer.
const REQUEST_TIMEOUT_S: u64 = 4;

fn node_ip(i: usize) -> String {
    format!("127.100.61.{}", 10 + i)
}

fn manifest(name: &str, ports: &[i32], limit: u32) -> Value {
    let mut m = lb_service(name, ports);
    m["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/connection-limit": limit.to_string()});
    m
}

/// A non-empty random subset of the port choices, in order.
fn random_ports(rng: &mut StdRng) -> Vec<i32> {
    loop {
        let ports: Vec<i32> = PORT_CHOICES
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.5))
            .collect();
        if !ports.is_empty() {
            return ports;
        }
    }
}

/// The fault rules of the churn phase: about 10 % of the Neutron/Octavia calls fail or time
/// out, plus conflicts on writes, rate limits and slow answers.
fn chaos_rules() -> Vec<Value> {
    let mut rules = Vec::new();
    for service in ["network", "load-balancer"] {
        rules.push(json!({"service": service, "status": 500, "probability": 0.03}));
        rules.push(json!({"service": service, "status": 503, "probability": 0.03}));
        rules.push(json!({"service": service, "status": 504, "probability": 0.02}));
        // Longer than the client's timeout: the caller gives up; the change is made anyway
        // when the wait ends (a cloud that is slow, not one that refused).
        rules.push(
            json!({"service": service, "latency_ms": (REQUEST_TIMEOUT_S + 2) * 1000,
                          "probability": 0.01}),
        );
        rules.push(
            json!({"service": service, "status": 429, "retry_after_s": 1,
                          "probability": 0.02}),
        );
        rules.push(json!({"service": service, "latency_ms": 1500, "probability": 0.03}));
    }
    // Octavia's "immutable while PENDING_*" and Neutron's conflicts, on writes only.
    for method in ["PUT", "DELETE", "POST"] {
        rules.push(
            json!({"service": "load-balancer", "method": method, "status": 409,
                          "probability": 0.03}),
        );
    }
    rules.push(json!({"service": "network", "method": "PUT", "status": 409, "probability": 0.03}));
    // Keystone now and then refuses too.
    rules
        .push(json!({"service": "identity", "method": "POST", "status": 503, "probability": 0.05}));
    rules
}

/// An integer attribute of a sandbox load-balancer object.
fn int_attr(o: &sandbox::octavia::model::Obj, key: &str) -> Option<i64> {
    o.attrs.get(key).and_then(Value::as_i64)
}

fn svc_ports(svc: &Service) -> impl Iterator<Item = &k8s_openapi::api::core::v1::ServicePort> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
}

/// What the test wants to exist: Service name → (ports, connection limit).
type Desired = BTreeMap<String, (Vec<i32>, u32)>;

/// Pools of live Services seen empty after they had members: (pool, Service, port).
#[derive(Default)]
struct PoolWatch {
    had_members: HashSet<String>,
    samples: u64,
    empty_after_members: Vec<String>,
    /// Load balancers seen in provisioning_status ERROR (the LB-ERROR window's victims).
    error_lbs: HashSet<String>,
    /// When the sandbox lost its state; set under this watch's lock in the same step, so no
    /// sample mixes the old cloud's expectations with the new cloud.
    lost_at: Option<Instant>,
    /// Pools that had members before the loss (they went with the cloud, not an outage).
    pools_before_loss: usize,
    /// Services live at the loss still waiting for an ACTIVE load balancer again.
    awaiting_rebuild: BTreeSet<String>,
    /// From the loss until every Service live at the loss (and still live) had one.
    rebuilt_after: Option<Duration>,
}

impl PoolWatch {
    /// The cloud lost everything: the pools seen so far are gone with it, so "had members"
    /// starts again; the Services live now must get a load balancer again.
    fn state_lost(&mut self, live: impl Iterator<Item = String>) {
        self.lost_at = Some(Instant::now());
        self.pools_before_loss = self.had_members.len();
        self.had_members.clear();
        self.awaiting_rebuild = live.collect();
    }
}

/// One look at the sandbox's own state (no API call, so no fault and no request-log entry):
/// a pool that once had members and is now empty, while its Service is live and still has
/// the pool's port, is an outage.
fn sample_pools(env: &Env, desired: &Desired, watch: &mut PoolWatch) {
    let world = env.sandbox.state().inner.world.lock();
    let octavia = &world.octavia;
    watch.samples += 1;
    let mut active = HashSet::new();
    for lb in octavia.all(Kind::LoadBalancer) {
        let status = lb.provisioning();
        if status == "ERROR" {
            watch.error_lbs.insert(lb.id.clone());
        }
        if status == "ACTIVE" {
            active.extend(lb.str("name").and_then(|n| n.strip_prefix(LB_PREFIX)));
        }
        if status == "DELETED" || status == "PENDING_DELETE" {
            continue;
        }
        let Some(svc) = lb.str("name").and_then(|n| n.strip_prefix(LB_PREFIX)) else {
            continue;
        };
        let Some((ports, _)) = desired.get(svc) else {
            continue;
        };
        for listener in octavia.listeners_of(&lb.id) {
            let port = int_attr(listener, "protocol_port").unwrap_or(0);
            let Some(pool) = listener.str("default_pool_id") else {
                continue;
            };
            let members = octavia.members_of(pool).len();
            if members > 0 {
                watch.had_members.insert(pool.to_string());
            } else if watch.had_members.contains(pool)
                && ports.iter().any(|p| i64::from(*p) == port)
            {
                watch.empty_after_members.push(format!(
                    "pool {pool} of {svc} port {port} (sample {})",
                    watch.samples
                ));
            }
        }
    }
    if let (Some(lost_at), None) = (watch.lost_at, watch.rebuilt_after) {
        // A Service deleted since no longer needs one.
        watch
            .awaiting_rebuild
            .retain(|svc| desired.contains_key(svc) && !active.contains(svc.as_str()));
        if watch.awaiting_rebuild.is_empty() {
            watch.rebuilt_after = Some(lost_at.elapsed());
        }
    }
}

/// What Kubernetes holds (Services not being deleted), as the test's desired state: the churn
/// assumes each operation it sent took effect, which an apiserver error can belie.
async fn desired_from_kubernetes(env: &Env) -> Option<Desired> {
    let list = env.services().list(&ListParams::default()).await.ok()?;
    Some(
        list.items
            .iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .filter_map(|s| {
                let name = s.metadata.name.clone()?;
                let ports = svc_ports(s).map(|p| p.port).collect();
                let limit = s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("loadbalancer.openstack.org/connection-limit"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default();
                Some((name, (ports, limit)))
            })
            .collect(),
    )
}

/// Everything wrong with the live Services' load balancers, read from Kubernetes and the
/// sandbox's state; empty when all have converged.
async fn problems(env: &Env, nodes: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(list) = env.services().list(&ListParams::default()).await else {
        return vec!["Services not listable".into()];
    };
    let fips = env.fips().await;
    let node_ips: BTreeSet<&str> = nodes.values().map(String::as_str).collect();
    for svc in &list.items {
        let name = svc.metadata.name.clone().unwrap_or_default();
        if svc.metadata.deletion_timestamp.is_some() {
            out.push(format!("{name}: still being deleted"));
            continue;
        }
        let ports: Vec<(i64, i64)> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|ps| {
                ps.iter()
                    .map(|p| (i64::from(p.port), i64::from(p.node_port.unwrap_or(0))))
                    .collect()
            })
            .unwrap_or_default();
        let limit = svc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("loadbalancer.openstack.org/connection-limit"))
            .and_then(|v| v.parse::<i64>().ok());
        let ip = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone());
        let world = env.sandbox.state().inner.world.lock();
        let octavia = &world.octavia;
        let lbs: Vec<_> = octavia
            .all(Kind::LoadBalancer)
            .into_iter()
            .filter(|l| l.str("name") == Some(&format!("{LB_PREFIX}{name}")))
            .filter(|l| !matches!(l.provisioning(), "DELETED" | "PENDING_DELETE"))
            .collect();
        let [lb] = lbs.as_slice() else {
            out.push(format!("{name}: {} load balancers", lbs.len()));
            continue;
        };
        if lb.provisioning() != "ACTIVE" {
            out.push(format!("{name}: LB {}", lb.provisioning()));
            continue;
        }
        let listeners = octavia.listeners_of(&lb.id);
        let mut seen_ports = BTreeSet::new();
        for l in &listeners {
            let port = int_attr(l, "protocol_port").unwrap_or(0);
            seen_ports.insert(port);
            let have_limit = int_attr(l, "connection_limit");
            if have_limit != limit {
                out.push(format!(
                    "{name}: port {port} connection_limit {have_limit:?}, want {limit:?}"
                ));
            }
            let Some(node_port) = ports.iter().find(|(p, _)| *p == port).map(|(_, n)| *n) else {
                continue;
            };
            let Some(pool) = l.str("default_pool_id") else {
                out.push(format!("{name}: listener {port} without pool"));
                continue;
            };
            let members: BTreeSet<(String, i64)> = octavia
                .members_of(pool)
                .iter()
                .map(|m| {
                    (
                        m.str("address").unwrap_or_default().to_string(),
                        int_attr(m, "protocol_port").unwrap_or(0),
                    )
                })
                .collect();
            let want: BTreeSet<(String, i64)> = node_ips
                .iter()
                .map(|ip| (ip.to_string(), node_port))
                .collect();
            if members != want {
                out.push(format!(
                    "{name}: port {port} members {members:?}, want {want:?}"
                ));
            }
        }
        let want_ports: BTreeSet<i64> = ports.iter().map(|(p, _)| *p).collect();
        if seen_ports != want_ports {
            out.push(format!(
                "{name}: listeners {seen_ports:?}, want {want_ports:?}"
            ));
        }
        let vip_port = lb.str("vip_port_id").unwrap_or_default().to_string();
        drop(world);
        let on_vip: Vec<&str> = fips
            .iter()
            .filter(|f| f.port_id.as_deref() == Some(vip_port.as_str()))
            .map(|f| f.floating_ip_address.as_str())
            .collect();
        match (&ip, on_vip.as_slice()) {
            (Some(ip), [fip]) if ip == fip => {}
            _ => out.push(format!(
                "{name}: ingress {ip:?}, FIPs on the VIP {on_vip:?}"
            )),
        }
    }
    out
}

/// Attempts of one call the test itself makes while the faults may be on (they refuse a call
/// before it does anything, so trying again cannot make a second object).
const TEST_CALL_ATTEMPTS: u32 = 30;

/// `call` until it answers a success (bounded); the last answer's status and body.
async fn with_retries<F, Fut>(what: &str, mut call: F) -> (reqwest::header::HeaderMap, Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut last = String::new();
    for _ in 0..TEST_CALL_ATTEMPTS {
        let r = call().await;
        let status = r.status();
        let headers = r.headers().clone();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return (headers, body);
        }
        last = format!("{status} {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{what}: no success in {TEST_CALL_ATTEMPTS} attempts, last {last}");
}

/// A token for `creds` straight from the sandbox's Keystone (for the foreign resources).
async fn token(http: &reqwest::Client, env: &Env, creds: &sandbox::Credentials) -> String {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": creds.username, "domain": {"name": creds.user_domain_name},
            "password": creds.password.expose()}}},
        "scope": {"project": {"name": creds.project_name,
                              "domain": {"name": creds.project_domain_name}}}}});
    let url = format!("{}/v3/auth/tokens", env.sandbox.keystone_url());
    let (headers, _) = with_retries(&format!("token for {}", creds.username), || async {
        http.post(&url).json(&body).send().await.unwrap()
    })
    .await;
    headers["x-subject-token"].to_str().unwrap().to_string()
}

/// A load balancer made outside this cluster, with one listener, ACTIVE.
async fn foreign_lb(
    http: &reqwest::Client,
    env: &Env,
    token: &str,
    name: &str,
    tags: &[&str],
) -> String {
    let seed = env.sandbox.seed();
    let url = format!("{}/v2/lbaas/loadbalancers", env.sandbox.octavia_url());
    let body = json!({"loadbalancer": {"name": name, "vip_subnet_id": seed.nodes_subnet_id,
                                       "tags": tags,
                                       "listeners": [{"name": format!("{name}-l"), "protocol": "TCP",
                                                      "protocol_port": 9000}]}});
    let (_, v) = with_retries(&format!("foreign LB {name}"), || async {
        http.post(&url)
            .header("x-auth-token", token)
            .json(&body)
            .send()
            .await
            .unwrap()
    })
    .await;
    v["loadbalancer"]["id"].as_str().unwrap().to_string()
}

/// The objects that are not ours: another project's LB, another cluster's LB (our naming,
/// another cluster's tag) and a user's own floating IP; with what they look like once ready.
struct Foreign {
    project_lb: String,
    cluster_lb: String,
    user_fip: String,
    fingerprints: [String; 2],
}

impl Foreign {
    /// Makes them (bounded retries: the faults may be on) and waits until both LBs are ACTIVE.
    async fn make(http: &reqwest::Client, env: &Env) -> Foreign {
        let admin_token = token(http, env, env.sandbox.admin_credentials()).await;
        let demo_token = token(http, env, env.sandbox.demo_credentials()).await;
        let project_lb = foreign_lb(http, env, &demo_token, "demo-project-lb", &[]).await;
        // Neutron made the demo project's default group for the LB's VIP port.
        env.baseline_groups_in_sandbox(&env.sandbox.demo_credentials().project_id);
        let cluster_lb = foreign_lb(
            http,
            env,
            &admin_token,
            &format!("{LB_PREFIX}foreign"),
            &["kube-cluster-uid=another-cluster-uid"],
        )
        .await;
        let url = format!("{}/v2.0/floatingips", env.sandbox.neutron_url());
        let body = json!({"floatingip": {"floating_network_id": env.sandbox.seed().public_network_id,
                                         "description": "the user's own"}});
        let (_, v) = with_retries("the user's floating IP", || async {
            http.post(&url)
                .header("x-auth-token", &admin_token)
                .json(&body)
                .send()
                .await
                .unwrap()
        })
        .await;
        let user_fip = v["floatingip"]["id"].as_str().unwrap().to_string();
        common::wait_for("foreign LBs ACTIVE", LIMIT, || async {
            (fingerprint(env, &project_lb).contains("ACTIVE")
                && fingerprint(env, &cluster_lb).contains("ACTIVE"))
            .then_some(())
        })
        .await;
        let fingerprints = [fingerprint(env, &project_lb), fingerprint(env, &cluster_lb)];
        Foreign {
            project_lb,
            cluster_lb,
            user_fip,
            fingerprints,
        }
    }

    /// Nobody changed them: the LBs look as they did once ready, the user's floating IP is
    /// on no port and has no tag. Read from the sandbox's state (no call, no fault).
    fn assert_untouched(&self, env: &Env, when: &str) {
        assert_eq!(
            self.fingerprints,
            [
                fingerprint(env, &self.project_lb),
                fingerprint(env, &self.cluster_lb)
            ],
            "foreign load balancers changed ({when})"
        );
        let world = env.sandbox.state().inner.world.lock();
        let fip = world.neutron.floating_ips.get(&self.user_fip);
        assert!(
            fip.is_some_and(|f| f.port_id.is_none() && f.std.tags.is_empty()),
            "user FIP ({when}): {fip:?}"
        );
    }

    fn ids(&self) -> [&String; 3] {
        [&self.project_lb, &self.cluster_lb, &self.user_fip]
    }
}

/// The attributes of an object that nobody but its owner should change.
fn fingerprint(env: &Env, id: &str) -> String {
    let world = env.sandbox.state().inner.world.lock();
    let Some(lb) = world.octavia.get(id) else {
        return "gone".into();
    };
    let listeners: Vec<String> = world
        .octavia
        .listeners_of(id)
        .iter()
        .map(|l| l.id.clone())
        .collect();
    format!(
        "{} {} tags={} listeners={listeners:?}",
        lb.str("name").unwrap_or_default(),
        lb.provisioning(),
        lb.attrs.get("tags").cloned().unwrap_or_default()
    )
}

/// SIGKILL the kube-apiserver and start it again with the very same command line (same port,
/// same etcd, same certificates), recording the new pid where hack/control-plane.sh stops it.
fn restart_apiserver(dir: &std::path::Path) -> std::process::Child {
    let pid_file = dir.join("kube-apiserver.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let status = std::process::Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .unwrap();
    assert!(status.success());
    // Bounded wait for the port to be released.
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kube-apiserver.log"))
        .unwrap();
    let child = std::process::Command::new(&args[0])
        .args(&args[1..])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    child
}

#[derive(Default, Debug)]
struct Figures {
    creates: u32,
    port_changes: u32,
    annotation_changes: u32,
    deletes: u32,
    node_adds: u32,
    node_removes: u32,
    kills: u32,
    apiserver_restarts: u32,
    token_revocations: u32,
    lb_error_window_lbs: usize,
    api_errors: u32,
    /// The operation after which the sandbox lost its state, and when (since the churn began).
    state_lost_at_op: u64,
    state_lost_after: Duration,
    /// SIGKILLs the script drew between the loss and the rebuild, not sent, so that the
    /// running controller (not a fresh start) has to find the new ids.
    kills_held: u32,
    /// Times the controller logged that it planned with rediscovered ids after the loss.
    rediscoveries: usize,
}

/// What the controller logs when it plans with ids it looked for again (rediscover.rs).
const REDISCOVERED: &str = "the cloud's ids changed; planning with the rediscovered ones";

/// How long the loss waits for a just-restarted controller to finish its start-up.
const READY_BEFORE_LOSS: Duration = Duration::from_secs(60);

/// The sandbox loses its state (its nodes' ports come back at once); the test's own
/// objects are made again, the watch starts over. Returns the new foreign objects, the
/// controller log's length at the loss (rediscoveries are counted after it) and whether the
/// controller was serving, so past its start-up discovery, when the state went.
async fn lose_state(
    http: &reqwest::Client,
    env: &Env,
    watch: &Mutex<PoolWatch>,
    desired: &Mutex<Desired>,
    foreign: &Foreign,
    controller: &mut harness::ControllerProcess,
) -> (Foreign, u64, bool) {
    // A controller restarted a moment ago (a SIGKILL in this op or one just before) may not
    // have run its start-up discovery yet: it would then find the new ids as any fresh start
    // does, with nothing to rediscover. It serves only after that discovery, so waiting for
    // it makes the loss happen under a controller that knows the old ids.
    let waited = Instant::now();
    let settled = controller.ready_within(READY_BEFORE_LOSS).await;
    if settled && waited.elapsed() > Duration::from_millis(200) {
        println!(
            "chaos: the loss waited {:.1?} for the just-restarted controller to serve",
            waited.elapsed()
        );
    }
    if !settled {
        println!(
            "chaos: the controller was not serving {READY_BEFORE_LOSS:?} after its last start; \
             the state is lost under a starting controller"
        );
    }
    // Up to the loss, nobody touched them.
    foreign.assert_untouched(env, "before the loss");
    let log_len = std::fs::metadata(&controller.log)
        .map(|m| m.len())
        .unwrap_or(0);
    {
        let mut watch = watch.lock().unwrap();
        let lost = env.lose_sandbox_state();
        let live: Vec<String> = desired.lock().unwrap().keys().cloned().collect();
        watch.state_lost(live.into_iter());
        println!(
            "chaos: sandbox state lost; new external network {}, nodes subnet {}, {} node ports back",
            lost.networks.public_network_id,
            lost.networks.nodes_subnet_id,
            lost.node_ports.len()
        );
    }
    // The user's FIP and the other project's and cluster's LBs went with the cloud: make them
    // again, so the end's "never written to" still says something.
    (Foreign::make(http, env).await, log_len, settled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_churn_with_faults_kills_and_restarts_converges_without_outage_or_leak() {
    let seed = env_u64("OLBC_CHAOS_SEED", rand::random::<u32>() as u64);
    let services = env_u64("OLBC_CHAOS_SERVICES", 40) as usize;
    let max_ops = env_u64("OLBC_CHAOS_OPS", 250).max(10);
    let churn_for = Duration::from_secs(env_u64("OLBC_CHAOS_SECONDS", 100));
    println!(
        "chaos: seed {seed} (OLBC_CHAOS_SEED={seed} replays this script), {services} Services, \
         ≤ {max_ops} operations, ≤ {churn_for:?} of churn"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(env) = Env::start(
        "chaos",
        NS,
        sandbox_config(FLOATING_OCTET, Duration::from_millis(300)),
    )
    .await
    else {
        return;
    };
    let http = reqwest::Client::new();

    // Things that are not ours and must stay as they are.
    let mut foreign = Foreign::make(&http, &env).await;
    // Every id they ever had, for the "no write" check of the request log.
    let mut foreign_ids: Vec<String> = foreign.ids().into_iter().cloned().collect();

    let mut nodes: BTreeMap<String, String> = BTreeMap::new();
    let mut next_node = 0usize;
    for _ in 0..3 {
        let name = format!("chaos-n{next_node}");
        env.add_node(&name, &node_ip(next_node), true).await;
        nodes.insert(name, node_ip(next_node));
        next_node += 1;
    }
    // No network or subnet id pinned: discovery finds them, and finds them again after the
    // loss (a pinned id would name a network that no longer exists).
    let conf = format!(
        "{}\n[Metadata]\nrequest-timeout = {REQUEST_TIMEOUT_S}s\n",
        env.sandbox.cloud_conf_unpinned()
    );
    let conf_path = env.write_conf("chaos-cloud.conf", &conf);
    let mut controller = harness::ControllerProcess::start(
        &env.cp.kubeconfig,
        &conf_path,
        &env.cp.dir.join("controller.log"),
        &["--orphan-grace", "20s"],
    );
    controller.wait_ready(LIMIT).await;

    // The pool watch runs for the whole test, on the sandbox's state.
    let desired: Arc<Mutex<Desired>> = Arc::default();
    let watch: Arc<Mutex<PoolWatch>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let env = Arc::new(env);
    let sampler = {
        let (env, desired, watch, stop) =
            (env.clone(), desired.clone(), watch.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                {
                    let desired = desired.lock().unwrap().clone();
                    sample_pools(&env, &desired, &mut watch.lock().unwrap());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    env.admin(
        reqwest::Method::PUT,
        "/faults",
        json!({"rules": chaos_rules()}),
    )
    .await;
    let mut f = Figures::default();
    let churn_start = Instant::now();
    let apiserver_restart_at = rng.gen_range(max_ops / 4..max_ops / 2);
    let lb_error_at = rng.gen_range(max_ops / 8..max_ops / 4);
    // Early enough that the rebuild (rediscovery waits a minute after the controller's start,
    // then the error backoff of each Service) fits in the churn and the convergence bound.
    // After the LB-ERROR window, so the test's own LBs made again after it become ACTIVE.
    let state_loss_at = rng
        .gen_range(max_ops / 5..max_ops * 2 / 5)
        .max(lb_error_at + 9);
    let mut log_at_loss = 0u64;
    let mut settled_at_loss = true;
    let mut lb_error_until: Option<u64> = None;
    let mut apiserver: Option<std::process::Child> = None;
    let mut counter = 0usize;
    let mut op = 0u64;
    while op < max_ops && churn_start.elapsed() < churn_for {
        op += 1;
        let live: Vec<String> = desired.lock().unwrap().keys().cloned().collect();
        let roll = rng.gen_range(0..100);
        let result: Result<(), kube::Error> =
            if live.len() < services / 2 || (roll < 35 && live.len() < services) {
                let name = format!("svc-{counter:03}");
                counter += 1;
                let ports = random_ports(&mut rng);
                let limit = rng.gen_range(100..1000);
                f.creates += 1;
                desired
                    .lock()
                    .unwrap()
                    .insert(name.clone(), (ports.clone(), limit));
                let svc: Service = serde_json::from_value(manifest(&name, &ports, limit)).unwrap();
                env.services()
                    .create(&Default::default(), &svc)
                    .await
                    .map(|_| ())
            } else if roll < 55 {
                let name = &live[rng.gen_range(0..live.len())];
                let ports = random_ports(&mut rng);
                f.port_changes += 1;
                let limit = desired.lock().unwrap()[name].1;
                desired
                    .lock()
                    .unwrap()
                    .insert(name.clone(), (ports.clone(), limit));
                // A JSON merge patch replaces the whole port list.
                let patch = &manifest(name, &ports, limit)["spec"]["ports"];
                env.services()
                    .patch(
                        name,
                        &Default::default(),
                        &kube::api::Patch::Merge(json!({"spec": {"ports": patch}})),
                    )
                    .await
                    .map(|_| ())
            } else if roll < 70 {
                let name = &live[rng.gen_range(0..live.len())];
                let limit: u32 = rng.gen_range(100..1000);
                f.annotation_changes += 1;
                if let Some(d) = desired.lock().unwrap().get_mut(name) {
                    d.1 = limit;
                }
                let patch = json!({"metadata": {"annotations": {
                "loadbalancer.openstack.org/connection-limit": limit.to_string()}}});
                env.services()
                    .patch(name, &Default::default(), &kube::api::Patch::Merge(patch))
                    .await
                    .map(|_| ())
            } else if roll < 78 && nodes.len() < MAX_NODES {
                let name = format!("chaos-n{next_node}");
                f.node_adds += 1;
                env.add_node(&name, &node_ip(next_node), true).await;
                nodes.insert(name, node_ip(next_node));
                next_node += 1;
                Ok(())
            } else if roll < 86 && nodes.len() > MIN_NODES {
                let name = nodes
                    .keys()
                    .nth(rng.gen_range(0..nodes.len()))
                    .cloned()
                    .unwrap();
                f.node_removes += 1;
                nodes.remove(&name);
                env.nodes()
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ())
            } else {
                let name = &live[rng.gen_range(0..live.len())];
                f.deletes += 1;
                desired.lock().unwrap().remove(name);
                env.services()
                    .delete(name, &DeleteParams::default())
                    .await
                    .map(|_| ())
            };
        if let Err(e) = result {
            // The apiserver may be restarting: the op is retried by nothing; the desired
            // state is read back from Kubernetes.
            f.api_errors += 1;
            println!("chaos: op {op}: apiserver said {e}");
            if let Some(d) = desired_from_kubernetes(&env).await {
                *desired.lock().unwrap() = d;
            }
        }

        // Kills at random moments: ~1 in 20 operations. Both draws happen either way, so a
        // held kill does not shift the rest of the script.
        if rng.gen_range(0..20) == 0 {
            let pause = Duration::from_millis(rng.gen_range(0..1500));
            let rebuilding = {
                let w = watch.lock().unwrap();
                w.lost_at.is_some() && w.rebuilt_after.is_none()
            };
            if rebuilding {
                f.kills_held += 1;
            } else {
                controller.sigkill();
                f.kills += 1;
                tokio::time::sleep(pause).await;
                controller.restart();
            }
        }
        if op == state_loss_at {
            f.state_lost_at_op = op;
            f.state_lost_after = churn_start.elapsed();
            let (next, log_len, settled) =
                lose_state(&http, &env, &watch, &desired, &foreign, &mut controller).await;
            foreign = next;
            foreign_ids.extend(foreign.ids().into_iter().cloned());
            log_at_loss = log_len;
            settled_at_loss = settled;
        }
        if rng.gen_range(0..15) == 0 {
            env.admin(reqwest::Method::POST, "/tokens/revoke", json!({}))
                .await;
            f.token_revocations += 1;
        }
        if op == lb_error_at {
            env.admin(
                reqwest::Method::PUT,
                "/faults/lb-error-after-create",
                json!({"enabled": true}),
            )
            .await;
            lb_error_until = Some(op + 8);
        }
        if lb_error_until == Some(op) {
            env.admin(
                reqwest::Method::PUT,
                "/faults/lb-error-after-create",
                json!({"enabled": false}),
            )
            .await;
        }
        if op == apiserver_restart_at {
            apiserver = Some(restart_apiserver(&env.cp.dir));
            f.apiserver_restarts += 1;
            // Bounded: the apiserver back before the churn goes on.
            common::wait_for("apiserver back", LIMIT, || async {
                env.services()
                    .list(&ListParams::default())
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..500))).await;
    }
    let churn = churn_start.elapsed();
    if let Some(d) = desired_from_kubernetes(&env).await {
        *desired.lock().unwrap() = d;
    }
    env.admin(
        reqwest::Method::PUT,
        "/faults",
        json!({"rules": [], "lb_error_after_create": false}),
    )
    .await;
    let faults = env
        .admin(reqwest::Method::GET, "/faults", Value::Null)
        .await;
    f.lb_error_window_lbs = env
        .sandbox
        .state()
        .inner
        .world
        .lock()
        .octavia
        .all(Kind::LoadBalancer)
        .iter()
        .filter(|l| l.provisioning() == "ERROR")
        .count();
    if watch.lock().unwrap().lost_at.is_none() {
        // The churn's time bound came first: the loss must still happen once.
        println!(
            "chaos: the churn ended before op {state_loss_at}; losing the state now, faults off"
        );
        f.state_lost_at_op = op;
        f.state_lost_after = churn;
        let (next, log_len, settled) =
            lose_state(&http, &env, &watch, &desired, &foreign, &mut controller).await;
        foreign = next;
        foreign_ids.extend(foreign.ids().into_iter().cloned());
        log_at_loss = log_len;
        settled_at_loss = settled;
    }
    let exited_on_its_own = !controller.is_running();
    if exited_on_its_own {
        println!("chaos: the controller had exited on its own; restarting it");
        controller.restart();
    }

    // Converge: every live Service correct, bounded.
    let converge_start = Instant::now();
    let mut last = Vec::new();
    while converge_start.elapsed() < CONVERGE_LIMIT {
        last = problems(&env, &nodes).await;
        if last.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let converged = converge_start.elapsed();
    if !last.is_empty() {
        // What the controller last did about each Service that is wrong, since the log's
        // tail is mostly about the others.
        let about: Vec<String> = last
            .iter()
            .filter_map(|p| p.split_once(':').map(|(name, _)| name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|name| {
                let key = format!("{NS}/{name}");
                format!("---- {key} ----\n{}", controller.log_about(&key, 12))
            })
            .collect();
        panic!(
            "not converged {CONVERGE_LIMIT:?} after the churn (seed {seed}):\n{}\n{}\n---- log tail ----\n{}",
            last.join("\n"),
            about.join("\n"),
            controller.log_tail(30)
        );
    }
    // Converged means rebuilt: every Service live at the loss and still live has an LB.
    let rebuilt_after = {
        let mut w = watch.lock().unwrap();
        if w.rebuilt_after.is_none() {
            // Sampled every 200 ms; the convergence check has just seen them all.
            let d = desired.lock().unwrap().clone();
            sample_pools(&env, &d, &mut w);
        }
        w.rebuilt_after
    };
    let log = std::fs::read(&controller.log).unwrap_or_default();
    let after_loss = log.get(log_at_loss as usize..).unwrap_or_default();
    f.rediscoveries = String::from_utf8_lossy(after_loss)
        .matches(REDISCOVERED)
        .count();
    // No SIGKILL between the loss and the rebuild: the running controller found the new ids
    // (unless it had exited on its own, or was still starting at the loss, and a fresh
    // start found them).
    assert!(
        f.rediscoveries > 0 || exited_on_its_own || !settled_at_loss,
        "the Services were rebuilt but the controller never logged {REDISCOVERED:?} (seed {seed})"
    );

    // Traffic through every live Service's IP, to a backend on each node at its NodePort.
    let live = env
        .services()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut backends = Vec::new();
    let mut bound = HashSet::new();
    for svc in &live {
        for p in svc_ports(svc) {
            let np = p.node_port.unwrap_or(0) as u16;
            for ip in nodes.values() {
                if bound.insert((ip.clone(), np)) {
                    backends.push(backend(ip, np, format!("{ip}:{np}")).await);
                }
            }
        }
    }
    for svc in &live {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let ip = env.ingress_ip(&name).await.unwrap();
        assert!(ip.parse::<Ipv4Addr>().unwrap().is_loopback(), "{ip}");
        for p in svc_ports(svc) {
            let np = p.node_port.unwrap_or(0);
            let body = common::wait_for(&format!("{name} {ip}:{}", p.port), LIMIT, || async {
                http_get(&ip, p.port as u16)
                    .await
                    .filter(|b| b.contains("200 OK"))
            })
            .await;
            assert!(
                body.contains(&format!(":{np}")),
                "{name} {ip}:{} reached {body}",
                p.port
            );
        }
    }

    // Delete everything, then the audit: nothing of ours left, the others' untouched.
    let deleting = Instant::now();
    let live_count = env.delete_all_services(LIMIT).await;
    let delete_time = deleting.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;

    let watch = std::mem::take(&mut *watch.lock().unwrap());
    println!(
        "chaos figures (seed {seed}): {} operations in {:.0} s ({} creates, {} port changes, \
         {} annotation changes, {} deletes, {} node adds, {} node removes, {} apiserver errors)",
        op,
        churn.as_secs_f64(),
        f.creates,
        f.port_changes,
        f.annotation_changes,
        f.deletes,
        f.node_adds,
        f.node_removes,
        f.api_errors
    );
    println!(
        "chaos figures: faults injected {}; {} token revocations; {} LBs left in ERROR by the \
         ERROR window at churn end; {} controller SIGKILLs; {} apiserver restart",
        faults["injected"],
        f.token_revocations,
        f.lb_error_window_lbs,
        f.kills,
        f.apiserver_restarts
    );
    println!(
        "chaos figures: {} live Services converged {:.1} s after the churn; all deleted in \
         {:.1} s; {} pool samples over {} pools with members, {} seen empty after having \
         members; {} LBs seen in ERROR",
        live_count,
        converged.as_secs_f64(),
        delete_time.as_secs_f64(),
        watch.samples,
        watch.had_members.len(),
        watch.empty_after_members.len(),
        watch.error_lbs.len()
    );
    println!(
        "chaos figures: sandbox state lost once, after op {} ({:.0} s into the churn); every \
         Service live at the loss had an ACTIVE LB again {} after it; {} rediscoveries logged; \
         {} SIGKILLs held back while rebuilding; {} pools had members before the loss",
        f.state_lost_at_op,
        f.state_lost_after.as_secs_f64(),
        rebuilt_after.map_or("never seen".to_string(), |d| format!(
            "{:.1} s",
            d.as_secs_f64()
        )),
        f.rediscoveries,
        f.kills_held,
        watch.pools_before_loss
    );
    foreign.assert_untouched(&env, "at the end");
    let fips = env.fips().await;
    let user = fips.iter().find(|f| f.id == foreign.user_fip);
    assert!(
        user.is_some_and(|f| f.port_id.is_none() && f.tags.is_empty()),
        "user FIP: {user:?}"
    );
    // Nobody wrote to the foreign objects (their ids in a non-GET path), test apart.
    let log = env.requests(0, None).await;
    let foreign_writes: Vec<String> = log["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["method"] != "GET")
        .filter_map(|r| r["path"].as_str())
        .filter(|p| foreign_ids.iter().any(|id| p.contains(id.as_str())))
        .map(str::to_string)
        .collect();
    assert!(
        foreign_writes.is_empty(),
        "writes to foreign objects: {foreign_writes:?}"
    );
    // The churn revoked every token: new ones for the clean-up.
    let admin_token = token(&http, &env, env.sandbox.admin_credentials()).await;
    let demo_token = token(&http, &env, env.sandbox.demo_credentials()).await;
    for id in [&foreign.project_lb, &foreign.cluster_lb] {
        let t = if *id == foreign.project_lb {
            &demo_token
        } else {
            &admin_token
        };
        let r = http
            .delete(format!(
                "{}/v2/lbaas/loadbalancers/{id}?cascade=true",
                env.sandbox.octavia_url()
            ))
            .header("x-auth-token", t)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "delete foreign LB {id}");
    }
    env.audit_leaks(&[&foreign.user_fip]).await;
    println!("chaos figures: leaks 0 (no LB, FIP, port or security group of ours left)");

    assert!(
        watch.empty_after_members.is_empty(),
        "pools of live Services seen empty (seed {seed}):\n{}",
        watch.empty_after_members.join("\n")
    );
    for b in backends {
        b.abort();
    }
    drop(controller);
    // The apiserver this test restarted is stopped by the control plane's stop (pid file);
    // reap it so it is not left a zombie.
    let env = Arc::try_unwrap(env).ok().expect("sampler stopped");
    env.finish().await;
    if let Some(mut c) = apiserver {
        let _ = c.wait();
    }
}
