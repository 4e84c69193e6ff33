//! Namespaces: the paged list of Active namespace names, and the watch that tells the daemon
//! about new ones while it waits.

use std::time::Duration;

use serde_json::Value;

use super::client::KubeClient;
use super::error::KubeError;

/// Items asked for per page.
pub const PAGE_SIZE: usize = 500;
/// How often a list is started again after its continue token expired (410).
const MAX_RESTARTS: usize = 3;

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
/// none, while more follow). A 410 Gone on a continue token starts the list again.
pub fn list_active(
    client: &KubeClient,
    label_selector: Option<&str>,
) -> Result<NamespaceList, KubeError> {
    let mut restarts = 0;
    'list: loop {
        let mut list = NamespaceList::default();
        let mut continue_token = String::new();
        loop {
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
            let page = match client.get(&path) {
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
            let items =
                page.get("items")
                    .and_then(Value::as_array)
                    .ok_or_else(|| KubeError::Decode {
                        request: "GET /api/v1/namespaces".into(),
                        message: "the list has no items array".into(),
                    })?;
            for item in items {
                match (
                    active_name(item),
                    item.pointer("/metadata/name").and_then(Value::as_str),
                ) {
                    (Some(name), _) => list.names.push(name.to_string()),
                    (None, Some(name)) => log::debug!("namespace {name} is not Active; skipped"),
                    (None, None) => log::debug!("a namespace without a name in the list; skipped"),
                }
            }
            if list.resource_version.is_empty() {
                list.resource_version = page
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
            }
            continue_token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if continue_token.is_empty() {
                return Ok(list);
            }
        }
    }
}

/// The name of a namespace object when it is Active (or carries no phase, as a server that
/// ignores the field selector may send).
fn active_name(namespace: &Value) -> Option<&str> {
    let name = namespace
        .pointer("/metadata/name")
        .and_then(Value::as_str)?;
    match namespace.pointer("/status/phase").and_then(Value::as_str) {
        Some("Active") | None => Some(name),
        Some(_) => None,
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

/// Watches namespaces from `resource_version` for at most `timeout`, calling `on_event` for each
/// change as it arrives. Bookmarks only move the resourceVersion on.
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
    // The server ends the stream after `timeoutSeconds`; allow it some slack before giving up.
    client.stream_lines(&path, Duration::from_secs(seconds + 15), |line| {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            log::debug!("namespace watch: a line that is not JSON; ignored");
            return true;
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let object = event.get("object").unwrap_or(&Value::Null);
        if kind == "ERROR" {
            let code = object.get("code").and_then(Value::as_u64);
            if code == Some(410) {
                expired = true;
            } else {
                log::warn!(
                    "namespace watch: ERROR event {}",
                    object
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                );
            }
            return false;
        }
        if let Some(rv) = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            last_rv = rv.to_string();
        }
        let name = object.pointer("/metadata/name").and_then(Value::as_str);
        match (kind, name) {
            ("ADDED" | "MODIFIED", Some(name)) => match active_name(object) {
                Some(_) => on_event(WatchEvent::Active(name.to_string())),
                None => on_event(WatchEvent::Gone(name.to_string())),
            },
            ("DELETED", Some(name)) => on_event(WatchEvent::Gone(name.to_string())),
            _ => {}
        }
        true
    })?;
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
    fn only_active_or_phaseless_namespaces_count() {
        let ns = |phase: Option<&str>| {
            let mut v = serde_json::json!({"metadata": {"name": "n"}});
            if let Some(p) = phase {
                v["status"] = serde_json::json!({"phase": p});
            }
            v
        };
        assert_eq!(active_name(&ns(Some("Active"))), Some("n"));
        assert_eq!(active_name(&ns(None)), Some("n"));
        assert_eq!(active_name(&ns(Some("Terminating"))), None);
    }
}
