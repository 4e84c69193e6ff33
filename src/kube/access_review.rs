//! The RBAC preflight: before the first cycle (and in `--dry-run`), one SelfSubjectAccessReview
//! (authorization.k8s.io/v1, which every authenticated identity may create) per right the
//! configuration needs ([`needed_rights`]), and each missing right logged by name with the RBAC
//! rule that grants it. A server that does not answer the reviews (an old or locked-down one)
//! gets one debug line and is taken at its word later, never a failure.

use serde_json::{Value, json};

use super::client::{Cap, KubeClient};
use crate::config::Config;

/// The review endpoint.
pub const PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
/// The most namespaces checked one by one (named in `ECR_NAMESPACES`).
const MAX_NAMESPACES: usize = 16;

/// One right: a verb on a resource, maybe by name, maybe in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Right {
    /// E.g. `get`.
    pub verb: &'static str,
    /// The API group (`""` = core).
    pub group: &'static str,
    /// E.g. `secrets`.
    pub resource: &'static str,
    /// The object's name, for rights granted by `resourceNames`.
    pub name: Option<String>,
    /// The namespace (`None`: every namespace).
    pub namespace: Option<String>,
}

impl Right {
    /// `get secrets/ecr-pull in team-a`, `list namespaces`, `create events.k8s.io events`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} ", self.verb);
        if !self.group.is_empty() {
            text.push_str(self.group);
            text.push(' ');
        }
        text.push_str(self.resource);
        if let Some(name) = &self.name {
            text.push('/');
            text.push_str(name);
        }
        if let Some(ns) = &self.namespace {
            text.push_str(" in ");
            text.push_str(ns);
        }
        text
    }

    /// The RBAC rule that grants it, in a (Cluster)Role's `rules`.
    pub fn rule(&self) -> String {
        let names = self
            .name
            .as_ref()
            .map(|n| format!(", resourceNames: [\"{n}\"]"))
            .unwrap_or_default();
        let role = if self.namespace.is_some() {
            "a Role in that namespace"
        } else {
            "the ClusterRole"
        };
        format!(
            "{{apiGroups: [\"{}\"], resources: [\"{}\"]{names}, verbs: [\"{}\"]}} in {role}",
            self.group, self.resource, self.verb
        )
    }

    fn review(&self) -> Value {
        let mut attrs = json!({
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
            "namespace": self.namespace.clone().unwrap_or_default(),
        });
        if let Some(name) = &self.name {
            attrs["name"] = json!(name);
        }
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": { "resourceAttributes": attrs },
        })
    }
}

/// The rights this configuration needs: namespaces list and watch; the secret's get and
/// patch, and create with `ECR_CREATE_MISSING`; service accounts get and patch with
/// `ECR_SERVICE_ACCOUNTS`; events create. Namespaced rights are checked in each namespace
/// `ECR_NAMESPACES` names (without globs), else in every namespace.
pub fn needed_rights(config: &Config) -> Vec<Right> {
    let right = |verb, group, resource, name: Option<&str>, namespace: Option<&str>| Right {
        verb,
        group,
        resource,
        name: name.map(str::to_string),
        namespace: namespace.map(str::to_string),
    };
    let mut rights = vec![
        right("list", "", "namespaces", None, None),
        right("watch", "", "namespaces", None, None),
    ];
    let include = &config.selection.include;
    let scopes: Vec<Option<&str>> =
        if !include.is_empty() && include.iter().all(|n| !n.contains(['*', '?', '['])) {
            include
                .iter()
                .take(MAX_NAMESPACES)
                .map(|n| Some(n.as_str()))
                .collect()
        } else {
            vec![None]
        };
    let secret = Some(config.secret_name.as_str());
    for ns in scopes {
        rights.push(right("get", "", "secrets", secret, ns));
        rights.push(right("patch", "", "secrets", secret, ns));
        if config.create_missing {
            rights.push(right("create", "", "secrets", None, ns));
        }
        for sa in config.service_accounts.iter().take(MAX_NAMESPACES) {
            rights.push(right("get", "", "serviceaccounts", Some(sa), ns));
            rights.push(right("patch", "", "serviceaccounts", Some(sa), ns));
        }
        rights.push(right("create", "events.k8s.io", "events", None, ns));
    }
    rights
}

