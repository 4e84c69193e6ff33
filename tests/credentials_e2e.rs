//! End-to-end: the real binary finds its AWS credentials through each source of the chain and
//! fetches an ECR token from moto's server with SigV4 checking ON (moto rejects any credential
//! it did not issue), then writes the pull secret into the fake API server. The metadata and
//! container endpoints are tiny servers the tests start on 127.0.0.1 that hand out moto's
//! credentials; a small forward proxy started by a test shows that AWS calls go through
//! HTTPS_PROXY and the Kubernetes API calls do not. Every run logs at TRACE and no credential may
//! appear in its output. Needs `moto_server` and `python3` with boto3: the tests that use them are
//! `#[ignore = "needs ..."]`, run (and the peers installed) by scripts/test.sh.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use common::fake::*;
use common::*;

/// The password moto's GetAuthorizationToken hands out.
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const SECRET: &str = "ecr-pull";
/// Every session token moto issues starts with this: none may be printed.
const MOTO_TOKEN_PREFIX: &str = "FQoGZXIvYXdzE";
const IMDS_TOKEN: &str = "imds-v2-session-token-0001";
const CONTAINER_TOKEN: &str = "eks-pod-identity-token-0001";

struct Setup {
    moto: Peer,
    keys: MotoKeys,
    kube: RbacKube,
}

fn setup() -> Setup {
    let (moto, keys) = start_moto();
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    Setup { moto, keys, kube }
}

impl Setup {
    fn moto_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto.port)
    }

    /// The settings every run shares; `extra` adds or overrides.
    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("K8S_PULL_SECRET_NAME", SECRET.to_string()),
            ("AWS_DEFAULT_REGION", "eu-west-1".to_string()),
            ("AWS_ENDPOINT_URL", self.moto_url()),
            ("KUBERNETES_API_ENDPOINT", self.kube.base_url()),
            ("ECR_CREATE_MISSING", "true".to_string()),
            ("LOG_LEVEL", "TRACE".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    fn run(&self, extra: &[(&str, &str)]) -> Finished {
        let env = self.env(extra);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let finished = run(&pairs, &["--once"], Duration::from_secs(30));
        let mut secrets = vec![
            self.keys.secret_access_key.as_str(),
            self.keys.session_secret_access_key.as_str(),
            self.keys.session_token.as_str(),
            MOTO_TOKEN_PREFIX,
            MOTO_PASSWORD,
            IMDS_TOKEN,
            CONTAINER_TOKEN,
        ];
        let auth = STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"));
        secrets.push(&auth);
        assert_no_credentials(&finished.output(), &secrets);
        finished
    }

    /// The run succeeded with credentials from `source`, and the secret holds moto's login.
    fn assert_token_fetched(&self, run: &Finished, source: &str) {
        let out = run.output();
        assert_eq!(run.status, 0, "--once should succeed:\n{out}");
        assert!(
            out.contains(&format!("(credentials from {source})")),
            "the token log line should name the source {source:?}:\n{out}"
        );
        let secret = self.kube.secret("app", SECRET).expect("secret created");
        let payload = STANDARD
            .decode(
                secret["data"][".dockerconfigjson"]
                    .as_str()
                    .expect("payload"),
            )
            .expect("base64");
        let payload = String::from_utf8(payload).expect("utf-8");
        assert!(payload.contains(MOTO_PASSWORD), "{payload}");
    }
}

/// A credential document (IMDS and container endpoints) with moto's session credentials.
fn moto_document(keys: &MotoKeys) -> String {
    let expires = (OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&Rfc3339)
        .expect("time");
    serde_json::json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": keys.session_access_key_id,
        "SecretAccessKey": keys.session_secret_access_key,
        "Token": keys.session_token,
        "Expiration": expires,
    })
    .to_string()
}

/// An IMDS handing out moto's session credentials; `token_put` is the status of the token PUT
/// (200 grants `IMDS_TOKEN`, which the GETs must then carry).
fn imds(keys: &MotoKeys, token_put: u16) -> TinyServer {
    let document = moto_document(keys);
    TinyServer::start(move |req| {
        if req.method == "PUT" {
            let body = if token_put == 200 { IMDS_TOKEN } else { "" };
            return (token_put, "text/plain", body.to_string());
        }
        if token_put == 200 && req.header("x-aws-ec2-metadata-token") != Some(IMDS_TOKEN) {
            return (401, "text/plain", String::new());
        }
        match req.path.as_str() {
            "/latest/meta-data/iam/security-credentials/" => {
                (200, "text/plain", "node-role".to_string())
            }
            "/latest/meta-data/iam/security-credentials/node-role" => {
                (200, "application/json", document.clone())
            }
            _ => (404, "text/plain", String::new()),
        }
    })
}

