//! Health and metrics: the small shared status the main loop updates ([`Health`]) and the HTTP
//! endpoint that reads it ([`serve`]): `/healthz` (liveness), `/readyz` (readiness) and
//! `/metrics` (Prometheus text format 0.0.4).
//!
//! The endpoint is one thread that serves every connection at once with non-blocking std
//! sockets (see `server.rs`): at most 32 open connections, the oldest dropped first, 2 s for
//! each to send its head and take its answer, so silent or trickling clients delay nobody.
//! The status mutex is held only to copy or format, never across I/O, so nothing here can hold
//! up the main loop.
//!
//! - `/healthz` is 200 while every target namespace holds a token valid for at least
//!   [`MIN_VALIDITY`] more, and during the first [`START_GRACE`] before the first cycle
//!   completes (so a just-started pod is not killed); 503 once a target's token runs short,
//!   which means refreshing has been failing for hours, or when no cycle has completed within
//!   [`START_GRACE`] of start (a cycle that never ends, or that fails as a whole every time).
//! - `/readyz` is 200 from the first successful cycle on.
//!
//! This file owns the status: the [`Health`] handle the main loop records cycles and errors
//! into, the `Status` it guards, [`Stage`], the constants, and the `/healthz` and `/readyz`
//! decisions ([`Health::healthz`], [`Health::readyz`]). `metrics.rs` renders the Prometheus text
//! ([`Health::metrics`]) and `server.rs` is the HTTP endpoint ([`serve`]).

mod checks;
mod metrics;
mod server;

pub use server::serve;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::refresh::{CycleReport, Outcome};

/// `/healthz` fails when a target namespace's token is valid for less than this.
pub const MIN_VALIDITY: time::Duration = time::Duration::minutes(15);
/// How long each connection has, from its accept, to send its request head and take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request head read; a longer one is answered 400.
pub const MAX_HEAD: usize = 8 * 1024;
/// `/healthz` fails when no cycle has completed this long after start.
pub const START_GRACE: time::Duration = time::Duration::minutes(10);
/// How many namespaces an unhealthy `/healthz` names.
const NAMED_IN_REASON: usize = 3;

/// Where an error happened, for `ecrupdater_errors_total{stage=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Credentials or the ECR token.
    Aws,
    /// The Kubernetes API.
    Kube,
}

/// The status itself; only ever touched under the mutex in [`Health`].
#[derive(Debug, Default)]
struct Status {
    /// When the process started (`None`: no start grace deadline).
    started: Option<OffsetDateTime>,
    /// Target namespaces and until when each holds a token (`None`: unknown, so none).
    targets: BTreeMap<String, Option<OffsetDateTime>>,
    /// At least one cycle produced a report.
    cycle_completed: bool,
    /// At least one cycle had no failure.
    ready: bool,
    last_success: Option<OffsetDateTime>,
    token_expiry: Option<OffsetDateTime>,
    last_duration: Option<Duration>,
    created: u64,
    updated: u64,
    unchanged: u64,
    skipped: u64,
    failed: u64,
    errors_aws: u64,
    errors_kube: u64,
    cycles_success: u64,
    cycles_failure: u64,
    api_requests: BTreeMap<u16, u64>,
}

/// A cheap-to-clone handle on the status: the main loop writes, the health thread reads.
#[derive(Debug, Clone, Default)]
pub struct Health {
    status: Arc<Mutex<Status>>,
    /// Registry verification results, per host (see `checks.rs`).
    verification: crate::verify::Record,
}

impl Health {
    /// A fresh status, started now: no cycle yet, not ready, every counter at zero.
    pub fn new() -> Health {
        Health::started_at(OffsetDateTime::now_utc())
    }

