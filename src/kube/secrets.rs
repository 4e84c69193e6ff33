//! Secrets, by name in one namespace only (never listed, so RBAC can restrict them with
//! `resourceNames`): get, create, merge-patch, and which write errors mean "another object".

use serde_json::Value;

use super::client::KubeClient;
use super::error::KubeError;

fn path(namespace: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("/api/v1/namespaces/{namespace}/secrets/{name}"),
        None => format!("/api/v1/namespaces/{namespace}/secrets"),
    }
}

/// The secret, or `None` when it (or its namespace) does not exist.
pub fn get(client: &KubeClient, namespace: &str, name: &str) -> Result<Option<Value>, KubeError> {
    match client.get(&path(namespace, Some(name))) {
        Ok(secret) => Ok(Some(secret)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a write met another object than the one read: 409 Conflict (changed meanwhile, or a
/// uid precondition), or 422 Invalid on `metadata.uid` (what a real API server answers to a PATCH
/// whose uid is not the stored one's: the secret was deleted and re-created).
pub fn is_other_object(e: &KubeError) -> bool {
    e.is_conflict()
        || matches!(e, KubeError::Api { code: 422, causes, .. }
            if causes.iter().any(|c| c.field == "metadata.uid"))
}

/// Creates the secret.
pub fn create(client: &KubeClient, namespace: &str, secret: &Value) -> Result<Value, KubeError> {
    client.post(&path(namespace, None), secret)
}

/// Applies a JSON merge patch (RFC 7386) to the secret.
pub fn merge_patch(
    client: &KubeClient,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<Value, KubeError> {
    client.patch(
        &path(namespace, Some(name)),
        "application/merge-patch+json",
        patch,
    )
}
