//! The RBAC guard: every kustomization that grants this service account `create` on secrets ships
//! a ValidatingAdmissionPolicy and its binding (admissionregistration.k8s.io/v1, `[Deny]`), and
//! the policy's CEL expressions, read from the rendered YAML (`kubectl kustomize`), are
//! evaluated with a real CEL implementation (the `cel-interpreter` crate) against requests the
//! daemon sends (allowed) and the escalations it must not be able to make (denied): a
//! service-account-token secret under the pull secret's name, a bootstrap token, another name,
//! another type. The RBAC grants no verb the daemon never uses.
//!
//! Needs `kubectl` (its built-in kustomize) and python3 with PyYAML: `#[ignore = "needs ..."]`.

mod common;

use std::path::{Path, PathBuf};

use cel_interpreter::{Context, Program, Value as Cel};
use serde_json::{Value, json};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("example_deployment")
}

/// `kubectl kustomize DIR`, as JSON objects (the testkit's rendering, through python3's PyYAML).
fn render(dir: &Path) -> Vec<Value> {
    ecrupdater_testkit::kube::rbac::render_kustomization(dir)
        .unwrap_or_else(|e| panic!("rendering {}: {e}", dir.display()))
}

/// Every folder holding a kustomization that renders alone (not a Component).
fn renderable() -> Vec<PathBuf> {
    common::kustomization_dirs()
        .into_iter()
        .filter(|(_, component)| !component)
        .map(|(dir, _)| dir)
        .collect()
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The daemon's identity and configured secret name in a rendering:
/// (`system:serviceaccount:NS:SA`, K8S_PULL_SECRET_NAME).
fn identity(objects: &[Value]) -> (String, String) {
    let workload = objects
        .iter()
        .find(|o| matches!(kind(o), "Deployment" | "CronJob"))
        .expect("the daemon's workload");
    let pod = workload
        .pointer("/spec/template/spec")
        .or_else(|| workload.pointer("/spec/jobTemplate/spec/template/spec"))
        .expect("pod spec");
    let sa = pod["serviceAccountName"].as_str().unwrap_or("default");
    let ns = workload
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .find(|e| e["name"] == "K8S_PULL_SECRET_NAME")
        .and_then(|e| e["value"].as_str())
        .expect("K8S_PULL_SECRET_NAME")
        .to_string();
    (format!("system:serviceaccount:{ns}:{sa}"), name)
}

/// The verbs the rendering's Roles and ClusterRoles grant on a core resource.
fn verbs_on<'a>(objects: &'a [Value], resource: &str) -> Vec<&'a str> {
    objects
        .iter()
        .filter(|o| matches!(kind(o), "Role" | "ClusterRole"))
        .flat_map(|o| o["rules"].as_array().into_iter().flatten())
        .filter(|r| {
            strings(&r["apiGroups"]).contains(&"") && strings(&r["resources"]).contains(&resource)
        })
        .flat_map(|r| strings(&r["verbs"]))
        .collect()
}

/// One admission request, as the API server hands it to a ValidatingAdmissionPolicy.
struct Request {
    what: &'static str,
    user: String,
    operation: &'static str,
    object: Value,
}

