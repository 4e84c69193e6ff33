//! Clock skew: the local clock compared with the `Date` header of every AWS answer (ECR and
//! STS). SigV4 refuses requests more than about 5 minutes off, with errors few users connect to
//! their clock, so a difference over [`SKEW_WARNING`] is logged as a warning with its size, and
//! the last measured skew is kept for `ecrupdater_clock_skew_seconds`.
//!
//! The measure is process-wide (answers arrive deep in the AWS clients); it is only ever a
//! number, never anything from the answer but the date.

use std::sync::Mutex;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A skew beyond this is logged as a warning.
pub const SKEW_WARNING: time::Duration = time::Duration::seconds(60);

/// HTTP's IMF-fixdate (RFC 9110 5.6.7), the only form AWS sends.
const IMF_FIXDATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// The last measured skew, in seconds: local clock minus the server's (positive: ahead).
static LAST_SKEW: Mutex<Option<f64>> = Mutex::new(None);

/// Takes in the `Date` header of an answer from `service`, received at `now`. An absent or
/// unreadable header is ignored.
pub fn observe(service: &str, date: Option<&str>, now: OffsetDateTime) {
    let Some(server) = date.and_then(parse_http_date) else {
        return;
    };
    // The header has whole seconds: a skew under a second is not measured.
    let skew = now.replace_nanosecond(0).unwrap_or(now) - server;
    *LAST_SKEW.lock().unwrap_or_else(|e| e.into_inner()) = Some(skew.as_seconds_f64());
    if skew.abs() > SKEW_WARNING {
        log::warn!(
            "clock skew: the local clock is {} s {} the Date of the {service} answer; AWS refuses signatures more than 5 minutes off: check the node's time sync (NTP)",
            skew.whole_seconds().abs(),
            if skew.is_positive() {
                "ahead of"
            } else {
                "behind"
            },
        );
    }
}

/// The last measured skew in seconds (local minus AWS), if any answer carried a date.
pub fn last_skew() -> Option<f64> {
    *LAST_SKEW.lock().unwrap_or_else(|e| e.into_inner())
}

/// An IMF-fixdate such as `Wed, 02 Dec 2026 04:57:08 GMT`.
pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    if text.len() > 64 {
        return None;
    }
    PrimitiveDateTime::parse(text.trim(), IMF_FIXDATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Wed, 02 Dec 2026 04:57:08 GMT"),
            Some(datetime!(2026-12-02 04:57:08 UTC))
        );
        assert_eq!(parse_http_date("2026-12-02T04:57:08Z"), None);
        assert_eq!(parse_http_date("Wed, 02 Dec 2026 04:57:08 PST"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn skew_is_local_minus_server() {
        let now = datetime!(2026-12-02 05:07:08.6 UTC);
        observe("ECR", Some("Wed, 02 Dec 2026 04:57:08 GMT"), now);
        assert_eq!(last_skew(), Some(600.0));
        observe("ECR", Some("not a date"), now);
        assert_eq!(
            last_skew(),
            Some(600.0),
            "an unreadable date changes nothing"
        );
        observe("ECR", Some("Wed, 02 Dec 2026 05:17:08 GMT"), now);
        assert_eq!(last_skew(), Some(-600.0));
    }
}
