//! The AWS part of the configuration: [`AwsSettings`] (region, ECR and STS endpoints) and the
//! settings of each source the credential chain may use (static keys, web identity, the shared
//! files' profile, the container endpoint, IMDS, and a role assumed on top), read from the
//! variables the AWS SDKs use and checked as the SDKs check them (role ARNs, session names,
//! container URIs).

use std::path::PathBuf;

use super::values::{
    UrlKind, default_endpoint, parse_base_url, parse_bool, parse_url, shown, validate_region,
};
use super::{ConfigError, Env};
use crate::sensitive::Sensitive;

/// AWS settings: region, endpoints, and what the credential chain may use.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: String,
    /// `AWS_ENDPOINT_URL_ECR`, else `AWS_ENDPOINT_URL`, else the regional ECR endpoint.
    pub ecr_endpoint: String,
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the regional STS endpoint.
    pub sts_endpoint: String,
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), when set.
    pub static_keys: Option<StaticKeys>,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`), when set.
    pub web_identity: Option<WebIdentitySettings>,
    /// Where the shared credentials and config files are, and which profile to use.
    pub profile: ProfileSettings,
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI` and the authorization token.
    pub container: Option<ContainerSettings>,
    /// The EC2 instance metadata service (IMDS).
    pub imds: ImdsSettings,
    /// `ECR_ASSUME_ROLE_ARN` (+ `ECR_ASSUME_ROLE_EXTERNAL_ID`): a role assumed on top of whatever
    /// the chain found, for registries in another account.
    pub assume_role: Option<AssumeRoleSettings>,
}

/// The web identity source's settings (IRSA on EKS sets them in every pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentitySettings {
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`: re-read on every call, the kubelet rotates it.
    pub token_file: PathBuf,
    /// `AWS_ROLE_ARN`.
    pub role_arn: String,
    /// `AWS_ROLE_SESSION_NAME` (default: `k8s-ecrupdater-<unix time>`).
    pub session_name: Option<String>,
}

/// The shared files source's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSettings {
    /// `AWS_PROFILE`, else `default`.
    pub name: String,
    /// Whether `AWS_PROFILE` named it (a missing named profile is then an error, not a skip).
    pub explicit: bool,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `$HOME/.aws/credentials` (`None` without `HOME`).
    pub credentials_file: Option<PathBuf>,
    /// `AWS_CONFIG_FILE`, else `$HOME/.aws/config` (`None` without `HOME`).
    pub config_file: Option<PathBuf>,
}

/// The container credentials source's settings (ECS task roles, EKS Pod Identity).
#[derive(Debug, Clone)]
pub struct ContainerSettings {
    /// The full URL to GET.
    pub uri: String,
    /// The variable it came from, for messages.
    pub uri_var: &'static str,
    /// The `Authorization` header's value, when there is one.
    pub authorization: Option<ContainerAuthorization>,
}

/// Where the container endpoint's authorization token comes from.
#[derive(Debug, Clone)]
pub enum ContainerAuthorization {
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: re-read on every call (EKS rotates it).
    File(PathBuf),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Token(Sensitive),
}

/// The instance metadata source's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsSettings {
    /// `AWS_EC2_METADATA_DISABLED=true`.
    pub disabled: bool,
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else by `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`
    /// `http://169.254.169.254` (IPv4, default) or `http://[fd00:ec2::254]` (IPv6).
    pub endpoint: String,
    /// `AWS_EC2_METADATA_V1_DISABLED=true`: no IMDSv1 fallback when the token PUT is refused.
    pub v1_disabled: bool,
}

/// A role assumed with the chain's credentials before ECR is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleSettings {
    /// `ECR_ASSUME_ROLE_ARN`.
    pub role_arn: String,
    /// `ECR_ASSUME_ROLE_EXTERNAL_ID`.
    pub external_id: Option<String>,
    /// `ECR_ASSUME_ROLE_SESSION_NAME` (default `k8s-ecrupdater`).
    pub session_name: String,
}

/// Long-lived (or session) keys given directly.
#[derive(Debug, Clone)]
pub struct StaticKeys {
    /// `AWS_ACCESS_KEY_ID`: not secret on its own, and useful in logs to tell keys apart.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Sensitive,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Sensitive>,
}

