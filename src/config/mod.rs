//! Configuration: the environment and the command line turned into one typed, validated
//! [`Config`]. This is the only module that reads environment variables; every error names the
//! variable (or flag) and what is wrong with it, and the caller exits with status 2.
//!
//! The names are those of the Python tool this daemon replaces (`K8S_PULL_SECRET_NAME`,
//! `ECR_UPDATE_INTERVAL`, ...) and of the AWS SDKs (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...), so
//! users find what they expect.
//!
//! This file owns the environment snapshot ([`Env`]), [`ConfigError`], the command line
//! ([`parse_args`], [`Command`], [`Flags`], [`USAGE`]), [`Config`] with its [`Timeouts`] and
//! [`KubeAccess`], and [`Config::from_env`], which puts them together. The AWS settings are read
//! in `aws.rs`, `ECR_REGISTRIES` in `registry.rs`, and the value parsers and checks they all
//! share are in `values.rs`.

mod aws;
mod checks;
mod registry;
mod values;

pub use aws::{
    AssumeRoleSettings, AwsSettings, ContainerAuthorization, ContainerSettings, ImdsSettings,
    ProfileSettings, StaticKeys, WebIdentitySettings,
};
pub use checks::{ConnectTo, Network, VerifyMode};
pub use registry::{Api, Registry};
pub use values::{default_endpoint, validate_dns_subdomain};

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use aws::aws_settings;
use registry::registries;
use values::{parse_base_url, parse_bool, parse_seconds, split_list};

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

/// How the status is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// An aligned table.
    Table,
    /// One JSON document.
    Json,
}

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon (or one cycle).
    Run(Flags),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
    /// `--status [--output json]`: print the state of every target's secret ([`crate::status`]).
    Status(Output),
}

/// Flags that change how a run behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// One cycle, then exit (0 when every target succeeded, 1 otherwise).
    pub once: bool,
    /// Fetch the token and find the targets, log what would be written, write nothing.
    pub dry_run: bool,
}

/// The usage text for `--help`: every setting with its default (the image holds no other
/// documentation, so this names no file). tests/help.rs checks that every variable this crate
/// reads appears here.
pub const USAGE: &str = "\
ecrupdater: keeps Kubernetes image-pull secrets filled with fresh AWS ECR credentials

Usage: ecrupdater [--once] [--dry-run]
       ecrupdater --status [--output json]
       ecrupdater --help | --version

  --once      run one refresh cycle, then exit (0 if every target succeeded, 1 if any failed)
  --dry-run   fetch the token and find the targets, log each write it would do, write nothing
  --status    print each target's secret: type, registries, expiry, verified-at, problems
              (exit 0 if every target is fine, 1 otherwise); --output json for scripts

Settings come from the environment (an empty value counts as unset). Booleans take
true/false, yes/no, on/off, 1/0.

What is refreshed:
  K8S_PULL_SECRET_NAME        name of the pull secret in each namespace (required)
  AWS_REGION, AWS_DEFAULT_REGION
                              region of the registry (required; AWS_REGION wins)
  ECR_UPDATE_INTERVAL         seconds between refreshes, 60 to 43200 (default 3600)
  ECR_CREATE_MISSING          create the secret where it is missing and serve new
                              namespaces as they appear (default false)
  ECR_NAMESPACES              comma-separated names or globs to serve (default: all)
  ECR_SKIP_NAMESPACES         same syntax, namespaces never touched (default: none)
  ECR_NAMESPACE_SELECTOR      label selector applied by the API server (default: none)
  ECR_REGISTRIES              comma-separated registry hosts (default: the account's
                              registry in AWS_REGION)
  ECR_SERVICE_ACCOUNTS        ServiceAccounts that must list the secret in
                              imagePullSecrets (default: none)
  ECR_VERIFY                  off, warn or enforce: GET https://HOST/v2/ with the new
                              login before writing; a refusal is logged (warn) or writes
                              nothing for the cycle (enforce) (default warn)

