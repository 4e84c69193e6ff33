//! One refresh cycle: with a token already fetched, find the target namespaces and bring the pull
//! secret in each up to date, collecting one [`Outcome`] per namespace. A failure in one
//! namespace never stops the others; nothing here ever deletes anything.
//!
//! Per namespace: read the secret by name; if it is a `dockerconfigjson` or `dockercfg` secret,
//! merge-patch only its payload key and the expiry annotation (other keys, labels, annotations
//! and the type stay); if it is missing and creation is on, create it with the real credentials;
//! leave any other type alone with a warning.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::dockercfg::{Format, RegistryLogin};
use crate::kube::{KubeClient, KubeError, namespaces, secrets};

/// The annotation that tells when the credentials in the secret expire (RFC 3339, UTC).
pub const EXPIRES_ANNOTATION: &str = "k8s-ecrupdater/token-expires-at";
/// The label on secrets this daemon created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "k8s-ecrupdater";

/// The credentials to write, fetched once for the whole cycle.
#[derive(Debug, Clone)]
pub struct Token {
    /// One login per registry host.
    pub logins: Vec<RegistryLogin>,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
}

impl Token {
    /// The expiry as RFC 3339.
    pub fn expires_rfc3339(&self) -> String {
        self.expires_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.expires_at.unix_timestamp().to_string())
    }
}

/// What to target and how.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The secret's name in each namespace.
    pub secret_name: String,
    /// Namespaces never touched.
    pub skip_namespaces: Vec<String>,
    /// Create the secret where it is missing.
    pub create_missing: bool,
    /// Log what would be written, write nothing.
    pub dry_run: bool,
}

/// What happened in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The secret was created (or would be, in a dry run).
    Created,
    /// The secret's payload was replaced (or would be, in a dry run).
    Updated,
    /// The secret already held these credentials.
    Unchanged,
    /// Nothing to do, and nothing wrong: why.
    Skipped(String),
    /// The namespace could not be served: the error.
    Failed(String),
}

/// The result of a whole cycle.
#[derive(Debug, Clone)]
pub struct CycleReport {
    /// One outcome per target namespace, in list order.
    pub outcomes: Vec<(String, Outcome)>,
    /// How long the cycle took.
    pub duration: Duration,
    /// The token's expiry.
    pub token_expires_at: OffsetDateTime,
}

