//! Shared test inputs: Services, Nodes, configuration, features and environment, plus the
//! fixture format of the snapshot catalogue. Only builds inputs; asserts nothing.
#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Service};
use model::config::{CloudConfig, LbMethod, LoadBalancerClass, Placement};
use model::observed::{ObservedPort, ProvisioningStatus};
use model::{apply, desired, plan, CloudFeatures, Environment, Invalid, Observed, Plan};
use serde::Deserialize;

pub const CLUSTER_UID: &str = "0b9d3c3e-7f6a-4d51-9a63-2d8f1c0e4a11";
pub const OTHER_CLUSTER_UID: &str = "9f0e8d7c-6b5a-4321-8fed-cba987654321";
pub const FLOATING_NET: &str = "a1b2c3d4-0000-4000-8000-00000000f10a";
pub const NODE_SUBNET: &str = "5e6f7a8b-0000-4000-8000-000000005b01";
pub const NODE_SUBNET_V6: &str = "5e6f7a8b-0000-4000-8000-000000005b06";
pub const NODE_NET: &str = "5e6f7a8b-0000-4000-8000-00000000be70";
pub const PROJECT: &str = "c0ffee00c0ffee00c0ffee00c0ffee00";

pub fn env() -> Environment {
    let mut e = Environment::new("kubernetes", CLUSTER_UID);
    e.project_id = Some(PROJECT.to_string());
    e.node_subnet_id = Some(NODE_SUBNET.to_string());
    e.node_network_id = Some(NODE_NET.to_string());
    e.node_subnet_id_secondary = Some(NODE_SUBNET_V6.to_string());
    e.discovered_floating_network_id = Some(FLOATING_NET.to_string());
    for i in 1..=5 {
        e.node_port_ids
            .insert(format!("node-{i}"), format!("port-node-{i}"));
    }
    e
}

pub fn features() -> CloudFeatures {
    CloudFeatures::octavia(2, 27, Some("amphora"))
}

pub fn config() -> CloudConfig {
    CloudConfig::default()
}

/// A Service from YAML (the way users write them).
pub fn service(yaml: &str) -> Service {
    serde_yaml::from_str(yaml).expect("test Service YAML")
}

/// A plain LoadBalancer Service with one TCP port and the given annotations.
pub fn svc_with(annotations: &[(&str, &str)]) -> Service {
    let mut s = service(
        r#"
metadata: {name: web, namespace: shop, uid: 4c1d-web}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, protocol: TCP, nodePort: 30080}]
"#,
    );
    let map: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    s.metadata.annotations = Some(map);
    s
}

/// Node description used by fixtures.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct NodeDef {
    pub name: String,
    pub ready: bool,
    pub addresses: Vec<String>,
    pub external: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    pub deleting: bool,
}

