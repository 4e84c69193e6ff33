//! Hostile peers, the Kubernetes side: the real `ecrupdater` binary against small servers of our
//! own on 127.0.0.1 (`common::kube::HostileApi`) that send what a broken or hostile API server or
//! proxy could send. One test per class, each asserting its bound:
//!
//! - memory: a 60 MB list of tiny values, a 100 MB watch line, an endless chunked Secret, a 20 MB
//!   Status: peak RSS (VmHWM, read while the daemon still runs) under 32 MiB;
//! - loops: a continue token that never ends, one seen twice, 410 on every continue, an error
//!   after the first page: request counts, and `--once` ends;
//! - request paths: namespace names that are not DNS-1123 labels, from the list and the watch,
//!   never reach a request;
//! - error classes: oversized, non-UTF-8 and malformed answers are protocol errors, not retried;
//!   a TLS failure is not retried; a 401 on the watch stops the watch;
//! - `--once` with nothing listening fails within seconds with one line saying what to do.
//!
//! Every test also checks that no log line is longer than 4 KiB and that no credential, nor any
//! 16-character piece of one, appears in the output.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use common::kube::{
    HostileApi, SeenRequest, respond, respond_chunked_endless, respond_huge, respond_json,
};
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "hostile-kube-ecr-password-0123456789abcdefgh";
const SECRET_KEY: &str = "hostile/kube+secret+key/0123456789abcdefghij";
const ACCESS_KEY: &str = "AKIAHOSTILEKUBE0";
/// The pod's memory limit is 64 MiB; the daemon promises half of it whatever a peer sends.
const MAX_RSS_KIB: u64 = 32 * 1024;
/// No log line is longer than this.
const MAX_LINE: usize = 4096;
const LIST: &str = "/api/v1/namespaces?limit=";
const WATCH: &str = "/api/v1/namespaces?watch=true";
/// Long enough for a cycle on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

