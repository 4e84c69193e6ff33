//! The AWS credential chain through the library, against small servers these tests start on
//! 127.0.0.1: a fake STS (XML answers like the real one), an instance metadata service (IMDSv2
//! and its v1 fallback), and a container credentials endpoint. No third-party peer needed, so
//! these always run. They prove the SDK precedence, the caching and renewal, the re-reading of
//! rotating token files, the profile chains, ECR_ASSUME_ROLE_ARN on top, that a failing source
//! is reported by name and not skipped, and that no credential reaches an error message.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use ecrupdater::aws::{CredentialChain, Credentials};
use ecrupdater::config::{Config, Env, Flags};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use common::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/ecr-reader";
const ENV_SECRET: &str = "env-secret-access-key-0001";
const CONTAINER_TOKEN: &str = "container-authorization-token-0001";
const WEB_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.web-identity-token-0001.sig";
const IMDS_TOKEN: &str = "imds-session-token-AQAEAK-0001";

/// A chain over `pairs` (after a base that disables IMDS and points HOME nowhere).
fn chain(pairs: &[(&str, &str)]) -> CredentialChain {
    let mut all: Vec<(&str, &str)> = vec![
        ("K8S_PULL_SECRET_NAME", "ecr-pull"),
        ("AWS_REGION", "eu-west-1"),
        ("HOME", "/nonexistent-home"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    all.extend_from_slice(pairs);
    let config = Config::from_env(&Env::from_pairs(all), Flags::default()).expect("valid config");
    CredentialChain::new(config.aws, ecrupdater::http::aws_agent(config.timeouts))
}

fn owned(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn rfc3339_in(d: time::Duration) -> String {
    (OffsetDateTime::now_utc() + d)
        .format(&Rfc3339)
        .expect("format time")
}

/// The secret key and session token a fake server hands out with `key_id`.
fn secret_of(key_id: &str) -> String {
    format!("secret-of-{key_id}-0001")
}
fn token_of(key_id: &str) -> String {
    format!("session-token-of-{key_id}-0001")
}

/// The key id in a SigV4 Authorization header.
fn signer(req: &TinyRequest) -> Option<String> {
    let auth = req.header("authorization")?;
    let rest = auth.split("Credential=").nth(1)?;
    Some(rest.split('/').next()?.to_string())
}

/// A fake STS: AssumeRoleWithWebIdentity gives `ASIAWEB<ROLE>`, AssumeRole (which must be
/// signed) `ASIAROLE<ROLE>`; credentials expire after `lifetime`.
fn fake_sts(lifetime: time::Duration) -> TinyServer {
    TinyServer::start(move |req| {
        let action = req.form("Action").unwrap_or_default();
        let role = req.form("RoleArn").unwrap_or_default();
        let tail = role
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "");
        let key_id = match action.as_str() {
            "AssumeRoleWithWebIdentity" => format!("ASIAWEB{tail}"),
            "AssumeRole" if signer(req).is_some() => format!("ASIAROLE{tail}"),
            _ => {
                return (
                    403,
                    "text/xml",
                    "<ErrorResponse><Error><Type>Sender</Type><Code>MissingAuthenticationToken</Code>\
                     <Message>Request is missing Authentication Token</Message></Error></ErrorResponse>"
                        .to_string(),
                );
            }
        };
        let body = format!(
            "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
             <Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
             </{action}Result></{action}Response>",
            secret_of(&key_id),
            token_of(&key_id),
            rfc3339_in(lifetime)
        );
        (200, "text/xml", body)
    })
}

/// The JSON document IMDS and container endpoints answer with.
fn credential_document(key_id: &str, lifetime: time::Duration) -> String {
    serde_json::json!({
        "Code": "Success",
        "AccessKeyId": key_id,
        "SecretAccessKey": secret_of(key_id),
        "Token": token_of(key_id),
        "Expiration": rfc3339_in(lifetime),
    })
    .to_string()
}

/// How a fake IMDS answers the token PUT.
#[derive(Clone, Copy)]
enum TokenPut {
    /// 200 with a token; GETs must carry it.
    Grant,
    /// That status (kube2iam-style proxies answer 403, 404 or 405).
    Refuse(u16),
    /// Never answers (a hop limit of 1 looks like this from a pod).
    Silent,
}

fn fake_imds(put: TokenPut, key_id: &'static str) -> TinyServer {
    TinyServer::start(move |req| {
        if req.method == "PUT" && req.path == "/latest/api/token" {
            return match put {
                TokenPut::Grant => {
                    assert_eq!(
                        req.header("x-aws-ec2-metadata-token-ttl-seconds"),
                        Some("21600")
                    );
                    (200, "text/plain", IMDS_TOKEN.to_string())
                }
                TokenPut::Refuse(status) => (status, "text/plain", String::new()),
                TokenPut::Silent => {
                    std::thread::sleep(Duration::from_secs(4));
                    (200, "text/plain", IMDS_TOKEN.to_string())
                }
            };
        }
        if matches!(put, TokenPut::Grant)
            && req.header("x-aws-ec2-metadata-token") != Some(IMDS_TOKEN)
        {
            return (401, "text/plain", String::new());
        }
        match req.path.as_str() {
            "/latest/meta-data/iam/security-credentials/" => {
                (200, "text/plain", "ecr-node-role\n".to_string())
            }
            "/latest/meta-data/iam/security-credentials/ecr-node-role" => (
                200,
                "application/json",
                credential_document(key_id, time::Duration::hours(6)),
            ),
            _ => (404, "text/plain", String::new()),
        }
    })
}

/// A container endpoint demanding `Authorization: <token>` (the token in `expected`, which the
/// test may change), handing out `key_id` for `lifetime`.
fn fake_container(
    expected: std::sync::Arc<std::sync::Mutex<String>>,
    key_id: &'static str,
    lifetime: time::Duration,
) -> TinyServer {
    TinyServer::start(move |req| {
        let want = expected.lock().expect("token").clone();
        if req.header("authorization") != Some(want.as_str()) {
            return (
                401,
                "application/json",
                r#"{"code":"AccessDeniedException","message":"invalid authorization token"}"#
                    .to_string(),
            );
        }
        (
            200,
            "application/json",
            credential_document(key_id, lifetime),
        )
    })
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("write test file");
    path.to_str().expect("utf-8 path").to_string()
}

fn every_secret(key_ids: &[&str]) -> Vec<String> {
    let mut all = vec![
        ENV_SECRET.to_string(),
        CONTAINER_TOKEN.to_string(),
        WEB_TOKEN.to_string(),
        IMDS_TOKEN.to_string(),
        "profile-secret-key-0001".to_string(),
    ];
    for id in key_ids {
        all.push(secret_of(id));
        all.push(token_of(id));
    }
    all
}

fn assert_clean(text: &str, key_ids: &[&str]) {
    let secrets = every_secret(key_ids);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_credentials(text, &refs);
}

#[test]
fn the_first_source_that_applies_wins_in_sdk_order() {
    let sts = fake_sts(time::Duration::hours(1));
    let container_token = std::sync::Arc::new(std::sync::Mutex::new(CONTAINER_TOKEN.to_string()));
    let container = fake_container(container_token, "ASIACONTAINER", time::Duration::hours(6));
    let imds = fake_imds(TokenPut::Grant, "ASIAIMDS");
    let dir = temp_dir("chain-precedence");
    let token_file = write(&dir.join("token"), WEB_TOKEN);
    let credentials_file = write(
        &dir.join("credentials"),
        "[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret-key-0001\n",
    );
    let all: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", sts.url()),
        ("AWS_ACCESS_KEY_ID", "AKIAENV".to_string()),
        ("AWS_SECRET_ACCESS_KEY", ENV_SECRET.to_string()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file),
        ("AWS_ROLE_ARN", ROLE.to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials_file),
        (
            "AWS_CONFIG_FILE",
            dir.join("no-config").display().to_string(),
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", container.url()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            CONTAINER_TOKEN.to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // Each step removes the winner of the step before.
    let steps: [(&[&str], &str, &str); 5] = [
        (&[], "AKIAENV", "environment"),
        (
            &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            "ASIAWEBECRREADER",
            "web identity",
        ),
        (&["AWS_WEB_IDENTITY_TOKEN_FILE"], "AKIAPROFILE", "profile"),
        (
            &["AWS_SHARED_CREDENTIALS_FILE"],
            "ASIACONTAINER",
            "container",
        ),
        (
            &["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
            "ASIAIMDS",
            "instance metadata",
        ),
    ];
    let mut removed: Vec<&str> = Vec::new();
    for (remove, key_id, source) in steps {
        removed.extend_from_slice(remove);
        let pairs: Vec<(String, String)> = all
            .iter()
            .filter(|(k, _)| !removed.contains(&k.as_str()))
            .cloned()
            .collect();
        for server in [&sts, &container, &imds] {
            server.clear();
        }
        let c = chain(&owned(&pairs)).credentials().expect("credentials");
        assert_eq!(
            (c.access_key_id.as_str(), c.source),
            (key_id, source),
            "after removing {removed:?}"
        );
        // Sources after the winner are never asked.
        let asked = |s: &TinyServer| !s.requests().is_empty();
        match source {
            "environment" | "profile" => {
                assert!(!asked(&sts) && !asked(&container) && !asked(&imds))
            }
            "web identity" => assert!(asked(&sts) && !asked(&container) && !asked(&imds)),
            "container" => assert!(asked(&container) && !asked(&imds)),
            _ => assert!(asked(&imds)),
        }
    }

    // AWS_PROFILE does not outrank the environment's keys (as in the Go, Java and Python SDKs).
    let mut with_profile = all.clone();
    with_profile.push(("AWS_PROFILE".into(), "default".into()));
    let c = chain(&owned(&with_profile))
        .credentials()
        .expect("credentials");
    assert_eq!(c.source, "environment");
}

#[test]
fn a_profile_without_credentials_lets_the_chain_go_on() {
    let token = std::sync::Arc::new(std::sync::Mutex::new(CONTAINER_TOKEN.to_string()));
    let container = fake_container(token, "ASIACONTAINER", time::Duration::hours(6));
    let dir = temp_dir("chain-region-only");
    let config_file = write(&dir.join("config"), "[default]\nregion = eu-west-1\n");
    let uri = format!("{}/creds", container.url());
    let c = chain(&[
        ("AWS_CONFIG_FILE", &config_file),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN),
    ])
    .credentials()
    .expect("credentials");
    assert_eq!(c.source, "container");
}

#[test]
fn nothing_applies_lists_every_source_and_why() {
    let e = chain(&[]).credentials().expect_err("no source").to_string();
    for part in [
        "no source applies",
        "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
        "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set",
        "profile: no profile `default`: no file at /nonexistent-home/.aws/credentials or /nonexistent-home/.aws/config",
        "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set",
        "instance metadata: AWS_EC2_METADATA_DISABLED is true",
    ] {
        assert!(e.contains(part), "missing {part:?} in: {e}");
    }
}

#[test]
fn temporary_credentials_are_cached_until_five_minutes_before_expiry() {
    let dir = temp_dir("chain-cache");
    let token_file = write(&dir.join("token"), WEB_TOKEN);
    // An hour of validity: the second call is served from the cache.
    let sts = fake_sts(time::Duration::hours(1));
    let url = sts.url();
    let env = [
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.as_str()),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_ROLE_SESSION_NAME", "cache-test"),
    ];
    let mut c = chain(&env);
    let first = c.credentials().expect("first");
    let second = c.credentials().expect("second");
    assert_eq!(first.access_key_id, second.access_key_id);
    assert_eq!(sts.requests().len(), 1, "one STS call for two fetches");
    let req = &sts.requests()[0];
    assert_eq!(req.form("RoleSessionName").as_deref(), Some("cache-test"));
    assert!(
        req.header("authorization").is_none(),
        "AssumeRoleWithWebIdentity is unsigned"
    );
    assert!(first.expires_at.is_some() && first.session_token.is_some());

    // Four minutes of validity: inside the renewal margin, so every fetch renews, and each
    // renewal re-reads the token file (the kubelet rotates it).
    let sts = fake_sts(time::Duration::minutes(4));
    let url = sts.url();
    let mut c = chain(&[
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.as_str()),
        ("AWS_ROLE_ARN", ROLE),
    ]);
    c.credentials().expect("first");
    let rotated = "eyJhbGciOiJSUzI1NiJ9.rotated-token-0002.sig";
    write(&dir.join("token"), &format!("{rotated}\n"));
    c.credentials().expect("second");
    let tokens: Vec<String> = sts
        .requests()
        .iter()
        .filter_map(|r| r.form("WebIdentityToken"))
        .collect();
    assert_eq!(tokens, [WEB_TOKEN, rotated]);
    let session = sts.requests()[0]
        .form("RoleSessionName")
        .unwrap_or_default();
    assert!(session.starts_with("k8s-ecrupdater-"), "{session}");
}

#[test]
fn web_identity_refused_by_sts_is_an_error_naming_the_source() {
    let sts = TinyServer::start(|_| {
        (
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
             <Message>Couldn't retrieve verification key from your identity provider</Message>\
             </Error></ErrorResponse>"
                .to_string(),
        )
    });
    let imds = fake_imds(TokenPut::Grant, "ASIAIMDS");
    let dir = temp_dir("chain-webid-refused");
    let token_file = write(&dir.join("token"), WEB_TOKEN);
    let (sts_url, imds_url) = (sts.url(), imds.url());
    let e = chain(&[
        ("AWS_ENDPOINT_URL", &sts_url),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds_url),
    ])
    .credentials()
    .expect_err("refused")
    .to_string();
    assert!(
        e.starts_with("AWS credentials from web identity: STS AssumeRoleWithWebIdentity failed: HTTP 400 InvalidIdentityToken"),
        "{e}"
    );
    assert!(imds.requests().is_empty(), "no silent fall-through to IMDS");
    assert_clean(&e, &[]);
}

