//! `FakeKube`: an in-process fake kube-apiserver for core/v1 Namespaces, Secrets and
//! ServiceAccounts over real sockets (plain HTTP or TLS), faithful to
//! shared/reference/kubernetes-api.md; plus its test-side controls (admin inserts, recorded
//! requests, bearer-token auth, paging quirks, expired continue tokens, compaction, injected faults).
//!
//! Submodules: `store` (objects, resourceVersions, event log, paging), `routes` (the REST surface),
//! `watch` (chunked watch streams), `validation`, `selectors`, `patch`, `status` (Status bodies),
//! `rbac` (RBAC from rendered kustomizations, enforced when asked), `admin` (the `/_admin/`
//! endpoints of the `fake-kube` binary, and the changes a `Mutate` fault makes), `events`
//! (events.k8s.io/v1 Events, validated and listed) and `access_review` (SelfSubjectAccessReviews).

mod access_review;
mod admin;
mod events;
mod fieldmanager;
mod patch;
pub mod rbac;
mod routes;
mod selectors;
mod status;
mod store;
mod validation;
mod watch;

pub use crate::http::RecordedRequest;
pub use admin::fault_from_json;

use crate::http::{Request, Server};
use crate::util::now_rfc3339;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use store::{Res, Store, meta_mut, with_kind};

/// A fault to inject into the next matching request(s).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// HTTP method to match (case-insensitive); `None` matches any. Watches are `GET`.
    pub method: Option<String>,
    /// Prefix of the request path (without query) to match; `""` matches any.
    pub path_prefix: String,
    /// How many matching requests it affects (0 is taken as 1).
    pub times: usize,
    pub kind: FaultKind,
}

impl Fault {
    /// A fault for the next request matching `method` (None = any) and `path_prefix`.
    pub fn new(method: Option<&str>, path_prefix: &str, kind: FaultKind) -> Fault {
        Fault {
            method: method.map(str::to_string),
            path_prefix: path_prefix.to_string(),
            times: 1,
            kind,
        }
    }

    /// The same fault for `n` matching requests.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// A JSON Status with this code and reason (generic message); a 429 also gets `Retry-After: 1`.
    Status(u16, String),
    /// Priority-and-fairness 429: text/plain body and `Retry-After: N`.
    PlainTooManyRequests(u64),
    /// Close the connection without answering.
    Reset,
    /// Sleep, then answer normally.
    Delay(Duration),
    /// 409 Conflict with the optimistic-concurrency message for the object named by the path.
    Conflict,
    /// 410 Gone, reason Expired (as for a too-old continue token).
    Gone,
    /// Another client changes the store just before this request is served (deterministically
    /// "between the daemon's read and its write"); then the request is answered normally.
    Mutate(Mutation),
}

/// A change made by someone else, for [`FaultKind::Mutate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// The secret is deleted.
    DeleteSecret { namespace: String, name: String },
    /// A secret is inserted or replaced (an admin write: new uid when it did not exist).
    PutSecret { namespace: String, secret: Value },
    /// The secret of that name is deleted and this one created in its place (a new uid).
    RecreateSecret { namespace: String, secret: Value },
    /// The namespace and everything in it are deleted.
    DeleteNamespace(String),
    /// The namespace starts terminating.
    TerminateNamespace(String),
}

pub(crate) struct State {
    pub store: Store,
    pub requests: Vec<RecordedRequest>,
    pub faults: VecDeque<Fault>,
    pub bearer: Option<String>,
    pub max_page: Option<usize>,
    pub ignore_limit: bool,
    pub empty_pages: bool,
    pub bookmark_interval: Duration,
    pub stats: BTreeMap<String, u64>,
    pub admin: bool,
    pub events: events::Events,
    pub access_reviews: access_review::AccessReviews,
    /// When set, every request is authorized as this user against these rules.
    pub rbac: Option<(rbac::Rbac, rbac::User)>,
    /// `METHOD path` of every request RBAC refused.
    pub forbidden: Vec<String>,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Wakes watch streams after a change.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn wait<'a>(&self, g: MutexGuard<'a, State>, d: Duration) -> MutexGuard<'a, State> {
        self.changed.wait_timeout(g, d).unwrap().0
    }
}

/// A fake kube-apiserver on 127.0.0.1. Dropping it stops the server.
pub struct FakeKube {
    inner: Arc<Inner>,
    server: Option<Server>,
    scheme: &'static str,
}

