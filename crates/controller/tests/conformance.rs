//! Conformance tier, controller part: end-to-end scenarios that need no traffic, against the
//! REAL target cloud (any OpenStack; in CI the openstack-rig), a real local kube-apiserver and
//! the controller binary as its own process. Each scenario has its own world (control plane,
//! namespace, `--cluster-name <run prefix>-<scenario>`, node addresses reserved in the target
//! subnet), asserts on the Kubernetes side and on the cloud, and ends with a leak audit limited
//! to its tag; everything with the tag is swept even when it fails. `#[ignore]`d: run with
//! `scripts/conformance.sh` (docs/conformance.md).

mod common;
mod conformance_support;
mod harness;

use std::time::{Duration, Instant};

use conformance_support::{lb_service, node_ports, poll_cloud, World};
use openstack::lbaas::{CreateListener, CreateLoadBalancer, CreateMember, CreatePool};
use openstack::neutron::CreateFloatingIp;
use openstack::ListQuery;
use serde_json::json;

const READY: Duration = Duration::from_secs(120);
const LB_ID: &str = "loadbalancer.openstack.org/load-balancer-id";

/// Waits for the Service's external address: the floating IP attached to the VIP port when
/// the target has a floating network (checked), else the VIP address.
async fn wait_exposed(w: &World, svc: &str, lb: &openstack::lbaas::LoadBalancer) -> String {
    let ip = w.wait_ingress_ip(svc).await;
    if w.target.floating_network_id.is_some() {
        let fips = w
            .neutron
            .list_floating_ips(&ListQuery::new().port_id(lb.vip_port_id.clone()))
            .await
            .unwrap();
        assert_eq!(fips.len(), 1, "one FIP on the VIP port: {fips:?}");
        assert_eq!(fips[0].floating_ip_address, ip);
    } else {
        assert_eq!(ip, lb.vip_address);
    }
    ip
}

fn members(ips: &[&str], port: u16) -> Vec<String> {
    let mut m: Vec<String> = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
    m.sort();
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_create_update_ports_annotations_delete() {
    let w = World::start("life").await;
    let t = Instant::now();
    let r = World::catch(lifecycle(&w)).await;
    w.finish(r, t).await;
}

async fn lifecycle(w: &World) {
    let a = w.add_node("life-1").await;
    let b = w.add_node("life-2").await;
    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;

    let svc = w
        .create_service(lb_service("web", &[("http", 80)], json!({})))
        .await;
    let np = node_ports(&svc)[0];
    let lb = w.wait_lb_active("web").await;
    let ip = wait_exposed(w, "web", &lb).await;
    println!("life: web exposed at {ip} (LB {})", lb.id);
    let ls = w.listeners(&lb.id).await;
    assert_eq!(ls.len(), 1, "{ls:?}");
    assert_eq!(ls[0].0, 80);
    assert_eq!(ls[0].2, "ROUND_ROBIN");
    assert_eq!(ls[0].3, members(&[&a, &b], np));
    assert_eq!(
        w.annotation("web", LB_ID).await.as_deref(),
        Some(lb.id.as_str())
    );
    assert!(
        lb.tags.iter().any(|t| t.starts_with("kube-cluster-uid=")),
        "{:?}",
        lb.tags
    );

    // A port added: a second listener on the same LB.
    let svc = w
        .patch_service(
            "web",
            json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                      {"name": "https", "port": 443, "protocol": "TCP"}]}}),
        )
        .await;
    let np2 = node_ports(&svc)[1];
    w.wait_lb("listener for 443", &lb.id, |l| l.listeners.len() == 2)
        .await;
    let ls = poll_cloud("members of 443", || async {
        let ls = w.listeners(&lb.id).await;
        (ls.len() == 2 && ls[1].3.len() == 2).then_some(ls)
    })
    .await;
    assert_eq!(ls[1].0, 443);
    assert_eq!(ls[1].3, members(&[&a, &b], np2));

    // An annotation changed: the pools' algorithm changes in place.
    w.patch_service(
        "web",
        json!({"metadata": {"annotations": {"loadbalancer.openstack.org/lb-method": "LEAST_CONNECTIONS"}}}),
    )
    .await;
    poll_cloud("LEAST_CONNECTIONS on both pools", || async {
        let ls = w.listeners(&lb.id).await;
        ls.iter().all(|l| l.2 == "LEAST_CONNECTIONS").then_some(())
    })
    .await;

    // The port removed again: its listener goes, the other stays untouched.
    w.patch_service(
        "web",
        json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": np}]}}),
    )
    .await;
    w.wait_lb("listener for 443 removed", &lb.id, |l| {
        l.listeners.len() == 1
    })
    .await;
    let ls = w.listeners(&lb.id).await;
    assert_eq!(ls[0].0, 80);
    assert_eq!(w.lbs().await.len(), 1, "updated in place, never recreated");
    assert_eq!(w.ingress_ip("web").await.as_deref(), Some(ip.as_str()));

    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[]).await;
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_node_churn() {
    let w = World::start("churn").await;
    let t = Instant::now();
    let r = World::catch(churn(&w)).await;
    w.finish(r, t).await;
}

