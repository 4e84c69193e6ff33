//! Fault injection: the real `ecrupdater` binary, in daemon mode, against the fake API server and
//! fake ECR of `ecrupdater-testkit` over real sockets, with faults injected into their answers:
//! 500s, 503s, plain-text 429 with Retry-After, connection resets, answers slower than the
//! timeout, 409 conflicts, 410 on a continue token, 401 after the service-account token rotated
//! (in-cluster, TLS), ECR throttling and 5xx, and the API server unreachable at start.
//!
//! For each: the daemon keeps running, recovers on a later attempt (of the request, or of the
//! cycle through the failure backoff), every secret it wrote is valid docker config JSON with
//! the current token, the shipped RBAC refused nothing, the log names the failure in a WARNING or ERROR line without repeating it
//! dozens of times, and no credential reaches the log.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater_testkit::{AwsFault, FakeEcr, FakeKube, Fault, FaultKind};
use serde_json::json;

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "faults-ecr-password-0123456789abcdefghijklmn";
const SECRET_KEY: &str = "faults/secret+access+key/0123456789abcdefghi";
const ACCESS_KEY: &str = "AKIAFAULTSFAULTS";
/// FakeEcr's default `proxyEndpoint` for eu-west-1.
const HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
/// Long enough for a cycle, a failure backoff (at most 5 s after the first failure) and the
/// retry cycle, on a loaded machine.
const RECOVERY: Duration = Duration::from_secs(20);
/// A failure is named in at most this many WARNING/ERROR lines (one per attempt, bounded).
const AT_MOST: usize = 6;

/// The fake ECR, handing out PASSWORD until an expiry 12 hours ahead (whole seconds).
fn fake_ecr() -> (FakeEcr, f64) {
    fake_ecr_with(PASSWORD)
}