pub(super) fn aws_settings(env: &Env) -> Result<AwsSettings, ConfigError> {
    let (region_var, region) = match (env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION")) {
        (Some(r), _) => ("AWS_REGION", r),
        (None, Some(r)) => ("AWS_DEFAULT_REGION", r),
        (None, None) => {
            return Err(ConfigError::new(
                "AWS_REGION",
                "is required (or AWS_DEFAULT_REGION), e.g. eu-west-1",
            ));
        }
    };
    validate_region(region).map_err(|problem| ConfigError::new(region_var, problem))?;

    let endpoint = |service_var: &str, service: &str| -> Result<String, ConfigError> {
        match (env.get(service_var), env.get("AWS_ENDPOINT_URL")) {
            (Some(url), _) => parse_base_url(service_var, url),
            (None, Some(url)) => parse_base_url("AWS_ENDPOINT_URL", url),
            (None, None) => Ok(default_endpoint(service, region)),
        }
    };
    check_proxies(env)?;
    // Used only with public.ecr.aws in ECR_REGISTRIES, but checked whenever it is set.
    if let Some(url) = env.get("AWS_ENDPOINT_URL_ECR_PUBLIC") {
        parse_base_url("AWS_ENDPOINT_URL_ECR_PUBLIC", url)?;
    }
    let ecr_endpoint = endpoint("AWS_ENDPOINT_URL_ECR", "api.ecr")?;
    let sts_endpoint = endpoint("AWS_ENDPOINT_URL_STS", "sts")?;

    let static_keys = match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => Some(StaticKeys {
            access_key_id: id.to_string(),
            secret_access_key: Sensitive::new(secret),
            session_token: env.get("AWS_SESSION_TOKEN").map(Sensitive::new),
        }),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "AWS_SECRET_ACCESS_KEY",
                "is required when AWS_ACCESS_KEY_ID is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "AWS_ACCESS_KEY_ID",
                "is required when AWS_SECRET_ACCESS_KEY is set",
            ));
        }
        (None, None) => None,
    };

    // The SDKs' name check: a role ARN is easy to get subtly wrong, and STS's answer is vaguer.
    let role_arn = |name: &str, value: &str| -> Result<String, ConfigError> {
        validate_role_arn(value).map_err(|problem| ConfigError::new(name, problem))?;
        Ok(value.to_string())
    };
    let session_name = |name: &str| -> Result<Option<String>, ConfigError> {
        env.get(name)
            .map(|v| {
                validate_session_name(v)
                    .map(|()| v.to_string())
                    .map_err(|problem| ConfigError::new(name, problem))
            })
            .transpose()
    };

    let web_identity = match env.get("AWS_WEB_IDENTITY_TOKEN_FILE") {
        None => None,
        Some(file) => Some(WebIdentitySettings {
            token_file: PathBuf::from(file),
            role_arn: role_arn(
                "AWS_ROLE_ARN",
                env.get("AWS_ROLE_ARN").ok_or_else(|| {
                    ConfigError::new(
                        "AWS_ROLE_ARN",
                        "is required when AWS_WEB_IDENTITY_TOKEN_FILE is set",
                    )
                })?,
            )?,
            session_name: session_name("AWS_ROLE_SESSION_NAME")?,
        }),
    };

    let home = env.get("HOME").map(PathBuf::from);
    let shared_file = |var: &str, default_name: &str| -> Option<PathBuf> {
        match env.get(var) {
            // Like the SDKs, a leading `~/` means the home folder.
            Some(path) => match (path.strip_prefix("~/"), &home) {
                (Some(rest), Some(home)) => Some(home.join(rest)),
                _ => Some(PathBuf::from(path)),
            },
            None => home.as_ref().map(|h| h.join(".aws").join(default_name)),
        }
    };
    let profile = ProfileSettings {
        name: env.get("AWS_PROFILE").unwrap_or("default").to_string(),
        explicit: env.get("AWS_PROFILE").is_some(),
        credentials_file: shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        config_file: shared_file("AWS_CONFIG_FILE", "config"),
    };

    let container = container_settings(env)?;

    let imds = ImdsSettings {
        disabled: match env.get("AWS_EC2_METADATA_DISABLED") {
            None => false,
            Some(v) => parse_bool("AWS_EC2_METADATA_DISABLED", v)?,
        },
        endpoint: match (
            env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
            env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
        ) {
            (Some(url), _) => parse_base_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)?,
            (None, None) => "http://169.254.169.254".to_string(),
            (None, Some(mode)) if mode.eq_ignore_ascii_case("ipv4") => {
                "http://169.254.169.254".to_string()
            }
            (None, Some(mode)) if mode.eq_ignore_ascii_case("ipv6") => {
                "http://[fd00:ec2::254]".to_string()
            }
            (None, Some(mode)) => {
                return Err(ConfigError::new(
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
                    format!("must be IPv4 or IPv6, got {mode:?}"),
                ));
            }
        },
        v1_disabled: match env.get("AWS_EC2_METADATA_V1_DISABLED") {
            None => false,
            Some(v) => parse_bool("AWS_EC2_METADATA_V1_DISABLED", v)?,
        },
    };

    let assume_role = match (
        env.get("ECR_ASSUME_ROLE_ARN"),
        env.get("ECR_ASSUME_ROLE_EXTERNAL_ID"),
    ) {
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "ECR_ASSUME_ROLE_EXTERNAL_ID",
                "is set but ECR_ASSUME_ROLE_ARN is not",
            ));
        }
        (None, None) => None,
        (Some(arn), external_id) => {
            if let Some(id) = external_id {
                let ok = (2..=1224).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b));
                if !ok {
                    return Err(ConfigError::new(
                        "ECR_ASSUME_ROLE_EXTERNAL_ID",
                        "must be 2 to 1224 characters: letters, digits and +=,.@:/-_",
                    ));
                }
            }
            Some(AssumeRoleSettings {
                role_arn: role_arn("ECR_ASSUME_ROLE_ARN", arn)?,
                external_id: external_id.map(str::to_string),
                session_name: session_name("ECR_ASSUME_ROLE_SESSION_NAME")?
                    .unwrap_or_else(|| "k8s-ecrupdater".to_string()),
            })
        }
    };

    Ok(AwsSettings {
        region: region.to_string(),
        ecr_endpoint,
        sts_endpoint,
        static_keys,
        web_identity,
        profile,
        container,
        imds,
        assume_role,
    })
}