/// The daemon's environment: the hostile API, the fake ECR, static keys, TRACE logging.
fn env(
    api: &str,
    ecr: &ecrupdater_testkit::FakeEcr,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("K8S_PULL_SECRET_NAME".into(), SECRET.into()),
        ("AWS_REGION".into(), "eu-west-1".into()),
        ("AWS_ENDPOINT_URL_ECR".into(), ecr.base_url()),
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ("KUBERNETES_API_ENDPOINT".into(), api.into()),
        ("LOG_LEVEL".into(), "TRACE".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `--once` against `api`: what it printed and how long it took.
fn run_once(api: &HostileApi, extra: &[(&str, &str)]) -> (Finished, Duration) {
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let env = env(&api.url(), &ecr, extra);
    let started = Instant::now();
    let finished = run(&pairs(&env), &["--once"], LIMIT);
    (finished, started.elapsed())
}

/// The daemon (no `--once`) against `api`, with the fake ECR it needs kept alive.
fn start_daemon(
    api: &HostileApi,
    extra: &[(&str, &str)],
) -> (DaemonProcess, ecrupdater_testkit::FakeEcr) {
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let env = env(&api.url(), &ecr, extra);
    (DaemonProcess::start(&pairs(&env), &[]), ecr)
}

/// No line over [`MAX_LINE`], no credential and no 16-character piece of one.
fn assert_clean_output(text: &str) {
    for line in text.lines() {
        assert!(
            line.len() <= MAX_LINE,
            "a log line of {} bytes: {}...",
            line.len(),
            &line[..200.min(line.len())]
        );
    }
    assert_no_credentials(text, &[PASSWORD, SECRET_KEY]);
    for credential in [PASSWORD, SECRET_KEY] {
        for piece in credential.as_bytes().windows(16) {
            let piece = std::str::from_utf8(piece).expect("ascii");
            assert!(
                !text.contains(piece),
                "a 16-character piece of a credential in the output: {}...",
                &piece[..4]
            );
        }
    }
}

/// Peak RSS under the bound, read while the daemon still runs.
fn assert_peak_rss(daemon: &mut DaemonProcess, what: &str) -> u64 {
    let peak = daemon.peak_rss_kib();
    assert!(
        peak < MAX_RSS_KIB,
        "{what}: peak RSS {peak} KiB, over {MAX_RSS_KIB} KiB"
    );
    peak
}

fn namespace_list(names: &[&str], continue_token: &str) -> serde_json::Value {
    let items: Vec<serde_json::Value> = names
        .iter()
        .map(|n| json!({"metadata": {"name": n}, "status": {"phase": "Active"}}))
        .collect();
    json!({"kind": "NamespaceList", "apiVersion": "v1",
           "metadata": {"resourceVersion": "7", "continue": continue_token}, "items": items})
}

fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// Answers a secret GET with 404 (the namespace holds no pull secret).
fn not_found(stream: &mut TcpStream) {
    respond_json(
        stream,
        404,
        &status(404, "NotFound", "secrets \"ecr-pull\" not found"),
    );
}

// ---------------------------------------------------------------- memory

#[test]
fn a_60_mb_list_of_tiny_values_is_refused_within_its_cap_and_memory() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(LIST) {
            let prefix = br#"{"kind":"NamespaceList","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"},"spec":{"x":["#;
            respond_huge(stream, 200, prefix, b"0,", 60_000_000, b"0]}}]}");
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[]);
    let log = daemon.wait_for_log("listing namespaces failed", LIMIT);
    let peak = assert_peak_rss(&mut daemon, "60 MB list");
    assert!(
        log.contains("protocol error") && log.contains("larger than 8388608 bytes"),
        "{log}"
    );
    assert_eq!(api.count(LIST), 1, "a protocol error is not retried");
    api.assert_nothing_written();
    assert_clean_output(&daemon.log());
    eprintln!("peak RSS with a 60 MB list of tiny values: {peak} KiB");
}

#[test]
fn a_100_mb_watch_line_is_cut_off_while_it_is_read() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(WATCH) {
            let prefix = br#"{"type":"ADDED","object":{"metadata":{"name":""#;
            respond_chunked_endless(stream, prefix, b"a", 100_000_000);
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&[], ""));
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[("ECR_CREATE_MISSING", "true")]);
    let log = daemon.wait_for_log("namespace watch failed", LIMIT);
    let peak = assert_peak_rss(&mut daemon, "100 MB watch line");
    assert!(
        log.contains("protocol error: a line longer than 1048576 bytes"),
        "{log}"
    );
    api.assert_nothing_written();
    assert_clean_output(&daemon.log());
    eprintln!("peak RSS with a 100 MB watch line: {peak} KiB");
}

#[test]
fn an_endless_chunked_secret_is_cut_off_at_its_cap_and_not_retried() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&["a"], ""));
        } else {
            // The kept field itself grows without end.
            let prefix = br#"{"kind":"Secret","type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":""#;
            respond_chunked_endless(stream, prefix, b"QUFB", usize::MAX);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[]);
    let log = daemon.wait_for_log("cycle failed (1 in a row)", LIMIT);
    let peak = assert_peak_rss(&mut daemon, "endless chunked secret");
    assert!(
        log.contains(
            "GET /api/v1/namespaces/a/secrets/ecr-pull: protocol error: the answer is larger than 3145728 bytes"
        ),
        "{log}"
    );
    assert_eq!(api.count("/api/v1/namespaces/a/secrets/"), 1, "not retried");
    api.assert_nothing_written();
    assert_clean_output(&daemon.log());
    eprintln!("peak RSS with an endless chunked secret: {peak} KiB");
}

