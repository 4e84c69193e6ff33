//! ServiceAccounts: make sure one lists the pull secret in `imagePullSecrets`, keeping its other
//! entries and never adding a duplicate. `imagePullSecrets` has no merge key, so a merge or
//! strategic patch would replace the whole list: this sends a JSON patch that appends one entry,
//! guarded by a `test` of the resourceVersion read, and starts again once if someone changed the
//! object in between.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::client::{Cap, KubeClient};
use super::error::KubeError;
use crate::names::{is_dns1123_label, is_dns1123_subdomain};

/// At most this many `imagePullSecrets` entries are read (more is a protocol error).
const MAX_PULL_SECRETS: usize = 4096;

/// What [`ensure_pull_secret`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaOutcome {
    /// The entry was appended.
    Added,
    /// The entry was already there.
    AlreadyListed,
    /// No such service account (a brand-new namespace may not have `default` yet).
    Missing,
}

/// Ensures `service_account` in `namespace` lists `secret_name` in `imagePullSecrets`.
pub fn ensure_pull_secret(
    client: &KubeClient,
    namespace: &str,
    service_account: &str,
    secret_name: &str,
) -> Result<SaOutcome, KubeError> {
    if !is_dns1123_label(namespace) || !is_dns1123_subdomain(service_account) {
        return Err(KubeError::protocol(
            "service account path",
            &format!("{namespace:?}/{service_account:?} are not Kubernetes names; not sent"),
        ));
    }
    let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sa: ServiceAccountView = match client.get(&path, Cap::Object) {
            Ok(sa) => sa,
            Err(e) if e.is_not_found() => return Ok(SaOutcome::Missing),
            Err(e) => return Err(e),
        };
        let Some(patch) = append_patch(&sa, secret_name) else {
            return Ok(SaOutcome::AlreadyListed);
        };
        match client.patch::<serde::de::IgnoredAny>(
            &path,
            "application/json-patch+json",
            &patch,
            Cap::Object,
        ) {
            Ok(_) => return Ok(SaOutcome::Added),
            // 422: the `test` op failed (changed meanwhile); 409: a conflict. Read it again once.
            Err(e) if (e.code() == Some(422) || e.code() == Some(409)) && attempts < 2 => {
                log::debug!(
                    "{namespace}/{service_account}: changed meanwhile ({e}); reading it again"
                );
            }
            Err(e) if e.is_not_found() => return Ok(SaOutcome::Missing),
            Err(e) => return Err(e),
        }
    }
}

/// The fields of a ServiceAccount the daemon reads.
#[derive(Deserialize, Default)]
pub struct ServiceAccountView {
    metadata: Option<SaMeta>,
    #[serde(rename = "imagePullSecrets")]
    image_pull_secrets: Option<PullSecretNames>,
}

#[derive(Deserialize, Default)]
struct SaMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
}

/// The names in `imagePullSecrets`, read one entry at a time.
#[derive(Default)]
struct PullSecretNames(Vec<String>);

#[derive(Deserialize)]
struct NameRef {
    name: Option<String>,
}

impl<'de> Deserialize<'de> for PullSecretNames {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = PullSecretNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of references")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                let mut count = 0;
                while let Some(entry) = seq.next_element::<NameRef>()? {
                    count += 1;
                    if count > MAX_PULL_SECRETS {
                        return Err(de::Error::custom("too many imagePullSecrets"));
                    }
                    if let Some(name) = entry.name {
                        names.push(name);
                    }
                }
                Ok(PullSecretNames(names))
            }
        }
        deserializer.deserialize_seq(NamesVisitor)
    }
}

/// The JSON patch that appends `secret_name` to the service account's list, or `None` when it is
/// already listed.
pub fn append_patch(service_account: &ServiceAccountView, secret_name: &str) -> Option<Value> {
    let list = service_account.image_pull_secrets.as_ref();
    if list.is_some_and(|l| l.0.iter().any(|n| n == secret_name)) {
        return None;
    }
    let resource_version = service_account
        .metadata
        .as_ref()
        .and_then(|m| m.resource_version.clone())
        .map(Value::String)
        .unwrap_or(Value::Null);
    let add = match list {
        Some(_) => {
            json!({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": secret_name}})
        }
        None => json!({"op": "add", "path": "/imagePullSecrets", "value": [{"name": secret_name}]}),
    };
    Some(json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        add,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(json: Value) -> ServiceAccountView {
        serde_json::from_value(json).expect("a service account")
    }

    #[test]
    fn appends_once_and_keeps_others() {
        let sa = json!({"metadata": {"name": "default", "resourceVersion": "7"},
                        "imagePullSecrets": [{"name": "other"}]});
        let patch = append_patch(&view(sa), "ecr-pull").expect("a patch");
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(
            patch[1],
            json!({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "ecr-pull"}})
        );
        let listed = json!({"metadata": {"resourceVersion": "8"}, "imagePullSecrets": [{"name": "ecr-pull"}]});
        assert!(append_patch(&view(listed), "ecr-pull").is_none());
    }

    #[test]
    fn creates_the_list_when_absent() {
        let sa = json!({"metadata": {"name": "default", "resourceVersion": "3"}});
        let patch = append_patch(&view(sa), "ecr-pull").expect("a patch");
        assert_eq!(patch[1]["path"], "/imagePullSecrets");
        assert_eq!(patch[1]["value"], json!([{"name": "ecr-pull"}]));
    }

    #[test]
    fn a_list_of_another_type_is_refused_saying_what_was_expected() {
        let e = serde_json::from_value::<ServiceAccountView>(json!({"imagePullSecrets": 5}))
            .err()
            .expect("imagePullSecrets must be a list")
            .to_string();
        assert!(e.contains("expected a list of references"), "{e}");
    }

    #[test]
    fn names_that_are_not_kubernetes_names_are_never_sent() {
        // Nothing listens on port 1 and nothing is sent: the names are refused first.
        let access = crate::config::KubeAccess::Endpoint {
            url: "http://127.0.0.1:1".into(),
            explicit: true,
        };
        let client = KubeClient::new(&access, crate::config::Timeouts::default()).expect("client");
        for (namespace, account) in [("Bad Namespace", "default"), ("app", "Bad/Account")] {
            let e = ensure_pull_secret(&client, namespace, account, "ecr-pull")
                .expect_err("refused")
                .to_string();
            assert!(e.contains("are not Kubernetes names; not sent"), "{e}");
        }
    }

    #[test]
    fn a_service_account_lists_at_most_its_cap_of_pull_secrets() {
        let sa = |n: usize| {
            let refs: Vec<Value> = (0..n).map(|i| json!({"name": format!("s-{i}")})).collect();
            json!({"metadata": {"resourceVersion": "1"}, "imagePullSecrets": refs})
        };
        let full = view(sa(MAX_PULL_SECRETS));
        assert_eq!(
            full.image_pull_secrets.expect("listed").0.len(),
            MAX_PULL_SECRETS
        );
        let e = serde_json::from_value::<ServiceAccountView>(sa(MAX_PULL_SECRETS + 1))
            .err()
            .expect("over the cap")
            .to_string();
        assert!(e.contains("too many imagePullSecrets"), "{e}");
    }
}