fn imds_env(server: &TinyServer) -> [(&'static str, String); 2] {
    [
        ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url()),
    ]
}

fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn assume_role_credentials_with_session_token_fetch_an_ecr_token() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    // The IAM user's long-lived keys in the environment; ECR_ASSUME_ROLE_ARN turns them into
    // the role's session credentials (signed AssumeRole at moto's STS), which then sign the
    // ECR call, session token included. moto checks both signatures.
    let run = s.run(&[
        ("AWS_ACCESS_KEY_ID", s.keys.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s.keys.secret_access_key.as_str()),
        ("ECR_ASSUME_ROLE_ARN", s.keys.role_arn.as_str()),
    ]);
    s.assert_token_fetched(&run, "environment + ECR_ASSUME_ROLE_ARN");
    let out = run.output();
    assert!(
        out.contains(&format!(
            "AWS credentials from ECR_ASSUME_ROLE_ARN {}",
            s.keys.role_arn
        )),
        "{out}"
    );
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn a_wrong_session_token_is_refused_and_reported() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    let bad_token = "FQoGZXIvYXdzEWRONGwrongwrongwrong0001";
    let run = s.run(&[
        ("AWS_ACCESS_KEY_ID", s.keys.session_access_key_id.as_str()),
        (
            "AWS_SECRET_ACCESS_KEY",
            s.keys.session_secret_access_key.as_str(),
        ),
        ("AWS_SESSION_TOKEN", bad_token),
        ("ECR_ASSUME_ROLE_ARN", s.keys.role_arn.as_str()),
    ]);
    let out = run.output();
    assert_eq!(run.status, 1, "{out}");
    assert!(
        out.contains(
            "AWS credentials from ECR_ASSUME_ROLE_ARN (with the environment credentials): \
             STS AssumeRole failed: HTTP 403 InvalidClientTokenId"
        ),
        "{out}"
    );
    assert!(s.kube.secret("app", SECRET).is_none(), "nothing written");
    assert_no_credentials(&out, &[bad_token]);
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn web_identity_through_moto_sts() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    // moto 5 answers an UNSIGNED AssumeRoleWithWebIdentity with a 500 while signature checking
    // is on (it never validates the web identity token either), so this case runs with
    // checking switched off. The signed calls are covered by the other tests.
    moto_reset_auth(s.moto.port, "inf");
    let dir = temp_dir("e2e-web-identity");
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLTAwMDE";
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).expect("token file");
    let run = s.run(&[
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.to_str().expect("path"),
        ),
        ("AWS_ROLE_ARN", s.keys.role_arn.as_str()),
        ("AWS_ROLE_SESSION_NAME", "irsa-e2e"),
    ]);
    s.assert_token_fetched(&run, "web identity");
    assert_no_credentials(&run.output(), &[token]);
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn imds_v2_hands_out_credentials_moto_accepts() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    let server = imds(&s.keys, 200);
    let run = s.run(&borrowed(&imds_env(&server)));
    s.assert_token_fetched(&run, "instance metadata");
    let requests = server.requests();
    assert_eq!(requests[0].method, "PUT");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.header("x-aws-ec2-metadata-token") == Some(IMDS_TOKEN)),
        "IMDSv2: every GET carries the session token"
    );
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn imds_v1_fallback_when_the_token_put_is_refused() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    // kube2iam-style: the token PUT is refused; plain GETs work.
    let server = imds(&s.keys, 405);
    let run = s.run(&borrowed(&imds_env(&server)));
    s.assert_token_fetched(&run, "instance metadata");
    let requests = server.requests();
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests.len(), 3, "PUT, role list, credentials");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.method == "GET" && r.header("x-aws-ec2-metadata-token").is_none())
    );
    assert!(run.output().contains("falling back to IMDSv1"));
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn container_endpoint_with_its_authorization_token_checked() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    let document = moto_document(&s.keys);
    let server = TinyServer::start(move |req| {
        if req.header("authorization") == Some(CONTAINER_TOKEN) {
            (200, "application/json", document.clone())
        } else {
            (
                401,
                "application/json",
                r#"{"code":"AccessDeniedException","message":"bad token"}"#.to_string(),
            )
        }
    });
    let dir = temp_dir("e2e-container");
    let token_file = dir.join("eks-pod-identity-token");
    std::fs::write(&token_file, format!("{CONTAINER_TOKEN}\n")).expect("token file");
    let uri = format!("{}/v1/credentials", server.url());
    let token_path = token_file.to_str().expect("path").to_string();
    let run = s.run(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_path),
    ]);
    s.assert_token_fetched(&run, "container");
    assert_eq!(server.requests()[0].path, "/v1/credentials");

    // A wrong token: refused by the endpoint, reported as the container source's failure.
    std::fs::write(&token_file, "stale-pod-identity-token-0002").expect("token file");
    let run = s.run(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_path),
    ]);
    let out = run.output();
    assert_eq!(run.status, 1, "{out}");
    assert!(
        out.contains(&format!(
            "AWS credentials from container: GET {uri} failed: HTTP 401 AccessDeniedException"
        )),
        "{out}"
    );
    assert_no_credentials(&out, &["stale-pod-identity-token-0002"]);
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn profiles_with_a_source_profile_chain() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    let dir = temp_dir("e2e-profiles");
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s.keys.access_key_id, s.keys.secret_access_key
        ),
    )
    .expect("credentials file");
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = eu-west-1\n\n\
             [profile middle]\nrole_arn = {role}\nsource_profile = base\n\n\
             [profile ecr]\nrole_arn = {role}\nsource_profile = middle\nrole_session_name = e2e-chain\n",
            role = s.keys.role_arn
        ),
    )
    .expect("config file");
    let run = s.run(&[
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.to_str().expect("path"),
        ),
        ("AWS_CONFIG_FILE", config.to_str().expect("path")),
        ("AWS_PROFILE", "ecr"),
    ]);
    s.assert_token_fetched(&run, "profile");
    let out = run.output();
    assert!(
        out.contains("AWS credentials from profile `ecr` (role")
            && out.contains("<- static keys of profile `base`"),
        "{out}"
    );
}

