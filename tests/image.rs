//! End-to-end: the scratch image users run, built with podman from Dockerfile.scratch's final
//! stage and the static binaries scripts/build-static.sh makes (scripts/build-image.sh), then
//! inspected and run as the restricted Pod Security profile runs it: user 65534, read-only root
//! filesystem, every capability dropped, no new privileges, the Deployment's memory limit and
//! only the Deployment's environment, in-cluster against the fake API server over TLS (a
//! mounted service-account folder) with moto as AWS, SigV4 checking on. moto's tokens expire in
//! 2015 (always past); a front (common::image::EcrFront) forwards every request to moto
//! unchanged, so moto still checks each signature, and moves that expiry twelve hours ahead, as
//! real ECR answers, so the pod is as healthy as it would be against AWS.
//!
//! The binaries and images are built once per run of this test binary (common::image::built);
//! cargo reuses the release binaries when they are fresh. Needs podman and runc (Debian), moto
//! (PyPI), and for arm64 qemu-user-static: the arm64 image runs where this machine executes
//! arm64 binaries (binfmt_misc), or else with qemu-aarch64-static given to the container as the
//! entrypoint's interpreter; with neither, the test says so and checks the binary with `file`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater_testkit::FakeKube;
use serde_json::{Value, json};

use common::fake::{RbacKube, tls_kube_with_shipped_rbac};
use common::image::{
    Built, Container, EcrFront, RunSpec, built, can_execute, deployment_env, extract, file_verdict,
    inspect, layer_files, note, podman, process_env, save_oci,
};
use common::{
    MotoKeys, assert_no_credentials, assert_pull_secret, free_port, http_get, metric_samples,
    start_moto, temp_dir,
};

