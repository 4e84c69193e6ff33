//! The RBAC preflight against the fake API server, which answers SelfSubjectAccessReviews as the
//! kube-apiserver does (201 with `status.allowed`): every right granted is silent; one right
//! missing is logged by name with the rule that grants it, and fails a `--dry-run` (exit 1)
//! but not a normal run; a server that does not know the reviews gets one debug line.

mod common;

use std::time::Duration;

use ecrupdater_testkit::FakeKube;

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "preflight-test-password-0123456789";

fn once(kube: &FakeKube, args: &[&str]) -> Finished {
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let (kube_url, ecr_url) = (kube.base_url(), ecr.base_url());
    run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", &ecr_url),
            ("AWS_ACCESS_KEY_ID", "AKIAPREFLIGHT"),
            ("AWS_SECRET_ACCESS_KEY", "preflight-test-secret-key"),
            ("KUBERNETES_API_ENDPOINT", &kube_url),
            ("ECR_CREATE_MISSING", "true"),
            ("LOG_LEVEL", "DEBUG"),
        ],
        args,
        Duration::from_secs(30),
    )
}

/// The fake enforcing the default install's RBAC, which also answers the reviews.
fn cluster() -> RbacKube {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    kube
}

fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn every_right_granted_is_silent() {
    let kube = cluster();
    let run = once(&kube, &["--once", "--dry-run"]);
    let out = run.output();
    assert_eq!(run.status, 0, "{out}");
    // namespaces list, watch; secret get, patch, create; events create.
    assert_eq!(kube.access_reviews_answered(), 6, "{out}");
    assert!(lines_with(&out, "missing right").is_empty(), "{out}");
    assert_eq!(
        lines_with(&out, "RBAC preflight: all 6 rights granted").len(),
        1,
        "{out}"
    );
}

#[test]
fn one_missing_right_is_named_with_its_rule_and_fails_a_dry_run() {
    let kube = cluster();
    kube.deny_access("create", "events.k8s.io", "events");
    let run = once(&kube, &["--once", "--dry-run"]);
    let out = run.output();
    assert_eq!(run.status, 1, "a missing right fails --dry-run:\n{out}");
    let missing = lines_with(&out, "missing right");
    assert_eq!(missing.len(), 1, "{out}");
    assert!(missing[0].starts_with("ERROR"), "{}", missing[0]);
    assert!(
        missing[0].contains(
            r#"RBAC: missing right: create events.k8s.io events; granted by the rule {apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create"]} in the ClusterRole"#
        ),
        "{}",
        missing[0]
    );
    assert!(
        kube.secret("app", SECRET).is_none(),
        "a dry run writes nothing"
    );

    // Not a dry run: a warning, and the run goes on and succeeds.
    let run = once(&kube, &["--once"]);
    let out = run.output();
    assert_eq!(run.status, 0, "{out}");
    let missing = lines_with(&out, "missing right");
    assert_eq!(missing.len(), 1, "{out}");
    assert!(missing[0].starts_with("WARNING"), "{}", missing[0]);
    assert!(kube.secret("app", SECRET).is_some());
    assert_no_credentials(&out, &[PASSWORD, "preflight-test-secret-key"]);
}

#[test]
fn a_secret_right_missing_names_the_secret() {
    let kube = cluster();
    kube.deny_access("patch", "", "secrets");
    let run = once(&kube, &["--once", "--dry-run"]);
    let out = run.output();
    assert_eq!(run.status, 1, "{out}");
    assert!(
        out.contains(r#"RBAC: missing right: patch secrets/ecr-pull; granted by the rule {apiGroups: [""], resources: ["secrets"], resourceNames: ["ecr-pull"], verbs: ["patch"]} in the ClusterRole"#),
        "{out}"
    );
}

#[test]
fn a_server_without_access_reviews_gets_one_debug_line() {
    let kube = cluster();
    kube.set_access_reviews(false);
    let run = once(&kube, &["--once", "--dry-run"]);
    let out = run.output();
    assert_eq!(run.status, 0, "{out}");
    let lines = lines_with(&out, "RBAC preflight");
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("DEBUG"), "{}", lines[0]);
    assert!(lines[0].contains("skipped"), "{}", lines[0]);
}