#[test]
fn imds_v2_uses_a_session_token() {
    let imds = fake_imds(TokenPut::Grant, "ASIAIMDSV2");
    let url = imds.url();
    let c = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
    ])
    .credentials()
    .expect("credentials");
    assert_eq!(c.access_key_id, "ASIAIMDSV2");
    assert_eq!(c.source, "instance metadata");
    assert_eq!(
        c.session_token.as_ref().map(|t| t.expose().to_string()),
        Some(token_of("ASIAIMDSV2"))
    );
    let requests = imds.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>(),
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/ecr-node-role"
        ]
    );
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.header("x-aws-ec2-metadata-token") == Some(IMDS_TOKEN))
    );
}

#[test]
fn imds_falls_back_to_v1_when_the_token_put_is_refused() {
    for status in [403, 404, 405] {
        let imds = fake_imds(TokenPut::Refuse(status), "ASIAIMDSV1");
        let url = imds.url();
        let c = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
        ])
        .credentials()
        .expect("credentials through IMDSv1");
        assert_eq!(c.access_key_id, "ASIAIMDSV1", "after a {status}");
        let gets: Vec<TinyRequest> = imds
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .collect();
        assert_eq!(gets.len(), 2);
        assert!(
            gets.iter()
                .all(|r| r.header("x-aws-ec2-metadata-token").is_none())
        );
    }

    // AWS_EC2_METADATA_V1_DISABLED forbids the fallback.
    let imds = fake_imds(TokenPut::Refuse(405), "ASIAIMDSV1");
    let url = imds.url();
    let e = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
        ("AWS_EC2_METADATA_V1_DISABLED", "true"),
    ])
    .credentials()
    .expect_err("v1 forbidden")
    .to_string();
    assert!(e.contains("AWS_EC2_METADATA_V1_DISABLED"), "{e}");
    assert!(
        e.starts_with("AWS credentials from instance metadata"),
        "{e}"
    );
}

