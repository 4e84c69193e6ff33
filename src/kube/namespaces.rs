//! Namespaces: the paged list of Active namespace names, and the watch that tells the daemon
//! about new ones while it waits.
//!
//! Both parse only the fields they use (typed, the rest skipped unread), keep only names that
//! are DNS-1123 labels (any other is skipped with a warning and never reaches a request), and
//! are bounded: pages per list, items per page, names per list, restarts after a 410, and a
//! continue token seen twice ends the list as a protocol error.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::client::{Cap, KubeClient};
use super::error::{KubeError, bounded_text};
use crate::names::is_dns1123_label;

/// Items asked for per page.
pub const PAGE_SIZE: usize = 500;
/// How often a list is started again after its continue token expired (410).
const MAX_RESTARTS: usize = 3;
/// Pages in one list: 200 pages of 500 are ten times the 10,000 namespaces Kubernetes' own
/// scalability limits name.
pub const MAX_PAGES: usize = 200;
/// Namespaces kept from one list (five times the 10,000 of Kubernetes' scalability limits).
pub const MAX_NAMESPACES: usize = 50_000;
/// The longest continue token or resourceVersion accepted (real ones are a few hundred bytes).
const MAX_TOKEN_LEN: usize = 4096;
/// Warnings about skipped names per list or watch stream; the rest are counted.
const MAX_NAME_WARNINGS: usize = 5;

const LIST: &str = "GET /api/v1/namespaces";

/// The Active namespaces and the list's resourceVersion (where a watch can start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceList {
    /// Names, in the server's order.
    pub names: Vec<String>,
    /// `metadata.resourceVersion` of the list (of its first page).
    pub resource_version: String,
}

/// The names of all Active namespaces (matching `label_selector`, applied by the server),
/// following `metadata.continue` until it is empty (a page may hold fewer items than asked, even
/// none, while more follow). A 410 Gone on a continue token starts the list again (at most
/// 3 times); any other error ends it. At most [`MAX_PAGES`] pages and
/// [`MAX_NAMESPACES`] names; a continue token seen twice is a protocol error.
pub fn list_active(
    client: &KubeClient,
    label_selector: Option<&str>,
) -> Result<NamespaceList, KubeError> {
    let mut restarts = 0;
    'list: loop {
        let mut list = NamespaceList::default();
        let mut skipped = SkippedNames::default();
        let mut continue_token = String::new();
        let mut seen_tokens = HashSet::new();
        for _page in 0..MAX_PAGES {
            let mut path =
                format!("/api/v1/namespaces?limit={PAGE_SIZE}&fieldSelector=status.phase%3DActive");
            if let Some(selector) = label_selector {
                path.push_str("&labelSelector=");
                path.push_str(&percent_encode(selector));
            }
            if !continue_token.is_empty() {
                path.push_str("&continue=");
                path.push_str(&percent_encode(&continue_token));
            }
            let page: Page = match client.get(&path, Cap::ListPage) {
                Ok(page) => page,
                Err(e) if e.is_gone() && !continue_token.is_empty() && restarts < MAX_RESTARTS => {
                    restarts += 1;
                    log::info!(
                        "namespace list: continue token expired (410); listing again from the start"
                    );
                    continue 'list;
                }
                Err(e) => return Err(e),
            };
            let items = page
                .items
                .ok_or_else(|| KubeError::protocol(LIST, "the list has no items array"))?;
            skipped.add(&items.skipped);
            if list.names.len() + items.names.len() > MAX_NAMESPACES {
                return Err(KubeError::protocol(
                    LIST,
                    &format!("more than {MAX_NAMESPACES} namespaces"),
                ));
            }
            list.names.extend(items.names);
            let meta = page.metadata.unwrap_or_default();
            if list.resource_version.is_empty() {
                list.resource_version = checked_token(meta.resource_version, "resourceVersion")?;
            }
            continue_token = checked_token(meta.continue_token, "continue token")?;
            if continue_token.is_empty() {
                skipped.log("namespace list");
                return Ok(list);
            }
            if !seen_tokens.insert(token_hash(&continue_token)) {
                return Err(KubeError::protocol(
                    LIST,
                    "the server sent the same continue token twice (a paging loop)",
                ));
            }
        }
        return Err(KubeError::protocol(
            LIST,
            &format!("the list did not end within {MAX_PAGES} pages"),
        ));
    }
}

