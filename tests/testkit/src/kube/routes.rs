//! The REST surface of FakeKube: request recording, injected faults, bearer-token auth, routing
//! of /api/v1 paths, and the list / get / create / update / patch / delete verbs with the
//! kube-apiserver's status codes and ordering of checks (decode 400, validation 422,
//! NamespaceLifecycle 404/403, storage 409).

use super::fieldmanager::{self, Owners};
use super::patch::{JsonPatchError, json_patch, merge_patch, strategic_merge_patch};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{self, ApiResult, Cause};
use super::store::{
    ContinueError, PageRequest, Res, Selectors, meta_field, meta_mut, meta_name, strip_kind,
    with_kind,
};
use super::validation::{
    normalize_namespace, normalize_secret, normalize_service_account, validate_meta,
    validate_meta_update, validate_secret, validate_secret_update,
};
use super::{FaultKind, Inner, State, mark_terminating, take_fault};
use crate::http::{Handler, RecordedRequest, Reply, Request, Response, percent_decode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) struct KubeHandler(pub Arc<Inner>);

pub(crate) fn is_true(v: Option<String>) -> bool {
    matches!(v.as_deref(), Some("true" | "1"))
}

impl Handler for KubeHandler {
    fn handle(&self, req: Request) -> Reply {
        let inner = &self.0;
        let fault = {
            let mut st = inner.lock();
            if st.admin && req.path.starts_with("/_admin/") {
                drop(st);
                return Reply::Full(super::admin::handle(inner, &req));
            }
            st.requests.push(RecordedRequest::from_request(&req));
            let verb = if req.method == "GET" && is_true(req.param("watch")) {
                "WATCH".to_string()
            } else {
                req.method.to_ascii_uppercase()
            };
            *st.stats.entry(verb).or_insert(0) += 1;
            take_fault(&mut st.faults, &req)
        };
        match fault {
            None => {}
            Some(FaultKind::Reset) => return Reply::Reset,
            Some(FaultKind::Delay(d)) => std::thread::sleep(d),
            Some(FaultKind::Mutate(m)) => super::admin::mutate(inner, &m),
            Some(other) => return Reply::Full(fault_response(&other, &req)),
        }
        if let Some(expected) = inner.lock().bearer.clone() {
            let ok = req
                .header("Authorization")
                .and_then(|a| a.trim().split_once(' '))
                .is_some_and(|(scheme, tok)| {
                    scheme.eq_ignore_ascii_case("bearer") && tok.trim() == expected
                });
            if !ok {
                return Reply::Full(status::unauthorized());
            }
        }
        if let Some(refused) = authorize(inner, &req) {
            return Reply::Full(refused);
        }
        match route(inner, &req) {
            Ok(r) => r,
            Err(resp) => Reply::Full(resp),
        }
    }
}

/// RBAC, when enforced: the 403 for a resource request no rule allows.
fn authorize(inner: &Arc<Inner>, req: &Request) -> Option<Response> {
    let mut st = inner.lock();
    let (rbac, user) = st.rbac.as_ref()?;
    let attrs = super::rbac::Attributes::of(req)?;
    if rbac.allows(user, &attrs) {
        return None;
    }
    let refused = super::rbac::forbidden(user, &attrs);
    st.forbidden.push(format!("{} {}", req.method, req.path));
    Some(refused)
}

