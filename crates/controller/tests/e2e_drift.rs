//! End-to-end drift resync (SPEC §4 "Drift"): a real kube-apiserver, the sandbox, and the
//! controller binary as its own process with a short `--resync-period`. Shows from the
//! sandbox's request log that an idle resync costs the same constant number of list calls for
//! 2 and for 6 Services (and no write), and that a member deleted, a floating IP detached and a
//! pool changed behind the controller's back are each repaired, by a pass of that Service
//! only. Ends with the leak audit.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{
    backend, http_get, node_ports, sandbox_config, CallCounts, ControllerProcess, Env, LIMIT,
};
use kube::api::DeleteParams;
use openstack::lbaas::UpdatePool;
use openstack::ListQuery;
use serde_json::json;

const FAST: Duration = Duration::from_millis(300);
const NS: &str = "dr";
const ROUNDS: usize = 3;

fn lb_name(svc: &str) -> String {
    format!("kube_service_kubernetes_{NS}_{svc}")
}

/// The controller log without terminal colours.
fn plain_log(c: &ControllerProcess) -> String {
    let raw = std::fs::read_to_string(&c.log).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // ESC [ ... m
            for c2 in chars.by_ref() {
                if c2 == 'm' {
                    break;
                }
            }
            continue;
        }
        out.push(ch);
    }
    out
}

/// Finished resync rounds that compared exactly `n` converged Services.
fn rounds_comparing(c: &ControllerProcess, n: usize) -> usize {
    let needle = format!("compared={n} ");
    plain_log(c)
        .lines()
        .filter(|l| l.contains(" resync ") && l.contains(&needle))
        .count()
}

/// Calls made by `ROUNDS` whole idle resync rounds of `n` converged Services, taken between two
/// round boundaries (each round logs its line after its calls; rounds are seconds apart).
async fn idle_resync_cost(env: &Env, c: &ControllerProcess, n: usize) -> CallCounts {
    let seen = rounds_comparing(c, n);
    let at_boundary = wait_for(&format!("a resync comparing {n}"), LIMIT, || async {
        let r = rounds_comparing(c, n);
        (r > seen).then_some(r)
    })
    .await;
    let from = env.request_log_mark().await;
    wait_for(&format!("{ROUNDS} more resyncs"), LIMIT, || async {
        (rounds_comparing(c, n) >= at_boundary + ROUNDS).then_some(())
    })
    .await;
    let to = env.request_log_mark().await;
    let log = plain_log(c);
    assert!(
        !log.lines().any(|l| l.contains("cloud drifted")),
        "an idle cloud drifted:\n{log}"
    );
    env.call_counts(from, to).await
}

async fn pool_of(env: &Env, svc: &str) -> openstack::lbaas::Pool {
    let lb = env.lbs_named(&lb_name(svc)).await.remove(0);
    env.lbaas.get_pool(&lb.pools[0].id).await.unwrap()
}

