//! The log mask, exercised on purpose through the real binary: hostile servers of our own on
//! 127.0.0.1 echo the credentials the daemon sent them (whole, cut, from the middle, decoded)
//! inside error bodies, with newlines that try to forge log lines, and every output line is
//! checked: the error is reported, the credential is `***`, no piece of 16 characters of any
//! credential remains, no line was forged, and no line is over 4 KiB.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use common::fake::*;
use common::logs::assert_no_credential_piece;
use common::*;

const SECRET_KEY: &str = "masking/Secret+Access+Key/0123456789abcdefgh";
const ECR_PASSWORD: &str = "eyJwYXlsb2FkIjoibWFza2luZy1lY3ItcGFzc3dvcmQtdGVzdCIsInZlcnNpb24iOiIyIn0-masking-ecr-password-0123456789";

/// A session token as long as STS hands out (hundreds of characters).
fn session_token() -> String {
    let mut token = String::from("IQoJb3JpZ2luX2VjEMasking");
    for i in 0..24 {
        token.push_str(&format!("{i:02}Zq8Wm3Lp/x+Rt"));
    }
    token
}

/// No line is over 4 KiB, and `forged` (what a server sent after a newline) appears inside a
/// line, never at the start of one.
fn assert_lines_bounded_and_unforged(output: &str, forged: &str) {
    assert!(
        output.contains(forged),
        "the forged text was not logged at all:\n{output}"
    );
    for line in output.lines() {
        assert!(line.len() < 4096, "a line of {} bytes", line.len());
        assert!(!line.starts_with(forged), "a forged line: {line}\n{output}");
    }
}

#[test]
fn aws_credentials_echoed_in_an_error_body_are_masked() {
    let token = session_token();
    let echo_token = token.clone();
    // The ECR endpoint refuses, and echoes the secret key, a cut and a middle piece of the
    // session token, and a forged line.
    let ecr = TinyServer::start(move |_| {
        let message = format!(
            "The security token included in the request is invalid.\nINFO:ecrupdater:cycle done: 9 created\nGot key {SECRET_KEY} and token {}... (middle: {})",
            &echo_token[..150],
            &echo_token[200..260],
        );
        (
            403,
            "application/x-amz-json-1.1",
            json!({"__type": "UnrecognizedClientException", "message": message}).to_string(),
        )
    });
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let (ecr_url, kube_url) = (ecr.url(), kube.base_url());
    let out = run(
        &[
            ("K8S_PULL_SECRET_NAME", "ecr-pull"),
            ("ECR_CREATE_MISSING", "true"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
            ("AWS_ACCESS_KEY_ID", "ASIAMASKINGTEST0001"),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", token.as_str()),
            ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
            ("LOG_LEVEL", "TRACE"),
        ],
        &["--once"],
        Duration::from_secs(60),
    );
    let output = out.output();
    assert_eq!(out.status, 1, "{output}");
    assert!(!ecr.requests().is_empty(), "the daemon never asked");
    // The error reached the log (so the mask, not silence, is what hides the credential).
    assert!(output.contains("UnrecognizedClientException"), "{output}");
    assert!(output.contains("Got key ***"), "{output}");
    assert!(output.contains("and token ***"), "{output}");
    assert_no_credential_piece(&output, &[SECRET_KEY, &token]);
    assert_lines_bounded_and_unforged(&output, "INFO:ecrupdater:cycle done: 9 created");
}

#[test]
fn a_pull_secret_echoed_by_the_api_server_is_masked() {
    let (ecr, _) = fake_ecr_with(ECR_PASSWORD);
    // The API server lists one namespace, has no secret, and refuses the create with a 422
    // that echoes the body it was sent, decoded, then a forged line, padded past 4 KiB.
    let kube = TinyServer::start(|request| {
        if request.method == "GET" && request.path.starts_with("/api/v1/namespaces?") {
            let list = json!({"kind": "NamespaceList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "7"},
                "items": [{"metadata": {"name": "team-a", "uid": "u-1", "resourceVersion": "1"}}]});
            return (200, "application/json", list.to_string());
        }
        if request.method == "GET" {
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "secrets \"ecr-pull\" not found", "reason": "NotFound", "code": 404});
            return (404, "application/json", status.to_string());
        }
        let sent: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
        let encoded = sent
            .pointer("/data/.dockerconfigjson")
            .and_then(Value::as_str)
            .unwrap_or("");
        let decoded =
            String::from_utf8(STANDARD.decode(encoded).unwrap_or_default()).unwrap_or_default();
        let message = format!(
            "Secret \"ecr-pull\" is invalid: data: {encoded} ({decoded})\nINFO:ecrupdater:cycle done: 1 created, 0 updated, 0 unchanged, 0 skipped, 0 failed{}",
            " pad".repeat(2000)
        );
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "reason": "Invalid", "code": 422});
        (422, "application/json", status.to_string())
    });
    let (ecr_url, kube_url) = (ecr.base_url(), kube.url());
    let out = run(
        &[
            ("K8S_PULL_SECRET_NAME", "ecr-pull"),
            ("ECR_CREATE_MISSING", "true"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIAMASKINGTEST0002"),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
            ("LOG_LEVEL", "TRACE"),
        ],
        &["--once"],
        Duration::from_secs(60),
    );
    let output = out.output();
    let posts: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/secrets"))
        .collect();
    assert!(
        !posts.is_empty(),
        "the daemon never tried to create:\n{output}"
    );
    let sent: Value = serde_json::from_str(&posts[0].body).expect("a JSON body");
    let encoded = sent
        .pointer("/data/.dockerconfigjson")
        .and_then(Value::as_str)
        .expect("the payload")
        .to_string();
    let auth = STANDARD.encode(format!("AWS:{ECR_PASSWORD}"));
    assert_ne!(out.status, 0, "{output}");
    assert!(output.contains("is invalid: data: ***"), "{output}");
    assert!(
        output.contains("\\nINFO:ecrupdater:cycle done: 1 created"),
        "{output}"
    );
    assert_no_credential_piece(&output, &[ECR_PASSWORD, &auth, &encoded, SECRET_KEY]);
    assert_lines_bounded_and_unforged(&output, "INFO:ecrupdater:cycle done: 1 created");
}
