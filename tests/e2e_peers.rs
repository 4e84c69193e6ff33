//! End-to-end: the real binary against real third-party peers. moto's server plays AWS with
//! SigV4 checking switched on; the real `kubectl proxy` stands in front of the fake API server,
//! exactly as in the Python tool's sidecar layout. Needs `moto_server`, `python3` with boto3,
//! and `kubectl` on the PATH: each test is `#[ignore = "needs ..."]` (plain `cargo test` reports
//! it as ignored); scripts/test.sh installs the peers and runs it, and a missing one fails it.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use common::fake::*;
use common::*;

/// The password moto's GetAuthorizationToken hands out (`AWS:<password>` decoded).
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const SECRET: &str = "ecr-pull";

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn unb64(v: &Value) -> Value {
    let raw = STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("valid base64");
    serde_json::from_slice(&raw).expect("payload is JSON")
}

/// A cluster with one namespace per case the daemon must handle.
fn seeded_cluster() -> RbacKube {
    let kube = kube_with_shipped_rbac();
    for ns in [
        "app-json",
        "app-cfg",
        "app-opaque",
        "app-new",
        "kube-system",
        "dying",
    ] {
        kube.add_namespace(ns, &[]);
    }
    kube.put_secret(
        "app-json",
        json!({"metadata": {"name": SECRET, "labels": {"team": "a"}, "annotations": {"keep": "me"}},
               "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": b64(r#"{"auths":{"old.example":{"auth":"b2xkOm9sZA=="}}}"#),
                        "extra": b64("kept")}}),
    );
    kube.put_secret(
        "app-cfg",
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockercfg",
               "data": {".dockercfg": b64(r#"{"https://old.example":{"auth":"b2xkOm9sZA=="}}"#)}}),
    );
    kube.put_secret(
        "app-opaque",
        json!({"metadata": {"name": SECRET}, "type": "Opaque", "data": {"token": b64("opaque-data")}}),
    );
    kube.set_namespace_terminating("dying");
    kube
}

fn daemon_env<'a>(
    kube_url: &'a str,
    moto_url: &'a str,
    key_id: &'a str,
    secret: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("KUBERNETES_API_ENDPOINT", kube_url),
        ("ECR_CREATE_MISSING", "true"),
        ("ECR_SKIP_NAMESPACES", "kube-system"),
        ("LOG_LEVEL", "TRACE"),
    ]
}

fn assert_holds_moto_login(entry: &Value) {
    assert_eq!(entry["username"], "AWS");
    assert_eq!(entry["password"], MOTO_PASSWORD);
    let auth = STANDARD
        .decode(entry["auth"].as_str().expect("auth"))
        .expect("auth base64");
    assert_eq!(
        String::from_utf8(auth).expect("utf-8"),
        format!("AWS:{MOTO_PASSWORD}")
    );
}

#[test]
#[ignore = "needs moto_server, kubectl and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn session_credentials_refresh_every_target_through_kubectl_proxy() {
    require_peers(&["moto_server", "kubectl", "python3:boto3"]);
    let (moto, keys) = start_moto();
    let kube = seeded_cluster();
    let dir = temp_dir("e2e-good");
    let proxy = start_kubectl_proxy(&kube.base_url(), &dir);
    let kube_url = format!("http://localhost:{}", proxy.port);
    let moto_url = format!("http://127.0.0.1:{}", moto.port);
    let opaque_before = kube.secret("app-opaque", SECRET).expect("opaque secret");

    let mut env = daemon_env(
        &kube_url,
        &moto_url,
        &keys.session_access_key_id,
        &keys.session_secret_access_key,
    );
    env.push(("AWS_SESSION_TOKEN", &keys.session_token));
    let run = run(&env, &["--once"], Duration::from_secs(60));
    assert_eq!(run.status, 0, "--once should succeed:\n{}", run.output());

    // dockerconfigjson: payload replaced, other keys, labels and annotations kept.
    let json_secret = kube.secret("app-json", SECRET).expect("app-json secret");
    assert_eq!(json_secret["type"], "kubernetes.io/dockerconfigjson");
    let payload = unb64(&json_secret["data"][".dockerconfigjson"]);
    assert_eq!(payload["auths"].as_object().expect("auths").len(), 1);
    assert_holds_moto_login(&payload["auths"][REGISTRY]);
    assert_eq!(json_secret["data"]["extra"], b64("kept"));
    assert_eq!(json_secret["metadata"]["labels"]["team"], "a");
    assert_eq!(json_secret["metadata"]["annotations"]["keep"], "me");
    // moto's fixed 2015 expiry is implausible (years before the fetch): taken as fetch + 12 h.
    let expiry = json_secret["metadata"]["annotations"]["k8s-ecrupdater/token-expires-at"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .expect("an RFC 3339 expiry annotation");
    let ahead = expiry - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::hours(11) && ahead <= time::Duration::hours(12),
        "{expiry}"
    );

    // dockercfg keeps its format.
    let cfg_secret = kube.secret("app-cfg", SECRET).expect("app-cfg secret");
    assert_eq!(cfg_secret["type"], "kubernetes.io/dockercfg");
    let payload = unb64(&cfg_secret["data"][".dockercfg"]);
    assert!(payload.get("auths").is_none());
    assert_holds_moto_login(&payload[format!("https://{REGISTRY}")]);

    // Opaque: untouched, byte for byte.
    assert_eq!(
        kube.secret("app-opaque", SECRET).expect("opaque"),
        opaque_before
    );

    // Missing: created with the real credentials and the managed-by label.
    let created = kube.secret("app-new", SECRET).expect("created secret");
    assert_eq!(created["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "k8s-ecrupdater"
    );
    assert_holds_moto_login(&unb64(&created["data"][".dockerconfigjson"])["auths"][REGISTRY]);

    // Skipped and terminating namespaces get nothing.
    assert!(kube.secret("kube-system", SECRET).is_none());
    assert!(kube.secret("dying", SECRET).is_none());

    // Every request passed kubectl proxy (its Host check included): the fake saw them all.
    assert!(kube.requests().iter().any(|r| r.method == "POST"));
    let out = run.output();
    assert!(
        out.contains("1 created, 2 updated"),
        "summary line missing:\n{out}"
    );
    assert_no_credentials(
        &out,
        &[
            &keys.session_secret_access_key,
            &keys.session_token,
            MOTO_PASSWORD,
            &b64(&format!("AWS:{MOTO_PASSWORD}")),
        ],
    );
}

