//! Neutron LBaaS v1: what the controller refuses or ignores on a cloud that offers only it.

use super::*;

/// What the controller does on a cloud that offers only LBaaS v1 (`model::plan` v1 and
/// `model::desired`): said as warnings, so that an admin knows which Services will be refused
/// and which settings ignored; configuration that would make every Service fail is a ✗.
pub(super) fn check_v1_limits(config: &CloudConfig, r: &mut Builder) {
    const TITLE: &str = "LBaaS v1";
    let lb = &config.load_balancer;
    let method = lb.lb_method.as_api();
    if !crate::features::V1_LB_METHODS.contains(&method) {
        r.fail(
            TITLE,
            format!("[LoadBalancer] lb-method = {method}, which LBaaS v1 does not offer: every Service would be refused"),
            format!("set lb-method to one of {}", crate::features::V1_LB_METHODS.join(", ")),
        );
    }
    if lb.placement.subnet_id.is_none() && lb.placement.network_id.is_some() {
        r.fail(
            TITLE,
            "LBaaS v1 places each VIP on a subnet, but [LoadBalancer] names only a network (network-id) for it: every Service would be refused",
            "set [LoadBalancer] subnet-id to the subnet the VIPs should take their address from",
        );
    }
    r.warn(
        TITLE,
        "one pool and one VIP per Service: a Service must have exactly one TCP port; Services with more ports, \
         UDP or SCTP, or the proxy-protocol, x-forwarded-for or default-tls-container-ref annotations are refused \
         with a Warning Event and get no load balancer; lb-method SOURCE_IP_PORT is refused; a pool is never shared \
         between Services (load-balancer-id)",
        "keep one TCP port per LoadBalancer Service (split the others), or ask the cloud operator for Octavia",
    );
    r.warn(
        TITLE,
        "ignored with a FeatureUnsupported Warning Event: listener timeouts, loadBalancerSourceRanges, flavor-id, \
         availability-zone, dual-stack and manage-security-groups",
        "restrict client addresses with security groups on the nodes instead of loadBalancerSourceRanges",
    );
    r.warn(
        TITLE,
        "health monitors (create-monitor or the enable-health-monitor annotation, always for externalTrafficPolicy: \
         Local) are TCP checks of the NodePort: v1 cannot probe kube-proxy's healthCheckNodePort, and \
         max-retries-down is not applied",
        "nothing to do; a node without endpoints of a Local Service refuses the NodePort and is marked down",
    );
    r.warn(
        TITLE,
        "no tags in LBaaS v1: pools and VIPs are recognised by their name and description only, and orphan \
         collection does not look for them",
        "do not rename or re-describe the pools and VIPs the controller created",
    );
}
