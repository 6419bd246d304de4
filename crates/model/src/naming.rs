//! Names, descriptions and tags by which our OpenStack objects are recognised (SPEC §4
//! "Naming and ownership"). OCCM-compatible names make OCCM's load balancers adoptable in
//! place; the cluster-identity tag makes ownership provable when two clusters share a name
//! and a project. Everything that decides "is this ours?" lives here.

/// Prefix of the cluster-identity tag; the rest is the `kube-system` namespace UID.
pub const CLUSTER_TAG_PREFIX: &str = "kube-cluster-uid=";
/// Prefix of every load-balancer name of a Service.
pub const LB_NAME_PREFIX: &str = "kube_service_";
/// A load balancer tag that lets the Services of one namespace (or `*`: all) join it with
/// `load-balancer-id`: written from the owning Service's `shared-with` annotation, or by an
/// operator on a load balancer made outside Kubernetes.
pub const SHARED_WITH_TAG_PREFIX: &str = "kube-shared-with=";

/// `kube_service_<cluster>_<namespace>_<name>` (OCCM's scheme). OCCM cuts names at 255
/// characters, so do we: the same cut keeps adoption working for long names.
pub fn lb_name(cluster: &str, namespace: &str, name: &str) -> String {
    truncate(format!("{LB_NAME_PREFIX}{cluster}_{namespace}_{name}"))
}

pub fn listener_name(index: usize, lb_name: &str) -> String {
    truncate(format!("listener_{index}_{lb_name}"))
}

pub fn pool_name(index: usize, lb_name: &str) -> String {
    truncate(format!("pool_{index}_{lb_name}"))
}

pub fn monitor_name(index: usize, lb_name: &str) -> String {
    truncate(format!("monitor_{index}_{lb_name}"))
}

/// Security group of a Service (`manage-security-groups`).
pub fn security_group_name(lb_name: &str) -> String {
    truncate(format!("lb-sg-{lb_name}"))
}

/// The cluster-identity tag, from the `kube-system` namespace UID. Floating IPs carry it too,
/// next to the per-Service description: older Neutron limits tags to 60 characters, which this
/// tag (17 + 36) respects while a per-Service tag could not.
pub fn cluster_tag(cluster_uid: &str) -> String {
    format!("{CLUSTER_TAG_PREFIX}{cluster_uid}")
}

/// Description of the load balancer; also proves ownership where tags are unavailable.
pub fn lb_description(cluster: &str, namespace: &str, name: &str) -> String {
    format!("Kubernetes external service {namespace}/{name} from cluster {cluster}")
}

/// Start of every floating IP description of a Service (OCCM's words).
const FIP_DESCRIPTION_PREFIX: &str = "Floating IP for Kubernetes external service ";

/// OCCM's floating IP description (SPEC §4).
pub fn fip_description(cluster: &str, namespace: &str, name: &str) -> String {
    format!("{FIP_DESCRIPTION_PREFIX}{namespace}/{name} from cluster {cluster}")
}

/// `namespace/name` from an LB name `kube_service_<cluster>_<ns>_<name>` of this cluster: the
/// inverse of [`lb_name`] (namespaces and Service names are DNS labels: they hold no `_`).
pub fn service_of_lb_name(cluster: &str, name: &str) -> Option<String> {
    let rest = name.strip_prefix(&format!("{LB_NAME_PREFIX}{cluster}_"))?;
    let (ns, svc) = rest.split_once('_')?;
    (!ns.is_empty() && !svc.is_empty() && !svc.contains('_')).then(|| format!("{ns}/{svc}"))
}

/// `namespace/name` from a floating IP description of this cluster: the inverse of
/// [`fip_description`].
pub fn service_of_fip_description(cluster: &str, description: &str) -> Option<String> {
    let rest = description.strip_prefix(FIP_DESCRIPTION_PREFIX)?;
    let key = rest.strip_suffix(&format!(" from cluster {cluster}"))?;
    key.contains('/').then(|| key.to_string())
}

/// Whether a listener/pool/monitor name belongs to the Service whose LB name is `lb_name`;
/// returns the index it carries.
pub fn child_index(kind: &str, child_name: &str, lb_name: &str) -> Option<usize> {
    let rest = child_name.strip_prefix(kind)?.strip_prefix('_')?;
    let (index, tail) = rest.split_once('_')?;
    if tail != lb_name {
        return None;
    }
    index.parse().ok()
}

pub fn shared_with_tag(namespace: &str) -> String {
    format!("{SHARED_WITH_TAG_PREFIX}{namespace}")
}

/// Whether a load balancer's tags let a Service of `namespace` join it.
pub fn allows_joining(tags: &[String], namespace: &str) -> bool {
    tags.iter()
        .filter_map(|t| t.strip_prefix(SHARED_WITH_TAG_PREFIX))
        .any(|n| n == "*" || n == namespace)
}

/// The cluster UID carried by a tag list, if any.
pub fn cluster_uid_of(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix(CLUSTER_TAG_PREFIX))
}

