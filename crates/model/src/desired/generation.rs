//! What the cloud cannot do at all (SPEC §1.2, §4 "Protocols"): Neutron LBaaS v1 limits,
//! annotations that exclude each other, PROXYV2 before Octavia 2.22, and the ovn provider's
//! L4-only, SOURCE_IP_PORT-only balancing. Each is an `Invalid`: the Service is not served as
//! written rather than served differently.

use k8s_openapi::api::core::v1::ServicePort;

use super::service::Ctx;
use super::Findings;
use crate::annotations::{self as ann, ProxyProtocol};
use crate::config::LbMethod;
use crate::features::Generation;
use crate::invalid::Invalid;

pub(super) fn check(cx: &Ctx, f: &mut Findings) {
    let a = &cx.a;
    let features = cx.features;
    // The annotations that ask for more than plain L4 balancing, and whether each is set.
    let beyond_l4 = [
        (ann::PROXY_PROTOCOL, a.proxy_protocol.is_some()),
        (ann::X_FORWARDED_FOR, a.x_forwarded_for == Some(true)),
        (
            ann::DEFAULT_TLS_CONTAINER_REF,
            a.default_tls_container_ref.is_some(),
        ),
    ];
    if features.generation == Generation::NeutronV1 {
        let tcp = |p: &ServicePort| p.protocol.as_deref().unwrap_or("TCP") == "TCP";
        if cx.ports.len() != 1 || !cx.ports.iter().all(tcp) {
            f.errs.push(Invalid::unsupported(
                "spec.ports",
                cx.ports.iter().map(port_text).collect::<Vec<_>>().join(","),
                "exactly one TCP port: this cloud only offers Neutron LBaaS v1",
            ));
        }
        for (key, set) in beyond_l4 {
            if set {
                f.errs.push(Invalid::unsupported(
                    key,
                    cx.written(key),
                    "nothing: Neutron LBaaS v1 has plain TCP only",
                ));
            }
        }
    }
    // PROXY excludes both others; x-forwarded-for and TLS termination go together.
    let [_, xff, tls] = beyond_l4;
    for (other, set) in [xff, tls] {
        if a.proxy_protocol.is_some() && set {
            f.errs.push(Invalid::conflict(
                ann::PROXY_PROTOCOL,
                cx.written(ann::PROXY_PROTOCOL),
                format!("either {} or {}, not both", ann::PROXY_PROTOCOL, other),
            ));
        }
    }
    if a.proxy_protocol == Some(ProxyProtocol::V2) && !features.proxy_v2 && !cx.ovn {
        f.errs.push(Invalid::unsupported(
            ann::PROXY_PROTOCOL,
            "v2",
            format!(
                "true or v1: PROXYV2 needs Octavia API 2.22, this cloud offers {}",
                features.version_text()
            ),
        ));
    }
    if cx.ovn {
        for (key, set) in beyond_l4 {
            if set {
                f.errs.push(Invalid::unsupported(
                    key,
                    cx.written(key),
                    "nothing: the ovn provider balances TCP, UDP and SCTP only (no HTTP, TLS or PROXY)",
                ));
            }
        }
        if let Some(m) = a.lb_method.filter(|m| *m != LbMethod::SourceIpPort) {
            f.errs.push(Invalid::unsupported(
                ann::LB_METHOD,
                m.as_api(),
                "SOURCE_IP_PORT: the only algorithm of the ovn provider",
            ));
        }
    }
}

fn port_text(p: &ServicePort) -> String {
    format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP"))
}
