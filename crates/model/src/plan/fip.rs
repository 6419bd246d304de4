//! Floating-IP steps (SPEC §4 "Floating IP"): keep the right FIP on the VIP port with at most
//! one write, and only ever release a FIP we created (description + our cluster tag) that
//! keep-floatingip does not protect. A user's FIP is at most detached, never deleted, never
//! tagged.

use super::ip::normalize_ip;
use super::{PortRef, Step};
use crate::invalid::Invalid;
use crate::naming;
use crate::observed::{Observed, ObservedFloatingIp};
use crate::spec::{FipIntent, FipSource, LoadBalancerSpec};

/// Whether we created this FIP: our description, and no other cluster's tag (OCCM's FIPs have
/// the description but no tag; they are adopted).
pub fn is_our_fip(description: &str, cluster_tag: &str, f: &ObservedFloatingIp) -> bool {
    f.description == description
        && match naming::cluster_uid_of(&f.tags) {
            Some(uid) => naming::cluster_tag(uid) == cluster_tag,
            None => true,
        }
}

/// Steps for the FIP of a VIP. `port` is how to name the VIP port in a step (None = not known
/// yet: nothing can be attached), `current_port` the VIP port id that exists now.
pub(super) fn fip_steps(
    spec: &LoadBalancerSpec,
    observed: &Observed,
    port: Option<PortRef>,
    current_port: Option<&str>,
    out: &mut Vec<Step>,
    invalid: &mut Vec<Invalid>,
) {
    let ours = |f: &ObservedFloatingIp| is_our_fip(&spec.fip_description, &spec.cluster_tag, f);
    // An empty id (a v1 VIP whose port is not known yet) names no port.
    let attached: Vec<&ObservedFloatingIp> = match current_port.filter(|p| !p.is_empty()) {
        Some(p) => observed
            .floating_ips
            .iter()
            .filter(|f| f.port_id.as_deref() == Some(p))
            .collect(),
        None => Vec::new(),
    };
    let let_go = |f: &ObservedFloatingIp, out: &mut Vec<Step>| {
        if ours(f) && !spec.keep_floating_ip {
            out.push(Step::DeleteFloatingIp { fip: f.id.clone() });
        } else {
            out.push(Step::DisassociateFloatingIp { fip: f.id.clone() });
        }
    };
    // The attached FIPs stay where they are: each of ours that lacks our cluster tag gets it
    // (a user's FIP, e.g. the one spec.loadBalancerIP names, never: the tag is what orphan
    // collection deletes by).
    let keep = |attached: &[&ObservedFloatingIp], out: &mut Vec<Step>| {
        for f in attached
            .iter()
            .filter(|f| ours(f) && !f.tags.iter().any(|t| t == &spec.cluster_tag))
        {
            out.push(Step::TagFloatingIp {
                fip: f.id.clone(),
                tag: spec.cluster_tag.clone(),
            });
        }
    };
    let create = |source: &FipSource, address, port: PortRef| Step::CreateFloatingIp {
        network_id: source.network_id.clone(),
        subnet_id: source.subnet_id.clone(),
        subnet_name_glob: source.subnet_name_glob.clone(),
        subnet_tags: source.subnet_tags.clone(),
        address,
        port: Some(port),
        description: spec.fip_description.clone(),
    };
    match &spec.floating_ip {
        FipIntent::None => {
            for f in attached {
                let_go(f, out);
            }
            // A FIP of ours left free (an earlier crash, or the Service just turned internal).
            if !spec.keep_floating_ip {
                for f in observed
                    .floating_ips
                    .iter()
                    .filter(|f| f.port_id.is_none() && ours(f))
                {
                    out.push(Step::DeleteFloatingIp { fip: f.id.clone() });
                }
            }
        }
        FipIntent::New(source) => {
            if attached
                .iter()
                .any(|f| f.floating_network_id == source.network_id)
            {
                keep(&attached, out);
                return;
            }
            for f in attached {
                let_go(f, out);
            }
            let Some(port) = port else { return };
            let free = observed.floating_ips.iter().find(|f| {
                f.port_id.is_none() && ours(f) && f.floating_network_id == source.network_id
            });
            match free {
                Some(f) => out.push(Step::AssociateFloatingIp {
                    fip: f.id.clone(),
                    port,
                }),
                None => out.push(create(source, None, port)),
            }
        }
        FipIntent::ByAddress { address, source } => {
            let want = address.to_string();
            let same = |f: &ObservedFloatingIp| normalize_ip(&f.floating_ip_address) == want;
            if attached.iter().any(|f| same(f)) {
                keep(&attached, out);
                return;
            }
            let existing = observed.floating_ips.iter().find(|f| same(f));
            if let Some(f) = existing.filter(|f| f.port_id.is_some()) {
                invalid.push(Invalid::conflict(
                    "spec.loadBalancerIP",
                    want.clone(),
                    format!(
                        "a floating IP of the project that is not attached elsewhere (it is on port {})",
                        f.port_id.clone().unwrap_or_default()
                    ),
                ));
                return;
            }
            for f in attached {
                let_go(f, out);
            }
            let Some(port) = port else { return };
            match existing {
                Some(f) => out.push(Step::AssociateFloatingIp {
                    fip: f.id.clone(),
                    port,
                }),
                None => out.push(create(source, Some(*address), port)),
            }
        }
    }
}
