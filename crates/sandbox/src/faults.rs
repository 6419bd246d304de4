//! Fault injection: rules that make matching requests fail with a chosen status and/or wait,
//! with a probability; the "LB goes to ERROR after create" switch (read by the Octavia side);
//! the axum middleware that applies the rules to every service. It must not know any
//! resource's semantics: it only sees service, method and path.
//!
//! A rule acts at up to three points of a matching request:
//! - `latency`: a wait BEFORE the handler (a slow cloud);
//! - `status`: an error answer INSTEAD of the handler (nothing is changed in the cloud);
//! - `hold_response`: a wait AFTER the handler, before the answer leaves — the change is
//!   already committed while the caller still waits. This is the crash window "between a POST
//!   and its response": kill the caller during the hold and it never learns what it created.
//!   A caller that disconnects during the hold makes the server drop the request, so the
//!   request log (written when an answer is sent) has no entry for it; the sandbox's state is
//!   the evidence.
//!
//! `times` limits a rule to the first N requests it applies to (None: every one); an
//! exhausted rule stays listed with `times: 0` and does nothing. With a `probability`, only the
//! requests the dice picked count. Admin API (`POST /faults/rules`, JSON):
//!
//! ```json
//! {"service": "load-balancer", "method": "POST", "path": "/loadbalancers$",
//!  "hold_response_ms": 30000, "times": 1}
//! ```
//!
//! Command-line form (`sandbox --fault`):
//! `service=network,method=POST,hold=30s,times=1,path=^/v2.0/floatingips$`.
//!
//! A rate limit as a real cloud sends it (a 429 naming when to come back):
//! `{"status": 429, "retry_after_s": 2, "probability": 0.05}`.

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
/// with that status in the service's error shape instead of reaching the handler, then its
/// answer is held back for `hold_response`. `remaining` counts down the requests the rule may
/// still apply to (None: unlimited).
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub service: Option<ServiceKind>,
    pub method: Option<String>,
    pub path: Regex,
    pub status: Option<u16>,
    pub latency: Duration,
    pub probability: f64,
    pub hold_response: Duration,
    pub remaining: Option<u32>,
    /// Seconds sent in a `Retry-After` header with the injected status (rate limiting).
    pub retry_after: Option<u32>,
}

/// Wire form of a rule for the admin API (`PUT /faults` `rules[]`, `POST /faults/rules`;
/// regexes are not serde types). Every field is optional:
/// - `service` (`identity` | `network` | `load-balancer`), `method`, `path` (regex): which
///   requests match; absent = any;
/// - `status`: answer with this HTTP status instead of running the handler;
/// - `latency_ms`: wait before the handler;
/// - `hold_response_ms`: let the handler run (its change is committed), then hold the
///   answer this long — the "killed between a POST and its response" window;
/// - `times`: apply to the first N matching requests only (`GET /faults` shows how many are
///   left; 0 = used up); absent = every one;
/// - `probability` (0..=1, default 1): apply to this share of the matching requests;
/// - `retry_after_s`: with `status`, the injected answer carries `Retry-After: <seconds>`
///   (what Octavia/Neutron behind a rate limiter send with a 429).
///
/// A rule needs at least one of `status`, `latency_ms`, `hold_response_ms`. The three newest
/// fields are left out of answers when unset, so older readers see the form they knew.
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
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hold_response_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u32>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
        if spec.retry_after_s.is_some() && spec.status.is_none() {
            return Err("retry_after_s needs a status to go with".to_string());
        }
        if spec.status.is_none() && spec.latency_ms == 0 && spec.hold_response_ms == 0 {
            return Err(
                "a rule needs a status, a latency or a response hold (or several)".to_string(),
            );
        }
        Ok(Self {
            service: spec.service,
            method: spec.method.map(|m| m.to_ascii_uppercase()),
            path,
            status: spec.status,
            latency: Duration::from_millis(spec.latency_ms),
            probability,
            hold_response: Duration::from_millis(spec.hold_response_ms),
            remaining: spec.times,
            retry_after: spec.retry_after_s,
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
            hold_response_ms: u64::try_from(rule.hold_response.as_millis()).unwrap_or(u64::MAX),
            times: rule.remaining,
            retry_after_s: rule.retry_after,
        }
    }
}

