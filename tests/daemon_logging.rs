//! What the daemon logs around its main loop, through the real binary against the fake API
//! server and fake ECR: SIGTERM while it sleeps between cycles says "shutting down" once, and a
//! namespace served through the watch is logged once at INFO, not once per step.

mod common;

use std::time::Duration;

use ecrupdater_testkit::{FakeEcr, FakeKube};

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "logging-ecr-password-0123456789abcdef";
const SECRET_KEY: &str = "logging/secret+access+key/0123456789abcd";

fn start(kube: &FakeKube, ecr: &FakeEcr, extra: &[(&str, &str)]) -> DaemonProcess {
    let kube_url = kube.base_url();
    let ecr_url = ecr.base_url();
    let mut vars = vec![
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIALOGGINGLOGGING"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
        ("LOG_LEVEL", "INFO"),
    ];
    vars.extend_from_slice(extra);
    DaemonProcess::start(&vars, &[])
}

/// Starts the daemon, waits for its first cycle and the wait after it, then sends SIGTERM.
fn stopped_log() -> String {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&kube, &ecr, &[("ECR_CREATE_MISSING", "false")]);
    daemon.wait_for_log("next refresh in", Duration::from_secs(20));
    let (status, log) = daemon.stop();
    assert_eq!(status, 0, "SIGTERM ends the daemon with status 0:\n{log}");
    assert_no_credentials(&log, &[PASSWORD, SECRET_KEY]);
    log
}

#[test]
fn sigterm_logs_shutting_down_while_sleeping() {
    let log = stopped_log();
    assert_eq!(log.matches("shutting down").count(), 1, "{log}");
}

#[test]
fn a_namespace_served_through_the_watch_is_logged_once() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("existing", &[]);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let mut daemon = start(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    daemon.wait_for_log("next refresh in", Duration::from_secs(20));
    kube.add_namespace("arrived", &[]);
    let log = daemon.wait_for_log("arrived", Duration::from_secs(20));
    // Give a second line, if any, time to follow the first.
    std::thread::sleep(Duration::from_millis(300));
    assert!(kube.secret("arrived", SECRET).is_some(), "served:\n{log}");
    let (status, log) = daemon.stop();
    assert_eq!(status, 0, "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("arrived")).collect();
    assert_eq!(lines.len(), 1, "one line for the new namespace: {lines:#?}");
    assert!(
        lines[0].contains("arrived/ecr-pull: created"),
        "the line says what was done: {}",
        lines[0]
    );
}
