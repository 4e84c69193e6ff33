//! AWS credentials and the chain that finds them, in the AWS SDKs' order; the first source that
//! applies wins:
//!
//! 1. environment: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 2. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` -> STS
//!    AssumeRoleWithWebIdentity (IRSA), the token file re-read for every call;
//! 3. profile: the shared credentials and config files ([`super::profile`]);
//! 4. container: `AWS_CONTAINER_CREDENTIALS_*` ([`super::container`]; ECS, EKS Pod Identity);
//! 5. instance metadata: IMDSv2, else IMDSv1 ([`super::imds`]).
//!
//! Each source is a small unit with the same shape, a `Lookup`: it does not apply (and says
//! why), or it applies and yields credentials or an error naming it; an error never falls
//! through to the next source. On top of whatever the chain found, `ECR_ASSUME_ROLE_ARN` is
//! assumed with STS AssumeRole. Temporary credentials are cached and renewed five minutes before
//! they expire; the source used is logged by name, never a value.

use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ureq::Agent;

use super::container::ContainerEndpoint;
use super::error::{AwsError, AwsErrorKind};
use super::imds::Imds;
pub use super::keys::{Credentials, RENEW_BEFORE_EXPIRY, read_token_file};
use super::profile::{Base, Plan, ProfileSet, Resolution, resolve};
use super::sts::{AssumeRole, StsClient};
use crate::config::AwsSettings;

/// Source name: `AWS_ACCESS_KEY_ID` and friends.
pub const ENVIRONMENT: &str = "environment";
/// Source name: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`.
pub const WEB_IDENTITY: &str = "web identity";
/// Source name: the shared credentials and config files.
pub const PROFILE: &str = "profile";
/// Source name: `AWS_CONTAINER_CREDENTIALS_*`.
pub const CONTAINER: &str = "container";
/// Source name: the EC2 instance metadata service.
pub const INSTANCE_METADATA: &str = "instance metadata";

/// What one source of the chain gives.
enum Lookup {
    /// The source's settings are absent: why, in a few words (the chain goes on).
    NotApplicable(String),
    /// The source applies; its label for messages (e.g. ``profile `ecr` ``), and its answer:
    /// credentials with a description for the log, or the error (the chain stops).
    Applies(String, Result<(Credentials, String), AwsError>),
}

/// The credential chain, with its cache.
pub struct CredentialChain {
    settings: AwsSettings,
    sts: StsClient,
    imds: Imds,
    container: Option<ContainerEndpoint>,
    /// What [`CredentialChain::credentials`] last handed out.
    cached: Option<Credentials>,
    /// With `ECR_ASSUME_ROLE_ARN`: the chain's credentials the role is assumed with.
    cached_base: Option<Credentials>,
}

impl CredentialChain {
    /// A chain over the given settings. `aws_agent` (proxy-aware, see [`crate::http::aws_agent`])
    /// carries the STS calls; metadata and container endpoints get their own short-timeout,
    /// proxy-less agents.
    pub fn new(settings: AwsSettings, aws_agent: Agent) -> Self {
        CredentialChain {
            sts: StsClient::new(aws_agent, &settings.sts_endpoint, &settings.region),
            imds: Imds::new(&settings.imds.endpoint, settings.imds.v1_disabled),
            container: settings.container.clone().map(ContainerEndpoint::new),
            settings,
            cached: None,
            cached_base: None,
        }
    }

    /// Credentials from the cache while fresh, else from the chain (and `ECR_ASSUME_ROLE_ARN`).
    /// When renewal fails but the cached credentials have not expired yet, they are still used.
    pub fn credentials(&mut self) -> Result<Credentials, AwsError> {
        let now = OffsetDateTime::now_utc();
        if let Some(c) = self.cached.as_ref().filter(|c| c.fresh_at(now)) {
            return Ok(c.clone());
        }
        match self.renew(now) {
            Ok(c) => {
                self.cached = Some(c.clone());
                Ok(c)
            }
            Err(e) => match &self.cached {
                Some(c)
                    if c.expires_at
                        .is_some_and(|t| t > now + time::Duration::seconds(30)) =>
                {
                    log::warn!(
                        "cannot renew the AWS credentials ({e}); using the current ones until they expire at {}",
                        rfc3339(c.expires_at)
                    );
                    Ok(c.clone())
                }
                _ => Err(e),
            },
        }
    }

