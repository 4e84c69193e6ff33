//! The daemon's loop: fetch a token (reusing a cached one while it is good), run a refresh
//! cycle, decide when the next one is due ([`crate::schedule`]), and wait until then or until a
//! shutdown request. With `ECR_CREATE_MISSING`, the wait is a watch on namespaces, so a new
//! namespace gets its secret within seconds, with the cached token. With `--once`, one cycle and
//! an exit status.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::aws::AwsError;
use crate::aws::CredentialChain;
use crate::config::Config;
use crate::health::{Health, Stage};
use crate::kube::access_review::{self, Preflight};
use crate::kube::namespaces::{self, WatchEnd, WatchEvent};
use crate::kube::{KubeClient, KubeError};
use crate::refresh::{CycleReport, Outcome, Refresher, Targets};
use crate::schedule::{self, Jitter};
use crate::shutdown;
use crate::tokens::{TokenCache, TokenSource};

/// The longest single watch request; the daemon re-watches from the last resourceVersion.
const MAX_WATCH: Duration = Duration::from_secs(300);

/// Namespaces served through the watch between two refreshes, at most: a stream of made-up
/// namespaces must not make requests (and memory) grow without end. Far above any real cluster's
/// rate of new namespaces.
const MAX_WATCH_SERVED: usize = 10_000;

/// In `--once` mode, how long an API server that refuses connections is tried again, quietly
/// (a `kubectl proxy` started next to the job may need a moment), before the one error line.
const ONCE_UNREACHABLE_GRACE: Duration = Duration::from_secs(3);
/// The first pause of that grace; it doubles up to a second.
const ONCE_UNREACHABLE_PAUSE: Duration = Duration::from_millis(250);

/// Why a cycle did not complete.
#[derive(Debug)]
pub enum CycleError {
    /// The token could not be fetched: nothing was written.
    Aws(AwsError),
    /// The API server could not be reached, or did not answer (not up yet, or gone).
    Unreachable(KubeError),
    /// The API server refused the namespace list.
    Kube(KubeError),
}

/// The daemon's state between cycles.
pub struct Daemon {
    config: Config,
    kube: KubeClient,
    tokens: TokenCache,
    refresher: Refresher,
    jitter: Jitter,
    health: Health,
    events: crate::kube::events::EventRecorder,
    /// The RBAC preflight's result, once made (before the first refresh).
    preflight: Option<Preflight>,
}

impl Daemon {
    /// A daemon with the clients `config` describes: the Kubernetes client (whose error names
    /// the in-cluster file it could not use), and the token cache over the credential chain,
    /// each AWS side with its own agent.
    pub fn from_config(config: Config, health: Health) -> Result<Daemon, String> {
        let kube = KubeClient::new(&config.kube, config.timeouts)?;
        let aws_agent = crate::net::aws_agent(config.timeouts, &config.network);
        let verifier =
            crate::verify::Verifier::new(aws_agent.clone(), config.verify, health.verification());
        let source = TokenSource::new(
            aws_agent.clone(),
            &config.aws.ecr_endpoint,
            &config.aws.region,
            config.registries.clone(),
        );
        let chain = CredentialChain::new(config.aws.clone(), aws_agent);
        Ok(Daemon::new(
            config,
            kube,
            TokenCache::new(source, chain).with_verifier(verifier),
            health,
        ))
    }

    /// The Kubernetes client (benchmarks shorten its retry pauses).
    pub fn kube(&self) -> &KubeClient {
        &self.kube
    }

    /// A daemon with its clients.
    pub fn new(config: Config, kube: KubeClient, tokens: TokenCache, health: Health) -> Daemon {
        let refresher = Refresher::new(Targets {
            secret_name: config.secret_name.clone(),
            selection: config.selection.clone(),
            namespace_selector: config.namespace_selector.clone(),
            create_missing: config.create_missing,
            service_accounts: config.service_accounts.clone(),
            dry_run: config.flags.dry_run,
        });
        Daemon {
            events: crate::kube::events::EventRecorder::new(&config.secret_name),
            preflight: None,
            config,
            kube,
            tokens,
            refresher,
            jitter: Jitter::from_clock(),
            health,
        }
    }

