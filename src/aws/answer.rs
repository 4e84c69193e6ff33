//! Reading an AWS endpoint's answer: status, error type and body (bounded), with a failure to get
//! one turned into an [`AwsError`] naming the operation. Shared by ECR, STS, IMDS and the
//! container endpoint.

use ureq::Body;
use ureq::http::Response;

use super::error::{AwsError, AwsErrorKind};

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
/// reading at most `limit` bytes of body.
pub fn receive(
    operation: &str,
    limit: u64,
    send: impl FnOnce() -> Result<Response<Body>, ureq::Error>,
) -> Result<Answer, AwsError> {
    let transport =
        |e: ureq::Error| AwsError::new(operation, AwsErrorKind::Transport(e.to_string()));
    crate::shutdown::abortable(|| {
        let response = send()?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .into_body()
            .with_config()
            .limit(limit)
            .read_to_string()?;
        Ok(Answer {
            status,
            error_type,
            body,
        })
    })
    .map_err(transport)
}
