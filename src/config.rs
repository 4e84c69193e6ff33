//! Configuration: the environment and the command line turned into one typed, validated
//! [`Config`]. This is the only module that reads environment variables; every error names the
//! variable (or flag) and what is wrong with it, and the caller exits with status 2.
//!
//! The names are those of the Python tool this daemon replaces (`K8S_PULL_SECRET_NAME`,
//! `ECR_UPDATE_INTERVAL`, ...) and of the AWS SDKs (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...), so
//! users find what they expect.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Sensitive;

/// Default API base URL: `kubectl proxy`'s default listen address, as in the Python tool.
pub const DEFAULT_API_ENDPOINT: &str = "http://localhost:8001";
/// Where Kubernetes mounts the service-account token, CA and namespace.
pub const DEFAULT_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A snapshot of environment variables. Empty values count as unset, as in the AWS SDKs.
#[derive(Clone, Debug, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    /// An environment made of the given pairs (for tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// The trimmed value of `name`, or `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

/// A configuration problem: which variable (or flag, or file) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable, flag or file at fault.
    pub name: String,
    /// What is wrong, in a few words.
    pub problem: String,
}

impl ConfigError {
    /// A new error about `name`.
    pub fn new(name: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            name: name.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon (or one cycle).
    Run(Flags),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// Flags that change how a run behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// One cycle, then exit (0 when every target succeeded, 1 otherwise).
    pub once: bool,
    /// Fetch the token and find the targets, log what would be written, write nothing.
    pub dry_run: bool,
}

/// The usage text for `--help`.
pub const USAGE: &str = "\
ecrupdater: keeps Kubernetes image-pull secrets filled with fresh AWS ECR credentials

Usage: ecrupdater [--once] [--dry-run]
       ecrupdater --help | --version

  --once      run one refresh cycle, then exit (0 if every target succeeded, 1 if any failed)
  --dry-run   fetch the token and find the targets, log each write it would do, write nothing

Settings come from the environment; see README.md for the full table. The essential ones:
  K8S_PULL_SECRET_NAME       name of the pull secret in each namespace (required)
  AWS_REGION / AWS_DEFAULT_REGION   region of the registry (required)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]   credentials
  ECR_UPDATE_INTERVAL        seconds between refreshes (default 3600)
  ECR_CREATE_MISSING         true: create the secret where it is missing (default false)
  ECR_SKIP_NAMESPACES        comma-separated namespaces never touched
  KUBERNETES_API_ENDPOINT    API base URL (default: in-cluster, else http://localhost:8001)
  LOG_CONFIG, LOG_LEVEL      logging.json (Python dictConfig) or a level (default INFO)
";

/// Reads the command line (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut flags = Flags::default();
    for arg in args {
        match arg.as_ref() {
            "--once" => flags.once = true,
            "--dry-run" => flags.dry_run = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            other => {
                return Err(ConfigError::new(other, "unknown argument (try --help)"));
            }
        }
    }
    Ok(Command::Run(flags))
}

/// Everything the daemon needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `K8S_PULL_SECRET_NAME`: the secret kept fresh in every target namespace.
    pub secret_name: String,
    /// `ECR_UPDATE_INTERVAL`: the longest time between two refreshes.
    pub update_interval: Duration,
    /// `ECR_CREATE_MISSING`: create the secret where it is missing.
    pub create_missing: bool,
    /// `ECR_SKIP_NAMESPACES`: namespaces never touched.
    pub skip_namespaces: Vec<String>,
    /// How to reach the Kubernetes API.
    pub kube: KubeAccess,
    /// AWS region, endpoints and credential settings.
    pub aws: AwsSettings,
    /// Per-request timeouts for every HTTP call.
    pub timeouts: Timeouts,
    /// Flags from the command line.
    pub flags: Flags,
}

/// Per-request HTTP timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `ECR_HTTP_CONNECT_TIMEOUT` (seconds, default 5).
    pub connect: Duration,
    /// `ECR_HTTP_TIMEOUT` (seconds, default 30): the whole request, connect excluded.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
        }
    }
}

/// How the Kubernetes API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeAccess {
    /// A base URL used as is: `KUBERNETES_API_ENDPOINT`, or `kubectl proxy`'s default.
    Endpoint {
        /// The base URL, without a trailing slash.
        url: String,
        /// Whether the user named it (`KUBERNETES_API_ENDPOINT`) or it is the default.
        explicit: bool,
    },
    /// In-cluster, like client-go's `rest.InClusterConfig`: https to the service host, the
    /// service-account token as bearer (re-read, it rotates), TLS verified against its `ca.crt`.
    InCluster {
        /// `https://host:port`.
        url: String,
        /// The folder holding `token`, `ca.crt` and `namespace`.
        service_account_dir: PathBuf,
    },
}

impl KubeAccess {
    /// The API base URL.
    pub fn url(&self) -> &str {
        match self {
            KubeAccess::Endpoint { url, .. } | KubeAccess::InCluster { url, .. } => url,
        }
    }
}

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

