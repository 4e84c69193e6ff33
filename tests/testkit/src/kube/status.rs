//! `metav1.Status` error bodies, built the way the kube-apiserver builds them (k8s.io/apimachinery
//! pkg/api/errors and pkg/util/validation/field): messages, reasons, details and causes. Empty
//! fields are left out, as Go's `omitempty` does.

use crate::http::Response;
use crate::util::go_quote;
use serde_json::{Map, Value, json};

/// A handler result: the error side is already the HTTP answer.
pub(crate) type ApiResult<T> = Result<T, Response>;

/// The kube-apiserver's optimistic-concurrency message (registry/generic/registry.OptimisticLockErrorMsg).
pub const OPTIMISTIC_LOCK_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// etcd3 store: continue token too old, no new token offered.
pub const CONTINUE_EXPIRED_MSG: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";

/// etcd3 store: continue token too old, an inconsistent continue token is offered in metadata.continue.
pub const INCONSISTENT_CONTINUE_MSG: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// One `details.causes` entry (a field.Error).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn required(field: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            message: with_detail("Required value", detail),
            field: field.into(),
        }
    }

    /// `Invalid value: "v": detail` (string values are Go-quoted).
    pub fn invalid(field: &str, value: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            message: with_detail(&format!("Invalid value: {}", go_quote(value)), detail),
            field: field.into(),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden",
            message: with_detail("Forbidden", detail),
            field: field.into(),
        }
    }

    pub fn too_long_bytes(field: &str, max: usize) -> Cause {
        Cause {
            reason: "FieldValueTooLong",
            message: format!("Too long: may not be more than {max} bytes"),
            field: field.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }

    /// `field: message`, as field.Error.Error() prints it.
    fn text(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

/// `details` with empty members left out.
pub(crate) fn details(name: &str, group: &str, kind: &str, causes: &[Cause]) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    if !causes.is_empty() {
        d.insert(
            "causes".into(),
            Value::Array(causes.iter().map(Cause::to_json).collect()),
        );
    }
    Value::Object(d)
}

pub(crate) fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    if reason.is_empty() {
        // StatusReasonUnknown is "" and omitted.
        if let Some(m) = v.as_object_mut() {
            m.remove("reason");
        }
    }
    v
}

pub(crate) fn error(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    Response::json(code, &status_body(code, reason, message, details))
}

pub(crate) fn not_found(plural: &str, name: &str) -> Response {
    error(
        404,
        "NotFound",
        &format!("{plural} {} not found", go_quote(name)),
        Some(details(name, "", plural, &[])),
    )
}

/// 404 for a path that names no resource.
pub(crate) fn path_not_found() -> Response {
    error(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

pub(crate) fn method_not_allowed() -> Response {
    error(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

pub(crate) fn already_exists(plural: &str, name: &str) -> Response {
    error(
        409,
        "AlreadyExists",
        &format!("{plural} {} already exists", go_quote(name)),
        Some(details(name, "", plural, &[])),
    )
}

/// 409 Conflict: `Operation cannot be fulfilled on secrets "N": <why>`.
pub(crate) fn conflict(plural: &str, name: &str, why: &str) -> Response {
    error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {plural} {}: {why}",
            go_quote(name)
        ),
        Some(details(name, "", plural, &[])),
    )
}

pub(crate) fn conflict_modified(plural: &str, name: &str) -> Response {
    conflict(plural, name, OPTIMISTIC_LOCK_MSG)
}

/// The etcd3 store's UID precondition failure, wrapped as the registry does (a StorageError text).
pub(crate) fn conflict_uid(
    plural: &str,
    ns: &str,
    name: &str,
    pre: &str,
    actual: &str,
) -> Response {
    let key = if ns.is_empty() {
        format!("/registry/{plural}/{name}")
    } else {
        format!("/registry/{plural}/{ns}/{name}")
    };
    conflict(
        plural,
        name,
        &format!(
            "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {pre}, UID in object meta: {actual}"
        ),
    )
}

pub(crate) fn bad_request(message: &str) -> Response {
    error(400, "BadRequest", message, None)
}

/// 422 Invalid: `Kind "name" is invalid: [f1: m1, f2: m2]`.
pub(crate) fn invalid(kind: &str, group: &str, name: &str, causes: &[Cause]) -> Response {
    let agg = if causes.len() == 1 {
        causes[0].text()
    } else {
        format!(
            "[{}]",
            causes
                .iter()
                .map(Cause::text)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    error(
        422,
        "Invalid",
        &format!("{qualified} {} is invalid: {agg}", go_quote(name)),
        Some(details(name, group, kind, causes)),
    )
}

/// 422 from a JSON patch that does not apply (NewGenericServerResponse).
pub(crate) fn patch_unprocessable(server_message: &str) -> Response {
    error(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        Some(
            json!({"causes": [{"reason": "UnexpectedServerResponse", "message": server_message}]}),
        ),
    )
}

/// NamespaceLifecycle admission: create refused in a terminating namespace.
pub(crate) fn namespace_terminating(plural: &str, name: &str, ns: &str) -> Response {
    let cause = Cause {
        reason: "NamespaceTerminating",
        message: format!("namespace {ns} is being terminated"),
        field: "metadata.namespace".into(),
    };
    error(
        403,
        "Forbidden",
        &format!(
            "{plural} {} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            go_quote(name)
        ),
        Some(details(name, "", plural, &[cause])),
    )
}

pub(crate) fn unsupported_media(accepts: &[&str]) -> Response {
    error(
        415,
        "UnsupportedMediaType",
        &format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepts.join(", ")
        ),
        None,
    )
}

pub(crate) fn unauthorized() -> Response {
    error(401, "Unauthorized", "Unauthorized", None)
}

/// 410 Gone, reason Expired; `continue_token` goes to metadata.continue when given.
pub(crate) fn expired(message: &str, continue_token: Option<String>) -> Response {
    let mut body = status_body(410, "Expired", message, None);
    if let Some(t) = continue_token {
        body["metadata"] = json!({"continue": t});
    }
    Response::json(410, &body)
}

/// The Success Status returned by DELETE of an object deleted at once.
pub(crate) fn delete_success(plural: &str, name: &str, uid: &str) -> Response {
    let mut d = details(name, "", plural, &[]);
    if !uid.is_empty() {
        d["uid"] = json!(uid);
    }
    Response::json(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_shapes() {
        let one = [Cause::required("data[.dockerconfigjson]", "")];
        let r = invalid("Secret", "", "s", &one);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["message"],
            "Secret \"s\" is invalid: data[.dockerconfigjson]: Required value"
        );
        assert_eq!(v["details"]["kind"], "Secret");
        let two = [Cause::required("a", ""), Cause::forbidden("b", "no")];
        let r = invalid("Secret", "", "s", &two);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["message"],
            "Secret \"s\" is invalid: [a: Required value, b: Forbidden: no]"
        );
    }
}
