//! SigV4 request signing through `aws-sigv4`: given a request's method, URL, headers and body
//! and a set of credentials, the headers to add (`Authorization`, `X-Amz-Date`, and
//! `X-Amz-Security-Token` for session credentials).

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::keys::Credentials;

/// A request to sign: what SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct Unsigned<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Full URL.
    pub url: &'a str,
    /// Headers that will be sent (besides Host, which comes from the URL).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// The headers to add to sign a request. The error is a short reason without any credential.
pub fn signature_headers(
    request: &Unsigned<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity: Identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        None,
        "k8s-ecrupdater",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let request = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| format!("request cannot be signed: {e}"))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| format!("signing failed: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::Sensitive;
    use std::time::Duration;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Sensitive::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Sensitive::new),
            expires_at: None,
            source: "test",
        }
    }

    #[test]
    fn signs_with_the_credential_scope_and_no_secret() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        let headers = signature_headers(
            &Unsigned {
                method: "POST",
                url: "https://api.ecr.eu-west-1.amazonaws.com/",
                headers: &[("content-type", "application/x-amz-json-1.1")],
                body: b"{}",
            },
            &creds(None),
            "eu-west-1",
            "ecr",
            t,
        )
        .expect("signed");
        let auth = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .expect("authorization header");
        assert!(
            auth.1.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/ecr/aws4_request"
            ),
            "{}",
            auth.1
        );
        assert!(!auth.1.contains("wJalrXUtnFEMI"));
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "x-amz-date" && v == "20150830T123600Z")
        );
        assert!(!headers.iter().any(|(n, _)| n == "x-amz-security-token"));
    }

    #[test]
    fn session_credentials_send_the_token() {
        let headers = signature_headers(
            &Unsigned {
                method: "POST",
                url: "http://127.0.0.1:5000/",
                headers: &[],
                body: b"{}",
            },
            &creds(Some("session-token-value")),
            "us-east-1",
            "ecr",
            SystemTime::now(),
        )
        .expect("signed");
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "x-amz-security-token" && v == "session-token-value")
        );
    }
}
