//! FakeKube's own tests over real sockets: each checks one point of
//! shared/reference/kubernetes-api.md (status codes, Status bodies, selectors, paging, validation,
//! patch types, watch) or of the testkit's controls (faults, auth, recording, TLS, admin, binary).

mod common;

use common::*;
use ecrupdater_testkit::{FakeKube, Fault, FaultKind, Mutation};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn kube_with(namespaces: &[&str]) -> (FakeKube, ureq::Agent) {
    let k = FakeKube::start();
    for n in namespaces {
        k.add_namespace(n, &[]);
    }
    (k, agent())
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn docker_secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
           "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": b64(r#"{"auths":{"x.dkr.ecr.us-east-1.amazonaws.com":{"username":"AWS","password":"p","auth":"QVdTOnA="}}}"#)}})
}

fn secrets_url(k: &FakeKube, ns: &str) -> String {
    format!("{}/api/v1/namespaces/{ns}/secrets", k.base_url())
}

/// Walks every page; returns (names, number of requests, number of empty pages).
fn walk(k: &FakeKube, a: &ureq::Agent, path: &str, limit: usize) -> (Vec<String>, usize, usize) {
    let mut all = Vec::new();
    let mut cont = String::new();
    let mut requests = 0;
    let mut empty = 0;
    loop {
        let mut url = format!("{}{path}?limit={limit}", k.base_url());
        if !cont.is_empty() {
            url.push_str(&format!("&continue={}", enc(&cont)));
        }
        let r = get(a, &url);
        assert_eq!(r.status, 200, "{}", r.text);
        requests += 1;
        let v = r.json();
        let page = names(&v);
        if page.is_empty() {
            empty += 1;
        }
        assert!(page.len() <= limit);
        all.extend(page);
        cont = v["metadata"]["continue"].as_str().unwrap_or("").to_string();
        if cont.is_empty() {
            return (all, requests, empty);
        }
        assert!(requests < 100, "paging does not end");
    }
}

#[test]
fn list_shape_and_pagination() {
    let ns: Vec<String> = (0..7).map(|i| format!("team-{i:02}")).collect();
    let refs: Vec<&str> = ns.iter().map(String::as_str).collect();
    let (k, a) = kube_with(&refs);
    let r = get(&a, &format!("{}/api/v1/namespaces", k.base_url()));
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["kind"], "NamespaceList");
    assert_eq!(v["apiVersion"], "v1");
    assert!(v["metadata"]["resourceVersion"].is_string());
    assert!(
        v["metadata"].get("continue").is_none(),
        "no paging without limit"
    );
    assert_eq!(names(&v), ns);
    let item = &v["items"][0];
    assert!(item.get("kind").is_none() && item.get("apiVersion").is_none());
    assert_eq!(item["status"]["phase"], "Active");
    assert_eq!(
        item["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-00"
    );
    assert!(item["metadata"]["uid"].is_string());
    assert!(item["metadata"]["creationTimestamp"].is_string());

    let (all, reqs, _) = walk(&k, &a, "/api/v1/namespaces", 3);
    assert_eq!(all, ns);
    assert_eq!(reqs, 3);

    // An empty list is `[]`, never null.
    let r = get(&a, &secrets_url(&k, "team-00"));
    assert_eq!(r.json()["items"], json!([]));
    assert_eq!(r.json()["kind"], "SecretList");
    // Listing in a namespace that does not exist is an empty list too.
    assert_eq!(get(&a, &secrets_url(&k, "nope")).json()["items"], json!([]));
}

#[test]
fn pagination_quirks_empty_pages_max_page_ignore_limit() {
    let ns: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = ns.iter().map(String::as_str).collect();
    let (k, a) = kube_with(&refs);

    k.set_empty_pages(true);
    let (all, reqs, empty) = walk(&k, &a, "/api/v1/namespaces", 2);
    assert_eq!(all, ns);
    assert!(empty >= 3, "every other page is empty ({empty} of {reqs})");
    k.set_empty_pages(false);

    k.set_max_page_size(Some(2));
    let r = get(&a, &format!("{}/api/v1/namespaces?limit=100", k.base_url()));
    let v = r.json();
    assert_eq!(names(&v).len(), 2);
    assert!(!v["metadata"]["continue"].as_str().unwrap().is_empty());
    let (all, _, _) = walk(&k, &a, "/api/v1/namespaces", 100);
    assert_eq!(all, ns);
    // Without limit the server never paginates.
    assert_eq!(
        names(&get(&a, &format!("{}/api/v1/namespaces", k.base_url())).json()).len(),
        5
    );
    k.set_max_page_size(None);

    k.set_ignore_limit(true);
    let v = get(&a, &format!("{}/api/v1/namespaces?limit=1", k.base_url())).json();
    assert_eq!(names(&v).len(), 5);
    assert!(v["metadata"].get("continue").is_none());
}

#[test]
fn expired_continue_is_410_and_restart_works() {
    let (k, a) = kube_with(&["a", "b", "c"]);
    let v = get(&a, &format!("{}/api/v1/namespaces?limit=1", k.base_url())).json();
    let tok = v["metadata"]["continue"].as_str().unwrap().to_string();
    k.expire_continue_tokens();
    let r = get(
        &a,
        &format!(
            "{}/api/v1/namespaces?limit=1&continue={}",
            k.base_url(),
            enc(&tok)
        ),
    );
    assert_eq!(r.status, 410);
    let s = r.json();
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["status"], "Failure");
    assert_eq!(s["reason"], "Expired");
    assert_eq!(s["code"], 410);
    assert!(s["message"].as_str().unwrap().starts_with(
        "The provided continue parameter is too old to display a consistent list result."
    ));
    // A fresh list works.
    let (all, _, _) = walk(&k, &a, "/api/v1/namespaces", 1);
    assert_eq!(all, ["a", "b", "c"]);

    // Compaction expires older tokens too.
    let v = get(&a, &format!("{}/api/v1/namespaces?limit=1", k.base_url())).json();
    let tok = v["metadata"]["continue"].as_str().unwrap().to_string();
    k.add_namespace("d", &[]);
    k.compact();
    let r = get(
        &a,
        &format!(
            "{}/api/v1/namespaces?limit=1&continue={}",
            k.base_url(),
            enc(&tok)
        ),
    );
    assert_eq!(r.status, 410);
    // A garbage token is a 400.
    let r = get(
        &a,
        &format!(
            "{}/api/v1/namespaces?limit=1&continue=garbage!",
            k.base_url()
        ),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "BadRequest");
}