fn fault_response(kind: &FaultKind, req: &Request) -> Response {
    let segs: Vec<String> = segments(&req.path);
    let name = segs.last().cloned().unwrap_or_default();
    let plural = if segs.len() >= 2 {
        segs[segs.len() - 2].clone()
    } else {
        String::new()
    };
    match kind {
        FaultKind::Status(code, reason) => {
            let message = if *code == 500 {
                "Internal error occurred: injected fault".to_string()
            } else {
                format!("injected fault: {reason}")
            };
            if *code == 429 {
                let mut d = json!({"retryAfterSeconds": 1});
                if !name.is_empty() {
                    d["name"] = json!(name);
                }
                status::error(*code, reason, &message, Some(d)).with_header("Retry-After", "1")
            } else {
                status::error(*code, reason, &message, None)
            }
        }
        FaultKind::PlainTooManyRequests(secs) => Response::new(
            429,
            "text/plain; charset=utf-8",
            "Too many requests, please try again later.\n",
        )
        .with_header("Retry-After", &secs.to_string())
        .with_header(
            "X-Kubernetes-Pf-Flowschema-Uid",
            "6e3c8d0a-5a3e-4a57-9d5b-2f7c0b1d0e01",
        )
        .with_header(
            "X-Kubernetes-Pf-Prioritylevel-Uid",
            "0b0e6f7c-1d2a-4c3b-8e4f-5a6b7c8d9e02",
        ),
        FaultKind::Conflict => status::conflict_modified(&plural, &name),
        FaultKind::Gone => status::expired(status::CONTINUE_EXPIRED_MSG, None),
        FaultKind::Reset | FaultKind::Delay(_) | FaultKind::Mutate(_) => {
            status::error(500, "InternalError", "fault", None)
        }
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect()
}

fn route(inner: &Arc<Inner>, req: &Request) -> ApiResult<Reply> {
    let segs = segments(&req.path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let full = |r: ApiResult<Response>| r.map(Reply::Full);
    match s.as_slice() {
        ["api"] => only_get(m, || Ok(api_versions(req))).map(Reply::Full),
        ["api", "v1"] => only_get(m, || Ok(api_resources())).map(Reply::Full),
        ["apis"] => only_get(m, || {
            Ok(Response::json(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ))
        })
        .map(Reply::Full),
        ["version"] => only_get(m, || Ok(version())).map(Reply::Full),
        ["healthz"] | ["readyz"] | ["livez"] => only_get(m, || {
            Ok(Response::new(200, "text/plain; charset=utf-8", "ok"))
        })
        .map(Reply::Full),
        ["api", "v1", plural] => {
            let res = Res::from_plural(plural).ok_or_else(status::path_not_found)?;
            match (m, res) {
                ("GET", _) => collection_get(inner, req, res, None),
                ("POST", Res::Namespaces) => full(create(inner, req, res, "")),
                _ => Err(status::method_not_allowed()),
            }
        }
        ["api", "v1", "namespaces", ns] => item(inner, req, Res::Namespaces, "", ns),
        ["api", "v1", "namespaces", ns, plural] => {
            let res = Res::from_plural(plural)
                .filter(|r| r.namespaced())
                .ok_or_else(status::path_not_found)?;
            match m {
                "GET" => collection_get(inner, req, res, Some(ns)),
                "POST" => full(create(inner, req, res, ns)),
                _ => Err(status::method_not_allowed()),
            }
        }
        ["api", "v1", "namespaces", ns, plural, name] => {
            let res = Res::from_plural(plural)
                .filter(|r| r.namespaced())
                .ok_or_else(status::path_not_found)?;
            item(inner, req, res, ns, name)
        }
        ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"] => {
            full(super::events::handle(inner, req, ns))
        }
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => full(super::access_review::handle(inner, req)),
        _ => Err(status::path_not_found()),
    }
}

fn only_get(m: &str, f: impl FnOnce() -> ApiResult<Response>) -> ApiResult<Response> {
    if m == "GET" {
        f()
    } else {
        Err(status::method_not_allowed())
    }
}

fn item(inner: &Arc<Inner>, req: &Request, res: Res, ns: &str, name: &str) -> ApiResult<Reply> {
    let r = match req.method.as_str() {
        "GET" => get(inner, res, ns, name),
        "PUT" => update(inner, req, res, ns, name),
        "PATCH" => patch(inner, req, res, ns, name),
        "DELETE" => delete(inner, req, res, ns, name),
        _ => Err(status::method_not_allowed()),
    };
    r.map(Reply::Full)
}

fn collection_get(
    inner: &Arc<Inner>,
    req: &Request,
    res: Res,
    ns: Option<&str>,
) -> ApiResult<Reply> {
    if is_true(req.param("watch")) {
        return super::watch::start(inner, req, res, ns.map(str::to_string));
    }
    list(inner, req, res, ns).map(Reply::Full)
}

/// labelSelector + fieldSelector, 400 on errors.
pub(crate) fn parse_selectors(req: &Request, res: Res) -> ApiResult<Selectors> {
    let labels = LabelSelector::parse(&req.param("labelSelector").unwrap_or_default())
        .map_err(|e| status::bad_request(&e))?;
    let fields = FieldSelector::parse(
        &req.param("fieldSelector").unwrap_or_default(),
        res.field_labels(),
    )
    .map_err(|e| status::bad_request(&e))?;
    Ok(Selectors { labels, fields })
}

fn list(inner: &Arc<Inner>, req: &Request, res: Res, ns: Option<&str>) -> ApiResult<Response> {
    let sel = parse_selectors(req, res)?;
    let limit = match req.param("limit").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => {
                return Err(status::bad_request(&format!(
                    "limit: Invalid value: {s:?}: must be an integer"
                )));
            }
        },
    };
    let mut st = inner.lock();
    let cont = match req.param("continue").filter(|s| !s.is_empty()) {
        None => None,
        Some(tok) => match st.store.decode_continue(&tok) {
            Ok(c) => Some(c),
            Err(ContinueError::Invalid(msg)) => return Err(status::bad_request(&msg)),
            Err(ContinueError::Expired(fresh)) => {
                return Err(status::expired(
                    status::INCONSISTENT_CONTINUE_MSG,
                    Some(fresh),
                ));
            }
        },
    };
    let page = PageRequest {
        limit,
        cont,
        max_page: st.max_page,
        ignore_limit: st.ignore_limit,
        empty_pages: st.empty_pages,
    };
    let body = st.store.list(res, ns, &sel, page);
    Ok(Response::json(200, &body))
}

