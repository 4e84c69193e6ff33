//! `fake-kube --help` and `fake-ecr --help` print their usage on stdout and exit 0; a bad
//! argument still prints it on stderr and exits 2.

use std::process::Command;

fn check(binary: &str, name: &str, expect: &[&str]) {
    let out = Command::new(binary).arg("--help").output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{name} --help: {stdout}");
    assert!(stdout.starts_with(&format!("usage: {name}")), "{stdout}");
    for word in expect {
        assert!(
            stdout.contains(word),
            "{name} --help lacks {word}: {stdout}"
        );
    }
    let bad = Command::new(binary).arg("--bogus").output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("\"--bogus\"") && stderr.contains(&format!("usage: {name}")),
        "{stderr}"
    );
}

#[test]
fn fake_kube_help() {
    check(
        env!("CARGO_BIN_EXE_fake-kube"),
        "fake-kube",
        &[
            "--namespaces",
            "--seed",
            "--tls-ca-out",
            "--bearer-token",
            "listening on",
        ],
    );
}

#[test]
fn fake_ecr_help() {
    check(
        env!("CARGO_BIN_EXE_fake-ecr"),
        "fake-ecr",
        &[
            "token USER PASSWORD EXPIRES_EPOCH",
            "fault",
            "requests",
            "--port",
        ],
    );
}
