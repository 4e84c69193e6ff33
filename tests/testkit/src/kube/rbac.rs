//! RBAC enforced as the kube-apiserver's RBAC authorizer does it (plugin/pkg/auth/authorizer/rbac
//! and pkg/apis/rbac/v1 evaluation helpers), for the one identity the daemon runs as: Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings loaded from the manifests the shipped
//! kustomizations render (`kubectl kustomize DIR`, YAML turned into JSON by python3's yaml
//! module), the request's attributes worked out as the apiserver's RequestInfoFactory does, and a
//! refusal answered with the real 403 Status and message (endpoints/handlers/responsewriters
//! forbiddenMessage + apierrors.NewForbidden). Kinds other than the four RBAC ones (Deployments,
//! ValidatingAdmissionPolicies, ...) are ignored. Non-resource paths (`/api`, `/version`,
//! `/healthz`, ...) are allowed, as `system:discovery` and `system:public-info-viewer` allow them
//! to every authenticated identity.

use crate::http::{Request, Response, percent_decode};
use crate::util::go_quote;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// One PolicyRule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
}

impl Rule {
    /// rbac.RuleAllows for a resource request.
    fn allows(&self, a: &Attributes) -> bool {
        let any = |list: &[String], want: &str| list.iter().any(|v| v == "*" || v == want);
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.len() == a.subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(&a.subresource))
        });
        let name_ok = self.resource_names.is_empty() || self.resource_names.contains(&a.name);
        any(&self.verbs, &a.verb) && any(&self.api_groups, &a.api_group) && resource_ok && name_ok
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

/// The identity requests are authorized as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    /// `system:serviceaccount:NS:NAME` with the groups the token authenticator gives it.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    fn is(&self, s: &Subject) -> bool {
        match s.kind.as_str() {
            "ServiceAccount" => {
                self.name == format!("system:serviceaccount:{}:{}", s.namespace, s.name)
            }
            "User" => self.name == s.name,
            "Group" => self.groups.contains(&s.name),
            _ => false,
        }
    }
}

/// What a request asks for (k8s.io/apiserver authorizer.Attributes, resource requests only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    /// Empty: cluster scope.
    pub namespace: String,
    /// Empty for list, watch, create.
    pub name: String,
}

impl Attributes {
    /// The attributes of an HTTP request (RequestInfoFactory.NewRequestInfo for `/api/v1/...`
    /// and `/apis/GROUP/VERSION/...`), or `None` for a non-resource path.
    pub fn of(req: &Request) -> Option<Attributes> {
        let segs: Vec<String> = req
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false))
            .collect();
        let (api_group, rest) = match segs.first().map(String::as_str) {
            Some("api") if segs.len() >= 3 => (String::new(), &segs[2..]),
            Some("apis") if segs.len() >= 4 => (segs[1].clone(), &segs[3..]),
            _ => return None,
        };
        let mut parts: &[String] = rest;
        let mut namespace = String::new();
        if parts[0] == "namespaces" && parts.len() > 1 {
            namespace = parts[1].clone();
            if parts.len() > 2 && parts[2] != "status" && parts[2] != "finalize" {
                parts = &parts[2..];
            }
        }
        let resource = parts[0].clone();
        let name = parts.get(1).cloned().unwrap_or_default();
        let subresource = parts.get(2).cloned().unwrap_or_default();
        let watch = matches!(req.param("watch").as_deref(), Some("true" | "1"));
        let verb = match req.method.as_str() {
            "POST" => "create",
            "GET" | "HEAD" if watch => "watch",
            "GET" | "HEAD" if name.is_empty() => "list",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" if name.is_empty() => "deletecollection",
            "DELETE" => "delete",
            other => return Some(Attributes::with_verb(other.to_ascii_lowercase(), api_group)),
        };
        Some(Attributes {
            verb: verb.into(),
            api_group,
            resource,
            subresource,
            namespace,
            name,
        })
    }

    fn with_verb(verb: String, api_group: String) -> Attributes {
        Attributes {
            verb,
            api_group,
            ..Attributes::default()
        }
    }
}