#[test]
fn a_20_mb_status_is_not_read_whole_nor_logged() {
    let api = HostileApi::start(|_, _, stream| {
        let prefix = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500,"message":""#;
        respond_huge(stream, 500, prefix, b"overflow ", 20_000_000, br#""}"#);
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[]);
    let log = daemon.wait_for_log("listing namespaces failed", LIMIT);
    let peak = assert_peak_rss(&mut daemon, "20 MB Status");
    assert!(
        log.contains("protocol error: the answer is larger than 65536 bytes"),
        "{log}"
    );
    assert_eq!(api.count(LIST), 1, "a protocol error is not retried");
    assert_clean_output(&log);
    eprintln!("peak RSS with a 20 MB Status: {peak} KiB");
}

#[test]
fn a_status_message_is_masked_before_it_is_cut_and_cannot_forge_a_line() {
    // The password sits where a cut at 300 characters would leave a piece of it.
    let message = format!(
        "denied\nINFO:ecrupdater:cycle done: 99 created, 0 updated\n{}{PASSWORD} {SECRET_KEY} {}",
        "x".repeat(240),
        "y".repeat(60_000)
    );
    let api = HostileApi::start(move |_, _, stream| {
        respond_json(stream, 403, &status(403, "Forbidden", &message));
    });
    let (finished, elapsed) = run_once(&api, &[]);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(
        !output
            .lines()
            .any(|l| l.starts_with("INFO:ecrupdater:cycle done")),
        "a forged line:\n{output}"
    );
    assert!(
        output.contains("HTTP 403 Forbidden: denied\\nINFO"),
        "{output}"
    );
    assert_clean_output(&output);
}

// ---------------------------------------------------------------- loops

#[test]
fn a_continue_token_that_never_ends_stops_at_the_page_cap_and_once_returns() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(LIST) {
            let next = format!("token-{}", rand_suffix(&request.path));
            respond_json(stream, 200, &namespace_list(&[], &next));
        } else {
            not_found(stream);
        }
    });
    let (finished, elapsed) = run_once(&api, &[]);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    assert!(
        output.contains("the list did not end within 200 pages"),
        "{output}"
    );
    assert!(api.count(LIST) <= 200, "{} list requests", api.count(LIST));
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    api.assert_nothing_written();
    assert_clean_output(&output);
}

/// A token different for every request: the path of the last one, hashed.
fn rand_suffix(path: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    hasher.finish() as usize
}

#[test]
fn a_continue_token_seen_twice_ends_the_list() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&["a"], "same-token"));
        } else {
            not_found(stream);
        }
    });
    let (finished, _) = run_once(&api, &[]);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    assert!(output.contains("the same continue token twice"), "{output}");
    assert_eq!(api.count(LIST), 2);
    assert_eq!(api.count("/api/v1/namespaces/"), 0, "no namespace served");
    assert_clean_output(&output);
}

#[test]
fn a_410_on_every_continue_restarts_the_list_a_bounded_number_of_times() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.contains("continue=") {
            respond_json(
                stream,
                410,
                &status(410, "Expired", "continue token too old"),
            );
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&["a"], "next"));
        } else {
            not_found(stream);
        }
    });
    let (finished, _) = run_once(&api, &[]);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    let first_pages = api
        .requests()
        .iter()
        .filter(|r| r.path.starts_with(LIST) && !r.path.contains("continue="))
        .count();
    assert_eq!(first_pages, 4, "the first list and three restarts");
    assert_clean_output(&output);
}

#[test]
fn an_error_after_the_first_page_does_not_restart_the_list() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.contains("continue=") {
            respond_json(stream, 500, &status(500, "InternalError", "etcd is gone"));
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&["a"], "next"));
        } else {
            not_found(stream);
        }
    });
    let (finished, _) = run_once(&api, &[]);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    let requests = api.requests();
    let first = |r: &&SeenRequest| r.path.starts_with(LIST) && !r.path.contains("continue=");
    assert_eq!(requests.iter().filter(first).count(), 1, "{requests:?}");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.path.contains("continue="))
            .count(),
        3,
        "the request's own three attempts"
    );
    assert!(
        output.contains("HTTP 500 InternalError: etcd is gone"),
        "{output}"
    );
    assert_clean_output(&output);
}

// ---------------------------------------------------------------- request paths

const HOSTILE_NAMES: [&str; 5] = [
    "kube-system/secrets/victim#",
    "../kube-system",
    "a%2Fb",
    "UPPER",
    "x?watch=true",
];

/// Every request path is one the daemon may send for `ok` namespaces only.
fn assert_only_safe_paths(requests: &[SeenRequest]) {
    for r in requests {
        assert!(
            !r.path.contains("victim")
                && !r.path.contains("kube-system")
                && !r.path.contains("..")
                && !r.path.contains("UPPER")
                && !r.path.contains("%2F"),
            "a hostile name reached a request: {r:?}"
        );
    }
}