#[test]
fn field_selectors() {
    let (k, a) = kube_with(&["a", "b", "c"]);
    k.set_namespace_terminating("b");
    let base = k.base_url();
    let q = |sel: &str| {
        get(
            &a,
            &format!("{base}/api/v1/namespaces?fieldSelector={}", enc(sel)),
        )
    };
    assert_eq!(names(&q("metadata.name=b").json()), ["b"]);
    assert_eq!(names(&q("metadata.name==b").json()), ["b"]);
    assert_eq!(names(&q("metadata.name!=b").json()), ["a", "c"]);
    assert_eq!(names(&q("status.phase=Active").json()), ["a", "c"]);
    assert_eq!(
        names(&q("status.phase=Terminating,metadata.name=b").json()),
        ["b"]
    );
    let r = q("metadata.namespace=a");
    assert_eq!(r.status, 400);
    let s = r.json();
    assert_eq!(
        s["message"],
        "field label not supported: metadata.namespace"
    );
    assert_eq!(s["reason"], "BadRequest");
    assert_eq!(s["code"], 400);
    assert_eq!(
        q("spec.finalizers=x").json()["message"],
        "field label not supported: spec.finalizers"
    );

    k.put_secret("a", docker_secret("pull"));
    k.put_secret(
        "a",
        json!({"metadata": {"name": "other"}, "data": {"k": b64("v")}}),
    );
    k.put_secret("c", docker_secret("pull"));
    let s = |path: &str, sel: &str| get(&a, &format!("{base}{path}?fieldSelector={}", enc(sel)));
    let v = s("/api/v1/secrets", "type=kubernetes.io/dockerconfigjson").json();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let v = s("/api/v1/secrets", "metadata.namespace=a,metadata.name=pull").json();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["metadata"]["namespace"], "a");
    let v = s("/api/v1/namespaces/a/secrets", "type=Opaque").json();
    assert_eq!(names(&v), ["other"]);
    let v = s("/api/v1/namespaces/a/secrets", "metadata.name=pull").json();
    assert_eq!(names(&v), ["pull"]);
    assert_eq!(
        s("/api/v1/namespaces/a/secrets", "status.phase=x").json()["message"],
        "field label not supported: status.phase"
    );
    assert_eq!(
        s("/api/v1/namespaces/a/serviceaccounts", "type=x").json()["message"],
        "field label not supported: type"
    );
}

#[test]
fn label_selectors_all_forms() {
    let k = FakeKube::start();
    let a = agent();
    k.add_namespace("prod", &[("env", "prod"), ("team", "a")]);
    k.add_namespace("dev", &[("env", "dev")]);
    k.add_namespace("bare", &[]);
    let q = |sel: &str| {
        let r = get(
            &a,
            &format!(
                "{}/api/v1/namespaces?labelSelector={}",
                k.base_url(),
                enc(sel)
            ),
        );
        assert_eq!(r.status, 200, "{sel}: {}", r.text);
        names(&r.json())
    };
    assert_eq!(q("env=prod"), ["prod"]);
    assert_eq!(q("env==prod"), ["prod"]);
    assert_eq!(q("env!=prod"), ["bare", "dev"]);
    assert_eq!(q("env in (prod,dev)"), ["dev", "prod"]);
    assert_eq!(q("env notin (prod)"), ["bare", "dev"]);
    assert_eq!(q("team"), ["prod"]);
    assert_eq!(q("!team"), ["bare", "dev"]);
    assert_eq!(q("env,!team"), ["dev"]);
    assert_eq!(q("kubernetes.io/metadata.name=bare"), ["bare"]);
    let r = get(
        &a,
        &format!(
            "{}/api/v1/namespaces?labelSelector={}",
            k.base_url(),
            enc("env in (")
        ),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "BadRequest");
}

#[test]
fn create_status_codes() {
    let (k, a) = kube_with(&["ns1", "dying"]);
    let url = secrets_url(&k, "ns1");

    let r = post_json(&a, &url, &docker_secret("pull"));
    assert_eq!(r.status, 201, "{}", r.text);
    let v = r.json();
    assert_eq!(v["kind"], "Secret");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["metadata"]["namespace"], "ns1");
    assert!(v["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(
        v["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let r = post_json(&a, &url, &docker_secret("pull"));
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "secrets \"pull\" already exists", "reason": "AlreadyExists",
               "details": {"name": "pull", "kind": "secrets"}, "code": 409})
    );

    let r = post_json(&a, &secrets_url(&k, "missing"), &docker_secret("pull"));
    assert_eq!(r.status, 404);
    let s = r.json();
    assert_eq!(s["message"], "namespaces \"missing\" not found");
    assert_eq!(s["reason"], "NotFound");
    assert_eq!(
        s["details"],
        json!({"name": "missing", "kind": "namespaces"})
    );

    k.set_namespace_terminating("dying");
    let r = post_json(&a, &secrets_url(&k, "dying"), &docker_secret("pull"));
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "secrets \"pull\" is forbidden: unable to create new content in namespace dying because it is being terminated",
               "reason": "Forbidden",
               "details": {"name": "pull", "kind": "secrets", "causes": [
                   {"reason": "NamespaceTerminating", "message": "namespace dying is being terminated", "field": "metadata.namespace"}]},
               "code": 403})
    );

    // stringData is merged into data; empty type becomes Opaque.
    let r = post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "sd"}, "type": "", "data": {"a": b64("1")}, "stringData": {"b": "2"}}),
    );
    assert_eq!(r.status, 201);
    let v = r.json();
    assert_eq!(v["type"], "Opaque");
    assert_eq!(v["data"], json!({"a": b64("1"), "b": b64("2")}));
    assert!(v.get("stringData").is_none());

    // Wrong content type for a write.
    let r = send(
        &a,
        "POST",
        &url,
        Some("text/plain"),
        Some(&docker_secret("x").to_string()),
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["reason"], "UnsupportedMediaType");
    // Not JSON at all.
    let r = send(&a, "POST", &url, Some("application/json"), Some("{nope"));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "BadRequest");
    // Namespace in the body differs from the URL.
    let mut s = docker_secret("x");
    s["metadata"]["namespace"] = json!("other");
    let r = post_json(&a, &url, &s);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    // A resourceVersion on a create is refused by the storage layer (a reason-less 500).
    let mut s = docker_secret("with-rv");
    s["metadata"]["resourceVersion"] = json!("12");
    let r = post_json(&a, &url, &s);
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json()["message"],
        "resourceVersion should not be set on objects to be created"
    );
    assert!(r.json().get("reason").is_none());
}

