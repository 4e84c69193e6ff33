//! Credential values: the [`Sensitive`] wrapper that never prints its content, and the process-wide
//! mask of credential values that the logger applies to every line ([`mask`], [`scrub`]) as a
//! second line of defence.
//!
//! Every credential the daemon handles (AWS secret key, session token, ECR password, the `auth`
//! field derived from it, the service-account token) is created through [`Sensitive::new`], which
//! adds it to the mask, so that even a value that slips into a message by mistake, or that a
//! server echoes back whole or in part, is printed as `***`.
//!
//! What the mask catches:
//! - every value of [`MIN_MASKED_LEN`] characters or more, whole;
//! - in values of [`WINDOW`] characters or more, every piece of [`WINDOW`] characters or more: the
//!   mask indexes each `WINDOW`-byte window of each value, and any text covered by a matching
//!   window is masked, so a server that echoes a cut, the end or the middle of a token is caught.
//!
//! How long a value stays in the mask, with bounded memory:
//! - a value held by a [`Sensitive`] (any clone of it) stays for as long as one exists: the
//!   process holds it, so it is never evicted;
//! - once the last holder is dropped, and for values added with [`register`] (derived from a
//!   credential, with no holder to follow), the value is *retired*: it stays masked until newer
//!   retired values push it out, oldest first, beyond [`MAX_RETIRED`] values or
//!   [`MAX_RETIRED_BYTES`] bytes. Tokens are superseded every few hours, so what is evicted is a
//!   value superseded many refreshes ago.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;

/// Values shorter than this are not masked (masking "a" everywhere would ruin every log line).
pub const MIN_MASKED_LEN: usize = 6;
/// Pieces of a credential this long or longer are masked wherever they appear.
pub const WINDOW: usize = 16;
/// How many retired values (no longer held, or derived) stay masked.
pub const MAX_RETIRED: usize = 256;
/// How many bytes of retired values stay masked.
pub const MAX_RETIRED_BYTES: usize = 256 * 1024;
/// What replaces a masked stretch of text.
pub const MASK: &str = "***";

static REGISTERED: Mutex<Mask> = Mutex::new(Mask::new());

/// A credential. `Debug` and `Display` print `***`; [`Sensitive::expose`] is the only way in.
/// While any clone of it exists, its value is masked in every log line.
#[derive(PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a credential and adds it to the log mask for as long as it (or a clone) lives.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        lock().hold(&value);
        Sensitive(value)
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Clone for Sensitive {
    fn clone(&self) -> Self {
        lock().hold(&self.0);
        Sensitive(self.0.clone())
    }
}

impl Drop for Sensitive {
    fn drop(&mut self) {
        lock().release(&self.0);
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

fn lock() -> std::sync::MutexGuard<'static, Mask> {
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds a value to the log mask without wrapping it (for values derived from a credential). It
/// is retired at once: masked until [`MAX_RETIRED`] newer retired values push it out.
pub fn register(value: &str) {
    lock().register(value);
}

/// Replaces every registered credential value, and every piece of [`WINDOW`] characters or more
/// of one, in `text` with `***`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let masked = mask(text, usize::MAX, |c, out| out.push(c));
    if masked.text == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(masked.text)
    }
}

/// The result of [`mask`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// The masked (and, by the caller's `emit`, escaped) text.
    pub text: String,
    /// How many bytes of the input were left out because the output reached its limit.
    pub cut: usize,
}

/// Masks `text` and passes each character that is kept to `emit` (which may escape it), stopping
/// once the output holds `limit` bytes or more. Masking decisions look at the whole input
/// around each position, so the output is exactly a prefix of what masking all of `text` would
/// give: the cut comes after the mask.
pub fn mask(text: &str, limit: usize, emit: impl FnMut(char, &mut String)) -> Masked {
    let mut guard = lock();
    let index = guard.index();
    index.mask(text, limit, emit)
}

/// One value some [`Sensitive`] holds, with how many hold it.
#[derive(Debug)]
struct Held {
    value: String,
    holders: usize,
}

/// The mask: held and retired values, and the index built from them.
#[derive(Debug)]
struct Mask {
    held: Vec<Held>,
    retired: VecDeque<String>,
    retired_bytes: usize,
    index: Option<Index>,
}