/// The parts of a Service's LB name `kube_service_<cluster>_<namespace>_<name>`:
/// `(cluster, namespace, name)`. Namespaces and Service names are DNS labels (no `_`), so the
/// last two `_`-separated parts are theirs and everything before is the cluster name, which
/// may hold `_` itself. `None` for other names and for names cut at 255 characters (their
/// tail, hence the split, is no longer reliable).
pub fn split_lb_name(lb_name: &str) -> Option<(&str, &str, &str)> {
    if lb_name.len() >= 255 {
        return None;
    }
    let rest = lb_name.strip_prefix(LB_NAME_PREFIX)?;
    let mut parts = rest.rsplitn(3, '_');
    let name = parts.next()?;
    let namespace = parts.next()?;
    let cluster = parts.next()?;
    (!cluster.is_empty() && !namespace.is_empty() && !name.is_empty())
        .then_some((cluster, namespace, name))
}

/// Load balancers that carry this cluster's identity tag but are named for another cluster
/// name: what `--cluster-name` was when they were made (or adopted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherClusterName {
    /// The cluster name in their names.
    pub cluster_name: String,
    /// Their names, sorted.
    pub lb_names: Vec<String>,
}

/// How many LB names a warning lists before it says "and N more".
const NAMES_SHOWN: usize = 3;

impl OtherClusterName {
    /// One log line for the operator: both names, what happens to these load balancers, and
    /// the fix.
    pub fn warning(&self, cluster_name: &str, cluster_uid: &str) -> String {
        let shown: Vec<&str> = self
            .lb_names
            .iter()
            .take(NAMES_SHOWN)
            .map(String::as_str)
            .collect();
        let more = self.lb_names.len().saturating_sub(NAMES_SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "{count} load balancer(s) carry this cluster's identity tag {tag} but are named for \
             cluster name {other:?} ({names}{more}), while this controller runs with \
             --cluster-name={ours} and names load balancers {LB_NAME_PREFIX}{ours}_<namespace>_<name>: \
             it neither updates nor deletes them, and a Service of the same namespace/name gets a \
             new load balancer with a new IP. If {other:?} is the name this cluster's load balancers should keep \
             (on Magnum: the --cluster-name OCCM runs with, the cluster UUID), restart with --cluster-name={other} (Helm value clusterName); \
             if they are left over, delete them (`openstack loadbalancer delete --cascade <id>`)",
            count = self.lb_names.len(),
            tag = cluster_tag(cluster_uid),
            other = self.cluster_name,
            names = shown.join(", "),
            ours = cluster_name,
        )
    }
}

/// From the load balancers of the project (`(name, tags)`), those that carry this cluster's
/// identity tag but are named for another cluster name, grouped by that name (sorted).
/// A load balancer of another cluster (another identity tag) or with no tag is not this
/// cluster's business; one with a name that is not a Service's was brought by a user.
pub fn other_cluster_names<'a>(
    lbs: impl IntoIterator<Item = (&'a str, &'a [String])>,
    cluster_name: &str,
    cluster_uid: &str,
) -> Vec<OtherClusterName> {
    if cluster_uid.is_empty() {
        return Vec::new();
    }
    let mut by_name: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (lb_name, tags) in lbs {
        if cluster_uid_of(tags) != Some(cluster_uid) {
            continue;
        }
        let Some((cluster, _, _)) = split_lb_name(lb_name) else {
            continue;
        };
        if cluster != cluster_name {
            by_name
                .entry(cluster)
                .or_default()
                .push(lb_name.to_string());
        }
    }
    by_name
        .into_iter()
        .map(|(cluster, mut lb_names)| {
            lb_names.sort();
            lb_names.dedup();
            OtherClusterName {
                cluster_name: cluster.to_string(),
                lb_names,
            }
        })
        .collect()
}

