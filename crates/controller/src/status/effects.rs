//! [`effects`]: for each outcome of a pass, the condition, Events, annotations, ingress and
//! finalizer the controller writes. The engine applies it and `plan` previews it, so the two
//! cannot say different things. Pure: no I/O, nothing of OpenStack.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::{
    add_finalizer_patch, annotation_changes, condition_already_says, remove_finalizer_patch,
    status_patch, Reason, WantedCondition, ANN_LB_ADDRESS, ANN_LB_ID,
};
use crate::backend::{Failure, FailureKind, Ingress, Notice, Published};

/// Event reasons of the in-tree service controller, so dashboards and habits keep working.
pub mod reasons {
    pub const ENSURING: &str = "EnsuringLoadBalancer";
    pub const ENSURED: &str = "EnsuredLoadBalancer";
    pub const UPDATED: &str = "UpdatedLoadBalancer";
    pub const SYNC_FAILED: &str = "SyncLoadBalancerFailed";
    pub const DELETING: &str = "DeletingLoadBalancer";
    pub const DELETED: &str = "DeletedLoadBalancer";
    pub const DELETE_FAILED: &str = "DeleteLoadBalancerFailed";
    /// Ours: an annotation or field has an invalid value; nothing was changed in the cloud.
    pub const INVALID: &str = "InvalidLoadBalancerConfiguration";
    /// Ours: the feature is switched off or credentials are unusable (SPEC §1.1).
    pub const DISABLED: &str = "LoadBalancerDisabled";
}

/// What one step of a pass concluded, as far as what is written to the Service goes. The
/// engine passes what it remembers (`first`, `creating`); `plan` passes what a first pass
/// of the controller would know.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// A pass is about to call the cloud for a LoadBalancer Service.
    Starting,
    /// The feature is off or the credentials are unusable; `first`: not yet warned about.
    Disabled { why: &'a str, first: bool },
    /// The Service is invalid as written; nothing in the cloud was changed.
    Invalid { problems: &'a [String] },
    /// Steps were executed; `first`: the first of this change, `creating`: it created the LB.
    Progressed {
        notices: &'a [Notice],
        first: bool,
        creating: bool,
    },
    /// The load balancer is locked (`lb_status`, a PENDING_* state).
    Busy { lb_status: &'a str, creating: bool },
    /// The load balancer matches; `ended`: the change that just completed, if any.
    Ready {
        published: &'a Published,
        notices: &'a [Notice],
        ended: Option<Change>,
    },
    /// A cloud pass failed; `cleanup`: while deleting what is ours.
    Failed { failure: &'a Failure, cleanup: bool },
    /// The cleanup passes; `first`: its first pass.
    Deleting { first: bool },
    /// The cleanup cannot run: the feature is off.
    CleanupDisabled { why: &'a str },
    /// Nothing of ours is left in the cloud; `service_stays`: the Service was not deleted
    /// (its type changed), so its status must stop advertising an address.
    Deleted { service_stays: bool },
}

/// The change a pass completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
}

/// What happens to the `LoadBalancerReady` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConditionChange {
    Keep,
    Set(WantedCondition),
    Remove,
}

/// What happens to `status.loadBalancer.ingress`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngressChange {
    /// Left as it is (a Service being updated keeps its address).
    Unchanged,
    Set(Vec<Ingress>),
    Cleared,
}

/// What happens to the cleanup finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizerChange {
    Keep,
    /// Added if missing, before anything can exist in the cloud.
    Add,
    Remove,
}

impl FinalizerChange {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalizerChange::Keep => "keep",
            FinalizerChange::Add => "add",
            FinalizerChange::Remove => "remove",
        }
    }
}

/// One Event to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEffect {
    pub warning: bool,
    pub reason: String,
    pub message: String,
    /// Sent once per Service input (spec and annotations), however many passes ask.
    pub once: bool,
    /// Sent after the writes (it reports them), not before.
    pub after_writes: bool,
}