#[test]
fn names_from_the_list_that_are_not_labels_never_reach_a_request() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(LIST) {
            let mut names = HOSTILE_NAMES.to_vec();
            names.push("ok");
            respond_json(stream, 200, &namespace_list(&names, ""));
        } else {
            not_found(stream);
        }
    });
    let (finished, _) = run_once(&api, &[]);
    let output = finished.output();
    assert_eq!(finished.status, 0, "{output}");
    let requests = api.requests();
    assert_only_safe_paths(&requests);
    assert_eq!(api.count("/api/v1/namespaces/ok/secrets/ecr-pull"), 1);
    assert_eq!(requests.len(), 2, "{requests:?}");
    api.assert_nothing_written();
    assert!(
        output.contains(
            "skipped a namespace named \"kube-system/secrets/victim#\": not a DNS-1123 label"
        ),
        "{output}"
    );
    // Five bad names are all named: nothing more to count, and every namespace was Active.
    assert!(!output.contains("more namespace names"), "{output}");
    assert!(!output.contains("not Active"), "{output}");
    assert_clean_output(&output);
}

#[test]
fn many_bad_names_over_two_pages_give_five_warnings_then_a_count() {
    // Page 1: six names that are not labels and two Terminating namespaces; page 2: three more
    // bad names and one more Terminating. Each is skipped; five are named, the rest counted.
    let page = |bad: std::ops::Range<usize>,
                terminating: &[&str],
                ok: &str,
                continue_token: &str| {
        let mut items: Vec<serde_json::Value> = bad
            .map(|i| json!({"metadata": {"name": format!("Bad-{i}")}, "status": {"phase": "Active"}}))
            .collect();
        for name in terminating {
            items.push(json!({"metadata": {"name": name}, "status": {"phase": "Terminating"}}));
        }
        items.push(json!({"metadata": {"name": ok}}));
        json!({"kind": "NamespaceList", "apiVersion": "v1",
               "metadata": {"resourceVersion": "7", "continue": continue_token}, "items": items})
    };
    let first = page(1..7, &["going-1", "going-2"], "ok-a", "next");
    let second = page(7..10, &["going-3"], "ok-b", "");
    let api = HostileApi::start(move |request, _, stream| {
        if request.path.starts_with(LIST) && request.path.contains("continue=next") {
            respond_json(stream, 200, &second);
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &first);
        } else {
            not_found(stream);
        }
    });
    let (finished, _) = run_once(&api, &[("LOG_LEVEL", "DEBUG")]);
    let output = finished.output();
    assert_eq!(finished.status, 0, "{output}");
    let named: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("namespace list: skipped a namespace named"))
        .collect();
    assert_eq!(named.len(), 5, "{output}");
    for (line, i) in named.iter().zip(1..) {
        assert!(line.contains(&format!("\"Bad-{i}\"")), "{line}");
    }
    let counted: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("more namespace names that are not DNS-1123 labels"))
        .collect();
    assert_eq!(counted.len(), 1, "{output}");
    assert!(counted[0].contains("skipped 4 more"), "{}", counted[0]);
    assert!(
        output.contains("namespace list: 3 namespaces not Active; skipped"),
        "{output}"
    );
    // Only the two good namespaces were served.
    assert_eq!(api.count("/api/v1/namespaces/ok-a/secrets/"), 1);
    assert_eq!(api.count("/api/v1/namespaces/ok-b/secrets/"), 1);
    assert_only_safe_paths(&api.requests());
    assert_clean_output(&output);
}