    fn renew(&mut self, now: OffsetDateTime) -> Result<Credentials, AwsError> {
        let Some(assume) = self.settings.assume_role.clone() else {
            let (c, detail) = self.resolve()?;
            log_found(&detail, &c);
            return Ok(c);
        };
        let base = match self.cached_base.as_ref().filter(|c| c.fresh_at(now)) {
            Some(base) => base.clone(),
            None => {
                let (base, detail) = self.resolve()?;
                log_found(&detail, &base);
                self.cached_base = Some(base.clone());
                base
            }
        };
        let request = AssumeRole {
            role_arn: &assume.role_arn,
            session_name: &assume.session_name,
            external_id: assume.external_id.as_deref(),
        };
        match self
            .sts
            .assume_role(&base, &request, with_assume_role(base.source))
        {
            Ok(c) => {
                log_found(
                    &format!(
                        "ECR_ASSUME_ROLE_ARN {} (assumed with the {} credentials)",
                        assume.role_arn, base.source
                    ),
                    &c,
                );
                Ok(c)
            }
            Err(e) => {
                // The base may be what STS refused: look it up afresh next time.
                self.cached_base = None;
                Err(in_source(
                    &format!("ECR_ASSUME_ROLE_ARN (with the {} credentials)", base.source),
                    e,
                ))
            }
        }
    }

    /// Runs the chain: the first source that applies gives the answer.
    fn resolve(&self) -> Result<(Credentials, String), AwsError> {
        let sources: [fn(&Self) -> Lookup; 5] = [
            Self::environment,
            Self::web_identity,
            Self::profile,
            Self::container,
            Self::instance_metadata,
        ];
        let mut reasons = Vec::new();
        for source in sources {
            match source(self) {
                Lookup::NotApplicable(why) => reasons.push(why),
                Lookup::Applies(_, Ok(found)) => return Ok(found),
                // The last resort: the user may have meant another source, so say why each
                // of them did not apply.
                Lookup::Applies(label, Err(e)) if label == INSTANCE_METADATA => {
                    return Err(in_source(
                        &format!(
                            "{label}, the only source that applies ({})",
                            reasons.join("; ")
                        ),
                        e,
                    ));
                }
                Lookup::Applies(label, Err(e)) => return Err(in_source(&label, e)),
            }
        }
        Err(AwsError::new(
            "AWS credentials",
            AwsErrorKind::Credentials(format!("no source applies: {}", reasons.join("; "))),
        ))
    }

    /// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`).
    fn environment(&self) -> Lookup {
        match from_environment(&self.settings) {
            None => Lookup::NotApplicable(format!(
                "{ENVIRONMENT}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
            )),
            Some(c) => Lookup::Applies(
                ENVIRONMENT.to_string(),
                Ok((c, "environment (AWS_ACCESS_KEY_ID)".to_string())),
            ),
        }
    }

    /// 2. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: unsigned AssumeRoleWithWebIdentity.
    fn web_identity(&self) -> Lookup {
        let Some(w) = &self.settings.web_identity else {
            return Lookup::NotApplicable(format!(
                "{WEB_IDENTITY}: AWS_WEB_IDENTITY_TOKEN_FILE is not set"
            ));
        };
        let result = self
            .assume_with_token_file(
                &w.token_file,
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                &w.role_arn,
                w.session_name.as_deref(),
                WEB_IDENTITY,
            )
            .map(|c| {
                let detail = format!(
                    "web identity (role {}, token from AWS_WEB_IDENTITY_TOKEN_FILE {})",
                    w.role_arn,
                    w.token_file.display()
                );
                (c, detail)
            });
        Lookup::Applies(WEB_IDENTITY.to_string(), result)
    }

    /// 3. The shared files' profile (`AWS_PROFILE`, else `default`).
    fn profile(&self) -> Lookup {
        let p = &self.settings.profile;
        let label = format!("profile `{}`", p.name);
        let set = match ProfileSet::load(p.credentials_file.as_deref(), p.config_file.as_deref()) {
            Ok(set) => set,
            Err(e) => {
                let e = AwsError::new("reading the shared AWS files", AwsErrorKind::Credentials(e));
                return Lookup::Applies(label, Err(e));
            }
        };
        if !set.contains(&p.name) {
            let whereabouts = if set.files.is_empty() {
                let candidates: Vec<String> = [&p.credentials_file, &p.config_file]
                    .into_iter()
                    .flatten()
                    .map(|f| f.display().to_string())
                    .collect();
                if candidates.is_empty() {
                    "no shared files (HOME, AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE are not set)".to_string()
                } else {
                    format!("no file at {}", candidates.join(" or "))
                }
            } else {
                format!("not in {}", set.describe_files())
            };
            if p.explicit {
                let e = AwsError::new(
                    format!("AWS_PROFILE {}", p.name),
                    AwsErrorKind::Credentials(format!("no such profile: {whereabouts}")),
                );
                return Lookup::Applies(label, Err(e));
            }
            return Lookup::NotApplicable(format!(
                "{PROFILE}: no profile `{}`: {whereabouts}",
                p.name
            ));
        }
        match resolve(&set, &p.name) {
            Err(problem) => Lookup::Applies(
                label,
                Err(AwsError::new(
                    set.describe_files(),
                    AwsErrorKind::Credentials(problem),
                )),
            ),
            Ok(Resolution::NoCredentials) => Lookup::NotApplicable(format!(
                "{PROFILE}: profile `{}` holds no credentials",
                p.name
            )),
            Ok(Resolution::Plan(plan)) => {
                let result = self
                    .run_plan(&plan)
                    .map(|c| (c, format!("{label} ({})", plan.describe())));
                Lookup::Applies(label, result)
            }
        }
    }