#[test]
fn imds_falls_back_to_v1_when_the_token_put_is_never_answered() {
    let imds = fake_imds(TokenPut::Silent, "ASIAIMDSV1");
    let url = imds.url();
    let start = Instant::now();
    let c = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
    ])
    .credentials()
    .expect("credentials through IMDSv1");
    assert_eq!(c.access_key_id, "ASIAIMDSV1");
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_cluster_without_imds_fails_fast_and_explains() {
    // Nothing listens: refused at once.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let start = Instant::now();
    let e = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &closed),
    ])
    .credentials()
    .expect_err("no IMDS")
    .to_string();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        e.starts_with("AWS credentials from instance metadata, the only source that applies (environment: AWS_ACCESS_KEY_ID"),
        "{e}"
    );
    assert!(
        e.contains("IMDS PUT /latest/api/token failed: no answer"),
        "{e}"
    );

    // Something accepts connections but never answers: the short timeouts bound the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let start = Instant::now();
    let e = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &silent_url),
    ])
    .credentials()
    .expect_err("silent IMDS")
    .to_string();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(2600), "took {took:?}");
    assert!(e.contains("instance metadata"), "{e}");
}

#[test]
fn imds_without_an_instance_profile() {
    let imds = TinyServer::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", _) => (200, "text/plain", IMDS_TOKEN.to_string()),
        _ => (404, "text/html", "<html>Not Found</html>".to_string()),
    });
    let url = imds.url();
    let e = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
    ])
    .credentials()
    .expect_err("no role")
    .to_string();
    assert!(
        e.contains("no IAM role (instance profile) is attached"),
        "{e}"
    );
}

