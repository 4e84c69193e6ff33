//! Events (events.k8s.io/v1) in the fake, as the kube-apiserver takes them
//! (pkg/apis/events/validation, see kubernetes-api.md): `POST .../namespaces/NS/events` checks
//! the required fields (`metadata.name` or `generateName`, `eventTime` as a MicroTime,
//! `reportingController`, `reportingInstance` <= 128, `action` <= 128, `reason` <= 128, `type`
//! Normal or Warning, `regarding` with kind and name, in the event's namespace when it names
//! one) and `note` <= 1 KiB: 422 Invalid otherwise, 404 when the namespace is missing, 201 with
//! the stored object. `GET` lists them. Stored apart from the other objects (no watch).

use super::status::{self, ApiResult, Cause};
use super::store::Res;
use super::{FakeKube, Inner};
use crate::http::{Request, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The events stored, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Events {
    items: Vec<Value>,
}

impl FakeKube {
    /// Every stored event (events.k8s.io/v1 objects), in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.inner.lock().events.items.clone()
    }
}

/// `/apis/events.k8s.io/v1/namespaces/NS/events`.
pub(crate) fn handle(inner: &Arc<Inner>, req: &Request, ns: &str) -> ApiResult<Response> {
    match req.method.as_str() {
        "GET" => {
            let st = inner.lock();
            let rv = st.events.items.len();
            let items: Vec<Value> = st
                .events
                .items
                .iter()
                .filter(|e| e["metadata"]["namespace"] == ns)
                .cloned()
                .collect();
            Ok(Response::json(
                200,
                &json!({"kind": "EventList", "apiVersion": "events.k8s.io/v1",
                    "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            ))
        }
        "POST" => create(inner, req, ns),
        _ => Err(status::method_not_allowed()),
    }
}

fn create(inner: &Arc<Inner>, req: &Request, ns: &str) -> ApiResult<Response> {
    let mut event: Value = serde_json::from_slice(&req.body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| status::bad_request("the body is not a JSON object"))?;
    let name = event["metadata"]["name"].as_str().unwrap_or("").to_string();
    let causes = validate(&event, ns);
    if !causes.is_empty() {
        return Err(status::invalid("Event", "events.k8s.io", &name, &causes));
    }
    let mut st = inner.lock();
    if st.store.get(Res::Namespaces, "", ns).is_none() {
        return Err(status::not_found("namespaces", ns));
    }
    let uid = st.store.uid();
    let name = if name.is_empty() {
        let prefix = event["metadata"]["generateName"].as_str().unwrap_or("");
        format!("{prefix}{}", &uid[..5])
    } else {
        name
    };
    let rv = st.store.next_rv();
    let meta = &mut event["metadata"];
    meta["name"] = json!(name);
    meta["namespace"] = json!(ns);
    meta["uid"] = json!(uid);
    meta["resourceVersion"] = json!(rv.to_string());
    event["apiVersion"] = json!("events.k8s.io/v1");
    event["kind"] = json!("Event");
    st.events.items.push(event.clone());
    Ok(Response::json(201, &event))
}

/// The field errors of an event created in `ns`.
fn validate(e: &Value, ns: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or("");
    if s("/metadata/name").is_empty() && s("/metadata/generateName").is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    let body_ns = s("/metadata/namespace");
    if !body_ns.is_empty() && body_ns != ns {
        causes.push(Cause::invalid(
            "metadata.namespace",
            body_ns,
            "does not match the namespace of the request",
        ));
    }
    if s("/eventTime").is_empty() {
        causes.push(Cause::required("eventTime", ""));
    } else if !is_micro_time(s("/eventTime")) {
        causes.push(Cause::invalid(
            "eventTime",
            s("/eventTime"),
            "not a MicroTime",
        ));
    }
    for (field, max) in [
        ("reportingController", 253),
        ("reportingInstance", 128),
        ("action", 128),
        ("reason", 128),
    ] {
        let v = s(&format!("/{field}"));
        if v.is_empty() {
            causes.push(Cause::required(field, ""));
        } else if v.len() > max {
            causes.push(Cause::too_long_bytes(field, max));
        }
    }
    let controller = s("/reportingController");
    if !controller.is_empty()
        && !controller
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
    {
        causes.push(Cause::invalid(
            "reportingController",
            controller,
            "must be a qualified name",
        ));
    }
    match s("/type") {
        "Normal" | "Warning" => {}
        "" => causes.push(Cause::required("type", "")),
        other => causes.push(Cause::invalid("type", other, "must be Normal or Warning")),
    }
    if !e.get("regarding").is_some_and(Value::is_object) {
        causes.push(Cause::required("regarding", ""));
    } else {
        if s("/regarding/kind").is_empty() {
            causes.push(Cause::required("regarding.kind", ""));
        }
        if s("/regarding/name").is_empty() {
            causes.push(Cause::required("regarding.name", ""));
        }
        let regarding_ns = s("/regarding/namespace");
        if !regarding_ns.is_empty() && regarding_ns != ns {
            causes.push(Cause::invalid(
                "regarding.namespace",
                regarding_ns,
                "does not match event.namespace",
            ));
        }
    }
    if s("/note").len() > 1024 {
        causes.push(Cause::too_long_bytes("note", 1024));
    }
    causes
}

/// `2026-12-02T01:00:00.000000Z`: RFC 3339 with exactly six fraction digits, UTC.
fn is_micro_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 26].contains(&i) || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Value {
        json!({
            "metadata": {"generateName": "ecr-pull."},
            "eventTime": "2026-12-02T01:00:00.000000Z",
            "reportingController": "k8s-ecrupdater",
            "reportingInstance": "k8s-ecrupdater",
            "action": "Refresh",
            "reason": "RefreshFailed",
            "type": "Warning",
            "regarding": {"apiVersion": "v1", "kind": "Secret", "namespace": "app", "name": "ecr-pull"},
            "note": "x",
        })
    }

    #[test]
    fn validation_matches_the_api_server() {
        assert!(validate(&good(), "app").is_empty());
        for (field, value) in [
            ("/eventTime", json!("2026-12-02T01:00:00Z")),
            ("/type", json!("Error")),
            ("/note", json!("n".repeat(1025))),
            ("/regarding/namespace", json!("other")),
            ("/action", json!("")),
        ] {
            let mut e = good();
            *e.pointer_mut(field).expect("field") = value;
            assert_eq!(validate(&e, "app").len(), 1, "{field}");
        }
        let mut e = good();
        e.as_object_mut().expect("object").remove("reason");
        assert_eq!(validate(&e, "app")[0].field, "reason");
    }
}
