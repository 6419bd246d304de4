//! Fault injection: rules that make matching requests fail with a chosen status and/or wait,
//! with a probability; the "LB goes to ERROR after create" switch (read by the Octavia side);
//! the axum middleware that applies the rules to every service. It must not know any
//! resource's semantics: it only sees service, method and path.

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rand::Rng;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::state::{AppState, ServiceKind};

/// One rule. `service`/`method` None match everything; `path` is a regex searched in the
/// request path. A matching request first waits `latency`, then (if `status` is set) is answered
/// with that status in the service's error shape instead of reaching the handler.
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub service: Option<ServiceKind>,
    pub method: Option<String>,
    pub path: Regex,
    pub status: Option<u16>,
    pub latency: Duration,
    pub probability: f64,
}

/// Wire form of a rule for the admin API (regexes are not serde types).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRuleSpec {
    #[serde(default)]
    pub service: Option<ServiceKind>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub probability: Option<f64>,
}

impl TryFrom<FaultRuleSpec> for FaultRule {
    type Error = String;
    fn try_from(spec: FaultRuleSpec) -> Result<Self, Self::Error> {
        let path = Regex::new(spec.path.as_deref().unwrap_or(""))
            .map_err(|e| format!("invalid path regex: {e}"))?;
        if let Some(status) = spec.status {
            if !(100..=599).contains(&status) {
                return Err(format!("status {status} is not an HTTP status code"));
            }
        }
        let probability = spec.probability.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&probability) {
            return Err(format!("probability {probability} is not within 0..=1"));
        }
        if spec.status.is_none() && spec.latency_ms == 0 {
            return Err("a rule needs a status, a latency, or both".to_string());
        }
        Ok(Self {
            service: spec.service,
            method: spec.method.map(|m| m.to_ascii_uppercase()),
            path,
            status: spec.status,
            latency: Duration::from_millis(spec.latency_ms),
            probability,
        })
    }
}

impl From<&FaultRule> for FaultRuleSpec {
    fn from(rule: &FaultRule) -> Self {
        Self {
            service: rule.service,
            method: rule.method.clone(),
            path: Some(rule.path.as_str().to_string()),
            status: rule.status,
            latency_ms: u64::try_from(rule.latency.as_millis()).unwrap_or(u64::MAX),
            probability: Some(rule.probability),
        }
    }
}

impl FromStr for FaultRule {
    type Err = String;
    /// Compact command-line form: comma-separated `key=value` pairs with keys `service`
    /// (identity|network|load-balancer), `method`, `path` (regex), `status`, `latency`
    /// (milliseconds, or with an `ms`/`s` suffix) and `probability` (0..1). Because the regex
    /// may itself contain commas, `path=` swallows the rest of the text and must come last.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultRuleSpec {
            service: None,
            method: None,
            path: None,
            status: None,
            latency_ms: 0,
            probability: None,
        };
        let mut rest = s.trim();
        while !rest.is_empty() {
            if let Some(path) = rest.strip_prefix("path=") {
                spec.path = Some(path.to_string());
                break;
            }
            let (pair, tail) = rest.split_once(',').unwrap_or((rest, ""));
            rest = tail.trim_start();
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("fault rule {s:?}: {pair:?} is not key=value"))?;
            let value = value.trim();
            match key.trim() {
                "service" => spec.service = Some(value.parse()?),
                "method" => spec.method = Some(value.to_string()),
                "status" => {
                    spec.status = Some(
                        value
                            .parse()
                            .map_err(|_| format!("fault rule {s:?}: bad status {value:?}"))?,
                    )
                }
                "latency" => {
                    spec.latency_ms = parse_millis(value).ok_or_else(|| {
                        format!("fault rule {s:?}: bad latency {value:?} (e.g. 250, 250ms, 2s)")
                    })?
                }
                "probability" => {
                    spec.probability = Some(
                        value
                            .parse()
                            .map_err(|_| format!("fault rule {s:?}: bad probability {value:?}"))?,
                    )
                }
                other => {
                    return Err(format!(
                        "fault rule {s:?}: unknown key {other:?}; accepted: service, method, \
                         status, latency, probability, path (last)"
                    ))
                }
            }
        }
        FaultRule::try_from(spec).map_err(|e| format!("fault rule {s:?}: {e}"))
    }
}

