//! The error of a Kubernetes API call, read from the `Status` object the API server sends (or
//! from a plain-text answer, as kubectl proxy's 403 and priority-and-fairness's 429 are).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// One `details.causes` entry of a Status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cause {
    /// E.g. `FieldValueInvalid`, `NamespaceTerminating`.
    pub reason: String,
    /// Human-readable text.
    pub message: String,
    /// The field, e.g. `metadata.namespace`.
    pub field: String,
}

/// What went wrong in a call to the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeError {
    /// No HTTP answer: refused, reset, timed out, TLS failure.
    Transport {
        /// `GET /api/v1/...`
        request: String,
        /// What the transport said.
        message: String,
    },
    /// The server answered with an error status.
    Api {
        /// `GET /api/v1/...`
        request: String,
        /// HTTP status.
        code: u16,
        /// Status `reason` (e.g. `NotFound`, `AlreadyExists`, `Forbidden`), empty when plain text.
        reason: String,
        /// Status `message`, or the plain-text body.
        message: String,
        /// Status `details.causes`.
        causes: Vec<Cause>,
        /// `Retry-After` (header or `details.retryAfterSeconds`).
        retry_after: Option<Duration>,
    },
    /// A success answer that is not what the API promises.
    Decode {
        /// `GET /api/v1/...`
        request: String,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS handshake failed (an untrusted or wrong certificate): not retried as transient,
    /// since the same certificate will fail again.
    Tls {
        /// `GET /api/v1/...`
        request: String,
        /// What TLS said.
        message: String,
    },
    /// The service-account token or CA could not be read.
    Auth(String),
}

impl KubeError {
    /// The HTTP status, for API errors.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The Status reason, for API errors.
    pub fn reason(&self) -> &str {
        match self {
            KubeError::Api { reason, .. } => reason,
            _ => "",
        }
    }

    /// Whether a cause carries this reason.
    pub fn has_cause(&self, wanted: &str) -> bool {
        matches!(self, KubeError::Api { causes, .. } if causes.iter().any(|c| c.reason == wanted))
    }

    /// `404 NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// `409 AlreadyExists` on create.
    pub fn is_already_exists(&self) -> bool {
        self.code() == Some(409) && self.reason() == "AlreadyExists"
    }

    /// `409 Conflict` (optimistic concurrency or a failed precondition).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409) && self.reason() != "AlreadyExists"
    }

    /// `403` because the namespace is being deleted.
    pub fn is_namespace_terminating(&self) -> bool {
        self.code() == Some(403)
            && (self.has_cause("NamespaceTerminating")
                || matches!(self, KubeError::Api { message, .. } if message.contains("because it is being terminated")))
    }

    /// `410 Gone` (an expired continue token or resourceVersion).
    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }

    /// Whether trying the same request again may succeed: no answer, 429, 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            KubeError::Transport { .. } => true,
            KubeError::Api { code, .. } => *code == 429 || *code >= 500,
            _ => false,
        }
    }

    /// Builds the error from an error answer.
    pub fn from_response(
        request: String,
        code: u16,
        retry_after_header: Option<&str>,
        body: &str,
    ) -> KubeError {
        let mut retry_after = retry_after_header
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let (reason, message, causes) = match serde_json::from_str::<Value>(body) {
            Ok(status) if status.get("kind").and_then(Value::as_str) == Some("Status") => {
                let text =
                    |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
                let details = status.get("details");
                if retry_after.is_none() {
                    retry_after = details
                        .and_then(|d| d.get("retryAfterSeconds"))
                        .and_then(Value::as_u64)
                        .map(Duration::from_secs);
                }
                let causes = details
                    .and_then(|d| d.get("causes"))
                    .and_then(Value::as_array)
                    .map(|causes| {
                        causes
                            .iter()
                            .map(|c| Cause {
                                reason: text(c.get("reason")),
                                message: text(c.get("message")),
                                field: text(c.get("field")),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    text(status.get("reason")),
                    text(status.get("message")),
                    causes,
                )
            }
            _ => (String::new(), first_line(body), Vec::new()),
        };
        KubeError::Api {
            request,
            code,
            reason,
            message,
            causes,
            retry_after,
        }
    }
}

/// The first line of a plain-text body, bounded, for messages.
fn first_line(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}

impl fmt::Display for KubeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeError::Transport { request, message } => {
                write!(f, "{request}: no answer: {message}")
            }
            KubeError::Tls { request, message } => write!(f, "{request}: TLS failed: {message}"),
            KubeError::Api {
                request,
                code,
                reason,
                message,
                ..
            } => {
                write!(f, "{request}: HTTP {code}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            KubeError::Decode { request, message } => {
                write!(f, "{request}: unexpected answer: {message}")
            }
            KubeError::Auth(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for KubeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_terminating_namespace_status() {
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"secrets \"s\" is forbidden: unable to create new content in namespace x because it is being terminated",
            "reason":"Forbidden","details":{"name":"s","kind":"secrets","causes":[{"reason":"NamespaceTerminating",
            "message":"namespace x is being terminated","field":"metadata.namespace"}]},"code":403}"#;
        let e =
            KubeError::from_response("POST /api/v1/namespaces/x/secrets".into(), 403, None, body);
        assert!(e.is_namespace_terminating());
        assert!(!e.is_transient());
        assert_eq!(e.reason(), "Forbidden");
    }

    #[test]
    fn plain_text_429_keeps_retry_after() {
        let e = KubeError::from_response(
            "GET /x".into(),
            429,
            Some("7"),
            "Too many requests, please try again later.\n",
        );
        assert!(e.is_transient());
        match &e {
            KubeError::Api {
                retry_after,
                message,
                ..
            } => {
                assert_eq!(*retry_after, Some(Duration::from_secs(7)));
                assert_eq!(message, "Too many requests, please try again later.");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "GET /x: HTTP 429: Too many requests, please try again later."
        );
    }

    #[test]
    fn already_exists_is_not_a_conflict() {
        let body = r#"{"kind":"Status","status":"Failure","reason":"AlreadyExists","code":409,"message":"secrets \"s\" already exists"}"#;
        let e = KubeError::from_response("POST /x".into(), 409, None, body);
        assert!(e.is_already_exists());
        assert!(!e.is_conflict());
        let body = r#"{"kind":"Status","status":"Failure","reason":"Conflict","code":409,"message":"the object has been modified"}"#;
        assert!(KubeError::from_response("PATCH /x".into(), 409, None, body).is_conflict());
    }
}
