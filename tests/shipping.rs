//! Shipping: what users install and run, checked against the real thing each file stands for.
//!
//! - every kustomization under example_deployment/ rendered by the real `kubectl kustomize`:
//!   current apiVersions, the restricted Pod Security profile on every pod, RBAC that never
//!   reaches other secrets yet grants what the daemon's configuration needs, health probes on
//!   the daemon's port, and what each variant promises (sidecar, CronJob, no static keys, ...);
//! - Dockerfile.scratch: the builder runs scripts/build-static.sh with the target the script
//!   itself maps each TARGETARCH to, and the final stage is the binary alone FROM scratch;
//! - the monitoring rules: every metric they name is in a real /metrics answer of the daemon,
//!   and (with promtool) each alert fires when its comment says and not before;
//! - scripts/demo.sh runs, shows the four cases, masks every password and stops what it started.
//!
//! The rendering tests need `kubectl` and `python3` with PyYAML (to read the YAML), the alert
//! tests `promtool` (Debian package prometheus), the demo moto's server and curl: each is marked
//! `#[ignore = "needs ..."]`, so plain `cargo test` reports it as ignored with the reason, and
//! scripts/test.sh runs it (`--include-ignored`), where a missing peer fails the test by name.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;

// ---------------------------------------------------------------------------------------------
// Reading the manifests

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> PathBuf {
    repo().join("example_deployment")
}

/// The peers the rendering tests need (`kubectl kustomize`, and PyYAML to read its output).
const RENDER_PEERS: &[&str] = &["kubectl", "python3:yaml"];

const YAML_TO_JSON: &str = "import json, sys
try:
    import yaml
except ImportError:
    sys.exit('PyYAML is missing: pip install pyyaml')
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)
";

/// YAML documents as JSON values, through python3's PyYAML.
fn yaml_to_json(yaml: &str, what: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args(["-c", YAML_TO_JSON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write YAML to python3");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "reading {what} as YAML failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Value>(&out.stdout).expect("python3 prints JSON") {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

/// `kubectl kustomize DIR`, as objects.
fn kustomize(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = yaml_to_json(
        &String::from_utf8_lossy(&out.stdout),
        &dir.display().to_string(),
    );
    assert!(!docs.is_empty(), "{} renders nothing", dir.display());
    docs
}

/// Renders a variant (a folder under example_deployment/).
fn render(relative: &str) -> Vec<Value> {
    kustomize(&examples().join(relative))
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn kind(o: &Value) -> &str {
    s(o, "/kind")
}

fn name(o: &Value) -> &str {
    s(o, "/metadata/name")
}

fn id(o: &Value) -> String {
    match o.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{} {ns}/{}", kind(o), name(o)),
        None => format!("{} {}", kind(o), name(o)),
    }
}

fn of_kind<'a>(objects: &'a [Value], k: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == k).collect()
}

/// Every pod spec in the objects, with the object holding it.
fn pod_specs(objects: &[Value]) -> Vec<(String, &Value)> {
    objects
        .iter()
        .filter_map(|o| {
            let spec = match kind(o) {
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                    o.pointer("/spec/template/spec")
                }
                "CronJob" => o.pointer("/spec/jobTemplate/spec/template/spec"),
                "Pod" => o.pointer("/spec"),
                _ => None,
            }?;
            Some((id(o), spec))
        })
        .collect()
}

fn containers(pod: &Value) -> Vec<&Value> {
    ["/containers", "/initContainers", "/ephemeralContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// The daemon's workload: the object, its pod spec and the `ecr-updater` container.
fn updater(objects: &[Value]) -> Option<(&Value, &Value, &Value)> {
    objects.iter().find_map(|o| {
        let pod = match kind(o) {
            "Deployment" => o.pointer("/spec/template/spec"),
            "CronJob" => o.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => None,
        }?;
        let container = containers(pod)
            .into_iter()
            .find(|c| s(c, "/name") == "ecr-updater")?;
        Some((o, pod, container))
    })
}

/// A plain `value:` environment variable of a container.
fn env<'a>(container: &'a Value, var: &str) -> Option<&'a str> {
    container
        .get("env")
        .and_then(Value::as_array)?
        .iter()
        .find(|e| s(e, "/name") == var)
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------
// The checks every rendering passes

const CURRENT_API_VERSIONS: [&str; 6] = [
    "v1",
    "admissionregistration.k8s.io/v1",
    "apps/v1",
    "batch/v1",
    "rbac.authorization.k8s.io/v1",
    "monitoring.coreos.com/v1",
];

/// The restricted Pod Security profile, and resources on every container.
fn pod_problems(owner: &str, pod: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let pod_sc = pod.get("securityContext").cloned().unwrap_or(json!({}));
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod.get(field) == Some(&json!(true)) {
            problems.push(format!("{owner}: {field} is on"));
        }
    }
    for volume in pod
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if volume.get("hostPath").is_some() {
            problems.push(format!("{owner}: hostPath volume {}", s(volume, "/name")));
        }
    }
    if pod_sc.pointer("/runAsUser") == Some(&json!(0)) {
        problems.push(format!("{owner}: pod runs as user 0"));
    }
    let all = containers(pod);
    if all.is_empty() {
        problems.push(format!("{owner}: no containers"));
    }
    for c in all {
        let what = format!("{owner} container {}", s(c, "/name"));
        let sc = c.get("securityContext").cloned().unwrap_or(json!({}));
        let non_root = sc.get("runAsNonRoot").or(pod_sc.get("runAsNonRoot"));
        if non_root != Some(&json!(true)) {
            problems.push(format!("{what}: runAsNonRoot is not true"));
        }
        if sc.get("runAsUser") == Some(&json!(0)) {
            problems.push(format!("{what}: runs as user 0"));
        }
        let seccomp = sc
            .pointer("/seccompProfile/type")
            .or(pod_sc.pointer("/seccompProfile/type"));
        if seccomp != Some(&json!("RuntimeDefault")) {
            problems.push(format!("{what}: seccompProfile is not RuntimeDefault"));
        }
        if sc.get("allowPrivilegeEscalation") != Some(&json!(false)) {
            problems.push(format!("{what}: allowPrivilegeEscalation is not false"));
        }
        if sc.get("readOnlyRootFilesystem") != Some(&json!(true)) {
            problems.push(format!("{what}: readOnlyRootFilesystem is not true"));
        }
        if sc.get("privileged") == Some(&json!(true)) {
            problems.push(format!("{what}: privileged"));
        }
        if !strings(sc.pointer("/capabilities/drop")).contains(&"ALL".to_string()) {
            problems.push(format!("{what}: capabilities do not drop ALL"));
        }
        if !strings(sc.pointer("/capabilities/add")).is_empty() {
            problems.push(format!("{what}: adds capabilities"));
        }
        for field in [
            "/resources/requests/cpu",
            "/resources/requests/memory",
            "/resources/limits/memory",
        ] {
            if c.pointer(field).is_none() {
                problems.push(format!("{what}: no {field}"));
            }
        }
    }
    problems
}

