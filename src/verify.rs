//! Registry verification: after each token fetch and before anything is written, each
//! registry's `GET https://HOST/v2/` with the new login (HTTP Basic `user:password`, as a Docker
//! client sends it). 200 proves the credential; 401 or 403 is a refusal; anything else (no
//! answer, TLS failure, 5xx, an unexpected status) proves nothing either way.
//!
//! [`Verifier::check`] gives a [`Verdict`]; what it decides is the [`VerifyMode`]'s business:
//! `warn` logs a refusal as an error and writes anyway, `enforce` writes nothing (the caller
//! fails the fetch). Every result is kept per host in a [`Record`] for the metrics. The password
//! is never logged; a registry's answer is read at most [`BODY_CAP`] bytes and only a masked,
//! escaped excerpt of it is ever shown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use ureq::Agent;

pub use crate::config::VerifyMode;
use crate::dockercfg::RegistryLogin;

/// The most bytes read from a registry's answer (a `/v2/` answer is `{}` or a short error).
pub const BODY_CAP: u64 = 4 * 1024;
/// How much of an answer is quoted in a message.
const QUOTED: usize = 200;

/// What one registry said about one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// 200: the registry accepts the credential.
    Verified,
    /// 401 or 403: refused, with the status and why (a masked excerpt).
    Refused(u16, String),
    /// No answer that decides (network, TLS, 5xx, another status): why.
    Unknown(String),
}

/// The checks of one token's logins.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// One check per registry host, in login order.
    pub checks: Vec<(String, Check)>,
    /// When every host verified: the time, for the `verified-at` annotation.
    pub verified_at: Option<OffsetDateTime>,
}

impl Verdict {
    /// The hosts that refused, with their status.
    pub fn refused(&self) -> Vec<(&str, u16)> {
        self.checks
            .iter()
            .filter_map(|(h, c)| match c {
                Check::Refused(status, _) => Some((h.as_str(), *status)),
                _ => None,
            })
            .collect()
    }

    /// One line naming each refusing host and its status.
    pub fn refusal_summary(&self) -> String {
        let hosts: Vec<String> = self
            .refused()
            .iter()
            .map(|(h, s)| format!("{h} (HTTP {s})"))
            .collect();
        format!(
            "registry verification: {} refused the new credentials",
            hosts.join(", ")
        )
    }
}

/// Per registry host: verified at the last check or not, and when that check was made. Shared
/// with the metrics.
#[derive(Debug, Clone, Default)]
pub struct Record(Arc<Mutex<BTreeMap<String, (bool, OffsetDateTime)>>>);

impl Record {
    fn set(&self, host: &str, verified: bool, at: OffsetDateTime) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), (verified, at));
    }

    /// Records a result (for the metrics' tests).
    #[cfg(test)]
    pub fn set_for_tests(&self, host: &str, verified: bool, at: OffsetDateTime) {
        self.set(host, verified, at);
    }

    /// Every host checked so far: (host, verified, time of the check).
    pub fn snapshot(&self) -> Vec<(String, bool, OffsetDateTime)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(h, (v, at))| (h.clone(), *v, *at))
            .collect()
    }
}

/// Checks logins against their registries.
pub struct Verifier {
    agent: Agent,
    mode: VerifyMode,
    record: Record,
}

impl Verifier {
    /// A verifier calling registries with `agent` (see [`crate::net::aws_agent`]).
    pub fn new(agent: Agent, mode: VerifyMode, record: Record) -> Verifier {
        Verifier {
            agent,
            mode,
            record,
        }
    }

    /// The mode.
    pub fn mode(&self) -> VerifyMode {
        self.mode
    }

