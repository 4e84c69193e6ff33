//! When the next refresh or retry is due: pure functions of the clock, the token's expiry and the
//! failures so far, so they are tested without sleeping. Randomness (jitter) comes in as a
//! number in `[0, 1)` from [`Jitter`], so tests can pin it.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Never refresh sooner than this after a success (a token with an absurd expiry must not cause
/// a busy loop).
pub const MIN_REFRESH_DELAY: Duration = Duration::from_secs(60);
/// First wait after a failed cycle.
pub const RETRY_BASE: Duration = Duration::from_secs(5);
/// Usual cap of the wait after failed cycles.
pub const RETRY_CAP: Duration = Duration::from_secs(300);
/// First wait when the API server is not reachable.
pub const UNREACHABLE_BASE: Duration = Duration::from_secs(1);
/// Cap of the wait when the API server is not reachable.
pub const UNREACHABLE_CAP: Duration = Duration::from_secs(30);
/// A token lifetime longer than this is not believed (ECR tokens last 12 hours).
const MAX_BELIEVABLE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long after a successful refresh the next one is due: the earlier of `interval` and the
/// moment the token has a quarter of its lifetime left, spread DOWN by up to 10 % (`jitter` in
/// `[0, 1)`: between 90 % and 100 %, so `ECR_UPDATE_INTERVAL` stays the longest time between
/// refreshes), and never less than [`MIN_REFRESH_DELAY`]. The second value is a warning to log
/// when the token's expiry cannot be believed (in the past, or absurdly far), in which case the
/// interval alone decides. (ECR answers are checked before they get here, so this is a second
/// line of defence.)
pub fn after_success(
    fetched_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    interval: Duration,
    jitter: f64,
) -> (Duration, Option<String>) {
    let lifetime = expires_at - fetched_at;
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string());
    let (expires, fetched) = (rfc3339(expires_at), rfc3339(fetched_at));
    let (base, warning) = if lifetime <= time::Duration::ZERO {
        (
            interval,
            Some(format!(
                "the token's expiry {expires} is not after the time it was fetched ({fetched}): clock skew or a test endpoint; ECR_UPDATE_INTERVAL alone decides the next refresh"
            )),
        )
    } else if lifetime > MAX_BELIEVABLE_LIFETIME {
        (
            interval,
            Some(format!(
                "the token's expiry {expires} is implausibly far away; ECR_UPDATE_INTERVAL alone decides the next refresh"
            )),
        )
    } else {
        let three_quarters = Duration::from_secs_f64(lifetime.as_seconds_f64() * 0.75);
        (interval.min(three_quarters), None)
    };
    let spread = 1.0 - 0.1 * jitter.clamp(0.0, 1.0);
    let delay = Duration::from_secs_f64(base.as_secs_f64() * spread);
    (delay.max(MIN_REFRESH_DELAY), warning)
}

/// The wait before retry number `failures` (1 = after the first failure) of a failed cycle:
/// exponential from [`RETRY_BASE`] with full jitter, capped at [`RETRY_CAP`] or at an eighth of
/// the validity the secrets still hold (`token_left`), whichever is longer. At least one second.
pub fn after_failure(failures: u32, token_left: Option<Duration>, jitter: f64) -> Duration {
    let cap = match token_left {
        Some(left) => RETRY_CAP.max(left / 8),
        None => RETRY_CAP,
    };
    let exponent = failures.saturating_sub(1).min(20);
    let ceiling = RETRY_BASE.saturating_mul(1u32 << exponent).min(cap);
    Duration::from_secs_f64(ceiling.as_secs_f64() * jitter.clamp(0.0, 1.0))
        .max(Duration::from_secs(1))
}

/// The wait before attempt number `failures + 1` to reach an API server that did not answer:
/// 1 s doubling to 30 s.
pub fn after_unreachable(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(10);
    UNREACHABLE_BASE
        .saturating_mul(1u32 << exponent)
        .min(UNREACHABLE_CAP)
}

/// A small pseudo-random source for jitter (xorshift64*), seeded from the clock and process id.
/// Not for anything secret.
pub struct Jitter(u64);