    /// A fresh status, started at `started` (the [`START_GRACE`] runs from there).
    pub fn started_at(started: OffsetDateTime) -> Health {
        Health {
            status: Arc::new(Mutex::new(Status {
                started: Some(started),
                ..Status::default()
            })),
            verification: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in a finished cycle. Namespaces created, updated or unchanged now hold a token valid
    /// until `report.token_expires_at`; failed ones keep what they had; skipped ones, and those
    /// absent from the report (deleted), stop being targets. A report without failures is a
    /// success: the daemon is ready from then on.
    pub fn record_cycle(&self, report: &CycleReport, now: OffsetDateTime) {
        let mut status = self.lock();
        let mut targets = BTreeMap::new();
        let mut failed = false;
        for (namespace, outcome) in &report.outcomes {
            match outcome {
                Outcome::Created => {
                    status.created += 1;
                    targets.insert(namespace.clone(), Some(report.token_expires_at));
                }
                Outcome::Updated => {
                    status.updated += 1;
                    targets.insert(namespace.clone(), Some(report.token_expires_at));
                }
                Outcome::Unchanged => {
                    status.unchanged += 1;
                    targets.insert(namespace.clone(), Some(report.token_expires_at));
                }
                Outcome::Skipped(_) => {
                    status.skipped += 1;
                    targets.remove(namespace);
                }
                Outcome::Failed(_) => {
                    status.failed += 1;
                    failed = true;
                    let before = status.targets.get(namespace).copied().flatten();
                    targets.insert(namespace.clone(), before);
                }
            }
        }
        status.targets = targets;
        status.cycle_completed = true;
        status.last_duration = Some(report.duration);
        status.token_expiry = Some(report.token_expires_at);
        if failed {
            status.cycles_failure += 1;
        } else {
            status.cycles_success += 1;
            status.last_success = Some(now);
            status.ready = true;
        }
    }

    /// Counts a cycle that failed as a whole (no token, or the namespaces could not be listed).
    /// The targets keep the validity they had.
    pub fn record_cycle_failure(&self) {
        self.lock().cycles_failure += 1;
    }

    /// Counts one error at `stage`.
    pub fn record_error(&self, stage: Stage) {
        let mut status = self.lock();
        match stage {
            Stage::Aws => status.errors_aws += 1,
            Stage::Kube => status.errors_kube += 1,
        }
    }

    /// Replaces the API request counts: cumulative totals by HTTP status code (0 = no answer).
    pub fn set_api_requests(&self, by_code: BTreeMap<u16, u64>) {
        self.lock().api_requests = by_code;
    }

    /// Liveness: `(true, "ok")` while every target namespace holds a token valid for at least
    /// [`MIN_VALIDITY`] after `now` (zero targets included), and `(true, "starting ...")` before
    /// the first cycle within [`START_GRACE`] of start; otherwise `false` and a one-line reason
    /// (naming the first few namespaces).
    pub fn healthz(&self, now: OffsetDateTime) -> (bool, String) {
        let (completed, started, total, mut short) = {
            let status = self.lock();
            let short: Vec<(Option<OffsetDateTime>, String)> = status
                .targets
                .iter()
                .filter(|(_, until)| until.is_none_or(|until| until - now < MIN_VALIDITY))
                .map(|(namespace, until)| (*until, namespace.clone()))
                .collect();
            (
                status.cycle_completed,
                status.started,
                status.targets.len(),
                short,
            )
        };
        if !completed {
            let waited = started.map(|s| now - s).unwrap_or(time::Duration::ZERO);
            if waited >= START_GRACE {
                return (
                    false,
                    format!(
                        "no cycle has completed in the {} s since start (allowed: {} s)",
                        waited.whole_seconds(),
                        START_GRACE.whole_seconds()
                    ),
                );
            }
            return (true, "starting: no cycle has completed yet".into());
        }
        if short.is_empty() {
            return (true, "ok".into());
        }
        // The worst first: no token, then the earliest expiry.
        short.sort();
        let mut reason = format!(
            "{} of {total} target namespaces hold no token valid for {} more minutes:",
            short.len(),
            MIN_VALIDITY.whole_minutes()
        );
        for (i, (until, namespace)) in short.iter().take(NAMED_IN_REASON).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let state = match until {
                None => "no token".to_string(),
                Some(until) if *until <= now => {
                    format!("expired {} s ago", (now - *until).whole_seconds())
                }
                Some(until) => format!("expires in {} s", (*until - now).whole_seconds()),
            };
            let _ = write!(reason, "{sep}{} ({state})", one_line(namespace));
        }
        if short.len() > NAMED_IN_REASON {
            let _ = write!(reason, " and {} more", short.len() - NAMED_IN_REASON);
        }
        (false, reason)
    }

    /// Readiness: `true` from the first successful cycle on.
    pub fn readyz(&self) -> (bool, String) {
        if self.lock().ready {
            (true, "ready".into())
        } else {
            (false, "no successful cycle yet".into())
        }
    }
}

/// `text` with control characters dropped, so that it fits on one line.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn t0() -> OffsetDateTime {
        // 2023-11-14T22:13:20Z
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub(super) fn minutes(n: i64) -> time::Duration {
        time::Duration::minutes(n)
    }

    pub(super) fn report(outcomes: &[(&str, Outcome)], expires: OffsetDateTime) -> CycleReport {
        CycleReport {
            outcomes: outcomes
                .iter()
                .map(|(ns, o)| (ns.to_string(), o.clone()))
                .collect(),
            duration: Duration::from_millis(1500),
            token_expires_at: expires,
            dry_run: false,
        }
    }

