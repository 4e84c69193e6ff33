//! Test-side mutations shared by the FakeKube methods and the `/_admin/` HTTP endpoints that the
//! `fake-kube` binary turns on (never used by the daemon; not recorded, not counted, no auth):
//!
//! - `POST /_admin/namespaces` `{"name":..,"labels":{..},"phase":"Terminating"?}` -> 201 namespace
//! - `DELETE /_admin/namespaces/{name}`; `POST /_admin/namespaces/{name}/terminate`
//! - `GET /_admin/stats` -> `{"requests_by_verb":{"GET":n,..,"WATCH":n},"total":n}`;
//!   `POST /_admin/stats/reset`
//! - `GET /_admin/secrets` -> `[{"namespace":..,"secret":..}]`; `POST /_admin/secrets` (same form)
//! - `GET /_admin/serviceaccounts`; `POST /_admin/serviceaccounts` `{"namespace":..,"serviceaccount":..}`
//! - `GET /_admin/requests` -> recorded requests; `POST /_admin/requests/clear`
//! - `POST /_admin/faults` with a Fault as JSON (see `fault_from_json`); `DELETE /_admin/faults`
//! - `POST /_admin/compact`, `POST /_admin/expire-continue-tokens`
//! - `POST /_admin/config` `{"max_page_size":n|null,"ignore_limit":b,"empty_pages":b,
//!   "bearer_token":s|null,"bookmark_interval_ms":n}` (each member optional)
//! - `POST /_admin/rbac` `{"kustomization":"DIR"}`: renders DIR with `kubectl kustomize` and
//!   enforces its RBAC for the service account its Deployment or CronJob runs as (answers
//!   `{"user":..}`); `GET /_admin/forbidden` -> `["METHOD path", ..]` of the requests refused

use super::store::{Res, meta_name, with_kind};
use super::validation::{normalize_secret, normalize_service_account};
use super::{Fault, FaultKind, Inner, Mutation, mark_terminating, namespace_object};
use crate::http::{Request, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// The field manager of admin writes (like a `kubectl create` by someone else).
pub const ADMIN_MANAGER: &str = "testkit-admin";

pub(crate) fn terminate_namespace(inner: &Inner, name: &str) -> Option<Value> {
    let mut st = inner.lock();
    let mut obj = st.store.get(Res::Namespaces, "", name)?.clone();
    mark_terminating(&mut obj);
    let out = st.store.overwrite(Res::Namespaces, "", obj);
    drop(st);
    inner.notify();
    Some(out)
}

pub(crate) fn delete_namespace(inner: &Inner, name: &str) -> bool {
    let mut st = inner.lock();
    if st.store.get(Res::Namespaces, "", name).is_none() {
        return false;
    }
    for res in [Res::Secrets, Res::ServiceAccounts] {
        for n in st.store.names_in(res, name) {
            st.store.delete(res, name, &n);
        }
    }
    st.store.delete(Res::Namespaces, "", name);
    drop(st);
    inner.notify();
    true
}

/// Admin delete of one namespaced object.
pub(crate) fn delete_object(inner: &Inner, res: Res, ns: &str, name: &str) -> bool {
    let deleted = inner.lock().store.delete(res, ns, name).is_some();
    inner.notify();
    deleted
}

/// Carries out a [`Mutation`] (someone else's change).
pub(crate) fn mutate(inner: &Inner, m: &Mutation) {
    match m {
        Mutation::DeleteSecret { namespace, name } => {
            delete_object(inner, Res::Secrets, namespace, name);
        }
        Mutation::PutSecret { namespace, secret } => {
            put_object(inner, Res::Secrets, namespace, secret.clone());
        }
        Mutation::RecreateSecret { namespace, secret } => {
            delete_object(inner, Res::Secrets, namespace, &meta_name(secret));
            put_object(inner, Res::Secrets, namespace, secret.clone());
        }
        Mutation::DeleteNamespace(name) => {
            delete_namespace(inner, name);
        }
        Mutation::TerminateNamespace(name) => {
            terminate_namespace(inner, name);
        }
    }
}

/// Admin insert/replace without validation (keeps uid/creationTimestamp of an existing object).
pub(crate) fn put_object(inner: &Inner, res: Res, ns: &str, mut obj: Value) -> Value {
    if !obj.is_object() {
        return Value::Null;
    }
    match res {
        Res::Secrets => {
            if normalize_secret(&mut obj).is_err()
                && obj
                    .get("type")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                obj["type"] = json!("Opaque");
            }
        }
        Res::ServiceAccounts => {
            let _ = normalize_service_account(&mut obj);
        }
        Res::Namespaces => {}
    }
    let name = meta_name(&obj);
    let mut st = inner.lock();
    let old = st.store.get(res, ns, &name).cloned();
    let out = if old.is_some() {
        st.store.update(res, ns, obj)
    } else {
        st.store.create(res, ns, obj, false)
    };
    st.store
        .record_update(res, ns, old.as_ref(), &out, ADMIN_MANAGER);
    drop(st);
    inner.notify();
    with_kind(res, &out)
}

