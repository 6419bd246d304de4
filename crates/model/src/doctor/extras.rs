//! Features that depend on Neutron extensions or other services: security groups,
//! floating-IP tags, TLS containers (Barbican).

use super::*;

pub(super) fn check_extras(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    let lb = &config.load_balancer;
    let extensions = facts
        .network_extensions
        .got()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let has = |alias: &str| extensions.iter().any(|e| e == alias);
    if lb.manage_security_groups && !has("security-group") {
        r.fail(
            "security groups",
            "manage-security-groups = true but Neutron has no security-group extension",
            "set [LoadBalancer] manage-security-groups = false",
        );
    }
    if !has("standard-attr-tag") && !has("tag") {
        r.warn(
            "floating IP tags",
            "Neutron has no tag extension: floating IPs the controller creates are recognised by description only",
            "nothing to do; avoid editing the descriptions of floating IPs the controller created",
        );
    }
    if lb.default_tls_container_ref.is_some() && lb.container_store.as_deref() != Some("external") {
        let has_barbican = facts
            .auth
            .got()
            .is_some_and(|a| a.catalog.iter().any(|s| s.service_type == "key-manager"));
        if !has_barbican {
            r.warn(
                "TLS containers",
                "default-tls-container-ref is set but the catalog has no key-manager (Barbican) service",
                "set container-store = external if the reference is not a Barbican container, or remove it",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn extension_dependent_checks() {
        let mut facts = healthy();
        facts.network_extensions = Probe::Got(vec!["router".into()]);
        let report = evaluate(
            &conf("[LoadBalancer]\nmanage-security-groups = true\n"),
            &facts,
        );
        assert_eq!(only_failure(&report).title, "security groups");
        assert_eq!(statuses(&report, "floating IP tags"), vec![Status::Warn]);
        let report = evaluate(
            &conf("[LoadBalancer]\ndefault-tls-container-ref = https://b/x\n"),
            &healthy(),
        );
        assert_eq!(statuses(&report, "TLS containers"), vec![Status::Warn]);
    }
}
