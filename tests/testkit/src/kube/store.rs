//! The object store of the fake API server: one BTreeMap per resource keyed by (namespace, name)
//! (cluster-scoped objects use an empty namespace), the global resourceVersion counter, the event
//! log that watches read, compaction marks, and paginated listing with opaque continue tokens.
//! Everything here runs under the FakeKube state mutex; per-object work is O(log n).

use super::fieldmanager::Owners;
use super::selectors::{FieldSelector, LabelSelector};
use crate::util::{Rng, now_rfc3339};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

/// The resources served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Res {
    Namespaces,
    Secrets,
    ServiceAccounts,
}

impl Res {
    pub fn from_plural(s: &str) -> Option<Res> {
        match s {
            "namespaces" => Some(Res::Namespaces),
            "secrets" => Some(Res::Secrets),
            "serviceaccounts" => Some(Res::ServiceAccounts),
            _ => None,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Res::Namespaces => "namespaces",
            Res::Secrets => "secrets",
            Res::ServiceAccounts => "serviceaccounts",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Res::Namespaces => "Namespace",
            Res::Secrets => "Secret",
            Res::ServiceAccounts => "ServiceAccount",
        }
    }

    pub fn namespaced(self) -> bool {
        self != Res::Namespaces
    }

    /// Field labels accepted in field selectors (pkg/apis/core/v1/conversion.go).
    pub fn field_labels(self) -> &'static [&'static str] {
        match self {
            Res::Namespaces => &["metadata.name", "status.phase"],
            Res::Secrets => &["metadata.name", "metadata.namespace", "type"],
            Res::ServiceAccounts => &["metadata.name", "metadata.namespace"],
        }
    }

    fn idx(self) -> usize {
        match self {
            Res::Namespaces => 0,
            Res::Secrets => 1,
            Res::ServiceAccounts => 2,
        }
    }
}

pub(crate) type Key = (String, String);

/// One entry of the event log.
pub(crate) struct Event {
    pub rv: u64,
    pub res: Res,
    pub ns: String,
    pub etype: &'static str,
    /// The object, with kind/apiVersion.
    pub obj: Value,
    /// For MODIFIED: the object before, to turn selector transitions into ADDED/DELETED.
    pub prev: Option<Value>,
}

/// Label + field selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, res: Res, obj: &Value) -> bool {
        let meta = obj.get("metadata");
        if !self.labels.is_empty()
            && !self.labels.matches(
                meta.and_then(|m| m.get("labels"))
                    .and_then(Value::as_object),
            )
        {
            return false;
        }
        self.fields.is_empty() || self.fields.matches(|f| field_value(res, obj, f))
    }
}

fn field_value(res: Res, obj: &Value, field: &str) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    match field {
        "metadata.name" => s(obj.pointer("/metadata/name")),
        "metadata.namespace" => s(obj.pointer("/metadata/namespace")),
        "status.phase" => s(obj.pointer("/status/phase")),
        "type" if res == Res::Secrets => {
            let t = s(obj.get("type"));
            if t.is_empty() { "Opaque".into() } else { t }
        }
        _ => String::new(),
    }
}

/// A decoded continue token.
#[derive(Debug, Clone)]
pub(crate) struct Continue {
    /// Resume strictly after this key.
    pub after: Option<Key>,
    /// The list's resourceVersion; -1 = "the latest" (an inconsistent continuation).
    pub rv: i64,
    /// This token was handed out with an empty page: the next page is a real one.
    pub after_empty: bool,
}

pub(crate) enum ContinueError {
    Invalid(String),
    /// Expired; carries a fresh inconsistent token resuming at the same key.
    Expired(String),
}

/// How a list is paged.
pub(crate) struct PageRequest {
    pub limit: Option<usize>,
    pub cont: Option<Continue>,
    pub max_page: Option<usize>,
    pub ignore_limit: bool,
    pub empty_pages: bool,
}

