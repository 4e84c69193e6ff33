//! The metrics of the credential checks: `ecrupdater_registry_verified{host}` and
//! `ecrupdater_registry_verified_timestamp_seconds{host}` from [`crate::verify::Record`], and
//! `ecrupdater_clock_skew_seconds` from [`crate::clock`].

use super::Health;
use super::metrics::{float, metric_header, sample, unix_seconds};

impl Health {
    /// The handle the verifier records its results into.
    pub fn verification(&self) -> crate::verify::Record {
        self.verification.clone()
    }

    /// Appends the check metrics (a metric with no sample yet is left out).
    pub(super) fn check_metrics(&self, out: &mut String) {
        let hosts = self.verification.snapshot();
        if !hosts.is_empty() {
            metric_header(
                out,
                "ecrupdater_registry_verified",
                "gauge",
                "1 when the registry accepted the last token fetched (GET /v2/), 0 when it refused it or could not be asked.",
            );
            for (host, verified, _) in &hosts {
                let v = if *verified { "1" } else { "0" };
                sample(out, "ecrupdater_registry_verified", &[("host", host)], v);
            }
            metric_header(
                out,
                "ecrupdater_registry_verified_timestamp_seconds",
                "gauge",
                "Unix time of the last verification of each registry host.",
            );
            for (host, _, at) in &hosts {
                sample(
                    out,
                    "ecrupdater_registry_verified_timestamp_seconds",
                    &[("host", host)],
                    &unix_seconds(Some(*at)),
                );
            }
        }
        if let Some(skew) = crate::clock::last_skew() {
            metric_header(
                out,
                "ecrupdater_clock_skew_seconds",
                "gauge",
                "Local clock minus the Date of the last AWS answer (positive: the local clock is ahead).",
            );
            sample(out, "ecrupdater_clock_skew_seconds", &[], &float(skew));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::metrics::tests::{parse_metrics, value};
    use super::*;

    #[test]
    fn registry_verification_per_host() {
        let health = Health::new();
        assert!(
            !health
                .metrics(time::OffsetDateTime::now_utc())
                .contains("ecrupdater_registry_verified"),
            "no sample before a check"
        );
        let at = time::macros::datetime!(2026-12-02 05:00:00 UTC);
        let record = health.verification();
        record.set_for_tests("a.example", true, at);
        record.set_for_tests("b\"example", false, at);
        let text = health.metrics(time::OffsetDateTime::now_utc());
        let samples = parse_metrics(&text);
        assert_eq!(
            value(
                &samples,
                "ecrupdater_registry_verified",
                r#"host="a.example""#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(
                &samples,
                "ecrupdater_registry_verified",
                r#"host="b\"example""#
            ),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            value(
                &samples,
                "ecrupdater_registry_verified_timestamp_seconds",
                r#"host="a.example""#
            ),
            Some(at.unix_timestamp() as f64),
            "{text}"
        );
    }
}
