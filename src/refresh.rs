//! One refresh cycle: with a token already fetched, find the target namespaces and bring the pull
//! secret in each up to date, collecting one [`Outcome`] per namespace. A failure in one
//! namespace never stops the others; nothing here ever deletes anything.
//!
//! Per namespace: read the secret by name; if it is a `dockerconfigjson` or `dockercfg` secret,
//! merge-patch only its payload key and the expiry annotation (other keys, labels, annotations
//! and the type stay); if it is missing and creation is on, create it with the real credentials;
//! leave any other type alone with a warning. A secret known from an earlier cycle is patched
//! without a read, guarded by its uid; when it was changed or deleted and re-created meanwhile,
//! it is read again and written in its own type. Every namespace's write path is a bounded
//! sequence of requests: after a read, at most two writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::dockercfg::Format;
use crate::kube::serviceaccounts::{self, SaOutcome};
use crate::kube::{KubeClient, KubeError, namespaces, secrets};
use crate::select::Selection;
use crate::tokens::Token;

/// The annotation that tells when the credentials in the secret expire (RFC 3339, UTC).
pub const EXPIRES_ANNOTATION: &str = "k8s-ecrupdater/token-expires-at";
/// The annotation that tells when every registry accepted the credentials (RFC 3339, UTC);
/// removed when the credentials written could not be verified.
pub const VERIFIED_ANNOTATION: &str = "k8s-ecrupdater/verified-at";
/// The label on secrets this daemon created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "k8s-ecrupdater";

/// What to target and how.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// The secret's name in each namespace.
    pub secret_name: String,
    /// Which namespaces (names and globs).
    pub selection: Selection,
    /// A label selector the API server applies to the namespace list.
    pub namespace_selector: Option<String>,
    /// Create the secret where it is missing.
    pub create_missing: bool,
    /// Service accounts that must list the secret in `imagePullSecrets`.
    pub service_accounts: Vec<String>,
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
    /// A dry run: the counts say what would have been written.
    pub dry_run: bool,
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
        if self.dry_run {
            return write!(
                f,
                "dry run done, nothing written: {} to create, {} to update, {} unchanged, {} skipped, {} failed in {:.2} s; token expires {expiry}",
                self.created(),
                self.updated(),
                self.unchanged(),
                self.skipped(),
                self.failures().len(),
                self.duration.as_secs_f64(),
            );
        }
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

/// What a cycle learnt about one namespace's secret, so the next refresh can patch it
/// straight away (its type cannot change; the uid in the patch catches a re-created secret,
/// which may have another type).
#[derive(Debug, Clone)]
struct Known {
    uid: String,
    format: Format,
    /// A hash of the payload and expiry last written, to skip a write that would change nothing.
    written: u64,
    /// Every configured service account lists the secret.
    service_accounts_done: bool,
}

/// Writes of one secret after a read, per cycle: the first, and one retry after a re-read.
const MAX_WRITES: u32 = 2;
/// Requests of one secret's write path, per cycle: a patch of the known secret, then a read and
/// a write for each of the [`MAX_WRITES`] writes (a bound on the loop, never reached).
const MAX_STEPS: usize = 1 + 2 * MAX_WRITES as usize;

/// The next request of a secret's write path.
enum Step {
    /// Patch the secret known from an earlier cycle, without reading it.
    PatchKnown(Known),
    /// Read the secret by name.
    Read,
    /// Create the secret.
    Create,
    /// Patch the secret just read.
    Patch(Plan),
}

/// A patch decided on after a read.
struct Plan {
    format: Format,
    /// The merge patch, carrying the uid read: it applies only to that very object.
    patch: Value,
    written: u64,
}

/// What a step leads to.
enum Flow {
    Done(Outcome),
    Next(Step),
}

/// The failure of a namespace whose secret kept changing under the write budget.
fn gave_up(e: &KubeError) -> Outcome {
    Outcome::Failed(format!(
        "{e}; the secret kept changing during {MAX_WRITES} writes: trying again at the next refresh"
    ))
}

/// Keeps the targets' secrets current, cycle after cycle, remembering what it learnt.
pub struct Refresher {
    targets: Targets,
    known: BTreeMap<String, Known>,
    resource_version: String,
}

impl Refresher {
    /// A refresher for `targets`, knowing nothing yet.
    pub fn new(targets: Targets) -> Refresher {
        Refresher {
            targets,
            known: BTreeMap::new(),
            resource_version: String::new(),
        }
    }

    /// The settings.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The resourceVersion of the last namespace list (where a watch starts).
    pub fn resource_version(&self) -> &str {
        &self.resource_version
    }