impl FromStr for FaultRule {
    type Err = String;
    /// Compact command-line form: comma-separated `key=value` pairs with keys `service`
    /// (identity|network|load-balancer), `method`, `path` (regex), `status`, `latency` and
    /// `hold` (milliseconds, or with an `ms`/`s` suffix), `times`, `probability` (0..1) and
    /// `retry-after` (seconds, sent as a header with `status`).
    /// Because the regex may itself contain commas, `path=` swallows the rest of the text and
    /// must come last.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultRuleSpec {
            service: None,
            method: None,
            path: None,
            status: None,
            latency_ms: 0,
            probability: None,
            hold_response_ms: 0,
            times: None,
            retry_after_s: None,
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
                "hold" => {
                    spec.hold_response_ms = parse_millis(value).ok_or_else(|| {
                        format!("fault rule {s:?}: bad hold {value:?} (e.g. 250, 250ms, 2s)")
                    })?
                }
                "times" => {
                    spec.times = Some(value.parse().map_err(|_| {
                        format!("fault rule {s:?}: bad times {value:?} (a count, e.g. 1)")
                    })?)
                }
                "retry-after" => {
                    spec.retry_after_s = Some(value.parse().map_err(|_| {
                        format!("fault rule {s:?}: bad retry-after {value:?} (seconds, e.g. 2)")
                    })?)
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
                         status, latency, hold, times, probability, retry-after, path (last)"
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
    /// How many requests each kind of fault was applied to since the start (`"503"`,
    /// `"429"`, `"latency"`, `"hold"`): a chaos run prints what it really injected.
    pub injected: std::collections::BTreeMap<String, u64>,
}

/// What the middleware decided for one request.
#[derive(Debug, PartialEq)]
struct Verdict {
    latency: Duration,
    status: Option<u16>,
    /// Goes with `status`: the header of the rule that chose the status.
    retry_after: Option<u32>,
    hold: Duration,
}

impl FaultState {
    /// Which rules apply to this request; counts each applied rule against its `times`.
    fn decide(&mut self, service: ServiceKind, method: &str, path: &str) -> Verdict {
        let mut verdict = Verdict {
            latency: Duration::ZERO,
            status: None,
            retry_after: None,
            hold: Duration::ZERO,
        };
        let mut rng = rand::thread_rng();
        for rule in self
            .rules
            .iter_mut()
            .filter(|r| r.remaining != Some(0) && r.matches(service, method, path))
        {
            if rule.probability < 1.0 && !rng.gen_bool(rule.probability.max(0.0)) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            verdict.latency += rule.latency;
            verdict.hold += rule.hold_response;
            if let Some(code) = rule.status.filter(|_| verdict.status.is_none()) {
                *self.injected.entry(code.to_string()).or_default() += 1;
            }
            if !rule.latency.is_zero() {
                *self.injected.entry("latency".to_string()).or_default() += 1;
            }
            if !rule.hold_response.is_zero() {
                *self.injected.entry("hold".to_string()).or_default() += 1;
            }
            if verdict.status.is_none() {
                verdict.status = rule.status;
                verdict.retry_after = rule.retry_after.filter(|_| rule.status.is_some());
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
        let mut faults = state.inner.faults.lock();
        faults.decide(service, request.method().as_str(), request.uri().path())
    };
    if !verdict.latency.is_zero() {
        tokio::time::sleep(verdict.latency).await;
    }
    let response = match verdict.status {
        Some(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                ApiError::new(service, status, "Fault injected by the sandbox").into_response();
            if let Some(secs) = verdict.retry_after {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            }
            response
        }
        None => next.run(request).await,
    };
    // The handler has committed its change; a caller killed during this wait never sees the
    // answer (and if it disconnects, the server drops this future: nothing more happens).
    if !verdict.hold.is_zero() {
        tokio::time::sleep(verdict.hold).await;
    }
    response
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
        let mut state = FaultState {
            rules: vec!["service=network,method=GET,status=500,path=^/v2.0/ports"
                .parse()
                .unwrap()],
            lb_error_after_create: false,
            injected: Default::default(),
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

    #[test]
    fn compact_form_knows_hold_and_times() {
        let rule: FaultRule = "method=POST,hold=2s,times=1,path=/loadbalancers$"
            .parse()
            .unwrap();
        assert_eq!(rule.hold_response, Duration::from_secs(2));
        assert_eq!(rule.remaining, Some(1));
        assert_eq!(rule.status, None, "a hold alone is a rule");
        assert!("hold=soon".parse::<FaultRule>().is_err());
        assert!("hold=1s,times=-1".parse::<FaultRule>().is_err());
        let err = "times=1".parse::<FaultRule>().unwrap_err();
        assert!(err.contains("response hold"), "{err}");
    }

    #[test]
    fn times_limits_a_rule_to_its_first_matches() {
        let mut state = FaultState {
            rules: vec![
                "service=load-balancer,method=POST,hold=5s,times=2,path=/loadbalancers$"
                    .parse()
                    .unwrap(),
                "service=load-balancer,latency=10ms,path=/loadbalancers"
                    .parse()
                    .unwrap(),
            ],
            lb_error_after_create: false,
            injected: Default::default(),
        };
        let post = |s: &mut FaultState| {
            s.decide(ServiceKind::LoadBalancer, "POST", "/v2/lbaas/loadbalancers")
        };
        let held = Verdict {
            latency: Duration::from_millis(10),
            status: None,
            retry_after: None,
            hold: Duration::from_secs(5),
        };
        // A request the rule does not match does not use up its count.
        let get = state.decide(ServiceKind::LoadBalancer, "GET", "/v2/lbaas/loadbalancers");
        assert_eq!(get.hold, Duration::ZERO);
        assert_eq!(post(&mut state), held);
        assert_eq!(state.rules[0].remaining, Some(1));
        assert_eq!(post(&mut state), held);
        // Used up: the unlimited rule still applies, the exhausted one no longer.
        let after = post(&mut state);
        assert_eq!(after.hold, Duration::ZERO);
        assert_eq!(after.latency, Duration::from_millis(10));
        assert_eq!(state.rules[0].remaining, Some(0));
        assert_eq!(state.rules[1].remaining, None);
        assert_eq!(state.injected.get("hold"), Some(&2));
        // The GET matched the latency rule too.
        assert_eq!(state.injected.get("latency"), Some(&4));
    }

    #[test]
    fn wire_form_stays_backward_compatible() {
        // The form older clients send still parses, and its answer has no new keys.
        let old: FaultRuleSpec = serde_json::from_value(serde_json::json!(
            {"service": "network", "path": "^/v2.0/ports", "status": 503}
        ))
        .unwrap();
        let rule = FaultRule::try_from(old).unwrap();
        let echoed = serde_json::to_value(FaultRuleSpec::from(&rule)).unwrap();
        assert!(echoed.get("hold_response_ms").is_none(), "{echoed}");
        assert!(echoed.get("times").is_none(), "{echoed}");
        assert_eq!(echoed["latency_ms"], 0);

        let new: FaultRuleSpec = serde_json::from_value(serde_json::json!(
            {"method": "POST", "path": "/floatingips$", "hold_response_ms": 1500, "times": 1}
        ))
        .unwrap();
        let mut rule = FaultRule::try_from(new.clone()).unwrap();
        assert_eq!(rule.hold_response, Duration::from_millis(1500));
        assert_eq!(FaultRuleSpec::from(&rule).hold_response_ms, 1500);
        // What GET /faults shows for a used-up rule can be PUT back as it is.
        rule.remaining = Some(0);
        let spent = FaultRuleSpec::from(&rule);
        assert_eq!(serde_json::to_value(&spent).unwrap()["times"], 0);
        assert!(FaultRule::try_from(spent).is_ok());
        assert!(serde_json::from_value::<FaultRuleSpec>(serde_json::json!(
            {"hold_response_ms": -1}
        ))
        .is_err());
    }

    #[test]
    fn retry_after_needs_a_status_and_parses_in_both_forms() {
        let rule: FaultRule = "status=429,retry-after=3,path=/loadbalancers"
            .parse()
            .unwrap();
        assert_eq!(rule.retry_after, Some(3));
        assert!("latency=5,retry-after=3".parse::<FaultRule>().is_err());
        assert!("status=429,retry-after=soon".parse::<FaultRule>().is_err());
        let spec: FaultRuleSpec =
            serde_json::from_value(serde_json::json!({"status": 429, "retry_after_s": 7})).unwrap();
        let rule = FaultRule::try_from(spec).unwrap();
        assert_eq!(FaultRuleSpec::from(&rule).retry_after_s, Some(7));
    }

    /// A 429 rule answers with the service's error body AND the `Retry-After` header, without
    /// running the handler.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_limit_fault_sends_retry_after() {
        use tower::ServiceExt;

        let sandbox = crate::server::start(crate::config::SandboxConfig::default())
            .await
            .unwrap();
        let state = sandbox.state().clone();
        state.inner.faults.lock().rules = vec!["status=429,retry-after=2,times=1,path=^/x$"
            .parse()
            .unwrap()];
        let app = axum::Router::new()
            .route("/x", axum::routing::get(|| async { StatusCode::OK }))
            .layer(axum::middleware::from_fn_with_state(
                (state.clone(), ServiceKind::LoadBalancer),
                middleware,
            ));
        let get = || {
            Request::builder()
                .uri("/x")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let limited = app.clone().oneshot(get()).await.unwrap();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            limited.headers().get(http::header::RETRY_AFTER).unwrap(),
            "2"
        );
        let next = app.oneshot(get()).await.unwrap();
        assert_eq!(next.status(), StatusCode::OK);
        assert!(next.headers().get(http::header::RETRY_AFTER).is_none());
        sandbox.shutdown().await;
    }

    /// The handler runs (its change is committed) while the caller still waits for the
    /// answer; once `times` is used up, answers flow at once again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hold_lets_the_handler_commit_and_keeps_the_answer_back() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tower::ServiceExt;

        let sandbox = crate::server::start(crate::config::SandboxConfig::default())
            .await
            .unwrap();
        let state = sandbox.state().clone();
        state.inner.faults.lock().rules = vec![
            "service=network,method=POST,hold=60s,times=1,path=^/commit$"
                .parse()
                .unwrap(),
        ];
        let committed = Arc::new(AtomicUsize::new(0));
        let counter = committed.clone();
        let app = axum::Router::new()
            .route(
                "/commit",
                axum::routing::post(move || {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        StatusCode::CREATED
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                (state.clone(), ServiceKind::Network),
                middleware,
            ));
        let request = || {
            Request::builder()
                .method("POST")
                .uri("/commit")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let held = tokio::spawn(app.clone().oneshot(request()));
        // Bounded wait for the handler to have run.
        for _ in 0..200 {
            if committed.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(committed.load(Ordering::SeqCst), 1, "the handler ran");
        assert!(!held.is_finished(), "the answer is still held back");
        assert_eq!(state.inner.faults.lock().rules[0].remaining, Some(0));
        // What a killed caller amounts to: the request is dropped mid-hold, the change stays.
        held.abort();
        assert!(held.await.unwrap_err().is_cancelled());

        let second = tokio::time::timeout(Duration::from_secs(30), app.oneshot(request()))
            .await
            .expect("the used-up rule holds nothing")
            .unwrap();
        assert_eq!(second.status(), StatusCode::CREATED);
        assert_eq!(committed.load(Ordering::SeqCst), 2);
        sandbox.shutdown().await;
    }
}
