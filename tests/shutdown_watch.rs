//! SIGTERM says "shutting down" once and ends the daemon with status 0 wherever it waits: in the
//! namespace watch (`ECR_CREATE_MISSING=true`, a stream that stays open for minutes), in the
//! sleep between refreshes, in a watch over TLS (in-cluster), where the waits are cut into
//! slices under the TLS layer, and in the middle of a request whose answer never comes (the
//! watch's, a cycle's). Through the real binary against the fake API server and fake ECR (the
//! unanswered requests against a hostile server of our own on 127.0.0.1). Each test waits for
//! the daemon to be where it is meant to be (a line in its log, a request seen by the server),
//! never for a delay.
//!
//! The time from the signal to the exit is printed, not asserted beyond a generous bound
//! ([`DaemonProcess::stop`]'s 10 s): the promise is one second, and a loaded machine must not
//! make the test lie either way.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ecrupdater_testkit::FakeEcr;
use serde_json::{Value, json};

use common::fake::*;
use common::kube::{HostileApi, SeenRequest, respond_json};
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "shutdown-ecr-password-0123456789abcdef";
const SECRET_KEY: &str = "shutdown/secret+access+key/0123456789ab";
/// Long enough for a first cycle on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

fn start(api_url: &str, ecr: &FakeEcr, create_missing: &str) -> DaemonProcess {
    let ecr_url = ecr.base_url();
    let vars = [
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIASHUTDOWNSHUTDOWN"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("KUBERNETES_API_ENDPOINT", api_url),
        ("ECR_CREATE_MISSING", create_missing),
        ("LOG_LEVEL", "DEBUG"),
    ];
    DaemonProcess::start(&vars, &[])
}

/// Waits until `seen` holds, polling; fails the test (with the daemon's log) after [`LIMIT`].
fn wait_until(daemon: &mut DaemonProcess, what: &str, seen: impl Fn() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !seen() {
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "{what} not seen after {LIMIT:?}:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The system calls in which the daemon waits where a signal makes it log "shutting down": a
/// read of an answer (the transport wakes every 100 ms to look at the flag) or a sleep.
#[cfg(target_arch = "x86_64")]
const LOGGING_WAITS: &[u64] = &[0, 7, 35, 45, 47, 230, 271];
#[cfg(target_arch = "aarch64")]
const LOGGING_WAITS: &[u64] = &[63, 73, 101, 115, 207, 212];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const LOGGING_WAITS: &[u64] = &[];

/// Waits until the daemon's main thread is blocked in one of [`LOGGING_WAITS`]. That the server
/// has received a request does not mean the daemon has left the write (a signal there ends the
/// process at once, by design without a line: see src/shutdown.rs), and on a loaded machine it
/// can be descheduled just after it: without this, the test raced the daemon's last few
/// instructions of the write. Where `/proc/PID/syscall` cannot be read, it does not wait.
fn wait_until_blocked_waiting(daemon: &mut DaemonProcess) {
    let deadline = Instant::now() + LIMIT;
    loop {
        match daemon.blocked_in() {
            Ok(Some(call)) if LOGGING_WAITS.contains(&call) => return,
            Ok(_) => {}
            Err(e) => {
                eprintln!("cannot tell where the daemon waits ({e}); signalling it anyway");
                return;
            }
        }
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "the daemon never blocked in a logging wait ({:?}):\n{}",
            daemon.blocked_in(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGTERM; checks status 0, "shutting down" exactly once, no error line and no credential;
/// prints the time from just before the signal is sent (`kill -TERM`) to the exit seen (polled
/// every 20 ms).
fn stop_and_check(mut daemon: DaemonProcess, mode: &str) -> String {
    wait_until_blocked_waiting(&mut daemon);
    let started = Instant::now();
    let (status, log) = daemon.stop();
    let took = started.elapsed();
    eprintln!(
        "{mode}: SIGTERM to exit in {} ms (kill -TERM sent to exit seen, 20 ms polling)",
        took.as_millis()
    );
    assert_eq!(status, 0, "SIGTERM ends the daemon with status 0:\n{log}");
    assert_eq!(
        log.matches("shutting down").count(),
        1,
        "\"shutting down\" exactly once:\n{log}"
    );
    assert_no_credentials(&log, &[PASSWORD, SECRET_KEY]);
    assert!(
        !log.lines().any(|l| l.starts_with("ERROR")),
        "a shutdown is not a failure:\n{log}"
    );
    log
}

#[test]
fn sigterm_in_the_namespace_watch_logs_shutting_down_and_exits_0() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&kube.base_url(), &ecr, "true");
    daemon.wait_for_log("next refresh in", LIMIT);
    // The first cycle is done; the watch request reaching the server means the daemon now
    // waits on its stream (which the fake keeps open for the whole timeoutSeconds).
    wait_until(&mut daemon, "a watch request", || {
        kube.requests().iter().any(|r| r.is_watch())
    });
    let log = stop_and_check(daemon, "watch mode");
    assert!(
        !log.contains("namespace watch failed"),
        "a shutdown is not a watch failure:\n{log}"
    );
}

#[test]
fn sigterm_while_sleeping_between_refreshes_logs_shutting_down_and_exits_0() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&kube.base_url(), &ecr, "false");
    daemon.wait_for_log("next refresh in", LIMIT);
    stop_and_check(daemon, "sleep mode");
    assert!(
        !kube.requests().iter().any(|r| r.is_watch()),
        "sleep mode does not watch"
    );
}

/// An API server that lists no namespaces, but takes a request whose target starts with
/// `silent_on` and never answers it: the connection stays open, silent, until the daemon
/// hangs up.
fn api_silent_on(silent_on: &'static str) -> HostileApi {
    api_listing_and_silent_on(&[], silent_on)
}

/// The same, listing `namespaces`.
fn api_listing_and_silent_on(namespaces: &[&str], silent_on: &'static str) -> HostileApi {
    let items: Vec<Value> = namespaces
        .iter()
        .map(|n| json!({"metadata": {"name": n}, "status": {"phase": "Active"}}))
        .collect();
    HostileApi::start(move |request: &SeenRequest, _, stream: &mut TcpStream| {
        if request.path.starts_with(silent_on) {
            let _ = stream.set_read_timeout(None);
            let mut sink = [0u8; 256];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        } else if request.path.starts_with("/api/v1/namespaces?") {
            respond_json(
                stream,
                200,
                &json!({
                    "kind": "NamespaceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "100"},
                    "items": items
                }),
            );
        } else {
            respond_json(stream, 404, &json!({"kind": "Status", "code": 404}));
        }
    })
}

const LIST: &str = "/api/v1/namespaces?limit=";
const WATCH: &str = "/api/v1/namespaces?watch=true";

#[test]
fn sigterm_while_a_cycle_waits_for_an_answer_logs_shutting_down_and_exits_0() {
    let api = api_silent_on(LIST);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&api.url(), &ecr, "false");
    wait_until(&mut daemon, "the namespace list request", || {
        api.count(LIST) > 0
    });
    let log = stop_and_check(daemon, "sleep mode, list answer pending");
    assert!(
        !log.contains("cycle done"),
        "the cycle did not end, it was cut short:\n{log}"
    );
    api.assert_nothing_written();
}