    /// Runs until a shutdown request (daemon) or for one cycle (`--once`). Returns the exit status.
    pub fn run(&mut self) -> i32 {
        let once = self.config.flags.once;
        let mut failed_cycles = 0u32;
        let mut unreachable = 0u32;
        let mut force_new_token = true;
        let mut first_unreachable: Option<Instant> = None;
        // Whether any answer of the API server has passed TLS since start.
        let mut api_answered = false;
        loop {
            let result = self.cycle(force_new_token);
            self.record(&result);
            let failures = result.as_ref().map(CycleReport::failures);
            let failures = failures.unwrap_or_default();
            let verdict = self.tokens.last_verdict();
            crate::alerts::after_cycle(
                &mut self.events,
                &self.kube,
                &self.config,
                verdict,
                &failures,
            );
            let wait = match result {
                Ok(report) => {
                    unreachable = 0;
                    api_answered = true;
                    log::info!("{report}");
                    let failures = report.failures();
                    if once {
                        if failures.is_empty() {
                            // In a dry run, a missing right fails the run.
                            let missing = matches!(self.preflight, Some(Preflight::Missing(_)));
                            return i32::from(missing && self.config.flags.dry_run);
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
                    if once {
                        let since = *first_unreachable.get_or_insert_with(Instant::now);
                        let pause = (ONCE_UNREACHABLE_PAUSE * 2u32.pow(unreachable.min(3) - 1))
                            .min(Duration::from_secs(1));
                        if !e.is_unreachable() || since.elapsed() + pause > ONCE_UNREACHABLE_GRACE {
                            log::error!("{}", self.unreachable_help(&e));
                            return 1;
                        }
                        log::debug!(
                            "the Kubernetes API at {} is not reachable yet ({e}); trying again in {:.2} s",
                            self.kube.base_url(),
                            pause.as_secs_f64()
                        );
                        pause
                    } else {
                        let wait = schedule::after_unreachable(unreachable);
                        log::warn!(
                            "the Kubernetes API at {} is not reachable yet ({e}); trying again in {} s (attempt {unreachable})",
                            self.kube.base_url(),
                            wait.as_secs()
                        );
                        wait
                    }
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
                Err(CycleError::Kube(e)) if e.is_tls() && !api_answered => {
                    // No answer has ever passed TLS: the CA we trust does not vouch for this
                    // server. Waiting cannot fix a certificate; exit so the pod's status shows it.
                    log::error!(
                        "the Kubernetes API at {} failed TLS verification ({e}); nothing was written. Check the CA file (ca.crt in ECR_SERVICEACCOUNT_DIR) and the address (KUBERNETES_SERVICE_HOST, KUBERNETES_API_ENDPOINT)",
                        self.kube.base_url()
                    );
                    return 1;
                }
                Err(CycleError::Kube(e)) => {
                    api_answered |= !e.is_tls();
                    log::error!("listing namespaces failed: {e}");
                    if once {
                        return 1;
                    }
                    failed_cycles += 1;
                    force_new_token = false;
                    self.after_failure(failed_cycles)
                }
            };
            let watch = self.config.create_missing && failed_cycles == 0 && unreachable == 0;
            let stopped = if watch {
                self.watch_for(wait)
            } else {
                shutdown::sleep(wait)
            };
            if stopped {
                log::info!("shutting down");
                return 0;
            }
        }
    }

    /// The one line `--once` ends with when the API server cannot be reached: the address, what
    /// happened, and the three ways to fix it.
    fn unreachable_help(&self, e: &KubeError) -> String {
        let base = self.kube.base_url();
        if e.is_unreachable() {
            format!(
                "cannot connect to the Kubernetes API at {base} ({e}): start `kubectl proxy` (it listens on http://localhost:8001), set KUBERNETES_API_ENDPOINT to the API server's address, or run in-cluster"
            )
        } else {
            format!("the Kubernetes API at {base} did not answer: {e}")
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
        let Some((token, fetched_at)) = self.tokens.current() else {
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
        let token_left = self.tokens.current().and_then(|(t, _)| {
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
        let token = self.tokens.get(force_new_token).map_err(CycleError::Aws)?;
        let as_cycle_error = |e: KubeError| match e {
            KubeError::Transport { .. } | KubeError::Unreachable { .. } => {
                CycleError::Unreachable(e)
            }
            other => CycleError::Kube(other),
        };
        if self.preflight.is_none() {
            let rights = access_review::needed_rights(&self.config);
            let dry_run = self.config.flags.dry_run;
            let done =
                access_review::preflight(&self.kube, &rights, dry_run).map_err(as_cycle_error)?;
            self.preflight = Some(done);
        }
        self.refresher
            .run_cycle(&self.kube, token)
            .map_err(as_cycle_error)
    }

    /// Waits `wait` while watching namespaces: each new target namespace is served at once with
    /// the cached token. A watch that fails falls back to waiting, and is tried again. Returns
    /// `true` when a shutdown was requested.
    fn watch_for(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut resource_version = self.refresher.resource_version().to_string();
        let mut failures = 0u32;
        let mut served = 0usize;
        loop {
            if shutdown::requested() {
                return true;
            }
            if served >= MAX_WATCH_SERVED {
                log::warn!(
                    "namespace watch: {served} namespaces served since the last refresh; watching again after the next one"
                );
                return shutdown::sleep(deadline.saturating_duration_since(Instant::now()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_secs(1) {
                return shutdown::sleep(left);
            }
            if resource_version.is_empty() {
                // No list to start from (the last one failed): list now.
                match namespaces::list_active(&self.kube, self.config.namespace_selector.as_deref())
                {
                    Ok(list) => {
                        resource_version = list.resource_version;
                        for name in list.names {
                            serve_new(
                                &self.kube,
                                &mut self.refresher,
                                &mut self.tokens,
                                &self.health,
                                &name,
                            );
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        let pause = schedule::after_unreachable(failures).min(left);
                        log::warn!(
                            "namespace list failed: {e}; trying again in {} s",
                            pause.as_secs()
                        );
                        if shutdown::sleep(pause) {
                            return true;
                        }
                        continue;
                    }
                }
            }
            let Daemon {
                config,
                kube,
                tokens,
                refresher,
                health,
                ..
            } = self;
            // Each event is served as it arrives, while the stream stays open.
            let watch_started = Instant::now();
            let result = namespaces::watch(
                kube,
                &resource_version,
                left.min(MAX_WATCH),
                config.namespace_selector.as_deref(),
                |event| match event {
                    WatchEvent::Active(name) if served < MAX_WATCH_SERVED => {
                        if !refresher.is_known(&name) {
                            served += 1;
                        }
                        serve_new(kube, refresher, tokens, health, &name)
                    }
                    WatchEvent::Active(_) => {}
                    WatchEvent::Gone(name) => refresher.forget(&name),
                },
            );
            if shutdown::requested() {
                // The watch was cut short by the shutdown (or ended just before it): not a failure.
                return true;
            }
            match result {
                Ok(WatchEnd::Resume(rv)) => {
                    failures = 0;
                    resource_version = rv;
                    // A server (or proxy) that ends every stream at once must not make this spin.
                    if watch_started.elapsed() < Duration::from_secs(1)
                        && shutdown::sleep(Duration::from_secs(1))
                    {
                        return true;
                    }
                }
                Ok(WatchEnd::Expired) => {
                    log::info!(
                        "namespace watch: resourceVersion {resource_version} expired (410); listing again"
                    );
                    resource_version.clear();
                }
                Err(e) if matches!(e.code(), Some(401 | 403)) => {
                    // Not allowed to watch (RBAC): wait without it; new namespaces then get their
                    // secret at the next refresh.
                    log::warn!(
                        "namespace watch refused: {e}; new namespaces wait for the next refresh (grant watch on namespaces to serve them at once)"
                    );
                    return shutdown::sleep(deadline.saturating_duration_since(Instant::now()));
                }
                Err(e) => {
                    failures += 1;
                    let pause = schedule::after_unreachable(failures)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    log::warn!(
                        "namespace watch failed: {e}; trying again in {} s",
                        pause.as_secs()
                    );
                    if shutdown::sleep(pause) {
                        return true;
                    }
                }
            }
        }
    }
}

/// Serves a namespace the last cycle did not know, with the cached token (a new one only if it
/// expired).
fn serve_new(
    kube: &KubeClient,
    refresher: &mut Refresher,
    tokens: &mut TokenCache,
    health: &Health,
    namespace: &str,
) {
    if refresher.is_known(namespace) || !refresher.targets().selection.wants(namespace) {
        return;
    }
    let token = match tokens.get_paced() {
        Ok(token) => token,
        Err(e) => {
            log::error!("{namespace}: new namespace, but no token: {e}");
            health.record_error(Stage::Aws);
            return;
        }
    };
    let started = Instant::now();
    let outcome = refresher.serve(kube, token, namespace);
    health.set_api_requests(kube.requests_by_code());
    // The refresher has logged what it wrote ("created", "updated"); the latency is a detail.
    if let Outcome::Created | Outcome::Updated | Outcome::Unchanged = outcome {
        log::debug!(
            "{namespace}: new namespace served in {:.2} s ({outcome:?})",
            started.elapsed().as_secs_f64()
        );
    }
}
