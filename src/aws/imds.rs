//! The EC2 instance metadata service (IMDS): the instance profile's role credentials.
//!
//! IMDSv2 first (`PUT /latest/api/token`, then GETs carrying the token); IMDSv1 (plain GETs) when
//! the token PUT is refused (403, 404, 405) or never answered after the connection was made,
//! which is what kube2iam-style proxies and a hop limit of 1 look like from a pod. Timeouts are
//! short (1 s to connect, 1 s per answer) so a cluster without IMDS does not stall start-up, and
//! no proxy is ever used: the SDKs do not proxy link-local metadata addresses either.
//! Also home of the JSON credential document IMDS and container endpoints share.

use std::time::Duration;

use serde_json::Value;
use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use super::answer::{Cap, classify, is_broken_answer, receive};
use super::error::{AwsError, AwsErrorKind};
use super::keys::Credentials;
use super::sts::parse_expiration;
use crate::sensitive::Sensitive;

const TOKEN_PATH: &str = "/latest/api/token";
const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Six hours, the SDKs' default.
const TOKEN_TTL_SECONDS: &str = "21600";

/// An agent for metadata endpoints: no proxy, short timeouts, no redirects, public roots (an
/// https container endpoint), every status handed back as a response.
pub fn local_agent(connect: Duration, answer: Duration) -> Agent {
    crate::http::phase_timeouts(connect, answer)
        .proxy(None)
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .root_certs(RootCerts::WebPki)
                .build(),
        )
        .build()
        .new_agent()
}

/// Which IMDS protocol gave the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImdsVersion {
    /// Session token.
    V2,
    /// Plain GETs, after the token PUT was refused.
    V1,
}

impl std::fmt::Display for ImdsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImdsVersion::V2 => "IMDSv2",
            ImdsVersion::V1 => "IMDSv1",
        })
    }
}

/// A client for one IMDS endpoint.
#[derive(Clone)]
pub struct Imds {
    agent: Agent,
    endpoint: String,
    v1_disabled: bool,
}

impl Imds {
    /// A client for `endpoint` (e.g. `http://169.254.169.254`).
    pub fn new(endpoint: &str, v1_disabled: bool) -> Self {
        Imds {
            agent: local_agent(Duration::from_secs(1), Duration::from_secs(1)),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            v1_disabled,
        }
    }

    /// The instance profile role's credentials, the protocol used and the role's name.
    pub fn credentials(
        &self,
        source: &'static str,
    ) -> Result<(Credentials, ImdsVersion, String), AwsError> {
        let token = self.token()?;
        let version = if token.is_some() {
            ImdsVersion::V2
        } else {
            ImdsVersion::V1
        };
        let roles = self.get(ROLES_PATH, token.as_ref())?;
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| {
                AwsError::new(
                    format!("IMDS GET {ROLES_PATH}"),
                    AwsErrorKind::Decode("no role listed: no instance profile is attached".into()),
                )
            })?
            .to_string();
        // The name goes into a path: only what IAM allows in a role name.
        validate_role_name(&role).map_err(|problem| {
            AwsError::new(
                format!("IMDS GET {ROLES_PATH}"),
                AwsErrorKind::Protocol(problem),
            )
        })?;
        let path = format!("{ROLES_PATH}{role}");
        let document = self.get(&path, token.as_ref())?;
        let credentials = parse_credentials_json(&document, source)
            .map_err(|e| AwsError::new(format!("IMDS GET {path}"), AwsErrorKind::Decode(e)))?;
        Ok((credentials, version, role))
    }

    /// An IMDSv2 session token, or `None` to go on with IMDSv1.
    fn token(&self) -> Result<Option<Sensitive>, AwsError> {
        let operation = format!("IMDS PUT {TOKEN_PATH}");
        let url = format!("{}{TOKEN_PATH}", self.endpoint);
        log::trace!("PUT {url}");
        let sent = crate::shutdown::abortable(|| {
            self.agent
                .put(&url)
                .header(TOKEN_TTL_HEADER, TOKEN_TTL_SECONDS)
                .send_empty()
                .and_then(|r| {
                    let status = r.status().as_u16();
                    let body = r
                        .into_body()
                        .with_config()
                        .limit(Cap::ImdsToken.bytes())
                        .read_to_vec()?;
                    Ok((status, body))
                })
        });
        let sent = match sent {
            Ok((status, body)) => match String::from_utf8(body) {
                Ok(body) => Ok((status, body)),
                Err(_) => {
                    return Err(AwsError::new(
                        operation,
                        AwsErrorKind::Protocol(format!("HTTP {status} answer is not UTF-8")),
                    ));
                }
            },
            Err(e) => Err(e),
        };
        let refused = match sent {
            Ok((200, token)) if !token.trim().is_empty() => {
                let token = token.trim();
                // The token goes into a header: printable ASCII only.
                if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(AwsError::new(
                        operation,
                        AwsErrorKind::Protocol(
                            "the session token holds spaces or control characters".into(),
                        ),
                    ));
                }
                return Ok(Some(Sensitive::new(token)));
            }
            Ok((status @ 403..=405, _)) => format!("refused with HTTP {status}"),
            Ok((status, body)) => {
                return Err(AwsError::from_response(&operation, status, None, &body));
            }
            Err(e) if is_broken_answer(&e) => {
                return Err(classify(&operation, Cap::ImdsToken, e));
            }
            Err(e) if unreachable(&e) => {
                return Err(AwsError::new(
                    operation,
                    AwsErrorKind::Transport(format!("{e} (is this an EC2 instance?)")),
                ));
            }
            Err(e) => format!("not answered: {e}"),
        };
        if self.v1_disabled {
            return Err(AwsError::new(
                operation,
                AwsErrorKind::Credentials(format!(
                    "the IMDSv2 token request was {refused} and AWS_EC2_METADATA_V1_DISABLED forbids IMDSv1"
                )),
            ));
        }
        log::debug!("IMDSv2 token request {refused}; falling back to IMDSv1");
        Ok(None)
    }

    /// GET one metadata path, with the session token when there is one.
    fn get(&self, path: &str, token: Option<&Sensitive>) -> Result<String, AwsError> {
        let operation = format!("IMDS GET {path}");
        let url = format!("{}{path}", self.endpoint);
        log::trace!("GET {url}");
        let mut request = self.agent.get(&url);
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token.expose());
        }
        let answer = receive(&operation, Cap::Metadata, || request.call())?;
        let (status, body) = (answer.status, answer.body);
        match status {
            200 => Ok(body),
            404 if path == ROLES_PATH => Err(AwsError::new(
                operation,
                AwsErrorKind::Credentials(
                    "HTTP 404: no IAM role (instance profile) is attached to this instance".into(),
                ),
            )),
            _ => Err(AwsError::from_response(&operation, status, None, &body)),
        }
    }
}