fn invalid(r: &Resp) -> (String, Vec<(String, String, String)>) {
    assert_eq!(r.status, 422, "{}", r.text);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["code"], 422);
    assert_eq!(s["details"]["kind"], "Secret");
    let causes = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["reason"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (s["message"].as_str().unwrap().to_string(), causes)
}

#[test]
fn create_validation_422_and_400() {
    let (k, a) = kube_with(&["ns"]);
    let url = secrets_url(&k, "ns");

    let (msg, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "Bad_Name"}}),
    ));
    assert!(msg.starts_with("Secret \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{msg}");
    assert_eq!(c[0].0, "FieldValueInvalid");
    assert_eq!(c[0].1, "metadata.name");

    let (_, c) = invalid(&post_json(&a, &url, &json!({"metadata": {}})));
    assert_eq!(
        c,
        [(
            "FieldValueRequired".into(),
            "metadata.name".into(),
            "Required value: name or generateName is required".into()
        )]
    );

    let (_, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "data": {"bad key": b64("x"), "..": b64("y")}}),
    ));
    let fields: Vec<&str> = c.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(fields, ["data[..]", "data[bad key]"]);
    assert_eq!(c[0].2, "Invalid value: \"..\": must not be '..'");

    let (msg, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {"x": b64("{}")}}),
    ));
    assert_eq!(
        msg,
        "Secret \"s\" is invalid: data[.dockerconfigjson]: Required value"
    );
    assert_eq!(c[0].0, "FieldValueRequired");
    let (_, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockercfg", "data": {".dockerconfigjson": b64("{}")}}),
    ));
    assert_eq!(c[0].1, "data[.dockercfg]");

    let (_, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("[\"not an object\"]")}}),
    ));
    assert_eq!(c[0].0, "FieldValueInvalid");
    assert_eq!(c[0].1, "data[.dockerconfigjson]");
    assert!(
        c[0].2.starts_with(
            "Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array"
        ),
        "{}",
        c[0].2
    );
    let (_, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "not json"}}),
    ));
    assert_eq!(c[0].1, "data[.dockerconfigjson]");

    let big = "a".repeat(1024 * 1024 + 1);
    let (_, c) = invalid(&post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "stringData": {"big": big}}),
    ));
    assert_eq!(
        c,
        [(
            "FieldValueTooLong".into(),
            "data".into(),
            "Too long: may not be more than 1048576 bytes".into()
        )]
    );

    let r = post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "s"}, "data": {"k": "***not base64***"}}),
    );
    assert_eq!(r.status, 400);
    let s = r.json();
    assert_eq!(s["reason"], "BadRequest");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("illegal base64 data at input byte")
    );
    assert!(k.secrets().is_empty(), "nothing was stored");
}

#[test]
fn put_semantics() {
    let (k, a) = kube_with(&["ns"]);
    let url = secrets_url(&k, "ns");
    let r = put_json(&a, &format!("{url}/pull"), &docker_secret("pull"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "secrets \"pull\" not found");

    let created = post_json(&a, &url, &docker_secret("pull")).json();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // No-op PUT without resourceVersion: allowed, nothing changes.
    let r = put_json(&a, &format!("{url}/pull"), &docker_secret("pull"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(r.json()["metadata"]["uid"], created["metadata"]["uid"]);

    let mut changed = docker_secret("pull");
    changed["data"][".dockerconfigjson"] = json!(b64(r#"{"auths":{}}"#));
    changed["metadata"]["resourceVersion"] = json!(rv);
    let r = put_json(&a, &format!("{url}/pull"), &changed);
    assert_eq!(r.status, 200);
    let new_rv = r.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_rv, rv);
    // Same (now stale) resourceVersion again: 409.
    let r = put_json(&a, &format!("{url}/pull"), &changed);
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on secrets \"pull\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(r.json()["reason"], "Conflict");

    // type is immutable.
    let mut opaque = docker_secret("pull");
    opaque["type"] = json!("Opaque");
    let (msg, c) = invalid(&put_json(&a, &format!("{url}/pull"), &opaque));
    assert_eq!(
        c[0],
        (
            "FieldValueInvalid".into(),
            "type".into(),
            "Invalid value: \"Opaque\": field is immutable".into()
        )
    );
    assert!(msg.contains("field is immutable"));

    // immutable secrets refuse data changes.
    let r = post_json(
        &a,
        &url,
        &json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"k": b64("1")}}),
    );
    assert_eq!(r.status, 201);
    let (_, c) = invalid(&put_json(
        &a,
        &format!("{url}/frozen"),
        &json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"k": b64("2")}}),
    ));
    assert_eq!(c[0].1, "data");
    assert_eq!(c[0].0, "FieldValueForbidden");
    let r = patch(
        &a,
        &format!("{url}/frozen"),
        "application/merge-patch+json",
        &json!({"data": {"k": b64("3")}}),
    );
    assert_eq!(r.status, 422);

    // Name in the body must match the URL.
    let r = put_json(&a, &format!("{url}/pull"), &docker_secret("other"));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "the name of the object (other) does not match the name on the URL (pull)"
    );
}

