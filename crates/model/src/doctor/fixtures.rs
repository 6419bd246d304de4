//! Facts and configuration the doctor tests start from: a healthy cloud, and small builders
//! to break one thing at a time.

use super::*;
use crate::config::{CloudConfig, EndpointInterface};

pub(super) const BASE_CONF: &str =
    "[Global]\nauth-url = https://keystone.example.com/v3\nuser-id = u1\npassword = pw\n\
                         project-id = p1\nregion = RegionOne\n";

pub(super) fn conf(extra: &str) -> CloudConfig {
    CloudConfig::parse(&format!("{BASE_CONF}{extra}"))
        .unwrap()
        .0
}

pub(super) fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        interface: EndpointInterface::Public,
        region: Some("RegionOne".into()),
        url: url.into(),
    }
}

pub(super) fn service(t: &str, name: &str, url: &str) -> CatalogService {
    CatalogService {
        service_type: t.into(),
        name: name.into(),
        endpoints: vec![endpoint(url)],
    }
}

pub(super) fn subnet(id: &str, network: &str, free: Option<u64>) -> SubnetFacts {
    SubnetFacts {
        id: id.into(),
        name: format!("{id}-name"),
        network_id: network.into(),
        cidr: "10.0.0.0/24".into(),
        free_ips: free,
    }
}

pub(super) fn external(id: &str, free: Option<u64>) -> NetworkFacts {
    NetworkFacts {
        id: id.into(),
        name: format!("{id}-name"),
        external: true,
        subnets: vec![subnet(&format!("{id}-subnet"), id, free)],
        free_ips: free,
    }
}

pub(super) fn quota(resource: &str, limit: i64, used: u64) -> QuotaFacts {
    QuotaFacts {
        resource: resource.into(),
        limit,
        used: Some(used),
    }
}

/// A cloud where everything is in order: Octavia 2.27 with amphora, one external network.
pub(super) fn healthy() -> Facts {
    Facts {
        auth: Probe::Got(AuthFacts {
            user_id: "u1".into(),
            user_name: Some("k8s".into()),
            project_id: Some("p1".into()),
            project_name: Some("demo".into()),
            roles: vec!["member".into(), "load-balancer_member".into()],
            catalog: vec![
                service("identity", "keystone", "http://127.0.0.1:5000/v3"),
                service("network", "neutron", "http://127.0.0.1:9696"),
                service("load-balancer", "octavia", "http://127.0.0.1:9876"),
            ],
        }),
        network_extensions: Probe::Got(
            [
                "security-group",
                "standard-attr-tag",
                "router",
                "external-net",
            ]
            .map(String::from)
            .to_vec(),
        ),
        octavia_version: Probe::Got((2, 27)),
        providers: Probe::Got(vec![ProviderFacts {
            name: "amphora".into(),
            description: "Amphora".into(),
        }]),
        flavors: Probe::Got(vec![FlavorFacts {
            id: "f1".into(),
            name: "small".into(),
            enabled: true,
        }]),
        availability_zones: Probe::Got(vec![AvailabilityZoneFacts {
            name: "az1".into(),
            enabled: true,
        }]),
        project_subnets: Probe::Got(vec![subnet("nodes", "private", Some(200))]),
        external_networks: Probe::Got(vec![external("public", Some(100))]),
        lb_quotas: Probe::Got(vec![
            quota("load_balancer", 10, 1),
            quota("listener", -1, 3),
        ]),
        network_quotas: Probe::Got(vec![quota("floatingip", 50, 2), quota("port", 500, 10)]),
        ..Facts::default()
    }
}

pub(super) fn statuses(report: &Report, title: &str) -> Vec<Status> {
    report
        .checks
        .iter()
        .filter(|c| c.title == title)
        .map(|c| c.status)
        .collect()
}

pub(super) fn only_failure(report: &Report) -> &Check {
    let fails: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .collect();
    assert_eq!(fails.len(), 1, "{}", shown(report));
    assert!(!report.would_work);
    fails[0]
}

/// The checks one a line (`✓ title evidence`) and the summary, for assertions on what a
/// report says and for failure messages; the layout operators see is the CLI's.
pub(super) fn shown(report: &Report) -> String {
    let lines = report
        .checks
        .iter()
        .map(|c| [c.status.mark(), c.title.as_str(), c.evidence.as_str()].join(" "));
    lines
        .chain(std::iter::once(report.summary.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