    /// Whether `namespace` was served since it was last listed or seen.
    pub fn is_known(&self, namespace: &str) -> bool {
        self.known.contains_key(namespace)
    }

    /// Forgets a namespace (deleted).
    pub fn forget(&mut self, namespace: &str) {
        self.known.remove(namespace);
    }

    /// Runs one cycle over every target namespace. Fails as a whole only when the namespaces
    /// cannot be listed.
    pub fn run_cycle(
        &mut self,
        client: &KubeClient,
        token: &Token,
    ) -> Result<CycleReport, KubeError> {
        let started = Instant::now();
        let list = namespaces::list_active(client, self.targets.namespace_selector.as_deref())?;
        self.resource_version = list.resource_version;
        log::debug!("{} active namespaces", list.names.len());
        let listed: BTreeSet<&str> = list.names.iter().map(String::as_str).collect();
        self.known.retain(|ns, _| listed.contains(ns.as_str()));
        let mut outcomes = Vec::with_capacity(list.names.len());
        for namespace in &list.names {
            if crate::shutdown::requested() {
                break;
            }
            if !self.targets.selection.wants(namespace) {
                log::trace!("{namespace}: not selected");
                continue;
            }
            let outcome = self.serve(client, token, namespace);
            outcomes.push((namespace.clone(), outcome));
        }
        Ok(CycleReport {
            outcomes,
            duration: started.elapsed(),
            token_expires_at: token.expires_at,
            dry_run: self.targets.dry_run,
        })
    }

    /// Brings one namespace's secret (and service accounts) up to date, and logs the outcome.
    pub fn serve(&mut self, client: &KubeClient, token: &Token, namespace: &str) -> Outcome {
        let outcome = self.serve_secret(client, token, namespace);
        let name = &self.targets.secret_name;
        match &outcome {
            Outcome::Failed(e) => log::error!("{namespace}/{name}: {e}"),
            Outcome::Skipped(why) => log::debug!("{namespace}/{name}: skipped: {why}"),
            Outcome::Unchanged => log::debug!("{namespace}/{name}: already current"),
            Outcome::Created | Outcome::Updated => {}
        }
        if matches!(
            outcome,
            Outcome::Created | Outcome::Updated | Outcome::Unchanged
        ) && !self.targets.dry_run
        {
            self.serve_service_accounts(client, namespace);
        }
        outcome
    }

    /// The secret's write path: a bounded sequence of steps, each one request. A secret known
    /// from an earlier cycle is patched straight away; if that patch meets another object (a 409
    /// Conflict, or the 422 a real API server gives when the secret was deleted and re-created
    /// under another uid) or none, it is read again and written in its own type. After a read, at
    /// most [`MAX_WRITES`] writes follow (the first and one retry after a re-read), so a server
    /// that keeps changing the answer costs a few requests and fails the namespace for this cycle.
    fn serve_secret(&mut self, client: &KubeClient, token: &Token, namespace: &str) -> Outcome {
        let mut step = match self.known.get(namespace) {
            Some(known) => Step::PatchKnown(known.clone()),
            None => Step::Read,
        };
        let mut writes = 0;
        for _ in 0..MAX_STEPS {
            let flow = match step {
                Step::PatchKnown(known) => self.patch_known(client, token, namespace, &known),
                Step::Read => self.read(client, token, namespace),
                Step::Create => {
                    writes += 1;
                    self.create(client, token, namespace, writes >= MAX_WRITES)
                }
                Step::Patch(plan) => {
                    writes += 1;
                    self.patch(client, namespace, &plan, writes >= MAX_WRITES)
                }
            };
            match flow {
                Flow::Done(outcome) => return outcome,
                Flow::Next(next) => step = next,
            }
        }
        // Unreachable with the budget above (every path ends within MAX_STEPS); a bound all the same.
        Outcome::Failed(format!(
            "no result after {MAX_STEPS} requests; trying again at the next refresh"
        ))
    }