/// What the policy decides: `Ok(())` admitted, `Err(message)` denied.
fn evaluate(policy: &Value, request: &Request) -> Result<(), String> {
    let spec = &policy["spec"];
    // matchConstraints (structured, not CEL): the policy applies to this resource and operation?
    let matched = spec["matchConstraints"]["resourceRules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|rule| {
            strings(&rule["apiGroups"]).contains(&"")
                && strings(&rule["apiVersions"])
                    .iter()
                    .any(|v| *v == "v1" || *v == "*")
                && strings(&rule["resources"])
                    .iter()
                    .any(|r| *r == "secrets" || *r == "*")
                && strings(&rule["operations"])
                    .iter()
                    .any(|o| *o == request.operation || *o == "*")
        });
    if !matched {
        return Ok(());
    }
    let fail_closed = spec["failurePolicy"].as_str().unwrap_or("Fail") == "Fail";
    let mut context = Context::default();
    let request_var = json!({
        "operation": request.operation,
        "userInfo": {"username": request.user},
        "namespace": request.object.pointer("/metadata/namespace").cloned().unwrap_or(json!("")),
        "name": request.object.pointer("/metadata/name").cloned().unwrap_or(json!("")),
        "resource": {"group": "", "version": "v1", "resource": "secrets"},
    });
    context
        .add_variable("request", &request_var)
        .expect("request");
    context
        .add_variable("object", &request.object)
        .expect("object");
    context.add_variable_from_value("oldObject", Cel::Null);
    context.add_variable_from_value("params", Cel::Null);
    let run = |expression: &str| -> Result<Cel, String> {
        let program = Program::compile(expression)
            .map_err(|e| format!("{expression:?} does not compile: {e}"))?;
        program
            .execute(&context)
            .map_err(|e| format!("{expression:?} failed: {e}"))
    };
    // matchConditions: all true, or the policy does not apply. An error fails closed.
    for condition in spec["matchConditions"].as_array().into_iter().flatten() {
        let expression = condition["expression"].as_str().expect("expression");
        match run(expression) {
            Ok(Cel::Bool(true)) => {}
            Ok(Cel::Bool(false)) => return Ok(()),
            Ok(other) => return Err(format!("{expression:?} is not a bool: {other:?}")),
            Err(e) if fail_closed => return Err(e),
            Err(_) => return Ok(()),
        }
    }
    for validation in spec["validations"].as_array().into_iter().flatten() {
        let expression = validation["expression"].as_str().expect("expression");
        match run(expression) {
            Ok(Cel::Bool(true)) => {}
            Ok(Cel::Bool(false)) => {
                let message = match validation["messageExpression"].as_str() {
                    Some(m) => match run(m)? {
                        Cel::String(s) => s.to_string(),
                        other => return Err(format!("messageExpression {m:?} gave {other:?}")),
                    },
                    None => validation["message"]
                        .as_str()
                        .unwrap_or("denied")
                        .to_string(),
                };
                return Err(message);
            }
            Ok(other) => return Err(format!("{expression:?} is not a bool: {other:?}")),
            Err(e) if fail_closed => return Err(e),
            Err(_) => {}
        }
    }
    Ok(())
}

fn secret(namespace: &str, name: &str, kind: Option<&str>, annotations: Value) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "data": {".dockerconfigjson": "e30="},
    });
    if let Some(kind) = kind {
        s["type"] = json!(kind);
    }
    s
}

/// The requests the daemon makes, which must pass, and the escalations, which must not.
fn requests(user: &str, name: &str) -> (Vec<Request>, Vec<Request>) {
    let r = |what, user: &str, operation, object| Request {
        what,
        user: user.to_string(),
        operation,
        object,
    };
    let none = json!({});
    let allowed = vec![
        r(
            "create the pull secret (dockerconfigjson)",
            user,
            "CREATE",
            secret(
                "team-a",
                name,
                Some("kubernetes.io/dockerconfigjson"),
                none.clone(),
            ),
        ),
        r(
            "patch the pull secret (dockerconfigjson)",
            user,
            "UPDATE",
            secret(
                "team-a",
                name,
                Some("kubernetes.io/dockerconfigjson"),
                none.clone(),
            ),
        ),
        r(
            "patch a legacy dockercfg pull secret",
            user,
            "UPDATE",
            secret(
                "team-b",
                name,
                Some("kubernetes.io/dockercfg"),
                none.clone(),
            ),
        ),
        r(
            "someone else creates a service-account token",
            "system:serviceaccount:ci:deployer",
            "CREATE",
            secret(
                "team-a",
                name,
                Some("kubernetes.io/service-account-token"),
                json!({"kubernetes.io/service-account.name": "default"}),
            ),
        ),
        r(
            "an admin writes any secret",
            "kubernetes-admin",
            "UPDATE",
            secret("kube-system", "anything", Some("Opaque"), none.clone()),
        ),
        r(
            "the daemon deletes nothing (DELETE is not matched)",
            user,
            "DELETE",
            secret("team-a", "other", Some("Opaque"), none.clone()),
        ),
    ];
    let denied = vec![
        r(
            "a service-account token under the pull secret's name",
            user,
            "CREATE",
            secret(
                "kube-system",
                name,
                Some("kubernetes.io/service-account-token"),
                json!({"kubernetes.io/service-account.name": "clusterrole-aggregation-controller"}),
            ),
        ),
        r(
            "a bootstrap token in kube-system",
            user,
            "CREATE",
            secret(
                "kube-system",
                name,
                Some("bootstrap.kubernetes.io/token"),
                none.clone(),
            ),
        ),
        r(
            "an Opaque secret under the name",
            user,
            "CREATE",
            secret("team-a", name, Some("Opaque"), none.clone()),
        ),
        r(
            "a secret without a type",
            user,
            "CREATE",
            secret("team-a", name, None, none.clone()),
        ),
        r(
            "a pull secret under another name",
            user,
            "CREATE",
            secret(
                "team-a",
                "someone-elses-pull-secret",
                Some("kubernetes.io/dockerconfigjson"),
                none.clone(),
            ),
        ),
        r(
            "a generated name",
            user,
            "CREATE",
            secret(
                "team-a",
                &format!("{name}-x7k2q"),
                Some("kubernetes.io/dockerconfigjson"),
                none.clone(),
            ),
        ),
        r(
            "an update to another secret",
            user,
            "UPDATE",
            secret("team-a", "db-password", Some("Opaque"), none.clone()),
        ),
        r(
            "an update turning the pull secret into a token",
            user,
            "UPDATE",
            secret(
                "team-a",
                name,
                Some("kubernetes.io/service-account-token"),
                none.clone(),
            ),
        ),
    ];
    (allowed, denied)
}

