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
    wait_for_watch(&kube);
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
    assert_no_credentials(&daemon.log(), &[PASSWORD, SECRET_KEY]);
    assert_nothing_forbidden(&kube);
}

/// Waits (generously) until the daemon has a namespace watch open.
fn wait_for_watch(kube: &FakeKube) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kube
        .requests()
        .iter()
        .any(|r| r.path == "/api/v1/namespaces" && r.query.contains("watch=true"))
    {
        assert!(Instant::now() < deadline, "no namespace watch after 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Requests that touched `namespace`'s objects.
fn requests_in(kube: &FakeKube, namespace: &str) -> Vec<String> {
    let prefix = format!("/api/v1/namespaces/{namespace}/");
    kube.requests()
        .iter()
        .filter(|r| r.path.starts_with(&prefix))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn the_watch_serves_only_selected_namespaces() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let ecr = ecr();
    let mut daemon = start_daemon(
        &kube,
        &ecr,
        &[
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_NAMESPACES", "team-*"),
            ("ECR_SKIP_NAMESPACES", "team-legacy*"),
        ],
    );
    assert!(kube.secret("team-a", SECRET).is_some());
    wait_for_watch(&kube);
    // Events arrive in order: once the last one is served, the two before it were seen.
    kube.add_namespace("other", &[]);
    kube.add_namespace("team-legacy-1", &[]);
    kube.add_namespace("team-b", &[]);
    wait_for_secret(&kube, "team-b", Duration::from_secs(20));
    daemon.wait_for_log("team-b: new namespace served", Duration::from_secs(10));
    for ns in ["other", "team-legacy-1"] {
        assert!(kube.secret(ns, SECRET).is_none(), "{ns} is not a target");
        assert_eq!(requests_in(&kube, ns), Vec::<String>::new(), "{ns}");
    }
    assert_nothing_forbidden(&kube);
}

#[test]
fn a_namespace_deleted_and_created_again_is_served_again_from_the_watch() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("cycled", &[]);
    let ecr = ecr();
    let mut daemon = start_daemon(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    assert!(kube.secret("cycled", SECRET).is_some());
    wait_for_watch(&kube);
    kube.delete_namespace("cycled");
    kube.add_namespace("cycled", &[]);
    // Served from the watch (not at the next refresh, an hour away).
    wait_for_secret(&kube, "cycled", Duration::from_secs(20));
    daemon.wait_for_log("cycled: new namespace served", Duration::from_secs(10));
    assert_nothing_forbidden(&kube);
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
    let kube = kube_with_rbac_of(SERVICE_ACCOUNTS_VARIANT);
    let shipped = manifests(SERVICE_ACCOUNTS_VARIANT);
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
    let kube = kube_with_rbac_of(SERVICE_ACCOUNTS_VARIANT);
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
fn service_accounts_are_served_until_all_are_done_and_again_for_a_re_created_secret() {
    let kube = kube_with_rbac_of(SERVICE_ACCOUNTS_VARIANT);
    kube.add_namespace("app", &[]);
    let ecr = ecr();
    let mut daemon = in_process(
        &kube,
        &ecr,
        &[
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_SERVICE_ACCOUNTS", "default"),
        ],
    );
    let secret_path = format!("/api/v1/namespaces/app/secrets/{SECRET}");
    let sa_path = "/api/v1/namespaces/app/serviceaccounts/default";
    let mut password = 0;
    let mut cycle = |kube: &FakeKube| {
        password += 1;
        ecr.set_token(
            "AWS",
            &format!("password-number-{password}-abcdefghijklmn"),
            4.0e9,
        );
        kube.clear_requests();
        let report = daemon.cycle(true).expect("cycle");
        assert_eq!(report.failures(), Vec::<(&str, &str)>::new());
        requests_in(kube, "app")
    };

    // A brand-new namespace whose `default` account does not exist yet: the secret is written,
    // the account looked for.
    assert_eq!(
        cycle(&kube),
        [
            format!("GET {secret_path}"),
            "POST /api/v1/namespaces/app/secrets".to_string(),
            format!("GET {sa_path}")
        ]
    );
    // It appears; the next refresh meets a conflict on the secret, so reads and writes it
    // again: the account was not done, and is served now.
    kube.put_service_account("app", json!({"metadata": {"name": "default"}}));
    kube.inject(Fault::new(Some("PATCH"), &secret_path, FaultKind::Conflict));
    assert_eq!(
        cycle(&kube),
        [
            format!("PATCH {secret_path}"),
            format!("GET {secret_path}"),
            format!("PATCH {secret_path}"),
            format!("GET {sa_path}"),
            format!("PATCH {sa_path}")
        ]
    );
    let listed = json!([{"name": SECRET}]);
    assert_eq!(
        kube.service_account("app", "default").expect("default")["imagePullSecrets"],
        listed
    );
    // Done: a plain refresh does not ask again. One that reads the secret again starts afresh
    // and looks once (the account lists it: no patch).
    assert_eq!(cycle(&kube), [format!("PATCH {secret_path}")]);
    kube.inject(Fault::new(Some("PATCH"), &secret_path, FaultKind::Conflict));
    assert_eq!(
        cycle(&kube),
        [
            format!("PATCH {secret_path}"),
            format!("GET {secret_path}"),
            format!("PATCH {secret_path}"),
            format!("GET {sa_path}")
        ]
    );
    assert_eq!(cycle(&kube), [format!("PATCH {secret_path}")]);
    // The app re-installed: secret and account re-created, the account without the entry. The
    // secret is another object now, so the account is served again.
    kube.delete_secret("app", SECRET);
    kube.put_secret(
        "app",
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": STANDARD.encode(r#"{"auths":{}}"#)}}),
    );
    kube.put_service_account("app", json!({"metadata": {"name": "default"}}));
    assert_eq!(
        cycle(&kube),
        [
            format!("PATCH {secret_path}"),
            format!("GET {secret_path}"),
            format!("PATCH {secret_path}"),
            format!("GET {sa_path}"),
            format!("PATCH {sa_path}")
        ]
    );
    assert_eq!(
        kube.service_account("app", "default").expect("default")["imagePullSecrets"],
        listed
    );
    assert_nothing_forbidden(&kube);
}

#[test]
fn a_service_account_changed_or_deleted_meanwhile_is_read_again_once_or_left_alone() {
    let kube = kube_with_rbac_of(SERVICE_ACCOUNTS_VARIANT);
    let sa_path = |ns: &str| format!("/api/v1/namespaces/{ns}/serviceaccounts/default");
    for ns in ["changed", "busy", "deleted"] {
        kube.add_namespace(ns, &[]);
        kube.put_service_account(ns, json!({"metadata": {"name": "default"}}));
    }
    // changed: the `test` of the resourceVersion fails once (422), then the patch applies.
    kube.inject(Fault::new(
        Some("PATCH"),
        &sa_path("changed"),
        FaultKind::Status(422, "Invalid".into()),
    ));
    // busy: every patch conflicts; read again once, then left for the next refresh.
    kube.inject(Fault::new(Some("PATCH"), &sa_path("busy"), FaultKind::Conflict).times(5));
    // deleted: gone between the read and the patch: nothing to serve, no error.
    kube.inject(Fault::new(
        Some("PATCH"),
        &sa_path("deleted"),
        FaultKind::Status(404, "NotFound".into()),
    ));
    let ecr = ecr();
    let out = run_once(
        &kube,
        &ecr,
        &[
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_SERVICE_ACCOUNTS", "default"),
        ],
    );
    let output = out.output();
    assert!(output.contains("3 created"), "{output}");
    // Only the account that stayed busy is an error.
    let errors: Vec<&str> = output.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{output}");
    assert!(
        errors[0].contains("busy/default") && errors[0].contains("HTTP 409"),
        "{}",
        errors[0]
    );
    let sa_requests = |ns: &str| -> Vec<String> {
        requests_in(&kube, ns)
            .into_iter()
            .filter(|r| r.contains("/serviceaccounts/"))
            .map(|r| r.split(' ').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(sa_requests("changed"), ["GET", "PATCH", "GET", "PATCH"]);
    assert_eq!(
        kube.service_account("changed", "default").expect("changed")["imagePullSecrets"],
        json!([{"name": SECRET}])
    );
    assert_eq!(sa_requests("busy"), ["GET", "PATCH", "GET", "PATCH"]);
    assert!(kube.service_account("busy", "default").expect("busy")["imagePullSecrets"].is_null());
    assert_eq!(sa_requests("deleted"), ["GET", "PATCH"]);
    assert_nothing_forbidden(&kube);
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

    assert_nothing_forbidden(&kube);
}

/// The daemon in this process, configured by `extra`, against `kube` and `ecr`.
fn in_process(kube: &FakeKube, ecr: &FakeEcr, extra: &[(&str, &str)]) -> Daemon {
    let env = env_for(kube, ecr, extra);
    let env = Env::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let config = Config::from_env(&env, Flags::default()).expect("config");
    Daemon::from_config(config, Health::new()).expect("daemon")
}

/// The decoded payload of a pull secret of either type, and its data keys.
fn payload_and_keys(secret: &Value) -> (Value, Vec<String>) {
    let key = match secret["type"].as_str() {
        Some("kubernetes.io/dockercfg") => ".dockercfg",
        _ => ".dockerconfigjson",
    };
    let raw = STANDARD
        .decode(secret["data"][key].as_str().expect("payload"))
        .expect("base64");
    let keys = secret["data"]
        .as_object()
        .expect("data")
        .keys()
        .cloned()
        .collect();
    (serde_json::from_slice(&raw).expect("json"), keys)
}

#[test]
fn a_secret_deleted_and_created_again_is_written_in_its_own_type_and_stays_served() {
    let kube = kube_with_shipped_rbac();
    // cfg: created by the daemon (dockerconfigjson), then re-created as dockercfg.
    // json: a dockercfg secret the daemon updates, then re-created as dockerconfigjson.
    kube.add_namespace("cfg", &[]);
    kube.add_namespace("json", &[]);
    kube.put_secret(
        "json",
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockercfg",
               "data": {".dockercfg": STANDARD.encode(r#"{"https://x":{"auth":"eDp5"}}"#)}}),
    );
    let ecr = ecr();
    let mut daemon = in_process(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    let first = daemon.cycle(true).expect("first cycle");
    assert_eq!((first.created(), first.updated()), (1, 1));
    let host = auths(&kube.secret("cfg", SECRET).expect("cfg"))
        .as_object()
        .expect("auths")
        .keys()
        .next()
        .expect("a host")
        .clone();

    for ns in ["cfg", "json"] {
        kube.delete_secret(ns, SECRET);
    }
    kube.put_secret(
        "cfg",
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockercfg",
               "data": {".dockercfg": STANDARD.encode(r#"{"https://x":{"auth":"eDp5"}}"#), "keep": STANDARD.encode("me")}}),
    );
    kube.put_secret(
        "json",
        json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": STANDARD.encode(r#"{"auths":{"x":{"auth":"eDp5"}}}"#)}}),
    );
    let uids: Vec<Value> = ["cfg", "json"]
        .iter()
        .map(|ns| kube.secret(ns, SECRET).expect("secret")["metadata"]["uid"].clone())
        .collect();
    let check = |password: &str| {
        let cfg = kube.secret("cfg", SECRET).expect("cfg");
        assert_eq!(cfg["type"], "kubernetes.io/dockercfg");
        let (doc, keys) = payload_and_keys(&cfg);
        assert_eq!(keys, [".dockercfg", "keep"], "no stray key in cfg");
        assert_eq!(doc.as_object().expect("cfg payload").len(), 1, "{doc}");
        assert_eq!(doc[format!("https://{host}")]["password"], password);
        let json = kube.secret("json", SECRET).expect("json");
        assert_eq!(json["type"], "kubernetes.io/dockerconfigjson");
        let (doc, keys) = payload_and_keys(&json);
        assert_eq!(keys, [".dockerconfigjson"], "no stray key in json");
        assert_eq!(doc["auths"].as_object().expect("auths").len(), 1, "{doc}");
        assert_eq!(doc["auths"][&host]["password"], password);
        for (ns, uid) in ["cfg", "json"].iter().zip(&uids) {
            assert_eq!(
                &kube.secret(ns, SECRET).expect("secret")["metadata"]["uid"],
                uid,
                "{ns}: the re-created secret is updated, never replaced"
            );
        }
    };
    ecr.set_token("AWS", "the-second-password-abcdefghijklmn", 4.0e9);
    kube.clear_requests();
    let second = daemon.cycle(true).expect("second cycle");
    assert_eq!(second.failures(), Vec::<(&str, &str)>::new());
    assert_eq!(second.updated(), 2);
    check("the-second-password-abcdefghijklmn");
    // Each: the patch for the old object (refused: 422 on metadata.uid), a read, a patch.
    for ns in ["cfg", "json"] {
        let verbs: Vec<String> = requests_in(&kube, ns)
            .iter()
            .map(|r| r.split(' ').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(verbs, ["PATCH", "GET", "PATCH"], "{ns}");
    }

    // The following refreshes know the new objects: one patch each, in their own types.
    ecr.set_token("AWS", "the-third-password-abcdefghijklmno", 4.0e9);
    kube.clear_requests();
    let third = daemon.cycle(true).expect("third cycle");
    assert_eq!(third.failures(), Vec::<(&str, &str)>::new());
    assert_eq!(third.updated(), 2);
    check("the-third-password-abcdefghijklmno");
    for ns in ["cfg", "json"] {
        assert_eq!(
            requests_in(&kube, ns),
            [format!("PATCH /api/v1/namespaces/{ns}/secrets/{SECRET}")]
        );
    }
    assert_nothing_forbidden(&kube);
}

#[test]
fn a_secret_deleted_between_refreshes_is_created_again_or_skipped_and_never_failed() {
    for create in [true, false] {
        let kube = kube_with_shipped_rbac();
        kube.add_namespace("gone", &[]);
        kube.put_secret(
            "gone",
            json!({"metadata": {"name": SECRET}, "type": "kubernetes.io/dockerconfigjson",
                   "data": {".dockerconfigjson": STANDARD.encode(r#"{"auths":{}}"#)}}),
        );
        let ecr = ecr();
        let flag = if create { "true" } else { "false" };
        let mut daemon = in_process(&kube, &ecr, &[("ECR_CREATE_MISSING", flag)]);
        let first = daemon.cycle(true).expect("first cycle");
        assert_eq!(first.updated(), 1, "{create}: {first}");

        // Deleted by someone else between two refreshes: the patch of the known secret meets
        // a 404, which is neither a failure nor another object to read.
        kube.delete_secret("gone", SECRET);
        ecr.set_token("AWS", "the-second-password-abcdefghijklmn", 4.0e9);
        kube.clear_requests();
        let second = daemon.cycle(true).expect("second cycle");
        assert_eq!(second.failures(), Vec::<(&str, &str)>::new(), "{create}");
        let path = format!("/api/v1/namespaces/gone/secrets/{SECRET}");
        if create {
            assert_eq!(second.created(), 1, "{second}");
            assert_eq!(
                requests_in(&kube, "gone"),
                [
                    format!("PATCH {path}"),
                    "POST /api/v1/namespaces/gone/secrets".to_string()
                ]
            );
            let secret = kube.secret("gone", SECRET).expect("created again");
            assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
            let password = auths(&secret)
                .as_object()
                .expect("auths")
                .values()
                .next()
                .expect("a login")["password"]
                .clone();
            assert_eq!(password, "the-second-password-abcdefghijklmn");
        } else {
            assert_eq!((second.skipped(), second.created()), (1, 0), "{second}");
            assert_eq!(requests_in(&kube, "gone"), [format!("PATCH {path}")]);
            assert!(kube.secret("gone", SECRET).is_none(), "nothing is created");
        }

        // The next refresh: the created secret is known (one patch); the absent one is read
        // (it is no longer known) and skipped again.
        ecr.set_token("AWS", "the-third-password-abcdefghijklmno", 4.0e9);
        kube.clear_requests();
        let third = daemon.cycle(true).expect("third cycle");
        assert_eq!(third.failures(), Vec::<(&str, &str)>::new(), "{create}");
        if create {
            assert_eq!(third.updated(), 1, "{third}");
            assert_eq!(requests_in(&kube, "gone"), [format!("PATCH {path}")]);
        } else {
            assert_eq!(third.skipped(), 1, "{third}");
            assert_eq!(requests_in(&kube, "gone"), [format!("GET {path}")]);
        }
        assert_nothing_forbidden(&kube);
    }
}

#[test]
fn a_known_secrets_patch_is_read_again_only_when_it_met_another_object() {
    let kube = kube_with_shipped_rbac();
    for ns in ["busy", "forbidden", "invalid"] {
        kube.add_namespace(ns, &[]);
    }
    let ecr = ecr();
    let mut daemon = in_process(&kube, &ecr, &[("ECR_CREATE_MISSING", "true")]);
    daemon.cycle(true).expect("first cycle");
    let before: Vec<Value> = ["forbidden", "invalid"]
        .iter()
        .map(|ns| kube.secret(ns, SECRET).expect("secret"))
        .collect();
    kube.inject(Fault::new(
        Some("PATCH"),
        &format!("/api/v1/namespaces/forbidden/secrets/{SECRET}"),
        FaultKind::Status(403, "Forbidden".into()),
    ));
    // A 422 that is not about metadata.uid (no such cause): not a re-created secret.
    kube.inject(Fault::new(
        Some("PATCH"),
        &format!("/api/v1/namespaces/invalid/secrets/{SECRET}"),
        FaultKind::Status(422, "Invalid".into()),
    ));
    // busy: the known patch and the one after the re-read conflict, the last one allowed passes.
    kube.inject(
        Fault::new(
            Some("PATCH"),
            &format!("/api/v1/namespaces/busy/secrets/{SECRET}"),
            FaultKind::Conflict,
        )
        .times(2),
    );
    ecr.set_token("AWS", "the-second-password-abcdefghijklmn", 4.0e9);
    kube.clear_requests();
    let second = daemon.cycle(true).expect("second cycle");
    assert_eq!(second.updated(), 1);
    let busy: Vec<String> = requests_in(&kube, "busy")
        .iter()
        .map(|r| r.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(busy, ["PATCH", "GET", "PATCH", "GET", "PATCH"]);
    assert_eq!(
        auths(&kube.secret("busy", SECRET).expect("busy"))
            .as_object()
            .expect("auths")
            .values()
            .next()
            .expect("a login")["password"],
        "the-second-password-abcdefghijklmn"
    );
    let failures = second.failures();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].0 == "forbidden" && failures[0].1.contains("HTTP 403 Forbidden"));
    assert!(failures[1].0 == "invalid" && failures[1].1.contains("HTTP 422 Invalid"));
    for (i, ns) in ["forbidden", "invalid"].iter().enumerate() {
        assert_eq!(
            requests_in(&kube, ns),
            [format!("PATCH /api/v1/namespaces/{ns}/secrets/{SECRET}")],
            "{ns}: neither read again nor patched again"
        );
        assert_eq!(kube.secret(ns, SECRET).expect("secret"), before[i]);
    }
}

/// Every folder under example_deployment/variants.
fn variants() -> Vec<String> {
    let dir = deployment_dir("example_deployment/variants");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("variants folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The settings of a rendered Deployment/CronJob that decide what the daemon touches.
fn targeting_env(manifests: &ecrupdater_testkit::kube::rbac::Manifests) -> Vec<(String, String)> {
    manifests
        .daemon_env()
        .into_iter()
        .filter(|(k, _)| {
            [
                "K8S_PULL_SECRET_NAME",
                "ECR_CREATE_MISSING",
                "ECR_NAMESPACES",
                "ECR_SKIP_NAMESPACES",
                "ECR_NAMESPACE_SELECTOR",
                "ECR_SERVICE_ACCOUNTS",
            ]
            .contains(&k.as_str())
        })
        .collect()
}

#[test]
fn every_shipped_install_grants_exactly_what_its_daemon_needs() {
    let mut installs = vec![DEFAULT_INSTALL.to_string()];
    installs.extend(
        variants()
            .into_iter()
            .map(|v| format!("example_deployment/variants/{v}")),
    );
    assert!(installs.len() >= 7, "{installs:?}");
    let ecr = ecr();
    for install in &installs {
        let kube = kube_with_rbac_of(install);
        let shipped = manifests(install);
        for ns in ["team-a", "team-b", "kube-system"] {
            kube.add_namespace(ns, &[]);
            kube.put_service_account(ns, json!({"metadata": {"name": "default"}}));
        }
        let settings = targeting_env(&shipped);
        let extra: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Twice: the first run creates, the second updates (a new token each time).
        for password in [
            "first-password-0123456789abcdefgh",
            "second-password-0123456789abcdef",
        ] {
            ecr.set_token("AWS", password, in_12_hours());
            let out = run_once(&kube, &ecr, &extra);
            assert_eq!(out.status, 0, "{install}: {}", out.output());
            // The preflight's reviews are answered from the same RBAC: nothing is missing.
            let text = out.output();
            let preflight: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("RBAC preflight") || l.contains("missing right"))
                .collect();
            assert!(
                preflight.len() == 1 && preflight[0].contains("rights granted"),
                "{install}: {preflight:?}"
            );
        }
        let skipped = settings
            .iter()
            .any(|(k, v)| k == "ECR_SKIP_NAMESPACES" && v.contains("kube-system"));
        let only_a = settings
            .iter()
            .any(|(k, v)| k == "ECR_NAMESPACES" && v == "team-a");
        for ns in ["team-a", "team-b", "kube-system"] {
            let excluded = (ns == "kube-system" && skipped) || (only_a && ns != "team-a");
            assert_eq!(
                kube.secret(ns, SECRET).is_some(),
                !excluded,
                "{install}: secret in {ns}"
            );
        }
        if settings.iter().any(|(k, _)| k == "ECR_SERVICE_ACCOUNTS") {
            let sa = kube.service_account("team-a", "default").expect("default");
            assert_eq!(
                sa["imagePullSecrets"],
                json!([{"name": SECRET}]),
                "{install}"
            );
        }
    }
}

#[test]
fn the_single_namespace_install_refuses_every_other_namespace() {
    let variant = "example_deployment/variants/single-namespace";
    let kube = kube_with_rbac_of(variant);
    let shipped = manifests(variant);
    kube.add_namespace("team-a", &[]);
    kube.add_namespace("team-b", &[]);
    // Told to serve every namespace: the RBAC it ships keeps it out of team-b.
    let settings: Vec<(String, String)> = targeting_env(&shipped)
        .into_iter()
        .filter(|(k, _)| k != "ECR_NAMESPACES")
        .collect();
    let extra: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let ecr = ecr();
    let env = env_for(&kube, &ecr, &extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run(&pairs, &["--once"], Duration::from_secs(60));
    assert_eq!(out.status, 1, "{}", out.output());
    assert!(kube.secret("team-a", SECRET).is_some(), "{}", out.output());
    assert!(kube.secret("team-b", SECRET).is_none());
    // The preflight asked the same RBAC and said so first: the secret rights it needs in every
    // namespace are granted in team-a only.
    assert!(
        out.output().contains(
            "WARNING:ecrupdater:RBAC: missing right: get secrets/ecr-pull; granted by the rule"
        ),
        "{}",
        out.output()
    );
    assert!(
        out.output().contains(
            "team-b/ecr-pull: GET /api/v1/namespaces/team-b/secrets/ecr-pull: HTTP 403 Forbidden: secrets \"ecr-pull\" is forbidden: User \"system:serviceaccount:ecr-updater:ecr-updater\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-b\""
        ),
        "{}",
        out.output()
    );
    // The RefreshFailed Event about team-b is refused too (events are granted in team-a only);
    // a refused Event never fails anything more.
    assert_eq!(
        kube.forbidden_requests(),
        [
            "GET /api/v1/namespaces/team-b/secrets/ecr-pull",
            "POST /apis/events.k8s.io/v1/namespaces/team-b/events"
        ]
    );
}
