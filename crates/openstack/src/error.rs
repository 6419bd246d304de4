//! The one error type of every OpenStack call, and the parsing of the clouds' error bodies
//! (Neutron, Octavia, Keystone) into a readable message. It must not know how requests are
//! sent or retried; it only classifies an answer.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Which call failed, e.g. `GET network /v2.0/floatingips`. Never carries a query string
/// body or header, so it cannot leak a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub method: String,
    pub service: String,
    pub path: String,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.service, self.path)
    }
}

/// Everything that can go wrong talking to OpenStack. The cloud's own message is carried where
/// there is one, so the controller can put it into an Event or a Service condition.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{op}: not found: {message}")]
    NotFound { op: Op, message: String },
    /// 409: the object is locked (PENDING_*), immutable, or in use.
    #[error("{op}: conflict: {message}")]
    Conflict { op: Op, message: String },
    /// 412: an If-Match `revision_number` no longer matches; re-read and retry.
    #[error("{op}: precondition failed (revision changed): {message}")]
    PreconditionFailed { op: Op, message: String },
    #[error("{op}: unauthorized: {message}")]
    Unauthorized { op: Op, message: String },
    #[error("{op}: forbidden: {message}")]
    Forbidden { op: Op, message: String },
    #[error("{op}: quota exceeded: {message}")]
    QuotaExceeded { op: Op, message: String },
    #[error("{op}: rate limited (retry after {retry_after:?}): {message}")]
    RateLimited {
        op: Op,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{op}: bad request: {message}")]
    BadRequest { op: Op, message: String },
    #[error("{op}: server error {status}: {message}")]
    Server {
        op: Op,
        status: u16,
        message: String,
    },
    #[error("{op}: transport error: {message}")]
    Transport { op: Op, message: String },
    #[error("{op}: timed out after {after:?}")]
    Timeout { op: Op, after: Duration },
    #[error("{op}: cannot decode the answer: {message}")]
    Decode { op: Op, message: String },
    /// The configuration cannot produce a valid request (missing auth-url, no credentials, a
    /// CA file that does not parse, ...).
    #[error("configuration: {0}")]
    Config(String),
    #[error("no endpoint for service type {service_type:?} (interface {interface}, region {region:?}) in the catalog")]
    EndpointNotFound {
        service_type: String,
        interface: String,
        region: Option<String>,
    },
    /// The detected LBaaS generation has no such call (e.g. batch member update on Neutron
    /// LBaaS v2).
    #[error("{what} is not supported by {generation}")]
    Unsupported { what: String, generation: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
    pub fn is_quota(&self) -> bool {
        matches!(self, Error::QuotaExceeded { .. })
    }
    /// The HTTP status behind the error, where there was one.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } => 409,
            Error::PreconditionFailed { .. } => 412,
            Error::Unauthorized { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::RateLimited { .. } => 429,
            Error::BadRequest { .. } => 400,
            Error::Server { status, .. } => *status,
            _ => return None,
        })
    }
    /// A short stable code for metrics labels and Service conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NotFound",
            Error::Conflict { .. } => "Conflict",
            Error::PreconditionFailed { .. } => "PreconditionFailed",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::Forbidden { .. } => "Forbidden",
            Error::QuotaExceeded { .. } => "QuotaExceeded",
            Error::RateLimited { .. } => "RateLimited",
            Error::BadRequest { .. } => "BadRequest",
            Error::Server { .. } => "Server",
            Error::Transport { .. } => "Transport",
            Error::Timeout { .. } => "Timeout",
            Error::Decode { .. } => "Decode",
            Error::Config(_) => "Config",
            Error::EndpointNotFound { .. } => "EndpointNotFound",
            Error::Unsupported { .. } => "Unsupported",
        }
    }
    /// Whether repeating the same (safe) request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Server { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }
    /// The cloud's message (or our description) without the operation prefix.
    pub fn message(&self) -> String {
        match self {
            Error::NotFound { message, .. }
            | Error::Conflict { message, .. }
            | Error::PreconditionFailed { message, .. }
            | Error::Unauthorized { message, .. }
            | Error::Forbidden { message, .. }
            | Error::QuotaExceeded { message, .. }
            | Error::RateLimited { message, .. }
            | Error::BadRequest { message, .. }
            | Error::Server { message, .. }
            | Error::Transport { message, .. }
            | Error::Decode { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl Error {
    /// An answer that cannot be decoded. The decoder's text quotes the offending value, which
    /// can be as large as the answer: it is shortened like an error body.
    pub fn decode(op: Op, message: impl AsRef<str>) -> Error {
        Error::Decode {
            op,
            message: shorten(message.as_ref()),
        }
    }
}

/// What an error body said, whichever service wrote it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CloudMessage {
    /// Neutron's `type` (e.g. `OverQuota`), Octavia's `faultcode`, Keystone's `title`.
    pub kind: Option<String>,
    pub message: String,
}

/// Longest body text kept in an error: enough for any real OpenStack message, short enough that
/// an HTML error page does not flood a log line.
const MAX_MESSAGE: usize = 512;

/// Parses the error bodies of Neutron (`{"NeutronError": {type, message, detail}}`), Octavia
/// (`{faultcode, faultstring, debuginfo}`), Keystone (`{"error": {code, message, title}}`),
/// and falls back to the (shortened) text.
pub fn parse_error_body(body: &[u8]) -> CloudMessage {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(n) = v.get("NeutronError") {
            // Old Neutron plugins put a bare string here.
            if let Some(s) = n.as_str() {
                return CloudMessage {
                    kind: None,
                    message: shorten(s),
                };
            }
            let kind = n.get("type").and_then(Value::as_str).map(str::to_string);
            let mut message = n
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(detail) = n
                .get("detail")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
            {
                message = format!("{message} ({detail})");
            }
            return CloudMessage {
                kind,
                message: shorten(&message),
            };
        }
        if let Some(fs) = v.get("faultstring").and_then(Value::as_str) {
            let kind = v
                .get("faultcode")
                .and_then(Value::as_str)
                .map(str::to_string);
            return CloudMessage {
                kind,
                message: shorten(fs),
            };
        }
        if let Some(e) = v.get("error").filter(|e| e.is_object()) {
            let kind = e.get("title").and_then(Value::as_str).map(str::to_string);
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            return CloudMessage {
                kind,
                message: shorten(message),
            };
        }
        // Webob-style `{"badRequest": {"message": ..., "code": 400}}` and similar.
        if let Some(obj) = v.as_object() {
            if obj.len() == 1 {
                if let Some((k, inner)) = obj.iter().next() {
                    if let Some(m) = inner.get("message").and_then(Value::as_str) {
                        return CloudMessage {
                            kind: Some(k.clone()),
                            message: shorten(m),
                        };
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    CloudMessage {
        kind: None,
        message: shorten(text.trim()),
    }
}

/// Kinds that only repeat what the error variant already says.
fn generic_kind(kind: &str) -> bool {
    let k = kind.to_ascii_lowercase().replace([' ', '_'], "");
    matches!(
        k.as_str(),
        "client"
            | "server"
            | "unauthorized"
            | "forbidden"
            | "notfound"
            | "httpnotfound"
            | "conflict"
            | "badrequest"
            | "httpbadrequest"
    )
}

fn shorten(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Turns a non-success answer into an [`Error`].
pub fn classify(op: Op, status: u16, body: &[u8], retry_after: Option<Duration>) -> Error {
    let cm = parse_error_body(body);
    let kind = cm.kind.as_deref().unwrap_or_default();
    let message = if cm.message.is_empty() {
        cm.kind.clone().unwrap_or_else(|| format!("HTTP {status}"))
    } else if !kind.is_empty() && !cm.message.contains(kind) && !generic_kind(kind) {
        format!("{kind}: {}", cm.message)
    } else {
        cm.message.clone()
    };
    let quota_words = {
        let m = cm.message.to_ascii_lowercase();
        kind == "OverQuota" || m.contains("quota has been met") || m.contains("quota exceeded")
    };
    match status {
        400 => Error::BadRequest { op, message },
        401 => Error::Unauthorized { op, message },
        403 if quota_words => Error::QuotaExceeded { op, message },
        403 => Error::Forbidden { op, message },
        404 => Error::NotFound { op, message },
        409 if quota_words => Error::QuotaExceeded { op, message },
        409 => Error::Conflict { op, message },
        412 => Error::PreconditionFailed { op, message },
        413 => Error::QuotaExceeded { op, message },
        429 => Error::RateLimited {
            op,
            retry_after,
            message,
        },
        s if (400..500).contains(&s) => Error::BadRequest {
            op,
            message: format!("HTTP {s}: {message}"),
        },
        s => Error::Server {
            op,
            status: s,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> Op {
        Op {
            method: "POST".into(),
            service: "network".into(),
            path: "/v2.0/floatingips".into(),
        }
    }

    #[test]
    fn neutron_over_quota_is_quota() {
        let body = br#"{"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['floatingip'].", "detail": ""}}"#;
        let e = classify(op(), 409, body, None);
        assert!(e.is_quota(), "{e:?}");
        assert!(e.to_string().contains("floatingip"));
    }

    #[test]
    fn octavia_quota_and_immutable() {
        let body = br#"{"faultcode": "Client", "faultstring": "Quota has been met for resources: Load Balancer", "debuginfo": null}"#;
        assert!(classify(op(), 403, body, None).is_quota());
        let body = br#"{"faultcode": "Client", "faultstring": "Load Balancer 123 is immutable and cannot be updated.", "debuginfo": null}"#;
        let e = classify(op(), 409, body, None);
        assert!(e.is_conflict());
        assert!(e.message().contains("is immutable and cannot be updated"));
    }

    #[test]
    fn keystone_error_body() {
        let body = br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        let e = classify(op(), 401, body, None);
        assert!(matches!(e, Error::Unauthorized { .. }));
        assert!(e.message().contains("requires authentication"));
    }

    #[test]
    fn plain_text_is_shortened() {
        let body = vec![b'x'; 5000];
        let e = classify(op(), 502, &body, None);
        assert!(e.message().len() < 600);
        assert_eq!(e.status(), Some(502));
    }
}
