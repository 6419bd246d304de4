//! End to end at scale: 30 LoadBalancer Services created at once against a sandbox whose
//! load balancers stay PENDING_* for 2 s after every change. Handling them one at a time
//! (as OCCM does, blocking on every Octavia wait) needs at least 30 × 2 s; a controller that
//! never waits on Octavia gets them all an IP in a few seconds. Prints the wall time to all
//! IPs and the OpenStack calls per Service (from the sandbox's request log), then deletes all
//! and audits for leaks.

mod common;
mod harness;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::wait_for;
use futures::future::join_all;
use harness::{sandbox_config, Env, LIMIT};
use kube::api::{DeleteParams, ListParams};
use serde_json::json;

const SERVICES: usize = 30;
const DELAY: Duration = Duration::from_secs(2);
/// Functional bound, not a timing assertion: sequential handling needs ≥ 60 s.
const ALL_IPS_WITHIN: Duration = Duration::from_secs(45);
const NODES: [(&str, &str); 3] = [
    ("scale-1", "127.100.11.11"),
    ("scale-2", "127.100.11.12"),
    ("scale-3", "127.100.11.13"),
];

fn per_service(n: usize) -> f64 {
    n as f64 / SERVICES as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_services_at_once_all_get_ips_without_waiting_on_octavia() {
    let Some(env) = Env::start("scale", "scale", sandbox_config(211, DELAY)).await else {
        return;
    };
    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;

    // From here until every IP is there the test makes no OpenStack call itself, so the
    // request log's window holds only the controller's calls.
    let from = env.request_log_mark().await;
    let started = Instant::now();
    let names: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i:02}")).collect();
    join_all(names.iter().map(|name| {
        env.create_service(json!({
            "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
    }))
    .await;
    let services = env.services();
    let ips: Vec<String> = wait_for("all 30 external IPs", ALL_IPS_WITHIN, || {
        let services = services.clone();
        async move {
            let list = services.list(&ListParams::default()).await.ok()?;
            let ips: Vec<String> = list
                .items
                .iter()
                .filter_map(|s| {
                    s.status
                        .as_ref()?
                        .load_balancer
                        .as_ref()?
                        .ingress
                        .as_ref()?
                        .first()?
                        .ip
                        .clone()
                })
                .collect();
            (ips.len() == SERVICES).then_some(ips)
        }
    })
    .await;
    let to_all_ips = started.elapsed();
    let created_until = env.request_log_mark().await;
    let create = env.call_counts(from, created_until).await;

    let distinct: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(
        distinct.len(),
        SERVICES,
        "every Service its own IP: {ips:?}"
    );
    assert!(ips.iter().all(|ip| ip.starts_with("127.211.0.")), "{ips:?}");
    let lbs = env.live_lbs().await;
    assert_eq!(lbs.len(), SERVICES, "one LB per Service");
    for name in &names {
        let lb = format!("kube_service_kubernetes_scale_{name}");
        assert_eq!(
            lbs.iter().filter(|l| l.name == lb).count(),
            1,
            "exactly one {lb}"
        );
    }
    assert_eq!(env.fips().await.len(), SERVICES, "one FIP per Service");

    // Delete all at once; again the window holds only the controller's calls.
    let from = env.request_log_mark().await;
    let deleting = Instant::now();
    let dp = DeleteParams::default();
    for r in join_all(names.iter().map(|name| services.delete(name, &dp))).await {
        r.unwrap();
    }
    for name in &names {
        env.wait_service_gone(name, LIMIT).await;
    }
    let to_all_gone = deleting.elapsed();
    let deleted_until = env.request_log_mark().await;
    let delete = env.call_counts(from, deleted_until).await;

    println!(
        "scale: {SERVICES} Services, provisioning delay {DELAY:?}: all external IPs after {:.1} s \
         (sequential would need ≥ {} s)",
        to_all_ips.as_secs_f64(),
        SERVICES as u64 * DELAY.as_secs()
    );
    println!(
        "scale: create: {} writes ({:.2}/Service), {} reads ({:.2}/Service), {} Keystone calls",
        create.writes,
        per_service(create.writes),
        create.reads,
        per_service(create.reads),
        create.identity
    );
    println!(
        "scale: delete: all Services gone after {:.1} s; {} writes ({:.2}/Service), {} reads \
         ({:.2}/Service), {} Keystone calls",
        to_all_gone.as_secs_f64(),
        delete.writes,
        per_service(delete.writes),
        delete.reads,
        per_service(delete.reads),
        delete.identity
    );
    // Creating one Service needs at least the LB POST and the FIP POST.
    assert!(create.writes >= 2 * SERVICES, "{create:?}");

    env.audit_leaks(&[]).await;
    assert!(controller.is_running(), "the controller must still run");
    drop(controller);
    env.finish().await;
}
