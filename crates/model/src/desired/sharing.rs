//! Sharing and ownership (SPEC §4 "Naming and ownership", "Shared LBs"): the load balancer's
//! tags prove whose it is (its name and the cluster's identity) and carry the consent to
//! share it with other namespaces. Without tags that consent cannot be given.

use super::service::Ctx;
use super::Findings;
use crate::annotations as ann;
use crate::invalid::Invalid;
use crate::naming;

pub(super) fn check(cx: &Ctx, f: &mut Findings) {
    if let (Some(shared_with), false) = (&cx.a.shared_with, cx.features.tags) {
        f.errs.push(Invalid::bad_value(
            ann::SHARED_WITH,
            shared_with.join(","),
            "a cloud whose load balancers take tags (Octavia API 2.5 or later); remove the annotation",
        ));
    }
}

/// The load balancer's tags: its name, the cluster's identity, one per namespace it is
/// shared with; none where the cloud has no tags.
pub(super) fn tags(cx: &Ctx, cluster_tag: &str) -> Vec<String> {
    if !cx.features.tags {
        return Vec::new();
    }
    [cx.lb_name.clone(), cluster_tag.to_string()]
        .into_iter()
        .chain(
            cx.a.shared_with
                .iter()
                .flatten()
                .map(|ns| naming::shared_with_tag(ns)),
        )
        .collect()
}
