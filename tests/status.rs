//! `ecrupdater --status` against the fake API server, with a mix of secrets: good, expired,
//! expiring within the hour, missing, of the wrong type and unverified. The table (one line per
//! target namespace, with its problems), the JSON, and the exit status (1 with any problem, 0
//! when every target is fine). No credential of a payload is ever printed.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater_testkit::FakeKube;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const PASSWORD: &str = "status-test-password-0123456789";

fn stamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("format")
}

fn pull_secret(
    namespace: &str,
    secret_type: &str,
    expires: time::Duration,
    verified: bool,
) -> Value {
    let now = OffsetDateTime::now_utc();
    let payload = STANDARD.encode(
        json!({"auths": {HOST: {"username": "AWS", "password": PASSWORD,
            "auth": STANDARD.encode(format!("AWS:{PASSWORD}"))}}})
        .to_string(),
    );
    let mut annotations = json!({"k8s-ecrupdater/token-expires-at": stamp(now + expires)});
    if verified {
        annotations["k8s-ecrupdater/verified-at"] = json!(stamp(now - time::Duration::minutes(5)));
    }
    let key = if secret_type == "Opaque" {
        "password"
    } else {
        ".dockerconfigjson"
    };
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": namespace, "annotations": annotations,
            "labels": {"app.kubernetes.io/managed-by": "k8s-ecrupdater"}},
        "type": secret_type,
        "data": {key: payload},
    })
}

fn status(kube: &FakeKube, args: &[&str]) -> Finished {
    let url = kube.base_url();
    run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_REGION", "eu-west-1"),
            ("KUBERNETES_API_ENDPOINT", &url),
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_VERIFY", "warn"),
            ("ECR_SKIP_NAMESPACES", "skipped"),
        ],
        args,
        Duration::from_secs(20),
    )
}

fn mixed_cluster() -> RbacKube {
    let kube = kube_with_shipped_rbac();
    let h = time::Duration::hours;
    let cases = [
        (
            "good",
            Some(("kubernetes.io/dockerconfigjson", h(11), true)),
        ),
        (
            "expired",
            Some(("kubernetes.io/dockerconfigjson", -h(2), true)),
        ),
        (
            "soon",
            Some((
                "kubernetes.io/dockerconfigjson",
                time::Duration::minutes(30),
                true,
            )),
        ),
        ("missing", None),
        ("wrongtype", Some(("Opaque", h(11), true))),
        (
            "unverified",
            Some(("kubernetes.io/dockerconfigjson", h(11), false)),
        ),
        ("skipped", None),
    ];
    for (ns, secret) in cases {
        kube.add_namespace(ns, &[]);
        if let Some((t, expires, verified)) = secret {
            kube.put_secret(ns, pull_secret(ns, t, expires, verified));
        }
    }
    kube
}

#[test]
fn the_table_names_every_target_and_its_problems() {
    let kube = mixed_cluster();
    let run = status(&kube, &["--status"]);
    assert_eq!(run.status, 1, "{}", run.output());
    assert_no_credentials(&run.output(), &[PASSWORD]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAMESPACE") && lines[0].contains("PROBLEMS"),
        "{}",
        run.stdout
    );
    let line = |ns: &str| -> &str {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(ns))
            .unwrap_or_else(|| panic!("no line for {ns}:\n{}", run.stdout))
    };
    let problems = |ns: &str| line(ns).split("  ").last().unwrap_or("").trim().to_string();
    assert_eq!(problems("good"), "-", "{}", line("good"));
    assert!(
        line("good").contains(HOST)
            && (line("good").contains("(in 10h59m)") || line("good").contains("(in 11h00m)")),
        "{}",
        line("good")
    );
    assert!(line("good").contains("k8s-ecrupdater"), "{}", line("good"));
    assert_eq!(problems("expired"), "expired");
    assert!(
        line("expired").contains("(expired 2h0"),
        "{}",
        line("expired")
    );
    assert_eq!(problems("soon"), "expires within an hour");
    assert_eq!(problems("missing"), "missing");
    assert_eq!(problems("wrongtype"), "wrong type");
    assert!(
        line("wrongtype").contains("Opaque"),
        "{}",
        line("wrongtype")
    );
    assert_eq!(problems("unverified"), "not verified");
    assert!(
        !run.stdout.contains("skipped  "),
        "an excluded namespace is no target:\n{}",
        run.stdout
    );
    assert_eq!(
        lines.last().copied(),
        Some("5 of 6 target namespaces with a problem (secret ecr-pull)")
    );
}

#[test]
fn the_json_says_the_same() {
    let kube = mixed_cluster();
    let run = status(&kube, &["--status", "--output", "json"]);
    assert_eq!(run.status, 1, "{}", run.output());
    assert_no_credentials(&run.output(), &[PASSWORD]);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["secret"], SECRET);
    assert_eq!(doc["ok"], false);
    let targets = doc["targets"].as_array().expect("targets");
    let by_ns = |ns: &str| {
        targets
            .iter()
            .find(|t| t["namespace"] == ns)
            .unwrap_or_else(|| panic!("no {ns} in {doc}"))
    };
    assert_eq!(targets.len(), 6, "{doc}");
    let good = by_ns("good");
    assert_eq!(good["problems"], json!([]));
    assert_eq!(good["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(good["registries"], json!([HOST]));
    assert_eq!(good["managedBy"], "k8s-ecrupdater");
    let left = good["expiresInSeconds"].as_i64().expect("seconds");
    assert!((11 * 3600 - 30..=11 * 3600).contains(&left), "{left}");
    assert!(
        good["verifiedAt"]
            .as_str()
            .is_some_and(|v| v.ends_with('Z'))
    );
    assert_eq!(by_ns("expired")["problems"], json!(["expired"]));
    assert!(by_ns("expired")["expiresInSeconds"].as_i64().expect("s") < -7000);
    assert_eq!(by_ns("soon")["problems"], json!(["expires within an hour"]));
    assert_eq!(by_ns("missing")["problems"], json!(["missing"]));
    assert_eq!(by_ns("missing")["type"], Value::Null);
    assert_eq!(by_ns("wrongtype")["problems"], json!(["wrong type"]));
    assert_eq!(by_ns("unverified")["problems"], json!(["not verified"]));
    assert_eq!(by_ns("unverified")["verifiedAt"], Value::Null);
}

#[test]
fn every_target_fine_exits_0_and_writes_nothing() {
    let kube = kube_with_shipped_rbac();
    for ns in ["a", "b"] {
        kube.add_namespace(ns, &[]);
        kube.put_secret(
            ns,
            pull_secret(
                ns,
                "kubernetes.io/dockerconfigjson",
                time::Duration::hours(11),
                true,
            ),
        );
    }
    let before = kube.secrets();
    let run = status(&kube, &["--status"]);
    assert_eq!(run.status, 0, "{}", run.output());
    assert!(
        run.stdout
            .ends_with("0 of 2 target namespaces with a problem (secret ecr-pull)\n"),
        "{}",
        run.stdout
    );
    assert_eq!(kube.secrets(), before, "--status only reads");
    let run = status(&kube, &["--status", "-o", "json"]);
    assert_eq!(run.status, 0, "{}", run.output());
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["ok"], true);
}

#[test]
fn an_unreachable_api_exits_1_with_one_error() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let run = run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_REGION", "eu-west-1"),
            ("KUBERNETES_API_ENDPOINT", &url),
        ],
        &["--status"],
        Duration::from_secs(60),
    );
    assert_eq!(run.status, 1, "{}", run.output());
    assert!(
        run.stderr.contains("--status: listing namespaces failed"),
        "{}",
        run.output()
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
