//! The error of a Kubernetes API call, read from the `Status` object the API server sends (or
//! from a plain-text answer, as kubectl proxy's 403 and priority-and-fairness's 429 are).

use std::fmt;
use std::time::Duration;

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

/// The longest message kept from an answer (after masking): a Status message, a cause, a
/// plain-text body, or what the JSON parser said about an answer.
pub const MAX_MESSAGE_CHARS: usize = 300;
/// At most this many `details.causes` are kept.
const MAX_CAUSES: usize = 16;

/// What went wrong in a call to the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeError {
    /// No connection could be made (refused, no route, name not found, connect timeout): the API
    /// server is not there. Not retried by the request; the daemon's loop tries again later.
    Unreachable {
        /// `GET /api/v1/...`
        request: String,
        /// What the transport said.
        message: String,
    },
    /// Connected, but no complete answer: reset, or timed out while waiting or reading.
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
        /// Status `message`, or the plain-text body (masked, then cut).
        message: String,
        /// Status `details.causes`.
        causes: Vec<Cause>,
        /// `Retry-After` (header or `details.retryAfterSeconds`).
        retry_after: Option<Duration>,
    },
    /// An answer that breaks the protocol: larger than its cap, not UTF-8, not JSON of the shape
    /// the API promises, a line too long, a name that is not a Kubernetes name, a paging loop.
    /// Not retried: the same server would send the same thing again.
    Protocol {
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

    /// Whether the API server could not be reached at all (nothing listening, no route).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KubeError::Unreachable { .. })
    }

    /// Whether TLS failed (the server's certificate is not vouched for by the CA we trust).
    pub fn is_tls(&self) -> bool {
        matches!(self, KubeError::Tls { .. })
    }

    /// Whether the same request may succeed if sent again at once: connected but no complete
    /// answer, 429, 5xx. An unreachable server is the daemon loop's to retry (with its own
    /// backoff), never the request's, so the two retries never nest.
    pub fn is_transient(&self) -> bool {
        match self {
            KubeError::Transport { .. } => true,
            KubeError::Api { code, .. } => *code == 429 || *code >= 500,
            _ => false,
        }
    }

    /// A protocol error about `request`; `message` is masked and cut.
    pub fn protocol(request: &str, message: &str) -> KubeError {
        KubeError::Protocol {
            request: request.to_string(),
            message: bounded_text(message, MAX_MESSAGE_CHARS),
        }
    }

    /// Builds the error from an error answer (already bounded by the caller's read cap).
    pub fn from_response(
        request: String,
        code: u16,
        retry_after_header: Option<&str>,
        body: &str,
    ) -> KubeError {
        let mut retry_after = retry_after_header
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let (reason, message, causes) = match serde_json::from_str::<StatusBody>(body) {
            Ok(status) if status.kind.as_deref() == Some("Status") => {
                let details = status.details.unwrap_or_default();
                if retry_after.is_none() {
                    retry_after = details.retry_after_seconds.map(Duration::from_secs);
                }
                let causes = details
                    .causes
                    .unwrap_or_default()
                    .into_iter()
                    .take(MAX_CAUSES)
                    .map(|c| Cause {
                        reason: bounded_text(&c.reason.unwrap_or_default(), MAX_MESSAGE_CHARS),
                        message: bounded_text(&c.message.unwrap_or_default(), MAX_MESSAGE_CHARS),
                        field: bounded_text(&c.field.unwrap_or_default(), MAX_MESSAGE_CHARS),
                    })
                    .collect();
                (
                    bounded_text(&status.reason.unwrap_or_default(), MAX_MESSAGE_CHARS),
                    bounded_text(&status.message.unwrap_or_default(), MAX_MESSAGE_CHARS),
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

/// The fields of a Status the daemon reads; everything else is skipped unread.
#[derive(serde::Deserialize)]
struct StatusBody {
    kind: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    details: Option<StatusDetails>,
}

#[derive(serde::Deserialize, Default)]
struct StatusDetails {
    #[serde(rename = "retryAfterSeconds")]
    retry_after_seconds: Option<u64>,
    causes: Option<Vec<StatusCause>>,
}

#[derive(serde::Deserialize)]
struct StatusCause {
    reason: Option<String>,
    message: Option<String>,
    field: Option<String>,
}

/// The first line of a plain-text body, masked and bounded, for messages.
fn first_line(body: &str) -> String {
    let masked = crate::sensitive::scrub(body);
    let line = masked.trim().lines().next().unwrap_or_default();
    bounded_text(line, MAX_MESSAGE_CHARS)
}

/// Text from outside, made fit for a message: registered credentials masked first (so a cut can
/// never leave a piece of one), then control characters escaped, then cut to `max_chars`
/// characters (on a character boundary), saying how long it was.
pub fn bounded_text(text: &str, max_chars: usize) -> String {
    let masked = crate::sensitive::scrub(text);
    let mut out = String::with_capacity(masked.len().min(max_chars + 32));
    for (kept, c) in masked.chars().enumerate() {
        if kept >= max_chars {
            out.push_str(&format!("... ({} bytes in all)", masked.len()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for KubeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeError::Unreachable { request, message } => {
                write!(f, "{request}: cannot connect: {message}")
            }
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
            KubeError::Protocol { request, message } => {
                write!(f, "{request}: protocol error: {message}")
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
    fn a_huge_status_message_is_masked_then_cut_and_its_newlines_escaped() {
        crate::sensitive::register("hostile-echoed-credential-0123456789");
        let message = format!(
            "forged\ncycle done {} hostile-echoed-credential-0123456789",
            "x".repeat(290)
        );
        let body = serde_json::json!({"kind": "Status", "code": 500, "message": message,
            "reason": "InternalError"})
        .to_string();
        let e = KubeError::from_response("GET /x".into(), 500, None, &body);
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("forged\\ncycle"), "{text}");
        assert!(!text.contains("hostile-echoed"), "{text}");
        assert!(text.len() < 400, "{}", text.len());
        // A cut inside a credential leaves no piece of it: the mask came first.
        let cut_inside = format!("{}hostile-echoed-credential-0123456789", "y".repeat(290));
        assert!(!bounded_text(&cut_inside, 300).contains("hostile"));
    }

    #[test]
    fn a_cut_keeps_whole_characters() {
        let text = "é".repeat(400);
        let cut = bounded_text(&text, 300);
        assert!(cut.starts_with(&"é".repeat(300)), "{cut}");
        assert!(cut.ends_with("(800 bytes in all)"), "{cut}");
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

    #[test]
    fn a_terminating_namespace_is_told_by_its_cause_or_its_message_and_rbac_is_not_it() {
        let status = |message: &str, causes: &str| {
            format!(
                r#"{{"kind":"Status","status":"Failure","reason":"Forbidden","code":403,"message":"{message}","details":{{"causes":[{causes}]}}}}"#
            )
        };
        let create = || "POST /api/v1/namespaces/x/secrets".to_string();
        // The cause alone (a server whose message reads otherwise).
        let by_cause = status("forbidden", r#"{"reason":"NamespaceTerminating"}"#);
        assert!(
            KubeError::from_response(create(), 403, None, &by_cause).is_namespace_terminating()
        );
        // The message alone (an older server without the cause).
        let by_message = status(
            "unable to create new content in namespace x because it is being terminated",
            "",
        );
        assert!(
            KubeError::from_response(create(), 403, None, &by_message).is_namespace_terminating()
        );
        // An RBAC refusal, and the cause on another code, are not.
        let rbac = status(
            r#"secrets is forbidden: User \"system:serviceaccount:ecr:updater\" cannot create resource \"secrets\""#,
            "",
        );
        assert!(!KubeError::from_response(create(), 403, None, &rbac).is_namespace_terminating());
        assert!(
            !KubeError::from_response(create(), 422, None, &by_cause).is_namespace_terminating()
        );
    }

    #[test]
    fn only_a_status_object_gives_a_reason() {
        // A proxy's JSON that is not a Status cannot pass for AlreadyExists: its text is the
        // message, and it has no reason.
        let body = r#"{"kind":"Secret","reason":"AlreadyExists","message":"m"}"#;
        let e = KubeError::from_response("POST /x".into(), 409, None, body);
        assert!(!e.is_already_exists() && e.is_conflict());
        assert_eq!(e.reason(), "");
        assert_eq!(e.to_string(), format!("POST /x: HTTP 409: {body}"));
    }
}
