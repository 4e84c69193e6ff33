//! Health and metrics through the real binary in daemon mode, against the fake API server and
//! fake ECR: `/healthz` turns 503 naming a target namespace that holds no valid token while its
//! refresh keeps failing, and 200 again after recovery; `/readyz` is 503 until the first
//! successful cycle; `/metrics` counts (secrets by result, errors by stage, API requests by
//! code, cycles) match what happened. End-to-end tier: `/metrics` parses as Prometheus text
//! with the reference parser of the `prometheus-client` package (Python).
//!
//! Every HTTP request goes to 127.0.0.1 only, over a plain std socket.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater_testkit::{AwsFault, FakeEcr, FakeKube, Fault, FaultKind};
use serde_json::{Value, json};

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "health-ecr-password-0123456789abcdefghijklmn";
const SECRET_KEY: &str = "health/secret+access+key/0123456789abcdefghi";
const HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const RECOVERY: Duration = Duration::from_secs(20);

fn fake_ecr() -> (FakeEcr, f64) {
    fake_ecr_with(PASSWORD)
}

fn put_stale_secret(kube: &FakeKube, ns: &str) {
    kube.put_secret(
        ns,
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": STANDARD.encode(r#"{"auths":{}}"#)}}),
    );
}

fn start(kube: &FakeKube, ecr: &FakeEcr, extra: &[(&str, &str)]) -> DaemonProcess {
    let kube_url = kube.base_url();
    let ecr_url = ecr.base_url();
    let mut vars = vec![
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIAHEALTHHEALTH"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
        ("LOG_LEVEL", "DEBUG"),
    ];
    vars.extend_from_slice(extra);
    DaemonProcess::start(&vars, &[])
}

fn secret_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets/{SECRET}")
}

/// The current value of one sample, failing when it is absent.
fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {samples:#?}"))
}

fn metrics(port: u16) -> BTreeMap<String, f64> {
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    metric_samples(&body)
}