#[test]
#[ignore = "needs moto_server and python3 with boto3 (install: scripts/test.sh, or pip install 'moto[server]>=5.1,<6' boto3)"]
fn aws_calls_go_through_https_proxy_and_the_api_calls_do_not() {
    require_peers(&["moto_server", "python3:boto3"]);
    let s = setup();
    let proxy = ForwardProxy::start();
    let server = imds(&s.keys, 200);
    let mut env = imds_env(&server).to_vec();
    env.push(("HTTPS_PROXY", proxy.url()));
    env.push(("ECR_ASSUME_ROLE_ARN", s.keys.role_arn.clone()));
    let run = s.run(&borrowed(&env));
    s.assert_token_fetched(&run, "instance metadata + ECR_ASSUME_ROLE_ARN");

    let moto = format!("127.0.0.1:{}", s.moto.port);
    let targets = proxy.targets();
    assert!(
        targets.iter().any(|t| t == &moto),
        "STS and ECR go through the proxy: {targets:?}"
    );
    assert!(
        targets.iter().all(|t| t == &moto),
        "only AWS goes through the proxy (not the API server, not IMDS): {targets:?}"
    );
    assert!(!server.requests().is_empty(), "IMDS was asked directly");
    assert!(
        !s.kube.requests().is_empty(),
        "the API server was asked directly"
    );

    // NO_PROXY exempts a host, as the SDKs do.
    let proxy = ForwardProxy::start();
    env.retain(|(k, _)| *k != "HTTPS_PROXY");
    env.push(("HTTPS_PROXY", proxy.url()));
    env.push(("NO_PROXY", "127.0.0.1".to_string()));
    let run = s.run(&borrowed(&env));
    assert_eq!(run.status, 0, "{}", run.output());
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

#[test]
fn no_source_applies_is_one_error_listing_each_source() {
    let kube = kube_with_shipped_rbac();
    let run = run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("KUBERNETES_API_ENDPOINT", &kube.base_url()),
            ("LOG_LEVEL", "TRACE"),
        ],
        &["--once"],
        Duration::from_secs(20),
    );
    let out = run.output();
    assert_eq!(run.status, 1, "{out}");
    for part in [
        "AWS credentials: no source applies: environment: ",
        "; web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set",
        "; profile: no profile `default`: no file at ",
        "; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set",
        "; instance metadata: AWS_EC2_METADATA_DISABLED is true",
    ] {
        assert!(out.contains(part), "missing {part:?}:\n{out}");
    }
}

#[test]
fn bad_credential_settings_exit_with_status_2() {
    let run = run(
        &[
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token"),
        ],
        &["--once"],
        Duration::from_secs(10),
    );
    assert_eq!(run.status, 2, "{}", run.output());
    assert!(
        run.output()
            .contains("AWS_ROLE_ARN: is required when AWS_WEB_IDENTITY_TOKEN_FILE is set"),
        "{}",
        run.output()
    );
}
