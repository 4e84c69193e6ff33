//! Warning Events against the fake API server (which validates them as the kube-apiserver
//! does): a namespace whose refresh fails gets one `RefreshFailed` Event regarding its secret,
//! with no credential in the note; the recorder posts at most one per namespace and reason per
//! hour; an Event the server refuses changes nothing else; the fake answers 422 on a missing
//! field and 404 in a missing namespace.

mod common;

use std::time::Duration;

use ecrupdater::config::{KubeAccess, Timeouts};
use ecrupdater::kube::KubeClient;
use ecrupdater::kube::client::Cap;
use ecrupdater::kube::events::{EventRecorder, REFRESH_FAILED, VERIFICATION_FAILED, event};
use ecrupdater_testkit::FakeKube;
use ecrupdater_testkit::kube::{Fault, FaultKind};

use common::fake::*;
use common::*;

const SECRET: &str = "ecr-pull";
const PASSWORD: &str = "events-test-password-0123456789";

fn client(kube: &FakeKube) -> KubeClient {
    KubeClient::new(
        &KubeAccess::Endpoint {
            url: kube.base_url(),
            explicit: true,
        },
        Timeouts::default(),
    )
    .expect("client")
}

fn once(kube: &FakeKube) -> Finished {
    once_with(kube, &[])
}

/// `--once` with `extra` variables added.
fn once_with(kube: &FakeKube, extra: &[(&str, &str)]) -> Finished {
    let (ecr, _) = fake_ecr_with(PASSWORD);
    let (kube_url, ecr_url) = (kube.base_url(), ecr.base_url());
    let mut vars = vec![
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIAEVENTSTEST"),
        ("AWS_SECRET_ACCESS_KEY", "events-test-secret-key"),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
        ("ECR_CREATE_MISSING", "true"),
    ];
    vars.extend_from_slice(extra);
    run(&vars, &["--once"], Duration::from_secs(30))
}

fn forbid_secret_of(kube: &FakeKube, namespace: &str) {
    let mut fault = Fault::new(
        None,
        &format!("/api/v1/namespaces/{namespace}/secrets"),
        FaultKind::Status(403, "Forbidden".into()),
    );
    fault.times = 10;
    kube.inject(fault);
}

#[test]
fn a_failed_namespace_gets_one_refresh_failed_event_regarding_its_secret() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("good", &[]);
    kube.add_namespace("broken", &[]);
    forbid_secret_of(&kube, "broken");
    let run = once(&kube);
    assert_eq!(run.status, 1, "{}", run.output());
    let events = kube.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["metadata"]["namespace"], "broken");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["reason"], REFRESH_FAILED);
    assert_eq!(e["reportingController"], "k8s-ecrupdater");
    assert_eq!(
        e["regarding"],
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "namespace": "broken", "name": SECRET})
    );
    let note = e["note"].as_str().expect("note");
    assert!(
        note.contains("refreshing ecr-pull failed") && note.contains("403"),
        "{note}"
    );
    assert_no_credentials(&e.to_string(), &[PASSWORD, "events-test-secret-key"]);
    assert!(
        kube.secret("good", SECRET).is_some(),
        "the other namespace is served"
    );
}

#[test]
fn a_refused_event_changes_nothing_else() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("good", &[]);
    kube.add_namespace("broken", &[]);
    kube.add_namespace("broken-too", &[]);
    forbid_secret_of(&kube, "broken");
    forbid_secret_of(&kube, "broken-too");
    let mut refuse = Fault::new(
        Some("POST"),
        "/apis/events.k8s.io/",
        FaultKind::Status(403, "Forbidden".into()),
    );
    refuse.times = 10;
    kube.inject(refuse);
    let run = once_with(&kube, &[("LOG_LEVEL", "DEBUG")]);
    assert_eq!(
        run.status,
        1,
        "only the namespaces' own failures count:\n{}",
        run.output()
    );
    assert!(kube.events().is_empty());
    // Said once (at debug), with what to grant, however many Events are refused.
    let said: Vec<&str> = run
        .stderr
        .lines()
        .chain(run.stdout.lines())
        .filter(|l| l.contains("was refused"))
        .collect();
    assert_eq!(said.len(), 1, "{}", run.output());
    assert!(
        said[0].starts_with("DEBUG") && said[0].contains("grant create on events.k8s.io events"),
        "{}",
        said[0]
    );
    assert!(kube.secret("good", SECRET).is_some());
    let out = run.output();
    assert!(
        !out.lines()
            .any(|l| l.starts_with("ERROR") && l.contains("Event")),
        "a refused Event is no error:\n{out}"
    );
}

#[test]
fn at_most_one_event_per_namespace_and_reason_per_hour() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("a", &[]);
    kube.add_namespace("b", &[]);
    let client = client(&kube);
    let mut recorder = EventRecorder::new(SECRET);
    assert!(recorder.warn(&client, "a", REFRESH_FAILED, "Refresh", "first"));
    assert!(!recorder.warn(&client, "a", REFRESH_FAILED, "Refresh", "again"));
    assert!(recorder.warn(&client, "a", VERIFICATION_FAILED, "Verify", "other reason"));
    assert!(recorder.warn(&client, "b", REFRESH_FAILED, "Refresh", "other namespace"));
    for _ in 0..20 {
        recorder.warn(&client, "a", REFRESH_FAILED, "Refresh", "storm");
    }
    let notes: Vec<String> = kube
        .events()
        .iter()
        .map(|e| {
            format!(
                "{}/{}/{}",
                e["metadata"]["namespace"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or(""),
                e["note"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        notes,
        [
            "a/RefreshFailed/first",
            "a/VerificationFailed/other reason",
            "b/RefreshFailed/other namespace"
        ]
    );
}

#[test]
fn the_fake_validates_events_as_the_api_server() {
    // The test lists Events itself, which the daemon never does: no RBAC here.
    let kube = FakeKube::start();
    kube.add_namespace("a", &[]);
    let client = client(&kube);
    let path = "/apis/events.k8s.io/v1/namespaces/a/events";
    let good = event("a", SECRET, REFRESH_FAILED, "Refresh", "note");
    let created = client
        .post::<serde_json::Value>(path, &good, Cap::Object)
        .expect("a good event is created");
    assert!(
        created["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("ecr-pull.") && n.len() > "ecr-pull.".len()),
        "{created}"
    );
    for field in [
        "reason",
        "eventTime",
        "regarding",
        "action",
        "reportingController",
    ] {
        let mut bad = good.clone();
        bad.as_object_mut().expect("object").remove(field);
        let e = client
            .post::<serde_json::Value>(path, &bad, Cap::Object)
            .expect_err(field);
        assert_eq!(e.code(), Some(422), "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let mut long = good.clone();
    long["note"] = serde_json::json!("n".repeat(1025));
    assert_eq!(
        client
            .post::<serde_json::Value>(path, &long, Cap::Object)
            .expect_err("long")
            .code(),
        Some(422)
    );
    let elsewhere = event("gone", SECRET, REFRESH_FAILED, "Refresh", "note");
    let e = client
        .post::<serde_json::Value>(
            "/apis/events.k8s.io/v1/namespaces/gone/events",
            &elsewhere,
            Cap::Object,
        )
        .expect_err("missing namespace");
    assert_eq!(e.code(), Some(404), "{e}");
    let list = client
        .get::<serde_json::Value>(path, Cap::ListPage)
        .expect("list");
    assert_eq!(list["kind"], "EventList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}