impl EventEffect {
    fn new(warning: bool, reason: &str, message: impl Into<String>) -> Self {
        EventEffect {
            warning,
            reason: reason.to_string(),
            message: message.into(),
            once: false,
            after_writes: false,
        }
    }
    fn once(mut self) -> Self {
        self.once = true;
        self
    }
    fn after_writes(mut self) -> Self {
        self.after_writes = true;
        self
    }
    /// `Normal` or `Warning`, as Kubernetes spells the Event type.
    pub fn type_str(&self) -> &'static str {
        if self.warning {
            "Warning"
        } else {
            "Normal"
        }
    }
}

/// Everything one outcome writes to the Service: the one place that decides conditions,
/// Events, annotations, ingress and the finalizer, for the engine and for `plan`'s preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects {
    pub condition: ConditionChange,
    pub events: Vec<EventEffect>,
    /// Annotations to write (`None`: removed).
    pub annotations: BTreeMap<String, Option<String>>,
    pub ingress: IngressChange,
    pub finalizer: FinalizerChange,
}

impl Default for Effects {
    fn default() -> Self {
        Effects {
            condition: ConditionChange::Keep,
            events: Vec::new(),
            annotations: BTreeMap::new(),
            ingress: IngressChange::Unchanged,
            finalizer: FinalizerChange::Keep,
        }
    }
}

impl Effects {
    /// The effects of `self` followed by those of `next` (for a preview of a whole pass).
    pub fn then(mut self, next: Effects) -> Effects {
        if next.condition != ConditionChange::Keep {
            self.condition = next.condition;
        }
        self.events.extend(next.events);
        self.annotations.extend(next.annotations);
        if next.ingress != IngressChange::Unchanged {
            self.ingress = next.ingress;
        }
        if next.finalizer != FinalizerChange::Keep {
            self.finalizer = next.finalizer;
        }
        self
    }

    /// The merge patch for the status subresource, or `None` when nothing differs.
    pub fn status_patch(&self, service: &Service, now: Time) -> Option<Value> {
        let ingress = match &self.ingress {
            IngressChange::Unchanged => None,
            IngressChange::Set(list) => Some(list.as_slice()),
            IngressChange::Cleared => Some(&[][..]),
        };
        match &self.condition {
            ConditionChange::Keep if ingress.is_none() => None,
            ConditionChange::Set(c) => status_patch(service, ingress, Some(c), now),
            // `status_patch` drops our condition when given none; the only outcome that
            // changes the ingress without a condition (a deleted LB) removes it as well.
            ConditionChange::Keep | ConditionChange::Remove => {
                status_patch(service, ingress, None, now)
            }
        }
    }

    /// The merge patch for the annotations, or `None` when they already say the same.
    pub fn annotations_patch(&self, service: &Service) -> Option<Value> {
        annotation_changes(service, &self.annotations)
    }

    /// The merge patch for the finalizer, or `None` when it is already as wanted.
    pub fn finalizer_patch(&self, service: &Service) -> Option<Value> {
        match self.finalizer {
            FinalizerChange::Keep => None,
            FinalizerChange::Add => add_finalizer_patch(service),
            FinalizerChange::Remove => remove_finalizer_patch(service),
        }
    }
}

/// The condition reason of a failed pass.
pub fn failure_reason(kind: FailureKind) -> Reason {
    match kind {
        FailureKind::Quota => Reason::QuotaExceeded,
        FailureKind::Cloud => Reason::CloudError,
    }
}

fn notice_events(notices: &[Notice]) -> impl Iterator<Item = EventEffect> + '_ {
    notices
        .iter()
        .map(|n| EventEffect::new(true, &n.reason, n.message.clone()).once())
}

