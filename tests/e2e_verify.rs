//! End-to-end registry verification with real peers: Debian's `docker-registry` serving TLS with
//! a CA made here (given to the daemon through `AWS_CA_BUNDLE`) and htpasswd auth, reached
//! through `ECR_REGISTRY_CONNECT_TO` under the very host name moto's `proxyEndpoint` gives
//! (`123456789012.dkr.ecr.eu-west-1.amazonaws.com:443`), with moto (SigV4 checking on) as ECR.
//! moto's token decodes to `AWS:123456789012-auth-token`.
//!
//! - the right password in the registry's htpasswd: verified, `verified-at` on the secret;
//! - another password: refused. `warn` writes with an error; `enforce` leaves every secret as
//!   it was and `--once` exits 1.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ecrupdater_testkit::FakeKube;
use serde_json::{Value, json};

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const VERIFIED: &str = "k8s-ecrupdater/verified-at";

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

/// A test CA (`ca.pem`) and a server certificate for `host` signed by it (`server.pem`,
/// `server.key`), made with the openssl CLI.
fn make_certificates(dir: &Path, host: &str) {
    let p = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=ecrupdater test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    sh(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
            "-subj",
            &format!("/CN={host}"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("ext file");
    sh(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("server.pem"),
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
        ],
    );
}

/// docker-registry with TLS and htpasswd auth for `AWS:password`, on a free 127.0.0.1 port.
fn start_tls_registry(dir: &Path, password: &str) -> Peer {
    let htpasswd = sh("htpasswd", &["-Bbn", "AWS", password]);
    std::fs::write(dir.join("htpasswd"), htpasswd.trim()).expect("htpasswd file");
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: test-only-http-secret\n  tls:\n    certificate: {}\n    key: {}\n\
         auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        dir.join("data").display(),
        dir.join("server.pem").display(),
        dir.join("server.key").display(),
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

/// A cluster with one existing pull secret (`app`, holding an old login) and one namespace
/// without (`fresh`).
fn cluster() -> RbacKube {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    kube.add_namespace("fresh", &[]);
    let old = base64_of(&json!({"auths": {REGISTRY: {"username": "AWS", "password": "old", "auth": base64_of_str("AWS:old")}}}).to_string());
    kube.put_secret(
        "app",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": "app"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": old},
        }),
    );
    kube
}

fn base64_of_str(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn base64_of(s: &str) -> String {
    base64_of_str(s)
}

struct Setup {
    _moto: Peer,
    _registry: Peer,
    kube: RbacKube,
    dir: std::path::PathBuf,
    moto_url: String,
    registry_port: u16,
    keys: MotoKeys,
}

fn setup(name: &str, registry_password: &str) -> Setup {
    let dir = temp_dir(name);
    make_certificates(&dir, REGISTRY);
    let registry = start_tls_registry(&dir, registry_password);
    let (moto, keys) = start_moto();
    Setup {
        moto_url: format!("http://127.0.0.1:{}", moto.port),
        registry_port: registry.port,
        _moto: moto,
        _registry: registry,
        kube: cluster(),
        dir,
        keys,
    }
}

fn run_once(s: &Setup, mode: &str) -> Finished {
    run_with_ca(s, mode, &s.dir.join("ca.pem"))
}

fn run_with_ca(s: &Setup, mode: &str, ca: &Path) -> Finished {
    let kube_url = s.kube.base_url();
    let connect_to = format!("{REGISTRY}:443:127.0.0.1:{}", s.registry_port);
    run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", &s.moto_url),
            ("AWS_ACCESS_KEY_ID", &s.keys.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &s.keys.secret_access_key),
            ("KUBERNETES_API_ENDPOINT", &kube_url),
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_VERIFY", mode),
            ("AWS_CA_BUNDLE", ca.to_str().expect("utf-8")),
            ("ECR_REGISTRY_CONNECT_TO", &connect_to),
            ("LOG_LEVEL", "TRACE"),
        ],
        &["--once"],
        Duration::from_secs(90),
    )
}

fn verified_at(secret: &Value) -> Option<time::OffsetDateTime> {
    secret["metadata"]["annotations"][VERIFIED]
        .as_str()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{VERIFIED} {t:?} is not RFC 3339: {e}"))
        })
}

