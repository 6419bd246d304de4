//! Octavia details: API version, provider (and its algorithms), availability zones
//! and flavors, each against what cloud.conf asks for.

use super::*;

pub(super) fn check_octavia_details(
    config: &CloudConfig,
    facts: &Facts,
    generation: LbaasGeneration,
    r: &mut Builder,
) {
    if generation != LbaasGeneration::Octavia {
        return;
    }
    let lb = &config.load_balancer;
    let version = match &facts.octavia_version {
        Probe::Got(v) => *v,
        Probe::Failed(e) => {
            r.fail(
                "Octavia API",
                format!("the load-balancer endpoint failed: {}", e.message),
                "check that the load-balancer endpoint in the catalog is reachable from the controller",
            );
            return;
        }
        Probe::Skipped => return,
    };
    let f = CloudFeatures::octavia(
        version.0,
        version.1,
        effective_provider(config, facts).as_deref(),
    );
    let missing: Vec<&str> = [
        (!f.timeouts).then_some("timeouts (2.1)"),
        (!f.tags).then_some("tags (2.5)"),
        (!f.flavors).then_some("flavors (2.6)"),
        (!f.allowed_cidrs).then_some("allowed_cidrs (2.12)"),
        (!f.availability_zones).then_some("availability zones (2.14)"),
        (!f.proxy_v2).then_some("PROXYV2 (2.22)"),
        (!f.sctp).then_some("SCTP (2.23)"),
        (!f.additional_vips).then_some("additional VIPs/dual-stack (2.26)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    r.ok(
        "Octavia API version",
        if missing.is_empty() {
            format!(
                "{} (every optional feature the controller uses)",
                f.version_text()
            )
        } else {
            format!("{}; lacks {}", f.version_text(), missing.join(", "))
        },
    );
    if !f.allowed_cidrs {
        if lb.manage_security_groups {
            r.warn(
                "source ranges",
                format!("API {} < 2.12 has no listener allowed_cidrs: loadBalancerSourceRanges are enforced through the nodes' security groups", f.version_text()),
                "nothing to do; upgrade Octavia to enforce them on the load balancer itself",
            );
        } else {
            r.warn(
                "source ranges",
                format!("API {} < 2.12 has no listener allowed_cidrs: loadBalancerSourceRanges cannot be enforced (each such Service gets a Warning Event)", f.version_text()),
                "set [LoadBalancer] manage-security-groups = true to enforce them with security groups",
            );
        }
    }
    if !f.tags {
        r.warn(
            "tags",
            format!(
                "API {} < 2.5 has no tags: load balancers are recognised by name only",
                f.version_text()
            ),
            "do not reuse cluster names within one project",
        );
    }
    if let Some(az) = &lb.availability_zone {
        if !f.availability_zones {
            r.warn(
                "availability-zone",
                format!("availability-zone = {az} but API {} < 2.14 has no availability zones: it is not sent", f.version_text()),
                "remove availability-zone, or upgrade Octavia",
            );
        } else if let Some(zones) = facts.availability_zones.got() {
            match zones.iter().find(|z| &z.name == az) {
                Some(z) if z.enabled => {
                    r.ok("availability-zone", format!("{az} exists and is enabled"))
                }
                Some(_) => r.fail(
                    "availability-zone",
                    format!("availability zone {az} is disabled"),
                    "pick an enabled zone: openstack loadbalancer availabilityzone list",
                ),
                None => r.fail(
                    "availability-zone",
                    format!(
                        "availability zone {az} does not exist; the cloud has: {}",
                        list_or_none(zones.iter().map(|z| z.name.as_str()))
                    ),
                    "set availability-zone to one of the listed zones or remove it",
                ),
            }
        }
    }

    match &facts.providers {
        Probe::Got(providers) => {
            let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            match &lb.lb_provider {
                Some(wanted) if !names.iter().any(|n| n.eq_ignore_ascii_case(wanted)) => r.fail(
                    "provider",
                    format!("lb-provider = {wanted} is not offered; the cloud has: {}", list_or_none(names.iter().copied())),
                    "set [LoadBalancer] lb-provider to one of the offered providers, or remove it for the cloud's default",
                ),
                Some(wanted) => r.ok("provider", format!("{wanted} (offered: {})", names.join(", "))),
                None => r.ok("provider", format!("cloud default (offered: {})", list_or_none(names.iter().copied()))),
            }
        }
        Probe::Failed(e) => r.warn(
            "provider",
            format!("cannot list providers: {}", e.message),
            "nothing to do unless lb-provider is set; the cloud's policy hides the provider list",
        ),
        Probe::Skipped => {}
    }
    if f.provider_refuses_lb_method(lb.lb_method) {
        let offered: Vec<&str> = facts
            .providers
            .got()
            .map(|list| list.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        let ovn = offered.iter().find(|n| n.eq_ignore_ascii_case("ovn"));
        let which = match &lb.lb_provider {
            Some(p) => format!("lb-provider = {p}"),
            None => "the cloud's default provider (amphora unless lb-provider says otherwise)"
                .to_string(),
        };
        r.fail(
            "lb-method",
            format!(
                "[LoadBalancer] lb-method = {} but {which} refuses it (Octavia: \"Amphora provider does not support {} algorithm.\", 501): every Service without a lb-method annotation would be refused",
                lb.lb_method.as_api(),
                lb.lb_method.as_api()
            ),
            match ovn {
                Some(o) => format!("set [LoadBalancer] lb-method to ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP, or lb-provider = {o} (offered here), which balances by SOURCE_IP_PORT"),
                None => "set [LoadBalancer] lb-method to ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP".to_string(),
            },
        );
    }
    if f.is_ovn() && lb.lb_method != LbMethod::SourceIpPort {
        r.warn(
            "lb-method",
            format!("the ovn provider only balances by SOURCE_IP_PORT; lb-method = {} cannot be honoured", lb.lb_method.as_api()),
            "set [LoadBalancer] lb-method = SOURCE_IP_PORT",
        );
    }

    if let Some(flavor) = &lb.flavor_id {
        if !f.flavors {
            r.warn(
                "flavor",
                format!(
                    "flavor-id = {flavor} but API {} < 2.6 has no flavors: it is not sent",
                    f.version_text()
                ),
                "remove flavor-id, or upgrade Octavia",
            );
        } else {
            match &facts.flavors {
                Probe::Got(flavors) => match flavors.iter().find(|x| &x.id == flavor || &x.name == flavor) {
                    Some(x) if x.enabled => r.ok("flavor", format!("{} ({}) exists and is enabled", x.name, x.id)),
                    Some(x) => r.fail(
                        "flavor",
                        format!("flavor {} ({}) is disabled: Octavia rejects load balancers with it", x.name, x.id),
                        "pick an enabled flavor: openstack loadbalancer flavor list",
                    ),
                    None => r.fail(
                        "flavor",
                        format!(
                            "flavor-id = {flavor} not found: Octavia rejects load balancers with it; flavors: {}",
                            list_or_none(flavors.iter().map(|x| x.name.as_str()))
                        ),
                        "set [LoadBalancer] flavor-id to the id of a listed flavor, or remove it",
                    ),
                },
                Probe::Failed(e) => r.warn(
                    "flavor",
                    format!("cannot list flavors to verify flavor-id = {flavor}: {}", e.message),
                    "verify with: openstack loadbalancer flavor show <id>",
                ),
                Probe::Skipped => {}
            }
        }
    } else if let Some(flavors) = facts.flavors.got() {
        r.ok(
            "flavor",
            format!(
                "none configured (cloud default); available: {}",
                list_or_none(
                    flavors
                        .iter()
                        .filter(|x| x.enabled)
                        .map(|x| x.name.as_str())
                )
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn octavia_down_fails() {
        let mut facts = healthy();
        facts.octavia_version = Probe::failed(ProbeErrorKind::Server, "503 Service Unavailable");
        assert_eq!(
            only_failure(&evaluate(&conf(""), &facts)).title,
            "Octavia API"
        );
    }

    #[test]
    fn old_octavia_warns_about_what_it_cannot_honour() {
        let mut facts = healthy();
        facts.octavia_version = Probe::Got((2, 10));
        let report = evaluate(&conf("[LoadBalancer]\navailability-zone = az1\n"), &facts);
        assert!(report.would_work, "{}", shown(&report));
        assert_eq!(statuses(&report, "availability-zone"), vec![Status::Warn]);
        let ranges: Vec<&Check> = report
            .checks
            .iter()
            .filter(|c| c.title == "source ranges")
            .collect();
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("manage-security-groups = true"));
        assert!(report.checks.iter().any(|c| c
            .evidence
            .contains("lacks allowed_cidrs (2.12), availability zones (2.14)")));

        let report = evaluate(
            &conf("[LoadBalancer]\nmanage-security-groups = true\n"),
            &facts,
        );
        let ranges = report
            .checks
            .iter()
            .find(|c| c.title == "source ranges")
            .unwrap();
        assert!(ranges
            .evidence
            .contains("enforced through the nodes' security groups"));

        facts.octavia_version = Probe::Got((2, 4));
        let report = evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &facts);
        assert_eq!(statuses(&report, "tags"), vec![Status::Warn]);
        assert_eq!(statuses(&report, "flavor"), vec![Status::Warn]);
    }

    #[test]
    fn availability_zone_must_exist_on_new_apis() {
        let report = evaluate(
            &conf("[LoadBalancer]\navailability-zone = az9\n"),
            &healthy(),
        );
        let fail = only_failure(&report);
        assert!(
            fail.evidence
                .contains("az9 does not exist; the cloud has: az1"),
            "{fail:?}"
        );
        assert_eq!(
            statuses(
                &evaluate(
                    &conf("[LoadBalancer]\navailability-zone = az1\n"),
                    &healthy()
                ),
                "availability-zone"
            ),
            vec![Status::Ok]
        );
    }

    #[test]
    fn ovn_with_round_robin_warns() {
        let mut facts = healthy();
        facts.providers = Probe::Got(vec![
            ProviderFacts {
                name: "amphora".into(),
                description: String::new(),
            },
            ProviderFacts {
                name: "ovn".into(),
                description: String::new(),
            },
        ]);
        let report = evaluate(&conf("[LoadBalancer]\nlb-provider = ovn\n"), &facts);
        let check = report
            .checks
            .iter()
            .find(|c| c.title == "lb-method")
            .unwrap();
        assert_eq!(check.status, Status::Warn);
        assert!(check.evidence.contains("ROUND_ROBIN"));
        let report = evaluate(
            &conf("[LoadBalancer]\nlb-provider = ovn\nlb-method = SOURCE_IP_PORT\n"),
            &facts,
        );
        assert!(statuses(&report, "lb-method").is_empty());
        // The only provider is the default one.
        facts.providers = Probe::Got(vec![ProviderFacts {
            name: "OVN".into(),
            description: String::new(),
        }]);
        assert_eq!(
            statuses(&evaluate(&conf(""), &facts), "lb-method"),
            vec![Status::Warn]
        );
    }

    #[test]
    fn source_ip_port_with_amphora_fails() {
        let mut facts = healthy();
        facts.providers = Probe::Got(vec![
            ProviderFacts {
                name: "amphora".into(),
                description: String::new(),
            },
            ProviderFacts {
                name: "octavia".into(),
                description: String::new(),
            },
        ]);
        // The cloud's default (unknown here: two providers) and an explicit amphora.
        for text in [
            "[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n",
            "[LoadBalancer]\nlb-method = SOURCE_IP_PORT\nlb-provider = amphora\n",
        ] {
            let report = evaluate(&conf(text), &facts);
            let check = report
                .checks
                .iter()
                .find(|c| c.title == "lb-method")
                .unwrap_or_else(|| panic!("no lb-method check for {text:?}"));
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert!(
                check.evidence.contains("lb-method = SOURCE_IP_PORT")
                    && check
                        .evidence
                        .contains("Amphora provider does not support SOURCE_IP_PORT"),
                "{check:?}"
            );
            let fix = check.fix.as_deref().unwrap_or_default();
            assert!(fix.contains("ROUND_ROBIN"), "{fix}");
        }
        // With ovn offered the fix names it; with lb-provider = ovn nothing is wrong.
        facts.providers = Probe::Got(vec![
            ProviderFacts {
                name: "amphora".into(),
                description: String::new(),
            },
            ProviderFacts {
                name: "ovn".into(),
                description: String::new(),
            },
        ]);
        let report = evaluate(
            &conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n"),
            &facts,
        );
        let check = report
            .checks
            .iter()
            .find(|c| c.title == "lb-method")
            .unwrap();
        assert!(
            check
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("lb-provider = ovn"),
            "{check:?}"
        );
        assert!(statuses(
            &evaluate(
                &conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\nlb-provider = ovn\n"),
                &facts
            ),
            "lb-method"
        )
        .is_empty());
        // Other algorithms are fine with amphora.
        assert!(statuses(
            &evaluate(&conf("[LoadBalancer]\nlb-method = SOURCE_IP\n"), &facts),
            "lb-method"
        )
        .is_empty());
    }

    #[test]
    fn unknown_provider_fails() {
        let report = evaluate(&conf("[LoadBalancer]\nlb-provider = f5\n"), &healthy());
        let fail = only_failure(&report);
        assert!(
            fail.evidence
                .contains("f5 is not offered; the cloud has: amphora"),
            "{fail:?}"
        );
    }

    #[test]
    fn flavor_checks() {
        assert_eq!(
            statuses(
                &evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &healthy()),
                "flavor"
            ),
            vec![Status::Ok]
        );
        let report = evaluate(&conf("[LoadBalancer]\nflavor-id = nope\n"), &healthy());
        assert!(only_failure(&report)
            .evidence
            .contains("flavor-id = nope not found"));
        let mut facts = healthy();
        facts.flavors = Probe::Got(vec![FlavorFacts {
            id: "f1".into(),
            name: "small".into(),
            enabled: false,
        }]);
        assert!(
            only_failure(&evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &facts))
                .evidence
                .contains("disabled")
        );
        facts.flavors = Probe::failed(ProbeErrorKind::Forbidden, "policy");
        assert_eq!(
            statuses(
                &evaluate(&conf("[LoadBalancer]\nflavor-id = f1\n"), &facts),
                "flavor"
            ),
            vec![Status::Warn]
        );
    }
}