    /// A secret whose uid and type are known: one merge patch carrying the uid, no read.
    fn patch_known(
        &mut self,
        client: &KubeClient,
        token: &Token,
        namespace: &str,
        known: &Known,
    ) -> Flow {
        let name = self.targets.secret_name.clone();
        let payload = known.format.payload_base64(&token.logins);
        let expiry = token.expires_rfc3339();
        let written = fingerprint(&payload, &expiry);
        if written == known.written {
            return Flow::Done(Outcome::Unchanged);
        }
        if self.targets.dry_run {
            log::info!(
                "{namespace}/{name}: would update ({})",
                known.format.secret_type()
            );
            return Flow::Done(Outcome::Updated);
        }
        let mut patch = payload_patch(known.format, &payload, &expiry, Some(&known.uid));
        patch["metadata"]["annotations"][VERIFIED_ANNOTATION] = verified_value(token);
        match secrets::merge_patch(client, namespace, &name, &patch) {
            Ok(_) => {
                log::debug!(
                    "{namespace}/{name}: updated ({})",
                    known.format.secret_type()
                );
                if let Some(k) = self.known.get_mut(namespace) {
                    k.written = written;
                }
                Flow::Done(Outcome::Updated)
            }
            Err(e) if secrets::is_other_object(&e) => {
                log::info!(
                    "{namespace}/{name}: changed or re-created since the last refresh ({e}); reading it again"
                );
                self.known.remove(namespace);
                Flow::Next(Step::Read)
            }
            Err(e) if e.is_not_found() => {
                self.known.remove(namespace);
                if self.targets.create_missing {
                    log::info!(
                        "{namespace}/{name}: deleted since the last refresh; creating it again"
                    );
                    Flow::Next(Step::Create)
                } else {
                    Flow::Done(Outcome::Skipped("deleted meanwhile".into()))
                }
            }
            Err(e) => Flow::Done(Outcome::Failed(e.to_string())),
        }
    }

