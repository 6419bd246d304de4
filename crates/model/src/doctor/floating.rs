//! Floating IPs (SPEC §4 "Floating IP"): the floating network and subnet that new FIPs
//! come from, or why an internal-only setup needs none.

use super::*;

pub(super) fn check_floating(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    let lb = &config.load_balancer;
    let p = &lb.placement;
    const TITLE: &str = "floating network";
    let externals = facts.external_networks.got();
    let external_list = || {
        externals
            .map(|nets| list_or_none(nets.iter().map(|n| n.name.as_str())))
            .unwrap_or_else(|| "unknown".to_string())
    };
    if lb.internal_lb && p.floating_network_id.is_none() {
        r.ok(
            TITLE,
            "internal-lb = true: Services get no floating IP unless they ask for one",
        );
        return;
    }
    let network = if let Some(id) = &p.floating_network_id {
        match &facts.floating_network {
            Probe::Got(n) => n.clone(),
            Probe::Failed(e) => {
                let fix = format!("external networks: {}", external_list());
                lookup_failure(r, TITLE, "floating-network-id", id, e, &fix);
                return;
            }
            Probe::Skipped => return,
        }
    } else {
        match &facts.external_networks {
            Probe::Got(nets) if nets.len() == 1 => nets[0].clone(),
            Probe::Got(nets) if nets.is_empty() => {
                r.fail(
                    TITLE,
                    "floating-network-id is not set and the cloud has no external network",
                    "ask the cloud operator for an external (provider) network, or set internal-lb = true for VIP-only Services",
                );
                return;
            }
            Probe::Got(nets) => {
                r.fail(
                    TITLE,
                    format!(
                        "floating-network-id is not set and there are {} external networks: {}",
                        nets.len(),
                        nets.iter()
                            .map(|n| format!("{} ({})", n.name, n.id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "set [LoadBalancer] floating-network-id to one of them",
                );
                return;
            }
            Probe::Failed(e) => {
                r.fail(
                    TITLE,
                    format!("floating-network-id is not set and external networks could not be listed: {}", e.message),
                    "set [LoadBalancer] floating-network-id",
                );
                return;
            }
            Probe::Skipped => return,
        }
    };
    let how = if p.floating_network_id.is_some() {
        "floating-network-id"
    } else {
        "the only external network"
    };
    if !network.external {
        r.fail(
            TITLE,
            format!("{how} {} ({}) is not external (router:external is false): floating IPs cannot come from it", network.name, network.id),
            format!("set floating-network-id to an external network: {}", external_list()),
        );
        return;
    }
    match network.free_ips {
        Some(0) => r.fail(
            TITLE,
            format!("{how} {} ({}) has no free addresses", network.name, network.id),
            "release unused floating IPs (openstack floating ip list --status DOWN) or ask for a bigger range",
        ),
        Some(n) => r.ok(TITLE, format!("{how} {} ({}), {n} free address(es)", network.name, network.id)),
        None => r.ok(TITLE, format!("{how} {} ({}); free addresses unknown (needs admin)", network.name, network.id)),
    }
    if let Some(id) = &p.floating_subnet_id {
        match &facts.floating_subnet {
            Probe::Got(s) if s.network_id != network.id => r.fail(
                "floating subnet",
                format!(
                    "floating-subnet-id {id} is on network {}, not on the floating network {}",
                    s.network_id, network.id
                ),
                "use a subnet of the floating network",
            ),
            Probe::Got(s) if s.free_ips == Some(0) => r.fail(
                "floating subnet",
                format!("floating-subnet-id: {}", subnet_text(s)),
                "release floating IPs or pick another floating subnet",
            ),
            Probe::Got(s) => r.ok(
                "floating subnet",
                format!("floating-subnet-id: {}", subnet_text(s)),
            ),
            Probe::Failed(e) => lookup_failure(
                r,
                "floating subnet",
                "floating-subnet-id",
                id,
                e,
                "openstack subnet list --network <floating network>",
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
    fn floating_network_problems() {
        let mut none = healthy();
        none.external_networks = Probe::Got(vec![]);
        let fail = only_failure(&evaluate(&conf(""), &none)).clone();
        assert!(fail.evidence.contains("no external network"), "{fail:?}");
        assert!(fail.fix.as_deref().unwrap().contains("internal-lb"));
        let report = evaluate(&conf("[LoadBalancer]\ninternal-lb = true\n"), &none);
        assert!(
            report.would_work,
            "internal-only Services need no floating network"
        );

        let mut two = healthy();
        two.external_networks = Probe::Got(vec![external("a", Some(5)), external("b", Some(5))]);
        let fail = only_failure(&evaluate(&conf(""), &two)).clone();
        assert!(fail.evidence.contains("2 external networks"), "{fail:?}");

        let mut missing = healthy();
        missing.floating_network =
            Probe::failed(ProbeErrorKind::NotFound, "Network x could not be found.");
        let fail = only_failure(&evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = x\n"),
            &missing,
        ))
        .clone();
        assert!(
            fail.evidence
                .contains("floating-network-id = x does not exist"),
            "{fail:?}"
        );
        assert!(
            fail.fix.as_deref().unwrap().contains("public-name"),
            "lists the external networks: {fail:?}"
        );

        let mut internal = healthy();
        internal.floating_network = Probe::Got(NetworkFacts {
            external: false,
            ..external("priv", Some(5))
        });
        let fail = only_failure(&evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = priv\n"),
            &internal,
        ))
        .clone();
        assert!(fail.evidence.contains("not external"), "{fail:?}");

        let mut full = healthy();
        full.floating_network = Probe::Got(external("public", Some(0)));
        let fail = only_failure(&evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = public\n"),
            &full,
        ))
        .clone();
        assert!(fail.evidence.contains("no free addresses"), "{fail:?}");

        let mut unknown = healthy();
        unknown.floating_network = Probe::Got(external("public", None));
        let report = evaluate(
            &conf("[LoadBalancer]\nfloating-network-id = public\n"),
            &unknown,
        );
        assert!(report.would_work);
    }

    #[test]
    fn floating_subnet_must_belong_to_the_floating_network() {
        let mut facts = healthy();
        facts.floating_network = Probe::Got(external("public", Some(9)));
        facts.floating_subnet = Probe::Got(subnet("fs", "elsewhere", Some(3)));
        let cfg = conf("[LoadBalancer]\nfloating-network-id = public\nfloating-subnet-id = fs\n");
        assert_eq!(
            only_failure(&evaluate(&cfg, &facts)).title,
            "floating subnet"
        );
        facts.floating_subnet = Probe::Got(subnet("fs", "public", Some(3)));
        assert!(evaluate(&cfg, &facts).would_work);
    }
}
