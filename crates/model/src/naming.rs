//! Names, descriptions and tags by which our OpenStack objects are recognised (SPEC §4
//! "Naming and ownership"). OCCM-compatible names make OCCM's load balancers adoptable in
//! place; the cluster-identity tag makes ownership provable when two clusters share a name
//! and a project. Everything that decides "is this ours?" lives here.

/// Prefix of the cluster-identity tag; the rest is the `kube-system` namespace UID.
pub const CLUSTER_TAG_PREFIX: &str = "kube-cluster-uid=";
/// Prefix of every load-balancer name of a Service.
pub const LB_NAME_PREFIX: &str = "kube_service_";

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

/// OCCM's floating IP description (SPEC §4).
pub fn fip_description(cluster: &str, namespace: &str, name: &str) -> String {
    format!("Floating IP for Kubernetes external service {namespace}/{name} from cluster {cluster}")
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

/// The cluster UID carried by a tag list, if any.
pub fn cluster_uid_of(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix(CLUSTER_TAG_PREFIX))
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