/// A Fault from JSON: `{"method":"PATCH"|null,"path_prefix":"/api/v1/..","times":1,"kind":K}`
/// where K is `"reset"`, `"conflict"`, `"gone"`, `{"status":[500,"InternalError"]}`,
/// `{"plain_too_many_requests":N}` or `{"delay_ms":N}`.
pub fn fault_from_json(v: &Value) -> Result<Fault, String> {
    let method = v.get("method").and_then(Value::as_str).map(str::to_string);
    let path_prefix = v
        .get("path_prefix")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let times = v.get("times").and_then(Value::as_u64).unwrap_or(1) as usize;
    let k = v.get("kind").ok_or("missing kind")?;
    let kind = match k {
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "reset" => FaultKind::Reset,
            "conflict" => FaultKind::Conflict,
            "gone" => FaultKind::Gone,
            other => return Err(format!("unknown fault kind {other:?}")),
        },
        Value::Object(o) => {
            if let Some(s) = o.get("status") {
                let code = s
                    .get(0)
                    .and_then(Value::as_u64)
                    .ok_or("status: [code, reason]")?;
                let reason = s.get(1).and_then(Value::as_str).unwrap_or("InternalError");
                FaultKind::Status(code as u16, reason.to_string())
            } else if let Some(n) = o.get("plain_too_many_requests").and_then(Value::as_u64) {
                FaultKind::PlainTooManyRequests(n)
            } else if let Some(n) = o.get("delay_ms").and_then(Value::as_u64) {
                FaultKind::Delay(Duration::from_millis(n))
            } else {
                return Err("unknown fault kind".into());
            }
        }
        _ => return Err("kind must be a string or an object".into()),
    };
    Ok(Fault {
        method,
        path_prefix,
        times,
        kind,
    })
}

fn ok(v: Value) -> Response {
    Response::json(200, &v)
}

fn err(code: u16, msg: &str) -> Response {
    Response::json(code, &json!({"error": msg}))
}