/// The password moto's GetAuthorizationToken hands out (`AWS:<password>` decoded).
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const SA_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.image-test-service-account-token.c2lnbmF0dXJl";
const QEMU_AARCH64: &str = "/usr/bin/qemu-aarch64-static";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Cargo.toml's `key = "value"` in [package].
fn cargo_field(key: &str) -> String {
    let prefix = format!("{key} = \"");
    read("Cargo.toml")
        .lines()
        .find_map(|l| {
            l.strip_prefix(&prefix)?
                .strip_suffix('"')
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {key} in Cargo.toml"))
}

fn git_head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

// ---- Inspecting the images.

fn assert_image_is_the_binary_alone(built: &Built, file_arch: &str) {
    let info = inspect(&built.image);
    let config = &info["Config"];
    assert_eq!(
        info["Architecture"], built.arch,
        "{}: architecture",
        built.image
    );
    assert_eq!(info["Os"], "linux", "{}: OS", built.image);
    assert_eq!(config["Entrypoint"], json!(["/ecrupdater"]), "entrypoint");
    assert!(
        config["Cmd"].is_null() || config["Cmd"] == json!([]),
        "no default arguments: {}",
        config["Cmd"]
    );
    assert_eq!(config["User"], "65534:65534", "user");
    assert_eq!(
        config["ExposedPorts"],
        json!({"8080/tcp": {}}),
        "the health port"
    );
    // The engine's default PATH is the only variable (there is nothing to find on it).
    let env: Vec<&str> = config["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        env.iter().all(|e| e.starts_with("PATH=")),
        "no environment baked in: {env:?}"
    );

    // The OCI labels.
    let labels = &config["Labels"];
    let label = |k: &str| {
        labels[format!("org.opencontainers.image.{k}")]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(label("title").as_deref(), Some("k8s-ecrupdater"));
    assert_eq!(
        label("version"),
        Some(cargo_field("version")),
        "version label"
    );
    assert_eq!(
        label("licenses"),
        Some(cargo_field("license")),
        "licenses label"
    );
    let source = label("source").expect("a source label");
    assert!(source.starts_with("https://"), "source: {source}");
    if let Some(head) = git_head() {
        assert_eq!(label("revision"), Some(head), "revision label: the commit");
    } else {
        note("not a git checkout: the revision label is not compared with a commit");
        assert!(label("revision").is_some(), "a revision label");
    }

    // One layer, holding one file: the very binary scripts/build-static.sh made.
    let layers = info["RootFS"]["Layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "one layer: {layers:?}");
    let dir = temp_dir(&format!("oci-{}", built.arch));
    let blobs = save_oci(&built.image, &dir.join("oci"));
    assert_eq!(blobs.len(), 1, "one layer in the saved manifest");
    let entries = layer_files(&blobs[0]);
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["ecrupdater"],
        "the layer holds the binary alone (no shell, no /etc)"
    );
    // Root's file, not writable by the user it runs as (65534), executable by everyone.
    let entry = &entries[0];
    assert_eq!(entry.mode, "-rwxr-xr-x", "the binary's mode");
    assert_eq!(entry.owner, "0/0", "the binary belongs to root");
    let inside = dir.join("ecrupdater");
    extract(&blobs[0], "ecrupdater", &inside);
    assert_eq!(
        sha256(&inside),
        sha256(&built.binary),
        "the image holds {} byte for byte",
        built.binary.display()
    );
    let verdict = file_verdict(&inside);
    assert!(
        verdict.contains(file_arch) && verdict.contains("statically linked"),
        "{}: {verdict}",
        built.arch
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs podman (install: apt-get install podman runc)"]
fn amd64_image_is_the_static_binary_alone_with_labels() {
    let images = built();
    assert_image_is_the_binary_alone(&images.amd64, "x86-64");
    // No shell to run: asking for one fails at exec.
    let out = podman()
        .args(["run", "--rm", "--network", "none", "--pull", "never"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--entrypoint", "/bin/sh", &images.amd64.image, "-c", "true"])
        .output()
        .expect("podman run");
    assert!(!out.status.success(), "a shell ran in the image");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/bin/sh"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs podman (install: apt-get install podman runc)"]
fn arm64_image_is_the_static_binary_alone_with_labels() {
    assert_image_is_the_binary_alone(&built().arm64, "ARM aarch64");
}

// ---- Running the image in-cluster, as the Deployment runs it.

/// The fake API over TLS with the namespaces of a small cluster, a stale secret in one, and the
/// service-account token required on every request.
fn cluster() -> (RbacKube, String) {
    let (kube, ca) = tls_kube_with_shipped_rbac();
    for ns in ["default", "team-a", "team-b", "ecr-updater", "kube-system"] {
        kube.add_namespace(ns, &[]);
    }
    kube.put_secret(
        "team-a",
        json!({"metadata": {"name": "ecr-pull"}, "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": STANDARD.encode(
                   r#"{"auths":{"123456789012.dkr.ecr.eu-west-1.amazonaws.com":{"username":"AWS","password":"stale","auth":"QVdTOnN0YWxl"}}}"#)}}),
    );
    kube.require_bearer_token(Some(SA_TOKEN));
    (kube, ca)
}

/// The folder the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount.
fn service_account_dir(name: &str, ca_pem: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("token"), SA_TOKEN).expect("token");
    std::fs::write(dir.join("ca.crt"), ca_pem).expect("ca.crt");
    std::fs::write(dir.join("namespace"), "ecr-updater").expect("namespace");
    dir
}

/// The container's environment: the default Deployment's `env` as shipped, the keys its
/// `envFrom` Secret holds (moto's IAM user here), the two variables the kubelet sets for the API
/// service, and the three this test must change: AWS_ENDPOINT_URL (moto), ECR_HEALTH_ADDR (a
/// free port on 127.0.0.1, as the container shares the host's network) and ECR_VERIFY=off (the
/// registry host moto's token names is AWS's own, and no test reaches beyond 127.0.0.1;
/// tests/e2e_verify.rs proves verification against a real registry).
fn pod_env(
    kube: &FakeKube,
    ecr_url: &str,
    keys: &MotoKeys,
    health_port: u16,
) -> Vec<(String, String)> {
    let mut env = deployment_env(&read("example_deployment/base/02_deployment.yml"));
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    for expected in [
        "K8S_PULL_SECRET_NAME",
        "AWS_REGION",
        "ECR_CREATE_MISSING",
        "ECR_HEALTH_ADDR",
    ] {
        assert!(
            names.contains(&expected),
            "the Deployment sets {expected}: {names:?}"
        );
    }
    let aws_secret = read("example_deployment/base/01_aws_credentials.yml");
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            aws_secret.contains(&format!("{key}:")),
            "the keys' Secret holds {key}"
        );
    }
    for (k, v) in env.iter_mut() {
        if k == "ECR_HEALTH_ADDR" {
            *v = format!("127.0.0.1:{health_port}");
        }
    }
    env.extend(
        [
            ("AWS_ACCESS_KEY_ID", keys.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", keys.secret_access_key.clone()),
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_string()),
            ("KUBERNETES_SERVICE_PORT", kube.port().to_string()),
            ("AWS_ENDPOINT_URL", ecr_url.to_string()),
            ("ECR_VERIFY", "off".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// Fails if any 16-character piece of a credential (or a whole shorter one) is in `text`.
fn assert_no_credential_pieces(text: &str, credentials: &[&str]) {
    assert_no_credentials(text, credentials);
    for credential in credentials {
        let chars: Vec<char> = credential.chars().collect();
        for piece in chars.windows(16) {
            let piece: String = piece.iter().collect();
            assert!(
                !text.contains(&piece),
                "a 16-character piece of a credential ({}...) is in the output:\n{text}",
                &piece[..4]
            );
        }
    }
}

fn value_of<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} is not set"))
}

/// The namespaces the Deployment's settings target in [`cluster`].
fn targets(env: &[(String, String)]) -> Vec<&'static str> {
    let skip: Vec<&str> = value_of(env, "ECR_SKIP_NAMESPACES").split(',').collect();
    ["default", "team-a", "team-b", "ecr-updater", "kube-system"]
        .into_iter()
        .filter(|ns| !skip.contains(ns))
        .collect()
}

/// Runs `image` in-cluster and checks everything the issue asks of a running pod.
///
/// `interpreter`: qemu given as the entrypoint's interpreter; `emulated`: the image's architecture
/// is not the machine's (so the memory figure is qemu's and is not held to the pod's limit).
fn refreshes_every_target_as_a_restricted_pod(
    image: &str,
    interpreter: Option<&Path>,
    emulated: bool,
) {
    let (kube, ca) = cluster();
    let (moto, keys) = start_moto();
    let front = EcrFront::start(moto.port);
    let health_port = free_port();
    let env = pod_env(&kube, &front.url(), &keys, health_port);
    let secret_name = value_of(&env, "K8S_PULL_SECRET_NAME").to_string();
    let targets = targets(&env);
    assert!(
        targets.len() >= 3 && !targets.contains(&"kube-system"),
        "{targets:?}"
    );
    let sa = service_account_dir("sa-good", &ca);

    let started = Instant::now();
    let container = Container::start(&RunSpec {
        image,
        env: env.clone(),
        service_account: &sa,
        interpreter,
        args: vec![],
    });
    let log = container.wait_for_log("cycle done", Duration::from_secs(120));
    let first_cycle = started.elapsed();

    // Every target holds the fresh credentials; the skipped namespace got nothing.
    for ns in &targets {
        let secret = kube
            .secret(ns, &secret_name)
            .unwrap_or_else(|| panic!("{ns}: no secret after the first cycle:\n{log}"));
        assert_pull_secret(&secret, REGISTRY, "AWS", MOTO_PASSWORD, front.expires_at);
    }
    assert!(
        kube.secret("kube-system", &secret_name).is_none(),
        "kube-system is skipped"
    );
    assert!(
        kube.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {SA_TOKEN}"))),
        "every API request carries the mounted token"
    );
    // moto checked the signature of a GetAuthorizationToken call and answered it.
    let token_calls: Vec<_> = front
        .requests()
        .into_iter()
        .filter(|r| {
            r.header("x-amz-target")
                .is_some_and(|t| t.ends_with("GetAuthorizationToken"))
        })
        .collect();
    assert!(
        !token_calls.is_empty(),
        "no GetAuthorizationToken reached moto"
    );
    assert!(
        token_calls
            .iter()
            .all(|r| r
                .header("authorization")
                .is_some_and(|a| a.starts_with(&format!(
                    "AWS4-HMAC-SHA256 Credential={}/",
                    keys.access_key_id
                )))),
        "SigV4-signed with the IAM user's key"
    );

    // Health and metrics on the port it was given.
    let (status, body) = http_get(health_port, "/healthz");
    assert_eq!(status, 200, "/healthz: {body}");
    let (status, body) = http_get(health_port, "/readyz");
    assert_eq!(status, 200, "/readyz: {body}");
    let (status, metrics) = http_get(health_port, "/metrics");
    assert_eq!(status, 200, "/metrics");
    let samples = metric_samples(&metrics);
    assert!(
        samples.keys().any(|k| k.starts_with("ecrupdater_")),
        "the daemon's metrics: {metrics}"
    );

    // The process sees only the pod's environment (plus what every engine adds).
    let pid = container.pid();
    assert!(pid > 0, "the container is running");
    let engine_added = ["PATH", "HOSTNAME", "container", "HOME", "TERM"];
    for (k, _) in process_env(pid) {
        assert!(
            env.iter().any(|(e, _)| *e == k) || engine_added.contains(&k.as_str()),
            "{k} reached the container from outside the pod's environment"
        );
    }
    // The restricted profile as the kernel sees the process: uid and gid 65534, no capability
    // at all, no_new_privs, the root filesystem read-only and no writable tmpfs anywhere.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534", "uid");
    assert_eq!(field("Gid:"), "65534 65534 65534 65534", "gid");
    for caps in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(
            field(caps),
            "0000000000000000",
            "{caps} every capability dropped"
        );
    }
    assert_eq!(field("NoNewPrivs:"), "1", "no new privileges");
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mounts")).expect("/proc mounts");
    let root = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|m| m.get(1) == Some(&"/"))
        .expect("a root mount");
    assert!(
        root[3].split(',').any(|o| o == "ro"),
        "read-only root: {root:?}"
    );
    // Writable: only the kernel's and the engine's /dev, /proc and /sys entries, as in a pod
    // (podman's default tmpfs on /tmp, /run and /var/tmp is off: a pod has none).
    for m in mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
    {
        let writable = m[3].split(',').any(|o| o == "rw");
        let system = ["/dev", "/proc", "/sys"]
            .iter()
            .any(|top| m[1] == *top || m[1].starts_with(&format!("{top}/")));
        assert!(
            !writable || system,
            "a writable mount a pod would not have: {m:?}"
        );
    }
    let peak_kib = common::peak_rss_kib(pid);
    if !emulated {
        assert!(
            peak_kib < 64 * 1024,
            "peak RSS {peak_kib} KiB is over the Deployment's 64Mi limit"
        );
    }

    // SIGTERM: `podman stop --time 1` kills it if it is still running a second later (137).
    let stop_started = Instant::now();
    let exit = container.stop(1);
    let stopping = stop_started.elapsed();
    let log = container.logs();
    assert_eq!(
        exit, 0,
        "SIGTERM must end it with status 0 within a second:\n{log}"
    );
    let auth = STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"));
    let credentials = [
        keys.secret_access_key.as_str(),
        MOTO_PASSWORD,
        SA_TOKEN,
        auth.as_str(),
    ];
    assert_no_credential_pieces(&log, &credentials);

    // As the CronJob runs it (`--once`, the same environment): one cycle, status 0.
    let mut once_env = env.clone();
    once_env.retain(|(k, _)| k != "ECR_HEALTH_ADDR");
    let (status, once_log) = Container::run_to_end(
        &RunSpec {
            image,
            env: once_env,
            service_account: &sa,
            interpreter,
            args: vec!["--once".into()],
        },
        Duration::from_secs(120),
    );
    assert_eq!(status, 0, "--once as the CronJob runs it:\n{once_log}");
    assert!(once_log.contains("cycle done"), "{once_log}");
    for ns in &targets {
        let secret = kube.secret(ns, &secret_name).expect("still there");
        assert_pull_secret(&secret, REGISTRY, "AWS", MOTO_PASSWORD, front.expires_at);
    }
    assert_no_credential_pieces(&once_log, &credentials);

    note(&format!(
        "{image}{}: podman run to the first completed cycle {:.2} s; peak RSS {:.1} MiB \
         (VmHWM of the container's process{}); podman stop {:.2} s",
        match (interpreter, emulated) {
            (Some(_), _) => " under qemu-aarch64-static as its interpreter",
            (None, true) => " emulated through binfmt_misc",
            (None, false) => "",
        },
        first_cycle.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        if emulated { ", qemu's" } else { "" },
        stopping.as_secs_f64()
    ));
    drop(moto);
}

#[test]
#[ignore = "needs podman and moto_server (install: apt-get install podman runc; pip install 'moto[server]')"]
fn amd64_image_refreshes_every_target_as_a_restricted_pod() {
    refreshes_every_target_as_a_restricted_pod(
        &built().amd64.image,
        None,
        !cfg!(target_arch = "x86_64"),
    );
}

#[test]
#[ignore = "needs podman and moto_server (install: apt-get install podman runc; pip install 'moto[server]')"]
fn amd64_image_refuses_an_api_server_its_ca_did_not_sign() {
    let images = built();
    let (kube, _right_ca) = cluster();
    let (_other, wrong_ca) = FakeKube::start_tls();
    let (moto, keys) = start_moto();
    let front = EcrFront::start(moto.port);
    let health_port = free_port();
    let env = pod_env(&kube, &front.url(), &keys, health_port);
    let sa = service_account_dir("sa-wrong-ca", &wrong_ca);
    let before = kube.secrets();
    let spec = |args: Vec<String>| RunSpec {
        image: &images.amd64.image,
        env: env.clone(),
        service_account: &sa,
        interpreter: None,
        args,
    };
    let credentials = [keys.secret_access_key.as_str(), MOTO_PASSWORD, SA_TOKEN];

    // As the Deployment runs it: the first cycle fails on the certificate, nothing reaches the
    // API, and the daemon exits 1 (waiting cannot fix a certificate; the pod's status shows it).
    let daemon = Container::start(&spec(vec![]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = daemon.logs();
        let state = daemon.state();
        if state["Running"].as_bool() != Some(true) {
            // Read again: the lines written just before the exit may postdate `log`.
            let log = daemon.logs();
            assert_eq!(
                state["ExitCode"].as_i64(),
                Some(1),
                "a refused API ends it with 1:\n{log}"
            );
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after start with a CA that did not sign the API's certificate:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        log.contains("certificate"),
        "the log names the certificate problem:\n{log}"
    );
    drop(daemon);
    assert!(
        kube.requests().is_empty(),
        "no request may pass an unverified TLS handshake:\n{log}"
    );
    assert_eq!(kube.secrets(), before, "nothing written");
    assert_no_credential_pieces(&log, &credentials);

    // As the CronJob runs it (--once): status 1.
    let (status, log) =
        Container::run_to_end(&spec(vec!["--once".into()]), Duration::from_secs(60));
    assert_eq!(
        status, 1,
        "a certificate its CA did not sign ends --once with status 1:\n{log}"
    );
    assert!(kube.requests().is_empty(), "no request passed TLS:\n{log}");
    assert_eq!(kube.secrets(), before, "nothing written");
    assert_no_credential_pieces(&log, &credentials);
    drop(moto);
}

#[test]
#[ignore = "needs podman, moto_server and qemu-user-static (install: apt-get install podman runc qemu-user-static; pip install 'moto[server]')"]
fn arm64_image_runs_where_arm64_executes() {
    let images = built();
    let arm64 = &images.arm64;
    match can_execute(&arm64.binary) {
        Ok(()) => {
            note(
                "this machine executes arm64 binaries (binfmt_misc): running the arm64 image as is",
            );
            refreshes_every_target_as_a_restricted_pod(
                &arm64.image,
                None,
                !cfg!(target_arch = "aarch64"),
            );
        }
        Err(why) if Path::new(QEMU_AARCH64).is_file() => {
            note(&format!(
                "no binfmt_misc handler for arm64 ({why}); running the arm64 image with {QEMU_AARCH64} as its entrypoint's interpreter"
            ));
            refreshes_every_target_as_a_restricted_pod(
                &arm64.image,
                Some(Path::new(QEMU_AARCH64)),
                true,
            );
        }
        Err(why) => {
            note(&format!(
                "this machine cannot execute arm64 ({why}; no {QEMU_AARCH64}: apt-get install qemu-user-static): the arm64 image is NOT run; checking the binary inside with file"
            ));
            let dir = temp_dir("arm64-file");
            let blobs = save_oci(&arm64.image, &dir.join("oci"));
            let inside = dir.join("ecrupdater");
            extract(&blobs[0], "ecrupdater", &inside);
            let verdict = file_verdict(&inside);
            assert!(
                verdict.contains("ARM aarch64") && verdict.contains("statically linked"),
                "{verdict}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn the_deployment_env_reader_reads_the_shipped_manifest() {
    // The reader the container tests build their environment with: checked against a manifest
    // of known content, and against the shipped one (which must name the secret).
    let sample = "containers:\n  - name: x\n    image: y\n    env:\n      # c\n      - name: A\n        value: one\n      - name: B\n        value: \"true\"\n    envFrom:\n      - secretRef:\n          name: s\n";
    assert_eq!(
        deployment_env(sample),
        vec![
            ("A".to_string(), "one".to_string()),
            ("B".to_string(), "true".to_string())
        ]
    );
    let shipped = deployment_env(&read("example_deployment/base/02_deployment.yml"));
    assert!(
        shipped
            .iter()
            .any(|(k, v)| k == "K8S_PULL_SECRET_NAME" && v == "ecr-pull"),
        "{shipped:?}"
    );
}

/// Every `image:` of the project's own image in the manifests, with the file it is in.
fn project_image_references() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read example_deployment")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read manifest");
                for line in text.lines() {
                    let line = line.trim_start().trim_start_matches("- ");
                    if let Some(image) = line.strip_prefix("image:") {
                        let image = image.trim().trim_matches('"');
                        if image.contains("ecrupdater") {
                            out.push((path.display().to_string(), image.to_string()));
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("example_deployment"), &mut out);
    out
}

#[test]
fn the_manifests_the_readme_and_the_build_script_name_one_image() {
    let version = cargo_field("version");
    let reference = format!("ghcr.io/k8s-ecrupdater/ecrupdater:{version}");
    let refs = project_image_references();
    for (file, image) in &refs {
        assert_eq!(
            image, &reference,
            "{file}: the image is Cargo.toml's release"
        );
    }
    // The Deployment and the CronJob name it; the kubectl-proxy and keyless variants patch the
    // Deployment and keep its image.
    for file in ["base/02_deployment.yml", "variants/cronjob/02_cronjob.yml"] {
        assert!(
            refs.iter().any(|(f, _)| f.ends_with(file)),
            "{file} names the image: {refs:?}"
        );
    }
    let readme = read("README.md");
    assert!(readme.contains(&reference), "the README names {reference}");
    let script = read("scripts/build-image.sh");
    assert!(
        script.contains("localhost/k8s-ecrupdater/ecrupdater}:$version-$arch"),
        "build-image.sh tags NAME:VERSION-ARCH under the same path"
    );
    assert!(
        readme.contains("scripts/build-image.sh"),
        "the README says how to build it"
    );
    assert!(
        readme.contains("manifest push"),
        "the README says how to push it"
    );
}

#[test]
#[ignore = "needs podman, docker-registry and skopeo (install: apt-get install podman runc docker-registry skopeo)"]
fn the_readme_push_commands_publish_one_tag_for_both_architectures() {
    let images = built();
    let version = cargo_field("version");
    let published = format!("ghcr.io/k8s-ecrupdater/ecrupdater:{version}");
    let readme = read("README.md");
    let building = &readme[readme.find("## Building").expect("a Building section")..];
    let commands: Vec<&str> = building
        .lines()
        .filter(|l| l.starts_with("podman manifest "))
        .collect();
    assert!(
        commands.len() >= 4
            && commands
                .iter()
                .any(|c| c.starts_with("podman manifest push")),
        "the README's push commands: {commands:?}"
    );

    // Debian's docker-registry on 127.0.0.1 stands in for ghcr.io.
    let dir = temp_dir("registry");
    let port = free_port();
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .expect("registry config");
    let child = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let _registry = common::Peer::new(child, port);
    common::wait_for_port(port, Duration::from_secs(10));
    let local = format!("127.0.0.1:{port}/k8s-ecrupdater/ecrupdater:{version}");

    let flags = common::image::PODMAN_FLAGS.join(" ");
    let _ = podman().args(["manifest", "rm", &local]).output();
    for command in &commands {
        let command = command
            .replace(&published, &local)
            .replacen("podman ", &format!("podman {flags} "), 1)
            .replace(
                "manifest push --all",
                "manifest push --tls-verify=false --all",
            );
        let out = std::process::Command::new("bash")
            .args(["-c", &command])
            .current_dir(repo())
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = podman().args(["manifest", "rm", &local]).output();

    // One tag, an index of the two images, each the one built here.
    let skopeo = |args: &[&str]| {
        let out = std::process::Command::new("skopeo")
            .args(args)
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("skopeo prints JSON")
    };
    let reference = format!("docker://{local}");
    let index = skopeo(&["inspect", "--tls-verify=false", "--raw", &reference]);
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or("?"),
                m["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for built in [&images.amd64, &images.arm64] {
        let pushed = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            built.arch,
            &reference,
        ]);
        assert_eq!(pushed["Architecture"], built.arch);
        assert_eq!(
            pushed["Layers"].as_array().map(Vec::len),
            Some(1),
            "one layer"
        );
        assert_eq!(
            pushed["Labels"]["org.opencontainers.image.version"],
            version.as_str()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn build_image_names_what_it_builds_and_refuses_other_architectures() {
    let run = |args: &[&str]| {
        std::process::Command::new("bash")
            .arg(repo().join("scripts/build-image.sh"))
            .args(args)
            .output()
            .expect("run scripts/build-image.sh")
    };
    let unknown = run(&["sparc"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("'sparc'") && stderr.contains("amd64, arm64 or arm"),
        "{stderr}"
    );
    let none = run(&[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("usage: scripts/build-image.sh amd64|arm64")
    );
    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout)
            .contains("localhost/k8s-ecrupdater/ecrupdater:VERSION-ARCH")
    );
}
