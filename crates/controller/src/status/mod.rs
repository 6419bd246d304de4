//! What the controller writes back to a Service, as pure functions of the Service as read and
//! the outcome of a reconcile: finalizer, `status.loadBalancer.ingress`, the
//! `LoadBalancerReady` condition and the id/address annotations. Each function returns the
//! merge-patch body only when something differs, so that an unchanged Service costs no write.
//! [`effects`] decides, for each outcome of a pass, the condition, Events, annotations,
//! ingress and finalizer: the engine applies it and `plan` previews it, so the two cannot
//! say different things. Must not know about OpenStack or perform any I/O.

mod effects;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{json, Value};

use crate::backend::{Ingress, Published};

pub use effects::{
    effects, failure_reason, reasons, Change, ConditionChange, Effects, EventEffect,
    FinalizerChange, IngressChange, Outcome,
};

/// Finalizer guarding cleanup, the same name the in-tree service controller uses.
pub const FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";
/// Condition type kept in `status.conditions`.
pub const CONDITION_TYPE: &str = "LoadBalancerReady";
pub const ANN_LB_ID: &str = "loadbalancer.openstack.org/load-balancer-id";
pub const ANN_LB_ADDRESS: &str = "loadbalancer.openstack.org/load-balancer-address";

/// Kubernetes caps condition messages at 32768 bytes; Events at 1 kB. Keep both readable.
const MAX_MESSAGE: usize = 1000;

/// Condition reason codes (SPEC §4 "Service conditions").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Ready,
    Provisioning,
    InvalidAnnotation,
    QuotaExceeded,
    CloudError,
    Disabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ready => "Ready",
            Reason::Provisioning => "Provisioning",
            Reason::InvalidAnnotation => "InvalidAnnotation",
            Reason::QuotaExceeded => "QuotaExceeded",
            Reason::CloudError => "CloudError",
            Reason::Disabled => "Disabled",
        }
    }
}

/// The condition the controller wants on the Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedCondition {
    pub reason: Reason,
    pub message: String,
}

impl WantedCondition {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        WantedCondition {
            reason,
            message: truncate(message.into()),
        }
    }
    /// `True` or `False`, as the condition's status.
    pub fn status(&self) -> &'static str {
        if self.reason == Reason::Ready {
            "True"
        } else {
            "False"
        }
    }
}

/// Cut a message at a char boundary so that it fits a condition or an Event note.
pub fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// `namespace/name`, the key used in logs, metrics and in-memory state.
pub fn key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Whether the Service is of type LoadBalancer.
pub fn is_load_balancer(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .is_some_and(|s| s.type_.as_deref() == Some("LoadBalancer"))
}

/// Whether the Service's `spec.loadBalancerClass` selects this controller (SPEC §1.1): without
/// `--load-balancer-class` exactly the class-less Services, with it exactly that class — never
/// the class-less ones, which belong to the cluster's default implementation.
pub fn class_is_ours(service: &Service, class: Option<&str>) -> bool {
    let theirs = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_class.as_deref());
    theirs == class
}

/// Whether this controller is responsible for the Service (SPEC §1.1): type LoadBalancer and
/// a class that is ours.
pub fn is_managed(service: &Service, class: Option<&str>) -> bool {
    is_load_balancer(service) && class_is_ours(service, class)
}

pub fn has_finalizer(service: &Service) -> bool {
    service
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Merge patch adding our finalizer; carries the resourceVersion so a concurrent edit of the
/// finalizer list makes the write fail (409) instead of silently dropping someone's entry.
pub fn add_finalizer_patch(service: &Service) -> Option<Value> {
    if has_finalizer(service) {
        return None;
    }
    let mut list = service.metadata.finalizers.clone().unwrap_or_default();
    list.push(FINALIZER.to_string());
    Some(
        json!({"metadata": {"finalizers": list, "resourceVersion": service.metadata.resource_version}}),
    )
}

/// Merge patch removing our finalizer (same optimistic locking as adding it).
pub fn remove_finalizer_patch(service: &Service) -> Option<Value> {
    if !has_finalizer(service) {
        return None;
    }
    let list: Vec<String> = service
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    Some(
        json!({"metadata": {"finalizers": list, "resourceVersion": service.metadata.resource_version}}),
    )
}

fn to_k8s(ingress: &Ingress) -> LoadBalancerIngress {
    LoadBalancerIngress {
        ip: ingress.ip.clone(),
        hostname: ingress.hostname.clone(),
        ip_mode: if ingress.ip.is_some() {
            ingress.ip_mode.clone()
        } else {
            None
        },
        ports: None,
    }
}

fn current_ingress(service: &Service) -> Vec<LoadBalancerIngress> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
}