impl CycleReport {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }

    /// Namespaces whose secret was created.
    pub fn created(&self) -> usize {
        self.count(|o| *o == Outcome::Created)
    }

    /// Namespaces whose secret was updated.
    pub fn updated(&self) -> usize {
        self.count(|o| *o == Outcome::Updated)
    }

    /// Namespaces whose secret was already current.
    pub fn unchanged(&self) -> usize {
        self.count(|o| *o == Outcome::Unchanged)
    }

    /// Namespaces skipped on purpose.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// The namespaces that failed, with their errors.
    pub fn failures(&self) -> Vec<(&str, &str)> {
        self.outcomes
            .iter()
            .filter_map(|(ns, o)| match o {
                Outcome::Failed(e) => Some((ns.as_str(), e.as_str())),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for CycleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expiry = self.token_expires_at.format(&Rfc3339).unwrap_or_default();
        write!(
            f,
            "cycle done: {} created, {} updated, {} unchanged, {} skipped, {} failed in {:.2} s; token expires {expiry}",
            self.created(),
            self.updated(),
            self.unchanged(),
            self.skipped(),
            self.failures().len(),
            self.duration.as_secs_f64(),
        )
    }
}

/// Runs one cycle. Fails as a whole only when the namespaces cannot be listed.
pub fn run_cycle(
    client: &KubeClient,
    targets: &Targets,
    token: &Token,
) -> Result<CycleReport, KubeError> {
    let started = Instant::now();
    let namespaces = namespaces::list_active(client)?;
    log::debug!("{} active namespaces", namespaces.len());
    let mut outcomes = Vec::with_capacity(namespaces.len());
    for namespace in namespaces {
        if crate::shutdown::requested() {
            break;
        }
        if targets.skip_namespaces.contains(&namespace) {
            log::debug!("{namespace}: in ECR_SKIP_NAMESPACES; skipped");
            continue;
        }
        let outcome = serve_namespace(client, targets, token, &namespace);
        match &outcome {
            Outcome::Failed(e) => log::error!("{namespace}/{}: {e}", targets.secret_name),
            Outcome::Skipped(why) => {
                log::debug!("{namespace}/{}: skipped: {why}", targets.secret_name)
            }
            Outcome::Unchanged => {
                log::debug!("{namespace}/{}: already current", targets.secret_name)
            }
            Outcome::Created | Outcome::Updated => {}
        }
        outcomes.push((namespace, outcome));
    }
    Ok(CycleReport {
        outcomes,
        duration: started.elapsed(),
        token_expires_at: token.expires_at,
    })
}

fn serve_namespace(
    client: &KubeClient,
    targets: &Targets,
    token: &Token,
    namespace: &str,
) -> Outcome {
    let name = &targets.secret_name;
    let existing = match secrets::get(client, namespace, name) {
        Ok(existing) => existing,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    match existing {
        Some(secret) => update(client, targets, token, namespace, &secret),
        None if !targets.create_missing => {
            Outcome::Skipped("no such secret (ECR_CREATE_MISSING is off)".into())
        }
        None => create(client, targets, token, namespace),
    }
}

fn create(client: &KubeClient, targets: &Targets, token: &Token, namespace: &str) -> Outcome {
    let name = &targets.secret_name;
    let format = Format::DockerConfigJson;
    if targets.dry_run {
        log::info!(
            "{namespace}/{name}: would create ({})",
            format.secret_type()
        );
        return Outcome::Created;
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE },
            "annotations": { EXPIRES_ANNOTATION: token.expires_rfc3339() },
        },
        "type": format.secret_type(),
        "data": { format.data_key(): format.payload_base64(&token.logins) },
    });
    match secrets::create(client, namespace, &body) {
        Ok(_) => {
            log::info!("{namespace}/{name}: created");
            Outcome::Created
        }
        Err(e) if e.is_namespace_terminating() => {
            log::debug!("{namespace}: being deleted; not creating {name}");
            Outcome::Skipped("namespace is terminating".into())
        }
        Err(e) if e.is_not_found() => Outcome::Skipped("namespace no longer exists".into()),
        Err(e) if e.is_already_exists() => {
            log::info!("{namespace}/{name}: created by someone else meanwhile; updating it");
            match secrets::get(client, namespace, name) {
                Ok(Some(secret)) => update(client, targets, token, namespace, &secret),
                Ok(None) => Outcome::Failed(
                    "secret exists and then does not: giving up for this cycle".into(),
                ),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn update(
    client: &KubeClient,
    targets: &Targets,
    token: &Token,
    namespace: &str,
    secret: &Value,
) -> Outcome {
    update_once(client, targets, token, namespace, secret, true)
}

/// Replaces the payload of an existing secret. On a 409 (someone changed or re-created it
/// meanwhile) the secret is read again and, when `retry` is set, patched once more.
fn update_once(
    client: &KubeClient,
    targets: &Targets,
    token: &Token,
    namespace: &str,
    secret: &Value,
    retry: bool,
) -> Outcome {
    let name = &targets.secret_name;
    let secret_type = secret
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Opaque");
    let Some(format) = Format::for_type(secret_type) else {
        log::warn!(
            "{namespace}/{name} has type {secret_type}, not a pull-secret type; left untouched"
        );
        return Outcome::Skipped(format!("type {secret_type}"));
    };
    if secret.get("immutable").and_then(Value::as_bool) == Some(true) {
        log::warn!("{namespace}/{name} is immutable; left untouched");
        return Outcome::Skipped("immutable".into());
    }
    let payload = format.payload_base64(&token.logins);
    let expiry = token.expires_rfc3339();
    let current_payload = secret
        .pointer(&format!("/data/{}", format.data_key()))
        .and_then(Value::as_str);
    let current_expiry = secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(EXPIRES_ANNOTATION))
        .and_then(Value::as_str);
    if current_payload == Some(payload.as_str()) && current_expiry == Some(expiry.as_str()) {
        return Outcome::Unchanged;
    }
    if targets.dry_run {
        log::info!("{namespace}/{name}: would update ({secret_type})");
        return Outcome::Updated;
    }
    // The uid precondition makes a deleted and re-created secret a 409 instead of a blind write.
    let mut patch = json!({
        "metadata": { "annotations": { EXPIRES_ANNOTATION: expiry } },
        "data": { format.data_key(): payload },
    });
    if let Some(uid) = secret.pointer("/metadata/uid").and_then(Value::as_str) {
        patch["metadata"]["uid"] = Value::String(uid.to_string());
    }
    match secrets::merge_patch(client, namespace, name, &patch) {
        Ok(_) => {
            log::info!("{namespace}/{name}: updated ({secret_type})");
            Outcome::Updated
        }
        Err(e) if e.is_conflict() && retry => {
            log::info!("{namespace}/{name}: changed meanwhile ({e}); reading it again");
            match secrets::get(client, namespace, name) {
                Ok(Some(fresh)) => update_once(client, targets, token, namespace, &fresh, false),
                Ok(None) if targets.create_missing => create(client, targets, token, namespace),
                Ok(None) => Outcome::Skipped("deleted meanwhile".into()),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Err(e) if e.is_not_found() => Outcome::Skipped("deleted meanwhile".into()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