#[test]
fn container_token_file_is_checked_and_re_read() {
    let dir = temp_dir("chain-container");
    let token_path = dir.join("eks-pod-identity-token");
    let token_file = write(&token_path, CONTAINER_TOKEN);
    let expected = std::sync::Arc::new(std::sync::Mutex::new(CONTAINER_TOKEN.to_string()));
    // Four minutes: every fetch renews.
    let container = fake_container(
        std::sync::Arc::clone(&expected),
        "ASIAPODIDENTITY",
        time::Duration::minutes(4),
    );
    let uri = format!("{}/v1/credentials", container.url());
    let mut c = chain(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
        // The file wins over the variable.
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "ignored-token-value-0001",
        ),
    ]);
    assert_eq!(
        c.credentials().expect("first").access_key_id,
        "ASIAPODIDENTITY"
    );

    let rotated = "container-authorization-token-0002";
    *expected.lock().expect("token") = rotated.to_string();
    write(&token_path, rotated);
    assert_eq!(c.credentials().expect("rotated").source, "container");
    let sent: Vec<String> = container
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(sent, [CONTAINER_TOKEN, rotated]);

    // The endpoint now refuses the token. The chain still holds credentials that have not
    // expired (four minutes left): it keeps using them rather than fail early.
    *expected.lock().expect("token") = "something-else-entirely".to_string();
    let kept = c.credentials().expect("still valid");
    assert_eq!(kept.access_key_id, "ASIAPODIDENTITY");
    assert_eq!(container.requests().len(), 3, "a renewal was tried");

    // Without such credentials, the refusal is reported as the container source's failure.
    let mut c = chain(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
    ]);
    let e = c.credentials().expect_err("refused").to_string();
    assert!(
        e.starts_with(&format!(
            "AWS credentials from container: GET {uri} failed: HTTP 401 AccessDeniedException"
        )),
        "{e}"
    );
    assert_clean(&e, &["ASIAPODIDENTITY"]);
    assert!(!e.contains(rotated));
}

