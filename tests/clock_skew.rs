//! Clock skew: an ECR whose answers carry a `Date` 10 minutes behind the local clock gives a
//! warning naming the skew and `ecrupdater_clock_skew_seconds` near 600; an ECR on time gives
//! neither the warning nor a skew over a few seconds. The ECR is a small server of this test
//! (the shared fakes send no `Date`).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater_testkit::FakeKube;

use common::fake::*;
use common::*;

const PASSWORD: &str = "skew-test-password-0123456789";

/// A fake ECR answering every request with a good token and a `Date` `offset` from now.
fn skewed_ecr(offset: time::Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the head and the (small) body.
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0;
            while let Ok(n) = stream.read(&mut buf[got..]) {
                if n == 0 {
                    break;
                }
                got += n;
                let text = String::from_utf8_lossy(&buf[..got]);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got >= end + 4 + length {
                        break;
                    }
                }
            }
            let now = time::OffsetDateTime::now_utc();
            let date = (now + offset)
                .format(time::macros::format_description!(
                    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                ))
                .expect("date");
            let body = serde_json::json!({"authorizationData": [{
                "authorizationToken": STANDARD.encode(format!("AWS:{PASSWORD}")),
                "expiresAt": (now + time::Duration::hours(12)).unix_timestamp(),
                "proxyEndpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            }]})
            .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

fn daemon(ecr_port: u16, kube: &FakeKube) -> DaemonProcess {
    let ecr = format!("http://127.0.0.1:{ecr_port}");
    let kube_url = kube.base_url();
    DaemonProcess::start(
        &[
            ("K8S_PULL_SECRET_NAME", "ecr-pull"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", &ecr),
            ("AWS_ACCESS_KEY_ID", "AKIASKEWTEST"),
            ("AWS_SECRET_ACCESS_KEY", "skew-test-secret-key"),
            ("KUBERNETES_API_ENDPOINT", &kube_url),
            ("ECR_CREATE_MISSING", "true"),
        ],
        &[],
    )
}

fn skew_metric(d: &mut DaemonProcess) -> Option<f64> {
    let port = d.health_port();
    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{text}");
    metric_samples(&text)
        .get("ecrupdater_clock_skew_seconds")
        .copied()
}

#[test]
fn an_aws_answer_ten_minutes_off_gives_a_warning_and_the_metric() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    let mut d = daemon(skewed_ecr(-time::Duration::minutes(10)), &kube);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("WARNING") && l.contains("clock skew"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let seconds: i64 = warnings[0]
        .split("the local clock is ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skew in {:?}", warnings[0]));
    assert!((599..=602).contains(&seconds), "{}", warnings[0]);
    assert!(warnings[0].contains("ahead of"), "{}", warnings[0]);
    let skew = skew_metric(&mut d).expect("ecrupdater_clock_skew_seconds");
    assert!((598.0..=602.0).contains(&skew), "{skew}");
    assert_no_credentials(&d.log(), &[PASSWORD, "skew-test-secret-key"]);
}

#[test]
fn an_aws_answer_on_time_gives_no_warning() {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("app", &[]);
    let mut d = daemon(skewed_ecr(time::Duration::ZERO), &kube);
    let log = d.wait_for_log("cycle done", Duration::from_secs(20));
    assert!(!log.contains("clock skew"), "{log}");
    let skew = skew_metric(&mut d).expect("ecrupdater_clock_skew_seconds");
    assert!(skew.abs() <= 2.0, "{skew}");
}