    /// Reads the secret and decides: create, patch, or nothing to do.
    fn read(&mut self, client: &KubeClient, token: &Token, namespace: &str) -> Flow {
        let name = self.targets.secret_name.clone();
        let secret = match secrets::get(client, namespace, &name) {
            Ok(Some(secret)) => secret,
            Ok(None) if self.targets.create_missing => return Flow::Next(Step::Create),
            Ok(None) => {
                return Flow::Done(Outcome::Skipped(
                    "no such secret (ECR_CREATE_MISSING is off)".into(),
                ));
            }
            Err(e) => return Flow::Done(Outcome::Failed(e.to_string())),
        };
        let secret_type = secret
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Opaque");
        let Some(format) = Format::for_type(secret_type) else {
            log::warn!(
                "{namespace}/{name} has type {secret_type}, not a pull-secret type; left untouched"
            );
            return Flow::Done(Outcome::Skipped(format!("type {secret_type}")));
        };
        if secret.get("immutable").and_then(Value::as_bool) == Some(true) {
            log::warn!("{namespace}/{name} is immutable; left untouched");
            return Flow::Done(Outcome::Skipped("immutable".into()));
        }
        let payload = format.payload_base64(&token.logins);
        let expiry = token.expires_rfc3339();
        let written = fingerprint(&payload, &expiry);
        let current_payload = secret
            .pointer(&format!("/data/{}", format.data_key()))
            .and_then(Value::as_str);
        let current_expiry = secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(EXPIRES_ANNOTATION))
            .and_then(Value::as_str);
        if current_payload == Some(payload.as_str()) && current_expiry == Some(expiry.as_str()) {
            if !self.targets.dry_run {
                self.remember(namespace, &secret, format, written);
            }
            return Flow::Done(Outcome::Unchanged);
        }
        if self.targets.dry_run {
            log::info!("{namespace}/{name}: would update ({secret_type})");
            return Flow::Done(Outcome::Updated);
        }
        let uid = secret.pointer("/metadata/uid").and_then(Value::as_str);
        let mut patch = payload_patch(format, &payload, &expiry, uid);
        patch["metadata"]["annotations"][VERIFIED_ANNOTATION] = verified_value(token);
        Flow::Next(Step::Patch(Plan {
            format,
            patch,
            written,
        }))
    }

    /// Creates the secret (`last`: no write may follow, so a race fails the namespace).
    fn create(&mut self, client: &KubeClient, token: &Token, namespace: &str, last: bool) -> Flow {
        let name = self.targets.secret_name.clone();
        let format = Format::DockerConfigJson;
        if self.targets.dry_run {
            log::info!(
                "{namespace}/{name}: would create ({})",
                format.secret_type()
            );
            return Flow::Done(Outcome::Created);
        }
        let payload = format.payload_base64(&token.logins);
        let expiry = token.expires_rfc3339();
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE },
                "annotations": { EXPIRES_ANNOTATION: expiry },
            },
            "type": format.secret_type(),
            "data": { format.data_key(): payload },
        });
        if let Value::String(at) = verified_value(token) {
            body["metadata"]["annotations"][VERIFIED_ANNOTATION] = Value::String(at);
        }
        match secrets::create(client, namespace, &body) {
            Ok(created) => {
                log::info!("{namespace}/{name}: created");
                self.remember(namespace, &created, format, fingerprint(&payload, &expiry));
                Flow::Done(Outcome::Created)
            }
            Err(e) if e.is_namespace_terminating() => {
                log::debug!("{namespace}: being deleted; not creating {name}");
                Flow::Done(Outcome::Skipped("namespace is terminating".into()))
            }
            Err(e) if e.is_not_found() => {
                log::debug!("{namespace}: deleted meanwhile; not creating {name}");
                Flow::Done(Outcome::Skipped("namespace no longer exists".into()))
            }
            Err(e) if e.is_already_exists() && last => Flow::Done(gave_up(&e)),
            Err(e) if e.is_already_exists() => {
                log::info!("{namespace}/{name}: created by someone else meanwhile; updating it");
                Flow::Next(Step::Read)
            }
            Err(e) => Flow::Done(Outcome::Failed(e.to_string())),
        }
    }

    /// Patches the secret just read, guarded by its uid (`last`: no write may follow).
    fn patch(&mut self, client: &KubeClient, namespace: &str, plan: &Plan, last: bool) -> Flow {
        let name = self.targets.secret_name.clone();
        match secrets::merge_patch(client, namespace, &name, &plan.patch) {
            Ok(patched) => {
                log::info!(
                    "{namespace}/{name}: updated ({})",
                    plan.format.secret_type()
                );
                self.remember(namespace, &patched, plan.format, plan.written);
                Flow::Done(Outcome::Updated)
            }
            Err(e) if (secrets::is_other_object(&e) || e.is_not_found()) && last => {
                Flow::Done(gave_up(&e))
            }
            Err(e) if secrets::is_other_object(&e) => {
                log::info!("{namespace}/{name}: changed meanwhile ({e}); reading it again");
                Flow::Next(Step::Read)
            }
            Err(e) if e.is_not_found() && self.targets.create_missing => {
                log::info!("{namespace}/{name}: deleted meanwhile; creating it again");
                Flow::Next(Step::Create)
            }
            Err(e) if e.is_not_found() => Flow::Done(Outcome::Skipped("deleted meanwhile".into())),
            Err(e) => Flow::Done(Outcome::Failed(e.to_string())),
        }
    }

    /// Remembers the secret just read and written (or created). A secret is read only when
    /// nothing is known of it (first seen, or forgotten when its known patch met another
    /// object or none), so its service accounts are looked at again after this.
    fn remember(&mut self, namespace: &str, secret: &Value, format: Format, written: u64) {
        let Some(uid) = secret.pointer("/metadata/uid").and_then(Value::as_str) else {
            return;
        };
        self.known.insert(
            namespace.to_string(),
            Known {
                uid: uid.to_string(),
                format,
                written,
                service_accounts_done: false,
            },
        );
    }

    /// Makes every configured service account list the secret, once per namespace (again when
    /// one was missing, as `default` is for a moment in a brand-new namespace).
    fn serve_service_accounts(&mut self, client: &KubeClient, namespace: &str) {
        if self.targets.service_accounts.is_empty()
            || self
                .known
                .get(namespace)
                .is_some_and(|k| k.service_accounts_done)
        {
            return;
        }
        let name = &self.targets.secret_name;
        let mut all_done = true;
        for sa in &self.targets.service_accounts {
            match serviceaccounts::ensure_pull_secret(client, namespace, sa, name) {
                Ok(SaOutcome::Added) => {
                    log::info!("{namespace}/{sa}: service account now lists {name}")
                }
                Ok(SaOutcome::AlreadyListed) => {
                    log::trace!("{namespace}/{sa}: already lists {name}")
                }
                Ok(SaOutcome::Missing) => {
                    log::debug!("{namespace}/{sa}: no such service account; left alone");
                    all_done = false;
                }
                Err(e) => {
                    log::error!("{namespace}/{sa}: {e}");
                    all_done = false;
                }
            }
        }
        if let Some(k) = self.known.get_mut(namespace) {
            k.service_accounts_done = all_done;
        }
    }
}

/// The merge patch that replaces a payload and the expiry annotation; with `uid`, the patch only
/// applies to that very object (a re-created secret gives 422 on `metadata.uid` from a real API
/// server; a changed one may give 409).
fn payload_patch(format: Format, payload: &str, expiry: &str, uid: Option<&str>) -> Value {
    let mut patch = json!({
        "metadata": { "annotations": { EXPIRES_ANNOTATION: expiry } },
        "data": { format.data_key(): payload },
    });
    if let Some(uid) = uid {
        patch["metadata"]["uid"] = Value::String(uid.to_string());
    }
    patch
}

/// The `verified-at` annotation's value in a merge patch: the time, or `null` (removed).
fn verified_value(token: &Token) -> Value {
    token
        .verified_at
        .and_then(|at| at.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// A hash of what a write would put in the secret.
fn fingerprint(payload: &str, expiry: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    expiry.hash(&mut hasher);
    hasher.finish()
}
