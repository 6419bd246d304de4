//! Why a Service cannot be served as written (`Invalid`) and what was skipped or changed while
//! serving it (`Warning`). Their Display text is the message of a Kubernetes Warning Event, so
//! it names the field or annotation, the value and what would be accepted. Must not know how
//! Events are written.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One reason a Service's load balancer cannot be built. Nothing in OpenStack is changed for
/// the Service while it has any (SPEC §3: never fall back silently).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Invalid {
    /// Annotation name, `spec.ports[1].protocol`, `[LoadBalancer] floating-network-id`, ...
    pub field: String,
    /// The offending value as written (empty when the problem is a missing value).
    pub value: String,
    /// What would be accepted, in words: `true or false`, `an integer from 1 to 10`, ...
    pub accepted: String,
    /// Machine-readable reason, also used as the Event/condition reason suffix.
    pub reason: InvalidReason,
}

/// Why the input is invalid; lets the controller pick the condition reason and tests match
/// precisely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum InvalidReason {
    /// The value does not parse or is out of range.
    BadValue,
    /// The value is well-formed but this cloud (generation, version, provider) cannot do it.
    Unsupported,
    /// Two settings contradict each other.
    Conflict,
    /// Something required is missing (no ports, no floating network, ...).
    Missing,
    /// The load balancer named by the Service belongs to another cluster.
    ForeignCluster,
}

impl Invalid {
    pub fn bad_value(
        field: impl Into<String>,
        value: impl Into<String>,
        accepted: impl Into<String>,
    ) -> Self {
        Invalid {
            field: field.into(),
            value: value.into(),
            accepted: accepted.into(),
            reason: InvalidReason::BadValue,
        }
    }
    pub fn unsupported(
        field: impl Into<String>,
        value: impl Into<String>,
        accepted: impl Into<String>,
    ) -> Self {
        Invalid {
            field: field.into(),
            value: value.into(),
            accepted: accepted.into(),
            reason: InvalidReason::Unsupported,
        }
    }
    pub fn conflict(
        field: impl Into<String>,
        value: impl Into<String>,
        accepted: impl Into<String>,
    ) -> Self {
        Invalid {
            field: field.into(),
            value: value.into(),
            accepted: accepted.into(),
            reason: InvalidReason::Conflict,
        }
    }
    pub fn missing(field: impl Into<String>, accepted: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            value: String::new(),
            accepted: accepted.into(),
            reason: InvalidReason::Missing,
        }
    }
}

/// How much of a value messages repeat: enough to recognise it, not a 100 KB annotation
/// logged and sent as an Event on every pass.
pub const SHOWN_VALUE_CHARS: usize = 200;

/// `value` as messages show it: cut after [`SHOWN_VALUE_CHARS`] characters, saying how long
/// it really was.
pub fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_VALUE_CHARS) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes in all)", &value[..cut], value.len()),
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = shown(&self.value);
        match self.reason {
            InvalidReason::Missing => {
                write!(f, "{} is missing; expected {}", self.field, self.accepted)
            }
            InvalidReason::Unsupported => write!(
                f,
                "{}: value {:?} is not supported by this cloud; {}",
                self.field, value, self.accepted
            ),
            InvalidReason::ForeignCluster => write!(
                f,
                "{}: load balancer {:?} belongs to another cluster ({}); it is left untouched",
                self.field, value, self.accepted
            ),
            _ => write!(
                f,
                "{}: invalid value {:?}; accepted: {}",
                self.field, value, self.accepted
            ),
        }
    }
}

/// The Event reason of a [`Warning`]. Its text (`as_str`, Display, serde) is the reason
/// Kubernetes Events carry, so a variant's name must never change: dashboards and alerts
/// match on it, and the controller counts `MeltdownProtection` as a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WarningReason {
    /// A feature the cloud lacks: skipped, never sent.
    FeatureUnsupported,
    /// A setting that has no effect on this port's protocol.
    FeatureNotApplicable,
    /// An annotation under the controller's prefix that it does not know.
    UnknownAnnotation,
    /// A health monitor is created although the Service switched it off (ETP Local).
    HealthMonitorForced,
    /// Eligible nodes without an address of the Service's family.
    NodeWithoutAddress,
    /// No node is eligible: the pools are emptied as asked.
    NoEligibleNodes,
    /// Pools keep their last known members instead of being emptied.
    MeltdownProtection,
    /// Source ranges of a family the load balancer cannot apply.
    SourceRangeIgnored,
    /// Dual-stack asked for, only the first family served.
    DualStackPartial,
    /// The load balancer the Service points at is gone.
    LoadBalancerMissing,
    /// The load balancer is in ERROR.
    LoadBalancerError,
    /// The load balancer is deleted and created again.
    RecreatingLoadBalancer,
}