impl Mask {
    const fn new() -> Mask {
        Mask {
            held: Vec::new(),
            retired: VecDeque::new(),
            retired_bytes: 0,
            index: None,
        }
    }

    fn hold(&mut self, value: &str) {
        if value.len() < MIN_MASKED_LEN {
            return;
        }
        if let Some(held) = self.held.iter_mut().find(|h| h.value == value) {
            held.holders += 1;
            return;
        }
        if let Some(at) = self.retired.iter().position(|v| v == value) {
            // Back in use: held again (the set of values does not change).
            if let Some(v) = self.retired.remove(at) {
                self.retired_bytes -= v.len();
            }
        } else {
            self.index = None;
        }
        self.held.push(Held {
            value: value.to_string(),
            holders: 1,
        });
    }

    fn release(&mut self, value: &str) {
        let Some(at) = self.held.iter().position(|h| h.value == value) else {
            return;
        };
        let held = &mut self.held[at];
        held.holders -= 1;
        if held.holders == 0 {
            let held = self.held.swap_remove(at);
            self.retire(held.value);
        }
    }

    fn register(&mut self, value: &str) {
        if value.len() < MIN_MASKED_LEN || self.held.iter().any(|h| h.value == value) {
            return;
        }
        if let Some(at) = self.retired.iter().position(|v| v == value) {
            // Seen again: the newest retired value now.
            if let Some(v) = self.retired.remove(at) {
                self.retired_bytes -= v.len();
                self.retire(v);
            }
            return;
        }
        self.index = None;
        self.retire(value.to_string());
    }

    /// Adds a retired value (newest last) and evicts the oldest beyond the bounds.
    fn retire(&mut self, value: String) {
        self.retired_bytes += value.len();
        self.retired.push_back(value);
        while self.retired.len() > MAX_RETIRED || self.retired_bytes > MAX_RETIRED_BYTES {
            let Some(old) = self.retired.pop_front() else {
                break;
            };
            self.retired_bytes -= old.len();
            self.index = None;
        }
    }

    fn index(&mut self) -> &Index {
        let Mask {
            held,
            retired,
            index,
            ..
        } = self;
        index.get_or_insert_with(|| {
            Index::build(
                held.iter()
                    .map(|h| h.value.as_str())
                    .chain(retired.iter().map(String::as_str)),
            )
        })
    }

    /// (values, bytes of values, indexed windows), for the tests of the bounds.
    #[cfg(test)]
    fn size(&mut self) -> (usize, usize, usize) {
        let values = self.held.len() + self.retired.len();
        let bytes = self.held.iter().map(|h| h.value.len()).sum::<usize>() + self.retired_bytes;
        let windows = self.index().windows.len();
        (values, bytes, windows)
    }
}

/// What [`mask`] looks up: the hashes of every [`WINDOW`]-byte window of the long values (sorted),
/// and the short values whole.
#[derive(Debug)]
struct Index {
    windows: Vec<u64>,
    short: Vec<Vec<u8>>,
}

impl Index {
    fn build<'a>(values: impl Iterator<Item = &'a str>) -> Index {
        let mut windows = Vec::new();
        let mut short = Vec::new();
        for value in values {
            let bytes = value.as_bytes();
            if bytes.len() >= WINDOW {
                windows.extend(bytes.windows(WINDOW).map(window_hash));
            } else {
                short.push(bytes.to_vec());
            }
        }
        windows.sort_unstable();
        windows.dedup();
        windows.shrink_to_fit();
        Index { windows, short }
    }

    fn hit(&self, window: &[u8]) -> bool {
        self.windows.binary_search(&window_hash(window)).is_ok()
    }

    /// The end of the masked stretch that starts at byte `at`, if any.
    fn cover_from(&self, bytes: &[u8], at: usize) -> usize {
        let rest = bytes.get(at..).unwrap_or_default();
        let mut end = 0;
        if let Some(window) = rest.get(..WINDOW)
            && !self.windows.is_empty()
            && self.hit(window)
        {
            end = at + WINDOW;
        }
        for value in &self.short {
            if rest.starts_with(value) {
                end = end.max(at + value.len());
            }
        }
        end
    }

    fn mask(&self, text: &str, limit: usize, mut emit: impl FnMut(char, &mut String)) -> Masked {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len().min(limit.saturating_add(16)).min(1 << 16));
        let mut covered_until = 0;
        let mut in_mask = false;
        for (at, c) in text.char_indices() {
            for byte in at..at + c.len_utf8() {
                covered_until = covered_until.max(self.cover_from(bytes, byte));
            }
            let masked = at < covered_until;
            if masked && in_mask {
                continue;
            }
            if out.len() >= limit {
                return Masked {
                    text: out,
                    cut: text.len() - at,
                };
            }
            in_mask = masked;
            if masked {
                out.push_str(MASK);
            } else {
                emit(c, &mut out);
            }
        }
        Masked { text: out, cut: 0 }
    }
}