#[test]
fn healthz_names_a_namespace_that_keeps_failing_and_recovers_with_it() {
    let kube = kube_with_shipped_rbac();
    for ns in ["good", "broken"] {
        kube.add_namespace(ns, &[]);
        put_stale_secret(&kube, ns);
    }
    // Every read of broken's secret fails, cycle after cycle, until the faults are cleared.
    kube.inject(
        Fault::new(
            Some("GET"),
            &secret_path("broken"),
            FaultKind::Status(500, "InternalError".into()),
        )
        .times(1000),
    );
    let (ecr, expires) = fake_ecr();
    let mut daemon = start(&kube, &ecr, &[]);
    let port = daemon.health_port();
    daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    let (status, body) = http_get(port, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("1 of 2 target namespaces hold no token valid for 15 more minutes")
            && body.contains("broken (no token)")
            && !body.contains("good"),
        "{body}"
    );
    let (status, body) = http_get(port, "/readyz");
    assert_eq!((status, body.trim()), (503, "no successful cycle yet"));

    kube.clear_faults();
    daemon.wait_for_log("next refresh in", RECOVERY);
    let (status, body) = http_get(port, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = http_get(port, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"));
    for ns in ["good", "broken"] {
        let secret = kube.secret(ns, SECRET).expect("secret");
        assert_pull_secret(&secret, HOST, "AWS", PASSWORD, expires);
    }
    let samples = metrics(port);
    assert_eq!(sample(&samples, "ecrupdater_targets"), 2.0);
    let valid = sample(&samples, "ecrupdater_targets_valid_min_seconds");
    assert!(
        (11.0 * 3600.0..=12.0 * 3600.0).contains(&valid),
        "every target holds the 12-hour token: {valid}"
    );
    daemon.assert_running();
    assert_no_credentials(&daemon.log(), &[PASSWORD, SECRET_KEY]);
}

#[test]
fn readyz_is_503_until_the_first_successful_cycle() {
    let kube = kube_with_shipped_rbac();
    for ns in ["a", "b"] {
        kube.add_namespace(ns, &[]);
        put_stale_secret(&kube, ns);
    }
    let (ecr, expires) = fake_ecr();
    ecr.inject(AwsFault::Throttling);
    let mut daemon = start(&kube, &ecr, &[]);
    let port = daemon.health_port();
    daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    let (status, body) = http_get(port, "/readyz");
    assert_eq!((status, body.trim()), (503, "no successful cycle yet"));
    // No cycle has reached the namespaces: liveness holds (a pod is not killed for it).
    let (status, body) = http_get(port, "/healthz");
    assert_eq!(status, 200, "{body}");
    let before = metrics(port);
    assert_eq!(sample(&before, "ecrupdater_ready"), 0.0);
    assert_eq!(
        sample(&before, r#"ecrupdater_errors_total{stage="aws"}"#),
        1.0
    );
    assert_eq!(
        sample(&before, r#"ecrupdater_errors_total{stage="kube"}"#),
        0.0
    );
    assert_eq!(
        sample(&before, r#"ecrupdater_cycles_total{result="failure"}"#),
        1.0
    );
    assert_eq!(
        sample(&before, r#"ecrupdater_cycles_total{result="success"}"#),
        0.0
    );
    assert_eq!(
        sample(&before, "ecrupdater_last_success_timestamp_seconds"),
        0.0
    );
    assert!(
        !before
            .keys()
            .any(|k| k.starts_with("ecrupdater_api_requests_total")),
        "no API request was sent without a token: {before:#?}"
    );

    daemon.wait_for_log("next refresh in", RECOVERY);
    let (status, body) = http_get(port, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"));
    let after = metrics(port);
    assert_eq!(sample(&after, "ecrupdater_ready"), 1.0);
    assert_eq!(
        sample(&after, r#"ecrupdater_errors_total{stage="aws"}"#),
        1.0
    );
    assert_eq!(
        sample(&after, r#"ecrupdater_cycles_total{result="success"}"#),
        1.0
    );
    assert_eq!(
        sample(&after, r#"ecrupdater_secrets_total{result="updated"}"#),
        2.0
    );
    assert_eq!(
        sample(&after, "ecrupdater_token_expiry_timestamp_seconds"),
        expires
    );
    assert!(sample(&after, "ecrupdater_last_success_timestamp_seconds") > 1.7e9);
    daemon.assert_running();
    assert_no_credentials(&daemon.log(), &[PASSWORD, SECRET_KEY]);
}

#[test]
fn metrics_count_secrets_errors_requests_and_cycles_as_they_happened() {
    let kube = kube_with_shipped_rbac();
    // a: a stale secret (updated); b and c: none (created); c's first reads fail.
    for ns in ["a", "b", "c"] {
        kube.add_namespace(ns, &[]);
    }
    put_stale_secret(&kube, "a");
    // c: no answer at all (counted as code="none"), then two 500s.
    kube.inject(Fault::new(Some("GET"), &secret_path("c"), FaultKind::Reset));
    kube.inject(
        Fault::new(
            Some("GET"),
            &secret_path("c"),
            FaultKind::Status(500, "InternalError".into()),
        )
        .times(2),
    );
    let (ecr, expires) = fake_ecr();
    let mut daemon = start(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    let port = daemon.health_port();
    daemon.wait_for_log("next refresh in", RECOVERY);
    let samples = metrics(port);
    // Before cycle 1, the RBAC preflight's access reviews, and after it c's RefreshFailed Event
    // (each answered 201).
    let posts = kube.access_reviews_answered() + kube.events().len();
    assert!(posts > 0 && kube.events().len() == 1);
    // Cycle 1: list, a read+patch, b read (404)+create, c a reset and two 500s -> a updated, b created,
    // c failed. Cycle 2 (the retry, same token): list, a and b unchanged (no request), c read
    // (404)+create.
    let expected: &[(&str, f64)] = &[
        (r#"ecrupdater_secrets_total{result="created"}"#, 2.0),
        (r#"ecrupdater_secrets_total{result="updated"}"#, 1.0),
        (r#"ecrupdater_secrets_total{result="unchanged"}"#, 2.0),
        (r#"ecrupdater_secrets_total{result="skipped"}"#, 0.0),
        (r#"ecrupdater_secrets_total{result="failed"}"#, 1.0),
        (r#"ecrupdater_errors_total{stage="aws"}"#, 0.0),
        (r#"ecrupdater_errors_total{stage="kube"}"#, 1.0),
        (r#"ecrupdater_api_requests_total{code="200"}"#, 4.0),
        (
            r#"ecrupdater_api_requests_total{code="201"}"#,
            2.0 + posts as f64,
        ),
        (r#"ecrupdater_api_requests_total{code="404"}"#, 2.0),
        (r#"ecrupdater_api_requests_total{code="none"}"#, 1.0),
        (r#"ecrupdater_api_requests_total{code="500"}"#, 2.0),
        (r#"ecrupdater_cycles_total{result="success"}"#, 1.0),
        (r#"ecrupdater_cycles_total{result="failure"}"#, 1.0),
        ("ecrupdater_targets", 3.0),
        ("ecrupdater_ready", 1.0),
        ("ecrupdater_token_expiry_timestamp_seconds", expires),
    ];
    for (key, value) in expected {
        assert_eq!(sample(&samples, key), *value, "{key}");
    }
    let codes: Vec<&String> = samples
        .keys()
        .filter(|k| k.starts_with("ecrupdater_api_requests_total"))
        .collect();
    assert_eq!(codes.len(), 5, "no other status code: {codes:?}");
    // The request counts agree with what the API server received in those two cycles (the
    // watch that follows the success is counted at the next cycle).
    let cycle_requests = kube.requests().iter().filter(|r| !r.is_watch()).count();
    assert_eq!(cycle_requests, 11 + posts);
    assert_eq!(ecr.requests().len(), 1);
    for ns in ["a", "b", "c"] {
        let secret = kube.secret(ns, SECRET).expect("secret");
        assert_pull_secret(&secret, HOST, "AWS", PASSWORD, expires);
    }
    daemon.assert_running();
    assert_no_credentials(&daemon.log(), &[PASSWORD, SECRET_KEY]);
}

/// The parser of the `prometheus-client` package, as Python sees it: one JSON object per
/// family with its type and samples.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = []
for f in text_string_to_metric_families(sys.stdin.read()):
    families.append({"name": f.name, "type": f.type, "help": f.documentation,
                     "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                                 for s in f.samples]})
print(json.dumps(families))
"#;

#[test]
#[ignore = "needs python3 with prometheus-client (install: scripts/test.sh, or pip install prometheus-client)"]
fn metrics_parse_with_the_prometheus_client_parser() {
    require_peers(&["python3:prometheus_client"]);
    let kube = kube_with_shipped_rbac();
    for ns in ["a", "b"] {
        kube.add_namespace(ns, &[]);
    }
    put_stale_secret(&kube, "a");
    let (ecr, expires) = fake_ecr();
    let mut daemon = start(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    let port = daemon.health_port();
    daemon.wait_for_log("next refresh in", RECOVERY);
    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, 200);

    let mut python = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    {
        use std::io::Write;
        let mut stdin = python.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("feed /metrics");
    }
    let out = python.wait_with_output().expect("python3 output");
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: Vec<Value> = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let by_name: BTreeMap<&str, &Value> = families
        .iter()
        .map(|f| (f["name"].as_str().expect("name"), f))
        .collect();
    // Counters lose their `_total` in the family name; their samples keep it.
    let expected_families = [
        ("ecrupdater_last_success_timestamp_seconds", "gauge"),
        ("ecrupdater_token_expiry_timestamp_seconds", "gauge"),
        ("ecrupdater_secrets", "counter"),
        ("ecrupdater_errors", "counter"),
        ("ecrupdater_api_requests", "counter"),
        ("ecrupdater_cycle_duration_seconds", "gauge"),
        ("ecrupdater_cycles", "counter"),
        ("ecrupdater_targets", "gauge"),
        ("ecrupdater_targets_valid_min_seconds", "gauge"),
        ("ecrupdater_ready", "gauge"),
        ("ecrupdater_build_info", "gauge"),
    ];
    let names: Vec<&str> = by_name.keys().copied().collect();
    let mut wanted: Vec<&str> = expected_families.iter().map(|(n, _)| *n).collect();
    wanted.sort();
    assert_eq!(names, wanted, "{text}");
    for (name, kind) in expected_families {
        let family = by_name[name];
        assert_eq!(family["type"], kind, "{name}");
        assert!(
            !family["help"].as_str().unwrap_or_default().is_empty(),
            "{name} has help"
        );
    }
    let value = |family: &str, sample: &str, labels: Value| -> f64 {
        by_name[family]["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .find(|s| s["name"] == sample && s["labels"] == labels)
            .and_then(|s| s["value"].as_f64())
            .unwrap_or_else(|| panic!("no {sample} {labels} in {}", by_name[family]))
    };
    let secrets = |result: &str| {
        value(
            "ecrupdater_secrets",
            "ecrupdater_secrets_total",
            json!({"result": result}),
        )
    };
    assert_eq!(
        (
            secrets("created"),
            secrets("updated"),
            secrets("unchanged"),
            secrets("skipped"),
            secrets("failed")
        ),
        (1.0, 1.0, 0.0, 0.0, 0.0)
    );
    // Cycle: list, a read+patch (200s), b read (404)+create (201); before it, the RBAC
    // preflight's access reviews (201).
    let requests = |code: &str| {
        value(
            "ecrupdater_api_requests",
            "ecrupdater_api_requests_total",
            json!({"code": code}),
        )
    };
    assert_eq!(
        (requests("200"), requests("201"), requests("404")),
        (3.0, 1.0 + kube.access_reviews_answered() as f64, 1.0)
    );
    assert_eq!(
        value(
            "ecrupdater_cycles",
            "ecrupdater_cycles_total",
            json!({"result": "success"})
        ),
        1.0
    );
    assert_eq!(
        value(
            "ecrupdater_errors",
            "ecrupdater_errors_total",
            json!({"stage": "kube"})
        ),
        0.0
    );
    assert_eq!(
        value("ecrupdater_ready", "ecrupdater_ready", json!({})),
        1.0
    );
    assert_eq!(
        value("ecrupdater_targets", "ecrupdater_targets", json!({})),
        2.0
    );
    assert_eq!(
        value(
            "ecrupdater_token_expiry_timestamp_seconds",
            "ecrupdater_token_expiry_timestamp_seconds",
            json!({})
        ),
        expires
    );
    assert_eq!(
        value(
            "ecrupdater_build_info",
            "ecrupdater_build_info",
            json!({"version": env!("CARGO_PKG_VERSION")})
        ),
        1.0
    );
    daemon.assert_running();
    assert_no_credentials(&daemon.log(), &[PASSWORD, SECRET_KEY]);
}