/// What the controller writes to `service` for `outcome`. Pure: the engine applies it, `plan`
/// prints it.
pub fn effects(service: &Service, outcome: Outcome<'_>) -> Effects {
    let mut e = Effects::default();
    match outcome {
        Outcome::Starting => e.finalizer = FinalizerChange::Add,
        Outcome::Disabled { why, first } => {
            // One Warning per Service: per process (`first`), and across restarts through
            // the condition written with it.
            let condition = WantedCondition::new(Reason::Disabled, why);
            if first && !condition_already_says(service, &condition) {
                e.events
                    .push(EventEffect::new(true, reasons::DISABLED, why));
            }
            e.condition = ConditionChange::Set(condition);
        }
        Outcome::Invalid { problems } => {
            let message = problems.join("; ");
            let condition = WantedCondition::new(Reason::InvalidAnnotation, message.clone());
            // Once per spec across restarts and leader changes: the condition written with
            // the Event is what says it was sent.
            if !condition_already_says(service, &condition) {
                e.events
                    .push(EventEffect::new(true, reasons::INVALID, message).once());
            }
            e.condition = ConditionChange::Set(condition);
        }
        Outcome::Progressed {
            notices,
            first,
            creating,
        } => {
            e.events.extend(notice_events(notices));
            if first {
                e.events.push(EventEffect::new(
                    false,
                    reasons::ENSURING,
                    "Ensuring load balancer",
                ));
            }
            let message = if creating {
                "creating the load balancer"
            } else {
                "updating the load balancer"
            };
            e.condition = ConditionChange::Set(WantedCondition::new(Reason::Provisioning, message));
        }
        Outcome::Busy {
            lb_status,
            creating,
        } => {
            let message = if creating {
                format!("creating the load balancer ({lb_status})")
            } else {
                format!("load balancer is {lb_status}")
            };
            e.condition = ConditionChange::Set(WantedCondition::new(Reason::Provisioning, message));
        }
        Outcome::Ready {
            published,
            notices,
            ended,
        } => {
            e.events.extend(notice_events(notices));
            for (key, value) in [
                (ANN_LB_ID, &published.load_balancer_id),
                (ANN_LB_ADDRESS, &published.load_balancer_address),
            ] {
                if let Some(value) = value {
                    e.annotations.insert(key.to_string(), Some(value.clone()));
                }
            }
            e.ingress = IngressChange::Set(published.ingress.clone());
            e.condition = ConditionChange::Set(WantedCondition::new(
                Reason::Ready,
                match &published.load_balancer_id {
                    Some(id) => format!("load balancer {id} is ACTIVE"),
                    None => "load balancer is ACTIVE".to_string(),
                },
            ));
            match ended {
                Some(Change::Created) => e.events.push(
                    EventEffect::new(false, reasons::ENSURED, "Ensured load balancer")
                        .after_writes(),
                ),
                Some(Change::Updated) => e.events.push(
                    EventEffect::new(false, reasons::UPDATED, "Updated load balancer")
                        .after_writes(),
                ),
                None => {}
            }
        }
        Outcome::Failed { failure, cleanup } => {
            let reason = if cleanup {
                reasons::DELETE_FAILED
            } else {
                reasons::SYNC_FAILED
            };
            e.events.push(EventEffect::new(
                true,
                reason,
                format!("Error syncing load balancer: {}", failure.message),
            ));
            // A deleted Service's status is of no interest to anyone.
            if service.metadata.deletion_timestamp.is_none() {
                e.condition = ConditionChange::Set(WantedCondition::new(
                    failure_reason(failure.kind),
                    failure.message.clone(),
                ));
            }
        }
        Outcome::Deleting { first } => {
            if first {
                e.events.push(EventEffect::new(
                    false,
                    reasons::DELETING,
                    "Deleting load balancer",
                ));
            }
        }
        Outcome::CleanupDisabled { why } => {
            // Without the cloud nothing can be deleted; holding the finalizer would only
            // block the Service (and its namespace) forever. Orphan GC cleans up once
            // re-enabled.
            e.events.push(
                EventEffect::new(
                    true,
                    reasons::DISABLED,
                    format!("cannot delete the load balancer: {why}; anything left in the cloud is removed by orphan collection once enabled"),
                )
                .once(),
            );
            e.finalizer = FinalizerChange::Remove;
        }
        Outcome::Deleted { service_stays } => {
            if service_stays {
                e.ingress = IngressChange::Cleared;
                e.condition = ConditionChange::Remove;
                e.annotations.insert(ANN_LB_ADDRESS.to_string(), None);
            }
            e.finalizer = FinalizerChange::Remove;
            e.events.push(
                EventEffect::new(false, reasons::DELETED, "Deleted load balancer").after_writes(),
            );
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ingress, now, svc};
    use super::super::{annotations_patch, clear_address_patch, FINALIZER};
    use super::*;

    #[test]
    fn effects_word_each_outcome_as_the_engine_writes_it() {
        let s = svc("LoadBalancer", None);
        let condition = |e: &Effects| match &e.condition {
            ConditionChange::Set(c) => (c.reason, c.message.clone()),
            other => panic!("no condition: {other:?}"),
        };
        let busy = effects(
            &s,
            Outcome::Busy {
                lb_status: "PENDING_CREATE",
                creating: true,
            },
        );
        assert_eq!(
            condition(&busy),
            (
                Reason::Provisioning,
                "creating the load balancer (PENDING_CREATE)".into()
            )
        );
        assert!(busy.events.is_empty());
        let notices = [Notice {
            reason: model::WarningReason::MeltdownProtection.as_str().into(),
            message: "kept".into(),
        }];
        let progressed = effects(
            &s,
            Outcome::Progressed {
                notices: &notices,
                first: true,
                creating: false,
            },
        );
        let reasons: Vec<&str> = progressed
            .events
            .iter()
            .map(|e| e.reason.as_str())
            .collect();
        assert_eq!(reasons, ["MeltdownProtection", reasons::ENSURING]);
        assert!(progressed.events[0].once && !progressed.events[1].once);
        let published = Published {
            ingress: vec![ingress("127.200.0.5")],
            load_balancer_id: Some("lb-1".into()),
            load_balancer_address: Some("127.200.0.5".into()),
        };
        let ready = effects(
            &s,
            Outcome::Ready {
                published: &published,
                notices: &[],
                ended: Some(Change::Created),
            },
        );
        assert_eq!(
            condition(&ready),
            (Reason::Ready, "load balancer lb-1 is ACTIVE".into())
        );
        assert_eq!(ready.annotations.len(), 2);
        assert!(ready.events[0].after_writes);
        assert_eq!(
            ready.annotations_patch(&s),
            annotations_patch(&s, &published)
        );
    }

    #[test]
    fn effects_of_a_cleanup_and_of_a_repeated_warning() {
        let mut s = svc("LoadBalancer", None);
        s.metadata.finalizers = Some(vec![FINALIZER.into()]);
        s.metadata.annotations = Some([(ANN_LB_ADDRESS.to_string(), "1.2.3.4".to_string())].into());
        let gone = effects(&s, Outcome::Deleting { first: true }).then(effects(
            &s,
            Outcome::Deleted {
                service_stays: true,
            },
        ));
        assert_eq!(gone.events.len(), 2);
        assert_eq!(gone.finalizer, FinalizerChange::Remove);
        assert_eq!(gone.ingress, IngressChange::Cleared);
        assert_eq!(gone.annotations_patch(&s), clear_address_patch(&s));
        assert!(gone.finalizer_patch(&s).is_some());
        // An invalid Service whose condition already says so gets no second Warning.
        let problems = ["lb-method: bad".to_string()];
        let first = effects(
            &s,
            Outcome::Invalid {
                problems: &problems,
            },
        );
        assert_eq!(first.events.len(), 1);
        let patch = first.status_patch(&s, now()).unwrap();
        s.status = Some(serde_json::from_value(patch["status"].clone()).unwrap());
        assert!(effects(
            &s,
            Outcome::Invalid {
                problems: &problems
            }
        )
        .events
        .is_empty());
        // A failed deletion of a deleted Service writes no condition.
        s.metadata.deletion_timestamp = Some(now());
        let failed = effects(
            &s,
            Outcome::Failed {
                failure: &Failure::cloud("boom"),
                cleanup: true,
            },
        );
        assert_eq!(failed.condition, ConditionChange::Keep);
        assert_eq!(failed.events[0].reason, reasons::DELETE_FAILED);
    }
}