impl Config {
    /// Builds the configuration from `env` and the command-line `flags`. Touches no network; the
    /// only files it looks at are the service-account token's (to choose in-cluster access).
    pub fn from_env(env: &Env, flags: Flags) -> Result<Config, ConfigError> {
        let secret_name = env
            .get("K8S_PULL_SECRET_NAME")
            .ok_or_else(|| ConfigError::new("K8S_PULL_SECRET_NAME", "is required"))?;
        validate_dns_subdomain(secret_name)
            .map_err(|problem| ConfigError::new("K8S_PULL_SECRET_NAME", problem))?;

        let update_interval = match env.get("ECR_UPDATE_INTERVAL") {
            None => Duration::from_secs(3600),
            Some(v) => Duration::from_secs(parse_seconds("ECR_UPDATE_INTERVAL", v, 60, 43_200)?),
        };
        let create_missing = match env.get("ECR_CREATE_MISSING") {
            None => false,
            Some(v) => parse_bool("ECR_CREATE_MISSING", v)?,
        };
        let skip_namespaces = env
            .get("ECR_SKIP_NAMESPACES")
            .map(split_list)
            .unwrap_or_default();

        let timeouts = Timeouts {
            connect: match env.get("ECR_HTTP_CONNECT_TIMEOUT") {
                None => Timeouts::default().connect,
                Some(v) => {
                    Duration::from_secs(parse_seconds("ECR_HTTP_CONNECT_TIMEOUT", v, 1, 300)?)
                }
            },
            request: match env.get("ECR_HTTP_TIMEOUT") {
                None => Timeouts::default().request,
                Some(v) => Duration::from_secs(parse_seconds("ECR_HTTP_TIMEOUT", v, 1, 600)?),
            },
        };

        Ok(Config {
            secret_name: secret_name.to_string(),
            update_interval,
            create_missing,
            skip_namespaces,
            kube: kube_access(env)?,
            aws: aws_settings(env)?,
            timeouts,
            flags,
        })
    }
}

fn kube_access(env: &Env) -> Result<KubeAccess, ConfigError> {
    if let Some(url) = env.get("KUBERNETES_API_ENDPOINT") {
        return Ok(KubeAccess::Endpoint {
            url: parse_base_url("KUBERNETES_API_ENDPOINT", url)?,
            explicit: true,
        });
    }
    let service_account_dir = PathBuf::from(
        env.get("ECR_SERVICEACCOUNT_DIR")
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT_DIR),
    );
    if let (Some(host), Some(port)) = (
        env.get("KUBERNETES_SERVICE_HOST"),
        env.get("KUBERNETES_SERVICE_PORT"),
    ) && service_account_dir.join("token").is_file()
    {
        let port: u16 = port.parse().map_err(|_| {
            ConfigError::new(
                "KUBERNETES_SERVICE_PORT",
                format!("not a port number: {port:?}"),
            )
        })?;
        // An IPv6 address needs brackets in a URL, as client-go's net.JoinHostPort gives.
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        return Ok(KubeAccess::InCluster {
            url: format!("https://{host}:{port}"),
            service_account_dir,
        });
    }
    Ok(KubeAccess::Endpoint {
        url: DEFAULT_API_ENDPOINT.to_string(),
        explicit: false,
    })
}

fn aws_settings(env: &Env) -> Result<AwsSettings, ConfigError> {
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

    Ok(AwsSettings {
        region: region.to_string(),
        ecr_endpoint,
        sts_endpoint,
        static_keys,
    })
}

/// The regional endpoint of an AWS service (`.amazonaws.com.cn` in the China partition).
pub fn default_endpoint(service_prefix: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service_prefix}.{region}.{suffix}")
}

/// A region name such as `eu-west-1`, `us-gov-west-1` or `cn-north-1`.
fn validate_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "not an AWS region name: {region:?} (expected e.g. eu-west-1)"
        ))
    }
}

/// An `http://` or `https://` URL with a host; returned without a trailing slash.
fn parse_base_url(name: &str, url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!("must start with http:// or https://, got {url:?}"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ConfigError::new(
            name,
            format!("has no valid host: {url:?}"),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A whole number of seconds within `min..=max`.
fn parse_seconds(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n: u64 = value.parse().map_err(|_| {
        ConfigError::new(
            name,
            format!("must be a whole number of seconds, got {value:?}"),
        )
    })?;
    if n < min || n > max {
        return Err(ConfigError::new(
            name,
            format!("must be between {min} and {max} seconds, got {n}"),
        ));
    }
    Ok(n)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), any case.
fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            name,
            format!("must be true or false, got {value:?}"),
        )),
    }
}

