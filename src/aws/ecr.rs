//! ECR's `GetAuthorizationToken` (AWS JSON 1.1 protocol, SigV4 service `ecr`): one call gives a
//! token that works for every registry the principal can read in that region for 12 hours.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use time::OffsetDateTime;
use ureq::Agent;

use super::answer::receive;
use super::credentials::Credentials;
use super::error::{AwsError, AwsErrorKind};
use super::sign::{Unsigned, signature_headers};
use crate::secret::Sensitive;

/// Which ECR API a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Private registries (`<account>.dkr.ecr.<region>.amazonaws.com`): SigV4 service `ecr`.
    Private,
    /// ECR Public (`public.ecr.aws`): SigV4 service `ecr-public`, region us-east-1.
    Public,
}

impl Api {
    fn operation(self) -> &'static str {
        match self {
            Api::Private => "ECR GetAuthorizationToken",
            Api::Public => "ECR Public GetAuthorizationToken",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Api::Private => "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            Api::Public => "SpencerFrontendService.GetAuthorizationToken",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Api::Private => "ecr",
            Api::Public => "ecr-public",
        }
    }
}

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Attempts of one call when the failure is a 5xx or no answer (throttling waits for the
/// daemon's backoff instead: hammering a throttled API makes it worse).
const MAX_ATTEMPTS: u32 = 3;
/// The first pause between attempts; it doubles.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// What a registry login needs, from one `authorizationData` entry.
#[derive(Debug, Clone)]
pub struct AuthorizationData {
    /// The user name (always `AWS` in practice).
    pub username: String,
    /// The password (the part after the first colon of the decoded token).
    pub password: Sensitive,
    /// The registry URL, e.g. `https://123456789012.dkr.ecr.eu-west-1.amazonaws.com`
    /// (`https://public.ecr.aws` for ECR Public, whose answer has none).
    pub proxy_endpoint: String,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
}

/// A client for one region's ECR (or ECR Public) endpoint.
pub struct EcrClient {
    agent: Agent,
    endpoint: String,
    region: String,
    api: Api,
}

impl EcrClient {
    /// A client for the private-registry API at `endpoint` (without trailing slash), signing
    /// for `region`.
    pub fn new(agent: Agent, endpoint: &str, region: &str) -> Self {
        Self::for_api(agent, endpoint, region, Api::Private)
    }

    /// A client for either API.
    pub fn for_api(agent: Agent, endpoint: &str, region: &str, api: Api) -> Self {
        EcrClient {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            api,
        }
    }

    /// Calls GetAuthorizationToken, retrying a 5xx or a lost connection a bounded number of times.
    pub fn get_authorization_token(
        &self,
        credentials: &Credentials,
    ) -> Result<AuthorizationData, AwsError> {
        let mut attempt = 1;
        loop {
            match self.call_once(credentials) {
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    let pause = RETRY_PAUSE * 2u32.pow(attempt - 1);
                    log::warn!("{e}; retrying in {:.1} s", pause.as_secs_f64());
                    if crate::shutdown::sleep(pause) {
                        return Err(e);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn call_once(&self, credentials: &Credentials) -> Result<AuthorizationData, AwsError> {
        let operation = self.api.operation();
        let url = format!("{}/", self.endpoint);
        let body = b"{}";
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", self.api.target()),
        ];
        let signed = signature_headers(
            &Unsigned {
                method: "POST",
                url: &url,
                headers: &headers,
                body,
            },
            credentials,
            &self.region,
            self.api.service(),
            SystemTime::now(),
        )
        .map_err(|e| AwsError::new(operation, AwsErrorKind::Credentials(e)))?;

        let mut request = self.agent.post(&url);
        for (name, value) in headers.iter() {
            request = request.header(*name, *value);
        }
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        log::trace!(
            "POST {url} ({}) for {} with key id {}",
            self.api.target(),
            self.region,
            credentials.access_key_id
        );
        let text =
            receive(operation, 1024 * 1024, || request.send(&body[..]))?.into_success(operation)?;
        parse_response(&text).map_err(|e| AwsError::new(operation, AwsErrorKind::Decode(e)))
    }
}

/// A 5xx or no answer: worth another immediate try. Throttling is not (the daemon backs off).
fn is_retryable(e: &AwsError) -> bool {
    match &e.kind {
        AwsErrorKind::Transport(_) => true,
        AwsErrorKind::Service { status, .. } => *status >= 500,
        _ => false,
    }
}

/// Reads the first `authorizationData` entry of a GetAuthorizationToken answer.
pub fn parse_response(text: &str) -> Result<AuthorizationData, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("body is not JSON: {e}"))?;
    // Private ECR answers a list; ECR Public a single object.
    let data = match v.get("authorizationData") {
        Some(Value::Array(list)) => list.first(),
        Some(object @ Value::Object(_)) => Some(object),
        _ => None,
    }
    .ok_or("no authorizationData in the answer")?;
    let token = data
        .get("authorizationToken")
        .and_then(Value::as_str)
        .ok_or("authorizationData has no authorizationToken")?;
    let decoded = STANDARD
        .decode(token.trim())
        .map_err(|_| "authorizationToken is not base64".to_string())?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| "authorizationToken is not UTF-8".to_string())?;
    // Split at the FIRST colon only: the password may contain colons.
    let (username, password) = decoded
        .split_once(':')
        .ok_or("authorizationToken is not user:password")?;
    if username.is_empty() || password.is_empty() {
        return Err("authorizationToken has an empty user or password".to_string());
    }
    let password = Sensitive::new(password);
    let proxy_endpoint = data
        .get("proxyEndpoint")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("https://public.ecr.aws")
        .to_string();
    let expires_at = data
        .get("expiresAt")
        .and_then(Value::as_f64)
        .ok_or("authorizationData has no numeric expiresAt")?;
    let expires_at = OffsetDateTime::from_unix_timestamp_nanos((expires_at * 1e9) as i128)
        .map_err(|_| format!("expiresAt {expires_at} is out of range"))?;
    Ok(AuthorizationData {
        username: username.to_string(),
        password,
        proxy_endpoint,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(token_plain: &str) -> String {
        format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":1.7e9,"proxyEndpoint":"https://1.dkr.ecr.eu-west-1.amazonaws.com"}}]}}"#,
            STANDARD.encode(token_plain)
        )
    }

    #[test]
    fn splits_at_the_first_colon_only() {
        let d = parse_response(&answer("AWS:pass:with:colons")).expect("parsed");
        assert_eq!(d.username, "AWS");
        assert_eq!(d.password.expose(), "pass:with:colons");
        assert_eq!(
            d.proxy_endpoint,
            "https://1.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(d.expires_at.unix_timestamp(), 1_700_000_000);
    }

    #[test]
    fn long_passwords_are_kept_whole() {
        let long = "x".repeat(5000);
        let d = parse_response(&answer(&format!("AWS:{long}"))).expect("parsed");
        assert_eq!(d.password.expose().len(), 5000);
    }

    #[test]
    fn ecr_public_answers_one_object_without_endpoint() {
        let text = format!(
            r#"{{"authorizationData":{{"authorizationToken":"{}","expiresAt":1.7e9}}}}"#,
            STANDARD.encode("AWS:public-password")
        );
        let d = parse_response(&text).expect("parsed");
        assert_eq!(d.password.expose(), "public-password");
        assert_eq!(d.proxy_endpoint, "https://public.ecr.aws");
    }

    #[test]
    fn malformed_answers_are_refused() {
        assert!(
            parse_response("{}")
                .expect_err("no data")
                .contains("authorizationData")
        );
        assert!(
            parse_response(&answer("no-colon"))
                .expect_err("no colon")
                .contains("user:password")
        );
        assert!(
            parse_response(&answer("AWS:"))
                .expect_err("empty")
                .contains("empty")
        );
        assert!(parse_response(r#"{"authorizationData":[{"authorizationToken":"%%%","expiresAt":1,"proxyEndpoint":"x"}]}"#)
            .expect_err("bad b64")
            .contains("base64"));
    }
}
