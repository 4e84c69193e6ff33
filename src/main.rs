//! `ecrupdater`: reads the command line and the environment, sets up logging and signal
//! handling, builds the clients, and hands over to [`ecrupdater::daemon`]. Bad configuration
//! exits with status 2 before any network call.

use std::process::ExitCode;

use ecrupdater::config::{self, Command, Config, ConfigError, Env, KubeAccess};
use ecrupdater::daemon::Daemon;
use ecrupdater::health::{self, Health};
use ecrupdater::logging::{self, LogSettings};
use ecrupdater::shutdown;

/// Exit status for bad configuration.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // A panic's message may quote outside text: it goes through the log mask like every line.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{}", logging::one_line(&format!("ecrupdater: {info}")));
    }));
    let command = match config::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let flags = match command {
        Command::Help => {
            print!("{}", config::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("ecrupdater {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Run(flags) => (flags, None),
        Command::Status(output) => (config::Flags::default(), Some(output)),
    };
    let (flags, status) = flags;
    let env = Env::from_process();
    let log_settings = match LogSettings::from_env(env.get("LOG_CONFIG"), env.get("LOG_LEVEL")) {
        Ok(s) => s,
        Err(e) => return config_error(&e),
    };
    let config = match Config::from_env(&env, flags) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let log_source = log_settings.source.clone();
    logging::init(log_settings);
    if let Some(output) = status {
        return ExitCode::from(u8::from(ecrupdater::status::run(&config, output) != 0));
    }
    log_start(&config, &log_source);

    if let Err(e) = shutdown::install() {
        log::error!("cannot install the SIGTERM/SIGINT handlers: {e}");
        return ExitCode::from(1);
    }
    let health = Health::new();
    let health_addr = config.health_addr.clone();
    let mut daemon = match Daemon::from_config(config, health.clone()) {
        Ok(d) => d,
        Err(problem) => {
            return config_error(&ConfigError::new("in-cluster configuration", problem));
        }
    };
    if let Some(addr) = &health_addr {
        match health::serve(addr, health) {
            Ok((bound, _thread)) => {
                log::info!("health and metrics on http://{bound} (/healthz, /readyz, /metrics)")
            }
            Err(e) => {
                return config_error(&ConfigError::new(
                    "ECR_HEALTH_ADDR",
                    format!("cannot listen on {addr}: {e}"),
                ));
            }
        }
    }
    let status = daemon.run();
    if status != 0 {
        // CRITICAL, so that even LOG_LEVEL=CRITICAL says why the process ended.
        log::error!(target: logging::CRITICAL, "exiting with status {status}");
    }
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

/// Prints a configuration error (masked, escaped, one bounded line: it may quote outside text)
/// and returns the exit status for bad configuration.
fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!(
        "{}",
        logging::one_line(&format!("ecrupdater: configuration error: {e}"))
    );
    ExitCode::from(EXIT_CONFIG)
}

fn log_start(config: &Config, log_source: &str) {
    let api = match &config.kube {
        KubeAccess::Endpoint {
            url,
            explicit: true,
        } => format!("{url} (KUBERNETES_API_ENDPOINT)"),
        KubeAccess::Endpoint {
            url,
            explicit: false,
        } => format!("{url} (default: kubectl proxy)"),
        KubeAccess::InCluster { url, .. } => format!("{url} (in-cluster service account)"),
    };
    let list = |items: &[String], empty: &str| {
        if items.is_empty() {
            empty.to_string()
        } else {
            items.join(",")
        }
    };
    let registries: Vec<String> = config.registries.iter().map(|r| r.host.clone()).collect();
    log::info!(
        "k8s-ecrupdater {} starting: secret {}, region {}, API {api}, ECR {}, every {} s, create missing: {}, \
         namespaces: {} (skip: {}; selector: {}), registries: {}, service accounts: {}{}{}; logging from {log_source}",
        env!("CARGO_PKG_VERSION"),
        config.secret_name,
        config.aws.region,
        config.aws.ecr_endpoint,
        config.update_interval.as_secs(),
        config.create_missing,
        list(&config.selection.include, "all"),
        list(&config.selection.exclude, "none"),
        config.namespace_selector.as_deref().unwrap_or("none"),
        list(&registries, "the region's own"),
        list(&config.service_accounts, "none"),
        if config.flags.once { ", once" } else { "" },
        if config.flags.dry_run {
            ", DRY RUN"
        } else {
            ""
        },
    );
}