/// The RBAC objects of a set of manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rbac {
    cluster_roles: BTreeMap<String, Vec<Rule>>,
    roles: BTreeMap<(String, String), Vec<Rule>>,
    bindings: Vec<Binding>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Rbac {
    /// Reads the Roles, ClusterRoles and bindings among `objects` (other kinds are ignored). A
    /// Role or RoleBinding without a namespace is an error (kustomize sets it from the
    /// kustomization's `namespace:`; a manifest without one would land in `default`).
    pub fn from_objects(objects: &[Value]) -> Result<Rbac, String> {
        let mut rbac = Rbac::default();
        for o in objects {
            let kind = text(o, "/kind");
            let name = text(o, "/metadata/name");
            let namespace = text(o, "/metadata/namespace");
            let rules = || -> Vec<Rule> {
                o.get("rules")
                    .and_then(Value::as_array)
                    .map(|rules| {
                        rules
                            .iter()
                            .map(|r| Rule {
                                verbs: strings(r.get("verbs")),
                                api_groups: strings(r.get("apiGroups")),
                                resources: strings(r.get("resources")),
                                resource_names: strings(r.get("resourceNames")),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let binding = |namespace: String| Binding {
                namespace,
                role_kind: text(o, "/roleRef/kind"),
                role_name: text(o, "/roleRef/name"),
                subjects: o
                    .get("subjects")
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter()
                            .map(|s| Subject {
                                kind: text(s, "/kind"),
                                name: text(s, "/name"),
                                namespace: text(s, "/namespace"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            match kind.as_str() {
                "ClusterRole" => {
                    rbac.cluster_roles.insert(name, rules());
                }
                "Role" if namespace.is_empty() => {
                    return Err(format!("Role {name} has no namespace"));
                }
                "Role" => {
                    rbac.roles.insert((namespace, name), rules());
                }
                "ClusterRoleBinding" => rbac.bindings.push(binding(String::new())),
                "RoleBinding" if namespace.is_empty() => {
                    return Err(format!("RoleBinding {name} has no namespace"));
                }
                "RoleBinding" => rbac.bindings.push(binding(namespace)),
                _ => {}
            }
        }
        Ok(rbac)
    }

    /// Whether `user` may do `a` (some binding that applies to the request's namespace grants a
    /// role with a rule allowing it; RBAC only ever allows).
    pub fn allows(&self, user: &User, a: &Attributes) -> bool {
        basic_user_allows(a)
            || self.bindings.iter().any(|b| {
                let applies = b.namespace.is_empty() || b.namespace == a.namespace;
                if !applies || !b.subjects.iter().any(|s| user.is(s)) {
                    return false;
                }
                let rules = match b.role_kind.as_str() {
                    "ClusterRole" => self.cluster_roles.get(&b.role_name),
                    "Role" if !b.namespace.is_empty() => {
                        self.roles.get(&(b.namespace.clone(), b.role_name.clone()))
                    }
                    _ => None,
                };
                rules.is_some_and(|rules| rules.iter().any(|r| r.allows(a)))
            })
    }
}

/// The bootstrap ClusterRole `system:basic-user`, bound to the group `system:authenticated`
/// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go): every authenticated identity may
/// create SelfSubjectAccessReviews and SelfSubjectRulesReviews (authorization.k8s.io) and
/// SelfSubjectReviews (authentication.k8s.io), whatever the shipped manifests say.
fn basic_user_allows(a: &Attributes) -> bool {
    a.verb == "create"
        && matches!(
            (a.api_group.as_str(), a.resource.as_str()),
            (
                "authorization.k8s.io",
                "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
            ) | ("authentication.k8s.io", "selfsubjectreviews")
        )
}

/// The 403 the apiserver sends when no authorizer allows the request.
pub(crate) fn forbidden(user: &User, a: &Attributes) -> Response {
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {}", go_quote(&a.namespace))
    };
    let why = format!(
        "User {} cannot {} resource {} in API group {} {scope}",
        go_quote(&user.name),
        a.verb,
        go_quote(&resource),
        go_quote(&a.api_group)
    );
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let message = if a.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {} is forbidden: {why}", go_quote(&a.name))
    };
    let mut details = serde_json::Map::new();
    if !a.name.is_empty() {
        details.insert("name".into(), json!(a.name));
    }
    if !a.api_group.is_empty() {
        details.insert("group".into(), json!(a.api_group));
    }
    details.insert("kind".into(), json!(a.resource));
    super::status::error(403, "Forbidden", &message, Some(Value::Object(details)))
}

/// The objects `kubectl kustomize DIR` renders, as JSON (through python3's yaml module). The
/// error names the tool that is missing or failed, with how to install it.
pub fn render_kustomization(dir: &Path) -> Result<Vec<Value>, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            format!("cannot run `kubectl kustomize` ({e}): kubectl is needed (install it from the Kubernetes packages)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run python3 ({e}): python3 with its yaml module is needed (apt-get install python3-yaml)"))?;
    {
        use std::io::Write;
        let mut stdin = py.stdin.take().ok_or("no stdin for python3")?;
        stdin
            .write_all(&out.stdout)
            .map_err(|e| format!("writing to python3: {e}"))?;
    }
    let converted = py.wait_with_output().map_err(|e| format!("python3: {e}"))?;
    if !converted.status.success() {
        return Err(format!(
            "converting the YAML with python3 failed (apt-get install python3-yaml, or pip install pyyaml): {}",
            String::from_utf8_lossy(&converted.stderr).trim()
        ));
    }
    match serde_json::from_slice(&converted.stdout) {
        Ok(Value::Array(objects)) => Ok(objects),
        Ok(_) => Err("python3 did not print a list".into()),
        Err(e) => Err(format!("python3 printed no JSON: {e}")),
    }
}

/// What a kustomization deploys: its objects, with the pieces a test needs.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub objects: Vec<Value>,
}

impl Manifests {
    /// Renders `dir` (see [`render_kustomization`]).
    pub fn render(dir: &Path) -> Result<Manifests, String> {
        Ok(Manifests {
            objects: render_kustomization(dir)?,
        })
    }

    /// Its RBAC objects.
    pub fn rbac(&self) -> Result<Rbac, String> {
        Rbac::from_objects(&self.objects)
    }

    /// The pod template of its Deployment or CronJob.
    fn pod(&self) -> Option<(&Value, String)> {
        self.objects.iter().find_map(|o| {
            let ns = text(o, "/metadata/namespace");
            match o.get("kind").and_then(Value::as_str) {
                Some("Deployment") => o.pointer("/spec/template/spec").map(|p| (p, ns)),
                Some("CronJob") => o
                    .pointer("/spec/jobTemplate/spec/template/spec")
                    .map(|p| (p, ns)),
                _ => None,
            }
        })
    }

    /// The identity the daemon's pod runs as: its serviceAccountName in its namespace.
    pub fn daemon_user(&self) -> Option<User> {
        let (pod, ns) = self.pod()?;
        let sa = pod
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        Some(User::service_account(&ns, sa))
    }

    /// The `name`/`value` environment of the daemon's container (`valueFrom` entries left out).
    pub fn daemon_env(&self) -> Vec<(String, String)> {
        let Some((pod, _)) = self.pod() else {
            return Vec::new();
        };
        pod.get("containers")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some("ecr-updater"))
                    .or_else(|| c.first())
            })
            .and_then(|c| c.get("env"))
            .and_then(Value::as_array)
            .map(|env| {
                env.iter()
                    .filter_map(|e| {
                        Some((
                            e.get("name")?.as_str()?.to_string(),
                            e.get("value")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Attributes::default()
        }
    }

    fn manifests() -> Vec<Value> {
        vec![
            json!({"kind": "ClusterRole", "metadata": {"name": "cr"}, "rules": [
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["pull"], "verbs": ["get", "patch"]}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
                   "roleRef": {"kind": "ClusterRole", "name": "cr"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "home"}]}),
            json!({"kind": "Role", "metadata": {"name": "r", "namespace": "team"}, "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "team"},
                   "roleRef": {"kind": "Role", "name": "r"},
                   "subjects": [{"kind": "Group", "name": "system:serviceaccounts:home"}]}),
            json!({"kind": "ValidatingAdmissionPolicy", "metadata": {"name": "ignored"}}),
        ]
    }

    #[test]
    fn bindings_roles_and_resource_names() {
        let rbac = Rbac::from_objects(&manifests()).unwrap();
        let sa = User::service_account("home", "sa");
        let other = User::service_account("home", "other");
        assert!(rbac.allows(&sa, &attrs("list", "namespaces", "", "")));
        assert!(!rbac.allows(&sa, &attrs("get", "namespaces", "x", "x")));
        assert!(rbac.allows(&sa, &attrs("get", "secrets", "any", "pull")));
        assert!(!rbac.allows(&sa, &attrs("get", "secrets", "any", "other")));
        assert!(!rbac.allows(&sa, &attrs("list", "secrets", "any", "")));
        assert!(!rbac.allows(&sa, &attrs("update", "secrets", "any", "pull")));
        // The RoleBinding applies in its namespace only, through the group.
        assert!(rbac.allows(&other, &attrs("create", "secrets", "team", "")));
        assert!(!rbac.allows(&other, &attrs("create", "secrets", "elsewhere", "")));
        assert!(!rbac.allows(&other, &attrs("get", "secrets", "any", "pull")));
        let stranger = User::service_account("away", "sa");
        assert!(!rbac.allows(&stranger, &attrs("list", "namespaces", "", "")));
    }

    #[test]
    fn the_forbidden_message_is_the_apiservers() {
        let user = User::service_account("ecr-updater", "ecr-updater");
        let r = forbidden(&user, &attrs("get", "secrets", "team-b", "ecr-pull"));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(
            v["message"],
            "secrets \"ecr-pull\" is forbidden: User \"system:serviceaccount:ecr-updater:ecr-updater\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-b\""
        );
        assert_eq!(v["reason"], "Forbidden");
        assert_eq!(v["details"], json!({"name": "ecr-pull", "kind": "secrets"}));
        let r = forbidden(&user, &attrs("list", "secrets", "", ""));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["message"],
            "secrets is forbidden: User \"system:serviceaccount:ecr-updater:ecr-updater\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
        );
    }
}
