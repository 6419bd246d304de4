//! The address family (SPEC §4 "Dual-stack"): the Service's first `ipFamilies` entry decides
//! the members' addresses and the VIP; a second one asks for an additional VIP.

use super::members::Family;
use super::service::Ctx;
use super::Findings;
use crate::invalid::Invalid;

pub(super) struct Families {
    /// `spec.ipFamilies` as written.
    pub list: Vec<String>,
    /// The first family (IPv4 when none is written).
    pub first: Family,
}

impl Families {
    /// The first family as Kubernetes spells it.
    pub fn first_name(&self) -> &str {
        self.list.first().map(String::as_str).unwrap_or("IPv4")
    }
}

pub(super) fn decide(cx: &Ctx, f: &mut Findings) -> Families {
    let list: Vec<String> = cx.spec.ip_families.clone().unwrap_or_default();
    let first = match list.first().map(String::as_str) {
        Some("IPv6") => Family::V6,
        _ => Family::V4,
    };
    if first == Family::V6 && cx.config.networking.ipv6_support_disabled {
        f.errs.push(Invalid::unsupported(
            "spec.ipFamilies",
            list.join(","),
            "IPv4: [Networking] ipv6-support-disabled is set",
        ));
    }
    Families { list, first }
}