/// The proxy variables ureq reads for the AWS calls (`ureq::Proxy::try_from_env`, in this
/// order; the first valid one wins there, so a mistyped one would silently fall through to the
/// next or to no proxy at all: here any invalid one is refused).
pub const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

fn check_proxies(env: &Env) -> Result<(), ConfigError> {
    for name in PROXY_VARIABLES {
        if let Some(url) = env.get(name) {
            parse_url(name, url, UrlKind::Proxy)?;
        }
    }
    Ok(())
}

/// The container credentials endpoint, as the SDKs accept it: `_RELATIVE_URI` (on
/// 169.254.170.2) wins over `_FULL_URI`, which must be https, a loopback address, or one of the
/// ECS / EKS Pod Identity agent addresses. The token file wins over the token.
fn container_settings(env: &Env) -> Result<Option<ContainerSettings>, ConfigError> {
    const RELATIVE: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    const FULL: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    let (uri, uri_var) = match (env.get(RELATIVE), env.get(FULL)) {
        (Some(path), _) => {
            if !path.starts_with('/') || path.starts_with("//") {
                return Err(ConfigError::new(
                    RELATIVE,
                    format!(
                        "must be a path starting with one '/', got {:?}",
                        shown(path)
                    ),
                ));
            }
            let url = parse_url(
                RELATIVE,
                &format!("http://169.254.170.2{path}"),
                UrlKind::Full,
            )?;
            (url, RELATIVE)
        }
        (None, Some(url)) => {
            let url = parse_url(FULL, url, UrlKind::Full)?;
            if url.starts_with("http://") {
                // parse_url refused user info, so this host is the one connected to.
                let uri: ureq::http::Uri = url
                    .parse()
                    .map_err(|_| ConfigError::new(FULL, "is not a valid URL"))?;
                let host = uri.host().unwrap_or_default();
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                let allowed = host.eq_ignore_ascii_case("localhost")
                    || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(&host)
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !allowed {
                    return Err(ConfigError::new(
                        FULL,
                        format!(
                            "an http:// URL must be on a loopback address or 169.254.170.2, \
                             169.254.170.23 or [fd00:ec2::23] (use https:// otherwise), got host {host:?}"
                        ),
                    ));
                }
            }
            (url, FULL)
        }
        (None, None) => return Ok(None),
    };
    let authorization = match (
        env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    ) {
        (Some(file), _) => Some(ContainerAuthorization::File(PathBuf::from(file))),
        (None, Some(token)) => {
            if token.contains(['\r', '\n']) {
                return Err(ConfigError::new(
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                    "must not contain a line break",
                ));
            }
            Some(ContainerAuthorization::Token(Sensitive::new(token)))
        }
        (None, None) => None,
    };
    Ok(Some(ContainerSettings {
        uri,
        uri_var,
        authorization,
    }))
}

