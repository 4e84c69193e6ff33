//! The settings of the credential checks refused by the real binary: a bad `ECR_VERIFY`,
//! `AWS_CA_BUNDLE` or `ECR_REGISTRY_CONNECT_TO` exits 2 with one line naming the variable,
//! before any request (both the API server and ECR point at a listener that counts connections).

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

#[test]
fn bad_check_settings_exit_2_naming_the_variable_before_any_request() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let dir = temp_dir("checks-config");
    let no_cert = dir.join("empty.pem");
    std::fs::write(&no_cert, "just text\n").expect("write");
    let no_cert = no_cert.to_str().expect("utf-8").to_string();
    let cases: [(&str, &str, &str); 6] = [
        ("ECR_VERIFY", "strict", "must be off, warn or enforce"),
        ("AWS_CA_BUNDLE", "/nonexistent/ca.pem", "cannot read"),
        ("AWS_CA_BUNDLE", "/dev/zero", "not a regular file"),
        ("AWS_CA_BUNDLE", &no_cert, "holds no PEM certificate"),
        (
            "ECR_REGISTRY_CONNECT_TO",
            "reg.example:443:127.0.0.1",
            "not four fields",
        ),
        (
            "ECR_REGISTRY_CONNECT_TO",
            "reg.example:443:127.0.0.1:99999",
            "not 1 to 65535",
        ),
    ];
    for (name, value, problem) in cases {
        let run = run(
            &[
                ("K8S_PULL_SECRET_NAME", "ecr-pull"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", &url),
                ("AWS_ACCESS_KEY_ID", "AKIACHECKS"),
                ("AWS_SECRET_ACCESS_KEY", "checks-secret-key"),
                ("KUBERNETES_API_ENDPOINT", &url),
                (name, value),
            ],
            &["--once"],
            Duration::from_secs(10),
        );
        assert_eq!(run.status, 2, "{name}={value}: {}", run.output());
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}={value}: {}", run.output());
        assert!(
            lines[0].contains(&format!("configuration error: {name}: "))
                && lines[0].contains(problem),
            "{name}={value}: {}",
            lines[0]
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no request was made");
}