async fn churn(w: &World) {
    let a = w.add_node("churn-1").await;
    let b = w.add_node("churn-2").await;
    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;
    let svc = w
        .create_service(lb_service("web", &[("http", 80)], json!({})))
        .await;
    let np = node_ports(&svc)[0];
    let lb = w.wait_lb_active("web").await;
    w.wait_ingress_ip("web").await;
    let wait_members = |want: Vec<String>| {
        let id = lb.id.clone();
        async move {
            poll_cloud(&format!("members {want:?}"), || async {
                let ls = w.listeners(&id).await;
                (ls.len() == 1 && ls[0].3 == want).then_some(())
            })
            .await
        }
    };
    wait_members(members(&[&a, &b], np)).await;

    let c = w.add_node("churn-3").await;
    wait_members(members(&[&a, &b, &c], np)).await;
    println!("churn: node added → 3 members");
    w.set_node_ready("churn-1", &a, false).await;
    wait_members(members(&[&b, &c], np)).await;
    println!("churn: node NotReady → 2 members");
    w.delete_node("churn-2").await;
    wait_members(members(&[&c], np)).await;
    println!("churn: node deleted → 1 member");
    w.set_node_ready("churn-1", &a, true).await;
    wait_members(members(&[&a, &c], np)).await;
    assert_eq!(w.lbs().await.len(), 1);

    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[]).await;
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_internal_service_gets_no_floating_ip() {
    let w = World::start("intl").await;
    let t = Instant::now();
    let r = World::catch(internal(&w)).await;
    w.finish(r, t).await;
}

async fn internal(w: &World) {
    w.add_node("intl-1").await;
    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;
    w.create_service(lb_service(
        "web",
        &[("http", 80)],
        json!({"service.beta.kubernetes.io/openstack-internal-load-balancer": "true"}),
    ))
    .await;
    let lb = w.wait_lb_active("web").await;
    w.wait_ingress_is("web", &lb.vip_address).await;
    let on_vip = w
        .neutron
        .list_floating_ips(&ListQuery::new().port_id(lb.vip_port_id.clone()))
        .await
        .unwrap();
    assert!(on_vip.is_empty(), "internal: no FIP {on_vip:?}");
    assert!(w.fips().await.is_empty());
    println!("internal: ingress is the VIP {}", lb.vip_address);
    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[]).await;
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_load_balancer_ip_reuses_the_users_floating_ip() {
    let w = World::start("lbip").await;
    let t = Instant::now();
    let r = World::catch(lb_ip(&w)).await;
    w.finish(r, t).await;
}

async fn lb_ip(w: &World) {
    let Some(fnet) = w.target.floating_network_id.clone() else {
        println!("SKIPPED: loadBalancerIP needs OLBC_CONFORMANCE_FLOATING_NETWORK_ID");
        return;
    };
    w.add_node("lbip-1").await;
    let user = w
        .neutron
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: fnet,
            description: Some(format!("user-owned, {}", w.tag)),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;
    let mut svc = lb_service("web", &[("http", 80)], json!({}));
    svc["spec"]["loadBalancerIP"] = json!(user.floating_ip_address);
    w.create_service(svc).await;
    let lb = w.wait_lb_active("web").await;
    w.wait_ingress_is("web", &user.floating_ip_address).await;
    let fip = poll_cloud("the user's FIP on the VIP port", || async {
        let f = w.neutron.get_floating_ip(&user.id).await.ok()?;
        (f.port_id.as_deref() == Some(lb.vip_port_id.as_str())).then_some(f)
    })
    .await;
    assert_eq!(w.fips().await.len(), 1, "no second FIP");
    println!("lbip: reused {}", fip.floating_ip_address);

    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[&user.id]).await;
    let kept = w.neutron.get_floating_ip(&user.id).await.unwrap();
    assert_eq!(kept.port_id, None, "kept, detached");
    assert_eq!(kept.floating_ip_address, user.floating_ip_address);
    w.neutron.delete_floating_ip(&user.id).await.unwrap();
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_keep_floatingip_outlives_the_service() {
    let w = World::start("keep").await;
    let t = Instant::now();
    let r = World::catch(keep_fip(&w)).await;
    w.finish(r, t).await;
}