/// The guard's problems in one rendering (empty: it holds).
fn guard_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let (user, name) = identity(objects);
    let policies: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == "ValidatingAdmissionPolicy")
        .collect();
    let bindings: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == "ValidatingAdmissionPolicyBinding")
        .collect();
    let guarding: Vec<&Value> = policies
        .iter()
        .copied()
        .filter(|p| {
            p["apiVersion"] == "admissionregistration.k8s.io/v1"
                && p.pointer("/metadata/namespace").is_none()
                && bindings.iter().any(|b| {
                    b["apiVersion"] == "admissionregistration.k8s.io/v1"
                        && b["spec"]["policyName"] == p["metadata"]["name"]
                        && strings(&b["spec"]["validationActions"]) == ["Deny"]
                        && b["spec"].get("paramRef").is_none()
                        && b.pointer("/metadata/namespace").is_none()
                })
        })
        .collect();
    if guarding.is_empty() {
        problems.push("no admissionregistration.k8s.io/v1 policy bound with [Deny]".to_string());
        return problems;
    }
    let (allowed, denied) = requests(&user, &name);
    for request in &allowed {
        for policy in &guarding {
            if let Err(message) = evaluate(policy, request) {
                problems.push(format!("{}: denied ({message})", request.what));
            }
        }
    }
    for request in &denied {
        if guarding.iter().all(|p| evaluate(p, request).is_ok()) {
            problems.push(format!("{}: admitted", request.what));
        }
    }
    problems
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or apt-get install kubectl python3-yaml)"]
fn every_kustomization_that_grants_create_is_guarded_by_the_admission_policy() {
    let dirs = renderable();
    assert!(dirs.len() >= 7, "{dirs:?}");
    let mut guarded = 0;
    for dir in dirs {
        let objects = render(&dir);
        if !objects
            .iter()
            .any(|o| matches!(kind(o), "Deployment" | "CronJob"))
        {
            continue; // monitoring: no daemon, no RBAC
        }
        let what = dir
            .strip_prefix(examples())
            .unwrap_or(&dir)
            .display()
            .to_string();
        // No verb the daemon never uses: it gets and patches secrets by name, creates missing
        // ones, lists and watches namespaces, gets and patches service accounts. Never update
        // (it never PUTs), list, watch, delete.
        for (resource, used) in [
            ("secrets", &["get", "patch", "create"][..]),
            ("namespaces", &["list", "watch"][..]),
            ("serviceaccounts", &["get", "patch"][..]),
        ] {
            for verb in verbs_on(&objects, resource) {
                assert!(
                    used.contains(&verb),
                    "{what}: grants {verb} on {resource}, never used"
                );
            }
        }
        if !verbs_on(&objects, "secrets").contains(&"create") {
            continue;
        }
        let problems = guard_problems(&objects);
        assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
        guarded += 1;
    }
    assert!(guarded >= 6, "only {guarded} kustomizations checked");
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or apt-get install kubectl python3-yaml)"]
fn the_guard_check_fails_on_a_broken_policy() {
    // Broken copies of the real rendering: each must be caught, or the check proves nothing.
    let good = render(&examples());
    assert!(guard_problems(&good).is_empty());
    let at = good
        .iter()
        .position(|o| kind(o) == "ValidatingAdmissionPolicy")
        .expect("the policy");
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut objects = good.clone();
        edit(&mut objects[at]);
        guard_problems(&objects)
    };
    let problems = broken(&|p| {
        p["spec"]["validations"]
            .as_array_mut()
            .expect("validations")
            .remove(1);
    });
    assert!(
        problems.iter().any(
            |p| p.starts_with("a service-account token under the pull secret's name: admitted")
        ),
        "{problems:?}"
    );
    let problems = broken(&|p| {
        p["spec"]["validations"]
            .as_array_mut()
            .expect("validations")
            .remove(0);
    });
    assert!(
        problems
            .iter()
            .any(|p| p.contains("another name: admitted")),
        "{problems:?}"
    );
    let problems = broken(&|p| {
        p["spec"]["matchConditions"][0]["expression"] =
            json!("request.userInfo.username == 'system:serviceaccount:other:sa'");
    });
    assert!(!problems.is_empty(), "a condition matching someone else");
    let problems = broken(&|p| {
        p["spec"]["validations"][0]["expression"] = json!("object.metadata.nmae == 'ecr-pull'");
    });
    assert!(
        problems.iter().any(|p| p.contains("denied")),
        "a typo fails closed: {problems:?}"
    );
    let problems = broken(&|p| {
        p["spec"]["matchConstraints"]["resourceRules"][0]["operations"] = json!(["CREATE"]);
    });
    assert!(
        problems
            .iter()
            .any(|p| p.contains("into a token: admitted")),
        "{problems:?}"
    );
    // Unbound, or bound to warn only.
    let mut objects = good.clone();
    let b = objects
        .iter()
        .position(|o| kind(o) == "ValidatingAdmissionPolicyBinding")
        .expect("binding");
    objects[b]["spec"]["validationActions"] = json!(["Warn"]);
    assert!(!guard_problems(&objects).is_empty());
}