/// Rules that would let anyone holding them read or change secrets beyond the pull secret, or
/// do anything with a wildcard.
fn rbac_rule_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for role in objects
        .iter()
        .filter(|o| matches!(kind(o), "Role" | "ClusterRole"))
    {
        for rule in role
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let groups = strings(rule.get("apiGroups"));
            let resources = strings(rule.get("resources"));
            let verbs = strings(rule.get("verbs"));
            let names = strings(rule.get("resourceNames"));
            let what = format!("{} rule {rule}", id(role));
            if groups.iter().any(|g| g == "*")
                || resources.iter().any(|r| r == "*")
                || verbs.iter().any(|v| v == "*")
            {
                problems.push(format!("{what}: wildcard"));
            }
            if verbs
                .iter()
                .any(|v| v == "delete" || v == "deletecollection")
            {
                problems.push(format!("{what}: the daemon never deletes"));
            }
            let core = groups.iter().any(|g| g.is_empty());
            for resource in ["secrets", "serviceaccounts"] {
                if !(core && resources.iter().any(|r| r == resource)) {
                    continue;
                }
                if verbs.iter().any(|v| v == "list" || v == "watch") {
                    problems.push(format!("{what}: list/watch on all {resource}"));
                }
                let reads_or_writes = verbs
                    .iter()
                    .any(|v| matches!(v.as_str(), "get" | "update" | "patch"));
                if reads_or_writes && names.is_empty() {
                    problems.push(format!(
                        "{what}: get/update/patch on {resource} without resourceNames"
                    ));
                }
                if resource == "serviceaccounts" && verbs.iter().any(|v| v == "create") {
                    problems.push(format!("{what}: creates service accounts"));
                }
            }
        }
    }
    problems
}

/// One RBAC rule granted to a subject: cluster-wide (`scope` None) or in one namespace.
struct Grant {
    scope: Option<String>,
    rule: Value,
}

/// What the service account `namespace/sa` is granted by the bindings among the objects.
fn grants(objects: &[Value], namespace: &str, sa: &str) -> Vec<Grant> {
    let role = |k: &str, role_ns: Option<&str>, n: &str| -> Vec<Value> {
        objects
            .iter()
            .filter(|o| kind(o) == k && name(o) == n)
            .filter(|o| {
                role_ns.is_none() || o.pointer("/metadata/namespace") == Some(&json!(role_ns))
            })
            .flat_map(|o| {
                o.get("rules")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut out = Vec::new();
    for binding in objects
        .iter()
        .filter(|o| matches!(kind(o), "RoleBinding" | "ClusterRoleBinding"))
    {
        let bound = binding
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|subject| {
                s(subject, "/kind") == "ServiceAccount"
                    && s(subject, "/name") == sa
                    && s(subject, "/namespace") == namespace
            });
        if !bound {
            continue;
        }
        let binding_ns = binding
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let (scope, rules) = match (kind(binding), s(binding, "/roleRef/kind")) {
            ("ClusterRoleBinding", "ClusterRole") => {
                (None, role("ClusterRole", None, s(binding, "/roleRef/name")))
            }
            ("RoleBinding", "ClusterRole") => (
                binding_ns.map(str::to_string),
                role("ClusterRole", None, s(binding, "/roleRef/name")),
            ),
            ("RoleBinding", "Role") => (
                binding_ns.map(str::to_string),
                role("Role", binding_ns, s(binding, "/roleRef/name")),
            ),
            _ => continue,
        };
        out.extend(rules.into_iter().map(|rule| Grant {
            scope: scope.clone(),
            rule,
        }));
    }
    out
}

/// Whether the grants allow `verb` on core `resource` named `object` (None: a create or a
/// list, which carry no name) in `namespace` (None: in every namespace / cluster-scoped).
fn can(
    grants: &[Grant],
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
    object: Option<&str>,
) -> bool {
    grants.iter().any(|g| {
        let in_scope = match (&g.scope, namespace) {
            (None, _) => true,
            (Some(scope), Some(ns)) => scope == ns,
            (Some(_), None) => false,
        };
        let names = strings(g.rule.get("resourceNames"));
        in_scope
            && strings(g.rule.get("apiGroups"))
                .iter()
                .any(|x| x.is_empty())
            && strings(g.rule.get("resources"))
                .iter()
                .any(|x| x == resource)
            && strings(g.rule.get("verbs")).iter().any(|x| x == verb)
            && (names.is_empty() || object.is_some_and(|o| names.iter().any(|n| n == o)))
    })
}

/// What the daemon's own configuration (its environment in the rendering) needs from RBAC, and
/// its health probes.
fn workload_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((workload, pod, container)) = updater(objects) else {
        return problems;
    };
    let owner = id(workload);
    let namespace = s(workload, "/metadata/namespace");
    let sa = pod
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let granted = grants(objects, namespace, sa);
    let Some(secret) = env(container, "K8S_PULL_SECRET_NAME") else {
        problems.push(format!("{owner}: no K8S_PULL_SECRET_NAME"));
        return problems;
    };
    for verb in ["list", "watch"] {
        if !can(&granted, verb, "namespaces", None, None) {
            problems.push(format!("{owner}: cannot {verb} namespaces"));
        }
    }
    // ECR_NAMESPACES names the targets (exact names here); unset, every namespace is one.
    let targets: Vec<Option<&str>> = match env(container, "ECR_NAMESPACES") {
        Some(list) => list.split(',').map(|n| Some(n.trim())).collect(),
        None => vec![None],
    };
    let create = env(container, "ECR_CREATE_MISSING") == Some("true");
    for target in &targets {
        let where_ = target.unwrap_or("every namespace");
        assert!(!where_.contains(['*', '?']), "the check takes exact names");
        for verb in ["get", "patch"] {
            if !can(&granted, verb, "secrets", *target, Some(secret)) {
                problems.push(format!(
                    "{owner}: cannot {verb} secret {secret} in {where_}"
                ));
            }
        }
        if create && !can(&granted, "create", "secrets", *target, None) {
            problems.push(format!(
                "{owner}: ECR_CREATE_MISSING=true but cannot create secrets in {where_}"
            ));
        }
        if can(
            &granted,
            "get",
            "secrets",
            *target,
            Some("someone-elses-secret"),
        ) {
            problems.push(format!("{owner}: can read other secrets in {where_}"));
        }
    }
    // With ECR_NAMESPACES, no secret rights elsewhere.
    if targets.iter().all(Option::is_some)
        && (can(&granted, "get", "secrets", Some("elsewhere"), Some(secret))
            || can(&granted, "create", "secrets", Some("elsewhere"), None))
    {
        problems.push(format!(
            "{owner}: rights on secrets outside ECR_NAMESPACES {targets:?}"
        ));
    }
    match env(container, "ECR_SERVICE_ACCOUNTS") {
        Some(list) => {
            for account in list.split(',').map(str::trim) {
                for target in &targets {
                    for verb in ["get", "patch"] {
                        if !can(&granted, verb, "serviceaccounts", *target, Some(account)) {
                            problems.push(format!(
                                "{owner}: ECR_SERVICE_ACCOUNTS names {account} but it cannot {verb} it"
                            ));
                        }
                    }
                }
            }
        }
        None => {
            if granted.iter().any(|g| {
                strings(g.rule.get("resources"))
                    .iter()
                    .any(|r| r == "serviceaccounts")
            }) {
                problems.push(format!(
                    "{owner}: rights on service accounts although ECR_SERVICE_ACCOUNTS is unset"
                ));
            }
        }
    }
    if kind(workload) == "Deployment" {
        // /healthz and /readyz on the port ECR_HEALTH_ADDR listens on (default 8080).
        let port: u64 = env(container, "ECR_HEALTH_ADDR")
            .map(|a| {
                a.rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("ECR_HEALTH_ADDR host:port")
            })
            .unwrap_or(8080);
        let named_port = |wanted: &Value| -> Option<u64> {
            match wanted {
                Value::Number(n) => n.as_u64(),
                Value::String(port_name) => container
                    .get("ports")
                    .and_then(Value::as_array)?
                    .iter()
                    .find(|p| s(p, "/name") == port_name)
                    .and_then(|p| p.get("containerPort"))
                    .and_then(Value::as_u64),
                _ => None,
            }
        };
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let Some(get) = container.pointer(&format!("/{probe}/httpGet")) else {
                problems.push(format!("{owner}: no {probe} httpGet"));
                continue;
            };
            if s(get, "/path") != path {
                problems.push(format!("{owner}: {probe} is not on {path}"));
            }
            if get.get("port").and_then(named_port) != Some(port) {
                problems.push(format!("{owner}: {probe} is not on port {port}"));
            }
        }
    } else if !strings(container.get("args")).contains(&"--once".to_string()) {
        problems.push(format!(
            "{owner}: a scheduled run without --once never ends"
        ));
    }
    problems
}

