//! Leader election under churn: two controller processes with `--leader-elect` against the
//! same kube-apiserver and sandbox, each with its own sandbox user, so the sandbox's request
//! log names the writer of every call. Services change while the sandbox fails some calls,
//! and the leader is SIGKILLed again and again. Checked:
//! - never two writers at once: between two kills, all of the OpenStack writes (non-GET calls
//!   that passed authentication) come from one user;
//! - takeover within the Lease duration (15 s, controller/src/leader.rs) plus the standby's
//!   poll: the Lease names the other replica soon after the kill;
//! - the Services converge and nothing leaks.
//!
//! Then a leader is SIGSTOPped (not killed) until the other replica has taken over and has
//! written, and is continued: whatever the old leader writes after that is reported (a
//! stopped process cannot be fenced by the Lease alone; see the printed figure).
//! Seeded by `OLBC_CHAOS_SEED` like e2e_chaos; `OLBC_LEADER_KILLS` (default 4) kills.

mod common;
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::wait_for;
use harness::{env_u64, lb_service, sandbox_config, ControllerProcess, Env, LIMIT};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const NS: &str = "leaderchaos";
const LEASE: &str = "olbc-chaos";
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// The standby retries every 2 s at most (leader.rs) and the kill is not at a renewal.
const TAKEOVER_SLACK: Duration = Duration::from_secs(5);
const SERVICES: usize = 12;
const IDS: [&str; 2] = ["ctl-a", "ctl-b"];

/// A cloud.conf for `user` (a sandbox user with admin's roles in the admin project).
async fn replica_conf(env: &Env, user: &str) -> PathBuf {
    let password = format!("{user}-secret");
    env.admin(
        reqwest::Method::POST,
        "/users",
        json!({"name": user, "password": password, "project": "admin"}),
    )
    .await;
    let conf: Vec<String> = env
        .sandbox
        .cloud_conf()
        .lines()
        .map(|l| {
            if l.starts_with("username =") {
                format!("username = {user}")
            } else if l.starts_with("password =") {
                format!("password = {password}")
            } else {
                l.to_string()
            }
        })
        .collect();
    env.write_conf(&format!("{user}.conf"), &conf.join("\n"))
}

fn start(env: &Env, id: &str, conf: &std::path::Path) -> ControllerProcess {
    ControllerProcess::start(
        &env.cp.kubeconfig,
        conf,
        &env.cp.dir.join(format!("{id}.log")),
        &[
            "--leader-elect",
            "--leader-elect-namespace",
            "default",
            "--lease-name",
            LEASE,
            "--leader-elect-identity",
            id,
        ],
    )
}

async fn holder(env: &Env) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "default");
    leases.get_opt(LEASE).await.ok()??.spec?.holder_identity
}