impl Default for NodeDef {
    fn default() -> Self {
        NodeDef {
            name: String::new(),
            ready: true,
            addresses: Vec::new(),
            external: Vec::new(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            deleting: false,
        }
    }
}

pub fn node(def: &NodeDef) -> Node {
    let mut addresses: Vec<serde_json::Value> = def
        .addresses
        .iter()
        .map(|a| serde_json::json!({"type": "InternalIP", "address": a}))
        .collect();
    addresses.extend(
        def.external
            .iter()
            .map(|a| serde_json::json!({"type": "ExternalIP", "address": a})),
    );
    addresses.push(serde_json::json!({"type": "Hostname", "address": def.name}));
    let taints: Vec<serde_json::Value> = def
        .taints
        .iter()
        .map(|t| serde_json::json!({"key": t, "effect": "NoSchedule"}))
        .collect();
    let mut meta = serde_json::json!({"name": def.name, "labels": def.labels});
    if def.deleting {
        meta["deletionTimestamp"] = serde_json::json!("2026-01-01T00:00:00Z");
        meta["finalizers"] = serde_json::json!(["test"]);
    }
    serde_json::from_value(serde_json::json!({
        "metadata": meta,
        "spec": {"taints": taints},
        "status": {
            "addresses": addresses,
            "conditions": [{"type": "Ready", "status": if def.ready { "True" } else { "False" }}]
        }
    }))
    .expect("test Node")
}

/// `count` Ready nodes node-1.. at 10.0.0.11.. (and fd00::11.. for dual-stack tests).
pub fn nodes(count: usize) -> Vec<Node> {
    (1..=count)
        .map(|i| {
            node(&NodeDef {
                name: format!("node-{i}"),
                addresses: vec![format!("10.0.0.{}", 10 + i), format!("fd00::{}", 10 + i)],
                ..NodeDef::default()
            })
        })
        .collect()
}

/// Observed node ports for security-group tests.
pub fn node_ports(count: usize) -> Vec<ObservedPort> {
    (1..=count)
        .map(|i| ObservedPort {
            id: format!("port-node-{i}"),
            security_groups: vec!["default-sg".to_string()],
            revision_number: 3,
        })
        .collect()
}

/// desired() for the default inputs.
pub fn want(svc: &Service) -> Result<model::LoadBalancerSpec, Vec<Invalid>> {
    desired(svc, &nodes(3), &config(), &features(), &env())
}

/// The cloud after creating `svc` from scratch, the bookkeeping that follows the published
/// IP (the FIP's cluster tag) included.
pub fn created(spec: &model::LoadBalancerSpec) -> Observed {
    let empty = Observed {
        project_id: Some(PROJECT.to_string()),
        node_ports: node_ports(5),
        ..Default::default()
    };
    settle(spec, apply(&plan(spec, &empty), &empty))
}

/// `observed` after the bookkeeping its plan leaves for after the IP is published; it must
/// be all that is left.
pub fn settle(spec: &model::LoadBalancerSpec, observed: Observed) -> Observed {
    let follow_up = plan(spec, &observed);
    assert!(
        follow_up.publishable(),
        "only bookkeeping may follow: {:?}",
        follow_up.steps
    );
    apply(&follow_up, &observed)
}

// ---- fixture catalogue ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub description: String,
    #[serde(default)]
    pub cloud: CloudDef,
    #[serde(default)]
    pub config: ConfigDef,
    /// Nodes now (default: three Ready nodes).
    #[serde(default)]
    pub nodes: Option<Vec<NodeDef>>,
    /// What exists: built by creating `before` (or the same Service) and then tampering.
    #[serde(default)]
    pub observed: ObservedDef,
    /// Plan a deletion instead of an ensure.
    #[serde(default)]
    pub delete: bool,
    pub service: Service,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudDef {
    /// `octavia` (default), `neutron-v2`, `neutron-v1`.
    pub generation: String,
    pub version: String,
    pub provider: Option<String>,
}

impl Default for CloudDef {
    fn default() -> Self {
        CloudDef {
            generation: "octavia".to_string(),
            version: "2.27".to_string(),
            provider: Some("amphora".to_string()),
        }
    }
}

impl CloudDef {
    pub fn features(&self) -> CloudFeatures {
        match self.generation.as_str() {
            "neutron-v2" => CloudFeatures::neutron_v2(self.provider.as_deref()),
            "neutron-v1" => CloudFeatures::neutron_v1(),
            _ => {
                let (maj, min) = self.version.split_once('.').expect("version like 2.27");
                CloudFeatures::octavia(
                    maj.parse().expect("major"),
                    min.parse().expect("minor"),
                    self.provider.as_deref(),
                )
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigDef {
    pub internal_lb: bool,
    pub create_monitor: bool,
    pub manage_security_groups: bool,
    pub lb_method: Option<LbMethod>,
    pub lb_provider: Option<String>,
    pub floating_network_id: Option<String>,
    pub subnet_id: Option<String>,
    pub network_id: Option<String>,
    pub member_subnet_id: Option<String>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub enable_ingress_hostname: bool,
    pub max_shared_lb: Option<u32>,
    pub cascade_delete: Option<bool>,
    pub default_tls_container_ref: Option<String>,
    pub node_selector: Option<String>,
    pub address_sort_order: Vec<String>,
    pub classes: BTreeMap<String, BTreeMap<String, String>>,
}

impl ConfigDef {
    pub fn config(&self) -> CloudConfig {
        let mut c = CloudConfig::default();
        let lb = &mut c.load_balancer;
        lb.internal_lb = self.internal_lb;
        lb.create_monitor = self.create_monitor;
        lb.manage_security_groups = self.manage_security_groups;
        if let Some(m) = self.lb_method {
            lb.lb_method = m;
        }
        lb.lb_provider = self.lb_provider.clone();
        lb.placement.floating_network_id = self.floating_network_id.clone();
        lb.placement.subnet_id = self.subnet_id.clone();
        lb.placement.network_id = self.network_id.clone();
        lb.placement.member_subnet_id = self.member_subnet_id.clone();
        lb.flavor_id = self.flavor_id.clone();
        lb.availability_zone = self.availability_zone.clone();
        lb.enable_ingress_hostname = self.enable_ingress_hostname;
        if let Some(m) = self.max_shared_lb {
            lb.max_shared_lb = m;
        }
        if let Some(cd) = self.cascade_delete {
            lb.cascade_delete = cd;
        }
        lb.default_tls_container_ref = self.default_tls_container_ref.clone();
        if let Some(sel) = &self.node_selector {
            lb.node_selector =
                model::annotations::parse_selector("node-selector", sel).expect("selector");
        }
        c.networking.address_sort_order = self
            .address_sort_order
            .iter()
            .map(|s| s.parse().expect("cidr"))
            .collect();
        for (name, keys) in &self.classes {
            let g = |k: &str| keys.get(k).cloned();
            c.classes.push(LoadBalancerClass {
                name: name.clone(),
                placement: Placement {
                    floating_network_id: g("floating-network-id"),
                    floating_subnet_id: g("floating-subnet-id"),
                    floating_subnet: g("floating-subnet"),
                    floating_subnet_tags: Vec::new(),
                    network_id: g("network-id"),
                    subnet_id: g("subnet-id"),
                    member_subnet_id: g("member-subnet-id"),
                },
            });
        }
        c
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedDef {
    /// `none` (default): nothing exists. `created`: what creating `before` (or this Service
    /// with `before_nodes`) left.
    pub from: String,
    /// The Service as it was when the LB was created (default: the same Service).
    pub before: Option<Service>,
    pub before_nodes: Option<Vec<NodeDef>>,
    pub before_cloud: Option<CloudDef>,
    pub before_config: Option<ConfigDef>,
    /// Tampering after creation.
    pub strip_cluster_tags: bool,
    pub foreign_cluster: bool,
    pub status: Option<ProvisioningStatus>,
    pub remove_members: bool,
    pub detach_fip: bool,
    pub user_fip: Option<String>,
    pub free_fip_of_ours: Option<String>,
    /// Give the LB this id (for `load-balancer-id` fixtures).
    pub lb_id: Option<String>,
    pub other_listener_port: Option<u16>,
    pub fip_description_only: bool,
    /// After creating `before`, also apply this Service's own plan (a second Service on a
    /// shared LB).
    pub also_apply: bool,
}

pub fn nodes_of(defs: &Option<Vec<NodeDef>>) -> Vec<Node> {
    match defs {
        Some(d) => d.iter().map(node).collect(),
        None => nodes(3),
    }
}

/// What the snapshot records for a fixture.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub description: String,
    pub result: Result<Plan, Vec<Invalid>>,
    /// Steps after applying the plan and planning again (must be 0).
    pub replan_steps: usize,
    /// The status the controller writes once the plan has run.
    pub status_after: Option<model::spec::LoadBalancerStatus>,
}