    /// Checks every login (none with `off`), logs each result, records it for the metrics.
    pub fn check(&self, logins: &[RegistryLogin]) -> Verdict {
        if self.mode == VerifyMode::Off {
            return Verdict::default();
        }
        let mut checks = Vec::with_capacity(logins.len());
        for login in logins {
            let check = self.check_one(login);
            let now = OffsetDateTime::now_utc();
            self.record.set(&login.host, check == Check::Verified, now);
            match &check {
                Check::Verified => {
                    log::info!("{}: the registry accepts the new credentials", login.host)
                }
                Check::Refused(status, why) => {
                    let then = match self.mode {
                        VerifyMode::Enforce => "nothing is written (ECR_VERIFY=enforce)",
                        _ => "writing them anyway (ECR_VERIFY=warn)",
                    };
                    log::error!(
                        "{}: the registry refused the new credentials (HTTP {status}{}); {then}",
                        login.host,
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(": {why}")
                        }
                    )
                }
                Check::Unknown(why) => log::warn!(
                    "{}: cannot verify the new credentials ({why}); writing them without {}",
                    login.host,
                    crate::refresh::VERIFIED_ANNOTATION
                ),
            }
            checks.push((login.host.clone(), check));
        }
        let all = !checks.is_empty() && checks.iter().all(|(_, c)| *c == Check::Verified);
        Verdict {
            checks,
            verified_at: all.then(|| {
                let now = OffsetDateTime::now_utc();
                now.replace_nanosecond(0).unwrap_or(now)
            }),
        }
    }

    fn check_one(&self, login: &RegistryLogin) -> Check {
        let basic = STANDARD.encode(format!("{}:{}", login.username, login.password.expose()));
        crate::sensitive::register(&basic);
        let url = format!("https://{}/v2/", login.host);
        match self.get(&url, &basic) {
            Ok((200, _, _)) => Check::Verified,
            // A registry that wants a bearer token (ECR Public): the credential is checked by
            // its token endpoint, as a Docker client does, but only on the registry's own host
            // (a challenge must not send the credential elsewhere).
            Ok((401, Some(challenge), body)) if challenge.starts_with("Bearer ") => {
                match token_url(&challenge, &login.host) {
                    Some(token_url) => match self.get(&token_url, &basic) {
                        Ok((200, _, _)) => Check::Verified,
                        Ok((status @ (401 | 403), _, body)) => {
                            Check::Refused(status, format!("token endpoint: {}", quote(&body)))
                        }
                        Ok((status, _, body)) => Check::Unknown(format!(
                            "token endpoint: HTTP {status}: {}",
                            quote(&body)
                        )),
                        Err(e) => Check::Unknown(format!(
                            "token endpoint: {}",
                            crate::aws::error::excerpt(&e.to_string(), QUOTED)
                        )),
                    },
                    None => Check::Unknown(format!(
                        "HTTP 401 with a bearer challenge not on {}: {}",
                        login.host,
                        quote(&body)
                    )),
                }
            }
            Ok((status @ (401 | 403), _, body)) => Check::Refused(status, quote(&body)),
            Ok((status, _, body)) => Check::Unknown(format!("HTTP {status}: {}", quote(&body))),
            Err(e) => Check::Unknown(crate::aws::error::excerpt(&e.to_string(), QUOTED)),
        }
    }

    /// One GET with HTTP Basic: status, `WWW-Authenticate` (bounded) and the first
    /// [`BODY_CAP`] bytes of the body (the rest is never read).
    fn get(&self, url: &str, basic: &str) -> Result<(u16, Option<String>, Vec<u8>), ureq::Error> {
        crate::shutdown::abortable(|| {
            let response = self
                .agent
                .get(url)
                .header("Authorization", &format!("Basic {basic}"))
                .call()?;
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 1024)
                .map(str::to_string);
            let mut body = Vec::new();
            let reader = response.into_body().into_reader();
            let _ =
                std::io::Read::read_to_end(&mut std::io::Read::take(reader, BODY_CAP), &mut body);
            Ok((status, challenge, body))
        })
    }
}

/// The token URL of a `Bearer realm="https://HOST/token",service="S"` challenge, when the realm
/// is https on `host` itself; `service` is passed on (percent-encoded).
fn token_url(challenge: &str, host: &str) -> Option<String> {
    let params = challenge.strip_prefix("Bearer ")?;
    let value = |key: &str| {
        params.split(',').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    let realm = value("realm")?;
    let rest = realm.strip_prefix("https://")?;
    let realm_host = rest.split(['/', '?']).next()?;
    if !realm_host.eq_ignore_ascii_case(host) || realm.contains(['#', ' ', '\\']) {
        return None;
    }
    let mut url = realm.clone();
    if let Some(service) = value("service") {
        let encoded: String = service
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("service=");
        url.push_str(&encoded);
    }
    Some(url)
}

/// A masked, escaped, bounded excerpt of an answer body.
fn quote(body: &[u8]) -> String {
    crate::aws::error::excerpt(String::from_utf8_lossy(body).trim(), QUOTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_stay_on_the_registry_host() {
        assert_eq!(
            token_url(
                r#"Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws""#,
                "public.ecr.aws"
            )
            .as_deref(),
            Some("https://public.ecr.aws/token/?service=public.ecr.aws")
        );
        assert_eq!(
            token_url(
                r#"Bearer realm="https://evil.example/token""#,
                "public.ecr.aws"
            ),
            None
        );
        assert_eq!(
            token_url(
                r#"Bearer realm="http://public.ecr.aws/token""#,
                "public.ecr.aws"
            ),
            None
        );
        assert_eq!(
            token_url(
                r#"Bearer realm="https://public.ecr.aws.evil.example/t""#,
                "public.ecr.aws"
            ),
            None
        );
        assert_eq!(
            token_url(
                r#"Bearer realm="https://public.ecr.aws@evil.example/t""#,
                "public.ecr.aws"
            ),
            None
        );
    }
}