/// OpenStack writes that passed authentication: (time, user, method path).
async fn writes(env: &Env) -> Vec<(DateTime<Utc>, String, String)> {
    let v = env.requests(0, None).await;
    v["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["method"] != "GET")
        .filter(|r| {
            matches!(
                r["service"].as_str(),
                Some("network") | Some("load-balancer")
            )
        })
        .filter_map(|r| {
            let time: DateTime<Utc> = r["time"].as_str()?.parse().ok()?;
            let user = r["user"].as_str()?.to_string();
            Some((
                time,
                user,
                format!("{} {}", r["method"].as_str()?, r["path"].as_str()?),
            ))
        })
        .collect()
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_two_replicas_leader_killed_repeatedly_never_two_writers_and_prompt_takeover() {
    let seed = env_u64("OLBC_CHAOS_SEED", rand::random::<u32>() as u64);
    let kills = env_u64("OLBC_LEADER_KILLS", 4) as usize;
    println!("leader chaos: seed {seed}, {kills} leader kills");
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(env) = Env::start(
        "leaderchaos",
        NS,
        sandbox_config(248, Duration::from_millis(300)),
    )
    .await
    else {
        return;
    };
    for i in 0..3 {
        env.add_node(&format!("lc-n{i}"), &format!("127.100.62.{}", 10 + i), true)
            .await;
    }
    let confs = [
        replica_conf(&env, IDS[0]).await,
        replica_conf(&env, IDS[1]).await,
    ];
    let mut replicas: BTreeMap<&str, ControllerProcess> = BTreeMap::new();
    replicas.insert(IDS[0], start(&env, IDS[0], &confs[0]));
    wait_for("ctl-a leads", LIMIT, || async {
        (holder(&env).await.as_deref() == Some(IDS[0])).then_some(())
    })
    .await;
    replicas.insert(IDS[1], start(&env, IDS[1], &confs[1]));

    // Some faults, as in e2e_chaos: they fail before authentication, so they never count as
    // a replica's write.
    let faults = json!({"rules": [
        {"service": "load-balancer", "status": 503, "probability": 0.04},
        {"service": "network", "status": 500, "probability": 0.04},
        {"service": "load-balancer", "latency_ms": 1000, "probability": 0.03}]});
    env.admin(reqwest::Method::PUT, "/faults", faults).await;

    for i in 0..SERVICES {
        env.create_service(lb_service(&format!("svc-{i:02}"), &[80]))
            .await;
    }
    // Kill boundaries: every write before one is the old leader's, every write after it the
    // new one's.
    let mut boundaries: Vec<DateTime<Utc>> = Vec::new();
    let mut takeovers: Vec<Duration> = Vec::new();
    for k in 0..kills {
        // Let the leader work a while, with changes arriving.
        for _ in 0..3 {
            let i = rng.gen_range(0..SERVICES);
            let ports: &[i32] = if rng.gen_bool(0.5) {
                &[80, 8080]
            } else {
                &[80]
            };
            let patch = &lb_service("x", ports)["spec"]["ports"];
            env.patch_service(&format!("svc-{i:02}"), json!({"spec": {"ports": patch}}))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..4000))).await;
        let leader = holder(&env).await.expect("a leader");
        let leader: &str = IDS.iter().find(|i| **i == leader).expect("one of ours");
        let other = IDS.iter().find(|i| **i != leader).unwrap();
        replicas.get_mut(leader).unwrap().sigkill();
        let killed = Instant::now();
        boundaries.push(Utc::now());
        wait_for(&format!("kill {k}: {other} takes over"), LIMIT, || async {
            (holder(&env).await.as_deref() == Some(*other)).then_some(())
        })
        .await;
        takeovers.push(killed.elapsed());
        replicas.get_mut(leader).unwrap().restart();
    }

    // Converge with the faults off: every Service has its IP, one LB each.
    env.clear_faults().await;
    for i in 0..SERVICES {
        env.wait_ingress_ip(&format!("svc-{i:02}"), LIMIT).await;
    }
    wait_for("one LB per Service", LIMIT, || async {
        (env.live_lbs().await.len() == SERVICES).then_some(())
    })
    .await;

    // Never two writers at once.
    let log = writes(&env).await;
    let mut segments: Vec<BTreeSet<String>> = vec![BTreeSet::new(); boundaries.len() + 1];
    for (time, user, _) in &log {
        let segment = boundaries.iter().filter(|b| *b <= time).count();
        segments[segment].insert(user.clone());
    }
    let by_user: BTreeMap<&str, usize> = IDS
        .iter()
        .map(|id| (*id, log.iter().filter(|(_, u, _)| u == id).count()))
        .collect();
    println!(
        "leader chaos: {} writes {by_user:?}; writers between kills {segments:?}; takeovers {:?} \
         (max {:.1} s, Lease {LEASE_DURATION:?})",
        log.len(),
        takeovers,
        takeovers
            .iter()
            .max()
            .unwrap_or(&Duration::ZERO)
            .as_secs_f64()
    );
    for (i, s) in segments.iter().enumerate() {
        assert!(
            s.len() <= 1,
            "two writers between kill {i} and the next: {s:?}"
        );
    }
    for (k, t) in takeovers.iter().enumerate() {
        assert!(
            *t <= LEASE_DURATION + TAKEOVER_SLACK,
            "kill {k}: takeover after {t:?}, Lease {LEASE_DURATION:?}"
        );
    }

    // SIGSTOP instead of SIGKILL: the stopped leader loses the Lease without knowing it.
    let leader = holder(&env).await.expect("a leader");
    let leader: &str = IDS.iter().find(|i| **i == leader).unwrap();
    let other = *IDS.iter().find(|i| **i != leader).unwrap();
    let pid = replicas[leader].pid().unwrap();
    // Work for the stopped leader to have in hand: a change it is in the middle of. The
    // sandbox holds the answer to its listener POST, and the leader is stopped while it waits.
    env.admin(
        reqwest::Method::POST,
        "/faults/rules",
        json!({"service": "load-balancer", "method": "POST", "path": "/listeners$",
               "hold_response_ms": 8000, "times": 1}),
    )
    .await;
    env.patch_service(
        "svc-00",
        json!({"spec": {"ports": lb_service("x", &[80, 8080, 8443])["spec"]["ports"]}}),
    )
    .await;
    wait_for("the leader's listener POST held", LIMIT, || async {
        let v = env
            .admin(reqwest::Method::GET, "/faults", json!(null))
            .await;
        (v["rules"][0]["times"] == 0).then_some(())
    })
    .await;
    signal(pid, "-STOP");
    wait_for(
        &format!("{other} takes over from stopped {leader}"),
        LIMIT,
        || async { (holder(&env).await.as_deref() == Some(other)).then_some(()) },
    )
    .await;
    env.patch_service(
        "svc-01",
        json!({"spec": {"ports": lb_service("x", &[80, 8443])["spec"]["ports"]}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let continued = Utc::now();
    signal(pid, "-CONT");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stale: Vec<String> = writes(&env)
        .await
        .into_iter()
        .filter(|(t, u, _)| *t >= continued && u == leader)
        .map(|(t, _, c)| format!("{t} {c}"))
        .collect();
    let exited = !replicas.get_mut(leader).unwrap().is_running();
    println!(
        "leader chaos: SIGSTOPped leader {leader} continued after {other} took over: exited {exited}, \
         {} writes after SIGCONT {stale:?}",
        stale.len()
    );
    // known bug (fencing, not fixed here): a leader that was stopped past the Lease's expiry
    // may finish what it had in hand before it notices; reported, not asserted.
    if !stale.is_empty() {
        println!("leader chaos: KNOWN BUG: the old leader wrote after losing the Lease");
    }

    // Clean up through whoever leads now.
    if !replicas.get_mut(leader).unwrap().is_running() {
        replicas.get_mut(leader).unwrap().restart();
    }
    env.delete_all_services(LIMIT).await;
    env.audit_leaks(&[]).await;
    drop(replicas);
    env.finish().await;
}
