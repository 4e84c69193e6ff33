//! Hostile AWS-side peers, driven by the real binary: small servers of our own on 127.0.0.1 that
//! play ECR, STS, IMDS, the container endpoint or a forward proxy and answer what a broken or
//! hostile one could (bodies of hundreds of MB, bytes that are not UTF-8, JSON made of tiny
//! values, path tricks in a role name, echoed credentials, expired or absurd tokens, foreign
//! registry hosts, short-lived tokens while namespaces pour in). Each test asserts its bound:
//! peak RSS (VmHWM, read while the daemon runs, after it logged the failure), request counts,
//! exit status and time, what was and was not written to the fake API server, and that no
//! output holds a credential or a 16-character piece of one.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::aws::{HostileServer, answer, assert_no_piece_of, stream_answer};
use common::fake::*;
use common::*;
use ecrupdater_testkit::FakeKube;

const SECRET: &str = "ecr-pull";
const KEY_ID: &str = "AKIAHOSTILETESTKEY01";
const SECRET_KEY: &str = "hostileSecretKey/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// Peak RSS every hostile answer must stay under (the pod's limit is 64 MiB).
const RSS_BOUND_KIB: u64 = 32 * 1024;
/// The body hostile endpoints announce: 200 MB.
const HUGE: u64 = 200_000_000;

fn session_token() -> String {
    // A session token as long as real ones (hundreds of characters), no piece repeated.
    (0..40)
        .map(|i| format!("FwoGZXIvYXdz{i:03}Q"))
        .collect::<Vec<_>>()
        .join("")
}

/// A fake cluster with one namespace holding a good pull secret that must survive every
/// refused answer, and one without any (which must not be created).
fn cluster() -> RbacKube {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    kube.add_namespace("empty", &[]);
    let payload = r#"{"auths":{"123456789012.dkr.ecr.eu-west-1.amazonaws.com":{"username":"AWS","password":"the-good-old-password","auth":"QVdTOnRoZS1nb29kLW9sZC1wYXNzd29yZA=="}}}"#;
    kube.put_secret(
        "app",
        serde_json::json!({
            "metadata": {"name": SECRET},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": STANDARD.encode(payload)},
        }),
    );
    kube
}

/// Nothing was written: the good secret is as it was, no secret was created, no write sent.
fn assert_nothing_written(kube: &FakeKube, before: &serde_json::Value) {
    assert_eq!(
        &kube.secret("app", SECRET).expect("the good secret"),
        before,
        "the good secret was changed"
    );
    assert!(
        kube.secret("empty", SECRET).is_none(),
        "a secret was created"
    );
    let writes: Vec<String> = kube
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "writes were sent: {writes:?}");
}

