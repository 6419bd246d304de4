//! VIP placement (SPEC §4): the configured subnet, network and member subnet, or the
//! nodes' subnet the controller discovers.

use super::*;

pub(super) fn check_vip_placement(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    let p = &config.load_balancer.placement;
    const TITLE: &str = "VIP subnet";
    if let Some(id) = &p.subnet_id {
        match &facts.vip_subnet {
            Probe::Got(s) if s.free_ips == Some(0) => r.fail(
                TITLE,
                format!("subnet-id: {}", subnet_text(s)),
                "the VIP subnet is full: free addresses (delete unused ports) or configure another subnet-id",
            ),
            Probe::Got(s) => {
                if let Some(net) = &p.network_id {
                    if &s.network_id != net {
                        r.fail(
                            TITLE,
                            format!("subnet-id {id} is on network {}, not on network-id {net}", s.network_id),
                            "make subnet-id and network-id agree, or set only one of them",
                        );
                        return;
                    }
                }
                r.ok(TITLE, format!("subnet-id: {}", subnet_text(s)));
            }
            Probe::Failed(e) => lookup_failure(r, TITLE, "subnet-id", id, e, "openstack subnet list"),
            Probe::Skipped => {}
        }
    } else if let Some(id) = &p.network_id {
        match &facts.vip_network {
            Probe::Got(n) if n.subnets.is_empty() => r.fail(
                TITLE,
                format!("network-id {} ({id}) has no subnet for a VIP", n.name),
                "create a subnet on it or point network-id/subnet-id at the nodes' network",
            ),
            Probe::Got(n) if n.free_ips == Some(0) => r.fail(
                TITLE,
                format!("network-id {} ({id}) has no free addresses", n.name),
                "free addresses on the network or configure another one",
            ),
            Probe::Got(n) => r.ok(
                TITLE,
                format!(
                    "network-id {} ({id}); subnets: {}",
                    n.name,
                    n.subnets
                        .iter()
                        .map(|s| s.cidr.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Probe::Failed(e) => {
                lookup_failure(r, TITLE, "network-id", id, e, "openstack network list")
            }
            Probe::Skipped => {}
        }
    } else {
        let external: Vec<&str> = facts
            .external_networks
            .got()
            .map(|n| n.iter().map(|n| n.id.as_str()).collect())
            .unwrap_or_default();
        let internal_subnets = facts.project_subnets.got().map(|all| {
            all.iter()
                .filter(|s| !external.contains(&s.network_id.as_str()))
                .cloned()
                .collect::<Vec<_>>()
        });
        let project_subnets = match (&facts.project_subnets, internal_subnets) {
            (_, Some(list)) => Probe::Got(list),
            (other, None) => other.clone(),
        };
        match &project_subnets {
            Probe::Got(subnets) if subnets.is_empty() => r.fail(
                TITLE,
                "subnet-id is not set and the project sees no (non-external) subnet the VIP could be derived from",
                "set [LoadBalancer] subnet-id to the nodes' subnet",
            ),
            Probe::Got(subnets) => r.ok(
                TITLE,
                format!(
                    "not configured: each VIP goes on the subnet of its nodes' ports; visible subnets: {}",
                    subnets.iter().map(|s| format!("{} {}", s.name, s.cidr)).collect::<Vec<_>>().join(", ")
                ),
            ),
            Probe::Failed(e) => r.warn(
                TITLE,
                format!("not configured and the project's subnets could not be listed: {}", e.message),
                "set [LoadBalancer] subnet-id to the nodes' subnet",
            ),
            Probe::Skipped => {}
        }
    }
    if let Some(id) = &p.member_subnet_id {
        match &facts.member_subnet {
            Probe::Got(s) => r.ok(
                "member subnet",
                format!("member-subnet-id: {}", subnet_text(s)),
            ),
            Probe::Failed(e) => lookup_failure(
                r,
                "member subnet",
                "member-subnet-id",
                id,
                e,
                "openstack subnet list",
            ),
            Probe::Skipped => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn vip_subnet_problems() {
        let cfg = conf("[LoadBalancer]\nsubnet-id = s1\n");
        let mut facts = healthy();
        facts.vip_subnet = Probe::failed(ProbeErrorKind::NotFound, "Subnet s1 could not be found.");
        let fail = only_failure(&evaluate(&cfg, &facts)).clone();
        assert!(
            fail.evidence.contains("subnet-id = s1 does not exist"),
            "{fail:?}"
        );
        facts.vip_subnet = Probe::Got(subnet("s1", "net", Some(0)));
        assert!(only_failure(&evaluate(&cfg, &facts))
            .evidence
            .contains("0 free"));
        facts.vip_subnet = Probe::Got(subnet("s1", "net", Some(7)));
        assert!(evaluate(&cfg, &facts).would_work);
        let both = conf("[LoadBalancer]\nsubnet-id = s1\nnetwork-id = other\n");
        assert!(only_failure(&evaluate(&both, &facts))
            .evidence
            .contains("not on network-id other"));

        let mut empty = healthy();
        empty.project_subnets = Probe::Got(vec![]);
        assert_eq!(
            only_failure(&evaluate(&conf(""), &empty)).title,
            "VIP subnet"
        );
        // The external network's subnet is visible to everyone but cannot hold a VIP for nodes.
        empty.project_subnets = Probe::Got(vec![subnet("public-subnet", "public", Some(9))]);
        assert_eq!(
            only_failure(&evaluate(&conf(""), &empty)).title,
            "VIP subnet"
        );

        let net = conf("[LoadBalancer]\nnetwork-id = n1\n");
        let mut facts = healthy();
        facts.vip_network = Probe::Got(NetworkFacts {
            id: "n1".into(),
            name: "nodes".into(),
            ..NetworkFacts::default()
        });
        assert!(only_failure(&evaluate(&net, &facts))
            .evidence
            .contains("has no subnet"));

        let member = conf("[LoadBalancer]\nmember-subnet-id = m1\n");
        let mut facts = healthy();
        facts.member_subnet = Probe::failed(ProbeErrorKind::NotFound, "nope");
        assert_eq!(
            only_failure(&evaluate(&member, &facts)).title,
            "member subnet"
        );
    }
}