fn get(inner: &Arc<Inner>, res: Res, ns: &str, name: &str) -> ApiResult<Response> {
    let st = inner.lock();
    match st.store.get(res, ns, name) {
        Some(o) => Ok(Response::json(200, &with_kind(res, o))),
        None => Err(status::not_found(res.plural(), name)),
    }
}

fn media_type(req: &Request) -> Option<String> {
    req.header("Content-Type").map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// POST/PUT bodies: JSON (or YAML that is JSON); anything else 415.
fn check_write_content_type(req: &Request) -> ApiResult<()> {
    match media_type(req).as_deref() {
        None | Some("") | Some("application/json") | Some("application/yaml") => Ok(()),
        Some(_) => Err(status::unsupported_media(&[
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ])),
    }
}

/// Decodes a request body into an object of the resource's kind (400 on failure).
fn parse_object(body: &[u8], res: Res) -> ApiResult<Value> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let msg = if e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            e.to_string()
        };
        status::bad_request(&format!(
            "couldn't get version/kind; json parse error: {msg}"
        ))
    })?;
    if !v.is_object() {
        return Err(status::bad_request(&format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            super::validation::json_type(&v)
        )));
    }
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if (!kind.is_empty() && kind != res.kind()) || (!api.is_empty() && api != "v1") {
        return Err(status::bad_request(&format!(
            "the object provided is unrecognized (must be of type {}): {} in version {:?} cannot be handled as a {}",
            res.kind(),
            if kind.is_empty() { res.kind() } else { kind },
            api,
            res.kind()
        )));
    }
    Ok(v)
}

/// Decode-time normalization (400) and the decoded Secret data.
fn normalize(res: Res, obj: &mut Value) -> ApiResult<BTreeMap<String, Vec<u8>>> {
    let r = match res {
        Res::Secrets => normalize_secret(obj),
        Res::ServiceAccounts => normalize_service_account(obj).map(|_| BTreeMap::new()),
        Res::Namespaces => normalize_namespace(obj).map(|_| BTreeMap::new()),
    };
    r.map_err(|e| status::bad_request(&e))
}

fn validate(
    res: Res,
    obj: &Value,
    data: &BTreeMap<String, Vec<u8>>,
    old: Option<&Value>,
) -> ApiResult<()> {
    // ValidateObjectMetaUpdate comes first (metadata.uid immutable), then the kind's own rules.
    let mut causes: Vec<Cause> = old.map_or_else(Vec::new, |o| validate_meta_update(obj, o));
    causes.extend(match res {
        Res::Secrets => {
            let mut c = old.map_or_else(Vec::new, |o| validate_secret_update(obj, o));
            c.extend(validate_secret(obj, data));
            c
        }
        Res::ServiceAccounts => validate_meta(obj, false),
        Res::Namespaces => validate_meta(obj, true),
    });
    if causes.is_empty() {
        Ok(())
    } else {
        Err(status::invalid(res.kind(), "", &meta_name(obj), &causes))
    }
}