/// The daemon's environment: static keys with a session token, ECR at `ecr`, the fake cluster.
fn env(kube: &FakeKube, ecr: &str, token: &str) -> Vec<(String, String)> {
    [
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", ecr),
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_SESSION_TOKEN", token),
        ("KUBERNETES_API_ENDPOINT", &kube.base_url()),
        ("ECR_CREATE_MISSING", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `env` without the variables named in `drop`, with `add` set.
fn with(env: &[(String, String)], drop: &[&str], add: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()) && !add.iter().any(|(a, _)| a == k))
        .cloned()
        .collect();
    out.extend(add.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

/// Runs `--once`: the run must fail (exit 1) within `limit`, naming a protocol error, and leave
/// no credential in its output.
fn once_fails(env: &[(String, String)], limit: Duration, token: &str) -> String {
    let started = Instant::now();
    let run = run(&pairs(env), &["--once"], limit + Duration::from_secs(5));
    let output = run.output();
    assert_eq!(run.status, 1, "--once must fail:\n{output}");
    assert!(
        started.elapsed() < limit,
        "--once took {:?} (bound {limit:?}):\n{output}",
        started.elapsed()
    );
    assert_no_piece_of(&output, &[SECRET_KEY, token], 16);
    for line in output.lines() {
        assert!(line.len() <= 4096, "a log line of {} bytes", line.len());
    }
    output
}

/// Runs the daemon until it logs `needle`, then reads its peak RSS and checks the bound.
fn peak_rss_after(env: &[(String, String)], needle: &str) -> (u64, String) {
    let mut daemon = DaemonProcess::start(&pairs(env), &[]);
    let log = daemon.wait_for_log(needle, Duration::from_secs(30));
    let peak = daemon.peak_rss_kib();
    eprintln!("peak RSS (VmHWM) of the daemon after it logged {needle:?}: {peak} KiB");
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB is not under {RSS_BOUND_KIB} KiB:\n{log}"
    );
    (peak, log)
}

/// An ECR endpoint that answers every request with a 200 MB body of `filler` after `prefix`.
fn endless(prefix: &'static [u8], filler: &'static [u8]) -> HostileServer {
    HostileServer::start(move |_, stream| {
        stream_answer(stream, "application/x-amz-json-1.1", HUGE, prefix, filler)
    })
}

#[test]
fn a_200_mb_ecr_answer_is_a_protocol_error_read_no_further_than_its_cap() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    let ecr = endless(
        br#"{"authorizationData":[{"authorizationToken":""#,
        b"QUFBQUFB",
    );
    let env = env(&kube, &ecr.url(), &token);

    let output = once_fails(&env, Duration::from_secs(10), &token);
    assert!(
        output.contains("protocol error") && output.contains("larger than 64 KiB"),
        "{output}"
    );
    assert_eq!(ecr.count(), 1, "a protocol error is not retried:\n{output}");
    assert_nothing_written(&kube, &before);

    let (_peak, log) = peak_rss_after(&env, "protocol error");
    assert_no_piece_of(&log, &[SECRET_KEY, &token], 16);
}

#[test]
fn json_made_of_tiny_values_cannot_make_parsing_allocate_beyond_the_cap() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    // Within reach of the cap: the daemon reads the first 64 KiB and stops.
    let ecr = endless(br#"{"authorizationData":[{"x":["#, b"0,");
    let env = env(&kube, &ecr.url(), &token);
    let output = once_fails(&env, Duration::from_secs(10), &token);
    assert!(output.contains("protocol error"), "{output}");
    assert_eq!(ecr.count(), 1, "{output}");
    assert_nothing_written(&kube, &before);
    peak_rss_after(&env, "protocol error");

    // Under the cap: 60 KiB of tiny values, parsed whole, refused as having no token.
    let small = HostileServer::start(|_, stream| {
        let mut body = br#"{"authorizationData":[{"x":["#.to_vec();
        while body.len() < 60 * 1024 {
            body.extend_from_slice(b"[],");
        }
        body.extend_from_slice(b"[]]}]}");
        answer(stream, 200, "application/x-amz-json-1.1", &body);
    });
    let env = with(&env, &[], &[("AWS_ENDPOINT_URL", &small.url())]);
    let output = once_fails(&env, Duration::from_secs(10), &token);
    assert!(
        output.contains("protocol error") && output.contains("authorizationToken"),
        "{output}"
    );
    assert_eq!(small.count(), 1, "{output}");
    peak_rss_after(&env, "protocol error");
}

#[test]
fn an_answer_that_is_not_utf8_is_a_protocol_error() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    let ecr = HostileServer::start(|_, stream| {
        answer(
            stream,
            200,
            "application/x-amz-json-1.1",
            b"{\"authorizationData\":[{\"authorizationToken\":\"\xff\xfe\"}]}",
        )
    });
    let output = once_fails(
        &env(&kube, &ecr.url(), &token),
        Duration::from_secs(10),
        &token,
    );
    assert!(
        output.contains("protocol error") && output.contains("not UTF-8"),
        "{output}"
    );
    assert_eq!(ecr.count(), 1, "not retried:\n{output}");
    assert_nothing_written(&kube, &before);
}