    pub(super) fn failed() -> Outcome {
        Outcome::Failed("boom".into())
    }

    #[test]
    fn healthz_follows_the_validity_of_every_target() {
        let health = Health::new();
        let now = t0();
        assert!(health.healthz(now).0);

        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", Outcome::Unchanged)],
                now + minutes(60),
            ),
            now,
        );
        assert_eq!(health.healthz(now), (true, "ok".into()));
        assert_eq!(health.healthz(now + minutes(45)), (true, "ok".into()));

        let (ok, reason) = health.healthz(now + minutes(50));
        assert!(!ok);
        assert!(reason.starts_with("2 of 2 target namespaces"), "{reason}");
        assert!(reason.contains("a (expires in 600 s)"), "{reason}");
        assert!(reason.contains("b (expires in 600 s)"), "{reason}");
        let (ok, reason) = health.healthz(now + minutes(70));
        assert!(!ok);
        assert!(reason.contains("a (expired 600 s ago)"), "{reason}");

        // A new successful cycle brings it back.
        let later = now + minutes(50);
        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", Outcome::Updated)],
                later + minutes(720),
            ),
            later,
        );
        assert_eq!(health.healthz(later), (true, "ok".into()));
    }

    #[test]
    fn a_failed_namespace_keeps_its_previous_validity() {
        let health = Health::new();
        let now = t0();
        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", Outcome::Updated)],
                now + minutes(60),
            ),
            now,
        );
        // "b" fails with a newer token: it still holds the old one.
        let later = now + minutes(30);
        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", failed()), ("c", failed())],
                later + minutes(720),
            ),
            later,
        );
        let (ok, reason) = health.healthz(later);
        assert!(!ok, "c never held a token");
        assert!(reason.starts_with("1 of 3 "), "{reason}");
        assert!(reason.contains("c (no token)"), "{reason}");
        assert!(!reason.contains("b ("), "{reason}");

        let (ok, reason) = health.healthz(now + minutes(50));
        assert!(!ok);
        assert!(reason.starts_with("2 of 3 "), "{reason}");
        assert!(
            reason.contains("c (no token), b (expires in 600 s)"),
            "{reason}"
        );

        // "c" is skipped now and "b" gone (deleted): only "a" is a target.
        health.record_cycle(
            &report(
                &[
                    ("a", Outcome::Unchanged),
                    ("c", Outcome::Skipped("no such secret".into())),
                ],
                later + minutes(720),
            ),
            later,
        );
        assert_eq!(health.healthz(later + minutes(60)), (true, "ok".into()));
        assert!(health.metrics(later).contains("\necrupdater_targets 1\n"));
    }

    #[test]
    fn healthz_names_only_the_first_few() {
        let health = Health::new();
        let now = t0();
        let outcomes: Vec<(String, Outcome)> =
            (0..10).map(|i| (format!("ns-{i}"), failed())).collect();
        health.record_cycle(
            &CycleReport {
                outcomes,
                duration: Duration::ZERO,
                token_expires_at: now + minutes(60),
                dry_run: false,
            },
            now,
        );
        let (ok, reason) = health.healthz(now);
        assert!(!ok);
        assert_eq!(
            reason,
            "10 of 10 target namespaces hold no token valid for 15 more minutes: ns-0 (no token), ns-1 (no token), ns-2 (no token) and 7 more"
        );
    }

    #[test]
    fn healthz_fails_when_no_cycle_completes_within_ten_minutes_of_start() {
        let now = t0();
        let health = Health::started_at(now);
        assert_eq!(
            health.healthz(now + minutes(9)),
            (true, "starting: no cycle has completed yet".into())
        );
        // Cycles that fail as a whole (no report) do not count.
        health.record_cycle_failure();
        let (ok, reason) = health.healthz(now + minutes(10));
        assert!(!ok);
        assert_eq!(
            reason,
            "no cycle has completed in the 600 s since start (allowed: 600 s)"
        );
        // One completed cycle, even late, brings it back.
        health.record_cycle(
            &report(&[("a", Outcome::Updated)], now + minutes(600)),
            now + minutes(11),
        );
        assert_eq!(health.healthz(now + minutes(12)), (true, "ok".into()));
    }

    #[test]
    fn zero_targets_after_a_successful_cycle_is_healthy() {
        let health = Health::new();
        let now = t0();
        health.record_cycle(&report(&[], now + minutes(60)), now);
        assert_eq!(health.healthz(now + minutes(600)), (true, "ok".into()));
        assert!(health.readyz().0);
        assert!(
            !health
                .metrics(now)
                .contains("\necrupdater_targets_valid_min_seconds ")
        );
    }
}
