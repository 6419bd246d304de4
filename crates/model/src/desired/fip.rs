//! Floating IP and the Service's status (SPEC §4 "Floating IP"): `spec.loadBalancerIP`
//! selects or asks for an address (on the VIP itself for an internal Service); otherwise a
//! new FIP from the floating network (annotation > class > config > the only external
//! network). The status shows the VIP, the FIP or a hostname.

use std::net::IpAddr;

use super::class::Placements;
use super::family::Families;
use super::members::Family;
use super::service::Ctx;
use super::Findings;
use crate::annotations as ann;
use crate::invalid::Invalid;
use crate::spec::{FipIntent, FipSource, IngressSource, IpMode, StatusIntent, VipPlacement};

pub(super) fn decide(
    cx: &Ctx,
    place: &Placements,
    families: &Families,
    internal: bool,
    vip: &mut VipPlacement,
    f: &mut Findings,
) -> FipIntent {
    let a = &cx.a;
    let requested_ip = cx
        .spec
        .load_balancer_ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let requested_ip: Option<IpAddr> = match requested_ip {
        Some(s) => match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                f.errs.push(Invalid::bad_value(
                    "spec.loadBalancerIP",
                    s,
                    "an IPv4 or IPv6 address",
                ));
                None
            }
        },
        None => None,
    };
    // Checked before anything is created: a wrong family would otherwise fail in the cloud
    // on every pass after the load balancer exists.
    let requested_ip = match requested_ip {
        Some(ip) if internal && Family::of(&ip) != families.first => {
            f.errs.push(Invalid::conflict(
                "spec.loadBalancerIP",
                ip.to_string(),
                format!(
                    "an {} address, the family of the Service's VIP (spec.ipFamilies)",
                    families.first_name()
                ),
            ));
            None
        }
        Some(ip) if !internal && ip.is_ipv6() => {
            f.errs.push(Invalid::conflict(
                "spec.loadBalancerIP",
                ip.to_string(),
                "an IPv4 address: floating IPs are IPv4 only (for an IPv6 VIP address, make the Service internal)",
            ));
            None
        }
        other => other,
    };
    if internal {
        vip.address = requested_ip;
        FipIntent::None
    } else {
        let network = place
            .pick(&a.floating_network_id, |p| &p.floating_network_id)
            .or_else(|| cx.env.discovered_floating_network_id.clone());
        match network {
            Some(network_id) => {
                let source = FipSource {
                    network_id,
                    subnet_id: place.pick(&a.floating_subnet_id, |p| &p.floating_subnet_id),
                    subnet_name_glob: place.pick(&a.floating_subnet, |p| &p.floating_subnet),
                    subnet_tags: place.floating_subnet_tags(&a.floating_subnet_tags),
                };
                match requested_ip {
                    Some(address) => FipIntent::ByAddress { address, source },
                    None => FipIntent::New(source),
                }
            }
            None => {
                f.errs.push(Invalid::missing(
                    "floating network",
                    format!("{} annotation, [LoadBalancer] floating-network-id, or exactly one external network in the cloud (or make the Service internal with {})", ann::FLOATING_NETWORK_ID, ann::INTERNAL),
                ));
                FipIntent::None
            }
        }
    }
}

/// What the Service's status shows, and how kube-proxy should treat that address.
pub(super) fn status(cx: &Ctx, internal: bool) -> StatusIntent {
    let a = &cx.a;
    let ip_mode = if a.proxy_protocol.is_some() {
        IpMode::Proxy
    } else {
        IpMode::Vip
    };
    let source = match (
        &a.hostname,
        cx.lbc.enable_ingress_hostname && a.proxy_protocol.is_some(),
    ) {
        (Some(h), _) => IngressSource::Hostname(h.clone()),
        (None, true) => IngressSource::AddressHostname {
            suffix: cx.lbc.ingress_hostname_suffix.clone(),
            from_fip: !internal,
        },
        (None, false) if internal => IngressSource::Vip,
        (None, false) => IngressSource::FloatingIp,
    };
    StatusIntent { source, ip_mode }
}
