//! End-to-end: the pull secret the daemon writes really authenticates against a real registry
//! with a real client. Debian's `docker-registry` (the CNCF distribution registry) runs on
//! 127.0.0.1 with htpasswd auth for `AWS:<the token's password>`; the fake ECR names it as its
//! `proxyEndpoint`; after `ecrupdater --once`, the secret's `.dockerconfigjson`, used as is as
//! `skopeo`'s auth file (the containers/image parser, which reads `auth` first, as the kubelet
//! does), pushes and inspects an image; the same file with another password is refused.
//! Needs `docker-registry`, `skopeo`, `htpasswd` and `python3`: `#[ignore = "needs ..."]`, run
//! (and the peers installed) by scripts/test.sh.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "registry-password:with-a-colon-0123456789";

/// Runs a command, returning (success, stdout + stderr).
fn sh(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The registry, with htpasswd auth for `AWS:password`, on a free 127.0.0.1 port.
fn start_registry(dir: &Path, password: &str) -> Peer {
    let (ok, htpasswd) = sh("htpasswd", &["-Bbn", "AWS", password]);
    assert!(ok, "htpasswd: {htpasswd}");
    std::fs::write(dir.join("htpasswd"), htpasswd.trim()).expect("htpasswd file");
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: test-only-http-secret\n\
         auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        dir.join("data").display(),
        dir.join("htpasswd").display()
    );
    std::fs::write(dir.join("config.yml"), config).expect("registry config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let peer = Peer::new(child, port);
    wait_for_port(port, Duration::from_secs(20));
    peer
}

#[test]
#[ignore = "needs docker-registry, skopeo, htpasswd and python3 (install: scripts/test.sh, or apt-get install docker-registry skopeo apache2-utils)"]
fn the_written_pull_secret_pushes_and_pulls_with_a_real_registry_client() {
    require_peers(&["docker-registry", "skopeo", "htpasswd", "python3"]);
    let dir = temp_dir("registry");
    let registry = start_registry(&dir, PASSWORD);
    let host = format!("127.0.0.1:{}", registry.port);

    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    let (ecr, _) = fake_ecr_with(PASSWORD);
    ecr.set_proxy_endpoint(&format!("https://{host}"));
    let (kube_url, ecr_url) = (kube.base_url(), ecr.base_url());
    let run = run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", &ecr_url),
            ("AWS_ACCESS_KEY_ID", "AKIAREGISTRYTEST"),
            ("AWS_SECRET_ACCESS_KEY", "registry-test-secret-key"),
            ("KUBERNETES_API_ENDPOINT", &kube_url),
            ("ECR_CREATE_MISSING", "true"),
        ],
        &["--once"],
        Duration::from_secs(60),
    );
    assert_eq!(run.status, 0, "{}", run.output());
    assert_no_credentials(&run.output(), &[PASSWORD]);

    // The secret's payload, byte for byte, is the client's auth file.
    let secret = kube.secret("app", SECRET).expect("the created secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let payload = STANDARD
        .decode(
            secret["data"][".dockerconfigjson"]
                .as_str()
                .expect("payload"),
        )
        .expect("base64");
    let doc: Value = serde_json::from_slice(&payload).expect("docker config JSON");
    assert!(
        doc["auths"].get(&host).is_some(),
        "auths names the registry host: {doc}"
    );
    let authfile = dir.join("auth.json");
    std::fs::write(&authfile, &payload).expect("auth file");
    let authfile = authfile.to_str().expect("utf-8 path");

    let layout = dir.join("layout");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/make_oci_layout.py");
    let (ok, text) = sh(
        "python3",
        &[
            script.to_str().expect("utf-8"),
            layout.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "make_oci_layout.py: {text}");
    let image = format!("docker://{host}/team/app:1");
    let source = format!("oci:{}:latest", layout.display());

    let (pushed, text) = sh(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-authfile",
            authfile,
            &source,
            &image,
        ],
    );
    assert!(
        pushed,
        "push with the pull secret's credentials failed: {text}"
    );
    let (pulled, text) = sh(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            authfile,
            &image,
        ],
    );
    assert!(
        pulled,
        "inspect with the pull secret's credentials failed: {text}"
    );
    assert!(text.contains("team/app"), "{text}");

    // The registry really checks: the same file with another password is refused.
    let wrong = String::from_utf8(payload.clone())
        .expect("utf-8")
        .replace(
            &STANDARD.encode(format!("AWS:{PASSWORD}")),
            &STANDARD.encode("AWS:not-the-password"),
        )
        .replace(
            &serde_json::to_string(PASSWORD).expect("json string"),
            "\"not-the-password\"",
        );
    assert_ne!(wrong.as_bytes(), payload.as_slice());
    std::fs::write(dir.join("wrong.json"), wrong).expect("wrong auth file");
    let wrong_path = dir.join("wrong.json");
    let (refused_ok, text) = sh(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            wrong_path.to_str().expect("utf-8"),
            &image,
        ],
    );
    assert!(!refused_ok, "a wrong password must be refused: {text}");
    assert!(
        text.contains("unauthorized") || text.contains("authentication required"),
        "{text}"
    );
}
