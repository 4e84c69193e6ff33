//! Credential values: the [`Sensitive`] wrapper that never prints its content, and the process-wide
//! list of credential values that the logger masks ([`scrub`]) as a second line of defence.
//!
//! Every credential the daemon handles (AWS secret key, session token, ECR password, the `auth`
//! field derived from it, the service-account token) is created through [`Sensitive::new`], which
//! registers it, so that even a value that slips into a message by mistake is printed as `***`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

/// How many registered values are kept; the oldest are forgotten first (tokens rotate).
const MAX_REGISTERED: usize = 64;
/// Values shorter than this are not masked (masking "a" everywhere would ruin every log line).
const MIN_MASKED_LEN: usize = 6;

static REGISTERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A credential. `Debug` and `Display` print `***`; [`Sensitive::expose`] is the only way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a credential and registers it with the log mask.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Sensitive(value)
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Adds a value to the log mask without wrapping it (for values derived from a credential).
pub fn register(value: &str) {
    if value.len() < MIN_MASKED_LEN {
        return;
    }
    let mut values = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if values.iter().any(|v| v == value) {
        return;
    }
    if values.len() >= MAX_REGISTERED {
        values.remove(0);
    }
    values.push(value.to_string());
}

/// Replaces every registered credential value in `text` with `***`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let values = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for value in values.iter() {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), "***"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Sensitive::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }

    #[test]
    fn scrub_masks_registered_values_only() {
        let _s = Sensitive::new("registered-value-123");
        assert_eq!(
            scrub("a registered-value-123 b registered-value-123"),
            "a *** b ***"
        );
        assert_eq!(scrub("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_masked() {
        register("abc");
        assert_eq!(scrub("abc abc"), "abc abc");
    }
}
