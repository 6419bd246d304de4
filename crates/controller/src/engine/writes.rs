//! What the engine writes to the Kubernetes API: merge patches, Events (each once per input
//! where asked), and the report of a failed cloud pass. Uses [`super::memory`] and
//! [`super::backoff`].

use std::time::Instant;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::backoff::{backoff, ERROR_BASE, ERROR_CAP};
use super::memory::input_hash;
use super::{Engine, EngineError};
use crate::backend::{Failure, FailureKind, LoadBalancers, Notice};
use crate::metrics::LbState;
use crate::status::{self, Reason, WantedCondition};

pub(super) fn now() -> Time {
    Time(Timestamp::now())
}

impl<B: LoadBalancers> Engine<B> {
    pub(super) fn api(&self, service: &Service) -> Api<Service> {
        Api::namespaced(
            self.client.clone(),
            service.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    /// Send an Event unless the same (reason, message) was already sent for this input.
    pub(super) async fn event(
        &self,
        service: &Service,
        type_: EventType,
        reason: &str,
        message: String,
        once: bool,
    ) {
        let key = status::key(service);
        let message = status::truncate(message);
        if once {
            let input = input_hash(service);
            let fresh = self.with_memory(&key, |m| m.first_send(input, reason, &message));
            if !fresh {
                return;
            }
        }
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(message),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&ev, &service.object_ref(&())).await {
            warn!(service = %key, %reason, error = %err, "cannot record Event");
        }
    }

    pub(super) async fn notices(&self, service: &Service, notices: &[Notice]) {
        for n in notices {
            if n.reason == "MeltdownProtection" {
                self.metrics.meltdown();
            }
            self.event(
                service,
                EventType::Warning,
                &n.reason,
                n.message.clone(),
                true,
            )
            .await;
        }
    }

    pub(super) async fn patch_status(
        &self,
        service: &Service,
        patch: serde_json::Value,
    ) -> Result<(), EngineError> {
        let name = service.name_any();
        self.api(service)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    pub(super) async fn patch_meta(
        &self,
        service: &Service,
        patch: serde_json::Value,
    ) -> Result<(), EngineError> {
        let name = service.name_any();
        self.api(service)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    pub(super) async fn set_condition(
        &self,
        service: &Service,
        condition: WantedCondition,
    ) -> Result<(), EngineError> {
        if let Some(patch) = status::status_patch(service, None, Some(&condition), now()) {
            self.patch_status(service, patch).await?;
        }
        Ok(())
    }

    pub(super) async fn failure(
        &self,
        service: &Service,
        key: &str,
        failure: Failure,
        reason: &str,
    ) -> Result<Action, EngineError> {
        let code = match failure.kind {
            FailureKind::Quota => Reason::QuotaExceeded,
            FailureKind::Cloud => Reason::CloudError,
        };
        self.metrics.failed(code.as_str());
        let input = input_hash(service);
        let attempt = self.with_memory(key, |m| m.failed());
        let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
        self.with_memory(key, |m| m.hold_failed(input, Instant::now() + delay));
        warn!(service = %key, error = %failure.message, ?delay, "cloud pass failed");
        self.event(
            service,
            EventType::Warning,
            reason,
            format!("Error syncing load balancer: {}", failure.message),
            false,
        )
        .await;
        if service.metadata.deletion_timestamp.is_none() {
            self.set_condition(service, WantedCondition::new(code, failure.message))
                .await?;
        }
        self.metrics.set_state(key, Some(LbState::Error));
        Ok(Action::requeue(delay))
    }
}
