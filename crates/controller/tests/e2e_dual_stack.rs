//! End-to-end dual-stack (SPEC §4 "Dual-stack"): a real kube-apiserver with a dual-stack
//! Service range, the sandbox with an IPv6 subnet beside the nodes' IPv4 one, and the
//! controller binary as its own process. A Service with two `ipFamilies` gets an Octavia
//! additional VIP on the discovered second-family subnet where the API offers it (≥ 2.26);
//! on an older API it gets the first family only and a Warning Event saying why. Traffic is
//! checked on the IPv4 floating IP (the sandbox carries no IPv6 traffic); the additional VIP
//! is asserted on the sandbox's stored `additional_vips`. Each test ends with the leak audit.

mod common;
mod harness;

use std::sync::Once;
use std::time::Duration;

use harness::{backend, http_get, node_ports, sandbox_config, Env, LIMIT};
use kube::api::DeleteParams;
use model::config::CloudConfig;
use openstack::{Session, SessionOptions};
use serde_json::{json, Value};

const FAST: Duration = Duration::from_millis(300);

/// Every control plane of this test binary serves both families (hack/control-plane.sh reads
/// OLBC_SERVICE_CIDR), so the apiserver accepts `RequireDualStack` Services.
fn dual_stack_cluster() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var("OLBC_SERVICE_CIDR", "10.96.0.0/16,fd00:10:96::/112"));
}

/// Creates an IPv6 subnet (no DHCP, so no port appears) on the sandbox network the nodes and
/// VIPs use, through the Neutron API; returns its id.
async fn add_ipv6_subnet(env: &Env, cidr: &str) -> String {
    let (config, _) = CloudConfig::parse(&env.sandbox.cloud_conf()).unwrap();
    let session = Session::new(&config.global, &config.metadata, SessionOptions::default())
        .await
        .unwrap();
    let token = session.token().await.unwrap();
    let base = env.sandbox.neutron_url().trim_end_matches('/');
    let base = base.strip_suffix("/v2.0").unwrap_or(base);
    let body = json!({"subnet": {
        "name": "nodes-v6", "network_id": env.sandbox.seed().private_network_id,
        "ip_version": 6, "cidr": cidr, "enable_dhcp": false
    }});
    let r = reqwest::Client::new()
        .post(format!("{base}/v2.0/subnets"))
        .header("X-Auth-Token", token.expose())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "IPv6 subnet refused: {}",
        r.status()
    );
    let v: Value = r.json().await.unwrap();
    v["subnet"]["id"].as_str().unwrap().to_string()
}

fn dual_service(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_service_gets_an_additional_vip_on_the_second_family_subnet() {
    dual_stack_cluster();
    let Some(env) = Env::start("dualstack", "ds", sandbox_config(252, FAST)).await else {
        return;
    };
    let v6 = add_ipv6_subnet(&env, "fd00:52::/64").await;
    let nodes = [("ds-1", "127.100.52.11"), ("ds-2", "127.100.52.12")];
    for (name, ip) in nodes {
        env.add_node(name, ip, true).await;
    }
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;

    let svc = env.create_service(dual_service("web")).await;
    let families = svc.spec.as_ref().and_then(|s| s.ip_families.clone());
    assert_eq!(
        families,
        Some(vec!["IPv4".to_string(), "IPv6".to_string()]),
        "the apiserver kept both families"
    );
    let np = node_ports(&svc)[0];
    let mut backends = Vec::new();
    for (name, ip) in nodes {
        backends.push(backend(ip, np, name.to_string()).await);
    }
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    let lbs = env.lbs_named("kube_service_kubernetes_ds_web").await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    let extra: Vec<&str> = lbs[0]
        .additional_vips
        .iter()
        .map(|v| v.subnet_id.as_str())
        .collect();
    assert_eq!(
        extra,
        vec![v6.as_str()],
        "the additional VIP is on the IPv6 subnet"
    );
    assert_ne!(lbs[0].vip_subnet_id, v6, "the primary VIP stays IPv4");
    let answer = http_get(&ip, 80).await.unwrap_or_default();
    assert!(answer.contains("ds-"), "traffic through the FIP: {answer}");
    let warnings: Vec<String> = env
        .events_for("web")
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| e.message.unwrap_or_default())
        .collect();
    assert!(
        !warnings
            .iter()
            .any(|m| m.contains("dual-stack") || m.contains("family")),
        "{warnings:?}"
    );

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_on_an_api_without_additional_vips_serves_the_first_family_and_warns() {
    dual_stack_cluster();
    let mut cfg = sandbox_config(253, FAST);
    cfg.octavia_api_version = Some("2.25".into());
    let Some(env) = Env::start("dualstack-old", "dsold", cfg).await else {
        return;
    };
    add_ipv6_subnet(&env, "fd00:53::/64").await;
    let nodes = [("dso-1", "127.100.53.11")];
    for (name, ip) in nodes {
        env.add_node(name, ip, true).await;
    }
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;

    let svc = env.create_service(dual_service("web")).await;
    let np = node_ports(&svc)[0];
    let b = backend(nodes[0].1, np, "dso-1".into()).await;
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    let ev = env
        .wait_event("web", "Warning", &["dual-stack", "2.26"])
        .await;
    println!(
        "dual-stack on 2.25: Warning {}: {}",
        ev.reason.unwrap_or_default(),
        ev.message.unwrap_or_default()
    );
    let lbs = env.lbs_named("kube_service_kubernetes_dsold_web").await;
    assert_eq!(lbs.len(), 1);
    assert!(
        lbs[0].additional_vips.is_empty(),
        "{:?}",
        lbs[0].additional_vips
    );
    let answer = http_get(&ip, 80).await.unwrap_or_default();
    assert!(answer.contains("dso-1"), "IPv4 still served: {answer}");

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    b.abort();
    drop(controller);
    env.finish().await;
}
