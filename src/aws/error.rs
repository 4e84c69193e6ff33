//! The error of an AWS call, with the operation, the HTTP status and the AWS error code, read
//! from whichever body the service sent: JSON (`{"__type": "...#Code", "message": ..}`, as ECR
//! answers) or XML (`<Error><Code>..</Code><Message>..</Message>`, as STS and moto answer).
//! Never holds a credential: messages come from the service, and the logger masks them anyway.

use std::fmt;

use serde_json::Value;

/// What went wrong in an AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// No HTTP answer: connect refused, timeout, reset, TLS failure.
    Transport(String),
    /// The service answered with an error status.
    Service {
        /// HTTP status.
        status: u16,
        /// AWS error code, e.g. `ThrottlingException`, `SignatureDoesNotMatch`.
        code: String,
        /// The service's message (may be empty).
        message: String,
    },
    /// A success status with a body that does not hold what it should (not JSON, a field
    /// missing, a value refused): a protocol error, not retried at once.
    Decode(String),
    /// An answer that is broken as an answer: larger than its cap, not UTF-8, not valid HTTP.
    /// A protocol error, not retried at once (the same request brings the same answer).
    Protocol(String),
    /// No credentials could be found or made.
    Credentials(String),
}

/// An AWS error with the operation it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// E.g. `ECR GetAuthorizationToken`, `STS AssumeRole`.
    pub operation: String,
    /// What happened.
    pub kind: AwsErrorKind,
}

impl AwsError {
    /// A new error for `operation`.
    pub fn new(operation: impl Into<String>, kind: AwsErrorKind) -> Self {
        AwsError {
            operation: operation.into(),
            kind,
        }
    }

    /// The AWS error code, when the service sent one.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            AwsErrorKind::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later may help (throttling, 5xx, transport).
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            AwsErrorKind::Transport(_) => true,
            AwsErrorKind::Service { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "ThrottlingException"
                            | "Throttling"
                            | "RequestLimitExceeded"
                            | "TooManyRequestsException"
                    )
            }
            _ => false,
        }
    }

    /// Builds the error from an error answer's status, `x-amzn-ErrorType` header and body.
    pub fn from_response(
        operation: &str,
        status: u16,
        error_type_header: Option<&str>,
        body: &str,
    ) -> Self {
        let (mut code, message) = parse_error_body(body);
        if code.is_empty() {
            code = error_type_header.map(clean_code).unwrap_or_default();
        }
        if code.is_empty() {
            code = format!("HTTP{status}");
        }
        AwsError::new(
            operation,
            AwsErrorKind::Service {
                status,
                code,
                message,
            },
        )
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AwsErrorKind::Transport(e) => write!(f, "{} failed: no answer: {e}", self.operation),
            AwsErrorKind::Service {
                status,
                code,
                message,
            } if message.is_empty() => {
                write!(f, "{} failed: HTTP {status} {code}", self.operation)
            }
            AwsErrorKind::Service {
                status,
                code,
                message,
            } => {
                write!(
                    f,
                    "{} failed: HTTP {status} {code}: {message}",
                    self.operation
                )
            }
            AwsErrorKind::Decode(e) => {
                write!(
                    f,
                    "{} failed: protocol error: unexpected answer: {e}",
                    self.operation
                )
            }
            AwsErrorKind::Protocol(e) => {
                write!(f, "{} failed: protocol error: {e}", self.operation)
            }
            AwsErrorKind::Credentials(e) => write!(f, "{}: {e}", self.operation),
        }
    }
}

impl std::error::Error for AwsError {}

/// The longest error code kept (real ones are under 50 characters).
const MAX_CODE_CHARS: usize = 64;
/// The longest service message kept, in characters, after masking.
const MAX_MESSAGE_CHARS: usize = 300;

/// `aws.protocol#Code:http://...` or `com.amazonaws.ecr#Code` -> `Code`. Anything but letters,
/// digits, `.`, `_` and `-` makes it no code at all (a code goes into log lines and metrics).
fn clean_code(raw: &str) -> String {
    let code = raw.split(':').next().unwrap_or(raw);
    let code = code.rsplit('#').next().unwrap_or(code).trim();
    let plain = code.len() <= MAX_CODE_CHARS
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if plain {
        code.to_string()
    } else {
        String::new()
    }
}

/// (code, message) from a JSON or XML error body; empty strings when absent.
fn parse_error_body(body: &str) -> (String, String) {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
            let code = v
                .get("__type")
                .or_else(|| v.get("code"))
                .or_else(|| v.get("Code"))
                .and_then(Value::as_str)
                .map(clean_code)
                .unwrap_or_default();
            let message = v
                .get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return (code, one_line(&message));
        }
    } else if trimmed.starts_with('<') {
        let code = xml_text(trimmed, "Code")
            .map(|c| clean_code(&c))
            .unwrap_or_default();
        let message = xml_text(trimmed, "Message").unwrap_or_default();
        return (code, one_line(&message));
    }
    (String::new(), String::new())
}