#[test]
fn credentials_echoed_in_error_bodies_never_reach_the_output() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    let (echo_token, echo_key) = (token.clone(), SECRET_KEY.to_string());
    // A JSON error (as ECR sends) and an XML one (as STS and moto send), both echoing the
    // session token and the secret key inside a long message: a cut before the mask would
    // leave hundreds of characters of the token.
    let ecr = HostileServer::start(move |request, stream| {
        let message = format!(
            "The security token included in the request is invalid: {echo_token} (secret {echo_key})"
        );
        if request.body.contains("Action=AssumeRole") {
            let body = format!(
                "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>{message}</Message></Error></ErrorResponse>"
            );
            answer(stream, 403, "text/xml", body.as_bytes());
        } else {
            let body =
                serde_json::json!({"__type": "UnrecognizedClientException", "message": message});
            answer(
                stream,
                400,
                "application/x-amz-json-1.1",
                body.to_string().as_bytes(),
            );
        }
    });
    let env = env(&kube, &ecr.url(), &token);
    let output = once_fails(&env, Duration::from_secs(10), &token);
    assert!(output.contains("UnrecognizedClientException"), "{output}");
    assert!(
        output.contains("***"),
        "the echo is masked, not dropped:\n{output}"
    );
    assert_nothing_written(&kube, &before);

    let sts = with(
        &env,
        &[],
        &[(
            "ECR_ASSUME_ROLE_ARN",
            "arn:aws:iam::123456789012:role/hostile-test",
        )],
    );
    let output = once_fails(&sts, Duration::from_secs(10), &token);
    assert!(output.contains("InvalidClientTokenId"), "{output}");
    assert_nothing_written(&kube, &before);
}

#[test]
fn sts_imds_container_and_proxy_answers_are_bounded_too() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    let base = env(&kube, "http://127.0.0.1:9", &token);

    // STS (AssumeRole on top of the static keys): 200 MB of XML.
    let sts = HostileServer::start(|_, stream| {
        stream_answer(
            stream,
            "text/xml",
            HUGE,
            b"<AssumeRoleResponse><AssumeRoleResult><Credentials><SessionToken>",
            b"AAAAAAAA",
        )
    });
    let env_sts = with(
        &base,
        &[],
        &[
            ("AWS_ENDPOINT_URL_STS", &sts.url()),
            (
                "ECR_ASSUME_ROLE_ARN",
                "arn:aws:iam::123456789012:role/hostile-test",
            ),
        ],
    );
    let output = once_fails(&env_sts, Duration::from_secs(10), &token);
    assert!(output.contains("protocol error"), "{output}");
    assert_eq!(sts.count(), 1, "{output}");
    peak_rss_after(&env_sts, "protocol error");

    // STS: a well-formed answer whose Expiration is 60 KB long: the error line stays short.
    let bloated = HostileServer::start(|_, stream| {
        let body = format!(
            "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAHOSTILE0001</AccessKeyId>\
             <SecretAccessKey>hostile-sts-secret-0123456789</SecretAccessKey><SessionToken>hostile-sts-token-0123456789</SessionToken>\
             <Expiration>{}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>",
            "9".repeat(60_000)
        );
        answer(stream, 200, "text/xml", body.as_bytes())
    });
    let env_bloated = with(&env_sts, &[], &[("AWS_ENDPOINT_URL_STS", &bloated.url())]);
    let output = once_fails(&env_bloated, Duration::from_secs(10), &token);
    assert!(output.contains("not an RFC 3339 time"), "{output}");

    // IMDS: a good session token and role, then a 200 MB credential document.
    let imds = HostileServer::start(|request, stream| match request.target.as_str() {
        "/latest/api/token" => answer(stream, 200, "text/plain", b"imds-session-token-0123456789"),
        "/latest/meta-data/iam/security-credentials/" => {
            answer(stream, 200, "text/plain", b"hostile-role")
        }
        _ => stream_answer(stream, "text/plain", HUGE, b"{\"AccessKeyId\":\"", b"AKIA"),
    });
    let env_imds = with(
        &base,
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ],
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url()),
        ],
    );
    let output = once_fails(&env_imds, Duration::from_secs(10), &token);
    assert!(
        output.contains("protocol error") && output.contains("larger than 16 KiB"),
        "{output}"
    );
    peak_rss_after(&env_imds, "protocol error");

    // The container endpoint: 200 MB.
    let container = HostileServer::start(|_, stream| {
        stream_answer(stream, "application/json", HUGE, b"{\"Token\":\"", b"FwoG")
    });
    let full_uri = format!("{}/creds", container.url());
    let env_container = with(
        &base,
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ],
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)],
    );
    let output = once_fails(&env_container, Duration::from_secs(10), &token);
    assert!(output.contains("protocol error"), "{output}");
    assert_eq!(container.count(), 1, "{output}");
    peak_rss_after(&env_container, "protocol error");

    // A forward proxy in front of ECR: it opens the tunnel, then answers 200 MB itself.
    let proxy = HostileServer::start(|request, stream| {
        if request.method == "CONNECT" {
            use std::io::Write;
            let _ = stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 65_536 {
                use std::io::Read;
                if stream.read(&mut byte).unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
        }
        stream_answer(
            stream,
            "application/x-amz-json-1.1",
            HUGE,
            br#"{"authorizationData":[{"authorizationToken":""#,
            b"QUFB",
        )
    });
    let env_proxy = with(&base, &[], &[("HTTPS_PROXY", &proxy.url())]);
    let output = once_fails(&env_proxy, Duration::from_secs(10), &token);
    assert!(output.contains("protocol error"), "{output}");
    assert_eq!(proxy.count(), 1, "{output}");
    assert!(
        output.contains("larger than 64 KiB"),
        "the body read through the tunnel is capped: {output}"
    );
    assert_eq!(
        proxy.requests()[0].target,
        "127.0.0.1:9",
        "the request went through the proxy"
    );
    peak_rss_after(&env_proxy, "protocol error");
    assert_nothing_written(&kube, &before);
}

