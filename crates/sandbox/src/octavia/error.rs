//! The errors of the load-balancer API, independent of the flavor that renders them
//! (Octavia's faultstring or Neutron's NeutronError). It must not know HTTP routing.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::Flavor;
use crate::errors::ApiError;

/// One API error: status, message in Octavia's wording, and the exception class Neutron
/// LBaaS v2 would name in `NeutronError.type`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct LbError {
    pub status: StatusCode,
    pub message: String,
    pub neutron_type: &'static str,
}

impl LbError {
    pub fn new(status: StatusCode, neutron_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            neutron_type,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    /// Octavia's `ValidationException`.
    pub fn validation(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Validation failure: {detail}"))
    }

    /// Octavia's `NotFound`: "Load Balancer <id> not found."
    pub fn not_found(resource: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "EntityNotFound",
            format!("{resource} {id} not found."),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    /// A child mutation while the parent load balancer is locked.
    pub fn immutable(resource: &str, id: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "StateInvalid",
            format!("{resource} {id} is immutable and cannot be updated."),
        )
    }

    /// A mutation of the load balancer itself while it is locked.
    pub fn pending_state(state: &str, id: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "StateInvalid",
            format!("Invalid state {state} of loadbalancer resource {id}"),
        )
    }

    pub fn quota(resource: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "OverQuota",
            format!("Quota has been met for resources: {resource}"),
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            "Policy does not allow this request to be performed.",
        )
    }

    /// The provider driver refuses an option (`ProviderUnsupportedOptionError`).
    pub fn provider_unsupported(provider: &str, what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("Provider '{provider}' does not support a requested option: {what}"),
        )
    }

    pub fn render(self, flavor: Flavor) -> Response {
        match flavor {
            Flavor::Octavia => ApiError::octavia(self.status, self.message).into_response(),
            Flavor::NeutronV2 => {
                // Neutron reports quota exhaustion as a 409 OverQuota, not Octavia's 403.
                let status = if self.neutron_type == "OverQuota" {
                    StatusCode::CONFLICT
                } else {
                    self.status
                };
                ApiError::neutron(status, self.neutron_type, self.message).into_response()
            }
        }
    }
}
