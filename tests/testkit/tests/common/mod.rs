//! A small ureq-based client for the testkit's own tests (real sockets, statuses not turned into
//! errors).

#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;

pub struct Resp {
    pub status: u16,
    pub text: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

pub fn agent_with_ca(pem: &str) -> ureq::Agent {
    let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).expect("CA PEM");
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            cert,
        ])))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(tls)
        .build()
        .into()
}

pub fn into_resp(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("request failed");
    let status = r.status().as_u16();
    let headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.body_mut().read_to_string().expect("body");
    Resp {
        status,
        text,
        content_type,
        headers,
    }
}

/// Any method, optional Content-Type and body.
pub fn send(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    ct: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(ct) = ct {
        b = b.header("Content-Type", ct);
    }
    let req = b.body(body.unwrap_or("").to_string()).expect("request");
    into_resp(a.run(req))
}

pub fn get(a: &ureq::Agent, url: &str) -> Resp {
    into_resp(a.get(url).call())
}

pub fn post_json(a: &ureq::Agent, url: &str, body: &Value) -> Resp {
    send(
        a,
        "POST",
        url,
        Some("application/json"),
        Some(&body.to_string()),
    )
}

pub fn put_json(a: &ureq::Agent, url: &str, body: &Value) -> Resp {
    send(
        a,
        "PUT",
        url,
        Some("application/json"),
        Some(&body.to_string()),
    )
}

pub fn patch(a: &ureq::Agent, url: &str, ct: &str, body: &Value) -> Resp {
    send(a, "PATCH", url, Some(ct), Some(&body.to_string()))
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
