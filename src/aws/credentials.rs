//! AWS credentials and the chain that finds them, in the AWS SDKs' order; the first source that
//! applies wins. Each source is a small unit with the same shape: it either does not apply (and
//! says why), or applies and yields credentials or an error naming that source.
//!
//! Sources so far: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`). Temporary credentials are cached until five minutes before they expire.

use time::OffsetDateTime;

use super::error::{AwsError, AwsErrorKind};
use crate::config::AwsSettings;
use crate::secret::Sensitive;

/// How long before their expiry temporary credentials are renewed.
pub const RENEW_BEFORE_EXPIRY: time::Duration = time::Duration::minutes(5);

/// A set of AWS credentials. `Debug` shows the key id and the source, never a secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The access key id (not secret on its own).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Sensitive,
    /// The session token of temporary credentials.
    pub session_token: Option<Sensitive>,
    /// When temporary credentials expire.
    pub expires_at: Option<OffsetDateTime>,
    /// Which source gave them, for logs (e.g. `environment`).
    pub source: &'static str,
}

impl Credentials {
    /// Whether these credentials are still good at `now`, with the renewal margin.
    pub fn fresh_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at
            .is_none_or(|expiry| now + RENEW_BEFORE_EXPIRY < expiry)
    }
}

/// The credential chain, with its cache.
pub struct CredentialChain {
    settings: AwsSettings,
    cached: Option<Credentials>,
}

impl CredentialChain {
    /// A chain over the given settings.
    pub fn new(settings: AwsSettings) -> Self {
        CredentialChain {
            settings,
            cached: None,
        }
    }

    /// Credentials from the cache while fresh, else from the first source that applies.
    pub fn credentials(&mut self) -> Result<Credentials, AwsError> {
        let now = OffsetDateTime::now_utc();
        if let Some(c) = &self.cached
            && c.fresh_at(now)
        {
            return Ok(c.clone());
        }
        let mut reasons = Vec::new();
        match from_environment(&self.settings) {
            Ok(c) => {
                log::debug!(
                    "AWS credentials from source {} (key id {})",
                    c.source,
                    c.access_key_id
                );
                self.cached = Some(c.clone());
                return Ok(c);
            }
            Err(why) => reasons.push(format!("environment: {why}")),
        }
        Err(AwsError::new(
            "AWS credentials",
            AwsErrorKind::Credentials(format!("no source applies ({})", reasons.join("; "))),
        ))
    }
}

/// The environment source: static keys, with a session token when given.
fn from_environment(settings: &AwsSettings) -> Result<Credentials, String> {
    let keys = settings
        .static_keys
        .as_ref()
        .ok_or("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")?;
    Ok(Credentials {
        access_key_id: keys.access_key_id.clone(),
        secret_access_key: keys.secret_access_key.clone(),
        session_token: keys.session_token.clone(),
        expires_at: None,
        source: "environment",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticKeys;

    fn settings(keys: Option<StaticKeys>) -> AwsSettings {
        AwsSettings {
            region: "eu-west-1".into(),
            ecr_endpoint: "http://127.0.0.1:1".into(),
            sts_endpoint: "http://127.0.0.1:1".into(),
            static_keys: keys,
        }
    }

    #[test]
    fn environment_keys_are_used() {
        let mut chain = CredentialChain::new(settings(Some(StaticKeys {
            access_key_id: "AKIAENV".into(),
            secret_access_key: Sensitive::new("env-secret-key-value"),
            session_token: None,
        })));
        let c = chain.credentials().expect("credentials");
        assert_eq!(c.access_key_id, "AKIAENV");
        assert_eq!(c.source, "environment");
        assert!(!format!("{c:?}").contains("env-secret-key-value"));
    }

    #[test]
    fn no_source_lists_the_reasons() {
        let mut chain = CredentialChain::new(settings(None));
        let e = chain.credentials().expect_err("nothing applies");
        assert!(
            e.to_string().contains("environment: AWS_ACCESS_KEY_ID"),
            "{e}"
        );
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let now = OffsetDateTime::now_utc();
        let mut c = from_environment(&settings(Some(StaticKeys {
            access_key_id: "A".into(),
            secret_access_key: Sensitive::new("secret-value-x"),
            session_token: None,
        })))
        .expect("env");
        assert!(c.fresh_at(now));
        c.expires_at = Some(now + time::Duration::minutes(4));
        assert!(!c.fresh_at(now));
        c.expires_at = Some(now + time::Duration::minutes(6));
        assert!(c.fresh_at(now));
    }
}
