//! Source ranges (SPEC §4 "Source ranges"): `spec.loadBalancerSourceRanges`, else the
//! annotation, become listener `allowed_cidrs` where Octavia has them (API 2.12), else
//! security-group rules when those can enforce them, else a Warning. Ranges of a family the
//! load balancer does not serve are dropped with a Warning; dropping all would open the
//! Service to everyone, so that is an error.

use super::family::Families;
use super::members::Family;
use super::service::Ctx;
use super::Findings;
use crate::annotations::{self as ann, Annotations};
use crate::invalid::{Invalid, Warning, WarningReason};

pub(super) struct SourceRanges {
    /// The ranges of the Service's families; None = open to everyone.
    pub ranges: Option<Vec<ipnet::IpNet>>,
    /// What each listener's `allowed_cidrs` carries.
    pub allowed_cidrs: Vec<String>,
}

pub(super) fn decide(cx: &Ctx, families: &Families, f: &mut Findings) -> SourceRanges {
    let features = cx.features;
    let family = families.first;
    let source_ranges = source_ranges(
        &cx.spec.load_balancer_source_ranges,
        &cx.a,
        &families.list,
        &mut f.errs,
        &mut f.warnings,
    );
    // Only a provider that keeps client addresses (ovn) lets security-group rules enforce
    // source ranges; behind amphora the nodes see the amphora's address.
    let sg_enforces_ranges = cx.lbc.manage_security_groups && cx.ovn;
    let allowed_cidrs: Vec<String> = match &source_ranges {
        // Octavia checks allowed_cidrs against the (first) VIP's family.
        Some(r) if features.allowed_cidrs => {
            let (same, other): (Vec<&ipnet::IpNet>, Vec<&ipnet::IpNet>) =
                r.iter().partition(|n| Family::of(&n.addr()) == family);
            if !other.is_empty() {
                let text = other
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                if same.is_empty() {
                    f.errs.push(Invalid::conflict(
                        "spec.loadBalancerSourceRanges",
                        text,
                        format!(
                            "at least one CIDR of the Service's first IP family ({})",
                            families.first_name()
                        ),
                    ));
                } else {
                    f.warnings.push(Warning::new(WarningReason::SourceRangeIgnored,
                        format!("source ranges {text} are not of the VIP's address family; Octavia cannot apply them"),
                    ));
                }
            }
            same.iter().map(|n| n.to_string()).collect()
        }
        Some(r) => {
            if !sg_enforces_ranges {
                let text = r
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                f.warnings.push(Warning::unsupported(
                    &format!("source ranges {text}"),
                    "Octavia API 2.12 (allowed_cidrs), or manage-security-groups with a provider that keeps client addresses (ovn)",
                    &format!("{} with provider {}", features.version_text(), features.provider.as_deref().unwrap_or("default")),
                ));
            }
            Vec::new()
        }
        None => Vec::new(),
    };
    SourceRanges {
        ranges: source_ranges,
        allowed_cidrs,
    }
}

/// `spec.loadBalancerSourceRanges`, else the annotation; CIDRs of a family the LB does not
/// serve are dropped with a Warning, and if that leaves none it is an error (dropping all
/// would open the Service to everyone).
fn source_ranges(
    spec_ranges: &Option<Vec<String>>,
    a: &Annotations,
    families: &[String],
    errs: &mut Vec<Invalid>,
    warnings: &mut Vec<Warning>,
) -> Option<Vec<ipnet::IpNet>> {
    let ranges = match spec_ranges.as_ref().filter(|r| !r.is_empty()) {
        Some(list) => match ann::parse_cidrs("spec.loadBalancerSourceRanges", &list.join(",")) {
            Ok(r) => r,
            Err(e) => {
                errs.push(e);
                return None;
            }
        },
        None => a.source_ranges.clone()?,
    };
    let v4 = families.is_empty() || families.iter().any(|f| f == "IPv4");
    let v6 = families.iter().any(|f| f == "IPv6");
    let (keep, drop): (Vec<_>, Vec<_>) = ranges
        .into_iter()
        .partition(|n| (n.addr().is_ipv4() && v4) || (n.addr().is_ipv6() && v6));
    if !drop.is_empty() {
        let text = drop
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if keep.is_empty() {
            errs.push(Invalid::conflict(
                "spec.loadBalancerSourceRanges",
                text,
                format!(
                    "CIDRs of the Service's IP families ({})",
                    families.join(",")
                ),
            ));
            return None;
        }
        warnings.push(Warning::new(
            WarningReason::SourceRangeIgnored,
            format!("source ranges {text} do not match the Service's IP families and are ignored"),
        ));
    }
    let mut keep = keep;
    keep.sort();
    keep.dedup();
    Some(keep)
}
