//! Secrets, by name in one namespace only (never listed, so RBAC can restrict them with
//! `resourceNames`): get, create, merge-patch, and which write errors mean "another object".
//!
//! Answers are read as a [`SecretView`]: only the fields the daemon uses (type, immutable, uid,
//! resourceVersion, the pull-secret payload keys, and this daemon's own annotations and labels);
//! every other key is skipped unread, so what a Secret of any shape makes the parser allocate is
//! bounded by those fields. The view is handed on as JSON of the same shape.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::client::{Cap, KubeClient};
use super::error::KubeError;
use crate::names::{is_dns1123_label, is_dns1123_subdomain};

/// The data keys of the two pull-secret types (`kubernetes.io/dockerconfigjson`, `.../dockercfg`).
const PAYLOAD_KEYS: [&str; 2] = [".dockerconfigjson", ".dockercfg"];
/// The prefix of this daemon's own annotations and labels.
const OWN_PREFIX: &str = "k8s-ecrupdater/";
/// The label that says who manages a secret.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// At most this many kept keys per map (more is a protocol error).
const MAX_KEPT: usize = 16;

/// The path of the secrets in `namespace` (or of one), refused unless both are Kubernetes names.
fn path(namespace: &str, name: Option<&str>) -> Result<String, KubeError> {
    let label = "secret path";
    if !is_dns1123_label(namespace) {
        return Err(KubeError::protocol(
            label,
            &format!("namespace {namespace:?} is not a DNS-1123 label; not sent"),
        ));
    }
    match name {
        Some(name) if !is_dns1123_subdomain(name) => Err(KubeError::protocol(
            label,
            &format!("secret name {name:?} is not a DNS-1123 subdomain; not sent"),
        )),
        Some(name) => Ok(format!("/api/v1/namespaces/{namespace}/secrets/{name}")),
        None => Ok(format!("/api/v1/namespaces/{namespace}/secrets")),
    }
}

