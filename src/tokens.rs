//! The registry logins for one cycle, as one [`Token`]: one GetAuthorizationToken per distinct region (and API),
//! never one per namespace, turned into one login per registry host. With no `ECR_REGISTRIES`,
//! the configured region's token and the registry its `proxyEndpoint` names.
//!
//! [`TokenCache`] also paces the fetches made outside a cycle (for namespaces arriving through
//! the watch, [`TokenCache::get_paced`]): after a failed fetch none is tried again before the
//! same backoff the cycles follow ([`schedule::after_failure`]), and after a good one none
//! before [`schedule::MIN_REFRESH_DELAY`], however many namespaces arrive.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ureq::Agent;

use crate::aws::ecr::{Api, EcrClient};
use crate::aws::error::AwsErrorKind;
use crate::aws::{AwsError, CredentialChain, Credentials};
use crate::config::Registry;
use crate::dockercfg::{RegistryLogin, registry_host};
use crate::schedule::{self, Jitter};
use crate::verify::{Verdict, Verifier, VerifyMode};

/// The credentials to write, fetched once for the whole cycle.
#[derive(Debug, Clone)]
pub struct Token {
    /// One login per registry host.
    pub logins: Vec<RegistryLogin>,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
    /// When every registry accepted these credentials (`None`: not verified).
    pub verified_at: Option<OffsetDateTime>,
}

impl Token {
    /// The expiry as RFC 3339.
    pub fn expires_rfc3339(&self) -> String {
        self.expires_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.expires_at.unix_timestamp().to_string())
    }
}

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
                verified_at: None,
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
            let hosts = self.registries.iter().map(|r| r.host.clone()).collect();
            let client =
                EcrClient::for_api(self.agent.clone(), endpoint, region, api).allowing_hosts(hosts);
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
            verified_at: None,
        })
    }
}

/// The current token, with where new ones come from, and the pace of fetches.
pub struct TokenCache {
    source: TokenSource,
    credentials: CredentialChain,
    current: Option<(Token, time::OffsetDateTime)>,
    /// Fetches failed in a row.
    failures: u32,
    /// Before this, [`TokenCache::get_paced`] fetches nothing.
    not_before: Option<Instant>,
    /// The last failure, shown while waiting.
    last_error: Option<String>,
    jitter: Jitter,
    /// Checks each new token against its registries before it is used ([`crate::verify`]).
    verifier: Option<Verifier>,
    /// The last verification's verdict.
    last_verdict: Option<Verdict>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new(source: TokenSource, credentials: CredentialChain) -> Self {
        TokenCache {
            source,
            credentials,
            current: None,
            failures: 0,
            not_before: None,
            last_error: None,
            jitter: Jitter::from_clock(),
            verifier: None,
            last_verdict: None,
        }
    }

    /// Checks each new token with `verifier` before handing it out: with `enforce`, a token a
    /// registry refuses is a failed fetch (nothing gets written with it).
    pub fn with_verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The verdict on the last token fetched, when it was checked.
    pub fn last_verdict(&self) -> Option<&Verdict> {
        self.last_verdict.as_ref()
    }

    /// The token to write: the cached one while it stays good for 15 more minutes and
    /// `force_new` is not set, else a new one. For cycles, which the daemon's loop paces.
    pub fn get(&mut self, force_new: bool) -> Result<&Token, AwsError> {
        let now = time::OffsetDateTime::now_utc();
        if force_new || !self.reusable(now) {
            self.fetch(now)?;
        }
        self.cached()
    }

    /// The token for a namespace that arrived between cycles: the cached one while it stays
    /// good for 15 more minutes; else a new one, unless a fetch is not due yet (the backoff
    /// after a failure, a minute after a success), in which case the cached one while it is
    /// still valid at all, or an error saying when the next fetch is due. Never more fetches
    /// than the cycles' own backoff allows, however many namespaces arrive.
    pub fn get_paced(&mut self) -> Result<&Token, AwsError> {
        let now = time::OffsetDateTime::now_utc();
        if self.reusable(now) {
            return self.cached();
        }
        let wait = self
            .not_before
            .map(|t| t.saturating_duration_since(Instant::now()))
            .filter(|w| !w.is_zero());
        match wait {
            None => {
                self.fetch(now)?;
                self.cached()
            }
            Some(_)
                if self
                    .current
                    .as_ref()
                    .is_some_and(|(t, _)| t.expires_at > now) =>
            {
                self.cached()
            }
            Some(wait) => Err(AwsError::new(
                "ECR GetAuthorizationToken",
                AwsErrorKind::Credentials(format!(
                    "no valid token, and the next fetch is due in {} s{}",
                    wait.as_secs().max(1),
                    self.last_error
                        .as_deref()
                        .map(|e| format!(" (the last one failed: {e})"))
                        .unwrap_or_default()
                )),
            )),
        }
    }

    /// The cached token and when it was fetched, if any.
    pub fn current(&self) -> Option<&(Token, time::OffsetDateTime)> {
        self.current.as_ref()
    }

    fn reusable(&self, now: time::OffsetDateTime) -> bool {
        self.current
            .as_ref()
            .is_some_and(|(t, _)| t.expires_at > now + REUSE_MARGIN)
    }

    fn cached(&self) -> Result<&Token, AwsError> {
        match &self.current {
            Some((token, _)) => Ok(token),
            None => unreachable!("a token was just stored or reused"),
        }
    }

    /// The token with its `verified_at`, or (enforce) the refusal as an error.
    fn verified(&mut self, mut token: Token) -> Result<Token, AwsError> {
        let Some(verifier) = &self.verifier else {
            return Ok(token);
        };
        let verdict = verifier.check(&token.logins);
        token.verified_at = verdict.verified_at;
        let refused = !verdict.refused().is_empty();
        let summary = verdict.refusal_summary();
        self.last_verdict = Some(verdict);
        if refused && verifier.mode() == VerifyMode::Enforce {
            return Err(AwsError::new(
                "ECR_VERIFY=enforce",
                AwsErrorKind::Credentials(summary),
            ));
        }
        Ok(token)
    }

    /// One fetch, recorded for the pace of the next.
    fn fetch(&mut self, now: time::OffsetDateTime) -> Result<(), AwsError> {
        let fetched = self
            .credentials
            .credentials()
            .and_then(|credentials| Ok((self.source.fetch(&credentials)?, credentials)))
            .and_then(|(token, credentials)| Ok((self.verified(token)?, credentials)));
        match fetched {
            Ok((token, credentials)) => {
                let hosts: Vec<&str> = token.logins.iter().map(|l| l.host.as_str()).collect();
                log::debug!(
                    "ECR token for {} (credentials from {}), expires {}",
                    hosts.join(", "),
                    credentials.source,
                    token.expires_rfc3339()
                );
                self.current = Some((token, now));
                self.failures = 0;
                self.last_error = None;
                self.not_before = Some(Instant::now() + schedule::MIN_REFRESH_DELAY);
                Ok(())
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let token_left = self.current.as_ref().and_then(|(t, _)| {
                    let left = t.expires_at - now;
                    (left > time::Duration::ZERO)
                        .then(|| Duration::from_secs_f64(left.as_seconds_f64()))
                });
                let wait = schedule::after_failure(self.failures, token_left, self.jitter.sample());
                self.not_before = Some(Instant::now() + wait);
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}
