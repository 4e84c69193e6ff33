//! HTTP agents: one per destination, built once and reused (keep-alive), each with the
//! configured timeouts. The Kubernetes agent never uses a proxy and, in-cluster, trusts only the
//! service-account CA; the AWS agent trusts the Mozilla roots compiled into the binary (a scratch
//! image has no /etc/ssl) and honours `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.

use std::sync::Arc;

use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::config::Timeouts;

/// The User-Agent sent on every request.
pub const USER_AGENT: &str = concat!("k8s-ecrupdater/", env!("CARGO_PKG_VERSION"));

/// An agent for the Kubernetes API. `ca_pem` (in-cluster) replaces the public roots.
pub fn kube_agent(timeouts: Timeouts, ca_pem: Option<&[u8]>) -> Result<Agent, String> {
    let roots = match ca_pem {
        None => RootCerts::WebPki,
        Some(pem) => {
            let certs: Vec<_> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err("holds no PEM certificate".to_string());
            }
            RootCerts::Specific(Arc::new(certs))
        }
    };
    Ok(builder(timeouts, roots).proxy(None).build().new_agent())
}

/// An agent for AWS endpoints.
pub fn aws_agent(timeouts: Timeouts) -> Agent {
    builder(timeouts, RootCerts::WebPki)
        .proxy(ureq::Proxy::try_from_env())
        .build()
        .new_agent()
}

fn builder(
    timeouts: Timeouts,
    roots: RootCerts,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    phase_timeouts(timeouts.connect, timeouts.request).tls_config(
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .build(),
    )
}

/// The settings every agent shares: statuses handed back as answers, no redirects, our
/// User-Agent, and a timeout for each phase of a call (connect; then sending, waiting for the
/// answer, reading it). No overall or name-resolution timeout is set on purpose: with one, ureq
/// resolves names on a helper thread for every request, and this daemon stays single-threaded
/// (name resolution is bounded by the system resolver's own timeouts).
pub fn phase_timeouts(
    connect: std::time::Duration,
    request: std::time::Duration,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .max_redirects(0)
        .timeout_connect(Some(connect))
        .timeout_send_request(Some(request))
        .timeout_send_body(Some(request))
        .timeout_recv_response(Some(request))
        .timeout_recv_body(Some(request))
}
