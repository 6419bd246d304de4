//! Cloud services: the catalog, the endpoints of the configured interface and region,
//! Neutron, and the LBaaS generation the controller will use (SPEC §1.2).

use super::*;

fn interface_name(i: EndpointInterface) -> &'static str {
    match i {
        EndpointInterface::Public => "public",
        EndpointInterface::Internal => "internal",
        EndpointInterface::Admin => "admin",
    }
}

fn pick_endpoint<'a>(
    service: &'a CatalogService,
    iface: EndpointInterface,
    region: Option<&str>,
) -> Option<&'a Endpoint> {
    service
        .endpoints
        .iter()
        .find(|e| e.interface == iface && region.is_none_or(|r| e.region.as_deref() == Some(r)))
}

fn describe_endpoints(service: &CatalogService) -> String {
    service
        .endpoints
        .iter()
        .map(|e| {
            format!(
                "{}@{}",
                interface_name(e.interface),
                e.region.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Catalog, endpoints, Neutron and the LBaaS generation. Returns the generation to use.
pub(super) fn check_cloud_services(
    config: &CloudConfig,
    facts: &Facts,
    r: &mut Builder,
) -> Option<LbaasGeneration> {
    let auth = facts.auth.got()?;
    let g = &config.global;
    let iface = g.endpoint_interface;
    let region = g.region.as_deref();
    let types: Vec<&str> = auth
        .catalog
        .iter()
        .map(|s| s.service_type.as_str())
        .collect();
    r.ok(
        "catalog",
        format!("{} service(s): {}", types.len(), types.join(", ")),
    );

    let mut endpoints_ok = true;
    for wanted in ["network", LOAD_BALANCER_SERVICE] {
        let Some(service) = auth.catalog.iter().find(|s| s.service_type == wanted) else {
            if wanted == "network" {
                r.fail(
                    "endpoint network",
                    "the catalog has no network (Neutron) service",
                    "the credentials must belong to a project of a cloud with Neutron; check auth-url and region",
                );
                endpoints_ok = false;
            }
            continue;
        };
        match pick_endpoint(service, iface, region) {
            Some(e) => r.ok(
                &format!("endpoint {wanted}"),
                format!(
                    "{} ({}, region {})",
                    e.url,
                    interface_name(iface),
                    region.unwrap_or("any")
                ),
            ),
            None => {
                r.fail(
                    &format!("endpoint {wanted}"),
                    format!(
                        "no {} endpoint in region {}; the catalog offers: {}",
                        interface_name(iface),
                        region.unwrap_or("any"),
                        describe_endpoints(service)
                    ),
                    "set [Global] os-endpoint-type and region to one of the offered interface@region pairs",
                );
                endpoints_ok = false;
            }
        }
    }
    if !endpoints_ok {
        return None;
    }

    let extensions = match &facts.network_extensions {
        Probe::Got(ext) => {
            r.ok("Neutron", format!("answers; {} extension(s)", ext.len()));
            ext.as_slice()
        }
        Probe::Failed(e) => {
            r.fail(
                "Neutron",
                format!("the network endpoint failed: {}", e.message),
                "check that the network endpoint in the catalog is reachable from the controller (os-endpoint-type may need to be internal)",
            );
            return None;
        }
        Probe::Skipped => return None,
    };

    let has_lb = auth
        .catalog
        .iter()
        .any(|s| s.service_type == LOAD_BALANCER_SERVICE);
    let detected = detect_generation(has_lb, extensions);
    let offered = detect::offered(has_lb, extensions);
    let offered_text = if offered.is_empty() {
        "nothing".to_string()
    } else {
        offered.join(", ")
    };
    let lb = &config.load_balancer;
    let generation = match (lb.lbaas, detected) {
        (_, None) => {
            r.fail(
                "load-balancer service",
                "the cloud offers no load balancing: no load-balancer (Octavia) service in the catalog and no \
                 lbaasv2/lbaas Neutron extension",
                "ask the cloud operator to deploy Octavia; until then LoadBalancer Services stay pending \
                 (they still work inside the cluster as ClusterIP/NodePort)",
            );
            return None;
        }
        (Some(forced), _) => {
            if !detect::offers(forced, has_lb, extensions) {
                r.fail(
                    "load-balancer service",
                    format!("cloud.conf forces {} (use-octavia/lb-version) but the cloud offers {offered_text}", generation_name(forced)),
                    "remove use-octavia and lb-version from [LoadBalancer] to use what the cloud offers",
                );
                return None;
            }
            r.ok(
                "load-balancer service",
                format!(
                    "{} (forced by cloud.conf; the cloud offers {offered_text})",
                    generation_name(forced)
                ),
            );
            forced
        }
        (None, Some(LbaasGeneration::NeutronV1)) if lb.lbaas_exclude_v1 => {
            r.fail(
                "load-balancer service",
                "lb-version = v2 but the cloud offers only Neutron LBaaS v1",
                "set lb-version = v1 (one TCP port per Service) or ask for Octavia",
            );
            return None;
        }
        (None, Some(g)) => {
            r.ok(
                "load-balancer service",
                format!(
                    "{} (detected; the cloud offers {offered_text})",
                    generation_name(g)
                ),
            );
            g
        }
    };
    match generation {
        LbaasGeneration::NeutronV1 => check_v1_limits(config, r),
        LbaasGeneration::NeutronV2 => r.warn(
            "Neutron LBaaS v2",
            "deprecated API without cascade delete, batch member update, tags or timeouts: changes take more \
             calls and ownership is proven by names only",
            "ask the cloud operator for Octavia",
        ),
        LbaasGeneration::Octavia => {}
    }
    Some(generation)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn no_load_balancer_service() {
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.catalog.retain(|s| s.service_type != "load-balancer");
        }
        let report = evaluate(&conf(""), &facts);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "load-balancer service");
        assert!(fail.fix.as_deref().unwrap().contains("Octavia"));
        assert!(statuses(&report, "floating network").is_empty());
    }

    #[test]
    fn neutron_lbaas_generations() {
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.catalog.retain(|s| s.service_type != "load-balancer");
        }
        let mut v2 = facts.clone();
        if let Probe::Got(ext) = &mut v2.network_extensions {
            ext.push("lbaasv2".into());
        }
        let report = evaluate(&conf(""), &v2);
        assert!(report.would_work, "{}", shown(&report));
        assert_eq!(statuses(&report, "Neutron LBaaS v2"), vec![Status::Warn]);
        assert!(statuses(&report, "Octavia API version").is_empty());

        let mut v1 = facts.clone();
        if let Probe::Got(ext) = &mut v1.network_extensions {
            ext.push("lbaas".into());
        }
        let report = evaluate(&conf(""), &v1);
        assert!(report.would_work, "{}", shown(&report));
        assert!(
            report.summary.contains("Neutron LBaaS v1; 4 warning(s)"),
            "{}",
            report.summary
        );
        assert_eq!(statuses(&report, "LBaaS v1"), vec![Status::Warn; 4]);
        let text = shown(&report);
        for said in [
            "exactly one TCP port",
            "SOURCE_IP_PORT is refused",
            "listener timeouts, loadBalancerSourceRanges",
            "manage-security-groups",
            "TCP checks of the NodePort",
            "name and description only",
        ] {
            assert!(text.contains(said), "{said:?} missing from:\n{text}");
        }
        assert_eq!(
            features(&conf(""), &v1).map(|f| f.generation),
            Some(Generation::NeutronV1)
        );

        let report = evaluate(&conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n"), &v1);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "LBaaS v1");
        assert!(
            fail.evidence.contains("lb-method = SOURCE_IP_PORT"),
            "{fail:?}"
        );
        assert!(
            fail.fix.as_deref().unwrap().contains("ROUND_ROBIN"),
            "{fail:?}"
        );
        // The same setting is fine where the cloud has Octavia-style algorithms.
        assert!(evaluate(&conf("[LoadBalancer]\nlb-method = SOURCE_IP_PORT\n"), &v2).would_work);

        let mut net_only = v1.clone();
        net_only.vip_network = Probe::Got(NetworkFacts {
            id: "n1".into(),
            name: "nodes".into(),
            subnets: vec![SubnetFacts {
                id: "s1".into(),
                name: "nodes".into(),
                cidr: "10.0.0.0/24".into(),
                network_id: "n1".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let report = evaluate(&conf("[LoadBalancer]\nnetwork-id = n1\n"), &net_only);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "LBaaS v1");
        assert!(
            fail.fix.as_deref().unwrap().contains("subnet-id"),
            "{fail:?}"
        );

        let report = evaluate(&conf("[LoadBalancer]\nlb-version = v2\n"), &v1);
        assert_eq!(only_failure(&report).title, "load-balancer service");

        let report = evaluate(&conf("[LoadBalancer]\nuse-octavia = true\n"), &v2);
        let fail = only_failure(&report);
        assert!(fail.evidence.contains("forces Octavia"), "{fail:?}");
        assert!(
            fail.evidence.contains("the cloud offers Neutron LBaaS v2"),
            "{fail:?}"
        );
    }

    #[test]
    fn endpoint_interface_and_region_must_exist() {
        let report = evaluate(&conf("os-endpoint-type = internal\n"), &healthy());
        let fails: Vec<&Check> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        assert_eq!(
            fails.len(),
            2,
            "network and load-balancer: {}",
            shown(&report)
        );
        assert!(fails[0]
            .evidence
            .contains("no internal endpoint in region RegionOne"));
        assert!(fails[0].evidence.contains("public@RegionOne"));
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.catalog.retain(|s| s.service_type != "network");
        }
        assert_eq!(
            only_failure(&evaluate(&conf(""), &facts)).title,
            "endpoint network"
        );
    }

    #[test]
    fn neutron_down_fails() {
        let mut facts = healthy();
        facts.network_extensions = Probe::failed(ProbeErrorKind::Unreachable, "connection refused");
        let fail = only_failure(&evaluate(&conf(""), &facts)).clone();
        assert_eq!(fail.title, "Neutron");
        assert!(fail.evidence.contains("connection refused"));
    }
}