/// Every check a rendering must pass.
fn assert_rendering_is_sound(label: &str, objects: &[Value]) {
    let mut problems = Vec::new();
    for o in objects {
        let version = s(o, "/apiVersion");
        if !CURRENT_API_VERSIONS.contains(&version) {
            problems.push(format!("{}: apiVersion {version:?} is not current", id(o)));
        }
    }
    for (owner, pod) in pod_specs(objects) {
        problems.extend(pod_problems(&owner, pod));
    }
    problems.extend(rbac_rule_problems(objects));
    problems.extend(workload_problems(objects));
    assert!(problems.is_empty(), "{label}:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// Rendering tests

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_rendered_snapshots_the_fake_enforces_are_current() {
    // The integration tests' fake API server enforces the RBAC of tests/rendered/*.json (so
    // they need no kubectl); this keeps those snapshots what the manifests render today.
    require_peers(RENDER_PEERS);
    let rendered = repo().join("tests/rendered");
    let mut installs = vec![(
        "example_deployment".to_string(),
        rendered.join("default.json"),
    )];
    let mut variants: Vec<String> = std::fs::read_dir(examples().join("variants"))
        .expect("variants folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    variants.sort();
    for v in &variants {
        installs.push((
            format!("example_deployment/variants/{v}"),
            rendered.join(format!("variants/{v}.json")),
        ));
    }
    let mut snapshots: Vec<String> = std::fs::read_dir(rendered.join("variants"))
        .expect("tests/rendered/variants")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    snapshots.sort();
    let expected: Vec<String> = variants.iter().map(|v| format!("{v}.json")).collect();
    assert_eq!(
        snapshots, expected,
        "one snapshot per variant, no stale ones"
    );
    for (dir, snapshot) in installs {
        let fresh = kustomize(&repo().join(&dir));
        let text = std::fs::read_to_string(&snapshot)
            .unwrap_or_else(|e| panic!("{}: {e}", snapshot.display()));
        let stored: Vec<Value> = serde_json::from_str(&text).expect("a JSON list");
        assert!(
            fresh == stored,
            "{} is stale: run scripts/render-manifests.sh and commit it",
            snapshot.display()
        );
    }
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn every_kustomization_renders_and_passes_the_checks() {
    require_peers(RENDER_PEERS);
    let dirs = kustomization_dirs();
    let relative = |d: &Path| {
        d.strip_prefix(examples())
            .expect("under example_deployment")
            .display()
            .to_string()
    };
    let rendered: Vec<String> = dirs
        .iter()
        .filter(|(_, component)| !component)
        .map(|(d, _)| relative(d))
        .collect();
    for expected in [
        "",
        "base",
        "monitoring",
        "variants/kubectl-proxy",
        "variants/cronjob",
        "variants/irsa",
        "variants/pod-identity",
        "variants/single-namespace",
        "variants/service-accounts",
    ] {
        assert!(
            rendered.iter().any(|r| r == expected),
            "no kustomization in example_deployment/{expected} (found {rendered:?})"
        );
    }
    let all_text: String = dirs
        .iter()
        .map(|(d, _)| std::fs::read_to_string(d.join("kustomization.yaml")).expect("read"))
        .collect();
    for (dir, component) in &dirs {
        if *component {
            // A component renders only inside a kustomization that uses it.
            let rel = relative(dir);
            assert!(
                all_text.contains(&format!("../../{rel}")),
                "component {rel} is used by no kustomization, so nothing checks it"
            );
            continue;
        }
        let objects = kustomize(dir);
        assert_rendering_is_sound(&format!("example_deployment/{}", relative(dir)), &objects);
    }
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn every_manifest_file_is_checked() {
    require_peers(RENDER_PEERS);
    // A YAML file is checked when a kustomization beside it names it (resources, patches,
    // components), or when it is one of the standalone manifests rendered below.
    let standalone = ["03_pullsecret_test.yml"];
    let mut unchecked = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml")
                && path.file_name().is_some_and(|n| n != "kustomization.yaml")
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&examples(), &mut files);
    for file in &files {
        let file_name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let beside = file.with_file_name("kustomization.yaml");
        let named = std::fs::read_to_string(&beside)
            .map(|k| {
                k.lines().any(|l| {
                    l.trim()
                        .trim_start_matches("- ")
                        .trim_start_matches("path: ")
                        == file_name
                })
            })
            .unwrap_or(false);
        if !named && !standalone.contains(&file_name.as_str()) {
            unchecked.push(file.display().to_string());
        }
    }
    assert!(unchecked.is_empty(), "files no test renders: {unchecked:?}");

    // The standalone manifests, through a throwaway kustomization.
    for file in standalone {
        let dir = temp_dir("shipping-standalone");
        std::fs::copy(examples().join(file), dir.join(file)).expect("copy manifest");
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {file}\n"),
        )
        .expect("write kustomization");
        let objects = kustomize(&dir);
        assert_rendering_is_sound(file, &objects);
        assert!(!pod_specs(&objects).is_empty(), "{file} should hold a pod");
    }
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn pull_secret_test_pod_uses_the_deployed_secret_name() {
    require_peers(RENDER_PEERS);
    let text = std::fs::read_to_string(examples().join("03_pullsecret_test.yml")).expect("read");
    let pod = yaml_to_json(&text, "03_pullsecret_test.yml");
    let pulls: Vec<String> = pod[0]["spec"]["imagePullSecrets"]
        .as_array()
        .expect("imagePullSecrets")
        .iter()
        .map(|p| s(p, "/name").to_string())
        .collect();
    let default = render("");
    let (_, _, container) = updater(&default).expect("the default deploys the daemon");
    let secret = env(container, "K8S_PULL_SECRET_NAME").expect("secret name");
    assert_eq!(pulls, vec![secret.to_string()]);
    let image = s(&pod[0], "/spec/containers/0/image");
    assert!(
        image.contains(".dkr.ecr.") && image.contains(".amazonaws.com/"),
        "the test pod should pull from an ECR registry, not {image}"
    );
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_default_talks_to_the_api_directly_with_static_keys() {
    require_peers(RENDER_PEERS);
    let objects = render("");
    assert_eq!(objects, render("base"), "the root renders base/ as is");
    let (workload, pod, container) = updater(&objects).expect("the daemon");
    assert_eq!(kind(workload), "Deployment");
    assert_eq!(containers(pod).len(), 1, "no sidecar");
    assert_eq!(
        env(container, "KUBERNETES_API_ENDPOINT"),
        None,
        "in-cluster access"
    );
    assert_ne!(pod.get("automountServiceAccountToken"), Some(&json!(false)));
    let keys = s(container, "/envFrom/0/secretRef/name");
    let secret = of_kind(&objects, "Secret")
        .into_iter()
        .find(|o| name(o) == keys)
        .unwrap_or_else(|| panic!("no Secret {keys:?} for envFrom"));
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            secret.pointer(&format!("/stringData/{key}")).is_some(),
            "{key}"
        );
    }
    assert_eq!(of_kind(&objects, "Namespace").len(), 1);
    assert_eq!(
        s(
            of_kind(&objects, "Namespace")[0],
            "/metadata/labels/pod-security.kubernetes.io~1enforce"
        ),
        "restricted"
    );
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_kubectl_proxy_variant_keeps_the_python_tools_layout() {
    require_peers(RENDER_PEERS);
    let objects = render("variants/kubectl-proxy");
    let (_, pod, container) = updater(&objects).expect("the daemon");
    assert_eq!(
        env(container, "KUBERNETES_API_ENDPOINT"),
        Some("http://localhost:8001")
    );
    let proxy = containers(pod)
        .into_iter()
        .find(|c| strings(c.get("args")).first().map(String::as_str) == Some("proxy"))
        .expect("a kubectl proxy sidecar");
    let args = strings(proxy.get("args"));
    assert!(args.contains(&"--port=8001".to_string()), "{args:?}");
    assert!(
        args.contains(&"--address=127.0.0.1".to_string()),
        "the proxy must listen on loopback only: {args:?}"
    );
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_cronjob_variant_runs_once_per_schedule() {
    require_peers(RENDER_PEERS);
    let objects = render("variants/cronjob");
    assert!(
        of_kind(&objects, "Deployment").is_empty(),
        "the CronJob replaces the Deployment"
    );
    let (workload, pod, container) = updater(&objects).expect("the daemon");
    assert_eq!(kind(workload), "CronJob");
    assert_eq!(strings(container.get("args")), vec!["--once"]);
    assert_eq!(s(workload, "/spec/concurrencyPolicy"), "Forbid");
    assert!(matches!(s(pod, "/restartPolicy"), "Never" | "OnFailure"));
    assert!(
        container.get("livenessProbe").is_none(),
        "--once serves no /healthz"
    );
}

fn assert_keyless(objects: &[Value]) {
    let (_, pod, container) = updater(objects).expect("the daemon");
    assert!(
        of_kind(objects, "Secret").is_empty(),
        "no static keys Secret"
    );
    for c in containers(pod) {
        assert!(c.get("envFrom").is_none(), "no envFrom: {c}");
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(env(c, var).is_none(), "{var}");
        }
    }
    assert!(env(container, "AWS_REGION").is_some());
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_irsa_variant_has_a_role_arn_and_no_keys() {
    require_peers(RENDER_PEERS);
    let objects = render("variants/irsa");
    assert_keyless(&objects);
    let (_, pod, _) = updater(&objects).expect("the daemon");
    let sa_name = s(pod, "/serviceAccountName");
    let sa = of_kind(&objects, "ServiceAccount")
        .into_iter()
        .find(|o| name(o) == sa_name)
        .expect("the pod's service account");
    let arn = s(sa, "/metadata/annotations/eks.amazonaws.com~1role-arn");
    assert!(
        arn.starts_with("arn:aws:iam::") && arn.contains(":role/"),
        "{arn:?}"
    );
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_pod_identity_variant_has_no_keys() {
    require_peers(RENDER_PEERS);
    let objects = render("variants/pod-identity");
    assert_keyless(&objects);
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_single_namespace_variant_keeps_secrets_rights_in_that_namespace() {
    require_peers(RENDER_PEERS);
    let objects = render("variants/single-namespace");
    let (_, _, container) = updater(&objects).expect("the daemon");
    let target = env(container, "ECR_NAMESPACES").expect("ECR_NAMESPACES");
    let roles = of_kind(&objects, "Role");
    assert!(!roles.is_empty());
    for role in roles {
        assert_eq!(s(role, "/metadata/namespace"), target);
    }
    for role in of_kind(&objects, "ClusterRole") {
        let text = role["rules"].to_string();
        assert!(!text.contains("secrets"), "{}: {text}", id(role));
    }
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_service_accounts_variant_grants_exactly_the_named_accounts() {
    require_peers(RENDER_PEERS);
    let objects = render("variants/service-accounts");
    let (_, _, container) = updater(&objects).expect("the daemon");
    assert_eq!(env(container, "ECR_SERVICE_ACCOUNTS"), Some("default"));
    let granted = grants(&objects, "ecr-updater", "ecr-updater");
    assert!(can(
        &granted,
        "patch",
        "serviceaccounts",
        None,
        Some("default")
    ));
    assert!(!can(
        &granted,
        "patch",
        "serviceaccounts",
        None,
        Some("builder")
    ));
    // The default grants nothing on service accounts (the checks above enforce it; this
    // makes sure the default really differs).
    let default = render("");
    assert!(!can(
        &grants(&default, "ecr-updater", "ecr-updater"),
        "get",
        "serviceaccounts",
        None,
        Some("default")
    ));
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_rbac_checks_catch_what_they_claim_to() {
    require_peers(RENDER_PEERS);
    // The checks above pass on the examples; here they must fail on broken copies, or they
    // prove nothing.
    let good = render("");
    assert!(rbac_rule_problems(&good).is_empty());
    assert!(workload_problems(&good).is_empty());
    let rule_index = |objects: &[Value], verb: &str| -> (usize, usize) {
        for (i, o) in objects.iter().enumerate() {
            if kind(o) != "ClusterRole" {
                continue;
            }
            for (j, rule) in o["rules"].as_array().expect("rules").iter().enumerate() {
                if strings(rule.get("resources")).contains(&"secrets".to_string())
                    && strings(rule.get("verbs")).contains(&verb.to_string())
                {
                    return (i, j);
                }
            }
        }
        panic!("no secrets rule with {verb}");
    };

    let mut list_all = good.clone();
    let (i, j) = rule_index(&list_all, "get");
    list_all[i]["rules"][j]["verbs"] = json!(["get", "list", "patch"]);
    assert!(!rbac_rule_problems(&list_all).is_empty(), "list on secrets");

    let mut any_name = good.clone();
    let (i, j) = rule_index(&any_name, "get");
    any_name[i]["rules"][j]
        .as_object_mut()
        .expect("rule")
        .remove("resourceNames");
    assert!(
        !rbac_rule_problems(&any_name).is_empty(),
        "get on every secret"
    );
    assert!(
        !workload_problems(&any_name).is_empty(),
        "reads other secrets"
    );

    let mut wrong_name = good.clone();
    let (i, j) = rule_index(&wrong_name, "get");
    wrong_name[i]["rules"][j]["resourceNames"] = json!(["not-the-configured-one"]);
    assert!(
        !workload_problems(&wrong_name).is_empty(),
        "resourceNames != K8S_PULL_SECRET_NAME"
    );

    let mut no_create = good.clone();
    let (i, j) = rule_index(&no_create, "create");
    no_create[i]["rules"][j]["verbs"] = json!([]);
    assert!(
        !workload_problems(&no_create).is_empty(),
        "ECR_CREATE_MISSING without create"
    );

    let mut root_pod = good.clone();
    let d = root_pod
        .iter()
        .position(|o| kind(o) == "Deployment")
        .expect("deployment");
    root_pod[d]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] =
        json!(false);
    let (owner, pod) = pod_specs(&root_pod)[0].clone();
    assert!(
        !pod_problems(&owner, pod).is_empty(),
        "writable root filesystem"
    );
}

// ---------------------------------------------------------------------------------------------
// Dockerfile.scratch

struct Stage {
    from: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

/// The Dockerfile's stages: instructions with continuation lines joined, comments dropped.
fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_string();
        if keyword == "FROM" {
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                from: words.first().map(|w| w.to_string()).unwrap_or_default(),
                name,
                instructions: Vec::new(),
            });
        } else {
            if stages.is_empty() {
                // ARGs before the first FROM: the global scope, kept as a stage of its own.
                stages.push(Stage {
                    from: String::new(),
                    name: Some("(global)".to_string()),
                    instructions: Vec::new(),
                });
            }
            stages
                .last_mut()
                .expect("a stage")
                .instructions
                .push((keyword, args));
        }
    }
    stages
}

/// The `case "$TARGETARCH" in` arms of a RUN: arch -> the `target=` it sets.
fn targetarch_arms(run: &str) -> BTreeMap<String, String> {
    let start = run
        .find("case \"$TARGETARCH\" in")
        .expect("the builder maps TARGETARCH to a target with a case");
    let body = &run[start + "case \"$TARGETARCH\" in".len()..];
    let body = &body[..body.find("esac").expect("esac")];
    let mut arms = BTreeMap::new();
    for arm in body.split(";;") {
        let Some((pattern, action)) = arm.split_once(')') else {
            continue;
        };
        let pattern = pattern.trim();
        if pattern == "*" || pattern.is_empty() {
            continue;
        }
        if let Some(at) = action.find("target=") {
            let target: String = action[at + "target=".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            for arch in pattern.split('|') {
                arms.insert(arch.trim().to_string(), target.clone());
            }
        }
    }
    arms
}

fn build_script(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("scripts/build-static.sh"))
        .args(args)
        .output()
        .expect("run scripts/build-static.sh")
}

#[test]
fn dockerfile_builds_with_the_ci_script_and_ships_the_binary_alone() {
    let text = std::fs::read_to_string(repo().join("Dockerfile.scratch")).expect("read Dockerfile");
    let stages = dockerfile_stages(&text);
    assert!(stages.len() >= 2, "a builder and the image");

    // The builder: TARGETARCH -> target, rustup target add, then the CI script.
    let builder = stages
        .iter()
        .find(|st| st.name.as_deref() == Some("builder"))
        .expect("a stage named builder");
    assert!(
        builder
            .instructions
            .iter()
            .any(|(k, a)| k == "ARG" && a == "TARGETARCH"),
        "the builder declares ARG TARGETARCH"
    );
    let run = builder
        .instructions
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, a)| a.as_str())
        .find(|a| a.contains("scripts/build-static.sh"))
        .expect("the builder RUNs scripts/build-static.sh");
    let arms = targetarch_arms(run);
    assert_eq!(
        arms.get("amd64").map(String::as_str),
        Some("x86_64-unknown-linux-musl")
    );
    assert_eq!(
        arms.get("arm64").map(String::as_str),
        Some("aarch64-unknown-linux-musl")
    );
    // The script maps Docker's arch names itself: both must agree.
    for (arch, target) in &arms {
        let out = build_script(&["--print-targets", arch]);
        assert!(
            out.status.success(),
            "{arch}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            target,
            "{arch}"
        );
    }
    let add = run
        .find("rustup target add \"$target\"")
        .expect("rustup target add");
    let build = run
        .find("scripts/build-static.sh \"$target\"")
        .expect("scripts/build-static.sh \"$target\"");
    assert!(add < build, "the target is added before the build");
    let copy_out = "cp \"target/$target/release/ecrupdater\" ";
    let at = run
        .find(copy_out)
        .expect("the builder copies the binary out");
    let built: String = run[at + copy_out.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    // Every C compiler package the script names for these targets is installed.
    let script = std::fs::read_to_string(repo().join("scripts/build-static.sh")).expect("script");
    let installs: String = builder
        .instructions
        .iter()
        .filter(|(k, a)| k == "RUN" && a.contains("apt-get install"))
        .map(|(_, a)| a.as_str())
        .collect();
    for package in ["musl-tools", "gcc-aarch64-linux-gnu", "file"] {
        assert!(script.contains(package), "build-static.sh names {package}");
        assert!(installs.contains(package), "the builder installs {package}");
    }
    // The build context the builder copies covers the workspace (every member's manifest).
    let copied: Vec<String> = builder
        .instructions
        .iter()
        .filter(|(k, _)| k == "COPY")
        .flat_map(|(_, a)| {
            let words: Vec<&str> = a
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            words[..words.len().saturating_sub(1)]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let members_line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let mut needed = vec![
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
        "src".to_string(),
        "scripts/build-static.sh".to_string(),
    ];
    needed.extend(
        members_line
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|m| *m != ".")
            .map(str::to_string),
    );
    for path in &needed {
        assert!(
            copied
                .iter()
                .any(|c| c == "." || c == path || path.starts_with(&format!("{c}/"))),
            "the builder does not COPY {path} (copies {copied:?})"
        );
    }

    // The image: FROM scratch, the binary, a non-root user, the binary as entrypoint.
    let image = stages.last().expect("final stage");
    assert_eq!(image.from, "scratch");
    let allowed = [
        "ARG",
        "LABEL",
        "COPY",
        "USER",
        "EXPOSE",
        "ENTRYPOINT",
        "ENV",
    ];
    for (keyword, args) in &image.instructions {
        assert!(
            allowed.contains(&keyword.as_str()),
            "{keyword} {args} in the scratch stage (there is no shell to run anything)"
        );
    }
    let copies: Vec<&String> = image
        .instructions
        .iter()
        .filter(|(k, _)| k == "COPY")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(copies.len(), 1, "one COPY: the binary ({copies:?})");
    let words: Vec<&str> = copies[0].split_whitespace().collect();
    assert_eq!(
        words,
        vec!["--from=binary", "/ecrupdater", "/ecrupdater"],
        "the binary alone, from the stage BINARY_SOURCE names"
    );
    // `binary` is the builder by default, or `prebuilt`: build-static.sh's binary for TARGETARCH.
    let stage = |name: &str| stages.iter().find(|st| st.name.as_deref() == Some(name));
    let global = stage("(global)").expect("ARGs before the first FROM");
    assert!(
        global
            .instructions
            .contains(&("ARG".into(), "BINARY_SOURCE=builder".into()))
    );
    assert_eq!(
        stage("binary").expect("a stage named binary").from,
        "${BINARY_SOURCE}"
    );
    assert_eq!(
        built, "/ecrupdater",
        "the builder leaves the binary where binary takes it"
    );
    let prebuilt = stage("prebuilt").expect("a stage named prebuilt");
    assert_eq!(prebuilt.from, "scratch");
    let copy = prebuilt
        .instructions
        .iter()
        .find(|(k, _)| k == "COPY")
        .expect("COPY");
    assert_eq!(
        copy.1,
        "${PREBUILT_DIR}/${TARGETOS}/${TARGETARCH}/ecrupdater /ecrupdater"
    );
    assert!(script.contains("$target_dir/dist/linux/$(arch_of \"$target\")"));
    let user: Vec<&String> = image
        .instructions
        .iter()
        .filter(|(k, _)| k == "USER")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(user, vec!["65534:65534"]);
    let entrypoint = image
        .instructions
        .iter()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, a)| a)
        .expect("ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec form (no shell in scratch)");
    assert_eq!(entrypoint, vec!["/ecrupdater"]);
}

#[test]
fn build_script_names_unknown_targets_and_prints_known_ones() {
    let out = build_script(&["--print-targets"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "x86_64-unknown-linux-musl",
        "the default target"
    );
    let out = build_script(&["--print-targets", "aarch64-unknown-linux-musl", "amd64"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "aarch64-unknown-linux-musl\nx86_64-unknown-linux-musl"
    );
    let out = build_script(&["--print-targets", "sparc64"]);
    assert!(!out.status.success(), "an unknown arch is an error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sparc64"),
        "the error names it"
    );
}

// ---------------------------------------------------------------------------------------------
// Monitoring

/// The daemon, running against fake Kubernetes and ECR endpoints; killed on drop.
struct Daemon {
    child: std::process::Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metric names in a real /metrics answer of the daemon, after a successful cycle.
fn real_metric_names() -> BTreeSet<String> {
    let kube = common::fake::kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let (ecr, _) = fake_ecr_with("shipping-password-0123456789");
    let (kube_url, ecr_url) = (kube.base_url(), ecr.base_url());
    let vars = [
        ("K8S_PULL_SECRET_NAME", "ecr-pull"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIASHIPPING"),
        ("AWS_SECRET_ACCESS_KEY", "shipping/secret/key"),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
        ("ECR_CREATE_MISSING", "true"),
        ("LOG_LEVEL", "INFO"),
    ];
    let log = temp_dir("shipping-metrics").join("daemon.log");
    let child = command(&vars, &[])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start the daemon");
    let daemon = Daemon { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    let marker = "health and metrics on http://127.0.0.1:";
    let port: u16 = loop {
        let text = std::fs::read_to_string(&daemon.log).unwrap_or_default();
        if let Some(at) = text.find(marker) {
            let digits: String = text[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(port) = digits.parse() {
                break port;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no health address in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    while http_get(port, "/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready: {}",
            std::fs::read_to_string(&daemon.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().expect("sample name").to_string())
        .collect()
}

/// The metric names a PromQL expression refers to (not functions, keywords, label names,
/// strings or durations).
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    // Keywords, and aggregation operators (which may stand before a `by (...)` clause).
    const KEYWORDS: [&str; 27] = [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' || c == '[' {
            let close = if c == '{' { '}' } else { ']' };
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = chars[i..]
                .iter()
                .position(|c| !c.is_whitespace())
                .map(|p| i + p);
            let is_call = next.is_some_and(|p| chars[p] == '(');
            if is_call && LABEL_LISTS.contains(&lower.as_str()) {
                // `on(job)`, `by (job)`: label names, not metrics.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
            } else if !is_call && !KEYWORDS.contains(&lower.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The PrometheusRule's rules (alert name, expression), from the rendered monitoring folder.
fn alert_rules(objects: &[Value]) -> Vec<(String, String)> {
    let rule = of_kind(objects, "PrometheusRule");
    assert_eq!(rule.len(), 1, "one PrometheusRule");
    rule[0]["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| (s(&r, "/alert").to_string(), s(&r, "/expr").to_string()))
        .collect()
}

#[test]
fn promql_names_are_read_correctly() {
    let names = promql_metric_names(
        "time() - foo_seconds{job=\"a_b\"} > 2 * 3600 and on(job) rate(bar_total[5m]) > 0 \
         or absent(baz) unless sum by (instance) (qux offset 1h) > 1e3",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["bar_total", "baz", "foo_seconds", "qux"]
    );
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn alert_rules_name_only_metrics_the_daemon_exports() {
    require_peers(RENDER_PEERS);
    let exported = real_metric_names();
    assert!(exported.contains("ecrupdater_build_info"), "{exported:?}");
    let rules = alert_rules(&render("monitoring"));
    let mut named = BTreeSet::new();
    for (alert, expr) in &rules {
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{alert}: no metric in {expr:?}");
        for metric in &names {
            assert!(
                exported.contains(metric),
                "{alert} uses {metric}, which the daemon does not export (it exports {exported:?})"
            );
        }
        named.extend(names);
    }
    for required in [
        "ecrupdater_token_expiry_timestamp_seconds",
        "ecrupdater_last_success_timestamp_seconds",
    ] {
        assert!(named.contains(required), "no alert on {required}");
    }
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn the_service_monitor_reaches_the_daemons_port() {
    require_peers(RENDER_PEERS);
    let monitoring = render("monitoring");
    let default = render("");
    let (workload, _, container) = updater(&default).expect("the daemon");
    let service = of_kind(&monitoring, "Service")[0];
    assert_eq!(
        s(service, "/metadata/namespace"),
        s(workload, "/metadata/namespace")
    );
    let pod_labels = workload
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .expect("pod labels");
    for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "the Service selects the daemon's pods ({k})"
        );
    }
    let port = &service["spec"]["ports"][0];
    let target = s(port, "/targetPort");
    let container_port = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| s(p, "/name") == target)
        .unwrap_or_else(|| panic!("no container port named {target:?}"));
    assert_eq!(container_port["containerPort"], json!(8080));
    assert!(env(container, "ECR_HEALTH_ADDR").is_none_or(|a| a.ends_with(":8080")));
    let monitor = of_kind(&monitoring, "ServiceMonitor")[0];
    let service_labels = service["metadata"]["labels"].as_object().expect("labels");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            service_labels.get(k),
            Some(v),
            "the ServiceMonitor selects the Service ({k})"
        );
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"], port["name"],
        "the ServiceMonitor scrapes the Service's port"
    );
    assert_eq!(s(monitor, "/spec/endpoints/0/path"), "/metrics");
}

#[test]
#[ignore = "needs promtool, kubectl and python3 with PyYAML (install: scripts/test.sh, or apt-get install prometheus and pip install pyyaml)"]
fn alerts_fire_when_documented_and_not_before() {
    require_peers(&["promtool", "kubectl", "python3:yaml"]);
    let objects = render("monitoring");
    let rule = of_kind(&objects, "PrometheusRule")[0];
    let dir = temp_dir("shipping-promtool");
    let groups = json!({"groups": rule["spec"]["groups"]});
    std::fs::write(dir.join("rules.json"), groups.to_string()).expect("write rules");
    let check = Command::new("promtool")
        .args(["check", "rules", "rules.json"])
        .current_dir(&dir)
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The unit tests compare labels only: the annotations' wording is not under test.
    let mut bare = groups.clone();
    for group in bare["groups"].as_array_mut().expect("groups") {
        for r in group["rules"].as_array_mut().expect("rules") {
            r.as_object_mut().expect("rule").remove("annotations");
        }
    }
    std::fs::write(dir.join("bare.json"), bare.to_string()).expect("write bare rules");
    let series = |name: &str, values: &str| json!({"series": format!("{name}{{job=\"ecr\"}}"), "values": values});
    let build = series("ecrupdater_build_info", "1x300");
    let fires = |alert: &str, at: &str, severity: &str| {
        json!({"eval_time": at, "alertname": alert,
               "exp_alerts": [{"exp_labels": {"severity": severity, "job": "ecr"}}]})
    };
    let silent =
        |alert: &str, at: &str| json!({"eval_time": at, "alertname": alert, "exp_alerts": []});
    let case = |input: Vec<Value>, checks: Vec<Value>| json!({"interval": "1m", "input_series": input, "alert_rule_test": checks});
    let tests = json!({
        "rule_files": ["bare.json"],
        "evaluation_interval": "1m",
        "tests": [
            // Expiry at t=3000 s: under an hour away from the start, firing after `for: 5m`.
            case(vec![series("ecrupdater_token_expiry_timestamp_seconds", "3000x300"), build.clone()],
                 vec![silent("EcrUpdaterTokenExpiresSoon", "2m"),
                      fires("EcrUpdaterTokenExpiresSoon", "10m", "critical"),
                      silent("EcrUpdaterAbsent", "30m")]),
            // A token valid for 12 hours, and a daemon that has not fetched one yet: quiet.
            case(vec![series("ecrupdater_token_expiry_timestamp_seconds", "43200x300"), build.clone()],
                 vec![silent("EcrUpdaterTokenExpiresSoon", "3h")]),
            case(vec![series("ecrupdater_token_expiry_timestamp_seconds", "0x300"), build.clone()],
                 vec![silent("EcrUpdaterTokenExpiresSoon", "1h")]),
            // Last success at t=100 s: stale once two intervals (7200 s) have passed, plus `for`.
            case(vec![series("ecrupdater_last_success_timestamp_seconds", "100x300"), build.clone()],
                 vec![silent("EcrUpdaterRefreshStale", "100m"),
                      fires("EcrUpdaterRefreshStale", "140m", "warning")]),
            // Never succeeded (0): the stale alert keeps quiet; the never-succeeded one speaks.
            case(vec![series("ecrupdater_last_success_timestamp_seconds", "0x300"),
                      series("ecrupdater_ready", "0x300"), build.clone()],
                 vec![silent("EcrUpdaterRefreshStale", "4h"),
                      silent("EcrUpdaterNeverSucceeded", "20m"),
                      fires("EcrUpdaterNeverSucceeded", "40m", "warning")]),
            case(vec![series("ecrupdater_ready", "1x300"), build.clone()],
                 vec![silent("EcrUpdaterNeverSucceeded", "2h")]),
            // One namespace's secret runs short.
            case(vec![series("ecrupdater_targets_valid_min_seconds", "1000x300"), build.clone()],
                 vec![fires("EcrUpdaterPullSecretExpiresSoon", "10m", "critical")]),
            case(vec![series("ecrupdater_targets_valid_min_seconds", "7200x300"), build.clone()],
                 vec![silent("EcrUpdaterPullSecretExpiresSoon", "1h")]),
            // No metrics at all.
            case(vec![json!({"series": "up{job=\"other\"}", "values": "1x300"})],
                 vec![silent("EcrUpdaterAbsent", "10m"),
                      json!({"eval_time": "20m", "alertname": "EcrUpdaterAbsent",
                             "exp_alerts": [{"exp_labels": {"severity": "warning"}}]})]),
        ]
    });
    std::fs::write(dir.join("tests.json"), tests.to_string()).expect("write tests");
    let run = Command::new("promtool")
        .args(["test", "rules", "tests.json"])
        .current_dir(&dir)
        .output()
        .expect("run promtool");
    assert!(
        run.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The demo

#[test]
#[ignore = "needs moto_server, curl and the fake-kube binary (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' and cargo build -p ecrupdater-testkit --bin fake-kube)"]
fn the_demo_shows_every_case_and_cleans_up() {
    require_peers(&["moto_server", "python3", "curl"]);
    let fake_kube = Path::new(binary()).with_file_name("fake-kube");
    assert!(
        fake_kube.is_file(),
        "{} is missing: cargo test --workspace (scripts/test.sh) builds it, or \
         cargo build -p ecrupdater-testkit --bin fake-kube",
        fake_kube.display()
    );
    let dir = temp_dir("shipping-demo");
    let out_file = dir.join("demo.out");
    let mut child = Command::new("bash")
        .arg(repo().join("scripts/demo.sh"))
        .env("ECRUPDATER_BIN", binary())
        .env("FAKE_KUBE_BIN", &fake_kube)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("output file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/demo.sh");
    let status = wait_with_limit(&mut child, Duration::from_secs(120));
    let out = std::fs::read_to_string(&out_file).expect("demo output");
    assert_eq!(status, 0, "demo failed:\n{out}");

    let (before, after) = out
        .split_once("== secrets AFTER")
        .unwrap_or_else(|| panic!("no AFTER section:\n{out}"));
    assert!(before.contains("demo-empty      (no secret)"), "{out}");
    assert!(
        out.contains("cycle done: 1 created, 2 updated, 0 unchanged, 1 skipped, 0 failed"),
        "{out}"
    );
    assert!(after.contains("demo-empty      ecr-pull  type=kubernetes.io/dockerconfigjson"));
    assert!(after.contains("demo-dockercfg  ecr-pull  type=kubernetes.io/dockercfg"));
    assert!(after.contains("demo-opaque     ecr-pull  type=Opaque"));
    assert!(after.contains("label app.kubernetes.io/managed-by=k8s-ecrupdater"));
    assert!(after.contains("annotation k8s-ecrupdater/token-expires-at="));
    // Passwords and other secret values appear masked only: moto's token, the old one, the
    // Opaque secret's value, the dummy secret key.
    assert_no_credentials(
        &out,
        &[
            "123456789012-auth-token",
            "an-old-token-from-yesterday",
            "not-a-registry-credential",
            "demo-secret-key-not-a-real-one",
        ],
    );
    // Everything it started has stopped: its ports are closed.
    let ports: Vec<u16> = out
        .lines()
        .filter(|l| l.starts_with("== ") && l.contains(" on http://127.0.0.1:"))
        .filter_map(|l| {
            let rest = &l[l.find("http://127.0.0.1:").expect("address") + 17..];
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        ports.len(),
        2,
        "moto's and the fake API server's ports:\n{out}"
    );
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on 127.0.0.1:{port} after the demo"
        );
    }
}
