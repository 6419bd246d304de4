//! Listeners and pools (SPEC §4 "Protocols", "Session affinity"): one listener and one
//! pool per Service port. The pool settings every port shares (algorithm, persistence,
//! timeouts) are decided once; each port then gets its protocols, TLS, headers, monitor and
//! members.

use std::collections::{BTreeMap, BTreeSet};

use super::members::{self, Chosen};
use super::monitor::{self, MonitorParams, TrafficPolicy};
use super::service::Ctx;
use super::Findings;
use super::{
    DEFAULT_TIMEOUT_CLIENT_DATA, DEFAULT_TIMEOUT_MEMBER_CONNECT, DEFAULT_TIMEOUT_MEMBER_DATA,
    DEFAULT_TIMEOUT_TCP_INSPECT,
};
use crate::annotations::{self as ann, Annotations, ProxyProtocol};
use crate::config::LbMethod;
use crate::features::CloudFeatures;
use crate::invalid::{Invalid, Warning, WarningReason};
use crate::naming;
use crate::spec::{
    ListenerProtocol, ListenerSpec, MemberSpec, Members, Persistence, PoolProtocol, PoolSpec,
    Timeouts,
};

/// What every pool and listener of the Service shares.
pub(super) struct PoolSettings {
    pub lb_method: LbMethod,
    pub persistence: Option<Persistence>,
    pub timeouts: Timeouts,
}

pub(super) fn pool_settings(cx: &Ctx, f: &mut Findings) -> PoolSettings {
    let a = &cx.a;
    let lb_method = if cx.ovn {
        LbMethod::SourceIpPort
    } else {
        a.lb_method.unwrap_or(cx.lbc.lb_method)
    };
    if !cx.ovn && cx.features.provider_refuses_lb_method(lb_method) {
        let provider = cx.features.provider_text();
        let others = "ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP";
        f.errs.push(match a.lb_method {
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
    let persistence = match cx.spec.session_affinity.as_deref() {
        Some("ClientIP") if cx.ovn => {
            f.warnings.push(Warning::unsupported(
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
    let timeouts = listener_timeouts(a, cx.features, cx.ovn, &mut f.warnings);
    PoolSettings {
        lb_method,
        persistence,
        timeouts,
    }
}

/// One listener (with its pool) per Service port.
pub(super) fn build(
    cx: &Ctx,
    settings: &PoolSettings,
    allowed_cidrs: &[String],
    traffic: &TrafficPolicy,
    monitor_params: &MonitorParams,
    members: &Chosen,
    f: &mut Findings,
) -> Vec<ListenerSpec> {
    let (a, lb_name) = (&cx.a, cx.lb_name.as_str());
    let tls_ref = a.default_tls_container_ref.clone();
    let config_tls_ref = cx.lbc.default_tls_container_ref.clone();
    let mut listeners = Vec::new();
    let mut seen = BTreeSet::new();
    let listener_tags = if cx.features.tags {
        vec![lb_name.to_string()]
    } else {
        Vec::new()
    };
    for (i, port) in cx.ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let proto = port.protocol.clone().unwrap_or_else(|| "TCP".to_string());
        let Ok(number) = u16::try_from(port.port) else {
            f.errs.push(Invalid::bad_value(
                format!("{field}.port"),
                port.port.to_string(),
                "a port from 1 to 65535",
            ));
            continue;
        };
        let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
            f.errs.push(Invalid::missing(
                format!("{field}.nodePort"),
                "a nodePort (spec.allocateLoadBalancerNodePorts must not be false)",
            ));
            continue;
        };
        // Octavia allows one listener per (port, L4 protocol) on a load balancer.
        if !seen.insert((number, proto.clone())) {
            f.errs.push(Invalid::conflict(
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
                    f.errs.push(Invalid::conflict(
                        ann::PROXY_PROTOCOL,
                        cx.written(ann::PROXY_PROTOCOL),
                        format!("TCP ports only ({field} is {proto})"),
                    ));
                }
                if a.x_forwarded_for == Some(true) || tls_ref.is_some() {
                    f.warnings.push(Warning::new(WarningReason::FeatureNotApplicable,
                        format!("{field} is {proto}: x-forwarded-for and TLS termination apply to TCP ports only"),
                    ));
                }
                if proto == "SCTP" && !cx.features.sctp && !cx.ovn {
                    f.errs.push(Invalid::unsupported(
                        format!("{field}.protocol"),
                        "SCTP",
                        format!(
                            "TCP or UDP: SCTP needs Octavia API 2.23, this cloud offers {}",
                            cx.features.version_text()
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
                f.errs.push(Invalid::bad_value(
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
        let monitor = monitor::monitor_spec(cx, i, pp, traffic, monitor_params);
        let mon_port = monitor::member_monitor_port(cx, traffic);
        let to_member = |c: &members::Candidate| MemberSpec {
            name: c.name.clone(),
            address: c.address,
            protocol_port: node_port,
            subnet_id: members.subnet_id.clone(),
            monitor_port: mon_port,
        };
        let list: Vec<MemberSpec> = members.nodes.iter().map(to_member).collect();
        let members = if members.keep_last_known {
            Members::KeepLastKnown { fallback: list }
        } else {
            Members::Exact(list)
        };
        listeners.push(ListenerSpec {
            index: i,
            name: naming::listener_name(i, lb_name),
            protocol: lp,
            port: number,
            node_port,
            connection_limit: a.connection_limit.unwrap_or(-1),
            allowed_cidrs: allowed_cidrs.to_vec(),
            insert_headers,
            timeouts: settings.timeouts,
            default_tls_container_ref: if lp == ListenerProtocol::TerminatedHttps {
                port_tls
            } else {
                None
            },
            tags: listener_tags.clone(),
            pool: PoolSpec {
                name: naming::pool_name(i, lb_name),
                protocol: pp,
                lb_algorithm: settings.lb_method,
                session_persistence: settings.persistence.clone(),
                members,
                monitor,
                tags: Vec::new(),
            },
        });
    }

    listeners
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
