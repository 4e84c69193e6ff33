//! The fake API server as the shipped manifests authorize it: takes a kustomization of
//! `example_deployment` as `kubectl kustomize` renders it (the snapshot in `tests/rendered/`,
//! written by scripts/render-manifests.sh and checked against a fresh render by
//! tests/shipping.rs, so these tests need no kubectl) and makes a FakeKube enforce its RBAC for
//! the service account its Deployment runs as, so a request the shipped RBAC does not allow
//! gets the real 403 and fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ecrupdater_testkit::FakeKube;
use ecrupdater_testkit::kube::rbac::Manifests;

/// The default install.
pub const DEFAULT_INSTALL: &str = "example_deployment";

/// `example_deployment/...` in the repository.
pub fn deployment_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Where the rendered snapshot of `relative` is: `tests/rendered/default.json` for
/// `example_deployment`, `tests/rendered/variants/NAME.json` for its variants.
pub fn rendered_snapshot(relative: &str) -> PathBuf {
    let name = match relative.trim_end_matches('/') {
        DEFAULT_INSTALL => "default".to_string(),
        other => other
            .strip_prefix("example_deployment/")
            .unwrap_or_else(|| panic!("{other} is not under example_deployment/"))
            .to_string(),
    };
    deployment_dir("tests/rendered").join(format!("{name}.json"))
}

/// The rendered manifests of `relative` (e.g. `example_deployment/variants/single-namespace`),
/// from its snapshot, read once per test process.
pub fn manifests(relative: &str) -> Manifests {
    static RENDERED: OnceLock<Mutex<BTreeMap<String, Manifests>>> = OnceLock::new();
    let cache = RENDERED.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = cache.get(relative) {
        return m.clone();
    }
    let path = rendered_snapshot(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/render-manifests.sh after changing example_deployment",
            path.display()
        )
    });
    let objects: Vec<serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a JSON list: {e}", path.display()));
    let m = Manifests { objects };
    cache.insert(relative.to_string(), m.clone());
    m
}

/// Makes `kube` enforce the RBAC of `relative` for the identity its Deployment runs as.
pub fn enforce_shipped_rbac(kube: &FakeKube, relative: &str) -> Manifests {
    let m = manifests(relative);
    let user = m
        .daemon_user()
        .unwrap_or_else(|| panic!("{relative}: no Deployment or CronJob"));
    kube.enforce_rbac(m.rbac().expect("RBAC objects"), user);
    m
}

/// A fake API server enforcing shipped RBAC that, when the test holding it ends without having
/// failed already, fails it if RBAC refused a request the test did not look at: every test built
/// on it shows that the shipped RBAC allows everything the daemon did in it. A test that expects
/// refusals reads them with [`RbacKube::forbidden_requests`] (and asserts on them); refusals
/// after that read fail the test again.
pub struct RbacKube {
    kube: FakeKube,
    seen: std::cell::Cell<usize>,
}

impl RbacKube {
    /// `METHOD path` of every request RBAC refused so far; the test has now seen them.
    pub fn forbidden_requests(&self) -> Vec<String> {
        let refused = self.kube.forbidden_requests();
        self.seen.set(refused.len());
        refused
    }
}

impl std::ops::Deref for RbacKube {
    type Target = FakeKube;
    fn deref(&self) -> &FakeKube {
        &self.kube
    }
}

impl Drop for RbacKube {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let refused = self.kube.forbidden_requests();
        let unseen = &refused[self.seen.get().min(refused.len())..];
        assert!(
            unseen.is_empty(),
            "the shipped RBAC refused requests the daemon sent: {unseen:?}"
        );
    }
}

fn guarded(kube: FakeKube) -> RbacKube {
    RbacKube {
        kube,
        seen: std::cell::Cell::new(0),
    }
}

/// A plain-HTTP fake API server enforcing the default install's RBAC (see [`RbacKube`]).
pub fn kube_with_shipped_rbac() -> RbacKube {
    kube_with_rbac_of(DEFAULT_INSTALL)
}

/// A plain-HTTP fake API server enforcing the RBAC of `relative` (the default install or one of
/// its variants), for the identity its Deployment runs as (see [`RbacKube`]).
pub fn kube_with_rbac_of(relative: &str) -> RbacKube {
    let kube = FakeKube::start();
    enforce_shipped_rbac(&kube, relative);
    guarded(kube)
}

/// The same over TLS; also returns the CA certificate as PEM.
pub fn tls_kube_with_shipped_rbac() -> (RbacKube, String) {
    let (kube, ca) = FakeKube::start_tls();
    enforce_shipped_rbac(&kube, DEFAULT_INSTALL);
    (guarded(kube), ca)
}

/// Fails the test if RBAC refused any request.
pub fn assert_nothing_forbidden(kube: &FakeKube) {
    let refused = kube.forbidden_requests();
    assert!(
        refused.is_empty(),
        "the shipped RBAC refused requests the daemon sent: {refused:?}"
    );
}