impl Jitter {
    /// A source seeded from the current time and process id.
    pub fn from_clock() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// The next number in `[0, 1)`.
    pub fn sample(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn hourly_interval_wins_over_a_fresh_12h_token() {
        let (d, w) = after_success(
            NOW,
            NOW + time::Duration::hours(12),
            Duration::from_secs(3600),
            0.5,
        );
        assert!(d <= Duration::from_secs(3600) && d >= Duration::from_secs(3240));
        assert!(w.is_none());
    }

    #[test]
    fn a_long_interval_is_cut_to_three_quarters_of_the_lifetime() {
        let (d, _) = after_success(
            NOW,
            NOW + time::Duration::hours(12),
            Duration::from_secs(43_200),
            0.0,
        );
        assert_eq!(d, Duration::from_secs(9 * 3600));
    }

    #[test]
    fn jitter_spreads_down_by_ten_percent_and_never_beyond_the_interval() {
        let interval = Duration::from_secs(3600);
        let exp = NOW + time::Duration::hours(12);
        assert_eq!(
            after_success(NOW, exp, interval, 0.0).0,
            Duration::from_secs(3600)
        );
        let low = after_success(NOW, exp, interval, 0.999_999).0.as_secs_f64();
        assert!((3240.0..=3241.0).contains(&low), "{low}");
        let mut jitter = Jitter::from_clock();
        for _ in 0..1000 {
            let (d, _) = after_success(NOW, exp, interval, jitter.sample());
            assert!(d <= interval && d >= interval * 9 / 10, "{d:?}");
        }
    }

    #[test]
    fn a_token_from_the_past_warns_and_never_busy_loops() {
        let (d, w) = after_success(
            NOW,
            datetime!(2015-01-01 00:00 UTC),
            Duration::from_secs(60),
            0.0,
        );
        assert_eq!(d, MIN_REFRESH_DELAY);
        let w = w.expect("warning");
        assert!(w.contains("clock skew") && !w.contains("every"), "{w}");
        let (_, w) = after_success(
            NOW,
            NOW + time::Duration::days(400),
            Duration::from_secs(600),
            0.5,
        );
        assert!(w.is_some());
        // Up to a week is believed (a long-lived token from a test endpoint): the interval or
        // three quarters of that lifetime decides, with no warning.
        for days in [3, 7] {
            let (d, w) = after_success(
                NOW,
                NOW + time::Duration::days(days),
                Duration::from_secs(3600),
                0.0,
            );
            assert_eq!((d, w), (Duration::from_secs(3600), None), "{days} days");
        }
        let (_, w) = after_success(
            NOW,
            NOW + time::Duration::days(7) + time::Duration::SECOND,
            Duration::from_secs(3600),
            0.0,
        );
        assert!(w.is_some_and(|w| w.contains("implausibly far")));
    }

    #[test]
    fn failure_backoff_doubles_to_its_cap() {
        assert_eq!(after_failure(1, None, 0.999_999_9).as_secs(), 4);
        assert_eq!(after_failure(3, None, 0.999_999_9).as_secs(), 19);
        assert_eq!(after_failure(30, None, 0.999_999_9).as_secs(), 299);
        assert_eq!(after_failure(30, None, 0.0), Duration::from_secs(1));
        // Eleven hours of validity left: the cap grows to 82.5 minutes.
        let long = after_failure(30, Some(Duration::from_secs(11 * 3600)), 0.999_999_9);
        assert_eq!(long.as_secs(), 4949);
    }

    #[test]
    fn unreachable_backoff_is_1s_doubling_to_30s() {
        let waits: Vec<u64> = (1..=7).map(|n| after_unreachable(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let mut j = Jitter::from_clock();
        let values: Vec<f64> = (0..1000).map(|_| j.sample()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
        // Spread evenly: each tenth of [0, 1) gets its share of 10,000 samples, whatever the
        // seed (an even one, the smallest, one from the clock).
        for mut j in [Jitter(2), Jitter(1), Jitter::from_clock()] {
            let mut tenths = [0u32; 10];
            for _ in 0..10_000 {
                tenths[(j.sample() * 10.0) as usize] += 1;
            }
            assert!(tenths.iter().all(|n| (850..1150).contains(n)), "{tenths:?}");
        }
        // Two processes (or two starts) do not share one sequence: sources seeded from the
        // clock a moment apart differ from their first sample.
        let firsts: Vec<f64> = (0..4)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1)); // the clock moves on between seeds
                Jitter::from_clock().sample()
            })
            .collect();
        let mut distinct = firsts.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), firsts.len(), "{firsts:?}");
    }
}