#[test]
fn profile_chains_assume_each_role_with_the_previous_credentials() {
    let sts = fake_sts(time::Duration::hours(1));
    let dir = temp_dir("chain-profiles");
    let credentials_file = write(
        &dir.join("credentials"),
        "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = profile-secret-key-0001\n",
    );
    let config_file = write(
        &dir.join("config"),
        "[profile middle]\nrole_arn = arn:aws:iam::123456789012:role/middle\nsource_profile = base\n\n\
         [profile top]\nrole_arn = arn:aws:iam::123456789012:role/top\nsource_profile = middle\n\
         external_id = ext-id-42\nrole_session_name = top-session\n",
    );
    let url = sts.url();
    let c = chain(&[
        ("AWS_ENDPOINT_URL", &url),
        ("AWS_SHARED_CREDENTIALS_FILE", &credentials_file),
        ("AWS_CONFIG_FILE", &config_file),
        ("AWS_PROFILE", "top"),
    ])
    .credentials()
    .expect("credentials");
    assert_eq!(
        (c.access_key_id.as_str(), c.source),
        ("ASIAROLETOP", "profile")
    );
    let requests = sts.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(signer(&requests[0]).as_deref(), Some("AKIABASE"));
    assert_eq!(
        requests[0].form("RoleArn").as_deref(),
        Some("arn:aws:iam::123456789012:role/middle")
    );
    assert_eq!(requests[0].form("ExternalId"), None);
    assert_eq!(signer(&requests[1]).as_deref(), Some("ASIAROLEMIDDLE"));
    assert_eq!(
        requests[1].header("x-amz-security-token"),
        Some(token_of("ASIAROLEMIDDLE").as_str())
    );
    assert_eq!(requests[1].form("ExternalId").as_deref(), Some("ext-id-42"));
    assert_eq!(
        requests[1].form("RoleSessionName").as_deref(),
        Some("top-session")
    );
    assert!(
        requests[1]
            .header("authorization")
            .is_some_and(|a| a.contains("/eu-west-1/sts/aws4_request")),
        "signed for the sts service in the region"
    );
}