fn namespace_object(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = Map::new();
    for (k, v) in labels {
        l.insert(k.to_string(), json!(v));
    }
    l.insert("kubernetes.io/metadata.name".into(), json!(name));
    json!({
        "metadata": {"name": name, "labels": l},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

impl FakeKube {
    /// Plain HTTP on a random port of 127.0.0.1.
    pub fn start() -> FakeKube {
        Self::bind(0, false).expect("start fake kube-apiserver").0
    }

    /// HTTPS with a fresh CA and a server certificate for 127.0.0.1 and localhost; returns the
    /// CA certificate as PEM.
    pub fn start_tls() -> (FakeKube, String) {
        let (k, ca) = Self::bind(0, true).expect("start fake kube-apiserver (TLS)");
        (k, ca.unwrap_or_default())
    }

    /// Binds 127.0.0.1:`port` (0 = random), with TLS when `tls`; returns the CA PEM for TLS.
    pub fn bind(port: u16, tls: bool) -> std::io::Result<(FakeKube, Option<String>)> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                store: Store::new(),
                requests: Vec::new(),
                faults: VecDeque::new(),
                bearer: None,
                max_page: None,
                ignore_limit: false,
                empty_pages: false,
                bookmark_interval: Duration::from_secs(1),
                stats: BTreeMap::new(),
                admin: false,
                events: Default::default(),
                access_reviews: Default::default(),
                rbac: None,
                forbidden: Vec::new(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (cfg, ca) = if tls {
            let (cfg, ca) = crate::tls::server_config().map_err(std::io::Error::other)?;
            (Some(cfg), Some(ca))
        } else {
            (None, None)
        };
        let handler = Arc::new(routes::KubeHandler(inner.clone()));
        let server = Server::start(port, cfg, handler)?;
        Ok((
            FakeKube {
                inner,
                server: Some(server),
                scheme: if tls { "https" } else { "http" },
            },
            ca,
        ))
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port())
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, Server::port)
    }

    /// Turns on the `/_admin/` endpoints (used by the `fake-kube` binary; requests to them are
    /// neither recorded nor counted).
    pub fn enable_admin(&self) {
        self.inner.lock().admin = true;
    }

    /// Creates (ADDED) or relabels (MODIFIED) an Active namespace.
    pub fn add_namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let mut st = self.inner.lock();
        let obj = namespace_object(name, labels);
        match st.store.get(Res::Namespaces, "", name).cloned() {
            None => {
                st.store.create(Res::Namespaces, "", obj, false);
            }
            Some(mut old) => {
                old["metadata"]["labels"] = obj["metadata"]["labels"].clone();
                st.store.update(Res::Namespaces, "", old);
            }
        }
        drop(st);
        self.inner.notify();
    }

    /// Phase Terminating plus a deletionTimestamp (MODIFIED). Unknown names are ignored.
    pub fn set_namespace_terminating(&self, name: &str) {
        admin::terminate_namespace(&self.inner, name);
    }

    /// Removes the namespace and everything in it (DELETED events). Unknown names are ignored.
    pub fn delete_namespace(&self, name: &str) {
        admin::delete_namespace(&self.inner, name);
    }

    /// Admin insert or replace, without validation: sets uid, resourceVersion and
    /// creationTimestamp (kept on replace), merges stringData, defaults type to Opaque.
    pub fn put_secret(&self, namespace: &str, secret: Value) {
        admin::put_object(&self.inner, Res::Secrets, namespace, secret);
    }

    /// Deletes a secret (DELETED event), as another client would. Unknown names are ignored.
    pub fn delete_secret(&self, namespace: &str, name: &str) {
        admin::delete_object(&self.inner, Res::Secrets, namespace, name);
    }

    /// The stored secret, as a GET returns it (with kind/apiVersion).
    pub fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.store
            .get(Res::Secrets, namespace, name)
            .map(|o| with_kind(Res::Secrets, o))
    }

    /// Every secret as (namespace, secret), ordered by namespace then name.
    pub fn secrets(&self) -> Vec<(String, Value)> {
        let st = self.inner.lock();
        st.store
            .map(Res::Secrets)
            .iter()
            .map(|((ns, _), o)| (ns.clone(), with_kind(Res::Secrets, o)))
            .collect()
    }

    /// Admin insert or replace of a ServiceAccount (no validation).
    pub fn put_service_account(&self, namespace: &str, sa: Value) {
        admin::put_object(&self.inner, Res::ServiceAccounts, namespace, sa);
    }

    pub fn service_account(&self, namespace: &str, name: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.store
            .get(Res::ServiceAccounts, namespace, name)
            .map(|o| with_kind(Res::ServiceAccounts, o))
    }

    /// The stored namespace, as a GET returns it.
    pub fn namespace(&self, name: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.store
            .get(Res::Namespaces, "", name)
            .map(|o| with_kind(Res::Namespaces, o))
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.lock().store.rv
    }

    /// Every request so far (except `/_admin/`), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner.lock().requests.clear();
    }

    /// Request counts by verb (GET, POST, PUT, PATCH, DELETE, WATCH), not reset by clear_requests.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.inner.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.inner.lock().stats.clear();
    }

    /// When Some: requests without `Authorization: Bearer <token>` get 401.
    pub fn require_bearer_token(&self, token: Option<&str>) {
        self.inner.lock().bearer = token.map(str::to_string);
    }

    /// From now on, authorizes every request (but `/_admin/`) as `user` against `rbac`, as the
    /// kube-apiserver's RBAC authorizer does: what no rule allows gets the real 403 Forbidden.
    pub fn enforce_rbac(&self, rbac: rbac::Rbac, user: rbac::User) {
        self.inner.lock().rbac = Some((rbac, user));
    }

    /// Renders the kustomization in `dir` and enforces its RBAC for the identity its Deployment
    /// (or CronJob) runs as; returns the rendered manifests. Needs kubectl and python3's yaml.
    pub fn enforce_rbac_of(&self, dir: &std::path::Path) -> Result<rbac::Manifests, String> {
        let manifests = rbac::Manifests::render(dir)?;
        let user = manifests
            .daemon_user()
            .ok_or_else(|| format!("{}: no Deployment or CronJob", dir.display()))?;
        self.enforce_rbac(manifests.rbac()?, user);
        Ok(manifests)
    }

    /// `METHOD path` of every request RBAC refused so far.
    pub fn forbidden_requests(&self) -> Vec<String> {
        self.inner.lock().forbidden.clone()
    }

    /// Caps every page at `n` items when the client paginates (sends `limit`).
    pub fn set_max_page_size(&self, n: Option<usize>) {
        self.inner.lock().max_page = n;
    }

    /// Ignore `limit` altogether (return everything in one page).
    pub fn set_ignore_limit(&self, on: bool) {
        self.inner.lock().ignore_limit = on;
    }

    /// Every other page holds zero items but a continue token.
    pub fn set_empty_pages(&self, on: bool) {
        self.inner.lock().empty_pages = on;
    }

    /// Watch bookmarks (allowWatchBookmarks=true) come this often (default 1 s).
    pub fn set_bookmark_interval(&self, d: Duration) {
        self.inner.lock().bookmark_interval = d;
    }

    /// Every continue token issued so far now gives 410 Expired.
    pub fn expire_continue_tokens(&self) {
        let mut st = self.inner.lock();
        st.store.tokens_valid_from = st.store.token_seq + 1;
    }

    /// Watches from a resourceVersion older than the current one now get an ERROR 410 Expired
    /// event; continue tokens from older lists expire too (as after an etcd compaction).
    pub fn compact(&self) {
        let mut st = self.inner.lock();
        st.store.compacted_rv = st.store.rv;
    }

    /// Queues a fault; the first request matching (method, path prefix) consumes it.
    pub fn inject(&self, fault: Fault) {
        self.inner.lock().faults.push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.notify();
        self.server.take();
    }
}

/// `metadata.deletionTimestamp` + phase Terminating on a namespace object.
pub(crate) fn mark_terminating(obj: &mut Value) {
    let meta = meta_mut(obj);
    if !meta.contains_key("deletionTimestamp") {
        meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
    }
    obj["status"] = json!({"phase": "Terminating"});
}

/// Takes the first queued fault matching the request.
pub(crate) fn take_fault(faults: &mut VecDeque<Fault>, req: &Request) -> Option<FaultKind> {
    let i = faults.iter().position(|f| {
        f.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(&req.method))
            && (req.path.starts_with(&f.path_prefix)
                || (f.path_prefix.contains('?')
                    && format!("{}?{}", req.path, req.query).starts_with(&f.path_prefix)))
    })?;
    let f = &mut faults[i];
    let kind = f.kind.clone();
    if f.times <= 1 {
        faults.remove(i);
    } else {
        f.times -= 1;
    }
    Some(kind)
}
