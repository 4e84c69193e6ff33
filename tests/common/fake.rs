//! The fake API server as the shipped manifests authorize it: renders a kustomization of
//! `example_deployment` (`kubectl kustomize`, once per test process and folder) and makes a
//! FakeKube enforce its RBAC for the service account its Deployment runs as, so a request the
//! shipped RBAC does not allow gets the real 403 and fails the test.

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

/// The rendered manifests of `relative` (e.g. `example_deployment/variants/single-namespace`),
/// rendered once per test process. Fails the test, naming the missing tool, when kubectl or
/// python3's yaml module is missing: the integration tests run against the shipped RBAC.
pub fn manifests(relative: &str) -> Manifests {
    static RENDERED: OnceLock<Mutex<BTreeMap<String, Manifests>>> = OnceLock::new();
    let cache = RENDERED.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = cache.get(relative) {
        return m.clone();
    }
    let m = Manifests::render(&deployment_dir(relative))
        .unwrap_or_else(|e| panic!("rendering {relative} for the fake's RBAC: {e}"));
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

/// A plain-HTTP fake API server enforcing the default install's RBAC.
pub fn kube_with_shipped_rbac() -> FakeKube {
    let kube = FakeKube::start();
    enforce_shipped_rbac(&kube, DEFAULT_INSTALL);
    kube
}

/// Fails the test if RBAC refused any request.
pub fn assert_nothing_forbidden(kube: &FakeKube) {
    let refused = kube.forbidden_requests();
    assert!(
        refused.is_empty(),
        "the shipped RBAC refused requests the daemon sent: {refused:?}"
    );
}