/// Whether the Service already publishes an address.
pub fn has_ingress(service: &Service) -> bool {
    !current_ingress(service).is_empty()
}

fn current_conditions(service: &Service) -> Vec<Condition> {
    service
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
}

/// Whether the Service's condition already says `wanted` for its current generation: the
/// Warning that goes with it was sent when it was written, by this process or an earlier one
/// (a restart, another leader), so it is not sent again.
pub fn condition_already_says(service: &Service, wanted: &WantedCondition) -> bool {
    current_conditions(service).iter().any(|c| {
        c.type_ == CONDITION_TYPE
            && c.status == wanted.status()
            && c.reason == wanted.reason.as_str()
            && c.message == wanted.message
            && c.observed_generation == service.metadata.generation
    })
}

/// Merge patch for the status subresource, or `None` when nothing differs. `ingress: None`
/// leaves the published addresses as they are (a Service that is being updated keeps its IP);
/// `Some(&[])` clears them. Other controllers' conditions are preserved.
pub fn status_patch(
    service: &Service,
    ingress: Option<&[Ingress]>,
    condition: Option<&WantedCondition>,
    now: Time,
) -> Option<Value> {
    let mut patch = serde_json::Map::new();

    if let Some(wanted) = ingress {
        let wanted: Vec<LoadBalancerIngress> = wanted.iter().map(to_k8s).collect();
        if wanted != current_ingress(service) {
            patch.insert("loadBalancer".into(), json!({ "ingress": wanted }));
        }
    }

    let conditions = current_conditions(service);
    let existing = conditions.iter().find(|c| c.type_ == CONDITION_TYPE);
    let new_conditions: Option<Vec<Condition>> = match (condition, existing) {
        (None, None) => None,
        (None, Some(_)) => Some(
            conditions
                .iter()
                .filter(|c| c.type_ != CONDITION_TYPE)
                .cloned()
                .collect(),
        ),
        (Some(w), Some(c))
            if c.status == w.status()
                && c.reason == w.reason.as_str()
                && c.message == w.message =>
        {
            None
        }
        (Some(w), existing) => {
            // lastTransitionTime moves only when the status flips, as the API conventions ask.
            let last_transition_time = match existing {
                Some(c) if c.status == w.status() => c.last_transition_time.clone(),
                _ => now,
            };
            let updated = Condition {
                type_: CONDITION_TYPE.to_string(),
                status: w.status().to_string(),
                reason: w.reason.as_str().to_string(),
                message: w.message.clone(),
                last_transition_time,
                observed_generation: service.metadata.generation,
            };
            let mut list: Vec<Condition> = conditions
                .iter()
                .filter(|c| c.type_ != CONDITION_TYPE)
                .cloned()
                .collect();
            list.push(updated);
            Some(list)
        }
    };
    if let Some(list) = new_conditions {
        patch.insert("conditions".into(), json!(list));
    }

    if patch.is_empty() {
        None
    } else {
        Some(json!({ "status": Value::Object(patch) }))
    }
}

/// Merge patch for the id/address annotations, or `None` when they already say the same.
pub fn annotations_patch(service: &Service, published: &Published) -> Option<Value> {
    let wanted: BTreeMap<String, Option<String>> = [
        (ANN_LB_ID, &published.load_balancer_id),
        (ANN_LB_ADDRESS, &published.load_balancer_address),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), Some(v.clone()?))))
    .collect();
    annotation_changes(service, &wanted)
}

/// Merge patch dropping the address annotation once the load balancer is gone (the id
/// annotation may be the user's own pointer to a shared LB, so it is left alone).
pub fn clear_address_patch(service: &Service) -> Option<Value> {
    annotation_changes(
        service,
        &BTreeMap::from([(ANN_LB_ADDRESS.to_string(), None)]),
    )
}

