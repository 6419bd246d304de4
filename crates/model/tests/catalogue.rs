//! Snapshot catalogue: for every realistic Service under tests/fixtures/, the plan the model
//! makes against the described cloud state, recorded with insta (YAML). Also checks, for every
//! fixture, that applying the plan and planning again yields no step.

mod common;

use std::path::Path;

use common::*;
use model::naming;
use model::observed::{ObservedFloatingIp, ObservedListener};
use model::spec::ListenerProtocol;
use model::{apply, desired, plan, plan_delete, DeleteIntent, Observed};

fn observed_for(f: &Fixture) -> Observed {
    let mut base = Observed {
        project_id: Some(PROJECT.to_string()),
        node_ports: node_ports(5),
        ..Default::default()
    };
    let od = &f.observed;
    if let Some(addr) = &od.user_fip {
        base.floating_ips.push(ObservedFloatingIp {
            id: "user-fip-id".to_string(),
            floating_ip_address: addr.clone(),
            floating_network_id: FLOATING_NET.to_string(),
            description: "reserved by the web team".to_string(),
            ..Default::default()
        });
    }
    if let Some(addr) = &od.free_fip_of_ours {
        let ns = f.service.metadata.namespace.clone().unwrap_or_default();
        let name = f.service.metadata.name.clone().unwrap_or_default();
        base.floating_ips.push(ObservedFloatingIp {
            id: "our-free-fip-id".to_string(),
            floating_ip_address: addr.clone(),
            floating_network_id: FLOATING_NET.to_string(),
            description: naming::fip_description("kubernetes", &ns, &name),
            tags: vec![naming::cluster_tag(CLUSTER_UID)],
            ..Default::default()
        });
    }
    let mut o = if od.from == "created" {
        let svc = od.before.clone().unwrap_or_else(|| f.service.clone());
        let nodes = nodes_of(if od.before_nodes.is_some() {
            &od.before_nodes
        } else {
            &f.nodes
        });
        let cloud = od.before_cloud.as_ref().unwrap_or(&f.cloud);
        let config = od.before_config.as_ref().unwrap_or(&f.config);
        let spec = desired(&svc, &nodes, &config.config(), &cloud.features(), &env())
            .expect("the `before` Service is valid");
        let mut o = settle(&spec, apply(&plan(&spec, &base), &base));
        if od.also_apply {
            let mine = desired(
                &f.service,
                &nodes_of(&f.nodes),
                &f.config.config(),
                &f.cloud.features(),
                &env(),
            )
            .expect("the Service is valid");
            o = settle(&mine, apply(&plan(&mine, &o), &o));
        }
        o
    } else {
        base
    };
    if let Some(lb) = o.load_balancer.as_mut() {
        if od.strip_cluster_tags {
            lb.tags
                .retain(|t| !t.starts_with(naming::CLUSTER_TAG_PREFIX));
        }
        if od.foreign_cluster {
            lb.tags
                .retain(|t| !t.starts_with(naming::CLUSTER_TAG_PREFIX));
            lb.tags.push(naming::cluster_tag(OTHER_CLUSTER_UID));
        }
        if let Some(s) = od.status {
            lb.provisioning_status = s;
        }
        if od.remove_members {
            if let Some(p) = lb.listeners.first_mut().and_then(|l| l.pool.as_mut()) {
                p.members.clear();
            }
        }
        if let Some(id) = &od.lb_id {
            lb.id = id.clone();
        }
        if let Some(port) = od.other_listener_port {
            lb.listeners.push(ObservedListener {
                id: "user-listener-id".to_string(),
                name: "user-listener".to_string(),
                protocol: ListenerProtocol::Tcp,
                protocol_port: port,
                connection_limit: -1,
                allowed_cidrs: Vec::new(),
                insert_headers: Default::default(),
                timeout_client_data: None,
                timeout_member_connect: None,
                timeout_member_data: None,
                timeout_tcp_inspect: None,
                default_tls_container_ref: None,
                tags: Vec::new(),
                pool: None,
            });
        }
    }
    for fip in o.floating_ips.iter_mut() {
        if od.detach_fip {
            fip.port_id = None;
        }
        if od.strip_cluster_tags || od.fip_description_only {
            fip.tags.clear();
        }
    }
    o
}

fn run(f: &Fixture) -> Outcome {
    let features = f.cloud.features();
    let config = f.config.config();
    let observed = observed_for(f);
    if f.delete {
        let intent = DeleteIntent::for_service(&f.service, &config, &features, &env());
        let p = plan_delete(&intent, &observed);
        let after = apply(&p, &observed);
        let replan_steps = plan_delete(&intent, &after).steps.len();
        return Outcome {
            description: f.description.clone(),
            result: Ok(p),
            replan_steps,
            status_after: None,
        };
    }
    match desired(&f.service, &nodes_of(&f.nodes), &config, &features, &env()) {
        Err(e) => Outcome {
            description: f.description.clone(),
            result: Err(e),
            replan_steps: 0,
            status_after: None,
        },
        Ok(spec) => {
            let p = plan(&spec, &observed);
            let after = apply(&p, &observed);
            let again = plan(&spec, &after);
            // The bookkeeping that follows the published IP (the FIP's cluster tag) is one
            // more round; what is left after it must be nothing.
            let settled = if again.publishable() {
                plan(&spec, &apply(&again, &after))
            } else {
                again.clone()
            };
            Outcome {
                description: f.description.clone(),
                result: Ok(p),
                replan_steps: settled.steps.len(),
                status_after: again.status,
            }
        }
    }
}

#[test]
fn catalogue() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/services");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut not_converged = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read fixture");
        let f: Fixture =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = run(&f);
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        if outcome.replan_steps != 0 {
            not_converged.push(name.clone());
        }
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_yaml_snapshot!(name, outcome);
        });
    }
    assert!(
        files.len() >= 40,
        "the catalogue has {} fixtures, want at least 40",
        files.len()
    );
    assert!(
        not_converged.is_empty(),
        "plans that do not converge after apply: {not_converged:?}"
    );
}