/// An IAM role name (1 to 64 of letters, digits and `+=,.@_-`), as IMDS lists it.
fn validate_role_name(role: &str) -> Result<(), String> {
    if crate::names::aws::is_iam_name(role, 1, 64) {
        Ok(())
    } else {
        Err(format!(
            "the listed role name is not an IAM role name (1 to 64 of letters, digits and +=,.@_-): \"{}\"",
            super::error::excerpt(role, 64)
        ))
    }
}

/// Whether the error means nothing is there to talk to (no point trying IMDSv1).
fn unreachable(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::NetworkUnreachable
                | ErrorKind::HostUnreachable
                | ErrorKind::AddrNotAvailable
                | ErrorKind::TimedOut
        ),
        _ => false,
    }
}

/// The JSON credential document of IMDS and container endpoints:
/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}` (IMDS adds `"Code": "Success"`).
/// Temporary credentials (with a `Token`) must say when they expire.
pub fn parse_credentials_json(text: &str, source: &'static str) -> Result<Credentials, String> {
    let v: Value = serde_json::from_str(text).map_err(|_| "the answer is not JSON".to_string())?;
    if let Some(code) = v.get("Code").and_then(Value::as_str)
        && code != "Success"
    {
        let message = v.get("Message").and_then(Value::as_str).unwrap_or_default();
        return Err(format!(
            "Code \"{}\": {}",
            super::error::excerpt(code, 64),
            super::error::excerpt(message, 300)
        ));
    }
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let access_key_id = field("AccessKeyId").ok_or("no AccessKeyId in the answer")?;
    let secret_access_key = field("SecretAccessKey").ok_or("no SecretAccessKey in the answer")?;
    let secret_access_key = Sensitive::new(secret_access_key);
    let session_token = field("Token").map(Sensitive::new);
    let expires_at = match (field("Expiration"), &session_token) {
        (Some(e), _) => Some(parse_expiration(e)?),
        (None, Some(_)) => return Err("temporary credentials without an Expiration".into()),
        (None, None) => None,
    };
    Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key,
        session_token,
        expires_at,
        source,
    }
    .check_shape()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_imds_document() {
        let c = parse_credentials_json(
            r#"{"Code":"Success","LastUpdated":"2026-11-29T13:00:00Z","Type":"AWS-HMAC",
                "AccessKeyId":"ASIAIMDS","SecretAccessKey":"imds-secret-value-1",
                "Token":"imds-session-token-1","Expiration":"2026-11-29T19:00:00Z"}"#,
            "instance metadata",
        )
        .expect("parsed");
        assert_eq!(c.access_key_id, "ASIAIMDS");
        assert_eq!(c.secret_access_key.expose(), "imds-secret-value-1");
        assert_eq!(
            c.session_token.as_ref().map(Sensitive::expose),
            Some("imds-session-token-1")
        );
        assert!(c.expires_at.is_some());
        assert_eq!(crate::sensitive::scrub("imds-session-token-1"), "***");
    }

    #[test]
    fn refuses_credentials_that_would_forge_a_log_line_or_a_header() {
        for (id, secret) in [
            ("ASIA\nINFO:ecrupdater:cycle done", "imds-secret-value-2"),
            ("ASIA", "secret with space"),
            ("ASIA", "secret\r\nX-Injected: 1"),
        ] {
            let text =
                serde_json::json!({"AccessKeyId": id, "SecretAccessKey": secret}).to_string();
            assert!(
                parse_credentials_json(&text, "x").is_err(),
                "{id:?} {secret:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_documents() {
        assert!(
            parse_credentials_json("<html/>", "x")
                .expect_err("json")
                .contains("not JSON")
        );
        assert!(
            parse_credentials_json(r#"{"Code":"Failed","Message":"no role"}"#, "x")
                .expect_err("code")
                .contains("Failed")
        );
        assert!(
            parse_credentials_json(
                r#"{"AccessKeyId":"A","SecretAccessKey":"s3cr3t-x","Token":"t0k3n-x"}"#,
                "x"
            )
            .expect_err("no expiry")
            .contains("Expiration")
        );
        assert!(
            parse_credentials_json(r#"{"SecretAccessKey":"s3cr3t-x"}"#, "x")
                .expect_err("no id")
                .contains("AccessKeyId")
        );
        let long_lived = parse_credentials_json(
            r#"{"AccessKeyId":"AKIA","SecretAccessKey":"s3cr3t-long"}"#,
            "x",
        )
        .expect("long-lived keys need no expiry");
        assert!(long_lived.expires_at.is_none() && long_lived.session_token.is_none());
    }
}