/// Merge patch setting (`Some`) or removing (`None`) annotations, or `None` when they already
/// say so.
pub(super) fn annotation_changes(
    service: &Service,
    wanted: &BTreeMap<String, Option<String>>,
) -> Option<Value> {
    let current = service.metadata.annotations.as_ref();
    let mut patch = serde_json::Map::new();
    for (key, value) in wanted {
        let now = current.and_then(|a| a.get(key));
        match value {
            Some(v) if now != Some(v) => {
                patch.insert(key.clone(), json!(v));
            }
            None if now.is_some() => {
                patch.insert(key.clone(), Value::Null);
            }
            _ => {}
        }
    }
    if patch.is_empty() {
        None
    } else {
        Some(json!({ "metadata": { "annotations": Value::Object(patch) } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{LoadBalancerStatus, ServiceSpec, ServiceStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;

    pub(super) fn svc(type_: &str, class: Option<&str>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                resource_version: Some("7".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                load_balancer_class: class.map(String::from),
                ..Default::default()
            }),
            status: None,
        }
    }

    pub(super) fn now() -> Time {
        Time(Timestamp::from_second(1_800_000_000).unwrap())
    }

    pub(super) fn ingress(ip: &str) -> Ingress {
        Ingress {
            ip: Some(ip.into()),
            hostname: None,
            ip_mode: Some("VIP".into()),
        }
    }

    #[test]
    fn class_filtering_follows_spec() {
        assert!(is_managed(&svc("LoadBalancer", None), None));
        assert!(!is_managed(&svc("LoadBalancer", Some("other")), None));
        assert!(is_managed(&svc("LoadBalancer", Some("ours")), Some("ours")));
        assert!(!is_managed(
            &svc("LoadBalancer", Some("other")),
            Some("ours")
        ));
        // Beside the default implementation (OCCM, or this controller without a class), a
        // classed instance leaves the class-less Services alone.
        assert!(!is_managed(&svc("LoadBalancer", None), Some("ours")));
        assert!(!is_managed(&svc("ClusterIP", None), None));
        assert!(!is_managed(&svc("NodePort", None), None));
    }

    #[test]
    fn finalizer_patches_are_idempotent_and_keep_others() {
        let mut s = svc("LoadBalancer", None);
        s.metadata.finalizers = Some(vec!["example.com/other".into()]);
        let add = add_finalizer_patch(&s).unwrap();
        assert_eq!(
            add["metadata"]["finalizers"],
            json!(["example.com/other", FINALIZER])
        );
        assert_eq!(add["metadata"]["resourceVersion"], json!("7"));
        s.metadata.finalizers = Some(vec!["example.com/other".into(), FINALIZER.into()]);
        assert!(add_finalizer_patch(&s).is_none());
        let remove = remove_finalizer_patch(&s).unwrap();
        assert_eq!(
            remove["metadata"]["finalizers"],
            json!(["example.com/other"])
        );
        s.metadata.finalizers = None;
        assert!(remove_finalizer_patch(&s).is_none());
    }

    #[test]
    fn status_written_only_when_changed() {
        let mut s = svc("LoadBalancer", None);
        let ready = WantedCondition::new(Reason::Ready, "load balancer lb-1 is ACTIVE");
        let patch = status_patch(&s, Some(&[ingress("127.200.0.5")]), Some(&ready), now()).unwrap();
        assert_eq!(
            patch["status"]["loadBalancer"]["ingress"][0]["ip"],
            json!("127.200.0.5")
        );
        assert_eq!(
            patch["status"]["loadBalancer"]["ingress"][0]["ipMode"],
            json!("VIP")
        );
        assert_eq!(patch["status"]["conditions"][0]["reason"], json!("Ready"));
        assert_eq!(patch["status"]["conditions"][0]["status"], json!("True"));
        assert_eq!(
            patch["status"]["conditions"][0]["observedGeneration"],
            json!(2)
        );

        // Apply the patch to the object as the API server would and ask again: nothing to do.
        let st: ServiceStatus = serde_json::from_value(patch["status"].clone()).unwrap();
        s.status = Some(st);
        assert_eq!(
            status_patch(&s, Some(&[ingress("127.200.0.5")]), Some(&ready), now()),
            None
        );
        // A different address is a write.
        assert!(status_patch(&s, Some(&[ingress("127.200.0.6")]), Some(&ready), now()).is_some());
        // Leaving ingress alone while provisioning only touches the condition.
        let prov = WantedCondition::new(Reason::Provisioning, "load balancer is PENDING_UPDATE");
        let p = status_patch(&s, None, Some(&prov), now()).unwrap();
        assert!(p["status"].get("loadBalancer").is_none());
        assert_eq!(p["status"]["conditions"][0]["status"], json!("False"));
    }

    #[test]
    fn transition_time_moves_only_on_status_flip() {
        let mut s = svc("LoadBalancer", None);
        let earlier = Time(Timestamp::from_second(1_700_000_000).unwrap());
        s.status = Some(ServiceStatus {
            conditions: Some(vec![
                Condition {
                    type_: "Other".into(),
                    status: "True".into(),
                    reason: "X".into(),
                    message: String::new(),
                    last_transition_time: earlier.clone(),
                    observed_generation: None,
                },
                Condition {
                    type_: CONDITION_TYPE.into(),
                    status: "False".into(),
                    reason: "Provisioning".into(),
                    message: "creating".into(),
                    last_transition_time: earlier.clone(),
                    observed_generation: Some(1),
                },
            ]),
            load_balancer: Some(LoadBalancerStatus { ingress: None }),
        });
        let cloud = WantedCondition::new(Reason::CloudError, "409 conflict");
        let p = status_patch(&s, None, Some(&cloud), now()).unwrap();
        let list: Vec<Condition> =
            serde_json::from_value(p["status"]["conditions"].clone()).unwrap();
        assert_eq!(list.len(), 2, "the other controller's condition is kept");
        let ours = list.iter().find(|c| c.type_ == CONDITION_TYPE).unwrap();
        assert_eq!(
            ours.last_transition_time, earlier,
            "still False: no transition"
        );
        let ready = WantedCondition::new(Reason::Ready, "ok");
        let p = status_patch(&s, None, Some(&ready), now()).unwrap();
        let list: Vec<Condition> =
            serde_json::from_value(p["status"]["conditions"].clone()).unwrap();
        let ours = list.iter().find(|c| c.type_ == CONDITION_TYPE).unwrap();
        assert_eq!(ours.last_transition_time, now());
        // Removing our condition keeps the other one.
        let p = status_patch(&s, Some(&[]), None, now()).unwrap();
        let list: Vec<Condition> =
            serde_json::from_value(p["status"]["conditions"].clone()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].type_, "Other");
    }

    #[test]
    fn a_condition_written_for_this_generation_says_its_warning_was_sent() {
        let mut s = svc("LoadBalancer", None);
        s.metadata.generation = Some(3);
        let wanted = WantedCondition::new(Reason::InvalidAnnotation, "lb-method: bad");
        assert!(!condition_already_says(&s, &wanted));
        let patch = status_patch(&s, None, Some(&wanted), now()).unwrap();
        let written: Vec<Condition> =
            serde_json::from_value(patch["status"]["conditions"].clone()).unwrap();
        s.status = Some(ServiceStatus {
            conditions: Some(written),
            ..Default::default()
        });
        assert!(condition_already_says(&s, &wanted), "e.g. after a restart");
        let other = WantedCondition::new(Reason::InvalidAnnotation, "lb-method: worse");
        assert!(
            !condition_already_says(&s, &other),
            "another problem is news"
        );
        s.metadata.generation = Some(4);
        assert!(!condition_already_says(&s, &wanted), "a new spec is news");
    }

    #[test]
    fn annotations_written_only_when_changed() {
        let mut s = svc("LoadBalancer", None);
        let published = Published {
            ingress: vec![],
            load_balancer_id: Some("lb-1".into()),
            load_balancer_address: Some("127.200.0.5".into()),
        };
        let p = annotations_patch(&s, &published).unwrap();
        assert_eq!(p["metadata"]["annotations"][ANN_LB_ID], json!("lb-1"));
        s.metadata.annotations = Some(
            [
                (ANN_LB_ID.to_string(), "lb-1".to_string()),
                (ANN_LB_ADDRESS.to_string(), "127.200.0.5".to_string()),
            ]
            .into(),
        );
        assert!(annotations_patch(&s, &published).is_none());
        assert!(clear_address_patch(&s).is_some());
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE);
        let cut = truncate(long);
        assert!(cut.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
