//! The two pull-secret payload formats the kubelet reads (pkg/credentialprovider), as pure
//! functions:
//! - `kubernetes.io/dockerconfigjson` / `.dockerconfigjson`: `{"auths":{HOST:{..}}}`
//! - `kubernetes.io/dockercfg` / `.dockercfg`: `{"https://HOST":{..}}`
//!
//! Each entry carries `username`, `password` and `auth` (base64 of `user:password`), consistent,
//! because the kubelet lets `auth` override the other two and a bad `auth` breaks the keyring.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::sensitive::{Sensitive, register};

/// The secret type whose payload is `.dockerconfigjson`.
pub const TYPE_DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
/// The secret type whose payload is `.dockercfg`.
pub const TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";

/// One registry's login.
#[derive(Debug, Clone)]
pub struct RegistryLogin {
    /// The registry host, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com` (no scheme).
    pub host: String,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Sensitive,
}

impl RegistryLogin {
    /// `base64(username:password)`, registered with the log mask.
    fn auth(&self) -> String {
        let auth = STANDARD.encode(format!("{}:{}", self.username, self.password.expose()));
        register(&auth);
        auth
    }

    fn entry(&self) -> Value {
        json!({
            "username": self.username,
            "password": self.password.expose(),
            "auth": self.auth(),
        })
    }
}

/// The registry host of a URL such as `https://123.dkr.ecr.eu-west-1.amazonaws.com/`.
pub fn registry_host(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Which payload format a secret type takes, and under which data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `kubernetes.io/dockerconfigjson` with key `.dockerconfigjson`.
    DockerConfigJson,
    /// `kubernetes.io/dockercfg` with key `.dockercfg`.
    DockerCfg,
}

impl Format {
    /// The format for a secret type, or `None` for any other type.
    pub fn for_type(secret_type: &str) -> Option<Format> {
        match secret_type {
            TYPE_DOCKERCONFIGJSON => Some(Format::DockerConfigJson),
            TYPE_DOCKERCFG => Some(Format::DockerCfg),
            _ => None,
        }
    }

    /// The data key the kubelet reads for this format.
    pub fn data_key(self) -> &'static str {
        match self {
            Format::DockerConfigJson => ".dockerconfigjson",
            Format::DockerCfg => ".dockercfg",
        }
    }

    /// The secret type of this format.
    pub fn secret_type(self) -> &'static str {
        match self {
            Format::DockerConfigJson => TYPE_DOCKERCONFIGJSON,
            Format::DockerCfg => TYPE_DOCKERCFG,
        }
    }

    /// The payload JSON text for these logins.
    pub fn payload(self, logins: &[RegistryLogin]) -> String {
        let mut entries = Map::new();
        for login in logins {
            let key = match self {
                Format::DockerConfigJson => login.host.clone(),
                Format::DockerCfg => format!("https://{}", login.host),
            };
            entries.insert(key, login.entry());
        }
        let doc = match self {
            Format::DockerConfigJson => json!({ "auths": entries }),
            Format::DockerCfg => Value::Object(entries),
        };
        doc.to_string()
    }

    /// The payload as a Secret's `data` value (base64), registered with the log mask.
    pub fn payload_base64(self, logins: &[RegistryLogin]) -> String {
        let encoded = STANDARD.encode(self.payload(logins));
        register(&encoded);
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> RegistryLogin {
        RegistryLogin {
            host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
            username: "AWS".into(),
            password: Sensitive::new("pa:ss-word-value"),
        }
    }

    /// What the kubelet does with `auth`: base64-decode and split at the first colon.
    fn kubelet_auth(entry: &Value) -> (String, String) {
        let raw = STANDARD
            .decode(entry["auth"].as_str().expect("auth string"))
            .expect("auth is base64");
        let text = String::from_utf8(raw).expect("utf-8");
        let (u, p) = text.split_once(':').expect("user:pass");
        (u.to_string(), p.to_string())
    }

    #[test]
    fn dockerconfigjson_has_auths_by_host() {
        let doc: Value =
            serde_json::from_str(&Format::DockerConfigJson.payload(&[login()])).expect("json");
        let entry = &doc["auths"]["123456789012.dkr.ecr.eu-west-1.amazonaws.com"];
        assert_eq!(entry["username"], "AWS");
        assert_eq!(entry["password"], "pa:ss-word-value");
        assert_eq!(
            kubelet_auth(entry),
            ("AWS".into(), "pa:ss-word-value".into())
        );
    }

    #[test]
    fn dockercfg_is_keyed_by_https_url() {
        let doc: Value =
            serde_json::from_str(&Format::DockerCfg.payload(&[login()])).expect("json");
        let entry = &doc["https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"];
        assert_eq!(
            kubelet_auth(entry),
            ("AWS".into(), "pa:ss-word-value".into())
        );
        assert!(doc.get("auths").is_none());
    }

    #[test]
    fn several_registries_share_one_document() {
        let mut other = login();
        other.host = "210987654321.dkr.ecr.us-east-1.amazonaws.com".into();
        let doc: Value = serde_json::from_str(&Format::DockerConfigJson.payload(&[login(), other]))
            .expect("json");
        assert_eq!(doc["auths"].as_object().expect("object").len(), 2);
    }

    #[test]
    fn types_and_hosts() {
        assert_eq!(
            Format::for_type("kubernetes.io/dockercfg"),
            Some(Format::DockerCfg)
        );
        assert_eq!(Format::for_type("Opaque"), None);
        assert_eq!(
            registry_host("https://1.dkr.ecr.eu-west-1.amazonaws.com/"),
            "1.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(registry_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn base64_payload_is_masked_in_logs() {
        let encoded = Format::DockerConfigJson.payload_base64(&[login()]);
        assert_eq!(
            crate::sensitive::scrub(&format!("x {encoded} y")),
            "x *** y"
        );
    }
}
