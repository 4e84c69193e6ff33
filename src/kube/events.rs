//! Warning Events (events.k8s.io/v1), so that `kubectl describe secret` and `kubectl get events`
//! show what went wrong: [`EventRecorder::warn`] posts one, at most once per namespace and reason
//! per [`RATE_LIMIT`] (the recorder remembers when it last did). The note is masked for every
//! registered credential and cut to 1 KiB; an Event the server refuses is logged at debug (once
//! per reason) and never fails anything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::client::{Cap, KubeClient};

/// At most one Event per namespace and reason in this time.
pub const RATE_LIMIT: Duration = Duration::from_secs(3600);
/// The API server's limit on `note`, in bytes.
pub const MAX_NOTE: usize = 1024;
/// `reportingController` and `reportingInstance`.
pub const CONTROLLER: &str = "k8s-ecrupdater";
/// The reason of a namespace whose refresh failed.
pub const REFRESH_FAILED: &str = "RefreshFailed";
/// The reason of credentials a registry refused.
pub const VERIFICATION_FAILED: &str = "VerificationFailed";
/// The most (namespace, reason) pairs remembered (older ones are dropped first).
const MAX_REMEMBERED: usize = 20_000;

/// Posts rate-limited Warning Events about one pull secret's name.
#[derive(Debug)]
pub struct EventRecorder {
    secret_name: String,
    last: BTreeMap<(String, &'static str), Instant>,
    refused_logged: bool,
}

impl EventRecorder {
    /// A recorder for Events regarding the secret `secret_name` in each namespace.
    pub fn new(secret_name: &str) -> EventRecorder {
        EventRecorder {
            secret_name: secret_name.to_string(),
            last: BTreeMap::new(),
            refused_logged: false,
        }
    }

    /// Posts a Warning Event in `namespace` regarding the secret, unless one with this reason
    /// was posted there within [`RATE_LIMIT`]. Returns whether one was posted.
    pub fn warn(
        &mut self,
        client: &KubeClient,
        namespace: &str,
        reason: &'static str,
        action: &str,
        note: &str,
    ) -> bool {
        let now = Instant::now();
        let key = (namespace.to_string(), reason);
        if self
            .last
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < RATE_LIMIT)
        {
            return false;
        }
        self.last
            .retain(|_, at| now.duration_since(*at) < RATE_LIMIT);
        if self.last.len() >= MAX_REMEMBERED {
            return false;
        }
        self.last.insert(key, now);
        let body = event(namespace, &self.secret_name, reason, action, note);
        let path = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        match client.post::<serde::de::IgnoredAny>(&path, &body, Cap::Object) {
            Ok(_) => {
                log::debug!("{namespace}: Warning Event {reason} recorded");
                true
            }
            Err(e) => {
                if !self.refused_logged {
                    log::debug!(
                        "{namespace}: the Warning Event {reason} was refused ({e}); grant create on events.k8s.io events to record them"
                    );
                    self.refused_logged = true;
                }
                false
            }
        }
    }
}

/// The Event object.
pub fn event(namespace: &str, secret: &str, reason: &str, action: &str, note: &str) -> Value {
    let now = OffsetDateTime::now_utc();
    let event_time = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    );
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": { "generateName": format!("{secret}."), "namespace": namespace },
        "eventTime": event_time,
        "reportingController": CONTROLLER,
        "reportingInstance": CONTROLLER,
        "action": action,
        "reason": reason,
        "type": "Warning",
        "regarding": { "apiVersion": "v1", "kind": "Secret", "namespace": namespace, "name": secret },
        "note": bounded_note(note),
    })
}

/// The note masked, on one line, and at most [`MAX_NOTE`] bytes (cut on a character boundary).
fn bounded_note(note: &str) -> String {
    let masked = crate::sensitive::scrub(note);
    let mut out = String::with_capacity(MAX_NOTE);
    for c in masked.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_NOTE - 3 {
            out.push_str("...");
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_is_masked_bounded_and_one_line() {
        crate::sensitive::register("event-secret-value-123");
        let e = event(
            "app",
            "ecr-pull",
            REFRESH_FAILED,
            "Refresh",
            &format!("{}\nechoed event-secret-value-123", "é".repeat(600)),
        );
        let note = e["note"].as_str().expect("note");
        assert!(note.len() <= MAX_NOTE, "{}", note.len());
        assert!(note.ends_with("..."));
        let short = event(
            "app",
            "ecr-pull",
            REFRESH_FAILED,
            "Refresh",
            "a\nechoed event-secret-value-123",
        );
        let note = short["note"].as_str().expect("note");
        assert!(
            !note.contains("event-secret-value-123") && !note.contains('\n'),
            "{note}"
        );
        let t = e["eventTime"].as_str().expect("time");
        assert_eq!(t.len(), 27, "{t}");
        assert_eq!(e["regarding"]["namespace"], "app");
    }

    #[test]
    fn a_long_note_fills_the_api_limit_and_is_cut_on_a_character() {
        let ascii = bounded_note(&"note text 0123456789, ".repeat(100));
        assert_eq!(ascii.len(), MAX_NOTE, "the whole limit is used");
        assert!(ascii.ends_with("..."));
        // Two-byte characters: cut between them, within a byte of the limit.
        let accents = bounded_note(&"é".repeat(1000));
        assert!(
            (MAX_NOTE - 1..=MAX_NOTE).contains(&accents.len()),
            "{}",
            accents.len()
        );
        assert!(accents.trim_end_matches("...").chars().all(|c| c == 'é'));
        let short = "a short note";
        assert_eq!(bounded_note(short), short);
    }
}