/// A comma-separated list; blanks around items and empty items are dropped.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A DNS-1123 subdomain, as Kubernetes requires of a Secret's name.
pub fn validate_dns_subdomain(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!(
            "must be at most 253 characters, got {}",
            name.len()
        ));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("K8S_PULL_SECRET_NAME", "ecr-pull"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]
    }

    fn config(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = base();
        pairs.extend_from_slice(extra);
        Config::from_env(&Env::from_pairs(pairs), Flags::default())
    }

    fn error_name(extra: &[(&'static str, &'static str)]) -> String {
        config(extra)
            .expect_err("configuration should be refused")
            .name
    }

    #[test]
    fn defaults_match_the_python_tool() {
        let c = config(&[]).expect("valid");
        assert_eq!(c.secret_name, "ecr-pull");
        assert_eq!(c.update_interval, Duration::from_secs(3600));
        assert!(!c.create_missing);
        assert!(c.skip_namespaces.is_empty());
        assert_eq!(
            c.kube,
            KubeAccess::Endpoint {
                url: "http://localhost:8001".into(),
                explicit: false
            }
        );
        assert_eq!(c.aws.region, "eu-west-1");
        assert_eq!(
            c.aws.ecr_endpoint,
            "https://api.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(c.aws.sts_endpoint, "https://sts.eu-west-1.amazonaws.com");
        assert!(c.aws.static_keys.is_none());
    }

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
    fn each_bad_setting_is_named() {
        assert_eq!(
            Config::from_env(
                &Env::from_pairs([("AWS_REGION", "eu-west-1")]),
                Flags::default()
            )
            .expect_err("missing name")
            .name,
            "K8S_PULL_SECRET_NAME"
        );
        assert_eq!(
            error_name(&[("K8S_PULL_SECRET_NAME", "Bad_Name")]),
            "K8S_PULL_SECRET_NAME"
        );
        assert_eq!(
            error_name(&[("ECR_UPDATE_INTERVAL", "1h")]),
            "ECR_UPDATE_INTERVAL"
        );
        assert_eq!(
            error_name(&[("ECR_UPDATE_INTERVAL", "5")]),
            "ECR_UPDATE_INTERVAL"
        );
        assert_eq!(
            error_name(&[("ECR_CREATE_MISSING", "maybe")]),
            "ECR_CREATE_MISSING"
        );
        assert_eq!(
            error_name(&[("AWS_DEFAULT_REGION", "Ireland")]),
            "AWS_DEFAULT_REGION"
        );
        assert_eq!(
            error_name(&[("KUBERNETES_API_ENDPOINT", "localhost:8001")]),
            "KUBERNETES_API_ENDPOINT"
        );
        assert_eq!(
            error_name(&[("AWS_ENDPOINT_URL_ECR", "ftp://x")]),
            "AWS_ENDPOINT_URL_ECR"
        );
        assert_eq!(
            error_name(&[("AWS_ACCESS_KEY_ID", "AKIA1")]),
            "AWS_SECRET_ACCESS_KEY"
        );
        assert_eq!(
            error_name(&[("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")]),
            "AWS_ACCESS_KEY_ID"
        );
        assert_eq!(error_name(&[("ECR_HTTP_TIMEOUT", "0")]), "ECR_HTTP_TIMEOUT");
        let no_region = Config::from_env(
            &Env::from_pairs([("K8S_PULL_SECRET_NAME", "x")]),
            Flags::default(),
        )
        .expect_err("missing region");
        assert_eq!(no_region.name, "AWS_REGION");
    }

    #[test]
    fn an_error_never_repeats_a_secret_value() {
        let err = config(&[("AWS_SECRET_ACCESS_KEY", "very-secret-key-value")]).expect_err("no id");
        assert!(!err.to_string().contains("very-secret-key-value"));
    }

    #[test]
    fn lists_and_booleans() {
        let c = config(&[
            ("ECR_SKIP_NAMESPACES", " kube-system, ,kube-public "),
            ("ECR_CREATE_MISSING", "TRUE"),
        ])
        .expect("valid");
        assert_eq!(c.skip_namespaces, vec!["kube-system", "kube-public"]);
        assert!(c.create_missing);
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

    #[test]
    fn explicit_endpoint_wins_over_in_cluster() {
        let dir = std::env::temp_dir().join(format!("ecrupdater-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("token"), "t").expect("token file");
        let dir_str = dir.to_str().expect("utf-8 temp dir").to_string();
        let dir_static: &'static str = Box::leak(dir_str.into_boxed_str());
        let in_cluster = config(&[
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("ECR_SERVICEACCOUNT_DIR", dir_static),
        ])
        .expect("valid");
        assert_eq!(in_cluster.kube.url(), "https://[fd00::1]:443");
        assert!(matches!(in_cluster.kube, KubeAccess::InCluster { .. }));
        let explicit = config(&[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("ECR_SERVICEACCOUNT_DIR", dir_static),
            ("KUBERNETES_API_ENDPOINT", "http://127.0.0.1:8001/"),
        ])
        .expect("valid");
        assert_eq!(
            explicit.kube,
            KubeAccess::Endpoint {
                url: "http://127.0.0.1:8001".into(),
                explicit: true
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flags() {
        assert_eq!(
            parse_args(["--once", "--dry-run"]),
            Ok(Command::Run(Flags {
                once: true,
                dry_run: true
            }))
        );
        assert_eq!(parse_args(["--help"]), Ok(Command::Help));
        assert_eq!(parse_args(["--version"]), Ok(Command::Version));
        assert_eq!(
            parse_args(["--bogus"]).expect_err("unknown").name,
            "--bogus"
        );
    }
}
