//! Errors: `SandboxError` for starting the sandbox, and `ApiError`, an HTTP error answered in
//! the body shape of the service that raised it (Keystone `{"error": …}`, Neutron
//! `{"NeutronError": …}`, Octavia `{"faultcode", "faultstring", "debuginfo"}`). It must not
//! know which resource failed beyond the message it is given.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::json;

use crate::state::ServiceKind;

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// An HTTP error in the raising service's shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub service: ServiceKind,
    pub status: StatusCode,
    pub message: String,
    /// Neutron's exception class name (`NetworkNotFound`, `HTTPBadRequest`, …); ignored by the
    /// other services. Defaults to the HTTP class name for the status.
    pub neutron_type: Option<String>,
}

impl ApiError {
    pub fn new(service: ServiceKind, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            service,
            status,
            message: message.into(),
            neutron_type: None,
        }
    }

    /// A Neutron error with its exception type, e.g. `("PortNotFound", 404, "Port … could not be found.")`.
    pub fn neutron(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            service: ServiceKind::Network,
            status,
            message: message.into(),
            neutron_type: Some(kind.to_string()),
        }
    }

    pub fn neutron_bad_request(message: impl Into<String>) -> Self {
        Self::neutron(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    pub fn keystone(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(ServiceKind::Identity, status, message)
    }

    pub fn octavia(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(ServiceKind::LoadBalancer, status, message)
    }

    /// keystonemiddleware answers every service's unauthenticated request the same way.
    pub fn unauthorized() -> Self {
        Self::keystone(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }
}

/// `HTTPNotFound`-style class name that webob gives each status.
fn http_class_name(status: StatusCode) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    let camel: String = reason
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    format!("HTTP{camel}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.service {
            ServiceKind::Identity => {
                // 401s from keystonemiddleware protect every service; Keystone itself uses the
                // same shape for all its errors.
                json!({"error": {
                    "code": self.status.as_u16(),
                    "title": self.status.canonical_reason().unwrap_or("Error"),
                    "message": self.message,
                }})
            }
            ServiceKind::Network => json!({"NeutronError": {
                "type": self.neutron_type.unwrap_or_else(|| http_class_name(self.status)),
                "message": self.message,
                "detail": "",
            }}),
            ServiceKind::LoadBalancer => json!({
                "faultcode": if self.status.is_server_error() { "Server" } else { "Client" },
                "faultstring": self.message,
                "debuginfo": null,
            }),
            ServiceKind::Admin => json!({"error": self.message}),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            if let Ok(value) = http::HeaderValue::from_str("Keystone uri=\"\"") {
                response
                    .headers_mut()
                    .insert(http::header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_follow_webob() {
        assert_eq!(http_class_name(StatusCode::NOT_FOUND), "HTTPNotFound");
        assert_eq!(http_class_name(StatusCode::BAD_REQUEST), "HTTPBadRequest");
        assert_eq!(
            http_class_name(StatusCode::SERVICE_UNAVAILABLE),
            "HTTPServiceUnavailable"
        );
    }
}
