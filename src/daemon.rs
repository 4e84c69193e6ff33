//! The daemon's loop: fetch a token (reusing a cached one while it is good), run a refresh
//! cycle, decide when the next one is due ([`crate::schedule`]), sleep until then or until a
//! shutdown request. With `--once`, one cycle and an exit status.

use std::time::Duration;

use time::OffsetDateTime;

use crate::aws::{AwsError, CredentialChain, EcrClient};
use crate::config::Config;
use crate::dockercfg::{RegistryLogin, registry_host};
use crate::health::{Health, Stage};
use crate::kube::{KubeClient, KubeError};
use crate::refresh::{self, CycleReport, Targets, Token};
use crate::schedule::{self, Jitter};
use crate::shutdown;

/// A cached token is reused for a retry only while it stays valid this much longer.
const REUSE_MARGIN: time::Duration = time::Duration::minutes(15);
/// In `--once` mode, how many times an unreachable API server is tried (1+2+4+8 s of waits).
const ONCE_UNREACHABLE_ATTEMPTS: u32 = 5;

/// Why a cycle did not complete.
#[derive(Debug)]
pub enum CycleError {
    /// The token could not be fetched: nothing was written.
    Aws(AwsError),
    /// The API server did not answer (not up yet, or gone).
    Unreachable(KubeError),
    /// The API server refused the namespace list.
    Kube(KubeError),
}

/// The daemon's state between cycles.
pub struct Daemon {
    config: Config,
    kube: KubeClient,
    ecr: EcrClient,
    credentials: CredentialChain,
    jitter: Jitter,
    token: Option<(Token, OffsetDateTime)>,
    health: Health,
}

impl Daemon {
    /// A daemon with its clients.
    pub fn new(
        config: Config,
        kube: KubeClient,
        ecr: EcrClient,
        credentials: CredentialChain,
        health: Health,
    ) -> Daemon {
        Daemon {
            config,
            kube,
            ecr,
            credentials,
            jitter: Jitter::from_clock(),
            token: None,
            health,
        }
    }

    /// Runs until a shutdown request (daemon) or for one cycle (`--once`). Returns the exit status.
    pub fn run(&mut self) -> i32 {
        let once = self.config.flags.once;
        let mut failed_cycles = 0u32;
        let mut unreachable = 0u32;
        let mut force_new_token = true;
        loop {
            let result = self.cycle(force_new_token);
            self.record(&result);
            let wait = match result {
                Ok(report) => {
                    unreachable = 0;
                    log::info!("{report}");
                    let failures = report.failures();
                    if once {
                        if failures.is_empty() {
                            return 0;
                        }
                        let names: Vec<&str> = failures.iter().map(|(ns, _)| *ns).collect();
                        log::error!("{} namespace(s) failed: {}", names.len(), names.join(", "));
                        return 1;
                    }
                    if failures.is_empty() {
                        failed_cycles = 0;
                        force_new_token = true;
                        self.after_success()
                    } else {
                        failed_cycles += 1;
                        force_new_token = false;
                        self.after_failure(failed_cycles)
                    }
                }
                Err(CycleError::Unreachable(e)) => {
                    unreachable += 1;
                    force_new_token = false;
                    if once && unreachable >= ONCE_UNREACHABLE_ATTEMPTS {
                        log::error!(
                            "the Kubernetes API at {} is not reachable: {e}",
                            self.kube.base_url()
                        );
                        return 1;
                    }
                    let wait = schedule::after_unreachable(unreachable);
                    log::warn!(
                        "the Kubernetes API at {} is not reachable yet ({e}); trying again in {} s (attempt {unreachable})",
                        self.kube.base_url(),
                        wait.as_secs()
                    );
                    wait
                }
                Err(CycleError::Aws(e)) => {
                    log::error!("{e}; no secret was written");
                    if once {
                        return 1;
                    }
                    failed_cycles += 1;
                    force_new_token = true;
                    self.after_failure(failed_cycles)
                }
                Err(CycleError::Kube(e)) => {
                    log::error!("listing namespaces failed: {e}");
                    if once {
                        return 1;
                    }
                    failed_cycles += 1;
                    force_new_token = false;
                    self.after_failure(failed_cycles)
                }
            };
            if shutdown::sleep(wait) {
                log::info!("shutting down");
                return 0;
            }
        }
    }

    /// Tells the health endpoint what the cycle gave.
    fn record(&self, result: &Result<CycleReport, CycleError>) {
        match result {
            Ok(report) => {
                self.health.record_cycle(report, OffsetDateTime::now_utc());
                for _ in report.failures() {
                    self.health.record_error(Stage::Kube);
                }
            }
            Err(CycleError::Aws(_)) => {
                self.health.record_cycle_failure();
                self.health.record_error(Stage::Aws);
            }
            Err(CycleError::Unreachable(_) | CycleError::Kube(_)) => {
                self.health.record_cycle_failure();
                self.health.record_error(Stage::Kube);
            }
        }
        self.health.set_api_requests(self.kube.requests_by_code());
    }

    fn after_success(&mut self) -> Duration {
        let Some((token, fetched_at)) = &self.token else {
            return self.config.update_interval;
        };
        let (wait, warning) = schedule::after_success(
            *fetched_at,
            token.expires_at,
            self.config.update_interval,
            self.jitter.sample(),
        );
        if let Some(warning) = warning {
            log::warn!("{warning}");
        }
        log::info!("next refresh in {} s", wait.as_secs());
        wait
    }

    fn after_failure(&mut self, failed_cycles: u32) -> Duration {
        let token_left = self.token.as_ref().and_then(|(t, _)| {
            let left = t.expires_at - OffsetDateTime::now_utc();
            (left > time::Duration::ZERO).then(|| Duration::from_secs_f64(left.as_seconds_f64()))
        });
        let wait = schedule::after_failure(failed_cycles, token_left, self.jitter.sample());
        log::warn!(
            "cycle failed ({failed_cycles} in a row); retrying in {} s",
            wait.as_secs()
        );
        wait
    }

    /// One cycle: a token (new, or the cached one while good), then every target.
    pub fn cycle(&mut self, force_new_token: bool) -> Result<CycleReport, CycleError> {
        let now = OffsetDateTime::now_utc();
        let reusable = self
            .token
            .as_ref()
            .is_some_and(|(t, _)| t.expires_at > now + REUSE_MARGIN);
        if force_new_token || !reusable {
            let credentials = self.credentials.credentials().map_err(CycleError::Aws)?;
            let data = self
                .ecr
                .get_authorization_token(&credentials)
                .map_err(CycleError::Aws)?;
            let token = Token {
                logins: vec![RegistryLogin {
                    host: registry_host(&data.proxy_endpoint),
                    username: data.username,
                    password: data.password,
                }],
                expires_at: data.expires_at,
            };
            log::debug!(
                "ECR token for {} (credentials from {}), expires {}",
                token.logins[0].host,
                credentials.source,
                token.expires_rfc3339()
            );
            self.token = Some((token, now));
        }
        let Some((token, _)) = &self.token else {
            unreachable!("a token was just stored or reused");
        };
        let targets = Targets {
            secret_name: self.config.secret_name.clone(),
            skip_namespaces: self.config.skip_namespaces.clone(),
            create_missing: self.config.create_missing,
            dry_run: self.config.flags.dry_run,
        };
        refresh::run_cycle(&self.kube, &targets, token).map_err(|e| match e {
            KubeError::Transport { .. } => CycleError::Unreachable(e),
            other => CycleError::Kube(other),
        })
    }
}