#[test]
#[ignore = "needs moto_server, kubectl and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn wrong_secret_key_fails_clearly_and_writes_nothing() {
    require_peers(&["moto_server", "kubectl", "python3:boto3"]);
    let (moto, keys) = start_moto();
    let kube = seeded_cluster();
    let dir = temp_dir("e2e-wrong");
    let proxy = start_kubectl_proxy(&kube.base_url(), &dir);
    let kube_url = format!("http://127.0.0.1:{}", proxy.port);
    let moto_url = format!("http://127.0.0.1:{}", moto.port);
    let before = kube.secrets();
    let wrong = "wrongwrongwrongwrongwrongwrongwrongwrong";

    let run = run(
        &daemon_env(&kube_url, &moto_url, &keys.access_key_id, wrong),
        &["--once"],
        Duration::from_secs(60),
    );
    assert_eq!(
        run.status,
        1,
        "a refused key must fail the run:\n{}",
        run.output()
    );
    let out = run.output();
    assert!(
        out.contains("ECR GetAuthorizationToken failed: HTTP 403 SignatureDoesNotMatch"),
        "the error should name the operation, status and code:\n{out}"
    );
    assert!(out.contains("no secret was written"), "{out}");
    assert_eq!(
        kube.secrets(),
        before,
        "nothing may change when the token fetch fails"
    );
    assert!(
        kube.requests().iter().all(|r| r.method == "GET"),
        "no write may be attempted: {:?}",
        kube.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert_no_credentials(&out, &[wrong, &keys.secret_access_key]);
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn wrong_session_token_is_refused_and_reported() {
    require_peers(&["moto_server", "python3:boto3"]);
    let (moto, keys) = start_moto();
    let kube = seeded_cluster();
    let moto_url = format!("http://127.0.0.1:{}", moto.port);
    let before = kube.secrets();
    let bad_token = "FQoGZXIvYXdzEBYaDwrongwrongwrongwrong";
    let base = kube.base_url();
    let mut env = daemon_env(
        &base,
        &moto_url,
        &keys.session_access_key_id,
        &keys.session_secret_access_key,
    );
    env.push(("AWS_SESSION_TOKEN", bad_token));
    let run = run(&env, &["--once"], Duration::from_secs(60));
    assert_eq!(run.status, 1, "{}", run.output());
    let out = run.output();
    assert!(out.contains("HTTP 403 InvalidClientTokenId"), "{out}");
    assert_eq!(kube.secrets(), before);
    assert_no_credentials(&out, &[bad_token, &keys.session_secret_access_key]);
}

#[test]
#[ignore = "needs moto_server, kubectl and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn a_new_namespace_is_served_through_kubectl_proxys_watch_stream() {
    require_peers(&["moto_server", "kubectl", "python3:boto3"]);
    let (moto, keys) = start_moto();
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("existing", &[]);
    let dir = temp_dir("e2e-watch");
    let proxy = start_kubectl_proxy(&kube.base_url(), &dir);
    let kube_url = format!("http://127.0.0.1:{}", proxy.port);
    let moto_url = format!("http://127.0.0.1:{}", moto.port);
    let env = daemon_env(
        &kube_url,
        &moto_url,
        &keys.access_key_id,
        &keys.secret_access_key,
    );
    let mut daemon = DaemonProcess::start(&env, &[]);
    daemon.wait_for_log("next refresh in", Duration::from_secs(30));
    assert!(kube.secret("existing", SECRET).is_some());
    // The watch request goes through the proxy, which streams the events back.
    std::thread::sleep(Duration::from_millis(300));
    kube.add_namespace("created-later", &[]);
    daemon.wait_for_log(
        "created-later: new namespace served",
        Duration::from_secs(10),
    );
    let secret = kube
        .secret("created-later", SECRET)
        .expect("secret in the new namespace");
    assert_holds_moto_login(&unb64(&secret["data"][".dockerconfigjson"])["auths"][REGISTRY]);
    assert!(
        kube.requests()
            .iter()
            .any(|r| r.query.contains("watch=true")),
        "the daemon watched through the proxy"
    );
    daemon.assert_running();
    let (status, log) = daemon.stop();
    assert_eq!(status, 0);
    assert_no_credentials(&log, &[&keys.secret_access_key, MOTO_PASSWORD]);
}