/// The README's overlay for clusters older than 1.30, rendered as written (its path to
/// `example_deployment/base` pointed at this checkout).
fn render_readme_overlay() -> Vec<Value> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let section = &readme[readme
        .find("**Clusters older than 1.30**")
        .expect("the section")..];
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block in the section");
    let dir = std::env::temp_dir().join(format!("ecrupdater-pre130-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // kustomize takes relative paths only: from the temporary folder up to / and down again.
    let up = "../".repeat(dir.components().count() - 1);
    let base = examples().join("base");
    let relative = format!(
        "{up}{}",
        base.strip_prefix("/").expect("absolute").display()
    );
    assert!(block.contains("../example_deployment/base"), "{block}");
    let text = block.replace("../example_deployment/base", &relative);
    std::fs::write(dir.join("kustomization.yaml"), text).expect("write");
    let objects = render(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    objects
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or apt-get install kubectl python3-yaml)"]
fn the_readme_overlay_for_clusters_older_than_1_30_drops_create_and_the_policy() {
    let objects = render_readme_overlay();
    let secrets = verbs_on(&objects, "secrets");
    assert!(!secrets.contains(&"create"), "{secrets:?}");
    assert!(
        secrets.contains(&"get") && secrets.contains(&"patch"),
        "{secrets:?}"
    );
    assert!(
        !objects
            .iter()
            .any(|o| kind(o).starts_with("ValidatingAdmissionPolicy")),
        "a v1 policy left for a cluster that does not know it"
    );
    // Get and patch stay limited to the pull secret's name.
    let (_, name) = identity(&objects);
    for rule in objects
        .iter()
        .filter(|o| matches!(kind(o), "Role" | "ClusterRole"))
        .flat_map(|o| o["rules"].as_array().into_iter().flatten())
        .filter(|r| strings(&r["resources"]).contains(&"secrets"))
    {
        assert_eq!(strings(&rule["resourceNames"]), [name.as_str()], "{rule}");
    }
    let create_missing = objects
        .iter()
        .filter(|o| kind(o) == "Deployment")
        .flat_map(|o| {
            o.pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .find(|e| e["name"] == "ECR_CREATE_MISSING")
        .and_then(|e| e["value"].as_str());
    assert_eq!(create_missing, Some("false"));
}
