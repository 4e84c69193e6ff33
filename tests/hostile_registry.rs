//! Registry verification against registries of this test on 127.0.0.1 (TLS with a CA made by
//! the testkit, given through `AWS_CA_BUNDLE`; the fake ECR names the registry as its
//! `proxyEndpoint`): a registry that checks the Basic credentials gives `verified-at` and
//! `ecrupdater_registry_verified{host} 1`; a hostile one that answers 401 with the password
//! echoed in an 8 MiB body gives one bounded error line with no piece of the password, a peak
//! RSS under the bound, and `ecrupdater_registry_verified{host} 0`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater_testkit::http::{Handler, Reply, Request, Response, Server};

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "hostile-registry-password-0123456789";
/// Peak RSS bound (the pod's limit is 64 MiB), as in the hostile AWS tests.
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// A registry: 200 to `AWS:PASSWORD`, else 401 with `body(authorization)`.
struct Registry(fn(&str) -> Vec<u8>);

impl Handler for Registry {
    fn handle(&self, req: Request) -> Reply {
        let auth = req.header("Authorization").unwrap_or("").to_string();
        let good = format!("Basic {}", STANDARD.encode(format!("AWS:{PASSWORD}")));
        if req.path == "/v2/" && auth == good {
            Reply::Full(Response::new(200, "application/json", "{}"))
        } else {
            Reply::Full(
                Response::new(401, "application/json", (self.0)(&auth))
                    .with_header("WWW-Authenticate", "Basic realm=\"test\""),
            )
        }
    }
}

/// A registry that wants a bearer token, as ECR Public does: `/v2/` always answers 401 with a
/// `Bearer` challenge whose realm is `/token` on its own host (or, with `elsewhere`, on another
/// host); `/token` answers 200 to `AWS:PASSWORD` only.
struct BearerRegistry {
    elsewhere: bool,
}

