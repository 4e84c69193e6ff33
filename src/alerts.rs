//! What a cycle tells the cluster: a Warning Event ([`crate::kube::events`]) in each namespace
//! whose refresh failed (`RefreshFailed`), and in each target namespace while a registry refuses
//! the credentials (`VerificationFailed`). Rate-limited by the recorder; never in `--dry-run`;
//! never a failure of the cycle.

use crate::config::{Config, VerifyMode};
use crate::kube::events::{EventRecorder, REFRESH_FAILED, VERIFICATION_FAILED};
use crate::kube::{KubeClient, namespaces};
use crate::verify::Verdict;

/// Records the Events of one cycle: `failures` are (namespace, error) of the cycle's report,
/// `verdict` the last token's verification.
pub fn after_cycle(
    recorder: &mut EventRecorder,
    client: &KubeClient,
    config: &Config,
    verdict: Option<&Verdict>,
    failures: &[(&str, &str)],
) {
    if config.flags.dry_run {
        return;
    }
    for (namespace, error) in failures {
        recorder.warn(
            client,
            namespace,
            REFRESH_FAILED,
            "Refresh",
            &format!("refreshing {} failed: {error}", config.secret_name),
        );
    }
    let Some(verdict) = verdict.filter(|v| !v.refused().is_empty()) else {
        return;
    };
    let then = if config.verify == VerifyMode::Enforce {
        "not written (ECR_VERIFY=enforce): the secret keeps its previous credentials"
    } else {
        "written anyway (ECR_VERIFY=warn): pulls from that registry will fail"
    };
    let note = format!("{}; {then}", verdict.refusal_summary());
    match namespaces::list_active(client, config.namespace_selector.as_deref()) {
        Ok(list) => {
            for namespace in list.names.iter().filter(|n| config.selection.wants(n)) {
                recorder.warn(client, namespace, VERIFICATION_FAILED, "Verify", &note);
            }
        }
        Err(e) => log::debug!("no VerificationFailed Events: listing namespaces failed: {e}"),
    }
}
