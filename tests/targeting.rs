//! Integration: targeting at scale, against the fake API server and fake ECR over real sockets.
//! Namespace selection (globs, skip list, label selector), new namespaces served from the watch
//! within seconds with the cached token, a 410 during the watch, several regions and ECR Public
//! in one secret, service accounts, and the steady-state request budget.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater::config::{Config, Env, Flags};
use ecrupdater::daemon::Daemon;
use ecrupdater::health::Health;
use ecrupdater_testkit::{FakeEcr, FakeKube, Fault, FaultKind};
use serde_json::{Value, json};

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "targeting-password-0123456789abcdef";
const SECRET_KEY: &str = "targeting/secret/key/0123456789abcdefgh";

fn ecr() -> FakeEcr {
    fake_ecr_with(PASSWORD).0
}

fn env_for(kube: &FakeKube, ecr: &FakeEcr, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("K8S_PULL_SECRET_NAME".into(), SECRET.into()),
        ("AWS_REGION".into(), "eu-west-1".into()),
        ("AWS_ENDPOINT_URL".into(), ecr.base_url()),
        ("AWS_ACCESS_KEY_ID".into(), "AKIATARGETING".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ("KUBERNETES_API_ENDPOINT".into(), kube.base_url()),
        ("LOG_LEVEL".into(), "DEBUG".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn run_once(kube: &FakeKube, ecr: &FakeEcr, extra: &[(&str, &str)]) -> Finished {
    let env = env_for(kube, ecr, extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let finished = run(&pairs, &["--once"], Duration::from_secs(60));
    assert_no_credentials(&finished.output(), &[PASSWORD, SECRET_KEY]);
    assert_nothing_forbidden(kube);
    finished
}

fn with_secret(kube: &FakeKube) -> Vec<String> {
    let mut names: Vec<String> = kube
        .secrets()
        .into_iter()
        .filter(|(_, s)| s["metadata"]["name"] == SECRET)
        .map(|(ns, _)| ns)
        .collect();
    names.sort();
    names
}

fn auths(secret: &Value) -> Value {
    let raw = STANDARD
        .decode(
            secret["data"][".dockerconfigjson"]
                .as_str()
                .expect("payload"),
        )
        .expect("base64");
    serde_json::from_slice::<Value>(&raw).expect("json")["auths"].clone()
}

/// The daemon running in the background, after its first cycle.
fn start_daemon(kube: &FakeKube, ecr: &FakeEcr, extra: &[(&str, &str)]) -> DaemonProcess {
    let env = env_for(kube, ecr, extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut daemon = DaemonProcess::start(&pairs, &[]);
    daemon.wait_for_log("next refresh in", Duration::from_secs(30));
    daemon
}

fn wait_for_secret(kube: &FakeKube, namespace: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while kube.secret(namespace, SECRET).is_none() {
        assert!(
            start.elapsed() < limit,
            "no secret in {namespace} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

#[test]
fn globs_skip_list_and_label_selector_pick_exactly_the_right_namespaces() {
    let kube = kube_with_shipped_rbac();
    for (ns, env) in [
        ("team-a", "prod"),
        ("team-b", "dev"),
        ("team-legacy", "prod"),
        ("shared", "prod"),
        ("other", "prod"),
        ("kube-system", "prod"),
    ] {
        kube.add_namespace(ns, &[("env", env)]);
    }
    let ecr = ecr();
    let out = run_once(
        &kube,
        &ecr,
        &[
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_NAMESPACES", "team-*,shared,kube-*"),
            ("ECR_SKIP_NAMESPACES", "*-legacy,kube-system"),
        ],
    );
    assert_eq!(out.status, 0, "{}", out.output());
    assert_eq!(with_secret(&kube), ["shared", "team-a", "team-b"]);

    let kube2 = kube_with_shipped_rbac();
    for (ns, env) in [("team-a", "prod"), ("team-b", "dev"), ("shared", "staging")] {
        kube2.add_namespace(ns, &[("env", env)]);
    }
    let out = run_once(
        &kube2,
        &ecr,
        &[
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_NAMESPACE_SELECTOR", "env in (prod,staging)"),
        ],
    );
    assert_eq!(out.status, 0, "{}", out.output());
    assert_eq!(with_secret(&kube2), ["shared", "team-a"]);
    // The selector went to the server, URL-encoded, not filtered here.
    assert!(
        kube2
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1/namespaces"
                && r.query
                    .contains("labelSelector=env%20in%20%28prod%2Cstaging%29")),
        "{:?}",
        kube2
            .requests()
            .iter()
            .map(|r| r.query.clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_new_namespace_gets_its_secret_within_seconds_from_the_cached_token() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("existing", &[]);
    let ecr = ecr();
    let mut daemon = start_daemon(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    assert_eq!(ecr.requests().len(), 1);
    // Give the daemon a moment to open its watch, then create a namespace.
    std::thread::sleep(Duration::from_millis(300));
    kube.add_namespace("brand-new", &[]);
    let latency = wait_for_secret(&kube, "brand-new", Duration::from_secs(10));
    eprintln!("new-namespace latency: {:.3} s", latency.as_secs_f64());
    assert!(
        latency < Duration::from_secs(2),
        "served in {latency:?}, the goal is under 2 s"
    );
    assert_eq!(
        ecr.requests().len(),
        1,
        "the cached token serves it: no AWS call"
    );
    daemon.wait_for_log("brand-new: new namespace served", Duration::from_secs(5));
    // A namespace outside the selection is ignored by the watch as well.
    kube.delete_namespace("existing");
    assert_no_credentials(&daemon.log(), &[PASSWORD, SECRET_KEY]);
}

#[test]
fn a_410_during_the_watch_leads_to_a_relist_and_no_missed_namespace() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("first", &[]);
    let ecr = ecr();
    // The first watch request is cut: the daemon waits a second and watches again from the
    // resourceVersion it had, which by then has been compacted away.
    kube.inject(Fault::new(
        Some("GET"),
        "/api/v1/namespaces?watch=true",
        FaultKind::Reset,
    ));
    let mut daemon = start_daemon(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    daemon.wait_for_log("namespace watch failed", Duration::from_secs(10));
    kube.add_namespace("while-away", &[]);
    kube.compact();
    wait_for_secret(&kube, "while-away", Duration::from_secs(10));
    daemon.wait_for_log("expired (410); listing again", Duration::from_secs(5));
    // And the watch goes on after the re-list.
    kube.add_namespace("after", &[]);
    wait_for_secret(&kube, "after", Duration::from_secs(10));
}

#[test]
fn two_regions_mean_two_token_calls_and_one_secret_holding_both_hosts() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    let ecr = ecr();
    ecr.set_password_per_region(true);
    let out = run_once(
        &kube,
        &ecr,
        &[
            ("ECR_CREATE_MISSING", "true"),
            (
                "ECR_REGISTRIES",
                "111111111111.dkr.ecr.eu-west-1.amazonaws.com,222222222222.dkr.ecr.us-east-1.amazonaws.com,\
                 333333333333.dkr.ecr.eu-west-1.amazonaws.com,public.ecr.aws",
            ),
        ],
    );
    assert_eq!(out.status, 0, "{}", out.output());
    // eu-west-1 and us-east-1 (private), and ECR Public: three calls for four hosts.
    assert_eq!(ecr.requests().len(), 3);
    let auths = auths(&kube.secret("app", SECRET).expect("secret"));
    assert_eq!(auths.as_object().expect("auths").len(), 4);
    assert_eq!(
        auths["111111111111.dkr.ecr.eu-west-1.amazonaws.com"]["password"],
        format!("{PASSWORD}-eu-west-1")
    );
    assert_eq!(
        auths["333333333333.dkr.ecr.eu-west-1.amazonaws.com"]["password"],
        format!("{PASSWORD}-eu-west-1")
    );
    assert_eq!(
        auths["222222222222.dkr.ecr.us-east-1.amazonaws.com"]["password"],
        format!("{PASSWORD}-us-east-1")
    );
    assert_eq!(
        auths["public.ecr.aws"]["password"],
        format!("{PASSWORD}-us-east-1")
    );
    let out = out.output();
    assert_no_credentials(
        &out,
        &[
            &format!("{PASSWORD}-eu-west-1"),
            &format!("{PASSWORD}-us-east-1"),
        ],
    );
}

const SERVICE_ACCOUNTS_VARIANT: &str = "example_deployment/variants/service-accounts";

#[test]
fn service_accounts_gain_exactly_one_entry_and_keep_the_others() {
    // The variant as shipped: its Deployment's ECR_SERVICE_ACCOUNTS and its RBAC.
    let kube = FakeKube::start();
    let shipped = enforce_shipped_rbac(&kube, SERVICE_ACCOUNTS_VARIANT);
    let configured: Vec<(String, String)> = shipped
        .daemon_env()
        .into_iter()
        .filter(|(k, _)| k == "ECR_SERVICE_ACCOUNTS")
        .collect();
    assert_eq!(
        configured,
        [("ECR_SERVICE_ACCOUNTS".to_string(), "default".to_string())]
    );
    kube.add_namespace("app", &[]);
    kube.put_service_account(
        "app",
        json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "other"}]}),
    );
    let ecr = ecr();
    for _ in 0..2 {
        let out = run_once(
            &kube,
            &ecr,
            &[
                ("ECR_CREATE_MISSING", "true"),
                ("ECR_SERVICE_ACCOUNTS", "default"),
            ],
        );
        assert_eq!(out.status, 0, "{}", out.output());
    }
    let default = kube.service_account("app", "default").expect("default");
    assert_eq!(
        default["imagePullSecrets"],
        json!([{"name": "other"}, {"name": SECRET}])
    );

    // More names: the variant says to list them in its role's resourceNames too. Done, each
    // gains the entry once and a missing one is left alone.
    let kube = FakeKube::start();
    let mut objects = shipped.objects.clone();
    let role = objects
        .iter_mut()
        .find(|o| {
            o["kind"] == "ClusterRole" && o["metadata"]["name"] == "ecr-updater-serviceaccounts"
        })
        .expect("the variant's service-account role");
    role["rules"][0]["resourceNames"] = json!(["default", "builder", "absent"]);
    kube.enforce_rbac(
        ecrupdater_testkit::kube::rbac::Rbac::from_objects(&objects).expect("rbac"),
        shipped.daemon_user().expect("user"),
    );
    kube.add_namespace("app", &[]);
    kube.put_service_account(
        "app",
        json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "other"}]}),
    );
    kube.put_service_account("app", json!({"metadata": {"name": "builder"}}));
    let extra = [
        ("ECR_CREATE_MISSING", "true"),
        ("ECR_SERVICE_ACCOUNTS", "default,builder,absent"),
    ];
    for _ in 0..2 {
        let out = run_once(&kube, &ecr, &extra);
        assert_eq!(out.status, 0, "{}", out.output());
    }
    let default = kube.service_account("app", "default").expect("default");
    assert_eq!(
        default["imagePullSecrets"],
        json!([{"name": "other"}, {"name": SECRET}])
    );
    let builder = kube.service_account("app", "builder").expect("builder");
    assert_eq!(builder["imagePullSecrets"], json!([{"name": SECRET}]));
    assert!(
        kube.service_account("app", "absent").is_none(),
        "a missing service account is left alone"
    );

    // Without that change the shipped RBAC refuses the other names, and the daemon says so.
    let kube = FakeKube::start();
    enforce_shipped_rbac(&kube, SERVICE_ACCOUNTS_VARIANT);
    kube.add_namespace("app", &[]);
    kube.put_service_account("app", json!({"metadata": {"name": "builder"}}));
    let env = env_for(&kube, &ecr, &extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run(&pairs, &["--once"], Duration::from_secs(60));
    assert!(
        out.output().lines().any(|l| l.starts_with("ERROR")
            && l.contains("app/builder")
            && l.contains("serviceaccounts \"builder\" is forbidden")),
        "{}",
        out.output()
    );
    assert_eq!(
        kube.forbidden_requests(),
        [
            "GET /api/v1/namespaces/app/serviceaccounts/builder",
            "GET /api/v1/namespaces/app/serviceaccounts/absent"
        ]
    );
    assert!(kube.service_account("app", "builder").expect("builder")["imagePullSecrets"].is_null());
}

#[test]
fn steady_state_sends_only_the_updates_and_the_paged_list() {
    let kube = kube_with_shipped_rbac();
    let n = 1200;
    for i in 0..n {
        kube.add_namespace(&format!("ns-{i:04}"), &[]);
    }
    let ecr = ecr();
    let env = env_for(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    let env = Env::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let config = Config::from_env(&env, Flags::default()).expect("config");
    let mut daemon = Daemon::from_config(config, Health::new()).expect("daemon");

    let first = daemon.cycle(true).expect("first cycle");
    assert_eq!(first.created(), n);
    // A new token (as every refresh brings), then the steady-state cycle.
    ecr.set_token("AWS", "the-next-password-abcdefghijklmnop", 4.0e9);
    kube.clear_requests();
    let second = daemon.cycle(true).expect("second cycle");
    assert_eq!(second.updated(), n);
    let requests = kube.requests();
    let patches = requests.iter().filter(|r| r.method == "PATCH").count();
    let lists = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces")
        .count();
    assert_eq!(patches, n);
    assert_eq!(lists, n.div_ceil(500));
    assert_eq!(requests.len(), n + n.div_ceil(500), "nothing else is sent");
    // Every secret holds the new password.
    let secret = kube.secret("ns-0042", SECRET).expect("secret");
    let host = auths(&secret)
        .as_object()
        .expect("auths")
        .keys()
        .next()
        .expect("a host")
        .clone();
    assert_eq!(
        auths(&secret)[&host]["password"],
        "the-next-password-abcdefghijklmnop"
    );

    // A secret deleted and re-created by someone else is noticed by the uid precondition.
    let uid_before = kube.secret("ns-0007", SECRET).expect("secret")["metadata"]["uid"].clone();
    kube.delete_namespace("ns-0007");
    kube.add_namespace("ns-0007", &[]);
    kube.put_secret(
        "ns-0007",
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockercfg",
               "data": {".dockercfg": STANDARD.encode(r#"{"https://x":{"auth":"eDp5"}}"#)}}),
    );
    assert_ne!(
        kube.secret("ns-0007", SECRET).expect("secret")["metadata"]["uid"],
        uid_before
    );
    ecr.set_token("AWS", "a-third-password-abcdefghijklmnopq", 4.0e9);
    let third = daemon.cycle(true).expect("third cycle");
    assert_eq!(third.failures(), Vec::<(&str, &str)>::new());
    let recreated = kube.secret("ns-0007", SECRET).expect("secret");
    assert_eq!(
        recreated["type"], "kubernetes.io/dockercfg",
        "the type of the new secret is respected"
    );
    assert_nothing_forbidden(&kube);
}