/// Neutron and Octavia limit names and tags to 255 characters; cut on a char boundary.
fn truncate(mut s: String) -> String {
    if s.len() > 255 {
        let mut cut = 255;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "6d1f3c1e-0000-4000-8000-000000000001";
    const MAGNUM: &str = "4a2c2a4e-9d3b-4a3f-8c1e-2b7d5e9f0a11";

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lb_names_split_into_cluster_namespace_and_service() {
        assert_eq!(
            split_lb_name("kube_service_kubernetes_shop_web"),
            Some(("kubernetes", "shop", "web"))
        );
        // Cluster names may hold `_`; namespaces and Service names cannot.
        assert_eq!(
            split_lb_name("kube_service_my_cluster_shop_web"),
            Some(("my_cluster", "shop", "web"))
        );
        let magnum = lb_name(MAGNUM, "kube-system", "ingress-nginx");
        assert_eq!(
            split_lb_name(&magnum),
            Some((MAGNUM, "kube-system", "ingress-nginx"))
        );
        assert_eq!(split_lb_name("kube_service_shop_web"), None);
        assert_eq!(split_lb_name("kube_service__shop_web"), None);
        assert_eq!(split_lb_name("my-own-lb"), None);
        let long = lb_name("kubernetes", "shop", &"w".repeat(300));
        assert_eq!(split_lb_name(&long), None);
    }

    #[test]
    fn orphans_are_mapped_back_to_services() {
        assert_eq!(
            service_of_lb_name("kubernetes", "kube_service_kubernetes_shop_web").as_deref(),
            Some("shop/web")
        );
        assert_eq!(
            service_of_lb_name("my_cluster", "kube_service_my_cluster_shop_web").as_deref(),
            Some("shop/web")
        );
        assert_eq!(
            service_of_lb_name("kubernetes", "kube_service_other_shop_web"),
            None
        );
        assert_eq!(service_of_lb_name("kubernetes", "something-else"), None);
        let d = fip_description("kubernetes", "shop", "web");
        assert_eq!(
            service_of_fip_description("kubernetes", &d).as_deref(),
            Some("shop/web")
        );
        assert_eq!(service_of_fip_description("other", &d), None);
    }

    #[test]
    fn service_names_parse_back_from_what_lb_name_and_fip_description_make() {
        let name = lb_name("kubernetes", "shop", "web");
        assert_eq!(
            service_of_lb_name("kubernetes", &name).as_deref(),
            Some("shop/web")
        );
        assert_eq!(service_of_lb_name("other", &name), None);
        // Too few parts, or a Service name holding `_` (no DNS label does).
        assert_eq!(
            service_of_lb_name("kubernetes", "kube_service_kubernetes_shop"),
            None
        );
        assert_eq!(
            service_of_lb_name("kubernetes", "kube_service_kubernetes_shop_web_x"),
            None
        );
        // A description without `namespace/name` in it.
        assert_eq!(
            service_of_fip_description(
                "kubernetes",
                "Floating IP for Kubernetes external service web from cluster kubernetes"
            ),
            None
        );
        assert_eq!(
            service_of_fip_description("kubernetes", "a user's FIP"),
            None
        );
    }

    #[test]
    fn tagged_lbs_named_for_another_cluster_are_grouped_by_that_name() {
        let ours = tags(&["kube_service_x", &cluster_tag(UID)]);
        let theirs = tags(&[&cluster_tag("another-cluster-uid")]);
        let none: Vec<String> = Vec::new();
        let lbs: Vec<(String, &[String])> = vec![
            (lb_name(MAGNUM, "shop", "web"), &ours[..]),
            (lb_name("kubernetes", "shop", "web"), &ours[..]),
            (lb_name("kubernetes", "shop", "api"), &ours[..]),
            (lb_name("kubernetes", "shop", "api"), &ours[..]),
            (lb_name("old", "db", "pg"), &ours[..]),
            // Another cluster's, untagged (OCCM's), and a user's LB: none of our business.
            (lb_name("kubernetes", "shop", "theirs"), &theirs[..]),
            (lb_name("kubernetes", "shop", "occm"), &none[..]),
            ("my-own-lb".to_string(), &ours[..]),
        ];
        let found = other_cluster_names(lbs.iter().map(|(n, t)| (n.as_str(), *t)), MAGNUM, UID);
        assert_eq!(
            found,
            vec![
                OtherClusterName {
                    cluster_name: "kubernetes".into(),
                    lb_names: vec![
                        "kube_service_kubernetes_shop_api".into(),
                        "kube_service_kubernetes_shop_web".into(),
                    ],
                },
                OtherClusterName {
                    cluster_name: "old".into(),
                    lb_names: vec!["kube_service_old_db_pg".into()],
                },
            ]
        );
        // Running under the name they carry: nothing to say about them.
        let found =
            other_cluster_names(lbs.iter().map(|(n, t)| (n.as_str(), *t)), "kubernetes", UID);
        let names: Vec<&str> = found.iter().map(|o| o.cluster_name.as_str()).collect();
        assert_eq!(names, vec![MAGNUM, "old"]);
        // No identity (the namespace has no UID): no claim on anything.
        assert!(
            other_cluster_names(lbs.iter().map(|(n, t)| (n.as_str(), *t)), MAGNUM, "").is_empty()
        );
    }

    #[test]
    fn the_warning_names_both_names_the_tag_and_the_fix() {
        let o = OtherClusterName {
            cluster_name: "kubernetes".into(),
            lb_names: (1..=5)
                .map(|i| lb_name("kubernetes", "shop", &format!("web{i}")))
                .collect(),
        };
        let w = o.warning(MAGNUM, UID);
        assert!(w.starts_with("5 load balancer(s)"), "{w}");
        assert!(w.contains(&format!("kube-cluster-uid={UID}")), "{w}");
        assert!(w.contains("named for cluster name \"kubernetes\""), "{w}");
        assert!(w.contains(&format!("--cluster-name={MAGNUM}")), "{w}");
        assert!(w.contains("restart with --cluster-name=kubernetes"), "{w}");
        assert!(
            w.contains("kube_service_kubernetes_shop_web3 and 2 more"),
            "{w}"
        );
        assert!(!w.contains("web4"), "{w}");
    }
}
