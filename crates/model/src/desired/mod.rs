//! `desired`: from a Service, the Nodes, cloud.conf, the cloud's features and the cluster
//! environment to the load balancer that should exist (SPEC §3, §4). Every annotation and
//! behaviour is decided here, and every input the cloud cannot honour either becomes an
//! `Invalid` (the Service is not served as written) or a `Warning` (an optional feature is
//! skipped). Must not know what exists in the cloud: that is `plan`'s job.
//!
//! One module a phase, in the order `desired` runs them; the order matters only for the order
//! of the `Invalid`s (warnings are sorted).

mod class;
mod extras;
mod family;
mod fip;
mod generation;
mod listeners;
pub mod members;
mod monitor;
mod security_group;
mod service;
mod sharing;
mod source_ranges;
mod vip;

use k8s_openapi::api::core::v1::{Node, Service};

use crate::config::CloudConfig;
use crate::environment::Environment;
use crate::features::CloudFeatures;
use crate::invalid::{Invalid, Warning};
use crate::naming;
use crate::spec::LoadBalancerSpec;

/// Octavia's listener timeout defaults (ms).
pub const DEFAULT_TIMEOUT_CLIENT_DATA: u64 = 50_000;
pub const DEFAULT_TIMEOUT_MEMBER_CONNECT: u64 = 5_000;
pub const DEFAULT_TIMEOUT_MEMBER_DATA: u64 = 50_000;
pub const DEFAULT_TIMEOUT_TCP_INSPECT: u64 = 0;

/// What the phases found: every problem, so one Event can name them all.
#[derive(Default)]
struct Findings {
    errs: Vec<Invalid>,
    warnings: Vec<Warning>,
}

/// The load balancer Service `service` should have. `Err` lists every problem found, so one
/// Event can name them all; nothing in OpenStack should change for the Service meanwhile.
pub fn desired(
    service: &Service,
    nodes: &[Node],
    config: &CloudConfig,
    features: &CloudFeatures,
    env: &Environment,
) -> Result<LoadBalancerSpec, Vec<Invalid>> {
    let mut f = Findings::default();
    // The Service as written, its class, address family and traffic policy.
    let cx = service::read(service, config, features, env, &mut f);
    let place = class::resolve(&cx, &mut f);
    let families = family::decide(&cx, &mut f);
    let internal = cx.a.internal.unwrap_or(cx.lbc.internal_lb);
    let traffic = monitor::traffic_policy(&cx, &mut f);
    // What this cloud's LBaaS generation and provider cannot do at all.
    generation::check(&cx, &mut f);
    // Health monitors, and members (with meltdown protection).
    let monitor_params = monitor::params(&cx, &traffic, &mut f);
    let members = members::decide(&cx, nodes, families.first, &place, &mut f);
    // Listeners and pools: one each per port, with source ranges as allowed_cidrs.
    let settings = listeners::pool_settings(&cx, &mut f);
    let ranges = source_ranges::decide(&cx, &families, &mut f);
    let listeners = listeners::build(
        &cx,
        &settings,
        &ranges.allowed_cidrs,
        &traffic,
        &monitor_params,
        &members,
        &mut f,
    );
    // VIP placement, floating IP and what the status shows.
    let mut vip = vip::place(&cx, &place, &families, &mut f);
    let floating_ip = fip::decide(&cx, &place, &families, internal, &mut vip, &mut f);
    let status = fip::status(&cx, internal);
    // Flavor and availability zone where the cloud has them; the security group; sharing.
    let (flavor_id, availability_zone) = extras::placement(&cx, &mut f);
    let security_group = security_group::spec(
        &cx,
        &listeners,
        &traffic,
        &ranges,
        families.first,
        &members.nodes,
    );
    sharing::check(&cx, &mut f);
    if !f.errs.is_empty() {
        return Err(f.errs);
    }

    let cluster_tag = naming::cluster_tag(&env.cluster_uid);
    let (namespace, name) = (&cx.svc.namespace, &cx.svc.name);
    let mut warnings = f.warnings;
    warnings.sort();
    warnings.dedup();
    Ok(LoadBalancerSpec {
        description: naming::lb_description(&env.cluster_name, namespace, name),
        tags: sharing::tags(&cx, &cluster_tag),
        fip_description: naming::fip_description(&env.cluster_name, namespace, name),
        cluster_tag,
        name: cx.lb_name.clone(),
        service: cx.svc.clone(),
        vip,
        provider: cx.lbc.lb_provider.clone(),
        flavor_id,
        availability_zone,
        existing_lb_id: cx.a.load_balancer_id.clone(),
        max_shared_lb: cx.lbc.max_shared_lb,
        listeners,
        floating_ip,
        keep_floating_ip: cx.a.keep_floatingip.unwrap_or(false),
        security_group,
        status,
        recreate_on_immutable_change: cx.a.recreate_on_immutable_change.unwrap_or(false),
        cascade_delete: cx.lbc.cascade_delete && features.cascade_delete,
        features: features.clone(),
        warnings,
    })
}