/// The text of the first `<tag>..</tag>` in `xml`, with the five XML entities decoded.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
            .trim()
            .to_string(),
    )
}

/// A piece of text from a peer, fit for an error message: masked FIRST (every registered
/// credential), control characters escaped, then cut to `max_chars` on a character boundary.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let masked = crate::sensitive::scrub(text);
    let mut out = String::new();
    for (i, c) in masked.chars().enumerate() {
        if i >= max_chars {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Messages go into one log line: every registered credential masked FIRST (a cut made before
/// would leave a piece of an echoed credential unmasked), then white space folded, control
/// characters escaped, and the length bounded on a character boundary.
fn one_line(message: &str) -> String {
    let masked = crate::sensitive::scrub(message);
    let mut out = String::new();
    let mut chars = 0usize;
    for (i, word) in masked.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= MAX_MESSAGE_CHARS {
                out.push_str("...");
                return out;
            }
            if c.is_control() {
                let escaped: String = c.escape_default().collect();
                chars += escaped.len();
                out.push_str(&escaped);
            } else {
                out.push(c);
                chars += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_as_ecr_sends_it() {
        let e = AwsError::from_response(
            "ECR GetAuthorizationToken",
            400,
            None,
            r#"{"__type":"com.amazonaws.ecr#ThrottlingException","message":"Rate exceeded"}"#,
        );
        assert_eq!(e.code(), Some("ThrottlingException"));
        assert!(e.is_transient());
        assert_eq!(
            e.to_string(),
            "ECR GetAuthorizationToken failed: HTTP 400 ThrottlingException: Rate exceeded"
        );
    }

    #[test]
    fn xml_error_as_moto_sends_it() {
        let body = "<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code>\
            <Message>The request signature we calculated does not match &amp; so on</Message></Error></Errors></ErrorResponse>";
        let e = AwsError::from_response("ECR GetAuthorizationToken", 403, None, body);
        assert_eq!(e.code(), Some("SignatureDoesNotMatch"));
        assert!(!e.is_transient());
        assert!(e.to_string().contains("HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match & so on"));
    }

    #[test]
    fn an_echoed_credential_is_masked_before_the_cut() {
        let token = format!("FQoGZXIvYXdzE{}", "Q".repeat(600));
        crate::sensitive::register(&token);
        let body =
            format!(r#"{{"__type":"InvalidClientTokenId","message":"bad token {token} given"}}"#);
        let e = AwsError::from_response("STS AssumeRole", 403, None, &body);
        let text = e.to_string();
        assert!(text.contains("bad token *** given"), "{text}");
        assert!(!text.contains("QQQQQQQQQQQQQQQQ"), "{text}");
    }

    #[test]
    fn messages_are_one_bounded_line_cut_on_a_char_boundary() {
        let body = format!(
            r#"{{"__type":"X","message":"line one\nline two\u001b[31m {}"}}"#,
            "\u{e9}".repeat(1000)
        );
        let e = AwsError::from_response("X", 400, None, &body);
        let text = e.to_string();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        assert!(text.contains(r"line one line two\u{1b}[31m"), "{text}");
        assert!(text.ends_with("..."), "{text}");
        let AwsErrorKind::Service { message, .. } = &e.kind else {
            panic!("service error")
        };
        let length = message.chars().count();
        assert!(
            (MAX_MESSAGE_CHARS..=MAX_MESSAGE_CHARS + 3).contains(&length),
            "{length}"
        );
    }

    #[test]
    fn excerpts_are_masked_then_cut() {
        let token = format!("IQoJb3JpZ2luX2Vj{}", "Z".repeat(300));
        crate::sensitive::register(&token);
        let text = excerpt(&format!("ab{token}cd\u{7}"), 10);
        assert_eq!(text, "ab***cd\\u{7}");
        let cut = excerpt(&"\u{e9}".repeat(50), 10);
        assert_eq!(cut, format!("{}...", "\u{e9}".repeat(10)));
    }

    #[test]
    fn odd_codes_are_dropped() {
        let long = format!(r#"{{"__type":"{}"}}"#, "A".repeat(70_000));
        let e = AwsError::from_response("X", 400, None, &long);
        assert_eq!(e.code(), Some("HTTP400"));
        let forged = r#"{"__type":"Bad\ncycle done"}"#;
        let e = AwsError::from_response("X", 400, None, forged);
        assert_eq!(e.code(), Some("HTTP400"));
    }

    #[test]
    fn header_code_and_bare_status() {
        let e = AwsError::from_response(
            "X",
            400,
            Some("UnrecognizedClientException:http://internal"),
            "",
        );
        assert_eq!(e.code(), Some("UnrecognizedClientException"));
        let e = AwsError::from_response("X", 502, None, "<html>bad gateway</html>");
        assert_eq!(e.code(), Some("HTTP502"));
        assert!(e.is_transient());
    }
}
