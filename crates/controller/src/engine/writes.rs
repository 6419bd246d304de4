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
use crate::backend::{Failure, LoadBalancers};
use crate::metrics::LbState;
use crate::status::{self, Effects};

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

    /// Send the Events of `effects` that go before its writes, or (`after_writes`) those
    /// that report them.
    pub(super) async fn send_events(
        &self,
        service: &Service,
        effects: &Effects,
        after_writes: bool,
    ) {
        for e in effects
            .events
            .iter()
            .filter(|e| e.after_writes == after_writes)
        {
            if e.reason == model::WarningReason::MeltdownProtection.as_str() {
                self.metrics.meltdown();
            }
            let type_ = if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.event(service, type_, &e.reason, e.message.clone(), e.once)
                .await;
        }
    }

    /// The writes of `effects` (annotations, status, finalizer), each only if it changes
    /// something; returns whether the status was written.
    pub(super) async fn write(
        &self,
        service: &Service,
        effects: &Effects,
    ) -> Result<bool, EngineError> {
        if let Some(patch) = effects.annotations_patch(service) {
            self.patch_meta(service, patch).await?;
        }
        let status_patch = effects.status_patch(service, now());
        let status_written = status_patch.is_some();
        if let Some(patch) = status_patch {
            self.patch_status(service, patch).await?;
        }
        if let Some(patch) = effects.finalizer_patch(service) {
            self.patch_meta(service, patch).await?;
        }
        Ok(status_written)
    }

    /// Everything `outcome` writes to the Service: Events, writes, then the Events that
    /// report the writes.
    pub(super) async fn apply(
        &self,
        service: &Service,
        outcome: status::Outcome<'_>,
    ) -> Result<(), EngineError> {
        let effects = status::effects(service, outcome);
        self.send_events(service, &effects, false).await;
        self.write(service, &effects).await?;
        self.send_events(service, &effects, true).await;
        Ok(())
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

    /// A failed cloud pass (`cleanup`: while deleting): backoff, hold, Event and condition.
    pub(super) async fn failure(
        &self,
        service: &Service,
        key: &str,
        failure: Failure,
        cleanup: bool,
    ) -> Result<Action, EngineError> {
        self.metrics
            .failed(status::failure_reason(failure.kind).as_str());
        let input = input_hash(service);
        let attempt = self.with_memory(key, |m| m.failed());
        let delay = backoff(attempt, ERROR_BASE, ERROR_CAP);
        self.with_memory(key, |m| m.hold_failed(input, Instant::now() + delay));
        warn!(service = %key, error = %failure.message, ?delay, "cloud pass failed");
        self.apply(
            service,
            status::Outcome::Failed {
                failure: &failure,
                cleanup,
            },
        )
        .await?;
        self.metrics.set_state(key, Some(LbState::Error));
        Ok(Action::requeue(delay))
    }
}
