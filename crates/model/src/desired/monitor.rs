//! Health monitors (SPEC §4 "externalTrafficPolicy: Local"): what Local traffic needs, the
//! monitor parameters shared by every pool, and each pool's monitor. A Service with
//! externalTrafficPolicy: Local always gets a monitor, because without one traffic silently
//! reaches nodes with no endpoints.

use super::service::Ctx;
use super::Findings;
use crate::annotations as ann;
use crate::invalid::{Invalid, Warning, WarningReason};
use crate::naming;
use crate::spec::{MonitorSpec, MonitorType, PoolProtocol};

/// `externalTrafficPolicy` and the port kube-proxy answers health checks on.
pub(super) struct TrafficPolicy {
    pub etp_local: bool,
    pub health_check_node_port: Option<u16>,
}

impl TrafficPolicy {
    /// The healthCheckNodePort when it is in use (externalTrafficPolicy: Local).
    pub fn local_health_port(&self) -> Option<u16> {
        self.health_check_node_port.filter(|_| self.etp_local)
    }
}

pub(super) fn traffic_policy(cx: &Ctx, f: &mut Findings) -> TrafficPolicy {
    let etp_local = cx.spec.external_traffic_policy.as_deref() == Some("Local");
    let health_check_node_port = cx
        .spec
        .health_check_node_port
        .and_then(|p| u16::try_from(p).ok());
    if etp_local && health_check_node_port.is_none() {
        f.errs.push(Invalid::missing(
            "spec.healthCheckNodePort",
            "a healthCheckNodePort, which Kubernetes allocates for externalTrafficPolicy: Local",
        ));
    }
    TrafficPolicy {
        etp_local,
        health_check_node_port,
    }
}

/// Monitor parameters shared by every pool of the Service.
pub(super) struct MonitorParams {
    /// A monitor is asked for (annotation, else `create-monitor`).
    pub wanted: bool,
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u32,
    pub max_retries_down: u32,
}

pub(super) fn params(cx: &Ctx, traffic: &TrafficPolicy, f: &mut Findings) -> MonitorParams {
    let (a, lbc) = (&cx.a, cx.lbc);
    let wanted = a.enable_health_monitor.unwrap_or(lbc.create_monitor);
    if traffic.etp_local && a.enable_health_monitor == Some(false) {
        f.warnings.push(Warning::new(
            WarningReason::HealthMonitorForced,
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
        f.errs.push(Invalid::conflict(
            ann::HEALTH_MONITOR_TIMEOUT,
            timeout.to_string(),
            format!(
                "at most {} ({}: the monitor delay)",
                delay,
                ann::HEALTH_MONITOR_DELAY
            ),
        ));
    }
    MonitorParams {
        wanted,
        delay,
        timeout,
        max_retries,
        max_retries_down,
    }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

/// The monitor of pool `i`, if the Service gets one.
pub(super) fn monitor_spec(
    cx: &Ctx,
    i: usize,
    pool: PoolProtocol,
    traffic: &TrafficPolicy,
    p: &MonitorParams,
) -> Option<MonitorSpec> {
    if !p.wanted && !traffic.etp_local {
        return None;
    }
    // ETP Local: kube-proxy's healthz on healthCheckNodePort answers 200 only where the
    // Service has local endpoints. OVN cannot do HTTP monitors; there a TCP/UDP/SCTP check on
    // the NodePort itself works, because kube-proxy drops NodePort traffic on nodes without
    // local endpoints.
    let kind = match pool {
        _ if traffic.etp_local && !cx.ovn => MonitorType::Http,
        PoolProtocol::Udp => MonitorType::UdpConnect,
        PoolProtocol::Sctp => MonitorType::Sctp,
        _ => MonitorType::Tcp,
    };
    let http = kind == MonitorType::Http;
    Some(MonitorSpec {
        name: naming::monitor_name(i, &cx.lb_name),
        kind,
        delay: p.delay,
        timeout: p.timeout,
        max_retries: p.max_retries,
        max_retries_down: p.max_retries_down,
        http_method: http.then(|| "GET".to_string()),
        url_path: http.then(|| "/healthz".to_string()),
        expected_codes: http.then(|| "200".to_string()),
    })
}

/// The port members are health-checked on, when it is not their NodePort: kube-proxy's
/// healthCheckNodePort (an ovn monitor checks the NodePort itself).
pub(super) fn member_monitor_port(cx: &Ctx, traffic: &TrafficPolicy) -> Option<u16> {
    if traffic.etp_local && !cx.ovn {
        traffic.health_check_node_port
    } else {
        None
    }
}