/// Namespaces, each holding a stale pull secret the daemon must replace.
fn add_namespaces(kube: &FakeKube, namespaces: &[&str]) {
    for ns in namespaces {
        kube.add_namespace(ns, &[]);
        kube.put_secret(
            ns,
            json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockerconfigjson",
                   "data": {".dockerconfigjson": STANDARD.encode(
                       r#"{"auths":{"old.example":{"username":"old","password":"stale","auth":"b2xkOnN0YWxl"}}}"#)}}),
        );
    }
}

/// The daemon's environment: the fakes, static keys, TRACE logging; `extra` overrides.
fn env(api_url: &str, ecr: &FakeEcr, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("K8S_PULL_SECRET_NAME".into(), SECRET.into()),
        ("AWS_REGION".into(), "eu-west-1".into()),
        ("AWS_ENDPOINT_URL_ECR".into(), ecr.base_url()),
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ("KUBERNETES_API_ENDPOINT".into(), api_url.into()),
        ("LOG_LEVEL".into(), "TRACE".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn start(api_url: &str, ecr: &FakeEcr, extra: &[(&str, &str)]) -> DaemonProcess {
    let env = env(api_url, ecr, extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    DaemonProcess::start(&pairs, &[])
}

/// The checks every case ends with: still running, every pull secret in the fake valid and
/// current (and one in each of `namespaces`), and no credential in the log.
fn assert_recovered(
    daemon: &mut DaemonProcess,
    kube: &FakeKube,
    namespaces: &[&str],
    expires: f64,
    more_secrets: &[&str],
) {
    daemon.assert_running();
    for ns in namespaces {
        assert!(
            kube.secret(ns, SECRET).is_some(),
            "no secret in {ns}:\n{}",
            daemon.log()
        );
    }
    let written: Vec<_> = kube
        .secrets()
        .into_iter()
        .filter(|(_, s)| s["metadata"]["name"] == SECRET)
        .collect();
    assert_eq!(written.len(), namespaces.len());
    for (_, secret) in &written {
        assert_pull_secret(secret, HOST, "AWS", PASSWORD, expires);
    }
    let mut secrets = vec![
        PASSWORD,
        SECRET_KEY,
        "ZmF1bHRzLWVjci1wYXNzd29yZC0", // base64 of the password's start, as in `auth`
    ];
    secrets.extend_from_slice(more_secrets);
    assert_no_credentials(&daemon.log(), &secrets);
    assert_nothing_forbidden(kube);
}

/// Fails unless the failure named by `needle` is in 1..=`at_most` WARNING/ERROR lines, and at
/// least one of them is an ERROR when `error` is set. Returns those lines.
fn assert_named(daemon: &DaemonProcess, needle: &str, at_most: usize, error: bool) -> Vec<String> {
    let lines = daemon.problem_lines(needle);
    assert!(
        !lines.is_empty() && lines.len() <= at_most,
        "{needle:?} should be named in 1..={at_most} WARNING/ERROR lines, found {}:\n{}",
        lines.len(),
        daemon.log()
    );
    if error {
        assert!(
            lines.iter().any(|l| l.starts_with("ERROR")),
            "no ERROR line names {needle:?}:\n{}",
            daemon.log()
        );
    }
    lines
}

/// The daemon in-cluster against `kube` (TLS), with the service-account folder `dir` (its
/// `token` and `ca.crt`) and `extra` variables.
fn start_in_cluster(
    kube: &FakeKube,
    ecr: &FakeEcr,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> DaemonProcess {
    let port = kube.port().to_string();
    let dir_str = dir.to_str().expect("utf-8 path");
    let mut env = env("unused", ecr, extra);
    env.retain(|(k, _)| k != "KUBERNETES_API_ENDPOINT");
    for (k, v) in [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("ECR_SERVICEACCOUNT_DIR", dir_str),
    ] {
        env.push((k.into(), v.into()));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    DaemonProcess::start(&pairs, &[])
}

fn secret_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets/{SECRET}")
}

#[test]
fn api_500s_on_one_secret_fail_only_that_namespace_until_the_retry_cycle() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b", "c"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    // Three 500s: every attempt of the first cycle's read in c fails.
    kube.inject(
        Fault::new(
            Some("GET"),
            &secret_path("c"),
            FaultKind::Status(500, "InternalError".into()),
        )
        .times(3),
    );
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    let log = daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    assert!(
        log.contains("2 updated, 0 unchanged, 0 skipped, 1 failed"),
        "the others are served in the failing cycle:\n{log}"
    );
    daemon.wait_for_log("next refresh in", RECOVERY);
    let lines = assert_named(&daemon, "HTTP 500", AT_MOST, true);
    assert!(
        lines.iter().any(|l| l.starts_with("ERROR")
            && l.contains("c/ecr-pull: GET /api/v1/namespaces/c/secrets/ecr-pull: HTTP 500")),
        "{lines:?}"
    );
    // The pauses between a request's attempts double from half a second.
    let pauses: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split("; retrying in ").nth(1))
        .collect();
    assert_eq!(
        pauses,
        ["0.5 s (attempt 1 of 3)", "1.0 s (attempt 2 of 3)"],
        "{lines:?}"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
    // The retry cycle reused the token and wrote only what was missing.
    assert_eq!(ecr.requests().len(), 1);
    let patches = |ns: &str| {
        kube.requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == secret_path(ns))
            .count()
    };
    assert_eq!((patches("a"), patches("b"), patches("c")), (1, 1, 1));
}

#[test]
fn api_503s_on_the_namespace_list_fail_the_cycle_and_the_retry_recovers() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    kube.inject(
        Fault::new(
            Some("GET"),
            "/api/v1/namespaces?limit=",
            FaultKind::Status(503, "ServiceUnavailable".into()),
        )
        .times(3),
    );
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    assert!(
        kube.requests().iter().all(|r| r.method == "GET"
            || r.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
        "nothing is written while the list fails (access reviews write nothing)"
    );
    daemon.wait_for_log("next refresh in", RECOVERY);
    let lines = assert_named(&daemon, "HTTP 503", AT_MOST, true);
    assert!(
        lines.iter().any(|l| l.starts_with("ERROR")
            && l.contains("listing namespaces failed: GET /api/v1/namespaces: HTTP 503")),
        "{lines:?}"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn a_plain_text_429_is_retried_after_its_retry_after() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    kube.inject(Fault::new(
        Some("PATCH"),
        &secret_path("a"),
        FaultKind::PlainTooManyRequests(2),
    ));
    let started = Instant::now();
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    daemon.wait_for_log("next refresh in", RECOVERY);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the Retry-After of 2 s was not honoured"
    );
    let lines = assert_named(&daemon, "HTTP 429", 1, false);
    assert!(
        lines[0].contains("Too many requests, please try again later.")
            && lines[0].contains("retrying in 2.0 s"),
        "{lines:?}"
    );
    assert!(
        !daemon.log().contains("cycle failed"),
        "the request's own retry recovered"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn connection_resets_are_retried_by_the_request_and_by_the_cycle() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    // Every attempt of the first list: the server is as good as gone for that cycle.
    kube.inject(Fault::new(Some("GET"), "/api/v1/namespaces?limit=", FaultKind::Reset).times(3));
    // One reset of a read: its second attempt succeeds.
    kube.inject(Fault::new(Some("GET"), &secret_path("a"), FaultKind::Reset));
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    daemon.wait_for_log("next refresh in", RECOVERY);
    let log = daemon.log();
    assert!(
        log.contains("is not reachable yet") && log.contains("trying again in 1 s (attempt 1)"),
        "{log}"
    );
    assert_named(&daemon, "GET /api/v1/namespaces: no answer", AT_MOST, false);
    assert_named(
        &daemon,
        "GET /api/v1/namespaces/a/secrets/ecr-pull: no answer",
        1,
        false,
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
    let reads_of_a = kube
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == secret_path("a"))
        .count();
    assert_eq!(reads_of_a, 2);
}

#[test]
fn answers_slower_than_the_timeout_are_abandoned_and_retried() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    // 1 s to connect + 1 s for the request: each call gives up after 2 s.
    let timeouts = [("ECR_HTTP_CONNECT_TIMEOUT", "1"), ("ECR_HTTP_TIMEOUT", "1")];
    ecr.inject(AwsFault::Delay(Duration::from_secs(4)));
    kube.inject(Fault::new(
        Some("GET"),
        &secret_path("b"),
        FaultKind::Delay(Duration::from_secs(4)),
    ));
    let mut daemon = start(&kube.base_url(), &ecr, &timeouts);
    daemon.wait_for_log("next refresh in", RECOVERY);
    assert!(
        !daemon.log().contains("cycle failed"),
        "each call's own retry recovered"
    );
    assert_named(
        &daemon,
        "ECR GetAuthorizationToken failed: no answer",
        1,
        false,
    );
    assert_named(
        &daemon,
        "GET /api/v1/namespaces/b/secrets/ecr-pull: no answer",
        1,
        false,
    );
    assert_eq!(
        ecr.requests().len(),
        2,
        "the slow token call was sent again"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn a_409_conflict_is_read_again_and_a_persistent_one_waits_for_the_retry_cycle() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    // a: one conflict, resolved within the cycle by reading the secret again.
    kube.inject(Fault::new(
        Some("PATCH"),
        &secret_path("a"),
        FaultKind::Conflict,
    ));
    // b: the patch after the re-read conflicts too; the namespace fails for this cycle.
    kube.inject(Fault::new(Some("PATCH"), &secret_path("b"), FaultKind::Conflict).times(2));
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    let log = daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    assert!(
        log.contains("1 updated, 0 unchanged, 0 skipped, 1 failed"),
        "{log}"
    );
    assert!(
        log.contains("a/ecr-pull: changed meanwhile"),
        "the first conflict is read again: {log}"
    );
    daemon.wait_for_log("next refresh in", RECOVERY);
    let lines = assert_named(&daemon, "HTTP 409", 1, true);
    assert!(
        lines[0]
            .contains("b/ecr-pull: PATCH /api/v1/namespaces/b/secrets/ecr-pull: HTTP 409 Conflict"),
        "{lines:?}"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn a_410_on_the_continue_token_restarts_the_list_and_the_retry_cycle_recovers() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["n1", "n2", "n3", "n4", "n5"];
    add_namespaces(&kube, &namespaces);
    kube.set_max_page_size(Some(2));
    let (ecr, expires) = fake_ecr();
    // Four expired continue tokens in a row: three restarts of the list, then the cycle fails.
    kube.inject(
        Fault::new(
            Some("GET"),
            "/api/v1/namespaces?limit=500&fieldSelector=status.phase%3DActive&continue=",
            FaultKind::Gone,
        )
        .times(4),
    );
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    let log = daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    assert_eq!(
        log.matches("continue token expired (410); listing again from the start")
            .count(),
        3,
        "{log}"
    );
    daemon.wait_for_log("next refresh in", RECOVERY);
    let lines = assert_named(&daemon, "HTTP 410", 1, true);
    assert!(
        lines[0].contains("listing namespaces failed: GET /api/v1/namespaces: HTTP 410 Expired"),
        "{lines:?}"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn in_cluster_a_401_after_the_token_rotated_reads_the_token_file_again() {
    let (kube, ca_pem) = tls_kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let first = "eyJhbGciOiJSUzI1NiJ9.first-service-account-token.c2lnbmF0dXJl";
    let second = "eyJhbGciOiJSUzI1NiJ9.second-service-account-token.c2lnbmF0dXJl";
    kube.require_bearer_token(Some(first));
    let (ecr, expires) = fake_ecr();
    let dir = temp_dir("faults-in-cluster");
    std::fs::write(dir.join("token"), format!("{first}\n")).expect("token");
    std::fs::write(dir.join("ca.crt"), &ca_pem).expect("ca");
    // A refused read makes the first cycle fail, so a retry cycle follows within seconds.
    kube.inject(Fault::new(
        Some("GET"),
        &secret_path("a"),
        FaultKind::Status(403, "Forbidden".into()),
    ));
    let mut daemon = start_in_cluster(&kube, &ecr, &dir, &[]);
    daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    assert!(daemon.log().contains("in-cluster service account"));
    // The kubelet rotates the file (atomically) and the API server now wants the new token.
    let staged = dir.join("token.new");
    std::fs::write(&staged, format!("{second}\n")).expect("new token");
    std::fs::rename(&staged, dir.join("token")).expect("rotate the token");
    kube.require_bearer_token(Some(second));
    let before_rotation = kube.requests().len();
    daemon.wait_for_log("next refresh in", RECOVERY);
    let after: Vec<Option<String>> = kube.requests()[before_rotation..]
        .iter()
        .map(|r| r.authorization.clone())
        .collect();
    let stale = after
        .iter()
        .filter(|a| a.as_deref() == Some(&format!("Bearer {first}")))
        .count();
    assert_eq!(stale, 1, "one 401 with the old token, then the new one");
    assert_eq!(
        after.last().cloned().flatten(),
        Some(format!("Bearer {second}"))
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("401 Unauthorized; reading the service-account token again")
            .count(),
        1,
        "{log}"
    );
    assert_named(&daemon, "HTTP 403 Forbidden", 1, true);
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[first, second]);
}

#[test]
fn in_cluster_a_401_on_the_watch_reads_the_token_again_and_the_watch_goes_on() {
    let (kube, ca_pem) = tls_kube_with_shipped_rbac();
    add_namespaces(&kube, &["a"]);
    let token = "eyJhbGciOiJSUzI1NiJ9.watching-service-account-token.c2lnbmF0dXJl";
    kube.require_bearer_token(Some(token));
    // The first watch request is refused as if its token had just expired.
    kube.inject(Fault::new(
        Some("GET"),
        "/api/v1/namespaces?watch=true",
        FaultKind::Status(401, "Unauthorized".into()),
    ));
    let (ecr, _) = fake_ecr();
    let dir = temp_dir("faults-in-cluster-watch");
    std::fs::write(dir.join("token"), format!("{token}\n")).expect("token");
    std::fs::write(dir.join("ca.crt"), &ca_pem).expect("ca");
    let mut daemon = start_in_cluster(&kube, &ecr, &dir, &[("ECR_CREATE_MISSING", "true")]);
    daemon.wait_for_log(
        "WATCH /api/v1/namespaces: 401 Unauthorized; reading the service-account token again",
        RECOVERY,
    );
    // The watch goes on: a new namespace is served from it, not at the next refresh an hour
    // away.
    kube.add_namespace("late", &[]);
    daemon.wait_for_log("late: new namespace served", RECOVERY);
    assert!(kube.secret("late", SECRET).is_some());
    let watches = kube
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces" && r.query.contains("watch=true"))
        .count();
    assert_eq!(watches, 2, "the refused watch and the one that goes on");
    let log = daemon.log();
    assert!(!log.contains("namespace watch refused"), "{log}");
    assert_no_credentials(&log, &[token, PASSWORD, SECRET_KEY]);
}

#[test]
fn ecr_throttling_writes_nothing_and_the_retry_cycle_fetches_a_token() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let before = kube.secrets();
    let (ecr, expires) = fake_ecr();
    ecr.inject(AwsFault::Throttling);
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    // Throttling is not hammered: one call, then the cycle's backoff.
    assert_eq!(ecr.requests().len(), 1);
    assert!(kube.requests().is_empty(), "no API call without a token");
    assert_eq!(kube.secrets(), before, "no secret was touched");
    daemon.wait_for_log("next refresh in", RECOVERY);
    let lines = assert_named(&daemon, "ThrottlingException", 1, true);
    assert!(
        lines[0].contains(
            "ECR GetAuthorizationToken failed: HTTP 400 ThrottlingException: Rate exceeded; no secret was written"
        ),
        "{lines:?}"
    );
    assert_eq!(ecr.requests().len(), 2);
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn ecr_5xx_is_retried_within_the_call_and_then_by_the_next_cycle() {
    let kube = kube_with_shipped_rbac();
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    let (ecr, expires) = fake_ecr();
    // The three attempts of the first cycle's call, and the first attempt of the retry cycle's.
    ecr.inject(AwsFault::Status(500, "ServerException".into()));
    ecr.inject(AwsFault::Status(503, "ServiceUnavailableException".into()));
    ecr.inject(AwsFault::Status(500, "ServerException".into()));
    ecr.inject(AwsFault::Status(503, "ServiceUnavailableException".into()));
    let mut daemon = start(&kube.base_url(), &ecr, &[]);
    daemon.wait_for_log("cycle failed (1 in a row)", RECOVERY);
    assert!(kube.requests().is_empty(), "no API call without a token");
    daemon.wait_for_log("next refresh in", RECOVERY);
    assert_eq!(ecr.requests().len(), 5);
    // One line per failed attempt: 500, 503, 500 (the cycle's ERROR), 503 (retried at once).
    let lines = assert_named(&daemon, "ECR GetAuthorizationToken failed: HTTP 5", 4, true);
    assert_eq!(lines.len(), 4, "{lines:?}");
    // The pauses within a call double from half a second; the retry cycle's call starts over.
    let pauses: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split("; retrying in ").nth(1))
        .collect();
    assert_eq!(pauses, ["0.5 s", "1.0 s", "0.5 s"], "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("ERROR")
            && l.contains("HTTP 500 ServerException")
            && l.contains("no secret was written")),
        "{lines:?}"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
}

#[test]
fn an_api_server_unreachable_at_start_is_tried_again_until_it_answers() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (ecr, expires) = fake_ecr();
    let mut daemon = start(&url, &ecr, &[]);
    daemon.wait_for_log("is not reachable yet", RECOVERY);
    std::thread::sleep(Duration::from_secs(2));
    daemon.assert_running();
    let (kube, _) = FakeKube::bind(port, false).expect("bind the API server's port");
    enforce_shipped_rbac(&kube, DEFAULT_INSTALL);
    let namespaces = ["a", "b"];
    add_namespaces(&kube, &namespaces);
    daemon.wait_for_log("next refresh in", RECOVERY);
    let lines = assert_named(&daemon, "is not reachable yet", 4, false);
    assert!(
        lines[0].contains(&format!("the Kubernetes API at {url} is not reachable yet")),
        "{lines:?}"
    );
    assert_eq!(
        ecr.requests().len(),
        1,
        "the token is fetched once and kept while the API is away"
    );
    assert_recovered(&mut daemon, &kube, &namespaces, expires, &[]);
    let (status, log) = daemon.stop();
    assert_eq!(status, 0, "{log}");
}