#[test]
fn an_imds_role_name_with_path_tricks_never_reaches_a_path() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    for role in [
        "../../../latest/user-data",
        "role/../../dynamic",
        "role?x=1",
        "r%2e%2e",
    ] {
        let listed = role.to_string();
        let imds = HostileServer::start(move |request, stream| match request.target.as_str() {
            "/latest/api/token" => answer(stream, 200, "text/plain", b"imds-session-token-0123"),
            "/latest/meta-data/iam/security-credentials/" => {
                answer(stream, 200, "text/plain", listed.as_bytes())
            }
            _ => answer(stream, 500, "text/plain", b"should never be asked"),
        });
        let env = with(
            &env(&kube, "http://127.0.0.1:9", &token),
            &[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
            ],
            &[
                ("AWS_EC2_METADATA_DISABLED", "false"),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url()),
            ],
        );
        let output = once_fails(&env, Duration::from_secs(10), &token);
        assert!(output.contains("not an IAM role name"), "{output}");
        let targets: Vec<String> = imds.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(
            targets,
            vec![
                "/latest/api/token".to_string(),
                "/latest/meta-data/iam/security-credentials/".to_string()
            ],
            "{role}: {output}"
        );
    }
    assert_nothing_written(&kube, &before);
}

/// A fake ECR answering a well-formed token with these fields.
fn ecr_answering(password: &str, endpoint: &str, expires_at: f64) -> HostileServer {
    let body = serde_json::json!({"authorizationData": [{
        "authorizationToken": STANDARD.encode(format!("AWS:{password}")),
        "expiresAt": expires_at,
        "proxyEndpoint": endpoint,
    }]})
    .to_string();
    HostileServer::start(move |_, stream| {
        answer(stream, 200, "application/x-amz-json-1.1", body.as_bytes())
    })
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

const REGISTRY: &str = "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com";

#[test]
fn refused_ecr_answers_write_nothing() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    let in_12h = now() + 12.0 * 3600.0;
    let cases: [(&str, &str, f64, &str); 8] = [
        (
            "expired-an-hour-ago-pw",
            REGISTRY,
            now() - 3600.0,
            "already expired",
        ),
        (
            "expires-in-a-minute-pw",
            REGISTRY,
            now() + 60.0,
            "already expired",
        ),
        ("   ", REGISTRY, in_12h, "spaces or control characters"),
        (
            "pass\u{7}\u{1b}[2Jword",
            REGISTRY,
            in_12h,
            "spaces or control characters",
        ),
        (
            "good-password-0123",
            "https://evil.example.com/x",
            in_12h,
            "refused",
        ),
        ("good-password-0123", "https://", in_12h, "refused"),
        (
            "good-password-0123",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example",
            in_12h,
            "not an ECR registry host",
        ),
        ("good-password-0123", "", in_12h, "no proxyEndpoint"),
    ];
    for (password, endpoint, expires_at, why) in cases {
        let ecr = ecr_answering(password, endpoint, expires_at);
        let output = once_fails(
            &env(&kube, &ecr.url(), &token),
            Duration::from_secs(10),
            &token,
        );
        assert!(output.contains(why), "{password:?} {endpoint:?}: {output}");
        assert!(output.contains("protocol error"), "{output}");
        assert_eq!(ecr.count(), 1, "{output}");
        assert_nothing_written(&kube, &before);
    }
}