The Kubernetes API (first that applies):
  KUBERNETES_API_ENDPOINT     API base URL, http:// or https:// (default: in-cluster,
                              else http://localhost:8001, kubectl proxy's address)
  KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT
                              in-cluster access when set and the token file exists
                              (set by Kubernetes in every pod)
  ECR_SERVICEACCOUNT_DIR      in-cluster token, ca.crt and namespace
                              (default /var/run/secrets/kubernetes.io/serviceaccount)

AWS credentials (the first source that applies, in the AWS SDKs' order):
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                              static or session keys (default: none)
  AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME
                              web identity (IRSA); session name default
                              k8s-ecrupdater-<unix time>
  AWS_PROFILE                 profile in the shared files (default: default)
  AWS_SHARED_CREDENTIALS_FILE (default $HOME/.aws/credentials)
  AWS_CONFIG_FILE             (default $HOME/.aws/config)
  HOME                        where $HOME/.aws is looked for (set by the system)
  AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
                              container endpoint (EKS Pod Identity, ECS; the relative
                              URI goes to http://169.254.170.2) (default: none)
  AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
                              its Authorization header (default: none)
  AWS_EC2_METADATA_DISABLED   true: never ask instance metadata (default false)
  AWS_EC2_METADATA_SERVICE_ENDPOINT
                              (default http://169.254.169.254, or http://[fd00:ec2::254]
                              with the mode IPv6)
  AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE
                              IPv4 or IPv6 (default IPv4)
  AWS_EC2_METADATA_V1_DISABLED
                              true: no IMDSv1 fallback (default false)
  ECR_ASSUME_ROLE_ARN         a role assumed on top of any source (default: none)
  ECR_ASSUME_ROLE_EXTERNAL_ID its external id (default: none)
  ECR_ASSUME_ROLE_SESSION_NAME
                              its session name (default k8s-ecrupdater)

AWS endpoints and network:
  AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_ECR_PUBLIC, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL
                              endpoint overrides, service-specific first (default:
                              AWS's regional endpoints)
  HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY (or lower case)
                              proxy for AWS calls only, never for the Kubernetes API or
                              instance metadata (default: none)
  AWS_CA_BUNDLE               PEM file of extra CAs for every AWS and registry HTTPS call
                              (a TLS-inspecting proxy's) (default: none)
  ECR_REGISTRY_CONNECT_TO     HOST:PORT:CONNECT_HOST:CONNECT_PORT,... (curl's --connect-to):
                              reach a registry elsewhere, TLS still checks HOST (default: none)
  ECR_HTTP_CONNECT_TIMEOUT    seconds to connect, 1 to 300 (default 5)
  ECR_HTTP_TIMEOUT            seconds for the rest of one HTTP call, 1 to 600 (default 30)

Logging, health and metrics:
  LOG_CONFIG                  Python logging.dictConfig JSON file (default ./logging.json)
  LOG_LEVEL                   NOTSET, TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or a
                              number; used when the LOG_CONFIG file does not exist
                              (default INFO)
  ECR_HEALTH_ADDR             where /healthz, /readyz and /metrics listen; empty
                              disables; never with --once (default 0.0.0.0:8080)
";

/// Reads the command line (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut flags = Flags::default();
    let (mut status, mut output) = (false, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_ref() {
            "--status" => status = true,
            "--output=json" => output = Some(Output::Json),
            "--output=table" => output = Some(Output::Table),
            "--output" | "-o" => {
                output = Some(match args.next().as_ref().map(AsRef::as_ref) {
                    Some("json") => Output::Json,
                    Some("table") => Output::Table,
                    _ => return Err(ConfigError::new("--output", "must be json or table")),
                })
            }
            "--once" => flags.once = true,
            "--dry-run" => flags.dry_run = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            other => {
                return Err(ConfigError::new(other, "unknown argument (try --help)"));
            }
        }
    }
    match (status, output) {
        (true, _) if flags.once || flags.dry_run => Err(ConfigError::new(
            "--status",
            "goes with no other flag but --output",
        )),
        (true, output) => Ok(Command::Status(output.unwrap_or(Output::Table))),
        (false, Some(_)) => Err(ConfigError::new("--output", "goes with --status")),
        (false, None) => Ok(Command::Run(flags)),
    }
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
    /// `ECR_NAMESPACES` and `ECR_SKIP_NAMESPACES`: names or globs to serve and to leave alone.
    pub selection: crate::select::Selection,
    /// `ECR_NAMESPACE_SELECTOR`: a label selector the API server applies to the namespace list.
    pub namespace_selector: Option<String>,
    /// `ECR_REGISTRIES`: the registries written into each secret; empty means the registry of
    /// the configured region's account (the token's `proxyEndpoint`).
    pub registries: Vec<Registry>,
    /// `ECR_SERVICE_ACCOUNTS`: service accounts that must list the secret in `imagePullSecrets`.
    pub service_accounts: Vec<String>,
    /// How to reach the Kubernetes API.
    pub kube: KubeAccess,
    /// AWS region, endpoints and credential settings.
    pub aws: AwsSettings,
    /// Per-request timeouts for every HTTP call.
    pub timeouts: Timeouts,
    /// `ECR_HEALTH_ADDR` (default `0.0.0.0:8080`; empty disables): where /healthz, /readyz and
    /// /metrics listen. Never started with `--once`.
    pub health_addr: Option<String>,
    /// `ECR_VERIFY`: how a registry's refusal of a new token is handled.
    pub verify: VerifyMode,
    /// `AWS_CA_BUNDLE` and `ECR_REGISTRY_CONNECT_TO`, for every AWS and registry call.
    pub network: Network,
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
        let selection = crate::select::Selection {
            include: env
                .get("ECR_NAMESPACES")
                .map(split_list)
                .unwrap_or_default(),
            exclude: env
                .get("ECR_SKIP_NAMESPACES")
                .map(split_list)
                .unwrap_or_default(),
        };
        let namespace_selector = env.get("ECR_NAMESPACE_SELECTOR").map(str::to_string);
        if let Some(selector) = &namespace_selector {
            crate::select::validate_label_selector(selector)
                .map_err(|problem| ConfigError::new("ECR_NAMESPACE_SELECTOR", problem))?;
        }
        let service_accounts = env
            .get("ECR_SERVICE_ACCOUNTS")
            .map(split_list)
            .unwrap_or_default();
        for sa in &service_accounts {
            validate_dns_subdomain(sa)
                .map_err(|problem| ConfigError::new("ECR_SERVICE_ACCOUNTS", problem))?;
        }

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

        // An explicitly empty ECR_HEALTH_ADDR disables the endpoint (Env::get treats it as unset).
        let health_addr = match env.0.get("ECR_HEALTH_ADDR").map(|v| v.trim()) {
            Some("") => None,
            Some(addr) => {
                addr.parse::<std::net::SocketAddr>().map_err(|_| {
                    ConfigError::new(
                        "ECR_HEALTH_ADDR",
                        format!(
                            "must be host:port such as 0.0.0.0:8080 or [::]:8080, got {addr:?}"
                        ),
                    )
                })?;
                Some(addr.to_string())
            }
            None => Some("0.0.0.0:8080".to_string()),
        };

        Ok(Config {
            secret_name: secret_name.to_string(),
            update_interval,
            create_missing,
            selection,
            namespace_selector,
            registries: registries(env)?,
            service_accounts,
            kube: kube_access(env)?,
            aws: aws_settings(env)?,
            timeouts,
            health_addr: if flags.once { None } else { health_addr },
            verify: checks::verify_mode(env)?,
            network: checks::network(env)?,
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
        let port: u16 = port.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
            ConfigError::new(
                "KUBERNETES_SERVICE_PORT",
                format!(
                    "not a port number from 1 to 65535: {:?}",
                    values::shown(port)
                ),
            )
        })?;
        // An IPv6 address needs brackets in a URL, as client-go's net.JoinHostPort gives.
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let url =
            values::parse_base_url("KUBERNETES_SERVICE_HOST", &format!("https://{host}:{port}"))?;
        return Ok(KubeAccess::InCluster {
            url,
            service_account_dir,
        });
    }
    Ok(KubeAccess::Endpoint {
        url: DEFAULT_API_ENDPOINT.to_string(),
        explicit: false,
    })
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

    pub(super) fn config(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = base();
        pairs.extend_from_slice(extra);
        Config::from_env(&Env::from_pairs(pairs), Flags::default())
    }

    pub(super) fn error_name(extra: &[(&'static str, &'static str)]) -> String {
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
        assert_eq!(c.selection, crate::select::Selection::default());
        assert!(
            c.registries.is_empty()
                && c.service_accounts.is_empty()
                && c.namespace_selector.is_none()
        );
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
        assert_eq!(c.health_addr.as_deref(), Some("0.0.0.0:8080"));
    }

    #[test]
    fn health_address_can_be_moved_or_disabled() {
        assert_eq!(
            config(&[("ECR_HEALTH_ADDR", "127.0.0.1:9000")])
                .expect("valid")
                .health_addr
                .as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(
            config(&[("ECR_HEALTH_ADDR", "")])
                .expect("valid")
                .health_addr,
            None
        );
        assert_eq!(
            error_name(&[("ECR_HEALTH_ADDR", "8080")]),
            "ECR_HEALTH_ADDR"
        );
        let once = Config::from_env(
            &Env::from_pairs(base()),
            Flags {
                once: true,
                dry_run: false,
            },
        )
        .expect("valid");
        assert_eq!(once.health_addr, None, "never started with --once");
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
    fn namespace_selection_settings() {
        let c = config(&[
            ("ECR_NAMESPACES", "team-*, shared"),
            ("ECR_SKIP_NAMESPACES", "team-legacy*"),
            ("ECR_NAMESPACE_SELECTOR", "env in (prod,staging),!no-pull"),
            ("ECR_SERVICE_ACCOUNTS", "default, builder"),
        ])
        .expect("valid");
        assert!(
            c.selection.wants("team-a")
                && !c.selection.wants("team-legacy-2")
                && !c.selection.wants("other")
        );
        assert_eq!(
            c.namespace_selector.as_deref(),
            Some("env in (prod,staging),!no-pull")
        );
        assert_eq!(c.service_accounts, vec!["default", "builder"]);
        assert_eq!(
            error_name(&[("ECR_NAMESPACE_SELECTOR", "env in prod")]),
            "ECR_NAMESPACE_SELECTOR"
        );
        assert_eq!(
            error_name(&[("ECR_SERVICE_ACCOUNTS", "Bad_SA")]),
            "ECR_SERVICE_ACCOUNTS"
        );
    }

    #[test]
    fn lists_and_booleans() {
        let c = config(&[
            ("ECR_SKIP_NAMESPACES", " kube-system, ,kube-public "),
            ("ECR_CREATE_MISSING", "TRUE"),
        ])
        .expect("valid");
        assert_eq!(c.selection.exclude, vec!["kube-system", "kube-public"]);
        assert!(c.create_missing);
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
        assert_eq!(
            parse_args(["--status", "--output", "json"]),
            Ok(Command::Status(Output::Json))
        );
        assert_eq!(
            parse_args(["--output=json", "--status"]),
            Ok(Command::Status(Output::Json))
        );
        assert_eq!(parse_args(["--status"]), Ok(Command::Status(Output::Table)));
        assert_eq!(
            parse_args(["--output", "json"]).expect_err("alone").name,
            "--output"
        );
        assert_eq!(
            parse_args(["--status", "-o", "yaml"])
                .expect_err("yaml")
                .name,
            "--output"
        );
        assert_eq!(
            parse_args(["--status", "--once"]).expect_err("once").name,
            "--status"
        );
        assert_eq!(parse_args(["--version"]), Ok(Command::Version));
        assert_eq!(
            parse_args(["--bogus"]).expect_err("unknown").name,
            "--bogus"
        );
    }
}