/// `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
fn validate_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].len() > "role/".len()
        && parts[5].starts_with("role/");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "not an IAM role ARN: {arn:?} (expected arn:aws:iam::123456789012:role/name)"
        ))
    }
}

/// An STS role session name: 2 to 64 of letters, digits and `+=,.@_-`.
fn validate_session_name(name: &str) -> Result<(), String> {
    if crate::names::aws::is_iam_name(name, 2, 64) {
        Ok(())
    } else {
        Err(format!(
            "must be 2 to 64 letters, digits or +=,.@_- characters, got {name:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config, error_name};

    #[test]
    fn aws_region_wins_over_aws_default_region() {
        let c = config(&[("AWS_REGION", "us-east-2")]).expect("valid");
        assert_eq!(c.aws.region, "us-east-2");
    }

    #[test]
    fn china_regions_use_the_cn_domain() {
        let c = config(&[("AWS_REGION", "cn-north-1")]).expect("valid");
        assert_eq!(
            c.aws.ecr_endpoint,
            "https://api.ecr.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn service_endpoint_wins_over_the_general_one() {
        let c = config(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
            ("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:6000"),
        ])
        .expect("valid");
        assert_eq!(c.aws.ecr_endpoint, "http://127.0.0.1:6000");
        assert_eq!(c.aws.sts_endpoint, "http://127.0.0.1:5000");
    }

    #[test]
    fn an_error_never_repeats_a_secret_value() {
        let err = config(&[("AWS_SECRET_ACCESS_KEY", "very-secret-key-value")]).expect_err("no id");
        assert!(!err.to_string().contains("very-secret-key-value"));
    }

    #[test]
    fn static_keys_are_wrapped() {
        let c = config(&[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret-key-for-test"),
            ("AWS_SESSION_TOKEN", "session-token-for-test"),
        ])
        .expect("valid");
        let keys = c.aws.static_keys.expect("keys");
        assert_eq!(keys.access_key_id, "AKIAEXAMPLE");
        assert_eq!(keys.secret_access_key.expose(), "secret-key-for-test");
        assert!(!format!("{keys:?}").contains("secret-key-for-test"));
        assert!(!format!("{keys:?}").contains("session-token-for-test"));
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/ecr-reader";

    #[test]
    fn credential_sources_default_to_the_sdk_locations() {
        let c = config(&[("HOME", "/home/u")]).expect("valid");
        assert!(c.aws.web_identity.is_none());
        assert!(c.aws.container.is_none());
        assert!(c.aws.assume_role.is_none());
        assert_eq!(
            c.aws.profile,
            ProfileSettings {
                name: "default".into(),
                explicit: false,
                credentials_file: Some(PathBuf::from("/home/u/.aws/credentials")),
                config_file: Some(PathBuf::from("/home/u/.aws/config")),
            }
        );
        assert_eq!(
            c.aws.imds,
            ImdsSettings {
                disabled: false,
                endpoint: "http://169.254.169.254".into(),
                v1_disabled: false,
            }
        );
        let no_home = config(&[]).expect("valid");
        assert_eq!(no_home.aws.profile.credentials_file, None);
    }

    #[test]
    fn credential_source_settings_are_read() {
        let c = config(&[
            ("HOME", "/home/u"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_ROLE_SESSION_NAME", "my-session"),
            ("AWS_PROFILE", "ecr"),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/creds"),
            ("AWS_CONFIG_FILE", "/etc/aws/config"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/eks-token",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-value"),
            ("AWS_EC2_METADATA_DISABLED", "TRUE"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"),
            (
                "ECR_ASSUME_ROLE_ARN",
                "arn:aws-cn:iam::210987654321:role/path/x",
            ),
            ("ECR_ASSUME_ROLE_EXTERNAL_ID", "ext-id-1"),
        ])
        .expect("valid");
        assert_eq!(
            c.aws.web_identity,
            Some(WebIdentitySettings {
                token_file: PathBuf::from("/var/run/token"),
                role_arn: ROLE.into(),
                session_name: Some("my-session".into()),
            })
        );
        assert_eq!(c.aws.profile.name, "ecr");
        assert!(c.aws.profile.explicit);
        assert_eq!(
            c.aws.profile.credentials_file,
            Some(PathBuf::from("/home/u/creds"))
        );
        assert_eq!(
            c.aws.profile.config_file,
            Some(PathBuf::from("/etc/aws/config"))
        );
        let container = c.aws.container.expect("container");
        assert_eq!(container.uri, "http://169.254.170.23/v1/credentials");
        assert!(matches!(
            container.authorization,
            Some(ContainerAuthorization::File(ref p)) if p == &PathBuf::from("/var/run/eks-token")
        ));
        assert!(c.aws.imds.disabled);
        assert_eq!(c.aws.imds.endpoint, "http://[fd00:ec2::254]");
        assert_eq!(
            c.aws.assume_role,
            Some(AssumeRoleSettings {
                role_arn: "arn:aws-cn:iam::210987654321:role/path/x".into(),
                external_id: Some("ext-id-1".into()),
                session_name: "k8s-ecrupdater".into(),
            })
        );
    }

    #[test]
    fn container_uris_follow_the_sdk_rules() {
        let uri = |pairs: &[(&'static str, &'static str)]| {
            config(pairs)
                .expect("valid")
                .aws
                .container
                .expect("container")
                .uri
        };
        assert_eq!(
            uri(&[
                (
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "/v2/credentials/abc"
                ),
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/x"),
            ]),
            "http://169.254.170.2/v2/credentials/abc",
            "the relative URI wins"
        );
        for ok in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]:80/x",
            "http://169.254.170.2/x",
            "http://[fd00:ec2::23]/x",
            "https://creds.example.com/x",
        ] {
            let leaked: &'static str = Box::leak(ok.to_string().into_boxed_str());
            assert_eq!(
                uri(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", leaked)]),
                ok.trim_end_matches('/')
            );
        }
        for bad in [
            "http://10.0.0.1/creds",
            "http://127.0.0.1:80@evil.invalid/",
            "http://localhost@evil.invalid/",
            "http://127.0.0.1:99999/creds",
            "http://127.0.0.1/creds#x",
        ] {
            let leaked: &'static str = Box::leak(bad.to_string().into_boxed_str());
            assert_eq!(
                error_name(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", leaked)]),
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "{bad}"
            );
        }
        assert_eq!(
            error_name(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/creds")]),
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
        );
        let token = config(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/x"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-value"),
        ])
        .expect("valid");
        let dbg = format!("{:?}", token.aws.container);
        assert!(!dbg.contains("container-token-value"), "{dbg}");
    }

    #[test]
    fn bad_credential_settings_are_named() {
        assert_eq!(
            error_name(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]),
            "AWS_ROLE_ARN"
        );
        assert_eq!(
            error_name(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
                ("AWS_ROLE_ARN", "ecr-reader")
            ]),
            "AWS_ROLE_ARN"
        );
        assert_eq!(
            error_name(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
                ("AWS_ROLE_ARN", ROLE),
                ("AWS_ROLE_SESSION_NAME", "has space")
            ]),
            "AWS_ROLE_SESSION_NAME"
        );
        assert_eq!(
            error_name(&[("AWS_EC2_METADATA_DISABLED", "maybe")]),
            "AWS_EC2_METADATA_DISABLED"
        );
        assert_eq!(
            error_name(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254")]),
            "AWS_EC2_METADATA_SERVICE_ENDPOINT"
        );
        assert_eq!(
            error_name(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "v6")]),
            "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
        );
        assert_eq!(
            error_name(&[("ECR_ASSUME_ROLE_EXTERNAL_ID", "ext")]),
            "ECR_ASSUME_ROLE_EXTERNAL_ID"
        );
        assert_eq!(
            error_name(&[("ECR_ASSUME_ROLE_ARN", "arn:aws:iam::1234:role/x")]),
            "ECR_ASSUME_ROLE_ARN"
        );
        assert_eq!(
            error_name(&[
                ("ECR_ASSUME_ROLE_ARN", ROLE),
                ("ECR_ASSUME_ROLE_EXTERNAL_ID", "x")
            ]),
            "ECR_ASSUME_ROLE_EXTERNAL_ID"
        );
        // AWS_ROLE_ARN alone does nothing (it goes with the token file), as in the SDKs.
        assert!(
            config(&[("AWS_ROLE_ARN", ROLE)])
                .expect("valid")
                .aws
                .web_identity
                .is_none()
        );
    }
}
