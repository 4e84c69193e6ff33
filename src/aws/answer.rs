//! Reading an AWS endpoint's answer: status, error type and body, with the body bounded WHILE it
//! is read (a cap per kind of answer, [`Cap`]), and a failure to get one turned into an
//! [`AwsError`] naming the operation. Shared by ECR, STS, IMDS and the container endpoint, direct
//! or through a proxy.
//!
//! Error classes: no answer at all (refused, reset, timeout) is `Transport`, worth another try;
//! an answer that is too big, not UTF-8 or not valid HTTP is `Protocol`: the peer is broken or
//! hostile, and asking again brings the same answer.

use ureq::Body;
use ureq::http::Response;

use super::error::{AwsError, AwsErrorKind};

/// The most bytes of body read from each kind of AWS answer (errors included). Real answers are
/// far smaller; the parsed `serde_json::Value` or XML of a body this size stays under a few MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// ECR GetAuthorizationToken: about 3 KiB (a 2 KiB token, its endpoint and expiry).
    Ecr,
    /// STS AssumeRole(WithWebIdentity): about 2-4 KiB of XML.
    Sts,
    /// An IMDS or container-endpoint credential document (about 1.5 KiB) or role list.
    Metadata,
    /// The IMDSv2 session token (56 characters).
    ImdsToken,
}

impl Cap {
    /// The cap in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Cap::Ecr => 64 * 1024,
            Cap::Sts => 64 * 1024,
            Cap::Metadata => 16 * 1024,
            Cap::ImdsToken => 4 * 1024,
        }
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `x-amzn-ErrorType` header, when present.
    pub error_type: Option<String>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The body of a 2xx answer, or the error the answer describes.
    pub fn into_success(self, operation: &str) -> Result<String, AwsError> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(AwsError::from_response(
                operation,
                self.status,
                self.error_type.as_deref(),
                &self.body,
            ))
        }
    }
}

/// Reads the answer to a request sent with `send` (run so that a shutdown signal can end it),
/// reading at most `cap` bytes of body: one byte more ends the read with a protocol error.
pub fn receive(
    operation: &str,
    cap: Cap,
    send: impl FnOnce() -> Result<Response<Body>, ureq::Error>,
) -> Result<Answer, AwsError> {
    let read = crate::shutdown::abortable(|| {
        let response = send()?;
        let status = response.status().as_u16();
        if matches!(cap, Cap::Ecr | Cap::Sts) {
            let date = response.headers().get("date").and_then(|v| v.to_str().ok());
            crate::clock::observe(operation, date, time::OffsetDateTime::now_utc());
        }
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect::<String>());
        let body = response
            .into_body()
            .with_config()
            .limit(cap.bytes())
            .read_to_vec()?;
        Ok((status, error_type, body))
    });
    let (status, error_type, body) = read.map_err(|e| classify(operation, cap, e))?;
    let body = String::from_utf8(body).map_err(|_| {
        AwsError::new(
            operation,
            AwsErrorKind::Protocol(format!("HTTP {status} answer is not UTF-8")),
        )
    })?;
    Ok(Answer {
        status,
        error_type,
        body,
    })
}

/// Whether a ureq failure is a broken answer (too big, not HTTP, malformed) rather than none.
pub fn is_broken_answer(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::BodyExceedsLimit(_)
        | ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// A ureq failure as an AWS error of the right class: a broken answer is `Protocol`, no answer
/// `Transport`.
pub fn classify(operation: &str, cap: Cap, e: ureq::Error) -> AwsError {
    // ureq's messages may quote what the peer sent: masked and bounded like any peer text.
    let text = super::error::excerpt(&e.to_string(), 200);
    let kind = match &e {
        ureq::Error::BodyExceedsLimit(_) => AwsErrorKind::Protocol(format!(
            "the answer is larger than {} KiB",
            cap.bytes() / 1024
        )),
        ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => {
            AwsErrorKind::Protocol(format!("the answer is not valid HTTP: {text}"))
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            AwsErrorKind::Protocol(format!("the answer is malformed: {text}"))
        }
        _ => AwsErrorKind::Transport(text),
    };
    AwsError::new(operation, kind)
}
