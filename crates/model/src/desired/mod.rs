//! `desired`: from a Service, the Nodes, cloud.conf, the cloud's features and the cluster
//! environment to the load balancer that should exist (SPEC §3, §4). Every annotation and
//! behaviour is decided here, and every input the cloud cannot honour either becomes an
//! `Invalid` (the Service is not served as written) or a `Warning` (an optional feature is
//! skipped). Must not know what exists in the cloud: that is `plan`'s job.

pub mod members;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service, ServicePort};

use crate::annotations::{self as ann, Annotations, ProxyProtocol};
use crate::config::{CloudConfig, LbMethod, Placement};
use crate::environment::Environment;
use crate::features::{CloudFeatures, Generation};
use crate::invalid::{Invalid, Warning};
use crate::naming;
use crate::spec::*;
use members::{Family, Selection};

/// Octavia's listener timeout defaults (ms).
pub const DEFAULT_TIMEOUT_CLIENT_DATA: u64 = 50_000;
pub const DEFAULT_TIMEOUT_MEMBER_CONNECT: u64 = 5_000;
pub const DEFAULT_TIMEOUT_MEMBER_DATA: u64 = 50_000;
pub const DEFAULT_TIMEOUT_TCP_INSPECT: u64 = 0;

/// The load balancer Service `service` should have. `Err` lists every problem found, so one
/// Event can name them all; nothing in OpenStack should change for the Service meanwhile.
pub fn desired(
    service: &Service,
    nodes: &[Node],
    config: &CloudConfig,
    features: &CloudFeatures,
    env: &Environment,
) -> Result<LoadBalancerSpec, Vec<Invalid>> {
    let mut errs = Vec::new();
    let mut warnings = Vec::new();
    let annotations = service.metadata.annotations.clone().unwrap_or_default();
    let a = match Annotations::parse(&annotations) {
        Ok(a) => a,
        Err(e) => {
            errs.extend(e);
            Annotations::default()
        }
    };
    for key in ann::unknown_keys(&annotations) {
        warnings.push(Warning::new(
            "UnknownAnnotation",
            format!("annotation {key} is not known and has no effect"),
        ));
    }
    let svc = ServiceRef {
        namespace: service
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
    };
    if svc.name.is_empty() {
        errs.push(Invalid::missing("metadata.name", "the Service's name"));
    }
    let lbc = &config.load_balancer;
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        errs.push(Invalid::missing("spec.ports", "at least one port"));
    }

    // Class: an unknown class is an error, not a silent fallback to the defaults.
    let class = match &a.class {
        Some(name) => match config.class(name) {
            Some(c) => Some(c.placement.clone()),
            None => {
                let known: Vec<&str> = config.classes.iter().map(|c| c.name.as_str()).collect();
                errs.push(Invalid::bad_value(
                    ann::CLASS,
                    name,
                    if known.is_empty() {
                        "a [LoadBalancerClass \"NAME\"] section of cloud.conf (none is configured)"
                            .to_string()
                    } else {
                        format!("one of the configured classes: {}", known.join(", "))
                    },
                ));
                None
            }
        },
        None => None,
    };
    let pick = |ann_v: &Option<String>, f: fn(&Placement) -> &Option<String>| -> Option<String> {
        ann_v
            .clone()
            .or_else(|| class.as_ref().and_then(|c| f(c).clone()))
            .or_else(|| f(&lbc.placement).clone())
    };

    // Address family: the Service's first family decides members and VIP.
    let families: Vec<String> = spec.ip_families.clone().unwrap_or_default();
    let family = match families.first().map(String::as_str) {
        Some("IPv6") => Family::V6,
        _ => Family::V4,
    };
    if family == Family::V6 && config.networking.ipv6_support_disabled {
        errs.push(Invalid::unsupported(
            "spec.ipFamilies",
            families.join(","),
            "IPv4: [Networking] ipv6-support-disabled is set",
        ));
    }

    let internal = a.internal.unwrap_or(lbc.internal_lb);
    let etp_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let health_check_node_port = spec
        .health_check_node_port
        .and_then(|p| u16::try_from(p).ok());
    if etp_local && health_check_node_port.is_none() {
        errs.push(Invalid::missing(
            "spec.healthCheckNodePort",
            "a healthCheckNodePort, which Kubernetes allocates for externalTrafficPolicy: Local",
        ));
    }
    let ovn = features.is_ovn();

    // Generation limits.
    if features.generation == Generation::NeutronV1 {
        let tcp = |p: &ServicePort| p.protocol.as_deref().unwrap_or("TCP") == "TCP";
        if ports.len() != 1 || !ports.iter().all(tcp) {
            errs.push(Invalid::unsupported(
                "spec.ports",
                ports.iter().map(port_text).collect::<Vec<_>>().join(","),
                "exactly one TCP port: this cloud only offers Neutron LBaaS v1",
            ));
        }
        for (key, set) in [
            (ann::PROXY_PROTOCOL, a.proxy_protocol.is_some()),
            (ann::X_FORWARDED_FOR, a.x_forwarded_for == Some(true)),
            (
                ann::DEFAULT_TLS_CONTAINER_REF,
                a.default_tls_container_ref.is_some(),
            ),
        ] {
            if set {
                errs.push(Invalid::unsupported(
                    key,
                    annotations.get(key).cloned().unwrap_or_default(),
                    "nothing: Neutron LBaaS v1 has plain TCP only",
                ));
            }
        }
    }
    if a.proxy_protocol.is_some() && a.x_forwarded_for == Some(true) {
        errs.push(Invalid::conflict(
            ann::PROXY_PROTOCOL,
            annotations
                .get(ann::PROXY_PROTOCOL)
                .cloned()
                .unwrap_or_default(),
            format!(
                "either {} or {}, not both",
                ann::PROXY_PROTOCOL,
                ann::X_FORWARDED_FOR
            ),
        ));
    }
    if a.proxy_protocol.is_some() && a.default_tls_container_ref.is_some() {
        errs.push(Invalid::conflict(
            ann::PROXY_PROTOCOL,
            annotations
                .get(ann::PROXY_PROTOCOL)
                .cloned()
                .unwrap_or_default(),
            format!(
                "either {} or {}, not both",
                ann::PROXY_PROTOCOL,
                ann::DEFAULT_TLS_CONTAINER_REF
            ),
        ));
    }
    if a.proxy_protocol == Some(ProxyProtocol::V2) && !features.proxy_v2 && !ovn {
        errs.push(Invalid::unsupported(
            ann::PROXY_PROTOCOL,
            "v2",
            format!(
                "true or v1: PROXYV2 needs Octavia API 2.22, this cloud offers {}",
                features.version_text()
            ),
        ));
    }
    if ovn {
        for (key, set) in [
            (ann::PROXY_PROTOCOL, a.proxy_protocol.is_some()),
            (ann::X_FORWARDED_FOR, a.x_forwarded_for == Some(true)),
            (
                ann::DEFAULT_TLS_CONTAINER_REF,
                a.default_tls_container_ref.is_some(),
            ),
        ] {
            if set {
                errs.push(Invalid::unsupported(key, annotations.get(key).cloned().unwrap_or_default(), "nothing: the ovn provider balances TCP, UDP and SCTP only (no HTTP, TLS or PROXY)"));
            }
        }
        if let Some(m) = a.lb_method.filter(|m| *m != LbMethod::SourceIpPort) {
            errs.push(Invalid::unsupported(
                ann::LB_METHOD,
                m.as_api(),
                "SOURCE_IP_PORT: the only algorithm of the ovn provider",
            ));
        }
    }

    // Health monitor parameters (shared by every pool).
    let monitor_wanted = a.enable_health_monitor.unwrap_or(lbc.create_monitor);
    if etp_local && a.enable_health_monitor == Some(false) {
        warnings.push(Warning::new(
            "HealthMonitorForced",
            format!("{} is false, but a health monitor is always created for externalTrafficPolicy: Local, otherwise traffic reaches nodes without endpoints", ann::ENABLE_HEALTH_MONITOR),
        ));
    }
    let delay = a.health_monitor_delay.unwrap_or(secs(lbc.monitor_delay));
    let timeout = a
        .health_monitor_timeout
        .unwrap_or(secs(lbc.monitor_timeout));
    let max_retries = a
        .health_monitor_max_retries
        .unwrap_or(lbc.monitor_max_retries.clamp(1, 10));
    let max_retries_down = a
        .health_monitor_max_retries_down
        .unwrap_or(lbc.monitor_max_retries_down.clamp(1, 10));
    if timeout > delay {
        errs.push(Invalid::conflict(
            ann::HEALTH_MONITOR_TIMEOUT,
            timeout.to_string(),
            format!(
                "at most {} ({}: the monitor delay)",
                delay,
                ann::HEALTH_MONITOR_DELAY
            ),
        ));
    }

    // Members.
    let selector = a
        .node_selector
        .clone()
        .unwrap_or_else(|| lbc.node_selector.clone());
    let selection = members::select(nodes, &selector, family, &config.networking);
    if !selection.without_address.is_empty() {
        warnings.push(Warning::new(
            "NodeWithoutAddress",
            format!(
                "nodes without an {} address are not members: {}",
                if family == Family::V4 { "IPv4" } else { "IPv6" },
                selection.without_address.join(", ")
            ),
        ));
    }
    let member_subnet_id = pick(&a.member_subnet_id, |p| &p.member_subnet_id);
    let (member_nodes, keep_last_known) =
        choose_members(&selection, nodes.len(), &selector, &mut warnings);

    // Listeners.
    let lb_name = naming::lb_name(&env.cluster_name, &svc.namespace, &svc.name);
    let lb_method = if ovn {
        LbMethod::SourceIpPort
    } else {
        a.lb_method.unwrap_or(lbc.lb_method)
    };
    if !ovn && features.provider_refuses_lb_method(lb_method) {
        let provider = features.provider_text();
        let others = "ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP";
        errs.push(match a.lb_method {
            Some(_) => Invalid::unsupported(
                ann::LB_METHOD,
                lb_method.as_api(),
                format!("{others}: the {provider} provider refuses {} (Octavia answers 501); or set [LoadBalancer] lb-provider to a provider that offers it, e.g. ovn", lb_method.as_api()),
            ),
            None => Invalid::unsupported(
                "[LoadBalancer] lb-method",
                lb_method.as_api(),
                format!("{others}: the {provider} provider refuses {} (Octavia answers 501); fix cloud.conf, or annotate the Service with {}: ROUND_ROBIN", lb_method.as_api(), ann::LB_METHOD),
            ),
        });
    }
    let persistence = match spec.session_affinity.as_deref() {
        Some("ClientIP") if ovn => {
            warnings.push(Warning::unsupported(
                "sessionAffinity: ClientIP",
                "session persistence",
                "the ovn provider",
            ));
            None
        }
        Some("ClientIP") => Some(Persistence {
            kind: "SOURCE_IP".to_string(),
        }),
        _ => None,
    };
    let timeouts = listener_timeouts(&a, features, ovn, &mut warnings);
    let source_ranges = source_ranges(
        &spec.load_balancer_source_ranges,
        &a,
        &families,
        &mut errs,
        &mut warnings,
    );
    // Only a provider that keeps client addresses (ovn) lets security-group rules enforce
    // source ranges; behind amphora the nodes see the amphora's address.
    let sg_enforces_ranges = lbc.manage_security_groups && ovn;
    let allowed_cidrs: Vec<String> = match &source_ranges {
        // Octavia checks allowed_cidrs against the (first) VIP's family.
        Some(r) if features.allowed_cidrs => {
            let (same, other): (Vec<&ipnet::IpNet>, Vec<&ipnet::IpNet>) =
                r.iter().partition(|n| Family::of(&n.addr()) == family);
            if !other.is_empty() {
                let text = other
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                if same.is_empty() {
                    errs.push(Invalid::conflict(
                        "spec.loadBalancerSourceRanges",
                        text,
                        format!(
                            "at least one CIDR of the Service's first IP family ({})",
                            families.first().map(String::as_str).unwrap_or("IPv4")
                        ),
                    ));
                } else {
                    warnings.push(Warning::new(
                        "SourceRangeIgnored",
                        format!("source ranges {text} are not of the VIP's address family; Octavia cannot apply them"),
                    ));
                }
            }
            same.iter().map(|n| n.to_string()).collect()
        }
        Some(r) => {
            if !sg_enforces_ranges {
                let text = r
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                warnings.push(Warning::unsupported(
                    &format!("source ranges {text}"),
                    "Octavia API 2.12 (allowed_cidrs), or manage-security-groups with a provider that keeps client addresses (ovn)",
                    &format!("{} with provider {}", features.version_text(), features.provider.as_deref().unwrap_or("default")),
                ));
            }
            Vec::new()
        }
        None => Vec::new(),
    };
    let tls_ref = a.default_tls_container_ref.clone();
    let config_tls_ref = lbc.default_tls_container_ref.clone();
    let mut listeners = Vec::new();
    let mut seen = BTreeSet::new();
    let listener_tags = if features.tags {
        vec![lb_name.clone()]
    } else {
        Vec::new()
    };
    for (i, port) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let proto = port.protocol.clone().unwrap_or_else(|| "TCP".to_string());
        let Ok(number) = u16::try_from(port.port) else {
            errs.push(Invalid::bad_value(
                format!("{field}.port"),
                port.port.to_string(),
                "a port from 1 to 65535",
            ));
            continue;
        };
        let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
            errs.push(Invalid::missing(
                format!("{field}.nodePort"),
                "a nodePort (spec.allocateLoadBalancerNodePorts must not be false)",
            ));
            continue;
        };
        // Octavia allows one listener per (port, L4 protocol) on a load balancer.
        if !seen.insert((number, proto.clone())) {
            errs.push(Invalid::conflict(
                format!("{field}.port"),
                number.to_string(),
                "each port/protocol pair only once",
            ));
            continue;
        }
        let port_tls = tls_ref
            .clone()
            .or_else(|| config_tls_ref.clone().filter(|_| number == 443));
        let (lp, pp) = match proto.as_str() {
            "TCP" => match (
                port_tls.is_some(),
                a.x_forwarded_for == Some(true),
                a.proxy_protocol,
            ) {
                (true, _, _) => (ListenerProtocol::TerminatedHttps, PoolProtocol::Http),
                (false, true, _) => (ListenerProtocol::Http, PoolProtocol::Http),
                (false, false, Some(ProxyProtocol::V1)) => {
                    (ListenerProtocol::Tcp, PoolProtocol::Proxy)
                }
                (false, false, Some(ProxyProtocol::V2)) => {
                    (ListenerProtocol::Tcp, PoolProtocol::ProxyV2)
                }
                (false, false, None) => (ListenerProtocol::Tcp, PoolProtocol::Tcp),
            },
            "UDP" | "SCTP" => {
                if a.proxy_protocol.is_some() {
                    errs.push(Invalid::conflict(
                        ann::PROXY_PROTOCOL,
                        annotations
                            .get(ann::PROXY_PROTOCOL)
                            .cloned()
                            .unwrap_or_default(),
                        format!("TCP ports only ({field} is {proto})"),
                    ));
                }
                if a.x_forwarded_for == Some(true) || tls_ref.is_some() {
                    warnings.push(Warning::new(
                        "FeatureNotApplicable",
                        format!("{field} is {proto}: x-forwarded-for and TLS termination apply to TCP ports only"),
                    ));
                }
                if proto == "SCTP" && !features.sctp && !ovn {
                    errs.push(Invalid::unsupported(
                        format!("{field}.protocol"),
                        "SCTP",
                        format!(
                            "TCP or UDP: SCTP needs Octavia API 2.23, this cloud offers {}",
                            features.version_text()
                        ),
                    ));
                }
                if proto == "UDP" {
                    (ListenerProtocol::Udp, PoolProtocol::Udp)
                } else {
                    (ListenerProtocol::Sctp, PoolProtocol::Sctp)
                }
            }
            other => {
                errs.push(Invalid::bad_value(
                    format!("{field}.protocol"),
                    other,
                    "TCP, UDP or SCTP",
                ));
                continue;
            }
        };
        let mut insert_headers = BTreeMap::new();
        if a.x_forwarded_for == Some(true)
            && matches!(
                lp,
                ListenerProtocol::Http | ListenerProtocol::TerminatedHttps
            )
        {
            insert_headers.insert("X-Forwarded-For".to_string(), "true".to_string());
        }
        let monitor = if monitor_wanted || etp_local {
            Some(monitor_spec(
                i,
                &lb_name,
                pp,
                etp_local,
                ovn,
                (delay, timeout, max_retries, max_retries_down),
            ))
        } else {
            None
        };
        let mon_port = if etp_local && !ovn {
            health_check_node_port
        } else {
            None
        };
        let to_member = |c: &members::Candidate| MemberSpec {
            name: c.name.clone(),
            address: c.address,
            protocol_port: node_port,
            subnet_id: member_subnet_id.clone(),
            monitor_port: mon_port,
        };
        let list: Vec<MemberSpec> = member_nodes.iter().map(to_member).collect();
        let members = if keep_last_known {
            Members::KeepLastKnown { fallback: list }
        } else {
            Members::Exact(list)
        };
        listeners.push(ListenerSpec {
            index: i,
            name: naming::listener_name(i, &lb_name),
            protocol: lp,
            port: number,
            node_port,
            connection_limit: a.connection_limit.unwrap_or(-1),
            allowed_cidrs: allowed_cidrs.clone(),
            insert_headers,
            timeouts,
            default_tls_container_ref: if lp == ListenerProtocol::TerminatedHttps {
                port_tls
            } else {
                None
            },
            tags: listener_tags.clone(),
            pool: PoolSpec {
                name: naming::pool_name(i, &lb_name),
                protocol: pp,
                lb_algorithm: lb_method,
                session_persistence: persistence.clone(),
                members,
                monitor,
                tags: Vec::new(),
            },
        });
    }

    // VIP placement: port > subnet/network (annotation > class > config) > the nodes' subnet.
    let mut vip = VipPlacement {
        port_id: a.port_id.clone(),
        subnet_id: pick(&a.subnet_id, |p| &p.subnet_id),
        network_id: pick(&a.network_id, |p| &p.network_id),
        address: None,
        additional_subnet_ids: Vec::new(),
    };
    if vip.port_id.is_some() {
        vip.subnet_id = None;
        vip.network_id = None;
    } else if vip.subnet_id.is_none() && vip.network_id.is_none() {
        vip.subnet_id = env.node_subnet_id.clone();
        vip.network_id = env.node_network_id.clone();
        if vip.subnet_id.is_none() && vip.network_id.is_none() {
            errs.push(Invalid::missing(
                "VIP subnet",
                format!("{} or {} annotation, [LoadBalancer] subnet-id/network-id, or nodes whose InternalIP is on a Neutron port", ann::SUBNET_ID, ann::NETWORK_ID),
            ));
        }
    }
    if families.len() > 1 {
        match (&env.node_subnet_id_secondary, features.additional_vips) {
            (Some(s), true) if vip.port_id.is_none() => vip.additional_subnet_ids.push(s.clone()),
            (_, false) => warnings.push(Warning::unsupported(
                &format!("dual-stack ipFamilies {}", families.join(",")),
                "Octavia API 2.26 (additional VIPs)",
                &format!(
                    "{}; only {} is served",
                    features.version_text(),
                    families[0]
                ),
            )),
            _ => warnings.push(Warning::new(
                "DualStackPartial",
                format!(
                    "no subnet of the second family ({}) is known for the VIP; only {} is served",
                    families[1], families[0]
                ),
            )),
        }
    }

    // Floating IP and status.
    let requested_ip = spec
        .load_balancer_ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let requested_ip: Option<IpAddr> = match requested_ip {
        Some(s) => match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errs.push(Invalid::bad_value(
                    "spec.loadBalancerIP",
                    s,
                    "an IPv4 or IPv6 address",
                ));
                None
            }
        },
        None => None,
    };
    // Checked before anything is created: a wrong family would otherwise fail in the cloud
    // on every pass after the load balancer exists.
    let requested_ip = match requested_ip {
        Some(ip) if internal && Family::of(&ip) != family => {
            errs.push(Invalid::conflict(
                "spec.loadBalancerIP",
                ip.to_string(),
                format!(
                    "an {} address, the family of the Service's VIP (spec.ipFamilies)",
                    families.first().map(String::as_str).unwrap_or("IPv4")
                ),
            ));
            None
        }
        Some(ip) if !internal && ip.is_ipv6() => {
            errs.push(Invalid::conflict(
                "spec.loadBalancerIP",
                ip.to_string(),
                "an IPv4 address: floating IPs are IPv4 only (for an IPv6 VIP address, make the Service internal)",
            ));
            None
        }
        other => other,
    };
    let floating_ip = if internal {
        vip.address = requested_ip;
        FipIntent::None
    } else {
        let network = pick(&a.floating_network_id, |p| &p.floating_network_id)
            .or_else(|| env.discovered_floating_network_id.clone());
        match network {
            Some(network_id) => {
                let source = FipSource {
                    network_id,
                    subnet_id: pick(&a.floating_subnet_id, |p| &p.floating_subnet_id),
                    subnet_name_glob: pick(&a.floating_subnet, |p| &p.floating_subnet),
                    subnet_tags: a
                        .floating_subnet_tags
                        .clone()
                        .or_else(|| {
                            class
                                .as_ref()
                                .map(|c| c.floating_subnet_tags.clone())
                                .filter(|t| !t.is_empty())
                        })
                        .unwrap_or_else(|| lbc.placement.floating_subnet_tags.clone()),
                };
                match requested_ip {
                    Some(address) => FipIntent::ByAddress { address, source },
                    None => FipIntent::New(source),
                }
            }
            None => {
                errs.push(Invalid::missing(
                    "floating network",
                    format!("{} annotation, [LoadBalancer] floating-network-id, or exactly one external network in the cloud (or make the Service internal with {})", ann::FLOATING_NETWORK_ID, ann::INTERNAL),
                ));
                FipIntent::None
            }
        }
    };
    let ip_mode = if a.proxy_protocol.is_some() {
        IpMode::Proxy
    } else {
        IpMode::Vip
    };
    let source = match (
        &a.hostname,
        lbc.enable_ingress_hostname && a.proxy_protocol.is_some(),
    ) {
        (Some(h), _) => IngressSource::Hostname(h.clone()),
        (None, true) => IngressSource::AddressHostname {
            suffix: lbc.ingress_hostname_suffix.clone(),
            from_fip: !internal,
        },
        (None, false) if internal => IngressSource::Vip,
        (None, false) => IngressSource::FloatingIp,
    };

    // Placement extras gated by the cloud.
    let flavor_id = gated(
        a.flavor_id.clone().or_else(|| lbc.flavor_id.clone()),
        features.flavors,
        "flavor-id",
        "Octavia API 2.6",
        features,
        &mut warnings,
    );
    let availability_zone = gated(
        a.availability_zone
            .clone()
            .or_else(|| lbc.availability_zone.clone()),
        features.availability_zones,
        "availability-zone",
        "Octavia API 2.14",
        features,
        &mut warnings,
    );

    // Security group.
    let security_group = if lbc.manage_security_groups {
        Some(security_group_spec(
            &svc,
            &lb_name,
            env,
            &listeners,
            health_check_node_port.filter(|_| etp_local),
            &source_ranges,
            family,
            &member_nodes,
            ovn,
        ))
    } else {
        None
    };

    // Consent to share is a tag on the load balancer: without tags it cannot be given.
    if let (Some(shared_with), false) = (&a.shared_with, features.tags) {
        errs.push(Invalid::bad_value(
            ann::SHARED_WITH,
            shared_with.join(","),
            "a cloud whose load balancers take tags (Octavia API 2.5 or later); remove the annotation",
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let cluster_tag = naming::cluster_tag(&env.cluster_uid);
    let fip_description = naming::fip_description(&env.cluster_name, &svc.namespace, &svc.name);
    warnings.sort();
    warnings.dedup();
    Ok(LoadBalancerSpec {
        description: naming::lb_description(&env.cluster_name, &svc.namespace, &svc.name),
        tags: if features.tags {
            [lb_name.clone(), cluster_tag.clone()]
                .into_iter()
                .chain(
                    a.shared_with
                        .iter()
                        .flatten()
                        .map(|ns| naming::shared_with_tag(ns)),
                )
                .collect()
        } else {
            Vec::new()
        },
        cluster_tag,
        name: lb_name,
        service: svc,
        vip,
        provider: lbc.lb_provider.clone(),
        flavor_id,
        availability_zone,
        existing_lb_id: a.load_balancer_id.clone(),
        max_shared_lb: lbc.max_shared_lb,
        listeners,
        floating_ip,
        fip_description,
        keep_floating_ip: a.keep_floatingip.unwrap_or(false),
        security_group,
        status: StatusIntent { source, ip_mode },
        recreate_on_immutable_change: a.recreate_on_immutable_change.unwrap_or(false),
        cascade_delete: lbc.cascade_delete && features.cascade_delete,
        features: features.clone(),
        warnings,
    })
}

fn port_text(p: &ServicePort) -> String {
    format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP"))
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

/// Ready eligible nodes; if none is Ready although some are eligible, meltdown protection:
/// keep what the pools have (the NotReady nodes are only the fallback for a new pool). No
/// Node known at all (a cluster whose Node list is empty or not read yet) is the same case:
/// an empty list says nothing about where traffic can go. Nodes known but none eligible
/// (a node-selector that matches none, every node excluded) empties the pools as asked —
/// never silently.
fn choose_members(
    sel: &Selection,
    nodes_known: usize,
    selector: &[(String, Option<String>)],
    warnings: &mut Vec<Warning>,
) -> (Vec<members::Candidate>, bool) {
    if nodes_known == 0 {
        warnings.push(Warning::new(
            "MeltdownProtection",
            "no Node is known; keeping the last known members instead of emptying the pools",
        ));
        return (Vec::new(), true);
    }
    if sel.eligible.is_empty() && sel.without_address.is_empty() {
        let why = if selector.is_empty() {
            format!("all {nodes_known} nodes are excluded (label node.kubernetes.io/exclude-from-external-load-balancers, being deleted, or tainted ToBeDeletedByClusterAutoscaler)")
        } else {
            let text = selector
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect::<Vec<_>>()
                .join(",");
            format!("node-selector {text:?} matches none of the {nodes_known} nodes")
        };
        warnings.push(Warning::new(
            "NoEligibleNodes",
            format!("{why}: the load balancer has no members and sends traffic nowhere; fix the loadbalancer.openstack.org/node-selector annotation or [LoadBalancer] node-selector"),
        ));
    }
    let ready: Vec<members::Candidate> = sel.ready().cloned().collect();
    if ready.is_empty() && !sel.eligible.is_empty() {
        warnings.push(Warning::new(
            "MeltdownProtection",
            format!(
                "all {} eligible nodes are NotReady; keeping the last known members instead of emptying the pools",
                sel.eligible.len()
            ),
        ));
        return (sel.eligible.clone(), true);
    }
    (ready, false)
}

fn monitor_spec(
    i: usize,
    lb_name: &str,
    pool: PoolProtocol,
    etp_local: bool,
    ovn: bool,
    (delay, timeout, max_retries, max_retries_down): (u32, u32, u32, u32),
) -> MonitorSpec {
    // ETP Local: kube-proxy's healthz on healthCheckNodePort answers 200 only where the
    // Service has local endpoints. OVN cannot do HTTP monitors; there a TCP/UDP/SCTP check on
    // the NodePort itself works, because kube-proxy drops NodePort traffic on nodes without
    // local endpoints.
    let kind = match pool {
        _ if etp_local && !ovn => MonitorType::Http,
        PoolProtocol::Udp => MonitorType::UdpConnect,
        PoolProtocol::Sctp => MonitorType::Sctp,
        _ => MonitorType::Tcp,
    };
    let http = kind == MonitorType::Http;
    MonitorSpec {
        name: naming::monitor_name(i, lb_name),
        kind,
        delay,
        timeout,
        max_retries,
        max_retries_down,
        http_method: http.then(|| "GET".to_string()),
        url_path: http.then(|| "/healthz".to_string()),
        expected_codes: http.then(|| "200".to_string()),
    }
}

fn listener_timeouts(
    a: &Annotations,
    features: &CloudFeatures,
    ovn: bool,
    warnings: &mut Vec<Warning>,
) -> Timeouts {
    let t = Timeouts {
        client_data: a.timeout_client_data,
        member_connect: a.timeout_member_connect,
        member_data: a.timeout_member_data,
        tcp_inspect: a.timeout_tcp_inspect,
    };
    let asked = t != Timeouts::default();
    if ovn || !features.timeouts {
        if asked {
            let needs = if ovn {
                "a provider with listener timeouts"
            } else {
                "Octavia API 2.1"
            };
            let have = if ovn {
                "the ovn provider".to_string()
            } else {
                features.version_text()
            };
            warnings.push(Warning::unsupported("listener timeouts", needs, &have));
        }
        return Timeouts::default();
    }
    // Unset timeouts are Octavia's defaults, spelled out so that removing an annotation puts
    // the default back instead of leaving the old value in place.
    Timeouts {
        client_data: t.client_data.or(Some(DEFAULT_TIMEOUT_CLIENT_DATA)),
        member_connect: t.member_connect.or(Some(DEFAULT_TIMEOUT_MEMBER_CONNECT)),
        member_data: t.member_data.or(Some(DEFAULT_TIMEOUT_MEMBER_DATA)),
        tcp_inspect: t.tcp_inspect.or(Some(DEFAULT_TIMEOUT_TCP_INSPECT)),
    }
}

/// `spec.loadBalancerSourceRanges`, else the annotation; CIDRs of a family the LB does not
/// serve are dropped with a Warning, and if that leaves none it is an error (dropping all
/// would open the Service to everyone).
fn source_ranges(
    spec_ranges: &Option<Vec<String>>,
    a: &Annotations,
    families: &[String],
    errs: &mut Vec<Invalid>,
    warnings: &mut Vec<Warning>,
) -> Option<Vec<ipnet::IpNet>> {
    let ranges = match spec_ranges.as_ref().filter(|r| !r.is_empty()) {
        Some(list) => match ann::parse_cidrs("spec.loadBalancerSourceRanges", &list.join(",")) {
            Ok(r) => r,
            Err(e) => {
                errs.push(e);
                return None;
            }
        },
        None => a.source_ranges.clone()?,
    };
    let v4 = families.is_empty() || families.iter().any(|f| f == "IPv4");
    let v6 = families.iter().any(|f| f == "IPv6");
    let (keep, drop): (Vec<_>, Vec<_>) = ranges
        .into_iter()
        .partition(|n| (n.addr().is_ipv4() && v4) || (n.addr().is_ipv6() && v6));
    if !drop.is_empty() {
        let text = drop
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if keep.is_empty() {
            errs.push(Invalid::conflict(
                "spec.loadBalancerSourceRanges",
                text,
                format!(
                    "CIDRs of the Service's IP families ({})",
                    families.join(",")
                ),
            ));
            return None;
        }
        warnings.push(Warning::new(
            "SourceRangeIgnored",
            format!("source ranges {text} do not match the Service's IP families and are ignored"),
        ));
    }
    let mut keep = keep;
    keep.sort();
    keep.dedup();
    Some(keep)
}

fn gated(
    value: Option<String>,
    available: bool,
    setting: &str,
    needs: &str,
    features: &CloudFeatures,
    warnings: &mut Vec<Warning>,
) -> Option<String> {
    match value {
        Some(v) if !available => {
            warnings.push(Warning::unsupported(
                &format!("{setting} {v}"),
                needs,
                &features.version_text(),
            ));
            None
        }
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
fn security_group_spec(
    svc: &ServiceRef,
    lb_name: &str,
    env: &Environment,
    listeners: &[ListenerSpec],
    health_check_node_port: Option<u16>,
    ranges: &Option<Vec<ipnet::IpNet>>,
    family: Family,
    member_nodes: &[members::Candidate],
    keeps_client_address: bool,
) -> SecurityGroupSpec {
    let sources: Vec<ipnet::IpNet> = match ranges {
        Some(r) if keeps_client_address => r.clone(),
        _ if !keeps_client_address && !env.lb_source_cidrs.is_empty() => {
            env.lb_source_cidrs.clone()
        }
        _ if family == Family::V4 => vec![ipnet::IpNet::V4(ipnet::Ipv4Net::default())],
        _ => vec![ipnet::IpNet::V6(ipnet::Ipv6Net::default())],
    };
    let mut rules = BTreeSet::new();
    for l in listeners {
        let protocol = match l.protocol {
            ListenerProtocol::Udp => "udp",
            ListenerProtocol::Sctp => "sctp",
            _ => "tcp",
        };
        for port in std::iter::once(l.node_port).chain(health_check_node_port) {
            for src in &sources {
                let proto = if Some(port) == health_check_node_port {
                    "tcp"
                } else {
                    protocol
                };
                rules.insert(SecurityGroupRule {
                    ethertype: if src.addr().is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
                    protocol: proto.to_string(),
                    port,
                    remote_ip_prefix: src.to_string(),
                });
            }
        }
    }
    let mut port_ids: Vec<String> = member_nodes
        .iter()
        .filter_map(|c| env.node_port_ids.get(&c.name).cloned())
        .collect();
    port_ids.sort();
    port_ids.dedup();
    SecurityGroupSpec {
        name: naming::security_group_name(lb_name),
        description: format!(
            "Security group for Kubernetes service {svc} from cluster {}",
            env.cluster_name
        ),
        tags: vec![naming::cluster_tag(&env.cluster_uid)],
        rules: rules.into_iter().collect(),
        port_ids,
    }
}
