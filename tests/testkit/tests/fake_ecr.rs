//! FakeEcr's own tests: the GetAuthorizationToken answer shape of shared/reference/ecr.md, the
//! header checks, and the injected faults (JSON, moto-style XML, reset, delay).

mod common;

use base64::Engine;
use common::*;
use ecrupdater_testkit::{AwsFault, FakeEcr};
use serde_json::Value;
use std::time::{Duration, Instant};

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

fn call(e: &FakeEcr, key: &str, region: &str, target: &str) -> Resp {
    let a = agent();
    into_resp(
        a.post(&format!("{}/", e.base_url()))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", target)
            .header("X-Amz-Date", "20240501T120000Z")
            .header(
                "Authorization",
                &format!("AWS4-HMAC-SHA256 Credential={key}/20240501/{region}/ecr/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=abcd"),
            )
            .send("{}"),
    )
}

fn ok(e: &FakeEcr) -> Resp {
    call(e, "AKIDEXAMPLE", "eu-west-1", TARGET)
}

#[test]
fn answer_shape() {
    let e = FakeEcr::start();
    let r = ok(&e);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.content_type, "application/x-amz-json-1.1");
    let v = r.json();
    let d = &v["authorizationData"][0];
    let tok = base64::engine::general_purpose::STANDARD
        .decode(d["authorizationToken"].as_str().unwrap())
        .unwrap();
    let tok = String::from_utf8(tok).unwrap();
    let (user, pass) = tok.split_once(':').unwrap();
    assert_eq!(user, "AWS");
    assert_eq!(pass.len(), 40);
    assert!(d["expiresAt"].is_f64());
    let exp = d["expiresAt"].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((exp - now - 43_200.0).abs() < 60.0);
    assert_eq!(
        d["proxyEndpoint"],
        "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    // The raw JSON carries a float.
    assert!(
        r.text.contains("\"expiresAt\":")
            && r.text
                .split("\"expiresAt\":")
                .nth(1)
                .unwrap()
                .split([',', '}'])
                .next()
                .unwrap()
                .contains('.')
    );

    e.set_token("AWS", "pa:ss:word", 1_700_000_000.0);
    e.set_proxy_endpoint("https://999.dkr.ecr.us-east-1.amazonaws.com");
    let v = ok(&e).json();
    let d = &v["authorizationData"][0];
    assert_eq!(d["authorizationToken"], b64("AWS:pa:ss:word"));
    assert_eq!(d["expiresAt"].as_f64(), Some(1_700_000_000.0));
    assert_eq!(
        d["proxyEndpoint"],
        "https://999.dkr.ecr.us-east-1.amazonaws.com"
    );

    let reqs = e.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].header("X-Amz-Target"), Some(TARGET));
    assert!(
        reqs[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    );
}

#[test]
fn header_checks() {
    let e = FakeEcr::start();
    let a = agent();
    let r = into_resp(
        a.post(&format!("{}/", e.base_url()))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", TARGET)
            .send("{}"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "MissingAuthenticationTokenException");

    let r = call(
        &e,
        "AKIDEXAMPLE",
        "eu-west-1",
        "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "UnknownOperationException");

    e.accept_access_key("AKIDGOOD");
    let r = call(&e, "AKIDBAD", "eu-west-1", TARGET);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        serde_json::json!({"__type": "UnrecognizedClientException", "message": "The security token included in the request is invalid."})
    );
    assert_eq!(call(&e, "AKIDGOOD", "eu-west-1", TARGET).status, 200);
}

#[test]
fn faults() {
    let e = FakeEcr::start();
    e.inject(AwsFault::Throttling);
    e.inject(AwsFault::Status(500, "ServerException".into()));
    e.inject(AwsFault::XmlError(403, "InvalidClientTokenId".into()));
    e.inject(AwsFault::Reset);
    e.inject(AwsFault::Delay(Duration::from_millis(100)));

    let r = ok(&e);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "ThrottlingException");
    assert!(r.json()["message"].is_string());

    let r = ok(&e);
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["__type"], "ServerException");

    let r = ok(&e);
    assert_eq!(r.status, 403);
    assert!(r.content_type.starts_with("text/html"));
    assert!(
        r.text.contains("<ErrorResponse>") && r.text.contains("<Code>InvalidClientTokenId</Code>")
    );
    assert!(r.text.contains("<Message>"));

    let a = agent();
    let res = a
        .post(&format!("{}/", e.base_url()))
        .header("X-Amz-Target", TARGET)
        .send("{}");
    assert!(res.is_err(), "reset");

    let t = Instant::now();
    assert_eq!(ok(&e).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(ok(&e).status, 200);
    let v: Value = ok(&e).json();
    assert!(v["authorizationData"].is_array());
}