const NS_MISMATCH: &str =
    "the namespace of the provided object does not match the namespace sent on the request";

fn check_namespace_field(res: Res, obj: &Value, ns: &str) -> ApiResult<()> {
    let body_ns = meta_field(obj, "namespace");
    if res.namespaced() && !body_ns.is_empty() && body_ns != ns {
        return Err(status::bad_request(NS_MISMATCH));
    }
    Ok(())
}

/// NamespaceLifecycle admission for creates: 404 when missing, 403 when terminating.
fn admit_create(st: &State, res: Res, ns: &str, name: &str) -> ApiResult<()> {
    if !res.namespaced() {
        return Ok(());
    }
    match st.store.get(Res::Namespaces, "", ns) {
        None => Err(status::not_found("namespaces", ns)),
        Some(n) if n.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") => {
            Err(status::namespace_terminating(res.plural(), name, ns))
        }
        Some(_) => Ok(()),
    }
}

fn create(inner: &Arc<Inner>, req: &Request, res: Res, ns: &str) -> ApiResult<Response> {
    check_write_content_type(req)?;
    let mut obj = parse_object(&req.body, res)?;
    check_namespace_field(res, &obj, ns)?;
    strip_kind(&mut obj);
    let data = normalize(res, &mut obj)?;
    let mut st = inner.lock();
    if meta_name(&obj).is_empty() {
        let gen_name = meta_field(&obj, "generateName");
        if !gen_name.is_empty() {
            let base: String = gen_name.chars().take(58).collect();
            let suffix = st.store.rng.string(b"bcdfghjklmnpqrstvwxz2456789", 5);
            meta_mut(&mut obj).insert("name".into(), json!(format!("{base}{suffix}")));
        }
    }
    if res == Res::Namespaces {
        // Creating a namespace re-applies the name label (the name may have been generated).
        normalize(res, &mut obj)?;
        obj["status"] = json!({"phase": "Active"});
        meta_mut(&mut obj).remove("deletionTimestamp");
    }
    validate(res, &obj, &data, None)?;
    let name = meta_name(&obj);
    admit_create(&st, res, ns, &name)?;
    if !meta_field(&obj, "resourceVersion").is_empty() {
        // etcd3 store.Create refuses it with a plain error, which becomes a reason-less 500.
        return Err(status::error(
            500,
            "",
            "resourceVersion should not be set on objects to be created",
            None,
        ));
    }
    if st.store.get(res, ns, &name).is_some() {
        return Err(status::already_exists(res.plural(), &name));
    }
    meta_mut(&mut obj).remove("deletionTimestamp");
    let created = st.store.create(res, ns, obj, false);
    let manager = fieldmanager::update_manager(req.param("fieldManager"), req.header("User-Agent"));
    st.store.record_update(res, ns, None, &created, &manager);
    drop(st);
    inner.notify();
    Ok(Response::json(201, &with_kind(res, &created)))
}

/// Server-owned parts of a namespace that the main resource cannot change.
fn keep_namespace_status(obj: &mut Value, old: &Value) {
    if let Some(s) = old.get("status") {
        obj["status"] = s.clone();
    }
}

