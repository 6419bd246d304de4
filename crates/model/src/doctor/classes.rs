//! Load-balancer classes (`[LoadBalancerClass "name"]`): each id a class names, looked up.

use super::*;

/// A broken class only breaks the Services that ask for it, so its problems are warnings.
pub(super) fn check_classes(config: &CloudConfig, facts: &Facts, r: &mut Builder) {
    for class in &config.classes {
        let title = format!("class {}", class.name);
        let lookups: Vec<&ClassLookup> = facts
            .class_lookups
            .iter()
            .filter(|l| l.class == class.name)
            .collect();
        let mut good = Vec::new();
        let mut problems = Vec::new();
        for l in &lookups {
            match &l.found {
                Probe::Got((name, external)) => {
                    if l.key == "floating-network-id" && *external == Some(false) {
                        problems.push(format!(
                            "{} = {} ({name}) is not an external network",
                            l.key, l.id
                        ));
                    } else {
                        good.push(format!("{} {name}", l.key));
                    }
                }
                Probe::Failed(e) if e.kind == ProbeErrorKind::NotFound => {
                    problems.push(format!("{} = {} does not exist", l.key, l.id));
                }
                Probe::Failed(e) => problems.push(format!("{} = {}: {}", l.key, l.id, e.message)),
                Probe::Skipped => {}
            }
        }
        if problems.is_empty() {
            let what = if good.is_empty() {
                "no ids to check".to_string()
            } else {
                good.join(", ")
            };
            r.ok(&title, what);
        } else {
            r.warn(
                &title,
                format!(
                    "{}: Services with loadbalancer.openstack.org/class: {} will fail",
                    problems.join("; "),
                    class.name
                ),
                format!("fix [LoadBalancerClass \"{}\"] in cloud.conf", class.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn classes_are_checked_as_warnings() {
        let cfg = conf("[LoadBalancerClass \"dmz\"]\nfloating-network-id = pub\nsubnet-id = gone\n[LoadBalancerClass \"ok\"]\nsubnet-id = s\n");
        let lookup = |class: &str, key: &str, id: &str, found| ClassLookup {
            class: class.into(),
            key: key.into(),
            id: id.into(),
            found,
        };
        let facts = Facts {
            class_lookups: vec![
                lookup(
                    "dmz",
                    "floating-network-id",
                    "pub",
                    Probe::Got(("private".to_string(), Some(false))),
                ),
                lookup(
                    "dmz",
                    "subnet-id",
                    "gone",
                    Probe::failed(ProbeErrorKind::NotFound, "404"),
                ),
                lookup(
                    "ok",
                    "subnet-id",
                    "s",
                    Probe::Got(("nodes".to_string(), None)),
                ),
            ],
            ..healthy()
        };
        let report = evaluate(&cfg, &facts);
        assert!(
            report.would_work,
            "a broken class breaks only its own Services"
        );
        let dmz = report
            .checks
            .iter()
            .find(|c| c.title == "class dmz")
            .unwrap();
        assert_eq!(dmz.status, Status::Warn);
        assert!(
            dmz.evidence
                .contains("floating-network-id = pub (private) is not an external network"),
            "{dmz:?}"
        );
        assert!(
            dmz.evidence.contains("subnet-id = gone does not exist"),
            "{dmz:?}"
        );
        assert_eq!(statuses(&report, "class ok"), vec![Status::Ok]);
    }
}
