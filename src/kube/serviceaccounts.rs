//! ServiceAccounts: make sure one lists the pull secret in `imagePullSecrets`, keeping its other
//! entries and never adding a duplicate. `imagePullSecrets` has no merge key, so a merge or
//! strategic patch would replace the whole list: this sends a JSON patch that appends one entry,
//! guarded by a `test` of the resourceVersion read, and starts again once if someone changed the
//! object in between.

use serde_json::{Value, json};

use super::client::KubeClient;
use super::error::KubeError;

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
    let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sa = match client.get(&path) {
            Ok(sa) => sa,
            Err(e) if e.is_not_found() => return Ok(SaOutcome::Missing),
            Err(e) => return Err(e),
        };
        let Some(patch) = append_patch(&sa, secret_name) else {
            return Ok(SaOutcome::AlreadyListed);
        };
        match client.patch(&path, "application/json-patch+json", &patch) {
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

/// The JSON patch that appends `secret_name` to the service account's list, or `None` when it is
/// already listed.
pub fn append_patch(service_account: &Value, secret_name: &str) -> Option<Value> {
    let list = service_account
        .get("imagePullSecrets")
        .and_then(Value::as_array);
    if list.is_some_and(|l| {
        l.iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some(secret_name))
    }) {
        return None;
    }
    let resource_version = service_account
        .pointer("/metadata/resourceVersion")
        .cloned()
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

    #[test]
    fn appends_once_and_keeps_others() {
        let sa = json!({"metadata": {"name": "default", "resourceVersion": "7"},
                        "imagePullSecrets": [{"name": "other"}]});
        let patch = append_patch(&sa, "ecr-pull").expect("a patch");
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(
            patch[1],
            json!({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "ecr-pull"}})
        );
        let listed = json!({"metadata": {"resourceVersion": "8"}, "imagePullSecrets": [{"name": "ecr-pull"}]});
        assert!(append_patch(&listed, "ecr-pull").is_none());
    }

    #[test]
    fn creates_the_list_when_absent() {
        let sa = json!({"metadata": {"name": "default", "resourceVersion": "3"}});
        let patch = append_patch(&sa, "ecr-pull").expect("a patch");
        assert_eq!(patch[1]["path"], "/imagePullSecrets");
        assert_eq!(patch[1]["value"], json!([{"name": "ecr-pull"}]));
    }
}