#[test]
fn profile_problems_are_explained() {
    let dir = temp_dir("chain-profile-problems");
    let config_file = write(
        &dir.join("config"),
        "[profile process]\ncredential_process = /opt/bin/creds --json\n\n\
         [profile dangling]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = gone\n",
    );
    let problem = |profile: &str| {
        chain(&[("AWS_CONFIG_FILE", &config_file), ("AWS_PROFILE", profile)])
            .credentials()
            .expect_err("refused")
            .to_string()
    };
    let e = problem("process");
    assert!(
        e.starts_with("AWS credentials from profile `process`:")
            && e.contains("credential_process, which cannot work here")
            && e.contains("scratch image"),
        "{e}"
    );
    let e = problem("dangling");
    assert!(
        e.contains("profile `gone` (the source_profile of `dangling`) is not in"),
        "{e}"
    );
    let e = problem("absent");
    assert!(
        e.starts_with("AWS credentials from profile `absent`: AWS_PROFILE absent: no such profile"),
        "{e}"
    );
}

#[test]
fn ecr_assume_role_goes_on_top_of_the_chain() {
    let sts = fake_sts(time::Duration::minutes(4));
    let imds = fake_imds(TokenPut::Grant, "ASIAIMDSBASE");
    let (sts_url, imds_url) = (sts.url(), imds.url());
    let mut c = chain(&[
        ("AWS_ENDPOINT_URL", &sts_url),
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds_url),
        (
            "ECR_ASSUME_ROLE_ARN",
            "arn:aws:iam::210987654321:role/registry-reader",
        ),
        ("ECR_ASSUME_ROLE_EXTERNAL_ID", "shared-ext-id"),
    ]);
    let first: Credentials = c.credentials().expect("assumed");
    assert_eq!(first.access_key_id, "ASIAROLEREGISTRYREADER");
    assert_eq!(first.source, "instance metadata + ECR_ASSUME_ROLE_ARN");
    let req = &sts.requests()[0];
    assert_eq!(signer(req).as_deref(), Some("ASIAIMDSBASE"));
    assert_eq!(req.form("ExternalId").as_deref(), Some("shared-ext-id"));
    assert_eq!(
        req.form("RoleSessionName").as_deref(),
        Some("k8s-ecrupdater")
    );

    // The role's credentials last four minutes, so the next fetch renews them; the base (six
    // hours) comes from the cache: IMDS is not asked again.
    let imds_calls = imds.requests().len();
    c.credentials().expect("renewed");
    assert_eq!(sts.requests().len(), 2);
    assert_eq!(imds.requests().len(), imds_calls);
}

#[test]
fn ecr_assume_role_refused_names_what_failed() {
    let sts = TinyServer::start(|_| {
        (
            403,
            "text/xml",
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/u \
             is not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>"
                .to_string(),
        )
    });
    let url = sts.url();
    let e = chain(&[
        ("AWS_ENDPOINT_URL", &url),
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", ENV_SECRET),
        ("ECR_ASSUME_ROLE_ARN", ROLE),
    ])
    .credentials()
    .expect_err("refused")
    .to_string();
    assert!(
        e.starts_with("AWS credentials from ECR_ASSUME_ROLE_ARN (with the environment credentials): STS AssumeRole failed: HTTP 403 AccessDenied"),
        "{e}"
    );
    assert_clean(&e, &[]);
}