    /// 4. `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`.
    fn container(&self) -> Lookup {
        let Some(endpoint) = &self.container else {
            return Lookup::NotApplicable(format!(
                "{CONTAINER}: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set"
            ));
        };
        let result = endpoint
            .credentials(CONTAINER)
            .map(|c| (c, format!("container endpoint {}", endpoint.describe())));
        Lookup::Applies(CONTAINER.to_string(), result)
    }

    /// 5. The EC2 instance metadata service, unless `AWS_EC2_METADATA_DISABLED`.
    fn instance_metadata(&self) -> Lookup {
        if self.settings.imds.disabled {
            return Lookup::NotApplicable(format!(
                "{INSTANCE_METADATA}: AWS_EC2_METADATA_DISABLED is true"
            ));
        }
        let result = self
            .imds
            .credentials(INSTANCE_METADATA)
            .map(|(c, version, role)| {
                let detail = format!(
                    "instance metadata ({version} at {}, role {role})",
                    self.settings.imds.endpoint
                );
                (c, detail)
            });
        Lookup::Applies(INSTANCE_METADATA.to_string(), result)
    }

    /// A profile's plan: its base credentials, then each role in turn.
    fn run_plan(&self, plan: &Plan) -> Result<Credentials, AwsError> {
        let unavailable = |what: &str| {
            AwsError::new(
                plan.base.describe(),
                AwsErrorKind::Credentials(what.to_string()),
            )
        };
        let mut credentials = match &plan.base {
            Base::Static {
                access_key_id,
                secret_access_key,
                session_token,
                ..
            } => Credentials {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: session_token.clone(),
                expires_at: None,
                source: PROFILE,
            },
            Base::WebIdentity {
                token_file,
                role_arn,
                session_name,
                ..
            } => self.assume_with_token_file(
                token_file,
                "web_identity_token_file",
                role_arn,
                session_name.as_deref(),
                PROFILE,
            )?,
            Base::Environment => from_environment(&self.settings)
                .ok_or_else(|| {
                    unavailable("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
                })?
                .with_source(PROFILE),
            Base::InstanceMetadata if self.settings.imds.disabled => {
                return Err(unavailable("AWS_EC2_METADATA_DISABLED is true"));
            }
            Base::InstanceMetadata => self.imds.credentials(PROFILE)?.0,
            Base::Container => match &self.container {
                Some(endpoint) => endpoint.credentials(PROFILE)?,
                None => {
                    return Err(unavailable(
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set",
                    ));
                }
            },
        };
        for step in &plan.roles {
            let session_name = step
                .session_name
                .clone()
                .unwrap_or_else(default_session_name);
            credentials = self.sts.assume_role(
                &credentials,
                &AssumeRole {
                    role_arn: &step.role_arn,
                    session_name: &session_name,
                    external_id: step.external_id.as_deref(),
                },
                PROFILE,
            )?;
        }
        Ok(credentials)
    }

    /// Reads a web identity token file (afresh: it rotates) and exchanges it at STS.
    fn assume_with_token_file(
        &self,
        file: &Path,
        setting: &str,
        role_arn: &str,
        session_name: Option<&str>,
        source: &'static str,
    ) -> Result<Credentials, AwsError> {
        let token = read_token_file(file).map_err(|e| {
            AwsError::new(format!("reading {setting}"), AwsErrorKind::Credentials(e))
        })?;
        let session_name = session_name.map_or_else(default_session_name, str::to_string);
        self.sts
            .assume_role_with_web_identity(role_arn, &session_name, &token, source)
    }
}

/// The environment source: static keys, with a session token when given.
fn from_environment(settings: &AwsSettings) -> Option<Credentials> {
    let keys = settings.static_keys.as_ref()?;
    Some(Credentials {
        access_key_id: keys.access_key_id.clone(),
        secret_access_key: keys.secret_access_key.clone(),
        session_token: keys.session_token.clone(),
        expires_at: None,
        source: ENVIRONMENT,
    })
}

/// `k8s-ecrupdater-<unix time>`, like the SDKs' timestamped default.
fn default_session_name() -> String {
    format!(
        "k8s-ecrupdater-{}",
        OffsetDateTime::now_utc().unix_timestamp()
    )
}

/// The source name of credentials from `ECR_ASSUME_ROLE_ARN` assumed with `base` ones.
fn with_assume_role(base: &str) -> &'static str {
    match base {
        ENVIRONMENT => "environment + ECR_ASSUME_ROLE_ARN",
        WEB_IDENTITY => "web identity + ECR_ASSUME_ROLE_ARN",
        PROFILE => "profile + ECR_ASSUME_ROLE_ARN",
        CONTAINER => "container + ECR_ASSUME_ROLE_ARN",
        INSTANCE_METADATA => "instance metadata + ECR_ASSUME_ROLE_ARN",
        _ => "ECR_ASSUME_ROLE_ARN",
    }
}