async fn keep_fip(w: &World) {
    if w.target.floating_network_id.is_none() {
        println!("SKIPPED: keep-floatingip needs OLBC_CONFORMANCE_FLOATING_NETWORK_ID");
        return;
    }
    w.add_node("keep-1").await;
    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;
    w.create_service(lb_service(
        "web",
        &[("http", 80)],
        json!({"loadbalancer.openstack.org/keep-floatingip": "true"}),
    ))
    .await;
    let lb = w.wait_lb_active("web").await;
    let ip = wait_exposed(w, "web", &lb).await;
    let fip = w.fips().await.pop().unwrap();
    assert_eq!(fip.floating_ip_address, ip);
    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[&fip.id]).await;
    let kept = w.neutron.get_floating_ip(&fip.id).await.unwrap();
    assert_eq!(kept.port_id, None);
    println!("keep: {ip} kept after the Service was deleted");
    w.neutron.delete_floating_ip(&fip.id).await.unwrap();
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_shared_load_balancer_by_id() {
    let w = World::start("share").await;
    let t = Instant::now();
    let r = World::catch(shared(&w)).await;
    w.finish(r, t).await;
}

async fn shared(w: &World) {
    let n = w.add_node("share-1").await;
    // A short resync and orphan grace: A's LB, once B alone used it and B is gone, is
    // collected within the scenario.
    let mut controller = w.start_controller(&["--resync-period", "5s", "--orphan-grace", "1s"]);
    controller.wait_ready(READY).await;
    // The owner's consent, for every namespace (the Services here share one).
    w.create_service(lb_service(
        "a",
        &[("http", 80)],
        json!({"loadbalancer.openstack.org/shared-with": "*"}),
    ))
    .await;
    let lb = w.wait_lb_active("a").await;
    let ip = wait_exposed(w, "a", &lb).await;
    let b = w
        .create_service(lb_service("b", &[("alt", 8080)], json!({LB_ID: lb.id})))
        .await;
    let np_b = node_ports(&b)[0];
    w.wait_ingress_is("b", &ip).await;
    w.wait_lb("B's listener", &lb.id, |l| l.listeners.len() == 2)
        .await;
    let ls = poll_cloud("B's members", || async {
        let ls = w.listeners(&lb.id).await;
        (ls.len() == 2 && !ls[1].3.is_empty()).then_some(ls)
    })
    .await;
    assert_eq!(ls[1].0, 8080);
    assert_eq!(ls[1].1, format!("listener_0_{}", w.lb_name("b")));
    assert_eq!(ls[1].3, members(&[&n], np_b));
    assert_eq!(w.lbs().await.len(), 1, "B made no LB of its own");
    assert_eq!(
        w.fips().await.len(),
        usize::from(w.target.floating_network_id.is_some())
    );
    println!("share: B joined A's LB {} at {ip}", lb.id);

    w.delete_service("b").await;
    w.wait_service_gone("b").await;
    w.wait_lb("B's listener removed", &lb.id, |l| l.listeners.len() == 1)
        .await;
    w.delete_service("a").await;
    w.wait_service_gone("a").await;
    w.audit_leaks(&[]).await;
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_occm_load_balancer_is_adopted_in_place() {
    let w = World::start("adopt").await;
    let t = Instant::now();
    let r = World::catch(adopt(&w)).await;
    w.finish(r, t).await;
}

async fn adopt(w: &World) {
    const NODE_PORT: u16 = 31717;
    let a = w.add_node("adopt-1").await;
    let b = w.add_node("adopt-2").await;
    // What OCCM leaves behind: its names and description, no cluster-identity tag, members
    // on the NodePort, and a FIP with its description on the VIP port.
    let lb_name = w.lb_name("web");
    let lb = w
        .lbaas
        .create_loadbalancer(&CreateLoadBalancer {
            name: Some(lb_name.clone()),
            description: Some(format!(
                "Kubernetes external service {}/web from cluster {}",
                w.namespace, w.tag
            )),
            vip_subnet_id: Some(w.target.subnet_id.clone()),
            listeners: Some(vec![CreateListener {
                protocol: "TCP".into(),
                protocol_port: 80,
                name: Some(format!("listener_0_{lb_name}")),
                default_pool: Some(CreatePool {
                    protocol: "TCP".into(),
                    lb_algorithm: "ROUND_ROBIN".into(),
                    name: Some(format!("pool_0_{lb_name}")),
                    members: Some(
                        [&a, &b]
                            .iter()
                            .map(|ip| CreateMember {
                                address: ip.to_string(),
                                protocol_port: NODE_PORT,
                                subnet_id: Some(w.target.subnet_id.clone()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .unwrap();
    let lb = w.wait_lb("OCCM's LB ACTIVE", &lb.id, |_| true).await;
    let listener_ids: Vec<String> = lb.listeners.iter().map(|l| l.id.clone()).collect();
    let occm_fip = match &w.target.floating_network_id {
        Some(f) => Some(
            w.neutron
                .create_floating_ip(&CreateFloatingIp {
                    floating_network_id: f.clone(),
                    port_id: Some(lb.vip_port_id.clone()),
                    description: Some(format!(
                        "Floating IP for Kubernetes external service {}/web from cluster {}",
                        w.namespace, w.tag
                    )),
                    ..Default::default()
                })
                .await
                .unwrap(),
        ),
        None => None,
    };

    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;
    let mut svc = lb_service("web", &[("http", 80)], json!({}));
    svc["spec"]["ports"][0]["nodePort"] = json!(NODE_PORT);
    w.create_service(svc).await;
    let want = occm_fip
        .as_ref()
        .map(|f| f.floating_ip_address.clone())
        .unwrap_or_else(|| lb.vip_address.clone());
    w.wait_ingress_is("web", &want).await;
    let adopted = w
        .wait_lb("our cluster tag on the adopted LB", &lb.id, |l| {
            l.tags.iter().any(|t| t.starts_with("kube-cluster-uid="))
        })
        .await;
    let now: Vec<String> = adopted.listeners.iter().map(|l| l.id.clone()).collect();
    assert_eq!(now, listener_ids, "listeners kept");
    let live = w.lbs().await;
    assert_eq!(live.len(), 1, "the same LB, not a new one: {live:?}");
    assert_eq!(live[0].id, lb.id);
    assert_eq!(
        w.fips().await.len(),
        usize::from(occm_fip.is_some()),
        "no second FIP"
    );
    assert_eq!(
        w.annotation("web", LB_ID).await.as_deref(),
        Some(lb.id.as_str())
    );
    println!("adopt: OCCM's LB {} adopted in place at {want}", lb.id);

    // Adopted means ours: deleting the Service removes the LB and OCCM's FIP.
    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[]).await;
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn conformance_sigkill_mid_create_then_restart() {
    let w = World::start("kill").await;
    let t = Instant::now();
    let r = World::catch(sigkill(&w)).await;
    w.finish(r, t).await;
}

async fn sigkill(w: &World) {
    w.add_node("kill-1").await;
    w.add_node("kill-2").await;
    let mut controller = w.start_controller(&[]);
    controller.wait_ready(READY).await;
    w.create_service(lb_service("web", &[("http", 80)], json!({})))
        .await;
    // Killed as soon as the LB exists in the cloud: a real create stays PENDING_CREATE for
    // seconds, so this lands mid-create.
    let mid = conformance_support::poll(
        "the LB to appear",
        conformance_support::CLOUD_LIMIT,
        Duration::from_millis(200),
        || async { w.lbs_named("web").await.pop() },
    )
    .await;
    controller.sigkill();
    println!(
        "kill: SIGKILLed with the LB {} {}",
        mid.id, mid.provisioning_status
    );
    controller.restart();
    controller.wait_ready(READY).await;
    let lb = w.wait_lb_active("web").await;
    assert_eq!(lb.id, mid.id, "the same LB, no duplicate");
    wait_exposed(w, "web", &lb).await;
    assert_eq!(w.lbs().await.len(), 1);
    assert_eq!(
        w.fips().await.len(),
        usize::from(w.target.floating_network_id.is_some()),
        "exactly one FIP"
    );
    w.delete_service("web").await;
    w.wait_service_gone("web").await;
    w.audit_leaks(&[]).await;
    drop(controller);
}