impl WarningReason {
    /// The Event reason, exactly as Events have always carried it.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningReason::FeatureUnsupported => "FeatureUnsupported",
            WarningReason::FeatureNotApplicable => "FeatureNotApplicable",
            WarningReason::UnknownAnnotation => "UnknownAnnotation",
            WarningReason::HealthMonitorForced => "HealthMonitorForced",
            WarningReason::NodeWithoutAddress => "NodeWithoutAddress",
            WarningReason::NoEligibleNodes => "NoEligibleNodes",
            WarningReason::MeltdownProtection => "MeltdownProtection",
            WarningReason::SourceRangeIgnored => "SourceRangeIgnored",
            WarningReason::DualStackPartial => "DualStackPartial",
            WarningReason::LoadBalancerMissing => "LoadBalancerMissing",
            WarningReason::LoadBalancerError => "LoadBalancerError",
            WarningReason::RecreatingLoadBalancer => "RecreatingLoadBalancer",
        }
    }
}

impl fmt::Display for WarningReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Ordered by text, as the reason strings were: warnings are sorted before they become
// Events, and that order must not depend on where a variant is declared.
impl Ord for WarningReason {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for WarningReason {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Something the Service asked for that was skipped or adapted, or a noteworthy decision
/// (meltdown protection). Emitted as a Warning Event; never blocks the load balancer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Warning {
    /// Event reason, e.g. `FeatureUnsupported`, `MeltdownProtection`.
    pub reason: WarningReason,
    /// Human text naming the setting and what happened instead.
    pub message: String,
}

impl Warning {
    pub fn new(reason: WarningReason, message: impl Into<String>) -> Self {
        Warning {
            reason,
            message: message.into(),
        }
    }

    /// A feature the cloud lacks: skipped, never sent (SPEC §1.2).
    pub fn unsupported(setting: &str, needs: &str, have: &str) -> Self {
        Warning::new(
            WarningReason::FeatureUnsupported,
            format!("{setting} is ignored: it needs {needs}, this cloud offers {have}"),
        )
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn warning_reasons_keep_their_event_text_and_order() {
        let all = [
            WarningReason::FeatureUnsupported,
            WarningReason::FeatureNotApplicable,
            WarningReason::UnknownAnnotation,
            WarningReason::HealthMonitorForced,
            WarningReason::NodeWithoutAddress,
            WarningReason::NoEligibleNodes,
            WarningReason::MeltdownProtection,
            WarningReason::SourceRangeIgnored,
            WarningReason::DualStackPartial,
            WarningReason::LoadBalancerMissing,
            WarningReason::LoadBalancerError,
            WarningReason::RecreatingLoadBalancer,
        ];
        for r in all {
            assert_eq!(format!("{r:?}"), r.as_str());
            assert_eq!(r.to_string(), r.as_str());
            assert_eq!(
                serde_json::to_value(r).ok(),
                Some(serde_json::Value::String(r.as_str().to_string()))
            );
        }
        let mut sorted = all;
        sorted.sort();
        let mut by_text = all;
        by_text.sort_by_key(|r| r.as_str());
        assert_eq!(sorted, by_text);
    }

    #[test]
    fn huge_values_are_cut_and_say_their_size() {
        let huge = "x".repeat(100_000);
        let text = Invalid::bad_value("loadbalancer.openstack.org/lb-method", huge, "ROUND_ROBIN")
            .to_string();
        assert!(text.len() < 400, "{}", text.len());
        assert!(text.contains("100000 bytes in all"), "{text}");
        assert_eq!(shown("short"), "short");
        // Cut on a character boundary.
        assert!(shown(&"é".repeat(300)).starts_with(&"é".repeat(200)));
    }
}