fn parse_millis(value: &str) -> Option<u64> {
    if let Some(ms) = value.strip_suffix("ms") {
        ms.trim().parse().ok()
    } else if let Some(secs) = value.strip_suffix('s') {
        secs.trim()
            .parse::<u64>()
            .ok()
            .map(|s| s.saturating_mul(1000))
    } else {
        value.parse().ok()
    }
}

impl FaultRule {
    fn matches(&self, service: ServiceKind, method: &str, path: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.method.as_deref().is_none_or(|m| m == method)
            && self.path.is_match(path)
    }
}

/// Runtime fault state, behind its own lock in `Shared` so the middleware never waits on the
/// world lock.
#[derive(Debug, Default)]
pub struct FaultState {
    pub rules: Vec<FaultRule>,
    /// While set, every newly created load balancer ends in provisioning_status ERROR instead
    /// of ACTIVE (the Octavia side reads it when its create completes).
    pub lb_error_after_create: bool,
}

/// What the middleware decided for one request.
struct Verdict {
    latency: Duration,
    status: Option<u16>,
}

impl FaultState {
    fn decide(&self, service: ServiceKind, method: &str, path: &str) -> Verdict {
        let mut verdict = Verdict {
            latency: Duration::ZERO,
            status: None,
        };
        let mut rng = rand::thread_rng();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.matches(service, method, path))
        {
            if rule.probability < 1.0 && !rng.gen_bool(rule.probability.max(0.0)) {
                continue;
            }
            verdict.latency += rule.latency;
            if verdict.status.is_none() {
                verdict.status = rule.status;
            }
        }
        verdict
    }
}

/// Applies the fault rules of the service this listener serves. Runs outside the auth layer
/// so that even authentication can be made to fail or be slow.
pub async fn middleware(
    State((state, service)): State<(AppState, ServiceKind)>,
    request: Request,
    next: Next,
) -> Response {
    let verdict = {
        let faults = state.inner.faults.lock();
        faults.decide(service, request.method().as_str(), request.uri().path())
    };
    if !verdict.latency.is_zero() {
        tokio::time::sleep(verdict.latency).await;
    }
    if let Some(code) = verdict.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return ApiError::new(service, status, "Fault injected by the sandbox").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_parses_all_keys_and_path_last() {
        let rule: FaultRule =
            "service=network,method=post,status=503,latency=20ms,probability=0.5,path=^/v2.0/(a,b)"
                .parse()
                .unwrap();
        assert_eq!(rule.service, Some(ServiceKind::Network));
        assert_eq!(rule.method.as_deref(), Some("POST"));
        assert_eq!(rule.status, Some(503));
        assert_eq!(rule.latency, Duration::from_millis(20));
        assert_eq!(rule.path.as_str(), "^/v2.0/(a,b)");
    }

    #[test]
    fn compact_form_rejects_nonsense() {
        assert!("status=999".parse::<FaultRule>().is_err());
        assert!("service=nova,status=500".parse::<FaultRule>().is_err());
        assert!("colour=red".parse::<FaultRule>().is_err());
        assert!("probability=2,status=500".parse::<FaultRule>().is_err());
        assert!(
            "method=GET".parse::<FaultRule>().is_err(),
            "no effect at all"
        );
    }

    #[test]
    fn matching_is_by_service_method_and_path() {
        let state = FaultState {
            rules: vec!["service=network,method=GET,status=500,path=^/v2.0/ports"
                .parse()
                .unwrap()],
            lb_error_after_create: false,
        };
        assert_eq!(
            state
                .decide(ServiceKind::Network, "GET", "/v2.0/ports")
                .status,
            Some(500)
        );
        assert_eq!(
            state
                .decide(ServiceKind::Network, "POST", "/v2.0/ports")
                .status,
            None
        );
        assert_eq!(
            state
                .decide(ServiceKind::Identity, "GET", "/v2.0/ports")
                .status,
            None
        );
        assert_eq!(
            state
                .decide(ServiceKind::Network, "GET", "/v2.0/networks")
                .status,
            None
        );
    }
}
