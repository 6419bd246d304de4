//! End-to-end `manage-security-groups` (SPEC §4 "Security groups"): a real kube-apiserver, the
//! sandbox, and the controller binary as its own process. The nodes' Neutron ports (the
//! sandbox's `compute:nova` ports) are found from the Nodes' InternalIPs with a constant number
//! of calls, the Service's group (one rule per NodePort) is put on every member node's port
//! next to the user's own groups, taken off the ports of nodes that stop being members or leave
//! the cluster, put back by the drift resync when someone takes it off, and detached and
//! deleted with the Service. Ends with the leak audit.

mod common;
mod harness;

use std::time::Duration;

use common::wait_for;
use harness::{backend, http_get, node_ports, sandbox_config, Env, LIMIT};
use kube::api::DeleteParams;
use openstack::neutron::{CreateSecurityGroup, UpdatePort};
use openstack::ListQuery;
use serde_json::json;

const FAST: Duration = Duration::from_millis(300);
const LB_NAME: &str = "kube_service_kubernetes_sg_web";

/// The groups on the port holding `ip`.
async fn groups_on(env: &Env, port_id: &str) -> Vec<String> {
    env.neutron.get_port(port_id).await.unwrap().security_groups
}

async fn port_of(env: &Env, ip: &str) -> String {
    let ports = env
        .neutron
        .list_ports(&ListQuery::new().filter("fixed_ips", format!("ip_address={ip}")))
        .await
        .unwrap();
    ports
        .into_iter()
        .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == ip))
        .unwrap()
        .id
}

async fn our_group(env: &Env) -> Option<openstack::neutron::SecurityGroup> {
    env.neutron
        .list_security_groups(&ListQuery::new())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name.contains(LB_NAME))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_group_follows_the_member_nodes_and_goes_with_the_service() {
    let Some(env) = Env::start("secgroups", "sg", sandbox_config(251, FAST)).await else {
        return;
    };
    let nodes = [
        ("sg-1", "127.100.51.11"),
        ("sg-2", "127.100.51.12"),
        ("sg-3", "127.100.51.13"),
    ];
    for (name, ip) in nodes {
        env.add_node(name, ip, true).await;
    }
    let ports: Vec<String> = {
        let mut v = Vec::new();
        for (_, ip) in nodes {
            v.push(port_of(&env, ip).await);
        }
        v
    };
    // The sandbox, like Neutron, gives a new port the project's default group.
    let first_groups = groups_on(&env, &ports[0]).await;
    // The user's own group on the first node: it must survive everything we do.
    let users = env
        .neutron
        .create_security_group(&CreateSecurityGroup {
            name: "users-own".into(),
            description: Some("not the controller's".into()),
        })
        .await
        .unwrap();
    env.neutron
        .update_port(
            &ports[0],
            &UpdatePort {
                security_groups: Some(vec![users.id.clone()]),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let mut before = Vec::new();
    for p in &ports {
        before.push(groups_on(&env, p).await);
    }

    let conf = env.write_conf(
        "cloud-sg.conf",
        &format!(
            "{}manage-security-groups = true\n",
            env.sandbox.cloud_conf()
        ),
    );
    let mut controller = harness::ControllerProcess::start(
        &env.cp.kubeconfig,
        &conf,
        &env.cp.dir.join("controller.log"),
        &["--resync-period", "2s"],
    );
    controller.wait_ready(LIMIT).await;

    let from = env.request_log_mark().await;
    let svc = env
        .create_service(json!({
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                               {"name": "alt", "port": 8080, "protocol": "TCP"}]}
        }))
        .await;
    let node_port_list = node_ports(&svc);
    let mut backends = Vec::new();
    for (name, ip) in nodes {
        for np in &node_port_list {
            backends.push(backend(ip, *np, format!("{name}:{np}")).await);
        }
    }
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    let group = wait_for("our group on every node port", LIMIT, || async {
        let g = our_group(&env).await?;
        for p in &ports {
            if !groups_on(&env, p).await.contains(&g.id) {
                return None;
            }
        }
        Some(g)
    })
    .await;
    // Ingress rules for exactly the Service's NodePorts.
    let mut rule_ports: Vec<u32> = group
        .security_group_rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .filter_map(|r| r.port_range_min)
        .collect();
    rule_ports.sort();
    rule_ports.dedup();
    let mut want: Vec<u32> = node_port_list.iter().map(|p| u32::from(*p)).collect();
    want.sort();
    assert_eq!(rule_ports, want, "{:?}", group.security_group_rules);
    assert!(
        group
            .tags
            .iter()
            .any(|t| t.starts_with(model::naming::CLUSTER_TAG_PREFIX)),
        "the group carries the cluster identity: {:?}",
        group.tags
    );
    let on_first = groups_on(&env, &ports[0]).await;
    assert!(
        on_first.contains(&users.id),
        "user's group kept: {on_first:?}"
    );
    let answer = http_get(&ip, 80).await.unwrap_or_default();
    assert!(answer.contains("sg-"), "traffic through the FIP: {answer}");
    // Node ports were found by listing, not one lookup per node per pass.
    let port_lookups = env
        .calls(from, "GET")
        .await
        .into_iter()
        .filter(|(p, _)| p.contains("/ports") && p.contains("fixed_ips"))
        .count();
    println!("port lookups by address while creating the Service: {port_lookups}");
    assert_eq!(
        port_lookups, 0,
        "the node ports were scanned at start-up, before the Service"
    );

    // Someone takes our group off a node port (keeping theirs): the drift resync, which lists
    // tagged groups and the nodes' ports, sees it and the group is put back.
    let mut without_ours = groups_on(&env, &ports[0]).await;
    without_ours.retain(|g| *g != group.id);
    env.neutron
        .update_port(
            &ports[0],
            &UpdatePort {
                security_groups: Some(without_ours),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    wait_for("our group back on sg-1's port", LIMIT, || async {
        groups_on(&env, &ports[0])
            .await
            .contains(&group.id)
            .then_some(())
    })
    .await;
    assert!(groups_on(&env, &ports[0]).await.contains(&users.id));

    // sg-3 turns NotReady: no longer a member, our group leaves its port.
    env.patch_node_status("sg-3", "127.100.51.13", false).await;
    wait_for("group off sg-3's port", LIMIT, || async {
        (!groups_on(&env, &ports[2]).await.contains(&group.id)).then_some(())
    })
    .await;
    assert!(groups_on(&env, &ports[1]).await.contains(&group.id));

    // sg-2 leaves the cluster while its VM (and port) lives on: still cleaned.
    env.nodes()
        .delete("sg-2", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("group off the departed node's port", LIMIT, || async {
        (!groups_on(&env, &ports[1]).await.contains(&group.id)).then_some(())
    })
    .await;
    let on_first = groups_on(&env, &ports[0]).await;
    assert!(
        on_first.contains(&group.id) && on_first.contains(&users.id),
        "{on_first:?}"
    );

    // Deleting the Service detaches the group and deletes it; the user's group stays put.
    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    assert!(our_group(&env).await.is_none());
    for (p, was) in ports.iter().zip(&before) {
        assert_eq!(
            &groups_on(&env, p).await,
            was,
            "{p}: the user's groups, as before"
        );
    }
    // The user's group is not ours to delete; the test removes it before the audit.
    env.neutron
        .update_port(
            &ports[0],
            &UpdatePort {
                security_groups: Some(first_groups),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    env.neutron.delete_security_group(&users.id).await.unwrap();
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}