/// The secret, or `None` when it (or its namespace) does not exist.
pub fn get(client: &KubeClient, namespace: &str, name: &str) -> Result<Option<Value>, KubeError> {
    match client.get::<SecretView>(&path(namespace, Some(name))?, Cap::Object) {
        Ok(secret) => Ok(Some(secret.into_json())),
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
    client
        .post::<SecretView>(&path(namespace, None)?, secret, Cap::Object)
        .map(SecretView::into_json)
}

/// Applies a JSON merge patch (RFC 7386) to the secret.
pub fn merge_patch(
    client: &KubeClient,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<Value, KubeError> {
    client
        .patch::<SecretView>(
            &path(namespace, Some(name))?,
            "application/merge-patch+json",
            patch,
            Cap::Object,
        )
        .map(SecretView::into_json)
}

/// The fields of a Secret the daemon reads.
#[derive(Deserialize, Default)]
pub struct SecretView {
    metadata: Option<SecretMeta>,
    #[serde(rename = "type")]
    secret_type: Option<String>,
    immutable: Option<bool>,
    data: Option<Kept<PayloadKeys>>,
}

#[derive(Deserialize, Default)]
struct SecretMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
    annotations: Option<Kept<OwnKeys>>,
    labels: Option<Kept<OwnKeys>>,
}

impl SecretView {
    /// The view as JSON of a Secret's shape, holding only what was read.
    pub fn into_json(self) -> Value {
        let mut secret = Map::new();
        secret.insert("apiVersion".into(), "v1".into());
        secret.insert("kind".into(), "Secret".into());
        let meta = self.metadata.unwrap_or_default();
        let mut metadata = Map::new();
        for (key, value) in [
            ("name", meta.name),
            ("namespace", meta.namespace),
            ("uid", meta.uid),
            ("resourceVersion", meta.resource_version),
        ] {
            if let Some(value) = value {
                metadata.insert(key.into(), value.into());
            }
        }
        for (key, map) in [("annotations", meta.annotations), ("labels", meta.labels)] {
            if let Some(map) = map {
                metadata.insert(key.into(), map.into_json());
            }
        }
        secret.insert("metadata".into(), Value::Object(metadata));
        if let Some(t) = self.secret_type {
            secret.insert("type".into(), t.into());
        }
        if let Some(immutable) = self.immutable {
            secret.insert("immutable".into(), immutable.into());
        }
        if let Some(data) = self.data {
            secret.insert("data".into(), data.into_json());
        }
        Value::Object(secret)
    }
}

/// Which keys of a string map are kept.
trait KeyFilter {
    fn keep(key: &str) -> bool;
}

/// The pull-secret payload keys of `data`.
#[derive(Default)]
struct PayloadKeys;

impl KeyFilter for PayloadKeys {
    fn keep(key: &str) -> bool {
        PAYLOAD_KEYS.contains(&key)
    }
}

/// This daemon's own annotations and labels.
#[derive(Default)]
struct OwnKeys;

impl KeyFilter for OwnKeys {
    fn keep(key: &str) -> bool {
        key.starts_with(OWN_PREFIX) || key == MANAGED_BY
    }
}

/// A string map of which only the keys `F` keeps are read; the other values are skipped unread.
#[derive(Default)]
struct Kept<F>(BTreeMap<String, String>, PhantomData<F>);

impl<F> Kept<F> {
    fn into_json(self) -> Value {
        Value::Object(self.0.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

impl<'de, F: KeyFilter> Deserialize<'de> for Kept<F> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeptVisitor<F>(PhantomData<F>);
        impl<'de, F: KeyFilter> Visitor<'de> for KeptVisitor<F> {
            type Value = Kept<F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept<F>, A::Error> {
                let mut kept = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if F::keep(&key) {
                        if kept.len() >= MAX_KEPT {
                            return Err(de::Error::custom("too many keys"));
                        }
                        let value = map.next_value::<String>()?;
                        kept.insert(key, value);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Kept(kept, PhantomData))
            }
        }
        deserializer.deserialize_map(KeptVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_read_as_the_fields_used_only() {
        let body = serde_json::json!({
            "kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "ecr-pull", "namespace": "a", "uid": "u-1", "resourceVersion": "5",
                "annotations": {"k8s-ecrupdater/token-expires-at": "2026-01-01T00:00:00Z",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": 1}"},
                "labels": {"app.kubernetes.io/managed-by": "k8s-ecrupdater", "team": "x"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": "e30=", "other": "eA=="},
        });
        let view: SecretView = serde_json::from_value(body).expect("a secret");
        let json = view.into_json();
        assert_eq!(json["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(json["metadata"]["uid"], "u-1");
        assert_eq!(
            json["data"],
            serde_json::json!({".dockerconfigjson": "e30="})
        );
        assert_eq!(
            json["metadata"]["annotations"],
            serde_json::json!({"k8s-ecrupdater/token-expires-at": "2026-01-01T00:00:00Z"})
        );
        assert_eq!(
            json["metadata"]["labels"],
            serde_json::json!({"app.kubernetes.io/managed-by": "k8s-ecrupdater"})
        );
        assert!(json.get("immutable").is_none());
    }

    #[test]
    fn paths_hold_kubernetes_names_only() {
        assert!(path("a", Some("ecr-pull")).is_ok());
        assert!(path("kube-system/secrets/victim#", Some("ecr-pull")).is_err());
        assert!(path("a", Some("x/../y")).is_err());
        assert!(path("A", None).is_err());
    }

    #[test]
    fn a_map_of_another_type_is_refused_saying_what_was_expected() {
        let body = serde_json::json!({"kind": "Secret", "data": 5});
        let e = serde_json::from_value::<SecretView>(body)
            .err()
            .expect("data must be a map")
            .to_string();
        assert!(e.contains("expected a map of strings"), "{e}");
    }
}
