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