#[test]
fn names_from_the_watch_that_are_not_labels_never_reach_a_request() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(WATCH) {
            let mut body = String::new();
            for name in HOSTILE_NAMES.iter().chain(["fresh"].iter()) {
                body.push_str(
                    &json!({"type": "ADDED", "object": {"kind": "Namespace",
                        "metadata": {"name": name, "resourceVersion": "8"},
                        "status": {"phase": "Active"}}})
                    .to_string(),
                );
                body.push('\n');
            }
            respond(stream, 200, "application/json", body.as_bytes());
            std::thread::sleep(Duration::from_secs(5));
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&[], ""));
        } else if request.method == "POST" {
            respond_json(
                stream,
                201,
                &json!({"kind": "Secret", "metadata": {"name": SECRET, "namespace": "fresh",
                    "uid": "u-1"}, "type": "kubernetes.io/dockerconfigjson"}),
            );
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[("ECR_CREATE_MISSING", "true")]);
    let log = daemon.wait_for_log("fresh/ecr-pull: created", LIMIT);
    assert!(
        log.contains("namespace watch: skipped a namespace named \"kube-system/secrets/victim#\""),
        "{log}"
    );
    // Five bad names are all named, none counted; every line was a watch event. (Both are said
    // when the stream ends: the daemon then watches again.)
    let deadline = Instant::now() + LIMIT;
    while api.count(WATCH) < 2 {
        assert!(
            Instant::now() < deadline,
            "no second watch:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = daemon.log();
    assert!(
        !log.contains("names that are not DNS-1123 labels in all"),
        "{log}"
    );
    assert!(!log.contains("lines that are not watch events"), "{log}");
    let requests = api.requests();
    assert_only_safe_paths(&requests);
    let writes: Vec<&SeenRequest> = requests.iter().filter(|r| r.method != "GET").collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].path, "/api/v1/namespaces/fresh/secrets");
    assert_clean_output(&daemon.log());
}

#[test]
fn a_watch_of_bad_lines_names_five_counts_the_rest_and_serves_only_active_namespaces() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(WATCH) {
            let event = |kind: &str, name: &str, phase: &str| {
                json!({"type": kind, "object": {"kind": "Namespace",
                    "metadata": {"name": name, "resourceVersion": "8"},
                    "status": {"phase": phase}}})
                .to_string()
            };
            let mut lines = vec!["this is not a watch event".to_string()];
            for name in HOSTILE_NAMES.iter().chain(["Bad-6", "Bad-7"].iter()) {
                lines.push(event("ADDED", name, "Active"));
            }
            // A namespace that starts terminating: nothing to serve there.
            lines.push(event("MODIFIED", "going", "Terminating"));
            lines.push(event("ADDED", "fresh", "Active"));
            let body = lines.join("\n") + "\n";
            respond(stream, 200, "application/json", body.as_bytes());
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&[], ""));
        } else if request.method == "POST" {
            respond_json(
                stream,
                201,
                &json!({"kind": "Secret", "metadata": {"name": SECRET, "namespace": "fresh",
                    "uid": "u-1"}, "type": "kubernetes.io/dockerconfigjson"}),
            );
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[("ECR_CREATE_MISSING", "true")]);
    daemon.wait_for_log("fresh/ecr-pull: created", LIMIT);
    let log = daemon.wait_for_log(
        "namespace watch: skipped 7 namespace names that are not DNS-1123 labels in all",
        LIMIT,
    );
    let named = log
        .lines()
        .filter(|l| l.contains("namespace watch: skipped a namespace named"))
        .count();
    assert_eq!(named, 5, "{log}");
    assert!(
        log.contains("namespace watch: 1 lines that are not watch events; ignored"),
        "{log}"
    );
    let requests = api.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.path.contains("/namespaces/going/")),
        "a terminating namespace is not served: {requests:?}"
    );
    assert_only_safe_paths(&requests);
    assert_clean_output(&log);
}

// ---------------------------------------------------------------- error classes

/// Writes one answer.
type Answer = fn(&mut TcpStream);