#[test]
#[ignore = "needs docker-registry, htpasswd, openssl, moto_server (install: apt-get install docker-registry apache2-utils openssl; pip install 'moto[server]')"]
fn the_right_password_verifies_and_every_written_secret_says_when() {
    let s = setup("verify-good", MOTO_PASSWORD);
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let run = run_once(&s, "enforce");
    let out = run.output();
    assert_eq!(run.status, 0, "{out}");
    assert_no_credentials(&out, &[MOTO_PASSWORD, &s.keys.secret_access_key]);
    assert!(
        out.contains(&format!(
            "{REGISTRY}: the registry accepts the new credentials"
        )),
        "{out}"
    );
    assert!(!out.contains("cannot verify"), "{out}");
    for ns in ["app", "fresh"] {
        let secret = s.kube.secret(ns, SECRET).expect("secret");
        let at = verified_at(&secret).unwrap_or_else(|| panic!("{ns}: no {VERIFIED}: {secret}"));
        assert!(
            at >= before && at <= time::OffsetDateTime::now_utc(),
            "{ns}: {at}"
        );
        let payload = secret["data"][".dockerconfigjson"]
            .as_str()
            .expect("payload");
        assert_ne!(
            payload,
            base64_of(&json!({"auths": {REGISTRY: {"username": "AWS", "password": "old", "auth": base64_of_str("AWS:old")}}}).to_string()),
            "{ns}: written"
        );
    }

    // Without the test CA the registry's certificate is not trusted: no answer that decides,
    // so even enforce writes (without verified-at) and the run succeeds, with a warning.
    let other_ca = s.dir.join("other-ca");
    std::fs::create_dir_all(&other_ca).expect("dir");
    make_certificates(&other_ca, REGISTRY);
    let run = run_with_ca(&s, "enforce", &other_ca.join("ca.pem"));
    let out = run.output();
    assert_eq!(run.status, 0, "{out}");
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("WARNING") && l.contains("cannot verify the new credentials"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(warnings[0].contains(REGISTRY), "{out}");
    assert_no_credentials(&out, &[MOTO_PASSWORD, &s.keys.secret_access_key]);
}

#[test]
#[ignore = "needs docker-registry, htpasswd, openssl, moto_server (install: apt-get install docker-registry apache2-utils openssl; pip install 'moto[server]')"]
fn a_registry_that_refuses_the_password_is_reported_and_enforce_writes_nothing() {
    let s = setup("verify-refused", "another-password-entirely");

    // enforce: nothing written anywhere, exit 1, the host and status named.
    let before = s.kube.secrets();
    let run = run_once(&s, "enforce");
    let out = run.output();
    assert_eq!(run.status, 1, "{out}");
    assert_no_credentials(&out, &[MOTO_PASSWORD, &s.keys.secret_access_key]);
    assert!(
        out.contains(&format!(
            "{REGISTRY}: the registry refused the new credentials (HTTP 401"
        )),
        "{out}"
    );
    assert!(out.contains("no secret was written"), "{out}");
    assert_eq!(
        s.kube.secrets(),
        before,
        "enforce leaves every secret as it was"
    );
    assert!(s.kube.secret("fresh", SECRET).is_none());
    let refusals = |kube: &FakeKube| -> Vec<(String, String)> {
        kube.events()
            .iter()
            .filter(|e| e["reason"] == "VerificationFailed")
            .map(|e| {
                assert_eq!(e["type"], "Warning");
                assert_no_credentials(&e.to_string(), &[MOTO_PASSWORD]);
                (
                    e["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    e["note"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let events = refusals(&s.kube);
    assert_eq!(
        events.iter().map(|(ns, _)| ns.as_str()).collect::<Vec<_>>(),
        ["app", "fresh"],
        "one VerificationFailed Event per target namespace: {events:?}"
    );
    assert!(
        events[0].1.contains(&format!("{REGISTRY} (HTTP 401)"))
            && events[0].1.contains("not written"),
        "{events:?}"
    );

    // warn: written, with an error, and without verified-at.
    let run = run_once(&s, "warn");
    let out = run.output();
    assert_eq!(run.status, 0, "{out}");
    assert_no_credentials(&out, &[MOTO_PASSWORD, &s.keys.secret_access_key]);
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("ERROR") && l.contains("refused the new credentials"))
        .collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains(REGISTRY) && errors[0].contains("ECR_VERIFY=warn"),
        "{out}"
    );
    let events = refusals(&s.kube);
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events[3].1.contains("written anyway"), "{events:?}");
    for ns in ["app", "fresh"] {
        let secret = s.kube.secret(ns, SECRET).expect("written in warn mode");
        assert_eq!(verified_at(&secret), None, "{ns}: {secret}");
        assert!(
            String::from_utf8_lossy(&{
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(
                        secret["data"][".dockerconfigjson"]
                            .as_str()
                            .expect("payload"),
                    )
                    .expect("base64")
            })
            .contains(MOTO_PASSWORD),
            "{ns}: the new credentials are written"
        );
    }
}
