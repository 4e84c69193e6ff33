//! Container credentials: ECS task roles (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) and EKS Pod
//! Identity or any local credential endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`). One GET with
//! the authorization token as the `Authorization` header; the token file is re-read on every
//! call because EKS rotates it. No proxy (the endpoints are link-local or loopback), 2 s to
//! connect and 5 s to answer, as in the SDKs.

use std::time::Duration;

use ureq::Agent;

use super::answer::{Cap, receive};
use super::error::{AwsError, AwsErrorKind};
use super::imds::{local_agent, parse_credentials_json};
use super::keys::{Credentials, read_token_file};
use crate::config::{ContainerAuthorization, ContainerSettings};

/// A client for the configured container endpoint.
#[derive(Clone)]
pub struct ContainerEndpoint {
    agent: Agent,
    settings: ContainerSettings,
}

impl ContainerEndpoint {
    /// A client for the endpoint `settings` describe.
    pub fn new(settings: ContainerSettings) -> Self {
        ContainerEndpoint {
            agent: local_agent(Duration::from_secs(2), Duration::from_secs(5)),
            settings,
        }
    }

    /// The URL and the variable it came from, for logs (no secret in it: the token is a header).
    pub fn describe(&self) -> String {
        format!("{} ({})", self.settings.uri, self.settings.uri_var)
    }

    /// The credentials the endpoint hands out.
    pub fn credentials(&self, source: &'static str) -> Result<Credentials, AwsError> {
        let operation = format!("GET {}", self.settings.uri);
        let token = match &self.settings.authorization {
            None => None,
            Some(ContainerAuthorization::Token(t)) => Some(t.clone()),
            Some(ContainerAuthorization::File(path)) => {
                Some(read_token_file(path).map_err(|e| {
                    AwsError::new(
                        "reading AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                        AwsErrorKind::Credentials(e),
                    )
                })?)
            }
        };
        log::trace!(
            "GET {} ({}authorization token)",
            self.settings.uri,
            if token.is_some() {
                "with an "
            } else {
                "without "
            }
        );
        let mut request = self.agent.get(&self.settings.uri);
        if let Some(token) = &token {
            request = request.header("authorization", token.expose());
        }
        let answer = receive(&operation, Cap::Metadata, || request.call())?;
        if answer.status != 200 {
            return Err(AwsError::from_response(
                &operation,
                answer.status,
                None,
                &answer.body,
            ));
        }
        let body = answer.body;
        parse_credentials_json(&body, source)
            .map_err(|e| AwsError::new(operation, AwsErrorKind::Decode(e)))
    }
}
