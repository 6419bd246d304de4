//! VIP placement (SPEC §4 "VIP placement", "Dual-stack"): port-id > subnet-id/network-id
//! (annotation > class > config) > the subnet of the Neutron port holding a node's
//! InternalIP; a second IP family becomes an additional VIP where Octavia has them (2.26).

use super::class::Placements;
use super::family::Families;
use super::service::Ctx;
use super::Findings;
use crate::annotations as ann;
use crate::invalid::{Invalid, Warning, WarningReason};
use crate::spec::VipPlacement;

pub(super) fn place(
    cx: &Ctx,
    place: &Placements,
    families: &Families,
    f: &mut Findings,
) -> VipPlacement {
    let a = &cx.a;
    let mut vip = VipPlacement {
        port_id: a.port_id.clone(),
        subnet_id: place.pick(&a.subnet_id, |p| &p.subnet_id),
        network_id: place.pick(&a.network_id, |p| &p.network_id),
        address: None,
        additional_subnet_ids: Vec::new(),
    };
    if vip.port_id.is_some() {
        vip.subnet_id = None;
        vip.network_id = None;
    } else if vip.subnet_id.is_none() && vip.network_id.is_none() {
        vip.subnet_id = cx.env.node_subnet_id.clone();
        vip.network_id = cx.env.node_network_id.clone();
        if vip.subnet_id.is_none() && vip.network_id.is_none() {
            f.errs.push(Invalid::missing(
                "VIP subnet",
                format!("{} or {} annotation, [LoadBalancer] subnet-id/network-id, or nodes whose InternalIP is on a Neutron port", ann::SUBNET_ID, ann::NETWORK_ID),
            ));
        }
    }
    if families.list.len() > 1 {
        match (
            &cx.env.node_subnet_id_secondary,
            cx.features.additional_vips,
        ) {
            (Some(s), true) if vip.port_id.is_none() => vip.additional_subnet_ids.push(s.clone()),
            (_, false) => f.warnings.push(Warning::unsupported(
                &format!("dual-stack ipFamilies {}", families.list.join(",")),
                "Octavia API 2.26 (additional VIPs)",
                &format!(
                    "{}; only {} is served",
                    cx.features.version_text(),
                    families.list[0]
                ),
            )),
            _ => f.warnings.push(Warning::new(
                WarningReason::DualStackPartial,
                format!(
                    "no subnet of the second family ({}) is known for the VIP; only {} is served",
                    families.list[1], families.list[0]
                ),
            )),
        }
    }

    vip
}