#[test]
fn oversized_non_utf8_and_malformed_answers_are_protocol_errors_not_retried() {
    let cases: [(&str, Answer); 3] = [
        ("larger than 8388608 bytes", |stream| {
            respond_huge(stream, 200, b"{\"items\":[", b" ", 70_000_000, b"]}")
        }),
        ("not the JSON expected", |stream| {
            respond(
                stream,
                200,
                "application/json",
                b"{\"items\":[{\"metadata\":{\"name\":\"a\xff\xfe\"}}]}",
            )
        }),
        ("not the JSON expected", |stream| {
            respond(
                stream,
                200,
                "application/json",
                b"{\"items\":[{\"metadata\":",
            )
        }),
    ];
    for (expected, answer) in cases {
        let api = HostileApi::start(move |request, _, stream| {
            if request.path.starts_with(LIST) {
                answer(stream);
            } else {
                not_found(stream);
            }
        });
        let (finished, elapsed) = run_once(&api, &[]);
        let output = finished.output();
        assert_eq!(finished.status, 1, "{output}");
        assert!(
            output.contains("protocol error") && output.contains(expected),
            "{expected}: {output}"
        );
        assert!(!output.contains("not reachable"), "{output}");
        assert_eq!(api.count(LIST), 1, "{expected}: retried");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert_clean_output(&output);
    }
}

/// In-cluster against an API server whose certificate the mounted CA did not sign, run with
/// `args`: status 1 after one TLS handshake, the failure named, nothing retried or leaked.
fn assert_tls_failure_ends_the_run(args: &[&str], dir_name: &str) {
    let (server_config, _its_ca) =
        ecrupdater_testkit::tls::server_config().expect("a server certificate");
    let (_, other_ca) = ecrupdater_testkit::tls::server_config().expect("another CA");
    let api = HostileApi::start_tls(server_config);
    let dir = temp_dir(dir_name);
    let token = "eyJhbGciOiJSUzI1NiJ9.hostile-kube-service-account.c2lnbmF0dXJl";
    std::fs::write(dir.join("token"), token).expect("token");
    std::fs::write(dir.join("ca.crt"), other_ca).expect("ca");
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let port = api.port.to_string();
    let mut env = env("unused", &ecr, &[]);
    env.retain(|(k, _)| k != "KUBERNETES_API_ENDPOINT");
    for (k, v) in [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("ECR_SERVICEACCOUNT_DIR", dir.to_str().expect("utf-8")),
    ] {
        env.push((k.into(), v.into()));
    }
    let started = Instant::now();
    let finished = run(&pairs(&env), args, LIMIT);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    assert!(output.contains("TLS failed"), "{output}");
    assert!(!output.contains("not reachable"), "{output}");
    assert_eq!(api.connections(), 1, "a TLS failure is not retried");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_clean_output(&output);
    assert_no_credentials(&output, &[token]);
}

#[test]
fn a_tls_failure_is_reported_once_and_not_retried() {
    assert_tls_failure_ends_the_run(&["--once"], "hostile-kube-tls");
}

#[test]
/// Without `--once` too: no answer has ever passed TLS, so waiting cannot help; exit 1 at once
/// (a Deployment's pod then shows the failure) instead of retrying a certificate forever.
fn a_tls_failure_at_start_ends_the_daemon_too() {
    assert_tls_failure_ends_the_run(&[], "hostile-kube-tls-daemon");
}

#[test]
fn a_401_on_the_watch_stops_watching_until_the_next_refresh() {
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(WATCH) {
            respond_json(stream, 401, &status(401, "Unauthorized", "Unauthorized"));
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&[], ""));
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[("ECR_CREATE_MISSING", "true")]);
    let log = daemon.wait_for_log("namespace watch refused", LIMIT);
    assert!(log.contains("HTTP 401 Unauthorized"), "{log}");
    // A watch retried with the failure backoff would come back after 1 s, then 2 s.
    std::thread::sleep(Duration::from_secs(4));
    daemon.assert_running();
    assert_eq!(api.count(WATCH), 1, "{:?}", api.requests());
    assert_eq!(api.count(LIST), 1);
    api.assert_nothing_written();
    assert_clean_output(&daemon.log());
}

// ---------------------------------------------------------------- failing fast