#[test]
fn sigterm_while_a_secret_waits_for_an_answer_ends_the_cycle_there_with_no_error() {
    const SECRETS: &str = "/api/v1/namespaces/team-a/secrets/";
    let api = api_listing_and_silent_on(&["team-a"], SECRETS);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&api.url(), &ecr, "false");
    wait_until(&mut daemon, "the secret's read", || api.count(SECRETS) > 0);
    // stop_and_check: no error line; the namespace was not counted as failed.
    let log = stop_and_check(daemon, "sleep mode, secret answer pending");
    assert!(
        !log.contains("cycle done"),
        "the cycle did not end, it was cut short:\n{log}"
    );
    api.assert_nothing_written();
}

#[test]
fn sigterm_while_the_watch_waits_for_an_answer_logs_shutting_down_and_exits_0() {
    let api = api_silent_on(WATCH);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&api.url(), &ecr, "true");
    daemon.wait_for_log("next refresh in", LIMIT);
    wait_until(&mut daemon, "the watch request", || api.count(WATCH) > 0);
    let log = stop_and_check(daemon, "watch mode, answer pending");
    assert!(
        !log.contains("namespace watch failed"),
        "a shutdown is not a watch failure:\n{log}"
    );
    api.assert_nothing_written();
}

#[test]
fn sigterm_in_a_watch_over_tls_logs_shutting_down_and_exits_0() {
    let (kube, ca_pem) = tls_kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let token = "eyJhbGciOiJSUzI1NiJ9.shutdown-service-account-token.signature";
    kube.require_bearer_token(Some(token));
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let dir = temp_dir("shutdown-in-cluster");
    std::fs::write(dir.join("token"), format!("{token}\n")).expect("token");
    std::fs::write(dir.join("ca.crt"), &ca_pem).expect("ca");
    std::fs::write(dir.join("namespace"), "ecr-updater").expect("namespace");
    let (port, ecr_url) = (kube.port().to_string(), ecr.base_url());
    let vars = [
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIASHUTDOWNSHUTDOWN"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("ECR_SERVICEACCOUNT_DIR", dir.to_str().expect("utf-8")),
        ("ECR_CREATE_MISSING", "true"),
        ("LOG_LEVEL", "DEBUG"),
    ];
    let mut daemon = DaemonProcess::start(&vars, &[]);
    daemon.wait_for_log("next refresh in", LIMIT);
    wait_until(&mut daemon, "a watch request", || {
        kube.requests().iter().any(|r| r.is_watch())
    });
    // The stream works through the sliced waits: a new namespace is served from it.
    kube.add_namespace("arrived", &[]);
    daemon.wait_for_log("arrived/ecr-pull: created", LIMIT);
    let log = stop_and_check(daemon, "watch mode over TLS");
    assert!(
        !log.contains("namespace watch failed"),
        "a shutdown is not a watch failure:\n{log}"
    );
    assert_no_credentials(&log, &[token]);
}
