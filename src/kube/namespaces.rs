//! Namespaces: the paged list of Active namespace names.

use serde_json::Value;

use super::client::KubeClient;
use super::error::KubeError;

/// Items asked for per page.
pub const PAGE_SIZE: usize = 500;
/// How often a list is started again after its continue token expired (410).
const MAX_RESTARTS: usize = 3;

/// The names of all Active namespaces, following `metadata.continue` until it is empty (a page
/// may hold fewer items than asked, even none, while more follow). A 410 Gone on a continue token
/// starts the list again.
pub fn list_active(client: &KubeClient) -> Result<Vec<String>, KubeError> {
    let mut restarts = 0;
    'list: loop {
        let mut names = Vec::new();
        let mut continue_token = String::new();
        loop {
            let mut path =
                format!("/api/v1/namespaces?limit={PAGE_SIZE}&fieldSelector=status.phase%3DActive");
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
                let name = item.pointer("/metadata/name").and_then(Value::as_str);
                let phase = item.pointer("/status/phase").and_then(Value::as_str);
                match (name, phase) {
                    // A server that ignores the field selector may still send other phases.
                    (Some(name), Some("Active") | None) => names.push(name.to_string()),
                    (Some(name), Some(phase)) => {
                        log::debug!("namespace {name} is {phase}; skipped")
                    }
                    (None, _) => log::debug!("a namespace without a name in the list; skipped"),
                }
            }
            continue_token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if continue_token.is_empty() {
                return Ok(names);
            }
        }
    }
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
}
