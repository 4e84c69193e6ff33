//! The registry logins for one cycle: one GetAuthorizationToken per distinct region (and API),
//! never one per namespace, turned into one login per registry host. With no `ECR_REGISTRIES`,
//! the configured region's token and the registry its `proxyEndpoint` names.

use ureq::Agent;

use crate::aws::ecr::{Api, EcrClient};
use crate::aws::{AwsError, CredentialChain, Credentials};
use crate::config::Registry;
use crate::dockercfg::{RegistryLogin, registry_host};
use crate::refresh::Token;

/// A cached token is reused only while it stays valid this much longer.
const REUSE_MARGIN: time::Duration = time::Duration::minutes(15);

/// Where tokens come from.
pub struct TokenSource {
    agent: Agent,
    default_endpoint: String,
    default_region: String,
    registries: Vec<Registry>,
}

impl TokenSource {
    /// A source for `registries`, or (when empty) for the default region's own registry.
    pub fn new(
        agent: Agent,
        default_endpoint: &str,
        default_region: &str,
        registries: Vec<Registry>,
    ) -> Self {
        TokenSource {
            agent,
            default_endpoint: default_endpoint.to_string(),
            default_region: default_region.to_string(),
            registries,
        }
    }

    /// Fetches every token the logins need. Any failure fails the whole fetch: a secret is never
    /// written with some registries missing.
    pub fn fetch(&self, credentials: &Credentials) -> Result<Token, AwsError> {
        if self.registries.is_empty() {
            let client = EcrClient::new(
                self.agent.clone(),
                &self.default_endpoint,
                &self.default_region,
            );
            let data = client.get_authorization_token(credentials)?;
            return Ok(Token {
                logins: vec![RegistryLogin {
                    host: registry_host(&data.proxy_endpoint),
                    username: data.username,
                    password: data.password,
                }],
                expires_at: data.expires_at,
            });
        }
        // Distinct (API, region, endpoint) in the order they first appear.
        let mut calls: Vec<(Api, &str, &str)> = Vec::new();
        for r in &self.registries {
            let call = (r.api, r.region.as_str(), r.endpoint.as_str());
            if !calls.contains(&call) {
                calls.push(call);
            }
        }
        let mut logins = Vec::with_capacity(self.registries.len());
        let mut expires_at = None;
        for (api, region, endpoint) in calls {
            let client = EcrClient::for_api(self.agent.clone(), endpoint, region, api);
            let data = client.get_authorization_token(credentials)?;
            log::debug!("token for {region} ({api:?}) expires {}", data.expires_at);
            expires_at = Some(
                expires_at.map_or(data.expires_at, |e: time::OffsetDateTime| {
                    e.min(data.expires_at)
                }),
            );
            for r in self
                .registries
                .iter()
                .filter(|r| r.api == api && r.region == region && r.endpoint == endpoint)
            {
                logins.push(RegistryLogin {
                    host: r.host.clone(),
                    username: data.username.clone(),
                    password: data.password.clone(),
                });
            }
        }
        Ok(Token {
            logins,
            expires_at: expires_at.unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        })
    }
}

/// The current token, with where new ones come from.
pub struct TokenCache {
    source: TokenSource,
    credentials: CredentialChain,
    current: Option<(Token, time::OffsetDateTime)>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new(source: TokenSource, credentials: CredentialChain) -> Self {
        TokenCache {
            source,
            credentials,
            current: None,
        }
    }

    /// The token to write: the cached one while it stays good for 15 more minutes and
    /// `force_new` is not set, else a new one.
    pub fn get(&mut self, force_new: bool) -> Result<&Token, AwsError> {
        let now = time::OffsetDateTime::now_utc();
        let reusable = self
            .current
            .as_ref()
            .is_some_and(|(t, _)| t.expires_at > now + REUSE_MARGIN);
        if force_new || !reusable {
            let credentials = self.credentials.credentials()?;
            let token = self.source.fetch(&credentials)?;
            let hosts: Vec<&str> = token.logins.iter().map(|l| l.host.as_str()).collect();
            log::debug!(
                "ECR token for {} (credentials from {}), expires {}",
                hosts.join(", "),
                credentials.source,
                token.expires_rfc3339()
            );
            self.current = Some((token, now));
        }
        match &self.current {
            Some((token, _)) => Ok(token),
            None => unreachable!("a token was just stored or reused"),
        }
    }

    /// The cached token and when it was fetched, if any.
    pub fn current(&self) -> Option<&(Token, time::OffsetDateTime)> {
        self.current.as_ref()
    }
}