pub(crate) struct Store {
    pub rv: u64,
    maps: [BTreeMap<Key, Value>; 3],
    pub events: VecDeque<Event>,
    /// Watches starting from a resourceVersion below this get 410 Expired.
    pub compacted_rv: u64,
    /// Highest resourceVersion dropped from the event log.
    pub trimmed_rv: u64,
    pub max_events: usize,
    pub token_seq: u64,
    pub tokens_valid_from: u64,
    pub rng: Rng,
    /// Field ownership per object (server-side apply).
    owners: BTreeMap<(usize, String, String), Owners>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            rv: 1,
            maps: [BTreeMap::new(), BTreeMap::new(), BTreeMap::new()],
            events: VecDeque::new(),
            compacted_rv: 0,
            trimmed_rv: 0,
            max_events: 200_000,
            token_seq: 0,
            tokens_valid_from: 0,
            rng: Rng::from_clock(),
            owners: BTreeMap::new(),
        }
    }

    pub fn map(&self, res: Res) -> &BTreeMap<Key, Value> {
        &self.maps[res.idx()]
    }

    pub fn get(&self, res: Res, ns: &str, name: &str) -> Option<&Value> {
        self.maps[res.idx()].get(&(ns.to_string(), name.to_string()))
    }

    /// Field owners of an object (empty when none recorded).
    pub fn owners(&self, res: Res, ns: &str, name: &str) -> Owners {
        self.owners
            .get(&(res.idx(), ns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn set_owners(&mut self, res: Res, ns: &str, name: &str, owners: Owners) {
        self.owners
            .insert((res.idx(), ns.to_string(), name.to_string()), owners);
    }

    /// Records an Update operation by `manager` from `old` to `new`.
    pub fn record_update(
        &mut self,
        res: Res,
        ns: &str,
        old: Option<&Value>,
        new: &Value,
        manager: &str,
    ) {
        let name = meta_name(new);
        let mut o = self.owners(res, ns, &name);
        super::fieldmanager::record_update(&mut o, old, new, manager);
        self.set_owners(res, ns, &name, o);
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn uid(&mut self) -> String {
        self.rng.uuid()
    }

    /// Inserts a new object (`obj` without kind/apiVersion): sets namespace, uid (unless
    /// `keep_uid` and one is present), resourceVersion, creationTimestamp; emits ADDED.
    pub fn create(&mut self, res: Res, ns: &str, mut obj: Value, keep_uid: bool) -> Value {
        let rv = self.next_rv();
        let uid = self.uid();
        strip_kind(&mut obj);
        let meta = meta_mut(&mut obj);
        if res.namespaced() {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let has_uid = meta
            .get("uid")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !(keep_uid && has_uid) {
            meta.insert("uid".into(), json!(uid));
        }
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        let name = meta_name(&obj);
        self.maps[res.idx()].insert((ns.to_string(), name), obj.clone());
        self.emit(res, ns, "ADDED", &obj, None);
        obj
    }

    /// Replaces an existing object; keeps uid and creationTimestamp, bumps resourceVersion,
    /// emits MODIFIED. If nothing but server fields differ, nothing is written (like etcd3's
    /// GuaranteedUpdate) and the stored object is returned.
    pub fn update(&mut self, res: Res, ns: &str, mut obj: Value) -> Value {
        strip_kind(&mut obj);
        let name = meta_name(&obj);
        let key = (ns.to_string(), name);
        let Some(old) = self.maps[res.idx()].get(&key).cloned() else {
            return self.create(res, ns, obj, true);
        };
        {
            let meta = meta_mut(&mut obj);
            for f in [
                "uid",
                "creationTimestamp",
                "resourceVersion",
                "deletionTimestamp",
            ] {
                match old.get("metadata").and_then(|m| m.get(f)) {
                    Some(v) => {
                        meta.insert(f.into(), v.clone());
                    }
                    None => {
                        meta.remove(f);
                    }
                }
            }
            if res.namespaced() {
                meta.insert("namespace".into(), json!(ns));
            }
        }
        if obj == old {
            return old;
        }
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.maps[res.idx()].insert(key, obj.clone());
        self.emit(res, ns, "MODIFIED", &obj, Some(&old));
        obj
    }

    /// Writes `obj` as is (server fields included) and emits MODIFIED; for admin changes that
    /// must touch server-owned fields (deletionTimestamp, status).
    pub fn overwrite(&mut self, res: Res, ns: &str, mut obj: Value) -> Value {
        let name = meta_name(&obj);
        let key = (ns.to_string(), name);
        let old = self.maps[res.idx()].get(&key).cloned();
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.maps[res.idx()].insert(key, obj.clone());
        self.emit(res, ns, "MODIFIED", &obj, old.as_ref());
        obj
    }

    /// Removes an object, emitting DELETED with a fresh resourceVersion.
    pub fn delete(&mut self, res: Res, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self.maps[res.idx()].remove(&(ns.to_string(), name.to_string()))?;
        self.owners
            .remove(&(res.idx(), ns.to_string(), name.to_string()));
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.emit(res, ns, "DELETED", &obj, None);
        Some(obj)
    }

    /// Names of the objects of `res` in namespace `ns`.
    pub fn names_in(&self, res: Res, ns: &str) -> Vec<String> {
        self.maps[res.idx()]
            .range((ns.to_string(), String::new())..)
            .take_while(|(k, _)| k.0 == ns)
            .map(|(k, _)| k.1.clone())
            .collect()
    }

    fn emit(&mut self, res: Res, ns: &str, etype: &'static str, obj: &Value, prev: Option<&Value>) {
        self.events.push_back(Event {
            rv: self.rv,
            res,
            ns: ns.to_string(),
            etype,
            obj: with_kind(res, obj),
            prev: prev.map(|p| with_kind(res, p)),
        });
        while self.events.len() > self.max_events {
            if let Some(e) = self.events.pop_front() {
                self.trimmed_rv = e.rv;
                self.compacted_rv = self.compacted_rv.max(e.rv);
            }
        }
    }

    /// Index of the first event with rv > `rv`.
    pub fn events_after(&self, rv: u64) -> usize {
        self.events.partition_point(|e| e.rv <= rv)
    }

    pub fn encode_continue(&mut self, after: &Key, rv: i64, after_empty: bool) -> String {
        self.token_seq += 1;
        let t = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [after.0, after.1],
                       "seq": self.token_seq, "e": after_empty});
        base64::engine::general_purpose::STANDARD.encode(t.to_string())
    }

    /// Decodes a continue token; expired ones yield a fresh inconsistent token.
    pub fn decode_continue(&mut self, token: &str) -> Result<Continue, ContinueError> {
        let bad = |why: &str| ContinueError::Invalid(format!("continue key is not valid: {why}"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| bad("illegal base64 data"))?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("not a continue token"))?;
        if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
            return Err(bad(
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ));
        }
        let rv = v
            .get("rv")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no resourceVersion"))?;
        let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let start = v.get("start").and_then(Value::as_array);
        let after = match start.map(|a| a.as_slice()) {
            Some([Value::String(ns), Value::String(name)]) => Some((ns.clone(), name.clone())),
            _ => None,
        };
        let after_empty = v.get("e").and_then(Value::as_bool).unwrap_or(false);
        let too_old = seq < self.tokens_valid_from || (rv >= 0 && (rv as u64) < self.compacted_rv);
        if too_old {
            let key = after.clone().unwrap_or_default();
            return Err(ContinueError::Expired(
                self.encode_continue(&key, -1, false),
            ));
        }
        Ok(Continue {
            after,
            rv,
            after_empty,
        })
    }

    /// A list body: `{"kind":"XList","apiVersion":"v1","metadata":{..},"items":[..]}`.
    pub fn list(
        &mut self,
        res: Res,
        ns: Option<&str>,
        sel: &Selectors,
        page: PageRequest,
    ) -> Value {
        let list_rv = match &page.cont {
            Some(c) if c.rv > 0 => c.rv as u64,
            _ => self.rv,
        };
        let paging = page.limit.is_some() || page.cont.is_some();
        let mut size = if page.ignore_limit { None } else { page.limit };
        if let (true, Some(m)) = (paging, page.max_page) {
            size = Some(size.map_or(m, |s| s.min(m)).max(1));
        }
        let after = page.cont.as_ref().and_then(|c| c.after.clone());
        let token_rv = page.cont.as_ref().map_or(self.rv as i64, |c| c.rv);
        // Every other page empty: a fresh page request (not right after an empty one) gets none.
        if page.empty_pages
            && page.limit.is_some()
            && !page.ignore_limit
            && !page.cont.as_ref().is_some_and(|c| c.after_empty)
        {
            let key = after.clone().unwrap_or_else(|| match ns {
                Some(n) => (n.to_string(), String::new()),
                None => (String::new(), String::new()),
            });
            let token = self.encode_continue(&key, token_rv, true);
            return list_body(res, list_rv, Some(token), Vec::new());
        }
        let lower = match &after {
            Some(k) => Bound::Excluded(k.clone()),
            None => match ns {
                Some(n) => Bound::Included((n.to_string(), String::new())),
                None => Bound::Unbounded,
            },
        };
        let mut items = Vec::new();
        let mut last: Option<Key> = None;
        let mut more = false;
        // `metadata.name=X` within one namespace (or on namespaces) is a point lookup.
        let upper = match (
            sel.fields.required_value("metadata.name"),
            ns,
            res.namespaced(),
        ) {
            (Some(n), Some(ns), _) => Bound::Included((ns.to_string(), n.to_string())),
            (Some(n), None, false) => Bound::Included((String::new(), n.to_string())),
            _ => Bound::Unbounded,
        };
        let lower = match (&lower, &upper) {
            (Bound::Excluded(_), _) | (_, Bound::Unbounded) => lower,
            (_, Bound::Included(k)) => Bound::Included(k.clone()),
            _ => lower,
        };
        if let (Bound::Excluded(a), Bound::Included(b)) = (&lower, &upper)
            && a >= b
        {
            return list_body(res, list_rv, None, Vec::new());
        }
        let mut iter = self.maps[res.idx()]
            .range((lower, upper))
            .take_while(|(k, _)| ns.is_none_or(|n| k.0 == n));
        for (k, obj) in iter.by_ref() {
            if sel.matches(res, obj) {
                items.push(obj.clone());
            }
            last = Some(k.clone());
            if size.is_some_and(|s| items.len() >= s) {
                break;
            }
        }
        if size.is_some_and(|s| items.len() >= s) && iter.next().is_some() {
            more = true;
        }
        let token = match (more, last) {
            (true, Some(k)) => Some(self.encode_continue(&k, token_rv, false)),
            _ => None,
        };
        list_body(res, list_rv, token, items)
    }
}

fn list_body(res: Res, rv: u64, token: Option<String>, items: Vec<Value>) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(t) = token {
        meta.insert("continue".into(), json!(t));
    }
    json!({
        "kind": format!("{}List", res.kind()),
        "apiVersion": "v1",
        "metadata": meta,
        "items": items,
    })
}

/// A copy carrying kind/apiVersion (single GETs, write responses, watch events).
pub(crate) fn with_kind(res: Res, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("kind".into(), json!(res.kind()));
        m.insert("apiVersion".into(), json!("v1"));
    }
    o
}

pub(crate) fn strip_kind(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
}

/// `metadata` as a mutable map, created if missing or not an object.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().expect("object");
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("object")
}

pub(crate) fn meta_name(obj: &Value) -> String {
    meta_field(obj, "name")
}

pub(crate) fn meta_field(obj: &Value, f: &str) -> String {
    obj.get("metadata")
        .and_then(|m| m.get(f))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