pub(crate) fn handle(inner: &Inner, req: &Request) -> Response {
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return err(400, &format!("invalid JSON: {e}")),
        }
    };
    let rest = req
        .path
        .trim_start_matches("/_admin/")
        .trim_end_matches('/');
    let segs: Vec<&str> = rest.split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["namespaces"]) => {
            let Some(name) = body.get("name").and_then(Value::as_str) else {
                return err(400, "name is required");
            };
            let labels: Vec<(String, String)> = body
                .get("labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            {
                let mut st = inner.lock();
                let refs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let obj = namespace_object(name, &refs);
                match st.store.get(Res::Namespaces, "", name).cloned() {
                    None => {
                        st.store.create(Res::Namespaces, "", obj, false);
                    }
                    Some(mut old) => {
                        old["metadata"]["labels"] = obj["metadata"]["labels"].clone();
                        st.store.update(Res::Namespaces, "", old);
                    }
                }
            }
            inner.notify();
            if body.get("phase").and_then(Value::as_str) == Some("Terminating") {
                terminate_namespace(inner, name);
            }
            let st = inner.lock();
            let ns = st.store.get(Res::Namespaces, "", name).cloned();
            Response::json(
                201,
                &ns.map_or(Value::Null, |o| with_kind(Res::Namespaces, &o)),
            )
        }
        ("DELETE", ["namespaces", name]) => {
            if delete_namespace(inner, name) {
                ok(json!({"deleted": name}))
            } else {
                err(404, "no such namespace")
            }
        }
        ("POST", ["namespaces", name, "terminate"]) => match terminate_namespace(inner, name) {
            Some(o) => ok(with_kind(Res::Namespaces, &o)),
            None => err(404, "no such namespace"),
        },
        ("GET", ["stats"]) => {
            let st = inner.lock();
            let mut by = serde_json::Map::new();
            for v in ["GET", "POST", "PATCH", "PUT", "DELETE", "WATCH"] {
                by.insert(v.into(), json!(st.stats.get(v).copied().unwrap_or(0)));
            }
            for (k, v) in &st.stats {
                by.entry(k.clone()).or_insert(json!(v));
            }
            let total: u64 = st.stats.values().sum();
            ok(json!({"requests_by_verb": by, "total": total}))
        }
        ("POST", ["stats", "reset"]) => {
            inner.lock().stats.clear();
            ok(json!({}))
        }
        ("GET", ["secrets"]) | ("GET", ["serviceaccounts"]) => {
            let (res, field) = if segs[0] == "secrets" {
                (Res::Secrets, "secret")
            } else {
                (Res::ServiceAccounts, "serviceaccount")
            };
            let st = inner.lock();
            let all: Vec<Value> = st
                .store
                .map(res)
                .iter()
                .map(|((ns, _), o)| json!({"namespace": ns, field: with_kind(res, o)}))
                .collect();
            ok(Value::Array(all))
        }
        ("POST", ["secrets"]) | ("POST", ["serviceaccounts"]) => {
            let (res, field) = if segs[0] == "secrets" {
                (Res::Secrets, "secret")
            } else {
                (Res::ServiceAccounts, "serviceaccount")
            };
            let (Some(ns), Some(obj)) = (
                body.get("namespace").and_then(Value::as_str),
                body.get(field),
            ) else {
                return err(400, &format!("namespace and {field} are required"));
            };
            let out = put_object(inner, res, ns, obj.clone());
            Response::json(201, &out)
        }
        ("GET", ["requests"]) => {
            let st = inner.lock();
            let all: Vec<Value> = st
                .requests
                .iter()
                .map(|r| {
                    json!({"method": r.method, "path": r.path, "query": r.query,
                           "content_type": r.content_type, "authorization": r.authorization,
                           "host": r.host, "body": r.body})
                })
                .collect();
            ok(Value::Array(all))
        }
        ("POST", ["requests", "clear"]) => {
            inner.lock().requests.clear();
            ok(json!({}))
        }
        ("POST", ["faults"]) => match fault_from_json(&body) {
            Ok(f) => {
                inner.lock().faults.push_back(f);
                Response::json(201, &json!({}))
            }
            Err(e) => err(400, &e),
        },
        ("DELETE", ["faults"]) => {
            inner.lock().faults.clear();
            ok(json!({}))
        }
        ("POST", ["compact"]) => {
            let mut st = inner.lock();
            st.store.compacted_rv = st.store.rv;
            ok(json!({"compacted": st.store.rv.to_string()}))
        }
        ("POST", ["expire-continue-tokens"]) => {
            let mut st = inner.lock();
            st.store.tokens_valid_from = st.store.token_seq + 1;
            ok(json!({}))
        }
        ("POST", ["config"]) => {
            let mut st = inner.lock();
            if let Some(v) = body.get("max_page_size") {
                st.max_page = v.as_u64().map(|n| n as usize);
            }
            if let Some(v) = body.get("ignore_limit").and_then(Value::as_bool) {
                st.ignore_limit = v;
            }
            if let Some(v) = body.get("empty_pages").and_then(Value::as_bool) {
                st.empty_pages = v;
            }
            if let Some(v) = body.get("bearer_token") {
                st.bearer = v.as_str().map(str::to_string);
            }
            if let Some(v) = body.get("bookmark_interval_ms").and_then(Value::as_u64) {
                st.bookmark_interval = Duration::from_millis(v.max(1));
            }
            ok(json!({}))
        }
        ("POST", ["rbac"]) => {
            let Some(dir) = body.get("kustomization").and_then(Value::as_str) else {
                return err(400, "kustomization (a folder) is required");
            };
            let rendered =
                super::rbac::Manifests::render(std::path::Path::new(dir)).and_then(|m| {
                    Ok((
                        m.rbac()?,
                        m.daemon_user().ok_or("no Deployment or CronJob")?,
                    ))
                });
            match rendered {
                Ok((rbac, user)) => {
                    let name = user.name.clone();
                    inner.lock().rbac = Some((rbac, user));
                    ok(json!({"user": name}))
                }
                Err(e) => err(400, &e),
            }
        }
        ("GET", ["forbidden"]) => ok(json!(inner.lock().forbidden.clone())),
        _ => err(404, "unknown admin endpoint"),
    }
}
