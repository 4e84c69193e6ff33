//! The value every AWS call is signed with: [`Credentials`] (a key id, a secret key, an optional
//! session token and expiry, and the name of the source that gave them), and the reading of the
//! token files some sources need. The sources (`container`, `imds`, `sts`, the chain in
//! `credentials`) and the signer all depend on this module, and it on none of them.

use std::path::Path;

use time::OffsetDateTime;

use crate::sensitive::Sensitive;

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
    /// Which source gave them, for logs (e.g. `environment`, `web identity`).
    pub source: &'static str,
}

impl Credentials {
    /// Whether these credentials are still good at `now`, with the renewal margin.
    pub fn fresh_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at
            .is_none_or(|expiry| now + RENEW_BEFORE_EXPIRY < expiry)
    }

    /// Credentials handed out by an endpoint (STS, IMDS, the container endpoint) checked for
    /// shape before use: each value printable ASCII without spaces (they go into signed headers
    /// and, for the key id, into log lines), the key id at most 128 characters.
    pub fn check_shape(self) -> Result<Self, String> {
        let printable = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
        if !printable(&self.access_key_id) || self.access_key_id.len() > 128 {
            return Err(
                "the access key id is not 1 to 128 printable characters without spaces".into(),
            );
        }
        if !printable(self.secret_access_key.expose()) {
            return Err("the secret access key holds spaces or control characters".into());
        }
        if self
            .session_token
            .as_ref()
            .is_some_and(|t| !printable(t.expose()))
        {
            return Err("the session token holds spaces or control characters".into());
        }
        Ok(self)
    }

    pub(super) fn with_source(mut self, source: &'static str) -> Self {
        self.source = source;
        self
    }
}

/// A token file's content, trimmed and wrapped; an empty file or one with several lines is
/// refused.
pub fn read_token_file(path: &Path) -> Result<Sensitive, String> {
    let text = crate::files::read_small_file(path, crate::files::TOKEN_FILE_CAP)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    if token.contains(['\r', '\n']) {
        return Err(format!("{} holds more than one line", path.display()));
    }
    Ok(Sensitive::new(token))
}