async fn wait_active(env: &Env, svc: &str) {
    wait_for(&format!("{svc} ACTIVE"), LIMIT, || async {
        env.lbs_named(&lb_name(svc))
            .await
            .first()
            .is_some_and(|l| l.provisioning_status == "ACTIVE")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_found_with_constant_list_calls_and_repaired() {
    let Some(env) = Env::start("drift", NS, sandbox_config(254, FAST)).await else {
        return;
    };
    let nodes = [
        ("dr-1", "127.100.54.11"),
        ("dr-2", "127.100.54.12"),
        ("dr-3", "127.100.54.13"),
    ];
    for (name, ip) in nodes {
        env.add_node(name, ip, true).await;
    }
    let controller = env.start_controller(&["--resync-period", "2s"]);
    let mut controller = controller;
    controller.wait_ready(LIMIT).await;

    let mut backends = Vec::new();
    let create = |names: Vec<&'static str>| {
        let env = &env;
        async move {
            let mut out = Vec::new();
            for n in &names {
                let svc = env
                    .create_service(json!({
                        "metadata": {"name": n},
                        "spec": {"type": "LoadBalancer", "selector": {"app": n},
                                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
                    }))
                    .await;
                let np = node_ports(&svc)[0];
                for (node, ip) in nodes {
                    out.push(backend(ip, np, format!("{n}@{node}")).await);
                }
            }
            for n in &names {
                env.wait_ingress_ip(n, LIMIT).await;
            }
            out
        }
    };
    backends.extend(create(vec!["a", "b"]).await);
    let two = idle_resync_cost(&env, &controller, 2).await;
    backends.extend(create(vec!["c", "d", "e", "f"]).await);
    let six = idle_resync_cost(&env, &controller, 6).await;
    println!(
        "idle resync, {ROUNDS} rounds: 2 Services {two:?}, 6 Services {six:?} \
         (per round: {} and {} reads)",
        two.reads / ROUNDS,
        six.reads / ROUNDS
    );
    assert_eq!(two.writes, 0, "{two:?}");
    assert_eq!(six.writes, 0, "{six:?}");
    assert_eq!(
        two.reads, six.reads,
        "the cost of an idle resync does not grow with the Services"
    );
    assert_eq!(
        two.reads,
        ROUNDS * 5,
        "LBs, listeners, pools, monitors, floating IPs: one list each per round"
    );

    // A member deleted behind the controller's back comes back.
    let pool = pool_of(&env, "a").await;
    assert_eq!(pool.members.len(), 3);
    env.lbaas
        .delete_member(&pool.id, &pool.members[0].id)
        .await
        .unwrap();
    wait_for("a's member restored", LIMIT, || async {
        let members = env
            .lbaas
            .list_members(&pool.id, &ListQuery::new())
            .await
            .ok()?;
        (members.len() == 3).then_some(())
    })
    .await;
    wait_active(&env, "a").await;

    // A floating IP detached behind its back is attached again.
    let lb_b = env.lbs_named(&lb_name("b")).await.remove(0);
    let fip_b = env.fips_on(&lb_b.vip_port_id).await.remove(0);
    env.neutron
        .associate_floating_ip(&fip_b.id, None)
        .await
        .unwrap();
    wait_for("b's floating IP re-attached", LIMIT, || async {
        (env.fips_on(&lb_b.vip_port_id).await.len() == 1).then_some(())
    })
    .await;

    // A pool changed behind its back is changed back.
    let pool_c = pool_of(&env, "c").await;
    env.lbaas
        .update_pool(
            &pool_c.id,
            &UpdatePool {
                lb_algorithm: Some("LEAST_CONNECTIONS".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_for("c's pool algorithm restored", LIMIT, || async {
        let p = env.lbaas.get_pool(&pool_c.id).await.ok()?;
        (p.lb_algorithm == "ROUND_ROBIN").then_some(())
    })
    .await;

    // Only the tampered Services were found drifted.
    let log = plain_log(&controller);
    let mut drifted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cloud drifted"))
        .filter_map(|l| l.split("service=").nth(1))
        .map(|s| s.split_whitespace().next().unwrap_or_default())
        .collect();
    drifted.sort();
    drifted.dedup();
    assert_eq!(drifted, vec!["dr/a", "dr/b", "dr/c"], "{log}");
    for svc in ["a", "b"] {
        let ip = env.wait_ingress_ip(svc, LIMIT).await;
        let answer = http_get(&ip, 80).await.unwrap_or_default();
        assert!(answer.contains(&format!("{svc}@")), "{svc}: {answer}");
    }

    for n in ["a", "b", "c", "d", "e", "f"] {
        env.services()
            .delete(n, &DeleteParams::default())
            .await
            .unwrap();
    }
    for n in ["a", "b", "c", "d", "e", "f"] {
        env.wait_service_gone(n, LIMIT).await;
    }
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}