#[test]
fn an_implausible_expiry_is_clamped_to_twelve_hours_with_a_warning() {
    let kube = cluster();
    let token = session_token();
    let password = "clamped-password-0123456789";
    // 9999-12-31 and moto's fixed 2015: both taken as fetch time + 12 h.
    for expires_at in [253_402_214_400.0, 1_420_070_400.0] {
        let ecr = ecr_answering(password, REGISTRY, expires_at);
        let started = now();
        let run = run(
            &pairs(&env(&kube, &ecr.url(), &token)),
            &["--once"],
            Duration::from_secs(30),
        );
        let output = run.output();
        assert_eq!(run.status, 0, "{output}");
        assert!(output.contains("implausible"), "{output}");
        assert_no_piece_of(&output, &[SECRET_KEY, &token, password], 16);
        let expected = started + 12.0 * 3600.0;
        for ns in ["app", "empty"] {
            let secret = kube.secret(ns, SECRET).expect("written");
            let annotation = secret["metadata"]["annotations"]["k8s-ecrupdater/token-expires-at"]
                .as_str()
                .expect("expiry annotation")
                .to_string();
            let expiry = time::OffsetDateTime::parse(
                &annotation,
                &time::format_description::well_known::Rfc3339,
            )
            .expect("RFC 3339")
            .unix_timestamp() as f64;
            assert!(
                (expiry - expected).abs() < 60.0,
                "{ns}: expiry {annotation} is not fetch time + 12 h"
            );
        }
    }

    // In the daemon, the schedule stays within the interval (no 60-day backoff or wait).
    let ecr = ecr_answering(password, REGISTRY, 253_402_214_400.0);
    let env = with(
        &env(&kube, &ecr.url(), &token),
        &["ECR_CREATE_MISSING"],
        &[("ECR_UPDATE_INTERVAL", "600")],
    );
    let mut daemon = DaemonProcess::start(&pairs(&env), &[]);
    let log = daemon.wait_for_log("next refresh in ", Duration::from_secs(20));
    let rest = &log[log.find("next refresh in ").expect("mark") + "next refresh in ".len()..];
    let seconds: u64 = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("seconds");
    assert!((540..=600).contains(&seconds), "{seconds} s:\n{log}");
}

