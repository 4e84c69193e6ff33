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

/// The container credentials endpoint, as the SDKs accept it: `_RELATIVE_URI` (on
/// 169.254.170.2) wins over `_FULL_URI`, which must be https, a loopback address, or one of the
/// ECS / EKS Pod Identity agent addresses. The token file wins over the token.
fn container_settings(env: &Env) -> Result<Option<ContainerSettings>, ConfigError> {
    const RELATIVE: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    const FULL: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    let (uri, uri_var) = match (env.get(RELATIVE), env.get(FULL)) {
        (Some(path), _) => {
            if !path.starts_with('/') {
                return Err(ConfigError::new(
                    RELATIVE,
                    format!("must be a path starting with '/', got {path:?}"),
                ));
            }
            (format!("http://169.254.170.2{path}"), RELATIVE)
        }
        (None, Some(url)) => {
            let url = parse_base_url(FULL, url)?;
            if let Some(rest) = url.strip_prefix("http://") {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => authority.split(':').next().unwrap_or_default(),
                };
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
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 2 to 64 letters, digits or +=,.@_- characters, got {name:?}"
        ))
    }
}

/// A registry whose login goes into the pull secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The registry host, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `public.ecr.aws`.
    pub host: String,
    /// The region whose token it takes (us-east-1 for ECR Public).
    pub region: String,
    /// Which API hands out its token.
    pub api: crate::aws::ecr::Api,
    /// That API's endpoint.
    pub endpoint: String,
}

/// `ECR_REGISTRIES`: comma-separated registry hosts (an `https://` prefix is allowed).
fn registries(env: &Env) -> Result<Vec<Registry>, ConfigError> {
    let Some(list) = env.get("ECR_REGISTRIES") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Registry> = Vec::new();
    for item in split_list(list) {
        let registry =
            parse_registry(&item, env).map_err(|p| ConfigError::new("ECR_REGISTRIES", p))?;
        if !out.iter().any(|r| r.host == registry.host) {
            out.push(registry);
        }
    }
    Ok(out)
}

/// One registry host: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` or `public.ecr.aws`.
fn parse_registry(item: &str, env: &Env) -> Result<Registry, String> {
    use crate::aws::ecr::Api;
    let host = item
        .strip_prefix("https://")
        .unwrap_or(item)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let override_for = |var: &str| {
        env.get(var)
            .or_else(|| env.get("AWS_ENDPOINT_URL"))
            .map(|u| u.trim_end_matches('/').to_string())
    };
    if host == "public.ecr.aws" {
        return Ok(Registry {
            endpoint: override_for("AWS_ENDPOINT_URL_ECR_PUBLIC")
                .unwrap_or_else(|| "https://api.ecr-public.us-east-1.amazonaws.com".to_string()),
            host,
            region: "us-east-1".to_string(),
            api: Api::Public,
        });
    }
    let bad = || {
        format!(
            "{item:?} is not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com or public.ecr.aws)"
        )
    };
    let parts: Vec<&str> = host.split('.').collect();
    let china = host.ends_with(".amazonaws.com.cn");
    let expected_len = if china { 7 } else { 6 };
    if parts.len() != expected_len
        || parts[0].len() != 12
        || !parts[0].bytes().all(|b| b.is_ascii_digit())
        || parts[1] != "dkr"
        || !(parts[2] == "ecr" || parts[2] == "ecr-fips")
        || parts[4] != "amazonaws"
        || parts[5] != "com"
    {
        return Err(bad());
    }
    let region = parts[3].to_string();
    validate_region(&region).map_err(|_| bad())?;
    let endpoint = override_for("AWS_ENDPOINT_URL_ECR").unwrap_or_else(|| {
        if parts[2] == "ecr-fips" {
            format!("https://ecr-fips.{region}.amazonaws.com")
        } else {
            default_endpoint("api.ecr", &region)
        }
    });
    Ok(Registry {
        host,
        region,
        api: Api::Private,
        endpoint,
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
    fn registries_by_region_and_kind() {
        let c = config(&[(
            "ECR_REGISTRIES",
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com, https://222222222222.dkr.ecr-fips.us-east-1.amazonaws.com/,\
             333333333333.dkr.ecr.cn-north-1.amazonaws.com.cn,public.ecr.aws,111111111111.dkr.ecr.eu-west-1.amazonaws.com",
        )])
        .expect("valid");
        let r: Vec<(&str, &str, &str)> = c
            .registries
            .iter()
            .map(|r| (r.host.as_str(), r.region.as_str(), r.endpoint.as_str()))
            .collect();
        assert_eq!(
            r,
            vec![
                (
                    "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
                    "eu-west-1",
                    "https://api.ecr.eu-west-1.amazonaws.com"
                ),
                (
                    "222222222222.dkr.ecr-fips.us-east-1.amazonaws.com",
                    "us-east-1",
                    "https://ecr-fips.us-east-1.amazonaws.com"
                ),
                (
                    "333333333333.dkr.ecr.cn-north-1.amazonaws.com.cn",
                    "cn-north-1",
                    "https://api.ecr.cn-north-1.amazonaws.com.cn"
                ),
                (
                    "public.ecr.aws",
                    "us-east-1",
                    "https://api.ecr-public.us-east-1.amazonaws.com"
                ),
            ]
        );
        assert_eq!(c.registries[3].api, crate::aws::ecr::Api::Public);
        assert_eq!(
            error_name(&[("ECR_REGISTRIES", "docker.io")]),
            "ECR_REGISTRIES"
        );
        assert_eq!(
            error_name(&[("ECR_REGISTRIES", "12345.dkr.ecr.eu-west-1.amazonaws.com")]),
            "ECR_REGISTRIES"
        );
        let local = config(&[
            (
                "ECR_REGISTRIES",
                "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .expect("valid");
        assert_eq!(local.registries[0].endpoint, "http://127.0.0.1:5000");
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
        assert_eq!(
            error_name(&[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://10.0.0.1/creds"
            )]),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI"
        );
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
