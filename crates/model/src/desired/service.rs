//! Reading the Service (SPEC §3): its annotations, identity and ports, and the inputs around
//! it that every later phase reads. Annotations that do not parse, unknown annotations, a
//! missing name and a Service without ports are found here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use super::Findings;
use crate::annotations::{self as ann, Annotations};
use crate::config::{CloudConfig, LoadBalancerConfig};
use crate::environment::Environment;
use crate::features::CloudFeatures;
use crate::invalid::{Invalid, Warning, WarningReason};
use crate::naming;
use crate::spec::ServiceRef;

/// What every phase of `desired` reads: the Service as parsed, and the cloud and cluster
/// around it.
pub(super) struct Ctx<'a> {
    /// The annotations as written, for quoting a value back in an `Invalid`.
    pub raw: BTreeMap<String, String>,
    pub a: Annotations,
    pub svc: ServiceRef,
    pub spec: ServiceSpec,
    pub ports: Vec<ServicePort>,
    /// The load balancer's name (SPEC §4 "Naming and ownership"); its children are named
    /// after it.
    pub lb_name: String,
    pub config: &'a CloudConfig,
    pub lbc: &'a LoadBalancerConfig,
    pub features: &'a CloudFeatures,
    pub env: &'a Environment,
    /// The ovn provider: L4 only, SOURCE_IP_PORT only, keeps client addresses.
    pub ovn: bool,
}

impl Ctx<'_> {
    /// An annotation's value as written (empty when it is not set).
    pub fn written(&self, key: &str) -> String {
        self.raw.get(key).cloned().unwrap_or_default()
    }
}

pub(super) fn read<'a>(
    service: &Service,
    config: &'a CloudConfig,
    features: &'a CloudFeatures,
    env: &'a Environment,
    f: &mut Findings,
) -> Ctx<'a> {
    let raw = service.metadata.annotations.clone().unwrap_or_default();
    let a = match Annotations::parse(&raw) {
        Ok(a) => a,
        Err(e) => {
            f.errs.extend(e);
            Annotations::default()
        }
    };
    for key in ann::unknown_keys(&raw) {
        f.warnings.push(Warning::new(
            WarningReason::UnknownAnnotation,
            format!("annotation {key} is not known and has no effect"),
        ));
    }
    let svc = ServiceRef {
        namespace: service
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
    };
    if svc.name.is_empty() {
        f.errs
            .push(Invalid::missing("metadata.name", "the Service's name"));
    }
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        f.errs
            .push(Invalid::missing("spec.ports", "at least one port"));
    }
    let lb_name = naming::lb_name(&env.cluster_name, &svc.namespace, &svc.name);
    Ctx {
        lb_name,
        raw,
        a,
        svc,
        spec,
        ports,
        config,
        lbc: &config.load_balancer,
        features,
        env,
        ovn: features.is_ovn(),
    }
}