impl Handler for BearerRegistry {
    fn handle(&self, req: Request) -> Reply {
        let auth = req.header("Authorization").unwrap_or("").to_string();
        let good = format!("Basic {}", STANDARD.encode(format!("AWS:{PASSWORD}")));
        let host = req.header("Host").unwrap_or("").to_string();
        if req.path == "/token" && auth == good {
            return Reply::Full(Response::new(200, "application/json", r#"{"token":"t"}"#));
        }
        let realm_host = if self.elsewhere {
            "elsewhere.example:443"
        } else {
            host.as_str()
        };
        Reply::Full(
            Response::new(401, "application/json", r#"{"errors":[{"code":"DENIED"}]}"#)
                .with_header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="https://{realm_host}/token",service="test-registry""#
                    ),
                ),
        )
    }
}

struct Setup {
    _registry: Server,
    _ecr: ecrupdater_testkit::FakeEcr,
    kube: RbacKube,
    env: Vec<(String, String)>,
    host: String,
}

fn setup(body: fn(&str) -> Vec<u8>, password: &str) -> Setup {
    setup_with(Arc::new(Registry(body)), password)
}

fn setup_with(handler: Arc<dyn Handler>, password: &str) -> Setup {
    let (tls, ca_pem) = ecrupdater_testkit::tls::server_config().expect("tls");
    let registry = Server::start(0, Some(tls), handler).expect("registry");
    let host = format!("127.0.0.1:{}", registry.port());
    let dir = temp_dir("hostile-registry");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("ca");
    let (ecr, _) = fake_ecr_with(password);
    ecr.set_proxy_endpoint(&format!("https://{host}"));
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    let env = [
        ("K8S_PULL_SECRET_NAME", SECRET.to_string()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ENDPOINT_URL", ecr.base_url()),
        ("AWS_ACCESS_KEY_ID", "AKIAHOSTILEREG".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "hostile-registry-secret-key".into(),
        ),
        ("KUBERNETES_API_ENDPOINT", kube.base_url()),
        ("ECR_CREATE_MISSING", "true".into()),
        ("ECR_VERIFY", "warn".into()),
        ("AWS_CA_BUNDLE", ca.to_str().expect("utf-8").into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Setup {
        _registry: registry,
        _ecr: ecr,
        kube,
        env,
        host,
    }
}

fn daemon(s: &Setup) -> DaemonProcess {
    let env: Vec<(&str, &str)> = s
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    DaemonProcess::start(&env, &[])
}

fn verified_metric(d: &mut DaemonProcess, host: &str) -> Option<f64> {
    let port = d.health_port();
    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{text}");
    metric_samples(&text)
        .get(&format!("ecrupdater_registry_verified{{host=\"{host}\"}}"))
        .copied()
}

#[test]
fn a_registry_that_accepts_the_login_gives_verified_at_and_the_metric() {
    let s = setup(|_| b"{}".to_vec(), PASSWORD);
    let mut d = daemon(&s);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    assert!(
        log.contains("the registry accepts the new credentials"),
        "{log}"
    );
    let secret = s.kube.secret("app", SECRET).expect("created");
    assert!(
        secret["metadata"]["annotations"]["k8s-ecrupdater/verified-at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{secret}"
    );
    assert_eq!(verified_metric(&mut d, &s.host), Some(1.0));
    let port = d.health_port();
    let (_, text) = http_get(port, "/metrics");
    let at = metric_samples(&text)[&format!(
        "ecrupdater_registry_verified_timestamp_seconds{{host=\"{}\"}}",
        s.host
    )];
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!((now - 60.0..=now + 1.0).contains(&at), "{at} vs {now}");
}

#[test]
fn an_existing_secret_updated_after_a_verdict_has_verified_at_renewed_or_removed() {
    // An accepting registry and a refusing one (another password): the first update renews a
    // stale `verified-at`, the second removes it, as a secret written with unproven
    // credentials must not claim a proof.
    for (password, verified) in [
        (PASSWORD, true),
        ("hostile-other-password-0123456789", false),
    ] {
        let s = setup(|_| b"{}".to_vec(), password);
        s.kube.put_secret(
            "app",
            serde_json::json!({"metadata": {"name": SECRET,
                    "annotations": {"k8s-ecrupdater/verified-at": "2020-01-01T00:00:00Z"}},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": STANDARD.encode(r#"{"auths":{}}"#)}}),
        );
        let env: Vec<(&str, &str)> = s
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = run(&env, &["--once"], Duration::from_secs(60));
        assert_eq!(out.status, 0, "{}", out.output());
        assert!(
            out.output().contains("0 created, 1 updated"),
            "{}",
            out.output()
        );
        let secret = s.kube.secret("app", SECRET).expect("updated");
        let annotation = &secret["metadata"]["annotations"]["k8s-ecrupdater/verified-at"];
        if verified {
            let at = annotation.as_str().unwrap_or_default();
            assert!(at.ends_with('Z') && at > "2026-", "renewed: {secret}");
        } else {
            assert!(annotation.is_null(), "removed: {secret}");
        }
    }
}

#[test]
fn a_hostile_refusal_is_bounded_masked_and_written_anyway_in_warn_mode() {
    // The other password makes the registry refuse; its answer echoes what it got, 8 MiB long.
    let s = setup(
        |auth| {
            let mut body =
                format!("{{\"echo\":\"{auth} AWS:hostile-other-password-0123456789\",\"pad\":\"")
                    .into_bytes();
            body.resize(8 * 1024 * 1024, b'x');
            body
        },
        "hostile-other-password-0123456789",
    );
    let mut d = daemon(&s);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    let peak = d.peak_rss_kib();
    eprintln!("peak RSS (VmHWM) after an 8 MiB 401 from the registry: {peak} KiB");
    assert!(peak < RSS_BOUND_KIB, "{peak} KiB");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ERROR") && l.contains("refused the new credentials"))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(&s.host) && errors[0].contains("HTTP 401"),
        "{}",
        errors[0]
    );
    assert!(errors[0].len() < 600, "bounded: {} bytes", errors[0].len());
    let basic = STANDARD.encode("AWS:hostile-other-password-0123456789");
    assert_no_credentials(&log, &["hostile-other-password-0123456789", &basic]);
    let secret = s.kube.secret("app", SECRET).expect("written in warn mode");
    assert!(
        secret["metadata"]["annotations"]
            .get("k8s-ecrupdater/verified-at")
            .is_none(),
        "{secret}"
    );
    assert_eq!(verified_metric(&mut d, &s.host), Some(0.0));
}

#[test]
fn a_bearer_challenge_is_followed_on_the_registry_host_only() {
    // The right password through the token endpoint: verified.
    let s = setup_with(Arc::new(BearerRegistry { elsewhere: false }), PASSWORD);
    let mut d = daemon(&s);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    assert!(
        log.contains("the registry accepts the new credentials"),
        "{log}"
    );
    assert_eq!(verified_metric(&mut d, &s.host), Some(1.0));
    drop(d);

    // Another password: the token endpoint refuses it.
    let s = setup_with(
        Arc::new(BearerRegistry { elsewhere: false }),
        "another-password-0123456789",
    );
    let mut d = daemon(&s);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    assert!(
        log.lines().any(|l| l.starts_with("ERROR")
            && l.contains("refused the new credentials (HTTP 401: token endpoint")),
        "{log}"
    );
    drop(d);

    // A realm on another host is not followed: the credential goes nowhere else.
    let s = setup_with(Arc::new(BearerRegistry { elsewhere: true }), PASSWORD);
    let mut d = daemon(&s);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    assert!(
        log.lines().any(|l| l.starts_with("WARNING")
            && l.contains(
                "cannot verify the new credentials (HTTP 401 with a bearer challenge not on"
            )),
        "{log}"
    );
    assert_no_credentials(&log, &[PASSWORD]);
}