#[test]
fn patch_semantics() {
    let (k, a) = kube_with(&["ns"]);
    let url = secrets_url(&k, "ns");
    let created = post_json(&a, &url, &docker_secret("pull")).json();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let one = format!("{url}/pull");

    // Merge patch with the current resourceVersion applies; with a stale one, 409.
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"metadata": {"resourceVersion": rv, "labels": {"managed": "yes"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["metadata"]["labels"]["managed"], "yes");
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"metadata": {"resourceVersion": rv}, "data": {"x": b64("1")}}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Operation cannot be fulfilled on secrets \"pull\": the object has been modified; please apply your changes to the latest version and try again",
               "reason": "Conflict", "details": {"name": "pull", "kind": "secrets"}, "code": 409})
    );
    // Without resourceVersion a patch always applies.
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"data": {"x": b64("1")}}),
    );
    assert_eq!(r.status, 200);
    // A PATCH carries no preconditions: another uid in the patched object is ValidateObjectMetaUpdate's
    // 422 "field is immutable" (merge, strategic and JSON patch alike), and nothing is written.
    let before = k.secret("ns", "pull").unwrap();
    for (ct, body) in [
        (
            "application/merge-patch+json",
            json!({"metadata": {"uid": "not-the-uid"}, "data": {"x": b64("2")}}),
        ),
        (
            "application/strategic-merge-patch+json",
            json!({"metadata": {"uid": "not-the-uid"}, "data": {"x": b64("2")}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/metadata/uid", "value": "not-the-uid"},
                   {"op": "add", "path": "/data/x", "value": b64("2")}]),
        ),
    ] {
        let r = patch(&a, &one, ct, &body);
        assert_eq!(r.status, 422, "{ct}: {}", r.text);
        assert_eq!(
            r.json(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Secret \"pull\" is invalid: metadata.uid: Invalid value: \"not-the-uid\": field is immutable",
                   "reason": "Invalid",
                   "details": {"name": "pull", "kind": "Secret", "causes": [
                       {"reason": "FieldValueInvalid", "message": "Invalid value: \"not-the-uid\": field is immutable",
                        "field": "metadata.uid"}]},
                   "code": 422}),
            "{ct}"
        );
    }
    assert_eq!(k.secret("ns", "pull").unwrap(), before, "nothing written");
    // A stale resourceVersion is checked before validation: 409, even with a stale uid.
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"metadata": {"uid": "not-the-uid", "resourceVersion": rv}}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["reason"], "Conflict");
    // The right uid, or none at all, patches.
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"metadata": {"uid": uid}}),
    );
    assert_eq!(r.status, 200);
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"metadata": {"uid": null}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["metadata"]["uid"], uid.as_str());
    // A PUT whose body carries a stale uid is a precondition: 409.
    let mut stale = r.json();
    stale["metadata"]["uid"] = json!("not-the-uid");
    stale["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let r = put_json(&a, &one, &stale);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["reason"], "Conflict");
    let m = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        m.starts_with("Operation cannot be fulfilled on secrets \"pull\": ")
            && m.contains(&format!(
                "Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
            )),
        "{m}"
    );

    // Strategic merge patch merges the data map; stringData lands in data.
    let r = patch(
        &a,
        &one,
        "application/strategic-merge-patch+json",
        &json!({"stringData": {"y": "2"}}),
    );
    assert_eq!(r.status, 200);
    let d = &r.json()["data"];
    assert!(d.get(".dockerconfigjson").is_some() && d["x"] == b64("1") && d["y"] == b64("2"));
    // Validation after patching.
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"data": {".dockerconfigjson": null}}),
    );
    let (_, c) = invalid(&r);
    assert_eq!(c[0].1, "data[.dockerconfigjson]");
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"type": "Opaque"}),
    );
    assert_eq!(r.status, 422);

    // Content types.
    for ct in ["application/json", "text/plain", "application/yaml"] {
        let r = patch(&a, &one, ct, &json!({}));
        assert_eq!(r.status, 415, "{ct}");
        assert_eq!(r.json()["reason"], "UnsupportedMediaType");
    }
    // Non-apply PATCH on a missing object: 404.
    for ct in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
    ] {
        let body = if ct.contains("json-patch") {
            json!([])
        } else {
            json!({})
        };
        let r = patch(&a, &format!("{url}/missing"), ct, &body);
        assert_eq!(r.status, 404, "{ct}");
        assert_eq!(r.json()["message"], "secrets \"missing\" not found");
        assert_eq!(r.json()["details"]["kind"], "secrets");
    }
    // Apply: needs fieldManager; creates when missing; force only with apply.
    let ap = docker_secret("applied");
    let r = patch(
        &a,
        &format!("{url}/applied"),
        "application/apply-patch+yaml",
        &ap,
    );
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("fieldManager: Required value")
    );
    let r = patch(
        &a,
        &format!("{url}/applied?fieldManager=ecrupdater&force=true"),
        "application/apply-patch+yaml",
        &ap,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = patch(
        &a,
        &format!("{url}/applied?fieldManager=ecrupdater"),
        "application/apply-patch+yaml",
        &ap,
    );
    assert_eq!(r.status, 200);
    let r = patch(
        &a,
        &format!("{one}?force=true"),
        "application/merge-patch+json",
        &json!({}),
    );
    assert_eq!(r.status, 422);

    // Patches in a terminating namespace still pass; creates do not.
    k.set_namespace_terminating("ns");
    let r = patch(
        &a,
        &one,
        "application/merge-patch+json",
        &json!({"data": {"z": b64("3")}}),
    );
    assert_eq!(r.status, 200);
    let mut put = r.json();
    put["data"]["w"] = json!(b64("4"));
    assert_eq!(put_json(&a, &one, &put).status, 200);
    assert_eq!(post_json(&a, &url, &docker_secret("new")).status, 403);
    let r = patch(
        &a,
        &format!("{url}/new2?fieldManager=m"),
        "application/apply-patch+yaml",
        &docker_secret("new2"),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn json_patch_and_service_accounts() {
    let (k, a) = kube_with(&["ns"]);
    k.put_service_account(
        "ns",
        json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "other"}]}),
    );
    let url = format!(
        "{}/api/v1/namespaces/ns/serviceaccounts/default",
        k.base_url()
    );
    let sa = get(&a, &url).json();
    assert_eq!(sa["kind"], "ServiceAccount");

    // add with a test guard
    let ops = json!([
        {"op": "test", "path": "/imagePullSecrets", "value": [{"name": "other"}]},
        {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "ecr"}}
    ]);
    let r = patch(&a, &url, "application/json-patch+json", &ops);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["imagePullSecrets"],
        json!([{"name": "other"}, {"name": "ecr"}])
    );
    // The same guard now fails: 422.
    let r = patch(&a, &url, "application/json-patch+json", &ops);
    assert_eq!(r.status, 422);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert!(
        s["details"]["causes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("test failed")
    );
    // A malformed JSON patch document: 400.
    let r = patch(
        &a,
        &url,
        "application/json-patch+json",
        &json!({"op": "add"}),
    );
    assert_eq!(r.status, 400);

    // Strategic merge patch replaces the whole imagePullSecrets list (no merge key).
    let r = patch(
        &a,
        &url,
        "application/strategic-merge-patch+json",
        &json!({"imagePullSecrets": [{"name": "only"}]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["imagePullSecrets"], json!([{"name": "only"}]));
    // Duplicates and empty names are accepted.
    let r = patch(
        &a,
        &url,
        "application/merge-patch+json",
        &json!({"imagePullSecrets": [{"name": "only"}, {"name": "only"}, {}]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        k.service_account("ns", "default").unwrap()["imagePullSecrets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // PUT with resourceVersion: optimistic concurrency.
    let cur = get(&a, &url).json();
    let mut upd = cur.clone();
    upd["imagePullSecrets"] = json!([{"name": "a"}]);
    assert_eq!(put_json(&a, &url, &upd).status, 200);
    assert_eq!(put_json(&a, &url, &upd).status, 409);

    // Missing: 404 for GET and PATCH.
    let missing = format!("{}/api/v1/namespaces/ns/serviceaccounts/nope", k.base_url());
    let r = get(&a, &missing);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "serviceaccounts \"nope\" not found");
    assert_eq!(
        patch(&a, &missing, "application/merge-patch+json", &json!({})).status,
        404
    );
    // Create + list.
    let r = post_json(
        &a,
        &format!("{}/api/v1/namespaces/ns/serviceaccounts", k.base_url()),
        &json!({"metadata": {"name": "builder"}}),
    );
    assert_eq!(r.status, 201);
    let l = get(
        &a,
        &format!("{}/api/v1/namespaces/ns/serviceaccounts", k.base_url()),
    )
    .json();
    assert_eq!(l["kind"], "ServiceAccountList");
    assert_eq!(names(&l), ["builder", "default"]);
}

#[test]
fn get_delete_unknown_paths_and_methods() {
    let (k, a) = kube_with(&["ns"]);
    let base = k.base_url();
    k.put_secret("ns", docker_secret("pull"));
    let r = get(&a, &format!("{base}/api/v1/namespaces/ns/secrets/pull"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "Secret");
    let r = get(&a, &format!("{base}/api/v1/namespaces/ns"));
    assert_eq!(r.json()["kind"], "Namespace");
    let r = get(&a, &format!("{base}/api/v1/namespaces/zzz"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "namespaces \"zzz\" not found");

    let r = send(
        &a,
        "DELETE",
        &format!("{base}/api/v1/namespaces/ns/secrets/pull"),
        None,
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "Success");
    assert!(k.secret("ns", "pull").is_none());
    let r = send(
        &a,
        "DELETE",
        &format!("{base}/api/v1/namespaces/ns/secrets/pull"),
        None,
        None,
    );
    assert_eq!(r.status, 404);

    let r = get(&a, &format!("{base}/api/v1/configmaps"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "NotFound");
    assert_eq!(
        get(&a, &format!("{base}/apis/apps/v1/deployments")).status,
        404
    );
    let r = post_json(&a, &format!("{base}/api/v1/secrets"), &docker_secret("x"));
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["reason"], "MethodNotAllowed");
    assert_eq!(
        send(
            &a,
            "PUT",
            &format!("{base}/api/v1/namespaces/ns/secrets"),
            Some("application/json"),
            Some("{}")
        )
        .status,
        405
    );
    assert_eq!(get(&a, &format!("{base}/version")).json()["major"], "1");
}

#[test]
fn bearer_token_and_recording() {
    let (k, a) = kube_with(&["ns"]);
    k.require_bearer_token(Some("s3cret"));
    let url = format!("{}/api/v1/namespaces?limit=5", k.base_url());
    let r = get(&a, &url);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    let r = into_resp(a.get(&url).header("Authorization", "Bearer wrong").call());
    assert_eq!(r.status, 401);
    let r = into_resp(a.get(&url).header("Authorization", "Bearer s3cret").call());
    assert_eq!(r.status, 200);
    let r = into_resp(
        a.post(&secrets_url(&k, "ns"))
            .header("Authorization", "Bearer s3cret")
            .header("Content-Type", "application/json")
            .send(docker_secret("p").to_string()),
    );
    assert_eq!(r.status, 201);

    let reqs = k.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/api/v1/namespaces");
    assert_eq!(reqs[0].query, "limit=5");
    assert_eq!(reqs[0].authorization, None);
    assert_eq!(reqs[2].authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(reqs[3].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        reqs[3].host.as_deref(),
        Some(format!("127.0.0.1:{}", k.port()).as_str())
    );
    assert_eq!(reqs[3].json().unwrap()["metadata"]["name"], "p");
    k.clear_requests();
    assert!(k.requests().is_empty());
}

#[test]
fn faults() {
    let (k, a) = kube_with(&["ns"]);
    let base = k.base_url();
    k.inject(Fault::new(
        Some("GET"),
        "/api/v1/namespaces",
        FaultKind::PlainTooManyRequests(7),
    ));
    // A POST does not match the GET fault.
    assert_eq!(
        post_json(&a, &secrets_url(&k, "ns"), &docker_secret("p")).status,
        201
    );
    let r = get(&a, &format!("{base}/api/v1/namespaces"));
    assert_eq!(r.status, 429);
    assert!(r.content_type.starts_with("text/plain"));
    assert_eq!(r.text, "Too many requests, please try again later.\n");
    assert_eq!(r.header("Retry-After"), Some("7"));
    assert_eq!(get(&a, &format!("{base}/api/v1/namespaces")).status, 200);

    k.inject(
        Fault::new(
            None,
            "/api/v1/namespaces/ns/secrets",
            FaultKind::Status(500, "InternalError".into()),
        )
        .times(2),
    );
    for _ in 0..2 {
        let r = get(&a, &secrets_url(&k, "ns"));
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["reason"], "InternalError");
        assert_eq!(r.json()["kind"], "Status");
    }
    assert_eq!(get(&a, &secrets_url(&k, "ns")).status, 200);

    k.inject(Fault::new(
        Some("PATCH"),
        "/api/v1/namespaces/ns/secrets/p",
        FaultKind::Conflict,
    ));
    let r = patch(
        &a,
        &format!("{}/p", secrets_url(&k, "ns")),
        "application/merge-patch+json",
        &json!({}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on secrets \"p\": the object has been modified; please apply your changes to the latest version and try again"
    );

    k.inject(Fault::new(
        Some("GET"),
        "/api/v1/namespaces",
        FaultKind::Gone,
    ));
    let r = get(&a, &format!("{base}/api/v1/namespaces?limit=1"));
    assert_eq!(r.status, 410);
    assert_eq!(r.json()["reason"], "Expired");

    k.inject(Fault::new(
        Some("GET"),
        "/api/v1/namespaces",
        FaultKind::Status(429, "TooManyRequests".into()),
    ));
    let r = get(&a, &format!("{base}/api/v1/namespaces"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert_eq!(r.json()["details"]["retryAfterSeconds"], 1);

    k.inject(Fault::new(None, "/api", FaultKind::Reset));
    assert!(a.get(&format!("{base}/api/v1/namespaces")).call().is_err());
    assert_eq!(get(&a, &format!("{base}/api/v1/namespaces")).status, 200);

    k.inject(Fault::new(
        None,
        "/api",
        FaultKind::Delay(Duration::from_millis(150)),
    ));
    let t = Instant::now();
    assert_eq!(get(&a, &format!("{base}/api/v1/namespaces")).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));

    // Mutate: someone else's change lands just before the request, which is then served.
    k.put_secret("ns", docker_secret("gone"));
    k.inject(Fault::new(
        Some("GET"),
        "/api/v1/namespaces/ns/secrets/gone",
        FaultKind::Mutate(Mutation::DeleteSecret {
            namespace: "ns".into(),
            name: "gone".into(),
        }),
    ));
    let r = get(&a, &format!("{base}/api/v1/namespaces/ns/secrets/gone"));
    assert_eq!(r.status, 404, "{}", r.text);
    k.inject(Fault::new(
        Some("POST"),
        "/api/v1/namespaces/ns/secrets",
        FaultKind::Mutate(Mutation::TerminateNamespace("ns".into())),
    ));
    let r = post_json(
        &a,
        &format!("{base}/api/v1/namespaces/ns/secrets"),
        &docker_secret("late"),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.json()["details"]["causes"][0]["reason"],
        "NamespaceTerminating"
    );

    k.inject(Fault::new(None, "/x", FaultKind::Reset));
    k.clear_faults();
    assert_eq!(get(&a, &format!("{base}/api/v1/namespaces")).status, 200);
}

/// Raw HTTP: malformed requests get 400, chunked bodies and keep-alive work.
#[test]
fn raw_http_robustness() {
    let (k, _a) = kube_with(&["ns"]);
    let exchange = |raw: &[u8]| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", k.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(exchange(b"garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(
        exchange(b"GET /api HTTP/1.1\r\nContent-Length: nope\r\n\r\n").starts_with("HTTP/1.1 400")
    );
    assert!(
        exchange(b"GET /api HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .starts_with("HTTP/1.1 400")
    );
    assert!(exchange(b"GET /api HTTP/9.9\r\n\r\n").starts_with("HTTP/1.1 400"));

    let body = docker_secret("chunky").to_string();
    let (a, b) = body.split_at(10);
    let raw = format!(
        "POST /api/v1/namespaces/ns/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\nGET /api/v1/namespaces/ns/secrets/chunky HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        a.len(),
        b.len()
    );
    let out = exchange(raw.as_bytes());
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        2,
        "two answers on one connection: {out}"
    );
    assert!(out.contains("HTTP/1.1 200 OK"));
    assert!(k.secret("ns", "chunky").is_some());
}

/// Reads watch lines on a thread; returns a receiver of parsed events (closed at stream end).
fn watch(url: String) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    let a = agent();
    let r = a.get(&url).call().expect("watch request");
    assert_eq!(r.status().as_u16(), 200);
    std::thread::spawn(move || {
        let reader = BufReader::new(r.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).expect("one JSON event per line");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    rx
}

fn next(rx: &mpsc::Receiver<Value>) -> Value {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("watch event")
}

#[test]
fn watch_namespaces() {
    let (k, _a) = kube_with(&["a", "b"]);
    k.set_bookmark_interval(Duration::from_millis(100));
    let rx = watch(format!(
        "{}/api/v1/namespaces?watch=true&timeoutSeconds=5",
        k.base_url()
    ));
    let e1 = next(&rx);
    let e2 = next(&rx);
    assert_eq!(
        (e1["type"].as_str(), e2["type"].as_str()),
        (Some("ADDED"), Some("ADDED"))
    );
    assert_eq!(e1["object"]["kind"], "Namespace");
    assert_eq!(e1["object"]["apiVersion"], "v1");
    assert_eq!(e2["object"]["metadata"]["name"], "b");
    k.add_namespace("c", &[("team", "x")]);
    let e = next(&rx);
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "c");
    k.set_namespace_terminating("c");
    let e = next(&rx);
    assert_eq!(e["type"], "MODIFIED");
    assert_eq!(e["object"]["status"]["phase"], "Terminating");
    assert!(e["object"]["metadata"]["deletionTimestamp"].is_string());
    k.delete_namespace("c");
    let e = next(&rx);
    assert_eq!(e["type"], "DELETED");
    // No bookmarks unless asked for.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());

    // From a resourceVersion: only later events, plus bookmarks.
    let rv = k.resource_version();
    let rx = watch(format!(
        "{}/api/v1/namespaces?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=5&labelSelector={}",
        k.base_url(),
        enc("team=x")
    ));
    let e = next(&rx);
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(e["object"]["metadata"]["resourceVersion"], rv.to_string());
    k.add_namespace("nomatch", &[]);
    k.add_namespace("d", &[("team", "x")]);
    let e = loop {
        let e = next(&rx);
        if e["type"] != "BOOKMARK" {
            break e;
        }
    };
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "d");
    // Relabeling out of the selector is a DELETED for this watcher.
    k.add_namespace("d", &[("team", "y")]);
    let e = loop {
        let e = next(&rx);
        if e["type"] != "BOOKMARK" {
            break e;
        }
    };
    assert_eq!(e["type"], "DELETED");
    let e = loop {
        let e = next(&rx);
        if e["type"] == "BOOKMARK" {
            break e;
        }
    };
    let brv: u64 = e["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(brv, k.resource_version());
}

#[test]
fn watch_too_old_and_timeout() {
    let (k, _a) = kube_with(&["a"]);
    let old = k.resource_version();
    k.add_namespace("b", &[]);
    k.compact();
    let t = Instant::now();
    let rx = watch(format!(
        "{}/api/v1/namespaces?watch=true&resourceVersion={old}",
        k.base_url()
    ));
    let e = next(&rx);
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["kind"], "Status");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert!(
        e["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version")
    );
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "stream ends after the ERROR"
    );
    assert!(t.elapsed() < Duration::from_secs(2));

    // The current resourceVersion is fine; the stream ends after timeoutSeconds.
    let rv = k.resource_version();
    let t = Instant::now();
    let rx = watch(format!(
        "{}/api/v1/namespaces?watch=true&resourceVersion={rv}&timeoutSeconds=1",
        k.base_url()
    ));
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(3)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn watch_secrets_in_namespace_with_field_selector() {
    let (k, _a) = kube_with(&["a", "b"]);
    let rx = watch(format!(
        "{}/api/v1/namespaces/a/secrets?watch=true&timeoutSeconds=5&fieldSelector={}",
        k.base_url(),
        enc("metadata.name=pull")
    ));
    k.put_secret("b", docker_secret("pull"));
    k.put_secret("a", docker_secret("other"));
    k.put_secret("a", docker_secret("pull"));
    let e = next(&rx);
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["namespace"], "a");
    assert_eq!(e["object"]["metadata"]["name"], "pull");
    assert_eq!(e["object"]["kind"], "Secret");
}

#[test]
fn tls_mode() {
    let (k, ca) = FakeKube::start_tls();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(k.base_url().starts_with("https://127.0.0.1:"));
    k.add_namespace("secure", &[]);
    let a = agent_with_ca(&ca);
    let r = get(&a, &format!("{}/api/v1/namespaces", k.base_url()));
    assert_eq!(r.status, 200);
    assert_eq!(names(&r.json()), ["secure"]);
    let r = get(
        &a,
        &format!("https://localhost:{}/api/v1/namespaces/secure", k.port()),
    );
    assert_eq!(r.status, 200);
    // Without the CA the handshake fails.
    assert!(
        agent()
            .get(&format!("{}/api/v1/namespaces", k.base_url()))
            .call()
            .is_err()
    );
}

#[test]
fn admin_endpoints() {
    let k = FakeKube::start();
    k.enable_admin();
    let a = agent();
    let base = k.base_url();
    let r = post_json(
        &a,
        &format!("{base}/_admin/namespaces"),
        &json!({"name": "t1", "labels": {"x": "y"}}),
    );
    assert_eq!(r.status, 201);
    post_json(
        &a,
        &format!("{base}/_admin/namespaces"),
        &json!({"name": "t2", "phase": "Terminating"}),
    );
    assert_eq!(k.namespace("t2").unwrap()["status"]["phase"], "Terminating");
    assert_eq!(k.namespace("t1").unwrap()["metadata"]["labels"]["x"], "y");
    get(&a, &format!("{base}/api/v1/namespaces"));
    get(
        &a,
        &format!(
            "{base}/api/v1/namespaces?watch=true&timeoutSeconds=1&resourceVersion={}",
            k.resource_version()
        ),
    );
    post_json(&a, &secrets_url(&k, "t1"), &docker_secret("s"));
    let s = get(&a, &format!("{base}/_admin/stats")).json();
    assert_eq!(s["requests_by_verb"]["GET"], 1);
    assert_eq!(s["requests_by_verb"]["WATCH"], 1);
    assert_eq!(s["requests_by_verb"]["POST"], 1);
    assert_eq!(s["requests_by_verb"]["PATCH"], 0);
    assert_eq!(s["total"], 3);
    let all = get(&a, &format!("{base}/_admin/secrets")).json();
    assert_eq!(all[0]["namespace"], "t1");
    assert_eq!(all[0]["secret"]["metadata"]["name"], "s");
    let r = post_json(
        &a,
        &format!("{base}/_admin/faults"),
        &json!({"method": "GET", "path_prefix": "/api/v1/namespaces", "kind": {"status": [503, "ServiceUnavailable"]}}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(get(&a, &format!("{base}/api/v1/namespaces")).status, 503);
    assert_eq!(
        post_json(&a, &format!("{base}/_admin/stats/reset"), &json!({})).status,
        200
    );
    assert_eq!(get(&a, &format!("{base}/_admin/stats")).json()["total"], 0);
    // Admin traffic is not recorded.
    assert!(k.requests().iter().all(|r| !r.path.starts_with("/_admin")));
}

#[test]
fn binary_serves_and_prints_one_line() {
    let dir = std::env::temp_dir().join(format!("fake-kube-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        json!([{"namespace": "team-0001", "secret": docker_secret("seeded")}]).to_string(),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-kube"))
        .args(["--namespaces", "3", "--ns-prefix", "team-", "--seed"])
        .arg(&seed)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let a = agent();
    let v = get(&a, &format!("{url}/api/v1/namespaces")).json();
    assert_eq!(names(&v), ["team-0000", "team-0001", "team-0002"]);
    let r = get(
        &a,
        &format!("{url}/api/v1/namespaces/team-0001/secrets/seeded"),
    );
    assert_eq!(r.status, 200);
    let sa = get(
        &a,
        &format!("{url}/api/v1/namespaces/team-0002/serviceaccounts/default"),
    );
    assert_eq!(sa.status, 200);
    assert_eq!(
        get(&a, &format!("{url}/_admin/stats")).json()["requests_by_verb"]["GET"],
        3
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_side_apply_conflicts() {
    let (k, a) = kube_with(&["ns"]);
    k.put_secret(
        "ns",
        json!({"metadata": {"name": "s"}, "data": {"a": b64("1")}}),
    );
    let url = format!("{}/s", secrets_url(&k, "ns"));
    let cfg = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                     "data": {"a": b64("2"), "b": b64("x")}});
    let r = patch(
        &a,
        &format!("{url}?fieldManager=ecrupdater"),
        "application/apply-patch+yaml",
        &cfg,
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Apply failed with 1 conflict: conflict with \"testkit-admin\" using v1: .data.a",
               "reason": "Conflict",
               "details": {"causes": [{"reason": "FieldManagerConflict",
                                       "message": "conflict with \"testkit-admin\" using v1",
                                       "field": ".data.a"}]},
               "code": 409})
    );
    // Same value as the current one: shared ownership, no conflict.
    let same = json!({"metadata": {"name": "s"}, "data": {"a": b64("1")}});
    let r = patch(
        &a,
        &format!("{url}?fieldManager=ecrupdater"),
        "application/apply-patch+yaml",
        &same,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Forced: takes the field over.
    let r = patch(
        &a,
        &format!("{url}?fieldManager=ecrupdater&force=true"),
        "application/apply-patch+yaml",
        &cfg,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"], json!({"a": b64("2"), "b": b64("x")}));
    // Now it owns them: a re-apply that drops `b` removes it.
    let r = patch(
        &a,
        &format!("{url}?fieldManager=ecrupdater"),
        "application/apply-patch+yaml",
        &json!({"metadata": {"name": "s"}, "data": {"a": b64("3")}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"], json!({"a": b64("3")}));
    // Someone else's merge patch (manager from ?fieldManager) takes `a`; the next apply conflicts.
    let r = patch(
        &a,
        &format!("{url}?fieldManager=kubectl-edit"),
        "application/merge-patch+json",
        &json!({"data": {"a": b64("9")}}),
    );
    assert_eq!(r.status, 200);
    let r = patch(
        &a,
        &format!("{url}?fieldManager=ecrupdater"),
        "application/apply-patch+yaml",
        &json!({"metadata": {"name": "s"}, "data": {"a": b64("3")}}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json()["details"]["causes"][0]["message"],
        "conflict with \"kubectl-edit\" using v1"
    );
}

#[test]
#[ignore = "needs kubectl and python3 with PyYAML: it renders the default install (install: scripts/test.sh, or pip install pyyaml; kubectl: https://kubernetes.io/docs/tasks/tools/)"]
fn rbac_from_the_shipped_default_install() {
    let (k, a) = kube_with(&["team-a"]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../example_deployment");
    let manifests = k.enforce_rbac_of(&dir).expect("render the default install");
    assert_eq!(
        manifests.daemon_user().expect("user").name,
        "system:serviceaccount:ecr-updater:ecr-updater"
    );
    let base = k.base_url();
    let who = "User \"system:serviceaccount:ecr-updater:ecr-updater\"";
    // Allowed: the namespace list and watch, the pull secret by name, create.
    assert_eq!(get(&a, &format!("{base}/api/v1/namespaces")).status, 200);
    let r = get(
        &a,
        &format!("{base}/api/v1/namespaces/team-a/secrets/ecr-pull"),
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (404, json!("NotFound"))
    );
    let url = secrets_url(&k, "team-a");
    assert_eq!(post_json(&a, &url, &docker_secret("ecr-pull")).status, 201);
    let r = patch(
        &a,
        &format!("{url}/ecr-pull"),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"x": "y"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Refused, with the apiserver's messages: other names, listing secrets, deleting, namespaces.
    let cases = [
        (
            get(&a, &format!("{url}/other")),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("secrets \"other\" is forbidden: {who} cannot get resource \"secrets\" in API group \"\" in the namespace \"team-a\""),
                   "reason": "Forbidden", "details": {"name": "other", "kind": "secrets"}, "code": 403}),
        ),
        (
            get(&a, &format!("{base}/api/v1/secrets")),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("secrets is forbidden: {who} cannot list resource \"secrets\" in API group \"\" at the cluster scope"),
                   "reason": "Forbidden", "details": {"kind": "secrets"}, "code": 403}),
        ),
        (
            get(&a, &url),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("secrets is forbidden: {who} cannot list resource \"secrets\" in API group \"\" in the namespace \"team-a\""),
                   "reason": "Forbidden", "details": {"kind": "secrets"}, "code": 403}),
        ),
        (
            send(&a, "DELETE", &format!("{url}/ecr-pull"), None, None),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("secrets \"ecr-pull\" is forbidden: {who} cannot delete resource \"secrets\" in API group \"\" in the namespace \"team-a\""),
                   "reason": "Forbidden", "details": {"name": "ecr-pull", "kind": "secrets"}, "code": 403}),
        ),
        (
            get(&a, &format!("{base}/api/v1/namespaces/team-a")),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("namespaces \"team-a\" is forbidden: {who} cannot get resource \"namespaces\" in API group \"\" in the namespace \"team-a\""),
                   "reason": "Forbidden", "details": {"name": "team-a", "kind": "namespaces"}, "code": 403}),
        ),
        (
            get(
                &a,
                &format!("{base}/api/v1/namespaces/team-a/serviceaccounts/default"),
            ),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("serviceaccounts \"default\" is forbidden: {who} cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\""),
                   "reason": "Forbidden", "details": {"name": "default", "kind": "serviceaccounts"}, "code": 403}),
        ),
    ];
    for (r, want) in cases {
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.json(), want);
    }
    assert_eq!(k.forbidden_requests().len(), 6);
    assert!(
        k.secret("team-a", "ecr-pull").is_some(),
        "the refused delete changed nothing"
    );
    // Discovery stays open to every authenticated identity.
    assert_eq!(get(&a, &format!("{base}/version")).status, 200);
    assert_eq!(get(&a, &format!("{base}/api")).status, 200);

    // The same through the admin endpoints (for the fake-kube binary).
    let k = FakeKube::start();
    k.enable_admin();
    let base = k.base_url();
    let r = post_json(
        &a,
        &format!("{base}/_admin/rbac"),
        &json!({"kustomization": dir.join("variants/single-namespace")}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["user"],
        "system:serviceaccount:ecr-updater:ecr-updater"
    );
    let r = get(
        &a,
        &format!("{base}/api/v1/namespaces/team-b/secrets/ecr-pull"),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = get(
        &a,
        &format!("{base}/api/v1/namespaces/team-a/secrets/ecr-pull"),
    );
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        get(&a, &format!("{base}/_admin/forbidden")).json(),
        json!(["GET /api/v1/namespaces/team-b/secrets/ecr-pull"])
    );
    let r = post_json(
        &a,
        &format!("{base}/_admin/rbac"),
        &json!({"kustomization": "/nonexistent"}),
    );
    assert_eq!(r.status, 400);
}
