//! Configuration as read: cloud.conf and its warnings, what clouds.yaml filled, the
//! client-side rate limit and the feature switch (SPEC §1.1, §2).

use super::*;

pub(super) fn check_configuration(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    r.ok(
        "cloud.conf",
        format!(
            "parsed; {} warning(s); {} load-balancer class(es)",
            facts.config_warnings.len(),
            config.classes.len()
        ),
    );
    for w in &facts.config_warnings {
        r.warn(
            "cloud.conf",
            w.to_string(),
            "remove or correct the line; unknown keys are ignored by the controller",
        );
    }
    if let Some(c) = &facts.clouds {
        let filled = if c.filled.is_empty() {
            "nothing (cloud.conf set everything)".to_string()
        } else {
            c.filled.join(", ")
        };
        r.ok(
            "clouds.yaml",
            format!("{} cloud {:?} filled: {filled}", c.path, c.cloud),
        );
    }
    let md = &config.metadata;
    if md.api_rate_limit == 0 {
        r.warn(
            "OpenStack API rate limit",
            "[Metadata] api-rate-limit = 0: no client-side limit; a burst of Services sends calls as fast as the cloud answers (429 and Retry-After are still honoured)",
            "set [Metadata] api-rate-limit (requests per second) if the cloud's API is shared or rate-limited",
        );
    } else {
        r.ok(
            "OpenStack API rate limit",
            format!(
                "{} requests/s, bursts of {} ([Metadata] api-rate-limit, api-rate-burst)",
                md.api_rate_limit, md.api_rate_burst
            ),
        );
    }
    if !config.load_balancer.enabled {
        r.fail(
            "load balancers enabled",
            "[LoadBalancer] enabled = false: the controller will create nothing and only record an Event per Service",
            "set [LoadBalancer] enabled = true once the checks below pass",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use crate::config::CloudConfig;

    #[test]
    fn the_rate_limit_in_effect_is_shown_and_switching_it_off_is_a_warning() {
        let report = evaluate(
            &conf("[Metadata]\napi-rate-limit = 20\napi-rate-burst = 60\n"),
            &healthy(),
        );
        let line = report
            .checks
            .iter()
            .find(|c| c.title == "OpenStack API rate limit")
            .unwrap();
        assert_eq!(line.status, Status::Ok);
        assert!(
            line.evidence.contains("20 requests/s, bursts of 60"),
            "{line:?}"
        );
        let report = evaluate(&conf("[Metadata]\napi-rate-limit = 0\n"), &healthy());
        let line = report
            .checks
            .iter()
            .find(|c| c.title == "OpenStack API rate limit")
            .unwrap();
        assert_eq!(line.status, Status::Warn);
        assert!(line.fix.as_deref().unwrap_or("").contains("api-rate-limit"));
        assert!(report.would_work, "no limit is a choice, not a failure");
    }

    #[test]
    fn disabled_feature_switch_fails_but_still_checks_the_cloud() {
        let report = evaluate(&conf("[LoadBalancer]\nenabled = false\n"), &healthy());
        assert_eq!(only_failure(&report).title, "load balancers enabled");
        assert_eq!(statuses(&report, "floating network"), vec![Status::Ok]);
    }

    #[test]
    fn tls_insecure_and_config_warnings_are_warnings() {
        let (cfg, warnings) = CloudConfig::parse(&format!(
            "{BASE_CONF}tls-insecure = true\nauth_url = x\n[BlockStorage]\nbs-version = v3\n"
        ))
        .unwrap();
        let facts = Facts {
            config_warnings: warnings,
            ..healthy()
        };
        let report = evaluate(&cfg, &facts);
        assert!(report.would_work);
        assert_eq!(statuses(&report, "TLS"), vec![Status::Warn]);
        assert_eq!(
            statuses(&report, "cloud.conf"),
            vec![Status::Ok, Status::Warn, Status::Warn]
        );
    }

    #[test]
    fn clouds_yaml_source_is_reported() {
        let facts = Facts {
            clouds: Some(CloudsSource {
                path: "/etc/openstack/clouds.yaml".into(),
                cloud: "prod".into(),
                filled: vec!["password".into()],
            }),
            ..healthy()
        };
        let report = evaluate(&conf(""), &facts);
        let c = report
            .checks
            .iter()
            .find(|c| c.title == "clouds.yaml")
            .unwrap();
        assert!(c
            .evidence
            .contains("/etc/openstack/clouds.yaml cloud \"prod\" filled: password"));
    }
}