fn update(
    inner: &Arc<Inner>,
    req: &Request,
    res: Res,
    ns: &str,
    name: &str,
) -> ApiResult<Response> {
    check_write_content_type(req)?;
    let mut obj = parse_object(&req.body, res)?;
    let body_name = meta_name(&obj);
    if body_name != name {
        return Err(status::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace_field(res, &obj, ns)?;
    strip_kind(&mut obj);
    let data = normalize(res, &mut obj)?;
    let mut st = inner.lock();
    let Some(old) = st.store.get(res, ns, name).cloned() else {
        return Err(status::not_found(res.plural(), name));
    };
    check_preconditions(res, ns, name, &obj, &old)?;
    if res == Res::Namespaces {
        keep_namespace_status(&mut obj, &old);
    }
    validate(res, &obj, &data, Some(&old))?;
    let out = st.store.update(res, ns, obj);
    let manager = fieldmanager::update_manager(req.param("fieldManager"), req.header("User-Agent"));
    st.store.record_update(res, ns, Some(&old), &out, &manager);
    drop(st);
    inner.notify();
    Ok(Response::json(200, &with_kind(res, &out)))
}

/// PUT: metadata.uid / metadata.resourceVersion carried by the new object act as preconditions
/// (rest.DefaultUpdatedObjectInfo(obj).Preconditions() takes the body's uid; a mismatch is 409).
fn check_preconditions(res: Res, ns: &str, name: &str, new: &Value, old: &Value) -> ApiResult<()> {
    let uid = meta_field(new, "uid");
    let old_uid = meta_field(old, "uid");
    if !uid.is_empty() && uid != old_uid {
        return Err(status::conflict_uid(res.plural(), ns, name, &uid, &old_uid));
    }
    check_resource_version(res, name, new, old)
}

/// Optimistic concurrency: a resourceVersion in the new object must be the stored one (409).
fn check_resource_version(res: Res, name: &str, new: &Value, old: &Value) -> ApiResult<()> {
    let rv = meta_field(new, "resourceVersion");
    if !rv.is_empty() && rv != meta_field(old, "resourceVersion") {
        return Err(status::conflict_modified(res.plural(), name));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

fn patch(inner: &Arc<Inner>, req: &Request, res: Res, ns: &str, name: &str) -> ApiResult<Response> {
    let pt = match media_type(req).as_deref() {
        Some("application/json-patch+json") => PatchType::Json,
        Some("application/merge-patch+json") => PatchType::Merge,
        Some("application/strategic-merge-patch+json") => PatchType::Strategic,
        Some("application/apply-patch+yaml") => PatchType::Apply,
        _ => {
            return Err(status::unsupported_media(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                "application/strategic-merge-patch+json",
            ]));
        }
    };
    let field_manager = req.param("fieldManager").unwrap_or_default();
    let force = is_true(req.param("force"));
    if pt == PatchType::Apply && field_manager.is_empty() {
        return Err(status::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[Cause::required(
                "fieldManager",
                "is required for apply patch",
            )],
        ));
    }
    if pt != PatchType::Apply && req.param("force").is_some() {
        return Err(status::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[Cause::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    let body: Value = serde_json::from_slice(&req.body).map_err(|e| {
        if pt == PatchType::Apply {
            status::bad_request(&format!(
                "error decoding YAML: error converting YAML to JSON: {e} (only JSON-formatted apply bodies are supported by this fake)"
            ))
        } else {
            status::bad_request(&format!("error decoding patch: {e}"))
        }
    })?;
    if pt != PatchType::Json && !body.is_object() {
        return Err(status::bad_request(&format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            super::validation::json_type(&body)
        )));
    }
    let mut st = inner.lock();
    let Some(old) = st.store.get(res, ns, name).cloned() else {
        if pt != PatchType::Apply {
            return Err(status::not_found(res.plural(), name));
        }
        // Server-side apply creates.
        let mut obj = body;
        strip_kind(&mut obj);
        let body_name = meta_name(&obj);
        if body_name != name {
            return Err(status::bad_request(&format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        check_namespace_field(res, &obj, ns)?;
        let mut owners = Owners::new();
        let mut obj = fieldmanager::apply(
            &mut owners,
            &fieldmanager::empty(),
            &obj,
            &field_manager,
            force,
        )
        .map_err(|c| apply_conflict(&c))?;
        let data = normalize(res, &mut obj)?;
        validate(res, &obj, &data, None)?;
        admit_create(&st, res, ns, name)?;
        let created = st.store.create(res, ns, obj, false);
        st.store.set_owners(res, ns, name, owners);
        drop(st);
        inner.notify();
        return Ok(Response::json(201, &with_kind(res, &created)));
    };
    let mut doc = with_kind(res, &old);
    let mut owners = st.store.owners(res, ns, name);
    match pt {
        PatchType::Merge => merge_patch(&mut doc, &body),
        PatchType::Apply => {
            doc = fieldmanager::apply(&mut owners, &doc, &body, &field_manager, force)
                .map_err(|c| apply_conflict(&c))?;
        }
        PatchType::Strategic => {
            let keys: &[(&str, &str)] = match res {
                Res::ServiceAccounts => &[("/secrets", "name")],
                _ => &[],
            };
            strategic_merge_patch(&mut doc, &body, keys);
        }
        PatchType::Json => match json_patch(&mut doc, &body) {
            Ok(()) => {}
            Err(JsonPatchError::Decode(m)) => return Err(status::bad_request(&m)),
            Err(JsonPatchError::Apply(m)) => return Err(status::patch_unprocessable(&m)),
        },
    }
    if !doc.is_object() {
        return Err(status::bad_request("patch produced a non-object"));
    }
    strip_kind(&mut doc);
    let patched_name = meta_name(&doc);
    if patched_name != name {
        return Err(status::bad_request(&format!(
            "the name of the object ({patched_name}) does not match the name on the URL ({name})"
        )));
    }
    if res.namespaced() && meta_field(&doc, "namespace") != ns {
        return Err(status::bad_request(NS_MISMATCH));
    }
    // PATCH carries no preconditions (patch.go: rest.DefaultUpdatedObjectInfo(nil, ...)): the
    // resourceVersion check of the storage update comes first, and a uid that differs from the
    // stored one is ValidateObjectMetaUpdate's 422 "field is immutable" in `validate` below.
    check_resource_version(res, name, &doc, &old)?;
    let data = normalize(res, &mut doc)?;
    if res == Res::Namespaces {
        keep_namespace_status(&mut doc, &old);
    }
    validate(res, &doc, &data, Some(&old))?;
    let out = st.store.update(res, ns, doc);
    if pt == PatchType::Apply {
        st.store.set_owners(res, ns, name, owners);
    } else {
        let manager =
            fieldmanager::update_manager(req.param("fieldManager"), req.header("User-Agent"));
        st.store.record_update(res, ns, Some(&old), &out, &manager);
    }
    drop(st);
    inner.notify();
    Ok(Response::json(200, &with_kind(res, &out)))
}

/// 409 for a server-side apply that would take fields owned by other managers.
fn apply_conflict(conflicts: &[fieldmanager::Conflict]) -> Response {
    let (msg, causes) = fieldmanager::conflict_message(conflicts);
    let causes: Vec<Value> = causes
        .into_iter()
        .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": m, "field": f}))
        .collect();
    status::error(409, "Conflict", &msg, Some(json!({"causes": causes})))
}

fn delete(
    inner: &Arc<Inner>,
    req: &Request,
    res: Res,
    ns: &str,
    name: &str,
) -> ApiResult<Response> {
    // Optional DeleteOptions body with preconditions.
    let opts: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&req.body).map_err(|e| {
            status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    let mut st = inner.lock();
    let Some(old) = st.store.get(res, ns, name).cloned() else {
        return Err(status::not_found(res.plural(), name));
    };
    let old_uid = meta_field(&old, "uid");
    if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
        && uid != old_uid
    {
        return Err(status::conflict_uid(res.plural(), ns, name, uid, &old_uid));
    }
    if let Some(rv) = opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        && rv != meta_field(&old, "resourceVersion")
    {
        return Err(status::conflict_modified(res.plural(), name));
    }
    if res == Res::Namespaces {
        // Namespace deletion is graceful: it turns Terminating and stays until emptied.
        let mut obj = old;
        mark_terminating(&mut obj);
        let out = st.store.overwrite(res, "", obj);
        drop(st);
        inner.notify();
        return Ok(Response::json(200, &with_kind(res, &out)));
    }
    st.store.delete(res, ns, name);
    drop(st);
    inner.notify();
    Ok(status::delete_success(res.plural(), name, &old_uid))
}

fn api_versions(req: &Request) -> Response {
    let host = req.header("Host").unwrap_or("127.0.0.1");
    Response::json(
        200,
        &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
    )
}

fn api_resources() -> Response {
    let verbs = json!([
        "create", "delete", "get", "list", "patch", "update", "watch"
    ]);
    Response::json(
        200,
        &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": verbs, "shortNames": ["ns"]},
            {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret", "verbs": verbs},
            {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": true, "kind": "ServiceAccount", "verbs": verbs, "shortNames": ["sa"]},
        ]}),
    )
}

fn version() -> Response {
    Response::json(
        200,
        &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3",
                "compiler": "gc", "platform": "linux/amd64"}),
    )
}