/// A 64-bit hash of a [`WINDOW`]-byte window (a collision only masks some harmless text).
fn window_hash(window: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(window.get(..8).unwrap_or(&[0; 8]));
    b.copy_from_slice(window.get(8..16).unwrap_or(&[0; 8]));
    let mut h = u64::from_le_bytes(a).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from_le_bytes(b)
            .rotate_left(29)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 31;
    h = h.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(mask: &mut Mask, text: &str) -> String {
        mask.index().mask(text, usize::MAX, |c, o| o.push(c)).text
    }

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
        let mut mask = Mask::new();
        mask.register("abcde");
        assert_eq!(masked(&mut mask, "abcde"), "abcde");
    }

    #[test]
    fn a_six_character_credential_is_masked() {
        let _s = Sensitive::new("Qz6#k!");
        assert_eq!(scrub("pw=Qz6#k! end"), "pw=*** end");
        let mut mask = Mask::new();
        mask.hold("zz9zz9");
        assert_eq!(masked(&mut mask, "<zz9zz9>"), "<***>");
        // A derived value of six characters, registered without a holder.
        register("Rg7q!x");
        assert_eq!(scrub("auth=Rg7q!x;"), "auth=***;");
        let mut mask = Mask::new();
        mask.register("yy8yy8");
        mask.register("yy8yy");
        assert_eq!(masked(&mut mask, "yy8yy8 yy8yy"), "*** yy8yy");
    }

    #[test]
    fn any_piece_of_sixteen_characters_is_masked() {
        let token = "eyJhbGciOiJSUzI1NiJ9.c2VydmljZS1hY2NvdW50LXRva2VuLXBheWxvYWQ.c2lnbmF0dXJl";
        let mut mask = Mask::new();
        mask.hold(token);
        // The whole token, its start, its end, a middle piece of exactly 16, glued to other text.
        assert_eq!(masked(&mut mask, &format!("a {token} b")), "a *** b");
        assert_eq!(masked(&mut mask, &format!("x{}y", &token[..40])), "x***y");
        assert_eq!(masked(&mut mask, &format!("[{}]", &token[30..])), "[***]");
        assert_eq!(masked(&mut mask, &format!("<{}>", &token[20..36])), "<***>");
        // Fifteen characters are not a piece the mask looks for.
        let short = &token[20..35];
        assert_eq!(masked(&mut mask, short), short);
        // Two pieces, apart.
        assert_eq!(
            masked(&mut mask, &format!("{} and {}", &token[..20], &token[50..])),
            "*** and ***"
        );
    }

    /// `len` characters of base64-like noise, different for each seed.
    fn noise(seed: u64, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(ALPHABET[(x % 64) as usize])
            })
            .collect()
    }

    #[test]
    fn a_held_credential_stays_masked_however_many_values_come_and_go() {
        let mut mask = Mask::new();
        let key = noise(1, 40);
        mask.hold(&key);
        let mut first_password = String::new();
        let mut last_auth = String::new();
        for cycle in 0..400u64 {
            // Each cycle: a new ECR password held then dropped, and two derived values.
            let password = noise(1000 + cycle, 2000);
            last_auth = noise(5000 + cycle, 2600);
            mask.hold(&password);
            mask.register(&last_auth);
            mask.register(&noise(9000 + cycle, 3400));
            mask.release(&password);
            if cycle == 0 {
                first_password = password;
            }
            if cycle % 50 == 49 {
                let (values, bytes, windows) = mask.size();
                assert!(values <= MAX_RETIRED + 1, "{values} values");
                assert!(bytes <= MAX_RETIRED_BYTES + key.len(), "{bytes} bytes");
                assert!(windows <= bytes, "{windows} windows");
            }
        }
        assert_eq!(masked(&mut mask, &format!("k={key}")), "k=***");
        // The latest derived value is still there; a password superseded 400 cycles ago is gone.
        assert_eq!(masked(&mut mask, &last_auth), "***");
        assert_eq!(masked(&mut mask, &first_password), first_password);
    }

    #[test]
    fn the_retired_values_fill_their_bounds_exactly_oldest_out_first() {
        // The bounds the module promises: 256 values, 256 KiB.
        assert_eq!((MAX_RETIRED, MAX_RETIRED_BYTES), (256, 256 * 1024));
        // MAX_RETIRED values: every one still masked; one more pushes the oldest out.
        let mut mask = Mask::new();
        let values: Vec<String> = (0..=MAX_RETIRED as u64).map(|i| noise(i, 20)).collect();
        for v in &values[..MAX_RETIRED] {
            mask.register(v);
        }
        assert_eq!(masked(&mut mask, &values[0]), "***");
        assert_eq!(mask.size().0, MAX_RETIRED);
        mask.register(&values[MAX_RETIRED]);
        assert_eq!(
            masked(&mut mask, &values[0]),
            values[0],
            "the oldest is out"
        );
        assert_eq!(masked(&mut mask, &values[1]), "***");
        assert_eq!(mask.size().0, MAX_RETIRED);
        // MAX_RETIRED_BYTES exactly: all kept; one byte more pushes the oldest out.
        let mut mask = Mask::new();
        let quarters: Vec<String> = (0..4)
            .map(|i| noise(500 + i, MAX_RETIRED_BYTES / 4))
            .collect();
        for q in &quarters {
            mask.register(q);
        }
        assert_eq!(mask.size().1, MAX_RETIRED_BYTES);
        assert_eq!(masked(&mut mask, &quarters[0]), "***");
        mask.register(&noise(600, MIN_MASKED_LEN));
        assert_eq!(
            masked(&mut mask, &quarters[0]),
            quarters[0],
            "the oldest is out"
        );
        assert_eq!(mask.size().0, 4);
        assert_eq!(mask.size().1, 3 * MAX_RETIRED_BYTES / 4 + MIN_MASKED_LEN);
    }

    #[test]
    fn a_value_seen_again_is_counted_once() {
        let mut mask = Mask::new();
        let (a, b) = (noise(1, 30), noise(2, 40));
        // Registered twice; held, dropped (retired) and held again.
        mask.register(&a);
        mask.register(&a);
        mask.hold(&b);
        mask.release(&b);
        mask.hold(&b);
        assert_eq!(mask.size().0, 2);
        assert_eq!(mask.size().1, 70);
        assert_eq!(masked(&mut mask, &format!("{a} {b}")), "*** ***");
    }

    #[test]
    fn a_dropped_credential_is_retired_not_held_forever() {
        let value = noise(4242, 32);
        // The process-wide mask: other tests use it too, so only this value is looked at (its
        // being masked once retired is shown on a mask of its own above).
        let held = |v: &str| lock().held.iter().any(|h| h.value == v);
        let credential = Sensitive::new(value.clone());
        let copy = credential.clone();
        assert!(held(&value));
        drop(credential);
        assert!(held(&value), "a copy still holds it");
        drop(copy);
        assert!(!held(&value), "released with its last copy");
    }

    #[test]
    fn clones_keep_a_value_held_until_the_last_is_dropped() {
        let mut mask = Mask::new();
        mask.hold("session-token-value-1234");
        mask.hold("session-token-value-1234");
        mask.release("session-token-value-1234");
        assert_eq!(mask.held.len(), 1);
        mask.release("session-token-value-1234");
        assert!(mask.held.is_empty());
        assert_eq!(mask.retired.len(), 1, "retired, still masked");
        assert_eq!(masked(&mut mask, "session-token-value-1234"), "***");
    }

    #[test]
    fn the_output_limit_comes_after_the_mask() {
        let mut mask = Mask::new();
        mask.hold("0123456789abcdefghij-cut-here");
        let text = format!("{}0123456789abcdefghij-cut-here tail", "x".repeat(10));
        let out = mask.index().mask(&text, 12, |c, o| o.push(c));
        assert_eq!(out.text, "xxxxxxxxxx***");
        assert_eq!(out.cut, " tail".len());
    }
}
