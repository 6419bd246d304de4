//! Quotas a new LoadBalancer Service consumes, per generation.

use super::*;

/// Quotas that a new LoadBalancer Service consumes, per generation.
pub(super) fn check_quotas(
    config: &CloudConfig,
    facts: &Facts,
    generation: LbaasGeneration,
    r: &mut Builder,
) {
    let lb = &config.load_balancer;
    let mut lines = Vec::new();
    let mut evaluate_one = |q: &QuotaFacts, r: &mut Builder, what: &str| {
        let Some(used) = q.used else { return };
        if q.limit < 0 {
            lines.push(format!("{what} {used}/unlimited"));
            return;
        }
        let limit = q.limit as u64;
        lines.push(format!("{what} {used}/{limit}"));
        if used >= limit {
            r.fail(
                "quota",
                format!("{what} quota exhausted: {used} of {limit} used"),
                format!(
                    "delete unused {what}s or ask the cloud operator to raise the {} quota",
                    q.resource
                ),
            );
        } else if limit - used <= (limit / 10).max(1) {
            r.warn(
                "quota",
                format!("{what} quota nearly exhausted: {used} of {limit} used"),
                format!(
                    "ask the cloud operator to raise the {} quota before adding Services",
                    q.resource
                ),
            );
        }
    };
    match &facts.lb_quotas {
        Probe::Got(quotas) => {
            for q in quotas {
                let what = match q.resource.as_str() {
                    "load_balancer" | "loadbalancer" | "vip" => "load balancer",
                    "listener" => "listener",
                    "pool" => "pool",
                    "member" => "member",
                    "health_monitor" | "healthmonitor" => {
                        if !lb.create_monitor {
                            continue;
                        }
                        "health monitor"
                    }
                    _ => continue,
                };
                evaluate_one(q, r, what);
            }
        }
        Probe::Failed(e) => r.warn(
            "quota",
            format!(
                "cannot read the {} quota: {}",
                generation_name(generation),
                e.message
            ),
            "check with: openstack loadbalancer quota show <project>",
        ),
        Probe::Skipped => {}
    }
    match &facts.network_quotas {
        Probe::Got(quotas) => {
            for q in quotas {
                let what = match q.resource.as_str() {
                    "floatingip" => {
                        if lb.internal_lb {
                            continue;
                        }
                        "floating IP"
                    }
                    "port" => "port",
                    "security_group" | "security_group_rule" if !lb.manage_security_groups => {
                        continue
                    }
                    "security_group" => "security group",
                    "security_group_rule" => "security group rule",
                    // Neutron LBaaS counts its objects in the network quota.
                    "loadbalancer" | "listener" | "pool" | "vip"
                        if generation != LbaasGeneration::Octavia =>
                    {
                        "load balancer"
                    }
                    _ => continue,
                };
                evaluate_one(q, r, what);
            }
        }
        Probe::Failed(e) => r.warn(
            "quota",
            format!("cannot read the network quota: {}", e.message),
            "check with: openstack quota show --usage",
        ),
        Probe::Skipped => {}
    }
    if !lines.is_empty() {
        r.ok("quota", lines.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn quotas() {
        let mut facts = healthy();
        facts.lb_quotas = Probe::Got(vec![quota("load_balancer", 3, 3)]);
        let fail = only_failure(&evaluate(&conf(""), &facts)).clone();
        assert!(
            fail.evidence
                .contains("load balancer quota exhausted: 3 of 3"),
            "{fail:?}"
        );

        let mut facts = healthy();
        facts.network_quotas = Probe::Got(vec![quota("floatingip", 50, 49)]);
        let report = evaluate(&conf(""), &facts);
        assert!(report.would_work);
        assert!(report.checks.iter().any(|c| c.status == Status::Warn
            && c.evidence.contains("floating IP quota nearly exhausted")));

        let mut facts = healthy();
        facts.network_quotas = Probe::Got(vec![quota("floatingip", 0, 0)]);
        assert!(!evaluate(&conf(""), &facts).would_work);
        assert!(
            evaluate(&conf("[LoadBalancer]\ninternal-lb = true\n"), &facts).would_work,
            "internal LBs need no FIP"
        );

        let mut facts = healthy();
        facts.network_quotas = Probe::Got(vec![quota("security_group", 10, 10)]);
        assert!(
            evaluate(&conf(""), &facts).would_work,
            "security groups only count when managed"
        );
        assert!(
            !evaluate(
                &conf("[LoadBalancer]\nmanage-security-groups = true\n"),
                &facts
            )
            .would_work
        );

        let mut facts = healthy();
        facts.lb_quotas = Probe::failed(ProbeErrorKind::Forbidden, "policy does not allow");
        let report = evaluate(&conf(""), &facts);
        assert!(report.would_work);
        assert_eq!(statuses(&report, "quota"), vec![Status::Warn, Status::Ok]);
    }
}