/// What the preflight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Every right is granted.
    Granted,
    /// These rights are missing.
    Missing(Vec<Right>),
    /// The server does not answer the reviews (an old or locked-down server).
    NotAnswered,
}

/// Asks the server about each right and logs each missing one (as an error in a dry run, else a
/// warning) with the rule that grants it. A server that cannot be reached, or whose TLS fails,
/// is the error: the cycle would meet it next anyway, so it reports it without a second try.
pub fn preflight(
    client: &KubeClient,
    rights: &[Right],
    dry_run: bool,
) -> Result<Preflight, super::KubeError> {
    let mut missing = Vec::new();
    for right in rights {
        let answer = match client.post::<Value>(PATH, &right.review(), Cap::Object) {
            Ok(answer) => answer,
            Err(
                e @ (super::KubeError::Transport { .. }
                | super::KubeError::Unreachable { .. }
                | super::KubeError::Tls { .. }),
            ) => {
                log::debug!("RBAC preflight postponed: the API server did not answer ({e})");
                return Err(e);
            }
            Err(e) => {
                log::debug!(
                    "RBAC preflight skipped: the API server did not answer a SelfSubjectAccessReview ({e})"
                );
                return Ok(Preflight::NotAnswered);
            }
        };
        let Some(allowed) = answer.pointer("/status/allowed").and_then(Value::as_bool) else {
            log::debug!(
                "RBAC preflight skipped: a SelfSubjectAccessReview answer without status.allowed"
            );
            return Ok(Preflight::NotAnswered);
        };
        if !allowed {
            let text = format!(
                "RBAC: missing right: {}; granted by the rule {}",
                right.describe(),
                right.rule()
            );
            if dry_run {
                log::error!("{text}");
            } else {
                log::warn!("{text}");
            }
            missing.push(right.clone());
        }
    }
    if missing.is_empty() {
        log::debug!("RBAC preflight: all {} rights granted", rights.len());
        Ok(Preflight::Granted)
    } else {
        Ok(Preflight::Missing(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, Flags};

    fn config(extra: &[(&'static str, &'static str)]) -> Config {
        let mut pairs = vec![
            ("K8S_PULL_SECRET_NAME", "ecr-pull"),
            ("AWS_REGION", "eu-west-1"),
        ];
        pairs.extend_from_slice(extra);
        Config::from_env(&Env::from_pairs(pairs), Flags::default()).expect("config")
    }

    #[test]
    fn the_rights_follow_the_configuration() {
        let names =
            |c: &Config| -> Vec<String> { needed_rights(c).iter().map(Right::describe).collect() };
        assert_eq!(
            names(&config(&[])),
            [
                "list namespaces",
                "watch namespaces",
                "get secrets/ecr-pull",
                "patch secrets/ecr-pull",
                "create events.k8s.io events"
            ]
        );
        let all = names(&config(&[
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_SERVICE_ACCOUNTS", "default"),
            ("ECR_NAMESPACES", "team-a"),
        ]));
        assert!(
            all.contains(&"create secrets in team-a".to_string()),
            "{all:?}"
        );
        assert!(
            all.contains(&"patch serviceaccounts/default in team-a".to_string()),
            "{all:?}"
        );
        assert!(
            all.contains(&"create events.k8s.io events in team-a".to_string()),
            "{all:?}"
        );
        let globbed = names(&config(&[("ECR_NAMESPACES", "team-*")]));
        assert!(
            globbed.contains(&"get secrets/ecr-pull".to_string()),
            "{globbed:?}"
        );
    }

    #[test]
    fn the_rule_that_grants_a_right() {
        let r = &needed_rights(&config(&[]))[2];
        assert_eq!(
            r.rule(),
            r#"{apiGroups: [""], resources: ["secrets"], resourceNames: ["ecr-pull"], verbs: ["get"]} in the ClusterRole"#
        );
    }
}