/// Names the source in an error: `AWS credentials from <label>: <operation> failed: ...`.
fn in_source(label: &str, e: AwsError) -> AwsError {
    AwsError::new(
        format!("AWS credentials from {label}: {}", e.operation),
        e.kind,
    )
}

fn rfc3339(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "never".to_string())
}

fn log_found(detail: &str, c: &Credentials) {
    log::info!(
        "AWS credentials from {detail}: key id {}, {}",
        c.access_key_id,
        match c.expires_at {
            None => "long-lived".to_string(),
            t => format!("expire {}", rfc3339(t)),
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, Flags};
    use crate::sensitive::Sensitive;

    fn chain(pairs: &[(&str, &str)]) -> CredentialChain {
        let mut all = vec![
            ("K8S_PULL_SECRET_NAME", "x"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ];
        all.extend_from_slice(pairs);
        let config = crate::config::Config::from_env(&Env::from_pairs(all), Flags::default())
            .expect("valid configuration");
        CredentialChain::new(config.aws, crate::http::aws_agent(config.timeouts))
    }

    #[test]
    fn environment_keys_are_used_and_cached() {
        let mut chain = chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret-key-value"),
        ]);
        let c = chain.credentials().expect("credentials");
        assert_eq!(c.access_key_id, "AKIAENV");
        assert_eq!(c.source, "environment");
        assert!(!format!("{c:?}").contains("env-secret-key-value"));
        assert!(chain.cached.is_some());
    }

    #[test]
    fn no_source_lists_every_reason() {
        let mut chain = chain(&[("HOME", "/nonexistent-home")]);
        let e = chain
            .credentials()
            .expect_err("nothing applies")
            .to_string();
        for part in [
            "AWS credentials: no source applies: ",
            "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
            "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set",
            "profile: no profile `default`: no file at /nonexistent-home/.aws/credentials or /nonexistent-home/.aws/config",
            "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set",
            "instance metadata: AWS_EC2_METADATA_DISABLED is true",
        ] {
            assert!(e.contains(part), "missing {part:?} in {e}");
        }
    }

    #[test]
    fn a_source_that_applies_and_fails_is_named() {
        let mut chain = chain(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
        ]);
        let e = chain.credentials().expect_err("no token file").to_string();
        assert!(
            e.starts_with("AWS credentials from web identity: reading AWS_WEB_IDENTITY_TOKEN_FILE: cannot read /nonexistent/token"),
            "{e}"
        );
        let mut chain = chain_with_profile("AWS_PROFILE", "missing");
        let e = chain
            .credentials()
            .expect_err("no such profile")
            .to_string();
        assert!(
            e.contains(
                "AWS credentials from profile `missing`: AWS_PROFILE missing: no such profile"
            ),
            "{e}"
        );
    }

    fn chain_with_profile(k: &str, v: &str) -> CredentialChain {
        chain(&[(k, v), ("HOME", "/nonexistent-home")])
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let now = OffsetDateTime::now_utc();
        let mut c = Credentials {
            access_key_id: "A".into(),
            secret_access_key: Sensitive::new("secret-value-x"),
            session_token: None,
            expires_at: None,
            source: ENVIRONMENT,
        };
        assert!(c.fresh_at(now));
        c.expires_at = Some(now + time::Duration::minutes(4));
        assert!(!c.fresh_at(now));
        c.expires_at = Some(now + time::Duration::minutes(6));
        assert!(c.fresh_at(now));
    }

    #[test]
    fn assume_role_source_names() {
        assert_eq!(
            with_assume_role(WEB_IDENTITY),
            "web identity + ECR_ASSUME_ROLE_ARN"
        );
        assert_eq!(with_assume_role("other"), "ECR_ASSUME_ROLE_ARN");
    }

    #[test]
    fn token_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("ecrupdater-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "  eyJhbGciOi.token-value.sig\n").expect("write");
        assert_eq!(
            read_token_file(&file).expect("token").expose(),
            "eyJhbGciOi.token-value.sig"
        );
        std::fs::write(&file, "\n").expect("write");
        assert!(
            read_token_file(&file)
                .expect_err("empty")
                .contains("is empty")
        );
        std::fs::write(&file, "a\nb").expect("write");
        assert!(
            read_token_file(&file)
                .expect_err("two lines")
                .contains("more than one line")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
