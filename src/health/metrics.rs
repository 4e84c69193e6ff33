//! The Prometheus text exposition format (0.0.4) of the status: [`Health::metrics`] and the
//! helpers that write its `# HELP` / `# TYPE` lines, its samples, escaped label values and
//! floats. Every metric is named `ecrupdater_*`; the status mutex is held only while formatting.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::Health;

impl Health {
    /// The metrics in Prometheus text exposition format 0.0.4, `now` being the time of the
    /// scrape (for the remaining validity of the targets).
    pub fn metrics(&self, now: OffsetDateTime) -> String {
        let status = self.lock();
        let mut out = String::with_capacity(4096);

        metric_header(
            &mut out,
            "ecrupdater_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last cycle with no failed namespace (0 if never).",
        );
        sample(
            &mut out,
            "ecrupdater_last_success_timestamp_seconds",
            &[],
            &unix_seconds(status.last_success),
        );

        metric_header(
            &mut out,
            "ecrupdater_token_expiry_timestamp_seconds",
            "gauge",
            "Unix time the last written ECR token expires (0 if none yet).",
        );
        sample(
            &mut out,
            "ecrupdater_token_expiry_timestamp_seconds",
            &[],
            &unix_seconds(status.token_expiry),
        );

        metric_header(
            &mut out,
            "ecrupdater_secrets_total",
            "counter",
            "Per-namespace outcomes of refresh cycles, by result.",
        );
        for (result, n) in [
            ("created", status.created),
            ("updated", status.updated),
            ("unchanged", status.unchanged),
            ("skipped", status.skipped),
            ("failed", status.failed),
        ] {
            sample(
                &mut out,
                "ecrupdater_secrets_total",
                &[("result", result)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_errors_total",
            "counter",
            "Errors, by stage.",
        );
        for (stage, n) in [("aws", status.errors_aws), ("kube", status.errors_kube)] {
            sample(
                &mut out,
                "ecrupdater_errors_total",
                &[("stage", stage)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_api_requests_total",
            "counter",
            "HTTP requests to the Kubernetes API, by status code (\"none\": no answer).",
        );
        for (code, n) in &status.api_requests {
            let code = if *code == 0 {
                "none".to_string()
            } else {
                code.to_string()
            };
            sample(
                &mut out,
                "ecrupdater_api_requests_total",
                &[("code", &code)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_cycle_duration_seconds",
            "gauge",
            "Duration of the last completed refresh cycle (0 if none yet).",
        );
        sample(
            &mut out,
            "ecrupdater_cycle_duration_seconds",
            &[],
            &float(status.last_duration.map_or(0.0, |d| d.as_secs_f64())),
        );

        metric_header(
            &mut out,
            "ecrupdater_cycles_total",
            "counter",
            "Refresh cycles, by result (failure: any namespace failed, or the cycle as a whole).",
        );
        for (result, n) in [
            ("success", status.cycles_success),
            ("failure", status.cycles_failure),
        ] {
            sample(
                &mut out,
                "ecrupdater_cycles_total",
                &[("result", result)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_targets",
            "gauge",
            "Target namespaces, as of the last completed cycle.",
        );
        sample(
            &mut out,
            "ecrupdater_targets",
            &[],
            &status.targets.len().to_string(),
        );

        metric_header(
            &mut out,
            "ecrupdater_targets_valid_min_seconds",
            "gauge",
            "Smallest remaining validity of the token in any target namespace (negative: expired; 0 when one holds none; absent without targets).",
        );
        let min_valid = status
            .targets
            .values()
            .map(|until| until.map_or(0.0, |until| (until - now).as_seconds_f64()))
            .min_by(f64::total_cmp);
        if let Some(min_valid) = min_valid {
            sample(
                &mut out,
                "ecrupdater_targets_valid_min_seconds",
                &[],
                &float(min_valid),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_ready",
            "gauge",
            "1 once a refresh cycle has succeeded, else 0.",
        );
        sample(
            &mut out,
            "ecrupdater_ready",
            &[],
            if status.ready { "1" } else { "0" },
        );

        metric_header(
            &mut out,
            "ecrupdater_build_info",
            "gauge",
            "Always 1; the labels tell the build.",
        );
        sample(
            &mut out,
            "ecrupdater_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            "1",
        );

        self.check_metrics(&mut out);
        out
    }
}

/// Appends the `# HELP` and `# TYPE` lines of a metric.
pub(super) fn metric_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Appends one sample line, escaping the label values.
pub(super) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value escaped per the text format: backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A float as the text format spells it.
pub(super) fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

/// Seconds since the Unix epoch, or 0 for `None`.
pub(super) fn unix_seconds(at: Option<OffsetDateTime>) -> String {
    float(at.map_or(0.0, |at| (at - OffsetDateTime::UNIX_EPOCH).as_seconds_f64()))
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::health::Stage;
    use crate::health::tests::{failed, minutes, report, t0};
    use crate::refresh::Outcome;

    /// Every sample line as (name, labels, value), checking the syntax on the way.
    pub(in crate::health) fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
        assert!(text.ends_with('\n'));
        let mut samples = Vec::new();
        let mut typed = Vec::new();
        let mut helped = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap_or_default().to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                typed.push(parts.next().unwrap_or_default().to_string());
                assert!(matches!(parts.next(), Some("gauge" | "counter")), "{line}");
                continue;
            }
            assert!(!line.starts_with('#'), "{line}");
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect(line);
                    for pair in labels.split(',') {
                        let (label, quoted) = pair.split_once('=').expect(line);
                        assert!(
                            label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        );
                        assert!(
                            quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                            "{line}"
                        );
                    }
                    (name, labels)
                }
                None => (series, ""),
            };
            assert!(name.starts_with("ecrupdater_"), "{line}");
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line}"
            );
            assert!(typed.iter().any(|t| t == name), "no TYPE before {line}");
            assert!(helped.iter().any(|h| h == name), "no HELP before {line}");
            samples.push((name.to_string(), labels.to_string(), value));
        }
        samples
    }

    pub(in crate::health) fn value(
        samples: &[(String, String, f64)],
        name: &str,
        labels: &str,
    ) -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
    }

    #[test]
    fn metrics_before_anything() {
        let health = Health::new();
        let samples = parse_metrics(&health.metrics(t0()));
        let v = |name: &str, labels: &str| value(&samples, name, labels);
        assert_eq!(
            v("ecrupdater_last_success_timestamp_seconds", ""),
            Some(0.0)
        );
        assert_eq!(
            v("ecrupdater_token_expiry_timestamp_seconds", ""),
            Some(0.0)
        );
        for result in ["created", "updated", "unchanged", "skipped", "failed"] {
            let labels = format!("result=\"{result}\"");
            assert_eq!(v("ecrupdater_secrets_total", &labels), Some(0.0));
        }
        assert_eq!(v("ecrupdater_errors_total", "stage=\"aws\""), Some(0.0));
        assert_eq!(v("ecrupdater_errors_total", "stage=\"kube\""), Some(0.0));
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"success\""),
            Some(0.0)
        );
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"failure\""),
            Some(0.0)
        );
        assert_eq!(v("ecrupdater_cycle_duration_seconds", ""), Some(0.0));
        assert_eq!(v("ecrupdater_targets", ""), Some(0.0));
        assert_eq!(v("ecrupdater_targets_valid_min_seconds", ""), None);
        assert_eq!(v("ecrupdater_ready", ""), Some(0.0));
        let build = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
        assert_eq!(v("ecrupdater_build_info", &build), Some(1.0));
    }

    #[test]
    fn metrics_after_cycles() {
        let health = Health::new();
        let now = t0();
        let expires = now + minutes(720);
        health.record_cycle(
            &report(
                &[
                    ("a", Outcome::Created),
                    ("b", Outcome::Updated),
                    ("c", Outcome::Unchanged),
                    ("d", Outcome::Skipped("type Opaque".into())),
                    ("e", failed()),
                ],
                expires,
            ),
            now,
        );
        health.record_cycle(
            &report(
                &[("a", Outcome::Unchanged), ("b", Outcome::Updated)],
                expires,
            ),
            now + minutes(10),
        );
        health.record_cycle_failure();
        health.record_error(Stage::Aws);
        health.record_error(Stage::Kube);
        health.record_error(Stage::Kube);
        health.set_api_requests(BTreeMap::from([(0, 2), (200, 40), (409, 1)]));

        let text = health.metrics(now + minutes(20));
        let samples = parse_metrics(&text);
        let v = |name: &str, labels: &str| value(&samples, name, labels);
        assert_eq!(
            v("ecrupdater_last_success_timestamp_seconds", ""),
            Some(1_700_000_600.0)
        );
        assert_eq!(
            v("ecrupdater_token_expiry_timestamp_seconds", ""),
            Some(1_700_043_200.0)
        );
        for (result, n) in [
            ("created", 1.0),
            ("updated", 2.0),
            ("unchanged", 2.0),
            ("skipped", 1.0),
            ("failed", 1.0),
        ] {
            let labels = format!("result=\"{result}\"");
            assert_eq!(v("ecrupdater_secrets_total", &labels), Some(n), "{result}");
        }
        assert_eq!(v("ecrupdater_errors_total", "stage=\"aws\""), Some(1.0));
        assert_eq!(v("ecrupdater_errors_total", "stage=\"kube\""), Some(2.0));
        assert_eq!(
            v("ecrupdater_api_requests_total", "code=\"none\""),
            Some(2.0)
        );
        assert_eq!(
            v("ecrupdater_api_requests_total", "code=\"200\""),
            Some(40.0)
        );
        assert_eq!(
            v("ecrupdater_api_requests_total", "code=\"409\""),
            Some(1.0)
        );
        assert_eq!(v("ecrupdater_cycle_duration_seconds", ""), Some(1.5));
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"success\""),
            Some(1.0)
        );
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"failure\""),
            Some(2.0)
        );
        assert_eq!(v("ecrupdater_targets", ""), Some(2.0));
        assert_eq!(
            v("ecrupdater_targets_valid_min_seconds", ""),
            Some(700.0 * 60.0)
        );
        assert_eq!(v("ecrupdater_ready", ""), Some(1.0));

        // Expired: negative.
        let samples = parse_metrics(&health.metrics(expires + minutes(1)));
        assert_eq!(
            value(&samples, "ecrupdater_targets_valid_min_seconds", ""),
            Some(-60.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\\y\"z\nw"), ("b", "ok")], "1");
        assert_eq!(out, "m{a=\"x\\\\y\\\"z\\nw\",b=\"ok\"} 1\n");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.25), "0.25");
    }
}
