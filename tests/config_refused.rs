//! Bad configuration, driven by the real binary: each case exits with status 2 within a second,
//! with one line naming the variable, before any request (the API server and every AWS endpoint
//! point at a listener that counts connections), and never prints a password given in a URL.
//! Every real region form is accepted.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A listener on 127.0.0.1 that counts the connections made to it.
struct Counter {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Counter {
    fn start() -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Counter { port, connections }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A working environment whose every endpoint is the counter, with `name=value` on top.
fn refused(counter: &Counter, name: &str, value: &str) -> String {
    let url = counter.url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("K8S_PULL_SECRET_NAME", "ecr-pull"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIACONFIGTESTKEY001"),
        ("AWS_SECRET_ACCESS_KEY", "config-test-secret-key-0123456789"),
        ("AWS_ENDPOINT_URL", &url),
        ("KUBERNETES_API_ENDPOINT", &url),
    ];
    // AWS_REGION wins over AWS_DEFAULT_REGION: drop it to test the other.
    let region_var = if name == "AWS_DEFAULT_REGION" {
        "AWS_REGION"
    } else {
        name
    };
    vars.retain(|(k, _)| *k != name && *k != region_var);
    vars.push((name, value));
    let started = Instant::now();
    let run = run(&vars, &["--once"], Duration::from_secs(10));
    let elapsed = started.elapsed();
    let output = run.output();
    let shown: String = value.chars().take(60).collect();
    assert_eq!(run.status, 2, "{name}={shown}: exit status\n{output}");
    assert!(
        elapsed < Duration::from_secs(1),
        "{name}={shown}: took {elapsed:?}"
    );
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 1, "{name}={shown}: one line\n{output}");
    assert!(
        lines[0].contains(&format!("configuration error: {name}:")),
        "{name}={shown}: the variable is named\n{output}"
    );
    assert!(
        lines[0].len() < 400,
        "{name}={shown}: a short line\n{output}"
    );
    assert_eq!(counter.count(), 0, "{name}={shown}: a request was made");
    output
}

#[test]
fn bad_urls_are_refused_naming_the_variable_before_any_request() {
    let counter = Counter::start();
    let long_host = format!("https://{}.example.com", "a".repeat(70_000));
    let cases: Vec<(&str, String)> = vec![
        ("KUBERNETES_API_ENDPOINT", "http://127.0.0.1:99999".into()),
        ("KUBERNETES_API_ENDPOINT", "https://[::1".into()),
        ("KUBERNETES_API_ENDPOINT", long_host.clone()),
        (
            "KUBERNETES_API_ENDPOINT",
            "https://rancher.example/k8s/clusters/c-1#/overview".into(),
        ),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:70000".into()),
        ("AWS_ENDPOINT_URL_ECR", "https://".into()),
        (
            "AWS_ENDPOINT_URL_ECR_PUBLIC",
            "https://ecr-public.example:0".into(),
        ),
        ("AWS_ENDPOINT_URL_STS", "https://sts.example/#x".into()),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://[fd00:ec2::254".into(),
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:80@evil.invalid/".into(),
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials#frag".into(),
        ),
        ("HTTPS_PROXY", "http://proxy.example:99999".into()),
        ("https_proxy", "http://[::1".into()),
        ("ALL_PROXY", "ftp://proxy.example:21".into()),
        ("HTTP_PROXY", "http://proxy.example:3128/some/path".into()),
    ];
    for (name, value) in &cases {
        refused(&counter, name, value);
    }
}

#[test]
fn a_password_in_an_endpoint_url_is_refused_and_never_printed() {
    let counter = Counter::start();
    let password = "Sup3rS3cretInUrl-0123456789";
    for name in [
        "KUBERNETES_API_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_ECR",
        "AWS_ENDPOINT_URL_STS",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    ] {
        let url = format!("https://admin:{password}@api.example.com:6443");
        let output = refused(&counter, name, &url);
        assert!(output.contains("user name or password"), "{output}");
        assert_no_credentials(&output, &[password, "admin:"]);
    }
}

#[test]
fn made_up_regions_are_refused_and_every_real_form_passes() {
    let counter = Counter::start();
    for region in [
        "a-b-1",
        "eu-west",
        "eu-wst-1",
        "EU-WEST-1",
        "us-gov-iso-west-1",
        "xx-east-100",
    ] {
        refused(&counter, "AWS_REGION", region);
        refused(&counter, "AWS_DEFAULT_REGION", region);
    }
    // Every real form reaches the network: `--once` runs (and fails on the counter, which
    // answers nothing), never exit 2.
    for region in [
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-4",
        "il-central-1",
        "us-iso-east-1",
        "us-isob-east-1",
        "eu-isoe-west-1",
        "us-isof-south-1",
        "mx-central-1",
        "ca-west-1",
    ] {
        let url = counter.url();
        let run = run(
            &[
                ("K8S_PULL_SECRET_NAME", "ecr-pull"),
                ("AWS_REGION", region),
                ("AWS_ACCESS_KEY_ID", "AKIACONFIGTESTKEY001"),
                ("AWS_SECRET_ACCESS_KEY", "config-test-secret-key-0123456789"),
                ("AWS_ENDPOINT_URL", &url),
                ("KUBERNETES_API_ENDPOINT", &url),
            ],
            &["--once"],
            Duration::from_secs(30),
        );
        assert_ne!(run.status, 2, "{region} refused:\n{}", run.output());
        assert!(
            !run.output().contains("configuration error"),
            "{region}:\n{}",
            run.output()
        );
    }
}