/// A continue token or resourceVersion, refused when implausibly long.
fn checked_token(token: Option<String>, what: &str) -> Result<String, KubeError> {
    let token = token.unwrap_or_default();
    if token.len() > MAX_TOKEN_LEN {
        return Err(KubeError::protocol(
            LIST,
            &format!("a {what} of {} bytes", token.len()),
        ));
    }
    Ok(token)
}

fn token_hash(token: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut hasher);
    hasher.finish()
}

/// The fields of a list page the daemon reads.
#[derive(Deserialize)]
struct Page {
    metadata: Option<ListMeta>,
    items: Option<Items>,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

/// One namespace object, as far as the daemon reads it.
#[derive(Deserialize, Default)]
struct NamespaceObject {
    metadata: Option<ObjectMeta>,
    status: Option<Phase>,
}

#[derive(Deserialize, Default)]
struct ObjectMeta {
    name: Option<String>,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
}

impl NamespaceObject {
    fn name(&self) -> Option<&str> {
        self.metadata.as_ref()?.name.as_deref()
    }

    /// Active, or carrying no phase (as a server that ignores the field selector may send).
    fn is_active(&self) -> bool {
        matches!(
            self.status.as_ref().and_then(|s| s.0.as_deref()),
            Some("Active") | None
        )
    }
}

/// `status.phase` of a Namespace. The same field of a Status object (a watch ERROR event) is a
/// string: anything but an object reads as no phase.
struct Phase(Option<String>);

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Phase, D::Error> {
        struct PhaseVisitor;
        impl<'de> Visitor<'de> for PhaseVisitor {
            type Value = Phase;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a namespace status")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Phase, A::Error> {
                let mut phase = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "phase" {
                        phase = map.next_value::<Option<String>>()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Phase(phase))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Phase, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Phase(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Phase, E> {
                Ok(Phase(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Phase, E> {
                Ok(Phase(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Phase, E> {
                Ok(Phase(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Phase, E> {
                Ok(Phase(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Phase, E> {
                Ok(Phase(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Phase, E> {
                Ok(Phase(None))
            }
        }
        deserializer.deserialize_any(PhaseVisitor)
    }
}

/// The names skipped while reading: counted, the first few kept (masked and cut) to warn about.
#[derive(Default)]
struct SkippedNames {
    invalid: usize,
    examples: Vec<String>,
    not_active: usize,
}

impl SkippedNames {
    fn invalid_name(&mut self, name: &str) {
        self.invalid += 1;
        if self.examples.len() < MAX_NAME_WARNINGS {
            self.examples.push(bounded_text(name, 80));
        }
    }

    fn add(&mut self, other: &SkippedNames) {
        self.not_active += other.not_active;
        self.invalid += other.invalid;
        for example in &other.examples {
            if self.examples.len() < MAX_NAME_WARNINGS {
                self.examples.push(example.clone());
            }
        }
    }

    fn log(&self, source: &str) {
        for example in &self.examples {
            log::warn!(
                "{source}: skipped a namespace named {example:?}: not a DNS-1123 label, never sent in a request"
            );
        }
        if self.invalid > self.examples.len() {
            log::warn!(
                "{source}: skipped {} more namespace names that are not DNS-1123 labels",
                self.invalid - self.examples.len()
            );
        }
        if self.not_active > 0 {
            log::debug!(
                "{source}: {} namespaces not Active; skipped",
                self.not_active
            );
        }
    }
}

/// The items of a page, read one at a time: only valid Active names are kept.
struct Items {
    names: Vec<String>,
    skipped: SkippedNames,
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Items, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of namespaces")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut items = Items {
                    names: Vec::new(),
                    skipped: SkippedNames::default(),
                };
                let mut count = 0usize;
                while let Some(namespace) = seq.next_element::<NamespaceObject>()? {
                    count += 1;
                    if count > MAX_NAMESPACES {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_NAMESPACES} items in one page"
                        )));
                    }
                    match namespace.name() {
                        Some(name) if !is_dns1123_label(name) => items.skipped.invalid_name(name),
                        Some(name) if namespace.is_active() => items.names.push(name.to_string()),
                        Some(_) => items.skipped.not_active += 1,
                        None => items.skipped.invalid_name(""),
                    }
                }
                Ok(items)
            }
        }
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

/// What a namespace watch reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A namespace appeared or changed and is Active.
    Active(String),
    /// A namespace was deleted or is being deleted.
    Gone(String),
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// The server closed the stream (its timeout): resume from this resourceVersion.
    Resume(String),
    /// The resourceVersion is too old (410 Expired): list again.
    Expired,
}

/// One line of a watch stream, as far as the daemon reads it.
#[derive(Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    kind: Option<String>,
    object: Option<WatchObject>,
}

/// A Namespace (or, in an ERROR event, a Status).
#[derive(Deserialize)]
struct WatchObject {
    metadata: Option<ObjectMeta>,
    status: Option<Phase>,
    code: Option<u64>,
    message: Option<String>,
}

/// Watches namespaces from `resource_version` for at most `timeout`, calling `on_event` for each
/// change as it arrives. Bookmarks only move the resourceVersion on. A name that is not a
/// DNS-1123 label is skipped with a warning.
pub fn watch(
    client: &KubeClient,
    resource_version: &str,
    timeout: Duration,
    label_selector: Option<&str>,
    mut on_event: impl FnMut(WatchEvent),
) -> Result<WatchEnd, KubeError> {
    let seconds = timeout.as_secs().max(1);
    let mut path = format!(
        "/api/v1/namespaces?watch=true&allowWatchBookmarks=true&timeoutSeconds={seconds}&resourceVersion={}",
        percent_encode(resource_version)
    );
    if let Some(selector) = label_selector {
        path.push_str("&labelSelector=");
        path.push_str(&percent_encode(selector));
    }
    let mut last_rv = resource_version.to_string();
    let mut expired = false;
    let mut invalid_names = 0usize;
    let mut unreadable = 0usize;
    // The server ends the stream after `timeoutSeconds`; allow it some slack before giving up.
    let result = client.stream_lines(&path, Duration::from_secs(seconds + 15), |line| {
        let Ok(event) = serde_json::from_str::<WatchLine>(line) else {
            unreadable += 1;
            return true;
        };
        let kind = event.kind.as_deref().unwrap_or_default();
        let Some(object) = event.object else {
            return true;
        };
        if kind == "ERROR" {
            if object.code == Some(410) {
                expired = true;
            } else {
                log::warn!(
                    "namespace watch: ERROR event {}",
                    bounded_text(object.message.as_deref().unwrap_or_default(), 300)
                );
            }
            return false;
        }
        let namespace = NamespaceObject {
            metadata: object.metadata,
            status: object.status,
        };
        if let Some(rv) = namespace
            .metadata
            .as_ref()
            .and_then(|m| m.resource_version.as_deref())
            && rv.len() <= MAX_TOKEN_LEN
        {
            last_rv = rv.to_string();
        }
        let Some(name) = namespace.name() else {
            return true;
        };
        if !matches!(kind, "ADDED" | "MODIFIED" | "DELETED") {
            return true;
        }
        if !is_dns1123_label(name) {
            invalid_names += 1;
            if invalid_names <= MAX_NAME_WARNINGS {
                log::warn!(
                    "namespace watch: skipped a namespace named {:?}: not a DNS-1123 label, never sent in a request",
                    bounded_text(name, 80)
                );
            }
            return true;
        }
        match kind {
            "ADDED" | "MODIFIED" if namespace.is_active() => {
                on_event(WatchEvent::Active(name.to_string()))
            }
            _ => on_event(WatchEvent::Gone(name.to_string())),
        }
        true
    });
    if unreadable > 0 {
        log::debug!("namespace watch: {unreadable} lines that are not watch events; ignored");
    }
    if invalid_names > MAX_NAME_WARNINGS {
        log::warn!(
            "namespace watch: skipped {invalid_names} namespace names that are not DNS-1123 labels in all"
        );
    }
    result?;
    Ok(if expired {
        WatchEnd::Expired
    } else {
        WatchEnd::Resume(last_rv)
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for query values).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_of_tokens_and_selectors() {
        assert_eq!(percent_encode("a=b,c in (x)"), "a%3Db%2Cc%20in%20%28x%29");
        assert_eq!(percent_encode("eyJ2Ijo+/="), "eyJ2Ijo%2B%2F%3D");
    }

    #[test]
    fn only_active_or_phaseless_namespaces_with_label_names_are_kept() {
        let page = r#"{"kind":"NamespaceList","metadata":{"resourceVersion":"9","continue":"c"},
            "items":[{"metadata":{"name":"a","managedFields":[{"x":[1,2,3]}]},"status":{"phase":"Active"}},
                     {"metadata":{"name":"b"}},
                     {"metadata":{"name":"t"},"status":{"phase":"Terminating"}},
                     {"metadata":{"name":"kube-system/secrets/victim#"}},
                     {"metadata":{}}, {}]}"#;
        let page: Page = serde_json::from_str(page).expect("a page");
        let items = page.items.expect("items");
        assert_eq!(items.names, ["a", "b"]);
        assert_eq!(items.skipped.not_active, 1);
        assert_eq!(items.skipped.invalid, 3);
        assert_eq!(
            page.metadata.and_then(|m| m.continue_token).as_deref(),
            Some("c")
        );
    }

    #[test]
    fn a_watch_error_event_reads_its_status() {
        let line = r#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","code":410,"message":"too old"}}"#;
        let event: WatchLine = serde_json::from_str(line).expect("an event");
        let object = event.object.expect("object");
        assert_eq!(object.code, Some(410));
        assert!(object.metadata.is_none());
    }

    #[test]
    fn a_continue_token_is_taken_up_to_its_cap_and_refused_past_it() {
        let at_cap = "c".repeat(MAX_TOKEN_LEN);
        assert_eq!(
            checked_token(Some(at_cap.clone()), "continue token").expect("at the cap"),
            at_cap
        );
        let e = checked_token(Some(format!("{at_cap}c")), "continue token")
            .expect_err("over the cap")
            .to_string();
        assert!(e.contains("a continue token of 4097 bytes"), "{e}");
        assert_eq!(checked_token(None, "resourceVersion").expect("none"), "");
    }

    #[test]
    fn items_of_another_type_are_refused_saying_what_was_expected() {
        let e = serde_json::from_str::<Page>(r#"{"items": 5}"#)
            .err()
            .expect("items must be an array")
            .to_string();
        assert!(e.contains("expected an array of namespaces"), "{e}");
    }

    #[test]
    fn a_page_holds_at_most_its_cap_of_items() {
        let page = |n: usize| format!(r#"{{"items": [{}]}}"#, vec!["{}"; n].join(","));
        let full: Page = serde_json::from_str(&page(MAX_NAMESPACES)).expect("a full page");
        assert_eq!(full.items.expect("items").skipped.invalid, MAX_NAMESPACES);
        let e = serde_json::from_str::<Page>(&page(MAX_NAMESPACES + 1))
            .err()
            .expect("over the cap")
            .to_string();
        assert!(e.contains("more than 50000 items in one page"), "{e}");
    }
}
