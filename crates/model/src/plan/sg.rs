//! Security-group steps (`manage-security-groups`, SPEC §4): one group per Service with a rule
//! per NodePort and source, carried by the member nodes' ports. Only a group with our name and
//! cluster tag is ever changed or deleted; port updates are guarded by `revision_number`.

use std::collections::BTreeSet;

use super::{Ref, Step};
use crate::naming;
use crate::observed::{Observed, ObservedSecurityGroup};
use crate::spec::LoadBalancerSpec;

/// The observed group if it is ours.
pub(super) fn our_group<'a>(
    name: &str,
    cluster_tag: &str,
    observed: &'a Observed,
) -> Option<&'a ObservedSecurityGroup> {
    observed.security_group.as_ref().filter(|g| {
        g.name == name
            && match naming::cluster_uid_of(&g.tags) {
                Some(uid) => naming::cluster_tag(uid) == cluster_tag,
                None => false,
            }
    })
}

pub(super) fn sg_steps(spec: &LoadBalancerSpec, observed: &Observed, out: &mut Vec<Step>) {
    let name = naming::security_group_name(&spec.name);
    let have = our_group(&name, &spec.cluster_tag, observed);
    match (&spec.security_group, have) {
        (None, None) => {}
        (None, Some(g)) => remove_group(g, observed, out),
        (Some(want), None) => {
            out.push(Step::CreateSecurityGroup {
                name: want.name.clone(),
                description: want.description.clone(),
                tags: want.tags.clone(),
            });
            let group = Ref::Named(want.name.clone());
            for rule in &want.rules {
                out.push(Step::CreateSecurityGroupRule {
                    group: group.clone(),
                    rule: rule.clone(),
                });
            }
            for port in observed
                .node_ports
                .iter()
                .filter(|p| want.port_ids.contains(&p.id))
            {
                let mut sgs: Vec<Ref> = port.security_groups.iter().cloned().map(Ref::Id).collect();
                sgs.push(group.clone());
                out.push(Step::UpdatePortSecurityGroups {
                    port: port.id.clone(),
                    security_groups: sgs,
                    revision_number: port.revision_number,
                });
            }
        }
        (Some(want), Some(g)) => {
            let group = Ref::Id(g.id.clone());
            let wanted: BTreeSet<_> = want.rules.iter().collect();
            let existing: BTreeSet<_> = g.rules.iter().map(|r| &r.rule).collect();
            for r in g.rules.iter().filter(|r| !wanted.contains(&r.rule)) {
                out.push(Step::DeleteSecurityGroupRule { rule: r.id.clone() });
            }
            for rule in want.rules.iter().filter(|r| !existing.contains(r)) {
                out.push(Step::CreateSecurityGroupRule {
                    group: group.clone(),
                    rule: rule.clone(),
                });
            }
            for port in &observed.node_ports {
                let carries = port.security_groups.contains(&g.id);
                let should = want.port_ids.contains(&port.id);
                if carries == should {
                    continue;
                }
                let mut sgs: Vec<Ref> = port
                    .security_groups
                    .iter()
                    .filter(|s| **s != g.id)
                    .cloned()
                    .map(Ref::Id)
                    .collect();
                if should {
                    sgs.push(group.clone());
                }
                out.push(Step::UpdatePortSecurityGroups {
                    port: port.id.clone(),
                    security_groups: sgs,
                    revision_number: port.revision_number,
                });
            }
        }
    }
}

/// Detach our group from every port carrying it, then delete it.
pub(super) fn remove_group(g: &ObservedSecurityGroup, observed: &Observed, out: &mut Vec<Step>) {
    for port in observed
        .node_ports
        .iter()
        .filter(|p| p.security_groups.contains(&g.id))
    {
        out.push(Step::UpdatePortSecurityGroups {
            port: port.id.clone(),
            security_groups: port
                .security_groups
                .iter()
                .filter(|s| **s != g.id)
                .cloned()
                .map(Ref::Id)
                .collect(),
            revision_number: port.revision_number,
        });
    }
    out.push(Step::DeleteSecurityGroup {
        group: g.id.clone(),
    });
}