#[test]
fn once_with_nothing_listening_fails_within_seconds_with_one_line_saying_what_to_do() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let env = env(&url, &ecr, &[("LOG_LEVEL", "INFO")]);
    let started = Instant::now();
    let finished = run(&pairs(&env), &["--once"], LIMIT);
    let elapsed = started.elapsed();
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let problems: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("WARNING") || l.starts_with("ERROR"))
        .collect();
    assert_eq!(problems.len(), 1, "{output}");
    let line = problems[0];
    for needle in [
        url.as_str(),
        "kubectl proxy",
        "KUBERNETES_API_ENDPOINT",
        "in-cluster",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from {line}");
    }
    assert_clean_output(&output);
}

#[test]
fn a_watch_of_endless_new_namespaces_serves_a_bounded_number_until_the_next_refresh() {
    const SENT: usize = 10_050;
    let api = HostileApi::start(|request, _, stream| {
        if request.path.starts_with(WATCH) {
            let mut body = String::new();
            for i in 0..SENT {
                body.push_str(&format!(
                    "{{\"type\":\"ADDED\",\"object\":{{\"metadata\":{{\"name\":\"ns-{i}\",\"resourceVersion\":\"{i}\"}}}}}}\n"
                ));
            }
            respond(stream, 200, "application/json", body.as_bytes());
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &namespace_list(&[], ""));
        } else if request.method == "POST" {
            respond_json(
                stream,
                201,
                &json!({"kind": "Secret", "metadata": {"name": SECRET, "uid": "u"},
                        "type": "kubernetes.io/dockerconfigjson"}),
            );
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(
        &api,
        &[
            ("ECR_CREATE_MISSING", "true"),
            ("LOG_LEVEL", "WARNING"),
            // 1,161 of the names match; those sent after the first 10,000 events (ns-10000 to
            // ns-10049) must not be served.
            ("ECR_NAMESPACES", "ns-1*"),
        ],
    );
    let log = daemon.wait_for_log(
        "namespace watch: 10000 namespaces served since the last refresh",
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(2));
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1 + 10 + 100 + 1000, "{log}");
    assert_eq!(api.count(WATCH), 1);
    for i in 10_000..SENT {
        assert_eq!(api.count(&format!("/api/v1/namespaces/ns-{i}/")), 0);
    }
    assert_peak_rss(&mut daemon, "10,050 watched namespaces");
    assert_clean_output(&daemon.log());
}

#[test]
fn a_list_of_more_namespaces_than_the_cap_is_refused_before_any_is_served() {
    let api = HostileApi::start(|request, _, stream| {
        let page = |from: usize, to: usize, next: &str| {
            let names: Vec<String> = (from..to).map(|i| format!("{i:0>63}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            namespace_list(&names, next)
        };
        if request.path.contains("continue=") {
            respond_json(stream, 200, &page(49_999, 50_001, ""));
        } else if request.path.starts_with(LIST) {
            respond_json(stream, 200, &page(0, 49_999, "more"));
        } else {
            not_found(stream);
        }
    });
    let (mut daemon, _ecr) = start_daemon(&api, &[]);
    let log = daemon.wait_for_log("listing namespaces failed", LIMIT);
    let peak = assert_peak_rss(&mut daemon, "50,001 namespaces");
    assert!(
        log.contains("protocol error: more than 50000 namespaces"),
        "{log}"
    );
    assert_eq!(api.requests().len(), 2, "no namespace served");
    assert_clean_output(&daemon.log());
    eprintln!("peak RSS with 50,001 listed namespaces of 63 characters: {peak} KiB");
}

#[test]
fn a_list_that_trickles_forever_is_abandoned_after_bounded_attempts_and_once_returns() {
    use std::io::Write;
    let api = HostileApi::start(|request, _, stream| {
        if !request.path.starts_with(LIST) {
            // The RBAC preflight's review: "not served here", so the list is what trickles.
            return not_found(stream);
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{\"items\":[";
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        while stream.write_all(b" ").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (finished, elapsed) = run_once(&api, &[("ECR_HTTP_TIMEOUT", "1")]);
    let output = finished.output();
    assert_eq!(finished.status, 1, "{output}");
    assert_eq!(
        api.count(LIST),
        3,
        "the request's own attempts, no outer loop"
    );
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    assert!(output.contains("did not answer"), "{output}");
    assert_clean_output(&output);
}