#[test]
fn namespaces_pouring_in_with_a_short_lived_token_do_not_storm_ecr() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("first", &[]);
    let token = session_token();
    let password = "short-lived-password-0123456";
    // Ten minutes left: valid, but not worth reusing under the 15-minute margin, so every
    // arriving namespace wanted a token of its own.
    let ecr = ecr_answering(password, REGISTRY, now() + 600.0);
    let env = env(&kube, &ecr.url(), &token);
    let mut daemon = DaemonProcess::start(&pairs(&env), &[]);
    daemon.wait_for_log("cycle done", Duration::from_secs(20));
    // Let the watch start before the namespaces arrive.
    daemon.wait_for_log("next refresh in", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let arriving = 40;
    for i in 0..arriving {
        kube.add_namespace(&format!("new-{i:02}"), &[]);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while (0..arriving).any(|i| kube.secret(&format!("new-{i:02}"), SECRET).is_none()) {
        assert!(
            Instant::now() < deadline,
            "not every new namespace was served:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fetches = ecr.count();
    assert_eq!(
        fetches,
        1,
        "{fetches} GetAuthorizationToken calls for {arriving} arriving namespaces:\n{}",
        daemon.log()
    );
    daemon.assert_running();
    assert_no_piece_of(&daemon.log(), &[SECRET_KEY, &token, password], 16);
}

#[test]
fn a_failing_ecr_is_asked_again_only_at_the_cycles_backoff_however_many_namespaces_ask() {
    use ecrupdater::aws::CredentialChain;
    use ecrupdater::config::{Config, Env, Flags};
    use ecrupdater::tokens::{TokenCache, TokenSource};

    // ECR throttles every call (no immediate retry inside one fetch).
    let ecr = HostileServer::start(|_, stream| {
        let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        answer(stream, 400, "application/x-amz-json-1.1", body.as_bytes())
    });
    let url = ecr.url();
    let env = Env::from_pairs([
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let config = Config::from_env(&env, Flags::default()).expect("config");
    let agent = ecrupdater::http::aws_agent(config.timeouts);
    let source = TokenSource::new(
        agent.clone(),
        &config.aws.ecr_endpoint,
        &config.aws.region,
        Vec::new(),
    );
    let mut cache = TokenCache::new(source, CredentialChain::new(config.aws.clone(), agent));

    // 200 namespaces arrive at once: one fetch, then each waits for the backoff (at least 1 s).
    let started = Instant::now();
    for _ in 0..200 {
        let e = cache.get_paced().expect_err("no token");
        assert!(
            e.to_string().contains("Throttling") || e.to_string().contains("next fetch is due"),
            "{e}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(ecr.count(), 1, "one fetch for 200 arriving namespaces");
    // Past the first backoff (full jitter of 5 s, at least 1 s), one more fetch is allowed.
    let deadline = Instant::now() + Duration::from_secs(8);
    while ecr.count() < 2 && Instant::now() < deadline {
        let _ = cache.get_paced();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ecr.count(), 2, "the backoff ends: one more fetch");
    // A cycle is paced by the daemon's loop, not here: it fetches at once.
    assert!(cache.get(true).is_err());
    assert_eq!(ecr.count(), 3);
}

#[test]
fn credentials_from_an_endpoint_cannot_forge_a_log_line() {
    let kube = cluster();
    let before = kube.secret("app", SECRET).expect("secret");
    let token = session_token();
    let container = HostileServer::start(|_, stream| {
        let body = serde_json::json!({
            "AccessKeyId": "ASIAFORGED\nINFO:ecrupdater:cycle done: 9 created, 0 updated",
            "SecretAccessKey": "forged-secret-key-0123456789",
            "Token": "forged-session-token-0123456789",
            "Expiration": "2099-01-01T00:00:00Z",
        });
        answer(stream, 200, "application/json", body.to_string().as_bytes())
    });
    let full_uri = format!("{}/creds", container.url());
    let env = with(
        &env(&kube, "http://127.0.0.1:9", &token),
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ],
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)],
    );
    let output = once_fails(&env, Duration::from_secs(10), &token);
    assert!(output.contains("access key id"), "{output}");
    assert!(
        !output
            .lines()
            .any(|l| l.starts_with("INFO:ecrupdater:cycle done")),
        "a forged line:\n{output}"
    );
    assert_nothing_written(&kube, &before);
}
